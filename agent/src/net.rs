//! The boot NIC: found in sysfs, brought up and addressed over rtnetlink, waited for.

use std::fmt;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use rustix::fd::{AsFd, OwnedFd};
use rustix::io::Errno;
use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType};

use crate::cmdline::StaticIp;
use crate::kmsg::Log;
use crate::mac::MacAddress;
use crate::plan::{Addressing, NicChoice};
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
    #[error("{op} on {iface} failed: {errno}{hint}")]
    Netlink { op: &'static str, iface: String, errno: Errno, hint: String },
    #[error("{iface} has no IPv4 address and {because}; give ip=<client-ip>:<server-ip>:<gw-ip>:<netmask>:<hostname>:<device>:off")]
    NoAddress { iface: String, because: &'static str },
    #[error("setting the host name to {name} failed: {errno}")]
    Hostname { name: String, errno: Errno },
}

/// A network interface as sysfs shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nic {
    pub name: String,
    pub mac: MacAddress,
    pub ifindex: u32,
}

impl fmt::Display for Nic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.mac)
    }
}

/// The configured boot NIC.
#[derive(Clone, Debug)]
pub struct BootNic {
    pub nic: Nic,
    pub address: Ipv4Addr,
    pub prefix: u8,
}

fn read_trim(root: &Root, path: &str) -> Option<String> {
    std::fs::read_to_string(root.path(path)).ok().map(|s| s.trim().to_string())
}

/// Ethernet interfaces (`type` 1) backed by a device, in name order. Bridges, bonds and other
/// virtual interfaces have no `device` link and are left out.
pub fn list_ethernet(root: &Root) -> Vec<Nic> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir(root.path("/sys/class/net")) else {
        return out;
    };
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
        out.push(Nic { name, mac, ifindex });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
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

/// Finds the NIC the plan names, waiting for it to appear until `deadline`.
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

/// Brings the boot NIC up, addresses it as the plan says and waits for its link.
pub fn configure(
    root: &Root,
    nic: &Nic,
    addressing: &Addressing,
    deadline: Instant,
    nl: &mut Netlink,
    log: &Log,
) -> Result<BootNic, NetError> {
    let start = Instant::now();
    nl.set_up(nic)?;
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
            nl.add_address(nic, s.client, s.prefix)?;
            (s.client, s.prefix)
        }
    };
    while !has_carrier(root, &nic.name) {
        if Instant::now() >= deadline {
            return Err(NetError::NoLink {
                iface: nic.name.clone(),
                secs: deadline.saturating_duration_since(start).as_secs().max(1),
            });
        }
        std::thread::sleep(POLL);
    }
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
    lease: &crate::dhcp::Lease,
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

// rtnetlink constants, from <linux/netlink.h>, <linux/rtnetlink.h>, <linux/if_addr.h>.
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_MULTI: u16 = 0x2;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const AF_INET: u8 = 2;
const IFF_UP: u32 = 0x1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const IFLA_MTU: u16 = 4;
const RTA_OIF: u16 = 4;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RTN_UNICAST: u8 = 1;

/// Builds one netlink request: header, fixed message, attributes (each padded to 4 bytes).
#[derive(Default)]
pub struct NlMsg {
    buf: Vec<u8>,
}

impl NlMsg {
    pub fn new(msg_type: u16, flags: u16, seq: u32, body: &[u8]) -> NlMsg {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&msg_type.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(body);
        NlMsg { buf }
    }

    pub fn attr(mut self, kind: u16, data: &[u8]) -> NlMsg {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
        self
    }

    pub fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

fn ifaddrmsg(prefix: u8, ifindex: u32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[0] = AF_INET;
    b[1] = prefix;
    b[4..8].copy_from_slice(&ifindex.to_ne_bytes());
    b
}

/// Walks the netlink messages in one datagram: `(type, flags, payload)`.
pub fn parse_messages(mut data: &[u8]) -> Vec<(u16, u16, &[u8])> {
    let mut out = Vec::new();
    while data.len() >= 16 {
        let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
        if len < 16 || len > data.len() {
            break;
        }
        let kind = u16::from_ne_bytes([data[4], data[5]]);
        let flags = u16::from_ne_bytes([data[6], data[7]]);
        out.push((kind, flags, &data[16..len]));
        let next = (len + 3) & !3;
        data = data.get(next..).unwrap_or(&[]);
    }
    out
}

/// Reads `(address, prefix, ifindex)` from an `RTM_NEWADDR` payload.
pub fn parse_ifaddr(payload: &[u8]) -> Option<(Ipv4Addr, u8, u32)> {
    if payload.len() < 8 || payload[0] != AF_INET {
        return None;
    }
    let prefix = payload[1];
    let ifindex = u32::from_ne_bytes([payload[4], payload[5], payload[6], payload[7]]);
    let mut attrs = &payload[8..];
    let mut local = None;
    let mut address = None;
    while attrs.len() >= 4 {
        let len = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]);
        if len < 4 || len > attrs.len() {
            break;
        }
        let data = &attrs[4..len];
        if data.len() == 4 {
            let ip = Ipv4Addr::new(data[0], data[1], data[2], data[3]);
            match kind {
                IFA_LOCAL => local = Some(ip),
                IFA_ADDRESS => address = Some(ip),
                _ => {}
            }
        }
        attrs = attrs.get((len + 3) & !3..).unwrap_or(&[]);
    }
    local.or(address).map(|ip| (ip, prefix, ifindex))
}

/// A `NETLINK_ROUTE` socket: `socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE)`, see rtnetlink(7).
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    pub fn open() -> Result<Netlink, NetError> {
        let err = |errno| NetError::Netlink { op: "opening rtnetlink", iface: "-".into(), errno, hint: String::new() };
        let fd = rustix::net::socket(AddressFamily::NETLINK, SocketType::RAW, None).map_err(err)?;
        rustix::net::bind(&fd, &SocketAddrNetlink::new(0, 0)).map_err(err)?;
        Ok(Netlink { fd, seq: 1 })
    }

    /// Sends one request and collects replies until the ACK (or the end of a dump).
    fn transact(
        &mut self,
        msg_type: u16,
        flags: u16,
        body: &[u8],
        attrs: &[(u16, &[u8])],
    ) -> Result<Vec<Vec<u8>>, Errno> {
        self.seq += 1;
        let mut m = NlMsg::new(msg_type, flags | NLM_F_REQUEST | NLM_F_ACK, self.seq, body);
        for (k, d) in attrs {
            m = m.attr(*k, d);
        }
        let msg = m.finish();
        let kernel = SocketAddrNetlink::new(0, 0);
        rustix::net::sendto(self.fd.as_fd(), &msg, SendFlags::empty(), &kernel)?;
        let mut payloads = Vec::new();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let (n, _) = rustix::net::recv(self.fd.as_fd(), &mut buf[..], RecvFlags::empty())?;
            for (kind, mflags, payload) in parse_messages(&buf[..n]) {
                match kind {
                    NLMSG_ERROR => {
                        let code = payload.get(..4).map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]])).unwrap_or(0);
                        if code == 0 {
                            return Ok(payloads);
                        }
                        return Err(Errno::from_raw_os_error(-code));
                    }
                    NLMSG_DONE => return Ok(payloads),
                    _ => {
                        payloads.push(payload.to_vec());
                        if mflags & NLM_F_MULTI == 0 && flags & NLM_F_DUMP == 0 {
                            return Ok(payloads);
                        }
                    }
                }
            }
        }
    }

    /// `ip link set <nic> up`.
    pub fn set_up(&mut self, nic: &Nic) -> Result<(), NetError> {
        let mut body = [0u8; 16];
        body[4..8].copy_from_slice(&(nic.ifindex as i32).to_ne_bytes());
        body[8..12].copy_from_slice(&IFF_UP.to_ne_bytes());
        body[12..16].copy_from_slice(&IFF_UP.to_ne_bytes());
        self.transact(RTM_NEWLINK, 0, &body, &[]).map(|_| ()).map_err(|errno| NetError::Netlink {
            op: "setting the link up",
            iface: nic.name.clone(),
            errno,
            hint: String::new(),
        })
    }

    /// `ip link set <nic> down`: for NICs that lost the DHCP race.
    pub fn set_down(&mut self, nic: &Nic) -> Result<(), NetError> {
        let mut body = [0u8; 16];
        body[4..8].copy_from_slice(&(nic.ifindex as i32).to_ne_bytes());
        body[12..16].copy_from_slice(&IFF_UP.to_ne_bytes());
        self.transact(RTM_NEWLINK, 0, &body, &[]).map(|_| ()).map_err(|errno| NetError::Netlink {
            op: "setting the link down",
            iface: nic.name.clone(),
            errno,
            hint: String::new(),
        })
    }

    /// `ip link set <nic> mtu <mtu>`.
    pub fn set_mtu(&mut self, nic: &Nic, mtu: u16) -> Result<(), NetError> {
        let mut body = [0u8; 16];
        body[4..8].copy_from_slice(&(nic.ifindex as i32).to_ne_bytes());
        self.transact(RTM_NEWLINK, 0, &body, &[(IFLA_MTU, &u32::from(mtu).to_ne_bytes())]).map(|_| ()).map_err(
            |errno| NetError::Netlink {
                op: "setting the MTU",
                iface: nic.name.clone(),
                errno,
                hint: format!(" ({mtu}, from DHCP option 26)"),
            },
        )
    }

    /// `ip -4 addr show dev <nic>`.
    pub fn ipv4_addresses(&mut self, nic: &Nic) -> Result<Vec<(Ipv4Addr, u8)>, NetError> {
        let body = ifaddrmsg(0, 0);
        let replies = self.transact(RTM_GETADDR, NLM_F_DUMP, &body, &[]).map_err(|errno| NetError::Netlink {
            op: "listing addresses",
            iface: nic.name.clone(),
            errno,
            hint: String::new(),
        })?;
        Ok(replies
            .iter()
            .filter_map(|p| parse_ifaddr(p))
            .filter(|(_, _, idx)| *idx == nic.ifindex)
            .map(|(a, p, _)| (a, p))
            .collect())
    }

    /// `ip addr add <ip>/<prefix> brd + dev <nic>`.
    pub fn add_address(&mut self, nic: &Nic, ip: Ipv4Addr, prefix: u8) -> Result<(), NetError> {
        let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
        let brd = Ipv4Addr::from(u32::from(ip) | !mask).octets();
        let o = ip.octets();
        match self.transact(
            RTM_NEWADDR,
            NLM_F_CREATE | NLM_F_EXCL,
            &ifaddrmsg(prefix, nic.ifindex),
            &[(IFA_LOCAL, &o), (IFA_ADDRESS, &o), (IFA_BROADCAST, &brd)],
        ) {
            Ok(_) | Err(Errno::EXIST) => Ok(()),
            Err(errno) => Err(NetError::Netlink {
                op: "adding the address",
                iface: nic.name.clone(),
                errno,
                hint: format!(" ({ip}/{prefix})"),
            }),
        }
    }

    /// `ip route add default via <gw> dev <nic> proto boot`.
    pub fn add_default_route(&mut self, nic: &Nic, gw: Ipv4Addr) -> Result<(), NetError> {
        let mut body = [0u8; 12];
        body[0] = AF_INET;
        body[4] = RT_TABLE_MAIN;
        body[5] = RTPROT_BOOT;
        body[6] = 0; // RT_SCOPE_UNIVERSE
        body[7] = RTN_UNICAST;
        let oif = nic.ifindex.to_ne_bytes();
        match self.transact(
            RTM_NEWROUTE,
            NLM_F_CREATE | NLM_F_EXCL,
            &body,
            &[(RTA_GATEWAY, &gw.octets()), (RTA_OIF, &oif)],
        ) {
            Ok(_) | Err(Errno::EXIST) => Ok(()),
            Err(errno) => Err(NetError::Netlink {
                op: "adding the default route",
                iface: nic.name.clone(),
                errno,
                hint: format!(
                    " (via {gw}; is the gateway inside the interface's subnet? check gw-ip and netmask in ip=)"
                ),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_padded_messages() {
        let m = NlMsg::new(RTM_NEWADDR, NLM_F_REQUEST, 7, &ifaddrmsg(24, 3))
            .attr(IFA_LOCAL, &[10, 0, 0, 1])
            .attr(99, &[1])
            .finish();
        assert_eq!(m.len(), 16 + 8 + 8 + 8);
        assert_eq!(u32::from_ne_bytes([m[0], m[1], m[2], m[3]]) as usize, m.len());
        let msgs = parse_messages(&m);
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].0, RTM_NEWADDR);
        assert_eq!(parse_ifaddr(msgs[0].2), Some((Ipv4Addr::new(10, 0, 0, 1), 24, 3)));
    }

    #[test]
    fn parser_survives_garbage() {
        for n in 0..64u8 {
            let junk: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37) ^ n).collect();
            let _ = parse_messages(&junk);
            let _ = parse_ifaddr(&junk);
        }
    }

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
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
