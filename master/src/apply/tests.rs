//! `crctl apply` against scratch trees: an image with the master's node files, a live root
//! with its boot record, and a runner that records the programs instead of running them.

use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::render::example;

/// Records every command line; fails those whose words contain `fail`.
#[derive(Default)]
struct Recorder {
    ran: Vec<String>,
    fail: Option<&'static str>,
}

impl Runner for Recorder {
    fn run(&mut self, argv: &[String]) -> Result<(), String> {
        let line = argv.join(" ");
        self.ran.push(line.clone());
        match self.fail {
            Some(f) if line.contains(f) => Err(format!("`{line}` failed (exit status: 1): it failed")),
            _ => Ok(()),
        }
    }
}

const MASTER: &str = "srv/nfs/nodes/52:54:00:77:00:e1";
const STATE: &str = "mode=overlay\nboot_mac=52:54:00:77:00:e1\nnode_files_source=LABEL=nodefiles\n";

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("crctl-apply-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(base: &Path, rel: &str, text: &str) {
    let p = base.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
}

fn link(base: &Path, rel: &str, target: &str) {
    let p = base.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, p).unwrap();
}

#[test]
fn refuses_anything_but_the_running_master() {
    let live = scratch("refuse");
    let inv = example::inventory();
    let e = booted(&inv, &live).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{}/run/clusterroot/state is missing: this system did not boot through clusterroot, and its /etc \
             is the image's own; crctl apply runs on the running clusterroot master (node files reach /etc at \
             every clusterroot boot)",
            live.display()
        )
    );
    for (state, want) in [
        ("mode=plain\nboot_mac=\n", "this system booted with clusterroot=off: / is the image itself"),
        (
            "mode=overlay\nboot_mac=52:54:00:77:00:0b\n",
            "this system booted as 52:54:00:77:00:0b, not as the master master (52:54:00:77:00:e1): crctl apply runs on the master",
        ),
        ("mode=overlay\nboot_mac=52:54:00:77:00:e1\nnode_files_source=none\n", "this system booted with clusterroot.nodefiles=none"),
    ] {
        write(&live, "run/clusterroot/state", state);
        let e = booted(&inv, &live).unwrap_err().to_string();
        assert!(e.starts_with(want), "{e}");
        assert_eq!(e.lines().count(), 1);
    }
    write(&live, "run/clusterroot/state", STATE);
    assert_eq!(booted(&inv, &live).unwrap(), Boot { init: None });
    std::fs::create_dir_all(live.join("etc/runit/runsvdir")).unwrap();
    assert_eq!(booted(&inv, &live).unwrap(), Boot { init: Some(Init::Runit) });
    std::fs::create_dir_all(live.join("run/systemd/system")).unwrap();
    assert_eq!(booted(&inv, &live).unwrap(), Boot { init: Some(Init::Systemd) });
    // The node files come from their own filesystem, never from the image's directory.
    let e = place::node_files_mounted_to_read(&live, "/srv/nfs/nodes").map_err(ApplyError::from).unwrap_err();
    let want = format!(
        "{0}/srv/nfs/nodes is not mounted: the master's node files are on the node-files filesystem, which its \
         fstab mounts there (mount LABEL=nodefiles {0}/srv/nfs/nodes); without it crctl apply would read the \
         image's own directory",
        live.display()
    );
    assert_eq!(e.to_string(), want);
    // The whole command refuses with it, before it reads anything.
    let mut out = Vec::new();
    let e = run(&inv, &live, &live, true, &mut Recorder::default(), &mut out, &mut |_| {}).unwrap_err();
    assert_eq!(e.to_string(), want);
    std::fs::remove_dir_all(&live).unwrap();
}

fn change(rel: &str, what: What, kind: Kind) -> FileChange {
    FileChange { rel: rel.into(), what, kind }
}

fn shown(steps: &[Step]) -> Vec<String> {
    steps.iter().map(Step::to_string).collect()
}

#[test]
fn each_changed_file_is_loaded_by_its_program() {
    use Kind::*;
    use What::*;
    let changes = [
        change("dnsmasq.conf", Changed, File),
        change("hosts", Changed, File),
        change("exports", Changed, File),
        change("lighttpd/lighttpd.conf", New, File),
        change("hostname", Changed, File),
        change("systemd/system/multi-user.target.wants", New, Dir),
        change("systemd/system/multi-user.target.wants/lighttpd.service", New, Link),
        change("systemd/system/multi-user.target.wants/systemd-networkd.service", New, Link),
        change("systemd/system/multi-user.target.wants/dnsmasq.service", New, Link),
        change("systemd/system/multi-user.target.wants/ssh.service", Removed, Link),
        change("systemd/system/nfsdcld.service.d/clusterroot.conf", New, File),
        change("systemd/network/10-clusterroot.network", New, File),
        change("nfs.conf", Changed, File),
        change("fstab", Changed, File),
        change("machine-id", Restored, File),
    ];
    assert_eq!(
        shown(&actions(&changes, Some(Init::Systemd), Some("head"))),
        [
            "run     systemctl daemon-reload",
            "run     hostname head",
            "run     systemctl start systemd-networkd.service",
            "run     exportfs -ra",
            "run     networkctl reload",
            "run     systemctl restart dnsmasq.service",
            "run     systemctl restart lighttpd.service",
            "note    ssh.service is no longer enabled: it does not start at the next boot (systemctl stop ssh.service stops it now)",
            "note    nfsdcld.service changed: it applies when nfsdcld.service (re)starts",
            "note    nfs.conf changed: restart the NFS server to load it (clients wait through its grace period), or reboot",
            "note    fstab changed: what it adds is mounted at the next boot (or by hand: mount TARGET)",
            "note    machine-id changed: the running system keeps its own until the next boot",
        ]
    );
    let changes = [
        change("dnsmasq.conf", Changed, File),
        change("runit/runsvdir/default/lighttpd", New, Link),
        change("sv/nfsdcld/run", Changed, File),
        change("sv/nfsdcld", New, Dir),
        change("runit/core-services/60-clusterroot-net.sh", New, File),
        change("systemd/system/multi-user.target.wants/lighttpd.service", New, Link),
        // nfsd's thread count for runit's nfs-server service: loaded as nfs.conf is.
        change("conf.d/nfs-server.conf", Changed, File),
    ];
    assert_eq!(
        shown(&actions(&changes, Some(Init::Runit), None)),
        [
            "run     sv restart dnsmasq",
            "run     sv restart nfsdcld",
            "note    runsvdir starts lighttpd within 5 seconds",
            "note    /etc/runit/core-services/60-clusterroot-net.sh changed: it runs at the next boot",
            "note    nfs.conf changed: restart the NFS server to load it (clients wait through its grace period), or reboot",
        ]
    );
    assert_eq!(
        shown(&actions(&[change("dnsmasq.conf", Changed, File), change("exports", New, File)], None, None)),
        ["run     exportfs -ra", "note    restart dnsmasq to load it"]
    );
    // With a store, the servers reach its default version's boot files through /run/rootfs.
    for (init, rel) in
        [(Init::Systemd, "tmpfiles.d/clusterroot.conf"), (Init::Runit, "runit/core-services/61-clusterroot-rootfs.sh")]
    {
        assert_eq!(
            shown(&actions(&[change("dnsmasq.conf", Changed, File), change(rel, New, File)], Some(init), None))[..1],
            ["run     chmod 0711 /run/rootfs"]
        );
        assert!(actions(&[change(rel, Removed, File)], Some(init), None).is_empty());
    }
    assert!(actions(&[change("motd", Changed, File)], Some(Init::Systemd), None).is_empty());
    assert!(valid_hostname("node-1.example") && !valid_hostname("-x") && !valid_hostname("a b") && !valid_hostname(""));
}

/// The image with the master's node files, and the live system booted from them (its /etc,
/// its boot record), as they stand after a sync that changed some of them.
fn cluster(name: &str) -> (PathBuf, PathBuf) {
    let (root, live) = (scratch(&format!("{name}-root")), scratch(&format!("{name}-live")));
    // The node files now.
    write(&root, &format!("{MASTER}/dnsmasq.conf"), "interface=ens5\n");
    write(&root, &format!("{MASTER}/exports"), "/srv/nfs/root *(ro)\n");
    write(&root, &format!("{MASTER}/hostname"), "head\n");
    link(
        &root,
        &format!("{MASTER}/systemd/system/multi-user.target.wants/lighttpd.service"),
        "/lib/systemd/system/lighttpd.service",
    );
    // The image: a motd the node files replaced at boot and give up now.
    write(&root, "etc/motd", "image\n");
    // The live system, booted with older node files.
    write(&live, "run/clusterroot/state", STATE);
    std::fs::create_dir_all(live.join("run/systemd/system")).unwrap();
    write(&live, "etc/dnsmasq.conf", "old\n");
    write(&live, "etc/exports", "/srv/nfs/root *(ro)\n");
    write(&live, "etc/hostname", "master\n");
    write(&live, "etc/motd", "from the node files\n");
    write(&live, "etc/old.conf", "from the node files\n");
    std::fs::create_dir_all(live.join("etc/systemd/system/multi-user.target.wants")).unwrap();
    let record = |path: &str| manifest::Entry {
        path: path.into(),
        kind: manifest::Kind::File,
        mode: 0o644,
        digest: "0".repeat(64),
    };
    let then = [record("/etc/dnsmasq.conf"), record("/etc/exports"), record("/etc/motd"), record("/etc/old.conf")];
    manifest::write(&Root::new(&live), &then).unwrap();
    (root, live)
}

#[test]
#[ignore = "laying node files sets owners, which needs root; as root: cargo test -- --include-ignored (scripts/test does)"]
fn the_live_etc_gets_the_node_files_and_each_change_is_loaded() {
    let (root, live) = cluster("apply");
    let inv = example::inventory();
    let boot = booted(&inv, &live).unwrap();
    let p = plan(&inv, &root, &live, &boot).unwrap();
    let want = [
        "copy    /etc/dnsmasq.conf (changed)",
        "copy    /etc/hostname (changed)",
        "copy    /etc/systemd/system/multi-user.target.wants/lighttpd.service (new)",
        "restore /etc/motd from the image (the node files no longer hold it)",
        "remove  /etc/old.conf (neither the node files nor the image hold it)",
        "record  /run/clusterroot/node-files (what the node files put in /etc now)",
        "run     systemctl daemon-reload",
        "run     hostname head",
        "run     systemctl start lighttpd.service",
        "run     systemctl restart dnsmasq.service",
    ];
    assert_eq!(shown(&p.steps), want);

    // A dry run prints the same and changes nothing.
    let (mut runner, mut out, mut failures) = (Recorder::default(), Vec::new(), Vec::new());
    execute(&p, true, &mut runner, &mut out, &mut |m| failures.push(m.to_string())).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text, format!("{}\n(dry run: nothing changed)\n", want.join("\n")));
    assert!(runner.ran.is_empty() && failures.is_empty());
    assert_eq!(std::fs::read_to_string(live.join("etc/dnsmasq.conf")).unwrap(), "old\n");

    // Then for real; a command that fails is named, the others still run.
    let mut runner = Recorder { fail: Some("hostname"), ..Recorder::default() };
    let mut out = Vec::new();
    let e = execute(&p, false, &mut runner, &mut out, &mut |m| failures.push(m.to_string())).unwrap_err();
    assert_eq!(e.to_string(), "1 of 4 commands failed (each named above); /etc matches the node files");
    assert_eq!(failures, ["apply: `hostname head` failed (exit status: 1): it failed"]);
    assert_eq!(
        runner.ran,
        [
            "systemctl daemon-reload",
            "hostname head",
            "systemctl start lighttpd.service",
            "systemctl restart dnsmasq.service"
        ]
    );
    let etc = live.join("etc");
    assert_eq!(std::fs::read_to_string(etc.join("dnsmasq.conf")).unwrap(), "interface=ens5\n");
    assert_eq!(std::fs::read_to_string(etc.join("motd")).unwrap(), "image\n");
    assert!(!etc.join("old.conf").exists());
    assert_eq!(
        std::fs::read_link(etc.join("systemd/system/multi-user.target.wants/lighttpd.service")).unwrap(),
        Path::new("/lib/systemd/system/lighttpd.service")
    );
    // The record is what the node files put in /etc now; a second run has nothing to do.
    let record = std::fs::read_to_string(Root::new(&live).path(MANIFEST_FILE)).unwrap();
    let paths: Vec<String> = manifest::parse(&record).unwrap().into_iter().map(|e| e.path).collect();
    assert_eq!(
        paths,
        [
            "/etc/dnsmasq.conf",
            "/etc/exports",
            "/etc/hostname",
            "/etc/systemd/system/multi-user.target.wants/lighttpd.service"
        ]
    );
    let again = plan(&inv, &root, &live, &boot).unwrap();
    assert!(again.steps.is_empty(), "{:?}", shown(&again.steps));
    let mut out = Vec::new();
    execute(&again, false, &mut Recorder::default(), &mut out, &mut |_| {}).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), "nothing to do: /etc matches the master's node files\n");
    std::fs::remove_dir_all(&root).unwrap();
    std::fs::remove_dir_all(&live).unwrap();
}

/// No node files for the master at all (a wrong directory, before the first sync): nothing is
/// taken away from the running master.
#[test]
fn no_node_files_at_all_is_refused() {
    let (root, live) = cluster("none");
    std::fs::remove_dir_all(root.join(MASTER)).unwrap();
    let inv = example::inventory();
    let boot = booted(&inv, &live).unwrap();
    let e = plan(&inv, &root, &live, &boot).err().unwrap().to_string();
    assert_eq!(
        e,
        format!(
            "{}/srv/nfs/nodes holds no node files for the master (no directory 52:54:00:77:00:e1/ nor archive \
             52:54:00:77:00:e1*.tar*); run crctl sync first (applying none would take every node file away from \
             the running master)",
            root.display()
        )
    );
    std::fs::remove_dir_all(&root).unwrap();
    std::fs::remove_dir_all(&live).unwrap();
}

#[test]
#[ignore = "laying node files sets owners, which needs root; as root: cargo test -- --include-ignored (scripts/test does)"]
fn a_bad_host_name_stops_it_before_any_change() {
    let (root, live) = cluster("hostname");
    write(&root, &format!("{MASTER}/hostname"), "-rf /\n");
    let inv = example::inventory();
    let boot = booted(&inv, &live).unwrap();
    let e = plan(&inv, &root, &live, &boot).err().unwrap().to_string();
    assert_eq!(
        e,
        "the master's node file hostname holds '-rf /', which is not a host name; fix the inventory, then crctl sync"
    );
    assert_eq!(std::fs::read_to_string(live.join("etc/dnsmasq.conf")).unwrap(), "old\n");
    std::fs::remove_dir_all(&root).unwrap();
    std::fs::remove_dir_all(&live).unwrap();
}
