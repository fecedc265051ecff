//! Link-layer sockets on one NIC (packet(7), `SOCK_DGRAM`): DHCP's IPv4 and ARP before the NIC has an address.
//!
//! The kernel adds and strips the Ethernet header; the callers build and read the payload.

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

/// An EtherType a packet socket is bound to (`<linux/if_ether.h>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EtherType {
    /// `ETH_P_IP`: DHCP, framed in IPv4 and UDP by the caller.
    Ipv4,
    /// `ETH_P_ARP`: address conflict detection.
    Arp,
}

impl EtherType {
    fn number(self) -> u16 {
        match self {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
        }
    }

    fn protocol(self) -> rustix::net::Protocol {
        match self {
            EtherType::Ipv4 => rustix::net::eth::IP,
            EtherType::Arp => rustix::net::eth::ARP,
        }
    }
}

/// The Ethernet broadcast address.
pub const BROADCAST: [u8; 6] = [0xff; 6];

/// `struct sockaddr_ll` from `<linux/if_packet.h>`, see packet(7).
#[repr(C)]
struct SockaddrLl {
    family: u16,
    protocol: u16,
    ifindex: i32,
    hatype: u16,
    pkttype: u8,
    halen: u8,
    addr: [u8; 8],
}

const AF_PACKET: u16 = 17;

impl SockaddrLl {
    fn new(ifindex: u32, ether_type: EtherType, dest: Option<[u8; 6]>) -> SockaddrLl {
        let mut addr = [0u8; 8];
        let mut halen = 0;
        if let Some(d) = dest {
            addr[..6].copy_from_slice(&d);
            halen = 6;
        }
        SockaddrLl {
            family: AF_PACKET,
            protocol: ether_type.number().to_be(),
            ifindex: ifindex as i32,
            hatype: 0,
            pkttype: 0,
            halen,
            addr,
        }
    }
}

// SAFETY: `with_sockaddr` hands the kernel a pointer to this `repr(C)` value, laid out as
// `struct sockaddr_ll`, with its exact size; the pointer is only used during the call.
unsafe impl rustix::net::addr::SocketAddrArg for SockaddrLl {
    unsafe fn with_sockaddr<R>(
        &self,
        f: impl FnOnce(*const rustix::net::addr::SocketAddrOpaque, rustix::net::addr::SocketAddrLen) -> R,
    ) -> R {
        f((self as *const SockaddrLl).cast(), std::mem::size_of::<SockaddrLl>() as _)
    }
}

/// `socket(AF_PACKET, SOCK_DGRAM, <ether type>)` bound to one NIC, non-blocking.
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: u32,
    ether_type: EtherType,
}

impl PacketSocket {
    /// Opens and binds the socket; on failure, the operation that failed and its errno.
    pub fn open(ifindex: u32, ether_type: EtherType) -> Result<PacketSocket, (&'static str, Errno)> {
        let fd = rustix::net::socket_with(
            AddressFamily::PACKET,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            Some(ether_type.protocol()),
        )
        .map_err(|e| ("opening a packet socket", e))?;
        rustix::net::bind(&fd, &SockaddrLl::new(ifindex, ether_type, None))
            .map_err(|e| ("binding the packet socket", e))?;
        Ok(PacketSocket { fd, ifindex, ether_type })
    }

    /// Sends one payload to the link-layer address `dest`.
    pub fn send_to(&self, payload: &[u8], dest: [u8; 6]) -> Result<(), Errno> {
        let dest = SockaddrLl::new(self.ifindex, self.ether_type, Some(dest));
        rustix::net::sendto(&self.fd, payload, SendFlags::empty(), &dest).map(|_| ())
    }

    /// Reads one packet if one is waiting; `Ok(None)` when none is.
    pub fn recv(&self, buf: &mut [u8]) -> Result<Option<usize>, Errno> {
        match rustix::net::recv(&self.fd, buf, RecvFlags::empty()) {
            Ok((n, _)) => Ok(Some(n)),
            Err(Errno::AGAIN) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Waits until a packet is waiting or `wait` has passed (poll(2)); interrupted waits
    /// simply return early.
    pub fn wait(&self, wait: std::time::Duration) {
        let mut fds = [rustix::event::PollFd::from_borrowed_fd(self.fd(), rustix::event::PollFlags::IN)];
        let ts = rustix::time::Timespec { tv_sec: wait.as_secs() as i64, tv_nsec: wait.subsec_nanos() as _ };
        let _ = rustix::event::poll(&mut fds, Some(&ts));
    }
}
