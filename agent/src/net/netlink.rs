//! rtnetlink requests for the boot NIC: link up and down, MTU, IPv4 addresses, default route.

use std::net::Ipv4Addr;

use rustix::fd::{AsFd, OwnedFd};
use rustix::io::Errno;
use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType};

use super::Nic;

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("{op} on {iface} failed: {errno}{hint}")]
    Request { op: &'static str, iface: String, errno: Errno, hint: String },
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
    pub fn open() -> Result<Netlink, NetlinkError> {
        let err =
            |errno| NetlinkError::Request { op: "opening rtnetlink", iface: "-".into(), errno, hint: String::new() };
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
    pub fn set_up(&mut self, nic: &Nic) -> Result<(), NetlinkError> {
        let mut body = [0u8; 16];
        body[4..8].copy_from_slice(&(nic.ifindex as i32).to_ne_bytes());
        body[8..12].copy_from_slice(&IFF_UP.to_ne_bytes());
        body[12..16].copy_from_slice(&IFF_UP.to_ne_bytes());
        self.transact(RTM_NEWLINK, 0, &body, &[]).map(|_| ()).map_err(|errno| NetlinkError::Request {
            op: "setting the link up",
            iface: nic.name.clone(),
            errno,
            hint: String::new(),
        })
    }

    /// `ip link set <nic> down`: for NICs that lost the DHCP race.
    pub fn set_down(&mut self, nic: &Nic) -> Result<(), NetlinkError> {
        let mut body = [0u8; 16];
        body[4..8].copy_from_slice(&(nic.ifindex as i32).to_ne_bytes());
        body[12..16].copy_from_slice(&IFF_UP.to_ne_bytes());
        self.transact(RTM_NEWLINK, 0, &body, &[]).map(|_| ()).map_err(|errno| NetlinkError::Request {
            op: "setting the link down",
            iface: nic.name.clone(),
            errno,
            hint: String::new(),
        })
    }

    /// `ip link set <nic> mtu <mtu>`.
    pub fn set_mtu(&mut self, nic: &Nic, mtu: u16) -> Result<(), NetlinkError> {
        let mut body = [0u8; 16];
        body[4..8].copy_from_slice(&(nic.ifindex as i32).to_ne_bytes());
        self.transact(RTM_NEWLINK, 0, &body, &[(IFLA_MTU, &u32::from(mtu).to_ne_bytes())]).map(|_| ()).map_err(
            |errno| NetlinkError::Request {
                op: "setting the MTU",
                iface: nic.name.clone(),
                errno,
                hint: format!(" ({mtu}, from DHCP option 26)"),
            },
        )
    }

    /// `ip -4 addr show dev <nic>`.
    pub fn ipv4_addresses(&mut self, nic: &Nic) -> Result<Vec<(Ipv4Addr, u8)>, NetlinkError> {
        let body = ifaddrmsg(0, 0);
        let replies = self.transact(RTM_GETADDR, NLM_F_DUMP, &body, &[]).map_err(|errno| NetlinkError::Request {
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
    pub fn add_address(&mut self, nic: &Nic, ip: Ipv4Addr, prefix: u8) -> Result<(), NetlinkError> {
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
            Err(errno) => Err(NetlinkError::Request {
                op: "adding the address",
                iface: nic.name.clone(),
                errno,
                hint: format!(" ({ip}/{prefix})"),
            }),
        }
    }

    /// `ip route add default via <gw> dev <nic> proto boot`.
    pub fn add_default_route(&mut self, nic: &Nic, gw: Ipv4Addr) -> Result<(), NetlinkError> {
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
            Err(errno) => Err(NetlinkError::Request {
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
}
