//! The executor: carries out a plan's steps in order, logs what each did, records the state file.
//!
//! [`Executor::step`] is the whole boot in one short match. Each step is one small method whose
//! comment says why the step is there and, where it helps, what a shell script would run.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cmdline::{BootConfig, CmdlineError, Mode, NodeFilesSource};
use crate::cmdline::{NfsFile, Size};
use crate::kmsg::Log;
use crate::lower::block::{self, BlockError, DeviceRef};
use crate::lower::fetch::{self, HttpUrl};
use crate::lower::image::{self, ImageChoice, IMAGES};
use crate::lower::loopdev::{self, LoopPaths};
use crate::lower::zfs::{self, Dataset, ImportOptions};
use crate::lower::{bootorder, nfs, readahead};
use crate::mac::MacAddress;
use crate::net::netlink::Netlink;
use crate::net::{dhcp, nic, Addressing, BootNic, Lease, Nic, NicChoice};
use crate::nodesource::Layout;
use crate::plan::{NfsPlan, Plan, Step, IMAGE_DIR, LOWER, NODEFILES, RUN_ROOTFS, UPPER};
use crate::root::Root;
use crate::state::{self, State};
use crate::watchdog::Watchdog;
use crate::{handover, manifest, nodefiles, nodesource, overlay, Error};

/// A source named by `clusterroot.nodefiles=` that did not give this node its files: the export
/// missing or refused, the device or dataset absent, a copy that failed. One line, naming the
/// source, the MAC and the fix.
#[derive(Debug, thiserror::Error)]
#[error(
    "node files for {mac} from clusterroot.nodefiles={source_name}: {cause}; the boot stops rather than bring this node up without its keys and identity: give it its files on the master (crctl node add with its address, then crctl sync), or boot it with clusterroot.nodefiles=none"
)]
pub struct NodeFilesRequired {
    pub source_name: String,
    pub mac: String,
    pub cause: String,
}

/// Carries out a plan, step by step, timing each.
pub struct Executor<'a> {
    root: &'a Root,
    cfg: &'a BootConfig,
    log: &'a Log,
    start: Instant,
    /// Every wait (NIC, link, DHCP, server, device, pool) ends here: `clusterroot.timeout=`
    /// from the start of the run.
    deadline: Instant,
    /// The running step's deadline, which the watchdog watches: [`Executor::deadline`], but
    /// for the node files their own, `clusterroot.timeout=` from their start (a hostile
    /// archive must not hang the boot, and a slow lower must not leave them no time).
    step_deadline: Instant,
    /// Opened on first use: the local and late-hook boots rarely need it.
    netlink: Option<Netlink>,
    boot: Option<BootNic>,
    boot_mac: Option<MacAddress>,
    /// The DHCP lease, which may name the NFS server or the whole root.
    lease: Option<Lease>,
    /// The master's root device, once it has appeared.
    device: Option<PathBuf>,
    /// The NFS server and version of the root, for the node's own export.
    nfs_root: Option<(std::net::Ipv4Addr, &'static str)>,
    /// `clusterroot.overlays=` as it resolved in the lower (symlinked aliases followed).
    overlays: Option<String>,
    /// The static `ip=` gateway, for the booted system's network manager.
    gateway: Option<std::net::Ipv4Addr>,
    /// What is mounted on [`IMAGES`] while a version is picked.
    store: Option<Store>,
    /// The squashfs image file, once fetched or found on NFS, and where it came from.
    image_file: Option<(PathBuf, String)>,
    state: State,
}

/// An image store on [`IMAGES`], and how one of its versions becomes the lower.
enum Store {
    /// Over NFS: the version is an NFS mount of its own (`<store>/<version>`), in the NFS
    /// version the store answered in.
    Nfs(nfs::NfsMount, &'static str),
    /// The master's disk: the version's directory, bound read-only.
    Local,
    /// The master's pool: the version is the dataset `<store>/<version>`.
    Zfs(Dataset, String),
}

impl<'a> Executor<'a> {
    pub fn new(root: &'a Root, cfg: &'a BootConfig, log: &'a Log) -> Executor<'a> {
        let start = Instant::now();
        Executor {
            root,
            cfg,
            log,
            start,
            deadline: start + cfg.timeout,
            step_deadline: start + cfg.timeout,
            netlink: None,
            boot: None,
            boot_mac: None,
            lease: None,
            device: None,
            nfs_root: None,
            overlays: None,
            gateway: None,
            store: None,
            image_file: None,
            state: State { mode: if cfg.mode == Mode::Plain { "plain" } else { "overlay" }, ..State::default() },
        }
    }

    /// Runs the steps in order, stopping at the first error; then the `ready:` line.
    pub fn run(mut self, plan: &Plan) -> Result<(), Error> {
        // The layers under /run/rootfs stay visible after switch_root; only root may reach
        // them (the lower may hold every node's files). Shell: `mkdir -m 0700 /run/rootfs`.
        if self.cfg.mode == Mode::Overlay {
            overlay::private_dir(RUN_ROOTFS)?;
        }
        // The backstop for a wait no step can bound itself (a hard NFS read from a server
        // gone mid-boot): one line naming the step, then the process ends with its code.
        let fired = self.log.fresh();
        let dog = Watchdog::start(move |overdue| {
            fired.error(&overdue.message());
            std::process::exit(i32::from(overdue.code));
        });
        for step in &plan.steps {
            let t = Instant::now();
            self.step_deadline = match step {
                Step::NodeFiles { .. } => t + self.cfg.timeout,
                _ => self.deadline.max(t),
            };
            dog.arm(self.step_deadline, self.cfg.timeout.as_secs(), self.waiting_on(step), step.exit_code());
            self.step(step)?;
            self.state.timings.push((step.name(), t.elapsed()));
        }
        dog.disarm();
        self.summary(plan);
        Ok(())
    }

    /// The step, and the server it reads from when it reads from one: what the watchdog's
    /// line names.
    fn waiting_on(&self, step: &Step) -> String {
        let server = match step {
            Step::MountNfs(m) => m.server,
            Step::NodeFiles { from: NodeFilesSource::Nfs { server, .. }, .. } => {
                server.or(self.nfs_root.map(|(s, _)| s))
            }
            Step::NodeFiles { from: NodeFilesSource::Lower, .. }
            | Step::MountSquashfs { .. }
            | Step::ReadBootOrder { .. }
            | Step::MountNfsImage { .. }
            | Step::PinImage { .. } => self.nfs_root.map(|(s, _)| s),
            _ => None,
        };
        match server {
            Some(s) => format!("the boot's {} step (server {s})", step.name()),
            None => format!("the boot's {} step", step.name()),
        }
    }

    /// One step: one method each, below in the order a plan has them.
    fn step(&mut self, step: &Step) -> Result<(), Error> {
        match step {
            Step::LoadNicDrivers => self.load_nic_drivers(),
            Step::Network { nic, addressing, arp_probe, .. } => self.network(nic, addressing, *arp_probe),
            Step::FindBootMac { nic } => self.find_boot_mac(nic),
            Step::NfsIdentity { given } => self.nfs_identity(given.as_deref()),
            Step::MountNfs(nfs) => self.mount_nfs(nfs),
            Step::WaitDevice { device } => self.wait_device(device),
            Step::MountDevice { device, fstype, flags, rw, target } => {
                self.mount_device(device, fstype.as_deref(), flags.as_deref(), *rw, target)
            }
            Step::ImportPool { pool, options, param } => self.import_pool(pool, options, param),
            Step::MountZfs { dataset, rw, param, target } => self.mount_zfs(dataset, *rw, param, target),
            Step::PinImage { choice, target } => self.pin_image(choice, target),
            Step::FetchImage { urls, sha256, maxsize } => self.fetch_image(urls, *sha256, *maxsize),
            Step::MountNfsImage { files } => self.mount_nfs_image(files),
            Step::MountSquashfs { target } => self.mount_squashfs(target),
            Step::ReadBootOrder { target } => {
                self.read_boot_order(target);
                Ok(())
            }
            Step::MoveRoot { from, to } => self.move_root(from, to),
            Step::MountTmpfs { size, target } => self.mount_tmpfs(size.as_deref(), target),
            Step::PrepareUpper { hide } => self.prepare_upper(hide),
            Step::MountOverlay { target } => self.mount_overlay(target),
            Step::NodeFiles { from, overlays, target } => self.node_files(from, overlays, target),
            Step::HandOver { target } => self.hand_over(target),
            Step::WriteState => self.write_state(),
        }
    }

    fn netlink(&mut self) -> Result<&mut Netlink, Error> {
        if self.netlink.is_none() {
            self.netlink = Some(Netlink::open()?);
        }
        Ok(self.netlink.as_mut().expect("just opened"))
    }

    /// No NIC appears before its driver is loaded, and in an image without udevd nobody else
    /// loads it; so the agent does, once, before the first step that looks for the boot NIC.
    /// With udevd in the image this does nothing: udevd loads them (and names the NICs).
    /// Shell: `modprobe -qa $(cat /sys/bus/pci/devices/*/modalias)`, for network devices only.
    fn load_nic_drivers(&mut self) -> Result<(), Error> {
        nic::load_drivers_without_udev(self.root, self.log);
        Ok(())
    }

    /// The clients reach the NFS lower over the boot NIC, so it needs an address, a route and
    /// a link first; the host name is set here too, so the NFSv4 identity and the logs carry
    /// it. With `ip=dhcp` a DHCP lease gives all that ([`Executor::dhcp_lease`]); otherwise
    /// `ip=` does, or another hook already did ([`Executor::address_nic`]).
    fn network(&mut self, choice: &NicChoice, addressing: &Addressing, probe: bool) -> Result<(), Error> {
        if let Addressing::Static(s) = addressing {
            self.gateway = s.gateway;
        }
        let boot = match addressing {
            Addressing::Dhcp { hostname } => self.dhcp_lease(choice, hostname.as_deref(), probe)?,
            Addressing::Static(_) | Addressing::Existing { .. } => self.address_nic(choice, addressing, probe)?,
        };
        self.log.info(&format!("boot NIC {} is up with {}/{}", boot.nic, boot.address, boot.prefix));
        self.state.boot_iface = boot.nic.name.clone();
        self.state.boot_mac = boot.nic.mac.to_string();
        self.state.address = format!("{}/{}", boot.address, boot.prefix);
        self.state.hostname = handover::kernel_hostname();
        self.boot_mac = Some(boot.nic.mac);
        self.boot = Some(boot);
        Ok(())
    }

    /// `ip=dhcp`. A NIC that already has an address (another hook ran DHCP) is used as it is.
    /// Otherwise DHCP runs on the NIC `BOOTIF=` or `ip=` names, or on every Ethernet NIC at
    /// once, the first lease winning ([`dhcp::acquire`]); the lease is kept, as it may name
    /// the NFS root. Shell: `udhcpc -i eth0 -n -q` and its script's `ip addr add`, `ip route
    /// add default`, `hostname`, `resolv.conf`.
    fn dhcp_lease(&mut self, choice: &NicChoice, hostname: Option<&str>, probe: bool) -> Result<BootNic, Error> {
        let (root, deadline, timeout, log) = (self.root, self.deadline, self.cfg.timeout, self.log);
        let nl = self.netlink()?;
        let fixed = match choice {
            NicChoice::BootIf(_) | NicChoice::Device(_) => Some(nic::find_nic(root, choice, deadline, nl, log)?),
            NicChoice::SingleWithLink | NicChoice::FirstLease => None,
        };
        // Listed again while waiting, so NICs whose driver loads late still take part.
        let candidates = || fixed.clone().map(|n| vec![n]).unwrap_or_else(|| nic::list_ethernet(root));
        if let Some(boot) = nic::existing_address(&candidates(), nl)? {
            log.info(&format!(
                "{} already has {}/{}; using it as it is (no DHCP)",
                boot.nic, boot.address, boot.prefix
            ));
            return Ok(boot);
        }
        let (won, lease) = dhcp::acquire(root, &candidates, hostname, deadline, timeout, nl, log)?;
        // Another host may hold the leased address: an ARP probe first (RFC 5227), and on a
        // conflict DHCPDECLINE and the error line. Shell: `arping -D -I eth0 10.0.0.2`.
        if probe {
            dhcp::probe_lease(&won, &lease, deadline, log)?;
        }
        let nl = self.netlink()?;
        let boot = nic::apply_lease(root, &won, &lease, hostname, nl, log)?;
        log.info(&lease_line(&won, &boot, &lease));
        self.lease = Some(lease);
        Ok(boot)
    }

    /// A static `ip=`, or no address to set (`ip=off`, no `ip=`: another hook configured the
    /// NIC). A static address is probed with ARP first (RFC 5227), unless
    /// `clusterroot.arp_probe=0`. Shell: `ip link set eth0 up`, wait for
    /// `/sys/class/net/eth0/carrier`, `arping -D -I eth0 10.0.0.2`, `ip addr add 10.0.0.2/24 dev
    /// eth0`, `ip route add default via 10.0.0.1`.
    fn address_nic(&mut self, choice: &NicChoice, addressing: &Addressing, probe: bool) -> Result<BootNic, Error> {
        let (root, deadline, log) = (self.root, self.deadline, self.log);
        let nl = self.netlink()?;
        let found = nic::find_nic(root, choice, deadline, nl, log)?;
        Ok(nic::configure(root, &found, addressing, probe, deadline, nl, log)?)
    }

    /// The node files are picked by the boot NIC's MAC. The master (local or ZFS lower) and
    /// the late hook configure no network, so the MAC is looked up without touching any
    /// address. Shell: `cat /sys/class/net/eth0/address`.
    fn find_boot_mac(&mut self, choice: &NicChoice) -> Result<(), Error> {
        self.boot_mac = self.boot_mac_of(choice)?;
        if let Some(mac) = self.boot_mac {
            self.state.boot_mac = mac.to_string();
        }
        Ok(())
    }

    /// The MAC `BOOTIF=` names; else that of the only Ethernet NIC; else that of the one NIC
    /// with a link. `None`, with a warning, when there is no Ethernet NIC at all.
    fn boot_mac_of(&mut self, choice: &NicChoice) -> Result<Option<MacAddress>, Error> {
        if let NicChoice::BootIf(mac) = choice {
            return Ok(Some(*mac));
        }
        // A NIC whose driver is still being loaded shows up shortly: wait for it a little.
        let nics = nic::wait_for_ethernet(self.root, self.deadline);
        if nics.is_empty() {
            self.log.warn("no Ethernet NIC found: node files skipped (name one with BOOTIF= if its driver loads late)");
            return Ok(None);
        }
        if let NicChoice::SingleWithLink = choice {
            if nics.len() == 1 {
                self.state.boot_iface = nics[0].name.clone();
                return Ok(Some(nics[0].mac));
            }
        }
        let (root, deadline, log) = (self.root, self.deadline, self.log);
        let nl = self.netlink()?;
        let found = nic::find_nic(root, choice, deadline, nl, log)?;
        self.state.boot_iface = found.name.clone();
        Ok(Some(found.mac))
    }

    /// Nodes booting one image would present one NFSv4 client identity to the server and
    /// steal each other's opens and locks, so each gets its own, from its boot MAC, before the
    /// first NFSv4 mount. Shell:
    /// `echo clusterroot-52540077000b >/sys/fs/nfs/net/nfs_client/identifier`.
    fn nfs_identity(&mut self, given: Option<&str>) -> Result<(), Error> {
        let mac = self.boot_mac.ok_or(Error::Order { step: "the NFSv4 identity" })?;
        self.state.nfs_identity = nfs::set_identity(self.root, mac, given, None, self.log)?;
        Ok(())
    }

    /// The NFSv4 identity names the image version too (`clusterroot-<mac>@3`), so that nfsd's
    /// client list on the master says who runs what (`crctl image list`). Only an identity
    /// the agent made itself is changed (none was set: no NFS in this boot; one given with
    /// `nfs.nfs4_unique_id=`: the admin's), and only while no NFS mount is up, for the
    /// kernel gives a mount the identity current when its client was made.
    fn version_identity(&mut self, version: &str) -> Result<(), Error> {
        if self.cfg.nfs4_unique_id.is_some() || self.state.nfs_identity.is_empty() {
            return Ok(());
        }
        let mac = self.boot_mac.ok_or(Error::Order { step: "the NFSv4 identity" })?;
        self.state.nfs_identity = nfs::set_identity(self.root, mac, None, Some(version), self.log)?;
        Ok(())
    }

    /// Whether the NFSv4 identity is the agent's own and does not name `version` yet.
    fn identity_lacks(&self, version: &str) -> bool {
        self.cfg.nfs4_unique_id.is_none()
            && !self.state.nfs_identity.is_empty()
            && !self.state.nfs_identity.ends_with(&format!("@{version}"))
    }

    /// The clients' lower: the shared root over NFS, read-only. The DHCP lease may name the
    /// server or the whole root path, so the mount is resolved only now. Shell:
    /// `mount -t nfs -o ro,vers=4.2,addr=10.0.0.1 10.0.0.1:/srv/root /run/rootfs/lower`.
    fn mount_nfs(&mut self, plan: &NfsPlan) -> Result<(), Error> {
        let boot = self.boot.as_ref().ok_or(Error::Order { step: "the NFS mount" })?;
        let m = &plan.resolve(self.lease.as_ref(), &boot.nic.name).map_err(Error::NfsSource)?;
        if let Some(warning) = m.outage_warning() {
            self.log.warn(&warning);
        }
        let mounted = self.nfs_mount(m)?;
        self.log.info(&format!("lower: nfs {} (vers={}) on {} read-only", mounted.source, mounted.vers, m.target));
        self.nfs_root = Some((m.server, mounted.vers));
        if m.target == IMAGES {
            self.store = Some(Store::Nfs(m.clone(), mounted.vers));
        }
        self.state.lower_source = mounted.source;
        self.state.lower_type = format!("nfs{}", mounted.vers);
        Ok(())
    }

    /// A squashfs image in RAM: a tmpfs on [`IMAGE_DIR`], then the first URL that gives the
    /// file whole with its hash (a pointer file, such as crctl's `default`, names it first).
    /// Each failure is one warning line, and the next URL is tried. After this the node needs
    /// no server for its root. Shell: `mount -t tmpfs -o mode=0700 image /run/rootfs/image;
    /// wget -O /run/rootfs/image/3-<sha256>.squashfs http://10.0.0.1/images/3-<sha256>.squashfs`.
    fn fetch_image(&mut self, urls: &[HttpUrl], sha256: Option<[u8; 32]>, maxsize: Option<Size>) -> Result<(), Error> {
        let max_size = self.image_cap(maxsize);
        // The cap, and a little for the filesystem; tmpfs's default when no cap is known.
        let size = (max_size != u64::MAX).then(|| max_size.saturating_add(1 << 20).to_string());
        overlay::mount_tmpfs(size.as_deref(), IMAGE_DIR)?;
        let dir = self.root.path(IMAGE_DIR);
        let mut failures = Vec::new();
        let log = self.log;
        for url in urls {
            let got = fetch::resolve_pointer(url, self.deadline).and_then(|file| {
                let job = fetch::Download {
                    url: &file,
                    sha256,
                    max_size,
                    dir: &dir,
                    deadline: self.deadline,
                    stall: fetch::STALL,
                };
                fetch::download(&job, &mut |p| log.info(&p.to_string()))
            });
            match got {
                Ok(d) => {
                    self.log.info(&format!(
                        "image {} fetched: {} bytes, SHA-256 {}",
                        d.url,
                        d.size,
                        fetch::sha256_hex(&d.sha256)
                    ));
                    // Node files come from the node's own export on the first server of the
                    // list, unless clusterroot.nodefiles= names a server: crctl names the
                    // master whenever there are replicas, which come first and hold no node
                    // files.
                    self.nfs_root = urls.first().map(|u| (u.host(), "4.2"));
                    self.state.lower_type = "squashfs-http".into();
                    self.live_version(d.url.image_name().as_ref(), url.is_pointer(), true)?;
                    self.image_file = Some((d.path, d.url.to_string()));
                    return Ok(());
                }
                Err(e) => {
                    self.log.warn(&format!("{e}; trying the next URL"));
                    failures.push(e);
                }
            }
        }
        Err(fetch::FetchError::Failed { failures }.into())
    }

    /// The version in a squashfs image's file name (crctl's `<version>-<sha256>.squashfs`),
    /// reached through a pointer file or named itself, goes in the state as a store's
    /// version does. Over HTTP no NFS mount has been made yet, so the NFSv4 identity the
    /// node files and `/home` then mount with names the version (`clusterroot-<mac>@3`):
    /// `crctl image list` on the master sees who runs what, as with a store over NFS. On NFS
    /// a file named in the URL is known before its export is mounted; one a pointer file
    /// names, only after: [`Self::pin_nfs_version`] then mounts the export again.
    /// `before_nfs`: no NFS mount is up, so the identity may change now.
    fn live_version(&mut self, name: Option<&fetch::ImageName>, pointer: bool, before_nfs: bool) -> Result<(), Error> {
        let Some(name) = name else { return Ok(()) };
        let version = name.version();
        if before_nfs {
            self.version_identity(version)?;
        }
        self.state.image = version.to_string();
        self.state.image_choice = if pointer { "default".into() } else { version.to_string() };
        Ok(())
    }

    /// The most a squashfs image may take in RAM: `clusterroot.maxsize=` (bytes, or a share of
    /// the RAM), and never more than three quarters of the memory available now, so that the
    /// system booting from it has room.
    fn image_cap(&self, maxsize: Option<Size>) -> u64 {
        let meminfo = std::fs::read_to_string(self.root.path("/proc/meminfo")).unwrap_or_default();
        let kib = |key: &str| {
            meminfo.lines().find_map(|l| l.strip_prefix(key)?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
        };
        let available = kib("MemAvailable:").map_or(u64::MAX, |k| k.saturating_mul(1024) / 4 * 3);
        let total = kib("MemTotal:").map_or(u64::MAX, |k| k.saturating_mul(1024));
        maxsize.map_or(available, |m| m.bytes(total).min(available))
    }

    /// A squashfs image on NFS, LTSP's way: the export holding it is mounted read-only on
    /// [`IMAGE_DIR`] (the first replica that mounts), and the file is read where it lies. A
    /// name not ending in `.squashfs` is a pointer file naming it. Shell:
    /// `mount -t nfs -o ro 10.0.0.1:/srv/nfs/images/squashfs /run/rootfs/image`.
    fn mount_nfs_image(&mut self, files: &[NfsFile]) -> Result<(), Error> {
        let mut failures = Vec::new();
        for (i, file) in files.iter().enumerate() {
            // Each replica gets an equal share of the time left, so that one that does not
            // answer leaves time for the next.
            let left = self.deadline.saturating_duration_since(Instant::now());
            let share = left / u32::try_from(files.len() - i).unwrap_or(1);
            let m = nfs::NfsMount {
                server: file.server,
                path: file.dir.clone(),
                version: nfs::NfsVersion::Default,
                options: Vec::new(),
                target: IMAGE_DIR.to_string(),
            };
            // A file named in the URL: its version goes in the identity before the mount.
            if let Ok(name) = fetch::ImageName::parse(&file.name) {
                self.live_version(Some(&name), false, true)?;
            }
            let mounted = match self.nfs_mount_until(&m, Instant::now() + share, share) {
                Ok(mounted) => mounted,
                Err(e) => {
                    self.log.warn(&format!("{file}: {e}; trying the next URL"));
                    failures.push(format!("{file}: {e}"));
                    continue;
                }
            };
            let found = self.image_in(file).and_then(|(path, name)| self.pin_nfs_version(path, name, file, &m, share));
            match found {
                Ok(path) => {
                    self.log.info(&format!(
                        "image {file}: {} on nfs {} (vers={})",
                        path.display(),
                        mounted.source,
                        mounted.vers
                    ));
                    // Before the loop device opens the file, which takes its window then.
                    let kib = readahead::IMAGE_READ_AHEAD_KIB;
                    match readahead::raise(self.root, &self.root.path(IMAGE_DIR), kib) {
                        Ok(was) if was < kib => {
                            self.log.info(&format!("image on nfs: read-ahead {kib} KiB (was {was})"))
                        }
                        Ok(_) => {}
                        Err(e) => self.log.warn(&format!("image on nfs: read-ahead left as it is: {e}")),
                    }
                    self.prefetch_tables(&path);
                    self.nfs_root = Some((file.server, mounted.vers));
                    self.state.lower_type = format!("squashfs-nfs{}", mounted.vers);
                    self.image_file = Some((path, file.to_string()));
                    return Ok(());
                }
                Err(why) => {
                    self.log.warn(&format!("{file}: {why}; trying the next URL"));
                    failures.push(format!("{file}: {why}"));
                    // EINVAL: nothing is mounted there (a mount again under the versioned
                    // identity failed), which is what this wants.
                    match rustix::mount::unmount(IMAGE_DIR, rustix::mount::UnmountFlags::DETACH) {
                        Ok(()) | Err(rustix::io::Errno::INVAL) => {}
                        Err(e) => self.log.warn(&format!("unmounting {IMAGE_DIR} failed: {e}")),
                    }
                }
            }
        }
        Err(Error::NfsImage(format!("the squashfs image could not be found on NFS: {}", failures.join("; "))))
    }

    /// The version in the name of the image file found (`path`, `name`) goes in the state,
    /// and in the NFSv4 identity as over HTTP (`clusterroot-<mac>@3`), so that `crctl image
    /// list` and `gc` on the master see who runs what. A file named in the URL had its
    /// version in the identity before the mount; one a pointer file named was mounted under
    /// the identity without it, so the export is unmounted and mounted again under the new
    /// one (a new NFSv4 client), and the file is taken by its name. The error is the reason.
    fn pin_nfs_version(
        &mut self,
        path: PathBuf,
        name: Option<fetch::ImageName>,
        file: &NfsFile,
        m: &nfs::NfsMount,
        share: Duration,
    ) -> Result<PathBuf, String> {
        let pointer = !file.name.ends_with(fetch::SUFFIX);
        let name = match name {
            Some(name) if self.identity_lacks(name.version()) => name,
            other => {
                self.live_version(other.as_ref(), pointer, false).map_err(|e| e.to_string())?;
                return Ok(path);
            }
        };
        image::unmount(IMAGE_DIR, false).map_err(|e| e.to_string())?;
        self.live_version(Some(&name), pointer, true).map_err(|e| e.to_string())?;
        self.nfs_mount_until(m, Instant::now() + share, share).map_err(|e| e.to_string())?;
        let path = self.root.path(IMAGE_DIR).join(name.to_string());
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => Ok(path),
            _ => Err(format!(
                "{name} was gone when the export was mounted again under the identity {}",
                self.state.nfs_identity
            )),
        }
    }

    /// The image file named by `file` in the export mounted on [`IMAGE_DIR`], following a
    /// pointer file, with its name parsed if crctl made it (`<version>-<sha256>.squashfs`;
    /// an admin's own file name has no version); the error is the reason.
    fn image_in(&self, file: &NfsFile) -> Result<(PathBuf, Option<fetch::ImageName>), String> {
        let dir = self.root.path(IMAGE_DIR);
        let (name, parsed) = if file.name.ends_with(fetch::SUFFIX) {
            (file.name.clone(), fetch::ImageName::parse(&file.name).ok())
        } else {
            let pointer = dir.join(&file.name);
            let bytes = read_small(&pointer, fetch::MAX_POINTER)
                .map_err(|e| format!("reading the pointer file {} failed: {e}", file.name))?;
            let name = fetch::parse_pointer(&bytes).map_err(|why| {
                format!("the pointer file does not name an image file: {why}; on the master, crctl image default VERSION writes it again")
            })?;
            (name.to_string(), Some(name))
        };
        let path = dir.join(&name);
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok((path, parsed)),
            Ok(_) => Err(format!("{name} is not a file")),
            Err(e) => Err(format!("{name}: {e} (crctl image list on the master shows the published files)")),
        }
    }

    /// The squashfs image becomes the lower: attached read-only to a loop device and mounted,
    /// read-only. In an image without udev nothing loads `loop`, so the agent does. Shell:
    /// `modprobe loop; mount -t squashfs -o ro,loop /run/rootfs/image/3-<sha256>.squashfs
    /// /run/rootfs/lower`.
    fn mount_squashfs(&mut self, target: &str) -> Result<(), Error> {
        let (file, source) = self.image_file.clone().ok_or(Error::Order { step: "the squashfs mount" })?;
        let paths = LoopPaths::under(self.root);
        if !paths.control.exists() && !self.root.path("/sys/module/loop").exists() {
            // A failure shows as the missing loop-control below, which names the fix.
            let _ = std::process::Command::new(crate::net::drivers::MODPROBE)
                .args(["-q", "loop"])
                .stdin(std::process::Stdio::null())
                .status();
        }
        let dev = loopdev::attach_read_only(&paths, &file, self.deadline)?;
        loopdev::mount_squashfs(&dev, &self.root.path(target))?;
        self.log.info(&format!("lower: squashfs {source} on {target} read-only, through {dev}"));
        // The mount holds the device now; dropping ours leaves it to autoclear at unmount.
        drop(dev);
        self.state.lower_source = source;
        Ok(())
    }

    /// The tables of the squashfs image `file` (on NFS) asked for whole, before the mount
    /// reads them a block at a time. Never fatal: a file that is no squashfs is the mount's
    /// to report.
    fn prefetch_tables(&self, file: &Path) {
        let asked = std::fs::File::open(file).and_then(|f| {
            let mut head = [0u8; readahead::SUPERBLOCK_BYTES];
            std::os::unix::fs::FileExt::read_exact_at(&f, &mut head, 0)?;
            let Some(range) = readahead::tables(&head) else { return Ok(None) };
            let window = u64::from(readahead::IMAGE_READ_AHEAD_KIB) * 1024;
            readahead::prefetch(&f, range.clone(), window)?;
            Ok(Some(range))
        });
        match asked {
            Ok(Some(r)) => self.log.info(&format!(
                "image on nfs: its tables asked for, {} KiB from byte {}",
                (r.end - r.start).div_ceil(1024),
                r.start
            )),
            Ok(None) => self.log.info("image on nfs: no squashfs superblock read: its tables are read as needed"),
            Err(e) => self.log.warn(&format!("image on nfs: its tables are read as needed: {e}")),
        }
    }

    /// The files of the boot order beside an image on NFS, read ahead from its squashfs on
    /// `target`, in at most half the time left. Never fatal: what the boot would read anyway.
    fn read_boot_order(&mut self, target: &str) {
        let list = self.root.path(IMAGE_DIR).join(bootorder::FILE);
        let until = Instant::now() + self.deadline.saturating_duration_since(Instant::now()) / 2;
        match bootorder::read_ahead(&list, &self.root.path(target), until) {
            Ok(None) => self.log.info(&format!("boot order: none ({} is missing)", list.display())),
            Ok(Some(r)) => self.log.info(&format!(
                "boot order: read {} files ahead, {:.1} MiB, in {:.2} s ({} not in the image){}",
                r.files,
                r.bytes as f64 / 1048576.0,
                r.took.as_secs_f64(),
                r.passed,
                r.stopped.map_or(String::new(), |why| format!("; stopped at {why}"))
            )),
            Err(e) => self.log.warn(&format!("boot order: nothing read ahead: {e}")),
        }
    }

    /// One NFS mount over the boot NIC, within the deadline.
    fn nfs_mount(&self, m: &nfs::NfsMount) -> Result<nfs::Mounted, Error> {
        self.nfs_mount_until(m, self.deadline, self.cfg.timeout)
    }

    /// [`Executor::nfs_mount`] within `deadline` (`timeout` is what its messages name).
    fn nfs_mount_until(&self, m: &nfs::NfsMount, deadline: Instant, timeout: Duration) -> Result<nfs::Mounted, Error> {
        let boot = self.boot.as_ref().ok_or(Error::Order { step: "the NFS mount" })?;
        // Per node and per boot, so that nodes booting together do not retry in lockstep.
        let seed = boot.nic.mac.seed() ^ self.start.elapsed().as_nanos() as u64;
        Ok(nfs::mount(m, boot.address, seed, deadline, timeout, self.log)?)
    }

    /// udev creates the master's root device and its `/dev/disk/by-*` link only once the
    /// disk's driver has found it, which may be after this hook starts. Shell:
    /// `until [ -e /dev/disk/by-label/cluster ]; do sleep 0.05; done`.
    fn wait_device(&mut self, device: &DeviceRef) -> Result<(), Error> {
        let path = block::wait(self.root, device, self.deadline, self.cfg.timeout)?;
        self.log.info(&format!("root device {device} is {}", path.display()));
        self.device = Some(path);
        Ok(())
    }

    /// The master's lower from its own disk, read-only unless `rw`; the type from `rootfstype=`
    /// or the superblock. Shell:
    /// `mount -t "$(blkid -o value -s TYPE /dev/sda2)" -o ro /dev/sda2 /run/rootfs/lower`.
    fn mount_device(
        &mut self,
        device: &DeviceRef,
        fstype: Option<&str>,
        flags: Option<&str>,
        rw: bool,
        target: &str,
    ) -> Result<(), Error> {
        let path = self.device.clone().ok_or(Error::Order { step: "the device mount" })?;
        let fstype = match fstype.or_else(|| block::probe_fstype(&path)) {
            Some(t) => t.to_string(),
            None => return Err(BlockError::UnknownFs { device: path.display().to_string() }.into()),
        };
        block::mount_device(&path, &fstype, flags, rw, target)?;
        if target == IMAGES {
            self.store = Some(Store::Local);
        }
        let how = local_access(rw);
        self.log.info(&format!("lower: {fstype} {device} ({}) on {target} {how}", path.display()));
        self.state.lower_source = format!("{device}");
        self.state.lower_type = fstype;
        Ok(())
    }

    /// A ZFS dataset can only be mounted once its pool is imported; `-N` mounts none of the
    /// pool's datasets, so nothing lands outside the lower. Shell:
    /// `modprobe zfs; zpool import -N tank`.
    fn import_pool(&mut self, pool: &str, options: &ImportOptions, param: &str) -> Result<(), Error> {
        if zfs::import(self.root, pool, options, param, self.deadline, self.cfg.timeout)? {
            self.log.info(&format!("ZFS pool {pool} imported (nothing mounted)"));
        } else {
            self.log.info(&format!("ZFS pool {pool} was imported already"));
        }
        Ok(())
    }

    /// The master's lower from its ZFS dataset, read-only unless `rw`; `zfsutil` as `zfs mount`
    /// does, unless the dataset's mountpoint is `legacy`. Shell:
    /// `mount -t zfs -o ro,zfsutil tank/root /run/rootfs/lower`.
    fn mount_zfs(&mut self, dataset: &Dataset, rw: bool, param: &str, target: &str) -> Result<(), Error> {
        let mountpoint = zfs::mountpoint(self.root, dataset, param, self.deadline)?;
        let zfsutil = mountpoint != "legacy";
        zfs::mount_dataset(dataset, zfsutil, rw, target)?;
        if target == IMAGES {
            self.store = Some(Store::Zfs(dataset.clone(), param.to_string()));
        }
        let how = local_access(rw);
        let opt = if zfsutil { format!(", zfsutil: mountpoint {mountpoint}") } else { ", legacy".into() };
        self.log.info(&format!("lower: zfs {dataset}{opt}, on {target} {how}"));
        self.state.lower_source = dataset.to_string();
        self.state.lower_type = "zfs".into();
        Ok(())
    }

    /// `clusterroot.image=`: the store is on [`IMAGES`]; its `default` (or the version named)
    /// is read once, and that version becomes the lower, read-only, for the whole boot: a
    /// later publish changes only `default`, never what a running node has mounted. Over NFS
    /// the store is unmounted first, so the version's mount brings a new NFSv4 client whose
    /// identity names the version (`clusterroot-<mac>@3`): nfsd's client list on the master
    /// then says who runs what (crctl image list). Shell: `v=$(readlink $IMAGES/default)`,
    /// `umount $IMAGES`, `mount -o ro 10.0.0.1:/srv/nfs/images/$v /run/rootfs/lower`.
    fn pin_image(&mut self, choice: &ImageChoice, target: &str) -> Result<(), Error> {
        let store_label = self.state.lower_source.clone();
        let versions = match self.store {
            Some(Store::Zfs(..)) => image::Versions::Datasets,
            _ => image::Versions::Directories,
        };
        let version = image::resolve(std::path::Path::new(IMAGES), choice, &store_label, versions)?;
        match self.store.take().ok_or(Error::Order { step: "the image version" })? {
            Store::Nfs(store, vers) => {
                image::unmount(IMAGES, false)?;
                self.version_identity(&version)?;
                let m = nfs::NfsMount {
                    path: format!("{}/{version}", store.path.trim_end_matches('/')),
                    version: nfs::NfsVersion::exactly(vers),
                    target: target.to_string(),
                    ..store
                };
                self.state.lower_source = self.nfs_mount(&m)?.source;
            }
            Store::Local => {
                image::bind_readonly(IMAGES, &version, target)?;
                image::unmount(IMAGES, true)?;
            }
            Store::Zfs(store, param) => {
                image::unmount(IMAGES, false)?;
                let ds = Dataset::parse(&format!("{store}/{version}")).map_err(|reason| CmdlineError::BadParam {
                    param: param.clone(),
                    reason: format!("its version {version} makes no dataset name: {reason}"),
                })?;
                self.mount_zfs(&ds, false, &param, target)?;
            }
        }
        self.log
            .info(&format!("image: version {version} of {store_label} on {target} read-only, pinned for this boot"));
        self.state.image = version;
        self.state.image_choice = match choice {
            ImageChoice::Default => "default".into(),
            ImageChoice::Version(v) => v.clone(),
        };
        Ok(())
    }

    /// Late hook: another hook's handler has mounted the root on the new root; it becomes the
    /// lower, so the overlay can take its place. Shell: `mount --move /sysroot /run/rootfs/lower`.
    fn move_root(&mut self, from: &str, to: &str) -> Result<(), Error> {
        let (source, fstype) = self.mount_source(from);
        overlay::move_root(from, to)?;
        self.log.info(&format!("lower: {fstype} {source} moved from {from} to {to}"));
        self.state.lower_source = source;
        self.state.lower_type = fstype;
        Ok(())
    }

    /// Each node's writes go to RAM, so a reboot gives it a clean system and the shared
    /// image is never written. Shell:
    /// `mount -t tmpfs -o mode=0755,nodev,size=2G cowspace /run/rootfs/cowspace`.
    fn mount_tmpfs(&mut self, size: Option<&str>, target: &str) -> Result<(), Error> {
        overlay::mount_tmpfs(size, target)?;
        Ok(())
    }

    /// overlayfs needs `upper/` and `work/` on one filesystem; `upper/` takes the lower root's
    /// owner and mode (else `/` would change after boot), and a whiteout hides the node files
    /// of every node from the running system. Done before the overlay is mounted: changing
    /// an upper under a mounted overlay is undefined. Shell: `mkdir upper work`,
    /// `chown`/`chmod --reference=/run/rootfs/lower upper`, `mknod upper/etc/overlays c 0 0`.
    fn prepare_upper(&mut self, hide: &str) -> Result<(), Error> {
        // A symlinked alias would hide only the link and leave the directory visible: hide
        // (and later read) what it resolves to, which must still be strictly below /etc.
        let resolved = overlay::resolve_in_lower(hide)?;
        if let Some(real) = &resolved {
            if real.strip_prefix("/etc/").is_none_or(|rest| rest.is_empty()) {
                return Err(CmdlineError::BadParam {
                    param: format!("clusterroot.overlays={hide}"),
                    reason: format!(
                        "resolves to {real} in the shared root (a symlink leads there); name a directory strictly below /etc"
                    ),
                }
                .into());
            }
            if real != hide {
                self.log.info(&format!("clusterroot.overlays={hide} is {real} in the shared root"));
            }
        }
        let hide = resolved.as_deref().unwrap_or(hide);
        if overlay::prepare_upper(hide, self.log)? {
            self.log.debug(&format!("{hide} hidden from the running system"));
        }
        self.overlays = resolved;
        Ok(())
    }

    /// The node's root: the shared lower under its own tmpfs upper. Shell: `mount -t overlay
    /// -o lowerdir=/run/rootfs/lower,upperdir=...,workdir=... overlay /sysroot`.
    fn mount_overlay(&mut self, target: &str) -> Result<(), Error> {
        overlay::mount_overlay(target)?;
        self.log.info(&format!("overlay on {target}: lower {LOWER}, upper tmpfs"));
        Ok(())
    }

    /// What makes a node itself (host name, fstab, services, keys), picked by its boot MAC and
    /// laid over `/etc` in the upper. From the lower's `/etc/overlays` (the seed's layout), or
    /// from a source of their own that the shared root's export does not reach: the node's
    /// own NFS export, or the master's node-files disk or dataset, mounted read-only for the
    /// copy and unmounted again. From the lower, a node may have none, so a failure only
    /// warns. A source named on the command line is this node's own: without what it gives
    /// (its keys, its identity) the node would come up looking whole but not be itself, so
    /// its failure stops the boot ([`NodeFilesRequired`]); `clusterroot.nodefiles=none` is how
    /// a machine boots without node files.
    /// Shell: `tar -xf /run/rootfs/lower/etc/overlays/$mac.tar -C /sysroot/etc` and
    /// `cp -a /run/rootfs/lower/etc/overlays/$mac/. /sysroot/etc/`; or
    /// `mount -o ro 10.0.0.1:/srv/nfs/nodes/$mac /run/rootfs/nodefiles`, `cp -a`, `umount`.
    fn node_files(&mut self, from: &NodeFilesSource, overlays: &str, target: &str) -> Result<(), Error> {
        let named = !matches!(from, NodeFilesSource::Lower | NodeFilesSource::None);
        let Some(mac) = self.boot_mac else {
            if named {
                return Err(NodeFilesRequired {
                    source_name: from.to_string(),
                    mac: "unknown".into(),
                    cause: "no boot MAC is known to pick them by (no BOOTIF=, ip= with a device, or DHCP)".into(),
                }
                .into());
            }
            self.log.warn("no boot MAC known: node files skipped");
            return Ok(());
        };
        let deadline = self.step_deadline;
        let log = self.log;
        let result = match from {
            NodeFilesSource::None => {
                log.info("node files: none (clusterroot.nodefiles=none)");
                self.state.node_files_source = "none".into();
                return Ok(());
            }
            NodeFilesSource::Lower => {
                let overlays = self.overlays.clone().unwrap_or_else(|| overlays.to_string());
                self.state.node_files_source = overlays.clone();
                nodefiles::apply(LOWER, &overlays, &mac, target, deadline, log).map_err(|e| e.to_string())
            }
            _ => self.mount_node_files(from, mac, deadline).map_err(|e| e.to_string()).and_then(|m| {
                log.info(&format!("node files: {} mounted read-only on {NODEFILES}", m.label));
                self.state.node_files_source = m.label.clone();
                let applied = match m.layout {
                    // The node's own export: its contents are its files.
                    Layout::Tree => nodefiles::apply_tree(NODEFILES, &m.label, target, deadline, log).map(|n| {
                        log.info(&format!("node files: {}: {n} entries", m.label));
                        vec![format!("{mac}/")]
                    }),
                    // A filesystem laid out as /etc/overlays is.
                    Layout::PerMac => {
                        let dir = NODEFILES.strip_prefix(RUN_ROOTFS).unwrap_or(NODEFILES);
                        nodefiles::apply(RUN_ROOTFS, dir, &mac, target, deadline, log)
                    }
                };
                let unmounted = m.unmount().map_err(|e| e.to_string());
                let applied = applied.map_err(|e| e.to_string())?;
                unmounted.map(|()| applied)
            }),
        };
        match result {
            Ok(applied) => self.state.node_files = applied,
            Err(cause) if named => {
                return Err(NodeFilesRequired { source_name: from.to_string(), mac: mac.to_string(), cause }.into())
            }
            Err(e) => log.warn(&format!("node files: {e}; the boot goes on without them")),
        }
        // What they put in /etc, for `crctl diff`: the upper holds nothing else yet.
        let upper_etc = self.root.path(UPPER).join("etc");
        if let Err(e) = manifest::scan(&upper_etc).and_then(|m| manifest::write(self.root, &m)) {
            log.warn(&format!("recording the node files for crctl diff: {e}"));
        }
        Ok(())
    }

    /// Mounts a node-files source other than the lower on [`NODEFILES`]: the node's own NFS
    /// export (from the root's server and NFS version unless named), or the master's disk or
    /// dataset.
    fn mount_node_files(
        &self,
        from: &NodeFilesSource,
        mac: MacAddress,
        deadline: Instant,
    ) -> Result<nodesource::Mounted, nodesource::SourceError> {
        let (root, timeout) = (self.root, self.cfg.timeout);
        match from {
            NodeFilesSource::Nfs { server, dir } => {
                let client = self.boot.as_ref().map(|b| b.address).unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
                let (root_server, vers) = match self.nfs_root {
                    Some((s, v)) => (Some(s), v),
                    None => (None, "4.2"),
                };
                nodesource::mount_nfs(*server, dir, mac, root_server, vers, client, deadline, timeout, self.log)
            }
            NodeFilesSource::Device(d) => nodesource::mount_device(root, d, deadline, timeout),
            NodeFilesSource::Zfs(ds) => nodesource::mount_zfs(root, ds, &self.cfg.zfs_import, deadline, timeout),
            NodeFilesSource::Lower | NodeFilesSource::None => unreachable!("node_files handles these itself"),
        }
    }

    /// What the booted system cannot know by itself: every node boots one image, so its
    /// machine-id, host name and ssh keys would be the image's, and its network manager would
    /// treat the boot NIC's address (which the NFS root needs) as its own to remove. The
    /// node files' own identity is kept; the rest is filled in or warned about, the boot NIC
    /// handed over in runtime files ([`handover`]). Shell: `echo $id >/sysroot/etc/machine-id`,
    /// `cat >/run/systemd/network/10-clusterroot-ens2.network`.
    fn hand_over(&mut self, target: &str) -> Result<(), Error> {
        let layers = handover::Layers { newroot: target, lower: LOWER, upper: UPPER };
        let net = self.boot.as_ref().map(|b| handover::BootNet {
            nic: &b.nic,
            address: b.address,
            prefix: b.prefix,
            lease: self.lease.as_ref(),
            gateway: self.gateway,
        });
        let id = handover::hand_over(self.root, &layers, self.boot_mac.as_ref(), net.as_ref(), self.log);
        self.state.hostname = id.hostname;
        self.state.machine_id_source = id.machine_id;
        Ok(())
    }

    /// What was mounted from where, and how long each step took, for the running system and
    /// the tests; the root is ready, so a failure only warns. Shell:
    /// `printf 'mode=overlay\n...' >/run/clusterroot/state`.
    fn write_state(&mut self) -> Result<(), Error> {
        self.state.total = self.start.elapsed();
        if let Err(e) = self.state.write(self.root) {
            self.log.warn(&format!("writing {} failed: {e}", state::STATE_FILE));
        }
        Ok(())
    }

    /// Source and type of the mount on `path`, from `/proc/self/mounts`.
    fn mount_source(&self, path: &str) -> (String, String) {
        let text = std::fs::read_to_string(self.root.path("/proc/self/mounts")).unwrap_or_default();
        text.lines()
            .rev()
            .find_map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                (f.len() >= 3 && f[1] == path).then(|| (f[0].to_string(), f[2].to_string()))
            })
            .unwrap_or_else(|| ("?".into(), "?".into()))
    }

    /// The last line on success: what the new root is, the boot MAC, the node files, timings.
    fn summary(&self, plan: &Plan) {
        let secs = |d: Duration| format!("{:.2}", d.as_secs_f64());
        let total = self.start.elapsed();
        let steps: Vec<String> = self.state.timings.iter().map(|(n, d)| format!("{n} {}", secs(*d))).collect();
        let files =
            if self.state.node_files.is_empty() { "none".to_string() } else { self.state.node_files.join(", ") };
        let what = match self.cfg.mode {
            Mode::Overlay => format!(
                "{} is overlay over {} {} + tmpfs",
                plan.newroot, self.state.lower_type, self.state.lower_source
            ),
            Mode::Plain => {
                format!("{} is {} {} (clusterroot=off)", plan.newroot, self.state.lower_type, self.state.lower_source)
            }
        };
        let mac = if self.state.boot_mac.is_empty() { "unknown" } else { &self.state.boot_mac };
        self.log.info(&format!(
            "ready: {what}; boot MAC {mac}; node files: {files}; {} s ({})",
            secs(total),
            steps.join(", ")
        ));
    }
}

/// The log line for a new lease, e.g. `DHCP lease on eth0: 10.0.0.5/24 from 10.0.0.1, router
/// 10.0.0.1, host name node1`.
fn lease_line(won: &Nic, boot: &BootNic, lease: &Lease) -> String {
    let opt = |label: &str, v: Option<String>| v.map(|v| format!(", {label} {v}")).unwrap_or_default();
    format!(
        "DHCP lease on {}: {}/{} from {}{}{}{}{}",
        won.name,
        boot.address,
        boot.prefix,
        lease.server.map(|s| s.to_string()).unwrap_or_else(|| "?".into()),
        opt("router", lease.router.map(|r| r.to_string())),
        opt("host name", lease.hostname.clone()),
        opt("MTU", lease.mtu.map(|m| m.to_string())),
        opt("root path", lease.root_path.clone()),
    )
}

/// How a local lower is mounted, for the log.
fn local_access(rw: bool) -> &'static str {
    if rw {
        "read-write (rw: changes go to the shared image)"
    } else {
        "read-only"
    }
}

/// A small file, refused when larger than `max` bytes.
fn read_small(path: &std::path::Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::other(format!("larger than {max} bytes")));
    }
    Ok(bytes)
}
