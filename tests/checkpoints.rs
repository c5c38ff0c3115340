//! The write-ahead log is folded into the database file in a pause of the writes, long before
//! the size at which a checkpoint is forced on a stream of them, and nothing is lost by it.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use gridscope::report::history::{HistoryConfig, HistoryGenerator};
use gridscope::report::{Catalog, DeadlineRules};
use gridscope::store::{Store, StoreError, StoreOptions};

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_in_the_writes_folds_the_log_into_the_file() {
    let city = common::small_city();
    let rules = Arc::new(DeadlineRules::default().prepare().expect("rules"));
    let catalog = Catalog::embedded();
    let history = HistoryGenerator::new(
        HistoryConfig {
            seed: 5,
            reports: 48_000,
            days: 30,
            end: NaiveDate::from_ymd_opt(2026, 11, 1).expect("date"),
        },
        &city,
        &rules,
        &catalog,
    );
    let reports: Vec<_> = (0..history.days())
        .flat_map(|d| history.day(d))
        .map(|h| h.report)
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = dir.path().join("t.duckdb.wal");
    let opts = StoreOptions::default();
    let store =
        Store::open(&dir.path().join("t.duckdb"), Arc::clone(&rules), &opts).expect("store");

    // Creates of 4,000 reports each, one after another: each commit goes through the log.
    let mut largest = 0;
    for chunk in reports.chunks(4_000) {
        store.create(chunk.to_vec()).await.expect("create");
        largest = largest.max(size(&wal));
    }
    assert!(
        largest >= opts.checkpoint_idle_wal_bytes && largest < opts.checkpoint_wal_bytes,
        "the log grew to {largest} bytes; the test needs it past the idle size and short of the forced one"
    );

    let started = Instant::now();
    while size(&wal) >= largest / 4 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the log is still {} bytes 20 s after the writes stopped",
            size(&wal)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let stored: i64 = store
        .read(|c| {
            c.query_row("SELECT count(*) FROM reports", [], |r| r.get(0))
                .map_err(StoreError::from)
        })
        .expect("count");
    assert_eq!(stored, reports.len() as i64);
}
