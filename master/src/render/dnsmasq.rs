//! dnsmasq: the master's `/etc/dnsmasq.conf` (DHCP server or proxy, PXE, TFTP), and in the
//! proxy setup the `dhcp-host` lines the site's DHCP server needs.

use std::fmt::Write as _;

use super::stamp;
use crate::inventory::{DhcpMode, Inventory, Node};

/// `dhcp-host=MAC,NAME[,ADDRESS],infinite`: a fixed address and name for the node's boot NIC,
/// and a lease that does not run out (the agent sets the address in the initramfs and nothing
/// renews it afterwards).
fn host_line(n: &Node) -> String {
    match n.address {
        Some(a) => format!("dhcp-host={},{},{a},infinite\n", n.mac, n.name),
        None => format!("dhcp-host={},{},infinite\n", n.mac, n.name),
    }
}

/// The master's `/etc/dnsmasq.conf`, for the inventory's `dhcp` mode.
pub fn master(inv: &Inventory) -> String {
    match inv.settings.dhcp {
        DhcpMode::Server => server(inv),
        DhcpMode::Proxy => proxy(inv),
    }
}

fn server(inv: &Inventory) -> String {
    let s = &inv.settings;
    let mut out = stamp("#");
    let _ = write!(
        out,
        "\
# /etc/dnsmasq.conf of a clusterroot master that is the DHCP server of the cluster network:
# addresses for the clients, the PXE boot file, and the TFTP server holding pxelinux, the
# kernel and the clients' initramfs. (Next to another DHCP server, use dnsmasq-proxy.conf.)
# Addresses: the cluster network {network}, the master {master}.

# No DNS server: only DHCP and TFTP.
port=0

# If the master has more than one NIC, answer on the cluster NIC only:
#interface=eth0

# This is the only DHCP server on the network: answer clients that ask for an address
# another server gave them (after a client reboots, for example) at once.
dhcp-authoritative

# Every node by its boot NIC's MAC: a fixed address and host name, and a lease that does not
# run out (the agent sets the address in the initramfs and nothing renews it afterwards).
# The same MACs name the nodes' files (<mac>/ on the master's node-files filesystem) and the
# addresses their node-file exports are limited to (README.md, \"Node files\").
",
        network = s.network,
        master = inv.master_address(),
    );
    for n in inv.clients() {
        out.push_str(&host_line(n));
    }
    match s.range {
        Some((first, last)) => {
            let _ = writeln!(
                out,
                "# Machines not listed above get an address from here (drop the line to answer only them)."
            );
            let _ = writeln!(out, "dhcp-range={first},{last},{},12h", s.network.netmask());
        }
        None => {
            let _ = writeln!(
                out,
                "# Only the machines listed above get an address (a `range` line in the inventory adds more)."
            );
            let _ = writeln!(out, "dhcp-range={},static,{}", s.network.base, s.network.netmask());
        }
    }
    let _ = write!(
        out,
        "
# The NFS root, for clients booted with ip=dhcp and no nfsroot= (option 17).
dhcp-option=option:root-path,{master}:{root}

# PXE: the boot file, fetched from this master by TFTP. pxelinux.0 boots BIOS clients; UEFI
# clients need syslinux.efi (with its ldlinux.e64) instead, e.g. with
# dhcp-match=set:efi64,option:client-arch,7 and dhcp-boot=tag:efi64,syslinux.efi
dhcp-boot=pxelinux.0
enable-tftp
tftp-root={tftp}
",
        master = inv.master_address(),
        root = inv.boot_export(),
        tftp = s.tftp,
    );
    out
}

fn proxy(inv: &Inventory) -> String {
    let s = &inv.settings;
    let mut out = stamp("#");
    let _ = write!(
        out,
        "\
# /etc/dnsmasq.conf of a clusterroot master on a network where another server hands out the
# addresses: dnsmasq answers the PXE clients as a proxy DHCP server (boot information only,
# no addresses) and serves pxelinux, the kernel and the clients' initramfs by TFTP.
# (If the master is the DHCP server itself, use dnsmasq-dhcp.conf.)
# Addresses: the cluster network {network}, the master {master}.
#
# The other DHCP server should give every node a fixed address, and a lease that does not
# run out (the agent sets the address in the initramfs and nothing renews it afterwards).
# Its host names are used if it sends them; hostname in the node's node files names the node
# in any case. It must give each node the same address every time: the master exports each
# node's files to that address alone (README.md, \"Node files\"). `crctl show site-dhcp`
# prints its dhcp-host lines.

# No DNS server: only proxy DHCP and TFTP.
port=0

# If the master has more than one NIC, answer on the cluster NIC only:
#interface=eth0

# Proxy DHCP on the cluster network: no addresses, only PXE boot information.
dhcp-range={base},proxy,{netmask}

# One menu entry, booted at once: pxelinux (\"pxelinux\" + the \".0\" PXE adds) from this
# master's TFTP server, for BIOS clients. UEFI clients need their own entry with syslinux.efi
# (and its ldlinux.e64), e.g. pxe-service=X86-64_EFI,\"clusterroot network boot\",syslinux.efi
pxe-service=x86PC,\"clusterroot network boot\",pxelinux

enable-tftp
tftp-root={tftp}
",
        network = s.network,
        master = inv.master_address(),
        base = s.network.base,
        netmask = s.network.netmask(),
        tftp = s.tftp,
    );
    out
}

/// In the proxy setup: the `dhcp-host` lines for the site's DHCP server, if it is a dnsmasq
/// (another server needs the same: one fixed address per MAC, a lease that does not run out).
/// `None` when the master is the DHCP server.
pub fn site(inv: &Inventory) -> Option<String> {
    if inv.settings.dhcp != DhcpMode::Proxy {
        return None;
    }
    let mut out = stamp("#");
    out.push_str(
        "# For the site's DHCP server (dnsmasq syntax): every client's fixed address and name, and a\n\
         # lease that does not run out. The master exports each node's files to that address alone.\n",
    );
    for n in inv.clients() {
        out.push_str(&host_line(n));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Inventory;
    use crate::render::example;

    #[test]
    fn the_shipped_configs_are_the_examples_rendering() {
        assert_eq!(master(&example::inventory()), include_str!("../../../mkinitcpio/dnsmasq-dhcp.conf"));
        assert_eq!(master(&example::proxy()), include_str!("../../../mkinitcpio/dnsmasq-proxy.conf"));
        assert_eq!(site(&example::inventory()), None);
    }

    #[test]
    fn with_an_image_store_the_root_path_is_the_store() {
        let text = example::CLUSTER.replace("master master\n", "master master\nimages /srv/nfs/images\n");
        let out = master(&Inventory::parse(&text).unwrap());
        assert!(out.contains("\ndhcp-option=option:root-path,172.23.199.225:/srv/nfs/images\n"), "{out}");
    }

    #[test]
    fn hosts_without_address_and_no_range() {
        let text = example::CLUSTER
            .replace("range 172.23.199.100 172.23.199.199\n", "")
            .replace("172.23.199.12   compute", "- compute");
        let out = master(&Inventory::parse(&text).unwrap());
        assert!(out.contains(
            "dhcp-host=52:54:00:77:00:0b,node1,172.23.199.11,infinite\ndhcp-host=52:54:00:77:00:0c,node2,infinite\n"
        ));
        assert!(out.contains("\ndhcp-range=172.23.199.0,static,255.255.255.0\n"));
        assert!(!out.contains("dhcp-host=52:54:00:77:00:e1"), "the master has its own address");
    }

    #[test]
    fn proxy_setup_gives_the_site_its_host_lines() {
        let out = site(&example::proxy()).unwrap();
        assert!(out.ends_with(
            "dhcp-host=52:54:00:77:00:0b,node1,172.23.199.11,infinite\ndhcp-host=52:54:00:77:00:0c,node2,172.23.199.12,infinite\n"
        ));
        assert!(!master(&example::proxy()).contains("dhcp-host="));
    }
}
