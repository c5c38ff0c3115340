//! The topology quality report of a grid set: does each level partition its parent?
//!
//! Checks every grid's validity, that children lie inside their parent, that siblings do not
//! overlap, that siblings leave no gap inside their parent, and that every grid has a parent.
//! Each finding carries its area in m² and a location, so an analyst can go and look.

use std::fmt;

use geo::{BooleanOps, BoundingRect, InteriorPoint, Intersects, MultiPolygon, Validation};
use rayon::prelude::*;
use serde::Serialize;

use super::code::Level;
use super::import::{FileFailure, ImportOutcome, Refusal, Repair};
use super::model::{GridId, GridSet};
use crate::measure::area_m2;

/// Pieces smaller than this (m²) are rounding noise, not findings.
pub const NOISE_M2: f64 = 0.01;

/// One topology finding.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The grid concerned (for gaps: the parent).
    pub code: String,
    /// The other grid (the overlapping sibling, or the parent a child sticks out of).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other: Option<String>,
    /// Area of the offending piece, m².
    pub area_m2: f64,
    /// A point inside the offending piece, [lon, lat].
    pub location: [f64; 2],
}

/// An invalid grid geometry left after import.
#[derive(Debug, Clone, Serialize)]
pub struct Invalid {
    /// The grid.
    pub code: String,
    /// What is wrong.
    pub reason: String,
}

/// Counts of grids per level.
#[derive(Debug, Clone, Serialize)]
pub struct LevelCount {
    /// Level.
    pub level: Level,
    /// Number of grids.
    pub grids: usize,
}

/// The quality report of one import or one generated city.
#[derive(Debug, Clone, Serialize, Default)]
pub struct QualityReport {
    /// Grids per level.
    pub levels: Vec<LevelCount>,
    /// Features refused on import.
    pub refused: Vec<Refusal>,
    /// Repairs made on import.
    pub repairs: Vec<Repair>,
    /// Files that could not be read.
    pub failed_files: Vec<FileFailure>,
    /// Grids whose geometry is invalid.
    pub invalid: Vec<Invalid>,
    /// Grids with no parent found by code or containment.
    pub orphans: Vec<String>,
    /// Children sticking out of their parent.
    pub outside_parent: Vec<Finding>,
    /// Overlaps between siblings.
    pub overlaps: Vec<Finding>,
    /// Gaps between siblings inside their parent.
    pub gaps: Vec<Finding>,
}

fn finding(code: String, other: Option<String>, piece: &MultiPolygon<f64>) -> Option<Finding> {
    let area = area_m2(piece);
    if area <= NOISE_M2 {
        return None;
    }
    let p = piece.interior_point()?;
    Some(Finding {
        code,
        other,
        area_m2: area,
        location: [p.x(), p.y()],
    })
}

impl QualityReport {
    /// Checks a grid set. Exclusive grids are checked for validity and parenthood only: they
    /// overlay the partition and may overlap each other.
    pub fn check(set: &GridSet) -> Self {
        let ids: Vec<GridId> = (0..set.len() as GridId).collect();
        let code = |id: GridId| set.grid(id).code.to_string();
        let levels = Level::ALL
            .into_iter()
            .map(|level| LevelCount {
                level,
                grids: set.count(level),
            })
            .filter(|c| c.grids > 0)
            .collect();
        let invalid = ids
            .par_iter()
            .filter_map(|&id| {
                let errors = set.grid(id).geometry.validation_errors();
                (!errors.is_empty()).then(|| Invalid {
                    code: code(id),
                    reason: errors
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                })
            })
            .collect();
        let orphans = set.orphans().iter().map(|&id| code(id)).collect();
        let parents: Vec<GridId> = ids
            .iter()
            .copied()
            .filter(|&id| {
                set.children(id)
                    .iter()
                    .any(|&c| set.grid(c).level() != Level::Exclusive)
            })
            .collect();
        // Parents whose children provably tile them exactly need no boolean operations.
        let tiled: std::collections::HashSet<GridId> = parents
            .par_iter()
            .copied()
            .filter(|&p| exact_tiling(set, p))
            .collect();
        let outside_parent = ids
            .par_iter()
            .filter(|&&id| set.grid(id).level() != Level::Exclusive)
            .filter_map(|&id| {
                let parent = set.parent(id)?;
                if tiled.contains(&parent) {
                    return None;
                }
                let piece = set.grid(id).geometry.difference(&set.grid(parent).geometry);
                finding(code(id), Some(code(parent)), &piece)
            })
            .collect();
        let untiled: Vec<GridId> = parents
            .iter()
            .copied()
            .filter(|p| !tiled.contains(p))
            .collect();
        let overlaps = untiled
            .par_iter()
            .flat_map_iter(|&p| sibling_overlaps(set, p))
            .collect();
        let gaps = untiled
            .par_iter()
            .filter_map(|&p| {
                let children = partition_children(set, p);
                let union = union_all(children.iter().map(|&c| &set.grid(c).geometry));
                let piece = set.grid(p).geometry.difference(&union);
                finding(code(p), None, &piece)
            })
            .collect();
        QualityReport {
            levels,
            invalid,
            orphans,
            outside_parent,
            overlaps,
            gaps,
            ..Default::default()
        }
    }

    /// Adds what the import found (failed files, refusals, repairs) to the report.
    pub fn with_import(mut self, outcome: &ImportOutcome) -> Self {
        self.failed_files = outcome.failed_files.clone();
        self.refused = outcome.refused.clone();
        self.repairs = outcome.repairs.clone();
        self
    }

    /// Whether every partition level is gap-free and overlap-free with valid geometry.
    pub fn is_clean(&self) -> bool {
        self.invalid.is_empty()
            && self.orphans.is_empty()
            && self.outside_parent.is_empty()
            && self.overlaps.is_empty()
            && self.gaps.is_empty()
    }
}

/// Whether the children's boundary edges cancel pairwise and leave exactly the parent's
/// boundary, and every child is valid. With valid, consistently oriented rings this proves the
/// children cover the parent exactly once everywhere: no gap, no overlap, nothing outside. It
/// needs no arithmetic, so it is exact; real data with T-junctions or slivers fails it and gets
/// the measured checks.
pub(crate) fn exact_tiling(set: &GridSet, parent: GridId) -> bool {
    edges_cancel(set, parent)
        && partition_children(set, parent)
            .iter()
            .all(|&c| set.grid(c).geometry.is_valid())
}

/// The edge half of [`exact_tiling`]: the children's edges and the parent's cancel pairwise
/// (and there are children). Even without valid rings this makes every edge appear an even
/// number of times, so along any ray the parent's crossings and all children's crossings have
/// the same parity: a point inside the parent (even-odd) lies inside an odd number of
/// children, and a point inside exactly one child lies inside the parent.
pub(crate) fn edges_cancel(set: &GridSet, parent: GridId) -> bool {
    type Key = ((u64, u64), (u64, u64));
    let mut edges: Vec<(Key, i32)> = Vec::new();
    let mut add = |shape: &MultiPolygon<f64>, sign: i32| {
        for poly in shape {
            for ring in std::iter::once(poly.exterior()).chain(poly.interiors()) {
                for seg in ring.0.windows(2) {
                    let a = (seg[0].x.to_bits(), seg[0].y.to_bits());
                    let b = (seg[1].x.to_bits(), seg[1].y.to_bits());
                    edges.push(if a < b {
                        ((a, b), sign)
                    } else {
                        ((b, a), -sign)
                    });
                }
            }
        }
    };
    let children = partition_children(set, parent);
    if children.is_empty() {
        return false;
    }
    for &c in &children {
        add(&set.grid(c).geometry, 1);
    }
    add(&set.grid(parent).geometry, -1);
    edges.sort_unstable_by_key(|e| e.0);
    edges
        .chunk_by(|x, y| x.0 == y.0)
        .all(|run| run.iter().map(|e| e.1).sum::<i32>() == 0)
}

fn partition_children(set: &GridSet, parent: GridId) -> Vec<GridId> {
    set.children(parent)
        .iter()
        .copied()
        .filter(|&c| set.grid(c).level() != Level::Exclusive)
        .collect()
}

fn union_all<'a>(shapes: impl Iterator<Item = &'a MultiPolygon<f64>>) -> MultiPolygon<f64> {
    let shapes: Vec<&MultiPolygon<f64>> = shapes.collect();
    // Pairwise tree reduction keeps each union small.
    let mut level: Vec<MultiPolygon<f64>> = shapes.iter().map(|s| (*s).clone()).collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [a, b] => a.union(b),
                [a] => a.clone(),
                _ => MultiPolygon(vec![]),
            })
            .collect();
    }
    level.pop().unwrap_or(MultiPolygon(vec![]))
}

fn sibling_overlaps(set: &GridSet, parent: GridId) -> Vec<Finding> {
    let children = partition_children(set, parent);
    let boxes: Vec<_> = children
        .iter()
        .map(|&c| set.grid(c).geometry.bounding_rect())
        .collect();
    let mut out = Vec::new();
    for i in 0..children.len() {
        for j in i + 1..children.len() {
            let (Some(a), Some(b)) = (boxes[i], boxes[j]) else {
                continue;
            };
            if !a.intersects(&b) {
                continue;
            }
            let (ga, gb) = (set.grid(children[i]), set.grid(children[j]));
            let piece = ga.geometry.intersection(&gb.geometry);
            if let Some(f) = finding(ga.code.to_string(), Some(gb.code.to_string()), &piece) {
                out.push(f);
            }
        }
    }
    out
}

impl fmt::Display for QualityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "grids:")?;
        for c in &self.levels {
            writeln!(f, "  level {:<9} {:>7}", c.level.name(), c.grids)?;
        }
        let total = |v: &[Finding]| v.iter().fold(0.0, |acc, x| acc + x.area_m2);
        writeln!(f, "unreadable files:          {}", self.failed_files.len())?;
        for x in &self.failed_files {
            writeln!(f, "  {}: {}", x.file, x.reason)?;
        }
        writeln!(f, "refused features:          {}", self.refused.len())?;
        writeln!(f, "repairs made:              {}", self.repairs.len())?;
        writeln!(f, "invalid geometries:        {}", self.invalid.len())?;
        writeln!(f, "orphans:                   {}", self.orphans.len())?;
        writeln!(
            f,
            "children outside parent:   {} ({:.1} m²)",
            self.outside_parent.len(),
            total(&self.outside_parent)
        )?;
        writeln!(
            f,
            "sibling overlaps:          {} ({:.1} m²)",
            self.overlaps.len(),
            total(&self.overlaps)
        )?;
        writeln!(
            f,
            "gaps inside parents:       {} ({:.1} m²)",
            self.gaps.len(),
            total(&self.gaps)
        )?;
        for r in self.refused.iter().take(10) {
            writeln!(f, "  refused {}#{}: {}", r.file, r.feature, r.message)?;
        }
        for (label, list) in [
            ("outside parent", &self.outside_parent),
            ("overlap", &self.overlaps),
            ("gap", &self.gaps),
        ] {
            for x in list.iter().take(5) {
                writeln!(
                    f,
                    "  {label}: {} {} {:.1} m² at {:.6},{:.6}",
                    x.code,
                    x.other.as_deref().unwrap_or(""),
                    x.area_m2,
                    x.location[0],
                    x.location[1]
                )?;
            }
        }
        writeln!(
            f,
            "verdict: {}",
            if self.is_clean() {
                "clean partition"
            } else {
                "problems found"
            }
        )
    }
}
