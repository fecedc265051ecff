//! `ip=` in the kernel's syntax: off, DHCP, or a static IPv4 address with its fields.

use std::net::Ipv4Addr;

use super::{bad, CmdlineError};

/// The static part of `ip=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticIp {
    pub client: Ipv4Addr,
    pub prefix: u8,
    pub server: Option<Ipv4Addr>,
    pub gateway: Option<Ipv4Addr>,
    pub hostname: Option<String>,
    pub device: Option<String>,
}

/// `ip=` in the kernel's syntax.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IpConfig {
    /// No `ip=`: use the address the interface already has.
    Unset,
    /// `ip=off` / `ip=none`, or autoconf `off` without a client address: configure nothing.
    Off { device: Option<String>, server: Option<Ipv4Addr> },
    /// `ip=dhcp`, `ip=on`, `ip=any`, `ip=bootp`, `ip=rarp`, `ip=both` or such an autoconf field.
    Dhcp { device: Option<String>, server: Option<Ipv4Addr>, hostname: Option<String> },
    /// A client address, netmask, gateway, host name and device.
    Static(StaticIp),
}

impl IpConfig {
    pub fn device(&self) -> Option<&str> {
        match self {
            IpConfig::Unset => None,
            IpConfig::Off { device, .. } | IpConfig::Dhcp { device, .. } => device.as_deref(),
            IpConfig::Static(s) => s.device.as_deref(),
        }
    }

    pub fn server(&self) -> Option<Ipv4Addr> {
        match self {
            IpConfig::Unset => None,
            IpConfig::Off { server, .. } | IpConfig::Dhcp { server, .. } => *server,
            IpConfig::Static(s) => s.server,
        }
    }
}

fn parse_ipv4(key: &str, raw: &str, field: &str, s: &str) -> Result<Option<Ipv4Addr>, CmdlineError> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<Ipv4Addr>().map(Some).map_err(|_| bad(key, Some(raw), format!("{field} '{s}' is not an IPv4 address")))
}

/// The kernel's default netmask for an address when `ip=` leaves it empty (by class).
pub fn classful_prefix(ip: Ipv4Addr) -> u8 {
    match ip.octets()[0] {
        0..=127 => 8,
        128..=191 => 16,
        _ => 24,
    }
}

/// The prefix length of a contiguous netmask (`255.255.255.0` → 24), else `None`.
pub fn netmask_prefix(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let ones = m.leading_ones();
    (m.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
}

/// The `ip=` words that ask for DHCP, alone or in the autoconf field: the kernel's
/// (`Documentation/admin-guide/nfs/nfsroot.rst`). The parser and the root claim
/// ([`crate::claim`]) both read this list.
pub const DHCP_WORDS: &[&str] = &["on", "any", "dhcp", "bootp", "rarp", "both"];

pub(crate) fn is_dhcp_word(s: &str) -> bool {
    DHCP_WORDS.contains(&s)
}

fn valid_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && !s.contains(['/', ':'])
        && !s.chars().any(char::is_whitespace)
}

fn valid_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
}

/// `ip=<client-ip>:<server-ip>:<gw-ip>:<netmask>:<hostname>:<device>:<autoconf>[:<dns0>:<dns1>:<ntp0>]`,
/// or `ip=off|none|dhcp|on|any|...`.
pub fn parse_ip(raw: &str) -> Result<IpConfig, CmdlineError> {
    let key = "ip";
    if raw.is_empty() {
        return Err(bad(key, Some(raw), "is empty; give ip=off, ip=dhcp or ip=<client-ip>:<server-ip>:<gw-ip>:<netmask>:<hostname>:<device>:<autoconf>"));
    }
    if raw == "dhcp6" || raw == "auto6" || raw.ends_with(":dhcp6") || raw.ends_with(":auto6") {
        return Err(bad(
            key,
            Some(raw),
            "IPv6 autoconfiguration is not supported; use ip=dhcp (DHCPv4) or a static IPv4 address",
        ));
    }
    if !raw.contains(':') {
        if raw == "off" || raw == "none" {
            return Ok(IpConfig::Off { device: None, server: None });
        }
        if is_dhcp_word(raw) {
            return Ok(IpConfig::Dhcp { device: None, server: None, hostname: None });
        }
    }
    let fields: Vec<&str> = raw.split(':').collect();
    if fields.len() > 10 {
        return Err(bad(key, Some(raw), format!("has {} fields, at most 10 are allowed", fields.len())));
    }
    let f = |i: usize| fields.get(i).copied().unwrap_or("");
    let client = parse_ipv4(key, raw, "client-ip", f(0))?;
    let server = parse_ipv4(key, raw, "server-ip", f(1))?;
    let gateway = parse_ipv4(key, raw, "gw-ip", f(2))?;
    let netmask = parse_ipv4(key, raw, "netmask", f(3))?;
    let hostname = match f(4) {
        "" => None,
        h if valid_hostname(h) => Some(h.to_string()),
        h => return Err(bad(key, Some(raw), format!("hostname '{h}' is not a valid host name"))),
    };
    let device = match f(5) {
        "" => None,
        d if valid_ifname(d) => Some(d.to_string()),
        d => return Err(bad(key, Some(raw), format!("device '{d}' is not an interface name"))),
    };
    for (i, field) in ["dns0-ip", "dns1-ip", "ntp0-ip"].iter().enumerate() {
        parse_ipv4(key, raw, field, f(7 + i))?;
    }
    let autoconf = f(6);
    let prefix = match netmask {
        Some(m) => Some(
            netmask_prefix(m).ok_or_else(|| bad(key, Some(raw), format!("netmask '{m}' is not a contiguous mask")))?,
        ),
        None => None,
    };
    match (autoconf, client) {
        ("" | "off" | "none", Some(client)) => Ok(IpConfig::Static(StaticIp {
            client,
            prefix: prefix.unwrap_or_else(|| classful_prefix(client)),
            server,
            gateway,
            hostname,
            device,
        })),
        ("" | "off" | "none", None) => Ok(IpConfig::Off { device, server }),
        (a, _) if is_dhcp_word(a) => Ok(IpConfig::Dhcp { device, server, hostname }),
        (a, _) => Err(bad(
            key,
            Some(raw),
            format!("autoconf '{a}' is not one of off, none, on, any, dhcp, bootp, rarp, both"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdline::tests::ip;

    #[test]
    fn static_ip_forms() {
        let cases: &[(&str, IpConfig)] = &[
            ("off", IpConfig::Off { device: None, server: None }),
            ("none", IpConfig::Off { device: None, server: None }),
            ("dhcp", IpConfig::Dhcp { device: None, server: None, hostname: None }),
            ("on", IpConfig::Dhcp { device: None, server: None, hostname: None }),
            ("any", IpConfig::Dhcp { device: None, server: None, hostname: None }),
            ("bootp", IpConfig::Dhcp { device: None, server: None, hostname: None }),
            ("rarp", IpConfig::Dhcp { device: None, server: None, hostname: None }),
            ("both", IpConfig::Dhcp { device: None, server: None, hostname: None }),
            (
                "::10.0.0.1::node7:eno1:on",
                IpConfig::Dhcp { device: Some("eno1".into()), server: None, hostname: Some("node7".into()) },
            ),
            (
                "10.77.0.11:10.77.0.1:10.77.0.254:255.255.255.0:node1:enp0s3:off",
                IpConfig::Static(StaticIp {
                    client: ip("10.77.0.11"),
                    prefix: 24,
                    server: Some(ip("10.77.0.1")),
                    gateway: Some(ip("10.77.0.254")),
                    hostname: Some("node1".into()),
                    device: Some("enp0s3".into()),
                }),
            ),
            (
                "10.77.0.11::10.77.0.1:255.255.0.0:::none",
                IpConfig::Static(StaticIp {
                    client: ip("10.77.0.11"),
                    prefix: 16,
                    server: None,
                    gateway: Some(ip("10.77.0.1")),
                    hostname: None,
                    device: None,
                }),
            ),
            (
                "10.1.2.3",
                IpConfig::Static(StaticIp {
                    client: ip("10.1.2.3"),
                    prefix: 8,
                    server: None,
                    gateway: None,
                    hostname: None,
                    device: None,
                }),
            ),
            (
                "192.168.1.5:::::eth1",
                IpConfig::Static(StaticIp {
                    client: ip("192.168.1.5"),
                    prefix: 24,
                    server: None,
                    gateway: None,
                    hostname: None,
                    device: Some("eth1".into()),
                }),
            ),
            (":::::eth0:dhcp", IpConfig::Dhcp { device: Some("eth0".into()), server: None, hostname: None }),
            ("::10.0.0.1::::off", IpConfig::Off { device: None, server: None }),
            (":10.0.0.1:::::off", IpConfig::Off { device: None, server: Some(ip("10.0.0.1")) }),
        ];
        for (raw, want) in cases {
            assert_eq!(&parse_ip(raw).unwrap(), want, "ip={raw}");
        }
    }

    #[test]
    fn malformed_ip_names_the_parameter_and_field() {
        let cases = [
            ("10.77.0.300::10.77.0.1:255.255.255.0::::", "client-ip '10.77.0.300'"),
            ("10.77.0.3:x::::::", "server-ip 'x'"),
            ("10.77.0.3:::255.0.255.0", "netmask '255.0.255.0' is not a contiguous"),
            ("10.77.0.3::::bad host", "hostname 'bad host'"),
            ("10.77.0.3:::::a/b", "device 'a/b'"),
            ("10.77.0.3::::::magic", "autoconf 'magic'"),
            ("", "is empty"),
            ("1:2:3:4:5:6:7:8:9:10:11", "at most 10"),
            ("dhcp6", "IPv6 autoconfiguration is not supported"),
            (":::::eth0:dhcp6", "IPv6 autoconfiguration is not supported"),
        ];
        for (raw, want) in cases {
            let err = parse_ip(raw).unwrap_err().to_string();
            assert!(err.starts_with(&format!("ip={raw}: ")), "{err}");
            assert!(err.contains(want), "{err} lacks {want}");
        }
    }
}
