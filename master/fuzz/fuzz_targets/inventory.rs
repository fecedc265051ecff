//! Fuzz target: the inventory file, parsed, written and parsed again, and rendered, as crctl
//! does with `-f FILE`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../inventory_check.rs"]
mod inventory_check;

// Raw bytes, as the file holds them: bytes that are not UTF-8 are the parser's to refuse.
fuzz_target!(|data: &[u8]| {
    inventory_check::check(data);
});
