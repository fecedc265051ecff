//! Fuzz target: the kernel command line, parsed and planned as the agent does at boot.
#![no_main]

use clusterroot::cmdline::BootConfig;
use clusterroot::plan::{Action, Plan};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(cfg) = BootConfig::parse(text) {
        for action in [Action::Mount, Action::Overlay] {
            if let Ok(plan) = Plan::new(&cfg, action, "/sysroot") {
                let _ = plan.to_string();
            }
        }
    }
});
