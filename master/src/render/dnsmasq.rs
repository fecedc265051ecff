//! dnsmasq: the master's `/etc/dnsmasq.conf` (DHCP server or proxy, PXE, TFTP), and in the
//! proxy setup the `dhcp-host` lines the site's DHCP server needs.

use std::fmt::Write as _;

use super::sizing::{
    Sizing, DEFAULT_NOFILE, DNSMASQ_FD_RESERVE, DNSMASQ_LEASE_MAX_DEFAULT, DNSMASQ_TFTP_MAX_DEFAULT, MACHINES,
};
use super::{comment, stamp};
use crate::inventory::{DhcpMode, Inventory, Node};

/// The systemd drop-in that raises dnsmasq's open-file limit for [`Sizing::tftp_max`], when
/// it needs more than [`DEFAULT_NOFILE`] (`crate::render::master`).
pub const NOFILE_DROPIN: &str = "systemd/system/dnsmasq.service.d/clusterroot.conf";

/// `dhcp-lease-max=`: a lease for every machine that may ask at once (`dhcp server` only).
fn lease_max(s: &Sizing) -> String {
    let text = format!(
        "Boot storms: a lease for every machine that may ask at once ({MACHINES}). dnsmasq's default limit, \
         {DNSMASQ_LEASE_MAX_DEFAULT}, guards its memory against a flood of made-up clients: it stays while it holds \
         them all. A lease costs a few hundred bytes while it is held.",
    );
    format!("{}dhcp-lease-max={}\n", comment(&text), s.dhcp_lease_max)
}

/// `tftp-max=`: a transfer for every machine that may load iPXE (or pxelinux) by TFTP at once.
fn tftp_max(s: &Sizing) -> String {
    let limit = match s.dnsmasq_nofile {
        Some(n) => format!("this master's node files raise it to {n}, {NOFILE_DROPIN} (systemd)"),
        None => format!("{} under the usual {DEFAULT_NOFILE}", DEFAULT_NOFILE - DNSMASQ_FD_RESERVE),
    };
    let text = format!(
        "Boot storms: a TFTP transfer for every machine whose ROM loads iPXE (or pxelinux) by TFTP, all \
         at once ({MACHINES}). dnsmasq's default, {DNSMASQ_TFTP_MAX_DEFAULT}, leaves the others' requests waiting, and a PXE \
         ROM gives up after a few tries. A transfer holds a socket, and the file it sends, while it \
         lasts; dnsmasq runs as many as its open-file limit less {DNSMASQ_FD_RESERVE} ({limit}).",
    );
    format!("{}tftp-max={}\n", comment(&text), s.tftp_max)
}

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
# addresses for the clients, the PXE boot files, and the TFTP server for the PXE ROMs that
# load iPXE first. (Next to another DHCP server, use dnsmasq-proxy.conf.)
# Addresses: the cluster network {network}, the master {master}.

# No DNS server: only DHCP, TFTP and the IPv6 router advertisement.
port=0

{interface}
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
        interface = interface(inv),
    );
    for n in inv.clients() {
        out.push_str(&host_line(n));
    }
    match s.range {
        Some((first, last)) => {
            let _ = writeln!(
                out,
                "# Machines not listed above get an address from here (drop the line to answer only them).\n\
                 # dnsmasq pings each address before it gives it from here, holding DHCP for up to 3 s,\n\
                 # at most 6 times in 30 s: in a storm, unlisted machines wait some 20-30 s for their\n\
                 # leases (measured with 64). The listed nodes' own addresses need no ping."
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
    out.push_str(&lease_max(&Sizing::of(inv)));
    let _ = write!(
        out,
        "{root_path}
# iPXE takes this answer at once: there is no proxy DHCP server to wait 3 s for.
dhcp-option=encap:175,176,1

# PXE. iPXE clients (QEMU's NIC boot ROM and many others, or the iPXE other PXE ROMs load
# first, below) fetch boot.ipxe, the kernel and the clients' initramfs over HTTP from this
# master: lighttpd serving the TFTP root (lighttpd.conf).
dhcp-match=set:ipxe,175
dhcp-boot=tag:ipxe,http://{master}/boot.ipxe
# Other PXE ROMs load iPXE itself first, by TFTP: a small file from the distribution's ipxe
# package (Debian: /usr/lib/ipxe/), put into the TFTP root: ipxe.efi for UEFI clients,
# undionly.kpxe for BIOS clients.
dhcp-match=set:efi64,option:client-arch,7
dhcp-match=set:efi64,option:client-arch,9
dhcp-boot=tag:!ipxe,tag:efi64,ipxe.efi
dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe
# Without an HTTP server, every client can boot pxelinux over TFTP instead (slower: one
# block per round trip; pxelinux.cfg/default): replace the three dhcp-boot lines with
# dhcp-boot=pxelinux.0
enable-tftp
{tftp_root}{tftp_max}{ra}",
        master = inv.master_address(),
        root_path = root_path(inv),
        tftp_root = tftp_root(inv),
        tftp_max = tftp_max(&Sizing::of(inv)),
        ra = router_advert(inv),
    );
    out
}

/// The DHCP root path (option 17): the NFS root, for clients booted with ip=dhcp and no
/// nfsroot=. None in the squashfs modes: the clients' command line names their image file
/// (clusterroot.live=, which the agent takes over option 17), and no NFS tree is their root.
fn root_path(inv: &Inventory) -> String {
    if inv.master_live_url().is_some() {
        return format!(
            "\n# No NFS root path (option 17): with image-mode {}, the clients' command line names their\n\
             # root, a squashfs file (clusterroot.live= in boot.ipxe and pxelinux.cfg).\n",
            inv.settings.image_mode
        );
    }
    format!(
        "\n# The NFS root, for clients booted with ip=dhcp and no nfsroot= (option 17).\n\
         dhcp-option=option:root-path,{}:{}\n",
        inv.master_address(),
        inv.boot_export()
    )
}

/// `tftp-root=`, the TFTP root the master serves ([`Inventory::served_tftp`]); with an image
/// store, said why it is the default version's.
fn tftp_root(inv: &Inventory) -> String {
    let line = format!("tftp-root={}\n", inv.served_tftp());
    if !inv.uses_store() {
        return line;
    }
    format!(
        "# The image store's default version's TFTP root: a version is everything a client boots,\n\
         # its kernel, initramfs and boot.ipxe with the root it mounts (clusterroot.image=default).\n\
         # dnsmasq follows the default link at every file it opens, so crctl image publish and\n\
         # crctl image default switch them together ({tftp} in this master's own / is the version\n\
         # it booted). The master's fstab mounts the store here before dnsmasq starts.\n\
         {line}",
        tftp = inv.settings.tftp
    )
}

/// The cluster NIC dnsmasq answers on: the inventory's `interface`, else every NIC (a hint).
fn interface(inv: &Inventory) -> String {
    match &inv.settings.interface {
        None => "# If the master has more than one NIC, answer on the cluster NIC only:\n#interface=eth0\n".into(),
        Some(nic) => format!(
            "# The cluster NIC only (the inventory's interface line): no DHCP, TFTP or router\n\
             # advertisement on the master's other NICs. bind-dynamic: bound to that NIC alone,\n\
             # even when it comes up after dnsmasq.\n\
             interface={nic}\n\
             bind-dynamic\n"
        ),
    }
}

/// The router advertisement that ends iPXE's wait for an IPv6 router (see
/// [`crate::inventory::Ipv6Advert`]); empty with `ipv6 none`.
fn router_advert(inv: &Inventory) -> String {
    let Some(prefix) = inv.ipv6_prefix() else {
        return String::new();
    };
    format!(
        "
# iPXE configures IPv6 as well as IPv4 and waits up to 16 s for an IPv6 router before it
# boots; on an IPv4-only network none answers. This master advertises the cluster's own
# prefix {prefix}/64 instead (a route for no one: router lifetime 0; nodes take an address
# in it), which ends that wait at once. It needs an address in that prefix on its cluster
# NIC, e.g. {prefix}1/64, or dnsmasq sends nothing. (The inventory's ipv6 line names
# another prefix, or none on a network whose own routers advertise.)
enable-ra
ra-param=*,0,0
dhcp-range={prefix},ra-only,64
"
    )
}

fn proxy(inv: &Inventory) -> String {
    let s = &inv.settings;
    let mut out = stamp("#");
    let _ = write!(
        out,
        "\
# /etc/dnsmasq.conf of a clusterroot master on a network where another server hands out the
# addresses: dnsmasq answers the PXE clients as a proxy DHCP server (boot information only,
# no addresses), and serves iPXE by TFTP to the PXE ROMs that load it first.
# (If the master is the DHCP server itself, use dnsmasq-dhcp.conf.)
# Addresses: the cluster network {network}, the master {master}.
#
# The other DHCP server should give every node a fixed address, and a lease that does not
# run out (the agent sets the address in the initramfs and nothing renews it afterwards).
# Its host names are used if it sends them; hostname in the node's node files names the node
# in any case. It must give each node the same address every time: the master exports each
# node's files to that address alone (README.md, \"Node files\"). `crctl show site-dhcp`
# prints its dhcp-host lines.

# No DNS server: only proxy DHCP, TFTP and the IPv6 router advertisement.
port=0

{interface}
# Proxy DHCP on the cluster network: no addresses, only PXE boot information.
dhcp-range={base},proxy,{netmask}

# PXE, one menu entry for each kind of client, booted at once. iPXE clients (QEMU's NIC boot
# ROM and many others, or the iPXE other PXE ROMs load first) fetch boot.ipxe, the kernel and
# the clients' initramfs over HTTP from this master: lighttpd serving the TFTP root
# (lighttpd.conf).
dhcp-match=set:ipxe,175
pxe-service=tag:ipxe,x86PC,\"clusterroot network boot\",http://{master}/boot.ipxe
pxe-service=tag:ipxe,X86-64_EFI,\"clusterroot network boot\",http://{master}/boot.ipxe
# Other PXE ROMs load iPXE itself first, by TFTP: a small file from the distribution's ipxe
# package (Debian: /usr/lib/ipxe/), put into the TFTP root: undionly.kpxe for BIOS clients,
# ipxe.efi for UEFI clients.
pxe-service=tag:!ipxe,x86PC,\"clusterroot network boot\",undionly.kpxe
pxe-service=tag:!ipxe,X86-64_EFI,\"clusterroot network boot\",ipxe.efi
# Without an HTTP server, BIOS clients can boot pxelinux over TFTP instead (slower: one block
# per round trip; pxelinux.cfg/default): replace the x86PC lines with
# pxe-service=x86PC,\"clusterroot network boot\",pxelinux

enable-tftp
{tftp_root}{tftp_max}{ra}",
        network = s.network,
        master = inv.master_address(),
        base = s.network.base,
        netmask = s.network.netmask(),
        tftp_root = tftp_root(inv),
        tftp_max = tftp_max(&Sizing::of(inv)),
        ra = router_advert(inv),
        interface = interface(inv),
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
    fn in_the_squashfs_modes_no_root_path_points_at_a_tree() {
        let text = example::CLUSTER
            .replace("master master\n", "master master\nimages /srv/nfs/images\nimage-mode squashfs-http\n");
        let out = master(&Inventory::parse(&text).unwrap());
        assert!(!out.contains("root-path"), "{out}");
        assert!(out.contains("\n# No NFS root path (option 17): with image-mode squashfs-http, the clients'"), "{out}");
    }

    #[test]
    fn with_an_image_store_tftp_serves_the_default_version() {
        let text = example::CLUSTER.replace("master master\n", "master master\nimages /srv/nfs/images\n");
        for dhcp in ["server", "proxy"] {
            let text = text.replace("\ndhcp server\n", &format!("\ndhcp {dhcp}\n"));
            let out = master(&Inventory::parse(&text).unwrap());
            assert!(
                out.contains(
                    "it booted). The master's fstab mounts the store here before dnsmasq starts.\n\
                              tftp-root=/run/rootfs/lower/srv/nfs/images/default/srv/tftp\n"
                ),
                "{out}"
            );
            assert_eq!(out.matches("tftp-root=").count(), 1, "{out}");
        }
        assert!(master(&example::inventory()).contains("\nenable-tftp\ntftp-root=/srv/tftp\n"));
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
    fn the_master_ends_ipxes_wait_for_an_ipv6_router() {
        let out = master(&example::inventory());
        let prefix = crate::inventory::derived_prefix(&example::inventory().master().mac);
        assert!(prefix.to_string().starts_with("fd"), "{prefix}");
        assert!(out.contains(&format!("\nenable-ra\nra-param=*,0,0\ndhcp-range={prefix},ra-only,64\n")), "{out}");
        assert!(master(&example::proxy()).contains("\nenable-ra\n"));
        let mine = example::CLUSTER.replace("master master\n", "master master\nipv6 fd00:1:2::/64\n");
        assert!(master(&Inventory::parse(&mine).unwrap()).contains("\ndhcp-range=fd00:1:2::,ra-only,64\n"));
        let none = example::CLUSTER.replace("master master\n", "master master\nipv6 none\n");
        let out = master(&Inventory::parse(&none).unwrap());
        assert!(!out.contains("enable-ra") && !out.contains("ra-only"), "{out}");
    }

    #[test]
    fn ipxe_clients_boot_over_http_and_others_load_ipxe_first() {
        let out = master(&example::inventory());
        for line in [
            "dhcp-option=encap:175,176,1",
            "dhcp-match=set:ipxe,175",
            "dhcp-boot=tag:ipxe,http://172.23.199.225/boot.ipxe",
            "dhcp-boot=tag:!ipxe,tag:efi64,ipxe.efi",
            "dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe",
        ] {
            assert!(out.contains(&format!("\n{line}\n")), "{line} in {out}");
        }
        let proxy = master(&example::proxy());
        assert!(proxy
            .contains("\npxe-service=tag:ipxe,x86PC,\"clusterroot network boot\",http://172.23.199.225/boot.ipxe\n"));
        assert!(proxy.contains("\npxe-service=tag:!ipxe,X86-64_EFI,\"clusterroot network boot\",ipxe.efi\n"));
        // A proxy must not tell iPXE to skip the proxy answers it exists for.
        assert!(!proxy.contains("175,176"), "{proxy}");
    }

    #[test]
    fn the_interface_line_binds_dnsmasq_to_the_cluster_nic() {
        let with = |dhcp: &str| {
            let text = example::CLUSTER.replace("\ndhcp server\n", &format!("\ndhcp {dhcp}\ninterface ens5\n"));
            master(&crate::inventory::Inventory::parse(&text).unwrap())
        };
        for out in [with("server"), with("proxy")] {
            assert!(out.contains("\ninterface=ens5\nbind-dynamic\n"), "{out}");
            assert!(!out.contains("#interface=eth0"), "{out}");
        }
        assert!(master(&example::inventory()).contains("\n#interface=eth0\n"));
    }

    #[test]
    fn a_storm_of_every_machine_gets_its_leases_and_transfers() {
        let out = master(&example::inventory());
        assert!(out.contains("\n# lease costs a few hundred bytes while it is held.\ndhcp-lease-max=1000\n"), "{out}");
        assert!(
            out.contains(
                "\n# dnsmasq runs as many as its open-file limit less 50 (974 under the usual 1024).\ntftp-max=102\n"
            ),
            "{out}"
        );
        // With another DHCP server: no leases, and TFTP for the listed clients, at least 50.
        let proxy = master(&example::proxy());
        assert!(!proxy.contains("dhcp-lease-max"), "{proxy}");
        assert!(proxy.contains("\ntftp-max=50\n"), "{proxy}");
        // More than 974 transfers: the limit the master's node files raise.
        let text = example::CLUSTER
            .replace("network 172.23.199.0/24", "network 172.23.0.0/16")
            .replace("range 172.23.199.100 172.23.199.199", "range 172.23.1.0 172.23.8.255");
        let out = master(&Inventory::parse(&text).unwrap());
        assert!(out.contains("\ndhcp-lease-max=2050\n") && out.contains("\ntftp-max=2050\n"), "{out}");
        let flat = out.split_whitespace().filter(|w| *w != "#").collect::<Vec<_>>().join(" ");
        assert!(flat.contains("(this master's node files raise it to 4164, systemd/system/dnsmasq.service.d/clusterroot.conf (systemd)). tftp-max=2050"), "{out}");
        for out in [out, proxy, master(&example::inventory())] {
            assert!(out.lines().all(|l| l.len() <= 100), "{out}");
        }
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
