//! Every config the cluster needs, rendered from the inventory: pure functions of it, no I/O.

pub mod dnsmasq;
pub mod exports;
pub mod hosts;
pub mod ipxe;
pub mod lighttpd;
pub mod master;
pub mod nfs;
pub mod pxelinux;
pub mod sizing;

use crate::inventory::Inventory;

/// One rendered config: its name (`crctl show NAME`), what it is for, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub name: &'static str,
    pub what: &'static str,
    pub text: String,
}

/// The first line of every rendered file: where it comes from, so nobody edits it by hand.
pub fn stamp(comment: &str) -> String {
    format!("{comment} Rendered by crctl from the cluster's inventory: change that (crctl node ...), then run crctl sync.\n")
}

/// `text` as comment lines of at most [`COMMENT_WIDTH`] columns, each starting `# `: for the
/// comments whose words come from the inventory (counts, names), so their lines stay as wide
/// as the hand-wrapped ones.
pub fn comment(text: &str) -> String {
    let mut out = String::new();
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() > 1 && line.len() + 1 + word.len() > COMMENT_WIDTH {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// The widest line [`comment`] writes, as the configs' other comments.
pub const COMMENT_WIDTH: usize = 92;

/// Every config, in the order `crctl sync` writes them.
pub fn all(inv: &Inventory) -> Vec<Config> {
    let mut out = vec![
        Config { name: "dnsmasq", what: "the master's /etc/dnsmasq.conf", text: dnsmasq::master(inv) },
        Config { name: "exports", what: "the master's /etc/exports", text: exports::render(inv) },
        Config { name: "hosts", what: "every node's /etc/hosts", text: hosts::render(inv) },
        Config { name: "lighttpd", what: "the master's /etc/lighttpd/lighttpd.conf", text: lighttpd::render(inv) },
        Config { name: "nfs", what: "the master's /etc/nfs.conf", text: nfs::render(inv) },
        Config { name: "ipxe", what: "boot.ipxe in the TFTP root", text: ipxe::render(inv) },
        Config { name: "pxelinux", what: "pxelinux.cfg/default in the TFTP root", text: pxelinux::render(inv) },
    ];
    if let Some(text) = dnsmasq::site(inv) {
        out.push(Config { name: "site-dhcp", what: "dhcp-host lines for the site's DHCP server (dnsmasq)", text });
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn comments_wrap_at_their_width() {
        let out = super::comment(&"word ".repeat(40));
        assert!(out.lines().all(|l| l.starts_with("# ") && l.len() <= super::COMMENT_WIDTH), "{out}");
        assert_eq!(out.split_whitespace().filter(|w| *w == "word").count(), 40);
        assert_eq!(super::comment("one line"), "# one line\n");
        let long = "x".repeat(120);
        assert_eq!(super::comment(&format!("a {long} b")), format!("# a\n# {long}\n# b\n"));
    }
}

#[cfg(test)]
pub(crate) mod example {
    use crate::inventory::Inventory;

    /// The example inventory shipped in mkinitcpio/, whose renderings are the files shipped there.
    pub const CLUSTER: &str = include_str!("../../../mkinitcpio/cluster");

    pub fn inventory() -> Inventory {
        Inventory::parse(CLUSTER).expect("mkinitcpio/cluster parses")
    }

    /// The same cluster where another machine gives the addresses.
    pub fn proxy() -> Inventory {
        Inventory::parse(&CLUSTER.replace("\ndhcp server\n", "\ndhcp proxy\n")).expect("proxy variant parses")
    }
}
