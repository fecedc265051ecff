//! Whole command lines through the dispatch, and the helpers the grammars' tests share.

use super::*;
use crate::lower::nfs::NfsVersion;

/// Every parameter of the list is one the parser takes (none is refused as unknown), and an
/// unknown `clusterroot.*` is refused with the whole list of ours.
#[test]
fn parameters_lists_what_the_parser_reads() {
    for key in PARAMETERS {
        for word in [key.to_string(), format!("{key}=x")] {
            let got = BootConfig::parse(&word);
            assert!(!matches!(got, Err(CmdlineError::Unknown { .. })), "{word}: {got:?}");
        }
    }
    let err = BootConfig::parse("clusterroot.verbose").unwrap_err().to_string();
    assert!(err.contains("clusterroot.image=, clusterroot.timeout=, clusterroot.debug="), "{err}");
}

pub(super) fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn seed_command_line() {
    let c = BootConfig::parse(
        "BOOT_IMAGE=vmlinuz ip=:::::eth0:dhcp nfsroot=172.23.199.225:/root,ro,nfsvers=4,retrans=10,rsize=32768,wsize=32768 quiet",
    )
    .unwrap();
    let n = c.nfsroot.as_ref().unwrap();
    assert_eq!(n.server, Some(ip("172.23.199.225")));
    assert_eq!(n.path, "/root");
    assert_eq!(n.version, NfsVersion::V4Any);
    let keys: Vec<_> = n.options.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["retrans", "rsize", "wsize"]);
    assert_eq!(c.ip, IpConfig::Dhcp { device: Some("eth0".into()), server: None, hostname: None });
    assert!(c.wants_nfs());
    assert_eq!(c.mode, Mode::Overlay);
}

#[test]
fn clusterroot_settings() {
    let c = BootConfig::parse(
        "root=/dev/nfs clusterroot=off clusterroot.size=2G clusterroot.overlays=/etc//nodes/./ clusterroot.timeout=15 clusterroot.debug BOOTIF=01-52-54-00-77-00-0b nfs.nfs4_unique_id=abc",
    )
    .unwrap();
    assert!(c.wants_nfs());
    assert_eq!(c.nfsroot, None);
    assert_eq!(c.mode, Mode::Plain);
    assert_eq!(c.size.as_deref(), Some("2G"));
    assert_eq!(c.overlays, "/etc/nodes");
    assert_eq!(c.timeout, Duration::from_secs(15));
    assert!(c.debug);
    assert_eq!(c.bootif.unwrap().to_string(), "52:54:00:77:00:0b");
    assert_eq!(c.nfs4_unique_id.as_deref(), Some("abc"));
}

#[test]
fn arp_probe_is_on_unless_turned_off() {
    assert!(BootConfig::parse("ip=dhcp").unwrap().arp_probe);
    assert!(!BootConfig::parse("ip=dhcp clusterroot.arp_probe=0").unwrap().arp_probe);
    assert!(!BootConfig::parse("clusterroot.arp_probe=off").unwrap().arp_probe);
    assert!(BootConfig::parse("clusterroot.arp_probe=0 clusterroot.arp_probe").unwrap().arp_probe, "the last wins");
}

#[test]
fn clusterroot_errors() {
    let cases = [
        ("clusterroot=maybe", "clusterroot=maybe: "),
        ("clusterroot.size=lots", "clusterroot.size=lots: "),
        ("clusterroot.size=10MB", "clusterroot.size=10MB: "),
        ("clusterroot.overlays=etc/overlays", "clusterroot.overlays=etc/overlays: "),
        ("clusterroot.overlays=/etc/../x", "clusterroot.overlays=/etc/../x: "),
        ("clusterroot.timeout=0", "clusterroot.timeout=0: "),
        ("clusterroot.timeout=ten", "clusterroot.timeout=ten: "),
        ("clusterroot.arp_probe=maybe", "clusterroot.arp_probe=maybe: "),
        ("clusterroot.sise=1G", "unknown parameter clusterroot.sise"),
        ("BOOTIF=01-52-54", "BOOTIF=01-52-54: "),
    ];
    for (line, want) in cases {
        let err = BootConfig::parse(line).unwrap_err().to_string();
        assert!(err.starts_with(want), "{line}: {err}");
    }
}

/// The message for `line`, which must be a `BadParam` for `param`.
pub(super) fn bad_param(line: &[u8], param: &str) -> String {
    match BootConfig::parse_bytes(line) {
        Err(e @ CmdlineError::BadParam { .. }) => {
            let msg = e.to_string();
            assert!(msg.starts_with(&format!("{param}: ")), "{}: {msg}", String::from_utf8_lossy(line));
            assert_eq!(msg.lines().count(), 1, "{msg}");
            msg
        }
        other => panic!("{}: expected BadParam, got {other:?}", String::from_utf8_lossy(line)),
    }
}

#[test]
fn bytes_that_are_not_utf8() {
    // Someone else's word: ignored, wherever the byte is.
    for line in [
        &b"console=tty\xff0 nfsroot=10.0.0.1:/r"[..],
        b"nfsroot=10.0.0.1:/r \xff",
        b"nfsroot=10.0.0.1:/r \xff\xfe=x",
        b"nfsroot=10.0.0.1:/r \"quiet=\xc3 \"",
        b"\xffnfsroot=bad nfsroot=10.0.0.1:/r",
        b"nfsroot=10.0.0.1:/r -- nfsroot=\xff",
        b"ro=1 nfsroot=10.0.0.1:/r rootwait=\xc3(",
    ] {
        let c = BootConfig::parse_bytes(line).unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(line)));
        assert_eq!(c.nfsroot.unwrap().path, "/r");
    }
    // Ours: an error naming the key, whatever the parameter would have meant.
    let ours = PARAMETERS.iter().copied().chain(["clusterroot.sise"]);
    for key in ours {
        for line in [format!("{key}=\u{1}/x").into_bytes(), format!("console=ttyS0 {key}=a\u{1} quiet").into_bytes()] {
            let line: Vec<u8> = line.iter().map(|&b| if b == 1 { 0xff } else { b }).collect();
            let msg = bad_param(&line, key);
            assert!(msg.contains("not UTF-8"), "{msg}");
        }
    }
    let msg = bad_param(b"clusterroot.\xff=1", "clusterroot.\u{fffd}");
    assert!(msg.contains("not UTF-8"), "{msg}");
    assert_eq!(
        split_words_bytes(b" a=\"x\xff y\"  \xc3\xa9\xc3 b -- c=\xff"),
        [&b"a=x\xff y"[..], b"\xc3\xa9\xc3", b"b"]
    );
    // Text splits as before, including at Unicode spaces.
    assert_eq!(split_words("a\u{a0}b=\"c\u{2003}d\""), ["a", "b=c\u{2003}d"]);
}

#[test]
fn server_falls_back_to_ip_field() {
    let c = BootConfig::parse("nfsroot=/srv/root ip=10.0.0.5:10.0.0.1::255.255.255.0::eth0:off").unwrap();
    assert_eq!(c.nfs_server(), Some(ip("10.0.0.1")));
}

/// Arbitrary bytes never panic the parser (a cheap stand-in for the fuzz target).
#[test]
fn never_panics_on_noise() {
    let alphabet: &[&[u8]] = &[
        b"ip=",
        b"nfsroot=",
        b":",
        b",",
        b"=",
        b"\"",
        b" ",
        b"1",
        b"255.",
        b"/",
        b"vers=",
        b"4.",
        b"BOOTIF=",
        b"01-",
        b"clusterroot.",
        b"size=",
        b"overlays=",
        b"nodefiles=",
        b"zfs:",
        b"LABEL=",
        b"/dev/",
        b"/etc",
        b"..",
        b"%",
        b"G",
        b"999999999",
        b"-",
        b"x",
        b"\xff",
        b"\xc3",
        b"\xe2\x80",
    ];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..40_000 {
        let mut s = Vec::new();
        for _ in 0..(state % 12) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            s.extend_from_slice(alphabet[(state % alphabet.len() as u64) as usize]);
        }
        let _ = BootConfig::parse_bytes(&s);
    }
}
