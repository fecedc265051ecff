//! `/run/clusterroot/state`: what the agent did, readable after boot (key=value lines).

use std::fmt::Write as _;
use std::time::Duration;

use crate::root::Root;

pub const STATE_FILE: &str = "/run/clusterroot/state";

/// What is recorded about one boot.
#[derive(Default, Debug, Clone)]
pub struct State {
    pub mode: &'static str,
    pub lower_source: String,
    pub lower_type: String,
    /// The image version pinned as the lower (`clusterroot.image=`); empty without a store.
    pub image: String,
    /// What `clusterroot.image=` asked for: `default` or the version it names; empty without.
    pub image_choice: String,
    pub boot_iface: String,
    pub boot_mac: String,
    pub address: String,
    /// The name the node ends up with (its `/etc/hostname`, else the DHCP or `ip=` name).
    pub hostname: String,
    /// Where `/etc/machine-id` came from: `node files`, `boot MAC`; empty when not set.
    pub machine_id_source: &'static str,
    pub nfs_identity: String,
    pub node_files: Vec<String>,
    /// Where the node files came from: `/etc/overlays`, `LABEL=nodefiles`,
    /// `172.23.199.225:/srv/nfs/nodes/<mac>`, `none`.
    pub node_files_source: String,
    pub timings: Vec<(&'static str, Duration)>,
    pub total: Duration,
}

impl State {
    /// The file's text: one `key=value` per line, values never contain newlines.
    pub fn render(&self) -> String {
        let clean = |s: &str| s.replace(['\n', '\r'], " ");
        let mut out = String::new();
        let _ = writeln!(out, "mode={}", self.mode);
        let _ = writeln!(out, "lower_source={}", clean(&self.lower_source));
        let _ = writeln!(out, "lower_type={}", clean(&self.lower_type));
        let _ = writeln!(out, "image={}", clean(&self.image));
        let _ = writeln!(out, "image_choice={}", clean(&self.image_choice));
        let _ = writeln!(out, "boot_iface={}", clean(&self.boot_iface));
        let _ = writeln!(out, "boot_mac={}", self.boot_mac);
        let _ = writeln!(out, "address={}", self.address);
        let _ = writeln!(out, "hostname={}", clean(&self.hostname));
        let _ = writeln!(out, "machine_id_source={}", self.machine_id_source);
        let _ = writeln!(out, "nfs_identity={}", clean(&self.nfs_identity));
        let _ = writeln!(out, "node_files={}", clean(&self.node_files.join(",")));
        let _ = writeln!(out, "node_files_source={}", clean(&self.node_files_source));
        for (step, d) in &self.timings {
            let _ = writeln!(out, "time_{step}_ms={}", d.as_millis());
        }
        let _ = writeln!(out, "time_total_ms={}", self.total.as_millis());
        out
    }

    pub fn write(&self, root: &Root) -> std::io::Result<()> {
        let path = root.path(STATE_FILE);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, self.render())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_key_value_lines() {
        let s = State {
            mode: "overlay",
            lower_source: "10.0.0.1:/srv/root".into(),
            lower_type: "nfs4.2".into(),
            boot_mac: "52:54:00:77:00:0b".into(),
            node_files: vec!["a.tar.gz".into(), "a/".into()],
            timings: vec![("network", Duration::from_millis(12))],
            total: Duration::from_millis(40),
            ..State::default()
        };
        let text = s.render();
        assert!(text.contains("lower_source=10.0.0.1:/srv/root\n"));
        assert!(text.contains("node_files=a.tar.gz,a/\n"));
        assert!(text.contains("time_network_ms=12\n"));
        assert!(text.ends_with("time_total_ms=40\n"));
        assert!(text.lines().all(|l| l.contains('=')));
    }
}
