//! The seeds of the `inventory` fuzz target (master/fuzz): the example inventory
//! mkinitcpio/cluster and those of tests/inventories/, held to the target's own property, so
//! that a seed the parser comes to refuse fails here and not only in a fuzzing run.

use std::path::{Path, PathBuf};

#[path = "../fuzz/inventory_check.rs"]
mod inventory_check;

fn seeds() -> Vec<PathBuf> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seeds = vec![here.join("../mkinitcpio/cluster")];
    let dir = here.join("tests/inventories");
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        seeds.push(entry.unwrap().path());
    }
    seeds.sort();
    seeds
}

#[test]
fn every_seed_is_accepted_and_written_back_as_read() {
    let seeds = seeds();
    assert!(seeds.len() >= 7, "{seeds:?}");
    for seed in seeds {
        let bytes = std::fs::read(&seed).unwrap();
        let why = crctl::inventory::Inventory::parse_bytes(&bytes).err().map(|e| e.to_string());
        assert!(inventory_check::check(&bytes), "{} is refused: {why:?}", seed.display());
    }
}

#[test]
fn the_property_refuses_in_one_line() {
    for bad in [&b"node\xff"[..], b"net\0work", b"\xef\xbb\xbfnetwork 10.0.0.0/8\n", b"range 1 2\n", b""] {
        assert!(!inventory_check::check(bad), "{}", bad.escape_ascii());
    }
}
