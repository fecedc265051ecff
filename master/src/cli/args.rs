//! The command line as clap reads it: every command, operand and option with its help (the one
//! source of `crctl help`, the completions and the man page's test), and its conversion into a
//! checked [`Invocation`].

use std::path::PathBuf;

use clap::{Args, CommandFactory as _, Parser, Subcommand, ValueEnum};

use super::{Command, Invocation, UsageError, CONFIGS, EXIT_STATUS};
use crate::inventory::{self, Node};

/// `crctl`'s own help: what it is, where it acts, and the inventory.
const ABOUT: &str = "\
the clusterroot master's tool: the node inventory and every config rendered from it

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
crctl help COMMAND (or crctl COMMAND --help) says what a command does.";

const NODE_ADD: &str = "\
add a node: NAME is its host name, MAC that of the NIC it boots from,
ADDRESS its fixed address in the cluster network (- or none: the DHCP
server's choice; such a node gets no node-files export), GROUP,... the
groups it is in (replica lines name them)";

const RENDER: &str = "\
the /etc NODE would boot with: each file its node files add to or
replace in the image's /etc (DIR/etc), and where it comes from (its
node-files directory, an archive, or the agent at boot: machine-id,
resolv.conf). The node files are applied by the agent's own code into a
private scratch directory; nothing on the master changes.";

const DIFF: &str = "\
what a reboot would change on NODE: the image version it booted against
the one it would boot now (the store's default, unless its command line
names a version), and each file its node files put in /etc at boot
against what they hold now (new, gone, changed: contents or mode). DIR is
a copy of NODE's boot record, /run/clusterroot (state and node-files, which
the agent writes at every boot): e.g.
  scp -r root@node1:/run/clusterroot /tmp/node1
  crctl diff node1 --state /tmp/node1
Default /run/clusterroot: this machine's own record (crctl diff on the
master for the master). Exit status 3 when a reboot would change something.";

const GENERALIZE: &str = "\
make the master's installed system (DIR, the image: see crctl help) the
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
any change. --dry-run prints the steps and does nothing.";

const SYNC: &str = "\
write every rendered config where it belongs below DIR (the image: see
crctl help; node files only onto the mounted node-files filesystem):
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
nothing the second time.";

const APPLY: &str = "\
make the running master match its node files now, not at its next boot:
lay DIR<nodefiles>/<master MAC>/ over the live /etc with the agent's own
code, as at boot (a file the node files no longer hold gets the image's
version back), then run what loads each file that changed: systemctl
daemon-reload (units, enable links, fstab), systemctl start for a newly
enabled unit, hostname, exportfs -ra (exports), networkctl reload
(systemd/network), chmod 0711 /run/rootfs (an image store's), a restart
of dnsmasq (dnsmasq.conf, hosts) or of lighttpd (lighttpd/), sv restart
under runit; what it leaves to the next boot (nfs.conf, machine-id, ssh
host keys) is noted. Each step is printed before it runs; a command that
fails is named and the others still run. --dry-run prints the steps
only. Refuses unless this is the master booted through clusterroot with
its node files (/run/clusterroot/state) and the node-files filesystem is
mounted. --live DIR: the running system's root (default /), for tests.";

const IMAGE: &str = "\
versions of the shared root in the image store, published whole, booted
by name through the store's default symlink, edited in a working copy,
and collected when no node runs them. Every image command takes --root
DIR as sync does (the image: see crctl help): the store is DIR + the
inventory's images PATH. A store that is a ZFS dataset's mountpoint
keeps each version as a child dataset (edit is a clone: nothing is
copied).";

const IMAGE_LIST: &str = "\
the versions of the shared root in the image store: version, the default
marked, when it was made (UTC), the size of its squashfs file (MiB, - for
none), the nodes running it (the NFS server's clients by the version in
their NFSv4 identity, and the master by its /run/clusterroot/state); then
the working copy, nodes whose version is unknown, a default that names no
version, and a squashfs/default that names another file";

const IMAGE_IMPORT: &str = "\
copy the root tree DIR (never moved: e.g. a plain /srv/nfs/root) into the
next version, with its squashfs file (see crctl help image squashfs) when
the image-mode is squashfs-nfs or squashfs-http, unless --no-squashfs;
the default if there is none yet";

const IMAGE_EDIT: &str = "\
make the working copy <store>/edit from the default version if there is
none (a copy, or a ZFS clone), then run CMD in it (default: $SHELL, or
/bin/sh) chrooted, with /proc, /sys, /dev and /dev/pts bound and a fresh
tmpfs (mode 0755, nosuid, nodev) on /run, in a mount namespace of its own
(the mounts end with it); a CMD that fails is exit 1";

const IMAGE_PUBLISH: &str = "\
the working copy becomes the next version, with its squashfs file (see
crctl help image squashfs) in a squashfs image-mode unless --no-squashfs,
and the default unless --no-default; nodes boot it, with the kernel,
initramfs and boot.ipxe of its <tftp>, from their next boot on; a note
names those it lacks";

const IMAGE_DEFAULT: &str = "\
point default at VERSION atomically (also the rollback, of the kernel,
initramfs and boot.ipxe in its <tftp> too), and squashfs/default at its
squashfs file; running nodes keep theirs until they reboot";

const IMAGE_GC: &str = "\
remove every version that no node runs and that is neither the default nor
the version before it; refuses, removing nothing, when it cannot tell what
every node runs (no /proc/fs/nfsd/clients, or a node booted without a
version); a client whose lease ran out (nfsd's courtesy clients: off or
cut off) counts as running nothing. The squashfs files of the versions it
removes go too, as do those of versions gone and leftover temporary ones";

const IMAGE_SQUASHFS: &str = "\
build the squashfs file of VERSION, or of every version, that lacks
one (import and publish build the new version's in a squashfs
image-mode): mksquashfs -comp zstd -Xcompression-level 3 -xattrs
into <store>/squashfs/<N>-<sha256>.squashfs, named by the SHA-256 of
its bytes and never rewritten; <store>/squashfs/default names the
default's. lighttpd serves them at /images/; they are in the store's
NFS export too. With <store>/squashfs/boot-order (the paths a boot
reads, one a line: README, The boot order), a new file lays them first,
in that order (mksquashfs -sort), and nodes reading it on NFS read them
ahead. Needs mksquashfs (Debian's squashfs-tools)";

const IMAGE_EXPORT: &str = "\
a ZFS store's versions are datasets, which the store's export does not
reach: write an export line for each to
/etc/exports.d/clusterroot-images.exports, then run exportfs -ra. Run it
at the master's boot, before clients come; import, publish and gc on a
ZFS store run it themselves. A directory store needs no line.";

const COMPLETIONS: &str = "\
print crctl's completion script for SHELL (bash, zsh or fish), made from
the same definitions as the parser, e.g.
  crctl completions bash > /usr/share/bash-completion/completions/crctl
  crctl completions zsh > /usr/local/share/zsh/site-functions/_crctl
  crctl completions fish > /usr/share/fish/vendor_completions.d/crctl.fish";

/// How wide `crctl help`'s own tables are.
pub(super) const WIDTH: usize = 92;

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

/// The end of `crctl help`: the inventory's lines and the exit statuses, from the tables the
/// parser and the man page's test read.
fn reference() -> String {
    let mut out = String::from("Inventory lines ('#' starts a comment; comments are kept):\n");
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

/// `crctl show`'s help: the configs it prints, wrapped here (the list is as long as the code
/// makes it).
fn show_about() -> String {
    let mut out = String::new();
    let text = format!(
        "print one rendered config, one of {}; site-dhcp with dhcp proxy only, inventory the file as \
         crctl would write it",
        CONFIGS.join(", ")
    );
    hanging(&mut out, "", &text, 0);
    out.trim_end().to_string()
}

/// `crctl [-f FILE] COMMAND ...`.
#[derive(Debug, Parser)]
#[command(name = "crctl", version = env!("CARGO_PKG_VERSION"), about = ABOUT.lines().next(), long_about = ABOUT)]
#[command(after_long_help = reference())]
pub struct Line {
    /// The inventory (default DIR/srv/nfs/nodes/cluster, DIR the command's --root)
    #[arg(short = 'f', value_name = "FILE", allow_hyphen_values = true)]
    inventory: Option<String>,
    #[command(subcommand)]
    command: Option<Top>,
}

#[derive(Debug, Subcommand)]
enum Top {
    /// The inventory's nodes: add, list, remove
    #[command(subcommand)]
    Node(NodeCommand),
    #[command(about = "The /etc NODE would boot with, and where each file comes from", long_about = RENDER)]
    Render {
        /// A node of the inventory
        #[arg(value_name = "NODE")]
        node: String,
        #[command(flatten)]
        root: RootDir,
    },
    #[command(about = "What a reboot would change on NODE (exit status 3 when something)", long_about = DIFF)]
    Diff {
        /// A node of the inventory
        #[arg(value_name = "NODE")]
        node: String,
        /// A copy of NODE's boot record (default /run/clusterroot, this machine's)
        #[arg(long, value_name = "DIR", allow_hyphen_values = true)]
        state: Option<String>,
        #[command(flatten)]
        root: RootDir,
    },
    #[command(about = "Make the master's installed system the cluster's image", long_about = GENERALIZE)]
    Generalize {
        #[command(flatten)]
        dry_run: DryRun,
        #[command(flatten)]
        root: RootDir,
        #[command(flatten)]
        into_image: IntoImage,
    },
    #[command(about = "Print one rendered config, or the inventory", long_about = show_about())]
    Show {
        /// The config (crctl help show lists them)
        #[arg(value_name = "CONFIG", value_parser = CONFIGS, hide_possible_values = true)]
        config: String,
        #[command(flatten)]
        root: RootDir,
    },
    #[command(about = "Write every rendered config where it belongs", long_about = SYNC)]
    Sync {
        #[command(flatten)]
        dry_run: DryRun,
        #[command(flatten)]
        root: RootDir,
        #[command(flatten)]
        into_image: IntoImage,
    },
    #[command(about = "Make the running master match its node files now", long_about = APPLY)]
    Apply {
        #[command(flatten)]
        dry_run: DryRun,
        #[command(flatten)]
        root: RootDir,
        /// The running system's root (default /), for tests
        #[arg(long, value_name = "DIR", allow_hyphen_values = true)]
        live: Option<String>,
    },
    #[command(subcommand, about = "Versions of the shared root in the image store", long_about = IMAGE)]
    Image(ImageCommand),
    #[command(about = "Print crctl's completion script for SHELL", long_about = COMPLETIONS)]
    Completions {
        /// The shell the script is for
        #[arg(value_name = "SHELL", value_enum)]
        shell: Shell,
    },
}

#[derive(Debug, Subcommand)]
enum NodeCommand {
    #[command(about = "Add a node", long_about = NODE_ADD)]
    Add {
        /// Its host name
        #[arg(value_name = "NAME")]
        name: String,
        /// The MAC address of the NIC it boots from
        #[arg(value_name = "MAC")]
        mac: String,
        /// Its fixed address in the cluster network (-: the DHCP server's choice)
        #[arg(value_name = "ADDRESS|-")]
        address: Option<String>,
        /// The groups it is in, separated by commas
        #[arg(value_name = "GROUP,...")]
        groups: Option<String>,
        #[command(flatten)]
        root: RootDir,
        #[command(flatten)]
        into_image: IntoImage,
    },
    /// The nodes: name, MAC, address, groups; the master marked
    List,
    /// Remove a node (its node files stay; sync names them)
    Remove {
        /// The node's name
        #[arg(value_name = "NAME")]
        name: String,
        #[command(flatten)]
        root: RootDir,
        #[command(flatten)]
        into_image: IntoImage,
    },
}

#[derive(Debug, Subcommand)]
enum ImageCommand {
    #[command(about = "The versions, the default, the nodes running each", long_about = IMAGE_LIST)]
    List {
        #[command(flatten)]
        root: RootDir,
    },
    #[command(about = "Copy the root tree DIR into the next version", long_about = IMAGE_IMPORT)]
    Import {
        /// The root tree to copy
        #[arg(value_name = "DIR")]
        dir: String,
        #[command(flatten)]
        no_squashfs: NoSquashfs,
        #[command(flatten)]
        dry_run: DryRun,
        #[command(flatten)]
        root: RootDir,
    },
    #[command(about = "Run CMD, or a shell, chrooted in the working copy", long_about = IMAGE_EDIT)]
    Edit {
        #[command(flatten)]
        dry_run: DryRun,
        #[command(flatten)]
        root: RootDir,
        /// The command to run and its arguments (default: $SHELL, or /bin/sh)
        #[arg(value_name = "CMD", last = true)]
        command: Vec<String>,
    },
    #[command(about = "The working copy becomes the next version", long_about = IMAGE_PUBLISH)]
    Publish {
        /// Leave the default as it is
        #[arg(long)]
        no_default: bool,
        #[command(flatten)]
        no_squashfs: NoSquashfs,
        #[command(flatten)]
        dry_run: DryRun,
        #[command(flatten)]
        root: RootDir,
    },
    /// Drop the working copy
    Discard {
        #[command(flatten)]
        dry_run: DryRun,
        #[command(flatten)]
        root: RootDir,
    },
    #[command(about = "Point default at VERSION (also the rollback)", long_about = IMAGE_DEFAULT)]
    Default {
        /// A version of the store (crctl image list shows them)
        #[arg(value_name = "VERSION")]
        version: String,
        #[command(flatten)]
        dry_run: DryRun,
        #[command(flatten)]
        root: RootDir,
    },
    #[command(about = "Remove the versions no node runs", long_about = IMAGE_GC)]
    Gc {
        #[command(flatten)]
        dry_run: DryRun,
        #[command(flatten)]
        root: RootDir,
    },
    #[command(about = "Build the squashfs files versions lack", long_about = IMAGE_SQUASHFS)]
    Squashfs {
        /// A version of the store (default: every version)
        #[arg(value_name = "VERSION")]
        version: Option<String>,
        #[command(flatten)]
        dry_run: DryRun,
        #[command(flatten)]
        root: RootDir,
    },
    #[command(about = "Write and load the exports of a ZFS store's versions", long_about = IMAGE_EXPORT)]
    Export {
        #[command(flatten)]
        dry_run: DryRun,
        #[command(flatten)]
        root: RootDir,
    },
}

/// `--root DIR`: the image the command acts on.
#[derive(Debug, Args)]
struct RootDir {
    /// The image (default /run/rootfs/lower if a directory, else /)
    #[arg(long, value_name = "DIR", allow_hyphen_values = true)]
    root: Option<String>,
}

/// `--dry-run`, `-n`.
#[derive(Debug, Args)]
struct DryRun {
    /// Print what would be done, and do nothing
    #[arg(short = 'n', long)]
    dry_run: bool,
}

/// `--into-image` ([`crate::place::INTO_IMAGE`]).
#[derive(Debug, Args)]
struct IntoImage {
    /// Write below DIR though the node-files filesystem is not mounted there
    #[arg(long)]
    into_image: bool,
}

/// `--no-squashfs`.
#[derive(Debug, Args)]
struct NoSquashfs {
    /// Build no squashfs file, whatever the image-mode
    #[arg(long)]
    no_squashfs: bool,
}

/// The shells `crctl completions` writes a script for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl Shell {
    /// clap_complete's generator for this shell.
    pub fn generator(self) -> clap_complete::Shell {
        match self {
            Shell::Bash => clap_complete::Shell::Bash,
            Shell::Zsh => clap_complete::Shell::Zsh,
            Shell::Fish => clap_complete::Shell::Fish,
        }
    }
}

/// crctl's command line, every command and option with its help: what parses the arguments,
/// prints the help and writes the completions.
pub fn command() -> clap::Command {
    /// Settings each command shares: an option given twice counts once (the last value wins,
    /// as before clap), and `help` is crctl's alone (`crctl help node add`, not `crctl node help
    /// add`).
    fn settle(cmd: clap::Command, top: bool) -> clap::Command {
        cmd.args_override_self(true).disable_help_subcommand(!top).mut_subcommands(|sc| settle(sc, false))
    }
    settle(Line::command(), true)
}

/// An option's path, which must name something: an empty one would make every path below it
/// relative to the working directory.
fn path(command: &str, option: &str, value: Option<String>) -> Result<Option<PathBuf>, UsageError> {
    match value {
        Some(v) if v.is_empty() => Err(UsageError::Malformed {
            command: command.to_string(),
            message: format!("{}{option} names no path (an empty argument)", prefix(command)),
        }),
        v => Ok(v.map(PathBuf::from)),
    }
}

/// `"sync: "`: a message's start, naming its command (none for crctl's own options).
pub(super) fn prefix(command: &str) -> String {
    if command.is_empty() {
        String::new()
    } else {
        format!("{command}: ")
    }
}

/// A checked type's refusal (a host name, a MAC, a version), with the command whose help
/// shows the form.
fn refused(command: &str) -> impl Fn(String) -> UsageError + '_ {
    move |message| UsageError::Malformed { command: command.to_string(), message }
}

impl Line {
    /// The checked invocation: every operand parsed into its type, every path non-empty. No I/O.
    pub fn check(self) -> Result<Invocation, UsageError> {
        let inventory = path("", "-f", self.inventory)?;
        let command = match self.command {
            None => Command::Print(command().render_long_help().to_string()),
            Some(top) => top.check()?,
        };
        Ok(Invocation { inventory, command })
    }
}

impl Top {
    fn check(self) -> Result<Command, UsageError> {
        Ok(match self {
            Top::Node(NodeCommand::Add { name, mac, address, groups, root, into_image }) => {
                let words: Vec<&str> = [Some(&name), Some(&mac), address.as_ref(), groups.as_ref()]
                    .into_iter()
                    .flatten()
                    .map(String::as_str)
                    .collect();
                Command::NodeAdd {
                    node: Node::parse(&words).map_err(refused("node add"))?,
                    root: path("node add", "--root", root.root)?,
                    into_image: into_image.into_image,
                }
            }
            Top::Node(NodeCommand::List) => Command::NodeList,
            Top::Node(NodeCommand::Remove { name, root, into_image }) => Command::NodeRemove {
                name,
                root: path("node remove", "--root", root.root)?,
                into_image: into_image.into_image,
            },
            Top::Render { node, root } => Command::Render { node, root: path("render", "--root", root.root)? },
            Top::Diff { node, state, root } => Command::Diff {
                node,
                root: path("diff", "--root", root.root)?,
                state: path("diff", "--state", state)?.unwrap_or_else(|| PathBuf::from(crate::diff::RECORD_DIR)),
            },
            Top::Generalize { dry_run, root, into_image } => Command::Generalize {
                dry_run: dry_run.dry_run,
                root: path("generalize", "--root", root.root)?,
                into_image: into_image.into_image,
            },
            Top::Show { config, root } => Command::Show { name: config, root: path("show", "--root", root.root)? },
            Top::Sync { dry_run, root, into_image } => Command::Sync {
                dry_run: dry_run.dry_run,
                root: path("sync", "--root", root.root)?,
                into_image: into_image.into_image,
            },
            Top::Apply { dry_run, root, live } => Command::Apply {
                dry_run: dry_run.dry_run,
                root: path("apply", "--root", root.root)?,
                live: path("apply", "--live", live)?.unwrap_or_else(|| PathBuf::from("/")),
            },
            Top::Image(image) => Command::Image(image.check()?),
            Top::Completions { shell } => Command::Completions(shell),
        })
    }
}

impl ImageCommand {
    fn check(self) -> Result<crate::image::Request, UsageError> {
        use crate::image::{store::Version, Op, Request};
        let (name, op, dry_run, root) = match self {
            ImageCommand::List { root } => ("image list", Op::List, false, root),
            ImageCommand::Import { dir, no_squashfs, dry_run, root } => (
                "image import",
                Op::Import { src: PathBuf::from(dir), squashfs: !no_squashfs.no_squashfs },
                dry_run.dry_run,
                root,
            ),
            ImageCommand::Edit { dry_run, root, command } => ("image edit", Op::Edit(command), dry_run.dry_run, root),
            ImageCommand::Publish { no_default, no_squashfs, dry_run, root } => (
                "image publish",
                Op::Publish { make_default: !no_default, squashfs: !no_squashfs.no_squashfs },
                dry_run.dry_run,
                root,
            ),
            ImageCommand::Discard { dry_run, root } => ("image discard", Op::Discard, dry_run.dry_run, root),
            ImageCommand::Default { version, dry_run, root } => {
                let v = Version::parse(&version).map_err(refused("image default"))?;
                ("image default", Op::Default(v), dry_run.dry_run, root)
            }
            ImageCommand::Gc { dry_run, root } => ("image gc", Op::Gc, dry_run.dry_run, root),
            ImageCommand::Squashfs { version, dry_run, root } => {
                let v = version.map(|v| Version::parse(&v)).transpose().map_err(refused("image squashfs"))?;
                ("image squashfs", Op::Squashfs(v), dry_run.dry_run, root)
            }
            ImageCommand::Export { dry_run, root } => ("image export", Op::Export, dry_run.dry_run, root),
        };
        Ok(Request { op, dry_run, root: path(name, "--root", root.root)? })
    }
}
