//! Fuzz target: a packet from the network, as the DHCP client reads it (IPv4/UDP, then DHCP).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(payload) = clusterroot::net::dhcp::unframe(data) {
        let _ = clusterroot::net::dhcp::parse_reply(payload);
    }
    if let Some(reply) = clusterroot::net::dhcp::parse_reply(data) {
        let _ = reply.lease.render();
        let _ = reply.lease.resolv_conf();
    }
});
