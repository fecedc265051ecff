//! The image commands end to end on a scratch store (directory backend), as root.

use super::*;
use crate::render::example;

fn words(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

/// `crctl image WORDS...` as the command line parses it: its request, or the message.
fn parse(words: &[&str]) -> Result<Request, String> {
    let args: Vec<String> = std::iter::once("image").chain(words.iter().copied()).map(String::from).collect();
    match crate::cli::parse(&args).map_err(|e| e.to_string())?.command {
        crate::cli::Command::Image(req) => Ok(req),
        other => Err(format!("not an image command: {other:?}")),
    }
}

#[test]
fn parses_image_commands() {
    let p = |s: &str| parse(&words(s));
    let root = None;
    assert_eq!(p("list").unwrap(), Request { op: Op::List, dry_run: false, root: root.clone() });
    assert_eq!(p("import /srv/nfs/root -n").unwrap().op, Op::Import { src: "/srv/nfs/root".into(), squashfs: true });
    assert_eq!(
        p("import /srv/nfs/root --no-squashfs").unwrap().op,
        Op::Import { src: "/srv/nfs/root".into(), squashfs: false }
    );
    assert!(p("import /srv/nfs/root --dry-run").unwrap().dry_run);
    assert_eq!(p("edit").unwrap().op, Op::Edit(vec![]));
    assert_eq!(
        p("edit --root /x -- xbps-install -Su").unwrap().op,
        Op::Edit(vec!["xbps-install".into(), "-Su".into()])
    );
    assert_eq!(p("edit --root /x -- ls --root").unwrap().root.unwrap(), Path::new("/x"));
    assert_eq!(p("publish --no-default").unwrap().op, Op::Publish { make_default: false, squashfs: true });
    assert_eq!(p("publish --no-squashfs").unwrap().op, Op::Publish { make_default: true, squashfs: false });
    assert_eq!(p("squashfs").unwrap().op, Op::Squashfs(None));
    assert_eq!(p("squashfs 3 -n").unwrap(), Request { op: Op::Squashfs(Some(Version(3))), dry_run: true, root: None });
    assert_eq!(p("default 3 -n").unwrap(), Request { op: Op::Default(Version(3)), dry_run: true, root: root.clone() });
    assert_eq!(p("gc --root /mnt").unwrap().root.unwrap(), Path::new("/mnt"));
    assert_eq!(p("export -n").unwrap(), Request { op: Op::Export, dry_run: true, root });
    for (bad, want) in [
        ("", "image needs a command: image list, image import"),
        ("default 01", "'01' is not a version"),
        ("default edit", "'edit' is the working copy"),
        ("default", "image default: VERSION is missing (crctl image default VERSION [--dry-run] [--root DIR])"),
        ("edit ls", "put the command after --"),
        ("publish -- ls", "image publish: unexpected 'ls'"),
        ("list --dry-run", "unknown option '--dry-run'"),
        ("discard --no-default", "unknown option '--no-default'"),
        ("gc now", "unexpected 'now'"),
        ("export all", "unexpected 'all'"),
        ("import", "image import: DIR is missing (crctl image import DIR [--no-squashfs] [--dry-run] [--root DIR])"),
        ("squashfs 1 2", "image squashfs: unexpected '2' (crctl image squashfs [VERSION] [--dry-run] [--root DIR])"),
        ("squashfs default", "name the version itself"),
        ("gc --no-squashfs", "unknown option '--no-squashfs'"),
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
    /// Run with an inventory whose image-mode boots squashfs files (publish builds them).
    squashfs: bool,
}

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let base = std::env::temp_dir().join(format!("crctl-image-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let host = nodes::fixture(&base, &[], None);
        Scratch { base, host, squashfs: false }
    }

    fn store(&self) -> PathBuf {
        self.base.join("root/srv/nfs/images")
    }

    /// `crctl image ...` on the scratch store: `--root` goes in after the subcommand.
    fn run(&self, args: &str) -> Result<String, ImageError> {
        self.run_words(&words(args))
    }

    fn run_words(&self, args: &[&str]) -> Result<String, ImageError> {
        if self.squashfs {
            let text = example::CLUSTER
                .replace("master master\n", "master master\nimages /srv/nfs/images\nimage-mode squashfs-nfs\n");
            // That inventory names a store, and these trees have no TFTP root: the boot-file
            // notes (a_version_without_boot_files_is_noted tests them) are left out.
            let out = self.run_with(&Inventory::parse(&text).unwrap(), args)?;
            return Ok(out
                .lines()
                .filter(|l| !l.starts_with("note: clients of version"))
                .map(|l| format!("{l}\n"))
                .collect());
        }
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

/// `out` without the lines a squashfs build prints (`version N: squashfs ...`), or the note
/// that none was built (image-mode tree).
fn without_squashfs(out: &str) -> String {
    out.lines()
        .filter(|l| !l.contains(": squashfs ") && !l.starts_with("note: no squashfs file"))
        .map(|l| format!("{l}\n"))
        .collect()
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
    s.squashfs = true;
    let tree = s.base.join("tree");
    let busybox = make_tree(&tree);
    let store = s.store();
    let t = tree.display().to_string();

    let e = s.run("image list").unwrap_err().to_string();
    assert!(e.contains("is missing; crctl image import DIR makes it"), "{e}");
    // A dry run names each step and changes nothing.
    let dry = without_squashfs(&s.run(&format!("image import {t} --dry-run")).unwrap());
    assert!(
        dry.starts_with(&format!("mkdir   {}\ncopy    {t} -> {}/.import-1.tmp-", store.display(), store.display())),
        "{dry}"
    );
    assert!(
        dry.contains(&format!("default -> 1 ({0}/.default.new renamed over {0}/default)", store.display())),
        "{dry}"
    );
    assert!(
        dry.contains(&format!(
            "\nsquashfs 1: mksquashfs {0}/1 {0}/squashfs/.1.tmp-{1}.squashfs {2}; fsync, sha256, rename to \
             {0}/squashfs/1-<sha256>.squashfs (kept if version 1 has one); if {0}/squashfs/boot-order exists, -sort \
             {0}/squashfs/.1.tmp-{1}.squashfs.sort made from it lays what it names first\n",
            store.display(),
            std::process::id(),
            squashfs::OPTIONS.join(" ")
        )),
        "{dry}"
    );
    assert!(dry.contains(&format!("\npointer {}/squashfs/default -> version 1's", store.display())), "{dry}");
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
    assert!(names.iter().all(|n| ["1", "2", "default", "squashfs"].contains(&n.as_str())), "{names:?}");
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
    let out = s.run("image publish").unwrap();
    assert_eq!(without_squashfs(&out), "published 3 (default: 2 -> 3)\n");
    assert!(out.starts_with("version 3: squashfs 3-"), "{out}");
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
    assert_eq!(without_squashfs(&s.run("image publish --no-default").unwrap()), "published 4 (default stays 3)\n");

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
    let files = squashfs::Files::read(&store.join("squashfs")).unwrap();
    let versions: Vec<u64> = files.files.iter().map(|f| f.name.version.0).collect();
    assert_eq!(versions, [2, 3], "the squashfs files of 1 and 4 went with them: {out}");
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
    assert_eq!(without_squashfs(&run("image publish")), format!("published 2 (default: 1 -> 2)\n{}", note(2, "2")));
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
    // Without its squashfs file: mksquashfs reads every byte of a hole (a terabyte of zeros).
    let out = s.run(&format!("image import {} --no-squashfs", tree.display())).unwrap();
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
    let out = without_squashfs(&s.run(&format!("image import {t}")).unwrap());
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

/// The plans that build, point at and remove squashfs files, on a store of empty version
/// directories (no copy, no mksquashfs: dry runs).
#[test]
fn squashfs_plans() {
    let mut s = Scratch::new("squashfs-plans");
    s.squashfs = true;
    let store = s.store();
    let sq = store.join("squashfs");
    for d in ["1", "2", "3", "edit", "squashfs"] {
        std::fs::create_dir_all(store.join(d)).unwrap();
    }
    std::os::unix::fs::symlink("2", store.join("default")).unwrap();
    let hex = |c: char| c.to_string().repeat(64);
    // 2 has its file, named by the pointer; 4 is a stale file of a version removed, whose
    // number publish gives again; a build's leftover.
    for (name, text) in [
        (format!("2-{}.squashfs", hex('b')), "2"),
        (format!("4-{}.squashfs", hex('d')), "4"),
        (".3.tmp-99.squashfs".to_string(), "half"),
        ("default".to_string(), &*format!("2-{}.squashfs\n", hex('b'))),
    ] {
        std::fs::write(sq.join(name), text).unwrap();
    }
    let pid = std::process::id();
    let (st, sqd) = (store.display().to_string(), sq.display().to_string());
    let build = |v: u64| {
        format!(
            "squashfs {v}: mksquashfs {st}/{v} {sqd}/.{v}.tmp-{pid}.squashfs {}; fsync, sha256, rename to \
             {sqd}/{v}-<sha256>.squashfs (kept if version {v} has one); if {sqd}/boot-order exists, -sort \
             {sqd}/.{v}.tmp-{pid}.squashfs.sort made from it lays what it names first",
            squashfs::OPTIONS.join(" ")
        )
    };
    let pointer = |v: u64| {
        format!(
            "pointer {sqd}/default -> version {v}'s squashfs file ({sqd}/.default.new renamed over it; removed if \
             there is none)"
        )
    };

    // Publish: the new version, its stale file removed first, built before the default moves.
    let dry = s.run("image publish --dry-run").unwrap();
    let lines: Vec<&str> = dry.lines().collect();
    assert_eq!(lines[..2], [format!("rename  {st}/edit -> {st}/4"), format!("fsync   {st}")], "{dry}");
    assert_eq!(lines[2], format!("remove  {sqd}/4-{}.squashfs", hex('d')), "{dry}");
    assert_eq!(lines[3], build(4), "{dry}");
    assert!(lines[4].starts_with("default -> 4 ("), "{dry}");
    assert_eq!(lines[5], pointer(4), "{dry}");
    // Without the file, or not the default: no build, or no pointer.
    let dry = s.run("image publish --no-squashfs --dry-run").unwrap();
    assert!(!dry.contains("squashfs 4:") && dry.contains(&pointer(4)), "{dry}");
    let dry = s.run("image publish --no-default --dry-run").unwrap();
    assert!(dry.contains(&build(4)) && !dry.contains("pointer "), "{dry}");

    // The default: the link, then the pointer.
    let dry = s.run("image default 3 --dry-run").unwrap();
    assert!(dry.starts_with("default -> 3 (") && dry.contains(&format!("\n{}\n", pointer(3))), "{dry}");

    // The versions without a file, or one of them; the one with it is left alone.
    let dry = s.run("image squashfs --dry-run").unwrap();
    assert_eq!(dry, format!("{}\n{}\n(dry run: nothing changed)\n", build(1), build(3)));
    assert_eq!(s.run("image squashfs 3 --dry-run").unwrap(), format!("{}\n(dry run: nothing changed)\n", build(3)));
    assert_eq!(
        s.run("image squashfs 2").unwrap(),
        format!("version 2: squashfs 2-{}.squashfs (made earlier)\n", hex('b'))
    );
    let e = s.run("image squashfs 9").unwrap_err().to_string();
    assert!(e.ends_with("has no version 9; crctl image list shows them"), "{e}");

    // gc: 1 and 3 stay (the one before the default, and a node's), the files of the gone
    // version 4 and the leftover go; 2's, the default's, stays.
    s.clients(&[("1", "Linux NFSv4.2 clusterroot-52540077000b@3/node1")], true);
    let dry = s.run("image gc --dry-run").unwrap();
    assert!(dry.starts_with("keep   1 (the version before the default)\nkeep   2 (the default)\n"), "{dry}");
    assert!(
        dry.ends_with(&format!(
            "remove  {sqd}/4-{}.squashfs\nremove  {sqd}/.3.tmp-99.squashfs\nfsync   {sqd}\n(dry run: nothing changed)\n",
            hex('d')
        )),
        "{dry}"
    );
    let out = s.run("image gc").unwrap();
    assert!(out.ends_with(&format!("removed from {sqd}: 4-{}.squashfs, .3.tmp-99.squashfs\n", hex('d'))), "{out}");
    let left: Vec<String> = {
        let mut v: Vec<String> =
            std::fs::read_dir(&sq).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    };
    assert_eq!(left, [format!("2-{}.squashfs", hex('b')), "default".into()]);
    assert!(s.run("image gc").unwrap().ends_with("nothing to remove\n"));

    // The table: the size, or -; the nodes last.
    let list = s.run("image list").unwrap();
    let rows: Vec<&str> = list.lines().take(4).collect();
    assert_eq!(rows[0], "version  default  created (UTC)     squashfs   nodes", "{list}");
    assert!(rows[1].starts_with("1   ") && rows[1].ends_with("  -          -"), "{list}");
    assert!(rows[2].contains(" default ") && rows[2].ends_with("  0.0 MiB    -"), "{list}");
    assert!(rows[3].ends_with("  -          node1"), "{list}");
    // A pointer that names another file is noted.
    std::fs::write(sq.join("default"), "9-x.squashfs\n").unwrap();
    let list = s.run("image list").unwrap();
    assert!(list.contains(&format!("note: {sqd}/default names 9-x.squashfs, not the default's 2-")), "{list}");
    assert!(s.run("image squashfs --dry-run").unwrap().contains(&pointer(2)));
}

/// A version's squashfs file from a real mksquashfs: named by the SHA-256 of its bytes, with
/// hard links and file capabilities kept (a loop mount shows them), never rewritten; the
/// pointer follows the default; gc removes what no version keeps.
#[test]
#[ignore = "copying owners, capabilities and a loop mount need root; as root: cargo test -- --include-ignored (scripts/test does)"]
fn squashfs_files_follow_the_versions() {
    use sha2::Digest;
    use std::os::unix::fs::MetadataExt;
    let mut s = Scratch::new("squashfs");
    s.squashfs = true;
    let (tree, store) = (s.base.join("tree"), s.store());
    let sq = store.join("squashfs");
    make_tree(&tree);
    std::fs::create_dir_all(tree.join("usr/bin")).unwrap();
    std::fs::write(tree.join("usr/bin/ping"), "ping").unwrap();
    std::fs::write(tree.join("etc/a"), "linked").unwrap();
    std::fs::hard_link(tree.join("etc/a"), tree.join("usr/b")).unwrap();
    // setcap cap_net_raw+ep: struct vfs_cap_data, revision 2, effective, CAP_NET_RAW (13).
    let cap: Vec<u8> = [0x0200_0001u32, 1 << 13, 0, 0, 0].iter().flat_map(|w| w.to_le_bytes()).collect();
    let caps =
        rustix::fs::setxattr(tree.join("usr/bin/ping"), "security.capability", &cap, rustix::fs::XattrFlags::empty())
            .map_err(|e| eprintln!("note: security.capability not settable here ({e}); that check is skipped"))
            .is_ok();
    rustix::fs::setxattr(tree.join("etc/a"), "user.crctl", b"kept", rustix::fs::XattrFlags::empty()).unwrap();

    let out = s.run(&format!("image import {}", tree.display())).unwrap();
    let line = out.lines().find(|l| l.starts_with("version 1: squashfs 1-")).unwrap_or_else(|| panic!("{out}"));
    let name = line["version 1: squashfs ".len()..].split(',').next().unwrap().to_string();
    assert!(line.ends_with(" s") && line.contains(" MiB, in "), "{line}");
    let file = sq.join(&name);
    let bytes = std::fs::read(&file).unwrap();
    let hex: String = sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(name, format!("1-{hex}.squashfs"), "named by the hash of its bytes");
    assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o777, 0o644);
    assert_eq!(std::fs::read_to_string(sq.join("default")).unwrap(), format!("{name}\n"));
    let names: Vec<String> =
        std::fs::read_dir(&sq).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names.len(), 2, "no temporary file left: {names:?}");

    // What a client mounts: the hard link one inode, the attributes there.
    let mnt = s.base.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-o", "loop,ro"])
        .arg(&file)
        .arg(&mnt)
        .status()
        .is_ok_and(|st| st.success());
    if mounted {
        struct Unmount<'a>(&'a Path);
        impl Drop for Unmount<'_> {
            fn drop(&mut self) {
                let _ = std::process::Command::new("umount").arg(self.0).status();
            }
        }
        let _unmount = Unmount(&mnt);
        let (a, b) = (std::fs::metadata(mnt.join("etc/a")).unwrap(), std::fs::metadata(mnt.join("usr/b")).unwrap());
        assert_eq!((a.ino(), a.nlink()), (b.ino(), 2), "the hard link kept");
        let mut v = [0u8; 64];
        let n = rustix::fs::getxattr(mnt.join("usr/b"), "user.crctl", &mut v[..]).unwrap();
        assert_eq!(&v[..n], b"kept");
        if caps {
            let n = rustix::fs::getxattr(mnt.join("usr/bin/ping"), "security.capability", &mut v[..]).unwrap();
            assert_eq!(&v[..n], &cap[..], "the file capability kept");
        }
        assert_eq!(std::fs::read_to_string(mnt.join("etc/hostname")).unwrap(), "image\n");
    } else {
        eprintln!(
            "note: mount -o loop,ro {} refused here: the hard link and attributes are not checked",
            file.display()
        );
    }

    // A second version: the first one's file stays as it is.
    let before = std::fs::metadata(&file).unwrap();
    let host = s.host.clone();
    let ctx =
        Ctx { inv: &example::inventory(), host: &host, dir: store.clone(), mounts: vec![], backend: Backend::Dir };
    plan::execute(&edit_plan(&ctx, &Listing::read(&store).unwrap()).unwrap().0, &mut Vec::new()).unwrap();
    std::fs::write(store.join("edit/etc/hostname"), "two\n").unwrap();
    let out = s.run("image publish").unwrap();
    assert!(out.starts_with("version 2: squashfs 2-") && out.ends_with("published 2 (default: 1 -> 2)\n"), "{out}");
    let after = std::fs::metadata(&file).unwrap();
    assert_eq!((after.ino(), after.mtime(), after.mtime_nsec()), (before.ino(), before.mtime(), before.mtime_nsec()));
    let files = squashfs::Files::read(&sq).unwrap();
    let second = files.of(Version(2)).unwrap().name.to_string();
    assert_eq!(std::fs::read_to_string(sq.join("default")).unwrap(), format!("{second}\n"));
    // The rollback moves the pointer too, and back.
    assert_eq!(s.run("image default 1").unwrap(), "default: 2 -> 1\n");
    assert_eq!(std::fs::read_to_string(sq.join("default")).unwrap(), format!("{name}\n"));
    assert_eq!(s.run("image default 2").unwrap(), "default: 1 -> 2\n");
    assert_eq!(std::fs::read_to_string(sq.join("default")).unwrap(), format!("{second}\n"));
    assert_eq!(s.run("image squashfs").unwrap(), "every version has its squashfs file\n");

    // A version without its file (a store from before them): image squashfs makes it, and
    // the pointer; a missing or failing mksquashfs is one line, and leaves nothing behind.
    std::fs::remove_file(sq.join(&second)).unwrap();
    let list = s.run("image list").unwrap();
    assert!(list.lines().nth(2).unwrap().contains("  -          "), "{list}");
    assert!(list.contains("but the default has no squashfs file: crctl image squashfs makes it"), "{list}");
    s.host.mksquashfs = s.base.join("no-mksquashfs");
    assert_eq!(
        s.run("image squashfs").unwrap_err().to_string(),
        "mksquashfs (Debian's squashfs-tools) is missing; apt install squashfs-tools"
    );
    let fake = s.base.join("mksquashfs");
    // A failing stand-in (test double): the real one's failures are its own.
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'Parallel mksquashfs' >&2\necho 'FATAL ERROR: disk full' >&2\n: >\"$2\"\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    s.host.mksquashfs = fake;
    let e = s.run("image squashfs 2").unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "mksquashfs of version 2 ({}/2) failed (exit status: 1): FATAL ERROR: disk full; crctl image squashfs 2 \
             builds it again",
            store.display()
        )
    );
    assert_eq!(squashfs::Files::read(&sq).unwrap().temps, Vec::<String>::new());
    // A publish whose build fails: the version is there, the default stays.
    plan::execute(&edit_plan(&ctx, &Listing::read(&store).unwrap()).unwrap().0, &mut Vec::new()).unwrap();
    let e = s.run("image publish").unwrap_err().to_string();
    assert!(
        e.ends_with(
            "version 3 is in the store without it and the default did not move: crctl image squashfs 3, then \
             crctl image default 3"
        ),
        "{e}"
    );
    assert_eq!(std::fs::read_link(store.join("default")).unwrap(), Path::new("2"));
    assert!(store.join("3").is_dir());
    s.host.mksquashfs = squashfs::PROGRAM.into();
    let out = s.run("image squashfs").unwrap();
    let built: Vec<&str> = out.lines().map(|l| l.get(..22).unwrap_or(l)).collect();
    assert_eq!(built, ["version 2: squashfs 2-", "version 3: squashfs 3-"], "{out}");
    let second = squashfs::Files::read(&sq).unwrap().of(Version(2)).unwrap().name.to_string();
    assert_eq!(std::fs::read_to_string(sq.join("default")).unwrap(), format!("{second}\n"));

    // The third version, not the default: gc removes it and its file, a stale one of a
    // version long gone, and a leftover; the default's and the one before stay.
    let third = squashfs::Files::read(&sq).unwrap().of(Version(3)).unwrap().name.to_string();
    let stale = format!("7-{}.squashfs", "e".repeat(64));
    std::fs::write(sq.join(&stale), "old").unwrap();
    std::fs::write(sq.join(".4.tmp-1.squashfs"), "half").unwrap();
    s.clients(&[], true);
    let out = s.run("image gc").unwrap();
    assert!(
        out.ends_with(&format!("removed from {}: {third}, {stale}, .4.tmp-1.squashfs\nremoved 3\n", sq.display())),
        "{out}"
    );
    let mut left: Vec<String> =
        std::fs::read_dir(&sq).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    left.sort();
    assert_eq!(left, [name, second, "default".to_string()]);
}

/// The store's boot order, laid out first by a real mksquashfs: the files it names in its
/// order at the start of the file, the others after; a line the version lacks left out and
/// counted; the sort file gone afterwards.
#[test]
#[ignore = "needs mksquashfs (Debian's squashfs-tools, which scripts/setup installs); scripts/test runs it"]
fn the_boot_order_comes_first_in_the_file() {
    let base = std::env::temp_dir().join(format!("crctl-image-order-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let (src, dir) = (base.join("1"), base.join("squashfs"));
    std::fs::create_dir_all(src.join("usr/lib")).unwrap();
    // Incompressible and distinct: each file's bytes can be found in the image.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut body = |tag: u8| -> Vec<u8> {
        let mut v = vec![tag; 16];
        v.extend((0..200_000).map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        }));
        v
    };
    let files = [("usr/lib/a", body(b'a')), ("usr/lib/b", body(b'b')), ("usr/lib/c", body(b'c'))];
    for (name, bytes) in &files {
        std::fs::write(src.join(name), bytes).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    let order = dir.join(order::FILE);
    std::fs::write(&order, "# what a boot reads\n/usr/lib/c\n/usr/lib/gone\n/usr/lib/b\n").unwrap();
    let tmp = dir.join(squashfs::temp_name(Version(1), 7));
    let built = squashfs::build(Path::new(squashfs::PROGRAM), Version(1), &src, &dir, &tmp, &order, "fix").unwrap();
    let o = built.order.clone().unwrap();
    assert_eq!((o.paths.as_slice(), o.left_out), (&["usr/lib/c".to_string(), "usr/lib/b".to_string()][..], 1));
    let image = std::fs::read(dir.join(built.name.to_string())).unwrap();
    let at = |i: usize| image.windows(64).position(|w| w == &files[i].1[..64]).unwrap();
    assert!(at(2) < at(1) && at(1) < at(0), "c, b, then a: {} {} {}", at(2), at(1), at(0));
    assert!(!squashfs::sort_path(&tmp).exists(), "the sort file removed");
    // Without the file: directory order.
    std::fs::remove_dir_all(&dir).unwrap();
    let built = squashfs::build(Path::new(squashfs::PROGRAM), Version(1), &src, &dir, &tmp, &order, "fix").unwrap();
    assert!(built.order.is_none());
    let image = std::fs::read(dir.join(built.name.to_string())).unwrap();
    let at = |i: usize| image.windows(64).position(|w| w == &files[i].1[..64]).unwrap();
    assert!(at(0) < at(1) && at(1) < at(2));
    std::fs::remove_dir_all(&base).unwrap();
}
