//! The master's local lower: a block device named as in `root=`, waited for, probed, mounted.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::mount::{self, MountError};
use crate::root::Root;

#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("root device {what} did not appear within clusterroot.timeout={secs} s{hint}; check root= (blkid lists labels and UUIDs) and that the disk's driver is in the initramfs")]
    NoDevice { what: String, secs: u64, hint: String },
    #[error("cannot tell the filesystem type of {device}; add rootfstype= (for example rootfstype=ext4)")]
    UnknownFs { device: String },
    #[error("mounting {fstype} {device} on {target} failed: {cause}")]
    Mount { fstype: String, device: String, target: String, cause: MountError },
}

/// A block device as `root=` names it (the forms mkinitcpio and util-linux accept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceRef {
    Label(String),
    Uuid(String),
    PartUuid(String),
    PartLabel(String),
    Path(String),
}

impl DeviceRef {
    /// `LABEL=x`, `UUID=x`, `PARTUUID=x`, `PARTLABEL=x` or `/dev/...`; anything else is not a
    /// block device reference.
    pub fn parse(root: &str) -> Option<DeviceRef> {
        let (kind, value) = root.split_once('=').unwrap_or(("", root));
        let value = value.trim_matches('"');
        match kind {
            "LABEL" if !value.is_empty() => Some(DeviceRef::Label(value.to_string())),
            "UUID" if !value.is_empty() => Some(DeviceRef::Uuid(value.to_ascii_lowercase())),
            "PARTUUID" if !value.is_empty() => Some(DeviceRef::PartUuid(value.to_ascii_lowercase())),
            "PARTLABEL" if !value.is_empty() => Some(DeviceRef::PartLabel(value.to_string())),
            "" if root.starts_with("/dev/") && root != "/dev/nfs" && !root.contains("/../") => {
                Some(DeviceRef::Path(root.to_string()))
            }
            _ => None,
        }
    }

    /// Where udev links the device: `/dev/disk/by-label/<escaped label>` and so on.
    pub fn dev_path(&self) -> String {
        match self {
            DeviceRef::Label(l) => format!("/dev/disk/by-label/{}", udev_escape(l)),
            DeviceRef::Uuid(u) => format!("/dev/disk/by-uuid/{}", udev_escape(u)),
            DeviceRef::PartUuid(u) => format!("/dev/disk/by-partuuid/{}", udev_escape(u)),
            DeviceRef::PartLabel(l) => format!("/dev/disk/by-partlabel/{}", udev_escape(l)),
            DeviceRef::Path(p) => p.clone(),
        }
    }
}

impl fmt::Display for DeviceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceRef::Label(l) => write!(f, "LABEL={l}"),
            DeviceRef::Uuid(u) => write!(f, "UUID={u}"),
            DeviceRef::PartUuid(u) => write!(f, "PARTUUID={u}"),
            DeviceRef::PartLabel(l) => write!(f, "PARTLABEL={l}"),
            DeviceRef::Path(p) => f.write_str(p),
        }
    }
}

/// udev's escaping of labels in `/dev/disk/by-*` names (libblkid's `blkid_encode_string`):
/// ASCII letters, digits and `#+-.:=@_` stay, and so do non-ASCII characters (valid UTF-8 is
/// kept whole); every other byte becomes `\xNN`.
pub fn udev_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if !c.is_ascii() || c.is_ascii_alphanumeric() || "#+-.:=@_".contains(c) {
            out.push(c);
        } else {
            out.push_str(&format!("\\x{:02x}", c as u32));
        }
    }
    out
}

/// Waits for the device node (or its udev link) to appear, until `deadline`.
pub fn wait(root: &Root, dev: &DeviceRef, deadline: Instant, timeout: Duration) -> Result<PathBuf, BlockError> {
    let link = root.path(&dev.dev_path());
    loop {
        if let Ok(real) = std::fs::canonicalize(&link) {
            return Ok(real);
        }
        if Instant::now() >= deadline {
            let hint = match dev {
                DeviceRef::Path(_) => String::new(),
                _ if !root.path("/dev/disk").exists() => {
                    " (there is no /dev/disk: is the udev hook in HOOKS before clusterroot?)".to_string()
                }
                _ => format!(" (looked for {})", dev.dev_path()),
            };
            return Err(BlockError::NoDevice { what: dev.to_string(), secs: timeout.as_secs(), hint });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The filesystem type from its superblock magic, for the filesystems a root usually has.
pub fn probe_fstype(device: &Path) -> Option<&'static str> {
    let mut head = vec![0u8; 65_600 + 8];
    let mut f = std::fs::File::open(device).ok()?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return None,
        }
    }
    probe_bytes(&head[..n])
}

/// [`probe_fstype`] on bytes already read.
pub fn probe_bytes(head: &[u8]) -> Option<&'static str> {
    let at = |off: usize, magic: &[u8]| head.get(off..off + magic.len()) == Some(magic);
    if at(1024 + 0x38, &[0x53, 0xef]) {
        // ext2, ext3 and ext4 all mount with the ext4 driver.
        Some("ext4")
    } else if at(0, b"XFSB") {
        Some("xfs")
    } else if at(65_536 + 0x40, b"_BHRfS_M") {
        Some("btrfs")
    } else if at(0x52, b"FAT32   ") || at(0x36, b"FAT16   ") || at(0x36, b"FAT12   ") {
        Some("vfat")
    } else if at(1024, &[0x10, 0x20, 0xf5, 0xf2]) {
        Some("f2fs")
    } else {
        None
    }
}

/// Mounts `device` on `target` with `rootflags=`; read-only unless `rw`.
pub fn mount_device(
    device: &Path,
    fstype: &str,
    flags: Option<&str>,
    rw: bool,
    target: &str,
) -> Result<(), BlockError> {
    let dev = device.display().to_string();
    let options: Vec<(&str, Option<&str>)> = flags
        .unwrap_or("")
        .split(',')
        .filter(|o| !o.is_empty())
        .map(|o| match o.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (o, None),
        })
        .collect();
    mount::mount_local(fstype, &dev, &options, rw, target).map_err(|cause| BlockError::Mount {
        fstype: fstype.to_string(),
        device: dev.clone(),
        target: target.to_string(),
        cause,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_forms() {
        assert_eq!(DeviceRef::parse("LABEL=croot"), Some(DeviceRef::Label("croot".into())));
        assert_eq!(DeviceRef::parse("UUID=0A1B-2C3D"), Some(DeviceRef::Uuid("0a1b-2c3d".into())));
        assert_eq!(DeviceRef::parse("PARTUUID=ABC-01"), Some(DeviceRef::PartUuid("abc-01".into())));
        assert_eq!(DeviceRef::parse("PARTLABEL=root"), Some(DeviceRef::PartLabel("root".into())));
        assert_eq!(DeviceRef::parse("/dev/vda1"), Some(DeviceRef::Path("/dev/vda1".into())));
        for no in ["/dev/nfs", "zfs:tank/root", "LABEL=", "tank/root", "/dev/../etc/passwd"] {
            assert_eq!(DeviceRef::parse(no), None, "{no}");
        }
        assert_eq!(DeviceRef::parse("LABEL=my disk").unwrap().dev_path(), "/dev/disk/by-label/my\\x20disk");
        assert_eq!(DeviceRef::parse("UUID=0A1B-2C3D").unwrap().dev_path(), "/dev/disk/by-uuid/0a1b-2c3d");
    }

    #[test]
    fn escapes_like_udev() {
        assert_eq!(udev_escape("Arch Linux"), "Arch\\x20Linux");
        assert_eq!(udev_escape("a/b"), "a\\x2fb");
        assert_eq!(udev_escape("x#+-.:=@_y"), "x#+-.:=@_y");
        // blkid -p -o udev: ID_FS_LABEL_ENC=my\x20d\x2fé\x24x
        assert_eq!(udev_escape("my d/é$x"), "my\\x20d\\x2fé\\x24x");
    }

    #[test]
    fn probes_superblock_magic() {
        let mut ext = vec![0u8; 2048];
        ext[1024 + 0x38] = 0x53;
        ext[1024 + 0x39] = 0xef;
        assert_eq!(probe_bytes(&ext), Some("ext4"));
        assert_eq!(probe_bytes(b"XFSB and more"), Some("xfs"));
        assert_eq!(probe_bytes(&[0u8; 4096]), None);
        assert_eq!(probe_bytes(&[]), None);
    }

    #[test]
    fn waits_for_a_link_then_gives_up_with_a_hint() {
        let dir = std::env::temp_dir().join(format!("crblock-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("dev/disk/by-label")).unwrap();
        std::fs::write(dir.join("dev/vdb"), "").unwrap();
        std::os::unix::fs::symlink("../../vdb", dir.join("dev/disk/by-label/croot")).unwrap();
        let root = Root::new(&dir);
        let t = Instant::now();
        let got =
            wait(&root, &DeviceRef::Label("croot".into()), t + Duration::from_secs(1), Duration::from_secs(1)).unwrap();
        assert_eq!(got, dir.join("dev/vdb").canonicalize().unwrap());
        let err = wait(
            &root,
            &DeviceRef::Label("other".into()),
            Instant::now() + Duration::from_millis(100),
            Duration::from_secs(1),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("root device LABEL=other did not appear within clusterroot.timeout=1 s (looked for /dev/disk/by-label/other)"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
