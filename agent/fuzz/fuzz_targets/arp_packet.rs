//! Fuzz target: an ARP packet from the network, as the address conflict probe reads it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let probe = clusterroot::net::arp::Probe::new(
        clusterroot::mac::MacAddress([0x52, 0x54, 0, 0x77, 0, 0x11]),
        std::net::Ipv4Addr::new(10, 77, 0, 11),
        std::time::Instant::now(),
    );
    let _ = probe.conflict(data);
});
