//! Issue 25's first steps on a new cluster, with the built crctl: an inventory of settings
//! only, whose `master` names no node yet, takes the master as its first node; until then
//! the commands that need the master refuse in one line that says so. And sync writes node
//! files only onto a mounted node-files filesystem, or with --into-image.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const SETTINGS: &str = "\
# a new cluster: the settings, no node yet
network 172.23.199.0/24
dhcp server
range 172.23.199.100 172.23.199.199
master head
";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("crctl-first-node-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// crctl's exit status, standard output and standard error.
fn crctl(inventory: &Path, args: &str) -> (i32, String, String) {
    status_and_output(Command::new(env!("CARGO_BIN_EXE_crctl")).arg("-f").arg(inventory).args(args.split_whitespace()))
}

/// The same without `-f`: the inventory at its default place.
fn crctl_at_default(args: &str) -> (i32, String, String) {
    status_and_output(Command::new(env!("CARGO_BIN_EXE_crctl")).args(args.split_whitespace()))
}

fn status_and_output(command: &mut Command) -> (i32, String, String) {
    let out = command.stdin(Stdio::null()).output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.code().unwrap(), text(out.stdout), text(out.stderr))
}

#[test]
fn the_master_is_added_first_then_sync_works() {
    let dir = scratch("sequence");
    let (inv, root) = (dir.join("cluster"), dir.join("root"));
    std::fs::write(&inv, SETTINGS).unwrap();
    let r = root.display();
    let not_yet =
        "crctl: the master head is not a node of the inventory yet; add it first: crctl node add head MAC ADDRESS\n";

    // What needs the master refuses, naming the command that fixes it.
    for args in [format!("sync --root {r} --into-image"), "show dnsmasq".into(), format!("render head --root {r}")] {
        let (status, _, err) = crctl(&inv, &args);
        assert_eq!((status, err.as_str()), (1, not_yet), "{args}");
    }
    // What needs only the file works.
    let (status, out, _) = crctl(&inv, "node list");
    assert_eq!((status, out.as_str()), (0, "name         MAC               address         groups\n"));
    let (status, out, _) = crctl(&inv, "show inventory");
    assert_eq!((status, out.as_str()), (0, SETTINGS));
    // The master needs an address; a client may come first.
    let (status, _, err) = crctl(&inv, "node add head 52:54:00:77:00:e1");
    assert_eq!(
        (status, err.as_str()),
        (1, "crctl: the master head has no address; the clients mount their root from it, so give it one\n")
    );
    let (status, _, err) = crctl(&inv, "node add node1 52:54:00:77:00:0b 172.23.199.11");
    assert_eq!(status, 0, "{err}");
    // The command the message names.
    let (status, out, err) = crctl(&inv, "node add head 52:54:00:77:00:e1 172.23.199.225");
    assert_eq!(
        (status, out.as_str()),
        (0, "added head (52:54:00:77:00:e1); crctl sync renders the configs\n"),
        "{err}"
    );
    let (_, out, _) = crctl(&inv, "node list");
    assert!(out.contains("head         52:54:00:77:00:e1 172.23.199.225  (master)\n"), "{out}");

    // sync: refused into a node-files directory that is no mount point, then with --into-image.
    let nodes = root.join("srv/nfs/nodes");
    std::fs::create_dir_all(nodes.join("nfsdcld")).unwrap();
    std::fs::write(nodes.join("cluster"), SETTINGS).unwrap();
    let (status, _, err) = crctl(&inv, &format!("sync --root {r}"));
    assert_eq!(status, 1);
    assert_eq!(
        err,
        format!(
            "crctl: {r}/srv/nfs/nodes is not mounted: node files (ssh host keys, machine-ids) would land in the \
             shared image, which every client reads; mount the node-files filesystem there (mount \
             LABEL=nodefiles {r}/srv/nfs/nodes), or pass --into-image for a scratch tree\n"
        )
    );
    assert!(!nodes.join("52:54:00:77:00:e1").exists());
    let (status, out, err) = crctl(&inv, &format!("sync --root {r} --into-image"));
    assert_eq!(status, 0, "{err}");
    assert!(out.contains(&format!("new{:21} {r}/srv/nfs/nodes/52:54:00:77:00:e1/dnsmasq.conf", "")), "{out}");
    // The inventory and nfsdcld's records at the top are no node's directory.
    assert!(!out.contains("belongs to no node"), "{out}");
    let (status, out, _) = crctl(&inv, &format!("sync --root {r} --into-image"));
    assert_eq!(status, 0);
    assert!(out.lines().filter(|l| !l.starts_with("note:")).all(|l| l.starts_with("unchanged")), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `node add` and `node remove` take `--root` as sync does: the inventory's default place
/// (`<root>/srv/nfs/nodes/cluster`) and the node-files mount check follow it.
#[test]
fn node_add_and_remove_act_on_the_root_they_name() {
    let dir = scratch("root");
    let root = dir.join("root");
    let nodes = root.join("srv/nfs/nodes");
    std::fs::create_dir_all(&nodes).unwrap();
    let inv = nodes.join("cluster");
    std::fs::write(&inv, SETTINGS).unwrap();
    let r = root.display().to_string();
    let run = crctl_at_default;
    // No mount on <root>/srv/nfs/nodes: refused, naming it, the inventory as it was.
    let refused = |args: &str| {
        let before = std::fs::read_to_string(&inv).unwrap();
        let (status, _, err) = run(args);
        assert_eq!(status, 1, "{args}");
        assert!(err.starts_with(&format!("crctl: {r}/srv/nfs/nodes is not mounted: ")), "{args}: {err}");
        assert_eq!(std::fs::read_to_string(&inv).unwrap(), before, "{args}");
    };

    refused(&format!("node add head 52:54:00:77:00:e1 172.23.199.225 --root {r}"));
    // With --into-image, into <root>'s inventory.
    let (status, out, err) = run(&format!("node add head 52:54:00:77:00:e1 172.23.199.225 --root {r} --into-image"));
    assert_eq!(
        (status, out.as_str()),
        (0, "added head (52:54:00:77:00:e1); crctl sync renders the configs\n"),
        "{err}"
    );
    let (status, _, err) = run(&format!("node add --root {r} node1 52:54:00:77:00:0b - --into-image"));
    assert_eq!(status, 0, "{err}");
    let text = std::fs::read_to_string(&inv).unwrap();
    assert!(text.starts_with(SETTINGS) && text.contains("node head ") && text.contains("node node1 "), "{text}");
    refused(&format!("node remove node1 --root {r}"));
    let (status, out, err) = run(&format!("node remove node1 --into-image --root {r}"));
    assert_eq!(
        (status, out.as_str()),
        (0, "removed node1; crctl sync renders the configs (its node files stay)\n"),
        "{err}"
    );
    assert!(!std::fs::read_to_string(&inv).unwrap().contains("node1"));
    std::fs::remove_dir_all(&dir).unwrap();
}
