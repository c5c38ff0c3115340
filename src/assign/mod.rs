//! Point → responsible grid (事件定位到网格).
//!
//! [`Assigner`] answers, for any point, which level-3 grid is responsible for it, with the
//! whole chain above it, the micro-grid, every exclusive grid containing it and which unit is
//! responsible, and *how* that answer was reached ([`Method`]). The rules (DESIGN.md §2):
//!
//! - **Interior**: a point strictly inside one level-3 grid belongs to it.
//! - **Boundary**: a point on an edge or vertex shared by several grids belongs to the covering
//!   grid whose code sorts first. The rule depends on codes only, so it gives the same answer
//!   on every run whatever order the grids were loaded in; the answer says it was a boundary case.
//! - **Snapped**: a point in no level-3 grid but within the snapping tolerance (default 50 m,
//!   GPS error) of one goes to the nearest (ties: the smaller code), with the distance.
//! - **Fallback** (属地兜底): otherwise the smallest enclosing higher-level area (level 2, then
//!   level 1, then district) takes it.
//! - **City queue**: a point in no area at all goes to the city operation centre's queue.
//!   There is never a silent "unassigned".
//!
//! The exact answer comes from R-trees of polygons (`index.rs`); a raster of cells known to lie
//! wholly inside one grid answers most points with a single memory read (`raster.rs`).

pub mod batch;
mod index;
mod raster;
pub mod view;

pub use view::{AssignmentView, FLAT_COLUMNS, GridLabel, GridRef};

use std::sync::Arc;

use geo::{Area, Coord};
use rayon::prelude::*;
use serde::Serialize;
use smallvec::SmallVec;

use crate::coords::Wgs84Point;
use crate::grid::code::Level;
use crate::grid::model::{ExclusiveKind, GridId, GridSet};
use crate::measure::LocalMetres;
use index::LevelIndex;
use raster::{Cell, Raster};

/// How an assignment was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Strictly inside one level-3 grid.
    Interior,
    /// On a boundary shared by several level-3 grids (or inside several, in overlapping data):
    /// the covering grid whose code sorts first.
    Boundary,
    /// In no level-3 grid; snapped to the nearest within the tolerance.
    Snapped,
    /// In no level-3 grid and none near: the smallest enclosing higher-level area (属地兜底).
    Fallback,
    /// In no area at all: the city operation centre's queue.
    CityQueue,
}

impl Method {
    /// The snake_case name used in files and the API.
    pub fn name(self) -> &'static str {
        match self {
            Method::Interior => "interior",
            Method::Boundary => "boundary",
            Method::Snapped => "snapped",
            Method::Fallback => "fallback",
            Method::CityQueue => "city_queue",
        }
    }
}

impl std::str::FromStr for Method {
    type Err = String;

    /// Reads a [`Method::name`] back (from storage).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Method::Interior,
            Method::Boundary,
            Method::Snapped,
            Method::Fallback,
            Method::CityQueue,
        ]
        .into_iter()
        .find(|m| m.name() == s)
        .ok_or_else(|| format!("unknown assignment method {s:?}"))
    }
}

/// Who is responsible when a point lies in exclusive grids too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Precedence {
    /// Exclusive grids take responsibility before the level-3 grid (the usual practice: a
    /// school's grid head handles what happens on its premises).
    pub exclusive_first: bool,
    /// Order among exclusive kinds when several contain the point; unlisted kinds come last.
    /// Ties go to the smaller exclusive grid, then the smaller code.
    pub kinds: Vec<ExclusiveKind>,
}

impl Default for Precedence {
    fn default() -> Self {
        Self {
            exclusive_first: true,
            kinds: ExclusiveKind::ALL.to_vec(),
        }
    }
}

/// Settings of the assignment engine.
#[derive(Debug, Clone)]
pub struct AssignConfig {
    /// Points within this distance (metres) of a level-3 grid snap to it.
    pub snap_tolerance_m: f64,
    /// Who is responsible where exclusive grids overlay the partition.
    pub precedence: Precedence,
    /// Raster cell size in degrees (smaller: more points answered from the raster, more memory).
    pub cell_deg: f64,
}

impl Default for AssignConfig {
    fn default() -> Self {
        Self {
            snap_tolerance_m: 50.0,
            precedence: Precedence::default(),
            cell_deg: 1.0 / 4096.0,
        }
    }
}

/// The answer for one point. Grid ids refer to the assigner's [`GridSet`].
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// How it was reached.
    pub method: Method,
    /// The grid the report is routed to: a level-3 grid, or for [`Method::Fallback`] the
    /// enclosing higher-level area; `None` only for the city queue.
    pub grid: Option<GridId>,
    /// The micro-grid containing the point, if any.
    pub micro: Option<GridId>,
    /// Distance in metres to the grid a point was snapped to (0 otherwise).
    pub distance_m: f32,
    /// Every exclusive grid covering the point, in order of precedence.
    pub exclusive: SmallVec<[GridId; 2]>,
    /// The grid whose head is responsible: the first exclusive grid or `grid`, per precedence.
    pub responsible: Option<GridId>,
}

/// The assignment engine over one grid set. Immutable once built; share it with `Arc`.
///
/// ```
/// use std::sync::Arc;
/// use gridscope::grid::demo::{generate, DemoConfig};
/// use gridscope::{AssignConfig, Assigner, Crs, GridSet, Level, Method};
///
/// let city = GridSet::new(generate(&DemoConfig::scaled_down(50), &|_| {}).unwrap());
/// let assigner = Assigner::new(Arc::new(city), AssignConfig::default());
/// // A report sent in GCJ-02 from the city centre.
/// let a = assigner.assign(Crs::Gcj02.to_wgs84(113.6607, 34.7486).unwrap());
/// assert_eq!(a.method, Method::Interior);
/// let chain = assigner.chain(&a);
/// assert_eq!(assigner.grids().grid(chain[0]).level(), Level::Three);
/// assert_eq!(assigner.grids().grid(*chain.last().unwrap()).code.as_str(), "410103"); // 二七区
/// ```
pub struct Assigner {
    set: Arc<GridSet>,
    cfg: AssignConfig,
    level3: LevelIndex,
    higher: [LevelIndex; 3],
    exclusive: LevelIndex,
    raster: Raster,
    precedence_rank: Vec<u32>,
    exclusive_area: Vec<f64>,
    labels: view::GridLabels,
}

impl Assigner {
    /// Builds the indexes for a grid set.
    pub fn new(set: Arc<GridSet>, cfg: AssignConfig) -> Self {
        let metres = LocalMetres::at_lat(centre_lat(&set));
        let margin = metres.degrees_for(cfg.snap_tolerance_m);
        let ((level3, higher, exclusive), raster) = rayon::join(
            || {
                (
                    LevelIndex::new(&set, Level::Three),
                    [
                        LevelIndex::new(&set, Level::Two),
                        LevelIndex::new(&set, Level::One),
                        LevelIndex::new(&set, Level::District),
                    ],
                    LevelIndex::new(&set, Level::Exclusive),
                )
            },
            || Raster::build(&set, cfg.cell_deg, margin.0.max(margin.1)),
        );
        let precedence_rank = set
            .grids()
            .iter()
            .map(|g| {
                g.kind
                    .and_then(|k| cfg.precedence.kinds.iter().position(|&p| p == k))
                    .map_or(u32::MAX, |p| p as u32)
            })
            .collect();
        let exclusive_area = set
            .grids()
            .iter()
            .map(|g| {
                if g.level() == Level::Exclusive {
                    g.geometry.unsigned_area()
                } else {
                    0.0
                }
            })
            .collect();
        Self {
            labels: view::GridLabels::new(&set),
            set,
            cfg,
            level3,
            higher,
            exclusive,
            raster,
            precedence_rank,
            exclusive_area,
        }
    }

    /// The grid set this assigner answers for.
    pub fn grids(&self) -> &Arc<GridSet> {
        &self.set
    }

    /// The settings in force.
    pub fn config(&self) -> &AssignConfig {
        &self.cfg
    }

    /// Assigns one WGS84 point.
    pub fn assign(&self, p: Wgs84Point) -> Assignment {
        let cell = self
            .raster
            .resolve(self.raster.read(p.lon(), p.lat()), p.lon(), p.lat());
        self.finish(p, cell)
    }

    /// Assigns many points on the calling thread, in input order, appending to `out`. Faster
    /// per point than [`Assigner::assign`] in a loop: the raster reads of a block are issued
    /// together, and the next block's cells are prefetched, so memory latencies overlap.
    pub fn assign_many(&self, points: &[Wgs84Point], out: &mut Vec<Assignment>) {
        const BLOCK: usize = 32;
        out.reserve(points.len());
        let mut reads = [None; BLOCK];
        let mut blocks = points.chunks(BLOCK).peekable();
        while let Some(block) = blocks.next() {
            // The next block's cells are on their way while this one is worked on.
            for p in blocks.peek().into_iter().flat_map(|b| b.iter()) {
                self.raster.prefetch(p.lon(), p.lat());
            }
            for (r, p) in reads.iter_mut().zip(block) {
                *r = self.raster.read(p.lon(), p.lat());
            }
            for r in reads.iter_mut().take(block.len()) {
                self.raster.fetch(r);
            }
            for (r, p) in reads.iter().zip(block) {
                let cell = self.raster.resolve(*r, p.lon(), p.lat());
                out.push(self.finish(*p, cell));
            }
        }
    }

    fn finish(&self, p: Wgs84Point, cell: Cell) -> Assignment {
        match cell {
            Cell::Known {
                level3,
                micro,
                mut exclusive,
            } => {
                let responsible = if exclusive.is_empty() {
                    Some(level3)
                } else {
                    self.rank_exclusive(&mut exclusive);
                    if self.cfg.precedence.exclusive_first {
                        exclusive.first().copied()
                    } else {
                        Some(level3)
                    }
                };
                Assignment {
                    method: Method::Interior,
                    grid: Some(level3),
                    micro,
                    distance_m: 0.0,
                    exclusive,
                    responsible,
                }
            }
            Cell::Nowhere => Assignment {
                method: Method::CityQueue,
                grid: None,
                micro: None,
                distance_m: 0.0,
                exclusive: SmallVec::new(),
                responsible: None,
            },
            Cell::Exact { areas } => {
                let mut a = self.assign_exact_partition(p, areas);
                self.add_exclusive(p.coord(), &mut a);
                a
            }
        }
    }

    /// Assigns one point by the exact polygon path only, never the raster: the reference the
    /// fast path is tested against.
    pub fn assign_exact(&self, p: Wgs84Point) -> Assignment {
        let mut a = self.assign_exact_partition(p, true);
        self.add_exclusive(p.coord(), &mut a);
        a
    }

    /// Assigns many points on all cores, in input order.
    pub fn assign_batch(&self, points: &[Wgs84Point]) -> Vec<Assignment> {
        points
            .par_iter()
            .with_min_len(4096)
            .map(|&p| self.assign(p))
            .collect()
    }

    /// The chain from the assigned grid up to its district (`[grid, parent, ..., district]`).
    pub fn chain(&self, a: &Assignment) -> Vec<GridId> {
        a.grid.map(|g| self.set.chain(g)).unwrap_or_default()
    }

    /// Memory held by the raster, and its clean / local / exact / nowhere cell counts.
    pub fn raster_stats(&self) -> (usize, [usize; 4]) {
        (self.raster.bytes(), self.raster.census())
    }

    /// The exact path for the partition; `areas` false skips the fallback to higher-level
    /// areas where the raster knows none can contain the point.
    fn assign_exact_partition(&self, p: Wgs84Point, areas: bool) -> Assignment {
        let c = p.coord();
        let mut a = Assignment {
            method: Method::CityQueue,
            grid: None,
            micro: None,
            distance_m: 0.0,
            exclusive: SmallVec::new(),
            responsible: None,
        };
        let cover = self.level3.covering(&self.set, c);
        if let Some(&g) = cover.ids.first() {
            a.method = if cover.ids.len() == 1 && !cover.on_boundary {
                Method::Interior
            } else {
                Method::Boundary
            };
            a.grid = Some(g);
            let micro = index::covering_among(&self.set, self.set.children(g), c, Level::Micro);
            a.micro = micro.ids.first().copied();
        } else if let Some((g, d)) =
            self.level3
                .nearest_within(&self.set, p, self.cfg.snap_tolerance_m)
        {
            a.method = Method::Snapped;
            a.grid = Some(g);
            a.distance_m = d as f32;
        } else if let Some(g) = self
            .higher
            .iter()
            .filter(|_| areas)
            .find_map(|ix| ix.covering(&self.set, c).ids.first().copied())
        {
            a.method = Method::Fallback;
            a.grid = Some(g);
        }
        a.responsible = a.grid;
        a
    }

    /// Orders exclusive grids by precedence: kind, then smaller area, then code.
    fn rank_exclusive(&self, ids: &mut [GridId]) {
        ids.sort_by(|&x, &y| {
            self.precedence_rank[x as usize]
                .cmp(&self.precedence_rank[y as usize])
                .then(self.exclusive_area[x as usize].total_cmp(&self.exclusive_area[y as usize]))
                .then(x.cmp(&y))
        });
    }

    fn add_exclusive(&self, c: Coord<f64>, a: &mut Assignment) {
        let mut ids = self.exclusive.covering(&self.set, c).ids;
        if ids.is_empty() {
            return;
        }
        self.rank_exclusive(&mut ids);
        if self.cfg.precedence.exclusive_first || a.grid.is_none() {
            a.responsible = ids.first().copied();
        }
        a.exclusive = ids.into_iter().collect();
    }
}

fn centre_lat(set: &GridSet) -> f64 {
    use geo::BoundingRect;
    let boxes: Vec<_> = set
        .grids()
        .iter()
        .filter_map(|g| g.geometry.bounding_rect())
        .collect();
    if boxes.is_empty() {
        return 0.0;
    }
    let (lo, hi) = boxes
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), r| {
            (lo.min(r.min().y), hi.max(r.max().y))
        });
    (lo + hi) / 2.0
}

#[cfg(test)]
mod tests {
    use super::Method;

    #[test]
    fn methods_read_back_from_their_names() {
        for m in [
            Method::Interior,
            Method::Boundary,
            Method::Snapped,
            Method::Fallback,
            Method::CityQueue,
        ] {
            assert_eq!(m.name().parse::<Method>(), Ok(m));
        }
        assert!("inside".parse::<Method>().is_err());
    }
}
