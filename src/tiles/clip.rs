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
        self.overlay
            .simplify_shape(&self.contours, FillRule::Positive)
            .unwrap_or_else(|| vec![self.contours.clone()])
    }
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
