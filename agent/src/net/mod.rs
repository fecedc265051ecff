//! The boot network's plain types: which NIC, how it gets its address, what a DHCP lease says.
//!
//! No I/O here, so the plan can name these types without depending on the code that acts on
//! them. That code is in the submodules, each using only the ones listed before it:
//! `packet` (link-layer sockets on one NIC), `arp` (address conflict detection),
//! `drivers` (NIC drivers by modalias when no udev runs), `netlink` (rtnetlink requests),
//! `nic` (find, address and wait for the boot NIC), `dhcp` (the DHCPv4 client that races the
//! candidate NICs for a lease).

pub mod arp;
pub mod dhcp;
pub mod drivers;
pub mod netlink;
pub mod nic;
pub mod packet;

use std::fmt;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::cmdline::StaticIp;
use crate::mac::MacAddress;

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

/// How the boot NIC is found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NicChoice {
    BootIf(MacAddress),
    Device(String),
    /// The only Ethernet NIC with a link; an error listing NICs otherwise.
    SingleWithLink,
    /// DHCP on every Ethernet NIC with a link at once; the first lease wins.
    FirstLease,
}

impl fmt::Display for NicChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NicChoice::BootIf(mac) => write!(f, "the NIC with MAC {mac} (BOOTIF=)"),
            NicChoice::Device(d) => write!(f, "{d} (device in ip=)"),
            NicChoice::SingleWithLink => f.write_str("the only Ethernet NIC with a link"),
            NicChoice::FirstLease => {
                f.write_str("the first Ethernet NIC with a link to get a DHCP lease (all tried at once)")
            }
        }
    }
}

/// How the boot NIC gets its address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addressing {
    Static(StaticIp),
    /// DHCPv4; a host name from `ip=` wins over the lease's.
    Dhcp {
        hostname: Option<String>,
    },
    /// Use the address the interface already has (another hook configured it).
    Existing {
        because: &'static str,
    },
}

/// The settings a lease carries (RFC 2132 options we use): built by [`dhcp`], applied to the
/// boot NIC by [`nic::apply_lease`], read by the plan for the NFS server and root path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lease {
    pub address: Option<Ipv4Addr>,
    pub prefix: Option<u8>,
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub domain: Option<String>,
    pub hostname: Option<String>,
    pub mtu: Option<u16>,
    pub root_path: Option<String>,
    pub lease_time: Option<u32>,
    /// Server identifier (option 54), else `siaddr`: the NFS server when none is named.
    pub server: Option<Ipv4Addr>,
}

impl Lease {
    /// `key=value` lines for `/run/clusterroot/net/<iface>`.
    pub fn render(&self) -> String {
        let ip = |a: Option<Ipv4Addr>| a.map(|a| a.to_string()).unwrap_or_default();
        let clean = |s: &Option<String>| s.as_deref().unwrap_or("").replace(['\n', '\r', '\0'], " ");
        let mut out = String::new();
        let _ = writeln!(out, "address={}", ip(self.address));
        let _ = writeln!(out, "prefix={}", self.prefix.map(|p| p.to_string()).unwrap_or_default());
        let _ = writeln!(out, "router={}", ip(self.router));
        let dns: Vec<String> = self.dns.iter().map(|d| d.to_string()).collect();
        let _ = writeln!(out, "dns={}", dns.join(","));
        let _ = writeln!(out, "domain={}", clean(&self.domain));
        let _ = writeln!(out, "hostname={}", clean(&self.hostname));
        let _ = writeln!(out, "mtu={}", self.mtu.map(|m| m.to_string()).unwrap_or_default());
        let _ = writeln!(out, "root_path={}", clean(&self.root_path));
        let _ = writeln!(out, "lease_time={}", self.lease_time.map(|t| t.to_string()).unwrap_or_default());
        let _ = writeln!(out, "server={}", ip(self.server));
        out
    }

    /// `/run/clusterroot/resolv.conf`, or `None` without DNS servers.
    pub fn resolv_conf(&self) -> Option<String> {
        if self.dns.is_empty() {
            return None;
        }
        let mut out = String::from("# written by clusterroot from the DHCP lease\n");
        if let Some(d) = &self.domain {
            let d: String = d.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-').collect();
            if !d.is_empty() {
                let _ = writeln!(out, "search {d}");
            }
        }
        for ns in &self.dns {
            let _ = writeln!(out, "nameserver {ns}");
        }
        Some(out)
    }
}
