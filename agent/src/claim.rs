//! Which roots the agent mounts itself: the one rule every flavor asks.
//!
//! mkinitcpio's busybox runtime hook and dracut's cmdline hook run `clusterroot claims`, and
//! systemd's generator (mkinitcpio's and dracut's systemd images) calls [`claims`] directly, so
//! the decision is made here and nowhere else. It reads the command line as loosely as
//! `getarg` does, checking no value: a root the agent owns but whose value is malformed is
//! still the agent's, which then names the bad parameter and opens the emergency shell.
//! [`BootConfig::mounts_root`](crate::cmdline::BootConfig::mounts_root) is the same rule seen
//! through the checked parser; `agent/tests/claims.table` holds the cases both (and the hook
//! scripts, through the binary) are tested against.

use crate::cmdline::{is_dhcp_word, is_zfs_auto, split_words};

/// The roots the agent mounts itself, for messages and help texts.
pub const CLAIMED_ROOTS: &str =
    "nfsroot=, root=/dev/nfs, root=nfs:|nfs4:..., root=live:<url>, clusterroot.live=, ip=dhcp without root=, \
root=LABEL=|UUID=|PARTUUID=|PARTLABEL=|/dev/..., root=zfs:<pool>/<dataset>, zfs=<pool>/<dataset>";

/// The kernel parameters the decision needs, as `getarg` sees them: the last occurrence wins,
/// a bare word has the value `y`. Nothing is checked here.
#[derive(Debug, Default)]
pub struct Params {
    words: Vec<(String, String)>,
}

impl Params {
    pub fn parse(cmdline: &str) -> Params {
        let words = split_words(cmdline)
            .into_iter()
            .map(|w| match w.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (w, "y".to_string()),
            })
            .collect();
        Params { words }
    }

    /// The value of `key`, or `""` when it is absent.
    pub fn get(&self, key: &str) -> &str {
        self.last_of(&[key])
    }

    /// The value of the last word whose key is one of `keys` (`zfs=` and `ZFS=` are one
    /// setting), or `""`.
    fn last_of(&self, keys: &[&str]) -> &str {
        self.words.iter().rev().find(|(k, _)| keys.contains(&k.as_str())).map_or("", |(_, v)| v.as_str())
    }
}

/// Whether the agent mounts this root itself, in this order:
/// 1. an NFS root: `nfsroot=`, `root=/dev/nfs`, dracut's `root=nfs:`/`root=nfs4:`, or no
///    `root=` with `ip=` asking for DHCP (the DHCP server's root path names the export); or a
///    squashfs image: dracut's `root=live:<url>`, `clusterroot.live=`;
/// 2. else, when `zfs=`/`ZFS=` is given (the last of them), it alone names the root: a named
///    dataset is ours, the pool's bootfs (`auto`, `bootfs`, ...) is the zfs hook's;
/// 3. else `root=`: a local block device (`LABEL=`, `UUID=`, `PARTUUID=`, `PARTLABEL=`,
///    `/dev/...`) or a ZFS dataset (`zfs:<ds>`, `ZFS=<ds>`) is ours; bare `root=zfs` and the
///    automatic words mean the pool's bootfs, the zfs hook's; anything else is another
///    handler's.
pub fn claims(p: &Params) -> bool {
    let root = p.get("root");
    if !p.get("nfsroot").is_empty()
        || root == "/dev/nfs"
        || root.starts_with("nfs:")
        || root.starts_with("nfs4:")
        || root.starts_with("live:")
        || !p.get("clusterroot.live").is_empty()
        || (root.is_empty() && p.get("ip").split(':').any(is_dhcp_word))
    {
        return true;
    }
    let zfs = p.last_of(&["zfs", "ZFS"]);
    if !zfs.is_empty() {
        return !is_zfs_auto(zfs);
    }
    if let Some(dataset) = root.strip_prefix("zfs:").or_else(|| root.strip_prefix("ZFS=")) {
        return !is_zfs_auto(dataset);
    }
    ["LABEL=", "UUID=", "PARTUUID=", "PARTLABEL=", "/dev/"].iter().any(|p| root.starts_with(p))
}

/// [`claims`] for a whole command line.
pub fn claims_cmdline(cmdline: &str) -> bool {
    claims(&Params::parse(cmdline))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdline::{BootConfig, DHCP_WORDS, ZFS_AUTO_WORDS};

    /// The shared cases: one per line, `ours` or `none`, a tab, the command line.
    const TABLE: &str = include_str!("../tests/claims.table");

    fn table() -> Vec<(&'static str, &'static str)> {
        let cases: Vec<_> = TABLE
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| l.split_once('\t').expect("want<TAB>cmdline"))
            .collect();
        assert!(cases.iter().all(|(want, _)| matches!(*want, "ours" | "none")), "want is ours or none");
        assert!(cases.len() >= 40, "the table has {} cases", cases.len());
        cases
    }

    #[test]
    fn claims_as_the_table_says() {
        for (want, cmdline) in table() {
            let got = if claims_cmdline(cmdline) { "ours" } else { "none" };
            assert_eq!(got, want, "command line {cmdline:?}");
        }
    }

    /// The checked parser agrees: a root left to another handler parses cleanly and is not
    /// one the agent mounts; a claimed one is mounted by the agent, or malformed (then the
    /// agent, having claimed it, reports it).
    #[test]
    fn the_parser_agrees_with_the_table() {
        for (want, cmdline) in table() {
            match (want, BootConfig::parse(cmdline)) {
                ("ours", Ok(cfg)) => {
                    assert!(cfg.mounts_root(), "{cmdline:?}: claimed, but the parser's view is {cfg:?}")
                }
                ("ours", Err(_)) => {}
                (_, Ok(cfg)) => assert!(!cfg.mounts_root(), "{cmdline:?}: left alone, but the parser mounts it"),
                (_, Err(e)) => panic!("{cmdline:?}: left alone, but the parser refuses it: {e}"),
            }
        }
    }

    /// Every word of the two lists appears in the table, in each place it can stand, so the
    /// hooks (which ask the binary) and both views of the rule are held to the whole list.
    #[test]
    fn the_table_spells_every_word() {
        let cases = table();
        let has = |want: &str, cmdline: String| {
            assert!(cases.contains(&(want, cmdline.as_str())), "claims.table lacks the line: {want}\t{cmdline}");
        };
        for w in DHCP_WORDS {
            has("ours", format!("ip={w}"));
            has("ours", format!("ip=:::::eth0:{w}"));
        }
        for w in ZFS_AUTO_WORDS {
            for spelling in ["zfs=", "ZFS=", "root=zfs:", "root=ZFS="] {
                has("none", format!("{spelling}{w}"));
            }
        }
    }

    #[test]
    fn last_occurrence_wins_and_bare_words_are_y() {
        let p = Params::parse("root=/dev/sda1 quiet root=/dev/nfs");
        assert_eq!(p.get("root"), "/dev/nfs");
        assert_eq!(p.get("quiet"), "y");
        assert_eq!(p.get("nothing"), "");
        assert_eq!(Params::parse("zfs=tank/a ZFS=bootfs").last_of(&["zfs", "ZFS"]), "bootfs");
    }
}
