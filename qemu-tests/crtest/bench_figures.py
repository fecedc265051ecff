# SPDX-License-Identifier: MIT
"""The figures of qemu-tests/bench --costs, read from what the master and the bridge give: nfsd's
counters (/proc/net/rpc/nfsd), its busy jiffies (/proc/stat), its page cache (/proc/meminfo),
and the bytes of a tcpdump capture by protocol (Debian's python3-dpkt reads it). No VM: the
text and the files come in, numbers go out."""

# NFSv4 operation numbers (RFC 7530, 8881, 7862, 8276): proc4ops counts operation i at index i.
NFS4_OPS = {
    3: "ACCESS", 4: "CLOSE", 5: "COMMIT", 6: "CREATE", 7: "DELEGPURGE", 8: "DELEGRETURN",
    9: "GETATTR", 10: "GETFH", 11: "LINK", 12: "LOCK", 13: "LOCKT", 14: "LOCKU", 15: "LOOKUP",
    16: "LOOKUPP", 17: "NVERIFY", 18: "OPEN", 19: "OPENATTR", 20: "OPEN_CONFIRM",
    21: "OPEN_DOWNGRADE", 22: "PUTFH", 23: "PUTPUBFH", 24: "PUTROOTFH", 25: "READ",
    26: "READDIR", 27: "READLINK", 28: "REMOVE", 29: "RENAME", 30: "RENEW", 31: "RESTOREFH",
    32: "SAVEFH", 33: "SECINFO", 34: "SETATTR", 35: "SETCLIENTID", 36: "SETCLIENTID_CONFIRM",
    37: "VERIFY", 38: "WRITE", 39: "RELEASE_LOCKOWNER", 40: "BACKCHANNEL_CTL",
    41: "BIND_CONN_TO_SESSION", 42: "EXCHANGE_ID", 43: "CREATE_SESSION", 44: "DESTROY_SESSION",
    45: "FREE_STATEID", 46: "GET_DIR_DELEGATION", 47: "GETDEVICEINFO", 48: "GETDEVICELIST",
    49: "LAYOUTCOMMIT", 50: "LAYOUTGET", 51: "LAYOUTRETURN", 52: "SECINFO_NO_NAME",
    53: "SEQUENCE", 54: "SET_SSV", 55: "TEST_STATEID", 56: "WANT_DELEGATION",
    57: "DESTROY_CLIENTID", 58: "RECLAIM_COMPLETE", 59: "ALLOCATE", 60: "COPY",
    61: "COPY_NOTIFY", 62: "DEALLOCATE", 63: "IO_ADVISE", 64: "LAYOUTERROR", 65: "LAYOUTSTATS",
    66: "OFFLOAD_CANCEL", 67: "OFFLOAD_STATUS", 68: "READ_PLUS", 69: "SEEK", 70: "WRITE_SAME",
    71: "CLONE", 72: "GETXATTR", 73: "SETXATTR", 74: "LISTXATTRS", 75: "REMOVEXATTR",
}
# NFSv3 procedure numbers (RFC 1813): proc3 counts procedure i at index i.
NFS3_PROCS = ("NULL", "GETATTR", "SETATTR", "LOOKUP", "ACCESS", "READLINK", "READ", "WRITE",
              "CREATE", "MKDIR", "SYMLINK", "MKNOD", "REMOVE", "RMDIR", "RENAME", "LINK",
              "READDIR", "READDIRPLUS", "FSSTAT", "FSINFO", "PATHCONF", "COMMIT")

PROTOCOLS = ("DHCP", "TFTP", "HTTP", "NFS", "other")
USER_HZ = 100   # /proc/stat's unit on x86 Linux, whatever the kernel's HZ


def _number(word: str):
    try:
        return int(word)
    except ValueError:
        return float(word)


def proc_lines(text: str) -> dict:
    """A /proc file of "key n n n" lines, as crtest-report's read gives it (its lines joined
    with blanks): {key: [numbers]}. A word that is no number starts the next line."""
    lines: dict = {}
    key = None
    for word in text.split():
        try:
            value = _number(word)
        except ValueError:
            key = word
            lines[key] = []
            continue
        if key is not None:
            lines[key].append(value)
    return lines


def nfsd_counts(text: str) -> dict:
    """nfsd's counters from /proc/net/rpc/nfsd: {"compounds": NFSv4 COMPOUND calls, "v4ops":
    {operation: count}, "v3": {procedure: count}}. proc4ops and proc3 give their length first,
    then one count per number."""
    lines = proc_lines(text)
    v4 = lines.get("proc4ops", [0])[1:]
    v3 = lines.get("proc3", [0])[1:]
    proc4 = lines.get("proc4", [0])[1:]
    return {
        "compounds": int(proc4[1]) if len(proc4) > 1 else 0,
        "v4ops": {NFS4_OPS.get(i, f"op{i}"): int(n) for i, n in enumerate(v4) if i in NFS4_OPS or n},
        "v3": {NFS3_PROCS[i] if i < len(NFS3_PROCS) else f"proc{i}": int(n)
               for i, n in enumerate(v3)},
    }


def nfsd_delta(before: dict, after: dict) -> dict:
    """What happened between two nfsd_counts: the same shape, only the non-zero counts."""

    def diff(a: dict, b: dict) -> dict:
        return {k: b[k] - a.get(k, 0) for k in b if b[k] - a.get(k, 0)}

    return {"compounds": after["compounds"] - before["compounds"],
            "v4ops": diff(before["v4ops"], after["v4ops"]),
            "v3": diff(before["v3"], after["v3"])}


def busy_jiffies(text: str) -> tuple:
    """(busy, total) jiffies of all CPUs from /proc/stat's first line ("cpu user nice system
    idle iowait irq softirq steal ..."): busy is all but idle and iowait."""
    fields = [int(x) for x in text.split()[1:9]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def cached_kib(text: str) -> int:
    """Cached: of /proc/meminfo, in KiB (the page cache, tmpfs and shared memory included)."""
    words = text.split()
    return int(words[words.index("Cached:") + 1])


def traffic(pcap: str, master_mac: str, master_ips: tuple) -> dict:
    """The bytes and frames of a capture by protocol and by sender: {protocol: {"master":
    {"bytes", "frames"}, "client": {...}}}, protocol one of PROTOCOLS. A frame is the master's
    when its Ethernet source is `master_mac`, else a client's (the capture holds the master and
    the clients alone). Bytes are whole frames as captured, Ethernet header included.
    DHCP is UDP 67/68 and DHCPv6 546/547; HTTP TCP port 80; NFS TCP or UDP port 2049; TFTP a
    request to UDP port 69 of one of `master_ips`, and every later UDP datagram between the
    same client address and port and that server (the transfer runs on ports the server picks);
    the rest (ARP, IPv6 neighbour discovery and router advertisements, ...) is "other"."""
    import dpkt   # Debian's python3-dpkt, which only this function needs

    mac = bytes.fromhex(master_mac.replace(":", ""))
    out = {p: {"master": {"bytes": 0, "frames": 0}, "client": {"bytes": 0, "frames": 0}}
           for p in PROTOCOLS}
    tftp = set()   # (client address, client port, server address) of each TFTP request
    with open(pcap, "rb") as f:
        for _, buf in dpkt.pcap.UniversalReader(f):
            eth = dpkt.ethernet.Ethernet(buf)
            proto = classify(eth, master_ips, tftp)
            who = out[proto]["master" if eth.src == mac else "client"]
            who["bytes"] += len(buf)
            who["frames"] += 1
    return out


def classify(eth, master_ips: tuple, tftp: set) -> str:
    """One frame's protocol (see traffic); a TFTP request adds its flow to `tftp`."""
    import dpkt

    ip = eth.data
    if not isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)):
        return "other"
    seg = ip.data
    src, dst = _address(ip.src), _address(ip.dst)
    if isinstance(seg, dpkt.tcp.TCP):
        ports = {seg.sport, seg.dport}
        if 80 in ports:
            return "HTTP"
        if 2049 in ports:
            return "NFS"
        return "other"
    if not isinstance(seg, dpkt.udp.UDP):
        return "other"
    ports = {seg.sport, seg.dport}
    if ports & {67, 68, 546, 547}:
        return "DHCP"
    if seg.dport == 69 and dst in master_ips:
        tftp.add((src, seg.sport, dst))
        return "TFTP"
    if (src, seg.sport, dst) in tftp or (dst, seg.dport, src) in tftp:
        return "TFTP"
    if 2049 in ports:
        return "NFS"
    return "other"


def _address(packed: bytes) -> str:
    import ipaddress

    return str(ipaddress.ip_address(packed))
