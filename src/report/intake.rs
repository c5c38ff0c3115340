//! Intake: turns a validated report into what the store writes, placing it in its grids (by the
//! assignment engine), in H3 cells, and giving it its deadline.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use h3o::{LatLng, LatLngIndexer, Resolution};

use super::category::CategoryId;
use super::deadline::DeadlineRules;
use super::model::Channel;
use crate::assign::{Assigner, Assignment, Method};
use crate::coords::Wgs84Point;
use crate::store::record::{CITY_QUEUE, H3_RESOLUTIONS, NewReport, Placement, RawLocation};

/// A report as a client states it, already validated field by field.
#[derive(Debug, Clone)]
pub struct ReportDraft {
    /// Intake channel.
    pub channel: Channel,
    /// GB/T 47678.5 class (checked against the catalog).
    pub category: CategoryId,
    /// Free text.
    pub description: String,
    /// The app's own reference.
    pub reporter_ref: Option<String>,
    /// Photo URLs.
    pub photos: Vec<String>,
    /// The location as sent.
    pub raw: RawLocation,
    /// The location in WGS84.
    pub location: Wgs84Point,
    /// When it was reported; `None` means now.
    pub reported_at: Option<DateTime<Utc>>,
    /// Client-chosen key that makes retries safe.
    pub idempotency_key: Option<String>,
}

/// Where an assignment puts a point, as codes (shared with the registry, not copied).
pub fn placement(assigner: &Assigner, a: &Assignment) -> Placement {
    let set = assigner.grids();
    let code = |id| set.grid(id).code.shared();
    let city = || Arc::<str>::from(CITY_QUEUE);
    let [district, grid_l1, grid_l2, grid_l3] = a
        .grid
        .map_or([None; 4], |g| *set.partition_chain(g))
        .map(|id| id.map(code));
    Placement {
        district,
        grid_l1,
        grid_l2,
        grid_l3,
        micro: a.micro.map(code),
        exclusive: a.exclusive.iter().map(|&id| code(id)).collect(),
        assigned_grid: a.grid.map_or_else(city, code),
        method: a.method,
        distance_m: if a.method == Method::Snapped {
            a.distance_m
        } else {
            0.0
        },
        responsible: a.responsible.map_or_else(city, code),
    }
}

/// The H3 cells of a point at [`H3_RESOLUTIONS`], as raw 64-bit indexes: at each resolution
/// the cell that contains the point. (A coarser cell is not always the finest one's ancestor:
/// H3 children do not tile their parent exactly, so each resolution is indexed on its own.)
/// The point's projection onto its icosahedron face, the costly trigonometric part, does not
/// depend on the resolution, so it is computed once for all five.
pub fn h3_cells(p: Wgs84Point) -> [u64; 5] {
    let mut out = [0u64; 5];
    // A validated WGS84 point is always a valid H3 coordinate.
    let Ok(ll) = LatLng::new(p.lat(), p.lon()) else {
        return out;
    };
    let resolutions = H3_RESOLUTIONS
        .iter()
        .filter_map(|&r| Resolution::try_from(r).ok());
    for (slot, cell) in out
        .iter_mut()
        .zip(LatLngIndexer::default().to_cells(ll, resolutions))
    {
        *slot = u64::from(cell);
    }
    out
}

/// Builds the row to store: assigns the point, computes H3 cells and the deadline. Returns the
/// assignment too, for the answer to the client.
pub fn prepare(
    assigner: &Assigner,
    rules: &DeadlineRules,
    draft: ReportDraft,
    created_by: &str,
    now: DateTime<Utc>,
) -> (NewReport, Assignment) {
    let a = assigner.assign(draft.location);
    let reported_at = draft.reported_at.unwrap_or(now);
    let report = NewReport {
        channel: draft.channel,
        category: draft.category,
        description: draft.description,
        reporter_ref: draft.reporter_ref,
        photos: draft.photos,
        raw: draft.raw,
        lon: draft.location.lon(),
        lat: draft.location.lat(),
        h3: h3_cells(draft.location),
        reported_at,
        placement: placement(assigner, &a),
        deadline: rules.deadline(draft.category, reported_at),
        created_by: created_by.to_string(),
        idempotency_key: draft.idempotency_key,
    };
    (report, a)
}
