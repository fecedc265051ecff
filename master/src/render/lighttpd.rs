//! lighttpd's config on the master: the TFTP root over HTTP, for iPXE clients.

use super::sizing::{Sizing, HTTP_CONNECTIONS_MIN, HTTP_SPARE, MACHINES};
use super::{comment, stamp};
use crate::inventory::Inventory;

/// `server.max-connections` and `server.max-fds`, with why and what they cost (README
/// "Sizing").
fn limits(s: &Sizing) -> String {
    let connections = format!(
        "Boot storms: a connection for every machine that may fetch at once ({MACHINES}), twice over (a \
         machine that rebooted mid-transfer leaves its old connection open until lighttpd's idle \
         timeouts end it), and {HTTP_SPARE} for others (the admin, replicas copying the store); at least \
         {HTTP_CONNECTIONS_MIN}. lighttpd's own default is a third of its open-file limit (341 under the usual 1024). \
         A connection costs lighttpd some 3.5 KiB (measured: 1000 downloads at once) and the kernel \
         its socket's buffers, while it is open.",
    );
    let fds = format!(
        "Two descriptors a connection (its socket and the file it sends: lighttpd takes at most \
         max-fds / 2 connections), and {HTTP_SPARE} more. lighttpd, started as root, raises its open-file \
         limit to this before it becomes nobody; a descriptor costs some 20 bytes until it is used."
    );
    format!(
        "{}server.max-connections = {}\n{}server.max-fds = {}\n",
        comment(&connections),
        s.http_connections,
        comment(&fds),
        s.http_fds
    )
}

/// With an image store: why the root is the default version's TFTP root, and no stat cache.
const STORE: &str = "\
# The image store's default version's TFTP root: a version is everything a client boots, its
# kernel, initramfs and boot.ipxe with the root it mounts (clusterroot.image=default), and the
# default link is resolved at every file opened, so crctl image publish and crctl image
# default switch them together. No stat cache: with it, lighttpd goes on serving a file it
# opened for up to a second after default names another version.
server.stat-cache-engine = \"disable\"
";

/// With an image store: its squashfs files at `/images/`, from the store as the running
/// master sees it, as the document-root is (`/run/rootfs/lower<images>/squashfs/`).
fn squashfs(inv: &Inventory) -> String {
    let dir = crate::image::squashfs::DIR;
    let store = crate::place::in_lower(&inv.settings.images);
    format!(
        "
# The image store's versions as squashfs files (crctl image publish makes one per version), for
# clients that fetch their root over HTTP: /images/default names the default's file,
# /images/<version>-<sha256>.squashfs is one. Static files, sent with their Content-Length.
server.modules += (\"mod_alias\")
alias.url = (\"/images/\" => \"{store}/{dir}/\")
"
    )
}

pub fn render(inv: &Inventory) -> String {
    let mut out = stamp("#");
    out.push_str(&format!(
        "\
# /etc/lighttpd/lighttpd.conf of a clusterroot master: serves the TFTP root over HTTP to the
# iPXE clients (dnsmasq.conf sends them here): boot.ipxe, the kernel and the clients'
# initramfs, which kernel.d/post-install/60-clusterroot puts there. HTTP streams what TFTP
# sends one block per round trip. Nothing there is secret: the TFTP server gives the same
# files to anyone, and node files never go there.
# Start it at boot: Void: ln -s /etc/sv/lighttpd /var/service/; Arch, Debian: systemctl
# enable --now lighttpd.

server.document-root = \"{tftp}\"
{store}server.port = 80
# Root only opens the port, then lighttpd runs as nobody (and nobody's group): everyone may
# read the files it serves (0644).
server.username = \"nobody\"
# Files only, as bytes: no directory listings, no scripts.
mimetype.assign = (\"\" => \"application/octet-stream\")
{squashfs}
# One line per file sent, to syslog (the journal; Void: socklog): which client fetched what.
# (A log file would be opened after lighttpd became nobody, who may not write /var/log.)
server.modules += (\"mod_accesslog\")
accesslog.use-syslog = \"enable\"

{limits}",
        tftp = inv.served_tftp(),
        store = if inv.uses_store() { STORE } else { "" },
        squashfs = if inv.uses_store() { squashfs(inv) } else { String::new() },
        limits = limits(&Sizing::of(inv)),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::example;

    #[test]
    fn the_shipped_config_is_the_examples_rendering() {
        assert_eq!(render(&example::inventory()), include_str!("../../../mkinitcpio/lighttpd.conf"));
    }

    #[test]
    fn it_serves_the_tftp_root() {
        let text = example::CLUSTER.replace("master master\n", "master master\ntftp /var/lib/tftpboot\n");
        let out = render(&Inventory::parse(&text).unwrap());
        assert!(out.contains("\nserver.document-root = \"/var/lib/tftpboot\"\nserver.port = 80\n"), "{out}");
    }

    #[test]
    fn it_takes_a_storm_of_every_machine() {
        let out = render(&example::inventory());
        assert!(out.contains("\n# its socket's buffers, while it is open.\nserver.max-connections = 512\n"), "{out}");
        assert!(out.ends_with("\n# limit to this before it becomes nobody; a descriptor costs some 20 bytes until it is used.\nserver.max-fds = 1088\n"), "{out}");
        let text = example::CLUSTER
            .replace("network 172.23.199.0/24", "network 172.23.0.0/16")
            .replace("range 172.23.199.100 172.23.199.199", "range 172.23.1.0 172.23.8.255");
        let out = render(&Inventory::parse(&text).unwrap());
        assert!(
            out.contains("\nserver.max-connections = 4164\n") && out.ends_with("\nserver.max-fds = 8392\n"),
            "{out}"
        );
        assert!(out.lines().all(|l| l.len() <= 100), "{out}");
    }

    #[test]
    fn with_an_image_store_it_serves_the_default_version_uncached() {
        let text = example::CLUSTER.replace("master master\n", "master master\nimages /srv/nfs/images\n");
        let out = render(&Inventory::parse(&text).unwrap());
        let root =
            "\nserver.document-root = \"/run/rootfs/lower/srv/nfs/images/default/srv/tftp\"\n# The image store's";
        assert!(out.contains(root), "{out}");
        assert!(out.contains("\nserver.stat-cache-engine = \"disable\"\nserver.port = 80\n"), "{out}");
        assert!(!render(&example::inventory()).contains("stat-cache"));
    }

    #[test]
    fn with_an_image_store_it_serves_the_squashfs_files_at_images() {
        let text = example::CLUSTER.replace("master master\n", "master master\nimages /srv/nfs/images\n");
        let out = render(&Inventory::parse(&text).unwrap());
        let alias = "\nserver.modules += (\"mod_alias\")\n\
                     alias.url = (\"/images/\" => \"/run/rootfs/lower/srv/nfs/images/squashfs/\")\n";
        assert!(out.contains(alias), "{out}");
        // The store at the lower's top: no double slash.
        let text = example::CLUSTER.replace("master master\n", "master master\nimages /\n");
        let out = render(&Inventory::parse(&text).unwrap());
        assert!(out.contains("\"/images/\" => \"/run/rootfs/lower/squashfs/\""), "{out}");
        assert!(!render(&example::inventory()).contains("alias"));
    }
}
