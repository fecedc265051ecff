//! Fuzz target: the kernel command line, parsed and planned as the agent does at boot.
#![no_main]

use clusterroot::cmdline::BootConfig;
use clusterroot::plan::{Action, Plan};
use libfuzzer_sys::fuzz_target;

// Raw bytes, as `/proc/cmdline` holds them: bytes that are not UTF-8 are the parser's to judge.
fuzz_target!(|data: &[u8]| {
    if let Ok(cfg) = BootConfig::parse_bytes(data) {
        for action in [Action::Mount, Action::Overlay] {
            if let Ok(plan) = Plan::new(&cfg, action, "/sysroot") {
                let _ = plan.to_string();
            }
        }
    }
});
