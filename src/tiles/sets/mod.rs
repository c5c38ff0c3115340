//! The tile sets gridscope serves.

pub mod grids;
pub mod heat;
pub mod kpi;
pub mod reports;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use grids::GridTiles;
pub use heat::HeatTiles;
pub use kpi::KpiTiles;
pub use reports::ReportTiles;

use crate::store::Store;

/// The store's data version as report-based tiles see it: a new version is adopted at most once
/// per `every`, so tiles reflect new reports within that time while a steady stream of reports
/// does not empty the cache on every request.
pub struct ThrottledVersion {
    store: Arc<Store>,
    every: Duration,
    adopted: Mutex<(u64, Instant)>,
}

impl ThrottledVersion {
    /// Follows `store`, adopting changes at most once per `every`.
    pub fn new(store: Arc<Store>, every: Duration) -> Self {
        let now = store.data_version();
        Self {
            store,
            every,
            adopted: Mutex::new((now, Instant::now())),
        }
    }

    /// The store the version follows.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The version in force.
    pub fn get(&self) -> u64 {
        let latest = self.store.data_version();
        let mut adopted = self
            .adopted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if latest != adopted.0 && adopted.1.elapsed() >= self.every {
            *adopted = (latest, Instant::now());
        }
        adopted.0
    }
}
