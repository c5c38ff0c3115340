//! Shared-border topology of a set of polygons, built once so that generalising never pulls
//! neighbours apart.
//!
//! Every ring is cut into arcs at its junctions (vertices where the set of neighbouring
//! vertices changes, i.e. where three or more grids meet or a shared border begins). Two grids
//! that share a border then refer to the same arc, and every arc is simplified once for all of
//! its users. Simplification is precomputed as a Douglas–Peucker retention threshold per vertex
//! (monotone down the recursion), so "the arc at tolerance t" is a filter over the stored
//! vertices: no per-zoom copies, and arc ends (junctions) are always kept.
//!
//! Coordinates are integer world units ([`super::tile_id::quantize`]): exact equality is what
//! makes shared vertices shared.

use std::collections::HashMap;

use foldhash::fast::FixedState;
use geo::{LineString, MultiPolygon};
use rayon::prelude::*;

use super::tile_id::quantize;

/// A point in integer world units.
pub type WorldPoint = [u32; 2];

/// One arc of a ring, possibly walked backwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArcRef(u32);

const REVERSED: u32 = 1 << 31;

impl ArcRef {
    fn new(index: usize, reversed: bool) -> Self {
        Self(index as u32 | if reversed { REVERSED } else { 0 })
    }

    /// Index of the arc in its [`Topology`].
    pub fn index(self) -> usize {
        (self.0 & !REVERSED) as usize
    }

    /// Whether the ring walks the arc from its end to its start.
    pub fn reversed(self) -> bool {
        self.0 & REVERSED != 0
    }
}

/// A polygon as arcs: the first ring is the exterior, the rest are holes. Exterior rings run
/// clockwise on the map (positive area with y pointing south), holes the other way.
#[derive(Debug, Clone, Default)]
pub struct TopoPolygon {
    /// The rings, exterior first.
    pub rings: Vec<Box<[ArcRef]>>,
}

/// The arcs of a polygon set, with each vertex's simplification threshold.
#[derive(Debug, Default)]
pub struct Topology {
    points: Vec<WorldPoint>,
    /// Largest tolerance (world units) at which each vertex is still kept; infinite at arc ends.
    thresholds: Vec<f32>,
    /// Arc `i` is `points[starts[i]..starts[i + 1]]`.
    starts: Vec<u32>,
    /// Bounding box of each arc: west, north, east, south in world units.
    boxes: Vec<[u32; 4]>,
}

fn key(p: WorldPoint) -> u64 {
    (u64::from(p[0]) << 32) | u64::from(p[1])
}

/// The neighbours a vertex had where it was first seen, and whether it turned out a junction.
struct Seen {
    pair: (u64, u64),
    junction: bool,
}

/// Quantised vertices of a ring: no repeated points and no closing point.
fn clean_ring(ring: &LineString<f64>) -> Vec<WorldPoint> {
    let mut out: Vec<WorldPoint> = Vec::with_capacity(ring.0.len());
    for c in &ring.0 {
        let p = quantize(c.x, c.y);
        if out.last() != Some(&p) {
            out.push(p);
        }
    }
    while out.len() > 1 && out.first() == out.last() {
        out.pop();
    }
    if out.len() < 3 { Vec::new() } else { out }
}

/// Twice the signed area in world units (positive = clockwise on the map, since y points south).
fn doubled_area(ring: &[WorldPoint]) -> f64 {
    let n = ring.len();
    (0..n)
        .map(|i| {
            let [x0, y0] = ring[i];
            let [x1, y1] = ring[(i + 1) % n];
            f64::from(x0) * f64::from(y1) - f64::from(x1) * f64::from(y0)
        })
        .sum()
}

type Rings = Vec<Vec<Vec<WorldPoint>>>;

impl Topology {
    /// Builds the topology of `shapes` (WGS84), returning it with each shape's polygons as arcs,
    /// in the order given.
    pub fn build(shapes: &[&MultiPolygon<f64>]) -> (Topology, Vec<Vec<TopoPolygon>>) {
        // Quantise and orient every ring: exteriors clockwise on the map, holes counter-clockwise.
        let rings: Vec<Rings> = shapes
            .par_iter()
            .map(|mp| {
                mp.0.iter()
                    .filter_map(|poly| {
                        let mut exterior = clean_ring(poly.exterior());
                        if exterior.is_empty() {
                            return None;
                        }
                        if doubled_area(&exterior) < 0.0 {
                            exterior.reverse();
                        }
                        let mut out = vec![exterior];
                        for hole in poly.interiors() {
                            let mut hole = clean_ring(hole);
                            if hole.is_empty() {
                                continue;
                            }
                            if doubled_area(&hole) > 0.0 {
                                hole.reverse();
                            }
                            out.push(hole);
                        }
                        Some(out)
                    })
                    .collect()
            })
            .collect();

        let junctions = find_junctions(&rings);
        let mut topo = Topology::default();
        topo.starts.push(0);
        let mut arc_ids: HashMap<(u64, u64), u32, FixedState> = HashMap::default();
        let polygons = rings
            .iter()
            .map(|polys| {
                polys
                    .iter()
                    .map(|poly| TopoPolygon {
                        rings: poly
                            .iter()
                            .map(|ring| topo.add_ring(ring, &junctions, &mut arc_ids))
                            .collect(),
                    })
                    .collect()
            })
            .collect();
        topo.compute_thresholds();
        (topo, polygons)
    }

    /// Cuts one ring into arcs, storing arcs not seen before.
    fn add_ring(
        &mut self,
        ring: &[WorldPoint],
        junctions: &HashMap<u64, Seen, FixedState>,
        arc_ids: &mut HashMap<(u64, u64), u32, FixedState>,
    ) -> Box<[ArcRef]> {
        let is_junction = |p: &WorldPoint| junctions.get(&key(*p)).is_some_and(|s| s.junction);
        let cuts: Vec<usize> = (0..ring.len()).filter(|&i| is_junction(&ring[i])).collect();
        if cuts.is_empty() {
            // A closed arc: start it at its smallest vertex, walking towards the smaller
            // neighbour, so that the same loop seen from either side is stored once.
            let n = ring.len();
            let m = (0..n).min_by_key(|&i| ring[i]).unwrap_or(0);
            let forward = ring[(m + 1) % n] <= ring[(m + n - 1) % n];
            let pts: Vec<WorldPoint> = (0..=n).map(|k| ring[(m + k) % n]).collect();
            return Box::new([self.arc(pts, !forward, arc_ids)]);
        }
        let mut refs = Vec::with_capacity(cuts.len());
        for (k, &from) in cuts.iter().enumerate() {
            let to = cuts.get(k + 1).copied().unwrap_or(cuts[0] + ring.len());
            let pts: Vec<WorldPoint> = (from..=to).map(|i| ring[i % ring.len()]).collect();
            let n = pts.len();
            let reversed = (pts[n - 1], pts[n - 2]) < (pts[0], pts[1]);
            refs.push(self.arc(pts, reversed, arc_ids));
        }
        refs.into_boxed_slice()
    }

    /// The reference to an arc given in ring order, stored in canonical order when new.
    fn arc(
        &mut self,
        mut pts: Vec<WorldPoint>,
        reversed: bool,
        arc_ids: &mut HashMap<(u64, u64), u32, FixedState>,
    ) -> ArcRef {
        if reversed {
            pts.reverse();
        }
        let k = (key(pts[0]), key(pts[1]));
        let id = *arc_ids.entry(k).or_insert_with(|| {
            self.points.extend_from_slice(&pts);
            self.starts.push(self.points.len() as u32);
            (self.starts.len() - 2) as u32
        });
        ArcRef::new(id as usize, reversed)
    }

    fn compute_thresholds(&mut self) {
        let per_arc: Vec<Vec<f32>> = (0..self.arc_count())
            .into_par_iter()
            .map(|a| douglas_peucker_thresholds(self.arc_points(a)))
            .collect();
        self.thresholds = per_arc.concat();
        self.boxes = (0..self.arc_count())
            .map(|a| {
                let pts = self.arc_points(a);
                pts.iter().fold([u32::MAX, u32::MAX, 0, 0], |b, p| {
                    [
                        b[0].min(p[0]),
                        b[1].min(p[1]),
                        b[2].max(p[0]),
                        b[3].max(p[1]),
                    ]
                })
            })
            .collect();
    }

    /// How many distinct arcs there are.
    pub fn arc_count(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    /// How many vertices the arcs hold (shared borders counted once).
    pub fn point_count(&self) -> usize {
        self.points.len()
    }

    fn range(&self, arc: usize) -> std::ops::Range<usize> {
        self.starts[arc] as usize..self.starts[arc + 1] as usize
    }

    /// The vertices of one arc, in canonical order.
    pub fn arc_points(&self, arc: usize) -> &[WorldPoint] {
        &self.points[self.range(arc)]
    }

    /// Calls `visit` with each vertex of a ring kept at tolerance `tolerance` (world units),
    /// once each, without the closing point.
    pub fn walk_ring(&self, ring: &[ArcRef], tolerance: f32, mut visit: impl FnMut(WorldPoint)) {
        for r in ring {
            let range = self.range(r.index());
            let pts = &self.points[range.clone()];
            let th = &self.thresholds[range];
            // Each arc's first vertex is the previous arc's last one: skip it.
            if r.reversed() {
                for i in (0..pts.len().saturating_sub(1)).rev() {
                    if th[i] >= tolerance {
                        visit(pts[i]);
                    }
                }
            } else {
                for i in 1..pts.len() {
                    if th[i] >= tolerance {
                        visit(pts[i]);
                    }
                }
            }
        }
    }

    /// As [`walk_ring`](Self::walk_ring), for clipping to `window` (west, north, east, south
    /// in world units): an arc lying wholly on the far side of one of the window's edges is
    /// replaced by the straight line between its ends, which lies on that side too, so the
    /// clipped result is the same while far-away detail costs nothing.
    pub fn walk_ring_for_window(
        &self,
        ring: &[ArcRef],
        tolerance: f32,
        window: [f64; 4],
        mut visit: impl FnMut(WorldPoint),
    ) {
        for r in ring {
            let b = self.boxes[r.index()].map(f64::from);
            let outside =
                b[2] < window[0] || b[0] > window[2] || b[3] < window[1] || b[1] > window[3];
            if outside {
                let pts = self.arc_points(r.index());
                let end = if r.reversed() {
                    pts.first()
                } else {
                    pts.last()
                };
                if let Some(&p) = end {
                    visit(p);
                }
            } else {
                self.walk_ring(std::slice::from_ref(r), tolerance, &mut visit);
            }
        }
    }

    /// A fingerprint of the geometry, so caches can tell one grid version from another.
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{BuildHasher, Hasher};
        let mut h = FixedState::with_seed(0x9e37_79b9).build_hasher();
        for p in &self.points {
            h.write_u64(key(*p));
        }
        h.write_usize(self.starts.len());
        h.finish()
    }
}

/// Marks every vertex whose neighbours differ between the rings (or places) it appears in.
fn find_junctions(rings: &[Rings]) -> HashMap<u64, Seen, FixedState> {
    let total: usize = rings.iter().flatten().flatten().map(Vec::len).sum();
    let mut seen: HashMap<u64, Seen, FixedState> =
        HashMap::with_capacity_and_hasher(total / 2, FixedState::default());
    for ring in rings.iter().flatten().flatten() {
        let n = ring.len();
        for i in 0..n {
            let (a, b) = (key(ring[(i + n - 1) % n]), key(ring[(i + 1) % n]));
            let pair = (a.min(b), a.max(b));
            seen.entry(key(ring[i]))
                .and_modify(|s| s.junction |= s.pair != pair)
                .or_insert(Seen {
                    pair,
                    junction: false,
                });
        }
    }
    seen
}

/// Distance from `p` to the segment `a`–`b`, in world units.
fn segment_distance(p: WorldPoint, a: WorldPoint, b: WorldPoint) -> f64 {
    let f = |q: WorldPoint| [f64::from(q[0]), f64::from(q[1])];
    let ([px, py], [ax, ay], [bx, by]) = (f(p), f(a), f(b));
    let (dx, dy) = (bx - ax, by - ay);
    let len2 = dx * dx + dy * dy;
    let t = if len2 == 0.0 {
        0.0
    } else {
        (((px - ax) * dx + (py - ay) * dy) / len2).clamp(0.0, 1.0)
    };
    let (ex, ey) = (ax + t * dx - px, ay + t * dy - py);
    (ex * ex + ey * ey).sqrt()
}

/// Douglas–Peucker retention thresholds: a vertex is kept at tolerance `t` iff its threshold is
/// at least `t`. Thresholds never exceed their parent's in the recursion, so filtering at any
/// tolerance gives exactly the Douglas–Peucker result at that tolerance.
fn douglas_peucker_thresholds(pts: &[WorldPoint]) -> Vec<f32> {
    let n = pts.len();
    let mut out = vec![0.0f32; n];
    if n == 0 {
        return out;
    }
    out[0] = f32::INFINITY;
    out[n - 1] = f32::INFINITY;
    let mut stack = vec![(0usize, n - 1, f32::INFINITY)];
    while let Some((a, b, cap)) = stack.pop() {
        if b <= a + 1 {
            continue;
        }
        let (mut best, mut at) = (-1.0f64, a + 1);
        for (i, p) in pts.iter().enumerate().take(b).skip(a + 1) {
            let d = segment_distance(*p, pts[a], pts[b]);
            if d > best {
                (best, at) = (d, i);
            }
        }
        let t = (best as f32).min(cap);
        out[at] = t;
        stack.push((a, at, t));
        stack.push((at, b, t));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::polygon;

    fn ring_points(topo: &Topology, ring: &[ArcRef], tol: f32) -> Vec<WorldPoint> {
        let mut out = Vec::new();
        topo.walk_ring(ring, tol, |p| out.push(p));
        out
    }

    #[test]
    fn neighbours_share_their_border_arc() {
        // Two unit squares side by side, sharing the edge x = 1 (with a midpoint on it).
        let left = MultiPolygon::new(vec![polygon![
            (x: 0.0, y: 0.0), (x: 0.01, y: 0.0), (x: 0.01, y: 0.005), (x: 0.01, y: 0.01), (x: 0.0, y: 0.01)
        ]]);
        let right = MultiPolygon::new(vec![polygon![
            (x: 0.01, y: 0.0), (x: 0.02, y: 0.0), (x: 0.02, y: 0.01), (x: 0.01, y: 0.01), (x: 0.01, y: 0.005)
        ]]);
        let (topo, polys) = Topology::build(&[&left, &right]);
        let l: Vec<usize> = polys[0][0].rings[0].iter().map(|r| r.index()).collect();
        let r: Vec<usize> = polys[1][0].rings[0].iter().map(|r| r.index()).collect();
        let shared: Vec<_> = l.iter().filter(|a| r.contains(a)).collect();
        assert_eq!(shared.len(), 1, "{l:?} {r:?}");
        assert_eq!(topo.arc_points(*shared[0]).len(), 3);
        // The shared arc is walked in opposite directions by the two squares.
        let dir = |p: &TopoPolygon| {
            p.rings[0]
                .iter()
                .find(|a| a.index() == *shared[0])
                .map(|a| a.reversed())
        };
        assert_ne!(dir(&polys[0][0]), dir(&polys[1][0]));
        // Every vertex comes back once, and the exterior runs clockwise on the map.
        let pts = ring_points(&topo, &polys[0][0].rings[0], 0.0);
        assert_eq!(pts.len(), 5);
        assert!(doubled_area(&pts) > 0.0);
    }

    #[test]
    fn a_whole_ring_shared_as_hole_and_island_is_one_arc() {
        let outer = MultiPolygon::new(vec![polygon!(
            exterior: [(x: 0.0, y: 0.0), (x: 0.03, y: 0.0), (x: 0.03, y: 0.03), (x: 0.0, y: 0.03)],
            interiors: [[(x: 0.01, y: 0.01), (x: 0.02, y: 0.01), (x: 0.02, y: 0.02), (x: 0.01, y: 0.02)]],
        )]);
        let island = MultiPolygon::new(vec![polygon![
            (x: 0.01, y: 0.01), (x: 0.01, y: 0.02), (x: 0.02, y: 0.02), (x: 0.02, y: 0.01)
        ]]);
        let (topo, polys) = Topology::build(&[&outer, &island]);
        assert_eq!(topo.arc_count(), 2);
        let hole = polys[0][0].rings[1][0];
        let shell = polys[1][0].rings[0][0];
        assert_eq!(hole.index(), shell.index());
        assert_ne!(hole.reversed(), shell.reversed());
        assert!(doubled_area(&ring_points(&topo, &polys[0][0].rings[1], 0.0)) < 0.0);
    }

    #[test]
    fn thresholds_keep_arc_ends_and_drop_small_wiggles() {
        let pts: Vec<WorldPoint> = vec![[0, 0], [50, 1], [100, 0], [150, 40], [200, 0]];
        let th = douglas_peucker_thresholds(&pts);
        assert!(th[0].is_infinite() && th[4].is_infinite());
        assert!((th[3] - 40.0).abs() < 1e-3);
        assert!(th[1] < 2.0 && th[1] <= th[3]);
    }
}
