//! A squashfs image file attached read-only to a loop device and mounted as the lower.
//!
//! What `losetup --find --read-only --show FILE` (with autoclear) and then
//! `mount -t squashfs -o ro /dev/loopN TARGET` do, without either binary: a free device from
//! `/dev/loop-control` (`LOOP_CTL_GET_FREE`), the file bound to it in one `LOOP_CONFIGURE`
//! (Linux 5.8; `man 4 loop`, `include/uapi/linux/loop.h`), then the kernel's mount API.
//! The device is autoclear: it frees itself when its last user (the mount) is gone.

use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;
use rustix::ioctl::{Ioctl, IoctlOutput, NoArg, Opcode, Setter};

use crate::mount::{self, MountError};
use crate::root::Root;

#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    #[error("opening the squashfs image {file} failed: {errno}")]
    OpenImage { file: String, errno: Errno },
    #[error("the squashfs image {file} is {kind}, not a regular file; a squashfs lower is attached from the image file itself")]
    NotRegular { file: String, kind: &'static str },
    #[error("{control} is missing: the kernel has no loop driver (the image lacks the `loop` module, or it was not loaded: modprobe loop; the clusterroot hooks add it when the kernel has one, so rebuild an older image, or use a kernel with CONFIG_BLK_DEV_LOOP)")]
    NoLoopDriver { control: String },
    #[error("opening {control} failed: {errno}")]
    OpenControl { control: String, errno: Errno },
    #[error("asking {control} for a free loop device (LOOP_CTL_GET_FREE) failed: {errno}")]
    GetFree { control: String, errno: Errno },
    #[error("{device} did not appear, though the kernel gave loop{number} as free; is devtmpfs mounted on {dev_dir}?")]
    NoDeviceNode { device: String, number: u32, dev_dir: String },
    #[error("opening {device} read-only failed: {errno}")]
    OpenDevice { device: String, errno: Errno },
    #[error("{device} refused LOOP_CONFIGURE ({errno}): it needs Linux 5.8 or later and this kernel is {release} (clusterroot has no fallback to the older LOOP_SET_FD)")]
    NoConfigure { device: String, release: String, errno: Errno },
    #[error("attaching {file} read-only to {device} (LOOP_CONFIGURE) failed: {errno}")]
    Configure { file: String, device: String, errno: Errno },
    #[error("every free loop device was taken by another process before {file} could be attached ({tries} tries); what else attaches loop devices during boot?")]
    Busy { file: String, tries: u32 },
    #[error("{path} is not UTF-8, which the agent's mount helpers need")]
    NotUtf8 { path: String },
    #[error("cannot mount {file}: the kernel has no squashfs (the image lacks the squashfs module; the clusterroot hooks add it when the kernel has one, so rebuild an older image, or use a kernel with CONFIG_SQUASHFS)")]
    NoSquashfs { file: String },
    #[error("{file} is not a squashfs image this kernel can mount ({device}: {said}); check that it is the master's image and was copied whole (unsquashfs -s {file})")]
    NotSquashfs { file: String, device: String, said: String },
    #[error("mounting the squashfs image {file} ({device}) on {target} failed: {cause}")]
    Mount { file: String, device: String, target: String, cause: MountError },
}

/// `LOOP_CTL_GET_FREE` (linux/loop.h): the number of a free loop device, added if none is.
const LOOP_CTL_GET_FREE: Opcode = 0x4C82;
/// `LOOP_CONFIGURE` (linux/loop.h, Linux 5.8): file, flags and name in one call.
const LOOP_CONFIGURE: Opcode = 0x4C0A;
/// `LOOP_CLR_FD` (linux/loop.h): unbinds the file, at once or at the last close.
const LOOP_CLR_FD: Opcode = 0x4C01;

/// `LO_FLAGS_READ_ONLY` (linux/loop.h): writes to the device fail.
pub const LO_FLAGS_READ_ONLY: u32 = 1;
/// `LO_FLAGS_AUTOCLEAR` (linux/loop.h): the device unbinds itself at its last close.
pub const LO_FLAGS_AUTOCLEAR: u32 = 4;

/// `LO_NAME_SIZE` and `LO_KEY_SIZE` (linux/loop.h).
const LO_NAME_SIZE: usize = 64;
const LO_KEY_SIZE: usize = 32;

/// How often `LOOP_CONFIGURE` may find its device taken (`EBUSY`) before we give up.
const CONFIGURE_TRIES: u32 = 8;

/// How often the device node is looked for while devtmpfs creates it.
const NODE_POLL: Duration = Duration::from_millis(10);

/// `struct loop_info64` from `include/uapi/linux/loop.h`: fixed-width fields only, the `u64`s
/// first, so 232 bytes with no padding on every architecture.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; LO_NAME_SIZE],
    lo_crypt_name: [u8; LO_NAME_SIZE],
    lo_encrypt_key: [u8; LO_KEY_SIZE],
    lo_init: [u64; 2],
}

/// `struct loop_config` from `include/uapi/linux/loop.h`: the argument of `LOOP_CONFIGURE`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

const _: () = assert!(std::mem::size_of::<LoopInfo64>() == 232);
const _: () = assert!(std::mem::size_of::<LoopConfig>() == 304);

impl LoopConfig {
    /// Binds `file_fd` read-only and autoclear, with the kernel's default block size; `name`
    /// (the file's path, for `losetup -l`) truncated to 63 bytes and NUL-terminated.
    fn read_only(file_fd: u32, name: &[u8]) -> LoopConfig {
        let mut lo_file_name = [0u8; LO_NAME_SIZE];
        let n = name.len().min(LO_NAME_SIZE - 1);
        lo_file_name[..n].copy_from_slice(&name[..n]);
        LoopConfig {
            fd: file_fd,
            block_size: 0,
            info: LoopInfo64 {
                lo_device: 0,
                lo_inode: 0,
                lo_rdevice: 0,
                lo_offset: 0,
                lo_sizelimit: 0,
                lo_number: 0,
                lo_encrypt_type: 0,
                lo_encrypt_key_size: 0,
                lo_flags: LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR,
                lo_file_name,
                lo_crypt_name: [0; LO_NAME_SIZE],
                lo_encrypt_key: [0; LO_KEY_SIZE],
                lo_init: [0; 2],
            },
            reserved: [0; 8],
        }
    }
}

/// `ioctl(control, LOOP_CTL_GET_FREE)`: takes no argument and answers in its return value.
struct GetFree;

// SAFETY: LOOP_CTL_GET_FREE reads no argument (we pass a null pointer) and writes no user
// memory, so IS_MUTATING is false; its result is the ioctl's return value, a device number,
// which `output_from_ptr` only converts. The opcode is the one linux/loop.h defines.
unsafe impl Ioctl for GetFree {
    type Output = u32;

    const IS_MUTATING: bool = false;

    fn opcode(&self) -> Opcode {
        LOOP_CTL_GET_FREE
    }

    fn as_ptr(&mut self) -> *mut core::ffi::c_void {
        std::ptr::null_mut()
    }

    unsafe fn output_from_ptr(out: IoctlOutput, _: *mut core::ffi::c_void) -> rustix::io::Result<u32> {
        u32::try_from(out).map_err(|_| Errno::RANGE)
    }
}

/// Where the loop driver's nodes are: `/dev/loop-control` and `/dev/loopN` under a [`Root`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoopPaths {
    pub control: PathBuf,
    pub dev_dir: PathBuf,
}

impl LoopPaths {
    /// `/dev/loop-control` and `/dev` under `root`.
    pub fn under(root: &Root) -> LoopPaths {
        LoopPaths { control: root.path("/dev/loop-control"), dev_dir: root.path("/dev") }
    }

    /// `/dev/loopN`.
    pub fn device(&self, number: u32) -> PathBuf {
        self.dev_dir.join(format!("loop{number}"))
    }
}

impl Default for LoopPaths {
    fn default() -> LoopPaths {
        LoopPaths::under(&Root::default())
    }
}

/// A loop device with an image file bound to it, read-only and autoclear.
///
/// It holds the device open: keep it until [`mount_squashfs`] has mounted it, then drop it
/// (the mount holds the device from then on, and unmounting frees it). Dropped unmounted, the
/// device frees itself at once.
#[derive(Debug)]
pub struct LoopDevice {
    number: u32,
    path: PathBuf,
    file: PathBuf,
    fd: OwnedFd,
}

impl LoopDevice {
    /// N in `/dev/loopN`.
    pub fn number(&self) -> u32 {
        self.number
    }

    /// `/dev/loopN`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The image file bound to it.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// `ioctl(dev, LOOP_CLR_FD)`: the shell's `losetup -d`. With our fd still open the kernel
    /// only marks the device to unbind at its last close, which dropping `self` then is.
    fn detach(&self) -> Result<(), Errno> {
        // SAFETY: LOOP_CLR_FD is linux/loop.h's opcode for an ioctl without an argument; it
        // reads and writes no user memory.
        let clear = unsafe { NoArg::<LOOP_CLR_FD>::new() };
        // SAFETY: `self.fd` is an open loop device, the device LOOP_CLR_FD is defined for.
        unsafe { rustix::ioctl::ioctl(self.fd.as_fd(), clear) }
    }
}

impl fmt::Display for LoopDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (read-only, backed by {})", self.path.display(), self.file.display())
    }
}

/// Binds `file` read-only to a free loop device: `losetup --find --read-only` with autoclear.
/// Waits until `deadline` for the device node if devtmpfs has not made it yet.
pub fn attach_read_only(paths: &LoopPaths, file: &Path, deadline: Instant) -> Result<LoopDevice, LoopError> {
    let file_name = file.display().to_string();
    // The image, read-only: the kernel makes a device bound to a read-only file read-only too,
    // whatever the flags say. On NFS this is what LTSP does; in a tmpfs, the downloaded copy.
    let image = rustix::fs::open(file, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|errno| LoopError::OpenImage { file: file_name.clone(), errno })?;
    let stat = rustix::fs::fstat(&image).map_err(|errno| LoopError::OpenImage { file: file_name.clone(), errno })?;
    // LOOP_CONFIGURE would answer EINVAL for a directory, which reads like an old kernel.
    let kind = FileType::from_raw_mode(stat.st_mode);
    if kind != FileType::RegularFile {
        return Err(LoopError::NotRegular { file: file_name, kind: kind_name(kind) });
    }

    // devtmpfs creates /dev/loop-control when the loop driver registers; opening a static node
    // without the driver answers ENODEV. losetup opens it read-write too.
    let control_name = paths.control.display().to_string();
    let control =
        rustix::fs::open(&paths.control, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()).map_err(
            |errno| match errno {
                Errno::NOENT | Errno::NODEV | Errno::NXIO => LoopError::NoLoopDriver { control: control_name.clone() },
                _ => LoopError::OpenControl { control: control_name.clone(), errno },
            },
        )?;

    // Between GET_FREE and CONFIGURE another process may take the device (EBUSY) or have let
    // it go already (ENXIO at open): then ask again, and the kernel names another, as losetup
    // does.
    for _ in 0..CONFIGURE_TRIES {
        let number = get_free(&control).map_err(|errno| LoopError::GetFree { control: control_name.clone(), errno })?;
        let path = paths.device(number);
        let Some(fd) = open_device(&path, number, &paths.dev_dir, deadline)? else { continue };
        match configure(&fd, &image, file) {
            Ok(()) => return Ok(LoopDevice { number, path, file: file.to_path_buf(), fd }),
            Err(Errno::BUSY) => continue,
            Err(errno) => return Err(configure_error(&path, file, errno, &kernel_release())),
        }
    }
    Err(LoopError::Busy { file: file_name, tries: CONFIGURE_TRIES })
}

/// Mounts the attached image read-only on `target` (created if missing): the shell's
/// `mount -t squashfs -o ro /dev/loopN target`. On failure the device is detached, and frees
/// itself when `dev` is dropped.
pub fn mount_squashfs(dev: &LoopDevice, target: &Path) -> Result<(), LoopError> {
    let result = mount_on(dev, target);
    if result.is_err() {
        // Not reported: the mount's error is the one that matters, and the device is autoclear
        // anyway, so dropping `dev` frees it even if this failed.
        let _ = dev.detach();
    }
    result
}

fn mount_on(dev: &LoopDevice, target: &Path) -> Result<(), LoopError> {
    let utf8 =
        |p: &Path| p.to_str().map(str::to_string).ok_or_else(|| LoopError::NotUtf8 { path: p.display().to_string() });
    let device = utf8(&dev.path)?;
    let target = utf8(target)?;
    mount::mount_local("squashfs", &device, &[], false, &target)
        .map_err(|cause| mount_error(&dev.file.display().to_string(), &device, &target, cause))
}

/// Names what went wrong: no squashfs in the kernel, a file that is not squashfs, or else.
fn mount_error(file: &str, device: &str, target: &str, cause: MountError) -> LoopError {
    match cause {
        MountError::Open { errno: Errno::NODEV, .. } => LoopError::NoSquashfs { file: file.to_string() },
        MountError::Create { errno: Errno::INVAL, kernel, .. } => LoopError::NotSquashfs {
            file: file.to_string(),
            device: device.to_string(),
            said: if kernel.is_empty() { Errno::INVAL.to_string() } else { format!("kernel: {kernel}") },
        },
        cause => {
            LoopError::Mount { file: file.to_string(), device: device.to_string(), target: target.to_string(), cause }
        }
    }
}

fn get_free(control: &OwnedFd) -> Result<u32, Errno> {
    // SAFETY: `control` is /dev/loop-control, the device LOOP_CTL_GET_FREE is defined for, and
    // `GetFree` passes no pointer (see its `Ioctl` impl).
    unsafe { rustix::ioctl::ioctl(control.as_fd(), GetFree) }
}

/// Opens `/dev/loopN` read-only, waiting for devtmpfs to create it (the kernel adds the device
/// in GET_FREE when none was free) until `deadline`. `None` when the device is being torn down
/// (ENXIO: another process bound it and let it go since GET_FREE).
fn open_device(path: &Path, number: u32, dev_dir: &Path, deadline: Instant) -> Result<Option<OwnedFd>, LoopError> {
    loop {
        match rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) {
            Ok(fd) => return Ok(Some(fd)),
            Err(Errno::NXIO) => return Ok(None),
            Err(Errno::NOENT) if Instant::now() < deadline => std::thread::sleep(NODE_POLL),
            Err(Errno::NOENT) => {
                return Err(LoopError::NoDeviceNode {
                    device: path.display().to_string(),
                    number,
                    dev_dir: dev_dir.display().to_string(),
                })
            }
            Err(errno) => return Err(LoopError::OpenDevice { device: path.display().to_string(), errno }),
        }
    }
}

/// `ioctl(dev, LOOP_CONFIGURE, &config)` binding `image` read-only and autoclear.
fn configure(dev: &OwnedFd, image: &OwnedFd, file: &Path) -> Result<(), Errno> {
    // An open fd is never negative.
    let config = LoopConfig::read_only(image.as_raw_fd() as u32, file.as_os_str().as_bytes());
    // SAFETY: LOOP_CONFIGURE is linux/loop.h's opcode, and `LoopConfig` is its argument,
    // `struct loop_config`, laid out as the kernel has it (size asserted above). The kernel
    // only copies it in (copy_from_user), so the `Setter`'s read-only pointer is right.
    let set = unsafe { Setter::<LOOP_CONFIGURE, LoopConfig>::new(config) };
    // SAFETY: `dev` is an open loop device and `image` stays open during the call; the kernel
    // takes its own reference to the file.
    unsafe { rustix::ioctl::ioctl(dev.as_fd(), set) }
}

/// EINVAL or ENOTTY from LOOP_CONFIGURE is how a kernel before 5.8 says it does not know it.
fn configure_error(device: &Path, file: &Path, errno: Errno, release: &str) -> LoopError {
    let device = device.display().to_string();
    if matches!(errno, Errno::INVAL | Errno::NOTTY) && !at_least_5_8(release) {
        LoopError::NoConfigure { device, release: release.to_string(), errno }
    } else {
        LoopError::Configure { file: file.display().to_string(), device, errno }
    }
}

/// The running kernel's release (`uname -r`), for the message about LOOP_CONFIGURE.
fn kernel_release() -> String {
    rustix::system::uname().release().to_string_lossy().into_owned()
}

/// Whether a release such as `6.1.0-13-amd64` is Linux 5.8 or later; `false` when unreadable.
fn at_least_5_8(release: &str) -> bool {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next().and_then(|p| p.parse::<u32>().ok());
    let minor = parts.next().and_then(|p| p.parse::<u32>().ok());
    matches!((major, minor), (Some(major), Some(minor)) if (major, minor) >= (5, 8))
}

fn kind_name(kind: FileType) -> &'static str {
    match kind {
        FileType::Directory => "a directory",
        FileType::BlockDevice => "a block device",
        FileType::CharacterDevice => "a character device",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::Symlink => "a symbolic link",
        _ => "not a regular file",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    #[test]
    fn structs_are_laid_out_as_linux_loop_h() {
        assert_eq!(std::mem::size_of::<LoopInfo64>(), 232);
        assert_eq!(std::mem::size_of::<LoopConfig>(), 304);
        assert_eq!(offset_of!(LoopInfo64, lo_number), 40);
        assert_eq!(offset_of!(LoopInfo64, lo_flags), 52);
        assert_eq!(offset_of!(LoopInfo64, lo_file_name), 56);
        assert_eq!(offset_of!(LoopInfo64, lo_crypt_name), 120);
        assert_eq!(offset_of!(LoopInfo64, lo_encrypt_key), 184);
        assert_eq!(offset_of!(LoopInfo64, lo_init), 216);
        assert_eq!(offset_of!(LoopConfig, info), 8);
        assert_eq!(offset_of!(LoopConfig, reserved), 240);
    }

    #[test]
    fn config_is_read_only_autoclear_with_the_name_cut_to_63_bytes() {
        let c = LoopConfig::read_only(7, b"/run/clusterroot/root.squashfs");
        assert_eq!((c.fd, c.block_size), (7, 0));
        assert_eq!(c.info.lo_flags, LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR);
        assert_eq!(&c.info.lo_file_name[..31], b"/run/clusterroot/root.squashfs\0");
        let long = [b'x'; 100];
        let c = LoopConfig::read_only(3, &long);
        assert_eq!(&c.info.lo_file_name[..63], &long[..63]);
        assert_eq!(c.info.lo_file_name[63], 0);
        assert!(c.info.lo_crypt_name.iter().chain(&c.info.lo_encrypt_key).all(|&b| b == 0));
    }

    #[test]
    fn opcodes_are_linux_loop_h() {
        // LOOP_CTL_GET_FREE 0x4C82, LOOP_CONFIGURE 0x4C0A, LOOP_CLR_FD 0x4C01: plain numbers,
        // not _IOW-encoded, so they carry no size.
        assert_eq!((LOOP_CTL_GET_FREE, LOOP_CONFIGURE, LOOP_CLR_FD), (0x4C82, 0x4C0A, 0x4C01));
    }

    #[test]
    fn paths_hang_off_the_root() {
        let p = LoopPaths::under(&Root::new("/tmp/fx"));
        assert_eq!(p.control, PathBuf::from("/tmp/fx/dev/loop-control"));
        assert_eq!(p.device(3), PathBuf::from("/tmp/fx/dev/loop3"));
        let real = LoopPaths::default();
        assert_eq!(
            (real.control.as_path(), real.device(0).as_path()),
            (Path::new("/dev/loop-control"), Path::new("/dev/loop0"))
        );
    }

    #[test]
    fn tells_kernels_before_5_8() {
        for (release, yes) in [
            ("5.8.0", true),
            ("6.1.0-13-amd64", true),
            ("5.10.0", true),
            ("6.18.44-fc-v1252", true),
            ("5.7.19", false),
            ("4.19.0-27-amd64", false),
            ("", false),
            ("x", false),
        ] {
            assert_eq!(at_least_5_8(release), yes, "{release}");
        }
        let old = configure_error(Path::new("/dev/loop0"), Path::new("/run/r.sqfs"), Errno::INVAL, "5.4.0").to_string();
        assert_eq!(old, "/dev/loop0 refused LOOP_CONFIGURE (Invalid argument (os error 22)): it needs Linux 5.8 or later and this kernel is 5.4.0 (clusterroot has no fallback to the older LOOP_SET_FD)");
        let new = configure_error(Path::new("/dev/loop0"), Path::new("/run/r.sqfs"), Errno::INVAL, "6.1.0").to_string();
        assert!(new.starts_with("attaching /run/r.sqfs read-only to /dev/loop0 (LOOP_CONFIGURE) failed: "), "{new}");
    }

    #[test]
    fn mount_errors_name_the_file_and_the_fix() {
        let nodev = MountError::Open { fstype: "squashfs".into(), errno: Errno::NODEV };
        let e = mount_error("/run/r.sqfs", "/dev/loop0", "/run/lower", nodev).to_string();
        assert!(
            e.starts_with("cannot mount /run/r.sqfs: the kernel has no squashfs (the image lacks the squashfs module;"),
            "{e}"
        );
        let inval = MountError::Create {
            fstype: "squashfs".into(),
            what: "/dev/loop0".into(),
            errno: Errno::INVAL,
            kernel: "squashfs: Can't find a SQUASHFS superblock on loop0".into(),
        };
        let e = mount_error("/run/r.sqfs", "/dev/loop0", "/run/lower", inval).to_string();
        assert_eq!(e, "/run/r.sqfs is not a squashfs image this kernel can mount (/dev/loop0: kernel: squashfs: Can't find a SQUASHFS superblock on loop0); check that it is the master's image and was copied whole (unsquashfs -s /run/r.sqfs)");
        let other =
            MountError::Move { from: "new squashfs mount".into(), to: "/run/lower".into(), errno: Errno::NOENT };
        let e = mount_error("/run/r.sqfs", "/dev/loop0", "/run/lower", other).to_string();
        assert!(
            e.starts_with("mounting the squashfs image /run/r.sqfs (/dev/loop0) on /run/lower failed: moving"),
            "{e}"
        );
    }

    #[test]
    fn every_message_is_one_line() {
        let errs = [
            LoopError::OpenImage { file: "/f".into(), errno: Errno::NOENT },
            LoopError::NotRegular { file: "/f".into(), kind: "a directory" },
            LoopError::NoLoopDriver { control: "/dev/loop-control".into() },
            LoopError::OpenControl { control: "/dev/loop-control".into(), errno: Errno::ACCESS },
            LoopError::GetFree { control: "/dev/loop-control".into(), errno: Errno::NOSPC },
            LoopError::NoDeviceNode { device: "/dev/loop9".into(), number: 9, dev_dir: "/dev".into() },
            LoopError::OpenDevice { device: "/dev/loop9".into(), errno: Errno::ACCESS },
            LoopError::NoConfigure { device: "/dev/loop9".into(), release: "5.4.0".into(), errno: Errno::NOTTY },
            LoopError::Configure { file: "/f".into(), device: "/dev/loop9".into(), errno: Errno::IO },
            LoopError::Busy { file: "/f".into(), tries: CONFIGURE_TRIES },
            LoopError::NotUtf8 { path: "/f".into() },
            LoopError::NoSquashfs { file: "/f".into() },
            LoopError::NotSquashfs { file: "/f".into(), device: "/dev/loop9".into(), said: "x".into() },
        ];
        for e in errs {
            let text = e.to_string();
            assert!(!text.contains('\n'), "{text}");
            assert!(text.contains("/f") || text.contains("/dev/loop"), "names its object: {text}");
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("crloop-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn refuses_a_missing_file_a_directory_and_a_kernel_without_loop() {
        let dir = scratch("refuses");
        let paths = LoopPaths::under(&Root::new(&dir));
        let soon = Instant::now() + Duration::from_millis(50);
        let e = attach_read_only(&paths, &dir.join("none.sqfs"), soon).unwrap_err();
        assert!(matches!(e, LoopError::OpenImage { errno: Errno::NOENT, .. }), "{e}");
        let e = attach_read_only(&paths, &dir, soon).unwrap_err().to_string();
        assert_eq!(e, format!("the squashfs image {} is a directory, not a regular file; a squashfs lower is attached from the image file itself", dir.display()));
        std::fs::write(dir.join("root.sqfs"), b"hsqs").unwrap();
        let e = attach_read_only(&paths, &dir.join("root.sqfs"), soon).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "{}/dev/loop-control is missing: the kernel has no loop driver (the image lacks the `loop` module",
                dir.display()
            )),
            "{e}"
        );
        // A file where the control device should be: the ioctl is not for it.
        std::fs::create_dir_all(dir.join("dev")).unwrap();
        std::fs::write(&paths.control, b"").unwrap();
        let e = attach_read_only(&paths, &dir.join("root.sqfs"), soon).unwrap_err();
        assert!(matches!(e, LoopError::GetFree { errno: Errno::NOTTY, .. }), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn displays_the_device_and_its_file() {
        let dir = scratch("display");
        let fd = rustix::fs::open(&dir, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).unwrap();
        let dev = LoopDevice { number: 3, path: "/dev/loop3".into(), file: "/run/root.sqfs".into(), fd };
        assert_eq!(dev.to_string(), "/dev/loop3 (read-only, backed by /run/root.sqfs)");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
