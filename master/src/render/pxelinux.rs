//! `pxelinux.cfg/default` in the master's TFTP root: the clients' kernel command line.

use super::stamp;
use crate::inventory::Inventory;

/// The clients' kernel command line after `BOOTIF=`, which each boot loader adds in its own
/// way (pxelinux: `IPAPPEND 2`; iPXE: `${netX/mac}`): the same in pxelinux.cfg/default and
/// boot.ipxe.
pub fn command_line(inv: &Inventory) -> String {
    format!(
        "nfsroot={master}:{root}{image} ip=dhcp clusterroot.nodefiles={nodefiles} clusterroot.timeout=90 console=tty0 console=ttyS0,115200n8",
        master = inv.master_address(),
        root = inv.boot_export(),
        nodefiles = inv.settings.nodefiles,
        image = if inv.uses_store() { " clusterroot.image=default" } else { "" },
    )
}

/// What the command line's parts mean, for the comments of both boot loaders' files.
pub fn command_line_comment(inv: &Inventory) -> String {
    let mut out = String::from(
        "\
# ip=dhcp: the agent's own DHCP client asks the DHCP server again for the address (and host
# name); nfsroot= names the export of the master's shared root; clusterroot.nodefiles= the
# directory whose <mac> subdirectory the master exports to that node alone, with its node
# files (see the README's node files: the shared root every client reads holds none).
",
    );
    if inv.uses_store() {
        out.push_str(
            "\
# The inventory names an image store: nfsroot= names it, and clusterroot.image=default makes
# the agent boot the version its default names at boot, and keep it until the next boot.
",
        );
    }
    out.push_str("# console=: kernel and agent messages on the first serial port as well as the screen.\n");
    out
}

pub fn render(inv: &Inventory) -> String {
    let master = inv.master_address();
    let mut out = stamp("#");
    out.push_str(&format!(
        "\
# <TFTP root>/pxelinux.cfg/default on a clusterroot master, for clients that boot pxelinux
# over TFTP (iPXE clients boot boot.ipxe over HTTP instead, with the same command line):
# every client boots the kernel and initramfs that kernel.d/post-install/60-clusterroot puts
# into the TFTP root, with its root over NFSv4 from the master ({master} here).
#
# The TFTP root also needs pxelinux.0 and ldlinux.c32 (Debian: /usr/lib/PXELINUX/pxelinux.0
# and /usr/lib/syslinux/modules/bios/ldlinux.c32; Void and Arch: /usr/lib/syslinux/bios/).
# pxelinux reads pxelinux.cfg/01-<mac> (e.g. 01-52-54-00-77-00-0b) before this file: put a
# node that needs other parameters there.
#
# IPAPPEND 2 adds BOOTIF=01-<mac of the NIC that PXE-booted> to the command line: the agent
# then configures that NIC and picks the node files by it.
{comment}
DEFAULT cluster
PROMPT 0
TIMEOUT 0

LABEL cluster
  KERNEL vmlinuz
  INITRD initramfs-net.img
  APPEND {args}
  IPAPPEND 2
",
        comment = command_line_comment(inv),
        args = command_line(inv),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::example;

    #[test]
    fn the_shipped_config_is_the_examples_rendering() {
        assert_eq!(render(&example::inventory()), include_str!("../../../mkinitcpio/pxelinux.cfg/default"));
    }

    #[test]
    fn with_an_image_store_clients_boot_its_default() {
        let text = example::CLUSTER.replace("master master\n", "master master\nimages /srv/nfs/images\n");
        let out = render(&Inventory::parse(&text).unwrap());
        assert!(
            out.contains("  APPEND nfsroot=172.23.199.225:/srv/nfs/images clusterroot.image=default ip=dhcp "),
            "{out}"
        );
        assert!(!out.contains(":/srv/nfs/root"), "{out}");
    }
}
