//! The ARP probe on a real packet socket: a veth pair in a network namespace of its own, whose
//! far end holds an address as another host would (its kernel answers the probe). Needs root;
//! skipped, with the reason printed, when the kernel refuses.

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use clusterroot::kmsg::Log;
use clusterroot::mac::MacAddress;
use clusterroot::net::arp::{self, ArpError};
use clusterroot::net::Nic;

mod common;

const OURS: &str = "52:54:00:77:00:11";
const THEIRS: &str = "52:54:00:aa:bb:cc";

fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("skip: running ip: {e}"))?;
    if !out.status.success() {
        return Err(format!("skip: ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// In a thread with a network namespace of its own: `cr-ours` (our NIC, no address) and its
/// peer `cr-theirs`, which holds 10.77.0.11/24.
fn with_veth(f: impl FnOnce(Nic) -> Result<(), String> + Send + 'static) {
    common::in_thread_namespaces(rustix::thread::UnshareFlags::NEWNET, "the ARP test", move || {
        ip(&[
            "link",
            "add",
            "cr-ours",
            "address",
            OURS,
            "type",
            "veth",
            "peer",
            "name",
            "cr-theirs",
            "address",
            THEIRS,
        ])?;
        ip(&["addr", "add", "10.77.0.11/24", "dev", "cr-theirs"])?;
        ip(&["link", "set", "cr-theirs", "up"])?;
        ip(&["link", "set", "cr-ours", "up"])?;
        let line = ip(&["-o", "link", "show", "dev", "cr-ours"])?;
        let ifindex =
            line.split(':').next().and_then(|i| i.trim().parse().ok()).ok_or(format!("no ifindex in {line}"))?;
        // sysfs shows the host's namespace here, so the link is awaited through `ip`.
        let until = Instant::now() + Duration::from_secs(5);
        while !ip(&["-o", "link", "show", "dev", "cr-ours"])?.contains("LOWER_UP") {
            if Instant::now() > until {
                return Err("cr-ours has no carrier after 5 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        f(Nic { name: "cr-ours".into(), mac: OURS.parse().unwrap(), ifindex })
    })
}

#[test]
#[ignore = "needs root for a network namespace and a packet socket; as root: cargo test -- --include-ignored (scripts/test does)"]
fn a_taken_address_names_the_other_host_and_a_free_one_passes() {
    with_veth(|nic| {
        let log = Log::stderr();
        let deadline = Instant::now() + Duration::from_secs(10);
        let t = Instant::now();
        let taken = arp::probe(&nic, Ipv4Addr::new(10, 77, 0, 11), "ip=", "fix it", deadline, &log);
        let took = t.elapsed();
        match taken {
            Err(ArpError::Taken { address, by, ref iface, .. }) => {
                assert_eq!(address, Ipv4Addr::new(10, 77, 0, 11));
                assert_eq!(by, THEIRS.parse::<MacAddress>().unwrap());
                assert_eq!(iface, "cr-ours");
            }
            other => return Err(format!("expected the address to be taken, got {other:?}")),
        }
        assert!(took < Duration::from_millis(600), "the answer to the first probe ends it: {took:?}");
        let t = Instant::now();
        arp::probe(&nic, Ipv4Addr::new(10, 77, 0, 12), "ip=", "fix it", deadline, &log)
            .map_err(|e| format!("a free address: {e}"))?;
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(600) && took < Duration::from_millis(900), "the whole probe: {took:?}");
        Ok(())
    });
}
