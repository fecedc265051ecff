//! The ZFS root: `zfs=`, `ZFS=`, `root=zfs:` and `root=ZFS=`, a dataset or the pool's bootfs.

use super::{CmdlineError, RootSpec};

/// The master's root dataset and the parameter that named it (for messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZfsRoot {
    pub dataset: crate::lower::zfs::Dataset,
    pub param: String,
}

/// The root dataset: `zfs=`/`ZFS=` wins, else `root=zfs:<ds>` (dracut) or `root=ZFS=<ds>`
/// (GRUB). Bare `root=zfs` without `zfs=` and the automatic names ([`ZFS_AUTO_WORDS`]) mean
/// the pool's bootfs: `RootSpec::ZfsAuto`, left to the zfs hook.
pub(super) fn parse_zfs_root(
    zfs: Option<(String, String)>,
    root: Option<&str>,
) -> Result<Option<RootSpec>, CmdlineError> {
    let (param, name) = match (zfs, root) {
        (Some((key, v)), _) => (format!("{key}={v}"), v),
        (None, Some(r)) if r.starts_with("zfs:") || r.starts_with("ZFS=") => (format!("root={r}"), r[4..].to_string()),
        (None, Some(r @ ("zfs" | "ZFS"))) => return Ok(Some(RootSpec::ZfsAuto(format!("root={r}")))),
        (None, _) => return Ok(None),
    };
    let name = name.as_str();
    if is_zfs_auto(name) {
        return Ok(Some(RootSpec::ZfsAuto(param)));
    }
    match crate::lower::zfs::Dataset::parse(name) {
        Ok(dataset) => Ok(Some(RootSpec::Zfs(ZfsRoot { dataset, param }))),
        Err(reason) => Err(CmdlineError::BadParam { param, reason }),
    }
}

/// The ZFS root names that mean the pool's `bootfs` property rather than a dataset, in
/// `zfs=`, `ZFS=`, `root=zfs:` and `root=ZFS=` alike: the zfs hooks' `auto` and `bootfs`,
/// `zfs_auto`, and dracut's `AUTO`. Only the zfs hook's own handler reads `bootfs`.
pub const ZFS_AUTO_WORDS: &[&str] = &["auto", "bootfs", "zfs_auto", "AUTO"];

pub(crate) fn is_zfs_auto(name: &str) -> bool {
    ZFS_AUTO_WORDS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdline::BootConfig;

    #[test]
    fn local_roots() {
        use crate::lower::block::DeviceRef;
        let c = BootConfig::parse("root=LABEL=croot rootfstype=ext4 rootflags=noatime,data=ordered ro rw").unwrap();
        assert_eq!(c.root_spec(), RootSpec::Device(DeviceRef::Label("croot".into())));
        assert_eq!(
            (c.rootfstype.as_deref(), c.rootflags.as_deref(), c.rw),
            (Some("ext4"), Some("noatime,data=ordered"), true)
        );
        assert!(!BootConfig::parse("root=/dev/vda rw ro").unwrap().rw);
        for (line, ds, param) in [
            ("root=zfs:tank/root", "tank/root", "root=zfs:tank/root"),
            ("root=ZFS=tank/root", "tank/root", "root=ZFS=tank/root"),
            ("zfs=tank/os root=x", "tank/os", "zfs=tank/os"),
            ("root=zfs zfs=tank/os", "tank/os", "zfs=tank/os"),
            ("ZFS=tank/os", "tank/os", "ZFS=tank/os"),
        ] {
            let want = ZfsRoot { dataset: crate::lower::zfs::Dataset::parse(ds).unwrap(), param: param.into() };
            assert_eq!(BootConfig::parse(line).unwrap().root_spec(), RootSpec::Zfs(want), "{line}");
        }
        for (line, culprit) in [
            ("root=zfs:", "root=zfs:: names no dataset"),
            ("root=zfs:tank/root@snap", "root=zfs:tank/root@snap: names a snapshot"),
            ("zfs_import_dir=dev", "zfs_import_dir=dev: needs an absolute directory"),
        ] {
            let err = BootConfig::parse(line).unwrap_err().to_string();
            assert!(err.starts_with(culprit), "{line}: {err}");
        }
        for (line, param) in [
            ("zfs=bootfs", "zfs=bootfs"),
            ("root=zfs:AUTO", "root=zfs:AUTO"),
            ("zfs=AUTO", "zfs=AUTO"),
            // The zfs hooks' bare root=zfs, without zfs=: the pool's bootfs too.
            ("root=zfs", "root=zfs"),
            ("root=LABEL=x zfs=auto", "zfs=auto"),
        ] {
            assert_eq!(BootConfig::parse(line).unwrap().root_spec(), RootSpec::ZfsAuto(param.into()), "{line}");
        }
        let c = BootConfig::parse("zfs=tank zfs_force=1 zfs_import_dir=/dev/disk/by-id").unwrap();
        assert_eq!(c.zfs_import, crate::lower::zfs::ImportOptions { force: true, dir: Some("/dev/disk/by-id".into()) });
        assert!(BootConfig::parse("zfs_force").unwrap().zfs_import.force);
        assert!(!BootConfig::parse("zfs_force=0").unwrap().zfs_import.force);
        assert_eq!(BootConfig::parse("root=/dev/nfs").unwrap().root_spec(), RootSpec::Nfs);
        assert_eq!(BootConfig::parse("").unwrap().root_spec(), RootSpec::None);
        assert_eq!(BootConfig::parse("root=weird").unwrap().root_spec(), RootSpec::Other("weird".into()));
    }
}
