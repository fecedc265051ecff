//! The head of an HTTP/1.x reply, parsed from bytes with no I/O (by httparse) into what a
//! download needs: the status, and the body's length.

/// The longest head read: a static file's reply takes a few hundred bytes.
pub const MAX_HEAD: usize = 16 * 1024;
/// The most header fields taken.
pub const MAX_FIELDS: usize = 64;
/// How much of the reason phrase is kept for messages.
const MAX_REASON: usize = 64;

/// A complete reply head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code (200).
    pub status: u16,
    /// The reason phrase (`Not Found`), printable ASCII only, at most 64 characters: for
    /// messages.
    pub reason: String,
    /// `Content-Length`, when the reply has one.
    pub content_length: Option<u64>,
    /// Whether the reply has a `Transfer-Encoding` field (`chunked`): then the body's length
    /// is not known ahead, whatever `Content-Length` says (RFC 9112, section 6.3).
    pub chunked: bool,
    /// The head's length in bytes: the body begins there.
    pub len: usize,
}

/// Why bytes are not a reply head the agent takes; phrased to follow "the reply ...".
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeadError {
    #[error("has a head longer than {MAX_HEAD} bytes")]
    TooLong,
    #[error("has more than {MAX_FIELDS} header fields")]
    TooManyFields,
    #[error("is not HTTP/1.x ({0})")]
    Malformed(String),
    #[error("has a Content-Length that is not a number of bytes: \"{0}\"")]
    BadLength(String),
    #[error("has Content-Length fields that disagree")]
    Lengths,
}

/// Parses the head at the start of `buf`: `Ok(None)` while it is incomplete (read more), or
/// the head, whose `len` says where the body begins. Bytes that can never be a head within
/// [`MAX_HEAD`] bytes and [`MAX_FIELDS`] fields are an error, never a panic.
pub fn parse_head(buf: &[u8]) -> Result<Option<ResponseHead>, HeadError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut reply = httparse::Response::new(&mut fields);
    let len = match reply.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => return Err(HeadError::TooLong),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyFields),
        Err(e) => return Err(HeadError::Malformed(e.to_string())),
    };
    if len > MAX_HEAD {
        return Err(HeadError::TooLong);
    }
    let status = reply.code.ok_or_else(|| HeadError::Malformed("no status code".into()))?;
    let reason = reply.reason.unwrap_or("").chars().filter(|c| c.is_ascii_graphic() || *c == ' ');
    let mut content_length = None;
    let mut chunked = false;
    for field in reply.headers.iter() {
        if field.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = true;
        } else if field.name.eq_ignore_ascii_case("content-length") {
            let n = parse_length(field.value)?;
            if content_length.is_some_and(|m| m != n) {
                return Err(HeadError::Lengths);
            }
            content_length = Some(n);
        }
    }
    Ok(Some(ResponseHead { status, reason: reason.take(MAX_REASON).collect(), content_length, chunked, len }))
}

/// A `Content-Length` value: decimal digits only (no sign, no list), surrounding blanks
/// aside, that fit in a `u64`.
fn parse_length(value: &[u8]) -> Result<u64, HeadError> {
    let v = value.trim_ascii();
    let digits = !v.is_empty() && v.iter().all(u8::is_ascii_digit);
    let n = std::str::from_utf8(v).ok().filter(|_| digits).and_then(|s| s.parse::<u64>().ok());
    n.ok_or_else(|| HeadError::BadLength(super::quote(&String::from_utf8_lossy(v))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Option<ResponseHead>, HeadError> {
        parse_head(text.as_bytes())
    }

    #[test]
    fn a_static_file_reply() {
        let text = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 220200960\r\n\
                    Last-Modified: Sat, 06 Dec 2025 07:38:00 GMT\r\nServer: lighttpd/1.4.76\r\n\r\nhsqs";
        let h = head(text).unwrap().unwrap();
        assert_eq!((h.status, h.reason.as_str(), h.content_length, h.chunked), (200, "OK", Some(220200960), false));
        assert_eq!(&text.as_bytes()[h.len..], b"hsqs");
        // HTTP/1.0, a lowercase field name, blanks around the value, a repeat that agrees.
        let h = head("HTTP/1.0 200 OK\r\ncontent-length:  5 \r\nContent-Length: 5\r\n\r\n").unwrap().unwrap();
        assert_eq!(h.content_length, Some(5));
    }

    #[test]
    fn what_a_download_refuses_is_reported_as_is() {
        let h = head("HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\n").unwrap().unwrap();
        assert_eq!((h.status, h.reason.as_str()), (404, "Not Found"));
        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n").unwrap().unwrap();
        assert!(h.chunked);
        let h = head("HTTP/1.1 200 OK\r\n\r\n").unwrap().unwrap();
        assert_eq!(h.content_length, None);
        let h = head("HTTP/1.1 500 Very\tBad\r\n\r\n").unwrap().unwrap();
        assert_eq!(h.reason, "VeryBad");
    }

    #[test]
    fn incomplete_heads_ask_for_more() {
        for partial in ["", "HTTP/1.1", "HTTP/1.1 200 OK\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"] {
            assert_eq!(head(partial), Ok(None), "{partial:?}");
        }
    }

    #[test]
    fn hostile_heads_are_errors() {
        let long = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(head(&long), Err(HeadError::TooLong));
        assert_eq!(head(&long[..MAX_HEAD]), Err(HeadError::TooLong));
        let many = format!("HTTP/1.1 200 OK\r\n{}\r\n", "X: y\r\n".repeat(MAX_FIELDS + 1));
        assert_eq!(head(&many), Err(HeadError::TooManyFields));
        for bad in ["garbage\r\n\r\n", "HTTP/2 200 OK\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n", "\0\0\0\0\r\n\r\n"] {
            assert!(matches!(head(bad), Err(HeadError::Malformed(_))), "{bad:?}: {:?}", head(bad));
        }
        for value in ["-1", "+5", "5, 5", "0x10", "", "99999999999999999999", "1 2"] {
            let text = format!("HTTP/1.1 200 OK\r\nContent-Length: {value}\r\n\r\n");
            assert!(matches!(head(&text), Err(HeadError::BadLength(_))), "{value:?}: {:?}", head(&text));
        }
        let text = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n";
        assert_eq!(head(text), Err(HeadError::Lengths));
        // Every prefix and every byte of junk: an answer, never a panic.
        let junk: Vec<u8> = (0..=255u8).cycle().take(3 * MAX_HEAD).collect();
        for end in (0..junk.len()).step_by(97) {
            let _ = parse_head(&junk[..end]);
        }
        let err = HeadError::BadLength(super::super::quote("\u{1b}[2J")).to_string();
        assert!(!err.contains('\u{1b}'), "{err}");
    }
}
