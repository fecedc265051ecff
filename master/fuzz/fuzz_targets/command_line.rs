//! Fuzz target: crctl's command line, parsed as `crctl ARGS...` parses it, from any bytes.
#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use crctl::cli::{parse_os, UsageError};
use libfuzzer_sys::fuzz_target;

// The arguments, NUL-separated (argv cannot hold a NUL): any bytes, UTF-8 or not.
fuzz_target!(|data: &[u8]| {
    let args: Vec<OsString> = data.split(|b| *b == 0).map(|a| OsString::from_vec(a.to_vec())).collect();
    match parse_os(&args) {
        Ok(_) => {}
        Err(UsageError::NotUtf8 { position, arg }) => {
            assert_eq!(args[position - 1], arg);
            assert!(args[..position - 1].iter().all(|a| a.to_str().is_some()));
        }
        Err(e @ UsageError::Malformed { .. }) => assert!(!e.to_string().is_empty()),
    }
});
