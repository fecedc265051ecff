//! The property the `inventory` fuzz target holds every input to, and `tests/inventories.rs`
//! every seed: no panic; a refused inventory gets one line of plain text; an accepted one
//! renders to a text that parses to the same inventory and renders the same again, and every
//! config and every `crctl sync` target is made from it.

use std::path::Path;

use crctl::inventory::Inventory;

/// Checks `bytes` as an inventory file; true if the parser accepts them. Panics, naming what
/// broke, when the property does not hold.
pub fn check(bytes: &[u8]) -> bool {
    let inv = match Inventory::parse_bytes(bytes) {
        Ok(inv) => inv,
        Err(e) => {
            let message = e.to_string();
            assert!(!message.chars().any(char::is_control), "not one line of plain text: {message:?}");
            assert!(message.len() < 10_000, "a message of {} bytes", message.len());
            return false;
        }
    };
    let text = inv.render();
    let again = match Inventory::parse(&text) {
        Ok(again) => again,
        Err(e) => panic!("the written inventory is refused: {e}\n{text}"),
    };
    assert_eq!(again, inv, "written and read again, the inventory differs:\n{text}");
    assert_eq!(again.render(), text, "written twice, the inventory differs");
    for config in crctl::render::all(&inv) {
        assert!(config.text.ends_with('\n'), "{} does not end with a newline", config.name);
    }
    // An image with every unit, so that the master's own node files are made too.
    let units = crctl::services::systemd_enabled().map(|u| (u, format!("/lib/systemd/system/{u}"))).collect();
    let image =
        crctl::render::master::Image { init: Some(crctl::services::Init::Systemd), units, ..Default::default() };
    let targets = crctl::sync::plan(&inv, Path::new("/r"), Path::new("/r/srv/nfs/nodes/cluster"), &image).targets;
    assert!(targets.len() > inv.nodes.len(), "{} sync targets for {} nodes", targets.len(), inv.nodes.len());
    true
}
