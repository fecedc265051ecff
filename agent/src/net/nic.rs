//! The boot NIC: found in sysfs, brought up and addressed over rtnetlink, waited for.

use std::time::{Duration, Instant};

use rustix::io::Errno;

use super::arp::{self, ArpError};
use super::drivers;
use super::netlink::{Netlink, NetlinkError};
use super::{Addressing, BootNic, Lease, Nic, NicChoice};
use crate::cmdline::StaticIp;
use crate::kmsg::Log;
use crate::root::Root;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("no network interface {wanted} appeared within {secs} s; interfaces present: {present}; check the NIC driver is in the initramfs and the name/MAC on the command line")]
    NoSuchNic { wanted: String, secs: u64, present: String },
    #[error("several NICs have a link: {with_link}; name the boot NIC with BOOTIF=01-<mac> (pxelinux IPAPPEND 2) or the device field of ip=")]
    Ambiguous { with_link: String },
    #[error("no NIC got a link within {secs} s; NICs present: {present}; check the cable/switch, or raise clusterroot.timeout=")]
    NoLinkAny { secs: u64, present: String },
    #[error("{iface} has no link after {secs} s; check the cable/switch, or raise clusterroot.timeout=")]
    NoLink { iface: String, secs: u64 },
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error("{iface} has no IPv4 address and {because}; give ip=<client-ip>:<server-ip>:<gw-ip>:<netmask>:<hostname>:<device>:off")]
    NoAddress { iface: String, because: &'static str },
    #[error("setting the host name to {name} failed: {errno}")]
    Hostname { name: String, errno: Errno },
    #[error(transparent)]
    Arp(#[from] ArpError),
}

/// What to do about an address from `ip=` that another host answers for.
pub const STATIC_FIX: &str = "give this node another address or find that host";

fn read_trim(root: &Root, path: &str) -> Option<String> {
    std::fs::read_to_string(root.path(path)).ok().map(|s| s.trim().to_string())
}

/// How long udev's queue must stay empty before a NIC it has not recorded counts as named.
/// The kernel sends a new NIC's event before udevd reads it, so an empty queue alone can
/// come just before that event is queued.
const UDEV_QUIET: Duration = Duration::from_millis(150);

/// udev's rule that names NICs (the install hook packs it with the `.link` files; dracut's
/// udev-rules module too). With it, udev records every NIC it handles (the names it set are
/// properties), so a NIC it has not recorded is one it has not named yet, however idle its
/// queue looks: under load the NIC's event can sit unread longer than [`UDEV_QUIET`].
const NAMING_RULES: [&str; 2] =
    ["/usr/lib/udev/rules.d/80-net-setup-link.rules", "/lib/udev/rules.d/80-net-setup-link.rules"];

/// Whether udevd runs and names NICs (see [`NAMING_RULES`]).
fn udev_names_nics(root: &Root) -> bool {
    root.path("/run/udev/control").exists() && NAMING_RULES.iter().any(|p| root.path(p).exists())
}

/// Whether udevd is idle: it does not run (`/run/udev/control` absent), or its queue
/// (`/run/udev/queue`, what `udevadm settle` watches) is empty and still is after [`UDEV_QUIET`].
fn udev_idle(root: &Root) -> bool {
    let queue = root.path("/run/udev/queue");
    if !root.path("/run/udev/control").exists() {
        return true;
    }
    if queue.exists() {
        return false;
    }
    std::thread::sleep(UDEV_QUIET);
    !queue.exists()
}

/// How long a NIC may stay marked as being renamed (see [`udev_recorded`]) before the
/// rename counts as failed and the NIC is taken under the name it has.
const RENAME_STUCK: Duration = Duration::from_secs(5);

/// Whether udev has recorded interface `ifindex` (`/run/udev/data/n<ifindex>`) as named.
/// systemd's udevd writes that record once *before* it renames a NIC, with `ID_RENAMING=1`
/// in it (so that networkd leaves the NIC alone meanwhile), and again after; a NIC brought
/// up in between keeps the kernel's name for good (CI saw eth0 where ens2 was due). So a
/// record that still says `ID_RENAMING` is not one, unless it is older than [`RENAME_STUCK`]:
/// a rename that failed is not retried, and waiting on would only turn it into "no NIC".
fn udev_recorded(root: &Root, ifindex: u32) -> bool {
    let path = root.path(&format!("/run/udev/data/n{ifindex}"));
    let Ok(text) = std::fs::read_to_string(&path) else {
        return false;
    };
    if !text.lines().any(|l| l == "E:ID_RENAMING=1") {
        return true;
    }
    let age = std::fs::metadata(&path).and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
    age.is_some_and(|a| a >= RENAME_STUCK)
}

/// The name interface `ifindex` has now, from `/sys/class/net/*/ifindex`.
fn name_of(root: &Root, ifindex: u32) -> Option<String> {
    let dir = std::fs::read_dir(root.path("/sys/class/net")).ok()?;
    dir.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).find(|name| {
        read_trim(root, &format!("/sys/class/net/{name}/ifindex")).and_then(|i| i.parse().ok()) == Some(ifindex)
    })
}

/// Follows a rename of `nic` (udev's `eth0` → `ens2`, which can land between the moment a
/// NIC is listed and the moment it is brought up, after which the kernel refuses it).
/// The interface index never changes; the name in messages, files and sysfs paths must.
pub fn follow_rename(root: &Root, nic: &mut Nic) {
    let same = read_trim(root, &format!("/sys/class/net/{}/ifindex", nic.name)).and_then(|i| i.parse().ok())
        == Some(nic.ifindex);
    if !same {
        if let Some(name) = name_of(root, nic.ifindex) {
            nic.name = name;
        }
    }
}

/// Ethernet interfaces (`type` 1) backed by a device, in name order, once udev has named
/// them. Bridges, bonds and other virtual interfaces have no `device` link and are left out.
/// udev names a new NIC (`eth0` → `ens2`, from the root's rules and `.link` files that the
/// install hook packs) while handling its event, and cannot once the NIC is up; so a NIC is
/// only listed once udev has recorded it (`/run/udev/data/n<ifindex>`), or, where udev names
/// no NICs and so records none, once it is idle.
pub fn list_ethernet(root: &Root) -> Vec<Nic> {
    scan_ethernet(root).0
}

/// [`list_ethernet`], and how many Ethernet NICs it left out because udev has not named them yet.
fn scan_ethernet(root: &Root) -> (Vec<Nic>, usize) {
    let mut out = Vec::new();
    let mut unnamed = 0;
    let Ok(dir) = std::fs::read_dir(root.path("/sys/class/net")) else {
        return (out, unnamed);
    };
    let mut idle: Option<bool> = None;
    let names = udev_names_nics(root);
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let base = format!("/sys/class/net/{name}");
        if read_trim(root, &format!("{base}/type")).as_deref() != Some("1") {
            continue;
        }
        if !root.path(&format!("{base}/device")).exists() {
            continue;
        }
        let Some(mac) = read_trim(root, &format!("{base}/address")).and_then(|m| m.parse().ok()) else {
            continue;
        };
        let Some(ifindex) = read_trim(root, &format!("{base}/ifindex")).and_then(|i| i.parse().ok()) else {
            continue;
        };
        let recorded = udev_recorded(root, ifindex);
        if !recorded && (names || !*idle.get_or_insert_with(|| udev_idle(root))) {
            unnamed += 1;
            continue;
        }
        let mut nic = Nic { name, mac, ifindex };
        // udev may have renamed it while this looked.
        follow_rename(root, &mut nic);
        out.push(nic);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    (out, unnamed)
}

/// Whether the NIC reports a carrier (`/sys/class/net/<name>/carrier` is `1`; unreadable when down).
pub fn has_carrier(root: &Root, name: &str) -> bool {
    read_trim(root, &format!("/sys/class/net/{name}/carrier")).as_deref() == Some("1")
}

fn describe(nics: &[Nic]) -> String {
    if nics.is_empty() {
        "none".to_string()
    } else {
        nics.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
    }
}

const POLL: Duration = Duration::from_millis(50);

/// How long [`wait_for_ethernet`] waits for a NIC whose driver is still loading.
pub const LATE_NIC: Duration = Duration::from_secs(10);

/// [`list_ethernet`], waiting up to [`LATE_NIC`] (never past `deadline`) while it is empty and
/// some network device has no driver bound yet, or some NIC is not named by udev yet: udevd
/// may still be loading its driver (its coldplug, which the systemd flavor's service does not
/// wait for; CI saw virtio_net bind after the agent looked) or renaming it (CI saw a local
/// boot find no NIC while udevd's record of ens2 still said ID_RENAMING). Empty when no NIC
/// came.
pub fn wait_for_ethernet(root: &Root, deadline: Instant) -> Vec<Nic> {
    let until = (Instant::now() + LATE_NIC).min(deadline);
    let (mut nics, mut unnamed) = scan_ethernet(root);
    while nics.is_empty() && (unnamed > 0 || drivers::unbound_network_devices(root) > 0) && Instant::now() < until {
        std::thread::sleep(POLL);
        (nics, unnamed) = scan_ethernet(root);
    }
    nics
}

/// In an image without udevd nobody else loads the NICs' drivers: the agent does, in the
/// plan's `LoadNicDrivers` step, before it looks for a NIC (by name or MAC, or any NIC that
/// gets a lease). With udevd in the image it leaves them to udevd.
pub fn load_drivers_without_udev(root: &Root, log: &Log) {
    if drivers::udev_in_image(root) {
        log.debug("udevd is in the image: it loads the NIC drivers");
        return;
    }
    drivers::Loader { modprobe: drivers::MODPROBE }.load_network(root, log);
}

/// Finds the NIC the plan names, waiting for it to appear until `deadline`; its driver was
/// loaded before (the plan's `LoadNicDrivers` step).
/// With [`NicChoice::SingleWithLink`] every Ethernet NIC is brought up to see which has a link.
pub fn find_nic(
    root: &Root,
    choice: &NicChoice,
    deadline: Instant,
    nl: &mut Netlink,
    log: &Log,
) -> Result<Nic, NetError> {
    let start = Instant::now();
    let secs = || deadline.saturating_duration_since(start).as_secs().max(1);
    match choice {
        NicChoice::BootIf(_) | NicChoice::Device(_) => loop {
            let nics = list_ethernet(root);
            let found = nics.iter().find(|n| match choice {
                NicChoice::BootIf(mac) => n.mac == *mac,
                NicChoice::Device(d) => n.name == *d,
                NicChoice::SingleWithLink | NicChoice::FirstLease => false,
            });
            if let Some(n) = found {
                return Ok(n.clone());
            }
            if Instant::now() >= deadline {
                return Err(NetError::NoSuchNic { wanted: choice.to_string(), secs: secs(), present: describe(&nics) });
            }
            std::thread::sleep(POLL);
        },
        NicChoice::SingleWithLink | NicChoice::FirstLease => {
            let mut raised: Vec<u32> = Vec::new();
            let mut first_link: Option<Instant> = None;
            loop {
                let nics = list_ethernet(root);
                for n in &nics {
                    if !raised.contains(&n.ifindex) {
                        nl.set_up(n)?;
                        raised.push(n.ifindex);
                    }
                }
                let with_link: Vec<Nic> = nics.iter().filter(|n| has_carrier(root, &n.name)).cloned().collect();
                if !with_link.is_empty() && first_link.is_none() {
                    first_link = Some(Instant::now());
                }
                // Give the other NICs a moment to report their link before deciding.
                let settled = first_link.is_some_and(|t| t.elapsed() >= Duration::from_millis(1500));
                if settled || (Instant::now() >= deadline && !with_link.is_empty()) {
                    return match with_link.len() {
                        1 => Ok(with_link[0].clone()),
                        _ => Err(NetError::Ambiguous { with_link: describe(&with_link) }),
                    };
                }
                if Instant::now() >= deadline {
                    return Err(NetError::NoLinkAny { secs: secs(), present: describe(&nics) });
                }
                if nics.len() == 1 && !with_link.is_empty() {
                    return Ok(with_link[0].clone());
                }
                log.debug(&format!("waiting for a link on: {}", describe(&nics)));
                std::thread::sleep(POLL);
            }
        }
    }
}

/// The first of `nics` that already has an IPv4 address (another hook configured it).
pub fn existing_address(nics: &[Nic], nl: &mut Netlink) -> Result<Option<BootNic>, NetError> {
    for nic in nics {
        if let Some(&(address, prefix)) = nl.ipv4_addresses(nic)?.first() {
            return Ok(Some(BootNic { nic: nic.clone(), address, prefix }));
        }
    }
    Ok(None)
}

/// Waits until `nic` reports a carrier, failing at `deadline` (`start` is when the wait began,
/// for the message).
fn wait_for_link(root: &Root, nic: &Nic, start: Instant, deadline: Instant) -> Result<(), NetError> {
    while !has_carrier(root, &nic.name) {
        if Instant::now() >= deadline {
            return Err(NetError::NoLink {
                iface: nic.name.clone(),
                secs: deadline.saturating_duration_since(start).as_secs().max(1),
            });
        }
        std::thread::sleep(POLL);
    }
    Ok(())
}

/// Brings the boot NIC up, addresses it as the plan says and waits for its link. A static
/// address is probed with ARP first when `probe` says so ([`arp::probe`]), once the link is
/// there: a probe sent before is lost.
pub fn configure(
    root: &Root,
    nic: &Nic,
    addressing: &Addressing,
    probe: bool,
    deadline: Instant,
    nl: &mut Netlink,
    log: &Log,
) -> Result<BootNic, NetError> {
    let start = Instant::now();
    let mut nic = nic.clone();
    let nic = &mut nic;
    nl.set_up(nic)?;
    // Up now, so udev can no longer rename it; one it renamed just before is followed.
    follow_rename(root, nic);
    let existing = nl.ipv4_addresses(nic)?;
    let (address, prefix) = match (existing.first(), addressing) {
        (Some(&(a, p)), _) => {
            log.info(&format!("{} already has {a}/{p}; using it as it is", nic.name));
            (a, p)
        }
        (None, Addressing::Existing { because }) => {
            return Err(NetError::NoAddress { iface: nic.name.clone(), because });
        }
        (None, Addressing::Dhcp { .. }) => {
            return Err(NetError::NoAddress { iface: nic.name.clone(), because: "no DHCP lease was applied" });
        }
        (None, Addressing::Static(s)) => {
            if let Some(h) = &s.hostname {
                rustix::system::sethostname(h.as_bytes())
                    .map_err(|errno| NetError::Hostname { name: h.clone(), errno })?;
            }
            if probe {
                wait_for_link(root, nic, start, deadline)?;
                arp::probe(nic, s.client, "ip=", STATIC_FIX, deadline, log)?;
            }
            nl.add_address(nic, s.client, s.prefix)?;
            (s.client, s.prefix)
        }
    };
    wait_for_link(root, nic, start, deadline)?;
    if let Addressing::Static(StaticIp { gateway: Some(gw), .. }) = addressing {
        if existing.is_empty() {
            nl.add_default_route(nic, *gw)?;
        }
    }
    Ok(BootNic { nic: nic.clone(), address, prefix })
}

/// Configures the NIC that won the DHCP race: host name (before the NFS mount, so the
/// NFSv4 identity and logs carry it), MTU, address, default route; then writes the lease to
/// `/run/clusterroot/net/<iface>` and DNS settings to `/run/clusterroot/resolv.conf`.
/// A host name from `ip=` wins over the lease's.
pub fn apply_lease(
    root: &Root,
    nic: &Nic,
    lease: &Lease,
    cmdline_hostname: Option<&str>,
    nl: &mut Netlink,
    log: &Log,
) -> Result<BootNic, NetError> {
    let address =
        lease.address.ok_or(NetError::NoAddress { iface: nic.name.clone(), because: "the DHCP lease has none" })?;
    let prefix = lease.prefix.unwrap_or_else(|| crate::cmdline::classful_prefix(address));
    if let Some(h) = cmdline_hostname.or(lease.hostname.as_deref()) {
        let h: String = h.chars().take(64).collect();
        rustix::system::sethostname(h.as_bytes()).map_err(|errno| NetError::Hostname { name: h.clone(), errno })?;
    }
    if let Some(mtu) = lease.mtu {
        nl.set_mtu(nic, mtu)?;
    }
    nl.add_address(nic, address, prefix)?;
    if let Some(gw) = lease.router {
        // A router outside the subnet is the server's mistake, not a reason to fail the boot.
        if let Err(e) = nl.add_default_route(nic, gw) {
            log.warn(&e.to_string());
        }
    }
    let files = [
        (format!("/run/clusterroot/net/{}", nic.name), Some(lease.render())),
        ("/run/clusterroot/resolv.conf".to_string(), lease.resolv_conf()),
    ];
    for (path, text) in files {
        let Some(text) = text else { continue };
        let full = root.path(&path);
        let written =
            full.parent().map(std::fs::create_dir_all).unwrap_or(Ok(())).and_then(|()| std::fs::write(&full, text));
        if let Err(e) = written {
            log.warn(&format!("writing {path} failed: {e}"));
        }
    }
    Ok(BootNic { nic: nic.clone(), address, prefix })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_only_ethernet_devices() {
        let dir = std::env::temp_dir().join(format!("crnet-{}", std::process::id()));
        let mk = |name: &str, kind: &str, mac: &str, idx: &str, device: bool| {
            let d = dir.join("sys/class/net").join(name);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("type"), kind).unwrap();
            std::fs::write(d.join("address"), mac).unwrap();
            std::fs::write(d.join("ifindex"), idx).unwrap();
            if device {
                std::fs::create_dir_all(d.join("device")).unwrap();
            }
        };
        mk("lo", "772\n", "00:00:00:00:00:00\n", "1\n", false);
        mk("enp0s3", "1\n", "52:54:00:77:00:0B\n", "2\n", true);
        mk("br0", "1\n", "52:54:00:77:00:ff\n", "3\n", false);
        std::fs::write(dir.join("sys/class/net/enp0s3/carrier"), "1\n").unwrap();
        let root = Root::new(&dir);
        let nics = list_ethernet(&root);
        assert_eq!(nics.len(), 1);
        assert_eq!(nics[0].to_string(), "enp0s3 (52:54:00:77:00:0b)");
        assert_eq!(nics[0].ifindex, 2);
        assert!(has_carrier(&root, "enp0s3"));
        assert!(!has_carrier(&root, "br0"));
        // udev runs and has an event queued: the NIC may still be renamed, so it waits.
        std::fs::create_dir_all(dir.join("run/udev/data")).unwrap();
        std::fs::write(dir.join("run/udev/control"), "").unwrap();
        std::fs::write(dir.join("run/udev/queue"), "").unwrap();
        assert!(list_ethernet(&root).is_empty());
        // Recorded by udev: named for good.
        std::fs::write(dir.join("run/udev/data/n2"), "I:1\n").unwrap();
        assert_eq!(list_ethernet(&root).len(), 1);
        // Or nothing left in udev's queue.
        std::fs::remove_file(dir.join("run/udev/data/n2")).unwrap();
        std::fs::remove_file(dir.join("run/udev/queue")).unwrap();
        assert_eq!(list_ethernet(&root).len(), 1);
        // udev names NICs here: an empty queue is not enough, only its record is.
        std::fs::create_dir_all(dir.join("usr/lib/udev/rules.d")).unwrap();
        std::fs::write(dir.join("usr/lib/udev/rules.d/80-net-setup-link.rules"), "").unwrap();
        assert!(list_ethernet(&root).is_empty());
        // Recorded, but as being renamed (udevd writes that before it renames): not yet...
        let db = dir.join("run/udev/data/n2");
        std::fs::write(&db, "E:ID_NET_NAME=enp0s3\nE:ID_RENAMING=1\n").unwrap();
        assert!(list_ethernet(&root).is_empty());
        // ...which wait_for_ethernet waits out (here: until udevd's record is final).
        let finish = {
            let db = db.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                std::fs::write(&db, "E:ID_NET_NAME=enp0s3\n").unwrap();
            })
        };
        assert_eq!(wait_for_ethernet(&root, Instant::now() + Duration::from_secs(5)).len(), 1);
        finish.join().unwrap();
        std::fs::write(&db, "E:ID_NET_NAME=enp0s3\nE:ID_RENAMING=1\n").unwrap();
        // ...unless that record is old: the rename failed, and the NIC keeps the name it has.
        let old = std::time::SystemTime::now() - RENAME_STUCK - Duration::from_secs(1);
        std::fs::File::options().write(true).open(&db).unwrap().set_modified(old).unwrap();
        assert_eq!(list_ethernet(&root).len(), 1);
        std::fs::write(&db, "E:ID_NET_NAME=enp0s3\n").unwrap();
        assert_eq!(list_ethernet(&root).len(), 1);
        // udev renames it after it was listed: the name follows the interface index.
        let mut nic = list_ethernet(&root).remove(0);
        std::fs::rename(dir.join("sys/class/net/enp0s3"), dir.join("sys/class/net/ens2")).unwrap();
        follow_rename(&root, &mut nic);
        assert_eq!(nic.name, "ens2");
        assert!(has_carrier(&root, &nic.name));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
