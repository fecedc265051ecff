//! Address conflict detection (RFC 5227): ARP probes for an address before the boot NIC takes it.
//!
//! [`Probe`] is the probe as a state machine driven by explicit time, with no I/O: when to
//! send, what a received ARP packet means. [`probe`] runs it on a packet socket. The packets
//! are etherparse's.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use etherparse::{ArpEthIpv4Packet, ArpOperation, ArpPacket};
use rustix::io::Errno;

use super::packet::{EtherType, PacketSocket, BROADCAST};
use super::Nic;
use crate::kmsg::Log;
use crate::mac::MacAddress;

#[derive(Debug, thiserror::Error)]
pub enum ArpError {
    #[error("address {address} ({given_by}) is already used by {by} on {iface}; {fix}")]
    Taken { address: Ipv4Addr, given_by: String, by: MacAddress, iface: String, fix: &'static str },
    #[error("probing {address} with ARP on {iface}: {op} failed: {errno}; boot with clusterroot.arp_probe=0 to skip the probe")]
    Socket { address: Ipv4Addr, iface: String, op: &'static str, errno: Errno },
}

/// Probes sent (RFC 5227's PROBE_NUM is 3): a probe or answer lost on the wire is not
/// taken for a free address while another probe goes through.
pub const PROBES: u32 = 3;
/// Between probes. RFC 5227 waits PROBE_MIN..PROBE_MAX (1–2 s) between them, and up to
/// PROBE_WAIT (1 s) before the first: 3–7 s, spread at random so that hosts powered on
/// together do not probe in step, and slow enough for a busy shared segment. A boot NIC is
/// on a switched LAN where the host that holds an address answers within milliseconds, and
/// nodes booting together probe different addresses, so the probe here is short: the three
/// probes 200 ms apart with no wait before the first, then [`LISTEN`]: 0.6 s on every boot
/// that sets an address. An answer later than that (200 ms after the last probe, 600 ms after
/// the first) is missed.
pub const INTERVAL: Duration = Duration::from_millis(200);
/// How long answers are awaited after the last probe (RFC 5227's ANNOUNCE_WAIT is 2 s).
pub const LISTEN: Duration = Duration::from_millis(200);

/// What the probe wants done next.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Broadcast this ARP packet.
    Send([u8; ArpEthIpv4Packet::LEN]),
    /// Nothing to send before then; read packets meanwhile.
    WaitUntil(Instant),
    /// No other host answered: the address may be taken.
    Free,
}

/// One probe for `address` from the NIC with `mac`, driven by explicit time.
pub struct Probe {
    mac: MacAddress,
    address: Ipv4Addr,
    start: Instant,
    sent: u32,
}

impl Probe {
    pub fn new(mac: MacAddress, address: Ipv4Addr, now: Instant) -> Probe {
        Probe { mac, address, start: now, sent: 0 }
    }

    /// When the whole probe ends if nobody answers.
    pub fn end(&self) -> Instant {
        self.start + INTERVAL * (PROBES - 1) + LISTEN
    }

    /// What to do at `now`: the next probe when it is due, else how long to wait.
    pub fn on_timer(&mut self, now: Instant) -> Action {
        if self.sent < PROBES {
            let due = self.start + INTERVAL * self.sent;
            if now < due {
                return Action::WaitUntil(due);
            }
            self.sent += 1;
            return Action::Send(probe_packet(self.mac, self.address));
        }
        if now < self.end() {
            Action::WaitUntil(self.end())
        } else {
            Action::Free
        }
    }

    /// The MAC of the host that holds or wants the address, if `bytes` (an ARP packet
    /// without its Ethernet header) says one does (RFC 5227 §2.1.1): any ARP packet whose
    /// sender is the address (a reply to the probe, or that host's own request or
    /// announcement), or another host's probe for the same address. Our own packets,
    /// which a packet socket sees too, and anything malformed are `None`.
    pub fn conflict(&self, bytes: &[u8]) -> Option<MacAddress> {
        let arp = ArpPacket::from_slice(bytes).ok()?.try_eth_ipv4().ok()?;
        if arp.sender_mac == self.mac.0 {
            return None;
        }
        let sender = arp.sender_ipv4_addr();
        let other_probe =
            arp.operation == ArpOperation::REQUEST && sender.is_unspecified() && arp.target_ipv4_addr() == self.address;
        (sender == self.address || other_probe).then_some(MacAddress(arp.sender_mac))
    }
}

/// An ARP probe (RFC 5227 §2.1.1): a request for `address` whose sender address is 0.0.0.0,
/// so no host's ARP cache learns anything from it.
pub fn probe_packet(mac: MacAddress, address: Ipv4Addr) -> [u8; ArpEthIpv4Packet::LEN] {
    ArpEthIpv4Packet {
        operation: ArpOperation::REQUEST,
        sender_mac: mac.0,
        sender_ipv4: [0; 4],
        target_mac: [0; 6],
        target_ipv4: address.octets(),
    }
    .to_bytes()
}

/// An ARP announcement (RFC 5227 §2.3): a request whose sender and target are `address`,
/// which updates the neighbours' caches that still hold another MAC for it.
pub fn announcement(mac: MacAddress, address: Ipv4Addr) -> [u8; ArpEthIpv4Packet::LEN] {
    ArpEthIpv4Packet {
        operation: ArpOperation::REQUEST,
        sender_mac: mac.0,
        sender_ipv4: address.octets(),
        target_mac: [0; 6],
        target_ipv4: address.octets(),
    }
    .to_bytes()
}

/// Probes for `address` on `nic` (up, with a link) before it is assigned: [`ArpError::Taken`]
/// names the host that answered, with `given_by` (where the address came from) and `fix`.
/// When nobody answers, one announcement claims the address. A probe cut short by `deadline`
/// counts as free: the steps after it fail on the same deadline.
pub fn probe(
    nic: &Nic,
    address: Ipv4Addr,
    given_by: &str,
    fix: &'static str,
    deadline: Instant,
    log: &Log,
) -> Result<(), ArpError> {
    let sock_err = |(op, errno)| ArpError::Socket { address, iface: nic.name.clone(), op, errno };
    let sock = PacketSocket::open(nic.ifindex, EtherType::Arp).map_err(sock_err)?;
    let start = Instant::now();
    let mut probe = Probe::new(nic.mac, address, start);
    let mut buf = [0u8; 1500];
    loop {
        while let Some(n) = sock.recv(&mut buf).map_err(|e| sock_err(("reading", e)))? {
            if let Some(by) = probe.conflict(&buf[..n]) {
                return Err(ArpError::Taken {
                    address,
                    given_by: given_by.to_string(),
                    by,
                    iface: nic.name.clone(),
                    fix,
                });
            }
        }
        let now = Instant::now();
        match probe.on_timer(now) {
            Action::Send(pkt) => sock.send_to(&pkt, BROADCAST).map_err(|e| sock_err(("sending a probe", e)))?,
            Action::WaitUntil(t) if now < deadline => sock.wait(t.min(deadline) - now),
            Action::WaitUntil(_) => {
                log.warn(&format!("ARP probe for {address} on {}: cut short by the deadline", nic.name));
                return Ok(());
            }
            Action::Free => break,
        }
    }
    if let Err(errno) = sock.send_to(&announcement(nic.mac, address), BROADCAST) {
        log.debug(&format!("ARP announcement of {address} on {} failed: {errno}", nic.name));
    }
    log.debug(&format!(
        "ARP: no other host holds {address} on {} ({PROBES} probes, {} ms)",
        nic.name,
        start.elapsed().as_millis()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours() -> MacAddress {
        "52:54:00:77:00:11".parse().unwrap()
    }

    const OTHER: [u8; 6] = [0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc];
    const ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 11);

    fn arp(op: ArpOperation, sender_mac: [u8; 6], sender: [u8; 4], target: [u8; 4]) -> Vec<u8> {
        let p = ArpEthIpv4Packet {
            operation: op,
            sender_mac,
            sender_ipv4: sender,
            target_mac: [0; 6],
            target_ipv4: target,
        };
        p.to_bytes().to_vec()
    }

    #[test]
    fn three_probes_then_free_within_the_stated_time() {
        let t0 = Instant::now();
        let mut p = Probe::new(ours(), ADDR, t0);
        let mut now = t0;
        let mut sent = Vec::new();
        loop {
            match p.on_timer(now) {
                Action::Send(pkt) => sent.push((now - t0, pkt)),
                Action::WaitUntil(t) => {
                    assert!(t > now);
                    now = t;
                }
                Action::Free => break,
            }
        }
        let times: Vec<Duration> = sent.iter().map(|(t, _)| *t).collect();
        assert_eq!(times, [Duration::ZERO, INTERVAL, INTERVAL * 2]);
        assert_eq!(now - t0, Duration::from_millis(600), "the whole probe");
        // Each is a probe: a request from our MAC, sender 0.0.0.0, target the address.
        let parsed = ArpPacket::from_slice(&sent[0].1).unwrap().try_eth_ipv4().unwrap();
        assert_eq!(parsed.operation, ArpOperation::REQUEST);
        assert_eq!(parsed.sender_mac, ours().0);
        assert_eq!(parsed.sender_ipv4, [0; 4]);
        assert_eq!(parsed.target_ipv4_addr(), ADDR);
        assert_eq!(parsed.target_mac, [0; 6]);
        // A timer that fires early sends nothing twice.
        let mut p = Probe::new(ours(), ADDR, t0);
        assert!(matches!(p.on_timer(t0), Action::Send(_)));
        assert_eq!(p.on_timer(t0 + Duration::from_millis(10)), Action::WaitUntil(t0 + INTERVAL));
    }

    #[test]
    fn what_a_received_packet_means() {
        let p = Probe::new(ours(), ADDR, Instant::now());
        let a = ADDR.octets();
        type Case = (&'static str, Vec<u8>, Option<[u8; 6]>);
        let cases: &[Case] = &[
            ("the holder's reply", arp(ArpOperation::REPLY, OTHER, a, [0; 4]), Some(OTHER)),
            ("the holder's own request", arp(ArpOperation::REQUEST, OTHER, a, [10, 77, 0, 1]), Some(OTHER)),
            ("the holder's announcement", arp(ArpOperation::REQUEST, OTHER, a, a), Some(OTHER)),
            ("another host probing for it", arp(ArpOperation::REQUEST, OTHER, [0; 4], a), Some(OTHER)),
            ("our own probe, looped back", probe_packet(ours(), ADDR).to_vec(), None),
            ("our own announcement", announcement(ours(), ADDR).to_vec(), None),
            (
                "a request for it from a host that has another address",
                arp(ArpOperation::REQUEST, OTHER, [10, 77, 0, 1], a),
                None,
            ),
            (
                "another host probing for another address",
                arp(ArpOperation::REQUEST, OTHER, [0; 4], [10, 77, 0, 12]),
                None,
            ),
            ("a reply about another address", arp(ArpOperation::REPLY, OTHER, [10, 77, 0, 12], [0; 4]), None),
            ("truncated", arp(ArpOperation::REPLY, OTHER, a, [0; 4])[..20].to_vec(), None),
            ("empty", Vec::new(), None),
        ];
        for (what, bytes, want) in cases {
            assert_eq!(p.conflict(bytes), want.map(MacAddress), "{what}");
        }
        // Not Ethernet/IPv4 (hardware type 6, IEEE 802): ignored, whatever it says.
        let mut other_hw = arp(ArpOperation::REPLY, OTHER, a, [0; 4]);
        other_hw[1] = 6;
        assert_eq!(p.conflict(&other_hw), None);
    }

    #[test]
    fn the_error_names_the_address_the_other_mac_and_the_fix() {
        let e = ArpError::Taken {
            address: Ipv4Addr::new(172, 23, 199, 11),
            given_by: "ip=".into(),
            by: MacAddress(OTHER),
            iface: "ens2".into(),
            fix: "give this node another address or find that host",
        };
        assert_eq!(
            e.to_string(),
            "address 172.23.199.11 (ip=) is already used by 52:54:00:aa:bb:cc on ens2; give this node another address or find that host"
        );
    }

    #[test]
    fn random_bytes_never_panic_the_parser() {
        let p = Probe::new(ours(), ADDR, Instant::now());
        let good = arp(ArpOperation::REPLY, OTHER, ADDR.octets(), [0; 4]);
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..50_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut b = good.clone();
            let pos = (state as usize) % b.len();
            b[pos] = (state >> 32) as u8;
            b.truncate(((state >> 40) as usize) % (good.len() + 8));
            let _ = p.conflict(&b);
        }
    }
}
