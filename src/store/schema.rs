//! The database schema as an ordered list of migrations. A database records the version it is
//! at; opening it applies whatever is newer, each migration in its own transaction.

use duckdb::Connection;

use super::StoreError;

/// Migrations in order; the version of a database is the number applied. Never edit a
/// published migration: add a new one.
const MIGRATIONS: &[&str] = &[
    // 1: reports, their append-only history of transitions (the creation is the report row),
    //    and API keys.
    r#"
    CREATE TABLE reports (
        id                BIGINT NOT NULL,
        reported_at       TIMESTAMP NOT NULL,
        created_at        TIMESTAMP NOT NULL,
        channel           VARCHAR NOT NULL,
        category          VARCHAR NOT NULL,
        description       VARCHAR NOT NULL,
        reporter_ref      VARCHAR,
        photos            VARCHAR NOT NULL,
        raw_lon           DOUBLE NOT NULL,
        raw_lat           DOUBLE NOT NULL,
        raw_crs           VARCHAR NOT NULL,
        lon               DOUBLE NOT NULL,
        lat               DOUBLE NOT NULL,
        h3_r6             UBIGINT NOT NULL,
        h3_r7             UBIGINT NOT NULL,
        h3_r8             UBIGINT NOT NULL,
        h3_r9             UBIGINT NOT NULL,
        h3_r10            UBIGINT NOT NULL,
        district          VARCHAR,
        grid_l1           VARCHAR,
        grid_l2           VARCHAR,
        grid_l3           VARCHAR,
        micro             VARCHAR,
        exclusive         VARCHAR NOT NULL,
        assigned_grid     VARCHAR NOT NULL,
        assign_method     VARCHAR NOT NULL,
        assign_distance_m REAL NOT NULL,
        responsible       VARCHAR NOT NULL,
        status            VARCHAR NOT NULL DEFAULT 'reported',
        deadline          TIMESTAMP NOT NULL,
        accepted_at       TIMESTAMP,
        dispatched_at     TIMESTAMP,
        handled_at        TIMESTAMP,
        closed_at         TIMESTAMP,
        rating            VARCHAR,
        rework_count      INTEGER NOT NULL DEFAULT 0,
        extension_count   INTEGER NOT NULL DEFAULT 0,
        escalation_count  INTEGER NOT NULL DEFAULT 0,
        send_back_count   INTEGER NOT NULL DEFAULT 0,
        history_len       INTEGER NOT NULL DEFAULT 1,
        updated_at        TIMESTAMP NOT NULL,
        created_by        VARCHAR NOT NULL,
        idempotency_key   VARCHAR
    );
    CREATE TABLE report_history (
        report_id   BIGINT NOT NULL,
        seq         INTEGER NOT NULL,
        happened_at TIMESTAMP NOT NULL,
        action      VARCHAR NOT NULL,
        actor       VARCHAR NOT NULL,
        from_status VARCHAR,
        to_status   VARCHAR NOT NULL,
        reason      VARCHAR,
        detail      VARCHAR
    );
    CREATE TABLE api_keys (
        id           VARCHAR NOT NULL,
        name         VARCHAR NOT NULL,
        role         VARCHAR NOT NULL,
        scope        VARCHAR,
        key_hash     VARCHAR NOT NULL,
        rate_per_sec INTEGER,
        created_at   TIMESTAMP NOT NULL,
        revoked_at   TIMESTAMP
    );
    "#,
];

/// The schema version this build writes.
pub const CURRENT_VERSION: usize = MIGRATIONS.len();

/// Brings a database up to [`CURRENT_VERSION`]; refuses one written by a newer build.
pub fn migrate(conn: &Connection) -> Result<usize, StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)",
    )?;
    let version: i64 = conn.query_row(
        "SELECT coalesce(max(version), 0) FROM schema_version",
        [],
        |r| r.get(0),
    )?;
    let version = usize::try_from(version).unwrap_or(0);
    if version > CURRENT_VERSION {
        return Err(StoreError::TooNew {
            found: version,
            supported: CURRENT_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        conn.execute_batch("BEGIN TRANSACTION")?;
        let applied = conn.execute_batch(sql).and_then(|()| {
            conn.execute(
                "INSERT INTO schema_version VALUES (?, now()::TIMESTAMP)",
                [i64::try_from(i + 1).unwrap_or(i64::MAX)],
            )
            .map(|_| ())
        });
        match applied {
            Ok(()) => conn.execute_batch("COMMIT")?,
            Err(e) => {
                conn.execute_batch("ROLLBACK")?;
                return Err(StoreError::Migration {
                    version: i + 1,
                    source: e,
                });
            }
        }
    }
    Ok(CURRENT_VERSION)
}
