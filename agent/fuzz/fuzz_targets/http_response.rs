//! Fuzz target: bytes from a web server, as a download reads them: the reply's head, a
//! pointer file's contents, and (as text) a URL and an image file name.
#![no_main]

use clusterroot::lower::fetch::{parse_head, parse_pointer, HttpUrl, ImageName, MAX_HEAD};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Whole, and as the reads of a download grow it: every prefix up to the head's bound.
    if let Ok(Some(head)) = parse_head(data) {
        assert!(head.len <= data.len() && head.len <= MAX_HEAD);
        assert!(head.reason.len() <= 64);
    }
    for end in (0..data.len().min(MAX_HEAD)).step_by(61) {
        let _ = parse_head(&data[..end]);
    }
    if let Ok(name) = parse_pointer(data) {
        // A name taken is one path component, and reads back as itself.
        let text = name.to_string();
        assert!(!text.contains('/') && text.ends_with(".squashfs"));
        assert_eq!(ImageName::parse(&text).as_ref(), Ok(&name));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(url) = HttpUrl::parse(text) {
            assert_eq!(url.to_string(), text);
            assert!(url.path().starts_with('/') && !url.file_name().is_empty());
            assert!(url.path().bytes().all(|b| b.is_ascii_graphic()));
            if let Some(name) = url.image_name() {
                let _ = url.sibling(&name).to_string();
            }
        }
    }
});
