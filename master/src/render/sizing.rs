//! What a boot storm asks of the master's servers: every limit the inventory's machines reach
//! when they all boot at once, derived from how many there are. Pure: the renderers of
//! nfs.conf, dnsmasq.conf, lighttpd.conf and the master's node files write these values, each
//! with a comment that says why and what it costs (README "Sizing").
//!
//! Two rules. A limit that costs nothing until it is used (leases, TFTP transfers, HTTP
//! connections, file descriptors) is sized for every machine that could boot: the inventory's
//! clients and, with `dhcp server`, every address of its `range`. nfsd's threads take their
//! memory when they start, so they are sized for the clients the inventory lists, and the
//! inventory's `nfsd-threads` line sets another count (a cluster that boots many unlisted
//! machines from its range, or a master short of memory).

use crate::inventory::{DhcpMode, Inventory};

/// nfsd's thread count when the inventory lists few clients: nfs-utils' own default (rpc.nfsd
/// without a count, Debian's `RPCNFSDCOUNT`), which served 8 clients booting at once as well
/// as 32 threads did (qemu-tests/bench).
pub const NFSD_THREADS_MIN: u32 = 8;
/// The most threads the one-per-client rule gives: their buffers take 1/4096 of the RAM each
/// (see [`Sizing::nfsd_threads`]), so 256 take at most a sixteenth.
pub const NFSD_THREADS_CAP: u32 = 256;
/// The most threads nfsd runs (the kernel's `NFSD_MAXSERVS`): the inventory's `nfsd-threads`
/// takes 1 to this.
pub const NFSD_THREADS_MAX: u32 = 8192;
/// nfsd accepts at most this many TCP connections per thread, plus three threads' worth
/// (`(threads + 3) × 20`, the kernel's `svc_check_conn_limits`); past it, it closes the
/// oldest ("too many open connections, consider increasing the number of threads").
pub const NFSD_CONNECTIONS_PER_THREAD: u64 = 20;

/// dnsmasq's default `dhcp-lease-max`: it guards dnsmasq's memory against a flood of made-up
/// clients, and is left as it is while it holds every machine.
pub const DNSMASQ_LEASE_MAX_DEFAULT: u64 = 1000;
/// dnsmasq's default `tftp-max`: concurrent TFTP transfers.
pub const DNSMASQ_TFTP_MAX_DEFAULT: u64 = 50;
/// The file descriptors dnsmasq keeps out of TFTP's share (30 for itself, 20 to spare, with
/// `port=0`): it allows `tftp-max` up to its limit less these, and logs "restricting maximum
/// simultaneous TFTP transfers to N" when the limit is lower (measured with dnsmasq 2.90:
/// 974 under `ulimit -n 1024`).
pub const DNSMASQ_FD_RESERVE: u64 = 50;
/// The usual soft limit of open files a service starts with (systemd's default, the kernel's).
pub const DEFAULT_NOFILE: u64 = 1024;

/// The fewest HTTP connections lighttpd.conf allows: more than lighttpd's own default under a
/// 1024-file limit (a third of it, 341), for machines the inventory cannot count (a proxy
/// setup answers every PXE client on the network).
pub const HTTP_CONNECTIONS_MIN: u64 = 512;
/// Connections and descriptors for others than the booting machines: the admin, replicas
/// copying the store, lighttpd's own files.
pub const HTTP_SPARE: u64 = 64;

/// The most machines the file-descriptor limits are sized for: a /16's worth. A range wider
/// than that (a /8 network) is no storm one master serves, and descriptor limits past the
/// kernel's `nr_open` (1048576) would keep the servers from starting.
pub const MACHINES_CAP: u64 = 65_536;

/// Every storm limit crctl renders for the master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizing {
    /// The inventory's clients (every node but the master).
    pub clients: u64,
    /// The range's addresses, with `dhcp server` (0 without a range, and with `dhcp proxy`,
    /// where another server gives the addresses).
    pub range: u64,
    /// nfsd's threads (`[nfsd] threads=`).
    pub nfsd_threads: u32,
    /// Whether the inventory's `nfsd-threads` line set them.
    pub nfsd_threads_set: bool,
    /// dnsmasq's `dhcp-lease-max` (with `dhcp server`).
    pub dhcp_lease_max: u64,
    /// dnsmasq's `tftp-max`.
    pub tftp_max: u64,
    /// dnsmasq's open-file limit, when `tftp-max` needs more than [`DEFAULT_NOFILE`].
    pub dnsmasq_nofile: Option<u64>,
    /// lighttpd's `server.max-connections`.
    pub http_connections: u64,
    /// lighttpd's `server.max-fds`.
    pub http_fds: u64,
}

impl Sizing {
    /// The limits for `inv`. No I/O.
    pub fn of(inv: &Inventory) -> Sizing {
        let s = &inv.settings;
        let clients = inv.clients().count() as u64;
        let range = match (s.dhcp, s.range) {
            (DhcpMode::Server, Some((first, last))) => u64::from(u32::from(last) - u32::from(first)) + 1,
            _ => 0,
        };
        let machines = clients + range;
        let nfsd_threads = s.nfsd_threads.unwrap_or_else(|| Self::nfsd_threads(clients));
        let tftp_max = machines.clamp(DNSMASQ_TFTP_MAX_DEFAULT, MACHINES_CAP);
        let dnsmasq_nofile = (tftp_max + DNSMASQ_FD_RESERVE > DEFAULT_NOFILE).then_some(2 * tftp_max + HTTP_SPARE);
        let http_connections = (2 * machines.min(MACHINES_CAP) + HTTP_SPARE).max(HTTP_CONNECTIONS_MIN);
        Sizing {
            clients,
            range,
            nfsd_threads,
            nfsd_threads_set: s.nfsd_threads.is_some(),
            dhcp_lease_max: machines.max(DNSMASQ_LEASE_MAX_DEFAULT),
            tftp_max,
            dnsmasq_nofile,
            http_connections,
            http_fds: 2 * http_connections + HTTP_SPARE,
        }
    }

    /// One thread per client, at least [`NFSD_THREADS_MIN`] and at most [`NFSD_THREADS_CAP`]:
    /// a thread serves one request at a time, and in a storm every client has one waiting
    /// (measured: 8 clients booting at once kept 8 threads enough, 32 changed nothing; 64
    /// clients found all 8 busy again and again). Past 5,180 clients, enough threads that
    /// nfsd's connection limit holds each client's connection.
    pub fn nfsd_threads(clients: u64) -> u32 {
        let per_client = clients.clamp(u64::from(NFSD_THREADS_MIN), u64::from(NFSD_THREADS_CAP));
        let connections = clients.div_ceil(NFSD_CONNECTIONS_PER_THREAD).saturating_sub(3);
        let threads = per_client.max(connections).min(u64::from(NFSD_THREADS_MAX));
        u32::try_from(threads).unwrap_or(NFSD_THREADS_MAX)
    }

    /// Every machine that may boot at once: the clients and the range's addresses.
    pub fn machines(&self) -> u64 {
        self.clients + self.range
    }

    /// The TCP connections nfsd accepts with [`Sizing::nfsd_threads`] threads.
    pub fn nfsd_connections(&self) -> u64 {
        (u64::from(self.nfsd_threads) + 3) * NFSD_CONNECTIONS_PER_THREAD
    }
}

/// Who the limits that cost nothing until used are sized for, as the rendered comments say it.
/// The comments name no count: a node added changes a file only where a value changes.
pub const MACHINES: &str = "each client the inventory lists and, with dhcp server, every address of its range";

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;
    use crate::render::example;

    /// An inventory of `clients` clients on a /16 (and `extra` lines before the nodes).
    fn cluster(clients: u32, extra: &str) -> Inventory {
        let mut text = format!("network 10.7.0.0/16\nmaster m\n{extra}node m 52:54:00:00:00:01 10.7.0.1\n");
        for i in 0..clients {
            let [_, _, a, b] = (i + 2).to_be_bytes();
            let _ = writeln!(text, "node n{i} 52:54:00:01:{a:02x}:{b:02x} 10.7.{a}.{b}");
        }
        Inventory::parse(&text).unwrap()
    }

    #[test]
    fn the_limits_at_2_50_500_and_2000_nodes() {
        // clients: threads, lease-max, tftp-max, dnsmasq's files, connections, fds.
        type Row = (u32, u32, u64, u64, Option<u64>, u64, u64);
        let table: [Row; 4] = [
            (2, 8, 1000, 50, None, 512, 1088),
            (50, 50, 1000, 50, None, 512, 1088),
            (500, 256, 1000, 500, None, 1064, 2192),
            (2000, 256, 2000, 2000, Some(4064), 4064, 8192),
        ];
        for (clients, threads, leases, tftp, nofile, connections, fds) in table {
            let s = Sizing::of(&cluster(clients, ""));
            assert_eq!(
                (s.nfsd_threads, s.dhcp_lease_max, s.tftp_max, s.dnsmasq_nofile, s.http_connections, s.http_fds),
                (threads, leases, tftp, nofile, connections, fds),
                "{clients} clients"
            );
            assert!(s.http_connections <= s.http_fds / 2, "lighttpd takes at most max-fds/2 connections");
            assert!(s.nfsd_connections() >= u64::from(clients), "nfsd holds every client's connection");
            if let Some(n) = s.dnsmasq_nofile {
                assert!(n >= s.tftp_max + DNSMASQ_FD_RESERVE, "dnsmasq would cut tftp-max");
            } else {
                assert!(s.tftp_max + DNSMASQ_FD_RESERVE <= DEFAULT_NOFILE);
            }
        }
    }

    #[test]
    fn the_range_counts_for_what_costs_nothing_until_used() {
        let s = Sizing::of(&cluster(500, "range 10.7.100.0 10.7.103.255\n"));
        assert_eq!((s.range, s.machines()), (1024, 1524));
        assert_eq!((s.nfsd_threads, s.dhcp_lease_max, s.tftp_max), (256, 1524, 1524));
        assert_eq!((s.dnsmasq_nofile, s.http_connections, s.http_fds), (Some(3112), 3112, 6288));
        // With another DHCP server, the range gives no addresses.
        let proxy = Sizing::of(&cluster(500, "dhcp proxy\nrange 10.7.100.0 10.7.103.255\n"));
        assert_eq!((proxy.range, proxy.tftp_max), (0, 500));
        // The shipped example: 2 clients, 100 addresses.
        let s = Sizing::of(&example::inventory());
        assert_eq!((s.nfsd_threads, s.dhcp_lease_max, s.tftp_max, s.http_connections), (8, 1000, 102, 512));
    }

    #[test]
    fn a_range_as_wide_as_a_slash_8_keeps_the_file_limits_startable() {
        let text = "network 10.0.0.0/8\nrange 10.0.0.2 10.255.255.254\nmaster m\nnode m 52:54:00:00:00:01 10.0.0.1\n";
        let s = Sizing::of(&Inventory::parse(text).unwrap());
        assert_eq!(s.dhcp_lease_max, 16_777_213);
        assert_eq!((s.tftp_max, s.dnsmasq_nofile), (65_536, Some(131_136)));
        assert_eq!((s.http_connections, s.http_fds), (131_136, 262_336));
        assert!(s.http_fds < 1_048_576 && s.dnsmasq_nofile < Some(1_048_576), "the kernel's nr_open");
    }

    #[test]
    fn nfsd_threads_one_per_client_within_bounds() {
        let cases = [(0, 8), (1, 8), (8, 8), (9, 9), (255, 255), (256, 256), (5180, 256), (10_000, 497)];
        for (clients, threads) in cases {
            assert_eq!(Sizing::nfsd_threads(clients), threads, "{clients} clients");
        }
        assert_eq!(Sizing::nfsd_threads(u64::MAX), NFSD_THREADS_MAX);
        assert!((u64::from(Sizing::nfsd_threads(10_000)) + 3) * 20 >= 10_000);
    }

    #[test]
    fn the_inventory_s_thread_count_wins() {
        let s = Sizing::of(&cluster(2000, "nfsd-threads 32\n"));
        assert_eq!((s.nfsd_threads, s.nfsd_threads_set, s.nfsd_connections()), (32, true, 700));
        assert!(!Sizing::of(&cluster(2, "")).nfsd_threads_set);
        // Only the threads: the other limits follow the machines still.
        assert_eq!(s.tftp_max, 2000);
    }

    #[test]
    fn readme_s_sizing_table_names_every_setting() {
        let readme = include_str!("../../../README.md");
        let start = readme.find("**Sizing.**").expect("README has its Sizing paragraph");
        let end = readme[start..].find("\n**ZFS.**").map_or(readme.len(), |e| start + e);
        let sizing = &readme[start..end];
        for setting in [
            "`[nfsd] threads=`",
            "`dhcp-lease-max`",
            "`tftp-max`",
            "`LimitNOFILE`",
            "`server.max-connections`",
            "`server.max-fds`",
            "`nfsd-threads N`",
            "`PROCESSES`",
        ] {
            assert!(sizing.contains(setting), "README's Sizing does not name {setting}");
        }
    }
}
