//! From world geometry to valid tile geometry: project into one tile's integer grid, clip to
//! the buffered tile square, and repair what snapping to integers broke.
//!
//! Clipping is Sutherland–Hodgman against the buffered square in floating point (exact enough
//! before rounding); rounding to the tile grid can then make a ring touch itself or fold to
//! zero area, so every polygon goes through an integer overlay (`i_overlay`, OGC mode) that
//! splits self-intersections, removes spikes, zero-area rings and repeated points, and orients
//! rings the way MVT 2.1 wants them (exterior positive area in tile coordinates, holes
//! negative).

use i_overlay::core::fill_rule::FillRule;
use i_overlay::core::overlay::{ContourDirection, IntOverlayOptions, Overlay};
use i_overlay::i_float::int::point::IntPoint;
use i_overlay::i_shape::int::shape::{IntContour, IntShapes};

use super::tile_id::TileId;
use super::topology::WorldPoint;

/// One tile's coordinate frame: where it sits in the world and how world units map to tile
/// units.
#[derive(Debug, Clone, Copy)]
pub struct TileFrame {
    origin: [f64; 2],
    scale: f64,
    extent: u32,
    buffer: u32,
}

impl TileFrame {
    /// The frame of `tile` at `extent` units per side with `buffer` units kept around it.
    pub fn new(tile: TileId, extent: u32, buffer: u32) -> Self {
        Self {
            origin: tile.origin(),
            scale: f64::from(extent) / tile.span(),
            extent,
            buffer,
        }
    }

    /// Tile units per side.
    pub fn extent(&self) -> u32 {
        self.extent
    }

    /// A world point in (fractional) tile units.
    pub fn project(&self, p: WorldPoint) -> [f64; 2] {
        [
            (f64::from(p[0]) - self.origin[0]) * self.scale,
            (f64::from(p[1]) - self.origin[1]) * self.scale,
        ]
    }

    /// A lon/lat-free world point in (fractional) tile units.
    pub fn project_f64(&self, p: [f64; 2]) -> [f64; 2] {
        [
            (p[0] - self.origin[0]) * self.scale,
            (p[1] - self.origin[1]) * self.scale,
        ]
    }

    /// Lower and upper limit of the buffered square, in tile units.
    pub fn limits(&self) -> (f64, f64) {
        let b = f64::from(self.buffer);
        (-b, f64::from(self.extent) + b)
    }

    /// The buffered square in world units: west, north, east, south.
    pub fn world_window(&self) -> [f64; 4] {
        let (lo, hi) = self.limits();
        [
            self.origin[0] + lo / self.scale,
            self.origin[1] + lo / self.scale,
            self.origin[0] + hi / self.scale,
            self.origin[1] + hi / self.scale,
        ]
    }

    /// A length in tile units expressed in world units.
    pub fn to_world(&self, tile_units: f64) -> f64 {
        tile_units / self.scale
    }

    /// A length in world units expressed in tile units.
    pub fn to_tile(&self, world_units: f64) -> f64 {
        world_units * self.scale
    }
}

/// Reusable buffers for clipping and repairing polygons, one per rendering thread.
pub struct PolygonClipper {
    a: Vec<[f64; 2]>,
    b: Vec<[f64; 2]>,
    contours: Vec<IntContour>,
    edges: Vec<Edge>,
    overlay: Overlay,
}

impl Default for PolygonClipper {
    fn default() -> Self {
        let options = IntOverlayOptions {
            output_direction: ContourDirection::CounterClockwise,
            min_output_area: 0,
            ..IntOverlayOptions::ogc()
        };
        Self {
            a: Vec::new(),
            b: Vec::new(),
            contours: Vec::new(),
            edges: Vec::new(),
            overlay: Overlay::new_custom(256, options, Default::default()),
        }
    }
}

/// One Sutherland–Hodgman pass: keep the side of the axis-parallel line where `inside` holds.
fn clip_pass(
    input: &[[f64; 2]],
    output: &mut Vec<[f64; 2]>,
    axis: usize,
    limit: f64,
    keep_below: bool,
) {
    output.clear();
    let inside = |p: &[f64; 2]| {
        if keep_below {
            p[axis] <= limit
        } else {
            p[axis] >= limit
        }
    };
    let Some(mut prev) = input.last().copied() else {
        return;
    };
    for &cur in input {
        let (pin, cin) = (inside(&prev), inside(&cur));
        if pin != cin {
            let t = (limit - prev[axis]) / (cur[axis] - prev[axis]);
            let other = 1 - axis;
            let mut hit = [0.0; 2];
            hit[axis] = limit;
            hit[other] = prev[other] + t * (cur[other] - prev[other]);
            output.push(hit);
        }
        if cin {
            output.push(cur);
        }
        prev = cur;
    }
}

impl PolygonClipper {
    /// Starts a new polygon (or multipolygon): forgets the rings added so far.
    pub fn begin(&mut self) {
        self.contours.clear();
    }

    /// Adds one ring given in tile units (any orientation consistent with the rest: exteriors
    /// one way, holes the other), clipped to `lo..=hi` on both axes and snapped to integers.
    pub fn add_ring(&mut self, ring: &[[f64; 2]], lo: f64, hi: f64) {
        let (mut min, mut max) = ([f64::MAX; 2], [f64::MIN; 2]);
        for p in ring {
            for k in 0..2 {
                min[k] = min[k].min(p[k]);
                max[k] = max[k].max(p[k]);
            }
        }
        if ring.len() < 3 || max[0] < lo || max[1] < lo || min[0] > hi || min[1] > hi {
            return;
        }
        let clipped: &[[f64; 2]] = if min[0] >= lo && min[1] >= lo && max[0] <= hi && max[1] <= hi {
            ring
        } else {
            self.a.clear();
            self.a.extend_from_slice(ring);
            for (axis, limit, keep_below) in
                [(0, lo, false), (0, hi, true), (1, lo, false), (1, hi, true)]
            {
                clip_pass(&self.a, &mut self.b, axis, limit, keep_below);
                std::mem::swap(&mut self.a, &mut self.b);
            }
            &self.a
        };
        let mut contour: IntContour = Vec::with_capacity(clipped.len());
        for p in clipped {
            let q = IntPoint::new(p[0].round() as i32, p[1].round() as i32);
            if contour.last() != Some(&q) {
                contour.push(q);
            }
        }
        while contour.len() > 1 && contour.first() == contour.last() {
            contour.pop();
        }
        if contour.len() >= 3 {
            self.contours.push(contour);
        }
    }

    /// The polygon added since [`begin`](Self::begin), made valid: a list of polygons, each an
    /// exterior ring (positive area in tile coordinates) followed by its holes.
    pub fn finish(&mut self) -> IntShapes {
        if self.contours.is_empty() {
            return Vec::new();
        }
        // Most grids are one ring that snapping left simple: checking that is far cheaper than
        // the overlay, which is kept for everything else.
        if let [ring] = self.contours.as_mut_slice()
            && make_simple_exterior(ring, &mut self.edges)
        {
            return vec![vec![std::mem::take(ring)]];
        }
        self.overlay
            .simplify_shape(&self.contours, FillRule::Positive)
            .unwrap_or_else(|| vec![self.contours.clone()])
    }
}

/// Twice the signed area of the triangle `a b c` (zero when they are collinear).
fn cross(a: IntPoint, b: IntPoint, c: IntPoint) -> i64 {
    (i64::from(b.x) - i64::from(a.x)) * (i64::from(c.y) - i64::from(a.y))
        - (i64::from(b.y) - i64::from(a.y)) * (i64::from(c.x) - i64::from(a.x))
}

/// Whether `b` lies strictly between `a` and `c` on their line (given the three collinear).
fn strictly_between(a: IntPoint, b: IntPoint, c: IntPoint) -> bool {
    let dot = (i64::from(b.x) - i64::from(a.x)) * (i64::from(c.x) - i64::from(b.x))
        + (i64::from(b.y) - i64::from(a.y)) * (i64::from(c.y) - i64::from(b.y));
    dot > 0
}

/// Drops vertices in the middle of a straight run, in place; false when the ring doubles back
/// on itself (a spike), which only the overlay can repair. The ring describes the same shape
/// either way.
fn drop_straight_vertices(ring: &mut IntContour) -> bool {
    // ring[..w] is the cleaned part so far; ring[r + 1..] is not looked at yet.
    let mut w = 0;
    for r in 0..ring.len() {
        ring[w] = ring[r];
        w += 1;
        while w >= 3 {
            let (a, b, c) = (ring[w - 3], ring[w - 2], ring[w - 1]);
            if cross(a, b, c) != 0 {
                break;
            }
            if !strictly_between(a, b, c) {
                ring.drain(w..=r);
                return false;
            }
            ring[w - 2] = c;
            w -= 1;
        }
    }
    ring.truncate(w);
    // Where the ring closes: the last vertex between its neighbours, then the first.
    loop {
        let n = ring.len();
        if n < 3 {
            return false;
        }
        let (a, b, c) = (ring[n - 2], ring[n - 1], ring[0]);
        if cross(a, b, c) == 0 {
            if !strictly_between(a, b, c) {
                return false;
            }
            ring.pop();
            continue;
        }
        let (a, b, c) = (ring[n - 1], ring[0], ring[1]);
        if cross(a, b, c) == 0 {
            if !strictly_between(a, b, c) {
                return false;
            }
            ring.remove(0);
            continue;
        }
        return true;
    }
}

/// One ring edge for the sweep in [`is_simple`]: its x range, and the index of its first vertex.
#[derive(Debug, Clone, Copy)]
struct Edge {
    x_min: i32,
    x_max: i32,
    from: u32,
}

/// Whether closed segments `p q` and `r s` share any point.
fn segments_meet(p: IntPoint, q: IntPoint, r: IntPoint, s: IntPoint) -> bool {
    let (d1, d2) = (cross(p, q, r), cross(p, q, s));
    let (d3, d4) = (cross(r, s, p), cross(r, s, q));
    if d1 == 0 && d2 == 0 {
        // Collinear: they meet when their extents overlap on both axes.
        let overlap = |a0: i32, a1: i32, b0: i32, b1: i32| {
            a0.min(a1) <= b0.max(b1) && b0.min(b1) <= a0.max(a1)
        };
        return overlap(p.x, q.x, r.x, s.x) && overlap(p.y, q.y, r.y, s.y);
    }
    d1.signum() * d2.signum() <= 0 && d3.signum() * d4.signum() <= 0
}

/// Whether no two edges of `ring` meet except neighbours at their shared vertex (`edges` is
/// scratch space).
fn is_simple(ring: &[IntPoint], edges: &mut Vec<Edge>) -> bool {
    if ring.len() <= SMALL_RING {
        is_simple_small(ring)
    } else {
        is_simple_sweep(ring, edges)
    }
}

/// [`is_simple`] for large rings: edges sorted by x, each compared with those overlapping it.
fn is_simple_sweep(ring: &[IntPoint], edges: &mut Vec<Edge>) -> bool {
    let n = ring.len();
    edges.clear();
    edges.extend((0..n).map(|i| {
        let (p, q) = (ring[i], ring[(i + 1) % n]);
        Edge {
            x_min: p.x.min(q.x),
            x_max: p.x.max(q.x),
            from: i as u32,
        }
    }));
    edges.sort_unstable_by_key(|e| e.x_min);
    for (k, e) in edges.iter().enumerate() {
        let i = e.from as usize;
        let (p, q) = (ring[i], ring[(i + 1) % n]);
        for f in edges[k + 1..].iter().take_while(|f| f.x_min <= e.x_max) {
            let j = f.from as usize;
            let neighbours = j == (i + 1) % n || i == (j + 1) % n;
            if neighbours {
                continue;
            }
            if segments_meet(p, q, ring[j], ring[(j + 1) % n]) {
                return false;
            }
        }
    }
    true
}

/// Rings up to this many vertices are checked pair by pair: cheaper than sorting edges.
const SMALL_RING: usize = 24;

/// [`is_simple`] for small rings: every pair of edges that are not neighbours.
fn is_simple_small(ring: &[IntPoint]) -> bool {
    let n = ring.len();
    for i in 0..n {
        let (p, q) = (ring[i], ring[(i + 1) % n]);
        // Edge i's neighbours are i - 1 and i + 1; the last edge neighbours the first.
        let last = if i == 0 { n - 1 } else { n };
        for j in i + 2..last {
            let (r, s) = (ring[j], ring[(j + 1) % n]);
            let apart = p.x.max(q.x) < r.x.min(s.x)
                || r.x.max(s.x) < p.x.min(q.x)
                || p.y.max(q.y) < r.y.min(s.y)
                || r.y.max(s.y) < p.y.min(q.y);
            if !apart && segments_meet(p, q, r, s) {
                return false;
            }
        }
    }
    true
}

/// Makes `ring` a valid MVT exterior as it stands, if it can be without the overlay: no
/// straight-run vertices, no spikes, no self-contact, positive area. False leaves the ring for
/// the overlay (possibly with straight-run vertices dropped, which changes nothing there).
fn make_simple_exterior(ring: &mut IntContour, edges: &mut Vec<Edge>) -> bool {
    drop_straight_vertices(ring) && doubled_area(ring) > 0 && is_simple(ring, edges)
}

/// Twice the signed area of an integer ring (positive = exterior in MVT terms).
pub fn doubled_area(ring: &[IntPoint]) -> i64 {
    let n = ring.len();
    (0..n)
        .map(|i| {
            let (p, q) = (ring[i], ring[(i + 1) % n]);
            i64::from(p.x) * i64::from(q.y) - i64::from(q.x) * i64::from(p.y)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(x0: f64, y0: f64, x1: f64, y1: f64) -> Vec<[f64; 2]> {
        vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
    }

    #[test]
    fn clips_to_the_buffered_square_and_orients_the_exterior_positive() {
        let mut c = PolygonClipper::default();
        c.begin();
        // Clockwise on screen (y down): positive area, the orientation the topology hands out.
        c.add_ring(&square(-500.0, -500.0, 100.0, 100.0), -64.0, 4160.0);
        let shapes = c.finish();
        assert_eq!(shapes.len(), 1);
        let ring = &shapes[0][0];
        assert!(doubled_area(ring) > 0, "{ring:?}");
        assert_eq!(doubled_area(ring), 2 * 164 * 164);
        assert!(ring.iter().all(|p| p.x >= -64 && p.y >= -64));
    }

    #[test]
    fn holes_stay_holes_and_outside_rings_vanish() {
        let mut c = PolygonClipper::default();
        c.begin();
        c.add_ring(&square(0.0, 0.0, 1000.0, 1000.0), -64.0, 4160.0);
        let mut hole = square(100.0, 100.0, 200.0, 200.0);
        hole.reverse();
        c.add_ring(&hole, -64.0, 4160.0);
        c.add_ring(&square(9000.0, 9000.0, 9100.0, 9100.0), -64.0, 4160.0);
        let shapes = c.finish();
        assert_eq!(shapes.len(), 1);
        assert_eq!(shapes[0].len(), 2);
        assert!(doubled_area(&shapes[0][0]) > 0 && doubled_area(&shapes[0][1]) < 0);
    }

    #[test]
    fn a_twisted_ring_keeps_its_exterior_lobe_only() {
        // A figure-eight whose lobes wind opposite ways: the positive one is the polygon, the
        // negative one is an inverted sliver that snapping produced.
        let mut c = PolygonClipper::default();
        c.begin();
        c.add_ring(
            &[[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]],
            -64.0,
            4160.0,
        );
        let shapes = c.finish();
        assert_eq!(shapes.len(), 1, "{shapes:?}");
        assert!(doubled_area(&shapes[0][0]) > 0);
    }

    /// The overlay's answer for one ring, for comparison with the fast path.
    fn overlay_of(ring: &IntContour) -> IntShapes {
        let mut c = PolygonClipper::default();
        c.overlay
            .simplify_shape(std::slice::from_ref(ring), FillRule::Positive)
            .unwrap_or_else(|| vec![vec![ring.clone()]])
    }

    fn pts(v: &[(i32, i32)]) -> IntContour {
        v.iter().map(|&(x, y)| IntPoint::new(x, y)).collect()
    }

    #[test]
    fn the_fast_path_takes_simple_rings_and_leaves_the_rest_to_the_overlay() {
        let mut edges = Vec::new();
        // A square with a vertex in the middle of one side: taken, the vertex dropped.
        let mut ok = pts(&[(0, 0), (5, 0), (10, 0), (10, 10), (0, 10)]);
        let positive = doubled_area(&ok) > 0;
        if !positive {
            ok.reverse();
        }
        assert!(make_simple_exterior(&mut ok, &mut edges));
        assert_eq!(ok.len(), 4);
        // A spike (doubling back), a bow tie, a ring touching itself at a vertex, a hole
        // alone: all left to the overlay.
        let mut spike = pts(&[(0, 0), (10, 0), (10, 10), (10, 20), (10, 10), (0, 10)]);
        let mut bow = pts(&[(0, 0), (10, 10), (10, 0), (0, 10)]);
        let mut touch = pts(&[(0, 0), (20, 0), (20, 20), (10, 0), (0, 20)]);
        for r in [&mut spike, &mut bow, &mut touch] {
            if doubled_area(r) < 0 {
                r.reverse();
            }
            assert!(!make_simple_exterior(r, &mut edges), "{r:?}");
        }
        let mut hole = ok.clone();
        hole.reverse();
        assert!(!make_simple_exterior(&mut hole, &mut edges));
    }

    proptest::proptest! {
        /// Whenever the fast path takes a ring, the overlay gives the same polygon: one ring,
        /// the same area, the same vertices.
        #[test]
        fn the_fast_path_agrees_with_the_overlay(
            radii in proptest::collection::vec(0.5f64..12.0, 3..40)
        ) {
            // A star-shaped ring snapped to integers: usually simple, sometimes broken by the
            // snapping (spikes, touching vertices, straight runs), as tile rings are.
            let n = radii.len() as f64;
            let star: Vec<(i32, i32)> = radii
                .iter()
                .enumerate()
                .map(|(k, r)| {
                    let a = std::f64::consts::TAU * k as f64 / n;
                    ((r * a.cos()).round() as i32, (r * a.sin()).round() as i32)
                })
                .collect();
            let mut ring = pts(&star);
            ring.dedup();
            if doubled_area(&ring) < 0 {
                ring.reverse();
            }
            let mut fast = ring.clone();
            let mut cleaned = ring.clone();
            if drop_straight_vertices(&mut cleaned) {
                proptest::prop_assert_eq!(
                    is_simple_small(&cleaned),
                    is_simple_sweep(&cleaned, &mut Vec::new())
                );
            }
            if make_simple_exterior(&mut fast, &mut Vec::new()) {
                let slow = overlay_of(&ring);
                proptest::prop_assert_eq!(slow.len(), 1, "{:?} -> {:?}", ring, slow);
                proptest::prop_assert_eq!(slow[0].len(), 1);
                let other = &slow[0][0];
                proptest::prop_assert_eq!(doubled_area(other).abs(), doubled_area(&fast));
                let mut a = fast.clone();
                let mut b = other.clone();
                a.sort_by_key(|p| (p.x, p.y));
                b.sort_by_key(|p| (p.x, p.y));
                proptest::prop_assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn a_lone_hole_is_not_filled() {
        let mut c = PolygonClipper::default();
        c.begin();
        let mut hole = square(100.0, 100.0, 200.0, 200.0);
        hole.reverse();
        c.add_ring(&hole, -64.0, 4160.0);
        assert!(c.finish().is_empty());
    }
}
