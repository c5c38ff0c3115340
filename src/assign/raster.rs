//! The fast path: a raster over the city whose cells remember the grid that wholly contains
//! them, so most points are answered with one array read and no polygon test.
//!
//! A cell is *clean* when no level-3 or micro-grid boundary crosses it and exactly one level-3
//! grid (and at most one of its micro-grids) covers it; then the whole cell, and every point in
//! it, belongs to that grid. Cells crossed by a boundary, or in a gap, say *exact*: the
//! R-tree path decides. Cells far from every grid say *nowhere*. A flag marks cells that an
//! exclusive grid touches.

use geo::MultiPolygon;

use crate::grid::code::Level;
use crate::grid::model::{GridId, GridSet};

/// Cell value: far from every grid (beyond the snapping tolerance) and in no area at all.
pub(super) const NOWHERE: u32 = 0;
/// Cell value: needs the exact path.
pub(super) const EXACT: u32 = 1 << 30;
/// Flag: an exclusive grid touches or covers this cell.
pub(super) const EXCLUSIVE: u32 = 1 << 31;
const CONFLICT: u32 = u32::MAX;

/// The raster; see the module documentation.
pub(super) struct Raster {
    x0: f64,
    y0: f64,
    inv: f64,
    nx: usize,
    ny: usize,
    cells: Vec<u32>,
}

/// What a cell says about a point in it.
pub(super) enum Cell {
    /// Wholly inside this grid (a micro-grid, or a level-3 grid with no micro-grid here).
    Inside(GridId),
    /// Needs the exact path.
    Exact,
    /// Far from everything: the city queue.
    Nowhere,
}

impl Raster {
    /// Rasterizes a grid set with cells of `cell_deg` degrees; `margin_deg` is the snapping
    /// tolerance in degrees (cells within it of a level-3 grid are never "nowhere").
    pub fn build(set: &GridSet, cell_deg: f64, margin_deg: f64) -> Self {
        let mut bbox = [
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ];
        for g in set.grids() {
            for p in g.geometry.iter() {
                for c in &p.exterior().0 {
                    bbox = [
                        bbox[0].min(c.x),
                        bbox[1].min(c.y),
                        bbox[2].max(c.x),
                        bbox[3].max(c.y),
                    ];
                }
            }
        }
        if !bbox[0].is_finite() {
            bbox = [0.0, 0.0, 0.0, 0.0];
        }
        let pad = margin_deg + 2.0 * cell_deg;
        let (x0, y0) = (bbox[0] - pad, bbox[1] - pad);
        let inv = 1.0 / cell_deg;
        let nx = (((bbox[2] + pad - x0) * inv).ceil() as usize).max(1);
        let ny = (((bbox[3] + pad - y0) * inv).ceil() as usize).max(1);
        let mut r = Raster {
            x0,
            y0,
            inv,
            nx,
            ny,
            cells: vec![NOWHERE; nx * ny],
        };
        let n = nx * ny;
        let mut touched = vec![false; n];
        let mut level3 = vec![0u32; n];
        let mut micro = vec![0u32; n];
        let mut higher = vec![false; n];
        let mut exclusive = vec![false; n];
        for (id, g) in set.grids().iter().enumerate() {
            let id = id as u32;
            match g.level() {
                Level::Three | Level::Micro => {
                    r.edges(&g.geometry, |c| touched[c] = true);
                    let target = if g.level() == Level::Three {
                        &mut level3
                    } else {
                        &mut micro
                    };
                    r.fill(&g.geometry, |c| {
                        target[c] = if target[c] == 0 { id + 1 } else { CONFLICT };
                    });
                }
                Level::Exclusive => {
                    r.edges(&g.geometry, |c| exclusive[c] = true);
                    r.fill(&g.geometry, |c| exclusive[c] = true);
                }
                _ => {
                    r.edges(&g.geometry, |c| higher[c] = true);
                    r.fill(&g.geometry, |c| higher[c] = true);
                }
            }
        }
        // Cells near a level-3 grid must take the exact path so snapping can happen.
        let reach = (margin_deg * inv).ceil() as usize + 1;
        let near = dilate(
            &level3
                .iter()
                .zip(&touched)
                .map(|(&l, &t)| l != 0 || t)
                .collect::<Vec<_>>(),
            nx,
            ny,
            reach,
        );
        for c in 0..n {
            let value = if touched[c] || level3[c] == CONFLICT || micro[c] == CONFLICT {
                EXACT
            } else if level3[c] != 0 {
                let l3 = level3[c] - 1;
                let leaf = match micro[c] {
                    0 => Some(l3),
                    m if set.parent(m - 1) == Some(l3) => Some(m - 1),
                    _ => None,
                };
                match leaf {
                    Some(id) if id + 1 < EXACT => id + 1,
                    _ => EXACT,
                }
            } else if near[c] || higher[c] {
                EXACT
            } else {
                NOWHERE
            };
            r.cells[c] = value | if exclusive[c] { EXCLUSIVE } else { 0 };
        }
        r
    }

    /// Number of cells and how many of them are clean, exact and nowhere (for reports).
    pub fn census(&self) -> [usize; 3] {
        let mut out = [0; 3];
        for &c in &self.cells {
            match c & !EXCLUSIVE {
                NOWHERE => out[2] += 1,
                EXACT => out[1] += 1,
                _ => out[0] += 1,
            }
        }
        out
    }

    /// Memory held by the cells, bytes.
    pub fn bytes(&self) -> usize {
        self.cells.len() * 4
    }

    /// Looks a point up; also says whether an exclusive grid may contain it.
    #[inline]
    pub fn get(&self, x: f64, y: f64) -> (Cell, bool) {
        let fx = (x - self.x0) * self.inv;
        let fy = (y - self.y0) * self.inv;
        if !(fx >= 0.0 && fy >= 0.0) {
            return (Cell::Nowhere, false);
        }
        let (i, j) = (fx as usize, fy as usize);
        if i >= self.nx || j >= self.ny {
            return (Cell::Nowhere, false);
        }
        let v = self.cells[j * self.nx + i];
        let excl = v & EXCLUSIVE != 0;
        let cell = match v & !EXCLUSIVE {
            NOWHERE => Cell::Nowhere,
            EXACT => Cell::Exact,
            id => Cell::Inside(id - 1),
        };
        (cell, excl)
    }

    /// Calls `mark` for every cell an edge of the shape touches (conservatively).
    fn edges(&self, shape: &MultiPolygon<f64>, mut mark: impl FnMut(usize)) {
        for poly in shape {
            for ring in std::iter::once(poly.exterior()).chain(poly.interiors()) {
                for seg in ring.0.windows(2) {
                    let (ax, ay) = (
                        (seg[0].x - self.x0) * self.inv,
                        (seg[0].y - self.y0) * self.inv,
                    );
                    let (bx, by) = (
                        (seg[1].x - self.x0) * self.inv,
                        (seg[1].y - self.y0) * self.inv,
                    );
                    const EPS: f64 = 1e-6;
                    let j0 = (ay.min(by) - EPS).floor().max(0.0) as usize;
                    let j1 = ((ay.max(by) + EPS).floor() as usize).min(self.ny - 1);
                    for j in j0..=j1 {
                        // The part of the segment within row band [j, j+1].
                        let (lo, hi) = (j as f64 - EPS, j as f64 + 1.0 + EPS);
                        let (mut xa, mut xb);
                        if (by - ay).abs() < 1e-12 {
                            xa = ax.min(bx);
                            xb = ax.max(bx);
                        } else {
                            let t0 = ((lo - ay) / (by - ay)).clamp(0.0, 1.0);
                            let t1 = ((hi - ay) / (by - ay)).clamp(0.0, 1.0);
                            xa = ax + (bx - ax) * t0;
                            xb = ax + (bx - ax) * t1;
                            if xa > xb {
                                std::mem::swap(&mut xa, &mut xb);
                            }
                        }
                        let i0 = (xa - EPS).floor().max(0.0) as usize;
                        let i1 = ((xb + EPS).floor().max(0.0) as usize).min(self.nx - 1);
                        for i in i0..=i1 {
                            mark(j * self.nx + i);
                        }
                    }
                }
            }
        }
    }

    /// Calls `mark` for every cell whose centre lies inside the shape (even-odd rule).
    fn fill(&self, shape: &MultiPolygon<f64>, mut mark: impl FnMut(usize)) {
        let mut xs: Vec<f64> = Vec::new();
        for poly in shape {
            let rings: Vec<_> = std::iter::once(poly.exterior())
                .chain(poly.interiors())
                .collect();
            let (mut ymin, mut ymax) = (f64::INFINITY, f64::NEG_INFINITY);
            for c in &poly.exterior().0 {
                ymin = ymin.min(c.y);
                ymax = ymax.max(c.y);
            }
            let j0 = (((ymin - self.y0) * self.inv - 0.5).ceil().max(0.0)) as usize;
            let j1 =
                ((((ymax - self.y0) * self.inv - 0.5).floor()) as isize).min(self.ny as isize - 1);
            for j in j0 as isize..=j1 {
                let yc = self.y0 + (j as f64 + 0.5) / self.inv;
                xs.clear();
                for ring in &rings {
                    for seg in ring.0.windows(2) {
                        let (a, b) = (seg[0], seg[1]);
                        if (a.y <= yc) != (b.y <= yc) {
                            xs.push(a.x + (yc - a.y) / (b.y - a.y) * (b.x - a.x));
                        }
                    }
                }
                xs.sort_by(f64::total_cmp);
                for pair in xs.chunks(2) {
                    let [xa, xb] = pair else { continue };
                    let i0 = ((xa - self.x0) * self.inv - 0.5).ceil().max(0.0) as usize;
                    let i1 = (((xb - self.x0) * self.inv - 0.5).floor() as isize)
                        .min(self.nx as isize - 1);
                    for i in i0 as isize..=i1 {
                        mark(j as usize * self.nx + i as usize);
                    }
                }
            }
        }
    }
}

/// Marks every cell within `r` cells (Chebyshev) of a marked one.
fn dilate(src: &[bool], nx: usize, ny: usize, r: usize) -> Vec<bool> {
    let mut rows = vec![false; src.len()];
    for j in 0..ny {
        let row = &src[j * nx..(j + 1) * nx];
        let mut last: Option<usize> = None;
        // distance to nearest marked cell to the left, then right
        let mut out = vec![false; nx];
        for i in 0..nx {
            if row[i] {
                last = Some(i);
            }
            if last.is_some_and(|l| i - l <= r) {
                out[i] = true;
            }
        }
        last = None;
        for i in (0..nx).rev() {
            if row[i] {
                last = Some(i);
            }
            if last.is_some_and(|l| l - i <= r) {
                out[i] = true;
            }
        }
        rows[j * nx..(j + 1) * nx].copy_from_slice(&out);
    }
    let mut outv = vec![false; src.len()];
    for i in 0..nx {
        let mut last: Option<usize> = None;
        for j in 0..ny {
            if rows[j * nx + i] {
                last = Some(j);
            }
            if last.is_some_and(|l| j - l <= r) {
                outv[j * nx + i] = true;
            }
        }
        last = None;
        for j in (0..ny).rev() {
            if rows[j * nx + i] {
                last = Some(j);
            }
            if last.is_some_and(|l| l - j <= r) {
                outv[j * nx + i] = true;
            }
        }
    }
    outv
}
