//! Downloads from a real HTTP server on 127.0.0.1, in a thread, that serves scripted replies.

use super::*;

use std::net::{Ipv4Addr, TcpListener};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// What the server does with one connection, after reading the request.
enum Reply {
    /// Sends these bytes and closes.
    Send(Vec<u8>),
    /// Sends these bytes (a head, or nothing), then waits for the client to close.
    Hold(Vec<u8>),
}

/// A server answering connections with its replies, one each, in order.
struct Server {
    port: u16,
    /// The request heads it read.
    requests: Arc<Mutex<Vec<String>>>,
    thread: JoinHandle<()>,
}

impl Server {
    fn start(replies: Vec<Reply>) -> Server {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        let thread = std::thread::spawn(move || {
            for reply in replies {
                let Ok((mut s, _)) = listener.accept() else { return };
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).is_ok_and(|n| n == 1) {
                    head.push(byte[0]);
                }
                seen.lock().unwrap().push(String::from_utf8_lossy(&head).into_owned());
                match reply {
                    Reply::Send(bytes) => {
                        let _ = s.write_all(&bytes);
                    }
                    Reply::Hold(bytes) => {
                        let _ = s.write_all(&bytes);
                        // Until the client gives up (0: closed) or the 5 s safety ends.
                        while s.read(&mut byte).is_ok_and(|n| n > 0) {}
                    }
                }
            }
        });
        Server { port, requests, thread }
    }

    fn url(&self, path: &str) -> HttpUrl {
        HttpUrl::parse(&format!("http://127.0.0.1:{}{path}", self.port)).unwrap()
    }

    /// The requests it read, once it has answered them all.
    fn finish(self) -> Vec<String> {
        self.thread.join().unwrap();
        Arc::try_unwrap(self.requests).unwrap().into_inner().unwrap()
    }
}

/// A port on 127.0.0.1 where nothing listens.
fn dead_url(path: &str) -> HttpUrl {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
    HttpUrl::parse(&format!("http://127.0.0.1:{port}{path}")).unwrap()
}

fn ok(body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nServer: test\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

fn sha(body: &[u8]) -> [u8; 32] {
    Sha256::digest(body).into()
}

fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

/// An image file name for `body`, as crctl gives it.
fn name(version: &str, body: &[u8]) -> String {
    format!("/images/{version}-{}.squashfs", sha256_hex(&sha(body)))
}

/// An empty directory for one test's files.
fn dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("crfetch-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

fn job<'a>(url: &'a HttpUrl, sha256: Option<[u8; 32]>, dir: &'a Path) -> Download<'a> {
    Download {
        url,
        sha256,
        max_size: 1 << 20,
        dir,
        deadline: Instant::now() + Duration::from_secs(5),
        stall: Duration::from_secs(2),
    }
}

fn quiet(_: &Progress<'_>) {}

#[test]
fn downloads_with_the_hash_given() {
    let data = body(100_000);
    let server = Server::start(vec![Reply::Send(ok(&data))]);
    let url = server.url("/images/root.squashfs");
    let dir = dir("given");
    let got = download(&job(&url, Some(sha(&data)), &dir), &mut quiet).unwrap();
    assert_eq!((got.size, got.sha256, got.url.clone()), (100_000, sha(&data), url.clone()));
    // The file carries the hash it was checked against; no part file is left.
    let file = format!("image-{}.squashfs", sha256_hex(&sha(&data)));
    assert_eq!(got.path, dir.join(&file));
    assert_eq!(fs::read(&got.path).unwrap(), data);
    assert_eq!(files(&dir), [file]);
    let requests = server.finish();
    let port = url.port();
    assert_eq!(
        requests,
        [format!(
            "GET /images/root.squashfs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: clusterroot/{}\r\n\
             Connection: close\r\nAccept-Encoding: identity\r\n\r\n",
            env!("CARGO_PKG_VERSION")
        )]
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_hash_comes_from_the_file_name() {
    let data = body(5000);
    let server = Server::start(vec![Reply::Send(ok(&data))]);
    let url = server.url(&name("3", &data));
    let dir = dir("named");
    let got = download(&job(&url, None, &dir), &mut quiet).unwrap();
    assert_eq!(got.path, dir.join(format!("3-{}.squashfs", sha256_hex(&sha(&data)))));
    assert_eq!(fs::read(&got.path).unwrap(), data);
    server.finish();
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_name_without_hash_and_no_hash_given_is_refused_before_connecting() {
    // Nothing listens: a connection attempt would fail differently.
    let url = dead_url("/images/root.squashfs");
    let dir = dir("nohash");
    let err = download(&job(&url, None, &dir), &mut quiet).unwrap_err();
    assert!(matches!(err, FetchError::NoHash { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.starts_with(&format!("{url}: its file name carries no SHA-256")), "{msg}");
    assert!(msg.contains("clusterroot.sha256=") && msg.contains("crctl"), "{msg}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_refused_connection_names_the_address() {
    let data = body(3000);
    let url = dead_url(&name("1", &data));
    let dir = dir("refused");
    let err = download(&job(&url, None, &dir), &mut quiet).unwrap_err();
    assert!(matches!(err, FetchError::Connect { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.starts_with(&format!("{url}: connecting to {} failed: ", url.addr())), "{msg}");
    assert!(msg.ends_with("check that the web server is up and listens on that port"), "{msg}");
    assert!(files(&dir).is_empty(), "{:?}", files(&dir));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_stalled_server_is_given_up_on() {
    let data = body(3000);
    let stalled = Server::start(vec![Reply::Hold(Vec::new())]);
    let url = stalled.url(&name("1", &data));
    let dir = dir("stall");
    let mut j = job(&url, None, &dir);
    j.stall = Duration::from_millis(200);
    let t = Instant::now();
    let err = download(&j, &mut quiet).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(matches!(err, FetchError::Stalled { phase: Phase::Head, .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("nothing came for 0.2 s while waiting for the reply"), "{msg}");
    stalled.finish();
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_wrong_hash_is_deleted() {
    let data = body(70_000);
    let mut damaged = data.clone();
    damaged[12_345] ^= 1;
    let bad = Server::start(vec![Reply::Send(ok(&damaged))]);
    let url = bad.url(&name("2", &data));
    let dir = dir("hash");
    let err = download(&job(&url, None, &dir), &mut quiet).unwrap_err();
    let (got_hex, want_hex) = (sha256_hex(&sha(&damaged)), sha256_hex(&sha(&data)));
    assert_eq!(
        err.to_string(),
        format!(
            "{url}: SHA-256 is {got_hex}, expected {want_hex} (the file on that server is damaged or was changed; \
             crctl image list on the master shows the published files)"
        )
    );
    assert!(files(&dir).is_empty(), "{:?}", files(&dir));
    bad.finish();
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_short_read_fails_and_leaves_no_file() {
    let data = body(10_000);
    let mut reply = ok(&data);
    reply.truncate(reply.len() - 4000);
    let server = Server::start(vec![Reply::Send(reply)]);
    let url = server.url(&name("1", &data));
    let dir = dir("short");
    let err = download(&job(&url, None, &dir), &mut quiet).unwrap_err();
    assert!(matches!(err, FetchError::Short { got: 6000, size: 10_000, .. }), "{err}");
    assert!(err.to_string().starts_with(&format!("{url}: the connection closed after 6000 of 10000 bytes")), "{err}");
    assert!(files(&dir).is_empty(), "{:?}", files(&dir));
    server.finish();
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn replies_other_than_a_sized_200_are_refused() {
    let data = body(100);
    let cases: [(&[u8], &str); 4] = [
        (
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found",
            "the server answered 404 Not Found; check the URL",
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nabc", "the reply has no Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", "the reply is chunked"),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "the reply is not HTTP/1.x"),
    ];
    let server = Server::start(cases.iter().map(|(r, _)| Reply::Send(r.to_vec())).collect());
    let dir = dir("refused-replies");
    for (_, want) in cases {
        let url = server.url(&name("1", &data));
        let err = download(&job(&url, None, &dir), &mut quiet).unwrap_err().to_string();
        assert!(err.contains(want), "{err} lacks {want}");
        assert!(!err.contains('\n'), "{err}");
    }
    assert!(files(&dir).is_empty());
    server.finish();
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn too_big_for_the_cap_is_refused_before_the_body() {
    // The server sends only the head and waits: the client must not wait for a body.
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n".to_vec();
    let server = Server::start(vec![Reply::Hold(head)]);
    let url = server.url(&name("1", b""));
    let dir = dir("big");
    let mut called = false;
    let t = Instant::now();
    let err = download(&job(&url, None, &dir), &mut |_| called = true).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert!(matches!(err, FetchError::TooBig { size: 2_000_000, max: 1_048_576, .. }), "{err}");
    assert!(err.to_string().contains("raise clusterroot.maxsize="), "{err}");
    // Never created, never announced.
    assert!(files(&dir).is_empty() && !called);
    server.finish();
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn hostile_heads_are_errors_not_panics() {
    let mut huge = b"HTTP/1.1 200 OK\r\nX-Junk: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 64 * 1024));
    let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
    many.extend(b"X: y\r\n".repeat(1000));
    let garbage: Vec<u8> = (0..20_000u32).map(|i| (i * 31 % 256) as u8).collect();
    let replies = [huge, many, garbage, b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n".to_vec()];
    let server = Server::start(replies.into_iter().map(Reply::Send).collect());
    let dir = dir("hostile");
    for want in ["longer than 16384 bytes", "more than 64 header fields", "is not HTTP/1.x", "not a number of bytes"] {
        let url = server.url(&name("1", b""));
        let err = download(&job(&url, None, &dir), &mut quiet).unwrap_err().to_string();
        assert!(err.contains(want), "{err} lacks {want}");
    }
    // A server that closes before a whole head.
    let cut = Server::start(vec![Reply::Send(b"HTTP/1.1 200 OK\r\nContent-Len".to_vec())]);
    let url = cut.url(&name("1", b""));
    let err = download(&job(&url, None, &dir), &mut quiet).unwrap_err().to_string();
    assert!(err.contains("closed the connection before its reply's head was complete"), "{err}");
    server.finish();
    cut.finish();
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn progress_is_reported_at_the_start_and_every_step() {
    let data = body(10_000);
    let server = Server::start(vec![Reply::Send(ok(&data))]);
    let url = server.url(&name("1", &data));
    let dir = dir("progress");
    let mut seen = Vec::new();
    download_every(&job(&url, None, &dir), 3000, &mut |p| seen.push((p.done, p.size, p.to_string()))).unwrap();
    assert_eq!(seen[0], (0, 10_000, format!("fetching {url}: 0.0 MiB")));
    // Once per step crossed (reads may cross several at once), never twice for one.
    let steps: Vec<u64> = seen[1..].iter().map(|(done, _, _)| done / 3000).collect();
    assert!(!steps.is_empty() && steps.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert!(seen[1..]
        .iter()
        .all(|(done, size, line)| *done >= 3000 && *size == 10_000 && line.contains(" of 0.0 MiB (")));
    server.finish();
    fs::remove_dir_all(&dir).unwrap();

    let p = Progress { url: &url, done: 48 << 20, size: 210 << 20, elapsed: Duration::from_millis(3900) };
    assert_eq!(p.to_string(), format!("fetching {url}: 48 of 210 MiB (12.3 MiB/s)"));
}

#[test]
fn the_deadline_bounds_the_download() {
    let data = body(100);
    let url = dead_url(&name("1", &data));
    let dir = dir("deadline");
    let mut j = job(&url, None, &dir);
    j.deadline = Instant::now();
    let err = download(&j, &mut quiet).unwrap_err();
    assert!(matches!(err, FetchError::Deadline { phase: Phase::Connecting, .. }), "{err}");
    let msg = err.to_string();
    assert_eq!(msg, format!("{url}: the time allowed ran out before connecting (clusterroot.timeout= sets it)"));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_failures_of_every_replica_make_one_line() {
    // As exec.rs's fetch_image gathers them, one per replica tried.
    let failure = |url: &HttpUrl| FetchError::Deadline { url: url.clone(), phase: Phase::Connecting };
    let (first, second) = (dead_url("/a/1.squashfs"), dead_url("/b/1.squashfs"));
    let msg = FetchError::Failed { failures: vec![failure(&first)] }.to_string();
    assert_eq!(msg, format!("the squashfs image could not be fetched: {}", failure(&first)));
    let msg = FetchError::Failed { failures: vec![failure(&first), failure(&second)] }.to_string();
    assert_eq!(
        msg,
        format!(
            "the squashfs image could not be fetched from any of its 2 URLs: [1] {} [2] {}",
            failure(&first),
            failure(&second)
        )
    );
    assert!(!msg.contains('\n'), "{msg}");
    let none = FetchError::Failed { failures: Vec::new() }.to_string();
    assert_eq!(none, "the squashfs image could not be fetched: no URL was tried");
}

#[test]
fn pointers_resolve_to_the_image_file_beside_them() {
    let file = format!("3-{}.squashfs", "ab".repeat(32));
    let server = Server::start(vec![
        Reply::Send(ok(format!("{file}\n").as_bytes())),
        Reply::Send(ok(format!("{file}\r\n").as_bytes())),
        Reply::Send(ok(b"../../etc/passwd\n")),
        Reply::Send(ok(&[b'x'; 5000])),
        Reply::Send(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec()),
    ]);
    let deadline = Instant::now() + Duration::from_secs(5);
    let pointer = server.url("/srv/images/default");
    let want = format!("http://127.0.0.1:{}/srv/images/{file}", server.port);
    assert_eq!(resolve_pointer(&pointer, deadline).unwrap().to_string(), want);
    let resolved = resolve_pointer(&server.url("/srv/images/default?x=1"), deadline).unwrap();
    assert_eq!(resolved.to_string(), want);
    assert_eq!(resolved.image_name().map(|n| n.version().to_string()), Some("3".into()));
    let err = resolve_pointer(&pointer, deadline).unwrap_err().to_string();
    assert!(err.contains("the pointer file does not name an image file: \"../../etc/passwd\" is not"), "{err}");
    let err = resolve_pointer(&pointer, deadline).unwrap_err().to_string();
    assert!(err.contains("the file is 5000 bytes, more than the 4096 a pointer file takes"), "{err}");
    let err = resolve_pointer(&pointer, deadline).unwrap_err();
    assert!(matches!(err, FetchError::Status { status: 404, .. }), "{err:?}");
    assert!(err.to_string().contains("the server answered 404 Not Found; check the URL"), "{err}");
    let dead = dead_url("/default");
    let err = resolve_pointer(&dead, deadline).unwrap_err();
    assert!(matches!(err, FetchError::Connect { .. }), "{err:?}");
    assert!(err.to_string().starts_with(&format!("{dead}: connecting to {} failed: ", dead.addr())), "{err}");
    // An image file URL is its own file: no I/O (nothing listens on port 1).
    let image = HttpUrl::parse(&format!("http://127.0.0.1:1/images/{file}")).unwrap();
    assert_eq!(resolve_pointer(&image, deadline).unwrap(), image);
    server.finish();
}

#[test]
fn pointer_contents() {
    let file = format!("3-{}.squashfs", "0f".repeat(32));
    for ok in [file.clone(), format!("{file}\n"), format!("{file}\r\n")] {
        assert_eq!(parse_pointer(ok.as_bytes()).map(|n| n.to_string()), Ok(file.clone()), "{ok:?}");
    }
    for bad in [String::new(), format!("{file}\n\n"), format!(" {file}"), format!("{file}\nx"), format!("a/{file}")] {
        assert!(parse_pointer(bad.as_bytes()).is_err(), "{bad:?}");
    }
    assert_eq!(parse_pointer(b"\xff\xfe"), Err("it is not text".into()));
}
