//! Which version each node runs: the NFS server's clients (their NFSv4 identity
//! `clusterroot-<mac>@<version>`), and the master's own `/run/clusterroot/state`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use clusterroot::mac::MacAddress;

use crate::inventory::Inventory;

/// Where crctl looks on the master; tests point these at a fixture tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// nfsd's client list: one directory per NFSv4 client, each with an `info` file (Linux 5.3+).
    pub nfsd_clients: PathBuf,
    /// The agent's record of the master's own boot (`image=`, `boot_mac=`).
    pub state: PathBuf,
    /// What is mounted where (the store's ZFS dataset, mounts below a tree to remove).
    pub mountinfo: PathBuf,
    /// The export lines of a ZFS store's versions ([`super::exports::FILE`]).
    pub exports_file: PathBuf,
    /// What loads them (`exportfs`, on PATH).
    pub exportfs: PathBuf,
    /// What builds a version's squashfs file (`mksquashfs`, on PATH).
    pub mksquashfs: PathBuf,
}

impl Default for Host {
    fn default() -> Host {
        Host {
            nfsd_clients: "/proc/fs/nfsd/clients".into(),
            state: "/run/clusterroot/state".into(),
            mountinfo: "/proc/self/mountinfo".into(),
            exports_file: super::exports::FILE.into(),
            exportfs: "exportfs".into(),
            mksquashfs: super::squashfs::PROGRAM.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NodesError {
    #[error("reading the NFS server's clients in {dir} failed: {source}")]
    Clients { dir: PathBuf, source: std::io::Error },
    #[error("reading the master's boot record {path} failed: {source}")]
    State { path: PathBuf, source: std::io::Error },
}

/// A clusterroot node among the NFS server's clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client {
    pub mac: MacAddress,
    /// The version its identity names; `None`: it booted without naming one.
    pub version: Option<String>,
    /// nfsd's `status:` is `courtesy` or `expirable`: the client stopped renewing its lease
    /// (powered off, crashed, cut off), and nfsd keeps its state only until someone needs it.
    pub lease_expired: bool,
}

/// The clusterroot node in one client's `info` file: the token `clusterroot-<12 hex>[@<version>]`
/// anywhere in its `name:` line (NFSv4.1+ `"Linux NFSv4.2 <id>/<host>"`, NFSv4.0
/// `"Linux NFSv4.0 <host>/<id>/<server>"`). `None` for any other client. No I/O.
pub fn parse_info(text: &str) -> Option<Client> {
    let name = text.lines().find_map(|l| l.trim_start().strip_prefix("name:"))?;
    let mut rest = name;
    while let Some(at) = rest.find("clusterroot-") {
        let after = &rest[at + "clusterroot-".len()..];
        rest = after;
        let Some(hex) = after.get(..12) else { continue };
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let tail = &after[12..];
        let version = match tail.strip_prefix('@') {
            Some(v) => {
                let end =
                    v.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))).unwrap_or(v.len());
                Some(v[..end].to_string()).filter(|v| !v.is_empty())
            }
            None if tail.is_empty() || tail.starts_with(['/', '"', ' ']) => None,
            None => continue,
        };
        let mut mac = [0u8; 6];
        for (i, b) in mac.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        let status = text.lines().find_map(|l| l.trim_start().strip_prefix("status:")).map(str::trim);
        let lease_expired = matches!(status, Some("courtesy" | "expirable"));
        return Some(Client { mac: MacAddress(mac), version, lease_expired });
    }
    None
}

/// `key=value` from the agent's state file.
fn state_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('=')).map(str::trim).filter(|v| !v.is_empty())
}

/// Who runs what.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Running {
    /// Whether nfsd's client list could be read; without it the clients' versions are unknown.
    pub clients_seen: bool,
    /// Node names (or MACs of nodes the inventory lacks) by the version they run.
    pub versions: BTreeMap<String, BTreeSet<String>>,
    /// Booted clusterroot nodes whose version is unknown.
    pub unknown: BTreeSet<String>,
    /// Clients whose lease ran out (nfsd's courtesy clients): counted as running nothing.
    pub expired: BTreeSet<String>,
}

impl Running {
    pub fn nodes_of(&self, version: &str) -> Vec<String> {
        self.versions.get(version).map(|s| s.iter().cloned().collect()).unwrap_or_default()
    }
}

fn name_of(inv: &Inventory, mac: MacAddress) -> String {
    inv.nodes.iter().find(|n| n.mac == mac).map_or_else(|| mac.to_string(), |n| n.name.clone())
}

/// Reads nfsd's clients and the master's state file. A client that goes away while it is
/// being read is skipped; a missing client list leaves [`Running::clients_seen`] false.
pub fn running(inv: &Inventory, host: &Host) -> Result<Running, NodesError> {
    let mut r = Running::default();
    match std::fs::read_dir(&host.nfsd_clients) {
        Ok(entries) => {
            r.clients_seen = true;
            for entry in entries {
                let entry = entry.map_err(|source| NodesError::Clients { dir: host.nfsd_clients.clone(), source })?;
                let Ok(text) = std::fs::read_to_string(entry.path().join("info")) else { continue };
                let Some(client) = parse_info(&text) else { continue };
                let name = name_of(inv, client.mac);
                if client.lease_expired {
                    let v = client.version.as_deref().map_or(String::new(), |v| format!(" (was {v})"));
                    r.expired.insert(format!("{name}{v}"));
                    continue;
                }
                match client.version {
                    Some(v) => {
                        r.versions.entry(v).or_default().insert(name);
                    }
                    None => {
                        r.unknown.insert(name);
                    }
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(NodesError::Clients { dir: host.nfsd_clients.clone(), source }),
    }
    match std::fs::read_to_string(&host.state) {
        Ok(text) => {
            // The master mounts the store itself, so nfsd does not list it: its own record.
            if let Some(v) = state_value(&text, "image") {
                let mac = state_value(&text, "boot_mac").and_then(|m| m.parse::<MacAddress>().ok());
                let name = mac.map_or_else(|| inv.settings.master.clone(), |m| name_of(inv, m));
                r.versions.entry(v.to_string()).or_default().insert(name);
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(NodesError::State { path: host.state.clone(), source }),
    }
    Ok(r)
}

/// A scratch `Host` below `dir`, for tests: `dir/clients/`, `dir/state`, `dir/mountinfo`.
#[cfg(test)]
pub fn fixture(dir: &std::path::Path, clients: &[(&str, &str)], state: Option<&str>) -> Host {
    let host = Host {
        nfsd_clients: dir.join("clients"),
        state: dir.join("state"),
        mountinfo: dir.join("mountinfo"),
        exports_file: dir.join("exports.d/clusterroot-images.exports"),
        // A directory store's tests never reach it; true(1) stands in (test double).
        exportfs: "true".into(),
        // The real one: the tests that build squashfs files check what it makes.
        mksquashfs: super::squashfs::PROGRAM.into(),
    };
    let _ = std::fs::remove_dir_all(&host.nfsd_clients);
    let _ = std::fs::remove_file(&host.state);
    std::fs::create_dir_all(&host.nfsd_clients).unwrap();
    for (id, name) in clients {
        let d = host.nfsd_clients.join(id);
        std::fs::create_dir_all(&d).unwrap();
        let info = format!(
            "clientid: 0x{id}\naddress: \"10.77.0.11:725\"\nstatus: confirmed\nname: \"{name}\"\nminor version: 2\n"
        );
        std::fs::write(d.join("info"), info).unwrap();
    }
    if let Some(s) = state {
        std::fs::write(&host.state, s).unwrap();
    }
    std::fs::write(&host.mountinfo, "").unwrap();
    host
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str) -> String {
        format!("clientid: 0xc5a3b0c4635d7f01\naddress: \"10.77.0.11:725\"\nstatus: confirmed\nseconds from last renew: 2\nname: \"{name}\"\nminor version: 2\nImplementation domain: \"kernel.org\"\n")
    }

    #[test]
    fn finds_the_identity_in_either_form() {
        let mac: MacAddress = "52:54:00:77:00:0b".parse().unwrap();
        let v42 = parse_info(&info("Linux NFSv4.2 clusterroot-52540077000b@2/node1")).unwrap();
        assert_eq!(v42, Client { mac, version: Some("2".into()), lease_expired: false });
        let v40 = parse_info(&info("Linux NFSv4.0 node1/clusterroot-52540077000b@12/10.77.0.1")).unwrap();
        assert_eq!(v40, Client { mac, version: Some("12".into()), lease_expired: false });
        let unknown = parse_info(&info("Linux NFSv4.2 clusterroot-52540077000b/node1")).unwrap();
        assert_eq!(unknown, Client { mac, version: None, lease_expired: false });
        let v40_unknown = parse_info(&info("Linux NFSv4.0 node1/clusterroot-52540077000b/10.77.0.1")).unwrap();
        assert_eq!(v40_unknown.version, None);
        assert_eq!(parse_info(&info("Linux NFSv4.2 laptop")), None);
        assert_eq!(parse_info(&info("Linux NFSv4.2 clusterroot-5254/x")), None);
        assert_eq!(parse_info(&info("Linux NFSv4.2 clusterroot-52540077000bff/x")), None);
        assert_eq!(parse_info("clientid: 0x1\n"), None);
    }

    #[test]
    fn maps_clients_and_the_master_to_names() {
        let dir = std::env::temp_dir().join(format!("crctl-nodes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let host = fixture(
            &dir,
            &[
                ("1", "Linux NFSv4.2 clusterroot-52540077000b@2/node1"),
                ("2", "Linux NFSv4.0 x/clusterroot-5254007700ff@3/10.77.0.1"),
                ("3", "Linux NFSv4.2 clusterroot-52540077000c/node2"),
                ("4", "Linux NFSv4.2 laptop"),
            ],
            Some("mode=overlay\nimage=2\nboot_mac=52:54:00:77:00:e1\n"),
        );
        let r = running(&crate::render::example::inventory(), &host).unwrap();
        assert!(r.clients_seen);
        assert_eq!(r.nodes_of("2"), ["master", "node1"]);
        assert_eq!(r.nodes_of("3"), ["52:54:00:77:00:ff"]);
        assert_eq!(r.unknown.iter().collect::<Vec<_>>(), ["node2"]);
        // A client whose lease ran out (nfsd's courtesy state: a node powered off) runs nothing.
        for (id, status, name) in
            [("5", "courtesy", "clusterroot-52540077000d@1/node3"), ("6", "expirable", "clusterroot-52540077000e/n4")]
        {
            let text = info(name).replace("status: confirmed", &format!("status: {status}"));
            std::fs::create_dir_all(host.nfsd_clients.join(id)).unwrap();
            std::fs::write(host.nfsd_clients.join(id).join("info"), text).unwrap();
        }
        let r = running(&crate::render::example::inventory(), &host).unwrap();
        assert_eq!(r.nodes_of("1"), Vec::<String>::new());
        assert_eq!(r.unknown.iter().collect::<Vec<_>>(), ["node2"]);
        assert_eq!(r.expired.iter().collect::<Vec<_>>(), ["52:54:00:77:00:0d (was 1)", "52:54:00:77:00:0e"]);
        // No client list (nfsd not running), a master booted without a store.
        let host = Host { nfsd_clients: dir.join("none"), ..host };
        std::fs::write(&host.state, "mode=overlay\nimage=\nboot_mac=52:54:00:77:00:e1\n").unwrap();
        let r = running(&crate::render::example::inventory(), &host).unwrap();
        assert!(!r.clients_seen);
        assert!(r.versions.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
