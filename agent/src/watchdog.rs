//! The boot's backstop: a thread that ends the agent when a step outlives its deadline.
//!
//! Every step bounds its own waits and, when one runs out, says what it waited for. One wait
//! cannot be bounded from inside: a read from a hard NFS mount whose server stopped answering
//! after the mount (nfsd stopped mid-boot, the master's power cut) returns only when the
//! server is back. So each step is armed here with its deadline; if it is still running
//! [`GRACE`] after it, the watchdog logs one line naming the step and where it waits, and
//! ends the process with the step's exit code. The stuck thread goes with it: NFS waits
//! are killable, and `exit_group` kills it. The hook then opens the emergency shell, as for
//! any other failure.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long after its own deadline a step may still run: its own deadline checks come first,
/// with the better message, and a step that only finishes its last short piece (a file copy,
/// a mount) after its deadline is not cut off.
pub const GRACE: Duration = Duration::from_secs(15);

/// What the watchdog watches: the running step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Armed {
    /// When the step must be done, [`GRACE`] included.
    pub until: Instant,
    /// The step and what it waits on: `node_files (from 172.23.199.225)`.
    pub what: String,
    /// The exit code it ends the agent with.
    pub code: u8,
    /// The deadline the step had, in seconds, for the message.
    pub secs: u64,
}

impl Armed {
    /// The one line the agent's log gets when the step is cut off.
    pub fn message(&self) -> String {
        format!(
            "{} was still waiting {} s after its deadline of {} s: a server stopped answering in the middle of the \
             boot (a read from an NFS mount waits until the server is back); check that server and its nfsd, \
             then reboot this node",
            self.what,
            GRACE.as_secs(),
            self.secs
        )
    }
}

type Slot = Arc<(Mutex<Option<Armed>>, Condvar)>;

/// The handle the executor arms and disarms; the thread lives until the process ends.
pub struct Watchdog {
    slot: Slot,
}

impl Watchdog {
    /// Starts the thread; `fire` gets what was armed when it is overdue (in the agent: log the
    /// message, then end the process). It is called at most once.
    pub fn start(fire: impl FnOnce(Armed) + Send + 'static) -> Watchdog {
        let slot: Slot = Arc::new((Mutex::new(None), Condvar::new()));
        let theirs = Arc::clone(&slot);
        std::thread::spawn(move || {
            if let Some(overdue) = watch(&theirs) {
                fire(overdue);
            }
        });
        Watchdog { slot }
    }

    /// Watches the step `what` until `deadline` (+ [`GRACE`]).
    pub fn arm(&self, deadline: Instant, secs: u64, what: String, code: u8) {
        self.set(Some(Armed { until: deadline + GRACE, what, code, secs }));
    }

    /// Nothing runs that could hang (the boot is done).
    pub fn disarm(&self) {
        self.set(None);
    }

    fn set(&self, armed: Option<Armed>) {
        let (lock, wake) = &*self.slot;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) = armed;
        wake.notify_one();
    }
}

/// Waits until what is armed is overdue, and returns it; re-reads the slot whenever it is
/// armed or disarmed. Returns None only if every handle is gone.
fn watch(slot: &Slot) -> Option<Armed> {
    let (lock, wake) = &**slot;
    let mut armed = lock.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        let wait = match &*armed {
            Some(a) if Instant::now() >= a.until => return Some(a.clone()),
            Some(a) => a.until.saturating_duration_since(Instant::now()),
            None if Arc::strong_count(slot) == 1 => return None,
            None => Duration::from_secs(1),
        };
        armed = wake.wait_timeout(armed, wait).unwrap_or_else(PoisonError::into_inner).0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn started() -> (Watchdog, mpsc::Receiver<Armed>) {
        let (tx, rx) = mpsc::channel();
        (
            Watchdog::start(move |a| {
                let _ = tx.send(a);
            }),
            rx,
        )
    }

    #[test]
    fn an_overdue_step_is_named_with_its_code() {
        let (dog, fired) = started();
        let past = Instant::now().checked_sub(GRACE + Duration::from_millis(10)).expect("a monotonic clock this old");
        dog.arm(past, 40, "node_files (from 172.23.199.225)".into(), 4);
        let got = fired.recv_timeout(Duration::from_secs(5)).expect("the watchdog fires");
        assert_eq!((got.code, got.secs), (4, 40));
        let line = got.message();
        assert!(line.starts_with("node_files (from 172.23.199.225) was still waiting 15 s after its deadline of 40 s"));
        assert!(line.contains("check that server") && !line.contains('\n'), "{line}");
    }

    #[test]
    fn a_step_done_in_time_or_disarmed_is_left_alone() {
        let (dog, fired) = started();
        dog.arm(Instant::now() + Duration::from_secs(60), 60, "lower".into(), 4);
        assert!(fired.recv_timeout(Duration::from_millis(300)).is_err());
        dog.disarm();
        assert!(fired.recv_timeout(Duration::from_millis(300)).is_err());
        drop(dog);
    }
}
