//! The inventory: one plain file with the cluster's settings and one line per node, parsed
//! into checked types with no I/O, changed only through checked operations, written whole.
//!
//! ```text
//! # comments and blank lines are kept
//! network 172.23.199.0/24
//! dhcp server                       # or: proxy (another machine gives the addresses)
//! range 172.23.199.100 172.23.199.199
//! master master
//! node master 52:54:00:77:00:e1 172.23.199.225
//! node node1  52:54:00:77:00:0b 172.23.199.11  compute,gpu
//! ```

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::io::Read as _;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use clusterroot::mac::MacAddress;

pub use crate::services::Init;

/// The largest inventory [`Inventory::load`] reads: some 200,000 nodes. Anything bigger is not
/// an inventory (`-f /dev/zero`), and reading it whole would only fill the memory.
pub const MAX_BYTES: u64 = 16 << 20;

/// The longest line the inventory takes: a node line is some 80 bytes, a comment a sentence.
pub const MAX_LINE: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("reading the inventory {path} failed: {source}; start from the example inventory mkinitcpio/cluster, or name another file with -f")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the inventory {path} is over {} MiB, which no inventory is (a line per node): name the inventory with -f", MAX_BYTES >> 20)]
    TooLarge { path: PathBuf },
    #[error("writing the inventory {path} failed: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("line {line}: {why}: {text}")]
    Line { line: usize, text: String, why: String },
    #[error("node {name} is listed twice (lines {first} and {second})")]
    DuplicateName { name: String, first: usize, second: usize },
    #[error("MAC {mac} belongs to both {first} and {second}; a MAC names one node's files")]
    DuplicateMac { mac: MacAddress, first: String, second: String },
    #[error("address {address} belongs to both {first} and {second}")]
    DuplicateAddress { address: Ipv4Addr, first: String, second: String },
    #[error("{what} {address} is outside the cluster network {network}")]
    OutsideNetwork { what: String, address: Ipv4Addr, network: Network },
    #[error("the inventory has no `{0}` line; add one (see `crctl --help`)")]
    Missing(&'static str),
    #[error("the master {0} is not a node of the inventory yet; add it first: crctl node add {0} MAC ADDRESS")]
    MasterNotANode(String),
    #[error("the master {0} has no address; the clients mount their root from it, so give it one")]
    MasterWithoutAddress(String),
    #[error("no node is named {0}; `crctl node list` shows them")]
    NoSuchNode(String),
    #[error("the master {0} cannot be removed; name another master first (`master NAME` line)")]
    RemoveMaster(String),
    #[error("image-mode {0} boots the store's squashfs files, and the inventory names no store: add an `images PATH` line (e.g. images /srv/nfs/images), or use image-mode tree")]
    SquashfsWithoutStore(ImageMode),
    #[error("line {line}: a replica serves a squashfs image, and the image-mode is {mode}: add `image-mode squashfs-http` or `image-mode squashfs-nfs`, or drop the line: {text}")]
    ReplicaWithoutSquashfs { line: usize, mode: ImageMode, text: String },
    #[error("line {line}: {url} is an {scheme} replica, and image-mode {mode} fetches over {want}: name an {want}:// URL, or change the image-mode: {text}")]
    ReplicaScheme {
        line: usize,
        url: ReplicaUrl,
        scheme: &'static str,
        mode: ImageMode,
        want: &'static str,
        text: String,
    },
}

/// An IPv4 network in CIDR form, its address masked (`172.23.199.0/24`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    pub base: Ipv4Addr,
    pub prefix: u8,
}

impl Network {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (a, p) = s.split_once('/').ok_or("expected ADDRESS/PREFIX such as 172.23.199.0/24")?;
        let addr: Ipv4Addr = a.parse().map_err(|_| format!("'{a}' is not an IPv4 address"))?;
        let prefix: u8 = p
            .parse()
            .ok()
            .filter(|p| (8..=30).contains(p))
            .ok_or(format!("'{p}' is not a prefix length from 8 to 30"))?;
        let base = Ipv4Addr::from(u32::from(addr) & Self::mask_of(prefix));
        if base != addr {
            return Err(format!("'{s}' has host bits set; the network is {base}/{prefix}"));
        }
        Ok(Network { base, prefix })
    }

    fn mask_of(prefix: u8) -> u32 {
        u32::MAX << (32 - u32::from(prefix))
    }

    /// The dotted netmask (`255.255.255.0`), as dnsmasq's `dhcp-range` wants it.
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(Self::mask_of(self.prefix))
    }

    /// Whether `a` is a host address of this network (not its network or broadcast address).
    pub fn holds(&self, a: Ipv4Addr) -> bool {
        let mask = Self::mask_of(self.prefix);
        let a = u32::from(a);
        a & mask == u32::from(self.base) && a != u32::from(self.base) && a != u32::from(self.base) | !mask
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

/// Who gives the nodes their addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DhcpMode {
    /// The master's dnsmasq is the cluster network's DHCP server.
    Server,
    /// Another machine gives the addresses; the master answers PXE clients as a proxy.
    Proxy,
}

/// How clients get their root image (`image-mode`): the store's tree over NFS, or its
/// squashfs file (README "Image files (squashfs)").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageMode {
    /// The shared root (or the store's default version) as a tree over NFS: `nfsroot=`.
    Tree,
    /// The default version's squashfs file loop-mounted from the store's NFS export:
    /// `clusterroot.live=nfs://...`.
    SquashfsNfs,
    /// The default version's squashfs file downloaded into RAM from lighttpd:
    /// `clusterroot.live=http://...`.
    SquashfsHttp,
}

impl ImageMode {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "tree" => Ok(ImageMode::Tree),
            "squashfs-nfs" => Ok(ImageMode::SquashfsNfs),
            "squashfs-http" => Ok(ImageMode::SquashfsHttp),
            _ => Err(format!("'{s}' is not tree, squashfs-nfs or squashfs-http")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ImageMode::Tree => "tree",
            ImageMode::SquashfsNfs => "squashfs-nfs",
            ImageMode::SquashfsHttp => "squashfs-http",
        }
    }

    /// The URL scheme its replicas (and the master's URL) use; None for the tree.
    pub fn scheme(self) -> Option<Scheme> {
        match self {
            ImageMode::Tree => None,
            ImageMode::SquashfsNfs => Some(Scheme::Nfs),
            ImageMode::SquashfsHttp => Some(Scheme::Http),
        }
    }
}

impl fmt::Display for ImageMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a replica serves its copy of `<store>/squashfs/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Nfs,
}

impl Scheme {
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Nfs => "nfs",
        }
    }
}

/// A replica's URL, as the agent takes it: `http://<ipv4>[:port]/<dir>/` or
/// `nfs://<ipv4>/<dir>/`, the directory holding a copy of `<store>/squashfs/` (its `default`
/// file is what a client boots). No host names (the agent has no DNS), no https.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaUrl {
    pub scheme: Scheme,
    pub host: Ipv4Addr,
    pub port: Option<u16>,
    /// The directory's path, with its leading and trailing `/` (`/images/`).
    pub dir: String,
}

impl ReplicaUrl {
    pub fn parse(s: &str) -> Result<Self, String> {
        let want = "a replica is http://<ipv4>[:port]/<dir>/ or nfs://<ipv4>/<dir>/";
        let (scheme, rest) = if let Some(rest) = s.strip_prefix("http://") {
            (Scheme::Http, rest)
        } else if let Some(rest) = s.strip_prefix("nfs://") {
            (Scheme::Nfs, rest)
        } else if s.starts_with("https://") {
            return Err(format!("'{s}': the agent fetches no https (it has no CA certificates); {want}"));
        } else {
            return Err(format!("'{s}' is not an http:// or nfs:// URL; {want}"));
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        let host: Ipv4Addr = host
            .parse()
            .map_err(|_| format!("'{s}': '{host}' is not an IPv4 address (the agent has no DNS); {want}"))?;
        let port = match (port, scheme) {
            (None, _) => None,
            (Some(_), Scheme::Nfs) => return Err(format!("'{s}': an NFS replica takes no port; {want}")),
            (Some(p), Scheme::Http) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or(format!("'{s}': '{p}' is not a port from 1 to 65535"))?,
            ),
        };
        let inner = path.strip_prefix('/').and_then(|p| p.strip_suffix('/')).unwrap_or_default();
        if inner.is_empty() || !path.ends_with('/') {
            return Err(format!(
                "'{s}' names no directory ending in '/' (e.g. {}://{host}/images/); {want}",
                scheme.name()
            ));
        }
        let ok_byte = |b: u8| b.is_ascii_alphanumeric() || b"-._~/".contains(&b);
        if !inner.bytes().all(ok_byte) || inner.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
            return Err(format!(
                "'{s}': the directory may hold letters, digits, '-', '.', '_', '~' and single '/', no '..'"
            ));
        }
        Ok(ReplicaUrl { scheme, host, port, dir: path.to_string() })
    }

    /// The server part, `http://10.0.0.2:8080` or `nfs://10.0.0.2`.
    pub fn server(&self) -> String {
        match self.port {
            Some(p) => format!("{}://{}:{p}", self.scheme.name(), self.host),
            None => format!("{}://{}", self.scheme.name(), self.host),
        }
    }

    /// The URL of the directory's parent, where an HTTP replica keeps its copy of the master's
    /// TFTP root, as the master serves its own at `/` beside `/images/`: `http://B/images/`
    /// gives `http://B/`.
    pub fn parent(&self) -> String {
        let trimmed = self.dir.trim_end_matches('/');
        let parent = &trimmed[..trimmed.rfind('/').unwrap_or(0) + 1];
        format!("{}{parent}", self.server())
    }
}

impl fmt::Display for ReplicaUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.server(), self.dir)
    }
}

/// A `replica GROUP URL` line: a server holding a copy of `<store>/squashfs/`, for the nodes of
/// GROUP (None: `*`, every node).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replica {
    pub group: Option<String>,
    pub url: ReplicaUrl,
}

impl Replica {
    /// `GROUP URL`, the words after `replica`.
    pub fn parse(words: &[&str]) -> Result<Replica, String> {
        let [group, url] = words else {
            return Err("expected: replica GROUP|* URL, e.g. replica rack2 http://172.23.199.2/images/".into());
        };
        let group = match *group {
            "*" => None,
            g => {
                check_name(g).map_err(|e| format!("group {e}"))?;
                Some(g.to_string())
            }
        };
        Ok(Replica { group, url: ReplicaUrl::parse(url)? })
    }

    /// Whether the replica serves `node`.
    pub fn serves(&self, node: &Node) -> bool {
        self.group.as_ref().is_none_or(|g| node.groups.contains(g))
    }

    fn render(&self) -> String {
        format!("{} {}", self.group.as_deref().unwrap_or("*"), self.url)
    }
}

/// The cluster-wide settings. The paths are those the clients see on the master (below
/// nfsd's rootdir) and the master's TFTP root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub network: Network,
    pub dhcp: DhcpMode,
    /// Addresses for machines the inventory does not list (`dhcp server` only).
    pub range: Option<(Ipv4Addr, Ipv4Addr)>,
    pub master: String,
    pub root: String,
    pub nodefiles: String,
    pub home: String,
    pub tftp: String,
    /// The image store: one directory per version, `default`, `edit` (see `crctl image`).
    pub images: String,
    /// The IPv6 prefix the master advertises on the cluster network (see [`Ipv6Advert`]).
    pub ipv6: Ipv6Advert,
    /// The master's cluster NIC: dnsmasq answers there alone. None: on every NIC.
    pub interface: Option<String>,
    /// The master's init system. None: the image's (found when sync runs).
    pub init: Option<Init>,
    /// What the master mounts on /home. None: nothing (`homefs none`).
    pub homefs: Option<Filesystem>,
    /// The node-files filesystem the master mounts below the image.
    pub nodefilesfs: Filesystem,
    /// How clients get their root image.
    pub image_mode: ImageMode,
    /// The `replica` lines, in the file's order.
    pub replicas: Vec<Replica>,
    /// nfsd's threads (`nfsd-threads`). None: one per client, within bounds
    /// (`crate::render::sizing`).
    pub nfsd_threads: Option<u32>,
}

/// A filesystem the master's fstab mounts: what (`LABEL=home`, `UUID=...`, `/dev/sdb1`,
/// `tank/home`) and its type (None: `auto`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filesystem {
    pub spec: String,
    pub fstype: Option<String>,
}

impl Filesystem {
    /// `SPEC [TYPE]`: a word of printable ASCII, and a type of lowercase letters, digits, `.`
    /// and `_` (`ext4`, `xfs`, `zfs`, `fuse.sshfs`).
    pub fn parse(words: &[&str]) -> Result<Filesystem, String> {
        let (spec, fstype) = match words {
            [spec] => (*spec, None),
            [spec, fstype] => (*spec, Some(*fstype)),
            _ => return Err("expected SPEC [TYPE], e.g. LABEL=home ext4".into()),
        };
        if spec == "none" || !spec.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!("'{spec}' is not a filesystem (LABEL=..., UUID=..., /dev/...)"));
        }
        if let Some(t) = fstype {
            if !t.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_') {
                return Err(format!("'{t}' is not a filesystem type (ext4, xfs, zfs, ...)"));
            }
        }
        Ok(Filesystem { spec: spec.to_string(), fstype: fstype.map(str::to_string) })
    }

    /// Its fstab type: `auto` when the line names none.
    pub fn fstype(&self) -> &str {
        self.fstype.as_deref().unwrap_or("auto")
    }
}

impl fmt::Display for Filesystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.fstype {
            Some(t) => write!(f, "{} {t}", self.spec),
            None => write!(f, "{}", self.spec),
        }
    }
}

/// A network interface's name as the kernel takes it: 1 to 15 bytes, no `/`, `:` or blank,
/// not `.` or `..`.
fn check_interface(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && s.bytes().all(|b| b.is_ascii_graphic() && b != b'/' && b != b':');
    if ok {
        Ok(())
    } else {
        Err(format!("'{s}' is not a network interface's name (at most 15 characters, no '/' or ':')"))
    }
}

/// What the master advertises as an IPv6 router of the cluster network. iPXE waits up to 16 s
/// for a router advertisement before it boots; on an IPv4-only network nothing answers. The
/// master's answer (one /64, not a default route) ends that wait at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ipv6Advert {
    /// No `ipv6` line: a unique local prefix made from the master's MAC.
    Derived,
    /// `ipv6 PREFIX::/64`: the admin's prefix.
    Prefix(Ipv6Addr),
    /// `ipv6 none`: no advertisement (the network has IPv6 routers of its own).
    Off,
}

impl Ipv6Advert {
    /// Parses `none` or a /64 prefix with no host bits (`fd23:c1c7:e1::/64`).
    pub fn parse(s: &str) -> Result<Self, String> {
        if s == "none" {
            return Ok(Ipv6Advert::Off);
        }
        let (a, p) = s.split_once('/').ok_or("expected none or a /64 prefix such as fd23:c1c7:e1::/64")?;
        let addr: Ipv6Addr = a.parse().map_err(|_| format!("'{a}' is not an IPv6 address"))?;
        if p != "64" {
            return Err(format!("'{s}' is a /{p}; SLAAC and dnsmasq's ra-only want a /64"));
        }
        if u128::from(addr) & u128::from(u64::MAX) != 0 {
            return Err(format!("'{s}' has host bits set"));
        }
        Ok(Ipv6Advert::Prefix(addr))
    }
}

/// A unique local /64 (RFC 4193: fd00::/8 and a 40-bit global ID) made from `mac`: the same
/// for the same master every time, different for another master. The ID is FNV-1a of the
/// MAC, not RFC 4193's SHA-1 of a time stamp: it need not be secret, only stable and spread.
pub fn derived_prefix(mac: &MacAddress) -> Ipv6Addr {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in b"clusterroot".iter().chain(mac.0.iter()) {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let global_id = u128::from(h & 0xff_ffff_ffff);
    Ipv6Addr::from((0xfd_u128 << 120) | (global_id << 80))
}

/// One node: the master is one too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub mac: MacAddress,
    pub address: Option<Ipv4Addr>,
    pub groups: Vec<String>,
}

/// A line of the file as it was read, so that comments survive a rewrite.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Line {
    /// A comment or blank line, kept as it is.
    Text(String),
    /// A setting, by keyword, and the comment after its value: rendered again from
    /// [`Settings`] when written.
    Setting(&'static str, Option<String>),
    /// A node, by name, and the comment after its fields: rendered again from its [`Node`].
    Node(String, Option<String>),
    /// A `replica` line, by its index in [`Settings::replicas`], and its comment.
    Replica(usize, Option<String>),
}

/// The parsed, checked inventory, its master a node with an address: what every config is
/// rendered from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inventory {
    pub settings: Settings,
    pub nodes: Vec<Node>,
    lines: Vec<Line>,
}

/// The inventory as the file holds it, checked line by line and across lines, whose master may
/// not be a node yet: the first `crctl node add` of a new cluster adds the master itself. Only
/// [`Draft::ready`] makes an [`Inventory`] of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft(Inventory);

impl Draft {
    /// Parses and checks the file's text, the master's node line aside. No I/O.
    pub fn parse(text: &str) -> Result<Draft, InventoryError> {
        Inventory::parse_lines(text)
    }

    /// [`Draft::parse`] of the file's bytes, once they are UTF-8. No I/O.
    pub fn parse_bytes(bytes: &[u8]) -> Result<Draft, InventoryError> {
        Draft::parse(utf8(bytes)?)
    }

    /// Reads and parses the file at `path`: at most [`MAX_BYTES`] of it.
    pub fn load(path: &Path) -> Result<Draft, InventoryError> {
        Draft::parse_bytes(&read(path)?)
    }

    /// The inventory, once its master is a node (with an address).
    pub fn ready(self) -> Result<Inventory, InventoryError> {
        let s = &self.0.settings;
        if self.0.node(&s.master).is_none() {
            return Err(InventoryError::MasterNotANode(s.master.clone()));
        }
        Ok(self.0)
    }

    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }

    pub fn nodes(&self) -> &[Node] {
        &self.0.nodes
    }

    /// [`Inventory::with_node`]: the master may be the node added, never without an address.
    pub fn with_node(&self, node: Node) -> Result<Draft, InventoryError> {
        self.0.added(node).map(Draft)
    }

    /// [`Inventory::without_node`].
    pub fn without_node(&self, name: &str) -> Result<Draft, InventoryError> {
        self.0.removed(name).map(Draft)
    }

    /// The file's text: comments where they were, settings and nodes rendered again.
    pub fn render(&self) -> String {
        self.0.render()
    }

    /// [`Inventory::store`].
    pub fn store(&self, path: &Path) -> Result<(), InventoryError> {
        self.0.store(path)
    }
}

/// The file's text: bytes that are not UTF-8 are an error naming their line and column.
fn utf8(bytes: &[u8]) -> Result<&str, InventoryError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let (before, rest) = bytes.split_at(e.valid_up_to());
        let start = before.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let end = rest.iter().position(|b| *b == b'\n').map_or(bytes.len(), |i| before.len() + i);
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let column = before[start..].iter().filter(|b| (**b & 0xc0) != 0x80).count() + 1;
        let why = format!(
            "byte 0x{:02x} at column {column} is not UTF-8; the inventory is UTF-8 text",
            rest.first().copied().unwrap_or_default()
        );
        InventoryError::Line { line, text: shown_bytes(bytes[start..end].trim_ascii()), why }
    })
}

/// The file at `path`: at most [`MAX_BYTES`] of it.
fn read(path: &Path) -> Result<Vec<u8>, InventoryError> {
    let failed = |source| InventoryError::Read { path: path.into(), source };
    let mut bytes = Vec::new();
    std::fs::File::open(path).and_then(|f| f.take(MAX_BYTES + 1).read_to_end(&mut bytes)).map_err(failed)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(InventoryError::TooLarge { path: path.into() });
    }
    Ok(bytes)
}

/// One kind of inventory line: its keyword, what follows it, what it is for, and the value a
/// path has without its line. The parser, `crctl help` and the man page's test read this table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keyword {
    pub key: &'static str,
    pub args: &'static str,
    pub about: &'static str,
    pub default: Option<&'static str>,
}

/// Every keyword an inventory line starts with.
pub const KEYWORDS: [Keyword; 18] = [
    Keyword {
        key: "network",
        args: "CIDR",
        about: "the cluster network, e.g. 172.23.199.0/24 (required)",
        default: None,
    },
    Keyword {
        key: "dhcp",
        args: "server|proxy",
        about: "who gives the addresses: the master's dnsmasq (server, the default), or another \
                server, the master answering PXE as a proxy",
        default: None,
    },
    Keyword {
        key: "range",
        args: "FIRST LAST",
        about: "addresses for machines not listed (dhcp server), the lower first",
        default: None,
    },
    Keyword {
        key: "master",
        args: "NAME",
        about: "the node that serves the others (required; a node line with an address too)",
        default: None,
    },
    Keyword { key: "root", args: "PATH", about: "the shared root's export", default: Some("/srv/nfs/root") },
    Keyword {
        key: "nodefiles",
        args: "PATH",
        about: "the node-files export, one <MAC> directory per node",
        default: Some("/srv/nfs/nodes"),
    },
    Keyword { key: "home", args: "PATH", about: "/home's export", default: Some("/home") },
    Keyword {
        key: "tftp",
        args: "PATH",
        about: "the TFTP root, which lighttpd also serves (with an image store: in each version; \
                the master serves the default version's)",
        default: Some("/srv/tftp"),
    },
    Keyword {
        key: "images",
        args: "PATH",
        about: "the image store: a directory per version, default, edit",
        default: Some("/srv/nfs/images"),
    },
    Keyword {
        key: "image-mode",
        args: "tree|squashfs-nfs|squashfs-http",
        about: "how clients get their root: the tree over NFS (nfsroot=), or the store's default \
                squashfs file, loop-mounted over NFS or downloaded into RAM over HTTP \
                (clusterroot.live=; needs an images line)",
        default: Some("tree"),
    },
    Keyword {
        key: "replica",
        args: "GROUP|* URL",
        about: "a server with a copy of <images>/squashfs/ for the nodes of GROUP (*: every \
                node), tried before the master, the nodes sharing replicas taking them in turn: \
                http://IPV4[:PORT]/DIR/ (squashfs-http) or nfs://IPV4/DIR/ (squashfs-nfs); one \
                line each, in order",
        default: None,
    },
    Keyword {
        key: "ipv6",
        args: "PREFIX/64|none",
        about: "the /64 the master advertises, so iPXE need not wait for an IPv6 router \
                (default: one made from the master's MAC; none: no advertisement)",
        default: None,
    },
    Keyword {
        key: "interface",
        args: "NAME",
        about: "the master's cluster NIC (e.g. ens5): dnsmasq answers DHCP, TFTP and router \
                solicitations there alone (default: every NIC)",
        default: None,
    },
    Keyword {
        key: "init",
        args: "systemd|runit",
        about: "the master's init: which enable links and address file sync writes for it \
                (default: the image's: what its /sbin/init links to, else runit when it has /etc/runit/runsvdir, else systemd)",
        default: None,
    },
    Keyword {
        key: "homefs",
        args: "SPEC [TYPE]|none",
        about: "what the master's fstab mounts on /home (none: nothing, e.g. a ZFS dataset that \
                mounts itself)",
        default: Some("LABEL=home ext4"),
    },
    Keyword {
        key: "nodefilesfs",
        args: "SPEC [TYPE]",
        about: "the node-files filesystem the master's fstab mounts below the image, read-write",
        default: Some("LABEL=nodefiles ext4"),
    },
    Keyword {
        key: "nfsd-threads",
        args: "N",
        about: "the master's nfsd threads, 1 to 8192 (default: one per client, at least 8, at \
                most 256; README \"Sizing\")",
        default: None,
    },
    Keyword {
        key: "node",
        args: "NAME MAC [ADDRESS|-] [GROUP,...]",
        about: "one node, the master too: its host name, the MAC of the NIC it boots from, its \
                fixed address (- or none: the DHCP server's choice), its groups",
        default: None,
    },
];

/// The keyword `key` of a setting (every keyword but `node`).
fn setting(key: &str) -> Option<&'static str> {
    KEYWORDS.iter().map(|k| k.key).find(|k| *k == key && *k != "node")
}

/// The value of the path setting `key` without its line.
fn default_path(key: &str) -> String {
    KEYWORDS.iter().find(|k| k.key == key).and_then(|k| k.default).unwrap_or("/").to_string()
}

/// Characters no word shows: they make one word look like another (`U+202E` turns text
/// around, `U+200B` hides inside a name, `U+FEFF` is a byte order mark).
fn invisible(c: char) -> bool {
    matches!(c, '\u{ad}' | '\u{61c}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}')
        || matches!(c, '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206f}' | '\u{feff}')
}

/// A line as an error message shows it: control and invisible characters escaped (`\u{0}`),
/// and cut after 120 characters, so the message stays one readable line.
fn shown(text: &str) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == 120 {
            out.push('…');
            break;
        }
        if c.is_control() || invisible(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// Bytes as an error message shows them: UTF-8 as it is (escaped as [`shown`] does), other
/// bytes as `\xff`.
fn shown_bytes(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    shown(&out)
}

/// What a line must be before its words are read: short, and plain text (tabs are spaces).
fn check_text(raw: &str) -> Result<(), String> {
    if raw.len() > MAX_LINE {
        return Err(format!("{} bytes long; an inventory line is at most {MAX_LINE}", raw.len()));
    }
    let odd = raw.chars().enumerate().find(|(_, c)| (c.is_control() && *c != '\t') || invisible(*c));
    match odd {
        Some((i, c)) => {
            let what = if c.is_control() { "a control character" } else { "an invisible character" };
            let hint = if c == '\u{feff}' {
                "a byte order mark: save the file as UTF-8 without one"
            } else {
                "the inventory is plain text"
            };
            Err(format!("{what} ({}) at column {}; {hint}", c.escape_unicode(), i + 1))
        }
        None => Ok(()),
    }
}

/// A host name label (RFC 1123): what dnsmasq, `/etc/hosts` and the node's own `hostname` take.
fn check_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!("'{s}' is not a host name (lowercase letters, digits and '-', at most 63)"))
    }
}

/// An absolute path without spaces, `..` or a trailing `/`.
fn check_path(s: &str) -> Result<(), String> {
    let ok = s.starts_with('/')
        && (s == "/" || !s.ends_with('/'))
        && !s.split('/').any(|c| c == "..")
        && s.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(format!("'{s}' is not an absolute path (no spaces, no '..')"))
    }
}

/// nfsd's thread count: 1 to [`crate::render::sizing::NFSD_THREADS_MAX`], the most nfsd runs.
fn parse_threads(s: &str) -> Result<u32, String> {
    let max = crate::render::sizing::NFSD_THREADS_MAX;
    s.parse::<u32>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or(format!("'{s}' is not a thread count from 1 to {max} (nfsd runs at most {max})"))
}

fn parse_address(s: &str) -> Result<Ipv4Addr, String> {
    s.parse().map_err(|_| format!("'{s}' is not an IPv4 address"))
}

impl Node {
    /// `NAME MAC [ADDRESS|-] [GROUP,...]`, the words after `node` (and of `crctl node add`).
    pub fn parse(words: &[&str]) -> Result<Node, String> {
        let [name, mac, rest @ ..] = words else {
            return Err("expected: node NAME MAC [ADDRESS|-] [GROUP,...]".into());
        };
        check_name(name)?;
        let mac: MacAddress = mac.parse().map_err(|e: clusterroot::mac::MacParseError| e.to_string())?;
        if mac.0[0] & 1 == 1 || mac.0 == [0; 6] {
            return Err(format!("{mac} is not a NIC's address (multicast or zero)"));
        }
        let (address, groups) = match rest {
            [] => (None, vec![]),
            [a] => (Self::address(a)?, vec![]),
            [a, g] => (Self::address(a)?, Self::groups(g)?),
            _ => return Err("too many fields: expected node NAME MAC [ADDRESS|-] [GROUP,...]".into()),
        };
        Ok(Node { name: name.to_string(), mac, address, groups })
    }

    fn address(s: &str) -> Result<Option<Ipv4Addr>, String> {
        if s == "-" {
            Ok(None)
        } else {
            parse_address(s).map(Some)
        }
    }

    fn groups(s: &str) -> Result<Vec<String>, String> {
        let groups: Vec<String> = s.split(',').map(str::to_string).collect();
        for g in &groups {
            check_name(g).map_err(|e| format!("group {e}"))?;
        }
        Ok(groups)
    }

    /// The node's line in the file, its fields in aligned columns.
    fn render(&self) -> String {
        let address = self.address.map_or("-".to_string(), |a| a.to_string());
        let line = format!("node {:<10} {} {:<15} {}", self.name, self.mac, address, self.groups.join(","));
        line.trim_end().to_string()
    }
}

impl Inventory {
    /// Parses and checks the file's bytes: [`Inventory::parse`], once they are UTF-8. No I/O.
    pub fn parse_bytes(bytes: &[u8]) -> Result<Inventory, InventoryError> {
        Draft::parse_bytes(bytes)?.ready()
    }

    /// Parses and checks the file's text, its master a node. No I/O.
    pub fn parse(text: &str) -> Result<Inventory, InventoryError> {
        Draft::parse(text)?.ready()
    }

    /// Parses and checks the file's text, the master's node line aside. No I/O.
    fn parse_lines(text: &str) -> Result<Draft, InventoryError> {
        let mut lines = Vec::new();
        let mut nodes: Vec<Node> = Vec::new();
        let mut node_lines: HashMap<String, usize> = HashMap::new();
        let mut seen: Vec<(&'static str, usize)> = Vec::new();
        let (mut network, mut dhcp, mut range, mut master) = (None, DhcpMode::Server, None, None);
        let mut ipv6 = Ipv6Advert::Derived;
        let (mut interface, mut init) = (None, None);
        let fs_default = |key| Filesystem::parse(&default_path(key).split(' ').collect::<Vec<_>>()).ok();
        let mut homefs = fs_default("homefs");
        let mut nodefilesfs = fs_default("nodefilesfs").ok_or(InventoryError::Missing("nodefilesfs"))?;
        let mut paths = ["root", "nodefiles", "home", "tftp", "images"].map(|k| (k, default_path(k)));
        let mut image_mode = ImageMode::Tree;
        let mut nfsd_threads = None;
        let mut replicas: Vec<Replica> = Vec::new();
        let mut replica_lines: Vec<(usize, String)> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let bad = |why: String| InventoryError::Line { line: n, text: shown(raw.trim()), why };
            check_text(raw).map_err(bad)?;
            let (content, comment) = match raw.split_once('#') {
                Some((content, comment)) => (content.trim(), Some(comment.trim_end().to_string())),
                None => (raw.trim(), None),
            };
            let words: Vec<&str> = content.split_whitespace().collect();
            let [key, args @ ..] = words.as_slice() else {
                lines.push(Line::Text(raw.to_string()));
                continue;
            };
            if *key == "node" {
                let node = Node::parse(args).map_err(bad)?;
                if let Some(first) = node_lines.get(&node.name) {
                    return Err(InventoryError::DuplicateName { name: node.name, first: *first, second: n });
                }
                node_lines.insert(node.name.clone(), n);
                lines.push(Line::Node(node.name.clone(), comment));
                nodes.push(node);
                continue;
            }
            if *key == "replica" {
                let replica = Replica::parse(args).map_err(bad)?;
                if let Some(i) = replicas.iter().position(|r| *r == replica) {
                    return Err(bad(format!(
                        "a second 'replica {}' line (the first is line {})",
                        replica.render(),
                        replica_lines[i].0
                    )));
                }
                lines.push(Line::Replica(replicas.len(), comment));
                replicas.push(replica);
                replica_lines.push((n, shown(raw.trim())));
                continue;
            }
            let Some(key) = setting(key) else {
                let settings: Vec<&str> = KEYWORDS.iter().map(|k| k.key).filter(|k| *k != "node").collect();
                return Err(bad(format!("unknown keyword '{key}' (want node or one of {})", settings.join(", "))));
            };
            if let Some((_, first)) = seen.iter().find(|(k, _)| *k == key) {
                return Err(bad(format!("a second '{key}' line (the first is line {first})")));
            }
            seen.push((key, n));
            let one = || match args {
                [v] => Ok(*v),
                _ => Err(bad(format!("'{key}' takes one value"))),
            };
            match key {
                "network" => network = Some(Network::parse(one()?).map_err(bad)?),
                "dhcp" => {
                    dhcp = match one()? {
                        "server" => DhcpMode::Server,
                        "proxy" => DhcpMode::Proxy,
                        other => return Err(bad(format!("'{other}' is not server or proxy"))),
                    }
                }
                "range" => {
                    let [a, b] = args else { return Err(bad("'range' takes FIRST LAST".into())) };
                    let (first, last) = (parse_address(a).map_err(bad)?, parse_address(b).map_err(bad)?);
                    if first > last {
                        return Err(bad(format!("the range runs from {first} down to {last}; put the lower first")));
                    }
                    range = Some((first, last));
                }
                "ipv6" => ipv6 = Ipv6Advert::parse(one()?).map_err(bad)?,
                "image-mode" => image_mode = ImageMode::parse(one()?).map_err(bad)?,
                "nfsd-threads" => nfsd_threads = Some(parse_threads(one()?).map_err(bad)?),
                "interface" => {
                    let name = one()?;
                    check_interface(name).map_err(bad)?;
                    interface = Some(name.to_string());
                }
                "init" => init = Some(Init::parse(one()?).map_err(bad)?),
                "homefs" => homefs = if args == ["none"] { None } else { Some(Filesystem::parse(args).map_err(bad)?) },
                "nodefilesfs" => nodefilesfs = Filesystem::parse(args).map_err(bad)?,
                "master" => {
                    let name = one()?;
                    check_name(name).map_err(bad)?;
                    master = Some(name.to_string());
                }
                path_key => {
                    let value = one()?;
                    check_path(value).map_err(bad)?;
                    for (k, v) in paths.iter_mut() {
                        if *k == path_key {
                            *v = value.to_string();
                        }
                    }
                }
            }
            lines.push(Line::Setting(key, comment));
        }
        let [root, nodefiles, home, tftp, images] = paths.map(|(_, v)| v);
        let settings = Settings {
            network: network.ok_or(InventoryError::Missing("network"))?,
            dhcp,
            range,
            master: master.ok_or(InventoryError::Missing("master"))?,
            root,
            nodefiles,
            home,
            tftp,
            images,
            ipv6,
            interface,
            init,
            homefs,
            nodefilesfs,
            image_mode,
            replicas,
            nfsd_threads,
        };
        let inv = Inventory { settings, nodes, lines };
        inv.check_image_mode(&replica_lines)?;
        inv.check()?;
        Ok(Draft(inv))
    }

    /// What the image mode needs: a store for the squashfs modes, and replicas of its scheme.
    /// `replica_lines`: each replica's line number and text, for the errors.
    fn check_image_mode(&self, replica_lines: &[(usize, String)]) -> Result<(), InventoryError> {
        let mode = self.settings.image_mode;
        if mode != ImageMode::Tree && !self.uses_store() {
            return Err(InventoryError::SquashfsWithoutStore(mode));
        }
        for (r, (line, text)) in self.settings.replicas.iter().zip(replica_lines) {
            let (line, text) = (*line, text.clone());
            match mode.scheme() {
                None => return Err(InventoryError::ReplicaWithoutSquashfs { line, mode, text }),
                Some(want) if want != r.url.scheme => {
                    return Err(InventoryError::ReplicaScheme {
                        line,
                        url: r.url.clone(),
                        scheme: r.url.scheme.name(),
                        mode,
                        want: want.name(),
                        text,
                    })
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// What must hold between lines: unique MACs and addresses, all in the network, a master
    /// with an address once it is a node.
    fn check(&self) -> Result<(), InventoryError> {
        let s = &self.settings;
        let mut macs: HashMap<MacAddress, &str> = HashMap::new();
        let mut addresses: HashMap<Ipv4Addr, &str> = HashMap::new();
        for a in &self.nodes {
            if let Some(first) = macs.insert(a.mac, &a.name) {
                return Err(InventoryError::DuplicateMac { mac: a.mac, first: first.into(), second: a.name.clone() });
            }
            if let Some(addr) = a.address {
                if let Some(first) = addresses.insert(addr, &a.name) {
                    return Err(InventoryError::DuplicateAddress {
                        address: addr,
                        first: first.into(),
                        second: a.name.clone(),
                    });
                }
                if !s.network.holds(addr) {
                    return Err(InventoryError::OutsideNetwork {
                        what: format!("{}'s address", a.name),
                        address: addr,
                        network: s.network,
                    });
                }
            }
        }
        if let Some((first, last)) = s.range {
            for (what, a) in [("the range's first address", first), ("the range's last address", last)] {
                if !s.network.holds(a) {
                    return Err(InventoryError::OutsideNetwork { what: what.into(), address: a, network: s.network });
                }
            }
        }
        if self.node(&s.master).is_some_and(|m| m.address.is_none()) {
            return Err(InventoryError::MasterWithoutAddress(s.master.clone()));
        }
        Ok(())
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The master node (checked to exist, with an address, when parsed).
    pub fn master(&self) -> &Node {
        self.node(&self.settings.master).expect("checked by Inventory::check")
    }

    /// The master's address (checked to exist when parsed).
    pub fn master_address(&self) -> Ipv4Addr {
        self.master().address.unwrap_or(Ipv4Addr::UNSPECIFIED)
    }

    /// The /64 the master advertises on the cluster network, if any (see [`Ipv6Advert`]).
    pub fn ipv6_prefix(&self) -> Option<Ipv6Addr> {
        match self.settings.ipv6 {
            Ipv6Advert::Derived => Some(derived_prefix(&self.master().mac)),
            Ipv6Advert::Prefix(p) => Some(p),
            Ipv6Advert::Off => None,
        }
    }

    /// True when the inventory names an image store (`images PATH`): nodes then boot its
    /// `default` version (`clusterroot.image=default`), and the master exports it.
    pub fn uses_store(&self) -> bool {
        self.lines.iter().any(|l| matches!(l, Line::Setting("images", _)))
    }

    /// What the clients mount as their root: the image store when there is one, else the
    /// shared root's export.
    pub fn boot_export(&self) -> &str {
        if self.uses_store() {
            &self.settings.images
        } else {
            &self.settings.root
        }
    }

    /// The TFTP root the master's dnsmasq and lighttpd serve, as the running master sees it.
    /// Without a store, the `tftp` path. With one, that path in the store's default version,
    /// `<lower><images>/default<tftp>` (`/run/rootfs/lower/srv/nfs/images/default/srv/tftp`):
    /// a version is everything a client boots, its kernel, initramfs and boot.ipxe with its
    /// root, and the servers resolve `default` at every file they open, so a publish or
    /// `crctl image default` switches them all (docs/images.md). The `tftp` path of the
    /// master's own `/` is the version the master booted, which is not the clients'.
    pub fn served_tftp(&self) -> String {
        let s = &self.settings;
        if !self.uses_store() {
            return s.tftp.clone();
        }
        let default = format!("{}/{}", crate::place::in_lower(&s.images), crate::image::store::DEFAULT);
        if s.tftp == "/" {
            default
        } else {
            format!("{default}{}", s.tftp)
        }
    }

    /// The master's URL of the default squashfs file, for the squashfs modes (None: tree):
    /// `http://<master>/images/default` (lighttpd's alias) or
    /// `nfs://<master><store>/squashfs/default` (in the store's export).
    pub fn master_live_url(&self) -> Option<String> {
        let (dir, pointer) = (crate::image::squashfs::DIR, crate::image::squashfs::POINTER);
        let master = self.master_address();
        match self.settings.image_mode {
            ImageMode::Tree => None,
            ImageMode::SquashfsHttp => Some(format!("http://{master}/images/{pointer}")),
            ImageMode::SquashfsNfs => {
                let store = self.settings.images.trim_end_matches('/');
                Some(format!("nfs://{master}{store}/{dir}/{pointer}"))
            }
        }
    }

    /// The replicas that serve `node`, in the file's order, each URL once.
    pub fn replicas_of(&self, node: &Node) -> Vec<&ReplicaUrl> {
        let mut out: Vec<&ReplicaUrl> = Vec::new();
        for r in self.settings.replicas.iter().filter(|r| r.serves(node)) {
            if !out.contains(&&r.url) {
                out.push(&r.url);
            }
        }
        out
    }

    /// The replicas for every node, `*` lines alone: those of a machine the inventory does not
    /// list (and of every node when no line names a group).
    pub fn replicas_for_all(&self) -> Vec<&ReplicaUrl> {
        let nobody = Node { name: String::new(), mac: self.master().mac, address: None, groups: vec![] };
        self.replicas_of(&nobody)
    }

    /// Whether some client's replicas differ from the `*` ones: its boot files then differ
    /// per node.
    pub fn replicas_differ(&self) -> bool {
        let all = self.replicas_for_all();
        self.clients().any(|n| self.replicas_of(n) != all)
    }

    /// Every node but the master, in the file's order.
    pub fn clients(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(move |n| n.name != self.settings.master)
    }

    /// The inventory with `node` added at the end; checked as a whole.
    pub fn with_node(&self, node: Node) -> Result<Inventory, InventoryError> {
        self.added(node)
    }

    fn added(&self, node: Node) -> Result<Inventory, InventoryError> {
        if self.node(&node.name).is_some() {
            let first = self.line_of(&node.name);
            return Err(InventoryError::DuplicateName { name: node.name, first, second: self.lines.len() + 1 });
        }
        let mut inv = self.clone();
        inv.lines.push(Line::Node(node.name.clone(), None));
        inv.nodes.push(node);
        inv.check()?;
        Ok(inv)
    }

    /// The inventory without the node `name`. The master stays.
    pub fn without_node(&self, name: &str) -> Result<Inventory, InventoryError> {
        self.removed(name)
    }

    fn removed(&self, name: &str) -> Result<Inventory, InventoryError> {
        if self.node(name).is_none() {
            return Err(InventoryError::NoSuchNode(name.to_string()));
        }
        if name == self.settings.master {
            return Err(InventoryError::RemoveMaster(name.to_string()));
        }
        let mut inv = self.clone();
        inv.nodes.retain(|n| n.name != name);
        inv.lines.retain(|l| !matches!(l, Line::Node(n, _) if n == name));
        Ok(inv)
    }

    fn line_of(&self, name: &str) -> usize {
        self.lines.iter().position(|l| matches!(l, Line::Node(n, _) if n == name)).map_or(0, |i| i + 1)
    }

    /// The file's text: comments where they were, settings and nodes rendered again.
    pub fn render(&self) -> String {
        let s = &self.settings;
        let nodes: HashMap<&str, &Node> = self.nodes.iter().map(|n| (n.name.as_str(), n)).collect();
        let mut out = String::new();
        for line in &self.lines {
            let comment = match line {
                Line::Text(t) => {
                    out.push_str(t);
                    None
                }
                Line::Node(name, comment) => {
                    out.push_str(&nodes.get(name.as_str()).map(|n| n.render()).unwrap_or_default());
                    comment.as_ref()
                }
                Line::Replica(i, comment) => {
                    let _ = write!(out, "replica {}", s.replicas.get(*i).map(Replica::render).unwrap_or_default());
                    comment.as_ref()
                }
                Line::Setting(key, comment) => {
                    let value = match *key {
                        "network" => s.network.to_string(),
                        "dhcp" => if s.dhcp == DhcpMode::Server { "server" } else { "proxy" }.to_string(),
                        "range" => s.range.map(|(a, b)| format!("{a} {b}")).unwrap_or_default(),
                        "master" => s.master.clone(),
                        "root" => s.root.clone(),
                        "nodefiles" => s.nodefiles.clone(),
                        "home" => s.home.clone(),
                        "tftp" => s.tftp.clone(),
                        "ipv6" => match s.ipv6 {
                            Ipv6Advert::Prefix(p) => format!("{p}/64"),
                            _ => "none".to_string(),
                        },
                        "interface" => s.interface.clone().unwrap_or_default(),
                        "init" => s.init.map(Init::name).unwrap_or_default().to_string(),
                        "homefs" => s.homefs.as_ref().map_or("none".to_string(), Filesystem::to_string),
                        "nodefilesfs" => s.nodefilesfs.to_string(),
                        "image-mode" => s.image_mode.to_string(),
                        "nfsd-threads" => s.nfsd_threads.map(|n| n.to_string()).unwrap_or_default(),
                        _ => s.images.clone(),
                    };
                    let _ = write!(out, "{key} {value}");
                    comment.as_ref()
                }
            };
            if let Some(c) = comment {
                let _ = write!(out, "  #{c}");
            }
            out.push('\n');
        }
        out
    }

    /// Reads and parses the file at `path`: at most [`MAX_BYTES`] of it.
    pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
        Draft::load(path)?.ready()
    }

    /// Writes the inventory to `path` whole: a temporary file next to it, synced, then renamed
    /// over it, so a reader sees the old file or the new one and a failure leaves the old. It
    /// keeps the file's mode; a new file is root's alone (0600), as the node files are.
    pub fn store(&self, path: &Path) -> Result<(), InventoryError> {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_or(0o600, |m| m.permissions().mode() & 0o7777);
        crate::files::replace(path, self.render().as_bytes(), mode)
            .map_err(|source| InventoryError::Write { path: path.into(), source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "\
# the cluster
network 172.23.199.0/24
dhcp server
range 172.23.199.100 172.23.199.199
master master

node master 52:54:00:77:00:e1 172.23.199.225
node node1  52:54:00:77:00:0B 172.23.199.11  compute,gpu   # the first
node node2  52:54:00:77:00:0c
";

    fn err(text: &str) -> String {
        Inventory::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn ipv6_prefixes() {
        assert_eq!(Ipv6Advert::parse("none"), Ok(Ipv6Advert::Off));
        assert_eq!(Ipv6Advert::parse("fd23:c1::/64"), Ok(Ipv6Advert::Prefix("fd23:c1::".parse().unwrap())));
        assert!(Ipv6Advert::parse("fd23:c1::/48").unwrap_err().contains("want a /64"));
        assert!(Ipv6Advert::parse("fd23:c1::1/64").unwrap_err().contains("host bits"));
        assert!(Ipv6Advert::parse("fd23:c1::").unwrap_err().contains("expected none or a /64"));
        assert!(err(&EXAMPLE.replace("master master\n", "master master\nipv6 x/64\n")).contains("not an IPv6 address"));
        // Derived: stable, unique local, different for another master.
        let a = derived_prefix(&"52:54:00:77:00:e1".parse().unwrap());
        assert_eq!(a, derived_prefix(&"52:54:00:77:00:e1".parse().unwrap()));
        assert_ne!(a, derived_prefix(&"52:54:00:77:00:e2".parse().unwrap()));
        assert_eq!(a.segments()[0] >> 8, 0xfd);
        assert_eq!(u128::from(a) & ((1 << 80) - 1), 0, "{a}");
        // Written back as read.
        let text = EXAMPLE.replace("master master\n", "master master\nipv6 fd00:1::/64\n");
        assert!(Inventory::parse(&text).unwrap().render().contains("\nipv6 fd00:1::/64\n"));
        let text = EXAMPLE.replace("master master\n", "master master\nipv6 none\n");
        assert_eq!(Inventory::parse(&text).unwrap().ipv6_prefix(), None);
    }

    #[test]
    fn parses_settings_and_nodes() {
        let inv = Inventory::parse(EXAMPLE).unwrap();
        assert_eq!(inv.settings.network.to_string(), "172.23.199.0/24");
        assert_eq!(inv.settings.network.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(inv.settings.root, "/srv/nfs/root");
        assert_eq!(inv.master_address(), Ipv4Addr::new(172, 23, 199, 225));
        let names: Vec<&str> = inv.clients().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["node1", "node2"]);
        let n1 = inv.node("node1").unwrap();
        assert_eq!(n1.mac.to_string(), "52:54:00:77:00:0b");
        assert_eq!(n1.groups, ["compute", "gpu"]);
        assert_eq!(inv.node("node2").unwrap().address, None);
    }

    #[test]
    fn rewrites_keep_comments_and_normalize_nodes() {
        let inv = Inventory::parse(EXAMPLE).unwrap();
        let text = inv.render();
        assert!(text.starts_with("# the cluster\nnetwork 172.23.199.0/24\n"));
        assert!(text.contains("node node1      52:54:00:77:00:0b 172.23.199.11   compute,gpu  # the first\n"));
        assert!(text.contains("node node2      52:54:00:77:00:0c -\n"));
        // Rendering is a fixed point.
        assert_eq!(Inventory::parse(&text).unwrap().render(), text);
    }

    #[test]
    fn the_image_store_line() {
        let inv = Inventory::parse(EXAMPLE).unwrap();
        assert_eq!(inv.settings.images, "/srv/nfs/images");
        // Without the line, the file renders as it was.
        assert_eq!(inv.render(), Inventory::parse(&inv.render()).unwrap().render());
        assert!(!inv.render().contains("images"));
        let text = EXAMPLE.replace("master master\n", "master master\nimages /tank/images   # a dataset\n");
        let inv = Inventory::parse(&text).unwrap();
        assert_eq!(inv.settings.images, "/tank/images");
        assert!(inv.render().contains("\nimages /tank/images  # a dataset\n"), "{}", inv.render());
        assert!(err(&format!("{EXAMPLE}images ../x\n")).contains("is not an absolute path"));
    }

    #[test]
    fn image_mode_and_replicas() {
        let store = |lines: &str| {
            EXAMPLE.replace("master master\n", &format!("master master\nimages /srv/nfs/images\n{lines}"))
        };
        let inv = Inventory::parse(&store("")).unwrap();
        assert_eq!((inv.settings.image_mode, inv.settings.replicas.len()), (ImageMode::Tree, 0));
        let text = store("image-mode squashfs-http  # into RAM\nreplica * http://172.23.199.2/images/\nreplica gpu http://172.23.199.3:8080/a/b/  # rack 2\n");
        let inv = Inventory::parse(&text).unwrap();
        assert_eq!(inv.settings.image_mode, ImageMode::SquashfsHttp);
        let r = &inv.settings.replicas;
        assert_eq!((r[0].group.as_deref(), r[0].url.to_string().as_str()), (None, "http://172.23.199.2/images/"));
        assert_eq!((r[1].group.as_deref(), r[1].url.port, r[1].url.dir.as_str()), (Some("gpu"), Some(8080), "/a/b/"));
        assert_eq!(r[1].url.parent(), "http://172.23.199.3:8080/a/");
        assert_eq!(r[0].url.parent(), "http://172.23.199.2/");
        // Written back as read, comments kept.
        assert!(inv.render().contains("\nimage-mode squashfs-http  # into RAM\nreplica * http://172.23.199.2/images/\nreplica gpu http://172.23.199.3:8080/a/b/  # rack 2\n"), "{}", inv.render());
        assert_eq!(Inventory::parse(&inv.render()).unwrap(), inv);
        // Per node: node1 is in gpu, node2 in no group.
        let urls = |n: &str| inv.replicas_of(inv.node(n).unwrap()).iter().map(|u| u.to_string()).collect::<Vec<_>>();
        assert_eq!(urls("node1"), ["http://172.23.199.2/images/", "http://172.23.199.3:8080/a/b/"]);
        assert_eq!(urls("node2"), ["http://172.23.199.2/images/"]);
        assert!(inv.replicas_differ());
        assert_eq!(inv.master_live_url().as_deref(), Some("http://172.23.199.225/images/default"));
        // The same URL for two groups: once for a node in both.
        let inv = Inventory::parse(&store(
            "image-mode squashfs-nfs\nreplica compute nfs://10.0.0.2/x/\nreplica gpu nfs://10.0.0.2/x/\n",
        ))
        .unwrap();
        assert_eq!(inv.replicas_of(inv.node("node1").unwrap()).len(), 1);
        assert_eq!(inv.master_live_url().as_deref(), Some("nfs://172.23.199.225/srv/nfs/images/squashfs/default"));
        assert!(!Inventory::parse(&store("image-mode squashfs-nfs\nreplica * nfs://10.0.0.2/x/\n"))
            .unwrap()
            .replicas_differ());
    }

    #[test]
    fn refuses_replicas_that_do_not_fit_naming_the_fix() {
        let store = |lines: &str| {
            EXAMPLE.replace("master master\n", &format!("master master\nimages /srv/nfs/images\n{lines}"))
        };
        assert_eq!(
            err(&EXAMPLE.replace("master master\n", "master master\nimage-mode squashfs-nfs\n")),
            "image-mode squashfs-nfs boots the store's squashfs files, and the inventory names no store: add an `images PATH` line (e.g. images /srv/nfs/images), or use image-mode tree"
        );
        assert_eq!(
            err(&store("image-mode squashfs-http\nreplica * nfs://10.0.0.2/x/\n")),
            "line 8: nfs://10.0.0.2/x/ is an nfs replica, and image-mode squashfs-http fetches over http: name an http:// URL, or change the image-mode: replica * nfs://10.0.0.2/x/"
        );
        assert!(err(&store("replica * nfs://10.0.0.2/x/\nimage-mode squashfs-http\n"))
            .starts_with("line 7: nfs://10.0.0.2/x/ is an nfs replica"));
        assert_eq!(
            err(&store("replica * http://10.0.0.2/x/\n")),
            "line 7: a replica serves a squashfs image, and the image-mode is tree: add `image-mode squashfs-http` or `image-mode squashfs-nfs`, or drop the line: replica * http://10.0.0.2/x/"
        );
        let cases = [
            ("image-mode squashfs", "line 7: 'squashfs' is not tree, squashfs-nfs or squashfs-http: image-mode squashfs"),
            ("replica * https://10.0.0.2/x/", "line 8: 'https://10.0.0.2/x/': the agent fetches no https (it has no CA certificates); a replica is http://<ipv4>[:port]/<dir>/ or nfs://<ipv4>/<dir>/: replica * https://10.0.0.2/x/"),
            ("replica * http://mirror/x/", "line 8: 'http://mirror/x/': 'mirror' is not an IPv4 address (the agent has no DNS); a replica is http://<ipv4>[:port]/<dir>/ or nfs://<ipv4>/<dir>/: replica * http://mirror/x/"),
            ("replica * http://10.0.0.2/", "line 8: 'http://10.0.0.2/' names no directory ending in '/' (e.g. http://10.0.0.2/images/); a replica is http://<ipv4>[:port]/<dir>/ or nfs://<ipv4>/<dir>/: replica * http://10.0.0.2/"),
            ("replica * http://10.0.0.2/images", "line 8: 'http://10.0.0.2/images' names no directory ending in '/' (e.g. http://10.0.0.2/images/); a replica is http://<ipv4>[:port]/<dir>/ or nfs://<ipv4>/<dir>/: replica * http://10.0.0.2/images"),
            ("replica * http://10.0.0.2:0/x/", "line 8: 'http://10.0.0.2:0/x/': '0' is not a port from 1 to 65535: replica * http://10.0.0.2:0/x/"),
            ("replica * http://10.0.0.2/a/../x/", "line 8: 'http://10.0.0.2/a/../x/': the directory may hold letters, digits, '-', '.', '_', '~' and single '/', no '..': replica * http://10.0.0.2/a/../x/"),
            ("replica * ftp://10.0.0.2/x/", "line 8: 'ftp://10.0.0.2/x/' is not an http:// or nfs:// URL; a replica is http://<ipv4>[:port]/<dir>/ or nfs://<ipv4>/<dir>/: replica * ftp://10.0.0.2/x/"),
            ("replica GPU http://10.0.0.2/x/", "line 8: group 'GPU' is not a host name (lowercase letters, digits and '-', at most 63): replica GPU http://10.0.0.2/x/"),
            ("replica http://10.0.0.2/x/", "line 8: expected: replica GROUP|* URL, e.g. replica rack2 http://172.23.199.2/images/: replica http://10.0.0.2/x/"),
            ("replica * http://10.0.0.2/x/\nreplica * http://10.0.0.2/x/", "line 9: a second 'replica * http://10.0.0.2/x/' line (the first is line 8): replica * http://10.0.0.2/x/"),
        ];
        for (line, want) in cases {
            assert_eq!(
                err(&store(&format!("image-mode squashfs-http\n{line}\n"))
                    .replace("image-mode squashfs-http\nimage-mode", "image-mode")),
                want,
                "{line}"
            );
        }
        assert!(err(&store("image-mode squashfs-nfs\nreplica * nfs://10.0.0.2:2049/x/\n"))
            .contains("an NFS replica takes no port"));
    }

    #[test]
    fn the_served_tftp_root_is_the_default_version_s() {
        let served = |lines: &str| {
            Inventory::parse(&EXAMPLE.replace("master master\n", &format!("master master\n{lines}")))
                .unwrap()
                .served_tftp()
        };
        assert_eq!(served(""), "/srv/tftp");
        assert_eq!(served("tftp /var/lib/tftpboot\n"), "/var/lib/tftpboot");
        assert_eq!(served("images /srv/nfs/images\n"), "/run/rootfs/lower/srv/nfs/images/default/srv/tftp");
        assert_eq!(served("images /tank\ntftp /boot/net\n"), "/run/rootfs/lower/tank/default/boot/net");
        assert_eq!(served("images /\ntftp /\n"), "/run/rootfs/lower/default");
    }

    #[test]
    fn the_master_s_own_settings() {
        let inv = Inventory::parse(EXAMPLE).unwrap();
        let s = &inv.settings;
        assert_eq!((s.interface.as_deref(), s.init), (None, None));
        assert_eq!(s.homefs.as_ref().map(Filesystem::to_string).as_deref(), Some("LABEL=home ext4"));
        assert_eq!(s.nodefilesfs.to_string(), "LABEL=nodefiles ext4");
        let text = EXAMPLE.replace(
            "master master\n",
            "master master\ninterface ens5\ninit runit  # Void\nhomefs none\nnodefilesfs UUID=1f2e xfs\n",
        );
        let inv = Inventory::parse(&text).unwrap();
        let s = &inv.settings;
        assert_eq!((s.interface.as_deref(), s.init, &s.homefs), (Some("ens5"), Some(Init::Runit), &None));
        assert_eq!((s.nodefilesfs.spec.as_str(), s.nodefilesfs.fstype()), ("UUID=1f2e", "xfs"));
        assert!(inv
            .render()
            .contains("\ninterface ens5\ninit runit  # Void\nhomefs none\nnodefilesfs UUID=1f2e xfs\n"));
        let inv = Inventory::parse(&EXAMPLE.replace("master master\n", "master master\nhomefs /dev/sdb1\n")).unwrap();
        assert_eq!(inv.settings.homefs.as_ref().map(|f| f.fstype()), Some("auto"));
        assert!(inv.render().contains("\nhomefs /dev/sdb1\n"));
    }

    #[test]
    fn nfsd_threads_from_1_to_8192_or_refused_in_one_line() {
        assert_eq!(Inventory::parse(EXAMPLE).unwrap().settings.nfsd_threads, None);
        let text = EXAMPLE.replace("master master\n", "master master\nnfsd-threads 64   # a storm\n");
        let inv = Inventory::parse(&text).unwrap();
        assert_eq!(inv.settings.nfsd_threads, Some(64));
        assert!(inv.render().contains("\nnfsd-threads 64  # a storm\n"), "{}", inv.render());
        for n in ["1", "8192"] {
            let text = EXAMPLE.replace("master master\n", &format!("master master\nnfsd-threads {n}\n"));
            assert_eq!(Inventory::parse(&text).unwrap().settings.nfsd_threads.map(|t| t.to_string()), Some(n.into()));
        }
        for bad in ["0", "8193", "-1", "4294967296", "eight", "1e3", ""] {
            let text = EXAMPLE.replace("master master\n", &format!("master master\nnfsd-threads {bad}\n"));
            let e = err(&text);
            let want = if bad.is_empty() {
                "line 6: 'nfsd-threads' takes one value: nfsd-threads".to_string()
            } else {
                format!(
                    "line 6: '{bad}' is not a thread count from 1 to 8192 (nfsd runs at most 8192): nfsd-threads {bad}"
                )
            };
            assert_eq!(e, want);
            assert!(!e.contains('\n'));
        }
        let twice = EXAMPLE.replace("master master\n", "master master\nnfsd-threads 8\nnfsd-threads 9\n");
        assert_eq!(err(&twice), "line 7: a second 'nfsd-threads' line (the first is line 6): nfsd-threads 9");
    }

    #[test]
    fn add_and_remove() {
        let inv = Inventory::parse(EXAMPLE).unwrap();
        let n3 = Node::parse(&["node3", "52-54-00-77-00-0d", "172.23.199.13"]).unwrap();
        let more = inv.with_node(n3).unwrap();
        assert!(more.render().ends_with("node node3      52:54:00:77:00:0d 172.23.199.13\n"));
        let less = more.without_node("node1").unwrap();
        assert!(!less.render().contains("node1"));
        assert!(less.render().contains("# the cluster\n"));
        assert_eq!(
            err_of(inv.without_node("master")),
            "the master master cannot be removed; name another master first (`master NAME` line)"
        );
        assert_eq!(err_of(inv.without_node("nope")), "no node is named nope; `crctl node list` shows them");
    }

    fn err_of(r: Result<Inventory, InventoryError>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn refuses_duplicates_with_both_names() {
        let inv = Inventory::parse(EXAMPLE).unwrap();
        let dup_mac = Node::parse(&["node9", "52:54:00:77:00:0b", "172.23.199.19"]).unwrap();
        assert_eq!(
            err_of(inv.with_node(dup_mac)),
            "MAC 52:54:00:77:00:0b belongs to both node1 and node9; a MAC names one node's files"
        );
        let dup_addr = Node::parse(&["node9", "52:54:00:77:00:19", "172.23.199.11"]).unwrap();
        assert_eq!(err_of(inv.with_node(dup_addr)), "address 172.23.199.11 belongs to both node1 and node9");
        let dup_name = Node::parse(&["node1", "52:54:00:77:00:19"]).unwrap();
        assert_eq!(err_of(inv.with_node(dup_name)), "node node1 is listed twice (lines 8 and 10)");
        let text = format!("{EXAMPLE}node node1 52:54:00:77:00:99\n");
        assert_eq!(err(&text), "node node1 is listed twice (lines 8 and 10)");
    }

    #[test]
    fn refuses_bad_lines_naming_them() {
        let cases = [
            ("node node3 52:54:00:77:00", "line 10: '52:54:00:77:00' is not a MAC address (expected six hex pairs such as 52:54:00:12:34:56): node node3 52:54:00:77:00"),
            ("node node3 01:00:5e:00:00:01", "line 10: 01:00:5e:00:00:01 is not a NIC's address (multicast or zero): node node3 01:00:5e:00:00:01"),
            ("node Node3 52:54:00:77:00:0d", "line 10: 'Node3' is not a host name (lowercase letters, digits and '-', at most 63): node Node3 52:54:00:77:00:0d"),
            ("node node3 52:54:00:77:00:0d 172.23.199.300", "line 10: '172.23.199.300' is not an IPv4 address: node node3 52:54:00:77:00:0d 172.23.199.300"),
            ("node node3 52:54:00:77:00:0d 10.0.0.3", "node3's address 10.0.0.3 is outside the cluster network 172.23.199.0/24"),
            ("node node3 52:54:00:77:00:0d 172.23.199.255", "node3's address 172.23.199.255 is outside the cluster network 172.23.199.0/24"),
            ("node node3 52:54:00:77:00:0d - a,B", "line 10: group 'B' is not a host name (lowercase letters, digits and '-', at most 63): node node3 52:54:00:77:00:0d - a,B"),
            ("nodes x", "line 10: unknown keyword 'nodes' (want node or one of network, dhcp, range, master, root, nodefiles, home, tftp, images, image-mode, replica, ipv6, interface, init, homefs, nodefilesfs, nfsd-threads): nodes x"),
            ("interface eth0:1", "line 10: 'eth0:1' is not a network interface's name (at most 15 characters, no '/' or ':'): interface eth0:1"),
            ("interface a23456789012345x", "line 10: 'a23456789012345x' is not a network interface's name (at most 15 characters, no '/' or ':'): interface a23456789012345x"),
            ("init openrc", "line 10: 'openrc' is not systemd or runit: init openrc"),
            ("homefs LABEL=home Ext4", "line 10: 'Ext4' is not a filesystem type (ext4, xfs, zfs, ...): homefs LABEL=home Ext4"),
            ("homefs a b c", "line 10: expected SPEC [TYPE], e.g. LABEL=home ext4: homefs a b c"),
            ("nodefilesfs none", "line 10: 'none' is not a filesystem (LABEL=..., UUID=..., /dev/...): nodefilesfs none"),
            ("nodefilesfs", "line 10: expected SPEC [TYPE], e.g. LABEL=home ext4: nodefilesfs"),
            ("dhcp relay", "line 10: a second 'dhcp' line (the first is line 3): dhcp relay"),
            ("root srv/nfs", "line 10: 'srv/nfs' is not an absolute path (no spaces, no '..'): root srv/nfs"),
        ];
        for (line, want) in cases {
            assert_eq!(err(&format!("{EXAMPLE}{line}\n")), want, "{line}");
        }
        assert_eq!(
            err(&EXAMPLE.replace("range 172.23.199.100 172.23.199.199", "range 172.23.199.20 172.23.199.10")),
            "line 4: the range runs from 172.23.199.20 down to 172.23.199.10; put the lower first: range 172.23.199.20 172.23.199.10"
        );
        assert_eq!(
            err("network 172.23.199.1/24\n"),
            "line 1: '172.23.199.1/24' has host bits set; the network is 172.23.199.0/24: network 172.23.199.1/24"
        );
        assert_eq!(
            err("network 172.23.199.0/24\n"),
            "the inventory has no `master` line; add one (see `crctl --help`)"
        );
        assert_eq!(
            err("network 172.23.199.0/24\nmaster m\n"),
            "the master m is not a node of the inventory yet; add it first: crctl node add m MAC ADDRESS"
        );
        assert_eq!(
            err("network 172.23.199.0/24\nmaster m\nnode m 52:54:00:77:00:e1\n"),
            "the master m has no address; the clients mount their root from it, so give it one"
        );
    }

    #[test]
    fn a_new_cluster_takes_its_master_as_a_node() {
        let settings = "network 172.23.199.0/24\nmaster head\n";
        let draft = Draft::parse(settings).unwrap();
        assert_eq!((draft.nodes().len(), draft.render().as_str()), (0, settings));
        let no_address = Node::parse(&["head", "52:54:00:77:00:e1"]).unwrap();
        assert_eq!(
            draft.with_node(no_address).unwrap_err().to_string(),
            "the master head has no address; the clients mount their root from it, so give it one"
        );
        let client = Node::parse(&["node1", "52:54:00:77:00:0b"]).unwrap();
        let draft = draft.with_node(client).unwrap();
        assert_eq!(
            draft.clone().ready().unwrap_err().to_string(),
            "the master head is not a node of the inventory yet; add it first: crctl node add head MAC ADDRESS"
        );
        let head = Node::parse(&["head", "52:54:00:77:00:e1", "172.23.199.225"]).unwrap();
        let inv = draft.with_node(head).unwrap().ready().unwrap();
        assert_eq!(inv.master_address(), Ipv4Addr::new(172, 23, 199, 225));
        assert_eq!(Inventory::parse(&inv.render()).unwrap(), inv);
    }

    #[test]
    fn refuses_what_is_not_plain_text_naming_the_line() {
        let cases: [(&[u8], &str); 7] = [
            (b"network 172.23.199.0/24\nnode n\xff 52:54:00:77:00:0d\n", "line 2: byte 0xff at column 7 is not UTF-8; the inventory is UTF-8 text: node n\\xff 52:54:00:77:00:0d"),
            (b"\xfe\xff# UTF-16\n", "line 1: byte 0xfe at column 1 is not UTF-8; the inventory is UTF-8 text: \\xfe\\xff# UTF-16"),
            (b"# caf\xc3\xa9\nnet\0work 172.23.199.0/24\n", "line 2: a control character (\\u{0}) at column 4; the inventory is plain text: net\\u{0}work 172.23.199.0/24"),
            (b"# a comment \x1b[2J\n", "line 1: a control character (\\u{1b}) at column 13; the inventory is plain text: # a comment \\u{1b}[2J"),
            (b"network 172.23.199.0/24\rmaster m\n", "line 1: a control character (\\u{d}) at column 24; the inventory is plain text: network 172.23.199.0/24\\u{d}master m"),
            ("\u{feff}network 172.23.199.0/24\n".as_bytes(), "line 1: an invisible character (\\u{feff}) at column 1; a byte order mark: save the file as UTF-8 without one: \\u{feff}network 172.23.199.0/24"),
            ("master ma\u{202e}retsam\n".as_bytes(), "line 1: an invisible character (\\u{202e}) at column 10; the inventory is plain text: master ma\\u{202e}retsam"),
        ];
        for (bytes, want) in cases {
            assert_eq!(Inventory::parse_bytes(bytes).unwrap_err().to_string(), want, "{}", bytes.escape_ascii());
        }
        // A huge line: refused, and shown cut.
        let long = format!("{EXAMPLE}# {}\n", "x".repeat(MAX_LINE));
        let e = err(&long);
        assert!(e.starts_with("line 10: 4098 bytes long; an inventory line is at most 4096: # xxx"), "{e}");
        assert!(e.ends_with("x…") && e.len() < 250, "{e}");
        // Tabs, CRLF line ends and UTF-8 in comments are text.
        let crlf = EXAMPLE.replace('\n', "\r\n").replace("master master", "master\tmaster  # maître");
        let inv = Inventory::parse(&crlf).unwrap();
        assert!(inv.render().contains("\nmaster master  # maître\n"), "{}", inv.render());
    }

    #[test]
    fn store_keeps_the_mode_and_makes_a_new_file_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("crctl-inventory-mode-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (inv, file) = (Inventory::parse(EXAMPLE).unwrap(), dir.join("cluster"));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        inv.store(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        inv.store(&file).unwrap();
        assert_eq!(mode(&file), 0o640);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn load_reads_a_bounded_file() {
        let e = Inventory::load(Path::new("/dev/zero")).unwrap_err().to_string();
        assert_eq!(e, "the inventory /dev/zero is over 16 MiB, which no inventory is (a line per node): name the inventory with -f");
        let e = Inventory::load(Path::new("/")).unwrap_err().to_string();
        assert!(e.starts_with("reading the inventory / failed: Is a directory"), "{e}");
    }

    #[test]
    fn many_nodes_parse_and_render_quickly() {
        let mut text = String::from("network 10.0.0.0/8\nmaster n0\n");
        for i in 0..100_000u32 {
            let [_, a, b, c] = (i + 1).to_be_bytes();
            let _ = writeln!(text, "node n{i} 52:54:00:{a:02x}:{b:02x}:{c:02x} 10.{a}.{b}.{c}");
        }
        let started = std::time::Instant::now();
        let inv = Inventory::parse(&text).unwrap();
        assert_eq!(inv.render().lines().count(), 100_002);
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
    }
}
