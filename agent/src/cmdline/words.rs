//! The kernel's word splitter: a command line into words, spaces apart, quotes grouping.

/// Splits a command line the way the kernel does: spaces separate words, double quotes
/// group, and `--` ends the kernel's part (the rest belongs to init).
pub fn split_words(cmdline: &str) -> Vec<String> {
    // Valid UTF-8 in, valid UTF-8 out: the byte splitter only cuts at whole characters.
    split_words_bytes(cmdline.as_bytes()).into_iter().map(|w| String::from_utf8_lossy(&w).into_owned()).collect()
}

/// [`split_words`] over the raw bytes of `/proc/cmdline`, which need not be UTF-8 (a boot
/// menu's encoding, a stray byte in `console=`). Valid UTF-8 splits exactly as text does;
/// bytes that are not UTF-8 are neither spaces nor quotes, so they stay inside their word.
pub fn split_words_bytes(cmdline: &[u8]) -> Vec<Vec<u8>> {
    let mut words = Vec::new();
    let mut cur = Vec::new();
    let mut in_quotes = false;
    let mut started = false;
    for chunk in cmdline.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => {
                    in_quotes = !in_quotes;
                    started = true;
                }
                c if c.is_whitespace() && !in_quotes => {
                    if started {
                        words.push(std::mem::take(&mut cur));
                        started = false;
                    }
                }
                c => {
                    cur.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                    started = true;
                }
            }
        }
        if !chunk.invalid().is_empty() {
            cur.extend_from_slice(chunk.invalid());
            started = true;
        }
    }
    if started {
        words.push(cur);
    }
    if let Some(end) = words.iter().position(|w| w == b"--") {
        words.truncate(end);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdline::BootConfig;

    #[test]
    fn words_quotes_and_init_arguments() {
        assert_eq!(split_words(" a=1  b=\"x y\" \"c=d e\" -- init=x"), ["a=1", "b=x y", "c=d e"]);
        let c = BootConfig::parse("nfsroot=10.0.0.1:/a -- nfsroot=10.0.0.2:/b").unwrap();
        assert_eq!(c.nfsroot.unwrap().path, "/a");
        let c = BootConfig::parse("nfsroot=10.0.0.1:/a nfsroot=10.0.0.2:/b").unwrap();
        assert_eq!(c.nfsroot.unwrap().path, "/b");
    }
}
