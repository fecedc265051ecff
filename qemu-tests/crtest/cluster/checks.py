# SPDX-License-Identifier: MIT
"""The cluster test's checks: each node's report (the master's mounts, exports and nfsd; each
client's root, lease, node files and /home), the master's system log (HTTP, TFTP, proxy
DHCP), /home shared with locks, and crctl render, diff and image list against what the nodes
got. Each raises NodeFail naming the node."""

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Optional

from ..flavors import INITRAMFS_TOOLS, SYSTEMD
from ..patterns import PANIC
from ..paths import AGENT_DIR, REPO, Dirs
from ..util import Fail, log
from ..vm import on_screen
from .node import Node, NodeFail, check
from .variants import CLIENTS, EXPORT, HTTP_FILES, MASTER_IP, NFSD_WANT, STORE, Variant


def nfsd_facts(report) -> Optional[str]:
    """The master's "master: nfsd: lease=... grace=... tracking=..." line of one boot."""
    return next((x for x in report.lines if x.startswith("master: nfsd: lease=")), None)


def check_master(master: Node, variant: Variant) -> None:
    r = master.report
    check(master, "type of /", r.mount("/")[0], "overlay")
    ltype, _, lopts = r.mount("/run/rootfs/lower")
    check(master, "type of /run/rootfs/lower", ltype, "ext4")
    if variant.store:
        # The version is bound read-only whatever rw says; the store is mounted again,
        # read-write, by the master's fstab (a node file) where crctl and the exports want it.
        check(master, "/run/rootfs/lower (version 1) mounted ro", "ro" in lopts.split(","), True)
        check(master, "state image", (r.state.get("image"), r.state.get("image_choice")),
              ("1", "default"))
        stype, _, sopts = r.mount(f"/run/rootfs/lower{STORE}")
        check(master, f"the store on /run/rootfs/lower{STORE}, rw", (stype, "rw" in sopts.split(",")),
              ("ext4", True))
        check(master, "the agent's store mount gone", "/run/rootfs/images" in r.mounts, False)
    else:
        check(master, "/run/rootfs/lower mounted rw (root=... rw)", "rw" in lopts.split(","), True)
    check(master, "state lower_source", r.state.get("lower_source"), "LABEL=cluster")
    check(master, "state boot_mac", r.state.get("boot_mac"), variant.master_mac)
    check(master, "state node_files", r.state.get("node_files"), f"{variant.master_mac}/")
    check(master, "state node_files_source", r.state.get("node_files_source"), "LABEL=nodefiles")
    check(master, "the node-files disk unmounted before switch_root",
          "/run/rootfs/nodefiles" in r.mounts, False)
    check(master, "hostname-file (node file)", r.values.get("hostname-file"), "master")
    check(master, "overlays-visible", r.values.get("overlays-visible"), "no")
    # The exports, under the NFS server's rootdir (the master's nfs.conf).
    if not variant.store:
        check(master, "/srv/nfs/root under the NFS rootdir (bind of the lower)",
              r.mount(f"/run/rootfs/lower{EXPORT}")[0], "ext4")
    check(master, "/home under the NFS rootdir (bind of /home)",
          r.mount("/run/rootfs/lower/home")[:2], r.mount("/home")[:2])
    home = r.mount("/home")
    check(master, "/home (its own disk, LABEL=home)", (home[0], "rw" in home[2].split(",")),
          ("ext4", True))
    check(master, "fstab", r.values.get("fstab"), "mounted")
    if variant.root == "debian":
        check_debian(master, variant)
    else:
        check(master, "rc.local", "rc.local: exit 0" in r.lines, True)
    check(master, "the node-files disk under the NFS rootdir (LABEL=nodefiles, read-write: "
          "nfsdcld's records)", (r.mount("/run/rootfs/lower/srv/nfs/nodes")[0],
           "rw" in r.mount("/run/rootfs/lower/srv/nfs/nodes")[2].split(",")), ("ext4", True))
    check(master, "nfsd: lease, grace, client records (nfs.conf)",
          nfsd_facts(r), NFSD_WANT)
    exports = next((x for x in r.lines if x.startswith("master: exports: ")), "")
    wanted = [(STORE if variant.store else EXPORT, r"172\.23\.199\.0/24"),
              ("/home", r"172\.23\.199\.0/24")]
    wanted += [(f"/srv/nfs/nodes/{mac}", re.escape(ip)) for _, mac, ip in CLIENTS]
    for path, client in wanted:
        if not re.search(rf"{re.escape(path)}\s+{client}\(", exports):
            raise NodeFail(master, f"master: exportfs -v does not list {path} for {client}: "
                                   f"{exports!r}")


def check_client(node: Node, variant: Variant) -> None:
    r = node.report
    check(node, "type of /", r.mount("/")[0], "overlay")
    ltype, lsrc, lopts = r.mount("/run/rootfs/lower")
    version = "@1" if variant.store else ""
    if variant.image_mode == "squashfs-http":
        # The default's file, in RAM: from the master, the replica boot.ipxe names first
        # being down (fell_back_from_replica).
        check(node, "lower", (ltype, bool(re.fullmatch(r"/dev/loop\d+", lsrc))), ("squashfs", True))
        check(node, "state lower_type", r.state.get("lower_type"), "squashfs-http")
        source = r.state.get("lower_source", "")
        if not re.fullmatch(rf"http://{re.escape(MASTER_IP)}/images/1-[0-9a-f]{{64}}\.squashfs",
                            source):
            raise NodeFail(node, f"{node.name}: state lower_source: {source!r}, expected the "
                                 f"master's version 1 file (http://{MASTER_IP}/images/1-...)")
    else:
        check(node, "lower", (ltype, lsrc),
              ("nfs4", f"{MASTER_IP}:{STORE}/1" if variant.store else f"{MASTER_IP}:{EXPORT}"))
    if variant.store:
        check(node, "state image", (r.state.get("image"), r.state.get("image_choice")),
              ("1", "default"))
    check(node, "lower mounted ro", "ro" in lopts.split(","), True)
    check(node, "type of /run/rootfs/cowspace", r.mount("/run/rootfs/cowspace")[0], "tmpfs")
    bootif = "BOOTIF=01-" + node.mac.replace(":", "-")
    if bootif not in r.values.get("cmdline", "").split():
        raise NodeFail(node, f"{node.name}: no {bootif} on the command line (boot.ipxe's "
                             f"${{netX/mac}}): {r.values.get('cmdline')!r}")
    check(node, "state boot_mac", r.state.get("boot_mac"), node.mac)
    check(node, "state address", r.state.get("address"), f"{node.ip}/24")
    lease = r.leases.get(r.state.get("boot_iface", "?"), {})
    check(node, "DHCP server of the lease", lease.get("server"), variant.lease_server)
    check(node, "state node_files", r.state.get("node_files"), f"{node.mac}/")
    check(node, "state node_files_source (its own export)", r.state.get("node_files_source"),
          f"{MASTER_IP}:/srv/nfs/nodes/{node.mac}")
    check(node, "its node-file export unmounted before switch_root",
          "/run/rootfs/nodefiles" in r.mounts, False)
    check(node, "state nfs_identity", r.state.get("nfs_identity"),
          "clusterroot-" + node.mac.replace(":", "") + version)
    check(node, "hostname-file (node file)", r.values.get("hostname-file"), node.name)
    check(node, "running host name", r.values.get("hostname"), node.name)
    check(node, "overlays-visible", r.values.get("overlays-visible"), "no")
    home = r.mount("/home")
    check(node, "/home", home[:2], ("nfs4", f"{MASTER_IP}:/home"))
    # 4.2 as the root: one NFS client, so /home's locks carry the identity the agent set.
    check(node, "/home mounted with vers=4.2", "vers=4.2" in home[2].split(","), True)
    check(node, "fstab", r.values.get("fstab"), "mounted")
    if variant.root == "debian":
        check_debian(node, variant)
    if variant.image_mode == "squashfs-http":
        fell_back_from_replica(node)


# The replica lib/make-cluster-root adds in squashfs-http, which is down (nothing listens on
# the master's port 81). A node tries its replicas before the master (README "Image files"),
# so each client meets it first for every file and must fall back to the master.
DOWN_REPLICA = f"http://{MASTER_IP}:81/"


def fell_back_from_replica(node: Node) -> None:
    """The client's console shows both fallbacks from the down replica to the master, each
    after its failure: iPXE's for the kernel and initramfs (`kernel <replica>... || kernel
    <master>...`: "<replica>vmlinuz... Connection reset", then "<master>vmlinuz... ok"),
    and the agent's for the image (its warning naming the replica's URL, then the master's
    file fetched)."""
    node.vm.console.poll()
    lines = [on_screen(x) for x in node.vm.console.lines]

    def first(pattern: str) -> Optional[int]:
        return next((i for i, x in enumerate(lines) if re.search(pattern, x)), None)

    for f in ("vmlinuz", "initramfs-net.img"):
        tried = first(rf"^{re.escape(DOWN_REPLICA + f)}\.\.\. (?!ok$)")
        got = first(rf"^http://{re.escape(MASTER_IP)}/{re.escape(f)}\.\.\. ok$")
        if tried is None or got is None or got < tried:
            raise NodeFail(node, f"{node.name}: iPXE did not try {DOWN_REPLICA}{f} (down) and "
                                 f"then fetch it from the master (console lines {tried}, {got})")
    warned = first(rf"clusterroot: warning: {re.escape(DOWN_REPLICA)}images/default: ")
    fetched = first(rf"clusterroot: image http://{re.escape(MASTER_IP)}/images/\S+ fetched")
    if warned is None or fetched is None or fetched < warned:
        raise NodeFail(node, f"{node.name}: the agent did not warn of {DOWN_REPLICA}images/"
                             f"default (down) and then fetch the image from the master "
                             f"(console lines {warned}, {fetched})")
    log(f"  {node.name}: the replica {DOWN_REPLICA} refused, iPXE (kernel, initramfs) and "
        f"the agent (image) fell back to the master")


def check_debian(node: Node, variant: Variant) -> None:
    """A Debian node is up as an installed system is: multi-user reached with no failed
    unit, its boot NIC kept under the name its initramfs gave it (udev's predictable one on
    the master and in systemd and initramfs-tools images; the kernel's in the clients' busybox
    images, which mkinitcpio.net.conf builds without udev), its own machine-id and ssh key."""
    r = node.report
    check(node, "is-system-running", r.values.get("system"), "running")
    check(node, "failed units", r.values.get("failed-units"), "")
    iface = r.state.get("boot_iface", "")
    if node.name == "master" or variant.flavor in (SYSTEMD, INITRAMFS_TOOLS):
        check(node, "boot NIC name (udev's, in the initramfs already)",
              bool(re.fullmatch(r"en[a-z]\w*", iface)), True)
    else:
        check(node, "boot NIC name (the kernel's: no udev in the clients' image)",
              bool(re.fullmatch(r"eth\d+", iface)), True)
    check(node, "state machine_id_source (crctl sync made it)", r.state.get("machine_id_source"),
          "node files")
    check(node, "state hostname (the final name)", r.state.get("hostname"), node.name)


def master_syslog(dirs: Dirs, master: Node, variant: Variant) -> list:
    """The master's system log, read back through its command port (crtest-report syslog):
    lighttpd's access log and dnsmasq's DHCP and TFTP log, from the file busybox syslogd
    writes, or from the journal. Not from its console: busybox syslogd drops a line when the
    serial console is busy (lib/make-cluster-root says why), and journald skips the console
    when it cannot write there. Kept as logs/<variant>-master.syslog."""
    got = master.fetch("syslog", "syslog", timeout_s=180)
    if got is None:
        raise NodeFail(master, f"master: its system log could not be read: "
                               f"{master.command('syslog', 'syslog')}")
    text = got.decode(errors="replace")
    (dirs.logs / f"{variant.name}-master.syslog").write_text(text)
    lines = text.splitlines()
    # journald's rate limit: the log would have holes, and no check could trust it.
    dropped = [x for x in tagged(lines, "systemd-journald") if "Suppressed" in x]
    if dropped:
        raise NodeFail(master, f"master: journald dropped lines of the log the checks read: "
                               f"{dropped}")
    return lines


def tagged(syslog: list, ident: str) -> list:
    """The lines of the system log that `ident` sent ("ident:" or "ident[pid]:")."""
    return [x for x in syslog if re.search(rf" {re.escape(ident)}(\[\d+\])?: ", x)]


def check_http_log(master: Node, clients: list, tftp: dict, syslog: list,
                   variant: Variant) -> None:
    """lighttpd on the master logged sending each client its script, kernel and initramfs
    whole (200; its access log goes to syslog), and in squashfs-http the pointer file and
    the default's squashfs file; and dnsmasq sent each client the files
    `tftp` names for it by TFTP (a PXE ROM that is not iPXE loads iPXE so) and nothing else:
    the master's
    system log says so (master_syslog). Each client's own console agrees: iPXE printed each
    URL with "... ok" (firmware output, written to the serial port as it goes)."""
    access = "\n".join(tagged(syslog, "lighttpd"))
    tftp_log = "\n".join(tagged(syslog, "dnsmasq-tftp"))
    files = [re.escape(f) for f in HTTP_FILES]
    if variant.image_mode == "squashfs-http":
        files += [r"images/default", r"images/1-[0-9a-f]{64}\.squashfs"]
    for c in clients:
        for f in files:
            if not re.search(rf"\b{re.escape(c.ip)} .*\"GET /{f} HTTP/1\.[01]\" 200 ",
                             access):
                raise NodeFail(master, f"master: lighttpd did not log sending {f} to "
                                       f"{c.name} ({c.ip}): {access[-400:]!r}")
        # The TFTP root: /srv/tftp, or with a store its default version's as the master sees it.
        sent = re.findall(rf"sent (?:/run/rootfs/lower{re.escape(STORE)}/default)?/srv/tftp/(\S+) "
                          rf"to {re.escape(c.ip)}\b", tftp_log)
        want = tftp.get(c.name, [])
        if sorted(set(sent)) != sorted(want):
            raise NodeFail(master, f"master: dnsmasq sent {c.name} ({c.ip}) by TFTP "
                                   f"{sorted(set(sent)) or 'nothing'}, expected "
                                   f"{want or 'nothing (iPXE fetches everything over HTTP)'}")
        c.vm.console.poll()
        console = "\n".join(on_screen(x) for x in c.vm.console.lines)
        for f in HTTP_FILES:
            # As boot.ipxe names them: the script by its whole URL, the rest relative to it.
            if not re.search(rf"^(http://{re.escape(MASTER_IP)}/)?{re.escape(f)}\.\.\. ok$",
                             console, re.M):
                raise NodeFail(c, f"{c.name}: iPXE did not say it fetched {f} (\"{f}... ok\")")
    by_tftp = "; ".join(f"{c.name} {', '.join(tftp.get(c.name, [])) or 'nothing'}" for c in clients)
    sent = ", ".join(HTTP_FILES) + (", images/default and images/1-<sha256>.squashfs"
                                    if variant.image_mode == "squashfs-http" else "")
    log(f"  master: lighttpd sent {sent} to each client, dnsmasq by TFTP: "
        f"{by_tftp}; iPXE on each client says the same")


def served_from_store(master: Node) -> None:
    """With a store, what lighttpd just sent (check_http_log) came from the default version's
    TFTP root as the master sees the store, through the default link, not the one of the
    version the master booted: crctl's dnsmasq.conf and lighttpd.conf on the master name it."""
    root = f"/run/rootfs/lower{STORE}/default/srv/tftp"
    for path, line in (("/etc/dnsmasq.conf", f"tftp-root={root}"),
                       ("/etc/lighttpd/lighttpd.conf", f'server.document-root = "{root}"')):
        text = (master.fetch(f"b64 {path}", f"b64 {path}") or b"").decode(errors="replace")
        if line not in text.splitlines():
            raise NodeFail(master, f"master: {path} has no line {line!r}")
    log(f"  master: dnsmasq and lighttpd serve {root}")


def check_proxy_log(master: Node, clients: list, syslog: list) -> None:
    """The master's dnsmasq answered each client as a proxy DHCP server (no address)."""
    text = "\n".join(tagged(syslog, "dnsmasq-dhcp"))
    for c in clients:
        if not re.search(rf"PXE\(\S+\) {re.escape(c.mac)} proxy", text):
            raise NodeFail(master, f"master: dnsmasq did not log a proxy DHCP answer to "
                                   f"{c.name} ({c.mac})")


def shared_home(a: Node, b: Node, master: Node) -> None:
    """A file written on one client is read on the other; each holds a lock on /home that the
    other cannot take, while both keep theirs (distinct NFSv4 client identities). Checked by
    hand: booted with one identity (nfs.nfs4_unique_id=same on both) in the proxy variant,
    whose DHCP server sends no host names (the kernel adds the host name to the identity),
    node2's lock is gone and node1's "try /home/b.lock" answers "acquired"."""
    for w, r in ((a, b), (b, a)):
        path = f"/home/from-{w.name}"
        w.expect_answer(f"write {path} written by {w.name}", f"write {path}", "ok")
        r.expect_answer(f"read {path}", f"read {path}", f"written by {w.name}")
    a.expect_answer("hold /home/a.lock", "hold /home/a.lock", "held")
    b.expect_answer("hold /home/b.lock", "hold /home/b.lock", "held")
    a.expect_answer("try /home/b.lock", "try /home/b.lock", "busy")
    b.expect_answer("try /home/a.lock", "try /home/a.lock", "busy")
    a.expect_answer("holding /home/a.lock", "holding /home/a.lock", "yes")
    b.expect_answer("holding /home/b.lock", "holding /home/b.lock", "yes")
    # The server's view: nfsd holds one POSIX write lock on /home's disk for each client.
    # Only that device counts: the master's own daemons lock files elsewhere (CI saw one).
    mounts = master.command("read /proc/self/mountinfo", "read /proc/self/mountinfo")
    dev = re.search(r"\b(\d+):(\d+) /\S* /home ", mounts)   # its lines come joined
    if dev is None:
        raise NodeFail(master, f"master: /home is not in its mountinfo: {mounts}")
    prefix = f"{int(dev[1]):02x}:{int(dev[2]):02x}:"
    locks = master.command("read /proc/locks", "read /proc/locks")
    posix = re.findall(rf"\d+: POSIX\s+ADVISORY\s+WRITE\s+\S+\s+{prefix}\S+", locks)
    if len(posix) != 2:
        raise NodeFail(master, f"master: /proc/locks should hold two POSIX write locks on "
                               f"/home ({prefix}*), one per client, has {len(posix)}: {locks}")
    log(f"  master: /proc/locks: {'; '.join(posix)}")


def render_matches(node: Node, files: list) -> None:
    """The client's /etc holds, file by file, what crctl render said it would."""
    got = node.command(f"sum {' '.join(p for p, _ in files)}", "sum")
    sums = dict(kv.split("=", 1) for kv in got.split() if "=" in kv)
    for path, want in files:
        if want is not None and sums.get(path) != want:
            raise NodeFail(node, f"{node.name}: {path} has sha256 {sums.get(path)}, crctl render "
                                 f"said it would be its node file's, {want}")
    log(f"  {node.name}: /etc as crctl render said: {sum(1 for _, h in files if h)} files "
        "from its node files, byte for byte")


def crctl_diff(name: str, record: Path, root: Path) -> tuple:
    cmd = [AGENT_DIR / "crctl", "-f", REPO / "mkinitcpio" / "cluster", "diff", name,
           "--state", record, "--root", root]
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False)
    return p.returncode, p.stdout + p.stderr


def diff_matches(dirs: Dirs, node: Node, mac: str, store: bool, root: Path) -> None:
    """crctl diff, given the boot record the client's agent wrote, says a reboot changes
    nothing; once the master's copy of its hostname changes, it names that file; with an
    image store, once the default names another version, it names that version."""
    record = dirs.work / f"record-{node.name}"
    if record.exists():
        shutil.rmtree(record)
    record.mkdir(mode=0o700)
    for f in ("state", "node-files"):
        got = node.fetch(f"b64 /run/clusterroot/{f}", f"b64 /run/clusterroot/{f}")
        if got is None:
            raise NodeFail(node, f"{node.name}: /run/clusterroot/{f} is missing after boot")
        (record / f).write_bytes(got)
    rc, out = crctl_diff(node.name, record, root)
    if rc != 0 or "a reboot changes nothing" not in out:
        raise Fail(f"crctl diff {node.name} right after boot: exit {rc}, expected 0:\n{out}")
    hostname = root / "srv" / "nfs" / "nodes" / mac / "hostname"
    before = hostname.read_bytes()
    hostname.write_bytes(before + b"# changed on the master\n")
    try:
        rc, out = crctl_diff(node.name, record, root)
    finally:
        hostname.write_bytes(before)
    if rc != 3 or not re.search(r"^changed\s+/etc/hostname\s+contents$", out, re.M):
        raise Fail(f"crctl diff {node.name} after its hostname changed on the master: exit {rc}, "
                   f"expected 3 and /etc/hostname changed:\n{out}")
    said = "nothing, then /etc/hostname once changed"
    if store:
        images = root / "srv" / "nfs" / "images"
        (images / "2").mkdir()
        (images / "default.new").symlink_to("2")
        os.replace(images / "default.new", images / "default")
        try:
            rc, out = crctl_diff(node.name, record, root)
        finally:
            (images / "default").unlink()
            (images / "default").symlink_to("1")
            (images / "2").rmdir()
        if rc != 3 or "booted version 1; a reboot boots version 2" not in out:
            raise Fail(f"crctl diff {node.name} after default moved to version 2: exit {rc}, "
                       f"expected 3 and the versions:\n{out}")
        said += ", and version 2 once the default"
    log(f"  {node.name}: crctl diff on its boot record: {said}")


def image_list(master: Node, nodes: list) -> None:
    """crctl image list on the master: version 1, the default, run by every node (the
    clients by their NFSv4 identity in nfsd's client list, the master by its own state)."""
    master.vm.console.poll()
    mark = len(master.vm.console.lines)
    # The inventory make-cluster-root puts in the image (the test's master keeps none on its
    # node-files disk, crctl's default place).
    master.ctl.send("crctl -f /etc/clusterroot/cluster image list")
    try:
        m = master.vm.expect(r"CRTEST crctl done: (\d+)", 90, (PANIC,))
    except Fail as e:
        raise NodeFail(master, str(e))
    master.vm.console.poll()
    out = [line.split("CRTEST crctl: ", 1)[1] for line in master.vm.console.lines[mark:]
           if "CRTEST crctl: " in line]
    line = next((x for x in out if x.split()[:1] == ["1"]), None)
    if m.group(1) != "0" or line is None:
        raise NodeFail(master, f"master: crctl image list exited {m.group(1)}: {out}")
    missing = [n.name for n in nodes if not re.search(rf"\b{n.name}\b", line)]
    if "default" not in line or missing:
        raise NodeFail(master, f"master: crctl image list does not show version 1 as the "
                               f"default run by {missing or 'every node'}: {out}")
    log(f"  master: crctl image list: {line}")
