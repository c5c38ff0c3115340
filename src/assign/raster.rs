//! The fast path: a raster over the city that answers most points with one or two memory
//! reads and a handful of orientation tests, never a whole-polygon test.
//!
//! Every cell is one of:
//! - *clean*: inside exactly one leaf grid (a micro-grid, or a level-3 grid where it has no
//!   micro-grid), crossed by no boundary and covered by no exclusive grid: the answer is stored;
//! - *local*: crossed by boundaries or covered by exclusive grids. The cell lists its candidate
//!   grids (level-3, micro, exclusive), whether the cell centre lies in each, and the few edges of
//!   each that cross the cell. A point is inside a candidate when the segment from the centre to
//!   the point crosses an odd number of those edges, flipped if the centre is outside: exact
//!   orientation predicates, no edges beyond the cell;
//! - *exact*: rare awkward cells (a centre on an edge, overlapping data, gaps near grids):
//!   the R-tree path decides;
//! - *nowhere*: far from every grid: the city queue.

use std::sync::atomic::{AtomicU32, Ordering};

use geo::MultiPolygon;
use rayon::prelude::*;
use smallvec::SmallVec;

use crate::grid::code::Level;
use crate::grid::model::{GridId, GridSet, bounds};
use crate::grid::quality::edges_cancel;

const NOWHERE: u32 = 0;
const EXACT: u32 = 1;
const LOCAL: u32 = 1 << 31;
/// Needs the exact path, and no higher-level area reaches the cell (no fallback possible).
const EXACT_NO_AREA: u32 = 2;
const CLEAN_OFFSET: u32 = 3;
const CONFLICT: u32 = u32::MAX;
const CENTRE_INSIDE: u32 = 1 << 31;
/// Edges of one candidate a local cell may hold (one side bit each in the count word).
const MAX_EDGES: u32 = 16;
/// Centres closer than this (degrees) to a crossing are not trusted to the float scanline.
const CENTRE_EPS: f64 = 1e-9;

/// The raster; see the module documentation.
pub(super) struct Raster {
    x0: f64,
    y0: f64,
    inv: f64,
    cell: f64,
    nx: usize,
    ny: usize,
    cells: Vec<u32>,
    /// Local cell records, each contiguous so a lookup touches one place: the number of
    /// candidates, then per candidate its grid id (with [`CENTRE_INSIDE`]), its edge count
    /// (low 16 bits) with the side of each edge the cell centre lies on (high 16 bits), and
    /// its edges as f32 offsets from the cell centre `(ax, ay, bx, by)`, stored as bits.
    blob: Vec<u32>,
    /// Per grid: its role, and for a micro-grid its level-3 parent. Small enough to stay in
    /// cache, unlike the grids themselves.
    roles: Vec<Option<Role>>,
    micro_parent: Vec<u32>,
}

/// A cell read for a point, possibly with the head of its local record.
#[derive(Clone, Copy)]
pub(super) struct Read {
    cell: usize,
    value: u32,
    candidates: Option<u32>,
}

/// What the raster says about a point.
pub(super) enum Cell {
    /// The point's level-3 grid (interior), its micro-grid, and the exclusive grids covering it.
    Known {
        level3: GridId,
        micro: Option<GridId>,
        exclusive: smallvec::SmallVec<[GridId; 2]>,
    },
    /// Needs the exact path; `areas` is false when no higher-level area can contain the point.
    Exact { areas: bool },
    /// Far from everything: the city queue.
    Nowhere,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Role {
    Level3,
    Micro,
    Exclusive,
}

fn role(set: &GridSet, id: GridId) -> Option<Role> {
    match set.grid(id).level() {
        Level::Three => Some(Role::Level3),
        Level::Micro => Some(Role::Micro),
        Level::Exclusive => Some(Role::Exclusive),
        _ => None,
    }
}

fn widen(p: [f32; 2]) -> [f64; 2] {
    [f64::from(p[0]), f64::from(p[1])]
}

/// The side of line `a`→`b` that `c` lies on (true: left), when the stored coordinates decide
/// it: they carry f32 rounding (relative 2^-24) and the f64 subtraction of the cell centre,
/// so a sign smaller than that error could be wrong and gives `None`.
#[inline]
fn orient(a: [f64; 2], b: [f64; 2], c: [f64; 2]) -> Option<bool> {
    let (f1, f2, f3, f4) = (b[0] - a[0], c[1] - a[1], b[1] - a[1], c[0] - a[0]);
    let det = f1 * f2 - f3 * f4;
    let m = a[0]
        .abs()
        .max(a[1].abs())
        .max(b[0].abs())
        .max(b[1].abs())
        .max(c[0].abs())
        .max(c[1].abs());
    let delta = m * (1.0 / 4_194_304.0) + 1e-13; // 2^-22 of the magnitude, plus an absolute floor
    let bound = 4.0 * delta * (f1.abs() + f2.abs() + f3.abs() + f4.abs()) + 16.0 * delta * delta;
    if det > bound {
        Some(true)
    } else if det < -bound {
        Some(false)
    } else {
        None
    }
}

impl Raster {
    /// Rasterizes a grid set with cells of `cell_deg` degrees; `margin_deg` is the snapping
    /// tolerance in degrees (cells within it of a level-3 grid always take the exact path).
    pub fn build(set: &GridSet, cell_deg: f64, margin_deg: f64) -> Self {
        let b = bounds(set.grids().iter().map(|g| &g.geometry)).unwrap_or_else(|| {
            geo::Rect::new(geo::coord! {x: 0., y: 0.}, geo::coord! {x: 0., y: 0.})
        });
        let bbox = [b.min().x, b.min().y, b.max().x, b.max().y];
        let pad = margin_deg + 2.0 * cell_deg;
        let (x0, y0) = (bbox[0] - pad, bbox[1] - pad);
        let inv = 1.0 / cell_deg;
        let nx = (((bbox[2] + pad - x0) * inv).ceil() as usize).max(1);
        let ny = (((bbox[3] + pad - y0) * inv).ceil() as usize).max(1);
        let mut r = Raster {
            x0,
            y0,
            inv,
            cell: cell_deg,
            nx,
            ny,
            cells: vec![NOWHERE; nx * ny],
            blob: Vec::new(),
            roles: (0..set.len() as u32).map(|id| role(set, id)).collect(),
            micro_parent: (0..set.len() as u32)
                .map(|id| set.parent(id).unwrap_or(u32::MAX))
                .collect(),
        };
        advise_huge_pages(r.cells.as_ptr(), r.cells.len());
        let n = nx * ny;

        // 1. Boundaries: which cells each candidate's edges touch.
        let mut touched = vec![false; n];
        let mut higher = vec![false; n];
        // Level-3 grids whose edges cancel against their micro-grids' need no candidates of
        // their own: the micro-grid found names its level-3 grid, and their edges are the
        // micro-grids'. Cancelling edges are enough (see `edges_cancel`): a point found in
        // exactly one micro-grid is inside its level-3 grid, and a point in two is sent to
        // the exact path, so the validity half of the quality report's check is not needed.
        let tiled: Vec<bool> = (0..set.len() as u32)
            .into_par_iter()
            .map(|id| role(set, id) == Some(Role::Level3) && edges_cancel(set, id))
            .collect();
        let candidates: Vec<u32> = (0..set.len() as u32)
            .filter(|&id| role(set, id).is_some() && !tiled[id as usize])
            .collect();
        // Edge e runs from verts[e] to verts[e + 1]; each candidate's rings are laid out in
        // turn, so a candidate's first edge index is the vertex count before it.
        let ring_coords = |id: u32| {
            set.grid(id)
                .geometry
                .iter()
                .flat_map(|p| std::iter::once(p.exterior()).chain(p.interiors()))
        };
        let mut firsts = Vec::with_capacity(candidates.len());
        let mut total = 0u32;
        for &id in &candidates {
            firsts.push(total);
            total += ring_coords(id).map(|r| r.0.len() as u32).sum::<u32>();
        }
        let verts: Vec<[f64; 2]> = candidates
            .iter()
            .flat_map(|&id| ring_coords(id).flat_map(|r| r.0.iter().map(|c| [c.x, c.y])))
            .collect();
        let touches: Vec<(u32, u32, u32)> = candidates
            .par_iter()
            .zip(&firsts)
            .flat_map_iter(|(&id, &first)| {
                let mut out = Vec::new(); // (cell, grid, edge)
                let mut at = first;
                for ring in ring_coords(id) {
                    for (k, seg) in ring.0.windows(2).enumerate() {
                        r.segment_cells(seg[0], seg[1], |c| {
                            out.push((c as u32, id, at + k as u32))
                        });
                    }
                    at += ring.0.len() as u32;
                }
                out
            })
            .collect();
        for t in &touches {
            touched[t.0 as usize] = true;
        }
        for (id, g) in set.grids().iter().enumerate() {
            let id = id as u32;
            if role(set, id).is_none() {
                // Higher-level areas matter where no level-3 grid is (属地兜底). Their edges mark
                // cells; interiors are filled for the top of the hierarchy only, since every
                // area lies inside its root.
                r.edge_cells(&g.geometry, |c| higher[c] = true);
                if set.parent(id).is_none() {
                    r.fill(&g.geometry, |c| higher[c] = true, |_| {});
                }
            }
        }

        // 2. Interiors: which candidate covers each cell centre, grids filled in parallel (a
        //    cell claimed twice at one level becomes a conflict whatever the order).
        let level3: Vec<AtomicU32> = (0..n).into_par_iter().map(|_| AtomicU32::new(0)).collect();
        let micro: Vec<AtomicU32> = (0..n).into_par_iter().map(|_| AtomicU32::new(0)).collect();
        let filled: Vec<Filled> = (0..set.len() as u32)
            .into_par_iter()
            .filter_map(|id| Some((id, role(set, id)?)))
            .filter(|&(id, _)| !tiled[id as usize])
            .map(|(id, role)| {
                let (mut centres, mut ambiguous) = (Vec::new(), Vec::new());
                let t = if role == Role::Level3 {
                    &level3
                } else {
                    &micro
                };
                r.fill(
                    &set.grid(id).geometry,
                    |c| {
                        if touched[c] || role == Role::Exclusive {
                            centres.push((c as u32, id));
                        } else if t[c]
                            .compare_exchange(0, id + 1, Ordering::Relaxed, Ordering::Relaxed)
                            .is_err()
                        {
                            t[c].store(CONFLICT, Ordering::Relaxed);
                        }
                    },
                    |c| ambiguous.push(c),
                );
                (centres, ambiguous)
            })
            .collect();
        let mut ambiguous = vec![false; n];
        let mut centres: Vec<(u32, u32)> = Vec::new(); // (cell, grid) where cell is local
        for (c, a) in filled {
            centres.extend(c);
            for cell in a {
                ambiguous[cell] = true;
            }
        }
        // Every fill is done: plain reads from here on.
        let level3 = |c: usize| level3[c].load(Ordering::Relaxed);
        let micro = |c: usize| micro[c].load(Ordering::Relaxed);

        // 3. Classify, in bands of rows on all cores: each band takes its touches and centres
        //    (grouped by band, then sorted within it) and builds its own local records, which
        //    are joined and re-based at the end. Cells near a level-3 grid but in none must
        //    take the exact path (snapping).
        let reach = (margin_deg * inv).ceil() as usize + 1;
        let present = |c: usize| level3(c) != 0 || micro(c) != 0 || touched[c];
        let band_cells = BAND_ROWS * nx;
        let bands = n.div_ceil(band_cells);
        let touches = group_by_band(touches, |t| t.0, band_cells, bands);
        let centres = group_by_band(centres, |t| t.0, band_cells, bands);
        let mut cells = std::mem::take(&mut r.cells);
        let blobs: Vec<Vec<u32>> = cells
            .par_chunks_mut(band_cells)
            .enumerate()
            .map(|(b, out)| {
                let (touches, centres) = (&touches[b], &centres[b]);
                let first_row = b * BAND_ROWS;
                let near = near_rows(
                    &present,
                    nx,
                    ny,
                    first_row..(first_row + BAND_ROWS).min(ny),
                    reach,
                );
                let mut blob = Vec::new();
                let (mut ti, mut ci) = (0usize, 0usize);
                for (k, slot) in out.iter_mut().enumerate() {
                    let c = b * band_cells + k;
                    let t_begin = ti;
                    while ti < touches.len() && touches[ti].0 as usize == c {
                        ti += 1;
                    }
                    let c_begin = ci;
                    while ci < centres.len() && centres[ci].0 as usize == c {
                        ci += 1;
                    }
                    let local = ti > t_begin || ci > c_begin;
                    let (level3, micro) = (level3(c), micro(c));
                    *slot = if level3 == CONFLICT || micro == CONFLICT || ambiguous[c] {
                        EXACT
                    } else if local {
                        let whole = [level3, micro]
                            .into_iter()
                            .filter(|&w| w != 0 && !tiled[w as usize - 1])
                            .map(|w| w - 1);
                        r.local_record(
                            c,
                            &touches[t_begin..ti],
                            &centres[c_begin..ci],
                            whole,
                            &verts,
                            &mut blob,
                        )
                        .unwrap_or(EXACT)
                    } else if micro != 0 {
                        // Inside a micro-grid: clean if its level-3 grid agrees (a tiled
                        // level-3 grid was not filled, so it cannot disagree).
                        let m = micro - 1;
                        let parent = r.micro_parent[m as usize];
                        let tiled_parent = parent != u32::MAX && tiled[parent as usize];
                        if (tiled_parent && level3 == 0) || level3 == parent.wrapping_add(1) {
                            m + CLEAN_OFFSET
                        } else {
                            EXACT
                        }
                    } else if level3 != 0 {
                        level3 - 1 + CLEAN_OFFSET
                    } else if higher[c] {
                        EXACT
                    } else if near[k] {
                        EXACT_NO_AREA
                    } else {
                        NOWHERE
                    };
                }
                blob
            })
            .collect();
        let mut base = 0usize;
        let bases: Vec<usize> = blobs
            .iter()
            .map(|b| {
                let at = base;
                base += b.len();
                at
            })
            .collect();
        cells
            .par_chunks_mut(band_cells)
            .zip(bases)
            .for_each(|(out, base)| {
                for v in out.iter_mut().filter(|v| **v & LOCAL != 0) {
                    let offset = (*v & !LOCAL) as usize + base;
                    // Records beyond what a cell value can address take the exact path.
                    *v = u32::try_from(offset)
                        .ok()
                        .filter(|&o| o < LOCAL)
                        .map_or(EXACT, |o| LOCAL | o);
                }
            });
        r.cells = cells;
        r.blob = on_huge_pages(&blobs);
        r
    }

    /// Appends the record of one local cell to `blob` and returns the cell's value (the
    /// record's offset in `blob`); `None` when the cell must take the exact path. `whole` are
    /// grids covering the whole cell without an edge in it.
    fn local_record(
        &self,
        c: usize,
        touches: &[(u32, u32, u32)],
        centres: &[(u32, u32)],
        whole: impl Iterator<Item = u32>,
        verts: &[[f64; 2]],
        blob: &mut Vec<u32>,
    ) -> Option<u32> {
        let centre = self.centre(c);
        let whole: SmallVec<[u32; 2]> = whole.collect();

        let mut grids: SmallVec<[u32; 8]> = touches
            .iter()
            .map(|t| t.1)
            .chain(centres.iter().map(|t| t.1))
            .chain(whole.iter().copied())
            .collect();
        grids.sort_unstable();
        grids.dedup();
        let offset = u32::try_from(blob.len()).ok().filter(|&o| o < LOCAL)?;
        blob.push(grids.len() as u32);
        for g in grids {
            let inside = centres.binary_search_by_key(&g, |t| t.1).is_ok() || whole.contains(&g);
            blob.push(g | if inside { CENTRE_INSIDE } else { 0 });
            let count_at = blob.len();
            blob.push(0);
            let (mut n, mut sides) = (0u32, 0u32);
            for t in touches.iter().filter(|t| t.1 == g) {
                let (a, b) = (verts[t.2 as usize], verts[t.2 as usize + 1]);
                let rel = |v: [f64; 2]| [(v[0] - centre[0]) as f32, (v[1] - centre[1]) as f32];
                let (ra, rb) = (rel(a), rel(b));
                // The centre must be decidably off every edge line, or the parity test is
                // unusable; which side it is on is stored, one bit per edge.
                let side = orient(widen(ra), widen(rb), [0.0, 0.0]);
                let (Some(side), true) = (side, n < MAX_EDGES) else {
                    blob.truncate(offset as usize);
                    return None;
                };
                sides |= u32::from(side) << n;
                blob.extend([ra[0], ra[1], rb[0], rb[1]].map(f32::to_bits));
                n += 1;
            }
            blob[count_at] = n | sides << 16;
        }
        Some(LOCAL | offset)
    }

    fn centre(&self, c: usize) -> [f64; 2] {
        let (i, j) = (c % self.nx, c / self.nx);
        [
            self.x0 + (i as f64 + 0.5) * self.cell,
            self.y0 + (j as f64 + 0.5) * self.cell,
        ]
    }

    /// Cell counts: clean, local, exact, nowhere.
    pub fn census(&self) -> [usize; 4] {
        let mut out = [0; 4];
        for &c in &self.cells {
            match c {
                NOWHERE => out[3] += 1,
                EXACT | EXACT_NO_AREA => out[2] += 1,
                v if v & LOCAL != 0 => out[1] += 1,
                _ => out[0] += 1,
            }
        }
        out
    }

    /// Memory held by the raster and its local records, bytes.
    pub fn bytes(&self) -> usize {
        self.cells.len() * 4 + self.blob.len() * 4
    }

    /// Reads the cell under a point: its index and value (`None` outside the raster). Kept
    /// apart from [`Raster::resolve`] so a batch can issue many independent reads at once.
    #[inline]
    pub fn read(&self, x: f64, y: f64) -> Option<Read> {
        let c = self.cell_at(x, y)?;
        Some(Read {
            cell: c,
            value: self.cells[c],
            candidates: None,
        })
    }

    /// Asks for the cell under a point to be brought into cache, for a [`Raster::read`] of it
    /// a little later: unlike a read, a prefetch never holds the processor up.
    #[inline]
    pub fn prefetch(&self, x: f64, y: f64) {
        if let Some(c) = self.cell_at(x, y) {
            prefetch(&self.cells[c]);
        }
    }

    #[inline]
    fn cell_at(&self, x: f64, y: f64) -> Option<usize> {
        let fx = (x - self.x0) * self.inv;
        let fy = (y - self.y0) * self.inv;
        if !(fx >= 0.0 && fy >= 0.0) {
            return None;
        }
        let (i, j) = (fx as usize, fy as usize);
        (i < self.nx && j < self.ny).then_some(j * self.nx + i)
    }

    /// Second stage of a batched lookup: fetches the head of a local cell's record, so that
    /// read too overlaps with the others of the batch.
    #[inline]
    pub fn fetch(&self, read: &mut Option<Read>) {
        if let Some(r) = read
            && r.value & LOCAL != 0
        {
            let at = (r.value & !LOCAL) as usize;
            r.candidates = Some(self.blob[at]);
            // The rest of a record (candidates and their edges) usually spans the next two
            // cache lines: ask for them now, while the other reads of the batch are pending.
            if let Some(rest) = self.blob.get(at + 16..at + 33) {
                prefetch(&rest[0]);
                prefetch(&rest[16]);
            }
        }
    }

    /// What a cell read by [`Raster::read`] says about the point.
    #[inline]
    pub fn resolve(&self, read: Option<Read>, x: f64, y: f64) -> Cell {
        let Some(Read {
            cell: c,
            value: v,
            candidates,
        }) = read
        else {
            return Cell::Nowhere;
        };
        match v {
            NOWHERE => Cell::Nowhere,
            EXACT => Cell::Exact { areas: true },
            EXACT_NO_AREA => Cell::Exact { areas: false },
            v if v & LOCAL != 0 => {
                let offset = (v & !LOCAL) as usize;
                let n = candidates.unwrap_or_else(|| self.blob[offset]);
                self.local(c, offset, n as usize, [x, y])
            }
            v => {
                let leaf = v - CLEAN_OFFSET;
                match self.roles[leaf as usize] {
                    Some(Role::Micro) => Cell::Known {
                        level3: self.micro_parent[leaf as usize],
                        micro: Some(leaf),
                        exclusive: smallvec::SmallVec::new(),
                    },
                    _ => Cell::Known {
                        level3: leaf,
                        micro: None,
                        exclusive: smallvec::SmallVec::new(),
                    },
                }
            }
        }
    }

    fn local(&self, c: usize, offset: usize, n: usize, p: [f64; 2]) -> Cell {
        let centre = self.centre(c);
        let q = [p[0] - centre[0], p[1] - centre[1]];
        let blob = &self.blob;
        let (mut level3, mut micro) = (None, None);
        let mut exclusive = smallvec::SmallVec::new();
        let mut at = offset + 1;
        for _ in 0..n {
            let flagged = blob[at];
            let edges = (blob[at + 1] & 0xFFFF) as usize;
            let sides = blob[at + 1] >> 16;
            at += 2;
            let mut inside = flagged & CENTRE_INSIDE != 0;
            for (k, e) in blob[at..at + 4 * edges].chunks_exact(4).enumerate() {
                let a = [
                    f64::from(f32::from_bits(e[0])),
                    f64::from(f32::from_bits(e[1])),
                ];
                let b = [
                    f64::from(f32::from_bits(e[2])),
                    f64::from(f32::from_bits(e[3])),
                ];
                // Decidable signs only; anything on or too near a line takes the exact path.
                let Some(abq) = orient(a, b, q) else {
                    return Cell::Exact { areas: true };
                };
                let abc = sides >> k & 1 == 1;
                if abq != abc {
                    let (Some(cqa), Some(cqb)) =
                        (orient([0.0, 0.0], q, a), orient([0.0, 0.0], q, b))
                    else {
                        return Cell::Exact { areas: true };
                    };
                    if cqa != cqb {
                        inside = !inside;
                    }
                }
            }
            at += 4 * edges;
            if inside {
                let g = flagged & !CENTRE_INSIDE;
                let slot = match self.roles[g as usize] {
                    Some(Role::Level3) => &mut level3,
                    Some(Role::Micro) => &mut micro,
                    _ => {
                        exclusive.push(g);
                        continue;
                    }
                };
                if slot.is_some() {
                    return Cell::Exact { areas: true }; // overlapping grids: let the exact path apply its rule
                }
                *slot = Some(g);
            }
        }
        let level3 = level3.or_else(|| micro.map(|m| self.micro_parent[m as usize]));
        match level3 {
            Some(l3) if micro.is_none_or(|m| self.micro_parent[m as usize] == l3) => Cell::Known {
                level3: l3,
                micro,
                exclusive,
            },
            _ => Cell::Exact { areas: true },
        }
    }

    /// Calls `mark` for every cell a segment touches (conservatively).
    fn segment_cells(&self, a: geo::Coord<f64>, b: geo::Coord<f64>, mut mark: impl FnMut(usize)) {
        const EPS: f64 = 1e-6;
        let (ax, ay) = ((a.x - self.x0) * self.inv, (a.y - self.y0) * self.inv);
        let (bx, by) = ((b.x - self.x0) * self.inv, (b.y - self.y0) * self.inv);
        let j0 = (ay.min(by) - EPS).floor().max(0.0) as usize;
        let j1 = ((ay.max(by) + EPS).floor().max(0.0) as usize).min(self.ny - 1);
        for j in j0..=j1 {
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

    fn edge_cells(&self, shape: &MultiPolygon<f64>, mut mark: impl FnMut(usize)) {
        for poly in shape {
            for ring in std::iter::once(poly.exterior()).chain(poly.interiors()) {
                for seg in ring.0.windows(2) {
                    self.segment_cells(seg[0], seg[1], &mut mark);
                }
            }
        }
    }

    /// Calls `inside` for every cell whose centre lies inside the shape (even-odd rule along
    /// rows through cell centres), and `ambiguous` for cells whose centre is so close to a
    /// boundary crossing that float rounding could have decided.
    fn fill(
        &self,
        shape: &MultiPolygon<f64>,
        mut inside: impl FnMut(usize),
        mut ambiguous: impl FnMut(usize),
    ) {
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
            let j0 = ((ymin - self.y0) * self.inv - 0.5).ceil().max(0.0) as usize;
            let j1 =
                (((ymax - self.y0) * self.inv - 0.5).floor() as isize).min(self.ny as isize - 1);
            for j in j0 as isize..=j1 {
                let yc = self.y0 + (j as f64 + 0.5) * self.cell;
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
                let row = j as usize * self.nx;
                for pair in xs.chunks(2) {
                    let [xa, xb] = pair else { continue };
                    let i0 = ((xa - self.x0) * self.inv - 0.5).ceil().max(0.0) as usize;
                    let i1 = (((xb - self.x0) * self.inv - 0.5).floor() as isize)
                        .min(self.nx as isize - 1);
                    for i in i0 as isize..=i1 {
                        inside(row + i as usize);
                    }
                }
                for &x in &xs {
                    let i = ((x - self.x0) * self.inv - 0.5).round();
                    if i >= 0.0 && (i as usize) < self.nx {
                        let xc = self.x0 + (i + 0.5) * self.cell;
                        if (xc - x).abs() < CENTRE_EPS {
                            ambiguous(row + i as usize);
                        }
                    }
                }
            }
        }
    }
}

/// What filling one grid found: the (cell, grid) pairs of cells that need a local record,
/// and the cells whose centre lies too close to an edge to trust.
type Filled = (Vec<(u32, u32)>, Vec<usize>);

/// Rows of the raster per band when classifying cells in parallel.
const BAND_ROWS: usize = 16;

/// Groups items by the band of rows their cell is in, each band's items sorted: buckets
/// filled from chunks of the input in parallel, then each band gathered and sorted in parallel,
/// much cheaper than one sort of everything.
fn group_by_band<T: Copy + Ord + Send + Sync>(
    items: Vec<T>,
    cell: impl Fn(&T) -> u32 + Sync,
    band_cells: usize,
    bands: usize,
) -> Vec<Vec<T>> {
    let chunk = items
        .len()
        .div_ceil(rayon::current_num_threads() * 4)
        .max(1);
    let buckets: Vec<Vec<Vec<T>>> = items
        .par_chunks(chunk)
        .map(|part| {
            let mut by_band = vec![Vec::new(); bands];
            for t in part {
                by_band[cell(t) as usize / band_cells].push(*t);
            }
            by_band
        })
        .collect();
    (0..bands)
        .into_par_iter()
        .map(|b| {
            let mut band: Vec<T> = Vec::with_capacity(buckets.iter().map(|p| p[b].len()).sum());
            for part in &buckets {
                band.extend_from_slice(&part[b]);
            }
            band.sort_unstable();
            band
        })
        .collect()
}

/// Hints the processor to bring the cache line holding `v` closer; no effect on results.
#[inline(always)]
fn prefetch(v: &u32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and never changes memory; the address is a live
    // reference anyway.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            (v as *const u32).cast::<i8>(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

/// Asks the kernel to back a large table with huge pages: random lookups then miss the TLB
/// far less often. Advice only; nothing changes if the kernel declines. The memory must not
/// have been written yet for the advice to take effect at once.
fn advise_huge_pages(ptr: *const u32, len: usize) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = ptr as usize;
        let end = start + len * std::mem::size_of::<u32>();
        let aligned = start.div_ceil(HUGE) * HUGE;
        if end > aligned + HUGE {
            // SAFETY: the range lies inside one live allocation of ours; MADV_HUGEPAGE only
            // changes how the kernel backs those pages, never their contents.
            unsafe {
                libc::madvise(
                    aligned as *mut libc::c_void,
                    (end - aligned) / HUGE * HUGE,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
}

/// The `parts` one after another, in freshly allocated memory advised to use huge pages.
fn on_huge_pages(parts: &[Vec<u32>]) -> Vec<u32> {
    let mut out = Vec::with_capacity(parts.iter().map(Vec::len).sum());
    advise_huge_pages(out.as_ptr(), out.capacity());
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

/// For the cells of `rows`, whether a `present` cell lies within `r` cells (Chebyshev
/// distance): distances along each row from a sweep each way, then `2r + 1` rows combined.
fn near_rows(
    present: &impl Fn(usize) -> bool,
    nx: usize,
    ny: usize,
    rows: std::ops::Range<usize>,
    r: usize,
) -> Vec<bool> {
    let (top, bottom) = (rows.start.saturating_sub(r), (rows.end + r).min(ny));
    let mut along = vec![false; (bottom - top) * nx];
    for (j, out) in (top..bottom).zip(along.chunks_mut(nx)) {
        let mut last = None;
        for (i, o) in out.iter_mut().enumerate() {
            if present(j * nx + i) {
                last = Some(i);
            }
            *o = last.is_some_and(|l| i - l <= r);
        }
        let mut next = None;
        for (i, o) in out.iter_mut().enumerate().rev() {
            if present(j * nx + i) {
                next = Some(i);
            }
            *o |= next.is_some_and(|n| n - i <= r);
        }
    }
    let mut near = vec![false; rows.len() * nx];
    for (j, out) in rows.zip(near.chunks_mut(nx)) {
        for jj in j.saturating_sub(r)..(j + r + 1).min(ny) {
            let row = &along[(jj - top) * nx..(jj - top + 1) * nx];
            for (o, &v) in out.iter_mut().zip(row) {
                *o |= v;
            }
        }
    }
    near
}
