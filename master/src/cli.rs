//! The command line: parsed into a [`Command`] with no I/O, then run.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use clap::error::ErrorKind;
use clap::FromArgMatches as _;

use crate::inventory::{Draft, Inventory, InventoryError, Node};
use crate::place;
use crate::render;
use crate::sync::{self, Change, SyncError};

mod args;
mod refusal;

pub use args::{command, Shell};

/// What `crctl show` prints: every config [`render::all`] and [`render::master::configs`] make,
/// and the inventory itself.
pub const CONFIGS: [&str; 11] = [
    "dnsmasq",
    "exports",
    "hosts",
    "lighttpd",
    "nfs",
    "fstab",
    "network",
    "ipxe",
    "pxelinux",
    "site-dhcp",
    "inventory",
];

/// The exit statuses, as `crctl help` and the man page list them.
pub const EXIT_DONE: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_CHANGES: u8 = 3;

/// Every exit status and when crctl ends with it.
pub const EXIT_STATUS: [(u8, &str); 4] = [
    (EXIT_DONE, "done (diff: a reboot changes nothing)"),
    (
        EXIT_FAILED,
        "the inventory or a config could not be read, checked or written, an image command \
         failed or refused, or image edit's CMD failed (the message names the line, file or \
         version and the fix)",
    ),
    (
        EXIT_USAGE,
        "a malformed command line: an unknown command or option, a missing or malformed \
         operand, or an argument that is not UTF-8",
    ),
    (EXIT_CHANGES, "diff: a reboot would change NODE"),
];

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// `help`, `--help`, `--version`, or no command: the text to print, as clap rendered it.
    Print(String),
    /// The completion script for a shell, made from [`command`].
    Completions(Shell),
    /// `root`: the image, whose node-files filesystem holds the inventory by default;
    /// `into_image`: write the inventory below an unmounted node-files directory all the same.
    NodeAdd {
        node: Node,
        root: Option<PathBuf>,
        into_image: bool,
    },
    NodeList,
    NodeRemove {
        name: String,
        root: Option<PathBuf>,
        into_image: bool,
    },
    /// `root`: the image the master's own configs (fstab, network) are rendered for.
    Show {
        name: String,
        root: Option<PathBuf>,
    },
    /// A `root` of None is [`place::default_root`], found when the command runs.
    Render {
        node: String,
        root: Option<PathBuf>,
    },
    Diff {
        node: String,
        root: Option<PathBuf>,
        state: PathBuf,
    },
    Generalize {
        dry_run: bool,
        root: Option<PathBuf>,
        into_image: bool,
    },
    Sync {
        dry_run: bool,
        root: Option<PathBuf>,
        into_image: bool,
    },
    Image(crate::image::Request),
    /// `live`: the running system's root (`/`; a scratch tree in tests).
    Apply {
        dry_run: bool,
        root: Option<PathBuf>,
        live: PathBuf,
    },
}

impl Command {
    /// The `--root` the command names, if any.
    fn root(&self) -> Option<&Path> {
        match self {
            Command::NodeAdd { root, .. }
            | Command::NodeRemove { root, .. }
            | Command::Render { root, .. }
            | Command::Show { root, .. }
            | Command::Diff { root, .. }
            | Command::Generalize { root, .. }
            | Command::Sync { root, .. }
            | Command::Apply { root, .. } => root.as_deref(),
            Command::Image(req) => req.root.as_deref(),
            _ => None,
        }
    }
}

/// The parsed command line: the inventory's path (None: [`place::default_inventory`] of the
/// command's root) and the command.
#[derive(Debug, PartialEq, Eq)]
pub struct Invocation {
    pub inventory: Option<PathBuf>,
    pub command: Command,
}

impl Invocation {
    /// The image the command acts on: its `--root`, else [`place::default_root`].
    pub fn root(&self) -> PathBuf {
        self.command.root().map_or_else(place::default_root, Path::to_path_buf)
    }

    /// The inventory's file: `-f`, else [`place::default_inventory`] of [`Self::root`].
    pub fn inventory(&self) -> PathBuf {
        self.inventory.clone().unwrap_or_else(|| place::default_inventory(&self.root()))
    }
}

/// Why a command line is refused (exit status [`EXIT_USAGE`]): one line, ending with the help
/// that shows the right form.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    #[error(
        "argument {position}, '{}', is not UTF-8; crctl takes its arguments as text (a path that is \
         not UTF-8 can be named through a symlink whose name is); see crctl help",
        shown_os(.arg)
    )]
    NotUtf8 { position: usize, arg: OsString },
    /// `command`: the words of the command whose help the message points to (`node add`; empty
    /// for crctl's own).
    #[error("{message}; see crctl help{}", if .command.is_empty() { String::new() } else { format!(" {}", .command) })]
    Malformed { command: String, message: String },
}

/// `text` with its control characters escaped (`\n`, `\u{1b}`), so that it prints as one line
/// and moves no terminal.
fn escape_controls(text: &str) -> String {
    text.chars().flat_map(|c| if c.is_control() { c.escape_default().collect() } else { vec![c] }).collect()
}

/// An argument as a message shows it: its UTF-8 as it is, other bytes as `\xff`, control
/// characters escaped, and cut after 80 characters.
fn shown_os(arg: &OsStr) -> String {
    let mut out = String::new();
    for chunk in arg.as_bytes().utf8_chunks() {
        out.push_str(&escape_controls(chunk.valid()));
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    match out.char_indices().nth(80) {
        Some((cut, _)) => format!("{}…", &out[..cut]),
        None => out,
    }
}

/// The words of every command, in the order `crctl help` lists them: `node add`, ..., `help`.
pub fn commands() -> Vec<String> {
    fn leaves(cmd: &clap::Command, words: &str, out: &mut Vec<String>) {
        for sc in cmd.get_subcommands() {
            let path = format!("{words} {}", sc.get_name()).trim_start().to_string();
            if sc.has_subcommands() && sc.get_name() != "help" {
                leaves(sc, &path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut cmd = command();
    cmd.build();
    let mut out = Vec::new();
    leaves(&cmd, "", &mut out);
    out
}

/// Parses the arguments (after the program name), which may be any bytes. No I/O.
pub fn parse_os(args: &[OsString]) -> Result<Invocation, UsageError> {
    let mut text = Vec::with_capacity(args.len());
    for (i, arg) in args.iter().enumerate() {
        match arg.to_str() {
            Some(t) => text.push(t.to_string()),
            None => return Err(UsageError::NotUtf8 { position: i + 1, arg: arg.clone() }),
        }
    }
    parse(&text)
}

/// Parses the arguments (after the program name) as [`args::command`] defines them, then
/// checks each operand into its type. No I/O.
pub fn parse(args: &[String]) -> Result<Invocation, UsageError> {
    let mut cmd = args::command();
    cmd.build();
    let argv = std::iter::once("crctl").chain(args.iter().map(String::as_str));
    let matches = match cmd.clone().try_get_matches_from(argv) {
        Ok(m) => m,
        // --help, help COMMAND, --version: their text, printed by run.
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            return Ok(Invocation { inventory: None, command: Command::Print(e.render().to_string()) });
        }
        Err(e) => return Err(refusal::refusal(&e, &cmd, args)),
    };
    let line = args::Line::from_arg_matches(&matches).map_err(|e| refusal::refusal(&e, &cmd, args))?;
    line.check()
}

#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error(transparent)]
    Preview(#[from] crate::preview::PreviewError),
    #[error(transparent)]
    Generalize(#[from] crate::generalize::GeneralizeError),
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error(transparent)]
    Diff(#[from] crate::diff::DiffError),
    #[error(transparent)]
    Place(#[from] place::PlaceError),
    #[error(transparent)]
    Apply(#[from] crate::apply::ApplyError),
}

/// Runs the command line; returns the exit status.
pub fn main(args: &[OsString]) -> u8 {
    let inv = match parse_os(args) {
        Ok(i) => i,
        Err(e) => {
            say(&format!("crctl: {e}"));
            return EXIT_USAGE;
        }
    };
    match run(&inv, &mut std::io::stdout().lock()) {
        Ok(Outcome::Done) => EXIT_DONE,
        Ok(Outcome::RebootChanges) => EXIT_CHANGES,
        Err(e) => {
            say(&format!("crctl: {e}"));
            EXIT_FAILED
        }
    }
}

/// Prints `message` on standard error as one line: a newline or an escape sequence from an
/// argument or a file name is shown escaped. A failed write (a closed pipe) is not reported.
fn say(message: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "{}", escape_controls(message));
}

/// How a command that did its work ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    /// `diff`: a reboot would change the node.
    RebootChanges,
}

fn run(inv: &Invocation, out: &mut dyn std::io::Write) -> Result<Outcome, RunError> {
    match &inv.command {
        Command::Print(text) => {
            let _ = out.write_all(text.as_bytes());
            return Ok(Outcome::Done);
        }
        Command::Completions(shell) => {
            // Made whole first: clap_complete's own writes panic on a closed pipe.
            let mut script = Vec::new();
            clap_complete::generate(shell.generator(), &mut command(), "crctl", &mut script);
            let _ = out.write_all(&script);
            return Ok(Outcome::Done);
        }
        _ => {}
    }
    let (root, inventory) = (inv.root(), inv.inventory());
    let path = inventory.as_path();
    match &inv.command {
        Command::Print(_) | Command::Completions(_) => {}
        Command::NodeAdd { node, into_image, .. } => {
            let new = Draft::load(path)?.with_node(node.clone())?;
            inventory_on_node_files(&new, &root, path, *into_image)?;
            new.store(path)?;
            let _ = writeln!(out, "added {} ({}); crctl sync renders the configs", node.name, node.mac);
        }
        Command::NodeRemove { name, into_image, .. } => {
            let new = Draft::load(path)?.without_node(name)?;
            inventory_on_node_files(&new, &root, path, *into_image)?;
            new.store(path)?;
            let _ = writeln!(out, "removed {name}; crctl sync renders the configs (its node files stay)");
        }
        Command::NodeList => list(&Draft::load(path)?, out),
        Command::Show { name, .. } => {
            let text = if name == "inventory" {
                Some(Draft::load(path)?.render())
            } else {
                let loaded = Inventory::load(path)?;
                let mut configs = render::all(&loaded);
                if ["fstab", "network"].contains(&name.as_str()) {
                    // The master's own files depend on the image (its init, its store).
                    configs = render::master::configs(&loaded, &sync::read_image(&loaded, &root));
                }
                configs.into_iter().find(|c| c.name == name).map(|c| c.text)
            };
            match (text, name.as_str()) {
                (Some(t), _) => {
                    let _ = out.write_all(t.as_bytes());
                }
                (None, "network") => {
                    let _ = writeln!(
                        out,
                        "# network: nothing to render (no init known in {}: name one with an init line)",
                        root.display()
                    );
                }
                (None, _) => {
                    let _ = writeln!(out, "# {name}: nothing to render (dhcp server: the master gives the addresses)");
                }
            }
        }
        Command::Render { node, .. } => {
            let p = crate::preview::preview(&Inventory::load(path)?, &root, node)?;
            let _ = write!(out, "{p}");
        }
        Command::Diff { node, state, .. } => {
            let d = crate::diff::diff(&Inventory::load(path)?, &root, node, state)?;
            let _ = write!(out, "{d}");
            if d.changes() {
                return Ok(Outcome::RebootChanges);
            }
        }
        Command::Generalize { dry_run, into_image, .. } => {
            let loaded = Inventory::load(path)?;
            place::check_node_files(&root, &loaded.settings.nodefiles, *into_image)?;
            // Plan: every step checked before the first change.
            let steps = crate::generalize::plan(&loaded, &root)?;
            for s in &steps {
                let _ = writeln!(out, "{s}");
            }
            if steps.is_empty() {
                let _ = writeln!(out, "nothing to do: {} is generalized", root.display());
            } else if *dry_run {
                let _ = writeln!(out, "(dry run: nothing changed)");
            } else {
                crate::generalize::execute(&steps)?;
            }
        }
        Command::Sync { dry_run, into_image, .. } => {
            let loaded = Inventory::load(path)?;
            place::check_node_files(&root, &loaded.settings.nodefiles, *into_image)?;
            sync_all(&loaded, path, &root, *dry_run, out)?
        }
        Command::Image(req) => {
            let req = crate::image::Request { root: Some(root), ..req.clone() };
            crate::image::run(&Inventory::load(path)?, &req, &crate::image::Host::default(), out)?
        }
        Command::Apply { dry_run, live, .. } => {
            // Each command that fails is said on its own line; the count ends the run.
            let mut failed = |m: &str| say(&format!("crctl: {m}"));
            let inv = Inventory::load(path)?;
            crate::apply::run(&inv, &root, live, *dry_run, &mut crate::apply::System, out, &mut failed)?
        }
    }
    Ok(Outcome::Done)
}

/// The mount check for an inventory kept on the node-files filesystem (its default place): a
/// write there with the filesystem unmounted would land in the image, hidden once it is
/// mounted. An inventory elsewhere (`-f`) is the admin's choice.
fn inventory_on_node_files(inv: &Draft, root: &Path, path: &Path, into_image: bool) -> Result<(), RunError> {
    let nodefiles = &inv.settings().nodefiles;
    if path.starts_with(place::under(root, nodefiles)) {
        place::check_node_files(root, nodefiles, into_image)?;
    }
    Ok(())
}

fn list(inv: &Draft, out: &mut dyn std::io::Write) {
    let _ = writeln!(out, "{:<12} {:<17} {:<15} groups", "name", "MAC", "address");
    for n in inv.nodes() {
        let address = n.address.map_or("-".to_string(), |a| a.to_string());
        let mut groups = n.groups.join(",");
        if n.name == inv.settings().master {
            groups = if groups.is_empty() { "(master)".into() } else { format!("{groups} (master)") };
        }
        let _ = writeln!(out, "{:<12} {:<17} {:<15} {}", n.name, n.mac.to_string(), address, groups);
    }
}

fn sync_all(
    inv: &Inventory,
    path: &Path,
    root: &Path,
    dry_run: bool,
    out: &mut dyn std::io::Write,
) -> Result<(), RunError> {
    // Plan: compare every target before writing any.
    let image = sync::read_image(inv, root);
    let planned = sync::plan(inv, root, path, &image);
    let mut plan = Vec::new();
    for t in &planned.targets {
        plan.push((t, sync::compare(t)?));
    }
    // Execute, saying what each file was.
    for (t, change) in plan {
        let _ = writeln!(out, "{:<24} {} ({})", change.to_string(), t.path.display(), t.what);
        if !dry_run && change != Change::Unchanged {
            sync::write(t)?;
        }
    }
    for n in &planned.notes {
        let _ = writeln!(out, "note: {n}");
    }
    // Node directories that belong to no node any more: named, left alone.
    let dir = root.join(inv.settings.nodefiles.trim_start_matches('/'));
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let known: Vec<String> = inv.nodes.iter().map(|n| n.mac.to_string()).collect();
        let mut stale: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.parse::<clusterroot::mac::MacAddress>().is_ok() && !known.contains(n))
            .collect();
        stale.sort();
        for s in stale {
            let _ = writeln!(out, "note: {} belongs to no node of the inventory (left alone)", dir.join(s).display());
        }
    }
    if dry_run {
        let _ = writeln!(out, "(dry run: nothing written)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    /// The one line a refused command line gets.
    fn refused(s: &str) -> String {
        parse(&args(s)).unwrap_err().to_string()
    }

    #[test]
    fn parses_commands() {
        let i = parse(&args("-f /tmp/c node add n3 52:54:00:77:00:0d 172.23.199.13 a,b")).unwrap();
        assert_eq!(i.inventory.as_deref(), Some(Path::new("/tmp/c")));
        assert!(
            matches!(i.command, Command::NodeAdd { ref node, root: None, into_image: false } if node.name == "n3" && node.groups == ["a", "b"])
        );
        assert_eq!(
            parse(&args("sync -n")).unwrap().command,
            Command::Sync { dry_run: true, root: None, into_image: false }
        );
        for line in ["", "help", "--help", "-f /c"] {
            let help = parse(&args(line)).unwrap().command;
            assert!(matches!(&help, Command::Print(text) if text.contains("\nCommands:\n")), "{line}: {help:?}");
        }
        assert_eq!(
            parse(&args("apply")).unwrap().command,
            Command::Apply { dry_run: false, root: None, live: "/".into() }
        );
        let i = parse(&args("apply --dry-run --root /r --live /l")).unwrap();
        assert_eq!(i.command, Command::Apply { dry_run: true, root: Some("/r".into()), live: "/l".into() });
        assert_eq!(i.inventory(), Path::new("/r/srv/nfs/nodes/cluster"));
        // --into-image: sync, generalize, node add and remove.
        assert_eq!(
            parse(&args("sync --into-image --root /s")).unwrap().command,
            Command::Sync { dry_run: false, root: Some("/s".into()), into_image: true }
        );
        assert_eq!(
            parse(&args("generalize --into-image")).unwrap().command,
            Command::Generalize { dry_run: false, root: None, into_image: true }
        );
        assert!(matches!(
            parse(&args("node add n3 52:54:00:77:00:0d --into-image")).unwrap().command,
            Command::NodeAdd { into_image: true, .. }
        ));
        assert_eq!(
            parse(&args("node remove n3 --into-image")).unwrap().command,
            Command::NodeRemove { name: "n3".into(), root: None, into_image: true }
        );
        // --root: node add and remove as sync; the inventory's default follows it.
        let i = parse(&args("node add n3 52:54:00:77:00:0d - --root /r --into-image")).unwrap();
        assert!(matches!(&i.command, Command::NodeAdd { node, root: Some(r), into_image: true }
            if r == Path::new("/r") && node.address.is_none()));
        assert_eq!((i.root(), i.inventory()), ("/r".into(), "/r/srv/nfs/nodes/cluster".into()));
        let i = parse(&args("node remove --root /r n3")).unwrap();
        assert_eq!(i.command, Command::NodeRemove { name: "n3".into(), root: Some("/r".into()), into_image: false });
        assert_eq!(i.inventory(), Path::new("/r/srv/nfs/nodes/cluster"));
        // The inventory's default follows the command's root.
        let i = parse(&args("render n1 --root /scratch")).unwrap();
        assert_eq!((i.root(), i.inventory()), ("/scratch".into(), "/scratch/srv/nfs/nodes/cluster".into()));
        let i = parse(&args("-f /c image list --root /r")).unwrap();
        assert_eq!((i.root(), i.inventory()), ("/r".into(), "/c".into()));
        // An option given twice counts once, the last value winning.
        assert_eq!(
            parse(&args("sync -n --dry-run --root /a --root /b")).unwrap().command,
            Command::Sync { dry_run: true, root: Some("/b".into()), into_image: false }
        );
        assert_eq!(parse(&args("completions zsh")).unwrap().command, Command::Completions(Shell::Zsh));
        assert_eq!(
            refused("show bogus"),
            "no config named 'bogus' (want one of dnsmasq, exports, hosts, lighttpd, nfs, fstab, network, ipxe, pxelinux, site-dhcp, inventory); see crctl help show"
        );
        assert_eq!(
            refused("node add n3 zz"),
            "'zz' is not a MAC address (expected six hex pairs such as 52:54:00:12:34:56); see crctl help node add"
        );
        assert_eq!(refused("frob"), "unknown command 'frob'; see crctl help");
    }

    #[test]
    fn a_malformed_command_line_is_named_with_its_fix() {
        let node_remove = "(crctl node remove NAME [--root DIR] [--into-image]); see crctl help node remove";
        for (line, want) in [
            ("-f", "-f needs the inventory's file; see crctl help".to_string()),
            ("node", "node needs a command: node add, node list, node remove; see crctl help node".into()),
            (
                "node frob",
                "unknown command 'node frob' (want node add, node list, node remove); see crctl help node".into(),
            ),
            ("node remove", format!("node remove: NAME is missing {node_remove}")),
            ("node remove a b", format!("node remove: unexpected 'b' {node_remove}")),
            ("node remove n3 --root", "node remove: --root needs a directory; see crctl help node remove".into()),
            (
                "node add n3 52:54:00:77:00:0d --root",
                "node add: --root needs a directory; see crctl help node add".into(),
            ),
            ("node list x", "node list: unexpected 'x' (crctl node list); see crctl help node list".into()),
            ("show", "show: CONFIG is missing (crctl show CONFIG [--root DIR]); see crctl help show".into()),
            ("show fstab --root", "show: --root needs a directory; see crctl help show".into()),
            ("render", "render: NODE is missing (crctl render NODE [--root DIR]); see crctl help render".into()),
            ("render n1 --state x", "render: unknown option '--state'; see crctl help render".into()),
            ("diff n1 --root", "diff: --root needs a directory; see crctl help diff".into()),
            ("diff n1 --frob x", "diff: unknown option '--frob'; see crctl help diff".into()),
            ("sync --root", "sync: --root needs a directory; see crctl help sync".into()),
            ("generalize -x", "generalize: unknown option '-x'; see crctl help generalize".into()),
            ("apply --live", "apply: --live needs a directory; see crctl help apply".into()),
            (
                "apply now",
                "apply: unexpected 'now' (crctl apply [--dry-run] [--root DIR] [--live DIR]); see crctl help apply"
                    .into(),
            ),
            ("help me", "unknown command 'me'; see crctl help".into()),
            (
                "help node frob",
                "unknown command 'node frob' (want node add, node list, node remove); see crctl help node".into(),
            ),
            ("images", "unknown command 'images'; see crctl help".into()),
            ("node list -f /c", "node list: unknown option '-f'; see crctl help node list".into()),
            (
                "completions tcsh",
                "no shell named 'tcsh' (want one of bash, zsh, fish); see crctl help completions".into(),
            ),
        ] {
            assert_eq!(refused(line), want, "{line}");
        }
        // Empty paths: every path below them would be relative to the working directory.
        for (line, want) in [
            (vec!["-f", "", "node", "list"], "-f names no path (an empty argument); see crctl help"),
            (vec!["sync", "--root", ""], "sync: --root names no path (an empty argument); see crctl help sync"),
            (
                vec!["node", "remove", "n3", "--root", ""],
                "node remove: --root names no path (an empty argument); see crctl help node remove",
            ),
            (vec!["diff", "n1", "--state", ""], "diff: --state names no path (an empty argument); see crctl help diff"),
            (
                vec!["image", "list", "--root", ""],
                "image list: --root names no path (an empty argument); see crctl help image list",
            ),
        ] {
            let line: Vec<String> = line.into_iter().map(String::from).collect();
            assert_eq!(parse(&line).unwrap_err().to_string(), want, "{line:?}");
        }
    }

    #[test]
    fn help_and_version_are_printed() {
        let print = |line: &str| match parse(&args(line)).unwrap().command {
            Command::Print(text) => text,
            other => panic!("{line}: {other:?}"),
        };
        assert_eq!(print("--version"), format!("crctl {}\n", env!("CARGO_PKG_VERSION")));
        assert_eq!(print("-V"), print("--version"));
        // help COMMAND and COMMAND --help: the command's whole text.
        for line in ["help node add", "node add --help"] {
            let help = print(line);
            assert!(help.starts_with("add a node: NAME is its host name"), "{line}: {help}");
            assert!(help.contains("--into-image"), "{line}: {help}");
        }
        assert!(print("image edit -h").contains("[-- <CMD>...]"), "{}", print("image edit -h"));
    }

    #[test]
    fn arguments_that_are_not_utf8_are_named() {
        use std::os::unix::ffi::OsStringExt;
        let os = |words: &[&[u8]]| words.iter().map(|w| OsString::from_vec(w.to_vec())).collect::<Vec<_>>();
        let e = parse_os(&os(&[b"node", b"add", b"n\xff", b"52:54:00:77:00:2f", b"-"])).unwrap_err();
        assert_eq!(e, UsageError::NotUtf8 { position: 3, arg: OsString::from_vec(b"n\xff".to_vec()) });
        assert_eq!(
            e.to_string(),
            "argument 3, 'n\\xff', is not UTF-8; crctl takes its arguments as text (a path that is not \
             UTF-8 can be named through a symlink whose name is); see crctl help"
        );
        let e = parse_os(&os(&[b"-f", b"/tmp/caf\xe9\n", b"node", b"list"])).unwrap_err().to_string();
        assert!(e.starts_with("argument 2, '/tmp/caf\\xe9\\n', is not UTF-8"), "{e}");
        let long = [b'x'; 200].iter().chain(b"\xff").copied().collect::<Vec<u8>>();
        let e = parse_os(&os(&[b"show", &long])).unwrap_err().to_string();
        assert!(e.starts_with(&format!("argument 2, '{}…', is not UTF-8", "x".repeat(80))), "{e}");
        assert_eq!(main(&os(&[b"sync", b"--root", b"/r\x80"])), EXIT_USAGE);
        // UTF-8 is taken as it is, and judged as the text it is.
        assert!(parse_os(&os(&["node add nœud 52:54:00:77:00:2f".as_bytes()])).is_err());
        let e = parse_os(&os(&[b"node", b"add", "nœud".as_bytes(), b"52:54:00:77:00:2f"])).unwrap_err().to_string();
        assert!(e.starts_with("'nœud' is not a host name"), "{e}");
    }

    /// `crctl help` and every command's, long (`--help`) and short (`-h`).
    fn helps() -> Vec<(String, String)> {
        let mut out = Vec::new();
        // `help` takes no options: its words name the command whose help it prints.
        for words in std::iter::once(String::new()).chain(commands().into_iter().filter(|c| c != "help")) {
            for flag in ["--help", "-h"] {
                let line = format!("{words} {flag}");
                match parse(&args(&line)).unwrap().command {
                    Command::Print(text) => out.push((line, text)),
                    other => panic!("{line}: {other:?}"),
                }
            }
        }
        out
    }

    #[test]
    fn help_names_every_command_config_keyword_and_status() {
        let help = match parse(&[]).unwrap().command {
            Command::Print(text) => text,
            other => panic!("{other:?}"),
        };
        for c in commands() {
            let first = c.split(' ').next().unwrap();
            assert!(help.contains(&format!("\n  {first} ")), "help lacks {first}");
        }
        for k in &crate::inventory::KEYWORDS {
            assert!(help.contains(&format!("\n  {} {}", k.key, k.args)), "help lacks {}", k.key);
        }
        for (code, _) in EXIT_STATUS {
            assert!(help.contains(&format!("\n  {code}   ")), "help lacks {code}");
        }
        let show = helps().into_iter().find(|(line, _)| line == "show --help").unwrap().1;
        let flat = show.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains(&CONFIGS.join(", ")), "{show}");
        for (line, text) in helps() {
            assert!(
                text.lines().all(|l| l.len() <= args::WIDTH),
                "crctl {line} is wider than {}:\n{text}",
                args::WIDTH
            );
        }
    }

    #[test]
    fn every_command_parses() {
        // One command line per command: the parser knows them all, and they are these.
        let lines = [
            "node add n3 52:54:00:77:00:0d",
            "node list",
            "node remove n3",
            "render n1",
            "diff n1",
            "generalize",
            "show dnsmasq",
            "sync",
            "apply",
            "image list",
            "image import /srv/nfs/root",
            "image edit",
            "image publish",
            "image discard",
            "image default 2",
            "image gc",
            "image squashfs",
            "image export",
            "completions bash",
            "help",
        ];
        let names = commands();
        assert_eq!(lines.len(), names.len(), "{names:?}");
        for (line, name) in lines.iter().zip(&names) {
            assert!(line.starts_with(name.as_str()), "{line} is not {name}");
            assert!(parse(&args(line)).is_ok(), "{line}");
        }
        assert_eq!(place::INTO_IMAGE, "--into-image");
        assert!(helps().iter().any(|(_, text)| text.contains(place::INTO_IMAGE)));
    }

    #[test]
    fn show_offers_every_rendered_config() {
        let inv = crate::render::example::proxy();
        let mut names: Vec<&str> = crate::render::all(&inv).iter().map(|c| c.name).collect();
        let image = crate::render::master::Image { init: Some(crate::services::Init::Runit), ..Default::default() };
        let master: Vec<&str> = crate::render::master::configs(&inv, &image).iter().map(|c| c.name).collect();
        names.extend(master);
        names.push("inventory");
        names.sort();
        let mut configs = CONFIGS.to_vec();
        configs.sort();
        assert_eq!(names, configs);
    }

    #[test]
    fn the_inventory_on_the_node_files_is_written_only_there() {
        let root = std::env::temp_dir().join(format!("crctl-cli-mount-{}", std::process::id()));
        let nodes = root.join("srv/nfs/nodes");
        std::fs::create_dir_all(&nodes).unwrap();
        let draft = Draft::parse(crate::render::example::CLUSTER).unwrap();
        // Below <root><nodefiles>, not a mount point: refused, unless --into-image.
        let e = inventory_on_node_files(&draft, &root, &nodes.join("cluster"), false).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}/srv/nfs/nodes is not mounted: ", root.display())), "{e}");
        assert!(inventory_on_node_files(&draft, &root, &nodes.join("cluster"), true).is_ok());
        // Elsewhere (-f): the admin's choice.
        assert!(inventory_on_node_files(&draft, &root, &root.join("cluster"), false).is_ok());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_refused_change_leaves_the_file_as_it_was() {
        let dir = std::env::temp_dir().join(format!("crctl-cli-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("cluster");
        std::fs::write(&file, crate::render::example::CLUSTER).unwrap();
        let f = file.display().to_string();
        let mut out = Vec::new();
        // Duplicate MAC, duplicate address, malformed MAC: an error naming it, the file unchanged.
        for (cmd, want) in [
            ("node add node9 52:54:00:77:00:0b 172.23.199.19", "MAC 52:54:00:77:00:0b belongs to both node1 and node9"),
            ("node add node9 52:54:00:77:00:19 172.23.199.11", "address 172.23.199.11 belongs to both node1 and node9"),
            ("node remove master", "the master master cannot be removed"),
        ] {
            let inv = parse(&args(&format!("-f {f} {cmd}"))).unwrap();
            let e = run(&inv, &mut out).unwrap_err().to_string();
            assert!(e.starts_with(want), "{e}");
            assert_eq!(std::fs::read_to_string(&file).unwrap(), crate::render::example::CLUSTER);
        }
        let argv: Vec<OsString> =
            args(&format!("-f {f} node add node9 52:54:00:77:00")).into_iter().map(OsString::from).collect();
        assert_eq!(main(&argv), EXIT_USAGE);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), crate::render::example::CLUSTER);
        // Accepted: the new line at the end, the rest as it was.
        run(&parse(&args(&format!("-f {f} node add node3 52:54:00:77:00:0d 172.23.199.13"))).unwrap(), &mut out)
            .unwrap();
        let now = std::fs::read_to_string(&file).unwrap();
        assert_eq!(
            now,
            format!("{}node node3      52:54:00:77:00:0d 172.23.199.13\n", crate::render::example::CLUSTER)
        );
        let mut listed = Vec::new();
        run(&parse(&args(&format!("-f {f} node list"))).unwrap(), &mut listed).unwrap();
        let listed = String::from_utf8(listed).unwrap();
        assert!(listed.contains("master       52:54:00:77:00:e1 172.23.199.225  (master)\n"), "{listed}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
