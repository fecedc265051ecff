//! The image commands end to end on a scratch store (directory backend), as root.

use super::*;
use crate::render::example;

fn words(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

#[test]
fn parses_image_commands() {
    let p = |s: &str| parse(&words(s));
    let root = None;
    assert_eq!(p("list").unwrap(), Request { op: Op::List, dry_run: false, root: root.clone() });
    assert_eq!(p("import /srv/nfs/root -n").unwrap().op, Op::Import("/srv/nfs/root".into()));
    assert!(p("import /srv/nfs/root --dry-run").unwrap().dry_run);
    assert_eq!(p("edit").unwrap().op, Op::Edit(vec![]));
    assert_eq!(
        p("edit --root /x -- xbps-install -Su").unwrap().op,
        Op::Edit(vec!["xbps-install".into(), "-Su".into()])
    );
    assert_eq!(p("edit --root /x -- ls --root").unwrap().root.unwrap(), Path::new("/x"));
    assert_eq!(p("publish --no-default").unwrap().op, Op::Publish { make_default: false });
    assert_eq!(p("default 3 -n").unwrap(), Request { op: Op::Default(Version(3)), dry_run: true, root: root.clone() });
    assert_eq!(p("gc --root /mnt").unwrap().root.unwrap(), Path::new("/mnt"));
    assert_eq!(p("export -n").unwrap(), Request { op: Op::Export, dry_run: true, root });
    for (bad, want) in [
        ("", "image: usage: crctl image list"),
        ("default 01", "'01' is not a version"),
        ("default edit", "'edit' is the working copy"),
        ("default", "image default: usage"),
        ("edit ls", "put the command after --"),
        ("publish -- ls", "takes no command after --"),
        ("list --dry-run", "unknown option '--dry-run'"),
        ("discard --no-default", "unknown option '--no-default'"),
        ("gc now", "unexpected 'now'"),
        ("export all", "unexpected 'all'"),
        ("import", "image import: usage"),
        ("frob", "unknown command 'image frob'"),
        ("list --root", "--root needs a directory"),
    ] {
        let e = p(bad).unwrap_err();
        assert!(e.contains(want), "{bad}: {e}");
    }
}

struct Scratch {
    base: PathBuf,
    host: Host,
}

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let base = std::env::temp_dir().join(format!("crctl-image-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let host = nodes::fixture(&base, &[], None);
        Scratch { base, host }
    }

    fn store(&self) -> PathBuf {
        self.base.join("root/srv/nfs/images")
    }

    /// `crctl image ...` on the scratch store: `--root` goes in after the subcommand.
    fn run(&self, args: &str) -> Result<String, ImageError> {
        self.run_words(&words(args))
    }

    fn run_words(&self, args: &[&str]) -> Result<String, ImageError> {
        self.run_with(&example::inventory(), args)
    }

    /// The same, with the inventory `inv`.
    fn run_with(&self, inv: &Inventory, args: &[&str]) -> Result<String, ImageError> {
        let root = self.base.join("root").display().to_string();
        let mut w = vec![args[1], "--root", root.as_str()];
        w.extend(&args[2..]);
        let req = parse(&w).unwrap();
        let mut out = Vec::new();
        run(inv, &req, &self.host, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    fn clients(&mut self, clients: &[(&str, &str)], dir_exists: bool) {
        self.host = nodes::fixture(&self.base, clients, None);
        if !dir_exists {
            std::fs::remove_dir_all(&self.host.nfsd_clients).unwrap();
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// A small root tree; with a static busybox when the host has one, so a chroot can run it.
fn make_tree(dir: &Path) -> bool {
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::write(dir.join("etc/hostname"), "image\n").unwrap();
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).is_ok()
}

#[test]
#[ignore = "copying owners needs root; as root: cargo test -- --include-ignored (scripts/test does)"]
fn import_edit_publish_default_discard_gc() {
    let mut s = Scratch::new("flow");
    let tree = s.base.join("tree");
    let busybox = make_tree(&tree);
    let store = s.store();
    let t = tree.display().to_string();

    let e = s.run("image list").unwrap_err().to_string();
    assert!(e.contains("is missing; crctl image import DIR makes it"), "{e}");
    // A dry run names each step and changes nothing.
    let dry = s.run(&format!("image import {t} --dry-run")).unwrap();
    assert!(
        dry.starts_with(&format!("mkdir   {}\ncopy    {t} -> {}/.import-1.tmp-", store.display(), store.display())),
        "{dry}"
    );
    assert!(
        dry.contains(&format!("default -> 1 ({0}/.default.new renamed over {0}/default)", store.display())),
        "{dry}"
    );
    assert!(dry.ends_with("(dry run: nothing changed)\n"));
    assert!(!store.exists());

    // An empty directory (on a running master, the export's /srv/nfs/root) is refused, naming
    // where the image is.
    let empty = s.base.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let e = s.run(&format!("image import {}", empty.display())).unwrap_err().to_string();
    assert!(e.contains("is empty: there is nothing to import"), "{e}");
    assert!(e.contains("crctl image import /run/rootfs/lower"), "{e}");
    assert!(!store.join("1").exists());

    let out = s.run(&format!("image import {t}")).unwrap();
    assert!(out.starts_with(&format!("copied 8 entries from {t} (0 hard links, ")), "{out}");
    assert!(out.ends_with(&format!("\nimported {t} as version 1 (default: none -> 1)\n")), "{out}");
    assert_eq!(std::fs::read_link(store.join("default")).unwrap(), Path::new("1"));
    assert_eq!(std::fs::read_to_string(store.join("1/etc/hostname")).unwrap(), "image\n");
    let out = s.run(&format!("image import {t}")).unwrap();
    assert!(out.ends_with(&format!("imported {t} as version 2 (default stays 1)\n")), "{out}");
    // No temporary copy is left to look like anything.
    let names: Vec<String> =
        std::fs::read_dir(&store).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(names.iter().all(|n| ["1", "2", "default"].contains(&n.as_str())), "{names:?}");
    let e = s.run(&format!("image import {}", store.display())).unwrap_err().to_string();
    assert!(e.contains("is the image store itself"), "{e}");

    assert_eq!(s.run("image default 2 -n").unwrap().lines().last(), Some("(dry run: nothing changed)"));
    assert_eq!(std::fs::read_link(store.join("default")).unwrap(), Path::new("1"));
    assert_eq!(s.run("image default 2").unwrap(), "default: 1 -> 2\n");
    assert_eq!(s.run("image default 2").unwrap(), "default: 2 (unchanged)\n");
    let e = s.run("image default 5").unwrap_err().to_string();
    assert!(e.ends_with("has no version 5; crctl image list shows them"), "{e}");

    let e = s.run("image publish").unwrap_err().to_string();
    assert!(e.contains("there is no working copy") && e.ends_with("crctl image edit makes one"), "{e}");
    assert!(s.run("image discard").is_err());

    // The working copy: a copy of the default, and a command run chrooted in it.
    let edit = store.join("edit");
    if busybox {
        let out = s
            .run_words(&[
                "image",
                "edit",
                "--",
                "/bin/busybox",
                "sh",
                "-c",
                "echo edited >/etc/hostname; test -e /proc/self/status",
            ])
            .unwrap();
        assert!(out.contains(&format!("\nmade {}, a copy of version 2\n", edit.display())), "{out}");
        assert!(out.contains("exited with status 0\ncrctl image publish makes it version 3"), "{out}");
        assert_eq!(std::fs::read_to_string(edit.join("etc/hostname")).unwrap(), "edited\n");
        let e = s.run("image edit -- /bin/busybox false").unwrap_err().to_string();
        assert!(e.starts_with(&format!("/bin/busybox false in {} exited with status 1;", edit.display())), "{e}");
        // The binds lived in the command's own mount namespace: none is left on the host.
        let mine = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(mounts::below(&mounts::parse(&mine), &edit, true).is_empty(), "{mine}");
        let e = s.run("image edit -- /no/such/command").unwrap_err().to_string();
        assert!(e.contains("running /no/such/command chrooted in") && e.ends_with("has after --"), "{e}");
    } else {
        eprintln!("note: no static /bin/busybox here: the chroot run is not tested, only the copy");
        let listing = Listing::read(&store).unwrap();
        let ctx = Ctx {
            inv: &example::inventory(),
            host: &s.host,
            dir: store.clone(),
            mounts: vec![],
            backend: Backend::Dir,
        };
        let (steps, made) = edit_plan(&ctx, &listing).unwrap();
        plan::execute(&steps, &mut Vec::new()).unwrap();
        assert_eq!(made.unwrap(), format!("made {}, a copy of version 2", edit.display()));
        std::fs::write(edit.join("etc/hostname"), "edited\n").unwrap();
    }
    // A running edit holds its lock: publish and discard refuse.
    let held = store::lock_edit(&edit, false).unwrap();
    let e = s.run("image publish").unwrap_err().to_string();
    assert!(e.contains("is in use by a running crctl image edit"), "{e}");
    drop(held);

    let dry = s.run("image publish --dry-run").unwrap();
    assert!(dry.starts_with(&format!("rename  {} -> {}/3\nfsync   ", edit.display(), store.display())), "{dry}");
    assert_eq!(s.run("image publish").unwrap(), "published 3 (default: 2 -> 3)\n");
    assert_eq!(std::fs::read_to_string(store.join("3/etc/hostname")).unwrap(), "edited\n");
    assert_eq!(std::fs::read_to_string(store.join("2/etc/hostname")).unwrap(), "image\n");
    assert!(!edit.exists());

    // Discard: the copy goes, nothing else.
    let listing = Listing::read(&store).unwrap();
    let ctx =
        Ctx { inv: &example::inventory(), host: &s.host, dir: store.clone(), mounts: vec![], backend: Backend::Dir };
    plan::execute(&edit_plan(&ctx, &listing).unwrap().0, &mut Vec::new()).unwrap();
    assert!(s.run("image discard -n").unwrap().starts_with(&format!("remove  {} (renamed to ", edit.display())));
    assert!(edit.exists());
    assert_eq!(s.run("image discard").unwrap(), format!("discarded {}\n", edit.display()));
    assert!(!edit.exists());
    assert!(store.join("3").exists());

    // A fourth version, not the default: published with --no-default.
    plan::execute(&edit_plan(&ctx, &Listing::read(&store).unwrap()).unwrap().0, &mut Vec::new()).unwrap();
    assert_eq!(s.run("image publish --no-default").unwrap(), "published 4 (default stays 3)\n");

    // gc refuses while it cannot know what the nodes run.
    s.clients(&[], false);
    let e = s.run("image gc").unwrap_err().to_string();
    assert!(e.starts_with("cannot tell which versions the nodes run:") && e.ends_with("nothing removed"), "{e}");
    s.clients(
        &[
            ("1", "Linux NFSv4.2 clusterroot-52540077000b@2/node1"),
            ("2", "Linux NFSv4.2 clusterroot-52540077000c/node2"),
        ],
        true,
    );
    let e = s.run("image gc").unwrap_err().to_string();
    assert!(e.starts_with("cannot tell which version node2 run(s)"), "{e}");
    s.clients(&[("1", "Linux NFSv4.2 clusterroot-52540077000b@2/node1")], true);
    let list = s.run("image list").unwrap();
    let rows: Vec<&str> = list.lines().map(|l| l.get(..17).unwrap_or(l).trim_end()).collect();
    assert_eq!(rows, ["version  default", "1", "2", "3        default", "4"], "{list}");
    assert!(list.lines().nth(2).unwrap().ends_with(" node1"), "{list}");
    let dry = s.run("image gc --dry-run").unwrap();
    assert!(
        dry.starts_with(
            "remove 1\nkeep   2 (the version before the default; runs on node1)\nkeep   3 (the default)\nremove 4\n"
        ),
        "{dry}"
    );
    assert!(store.join("1").exists());
    let out = s.run("image gc").unwrap();
    assert!(out.ends_with("removed 1, 4\n"), "{out}");
    let left: Vec<u64> = Listing::read(&store).unwrap().versions.iter().map(|e| e.version.0).collect();
    assert_eq!(left, [2, 3]);
    assert!(s.run("image gc").unwrap().ends_with("nothing to remove\n"));
}

/// With a store, a version is everything its clients boot: import, publish and default say
/// when one lacks a boot file in its TFTP root (the master serves the default's).
#[test]
#[ignore = "copying owners needs root; as root: cargo test -- --include-ignored (scripts/test does)"]
fn a_version_without_boot_files_is_noted() {
    let s = Scratch::new("boot-files");
    let inv = Inventory::parse(&example::CLUSTER.replace("master master\n", "master master\nimages /srv/nfs/images\n"))
        .unwrap();
    let run = |args: &str| s.run_with(&inv, &words(args)).unwrap();
    let (tree, store) = (s.base.join("tree"), s.store());
    make_tree(&tree);
    std::fs::create_dir_all(tree.join("srv/tftp")).unwrap();
    for f in BOOT_FILES {
        std::fs::write(tree.join("srv/tftp").join(f), f).unwrap();
    }
    let out = run(&format!("image import {}", tree.display()));
    assert!(out.ends_with("as version 1 (default: none -> 1)\n"), "{out}");
    // A working copy whose kernel hook did not run: boot.ipxe alone.
    std::fs::create_dir_all(store.join("edit/srv/tftp")).unwrap();
    std::fs::write(store.join("edit/srv/tftp/boot.ipxe"), "").unwrap();
    let note = |v: u64, dir: &str| {
        format!(
            "note: clients of version {v} would find no vmlinuz, initramfs-net.img in its TFTP root {}/{dir}/srv/tftp: \
             make them in a working copy (the kernel hook in crctl image edit, then crctl sync) and publish it\n",
            store.display()
        )
    };
    assert!(run("image publish --dry-run").ends_with(&format!("(dry run: nothing changed)\n{}", note(2, "edit"))));
    assert_eq!(run("image publish"), format!("published 2 (default: 1 -> 2)\n{}", note(2, "2")));
    // The rollback: version 1 has them all; back to 2, the note again.
    assert_eq!(run("image default 1"), "default: 2 -> 1\n");
    assert_eq!(run("image default 2"), format!("default: 1 -> 2\n{}", note(2, "2")));
    // Without a store in the inventory the master serves its own TFTP root: no note.
    assert_eq!(s.run("image default 1").unwrap(), "default: 2 -> 1\n");
    assert_eq!(s.run("image default 2").unwrap(), "default: 1 -> 2\n");
}

#[test]
fn removal_refuses_a_tree_with_mounts_below_it() {
    let s = Scratch::new("mounted");
    let store = s.store();
    std::fs::create_dir_all(store.join("edit/dev")).unwrap();
    let inv = example::inventory();
    let info = format!("1 0 0:1 / {}/edit/dev rw - devtmpfs dev rw\n", store.display());
    let ctx = Ctx { inv: &inv, host: &s.host, dir: store.clone(), mounts: mounts::parse(&info), backend: Backend::Dir };
    let e = discard(&ctx, false, &mut Vec::new()).unwrap_err().to_string();
    assert!(e.contains("has mounts below it") && e.contains("edit/dev"), "{e}");
    assert!(store.join("edit/dev").exists());
}

/// `crctl image import` of a tree holding Debian's `/var/log/lastlog` at 1 TiB apparent size
/// (a UID near 2^32), beside a file with a trailing hole and one that is all hole: each arrives
/// with its holes where they were, its data, and about as many blocks as the source.
#[test]
#[ignore = "copying owners needs root; as root: cargo test -- --include-ignored (scripts/test does)"]
fn import_keeps_the_holes_of_a_1_tib_file() {
    use copy::data::fixture::{canary, check, files, keeps_holes, sparse, Sparse};
    let s = Scratch::new("sparse");
    if !keeps_holes(&s.base) {
        eprintln!("skipped: the filesystem of {} keeps no holes", s.base.display());
        return;
    }
    let (tree, store) = (s.base.join("tree"), s.store());
    let log = tree.join("var/log");
    std::fs::create_dir_all(&log).unwrap();
    // Version 1: the small file alone. A copy that fills holes fails here, before it writes a
    // terabyte to the disk.
    let c = canary();
    sparse(&log.join(c.name), c.size, &c.data);
    s.run(&format!("image import {}", tree.display())).unwrap();
    check(&log.join(c.name), &store.join("1/var/log").join(c.name));
    std::fs::remove_file(log.join(c.name)).unwrap();
    // Version 2: every test file (the small one again among them).
    let files = files();
    for Sparse { name, size, data } in &files {
        sparse(&log.join(name), *size, data);
    }
    let started = std::time::Instant::now();
    let out = s.run(&format!("image import {}", tree.display())).unwrap();
    let took = started.elapsed();
    assert!(out.starts_with(&format!("copied {} entries from ", files.len() + 2)), "{out}"); // and var, var/log
    for Sparse { name, size, .. } in &files {
        let (blocks, copy_blocks) = check(&log.join(name), &store.join("2/var/log").join(name));
        eprintln!("{name}: {size} bytes, {blocks} blocks, {copy_blocks} in the copy");
    }
    eprintln!("imported in {took:?}");
}

/// A running master's fstab binds the image (the lower) onto its own `srv/nfs/root`: the
/// same filesystem, so `st_dev` cannot tell it is a mount point. `image import` copies that
/// directory empty, once, whether the mount table names it or only its (dev, ino) gives it
/// away as the tree's own root. The binds live in a thread's private mount namespace.
#[test]
#[ignore = "copying owners and bind mounts need root; as root: cargo test -- --include-ignored (scripts/test does)"]
fn import_copies_a_bind_of_the_tree_into_itself_once() {
    use rustix::mount::{mount_bind, mount_change, MountPropagationFlags};
    let mut s = Scratch::new("bind");
    let tree = s.base.join("tree");
    make_tree(&tree);
    std::fs::create_dir_all(tree.join("srv/nfs/root")).unwrap();
    std::fs::create_dir_all(tree.join("srv/nfs/nodes")).unwrap();
    std::fs::write(tree.join("srv/nfs/nodes/secret"), "a node's file\n").unwrap();
    let tree = std::fs::canonicalize(&tree).unwrap(); // as the mount table names it
    let store = s.store();
    let t = tree.display().to_string();
    let mount_note = |path: &str| {
        format!("note: mount points are copied as empty directories, not descended into (one filesystem): {t}/{path}\n")
    };
    let empty = |v: &str, dir: &str| std::fs::read_dir(store.join(v).join(dir)).unwrap().next().is_none();

    // The mount table alone: a directory it names is a mount point, even with nothing mounted.
    std::fs::write(&s.host.mountinfo, format!("99 1 0:99 / {t}/srv/nfs/nodes rw - nfs4 master:/nodes rw\n")).unwrap();
    let out = s.run(&format!("image import {t}")).unwrap();
    assert!(out.starts_with(&format!("copied 12 entries from {t} ")), "{out}");
    assert!(out.contains(&mount_note("srv/nfs/nodes")), "{out}");
    assert!(empty("1", "srv/nfs/nodes"));

    let result = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // SAFETY: only this thread's mount namespace and filesystem context change; it
                // shares no memory with other threads that unsharing could affect, and ends here.
                unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS) }
                    .map_err(|e| format!("unshare(CLONE_NEWNS): {e}"))?;
                mount_change("/", MountPropagationFlags::REC | MountPropagationFlags::PRIVATE)
                    .map_err(|e| format!("making / private: {e}"))?;
                // The master's fstab line: /run/rootfs/lower /run/rootfs/lower/srv/nfs/root none bind.
                mount_bind(&tree, tree.join("srv/nfs/root")).map_err(|e| format!("mount --bind: {e}"))?;
                // This thread's own mount table names the bind.
                s.host.mountinfo = "/proc/thread-self/mountinfo".into();
                let named = s.run(&format!("image import {t}")).unwrap();
                // No mount table entry: the directory is the tree's root again, a bind loop.
                s.host.mountinfo = s.base.join("mountinfo");
                std::fs::write(&s.host.mountinfo, "").unwrap();
                let looped = s.run(&format!("image import {t}")).unwrap();
                Ok::<_, String>((named, looped))
            })
            .join()
            .expect("the bind test's thread panicked")
    });
    let (named, looped) = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("skipped: the kernel refused: {e}");
            return;
        }
    };
    for (v, out) in [("2", named), ("3", looped)] {
        assert!(out.starts_with(&format!("copied 13 entries from {t} ")), "version {v}: {out}");
        assert!(out.contains(&mount_note("srv/nfs/root")), "version {v}: {out}");
        assert!(empty(v, "srv/nfs/root"), "version {v}");
        assert_eq!(std::fs::read_to_string(store.join(v).join("srv/nfs/nodes/secret")).unwrap(), "a node's file\n");
    }
    // The bind went with the thread's namespace.
    let mine = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(mounts::below(&mounts::parse(&mine), &tree, true).is_empty(), "{mine}");
}

/// `image edit` gives its command a fresh tmpfs on `/run` (Debian's dracut turns host-only
/// mode off where `/run` is no mount point), never the host's `/run`, and nothing written
/// there stays in the working copy.
#[test]
#[ignore = "copying owners and mounting need root; as root: cargo test -- --include-ignored (scripts/test does)"]
fn edit_mounts_a_fresh_tmpfs_on_run() {
    let s = Scratch::new("run");
    let tree = s.base.join("tree");
    if !make_tree(&tree) {
        eprintln!("skipped: no static /bin/busybox here to run in the chroot");
        return;
    }
    s.run(&format!("image import {}", tree.display())).unwrap();
    let edit = s.store().join("edit");
    let dry = s.run("image edit --dry-run -- true").unwrap();
    assert!(
        dry.contains(&format!(
            "run     true chrooted in {} (/proc, /sys, /dev, /dev/pts bound and a tmpfs on /run in a mount \
             namespace of its own)\n",
            edit.display()
        )),
        "{dry}"
    );
    let script = "b=/bin/busybox; { $b grep ' /run ' /proc/self/mountinfo; $b ls -A /run; } >/etc/run-seen; \
                  $b touch /run/left-behind";
    let out = s.run_words(&["image", "edit", "--", "/bin/busybox", "sh", "-c", script]).unwrap();
    // The copy had no run/: made for the mount, as for the binds.
    assert!(out.contains(&format!("made {} (missing; the mounts need it)\n", edit.join("run").display())), "{out}");
    assert!(out.contains("exited with status 0\n"), "{out}");
    let seen = std::fs::read_to_string(edit.join("etc/run-seen")).unwrap();
    let mount: Vec<&str> = seen.lines().filter(|l| l.contains(" /run ")).collect();
    assert_eq!(mount.len(), 1, "one mount on /run: {seen}");
    let fields: Vec<&str> = mount[0].split(' ').collect();
    let dash = fields.iter().position(|f| *f == "-").unwrap();
    assert_eq!(&fields[dash + 1..dash + 3], ["tmpfs", "tmpfs"], "{seen}");
    let options: Vec<&str> = fields[5].split(',').collect();
    assert!(options.contains(&"nosuid") && options.contains(&"nodev"), "{seen}");
    assert!(fields[dash + 3].split(',').any(|o| o == "mode=755"), "{seen}");
    assert_eq!(seen.lines().count(), 1, "the tmpfs starts empty, not the host's /run: {seen}");
    assert_eq!(std::fs::read_dir(edit.join("run")).unwrap().count(), 0, "what the command wrote in /run went");
}
