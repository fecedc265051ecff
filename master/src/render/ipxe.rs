//! `boot.ipxe` in the master's TFTP root, which iPXE clients fetch over HTTP: the kernel, the
//! initramfs and the same command line as pxelinux's.

use super::pxelinux::{command_line, command_line_comment};
use super::stamp;
use crate::inventory::Inventory;

pub fn render(inv: &Inventory) -> String {
    let master = inv.master_address();
    // iPXE wants its signature on the first line, before crctl's stamp.
    let mut out = String::from("#!ipxe\n");
    out.push_str(&stamp("#"));
    out.push_str(&format!(
        "\
# <TFTP root>/boot.ipxe on a clusterroot master: the script iPXE clients run (dnsmasq.conf
# sends them to http://{master}/boot.ipxe; lighttpd serves the TFTP root). Every client
# boots the kernel and initramfs that kernel.d/post-install/60-clusterroot puts into the
# TFTP root, fetched over HTTP from beside this file, with its root over NFSv4 from the
# master ({master} here). The command line is pxelinux.cfg/default's.
#
# BOOTIF=01-<mac of the NIC iPXE booted from> (${{netX/mac:hexhyp}}, as pxelinux's IPAPPEND 2
# writes it): the agent configures that NIC and picks the node files by it.
# initrd=: the name of the initramfs below, which a UEFI kernel needs to find it.
{comment}
kernel vmlinuz initrd=initramfs-net.img BOOTIF=01-${{netX/mac:hexhyp}} {args}
initrd initramfs-net.img
boot
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
    fn the_shipped_script_is_the_examples_rendering() {
        assert_eq!(render(&example::inventory()), include_str!("../../../mkinitcpio/boot.ipxe"));
    }

    #[test]
    fn it_boots_what_pxelinux_boots() {
        let inv = example::inventory();
        let script = render(&inv);
        assert!(script.starts_with("#!ipxe\n# Rendered by crctl"), "{script}");
        let kernel = script.lines().find(|l| l.starts_with("kernel ")).unwrap();
        assert!(kernel.ends_with(&command_line(&inv)), "{kernel}");
        assert!(kernel.contains(" BOOTIF=01-${netX/mac:hexhyp} "), "{kernel}");
        assert!(script.ends_with("initrd initramfs-net.img\nboot\n"), "{script}");
    }
}
