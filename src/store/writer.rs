//! The single writer: one thread owns the write connection, drains the queue of creates and
//! transitions in batches, commits each batch once (group commit) and only then answers every
//! request in it. A reply therefore means "durable"; a crash before the commit loses nothing
//! that was acknowledged, and a batch is all or nothing.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use duckdb::types::{TimeUnit, Value};
use duckdb::{Appender, Connection, OptionalExt, params};
use tokio::sync::{mpsc, oneshot};

use super::StoreError;
use super::checkpoint::WriterActivity;
use super::columns::{self, PreparedReports};
use super::record::{CITY_QUEUE, NewReport};
use crate::grid::code::GridCode;
use crate::report::lifecycle::{self, State};
use crate::report::{Action, DeadlineRules, IllegalTransition, ReportId, Status};

/// The outcome of one create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Created {
    /// The report's id.
    pub id: ReportId,
    /// The idempotency key matched an earlier report: nothing new was written.
    pub replayed: bool,
}

/// A lifecycle transition to apply.
#[derive(Debug, Clone)]
pub struct TransitionRequest {
    /// Which report.
    pub id: ReportId,
    /// What to do.
    pub action: Action,
    /// Who does it (recorded in the history).
    pub actor: String,
    /// Why, as given.
    pub reason: Option<String>,
    /// The grid-code prefix the actor may act in; `None` for the whole city.
    pub scope: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// The result of an applied transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionDone {
    /// Status before.
    pub from: Status,
    /// Status after.
    pub to: Status,
    /// Position of the new history entry.
    pub seq: i32,
}

/// Why a transition was not applied.
#[derive(Debug, thiserror::Error)]
pub enum TransitionError {
    /// No report with that id.
    #[error("no report with id {0}")]
    NotFound(ReportId),
    /// The report lies outside the actor's area.
    #[error("report {id} is the responsibility of {responsible}, outside scope {scope}")]
    OutOfScope {
        /// Report id.
        id: ReportId,
        /// Who is responsible.
        responsible: String,
        /// The actor's area.
        scope: String,
    },
    /// The lifecycle does not allow it.
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    /// An escalation from the top of the hierarchy.
    #[error("report {0} is already with the city operation centre")]
    AtTop(ReportId),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A request to the writer, with where to send the answer.
pub(crate) enum Command {
    Create {
        reports: Vec<NewReport>,
        reply: oneshot::Sender<Result<Vec<Created>, StoreError>>,
    },
    Transition {
        request: Box<TransitionRequest>,
        reply: oneshot::Sender<Result<TransitionDone, TransitionError>>,
    },
    Import {
        chunks: std::sync::mpsc::Receiver<ImportChunk>,
        reply: oneshot::Sender<Result<Vec<Created>, StoreError>>,
    },
}

/// A piece of a batch import, streamed to the writer while the rest is still being prepared.
pub enum ImportChunk {
    /// More reports.
    Reports(PreparedReports),
    /// The last chunk was sent: commit. A stream that ends without it is rolled back.
    Done,
}

/// What the writer remembers between batches.
struct WriterState {
    next_id: i64,
    /// (creator key id, idempotency key) → report, for every report created with a key.
    idempotency: HashMap<(String, String), ReportId>,
    rules: Arc<DeadlineRules>,
}

/// Micro-second timestamps, the resolution of DuckDB's TIMESTAMP.
pub(crate) fn ts(t: DateTime<Utc>) -> Value {
    Value::Timestamp(TimeUnit::Microsecond, t.timestamp_micros())
}

fn opt_ts(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, ts)
}

/// Runs the writer until every sender is dropped, then checkpoints.
pub(crate) fn run(
    conn: Connection,
    mut rx: mpsc::Receiver<Command>,
    rules: Arc<DeadlineRules>,
    max_batch: usize,
    activity: &WriterActivity,
) -> Result<(), StoreError> {
    let next_id: i64 = conn.query_row("SELECT coalesce(max(id), 0) + 1 FROM reports", [], |r| {
        r.get(0)
    })?;
    let mut idempotency = HashMap::new();
    {
        let mut stmt = conn.prepare(
            "SELECT created_by, idempotency_key, id FROM reports WHERE idempotency_key IS NOT NULL",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                (r.get::<_, String>(0)?, r.get::<_, String>(1)?),
                ReportId(r.get(2)?),
            ))
        })?;
        for row in rows {
            let (k, v) = row?;
            idempotency.insert(k, v);
        }
    }
    let mut state = WriterState {
        next_id,
        idempotency,
        rules,
    };
    columns::register_arrow_scan(&conn)?;
    let mut history = HistoryAppender::new(&conn)?;
    let mut batch = Vec::with_capacity(max_batch);
    while let Some(first) = rx.blocking_recv() {
        activity.started();
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(c) => batch.push(c),
                Err(_) => break,
            }
        }
        // Imports run alone, each in its own transaction, after the small commands.
        let (small, imports): (Vec<Command>, Vec<Command>) = std::mem::take(&mut batch)
            .into_iter()
            .partition(|c| !matches!(c, Command::Import { .. }));
        if !small.is_empty() {
            commit_batch(&conn, &mut history, &mut state, small);
        }
        for cmd in imports {
            if let Command::Import { chunks, reply } = cmd {
                let result = import(&conn, &mut state, &chunks);
                let _ = reply.send(result);
            }
        }
        if rx.is_empty() {
            activity.finished();
        }
    }
    drop(history);
    conn.execute_batch("CHECKPOINT")?;
    Ok(())
}

/// One command's outcome before the commit decides whether it stands.
enum Outcome {
    Created(Vec<Created>),
    Transition(Result<TransitionDone, TransitionError>),
}

/// Applies a batch in one transaction and answers everyone. If the database fails part-way,
/// the batch is rolled back and each command is retried alone, so one bad command cannot sink
/// its neighbours.
fn commit_batch<'c>(
    conn: &'c Connection,
    history: &mut HistoryAppender<'c>,
    state: &mut WriterState,
    batch: Vec<Command>,
) {
    let saved_next = state.next_id;
    let mut new_keys = Vec::new();
    let applied = apply(conn, history, state, &batch, &mut new_keys);
    match applied {
        Ok(outcomes) => {
            for (k, id) in new_keys {
                state.idempotency.insert(k, id);
            }
            reply_all(batch, outcomes);
        }
        Err(e) => {
            state.next_id = saved_next;
            let _ = conn.execute_batch("ROLLBACK");
            // A failed flush invalidates an appender; start afresh.
            match HistoryAppender::new(conn) {
                Ok(fresh) => *history = fresh,
                Err(e) => tracing::error!(error = %e, "re-creating the history appender"),
            }
            if batch.len() == 1 {
                fail_all(batch, &e);
            } else {
                tracing::warn!(error = %e, size = batch.len(), "batch failed; retrying one by one");
                for cmd in batch {
                    commit_batch(conn, history, state, vec![cmd]);
                }
            }
        }
    }
}

fn reply_all(batch: Vec<Command>, outcomes: Vec<Outcome>) {
    for (cmd, outcome) in batch.into_iter().zip(outcomes) {
        match (cmd, outcome) {
            (Command::Create { reply, .. }, Outcome::Created(c)) => {
                let _ = reply.send(Ok(c));
            }
            (Command::Transition { reply, .. }, Outcome::Transition(t)) => {
                let _ = reply.send(t);
            }
            // `apply` produces outcomes in command order and kind; nothing else can happen.
            (Command::Create { reply, .. }, Outcome::Transition(_)) => {
                let _ = reply.send(Err(StoreError::Internal("outcome mismatch".into())));
            }
            (Command::Transition { reply, .. }, Outcome::Created(_)) => {
                let _ = reply.send(Err(StoreError::Internal("outcome mismatch".into()).into()));
            }
            (Command::Import { reply, .. }, _) => {
                let _ = reply.send(Err(StoreError::Internal("import in a batch".into())));
            }
        }
    }
}

fn fail_all(batch: Vec<Command>, e: &duckdb::Error) {
    for cmd in batch {
        let err = StoreError::Write(e.to_string());
        match cmd {
            Command::Create { reply, .. } => {
                let _ = reply.send(Err(err));
            }
            Command::Transition { reply, .. } => {
                let _ = reply.send(Err(err.into()));
            }
            Command::Import { reply, .. } => {
                let _ = reply.send(Err(err));
            }
        }
    }
}

/// The appender of history rows, kept open for the writer's life: creating one per batch
/// costs more than appending a batch's few transitions.
struct HistoryAppender<'c>(Appender<'c>);

impl<'c> HistoryAppender<'c> {
    fn new(conn: &'c Connection) -> Result<Self, duckdb::Error> {
        Ok(HistoryAppender(conn.appender("report_history")?))
    }
}

fn apply(
    conn: &Connection,
    history: &mut HistoryAppender<'_>,
    state: &mut WriterState,
    batch: &[Command],
    new_keys: &mut Vec<((String, String), ReportId)>,
) -> Result<Vec<Outcome>, duckdb::Error> {
    let started = std::time::Instant::now();
    conn.execute_batch("BEGIN TRANSACTION")?;
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut fresh: Vec<(ReportId, &NewReport)> = Vec::new();
    {
        let history = &mut history.0;
        let mut batch_keys: HashMap<(String, String), ReportId> = HashMap::new();
        for cmd in batch {
            match cmd {
                Command::Create { reports: new, .. } => {
                    let created = new
                        .iter()
                        .map(|r| {
                            let c = admit(state, &mut batch_keys, new_keys, r.idempotency_scope());
                            if !c.replayed {
                                fresh.push((c.id, r));
                            }
                            c
                        })
                        .collect();
                    outcomes.push(Outcome::Created(created));
                }
                Command::Import { .. } => {}
                Command::Transition { request, .. } => {
                    let result = transition(conn, history, &state.rules, request);
                    match result {
                        Err(TransitionError::Store(StoreError::Db(e))) => return Err(e),
                        other => outcomes.push(Outcome::Transition(other)),
                    }
                }
            }
        }
        history.flush()?;
    }
    append_new(conn, &fresh)?;
    let appended = started.elapsed();
    conn.execute_batch("COMMIT")?;
    let committed = started.elapsed() - appended;
    metrics::histogram!("gridscope_store_commit_seconds").record(committed.as_secs_f64());
    metrics::histogram!("gridscope_store_group_commit_seconds")
        .record(started.elapsed().as_secs_f64());
    tracing::debug!(
        commands = batch.len(),
        reports = fresh.len(),
        apply_ms = appended.as_secs_f64() * 1e3,
        commit_ms = committed.as_secs_f64() * 1e3,
        "group commit"
    );
    Ok(outcomes)
}

/// Gives a new report its id, or finds the report an earlier request with the same
/// idempotency key (creator, key) created (in the store or earlier in this transaction).
fn admit(
    state: &mut WriterState,
    batch_keys: &mut HashMap<(String, String), ReportId>,
    new_keys: &mut Vec<((String, String), ReportId)>,
    key: Option<(String, String)>,
) -> Created {
    if let Some(k) = &key
        && let Some(&id) = state.idempotency.get(k).or_else(|| batch_keys.get(k))
    {
        return Created { id, replayed: true };
    }
    let id = ReportId(state.next_id);
    state.next_id += 1;
    if let Some(k) = key {
        batch_keys.insert(k.clone(), id);
        new_keys.push((k, id));
    }
    Created {
        id,
        replayed: false,
    }
}

/// Inserts new reports as one Arrow batch. The creation is the report row itself (history
/// entry 0 is read from it), so a create writes one table.
fn append_new(conn: &Connection, fresh: &[(ReportId, &NewReport)]) -> Result<(), duckdb::Error> {
    if fresh.is_empty() {
        return Ok(());
    }
    columns::insert_reports(
        conn,
        columns::reports_batch(fresh, Utc::now()).map_err(arrow_error)?,
    )
}

fn arrow_error(e: duckdb::arrow::error::ArrowError) -> duckdb::Error {
    duckdb::Error::ToSqlConversionFailure(Box::new(e))
}

/// A batch import: appends chunks as they arrive, all in one transaction, and commits when
/// the stream says it is complete, so preparing the next chunk overlaps storing this one.
fn import(
    conn: &Connection,
    state: &mut WriterState,
    chunks: &std::sync::mpsc::Receiver<ImportChunk>,
) -> Result<Vec<Created>, StoreError> {
    let saved_next = state.next_id;
    let mut new_keys = Vec::new();
    let mut batch_keys = HashMap::new();
    let mut created = Vec::new();
    let started = std::time::Instant::now();
    // Time spent waiting for the next chunk, and the commit: where an import's time goes.
    let mut waited = std::time::Duration::ZERO;
    let mut committing = std::time::Duration::ZERO;
    let mut stream = || -> Result<bool, duckdb::Error> {
        conn.execute_batch("BEGIN TRANSACTION")?;
        loop {
            let asked = std::time::Instant::now();
            let chunk = chunks.recv();
            waited += asked.elapsed();
            match chunk {
                Ok(ImportChunk::Reports(prepared)) => {
                    let mut keep = Vec::with_capacity(prepared.keys().len());
                    let mut ids = Vec::with_capacity(prepared.keys().len());
                    for key in prepared.keys() {
                        let c = admit(state, &mut batch_keys, &mut new_keys, key.clone());
                        keep.push(!c.replayed);
                        if !c.replayed {
                            ids.push(c.id);
                        }
                        created.push(c);
                    }
                    if !ids.is_empty() {
                        let rows = prepared.numbered(&keep, &ids).map_err(arrow_error)?;
                        columns::insert_reports(conn, rows)?;
                    }
                }
                Ok(ImportChunk::Done) => {
                    let commit = std::time::Instant::now();
                    conn.execute_batch("COMMIT")?;
                    committing = commit.elapsed();
                    return Ok(true);
                }
                Err(_) => return Ok(false),
            }
        }
    };
    let outcome = stream();
    if let Ok(true) = outcome {
        state.idempotency.extend(new_keys);
        tracing::debug!(
            reports = created.len(),
            ms = started.elapsed().as_millis() as u64,
            waited_ms = waited.as_millis() as u64,
            commit_ms = committing.as_millis() as u64,
            "import committed"
        );
        return Ok(created);
    }
    state.next_id = saved_next;
    let _ = conn.execute_batch("ROLLBACK");
    Err(match outcome {
        Err(e) => StoreError::Write(e.to_string()),
        Ok(_) => StoreError::Write("the import was abandoned before its end".into()),
    })
}

/// The mutable part of a report row, read, changed and written back by a transition.
struct Row {
    status: Status,
    responsible: String,
    grid_l3: Option<String>,
    deadline: DateTime<Utc>,
    accepted_at: Option<DateTime<Utc>>,
    dispatched_at: Option<DateTime<Utc>>,
    handled_at: Option<DateTime<Utc>>,
    closed_at: Option<DateTime<Utc>>,
    rating: Option<String>,
    rework: i32,
    extensions: i32,
    escalations: i32,
    send_backs: i32,
    history_len: i32,
}

fn read_row(conn: &Connection, id: ReportId) -> Result<Option<Row>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT status, responsible, grid_l3, deadline, accepted_at, dispatched_at, handled_at, \
         closed_at, rating, rework_count, extension_count, escalation_count, send_back_count, \
         history_len FROM reports WHERE id = ?",
    )?;
    let row = stmt
        .query_row([id.0], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Row {
                    status: Status::Reported,
                    responsible: r.get(1)?,
                    grid_l3: r.get(2)?,
                    deadline: r.get(3)?,
                    accepted_at: r.get(4)?,
                    dispatched_at: r.get(5)?,
                    handled_at: r.get(6)?,
                    closed_at: r.get(7)?,
                    rating: r.get(8)?,
                    rework: r.get(9)?,
                    extensions: r.get(10)?,
                    escalations: r.get(11)?,
                    send_backs: r.get(12)?,
                    history_len: r.get(13)?,
                },
            ))
        })
        .optional()?;
    match row {
        None => Ok(None),
        Some((status, mut row)) => {
            row.status = status
                .parse()
                .map_err(|e| StoreError::Internal(format!("report {id}: {e}")))?;
            Ok(Some(row))
        }
    }
}

/// The unit one level up from `code`: a grid's parent, a district's city queue.
fn escalation_target(code: &str) -> Option<String> {
    if code == CITY_QUEUE {
        return None;
    }
    match GridCode::parse(code).ok().and_then(|c| c.parent()) {
        Some(parent) => Some(parent.as_str().to_string()),
        None => Some(CITY_QUEUE.to_string()),
    }
}

fn transition(
    conn: &Connection,
    history: &mut Appender<'_>,
    rules: &DeadlineRules,
    req: &TransitionRequest,
) -> Result<TransitionDone, TransitionError> {
    let mut row = read_row(conn, req.id)?.ok_or(TransitionError::NotFound(req.id))?;
    if let Some(scope) = &req.scope {
        let inside = |c: &str| c.starts_with(scope.as_str());
        if !inside(&row.responsible) && !row.grid_l3.as_deref().is_some_and(inside) {
            return Err(TransitionError::OutOfScope {
                id: req.id,
                responsible: row.responsible,
                scope: scope.clone(),
            });
        }
    }
    let from = row.status;
    let to = lifecycle::next_status(
        State {
            status: from,
            rated: row.rating.is_some(),
        },
        &req.action,
    )?;
    let at = req.at;
    let mut detail = serde_json::Map::new();
    match &req.action {
        Action::Accept => row.accepted_at = Some(at),
        Action::Reject => {}
        Action::Dispatch { grid } => {
            if let Some(g) = grid {
                row.responsible = g.as_str().to_string();
            }
            row.dispatched_at = Some(at);
            detail.insert("grid".into(), row.responsible.clone().into());
        }
        Action::Handle => row.handled_at = Some(at),
        Action::Check { pass } => {
            if *pass {
                row.closed_at = Some(at);
            } else {
                row.rework += 1;
            }
            detail.insert("pass".into(), (*pass).into());
        }
        Action::Extend { hours } => {
            let old = row.deadline;
            row.deadline = rules
                .calendar()
                .add_working_minutes(old, i64::from(*hours) * 60);
            row.extensions += 1;
            detail.insert("hours".into(), (*hours).into());
            detail.insert("deadline".into(), row.deadline.to_rfc3339().into());
        }
        Action::SendBack => row.send_backs += 1,
        Action::Escalate => {
            let up = escalation_target(&row.responsible).ok_or(TransitionError::AtTop(req.id))?;
            detail.insert("from".into(), row.responsible.clone().into());
            detail.insert("to".into(), up.clone().into());
            row.responsible = up;
            row.escalations += 1;
            row.dispatched_at = Some(at);
        }
        Action::Rate { rating } => {
            row.rating = Some(rating.name().to_string());
            detail.insert("rating".into(), rating.name().into());
        }
    }
    let seq = row.history_len;
    conn.prepare_cached(
        "UPDATE reports SET status = ?, responsible = ?, deadline = ?, accepted_at = ?, \
         dispatched_at = ?, handled_at = ?, closed_at = ?, rating = ?, rework_count = ?, \
         extension_count = ?, escalation_count = ?, send_back_count = ?, history_len = ?, \
         updated_at = ? WHERE id = ?",
    )
    .map_err(StoreError::from)?
    .execute(params![
        to.name(),
        row.responsible,
        ts(row.deadline),
        opt_ts(row.accepted_at),
        opt_ts(row.dispatched_at),
        opt_ts(row.handled_at),
        opt_ts(row.closed_at),
        row.rating,
        row.rework,
        row.extensions,
        row.escalations,
        row.send_backs,
        seq + 1,
        ts(at),
        req.id.0,
    ])
    .map_err(StoreError::from)?;
    let detail = (!detail.is_empty()).then(|| serde_json::Value::Object(detail).to_string());
    history
        .append_row(params![
            req.id.0,
            seq,
            ts(at),
            req.action.kind().name(),
            req.actor,
            from.name(),
            to.name(),
            req.reason,
            detail,
        ])
        .map_err(StoreError::from)?;
    Ok(TransitionDone { from, to, seq })
}
