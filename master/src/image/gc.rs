//! `image gc`'s choice: which versions go and which stay, and why. No I/O.

use std::fmt;
use std::path::PathBuf;

use super::nodes::Running;
use super::store::Version;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GcError {
    #[error("cannot tell which versions the nodes run: {dir} is missing (nfsd not running, or a kernel before 5.3); nothing removed")]
    NoClients { dir: PathBuf },
    #[error("cannot tell which version {nodes} run(s): booted without naming a version in the NFS client identity; reboot them with clusterroot.image=default, or remove versions by hand; nothing removed")]
    Unknown { nodes: String },
    #[error("the store has no default, so gc cannot tell which versions to keep; crctl image default VERSION sets it; nothing removed")]
    NoDefault,
}

/// Why a version stays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Keep {
    Default,
    BeforeDefault,
    Runs(Vec<String>),
}

impl fmt::Display for Keep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Keep::Default => f.write_str("the default"),
            Keep::BeforeDefault => f.write_str("the version before the default"),
            Keep::Runs(nodes) => write!(f, "runs on {}", nodes.join(",")),
        }
    }
}

/// One version's fate: removed when `keep` is empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub version: Version,
    pub keep: Vec<Keep>,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.keep.is_empty() {
            return write!(f, "remove {}", self.version);
        }
        let why: Vec<String> = self.keep.iter().map(Keep::to_string).collect();
        write!(f, "keep   {} ({})", self.version, why.join("; "))
    }
}

/// Decides for every version (ascending): kept are the default, the highest version below it
/// (the rollback), and every version a node runs; the rest go. Refuses when the clients'
/// versions cannot be known (`clients_dir` names nfsd's list in the message).
pub fn select(
    versions: &[Version],
    default: Option<Version>,
    running: &Running,
    clients_dir: PathBuf,
) -> Result<Vec<Decision>, GcError> {
    if !running.clients_seen {
        return Err(GcError::NoClients { dir: clients_dir });
    }
    if !running.unknown.is_empty() {
        let nodes: Vec<&str> = running.unknown.iter().map(String::as_str).collect();
        return Err(GcError::Unknown { nodes: nodes.join(",") });
    }
    let default = default.ok_or(GcError::NoDefault)?;
    let before = versions.iter().copied().filter(|v| *v < default).max();
    let mut sorted = versions.to_vec();
    sorted.sort();
    Ok(sorted
        .into_iter()
        .map(|version| {
            let mut keep = Vec::new();
            if version == default {
                keep.push(Keep::Default);
            }
            if Some(version) == before {
                keep.push(Keep::BeforeDefault);
            }
            let nodes = running.nodes_of(&version.to_string());
            if !nodes.is_empty() {
                keep.push(Keep::Runs(nodes));
            }
            Decision { version, keep }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(pairs: &[(&str, &str)], unknown: &[&str]) -> Running {
        let mut r = Running { clients_seen: true, ..Running::default() };
        for (v, n) in pairs {
            r.versions.entry(v.to_string()).or_default().insert(n.to_string());
        }
        r.unknown = unknown.iter().map(|s| s.to_string()).collect();
        r
    }

    fn shown(d: &[Decision]) -> Vec<String> {
        d.iter().map(Decision::to_string).collect()
    }

    #[test]
    fn keeps_the_default_the_one_before_and_the_running() {
        let vs: Vec<Version> = [1, 2, 3, 5, 6, 7].map(Version).to_vec();
        let r = running(&[("2", "node2"), ("6", "master"), ("6", "node1"), ("9", "node3")], &[]);
        let d = select(&vs, Some(Version(6)), &r, "/c".into()).unwrap();
        assert_eq!(
            shown(&d),
            [
                "remove 1",
                "keep   2 (runs on node2)",
                "remove 3",
                "keep   5 (the version before the default)",
                "keep   6 (the default; runs on master,node1)",
                "remove 7",
            ]
        );
        // The oldest as the default: nothing before it.
        let d = select(&vs, Some(Version(1)), &running(&[], &[]), "/c".into()).unwrap();
        assert_eq!(shown(&d)[..2], ["keep   1 (the default)", "remove 2"]);
    }

    #[test]
    fn refuses_when_it_cannot_know() {
        let vs = [Version(1), Version(2)];
        let e = select(&vs, Some(Version(2)), &running(&[], &["node2", "52:54:00:77:00:ff"]), "/c".into());
        assert_eq!(e, Err(GcError::Unknown { nodes: "52:54:00:77:00:ff,node2".into() }));
        let blind = Running::default();
        let e = select(&vs, Some(Version(2)), &blind, "/proc/fs/nfsd/clients".into()).unwrap_err().to_string();
        assert!(e.starts_with("cannot tell which versions the nodes run: /proc/fs/nfsd/clients is missing"), "{e}");
        assert_eq!(select(&vs, None, &running(&[], &[]), "/c".into()), Err(GcError::NoDefault));
    }
}
