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
use crate::grid::model::PartitionChain;
use crate::store::record::{
    CITY_QUEUE, H3_RESOLUTIONS, NewReport, Placement, PlacementCodes, RawLocation,
};

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
    let [district, grid_l1, grid_l2, grid_l3] = chain(assigner, a).map(|id| id.map(code));
    Placement {
        district,
        grid_l1,
        grid_l2,
        grid_l3,
        micro: a.micro.map(code),
        exclusive: a.exclusive.iter().map(|&id| code(id)).collect(),
        assigned_grid: a.grid.map_or_else(city, code),
        method: a.method,
        distance_m: stored_distance(a),
        responsible: a.responsible.map_or_else(city, code),
    }
}

/// Where an assignment puts a point, as codes borrowed from the registry: no reference
/// counts touched, for the threads preparing a batch import side by side.
pub fn placement_codes<'a>(assigner: &'a Assigner, a: &Assignment) -> PlacementCodes<'a> {
    let set = assigner.grids();
    let code = |id| set.grid(id).code.as_str();
    let [district, grid_l1, grid_l2, grid_l3] = chain(assigner, a).map(|id| id.map(code));
    PlacementCodes {
        district,
        grid_l1,
        grid_l2,
        grid_l3,
        micro: a.micro.map(code),
        exclusive: a.exclusive.iter().map(|&id| code(id)).collect(),
        assigned_grid: a.grid.map_or(CITY_QUEUE, code),
        method: a.method,
        distance_m: stored_distance(a),
        responsible: a.responsible.map_or(CITY_QUEUE, code),
    }
}

/// The district, level-1, level-2 and level-3 grids above the assigned grid.
fn chain(assigner: &Assigner, a: &Assignment) -> PartitionChain {
    a.grid
        .map_or([None; 4], |g| *assigner.grids().partition_chain(g))
}

/// The distance kept with a report: to the grid it was snapped to, else 0.
fn stored_distance(a: &Assignment) -> f32 {
    if a.method == Method::Snapped {
        a.distance_m
    } else {
        0.0
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
    let report = prepare_assigned(rules, draft, a.clone(), created_by, now);
    (report.map_placement(|a| placement(assigner, &a)), a)
}

/// [`prepare`] for a batch import, whose points are assigned together beforehand (see
/// [`Assigner::assign_many`]): the row's placement stays the engine's assignment (grid ids),
/// whose codes the stored columns are built from (see [`placement_codes`]).
pub fn prepare_assigned(
    rules: &DeadlineRules,
    draft: ReportDraft,
    assignment: Assignment,
    created_by: &str,
    now: DateTime<Utc>,
) -> NewReport<Assignment> {
    let reported_at = draft.reported_at.unwrap_or(now);
    NewReport {
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
        placement: assignment,
        deadline: rules.deadline(draft.category, reported_at),
        created_by: created_by.to_string(),
        idempotency_key: draft.idempotency_key,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{placement, placement_codes};
    use crate::grid::demo::{DemoConfig, generate};
    use crate::{AssignConfig, Assigner, GridSet, Method, Wgs84Point};

    /// A batch import stores the codes borrowed from the registry; a single create stores its
    /// shared placement. Both must name the same grids for every kind of assignment.
    #[test]
    fn borrowed_codes_match_the_shared_placement() {
        let city = GridSet::new(generate(&DemoConfig::scaled_down(50), &|_| {}).unwrap());
        let assigner = Assigner::new(Arc::new(city), AssignConfig::default());
        let mut methods = std::collections::HashSet::new();
        let mut exclusive = 0;
        // Across the city and well beyond it (the city queue).
        for i in 0..60 {
            for j in 0..60 {
                let lon = 112.6 + 1.6 * f64::from(i) / 59.0;
                let lat = 34.2 + 1.0 * f64::from(j) / 59.0;
                let a = assigner.assign(Wgs84Point::new(lon, lat).unwrap());
                let shared = placement(&assigner, &a);
                assert_eq!(
                    placement_codes(&assigner, &a),
                    shared.codes(),
                    "at {lon} {lat}"
                );
                methods.insert(a.method);
                exclusive += usize::from(!a.exclusive.is_empty());
            }
        }
        assert!(methods.contains(&Method::Interior) && methods.contains(&Method::CityQueue));
        assert!(exclusive > 0, "no point fell in an exclusive grid");
    }
}
