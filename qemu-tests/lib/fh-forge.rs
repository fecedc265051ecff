//! crtest-fh: forges NFS file handles on a client, as root on a client could, for the cluster
//! test's secrecy probe (lib/secrets-probe). Built by lib/make-cluster-root with rustc for
//! the musl target (one static file, no crates) and installed in the test image only.
//!
//!     crtest-fh OWN-FILE INODE GENERATION PARENT-INODE PARENT-GENERATION
//!
//! OWN-FILE is a file on an NFS mount of the node's own node-file export. The Linux NFS client
//! exports its files' handles through name_to_handle_at(2): the server's file handle (knfsd:
//! version, auth and fsid and fileid types, the export's fsid, then the fileid as 32-bit words:
//! inode, generation and, with subtree_check, the parent's inode and generation) embedded after
//! three words of its own (the fileid, twice 32 bits, and the file type). This replaces the
//! server handle's fileid with the given inode and generation (and parent), keeps the fsid of
//! the node's own export, and asks the server for that file with open_by_handle_at(2): what a
//! client that may mount one part of a filesystem can try on every other file of it.
//! Prints "read: <first line>" or "refused: <error>"; exit status 0 either way, 2 for usage
//! or a handle it does not understand.

use std::ffi::CString;
use std::io::Read;
use std::os::fd::FromRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;

const MAX_HANDLE_BYTES: usize = 128;
const AT_FDCWD: i32 = -100;
const O_RDONLY: i32 = 0;
const O_DIRECTORY: i32 = 0o200000;
const O_CLOEXEC: i32 = 0o2000000;
const S_IFREG: u32 = 0o100000;

/// struct file_handle with room for MAX_HANDLE_BYTES.
#[repr(C)]
struct FileHandle {
    handle_bytes: u32,
    handle_type: i32,
    f_handle: [u8; MAX_HANDLE_BYTES],
}

extern "C" {
    fn name_to_handle_at(dirfd: i32, path: *const i8, handle: *mut FileHandle, mount_id: *mut i32, flags: i32) -> i32;
    fn open_by_handle_at(mount_fd: i32, handle: *mut FileHandle, flags: i32) -> i32;
    fn open(path: *const i8, flags: i32, ...) -> i32;
}

fn word(b: &[u8], i: usize) -> u32 {
    u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

fn put(b: &mut [u8], i: usize, v: u32) {
    b[i..i + 4].copy_from_slice(&v.to_ne_bytes());
}

fn fail(msg: &str) -> ! {
    eprintln!("crtest-fh: {msg}");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 5 {
        fail("usage: crtest-fh OWN-FILE INODE GENERATION PARENT-INODE PARENT-GENERATION");
    }
    let num = |s: &String| s.parse::<u32>().unwrap_or_else(|_| fail(&format!("not a number: {s}")));
    let (ino, gen, pino, pgen) = (num(&args[1]), num(&args[2]), num(&args[3]), num(&args[4]));
    let own = std::path::Path::new(&args[0]);
    let own_ino = std::fs::metadata(own).unwrap_or_else(|e| fail(&format!("{}: {e}", own.display()))).ino() as u32;
    let dir = own.parent().unwrap_or_else(|| fail("OWN-FILE has no directory"));
    let cpath = CString::new(own.as_os_str().as_bytes()).unwrap_or_else(|_| fail("NUL in path"));
    let cdir = CString::new(dir.as_os_str().as_bytes()).unwrap_or_else(|_| fail("NUL in path"));

    let mut fh = FileHandle { handle_bytes: MAX_HANDLE_BYTES as u32, handle_type: 0, f_handle: [0; MAX_HANDLE_BYTES] };
    let mut mount_id = 0;
    // SAFETY: cpath is a NUL-terminated string; fh has handle_bytes of room, as the call
    // requires; mount_id is a valid i32.
    if unsafe { name_to_handle_at(AT_FDCWD, cpath.as_ptr(), &mut fh, &mut mount_id, 0) } != 0 {
        fail(&format!("name_to_handle_at: {}", std::io::Error::last_os_error()));
    }
    let len = fh.handle_bytes as usize;
    let h = &mut fh.f_handle[..len];
    // The NFS client's words: fileid high, fileid low, type; then struct nfs_fh: a 16-bit size
    // and right after it (an array of bytes: no padding) the server's handle.
    let server_len = u16::from_ne_bytes([h[12], h[13]]) as usize;
    let server = 14;
    if server + server_len > len || server_len < 12 {
        fail(&format!("handle of {len} bytes, server part {server_len}: not understood"));
    }
    // knfsd: fh_version 1, then the fileid at the end: find the file's own inode there.
    let data = &h[server..server + server_len];
    if data[0] != 1 {
        fail(&format!("server handle version {}: not knfsd's", data[0]));
    }
    let fileid_type = data[3];
    let at = (4..=server_len - 8)
        .step_by(4)
        .find(|&i| word(data, i) == own_ino)
        .unwrap_or_else(|| fail(&format!("inode {own_ino} not found in the server handle")));
    let with_parent = at + 16 <= server_len;
    println!(
        "handle: {} bytes, fileid type {fileid_type}, fileid at byte {at}{}",
        server_len,
        if with_parent { ", with the parent (subtree_check)" } else { "" }
    );
    put(h, server + at, ino);
    put(h, server + at + 4, gen);
    if with_parent {
        put(h, server + at + 8, pino);
        put(h, server + at + 12, pgen);
    }
    put(h, 0, 0);
    put(h, 4, ino);
    put(h, 8, S_IFREG);

    // SAFETY: cdir is a NUL-terminated string; open with these flags takes no mode.
    let mount_fd = unsafe { open(cdir.as_ptr(), O_RDONLY | O_DIRECTORY | O_CLOEXEC) };
    if mount_fd < 0 {
        fail(&format!("{}: {}", dir.display(), std::io::Error::last_os_error()));
    }
    // SAFETY: fh is a handle of handle_bytes bytes, as name_to_handle_at filled it in.
    let fd = unsafe { open_by_handle_at(mount_fd, &mut fh, O_RDONLY | O_CLOEXEC) };
    if fd < 0 {
        println!("refused: {}", std::io::Error::last_os_error());
        return;
    }
    // SAFETY: fd was just opened and is owned by nothing else.
    let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut text = String::new();
    match f.read_to_string(&mut text) {
        Ok(_) => println!("read: {}", text.lines().next().unwrap_or("")),
        Err(e) => println!("refused: {e}"),
    }
}
