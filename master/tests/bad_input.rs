//! The built crctl on bad input: every bad argument (bytes that are not UTF-8 anywhere in argv,
//! control characters, missing or empty operands) and every bad inventory file (not UTF-8,
//! NUL bytes, huge lines, a device that never ends, a directory) gets one line on standard
//! error naming the culprit, and its documented exit status; never a panic.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crctl::cli::{EXIT_DONE, EXIT_FAILED, EXIT_USAGE};

const EXAMPLE: &str = include_str!("../../mkinitcpio/cluster");

/// A scratch directory of this test's own.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("crctl-bad-input-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What crctl did with `args`: its exit status and standard error.
struct Ran {
    status: i32,
    stderr: String,
}

fn crctl(args: &[&[u8]]) -> Ran {
    let args: Vec<OsString> = args.iter().map(|a| OsString::from_vec(a.to_vec())).collect();
    let out = Command::new(env!("CARGO_BIN_EXE_crctl")).args(&args).stdin(Stdio::null()).output().unwrap();
    let stderr = String::from_utf8(out.stderr).expect("crctl's messages are UTF-8");
    Ran { status: out.status.code().expect("crctl ended by a signal"), stderr }
}

/// Asserts that crctl refused `args` with `status` and one line starting with `want`.
fn refused(args: &[&[u8]], status: u8, want: &str) {
    let shown = args.iter().map(|a| a.escape_ascii().to_string()).collect::<Vec<_>>().join(" ");
    let ran = crctl(args);
    assert_eq!(ran.status, i32::from(status), "crctl {shown}: {}", ran.stderr);
    assert!(!ran.stderr.contains("panicked"), "crctl {shown} panicked: {}", ran.stderr);
    assert_eq!(ran.stderr.lines().count(), 1, "crctl {shown}: not one line: {:?}", ran.stderr);
    assert!(ran.stderr.starts_with(want), "crctl {shown}:\n got: {}want: {want}", ran.stderr);
}

fn path_bytes(p: &Path) -> Vec<u8> {
    p.as_os_str().as_encoded_bytes().to_vec()
}

#[test]
fn the_issue_s_command_line_is_refused_in_one_line() {
    // Issue 24: this panicked (std::env::args on an argument that is not UTF-8), exit 101.
    refused(
        &[b"node", b"add", b"n\xff", b"52:54:00:77:00:2f", b"-"],
        EXIT_USAGE,
        "crctl: argument 3, 'n\\xff', is not UTF-8; crctl takes its arguments as text (a path that is \
         not UTF-8 can be named through a symlink whose name is); see crctl help\n",
    );
}

#[test]
fn arguments_that_are_not_utf8_are_refused_wherever_they_are() {
    let dir = scratch("argv");
    let inv = dir.join("cluster");
    std::fs::write(&inv, EXAMPLE).unwrap();
    let f = path_bytes(&inv);
    let cases: [(&[&[u8]], &str); 9] = [
        (&[b"\xc3\x28"], "crctl: argument 1, '\\xc3(', is not UTF-8"),
        (&[b"-f", b"/tmp/\xff/cluster", b"node", b"list"], "crctl: argument 2, '/tmp/\\xff/cluster', is not UTF-8"),
        (&[b"-f", &f, b"sync", b"--root", b"/run/\xfe"], "crctl: argument 5, '/run/\\xfe', is not UTF-8"),
        (&[b"-f", &f, b"diff", b"node1", b"--state", b"/tmp/n\xe91"], "crctl: argument 6, '/tmp/n\\xe91'"),
        (&[b"-f", &f, b"render", b"node1", b"--root", b"\x80"], "crctl: argument 6, '\\x80', is not UTF-8"),
        (&[b"-f", &f, b"image", b"import", b"/srv/r\xf6\xf6t"], "crctl: argument 5, '/srv/r\\xf6\\xf6t'"),
        (&[b"-f", &f, b"image", b"edit", b"--", b"touch", b"/\xff"], "crctl: argument 7, '/\\xff', is not UTF-8"),
        (&[b"show", b"dnsmasq\xed\xa0\x80"], "crctl: argument 2, 'dnsmasq\\xed\\xa0\\x80', is not UTF-8"),
        (&[b"node", b"remove", b"\xff\n\x1b[2J"], "crctl: argument 3, '\\xff\\n\\u{1b}[2J', is not UTF-8"),
    ];
    for (args, want) in cases {
        refused(args, EXIT_USAGE, want);
    }
    // Nothing was written on the way.
    assert_eq!(std::fs::read_to_string(&inv).unwrap(), EXAMPLE);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn malformed_utf8_arguments_get_their_usage() {
    let cases: [(&[&[u8]], &str); 7] = [
        (&[b"node", b"add", b"n\nx", b"52:54:00:77:00:2f"], "crctl: 'n\\nx' is not a host name"),
        (&[b"node", b"add", b"n1"], "crctl: node add: MAC is missing (crctl node add NAME MAC [ADDRESS|-]"),
        (&[b"node", b"add", b"n1", b"52:54:00:77:00:2f", b"300.1.1.1"], "crctl: '300.1.1.1' is not an IPv4 address"),
        (&[b"-f"], "crctl: -f needs the inventory's file"),
        (&[b"-f", b"", b"node", b"list"], "crctl: -f names no path (an empty argument)"),
        (&[b"show"], "crctl: show: CONFIG is missing (crctl show CONFIG [--root DIR]); see crctl help show\n"),
        (&[b"image", b"default", b"\x1b]0;x\x07"], "crctl: '\\u{1b}]0;x\\u{7}' is not a version"),
    ];
    for (args, want) in cases {
        refused(args, EXIT_USAGE, want);
    }
}

#[test]
fn bad_inventory_files_are_named_with_their_line() {
    let dir = scratch("files");
    let huge_line = format!("{EXAMPLE}# {}\n", "x".repeat(100_000));
    // The example's node2 line, and the line after the example's last.
    let node2 = EXAMPLE.lines().position(|l| l.starts_with("node node2")).unwrap() + 1;
    let next = EXAMPLE.lines().count() + 1;
    let cases: [(&str, Vec<u8>, String); 6] = [
        (
            "nul",
            EXAMPLE.replace("node node2", "node n\u{f6}de2").replace('\u{f6}', "\u{0}").into_bytes(),
            format!("line {node2}: a control character (\\u{{0}}) at column 7"),
        ),
        (
            "not-utf8",
            [EXAMPLE.as_bytes(), b"node n\xf6de3 52:54:00:77:00:0d\n"].concat(),
            format!("line {next}: byte 0xf6 at column 7 is not UTF-8"),
        ),
        (
            "utf16",
            [&b"\xff\xfe"[..], &"network".encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<u8>>()].concat(),
            "line 1: byte 0xff at column 1 is not UTF-8".into(),
        ),
        (
            "escape",
            format!("{EXAMPLE}# \x1b[31mred\n").into_bytes(),
            format!("line {next}: a control character (\\u{{1b}}) at column 3"),
        ),
        (
            "huge-line",
            huge_line.into_bytes(),
            format!("line {next}: 100002 bytes long; an inventory line is at most 4096"),
        ),
        (
            "bom",
            format!("\u{feff}{EXAMPLE}").into_bytes(),
            "line 1: an invisible character (\\u{feff}) at column 1; a byte order mark".into(),
        ),
    ];
    for (name, bytes, want) in cases {
        let file = dir.join(name);
        std::fs::write(&file, &bytes).unwrap();
        let f = path_bytes(&file);
        for command in [&["node", "list"][..], &["show", "dnsmasq"], &["node", "remove", "node1"]] {
            let mut args: Vec<&[u8]> = vec![b"-f", &f];
            args.extend(command.iter().map(|w| w.as_bytes()));
            refused(&args, EXIT_FAILED, &format!("crctl: {want}"));
        }
        assert_eq!(std::fs::read(&file).unwrap(), bytes, "{name} was changed");
    }
    // Files that are no inventory at all.
    refused(&[b"-f", b"/dev/zero", b"node", b"list"], EXIT_FAILED, "crctl: the inventory /dev/zero is over 16 MiB");
    refused(&[b"-f", b"/", b"node", b"list"], EXIT_FAILED, "crctl: reading the inventory / failed: Is a directory");
    let missing = path_bytes(&dir.join("missing"));
    refused(&[b"-f", &missing, b"node", b"list"], EXIT_FAILED, "crctl: reading the inventory ");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_closed_output_is_not_a_panic() {
    // crctl help and a completion script into a pipe nobody reads, and an error onto one: each
    // ends with its status.
    for (args, status, to_stderr) in
        [(&["help"][..], EXIT_DONE, false), (&["completions", "bash"], EXIT_DONE, false), (&["frob"], EXIT_USAGE, true)]
    {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_crctl"));
        cmd.args(args).stdin(Stdio::null());
        if to_stderr {
            cmd.stdout(Stdio::null()).stderr(writer);
        } else {
            cmd.stdout(writer).stderr(Stdio::piped());
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(i32::from(status)), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}
