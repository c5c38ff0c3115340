//! Storage in an embedded DuckDB file: reports, their append-only history and API keys.
//!
//! One writer thread owns the write connection and commits in batches (see [`writer`]); reads
//! use a pool of other connections and see committed data only, so they never block ingest.

pub mod bulk;
pub mod checkpoint;
pub mod columns;
pub mod events;
pub mod keys;
pub mod query;
pub mod record;
pub mod schema;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use duckdb::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::report::DeadlineRules;
use events::{CreatedReport, EventHub, ReportEvent};
use record::NewReport;
use writer::{Command, Created, ImportChunk, TransitionDone, TransitionError, TransitionRequest};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// DuckDB reported an error.
    #[error("database: {0}")]
    Db(#[from] duckdb::Error),
    /// A batch could not be committed; nothing in it was written.
    #[error("write failed, nothing was stored: {0}")]
    Write(String),
    /// A migration failed.
    #[error("migration to schema version {version} failed: {source}")]
    Migration {
        /// The version being applied.
        version: usize,
        /// Why.
        source: duckdb::Error,
    },
    /// The file was written by a newer gridscope.
    #[error("database schema version {found} is newer than this build supports ({supported})")]
    TooNew {
        /// Version in the file.
        found: usize,
        /// Highest version this build knows.
        supported: usize,
    },
    /// The store is shutting down.
    #[error("the store is shutting down")]
    Closed,
    /// An invariant of the store did not hold.
    #[error("store: {0}")]
    Internal(String),
    /// An export file could not be written.
    #[error("export: {0}")]
    Export(#[from] crate::export::ExportError),
}

/// Settings of the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Most commands in one group commit.
    pub max_batch: usize,
    /// Depth of the writer's queue; further writers wait (back-pressure).
    pub queue: usize,
    /// Checkpoint at this size of write-ahead log even while writes are flowing.
    pub checkpoint_wal_bytes: u64,
    /// Checkpoint at this size of write-ahead log as soon as the writer is idle.
    pub checkpoint_idle_wal_bytes: u64,
    /// Threads DuckDB may run one statement on (see `StoreSettings::query_threads`).
    pub query_threads: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_batch: 4096,
            queue: 65536,
            checkpoint_wal_bytes: 256 << 20,
            checkpoint_idle_wal_bytes: 16 << 20,
            query_threads: 1,
        }
    }
}

/// An open store. Cheap to share behind an `Arc`.
pub struct Store {
    path: PathBuf,
    tx: Mutex<Option<mpsc::Sender<Command>>>,
    writer: Mutex<Option<JoinHandle<Result<(), StoreError>>>>,
    stop: Arc<AtomicBool>,
    checkpointer: Mutex<Option<JoinHandle<()>>>,
    base: Mutex<Connection>,
    idle: Mutex<Vec<Connection>>,
    version: Arc<AtomicU64>,
    events: EventHub,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Store {
    /// Opens (or creates) the database at `path`, migrates it and starts the writer.
    pub fn open(
        path: &Path,
        rules: Arc<DeadlineRules>,
        opts: &StoreOptions,
    ) -> Result<Store, StoreError> {
        let conn = open_database(path)?;
        // Checkpoints run on their own thread when the writer is idle (see `checkpoint`)
        // instead of inside whichever commit crosses DuckDB's threshold; that threshold stays
        // as a backstop above the size at which the checkpointer forces one.
        let backstop_mb = (opts.checkpoint_wal_bytes >> 20).saturating_mul(2).max(64);
        conn.execute_batch(&format!("SET checkpoint_threshold = '{backstop_mb}MB'"))?;
        conn.execute_batch(&format!("SET threads = {}", opts.query_threads.max(1)))?;
        // A large import compresses each row group into the file as soon as it is full,
        // alongside the preparing of the next chunks, instead of five at a time (DuckDB's
        // default), which held the single writer up for a long stretch near an import's end.
        conn.execute_batch("SET write_buffer_row_group_count = 1")?;
        schema::migrate(&conn)?;
        let base = connect(&conn)?;
        let (tx, rx) = mpsc::channel(opts.queue.max(1));
        let max_batch = opts.max_batch.max(1);
        let activity = Arc::new(checkpoint::WriterActivity::default());
        let writer = {
            let activity = Arc::clone(&activity);
            std::thread::Builder::new()
                .name("gridscope-writer".into())
                .spawn(move || writer::run(conn, rx, rules, max_batch, &activity))
        }
        .map_err(|e| StoreError::Internal(format!("starting the writer: {e}")))?;
        let stop = Arc::new(AtomicBool::new(false));
        let checkpointer = {
            let conn = connect(&base)?;
            let wal = wal_path(path);
            let stop = Arc::clone(&stop);
            let policy = checkpoint::CheckpointPolicy {
                idle_bytes: opts.checkpoint_idle_wal_bytes,
                forced_bytes: opts.checkpoint_wal_bytes,
            };
            std::thread::Builder::new()
                .name("gridscope-checkpoint".into())
                .spawn(move || checkpoint::run(&conn, &wal, policy, &activity, &stop))
                .map_err(|e| StoreError::Internal(format!("starting the checkpointer: {e}")))?
        };
        Ok(Store {
            path: path.to_path_buf(),
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            stop,
            checkpointer: Mutex::new(Some(checkpointer)),
            base: Mutex::new(base),
            idle: Mutex::new(Vec::new()),
            version: Arc::new(AtomicU64::new(1)),
            events: EventHub::default(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A number that grows whenever committed reports change (a create, a transition, an
    /// import), so caches of anything derived from reports know when to recompute.
    pub fn data_version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Listens to reports being created and moved, from now on (see [`events`]).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<ReportEvent> {
        self.events.subscribe()
    }

    fn changed(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    fn sender(&self) -> Result<mpsc::Sender<Command>, StoreError> {
        lock(&self.tx).clone().ok_or(StoreError::Closed)
    }

    /// Writes new reports; returns once they are committed (durable).
    pub async fn create(&self, reports: Vec<NewReport>) -> Result<Vec<Created>, StoreError> {
        let announced: Vec<CreatedReport> = reports
            .iter()
            .map(|r| CreatedReport::of(crate::report::ReportId(0), r))
            .collect();
        let (reply, answer) = oneshot::channel();
        self.sender()?
            .send(Command::Create { reports, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        let created = answer.await.map_err(|_| StoreError::Closed)??;
        self.changed();
        for (outcome, mut event) in created.iter().zip(announced) {
            if !outcome.replayed {
                event.id = outcome.id;
                self.events.publish(ReportEvent::Created(Box::new(event)));
            }
        }
        Ok(created)
    }

    /// Applies a lifecycle transition; returns once it is committed.
    pub async fn transition(
        &self,
        request: TransitionRequest,
    ) -> Result<TransitionDone, TransitionError> {
        let (id, at) = (request.id, request.at);
        let (reply, answer) = oneshot::channel();
        self.sender()?
            .send(Command::Transition {
                request: Box::new(request),
                reply,
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        let done = answer.await.map_err(|_| StoreError::Closed)??;
        self.changed();
        self.events.publish(ReportEvent::Transitioned {
            id,
            from: done.from,
            to: done.to,
            at,
        });
        Ok(done)
    }

    /// Starts a batch import: send chunks of reports as they are ready, then
    /// [`Import::finish`]. The whole import is one transaction; dropping it unfinished rolls
    /// everything back.
    pub async fn begin_import(&self) -> Result<Import, StoreError> {
        let (chunks, rx) = std::sync::mpsc::sync_channel(2);
        let (reply, answer) = oneshot::channel();
        self.sender()?
            .send(Command::Import { chunks: rx, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        Ok(Import {
            chunks,
            answer,
            version: Arc::clone(&self.version),
        })
    }

    /// Runs a read on a pooled connection (blocking; call from a blocking context).
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = match lock(&self.idle).pop() {
            Some(c) => c,
            None => connect(&lock(&self.base))?,
        };
        let out = f(&conn);
        lock(&self.idle).push(conn);
        out
    }

    /// Runs a read on the blocking thread pool.
    pub async fn read_async<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = Arc::clone(self);
        tokio::task::spawn_blocking(move || store.read(f))
            .await
            .map_err(|e| StoreError::Internal(format!("read task: {e}")))?
    }

    /// Stops accepting writes, lets the writer finish its queue, checkpoints and waits.
    pub fn shutdown(&self) -> Result<(), StoreError> {
        lock(&self.tx).take();
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = lock(&self.checkpointer).take() {
            let _ = handle.join();
        }
        match lock(&self.writer).take() {
            Some(handle) => handle
                .join()
                .map_err(|_| StoreError::Internal("the writer panicked".into()))?,
            None => Ok(()),
        }
    }
}

/// A batch import in progress (see [`Store::begin_import`]).
pub struct Import {
    chunks: std::sync::mpsc::SyncSender<ImportChunk>,
    answer: oneshot::Receiver<Result<Vec<Created>, StoreError>>,
    version: Arc<AtomicU64>,
}

impl Import {
    /// A handle for sending chunks from another thread (blocking when the writer is behind).
    pub fn sender(&self) -> std::sync::mpsc::SyncSender<ImportChunk> {
        self.chunks.clone()
    }

    /// Commits the import; returns the outcome of every report, in order.
    pub async fn finish(self) -> Result<Vec<Created>, StoreError> {
        let Import {
            chunks,
            answer,
            version,
        } = self;
        // The send waits while the writer is still storing earlier chunks: off the async
        // workers, which go on serving other requests meanwhile.
        tokio::task::spawn_blocking(move || chunks.send(ImportChunk::Done))
            .await
            .map_err(|e| StoreError::Internal(format!("import task: {e}")))?
            .map_err(|_| StoreError::Closed)?;
        let created = answer.await.map_err(|_| StoreError::Closed)??;
        version.fetch_add(1, Ordering::AcqRel);
        Ok(created)
    }

    /// Rolls the import back and waits until the writer has done so.
    pub async fn abandon(self) {
        let Import { chunks, answer, .. } = self;
        drop(chunks);
        let _ = answer.await;
    }
}

/// Rows per row group of the store. A transaction that appends at least this many rows to a
/// table (a batch import of 16,384 reports or more) has its rows compressed straight into the
/// database file as it goes, and commits by reference, instead of copying every value into the
/// write-ahead log and again at the next checkpoint. Smaller groups than DuckDB's default
/// (122,880) also give time-range scans finer zone maps. A multiple of DuckDB's vector size.
const ROW_GROUP_ROWS: u32 = 16_384;

/// The name the database file is attached under.
const CATALOG: &str = "store";

/// Opens the database file with the store's storage options, as the default catalog of the
/// returned connection.
fn open_database(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_in_memory()?;
    let literal = path.to_string_lossy().replace('\'', "''");
    conn.execute_batch(&format!(
        "ATTACH '{literal}' AS {CATALOG} (ROW_GROUP_SIZE {ROW_GROUP_ROWS}); USE {CATALOG}"
    ))?;
    Ok(conn)
}

/// Another connection to the store's database (its default catalog set, as every statement of
/// the store names tables without one).
fn connect(conn: &Connection) -> Result<Connection, StoreError> {
    let other = conn.try_clone()?;
    other.execute_batch(&format!("USE {CATALOG}"))?;
    Ok(other)
}

/// DuckDB's write-ahead log beside a database file.
fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".wal");
    PathBuf::from(name)
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!(error = %e, "closing the store");
        }
    }
}
