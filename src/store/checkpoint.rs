//! When to fold the write-ahead log into the database file.
//!
//! A checkpoint holds each table's lock while it writes that table, so a commit to `reports`
//! waits for the whole checkpoint of `reports`: about 1.4 s for 256 MiB of log (some 450,000
//! reports) on the reference machine, about 0.1 s for 16 MiB. Checkpoints therefore run while
//! the writer is idle, as soon as the log has grown past a small size, and are forced during
//! a stream of writes only once the log has grown large, which bounds the log (and the replay
//! at the next start) without pausing a burst of reports midway.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use duckdb::Connection;

/// How long the writer must have been idle before an idle checkpoint starts: a pause in the
/// stream of writes rather than the gap between two batches.
pub const QUIET: Duration = Duration::from_millis(100);

/// How often the log's size is looked at.
const POLL: Duration = Duration::from_millis(50);

/// The writer's activity, as the checkpointer sees it.
#[derive(Debug)]
pub struct WriterActivity {
    epoch: Instant,
    busy: AtomicBool,
    last_done_ms: AtomicU64,
}

impl Default for WriterActivity {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            busy: AtomicBool::new(false),
            last_done_ms: AtomicU64::new(0),
        }
    }
}

impl WriterActivity {
    /// The writer took work from its queue.
    pub fn started(&self) {
        self.busy.store(true, Ordering::Release);
    }

    /// The writer answered everything it took and waits for more.
    pub fn finished(&self) {
        let now = self.epoch.elapsed().as_millis() as u64;
        self.last_done_ms.store(now, Ordering::Release);
        self.busy.store(false, Ordering::Release);
    }

    /// How long the writer has been waiting for work; `None` while it works.
    pub fn idle_for(&self) -> Option<Duration> {
        if self.busy.load(Ordering::Acquire) {
            return None;
        }
        let done = self.last_done_ms.load(Ordering::Acquire);
        let now = self.epoch.elapsed().as_millis() as u64;
        Some(Duration::from_millis(now.saturating_sub(done)))
    }
}

/// The sizes of log at which to checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointPolicy {
    /// Checkpoint once the writer is idle and the log has reached this size.
    pub idle_bytes: u64,
    /// Checkpoint at this size even while writes are flowing.
    pub forced_bytes: u64,
}

/// Why a checkpoint is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// The writer is idle and the log past the idle size.
    Idle,
    /// The log reached the forced size.
    Forced,
}

impl Due {
    /// A name for logs.
    pub fn name(self) -> &'static str {
        match self {
            Due::Idle => "idle",
            Due::Forced => "forced",
        }
    }
}

impl CheckpointPolicy {
    /// Whether a log of `wal_bytes` should be folded now, given how long the writer has been
    /// idle (`None`: it is working).
    pub fn due(&self, wal_bytes: u64, idle_for: Option<Duration>) -> Option<Due> {
        if wal_bytes == 0 {
            return None;
        }
        if wal_bytes >= self.forced_bytes {
            return Some(Due::Forced);
        }
        match idle_for {
            Some(idle) if idle >= QUIET && wal_bytes >= self.idle_bytes => Some(Due::Idle),
            _ => None,
        }
    }
}

/// Checkpoints `conn`'s database whenever `policy` says so, until `stop` is set.
pub fn run(
    conn: &Connection,
    wal: &Path,
    policy: CheckpointPolicy,
    activity: &WriterActivity,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(POLL);
        let size = std::fs::metadata(wal).map_or(0, |m| m.len());
        let Some(due) = policy.due(size, activity.idle_for()) else {
            continue;
        };
        let started = Instant::now();
        match conn.execute_batch("CHECKPOINT") {
            Ok(()) => {
                let took = started.elapsed();
                metrics::histogram!("gridscope_store_checkpoint_seconds", "due" => due.name())
                    .record(took.as_secs_f64());
                tracing::debug!(
                    wal_bytes = size,
                    due = due.name(),
                    ms = took.as_millis() as u64,
                    "checkpoint"
                );
            }
            Err(e) => tracing::warn!(error = %e, "checkpoint failed; will retry"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: CheckpointPolicy = CheckpointPolicy {
        idle_bytes: 16 << 20,
        forced_bytes: 256 << 20,
    };

    #[test]
    fn a_busy_writer_is_left_alone_until_the_log_is_large() {
        assert_eq!(POLICY.due(200 << 20, None), None);
        assert_eq!(POLICY.due(256 << 20, None), Some(Due::Forced));
    }

    #[test]
    fn an_idle_writer_gets_a_checkpoint_once_the_log_passed_the_idle_size() {
        let idle = Some(Duration::from_secs(1));
        assert_eq!(POLICY.due(1 << 20, idle), None);
        assert_eq!(POLICY.due(16 << 20, idle), Some(Due::Idle));
        assert_eq!(POLICY.due(0, idle), None);
    }

    #[test]
    fn a_gap_between_batches_is_not_idleness() {
        assert_eq!(POLICY.due(100 << 20, Some(Duration::from_millis(5))), None);
        assert_eq!(POLICY.due(100 << 20, Some(QUIET)), Some(Due::Idle));
    }

    #[test]
    fn activity_reads_busy_while_working_and_idle_after() {
        let a = WriterActivity::default();
        a.started();
        assert_eq!(a.idle_for(), None);
        a.finished();
        assert!(a.idle_for().is_some_and(|d| d < Duration::from_secs(5)));
    }
}
