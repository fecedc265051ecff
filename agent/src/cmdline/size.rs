//! Sizes on the command line: `clusterroot.size=` (the upper's tmpfs) and
//! `clusterroot.maxsize=` (the most a squashfs image may take in RAM), in binary units or a
//! share of RAM.

use super::{bad, CmdlineError};

/// The smallest size taken as meant: 1 MiB. Below it is almost surely a number without its
/// unit (tmpfs reads a bare number as bytes), and no root fits in it anyway.
pub const MIN_SIZE: u64 = 1 << 20;
/// The largest size: 1 PiB, far beyond any node's memory and far inside `u64`.
pub const MAX_SIZE: u64 = 1 << 50;

/// A checked size: bytes (kept with the unit it was written in) or a share of RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// `<n><unit>`: `bytes` is `n` times the unit.
    Bytes { n: u64, unit: Option<char>, bytes: u64 },
    /// `<n>%` of RAM, 1 to 100.
    Percent(u8),
}

impl Size {
    /// As tmpfs's `size=` takes it, in the unit given (upper-cased) and without leading
    /// zeros: the kernel's `memparse` would read `010G` as octal, and `0x...` as hex, so only
    /// plain decimal reaches it.
    pub fn tmpfs_option(self) -> String {
        match self {
            Size::Bytes { n, unit, .. } => format!("{n}{}", unit.map(String::from).unwrap_or_default()),
            Size::Percent(p) => format!("{p}%"),
        }
    }

    /// In bytes, given the RAM in bytes (for a share of it).
    pub fn bytes(self, ram: u64) -> u64 {
        match self {
            Size::Bytes { bytes, .. } => bytes,
            Size::Percent(p) => ram / 100 * u64::from(p),
        }
    }
}

/// `<key>=<n>[K|M|G|T]` (binary units, either case; a bare number is bytes) between 1M and
/// 1024T, or `<n>%` of RAM from 1% to 100%.
pub(super) fn parse_size(key: &str, v: Option<&str>) -> Result<Size, CmdlineError> {
    let s = v.unwrap_or("");
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    if digits.is_empty() {
        return Err(bad(
            key,
            v,
            "expected a size such as 512M, 2G or 50% (K, M, G, T are powers of 1024; % is of RAM)",
        ));
    }
    // Only digits: parsing fails on overflow alone.
    let n = digits.parse::<u64>().ok();
    if unit == "%" {
        return match n {
            Some(p @ 1..=100) => Ok(Size::Percent(p as u8)),
            _ => Err(bad(key, v, "a share of RAM must be from 1% to 100%")),
        };
    }
    let (shift, unit) = match unit {
        "" => (0, None),
        "k" | "K" => (10, Some('K')),
        "m" | "M" => (20, Some('M')),
        "g" | "G" => (30, Some('G')),
        "t" | "T" => (40, Some('T')),
        _ => {
            return Err(bad(
                key,
                v,
                format!("unit '{unit}' is not one of K, M, G, T (powers of 1024) or %; write 512M, 2G or 50%"),
            ))
        }
    };
    match n.and_then(|n| Some((n, n.checked_mul(1 << shift)?))) {
        Some((_, 0)) => Err(bad(key, v, "is zero; give a size such as 512M, 2G or 50%")),
        Some((_, b)) if b < MIN_SIZE => Err(bad(
            key,
            v,
            format!("is {b} bytes, too small; a number without a unit counts bytes, so add M or G (512M, 2G); the least is 1M"),
        )),
        Some((n, bytes)) if bytes <= MAX_SIZE => Ok(Size::Bytes { n, unit, bytes }),
        _ => Err(bad(key, v, "is too large; the most is 1024T (1 PiB); for all of RAM write 100%")),
    }
}

#[cfg(test)]
mod tests {
    use crate::cmdline::tests::bad_param;
    use crate::cmdline::BootConfig;

    #[test]
    fn size_forms() {
        for (raw, want) in [
            ("1M", "1M"),
            ("1m", "1M"),
            ("512M", "512M"),
            ("2G", "2G"),
            ("2g", "2G"),
            ("0002G", "2G"),
            ("1024K", "1024K"),
            ("1024k", "1024K"),
            ("1048576", "1048576"),
            ("3t", "3T"),
            ("1024T", "1024T"),
            ("1048576G", "1048576G"),
            ("1%", "1%"),
            ("50%", "50%"),
            ("007%", "7%"),
            ("100%", "100%"),
        ] {
            let c = BootConfig::parse(&format!("clusterroot.size={raw}")).unwrap();
            assert_eq!(c.size.as_deref(), Some(want), "{raw}");
            let c = BootConfig::parse(&format!("clusterroot.maxsize={raw}")).unwrap();
            assert_eq!(c.maxsize.map(|s| s.tmpfs_option()).as_deref(), Some(want), "{raw}");
        }
        assert_eq!(BootConfig::parse("").unwrap().size, None);
        assert_eq!(BootConfig::parse("clusterroot.maxsize=2G").unwrap().maxsize.map(|s| s.bytes(0)), Some(2 << 30));
        assert_eq!(BootConfig::parse("clusterroot.maxsize=50%").unwrap().maxsize.map(|s| s.bytes(1000)), Some(500));
        for (raw, want) in [
            ("0", "is zero"),
            ("0G", "is zero"),
            ("000M", "is zero"),
            ("0%", "from 1% to 100%"),
            ("101%", "from 1% to 100%"),
            ("99999999999999999999%", "from 1% to 100%"),
            ("1048575", "is 1048575 bytes, too small"),
            ("4096", "add M or G"),
            ("1023K", "is 1047552 bytes"),
            ("1025T", "is too large"),
            ("1048577G", "is too large"),
            ("99999999999999999999G", "is too large"),
            ("99999999999999999999", "is too large"),
            ("18446744073709551615T", "is too large"),
            ("10MB", "unit 'MB'"),
            ("1P", "unit 'P'"),
            ("1.5G", "unit '.5G'"),
            ("0x10G", "unit 'x10G'"),
            ("lots", "expected a size"),
            ("G", "expected a size"),
            ("%", "expected a size"),
            ("-1G", "expected a size"),
            ("+1G", "expected a size"),
            ("", "expected a size"),
        ] {
            let param = format!("clusterroot.size={raw}");
            let msg = bad_param(param.as_bytes(), &param);
            assert!(msg.contains(want), "{msg} lacks {want}");
        }
        bad_param(b"clusterroot.size", "clusterroot.size");
        let msg = bad_param(b"\"clusterroot.size=1 G\"", "clusterroot.size=1 G");
        assert!(msg.contains("unit ' G'"), "{msg}");
    }
}
