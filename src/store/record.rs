//! What the store keeps of a report: the row written at intake, the row read back, and the
//! history entries.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::assign::Method;
use crate::report::{CategoryId, Channel, Rating, ReportId, Status};

/// Where a report lies, decided by the assignment engine at intake. Codes are shared with
/// the grid registry (and between the reports placed in the same grid) rather than copied.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Placement {
    /// District code (6 digits), if the point is in the city.
    #[schema(value_type = Option<String>)]
    pub district: Option<Arc<str>>,
    /// Level-1 grid (street/town).
    #[schema(value_type = Option<String>)]
    pub grid_l1: Option<Arc<str>>,
    /// Level-2 grid (community/village).
    #[schema(value_type = Option<String>)]
    pub grid_l2: Option<Arc<str>>,
    /// Level-3 grid.
    #[schema(value_type = Option<String>)]
    pub grid_l3: Option<Arc<str>>,
    /// Micro-grid.
    #[schema(value_type = Option<String>)]
    pub micro: Option<Arc<str>>,
    /// Exclusive grids covering the point, in order of precedence.
    #[schema(value_type = Vec<String>)]
    pub exclusive: Vec<Arc<str>>,
    /// The grid the engine routed to (a level-3 grid, a fallback area, or `city`).
    #[schema(value_type = String)]
    pub assigned_grid: Arc<str>,
    /// How the engine decided: interior, boundary, snapped, fallback, city_queue.
    pub method: Method,
    /// Distance in metres to a snapped grid (0 otherwise).
    pub distance_m: f32,
    /// Whose head is responsible (an exclusive grid or the assigned grid).
    #[schema(value_type = String)]
    pub responsible: Arc<str>,
}

impl Placement {
    /// The codes, borrowed.
    pub fn codes(&self) -> PlacementCodes<'_> {
        PlacementCodes {
            district: self.district.as_deref(),
            grid_l1: self.grid_l1.as_deref(),
            grid_l2: self.grid_l2.as_deref(),
            grid_l3: self.grid_l3.as_deref(),
            micro: self.micro.as_deref(),
            exclusive: self.exclusive.iter().map(|c| &**c).collect(),
            assigned_grid: &self.assigned_grid,
            method: self.method,
            distance_m: self.distance_m,
            responsible: &self.responsible,
        }
    }
}

/// A [`Placement`] as codes borrowed from wherever they live (a placement, or the grid
/// registry itself): what a stored row is built from. A batch import builds its rows from
/// the registry's codes directly, so that the threads preparing it share no reference counts.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacementCodes<'a> {
    /// District code.
    pub district: Option<&'a str>,
    /// Level-1 grid.
    pub grid_l1: Option<&'a str>,
    /// Level-2 grid.
    pub grid_l2: Option<&'a str>,
    /// Level-3 grid.
    pub grid_l3: Option<&'a str>,
    /// Micro-grid.
    pub micro: Option<&'a str>,
    /// Exclusive grids covering the point, in order of precedence.
    pub exclusive: smallvec::SmallVec<[&'a str; 2]>,
    /// The grid routed to.
    pub assigned_grid: &'a str,
    /// How the engine decided.
    pub method: Method,
    /// Distance in metres to a snapped grid (0 otherwise).
    pub distance_m: f32,
    /// Whose head is responsible.
    pub responsible: &'a str,
}

/// The code used for the city operation centre's queue.
pub const CITY_QUEUE: &str = "city";

/// A location as it arrived, kept for audit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct RawLocation {
    /// Longitude as sent.
    pub lon: f64,
    /// Latitude as sent.
    pub lat: f64,
    /// Coordinate system as sent.
    #[schema(value_type = String, example = "gcj02")]
    pub crs: crate::Crs,
}

/// A report ready to be written: validated, located, assigned and given its deadline. Its
/// placement is a [`Placement`], or for a batch import the engine's [`Assignment`] (grid ids,
/// whose codes the rows are built from).
///
/// [`Assignment`]: crate::assign::Assignment
#[derive(Debug, Clone)]
pub struct NewReport<P = Placement> {
    /// Intake channel.
    pub channel: Channel,
    /// GB/T 47678.5 class.
    pub category: CategoryId,
    /// Free text.
    pub description: String,
    /// The reporting app's own reference (citizen id, ticket number...).
    pub reporter_ref: Option<String>,
    /// Photo URLs.
    pub photos: Vec<String>,
    /// The location as sent.
    pub raw: RawLocation,
    /// WGS84 longitude.
    pub lon: f64,
    /// WGS84 latitude.
    pub lat: f64,
    /// H3 cells of the location at resolutions 6 to 10.
    pub h3: [u64; 5],
    /// When the problem was reported (by the app; defaults to the time of intake).
    pub reported_at: DateTime<Utc>,
    /// Where it lies and who is responsible.
    pub placement: P,
    /// When handling is due.
    pub deadline: DateTime<Utc>,
    /// Id of the API key that created it.
    pub created_by: String,
    /// Client-chosen key that makes retries safe.
    pub idempotency_key: Option<String>,
}

impl<P> NewReport<P> {
    /// The same report placed by `f` of its placement.
    pub fn map_placement<Q>(self, f: impl FnOnce(P) -> Q) -> NewReport<Q> {
        NewReport {
            channel: self.channel,
            category: self.category,
            description: self.description,
            reporter_ref: self.reporter_ref,
            photos: self.photos,
            raw: self.raw,
            lon: self.lon,
            lat: self.lat,
            h3: self.h3,
            reported_at: self.reported_at,
            placement: f(self.placement),
            deadline: self.deadline,
            created_by: self.created_by,
            idempotency_key: self.idempotency_key,
        }
    }

    /// What a retry is recognised by: (creator, idempotency key), as each creator's keys are
    /// its own. `None` without a key.
    pub fn idempotency_scope(&self) -> Option<(String, String)> {
        self.idempotency_key
            .as_ref()
            .map(|k| (self.created_by.clone(), k.clone()))
    }
}

/// H3 resolutions stored with every report (the heat layers' range).
pub const H3_RESOLUTIONS: [u8; 5] = [6, 7, 8, 9, 10];

/// A report as stored, with where it stands now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportRecord {
    /// Report id.
    #[schema(value_type = i64)]
    pub id: ReportId,
    /// Intake channel.
    #[schema(value_type = String, example = "app")]
    pub channel: Channel,
    /// GB/T 47678.5 class, e.g. `matter:06002`.
    #[schema(value_type = String, example = "matter:06002")]
    pub category: CategoryId,
    /// Free text.
    pub description: String,
    /// The reporting app's own reference.
    pub reporter_ref: Option<String>,
    /// Photo URLs.
    pub photos: Vec<String>,
    /// The location as sent.
    pub raw_location: RawLocation,
    /// WGS84 longitude.
    pub lon: f64,
    /// WGS84 latitude.
    pub lat: f64,
    /// H3 cell at resolution 10 (hex string).
    pub h3_r10: String,
    /// Where it lies and who is responsible now.
    pub placement: Placement,
    /// Lifecycle status.
    #[schema(value_type = String, example = "dispatched")]
    pub status: Status,
    /// When it was reported.
    pub reported_at: DateTime<Utc>,
    /// When gridscope received it.
    pub created_at: DateTime<Utc>,
    /// When handling is due.
    pub deadline: DateTime<Utc>,
    /// Open past its deadline.
    pub overdue: bool,
    /// When it was accepted (立案).
    pub accepted_at: Option<DateTime<Utc>>,
    /// When it was last dispatched.
    pub dispatched_at: Option<DateTime<Utc>>,
    /// When it was last reported handled.
    pub handled_at: Option<DateTime<Utc>>,
    /// When it was closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// Closed by its deadline (only for closed reports).
    pub closed_on_time: Option<bool>,
    /// The reporter's rating.
    #[schema(value_type = Option<String>)]
    pub rating: Option<Rating>,
    /// Failed checks (返工).
    pub rework_count: i32,
    /// Deadline extensions (延期).
    pub extension_count: i32,
    /// Escalations (上报上级).
    pub escalation_count: i32,
    /// Send-backs (回退).
    pub send_back_count: i32,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Id of the API key that created it.
    pub created_by: String,
}

/// One entry of a report's history; entries are only ever appended.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryEntry {
    /// Position in the history, from 0 (the report itself).
    pub seq: i32,
    /// When.
    pub at: DateTime<Utc>,
    /// What: `report` or a lifecycle action.
    pub action: String,
    /// Who: the API key's name and id.
    pub actor: String,
    /// Status before.
    pub from_status: Option<String>,
    /// Status after.
    pub to_status: String,
    /// Why, as given.
    pub reason: Option<String>,
    /// Arguments of the action (grid dispatched to, hours extended, rating...).
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
}
