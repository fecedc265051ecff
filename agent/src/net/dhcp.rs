//! DHCPv4 client (RFC 2131): DISCOVER, OFFER, REQUEST, ACK on a packet socket per NIC.
//!
//! The packet format is dhcproto's; this module adds the IPv4/UDP framing a packet socket
//! needs before the NIC has an address, a state machine driven by explicit time (so tests
//! need no clock or network), and the loop that races every candidate NIC.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable};
use rustix::io::Errno;

use super::arp::{self, ArpError};
use super::netlink::{Netlink, NetlinkError};
use super::nic::{follow_rename, has_carrier};
use super::packet::{EtherType, PacketSocket, BROADCAST};
use super::{Lease, Nic};
use crate::kmsg::Log;
use crate::mac::MacAddress;
use crate::root::Root;

pub const CLIENT_PORT: u16 = 68;
pub const SERVER_PORT: u16 = 67;

#[derive(Debug, thiserror::Error)]
pub enum DhcpError {
    #[error("DHCP: no offer on {ifaces} within clusterroot.timeout={secs} s; check that a DHCP server answers on that network and knows this node's MAC, or give a static ip=")]
    NoOffer { ifaces: String, secs: u64 },
    #[error("DHCP: no NIC got a link within clusterroot.timeout={secs} s; NICs present: {present}")]
    NoLink { secs: u64, present: String },
    #[error("DHCP: {op} on {iface} failed: {errno}")]
    Socket { iface: String, op: &'static str, errno: Errno },
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
}

/// What a DHCP server's reply says; built from a decoded message, no I/O.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub kind: MessageType,
    pub xid: u32,
    pub chaddr: [u8; 6],
    pub yiaddr: Ipv4Addr,
    pub siaddr: Ipv4Addr,
    pub server_id: Option<Ipv4Addr>,
    pub lease: Lease,
}

fn text(s: &str) -> Option<String> {
    let t = s.trim_end_matches('\0').trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// Decodes a DHCP reply. Anything that is not a well-formed BOOTREPLY with a message type
/// is `None`: replies come from the network and are untrusted.
pub fn parse_reply(bytes: &[u8]) -> Option<Reply> {
    // dhcproto's `chaddr()` slices by the packet's own `hlen` byte and panics past 16: check
    // the fixed header first (op 2 = BOOTREPLY, htype 1 = Ethernet, hlen 6, magic cookie).
    if bytes.len() < 240 || bytes[0] != 2 || bytes[1] != 1 || bytes[2] != 6 || bytes[236..240] != [99, 130, 83, 99] {
        return None;
    }
    let msg = Message::decode(&mut Decoder::new(bytes)).ok()?;
    if msg.opcode() != Opcode::BootReply || msg.chaddr().len() < 6 {
        return None;
    }
    let kind = msg.opts().msg_type()?;
    let mut chaddr = [0u8; 6];
    chaddr.copy_from_slice(&msg.chaddr()[..6]);
    let mut lease = Lease::default();
    for (_, opt) in msg.opts().iter() {
        match opt {
            DhcpOption::SubnetMask(m) => lease.prefix = crate::cmdline::netmask_prefix(*m),
            DhcpOption::Router(r) => lease.router = r.first().copied(),
            DhcpOption::DomainNameServer(d) => lease.dns = d.iter().copied().take(3).collect(),
            DhcpOption::DomainName(d) => lease.domain = text(d),
            DhcpOption::Hostname(h) => lease.hostname = text(h),
            DhcpOption::InterfaceMtu(m) if *m >= 68 => lease.mtu = Some(*m),
            DhcpOption::RootPath(p) => lease.root_path = text(p),
            DhcpOption::AddressLeaseTime(t) => lease.lease_time = Some(*t),
            _ => {}
        }
    }
    let server_id = match msg.opts().get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(s)) => Some(*s),
        _ => None,
    };
    let siaddr = msg.siaddr();
    lease.server = server_id.or((!siaddr.is_unspecified()).then_some(siaddr));
    let yiaddr = msg.yiaddr();
    lease.address = (!yiaddr.is_unspecified()).then_some(yiaddr);
    Some(Reply { kind, xid: msg.xid(), chaddr, yiaddr, siaddr, server_id, lease })
}

const WANTED: [OptionCode; 9] = [
    OptionCode::SubnetMask,
    OptionCode::Router,
    OptionCode::DomainNameServer,
    OptionCode::Hostname,
    OptionCode::DomainName,
    OptionCode::RootPath,
    OptionCode::InterfaceMtu,
    OptionCode::AddressLeaseTime,
    OptionCode::ServerIdentifier,
];

/// A DISCOVER or REQUEST from `mac`. Replies are asked for by broadcast: the NIC has no
/// address to receive unicast on yet.
pub fn build_request(
    kind: MessageType,
    mac: &MacAddress,
    xid: u32,
    secs: u16,
    requested: Option<(Ipv4Addr, Ipv4Addr)>,
    hostname: Option<&str>,
) -> Vec<u8> {
    let u = Ipv4Addr::UNSPECIFIED;
    let mut msg = Message::new_with_id(xid, u, u, u, u, &mac.0);
    msg.set_opcode(Opcode::BootRequest).set_flags(Flags::default().set_broadcast()).set_secs(secs);
    let opts = msg.opts_mut();
    opts.insert(DhcpOption::MessageType(kind));
    let mut client_id = vec![1u8];
    client_id.extend_from_slice(&mac.0);
    opts.insert(DhcpOption::ClientIdentifier(client_id));
    opts.insert(DhcpOption::MaxMessageSize(1472));
    opts.insert(DhcpOption::ParameterRequestList(WANTED.to_vec()));
    if let Some((ip, server)) = requested {
        opts.insert(DhcpOption::RequestedIpAddress(ip));
        opts.insert(DhcpOption::ServerIdentifier(server));
    }
    if let Some(h) = hostname {
        opts.insert(DhcpOption::Hostname(h.to_string()));
    }
    msg.to_vec().unwrap_or_default()
}

/// A DHCPDECLINE (RFC 2131 §3.1.5, table 5) from `mac`: `address`, leased by `server`, is
/// used by the host with MAC `by`, which option 56 says (dnsmasq logs it).
pub fn build_decline(mac: &MacAddress, xid: u32, address: Ipv4Addr, server: Ipv4Addr, by: &MacAddress) -> Vec<u8> {
    let u = Ipv4Addr::UNSPECIFIED;
    let mut msg = Message::new_with_id(xid, u, u, u, u, &mac.0);
    msg.set_opcode(Opcode::BootRequest);
    let opts = msg.opts_mut();
    opts.insert(DhcpOption::MessageType(MessageType::Decline));
    let mut client_id = vec![1u8];
    client_id.extend_from_slice(&mac.0);
    opts.insert(DhcpOption::ClientIdentifier(client_id));
    opts.insert(DhcpOption::RequestedIpAddress(address));
    opts.insert(DhcpOption::ServerIdentifier(server));
    opts.insert(DhcpOption::Message(format!("address in use by {by}")));
    msg.to_vec().unwrap_or_default()
}

/// What to do about a leased address that another host answers for.
pub const LEASE_FIX: &str =
    "change this node's address on the DHCP server (its host entry) or find that host; the address was declined";

/// Probes the leased address with ARP before the NIC takes it (RFC 2131 §4.4.1: the client
/// SHOULD probe it, and MUST send DHCPDECLINE when it is in use). On a conflict the agent
/// declines the address and then fails the boot, naming the address and the other host's MAC,
/// rather than starting over: a cluster's DHCP server gives each node a fixed address (a host
/// entry per MAC), so it would offer the same one again, or after the decline one from its
/// pool that no node file, inventory or export names. Either way the admin must fix the
/// network; a node that boots on an address nobody chose would hide it.
pub fn probe_lease(nic: &Nic, lease: &Lease, deadline: Instant, log: &Log) -> Result<(), ArpError> {
    // No address: nic::apply_lease says so.
    let Some(address) = lease.address else { return Ok(()) };
    let given_by = match lease.server {
        Some(s) => format!("DHCP lease from {s}"),
        None => "DHCP lease".to_string(),
    };
    let result = arp::probe(nic, address, &given_by, LEASE_FIX, deadline, log);
    if let (Err(ArpError::Taken { by, .. }), Some(server)) = (&result, lease.server) {
        let decline = build_decline(&nic.mac, random_seed() as u32, address, server, by);
        let sent = DhcpSocket::open(&nic.name, nic.ifindex)
            .map_err(|e| e.to_string())
            .and_then(|s| s.send(&decline).map_err(|e| e.to_string()));
        match sent {
            Ok(()) => log.debug(&format!("DHCP: declined {address} to {server} (DHCPDECLINE)")),
            Err(e) => log.warn(&format!("DHCP: declining {address} to {server} failed: {e}")),
        }
    }
    result
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Wraps a DHCP payload in IPv4 + UDP from 0.0.0.0:68 to 255.255.255.255:67.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let total = 20 + 8 + payload.len();
    let mut p = Vec::with_capacity(total);
    p.extend_from_slice(&[0x45, 0x10]);
    p.extend_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0]);
    p.extend_from_slice(&[0, 0, 0, 0]);
    p.extend_from_slice(&[255, 255, 255, 255]);
    let c = checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(&CLIENT_PORT.to_be_bytes());
    p.extend_from_slice(&SERVER_PORT.to_be_bytes());
    p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]); // UDP checksum is optional over IPv4
    p.extend_from_slice(payload);
    p
}

/// The UDP payload of an IPv4 packet to port 68, or `None` for anything else.
pub fn unframe(packet: &[u8]) -> Option<&[u8]> {
    if packet.len() < 28 || packet[0] >> 4 != 4 || packet[9] != 17 {
        return None;
    }
    let ihl = usize::from(packet[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    if ihl < 20 || total > packet.len() || total < ihl + 8 {
        return None;
    }
    // Fragments (more-fragments flag or an offset) are not reassembled here.
    if u16::from_be_bytes([packet[6], packet[7]]) & 0x3fff != 0 {
        return None;
    }
    let udp = &packet[ihl..total];
    if u16::from_be_bytes([udp[2], udp[3]]) != CLIENT_PORT {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    if len < 8 || len > udp.len() {
        return None;
    }
    Some(&udp[8..len])
}

/// Where one NIC's client is in RFC 2131's state diagram.
#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Selecting,
    Requesting { address: Ipv4Addr, server: Ipv4Addr, tries: u32 },
}

/// What the client wants done after an event.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    Send(Vec<u8>),
    Bound(Lease),
    /// The server said no (DHCPNAK); start over after the pause.
    Restart {
        after: Duration,
    },
    Ignore,
}

/// One NIC's DHCP client, driven by explicit time.
pub struct Client {
    mac: MacAddress,
    xid: u32,
    hostname: Option<String>,
    state: State,
    start: Instant,
    next: Instant,
    delay: Duration,
    rng: crate::rng::XorShift,
}

/// RFC 2131 §4.1: first retransmission after 4 s, doubling up to 64 s, each ±1 s at random.
const FIRST_DELAY: Duration = Duration::from_secs(4);
const MAX_DELAY: Duration = Duration::from_secs(64);
/// REQUESTs sent for one offer before starting over with a DISCOVER.
const MAX_REQUESTS: u32 = 4;

impl Client {
    pub fn new(mac: MacAddress, seed: u64, hostname: Option<String>, now: Instant) -> Client {
        let mut c = Client {
            mac,
            xid: 0,
            hostname,
            state: State::Selecting,
            start: now,
            next: now,
            delay: FIRST_DELAY,
            rng: crate::rng::XorShift::new(seed),
        };
        c.xid = c.random() as u32;
        c
    }

    fn random(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// `delay` ± 1 s.
    fn jittered(&mut self, delay: Duration) -> Duration {
        let ms = delay.as_millis() as u64;
        Duration::from_millis(ms.saturating_sub(1000) + self.random() % 2001)
    }

    pub fn xid(&self) -> u32 {
        self.xid
    }

    /// When the client next wants [`Client::on_timer`] called.
    pub fn next_timer(&self) -> Instant {
        self.next
    }

    fn secs(&self, now: Instant) -> u16 {
        now.saturating_duration_since(self.start).as_secs().min(u64::from(u16::MAX)) as u16
    }

    fn packet(&self, now: Instant) -> Vec<u8> {
        let (kind, requested) = match &self.state {
            State::Selecting => (MessageType::Discover, None),
            State::Requesting { address, server, .. } => (MessageType::Request, Some((*address, *server))),
        };
        build_request(kind, &self.mac, self.xid, self.secs(now), requested, self.hostname.as_deref())
    }

    /// Sends (or resends) the current message when its time has come.
    pub fn on_timer(&mut self, now: Instant) -> Event {
        if now < self.next {
            return Event::Ignore;
        }
        if let State::Requesting { tries, .. } = &mut self.state {
            *tries += 1;
            if *tries > MAX_REQUESTS {
                self.state = State::Selecting;
                self.xid = self.random() as u32;
                self.delay = FIRST_DELAY;
            }
        }
        let pkt = self.packet(now);
        let wait = self.jittered(self.delay);
        self.next = now + wait;
        self.delay = (self.delay * 2).min(MAX_DELAY);
        Event::Send(pkt)
    }

    /// Handles a reply; replies for other clients or transactions are ignored.
    pub fn on_reply(&mut self, reply: &Reply, now: Instant) -> Event {
        if reply.xid != self.xid || reply.chaddr != self.mac.0 {
            return Event::Ignore;
        }
        match (&self.state, reply.kind) {
            (State::Selecting, MessageType::Offer) => {
                let (Some(server), false) = (reply.lease.server, reply.yiaddr.is_unspecified()) else {
                    return Event::Ignore;
                };
                self.state = State::Requesting { address: reply.yiaddr, server, tries: 0 };
                self.delay = FIRST_DELAY;
                self.next = now;
                self.on_timer(now)
            }
            (State::Requesting { server, .. }, MessageType::Ack) if reply.lease.server == Some(*server) => {
                if reply.yiaddr.is_unspecified() {
                    return Event::Ignore;
                }
                Event::Bound(reply.lease.clone())
            }
            (State::Requesting { server, .. }, MessageType::Nak) if reply.server_id.is_none_or(|s| s == *server) => {
                self.state = State::Selecting;
                self.xid = self.random() as u32;
                self.delay = FIRST_DELAY;
                let after = self.jittered(Duration::from_secs(2));
                self.next = now + after;
                Event::Restart { after }
            }
            _ => Event::Ignore,
        }
    }
}

/// A packet socket for IPv4 on one NIC, which sends DHCP messages by broadcast.
pub struct DhcpSocket(PacketSocket);

impl DhcpSocket {
    pub fn open(iface: &str, ifindex: u32) -> Result<DhcpSocket, DhcpError> {
        PacketSocket::open(ifindex, EtherType::Ipv4).map(DhcpSocket).map_err(|(op, errno)| DhcpError::Socket {
            iface: iface.to_string(),
            op,
            errno,
        })
    }

    /// Broadcasts one DHCP message.
    pub fn send(&self, payload: &[u8]) -> Result<(), Errno> {
        self.0.send_to(&frame(payload), BROADCAST)
    }

    /// Reads one packet if one is waiting; `Ok(None)` when none is.
    pub fn recv(&self, buf: &mut [u8]) -> Result<Option<usize>, Errno> {
        self.0.recv(buf)
    }

    pub fn fd(&self) -> rustix::fd::BorrowedFd<'_> {
        self.0.fd()
    }
}

/// One NIC taking part in the race for a lease.
struct Racer {
    nic: Nic,
    sock: Option<DhcpSocket>,
    client: Option<Client>,
}

/// Runs DHCP on `candidates` (re-listed while waiting, so late drivers count) at once; the
/// first NIC to get a lease wins and the others are set down again, so one dead NIC costs
/// nothing. Every NIC is brought up; a NIC takes part from the moment it has a link.
pub fn acquire(
    root: &Root,
    candidates: &dyn Fn() -> Vec<Nic>,
    hostname: Option<&str>,
    deadline: Instant,
    timeout: Duration,
    nl: &mut Netlink,
    log: &Log,
) -> Result<(Nic, Lease), DhcpError> {
    let mut racers: Vec<Racer> = Vec::new();
    let mut buf = vec![0u8; 2048];
    let seed0 = random_seed();
    loop {
        let now = Instant::now();
        for nic in candidates() {
            if !racers.iter().any(|r| r.nic.ifindex == nic.ifindex) {
                nl.set_up(&nic)?;
                log.debug(&format!("DHCP: waiting for a link on {nic}"));
                racers.push(Racer { nic, sock: None, client: None });
            }
        }
        for r in racers.iter_mut().filter(|r| r.client.is_none()) {
            // Up since the loop above, so udev can no longer rename it; a rename just
            // before is followed.
            follow_rename(root, &mut r.nic);
            if has_carrier(root, &r.nic.name) {
                r.sock = Some(DhcpSocket::open(&r.nic.name, r.nic.ifindex)?);
                let seed = seed0 ^ r.nic.mac.seed();
                r.client = Some(Client::new(r.nic.mac, seed, hostname.map(str::to_string), now));
                log.info(&format!("DHCP: asking on {}", r.nic));
            }
        }
        // Send what is due, then read what came.
        for r in racers.iter_mut() {
            let (Some(sock), Some(client)) = (r.sock.as_ref(), r.client.as_mut()) else { continue };
            if let Event::Send(pkt) = client.on_timer(now) {
                if let Err(errno) = sock.send(&pkt) {
                    log.debug(&format!("DHCP: sending on {} failed: {errno}", r.nic.name));
                }
            }
        }
        let mut won: Option<(usize, Lease)> = None;
        for (i, r) in racers.iter_mut().enumerate() {
            let (Some(sock), Some(client)) = (r.sock.as_ref(), r.client.as_mut()) else { continue };
            while let Ok(Some(n)) = sock.recv(&mut buf) {
                let Some(reply) = unframe(&buf[..n]).and_then(parse_reply) else { continue };
                match client.on_reply(&reply, Instant::now()) {
                    Event::Send(pkt) => {
                        log.debug(&format!(
                            "DHCP: offer of {} on {} from {:?}",
                            reply.yiaddr, r.nic.name, reply.lease.server
                        ));
                        let _ = sock.send(&pkt);
                    }
                    Event::Bound(lease) => {
                        won = Some((i, lease));
                        break;
                    }
                    Event::Restart { .. } => log.warn(&format!(
                        "DHCP: {:?} refused the address on {} (DHCPNAK); starting over",
                        reply.lease.server, r.nic.name
                    )),
                    Event::Ignore => {}
                }
            }
            if won.is_some() {
                break;
            }
        }
        if let Some((i, lease)) = won {
            let winner = racers.swap_remove(i).nic;
            for other in &racers {
                let _ = nl.set_down(&other.nic);
            }
            return Ok((winner, lease));
        }
        if Instant::now() >= deadline {
            let asked: Vec<String> = racers.iter().filter(|r| r.client.is_some()).map(|r| r.nic.to_string()).collect();
            for r in &racers {
                let _ = nl.set_down(&r.nic);
            }
            return Err(if asked.is_empty() {
                let present: Vec<String> = racers.iter().map(|r| r.nic.to_string()).collect();
                DhcpError::NoLink {
                    secs: timeout.as_secs(),
                    present: if present.is_empty() { "none".into() } else { present.join(", ") },
                }
            } else {
                DhcpError::NoOffer { ifaces: asked.join(", "), secs: timeout.as_secs() }
            });
        }
        // Sleep until the next retransmission, a packet, or the next link check.
        let mut wake = Instant::now() + Duration::from_millis(100);
        for c in racers.iter().filter_map(|r| r.client.as_ref()) {
            wake = wake.min(c.next_timer());
        }
        wake = wake.min(deadline);
        let mut fds: Vec<rustix::event::PollFd> = racers
            .iter()
            .filter_map(|r| r.sock.as_ref())
            .map(|s| rustix::event::PollFd::from_borrowed_fd(s.fd(), rustix::event::PollFlags::IN))
            .collect();
        let wait = wake.saturating_duration_since(Instant::now());
        let ts = rustix::time::Timespec { tv_sec: wait.as_secs() as i64, tv_nsec: wait.subsec_nanos() as _ };
        let _ = rustix::event::poll(&mut fds, Some(&ts));
    }
}

/// Entropy for transaction ids: the kernel's random pool, else the clock.
fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    match rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::NONBLOCK) {
        Ok(8) => u64::from_le_bytes(b),
        _ => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x5eed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac() -> MacAddress {
        "52:54:00:77:00:21".parse().unwrap()
    }

    /// A server reply to `xid`, as dnsmasq would send it.
    fn reply(kind: MessageType, xid: u32, yiaddr: [u8; 4], server: [u8; 4]) -> Vec<u8> {
        let u = Ipv4Addr::UNSPECIFIED;
        let mut m = Message::new_with_id(xid, u, yiaddr.into(), server.into(), u, &mac().0);
        m.set_opcode(Opcode::BootReply);
        let o = m.opts_mut();
        o.insert(DhcpOption::MessageType(kind));
        o.insert(DhcpOption::ServerIdentifier(server.into()));
        o.insert(DhcpOption::SubnetMask([255, 255, 255, 0].into()));
        o.insert(DhcpOption::Router(vec![[10, 77, 0, 1].into()]));
        o.insert(DhcpOption::DomainNameServer(vec![[10, 77, 0, 1].into(), [10, 77, 0, 2].into()]));
        o.insert(DhcpOption::DomainName("cluster.test".into()));
        o.insert(DhcpOption::Hostname("node21".into()));
        o.insert(DhcpOption::InterfaceMtu(1400));
        o.insert(DhcpOption::RootPath("10.77.0.1:/srv/root,vers=4.2".into()));
        o.insert(DhcpOption::AddressLeaseTime(3600));
        m.to_vec().unwrap()
    }

    fn sent(e: Event) -> Message {
        match e {
            Event::Send(b) => Message::decode(&mut Decoder::new(&b)).unwrap(),
            other => panic!("expected a packet, got {other:?}"),
        }
    }

    #[test]
    fn discover_offer_request_ack() {
        let t0 = Instant::now();
        let mut c = Client::new(mac(), 42, Some("node21".into()), t0);
        let d = sent(c.on_timer(t0));
        assert_eq!(d.opts().msg_type(), Some(MessageType::Discover));
        assert!(d.flags().broadcast());
        assert_eq!(&d.chaddr()[..6], &mac().0);

        let offer = parse_reply(&reply(MessageType::Offer, c.xid(), [10, 77, 0, 21], [10, 77, 0, 1])).unwrap();
        let r = sent(c.on_reply(&offer, t0));
        assert_eq!(r.opts().msg_type(), Some(MessageType::Request));
        assert_eq!(
            r.opts().get(OptionCode::RequestedIpAddress),
            Some(&DhcpOption::RequestedIpAddress([10, 77, 0, 21].into()))
        );
        assert_eq!(
            r.opts().get(OptionCode::ServerIdentifier),
            Some(&DhcpOption::ServerIdentifier([10, 77, 0, 1].into()))
        );

        let ack = parse_reply(&reply(MessageType::Ack, c.xid(), [10, 77, 0, 21], [10, 77, 0, 1])).unwrap();
        let Event::Bound(lease) = c.on_reply(&ack, t0) else { panic!("not bound") };
        assert_eq!(lease.address, Some(Ipv4Addr::new(10, 77, 0, 21)));
        assert_eq!(lease.prefix, Some(24));
        assert_eq!(lease.router, Some(Ipv4Addr::new(10, 77, 0, 1)));
        assert_eq!(lease.dns.len(), 2);
        assert_eq!(lease.hostname.as_deref(), Some("node21"));
        assert_eq!(lease.mtu, Some(1400));
        assert_eq!(lease.root_path.as_deref(), Some("10.77.0.1:/srv/root,vers=4.2"));
        assert_eq!(lease.server, Some(Ipv4Addr::new(10, 77, 0, 1)));
        let text = lease.render();
        assert!(text.contains("address=10.77.0.21\nprefix=24\nrouter=10.77.0.1\ndns=10.77.0.1,10.77.0.2\n"), "{text}");
        assert!(text.contains("lease_time=3600\n"));
        assert_eq!(lease.resolv_conf().unwrap(), "# written by clusterroot from the DHCP lease\nsearch cluster.test\nnameserver 10.77.0.1\nnameserver 10.77.0.2\n");
    }

    #[test]
    fn retransmits_with_backoff_within_rfc_bounds() {
        let t0 = Instant::now();
        let mut c = Client::new(mac(), 7, None, t0);
        assert!(matches!(c.on_timer(t0), Event::Send(_)));
        assert_eq!(c.on_timer(t0 + Duration::from_millis(100)), Event::Ignore);
        let mut now = t0;
        let mut want = 4u64;
        for _ in 0..7 {
            let gap = c.next_timer() - now;
            assert!(gap >= Duration::from_secs(want - 1) && gap <= Duration::from_secs(want + 1), "{gap:?} vs {want}");
            now = c.next_timer();
            assert!(matches!(c.on_timer(now), Event::Send(_)));
            want = (want * 2).min(64);
        }
    }

    #[test]
    fn foreign_and_stale_replies_are_ignored() {
        let t0 = Instant::now();
        let mut c = Client::new(mac(), 9, None, t0);
        c.on_timer(t0);
        let other_xid = parse_reply(&reply(MessageType::Offer, c.xid() ^ 1, [10, 77, 0, 21], [10, 77, 0, 1])).unwrap();
        assert_eq!(c.on_reply(&other_xid, t0), Event::Ignore);
        let ack_first = parse_reply(&reply(MessageType::Ack, c.xid(), [10, 77, 0, 21], [10, 77, 0, 1])).unwrap();
        assert_eq!(c.on_reply(&ack_first, t0), Event::Ignore, "no ACK before an OFFER was taken");
    }

    #[test]
    fn nak_starts_over_with_a_new_transaction() {
        let t0 = Instant::now();
        let mut c = Client::new(mac(), 11, None, t0);
        c.on_timer(t0);
        let offer = parse_reply(&reply(MessageType::Offer, c.xid(), [10, 77, 0, 21], [10, 77, 0, 1])).unwrap();
        c.on_reply(&offer, t0);
        let old = c.xid();
        let nak = parse_reply(&reply(MessageType::Nak, old, [0, 0, 0, 0], [10, 77, 0, 1])).unwrap();
        let Event::Restart { after } = c.on_reply(&nak, t0) else { panic!("no restart") };
        assert_ne!(c.xid(), old);
        let d = sent(c.on_timer(t0 + after));
        assert_eq!(d.opts().msg_type(), Some(MessageType::Discover));
    }

    #[test]
    fn unanswered_requests_fall_back_to_discover() {
        let t0 = Instant::now();
        let mut c = Client::new(mac(), 13, None, t0);
        c.on_timer(t0);
        let offer = parse_reply(&reply(MessageType::Offer, c.xid(), [10, 77, 0, 21], [10, 77, 0, 1])).unwrap();
        c.on_reply(&offer, t0);
        let mut last = MessageType::Request;
        for _ in 0..MAX_REQUESTS + 1 {
            let now = c.next_timer();
            last = sent(c.on_timer(now)).opts().msg_type().unwrap();
        }
        assert_eq!(last, MessageType::Discover);
    }

    #[test]
    fn decline_names_the_address_and_server() {
        let other: MacAddress = "52:54:00:aa:bb:cc".parse().unwrap();
        let d = Message::decode(&mut Decoder::new(&build_decline(
            &mac(),
            77,
            [10, 77, 0, 21].into(),
            [10, 77, 0, 1].into(),
            &other,
        )))
        .unwrap();
        assert_eq!(d.opts().msg_type(), Some(MessageType::Decline));
        assert_eq!(d.ciaddr(), Ipv4Addr::UNSPECIFIED, "RFC 2131 table 5: ciaddr 0 in a DHCPDECLINE");
        assert_eq!(&d.chaddr()[..6], &mac().0);
        assert_eq!(
            d.opts().get(OptionCode::RequestedIpAddress),
            Some(&DhcpOption::RequestedIpAddress([10, 77, 0, 21].into()))
        );
        assert_eq!(
            d.opts().get(OptionCode::ServerIdentifier),
            Some(&DhcpOption::ServerIdentifier([10, 77, 0, 1].into()))
        );
        assert_eq!(
            d.opts().get(OptionCode::Message),
            Some(&DhcpOption::Message("address in use by 52:54:00:aa:bb:cc".into()))
        );
        assert_eq!(d.opts().get(OptionCode::ParameterRequestList), None, "table 5: MUST NOT");
    }

    #[test]
    fn framing_round_trip() {
        let payload = b"hello dhcp";
        let f = frame(payload);
        assert_eq!(checksum(&f[..20]), 0, "IPv4 header checksum verifies");
        // A reply is addressed to port 68; our own frame goes to 67, so flip the ports.
        let mut back = f.clone();
        back[20..22].copy_from_slice(&SERVER_PORT.to_be_bytes());
        back[22..24].copy_from_slice(&CLIENT_PORT.to_be_bytes());
        assert_eq!(unframe(&back), Some(&payload[..]));
        assert_eq!(unframe(&f), None, "not for port 68");
        assert_eq!(unframe(&f[..27]), None);
    }

    /// Release builds only (`cargo test --release`, run by scripts/test): dhcproto has
    /// `debug_assert!`s on option lengths that come from the packet, which only debug builds
    /// turn into panics; the agent is built in release, where those reads fail cleanly.
    #[test]
    #[cfg_attr(debug_assertions, ignore = "dhcproto debug-asserts on untrusted lengths; run with --release")]
    fn replies_never_panic_the_parser() {
        let good = reply(MessageType::Ack, 5, [10, 77, 0, 21], [10, 77, 0, 1]);
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200_000 {
            let mut b = good.clone();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let flips = (state % 8) as usize;
            for k in 0..=flips {
                let pos = ((state >> (k * 7)) as usize) % b.len();
                b[pos] ^= (state >> 32) as u8 | 1;
            }
            if state & (1 << 50) != 0 {
                b.truncate(((state >> 40) as usize) % (good.len() + 1));
            }
            let _ = parse_reply(&b);
            let _ = unframe(&b);
        }
    }
}
