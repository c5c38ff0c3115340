//! The exact path: an R-tree of one level's polygons, answering which grids cover a point
//! (inside or on the boundary) and which is nearest within a distance.

use geo::coordinate_position::CoordPos;
use geo::{ClosestPoint, Coord, CoordinatePosition, Point};
use rstar::{AABB, RTree, RTreeObject};

use crate::coords::Wgs84Point;
use crate::grid::code::Level;
use crate::grid::model::{GridId, GridSet, envelope};
use crate::measure::{LocalMetres, haversine_m};

struct Entry {
    id: GridId,
    bbox: AABB<[f64; 2]>,
}

impl RTreeObject for Entry {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        self.bbox
    }
}

/// Grids covering a point, in code order (so the first is the boundary rule's choice).
pub(super) struct Cover {
    pub ids: Vec<GridId>,
    pub on_boundary: bool,
}

/// An R-tree over the grids of one level.
pub(super) struct LevelIndex {
    tree: RTree<Entry>,
}

fn position(set: &GridSet, id: GridId, c: Coord<f64>) -> CoordPos {
    set.grid(id).geometry.coordinate_position(&c)
}

/// Which of `ids` (of `level`) cover `c`.
pub(super) fn covering_among(set: &GridSet, ids: &[GridId], c: Coord<f64>, level: Level) -> Cover {
    let mut cover = Cover {
        ids: Vec::new(),
        on_boundary: false,
    };
    for &id in ids {
        if set.grid(id).level() != level {
            continue;
        }
        match position(set, id, c) {
            CoordPos::Inside => cover.ids.push(id),
            CoordPos::OnBoundary => {
                cover.ids.push(id);
                cover.on_boundary = true;
            }
            CoordPos::Outside => {}
        }
    }
    cover.ids.sort_unstable();
    cover
}

impl LevelIndex {
    /// Indexes the grids of one level.
    pub fn new(set: &GridSet, level: Level) -> Self {
        let items = set
            .ids_at(level)
            .map(|id| Entry {
                id,
                bbox: envelope(&set.grid(id).geometry),
            })
            .filter(|e| e.bbox.lower()[0].is_finite())
            .collect();
        Self {
            tree: RTree::bulk_load(items),
        }
    }

    /// The grids of this level covering `c`.
    pub fn covering(&self, set: &GridSet, c: Coord<f64>) -> Cover {
        let ids: Vec<GridId> = self
            .tree
            .locate_in_envelope_intersecting(&AABB::from_point([c.x, c.y]))
            .map(|e| e.id)
            .collect();
        let level = ids.first().map(|&i| set.grid(i).level());
        match level {
            Some(level) => covering_among(set, &ids, c, level),
            None => Cover {
                ids: Vec::new(),
                on_boundary: false,
            },
        }
    }

    /// The nearest grid within `max_m` metres, with its distance (ties: the smaller code).
    pub fn nearest_within(
        &self,
        set: &GridSet,
        p: Wgs84Point,
        max_m: f64,
    ) -> Option<(GridId, f64)> {
        let (dx, dy) = LocalMetres::at_lat(p.lat()).degrees_for(max_m);
        let env = AABB::from_corners([p.lon() - dx, p.lat() - dy], [p.lon() + dx, p.lat() + dy]);
        let mut best: Option<(GridId, f64)> = None;
        for e in self.tree.locate_in_envelope_intersecting(&env) {
            let closest = match set
                .grid(e.id)
                .geometry
                .closest_point(&Point::from(p.coord()))
            {
                geo::Closest::Intersection(q) | geo::Closest::SinglePoint(q) => q,
                geo::Closest::Indeterminate => continue,
            };
            let Ok(q) = Wgs84Point::new(closest.x(), closest.y()) else {
                continue;
            };
            let d = haversine_m(p, q);
            if d <= max_m && best.is_none_or(|(bid, bd)| d < bd || (d == bd && e.id < bid)) {
                best = Some((e.id, d));
            }
        }
        best
    }
}
