//! The triangle mesh the demo city is carved from.
//!
//! Points are laid out on a jittered lattice whose spacing follows the household density, then
//! triangulated (constrained Delaunay, via spade) with the real district boundaries as
//! constraints. Every generated grid is a set of these triangles, so neighbouring grids share
//! their boundary vertices exactly and each level partitions its parent with no gap or overlap.

use std::collections::HashMap;

use geo::{Contains, MultiPolygon, Point};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use spade::handles::FixedVertexHandle;
use spade::{ConstrainedDelaunayTriangulation, Point2, Triangulation};

/// Marks "no triangle" in neighbour tables.
pub(super) const NONE: u32 = u32::MAX;

/// Coordinates are rounded to 1e-7° (about 1 cm) so that they survive text formats unchanged.
pub(super) fn round7(v: f64) -> f64 {
    (v * 1e7).round() / 1e7
}

/// A triangulated city: triangles with their neighbours, and the district each belongs to.
pub(super) struct Mesh {
    /// Vertex positions (lon, lat).
    pub pts: Vec<[f64; 2]>,
    /// Triangles as counter-clockwise vertex triples.
    pub tris: Vec<[u32; 3]>,
    /// Neighbour across edge `i` (from vertex `i` to vertex `i+1`), or [`NONE`].
    pub nbrs: Vec<[u32; 3]>,
    /// Index of the district each triangle lies in, or [`NONE`] outside the city.
    pub district: Vec<u32>,
}

impl Mesh {
    /// Centroid of a triangle.
    pub fn centroid(&self, t: u32) -> [f64; 2] {
        let [a, b, c] = self.tris[t as usize].map(|v| self.pts[v as usize]);
        [(a[0] + b[0] + c[0]) / 3.0, (a[1] + b[1] + c[1]) / 3.0]
    }

    /// Area of a triangle in square degrees.
    pub fn area_deg2(&self, t: u32) -> f64 {
        let [a, b, c] = self.tris[t as usize].map(|v| self.pts[v as usize]);
        ((b[0] - a[0]) * (c[1] - a[1]) - (c[0] - a[0]) * (b[1] - a[1])).abs() / 2.0
    }
}

/// Builds the mesh: district outlines (already in WGS84) as constraints, about `target_points`
/// interior points spread by `density`.
pub(super) fn build(
    districts: &[MultiPolygon<f64>],
    density: impl Fn([f64; 2]) -> f64,
    target_points: usize,
    rng: &mut ChaCha8Rng,
) -> Mesh {
    // Boundary vertices, shared between districts by exact position.
    let mut pts: Vec<[f64; 2]> = Vec::new();
    let mut index: HashMap<(i64, i64), u32> = HashMap::new();
    let mut edges: Vec<[usize; 2]> = Vec::new();
    let key = |p: [f64; 2]| ((p[0] * 1e7).round() as i64, (p[1] * 1e7).round() as i64);
    let mut vertex = |p: [f64; 2], pts: &mut Vec<[f64; 2]>| -> u32 {
        let p = [round7(p[0]), round7(p[1])];
        *index.entry(key(p)).or_insert_with(|| {
            pts.push(p);
            (pts.len() - 1) as u32
        })
    };
    for mp in districts {
        for poly in mp {
            for ring in std::iter::once(poly.exterior()).chain(poly.interiors()) {
                let ids: Vec<u32> = ring
                    .0
                    .iter()
                    .map(|c| vertex([c.x, c.y], &mut pts))
                    .collect();
                for w in ids.windows(2) {
                    if w[0] != w[1] {
                        edges.push([w[0] as usize, w[1] as usize]);
                    }
                }
            }
        }
    }
    edges.sort_unstable_by_key(|e| (e[0].min(e[1]), e[0].max(e[1])));
    edges.dedup_by_key(|e| (e[0].min(e[1]), e[0].max(e[1])));

    // Interior points on a jittered lattice whose spacing follows the density.
    let bbox = crate::grid::model::bounds(districts)
        .unwrap_or_else(|| geo::Rect::new(geo::coord! {x: 0., y: 0.}, geo::coord! {x: 0., y: 0.}));
    let cell = 0.01;
    let nx = ((bbox.width() / cell).ceil() as usize).max(1);
    let ny = ((bbox.height() / cell).ceil() as usize).max(1);
    let cell_centre = |i: usize, j: usize| {
        [
            bbox.min().x + (i as f64 + 0.5) * cell,
            bbox.min().y + (j as f64 + 0.5) * cell,
        ]
    };
    let total: f64 = (0..ny)
        .flat_map(|j| (0..nx).map(move |i| (i, j)))
        .map(|(i, j)| density(cell_centre(i, j)))
        .sum();
    for j in 0..ny {
        for i in 0..nx {
            let expected = target_points as f64 * density(cell_centre(i, j)) / total;
            let m = expected.sqrt().round().max(1.0) as usize;
            let step = cell / m as f64;
            for b in 0..m {
                for a in 0..m {
                    let jx = rng.random_range(-0.35..0.35);
                    let jy = rng.random_range(-0.35..0.35);
                    let p = [
                        bbox.min().x + i as f64 * cell + (a as f64 + 0.5 + jx) * step,
                        bbox.min().y + j as f64 * cell + (b as f64 + 0.5 + jy) * step,
                    ];
                    vertex(p, &mut pts);
                }
            }
        }
    }

    let vertices: Vec<Point2<f64>> = pts.iter().map(|p| Point2::new(p[0], p[1])).collect();
    let cdt =
        ConstrainedDelaunayTriangulation::<Point2<f64>>::try_bulk_load_cdt(vertices, edges, |_| {})
            .unwrap_or_default();
    triangles_of(&cdt, pts, districts)
}

fn triangles_of(
    cdt: &ConstrainedDelaunayTriangulation<Point2<f64>>,
    pts: Vec<[f64; 2]>,
    districts: &[MultiPolygon<f64>],
) -> Mesh {
    let n = cdt.num_inner_faces();
    let mut tris = Vec::with_capacity(n);
    let mut nbrs = Vec::with_capacity(n);
    let mut fixed = Vec::with_capacity(n);
    for face in cdt.inner_faces() {
        let e = face.adjacent_edges();
        tris.push(e.map(|e| vertex_index(e.from().fix())));
        nbrs.push(e.map(|e| {
            e.rev()
                .face()
                .as_inner()
                .map_or(NONE, |f| (f.fix().index() - 1) as u32)
        }));
        fixed.push(e.map(|e| cdt.is_constraint_edge(e.as_undirected().fix())));
    }
    let mut mesh = Mesh {
        pts,
        tris,
        nbrs,
        district: vec![NONE; n],
    };
    // Flood fill between constraint edges; each component lies in one district or outside.
    let mut seen = vec![false; n];
    let mut stack = Vec::new();
    for start in 0..n {
        if seen[start] {
            continue;
        }
        let mut component = Vec::new();
        seen[start] = true;
        stack.push(start as u32);
        while let Some(t) = stack.pop() {
            component.push(t);
            for (&nb, &is_fixed) in mesh.nbrs[t as usize].iter().zip(&fixed[t as usize]) {
                if nb != NONE && !is_fixed && !seen[nb as usize] {
                    seen[nb as usize] = true;
                    stack.push(nb);
                }
            }
        }
        let c = mesh.centroid(component[0]);
        let p = Point::new(c[0], c[1]);
        let d = districts
            .iter()
            .position(|d| d.contains(&p))
            .map_or(NONE, |d| d as u32);
        for t in component {
            mesh.district[t as usize] = d;
        }
    }
    mesh
}

fn vertex_index(v: FixedVertexHandle) -> u32 {
    v.index() as u32
}
