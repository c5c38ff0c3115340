//! The threads that prepare batch imports (parse, validate, assign, build columns). They run
//! at a lower scheduling priority than the rest of the server, so that when the cores are all
//! busy, the single writer storing what they prepare comes first: an import's prepared chunks
//! pile up less ahead of it (leaving one core idle while it catches up at the end), and
//! reports created one at a time meanwhile are not slowed down by a large import.

use std::sync::OnceLock;

/// How much lower than the server's other threads (a `nice` increment, Linux only).
const IMPORT_NICE: i32 = 10;

/// Runs `work` on the import threads (or, should they fail to start, on rayon's shared pool).
pub fn run<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    match pool() {
        Some(pool) => pool.install(work),
        None => work(),
    }
}

fn pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("gridscope-import-{i}"))
            .start_handler(|_| lower_priority())
            .build()
            .map_err(|e| tracing::warn!(error = %e, "import threads: using the shared pool"))
            .ok()
    })
    .as_ref()
}

/// Lowers the calling thread's priority. On Linux the nice value belongs to a thread, and
/// `who` 0 names the calling one.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority takes plain integers and only changes the calling thread's
        // scheduling priority; a failure (reported by its return value) leaves it as it was.
        let failed = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, IMPORT_NICE) } != 0;
        if failed {
            tracing::debug!("import threads keep the default priority");
        }
    }
}
