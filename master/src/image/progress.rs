//! Progress of crctl's long work (a tree copy, mksquashfs, a hash) on a terminal: indicatif
//! spinners and bars on stderr when it is one, nothing otherwise, so what a script or a test
//! reads stays the lines crctl prints on stdout.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a spinner turns while nothing else redraws it.
const TICK: Duration = Duration::from_millis(120);

/// `bytes` as `210.4 MiB` (one decimal), as `image list` and the summary lines show sizes.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1_048_576.0)
}

/// `bytes` over `took` as `17.1 MiB/s` (`-` for no time at all).
pub fn rate(bytes: u64, took: Duration) -> String {
    let secs = took.as_secs_f64();
    if secs <= 0.0 {
        return "- MiB/s".into();
    }
    format!("{:.1} MiB/s", bytes as f64 / 1_048_576.0 / secs)
}

/// A bar drawn on stderr when it is a terminal, else one that draws nothing.
fn new(len: Option<u64>, template: &str) -> ProgressBar {
    let target =
        if std::io::stderr().is_terminal() { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
    let bar = ProgressBar::with_draw_target(len, target);
    // The templates are constants of this module: one that did not parse would draw the default.
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

/// A spinner for work of unknown size: `what` then the bytes so far (its position), the
/// message, the time taken.
pub fn spinner(what: String) -> ProgressBar {
    let bar = new(None, "{spinner} {prefix}: {binary_bytes} {msg} ({elapsed})");
    bar.set_prefix(what);
    if !bar.is_hidden() {
        // A thread of its own redraws it: none where nothing is drawn.
        bar.enable_steady_tick(TICK);
    }
    bar
}

/// A bar over `len` bytes: `what`, the bytes done of all, the rate.
pub fn bytes(what: String, len: u64) -> ProgressBar {
    let bar = new(Some(len), "{prefix}: [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec}");
    bar.set_prefix(what);
    bar
}

/// Leaves `line` where the bar was (on a terminal; nothing elsewhere).
pub fn finish(bar: &ProgressBar, line: String) {
    if let Ok(style) = ProgressStyle::with_template("{msg}") {
        bar.set_style(style);
    }
    bar.finish_with_message(line);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_rates() {
        assert_eq!(mib(0), "0.0 MiB");
        assert_eq!(mib(220_620_390), "210.4 MiB");
        assert_eq!(mib(1 << 40), "1048576.0 MiB");
        assert_eq!(rate(220_620_390, Duration::from_millis(12_300)), "17.1 MiB/s");
        assert_eq!(rate(5, Duration::ZERO), "- MiB/s");
    }

    #[test]
    fn nothing_is_drawn_off_a_terminal() {
        // The tests run with stderr on a pipe or a file, as scripts do.
        if !std::io::stderr().is_terminal() {
            assert!(spinner("x".into()).is_hidden());
            assert!(bytes("x".into(), 3).is_hidden());
        }
    }
}
