//! What happened to reports, announced as soon as it is committed, so live views (the map
//! wall's feed and map) follow intake without polling the database.

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

use super::record::{NewReport, Placement};
use crate::report::{CategoryId, Channel, ReportId, Status};

/// How many events a slow listener may fall behind before it is told it lost some.
const BACKLOG: usize = 4_096;

/// A new report, as committed.
#[derive(Debug, Clone)]
pub struct CreatedReport {
    /// Its id.
    pub id: ReportId,
    /// Intake channel.
    pub channel: Channel,
    /// GB/T 47678.5 class.
    pub category: CategoryId,
    /// Free text.
    pub description: String,
    /// WGS84 longitude.
    pub lon: f64,
    /// WGS84 latitude.
    pub lat: f64,
    /// When it was reported.
    pub reported_at: DateTime<Utc>,
    /// When handling is due.
    pub deadline: DateTime<Utc>,
    /// Where it lies and who is responsible.
    pub placement: Placement,
}

impl CreatedReport {
    /// The event for `report`, once the store has given it `id`.
    pub fn of(id: ReportId, report: &NewReport) -> Self {
        Self {
            id,
            channel: report.channel,
            category: report.category,
            description: report.description.clone(),
            lon: report.lon,
            lat: report.lat,
            reported_at: report.reported_at,
            deadline: report.deadline,
            placement: report.placement.clone(),
        }
    }
}

/// Something committed that live views show.
#[derive(Debug, Clone)]
pub enum ReportEvent {
    /// A report was created.
    Created(Box<CreatedReport>),
    /// A report moved through its lifecycle.
    Transitioned {
        /// Which report.
        id: ReportId,
        /// Status before.
        from: Status,
        /// Status after.
        to: Status,
        /// When.
        at: DateTime<Utc>,
    },
}

/// The store's announcer: any number of listeners, none needed.
#[derive(Debug)]
pub struct EventHub {
    tx: broadcast::Sender<ReportEvent>,
}

impl Default for EventHub {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(BACKLOG).0,
        }
    }
}

impl EventHub {
    /// Announces `event` to whoever listens (nobody listening is fine).
    pub fn publish(&self, event: ReportEvent) {
        let _ = self.tx.send(event);
    }

    /// A new listener, receiving what is published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ReportEvent> {
        self.tx.subscribe()
    }
}
