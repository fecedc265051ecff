//! MAC addresses: parsed once, stored as bytes, shown lowercase with colons like sysfs.

use std::fmt;
use std::str::FromStr;

/// An Ethernet MAC address, displayed as `aa:bb:cc:dd:ee:ff` (the form of
/// `/sys/class/net/*/address`, and of the node-file names under `/etc/overlays`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct MacAddress(pub [u8; 6]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("'{0}' is not a MAC address (expected six hex pairs such as 52:54:00:12:34:56)")]
pub struct MacParseError(pub String);

impl MacAddress {
    /// Parses `BOOTIF=` as pxelinux writes it with `IPAPPEND 2`: `01-aa-bb-cc-dd-ee-ff`
    /// (hardware type 01 = Ethernet, then the address). A bare address is accepted too.
    pub fn from_bootif(s: &str) -> Result<Self, MacParseError> {
        let t = s.trim();
        if t.len() == 20 {
            if let Some(rest) = t.strip_prefix("01-") {
                return rest.parse().map_err(|_| MacParseError(s.to_string()));
            }
        }
        t.parse().map_err(|_| MacParseError(s.to_string()))
    }

    /// The address as a number, to seed per-node randomness (backoff jitter, DHCP xids), so
    /// nodes booting at once don't act in lockstep.
    pub fn seed(&self) -> u64 {
        let b = self.0;
        u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], 0, 0])
    }

    /// The address as 12 lowercase hex digits, without separators.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl FromStr for MacAddress {
    type Err = MacParseError;

    /// Accepts `:` or `-` separators, any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || MacParseError(s.to_string());
        let t = s.trim();
        let sep = if t.contains(':') { ':' } else { '-' };
        let mut out = [0u8; 6];
        let mut n = 0;
        for part in t.split(sep) {
            if n == 6 || part.len() != 2 {
                return Err(err());
            }
            out[n] = u8::from_str_radix(part, 16).map_err(|_| err())?;
            n += 1;
        }
        if n != 6 {
            return Err(err());
        }
        Ok(MacAddress(out))
    }
}

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_spellings() {
        let want = MacAddress([0x52, 0x54, 0x00, 0xab, 0xcd, 0xef]);
        for s in ["52:54:00:ab:cd:ef", "52:54:00:AB:CD:EF", "52-54-00-ab-cd-ef", " 52:54:00:ab:cd:ef\n"] {
            assert_eq!(s.parse::<MacAddress>().unwrap(), want, "{s}");
        }
        assert_eq!(want.to_string(), "52:54:00:ab:cd:ef");
        assert_eq!(want.hex(), "525400abcdef");
    }

    #[test]
    fn bootif_has_a_hardware_type_prefix() {
        let want = MacAddress([0x52, 0x54, 0x00, 0xab, 0xcd, 0xef]);
        assert_eq!(MacAddress::from_bootif("01-52-54-00-ab-cd-ef").unwrap(), want);
        assert_eq!(MacAddress::from_bootif("52:54:00:ab:cd:ef").unwrap(), want);
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "52:54:00:ab:cd",
            "52:54:00:ab:cd:ef:01",
            "5254:00:ab:cd:ef",
            "zz:54:00:ab:cd:ef",
            "02-52-54-00-ab-cd-ef-00",
        ] {
            assert!(s.parse::<MacAddress>().is_err(), "{s}");
            assert!(MacAddress::from_bootif(s).is_err(), "{s}");
        }
    }
}
