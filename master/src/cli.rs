//! The command line: parsed into a [`Command`] with no I/O, then run.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::inventory::{self, Draft, Inventory, InventoryError, Node};
use crate::place;
use crate::render;
use crate::sync::{self, Change, SyncError};

/// One command: its usage (the command's words, then its operands and options) and what it
/// does, as `crctl help` prints them. The man page's test compares its commands with these.
#[derive(Clone, Copy, Debug)]
pub struct CommandHelp {
    pub usage: &'static str,
    /// Lines of at most 75 columns; `{configs}` stands for [`CONFIGS`].
    pub about: &'static str,
}

impl CommandHelp {
    /// The command's words: `node add`, `image edit`.
    pub fn name(&self) -> String {
        let words = self.usage.split(' ').take_while(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()));
        words.collect::<Vec<_>>().join(" ")
    }
}

/// Every command, in the order `crctl help` lists them.
pub const COMMANDS: [CommandHelp; 19] = [
    CommandHelp {
        usage: "node add NAME MAC [ADDRESS|-] [GROUP,...] [--root DIR] [--into-image]",
        about: "\
add a node: NAME is its host name, MAC that of the NIC it boots from,
ADDRESS its fixed address in the cluster network (- or none: the DHCP
server's choice; such a node gets no node-files export)",
    },
    CommandHelp {
        usage: "node list",
        about: "\
the nodes: name, MAC, address, groups; the master marked",
    },
    CommandHelp {
        usage: "node remove NAME [--root DIR] [--into-image]",
        about: "\
remove a node (its node files stay; sync names them)",
    },
    CommandHelp {
        usage: "render NODE [--root DIR]",
        about: "\
the /etc NODE would boot with: each file its node files add to or
replace in the image's /etc (DIR/etc), and where it comes from (its
node-files directory, an archive, or the agent at boot: machine-id,
resolv.conf). The node files are applied by the agent's own code into a
private scratch directory; nothing on the master changes.",
    },
    CommandHelp {
        usage: "diff NODE [--state DIR] [--root DIR]",
        about: "\
what a reboot would change on NODE: the image version it booted against
the one it would boot now (the store's default, unless its command line
names a version), and each file its node files put in /etc at boot
against what they hold now (new, gone, changed: contents or mode). DIR is
a copy of NODE's boot record, /run/clusterroot (state and node-files, which
the agent writes at every boot): e.g.
  scp -r root@node1:/run/clusterroot /tmp/node1
  crctl diff node1 --state /tmp/node1
Default /run/clusterroot: this machine's own record (crctl diff on the
master for the master). Exit status 3 when a reboot would change something.",
    },
    CommandHelp {
        usage: "generalize [--dry-run] [--root DIR] [--into-image]",
        about: "\
make the master's installed system (DIR, the image: see above) the
cluster's image: move, never copy, the master's own files from DIR/etc
into its node files (fstab, zfs/zpool.cache, hostid, hostname,
machine-id, exports, dnsmasq.conf, network/interfaces, ssh/ssh_host_*,
NetworkManager/system-connections/*, network/interfaces.d/*,
systemd/network/*.network, systemd/network/*.netdev) and the enable links
of the master's services (nfs-server, nfsdcld, dnsmasq, lighttpd:
systemd's *.wants/ and *.requires/ links and aliases, runit's
runsvdir/default/ and /var/service/), so that no client starts them; then
write the clients' fstab (/tmp, /home from the master) and, where there
is one, network/interfaces (the loopback only). The node files' directory
becomes mode 0711, the master's 0700. A file already in the node files as
it is is only deleted from the image; one that differs stops it before
any change. --dry-run prints the steps and does nothing.",
    },
    CommandHelp {
        usage: "show CONFIG [--root DIR]",
        about: "\
print one rendered config, one of {configs}; site-dhcp with dhcp proxy only,
inventory the file as crctl would write it",
    },
    CommandHelp {
        usage: "sync [--dry-run] [--root DIR] [--into-image]",
        about: "\
write every rendered config where it belongs below DIR (the image: see
above; node files only onto the mounted node-files filesystem):
  <nodefiles>/<master MAC>/dnsmasq.conf, exports, nfs.conf,
    lighttpd/lighttpd.conf, fstab, and for its init (the inventory's
    init, else the image's): its cluster NIC's static addresses
    (systemd/network/10-clusterroot.network, runit's
    runit/core-services/60-clusterroot-net.sh) and its services
    enabled as links into the image (systemd:
    systemd/system/multi-user.target.wants/*.service, with an nfsdcld
    drop-in; runit: runit/runsvdir/default/*, sv/nfsdcld/run); with an
    image store, /run/rootfs made 0711 at boot, so that dnsmasq and
    lighttpd reach the default version's <tftp> below it
    (tmpfiles.d/clusterroot.conf; runit:
    runit/core-services/61-clusterroot-rootfs.sh)
  <nodefiles>/<MAC>/hostname and hosts for every node
  <nodefiles>/<MAC>/machine-id and ssh/ssh_host_{ed25519,ecdsa,rsa}_key
    for every node: made once when missing (ssh-keygen), then kept,
    so no two nodes share them
  <tftp>/boot.ipxe and pxelinux.cfg/default; with an image store, into
    its working copy, <images>/edit<tftp>, the next version, when there
    is one (the master serves the default version's <tftp>)
  site-dhcp-hosts.conf next to the inventory (dhcp proxy)
and print, for each, new, changed (what differs: +A -R lines, mode
0755 -> 0644, link target) or unchanged, and a note for a service the
image lacks. A new node's directory is made with mode 0700. Links are
written as links; nothing there is followed.
--dry-run prints the same and writes nothing. Running it twice changes
nothing the second time.",
    },
    CommandHelp {
        usage: "apply [--dry-run] [--root DIR] [--live DIR]",
        about: "\
make the running master match its node files now, not at its next boot:
lay DIR<nodefiles>/<master MAC>/ over the live /etc with the agent's own
code, as at boot (a file the node files no longer hold gets the image's
version back), then run what loads each file that changed: systemctl
daemon-reload (units, enable links, fstab), systemctl start for a newly
enabled unit, hostname, exportfs -ra (exports), networkctl reload
(systemd/network), chmod 0711 /run/rootfs (an image store's), a restart
of dnsmasq (dnsmasq.conf, hosts) or of lighttpd (lighttpd/), sv restart
under runit; what it leaves to the next
boot (nfs.conf, machine-id, ssh host keys) is noted. Each step is printed
before it runs; a command that fails is named and the others still run.
--dry-run prints the steps only. Refuses unless this is the master
booted through clusterroot with its node files (/run/clusterroot/state)
and the node-files filesystem is mounted. --live DIR: the running
system's root (default /), for tests.",
    },
    CommandHelp {
        usage: "image list",
        about: "\
the versions of the shared root in the image store: version, the default
marked, when it was made (UTC), the size of its squashfs file (MiB, - for
none), the nodes running it (the NFS server's clients by the version in
their NFSv4 identity, and the master by its /run/clusterroot/state); then
the working copy, nodes whose version is unknown, a default that names no
version, and a squashfs/default that names another file",
    },
    CommandHelp {
        usage: "image import DIR [--no-squashfs] [--dry-run]",
        about: "\
copy the root tree DIR (never moved: e.g. a plain /srv/nfs/root) into the
next version, with its squashfs file (see image squashfs) when the
image-mode is squashfs-nfs or squashfs-http, unless --no-squashfs; the
default if there is none yet",
    },
    CommandHelp {
        usage: "image edit [--dry-run] [-- CMD [ARG...]]",
        about: "\
make the working copy <store>/edit from the default version if there is
none (a copy, or a ZFS clone), then run CMD in it (default: $SHELL, or
/bin/sh) chrooted, with /proc, /sys, /dev and /dev/pts bound and a fresh
tmpfs (mode 0755, nosuid, nodev) on /run, in a mount namespace of its own
(the mounts end with it); a CMD that fails is exit 1",
    },
    CommandHelp {
        usage: "image publish [--no-default] [--no-squashfs] [--dry-run]",
        about: "\
the working copy becomes the next version, with its squashfs file (see
image squashfs) in a squashfs image-mode unless --no-squashfs, and the
default unless
--no-default; nodes boot it, with the kernel, initramfs and boot.ipxe of
its <tftp>, from their next boot on; a note names those it lacks",
    },
    CommandHelp {
        usage: "image discard [--dry-run]",
        about: "\
drop the working copy",
    },
    CommandHelp {
        usage: "image default VERSION [--dry-run]",
        about: "\
point default at VERSION atomically (also the rollback, of the kernel,
initramfs and boot.ipxe in its <tftp> too), and squashfs/default at its
squashfs file; running nodes keep theirs until they reboot",
    },
    CommandHelp {
        usage: "image gc [--dry-run]",
        about: "\
remove every version that no node runs and that is neither the default nor
the version before it; refuses, removing nothing, when it cannot tell what
every node runs (no /proc/fs/nfsd/clients, or a node booted without a
version); a client whose lease ran out (nfsd's courtesy clients: off or
cut off) counts as running nothing. The squashfs files of the versions it
removes go too, as do those of versions gone and leftover temporary ones",
    },
    CommandHelp {
        usage: "image squashfs [VERSION] [--dry-run]",
        about: "\
build the squashfs file of VERSION, or of every version, that lacks
one (import and publish build the new version's in a squashfs
image-mode): mksquashfs -comp zstd -Xcompression-level 3 -xattrs
into <store>/squashfs/<N>-<sha256>.squashfs, named by the SHA-256 of
its bytes and never rewritten; <store>/squashfs/default names the
default's. lighttpd serves them at /images/; they are in the store's
NFS export too. With <store>/squashfs/boot-order (the paths a boot
reads, one a line: README, The boot order), a new file lays them first,
in that order (mksquashfs -sort), and nodes reading it on NFS read them
ahead. Needs mksquashfs (Debian's squashfs-tools)",
    },
    CommandHelp {
        usage: "image export [--dry-run]",
        about: "\
a ZFS store's versions are datasets, which the store's export does not
reach: write an export line for each to
/etc/exports.d/clusterroot-images.exports, then run exportfs -ra. Run it
at the master's boot, before clients come; import, publish and gc on a
ZFS store run it themselves. A directory store needs no line.
Every image command takes --root DIR as sync does (the image: see
above): the store is DIR + the inventory's images PATH. A
store that is a ZFS dataset's mountpoint keeps each version as a child
dataset (edit is a clone: nothing is copied).",
    },
    CommandHelp {
        usage: "help",
        about: "\
this text",
    },
];

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

/// How wide `crctl help` is.
const WIDTH: usize = 92;

/// `text` wrapped to [`WIDTH`], its first line after `first` (padded to `indent` columns, or on
/// a line of its own when longer) and the others indented by `indent`.
fn hanging(out: &mut String, first: &str, text: &str, indent: usize) {
    let pad = " ".repeat(indent);
    let mut line = if first.len() + 2 <= indent { format!("{first:<indent$}") } else { format!("{first}\n{pad}") };
    let mut empty = true;
    for word in text.split_whitespace() {
        let col = line.rsplit('\n').next().map_or(0, str::len);
        if !empty && col + 1 + word.len() > WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line = pad.clone();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// `crctl help`: the commands, the inventory's lines and the exit statuses, from the tables
/// the parser and the man page's test read.
pub fn help() -> String {
    let mut out = String::from(
        "\
crctl: the clusterroot master's tool

usage: crctl [-f FILE] COMMAND [ARGS]

Where crctl acts: the image DIR (--root DIR) is /run/rootfs/lower on a master booted through
clusterroot, else / (the installed system before its first clusterroot boot). The node files
are below DIR on the node-files filesystem (LABEL=nodefiles), which must be mounted there:
sync, generalize and node add/remove refuse to write node files, or the inventory kept with
them, into the image itself, which every client reads; --into-image writes into DIR all the
same (a scratch tree).

The inventory (-f FILE, default DIR/srv/nfs/nodes/cluster: on the node-files filesystem, so
it survives reboots) is one plain file: the cluster's settings, then one line per node, the
master included. crctl changes it only through the commands below, checks it whole before
writing, and writes it whole (an error leaves it as it was). Every config the cluster needs
is rendered from it and never edited by hand. Arguments are UTF-8 text: a path that is not
can be named through a symlink whose name is (the trees crctl copies may hold any names).

Commands:
",
    );
    for c in &COMMANDS {
        if c.about.contains("{configs}") {
            // Wrapped here: the list is as long as the code makes it.
            let about = c.about.replace("{configs}", &CONFIGS.join(", "));
            hanging(&mut out, &format!("  {}", c.usage), &about, 17);
            continue;
        }
        // Pre-wrapped lines, kept as they are.
        let mut lines = c.about.lines();
        let first = lines.next().unwrap_or_default();
        if c.usage.len() <= 13 {
            let _ = writeln!(out, "  {:<13}  {first}", c.usage);
        } else {
            let _ = writeln!(out, "  {}\n{:17}{first}", c.usage, "");
        }
        for l in lines {
            let _ = writeln!(out, "{:17}{l}", "");
        }
    }
    out.push_str("\nInventory lines ('#' starts a comment; comments are kept):\n");
    for k in &inventory::KEYWORDS {
        let about = match k.default {
            Some(d) => format!("{} (default {d})", k.about),
            None => k.about.to_string(),
        };
        hanging(&mut out, &format!("  {} {}", k.key, k.args), &about, 27);
    }
    out.push_str("\nExit status:\n");
    for (code, when) in EXIT_STATUS {
        hanging(&mut out, &format!("  {code}"), when, 6);
    }
    out
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Help,
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

/// Why a command line is refused (exit status [`EXIT_USAGE`]).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    #[error(
        "argument {position}, '{}', is not UTF-8; crctl takes its arguments as text (a path that is \
         not UTF-8 can be named through a symlink whose name is)",
        shown_os(.arg)
    )]
    NotUtf8 { position: usize, arg: OsString },
    #[error("{0}")]
    Malformed(String),
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

/// Parses the arguments (after the program name), which may be any bytes. No I/O.
pub fn parse_os(args: &[OsString]) -> Result<Invocation, UsageError> {
    let mut text = Vec::with_capacity(args.len());
    for (i, arg) in args.iter().enumerate() {
        match arg.to_str() {
            Some(t) => text.push(t.to_string()),
            None => return Err(UsageError::NotUtf8 { position: i + 1, arg: arg.clone() }),
        }
    }
    parse(&text).map_err(UsageError::Malformed)
}

/// Parses the arguments (after the program name). No I/O.
pub fn parse(args: &[String]) -> Result<Invocation, String> {
    let mut inventory = None;
    let mut rest: Vec<&str> = args.iter().map(String::as_str).collect();
    match rest.as_slice() {
        ["-f"] => return Err("-f needs the inventory's file: crctl -f FILE COMMAND".into()),
        ["-f", file, more @ ..] => {
            inventory = Some(path("-f", "the inventory's file", Some(file))?);
            rest = more.to_vec();
        }
        _ => {}
    }
    let command = match rest.as_slice() {
        [] | ["help"] | ["-h"] | ["--help"] => Command::Help,
        ["node", "add", words @ ..] => {
            let (words, root, into_image) = node_options("node add", words)?;
            Command::NodeAdd { node: Node::parse(&words)?, root, into_image }
        }
        ["node", "list"] => Command::NodeList,
        ["node", "remove", words @ ..] => match node_options("node remove", words)? {
            (name, root, into_image) if name.len() == 1 => {
                Command::NodeRemove { name: name[0].to_string(), root, into_image }
            }
            _ => return Err(usage_of(&rest)),
        },
        ["show", config, opts @ ..] if CONFIGS.contains(config) => {
            let root = match opts {
                [] => None,
                ["--root", dir] => Some(path("show: --root", "a directory", Some(dir))?),
                _ => return Err(usage_of(&rest)),
            };
            Command::Show { name: config.to_string(), root }
        }
        ["show", other, ..] => return Err(format!("no config named '{other}' (want one of {})", CONFIGS.join(", "))),
        ["render", node, opts @ ..] => {
            let root = match opts {
                [] => None,
                ["--root", dir] => Some(path("render: --root", "a directory", Some(dir))?),
                _ => return Err(usage_of(&rest)),
            };
            Command::Render { node: node.to_string(), root }
        }
        ["diff", node, opts @ ..] => {
            let (mut root, mut state) = (None, PathBuf::from(crate::diff::RECORD_DIR));
            let mut it = opts.iter();
            while let Some(o) = it.next() {
                let mut given = || path(&format!("diff: {o}"), "a directory", it.next());
                match *o {
                    "--root" => root = Some(given()?),
                    "--state" => state = given()?,
                    _ => return Err(usage_of(&rest)),
                }
            }
            Command::Diff { node: node.to_string(), root, state }
        }
        ["sync", opts @ ..] => {
            let (dry_run, root, into_image) = writer_options("sync", opts)?;
            Command::Sync { dry_run, root, into_image }
        }
        ["apply", opts @ ..] => {
            let (mut dry_run, mut root, mut live) = (false, None, PathBuf::from("/"));
            let mut it = opts.iter();
            while let Some(o) = it.next() {
                match *o {
                    "--dry-run" | "-n" => dry_run = true,
                    "--root" => root = Some(path("apply: --root", "a directory", it.next())?),
                    "--live" => live = path("apply: --live", "a directory", it.next())?,
                    other => return Err(format!("apply: unknown option '{other}'")),
                }
            }
            Command::Apply { dry_run, root, live }
        }
        ["generalize", opts @ ..] => {
            let (dry_run, root, into_image) = writer_options("generalize", opts)?;
            Command::Generalize { dry_run, root, into_image }
        }
        ["image", words @ ..] => {
            let request = crate::image::parse(words)?;
            if request.root.as_ref().is_some_and(|r| r.as_os_str().is_empty()) {
                return Err("image: --root names no directory (an empty argument)".into());
            }
            Command::Image(request)
        }
        other => return Err(usage_of(other)),
    };
    Ok(Invocation { inventory, command })
}

/// The path an option names: `what` when it is missing, never empty (an empty path would
/// make every path below it relative to the working directory).
fn path(option: &str, what: &str, value: Option<&&str>) -> Result<PathBuf, String> {
    match value {
        None => Err(format!("{option} needs {what}")),
        Some(&"") => Err(format!("{option} names no path (an empty argument)")),
        Some(v) => Ok(PathBuf::from(v)),
    }
}

/// The message for words that fit no command's form: the usage of the command they start
/// with, or the commands that start with the same word.
fn usage_of(words: &[&str]) -> String {
    let starts = |c: &&CommandHelp| {
        let name = c.name();
        let name: Vec<&str> = name.split(' ').collect();
        words.starts_with(&name)
    };
    if let Some(c) = COMMANDS.iter().filter(starts).max_by_key(|c| c.name().len()) {
        return format!("{}: usage: crctl {}", c.name(), c.usage);
    }
    let first = words.first().copied().unwrap_or_default();
    let alike: Vec<String> = COMMANDS.iter().map(|c| c.name()).filter(|n| n.split(' ').next() == Some(first)).collect();
    if alike.is_empty() {
        format!("unknown command '{}'", words.join(" "))
    } else {
        format!("unknown command '{}' (want {})", words.join(" "), alike.join(", "))
    }
}

/// `[--dry-run|-n] [--root DIR] [--into-image]`.
fn writer_options(command: &str, opts: &[&str]) -> Result<(bool, Option<PathBuf>, bool), String> {
    let (mut dry_run, mut root, mut into_image) = (false, None, false);
    let mut it = opts.iter();
    while let Some(o) = it.next() {
        match *o {
            "--dry-run" | "-n" => dry_run = true,
            "--root" => root = Some(path(&format!("{command}: --root"), "a directory", it.next())?),
            place::INTO_IMAGE => into_image = true,
            other => return Err(format!("{command}: unknown option '{other}'")),
        }
    }
    Ok((dry_run, root, into_image))
}

/// `node add` and `node remove`: the words without `--root DIR` and `--into-image` (anywhere
/// among them), the root, and whether `--into-image` was given.
fn node_options<'a>(command: &str, words: &[&'a str]) -> Result<(Vec<&'a str>, Option<PathBuf>, bool), String> {
    let (mut rest, mut root, mut into_image) = (Vec::new(), None, false);
    let mut it = words.iter();
    while let Some(w) = it.next() {
        match *w {
            "--root" => root = Some(path(&format!("{command}: --root"), "a directory", it.next())?),
            place::INTO_IMAGE => into_image = true,
            w => rest.push(w),
        }
    }
    Ok((rest, root, into_image))
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
            say(&format!("crctl: {e}; see crctl help"));
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
    if inv.command == Command::Help {
        let _ = out.write_all(help().as_bytes());
        return Ok(Outcome::Done);
    }
    let (root, inventory) = (inv.root(), inv.inventory());
    let path = inventory.as_path();
    match &inv.command {
        Command::Help => {}
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
        assert_eq!(parse(&args("")).unwrap().command, Command::Help);
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
        assert_eq!(
            parse(&args("show bogus")).unwrap_err(),
            "no config named 'bogus' (want one of dnsmasq, exports, hosts, lighttpd, nfs, fstab, network, ipxe, pxelinux, site-dhcp, inventory)"
        );
        assert_eq!(
            parse(&args("node add n3 zz")).unwrap_err(),
            "'zz' is not a MAC address (expected six hex pairs such as 52:54:00:12:34:56)"
        );
        assert_eq!(parse(&args("frob")).unwrap_err(), "unknown command 'frob'");
    }

    #[test]
    fn a_malformed_command_line_is_named_with_its_fix() {
        for (line, want) in [
            ("-f", "-f needs the inventory's file: crctl -f FILE COMMAND"),
            ("node", "unknown command 'node' (want node add, node list, node remove)"),
            ("node frob", "unknown command 'node frob' (want node add, node list, node remove)"),
            ("node remove", "node remove: usage: crctl node remove NAME [--root DIR] [--into-image]"),
            ("node remove a b", "node remove: usage: crctl node remove NAME [--root DIR] [--into-image]"),
            ("node remove n3 --root", "node remove: --root needs a directory"),
            ("node add n3 52:54:00:77:00:0d --root", "node add: --root needs a directory"),
            ("node list x", "node list: usage: crctl node list"),
            ("show", "show: usage: crctl show CONFIG [--root DIR]"),
            ("show fstab --root", "show: usage: crctl show CONFIG [--root DIR]"),
            ("render", "render: usage: crctl render NODE [--root DIR]"),
            ("render n1 --state x", "render: usage: crctl render NODE [--root DIR]"),
            ("diff n1 --root", "diff: --root needs a directory"),
            ("diff n1 --frob x", "diff: usage: crctl diff NODE [--state DIR] [--root DIR]"),
            ("sync --root", "sync: --root needs a directory"),
            ("generalize -x", "generalize: unknown option '-x'"),
            ("apply --live", "apply: --live needs a directory"),
            ("apply now", "apply: unknown option 'now'"),
            ("help me", "help: usage: crctl help"),
            ("images", "unknown command 'images'"),
        ] {
            assert_eq!(parse(&args(line)).unwrap_err(), want, "{line}");
        }
        // Empty paths: every path below them would be relative to the working directory.
        for (line, want) in [
            (vec!["-f", "", "node", "list"], "-f names no path (an empty argument)"),
            (vec!["sync", "--root", ""], "sync: --root names no path (an empty argument)"),
            (vec!["node", "remove", "n3", "--root", ""], "node remove: --root names no path (an empty argument)"),
            (vec!["diff", "n1", "--state", ""], "diff: --state names no path (an empty argument)"),
            (vec!["image", "list", "--root", ""], "image: --root names no directory (an empty argument)"),
        ] {
            let line: Vec<String> = line.into_iter().map(String::from).collect();
            assert_eq!(parse(&line).unwrap_err(), want, "{line:?}");
        }
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
             UTF-8 can be named through a symlink whose name is)"
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

    #[test]
    fn help_names_every_command_config_keyword_and_status() {
        let help = help();
        for c in &COMMANDS {
            assert!(help.contains(&format!("\n  {}", c.usage)), "help lacks {}", c.usage);
            let wrapped_here = c.about.contains("{configs}");
            assert!(
                !c.name().is_empty() && (wrapped_here || c.about.lines().all(|l| l.len() <= WIDTH - 17)),
                "{}",
                c.usage
            );
        }
        let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains(&CONFIGS.join(", ")), "{help}");
        for k in &crate::inventory::KEYWORDS {
            assert!(help.contains(&format!("\n  {} {}", k.key, k.args)), "help lacks {}", k.key);
        }
        for (code, _) in EXIT_STATUS {
            assert!(help.contains(&format!("\n  {code}   ")), "help lacks {code}");
        }
        assert!(help.lines().all(|l| l.len() <= WIDTH), "{help}");
    }

    #[test]
    fn every_command_of_the_help_parses() {
        // One command line per command of the table: the parser knows them all.
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
            "help",
        ];
        assert_eq!(lines.len(), COMMANDS.len());
        for (line, c) in lines.iter().zip(&COMMANDS) {
            assert!(line.starts_with(&c.name()), "{line} is not {}", c.name());
            assert!(parse(&args(line)).is_ok(), "{line}");
        }
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
