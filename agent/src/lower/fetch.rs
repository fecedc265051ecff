//! A squashfs image downloaded over HTTP into a file, its SHA-256 checked while reading.
//!
//! `root=live:http://<server-ip>/<path>` (or a list of replicas in `clusterroot.live=`) names
//! one image file, `<version>-<sha256>.squashfs` as crctl names them, or crctl's pointer file
//! `default`, whose one line names the file to boot ([`resolve_pointer`]). [`download`]
//! fetches one URL with one plain HTTP/1.1 `GET` (`Connection: close`) over a [`TcpStream`],
//! and writes the reply, when it is whole and its hash is right, into a file in the directory
//! it is given (a tmpfs the caller mounted); a partial or wrong file is deleted. The replicas
//! are the caller's to try, one URL at a time (exec.rs's `fetch_image`), and when none gives
//! the file, [`FetchError::Failed`] reports each one's failure.
//!
//! Everything is bounded: the connection (5 s), each wait for bytes ([`STALL`]), the whole
//! download (the caller's deadline), the reply's head (16 KiB, 64 fields), the file's size
//! (the caller's cap, checked against `Content-Length` before any of the body is read).

mod head;
mod http_url;

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub use head::{parse_head, HeadError, ResponseHead, MAX_FIELDS, MAX_HEAD};
use http_url::quote;
pub use http_url::{parse_sha256_hex, sha256_hex, HttpUrl, ImageName, MAX_URL, SUFFIX};

/// A server that sends nothing for this long is given up on.
pub const STALL: Duration = Duration::from_secs(10);
/// The longest wait for a connection (less when the deadline is nearer).
pub const CONNECT: Duration = Duration::from_secs(5);
/// How often the progress callback hears of a download: every this many bytes.
pub const PROGRESS_EVERY: u64 = 16 << 20;
/// The largest pointer file taken: one line naming an image file.
pub const MAX_POINTER: u64 = 4096;
/// What one read of the body takes at most.
const BUFFER: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: its file name carries no SHA-256 and none was given; give clusterroot.sha256=<64 hex digits>, or use the file names crctl gives (<version>-<sha256>.squashfs)")]
    NoHash { url: HttpUrl },
    #[error("{url}: the time allowed ran out {phase} (clusterroot.timeout= sets it)")]
    Deadline { url: HttpUrl, phase: Phase },
    #[error("{url}: connecting to {addr} failed: {cause}; check that the web server is up and listens on that port")]
    Connect { url: HttpUrl, addr: SocketAddrV4, cause: io::Error },
    #[error("{url}: {addr} did not answer within {} s; check that the server is up and reachable from this node", secs(*.within))]
    ConnectTimeout { url: HttpUrl, addr: SocketAddrV4, within: Duration },
    #[error("{url}: sending the request to {addr} failed: {cause}")]
    Send { url: HttpUrl, addr: SocketAddrV4, cause: io::Error },
    #[error("{url}: nothing came for {} s {phase}; the server or the network stalled", secs(*.stall))]
    Stalled { url: HttpUrl, stall: Duration, phase: Phase },
    #[error("{url}: reading the reply failed {phase}: {cause}")]
    Read { url: HttpUrl, phase: Phase, cause: io::Error },
    #[error("{url}: the server closed the connection before its reply's head was complete; check the web server's error log")]
    NoReply { url: HttpUrl },
    #[error("{url}: the reply {cause}; check that {addr} is the web server holding the images")]
    Head { url: HttpUrl, addr: SocketAddrV4, cause: HeadError },
    #[error("{url}: the server answered {status} {reason}; {hint}")]
    Status { url: HttpUrl, status: u16, reason: String, hint: &'static str },
    #[error("{url}: the reply is chunked (Transfer-Encoding), which is refused: the agent needs a Content-Length, as web servers send for static files")]
    Chunked { url: HttpUrl },
    #[error("{url}: the reply has no Content-Length, which the agent needs to check the size before downloading; serve the file as a static file (lighttpd and nginx send it)")]
    NoLength { url: HttpUrl },
    #[error("{url}: the file is {size} bytes, more than the {max} bytes allowed for the image in RAM; raise clusterroot.maxsize= or give the node more memory")]
    TooBig { url: HttpUrl, size: u64, max: u64 },
    #[error("{url}: the connection closed after {got} of {size} bytes; the server may have restarted or the file been replaced")]
    Short { url: HttpUrl, got: u64, size: u64 },
    #[error("{url}: SHA-256 is {got}, expected {want} (the file on that server is damaged or was changed; crctl image list on the master shows the published files)")]
    Hash { url: HttpUrl, got: String, want: String },
    #[error("{url}: writing {path} failed: {cause}")]
    Write { url: HttpUrl, path: String, cause: io::Error },
    #[error("{url}: names a pointer file (its name does not end in .squashfs), but the file is {size} bytes, more than the {MAX_POINTER} a pointer file takes; to boot an image file, give its URL, ending in .squashfs")]
    PointerTooBig { url: HttpUrl, size: u64 },
    #[error("{url}: the pointer file does not name an image file: {reason}; on the master, crctl image default VERSION writes it again")]
    BadPointer { url: HttpUrl, reason: String },
    #[error("{}", all_failed(.failures))]
    Failed { failures: Vec<FetchError> },
}

/// How far one URL got when time ran out or the server stalled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Not connected yet.
    Connecting,
    /// Connected, waiting for the reply's head.
    Head,
    /// Reading the body.
    Body { got: u64, size: u64 },
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::Connecting => f.write_str("before connecting"),
            Phase::Head => f.write_str("while waiting for the reply"),
            Phase::Body { got, size } => write!(f, "after {got} of {size} bytes"),
        }
    }
}

/// A duration in seconds, for messages: `10`, `0.2`.
fn secs(d: Duration) -> String {
    match d.subsec_millis() {
        0 => d.as_secs().to_string(),
        _ => format!("{:.1}", d.as_secs_f64()),
    }
}

/// The message for an image none of its replicas gave: every URL's failure, on one line.
fn all_failed(failures: &[FetchError]) -> String {
    match failures {
        [] => "the squashfs image could not be fetched: no URL was tried".into(),
        [one] => format!("the squashfs image could not be fetched: {one}"),
        _ => {
            let each: Vec<String> = failures.iter().enumerate().map(|(i, e)| format!("[{}] {e}", i + 1)).collect();
            format!(
                "the squashfs image could not be fetched from any of its {} URLs: {}",
                failures.len(),
                each.join(" ")
            )
        }
    }
}

/// What to say after a status other than 200.
fn status_hint(status: u16) -> &'static str {
    match status {
        404 | 410 => "check the URL (crctl image list on the master shows the published files)",
        401 | 403 => "the web server may not serve that file: check its permissions and the server's configuration",
        _ => "check the web server's error log",
    }
}

/// One download: the file, where it comes from, and the bounds it must keep.
#[derive(Clone, Copy, Debug)]
pub struct Download<'a> {
    /// The image file's URL: a pointer file is resolved first ([`resolve_pointer`]), and the
    /// other replicas are tried by the caller (exec.rs's `fetch_image`).
    pub url: &'a HttpUrl,
    /// The file's SHA-256 (`clusterroot.sha256=`); when `None`, the one the URL's file name
    /// carries, and a URL whose name carries none is refused without connecting.
    pub sha256: Option<[u8; 32]>,
    /// The largest file taken, in bytes (it lives in RAM).
    pub max_size: u64,
    /// Where the file is written (a tmpfs the caller mounted).
    pub dir: &'a Path,
    /// When to give up.
    pub deadline: Instant,
    /// How long the server may send nothing before the download is given up ([`STALL`]).
    pub stall: Duration,
}

/// The file downloaded.
#[derive(Debug)]
pub struct Downloaded {
    /// The URL that gave it (the job's).
    pub url: HttpUrl,
    /// The file: `<version>-<sha256>.squashfs` in the directory given (`image-<sha256>` when
    /// the URL's name carries no version).
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, as checked.
    pub sha256: [u8; 32],
}

/// How a download goes, for a progress line.
#[derive(Clone, Copy, Debug)]
pub struct Progress<'a> {
    pub url: &'a HttpUrl,
    /// Bytes of the body received so far.
    pub done: u64,
    /// The body's size (`Content-Length`).
    pub size: u64,
    /// Since the body began.
    pub elapsed: Duration,
}

impl Progress<'_> {
    /// Bytes per second so far.
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.done as f64 / secs
        } else {
            0.0
        }
    }
}

impl fmt::Display for Progress<'_> {
    /// `fetching http://...: 48 of 210 MiB (12.3 MiB/s)`; at the start, `fetching http://...: 210 MiB`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.done == 0 {
            return write!(f, "fetching {}: {} MiB", self.url, mib(self.size));
        }
        let rate = self.rate() / f64::from(1u32 << 20);
        write!(f, "fetching {}: {} of {} MiB ({rate:.1} MiB/s)", self.url, mib(self.done), mib(self.size))
    }
}

/// Bytes in MiB: with one decimal below 10 MiB, whole above.
fn mib(bytes: u64) -> String {
    if bytes < 10 << 20 {
        format!("{:.1}", bytes as f64 / f64::from(1u32 << 20))
    } else {
        (bytes >> 20).to_string()
    }
}

/// Downloads the image file from `job.url`, calling `progress` once at the start of the
/// body (with its size) and then every [`PROGRESS_EVERY`] bytes. The file keeps its name only
/// when it is whole with the right hash: a partial or wrong file is deleted.
pub fn download(job: &Download<'_>, progress: &mut dyn FnMut(&Progress<'_>)) -> Result<Downloaded, FetchError> {
    download_every(job, PROGRESS_EVERY, progress)
}

/// [`download`], with progress every `every` bytes.
fn download_every(
    job: &Download<'_>,
    every: u64,
    progress: &mut dyn FnMut(&Progress<'_>),
) -> Result<Downloaded, FetchError> {
    let url = job.url;
    let name = url.image_name();
    let want =
        job.sha256.or(name.as_ref().map(ImageName::sha256)).ok_or_else(|| FetchError::NoHash { url: url.clone() })?;
    let version = name.as_ref().map_or("image", ImageName::version);
    let file = format!("{version}-{}{SUFFIX}", sha256_hex(&want));
    let (path, part) = (job.dir.join(&file), job.dir.join(format!(".{file}.part")));

    let mut conn = Conn::open(url, job.deadline, job.stall)?;
    let (size, body) = conn.sized_reply()?;
    // The cap before the file: a reply too big for RAM costs nothing but its head.
    if size > job.max_size {
        return Err(FetchError::TooBig { url: url.clone(), size, max: job.max_size });
    }
    progress(&Progress { url, done: 0, size, elapsed: Duration::ZERO });
    let written = conn.save(&part, size, &body, every, progress).and_then(|got| match got == want {
        true => Ok(()),
        false => Err(FetchError::Hash { url: url.clone(), got: sha256_hex(&got), want: sha256_hex(&want) }),
    });
    // Only a whole file with the right hash gets its name; nothing else stays in RAM.
    let named = written.and_then(|()| fs::rename(&part, &path).map_err(|cause| write_error(url, &path, cause)));
    if let Err(e) = named {
        // Best effort: a file that cannot be removed either is reported by its cause already.
        let _ = fs::remove_file(&part);
        return Err(e);
    }
    Ok(Downloaded { url: url.clone(), path, size, sha256: want })
}

fn write_error(url: &HttpUrl, path: &Path, cause: io::Error) -> FetchError {
    FetchError::Write { url: url.clone(), path: path.display().to_string(), cause }
}

/// Resolves a pointer file (a URL whose name does not end in `.squashfs`, crctl's `default`)
/// to the image file it names, in its directory on the same server; a URL naming an image
/// file is returned as it is, without I/O.
pub fn resolve_pointer(url: &HttpUrl, deadline: Instant) -> Result<HttpUrl, FetchError> {
    if !url.is_pointer() {
        return Ok(url.clone());
    }
    let mut conn = Conn::open(url, deadline, STALL)?;
    let (size, body) = conn.sized_reply()?;
    if size > MAX_POINTER {
        return Err(FetchError::PointerTooBig { url: url.clone(), size });
    }
    let text = conn.read_all(size, body)?;
    let name = parse_pointer(&text).map_err(|reason| FetchError::BadPointer { url: url.clone(), reason })?;
    Ok(url.sibling(&name))
}

/// A pointer file's contents: one image file name, alone on its line (a final newline, `\n`
/// or `\r\n`, is taken). The error is the reason, for the caller's message.
pub fn parse_pointer(bytes: &[u8]) -> Result<ImageName, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "it is not text".to_string())?;
    let line = text.strip_suffix('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).unwrap_or(text);
    ImageName::parse(line)
}

/// One HTTP exchange with one server, every wait bounded by the stall timeout and the deadline.
struct Conn<'a> {
    url: &'a HttpUrl,
    stream: TcpStream,
    deadline: Instant,
    stall: Duration,
}

/// What is left until `deadline`, if anything.
fn left(deadline: Instant) -> Option<Duration> {
    deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())
}

impl<'a> Conn<'a> {
    /// Connects (within [`CONNECT`] or what is left) and sends the request:
    /// `GET <path> HTTP/1.1`, `Host`, `User-Agent`, `Connection: close` (the server closes
    /// after the reply: nothing to reuse), `Accept-Encoding: identity` (the bytes as they are,
    /// for the hash).
    fn open(url: &'a HttpUrl, deadline: Instant, stall: Duration) -> Result<Conn<'a>, FetchError> {
        let addr = url.addr();
        let deadline_error = |phase| FetchError::Deadline { url: url.clone(), phase };
        let within = CONNECT.min(left(deadline).ok_or_else(|| deadline_error(Phase::Connecting))?);
        let stream = TcpStream::connect_timeout(&SocketAddr::V4(addr), within).map_err(|cause| match cause.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
                FetchError::ConnectTimeout { url: url.clone(), addr, within }
            }
            _ => FetchError::Connect { url: url.clone(), addr, cause },
        })?;
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: clusterroot/{}\r\nConnection: close\r\nAccept-Encoding: identity\r\n\r\n",
            url.path(),
            url.authority(),
            env!("CARGO_PKG_VERSION"),
        );
        let send_error = |cause| FetchError::Send { url: url.clone(), addr, cause };
        let wait = stall.min(left(deadline).ok_or_else(|| deadline_error(Phase::Head))?);
        stream.set_write_timeout(Some(wait)).map_err(send_error)?;
        (&stream).write_all(request.as_bytes()).map_err(send_error)?;
        Ok(Conn { url, stream, deadline, stall })
    }

    /// One read of at most `buf.len()` bytes; 0 when the server closed. Waits at most the
    /// stall timeout, and not past the deadline.
    fn read(&mut self, buf: &mut [u8], phase: Phase) -> Result<usize, FetchError> {
        let url = self.url;
        let read_error = |cause| FetchError::Read { url: url.clone(), phase, cause };
        let wait = self.stall.min(left(self.deadline).ok_or_else(|| FetchError::Deadline { url: url.clone(), phase })?);
        self.stream.set_read_timeout(Some(wait)).map_err(read_error)?;
        loop {
            return match self.stream.read(buf) {
                Ok(n) => Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    Err(match left(self.deadline) {
                        None => FetchError::Deadline { url: url.clone(), phase },
                        Some(_) => FetchError::Stalled { url: url.clone(), stall: self.stall, phase },
                    })
                }
                Err(cause) => Err(read_error(cause)),
            };
        }
    }

    /// Reads the reply's head (at most [`MAX_HEAD`] bytes); returns it with the bytes of the
    /// body that came with it.
    fn head(&mut self) -> Result<(ResponseHead, Vec<u8>), FetchError> {
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 4096];
        loop {
            let room = MAX_HEAD.saturating_sub(buf.len()).clamp(1, chunk.len());
            let n = self.read(&mut chunk[..room], Phase::Head)?;
            if n == 0 {
                return Err(FetchError::NoReply { url: self.url.clone() });
            }
            buf.extend_from_slice(&chunk[..n]);
            let parsed = parse_head(&buf);
            let parsed =
                parsed.map_err(|cause| FetchError::Head { url: self.url.clone(), addr: self.url.addr(), cause })?;
            if let Some(head) = parsed {
                let body = buf.get(head.len..).unwrap_or_default().to_vec();
                return Ok((head, body));
            }
        }
    }

    /// The reply's head, taken only if it is `200` with a `Content-Length` and no
    /// `Transfer-Encoding`: the body's size and its bytes that came with the head.
    fn sized_reply(&mut self) -> Result<(u64, Vec<u8>), FetchError> {
        let (head, body) = self.head()?;
        let url = || self.url.clone();
        if head.status != 200 {
            let hint = status_hint(head.status);
            return Err(FetchError::Status { url: url(), status: head.status, reason: head.reason, hint });
        }
        if head.chunked {
            return Err(FetchError::Chunked { url: url() });
        }
        let size = head.content_length.ok_or_else(|| FetchError::NoLength { url: url() })?;
        Ok((size, body))
    }

    /// The whole body of `size` bytes (small: a pointer file), `first` being what came with
    /// the head.
    fn read_all(&mut self, size: u64, mut first: Vec<u8>) -> Result<Vec<u8>, FetchError> {
        let size_bytes = usize::try_from(size).unwrap_or(usize::MAX);
        first.truncate(size_bytes);
        let mut chunk = [0u8; 4096];
        while first.len() < size_bytes {
            let room = (size_bytes - first.len()).min(chunk.len());
            let n = self.read(&mut chunk[..room], Phase::Body { got: first.len() as u64, size })?;
            if n == 0 {
                return Err(FetchError::Short { url: self.url.clone(), got: first.len() as u64, size });
            }
            first.extend_from_slice(&chunk[..n]);
        }
        Ok(first)
    }

    /// Writes the body of `size` bytes into `part`, `first` being what came with the head,
    /// hashing as it goes; returns the hash.
    fn save(
        &mut self,
        part: &Path,
        size: u64,
        first: &[u8],
        every: u64,
        progress: &mut dyn FnMut(&Progress<'_>),
    ) -> Result<[u8; 32], FetchError> {
        let url = self.url;
        let file = File::create(part).map_err(|cause| write_error(url, part, cause))?;
        let mut sink = Sink { file, hash: Sha256::new(), done: 0, size, every: every.max(1), next: every.max(1) };
        let started = Instant::now();
        let first = first.get(..usize::try_from(size).unwrap_or(usize::MAX)).unwrap_or(first);
        sink.take(first, url, started, progress).map_err(|cause| write_error(url, part, cause))?;
        let mut buf = vec![0u8; BUFFER];
        while sink.done < size {
            let room = usize::try_from(size - sink.done).map_or(BUFFER, |r| r.min(BUFFER));
            let n = self.read(&mut buf[..room], Phase::Body { got: sink.done, size })?;
            if n == 0 {
                return Err(FetchError::Short { url: url.clone(), got: sink.done, size });
            }
            sink.take(&buf[..n], url, started, progress).map_err(|cause| write_error(url, part, cause))?;
        }
        Ok(sink.hash.finalize().into())
    }
}

/// Where the body goes: the file and the hash, with the count for progress.
struct Sink {
    file: File,
    hash: Sha256,
    done: u64,
    size: u64,
    every: u64,
    /// When progress is next reported.
    next: u64,
}

impl Sink {
    fn take(
        &mut self,
        bytes: &[u8],
        url: &HttpUrl,
        started: Instant,
        progress: &mut dyn FnMut(&Progress<'_>),
    ) -> io::Result<()> {
        self.hash.update(bytes);
        self.file.write_all(bytes)?;
        // usize to u64 widens on every target the agent builds for.
        self.done += bytes.len() as u64;
        if self.done >= self.next {
            progress(&Progress { url, done: self.done, size: self.size, elapsed: started.elapsed() });
            // The next multiple of `every` past what is done.
            self.next = (self.done / self.every).saturating_add(1).saturating_mul(self.every);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
