# SPDX-License-Identifier: MIT
"""The cluster test's setups (variants), its network (172.23.199.0/24, as mkinitcpio/'s files
have it), its nodes' names and addresses, and the sizes and deadlines it uses."""

from dataclasses import dataclass

from ..flavors import BUSYBOX, INITRAMFS_TOOLS, SYSTEMD, Flavor
from ..util import log

MASTER_IP = "172.23.199.225"
SITE_DHCP_MAC = "52:54:00:77:00:01"   # the proxy variant's DHCP server (not the master)
SITE_DHCP_IP = "172.23.199.1"
SITE_DHCP_MEM = "512"   # the master's image: the real mkinitcpio's, without autodetect, unpacks to ~100 MB
EXPORT = "/srv/nfs/root"
STORE = "/srv/nfs/images"   # the store variant's export (the inventory's images line)
# Node name, boot MAC, address: as in mkinitcpio/dnsmasq-dhcp.conf and the node files.
CLIENTS = [("node1", "52:54:00:77:00:0b", "172.23.199.11"),
           ("node2", "52:54:00:77:00:0c", "172.23.199.12")]
MASTER_MEM = "512"
CLIENT_MEM = "512"
# Deadlines guard against hangs, not speed: they leave room for a slow or busy machine.
VM_TIMEOUT_S = 1500
ROOT_IMAGE_SIZES = {"busybox": "192M", "debian": "1536M"}
HOME_IMAGE_SIZE = "32M"
NODEFILES_IMAGE_SIZE = "16M"
NODEFILES = "clusterroot.nodefiles=LABEL=nodefiles"   # the disk-booted nodes' node files
# What every master says of its nfsd (crtest-report nfsd): crctl's nfs.conf in force, its
# threads= too (crctl renders 8 for the test inventories' 2 clients: one per client, at least
# 8; README "Sizing").
NFSD_WANT = "master: nfsd: lease=30 grace=45 tracking=nfsdcld threads=8"
# What iPXE fetches over HTTP from the master: the script, then the kernel and initramfs it
# names (mkinitcpio/boot.ipxe).
HTTP_FILES = ("boot.ipxe", "vmlinuz", "initramfs-net.img")
DEBIAN_POWEROFF_S = 180


@dataclass
class Variant:
    """Who hands out the addresses. The master's MAC picks its node files, and so its
    /etc/dnsmasq.conf (lib/make-cluster-root)."""

    name: str
    doc: str
    master_mac: str
    site_dhcp: bool          # a separate DHCP server VM (172.23.199.1) gives the addresses
    lease_server: str        # the DHCP server the clients' leases come from
    flavor: Flavor = BUSYBOX  # the images' init: mkinitcpio's busybox init, SYSTEMD, or
                             # INITRAMFS_TOOLS (Debian's init; with generator initramfs-tools)
    root: str = "busybox"    # the shared root: lib/make-cluster-root's, or "debian" (a real
                             # Debian 12 systemd root, lib/make-debian-cluster-root)
    store: bool = False      # the master's disk is an image store (crctl image) holding the
                             # root as version 1; master and clients boot clusterroot.image=default
    uefi: tuple = ()         # the clients (by name) that boot UEFI firmware (OVMF) with no
                             # iPXE ROM on their NIC: its own PXE loads ipxe.efi by TFTP, which
                             # boots boot.ipxe; the others boot SeaBIOS and their NIC's iPXE
    generator: str = "mkinitcpio"  # what the kernel hook builds the clients' image with:
                             # mkinitcpio, "dracut" (Debian's dracut, without systemd), or
                             # "initramfs-tools" (Debian's, the Debian root only)
    reboots: tuple = ()      # at the end, the master reboots ("clean"), then loses its power
                             # ("cut"), while the clients write, lock and read
                             # (ride_out_reboots)
    image_mode: str = "tree"  # the store's image-mode (with store): "squashfs-http", the
                             # clients boot its squashfs file in RAM (clusterroot.live=)
    package: str = ""        # how clusterroot gets into the shared root: "" (this checkout's
                             # files), or "arch": the Arch package (packaging/tests/arch-package),
                             # installed with pacman -U --root; the images are then built from
                             # what it installed (lib/make-cluster-root, CRTEST_PACKAGE)


VARIANTS = [
    Variant("dhcp", "the master is the DHCP server (mkinitcpio/dnsmasq-dhcp.conf); then it "
            "reboots cleanly, and loses its power, while both clients append fsynced records "
            "to a file they hold a lock on in /home and read the shared root: they resume, "
            "with every record and their locks", "52:54:00:77:00:e1", False, MASTER_IP,
            reboots=("clean", "cut")),
    Variant("proxy", "another machine gives the addresses; the master answers PXE clients as "
            "a proxy DHCP server (mkinitcpio/dnsmasq-proxy.conf); clusterroot is in the shared "
            "root as the Arch package (pacman -U --root), and the master's and the clients' "
            "images are built by the real mkinitcpio from the hooks, agent, kernel hook and "
            "clients' config it installed there",
            "52:54:00:77:00:e2", True, SITE_DHCP_IP, package="arch"),
    Variant("sd", "as dhcp, with systemd-based images (the systemd hook) for the master and "
            "the clients, and the image kept as versions in image-mode squashfs-http: the "
            "master's disk is a store (crctl image), the master boots its default "
            "(clusterroot.image=default), the clients its default's squashfs file in RAM over "
            "HTTP (boot.ipxe as crctl renders it with a replica that is down), and crctl image "
            "list on the master names who runs what; then the master reboots cleanly while the "
            "clients write to /home and read the shared root: the reader never stops",
            "52:54:00:77:00:e1", False, MASTER_IP, flavor=SYSTEMD, store=True,
            image_mode="squashfs-http", reboots=("clean",)),
    Variant("debian", "as dhcp, with a real Debian 12 systemd root, built the Debian way: "
            "the Debian package (target/debian, packaging/tests/debian) installed by apt, the "
            "master's image by Debian's initramfs-tools (its defaults and the package's "
            "files), the clients' by the package's Debian kernel hook (zz-clusterroot) with "
            "initramfs-tools from the clients' configuration copied from the package; "
            "the master runs Debian's nfs-kernel-server and dnsmasq, every node reaches "
            "multi-user with no failed unit, and powers off cleanly", "52:54:00:77:00:e1",
            False, MASTER_IP, root="debian", flavor=INITRAMFS_TOOLS,
            generator="initramfs-tools"),
    Variant("uefi", "as dhcp, with UEFI clients whose NIC has no iPXE ROM: the firmware's own "
            "PXE (OVMF) loads ipxe.efi from the master by TFTP, as a real NIC's would, and that "
            "iPXE boots boot.ipxe, the kernel (its EFI stub) and the initramfs over HTTP",
            "52:54:00:77:00:e1", False, MASTER_IP, uefi=("node1", "node2")),
    Variant("dracut", "as dhcp, with the clients' image built by the shipped kernel hook with "
            "dracut (Debian's, without systemd: Void's kind) from dracut/clusterroot-net.conf; "
            "node2 boots UEFI as in uefi (one variant less in the test command); the master "
            "loses its power as in dhcp (its clean reboot is sd's, and dhcp's in the demo)",
            "52:54:00:77:00:e1", False, MASTER_IP,
            generator="dracut", reboots=("cut",), uefi=("node2",)),
]


def list_variants() -> None:
    for v in VARIANTS:
        log(f"{v.name:6} {v.doc}")
