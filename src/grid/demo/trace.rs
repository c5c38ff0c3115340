//! Turns a region of mesh triangles into its boundary polygons.
//!
//! Boundary edges are walked with the region on their left, turning into the region at every
//! vertex, so a region that touches itself at a vertex yields rings that touch there instead of
//! crossing: exteriors come out counter-clockwise and holes clockwise, as RFC 7946 asks.

use geo::coordinate_position::CoordPos;
use geo::{Coord, CoordinatePosition, LineString, MultiPolygon, Polygon};

use super::mesh::{Mesh, NONE};

/// The polygons covered by `tris`, all of which carry `label` in `labels`.
pub(super) fn region_polygons(
    mesh: &Mesh,
    tris: &[u32],
    labels: &[u32],
    label: u32,
) -> MultiPolygon<f64> {
    let inside = |t: u32| t != NONE && labels[t as usize] == label;
    let is_boundary = |t: u32, e: usize| !inside(mesh.nbrs[t as usize][e]);
    let mut used: std::collections::HashSet<(u32, u8)> = std::collections::HashSet::new();
    let mut rings: Vec<LineString<f64>> = Vec::new();
    for &t0 in tris {
        for e0 in 0..3 {
            if !is_boundary(t0, e0) || used.contains(&(t0, e0 as u8)) {
                continue;
            }
            let mut ring = Vec::new();
            let (mut t, mut e) = (t0, e0);
            loop {
                used.insert((t, e as u8));
                let v = mesh.tris[t as usize][e];
                ring.push(coord(mesh, v));
                // Next boundary edge leaving the end vertex, staying in this fan of the region.
                let end = mesh.tris[t as usize][(e + 1) % 3];
                let (mut ct, mut ce) = (t, (e + 1) % 3);
                let mut guard = 0;
                while !is_boundary(ct, ce) && guard < 4096 {
                    let nb = mesh.nbrs[ct as usize][ce];
                    // In the neighbour the shared edge runs the other way; take the edge after it,
                    // which again leaves `end`.
                    let back = (0..3)
                        .find(|&j| mesh.nbrs[nb as usize][j] == ct)
                        .unwrap_or(0);
                    ct = nb;
                    ce = (back + 1) % 3;
                    guard += 1;
                }
                debug_assert_eq!(mesh.tris[ct as usize][ce], end);
                (t, e) = (ct, ce);
                if (t, e) == (t0, e0) || used.contains(&(t, e as u8)) {
                    break;
                }
            }
            rings.extend(split_at_repeats(ring));
        }
    }
    assemble(rings)
}

/// Splits a closed walk (without its closing point) that passes a vertex more than once into
/// simple rings, so a region touching itself at a point yields rings that touch there (valid)
/// instead of one self-touching ring (invalid).
fn split_at_repeats(walk: Vec<Coord<f64>>) -> Vec<LineString<f64>> {
    let key = |c: Coord<f64>| (c.x.to_bits(), c.y.to_bits());
    let mut out = Vec::new();
    let mut stack: Vec<Coord<f64>> = Vec::with_capacity(walk.len());
    let mut at: std::collections::HashMap<(u64, u64), usize> = std::collections::HashMap::new();
    let close = |mut ring: Vec<Coord<f64>>, out: &mut Vec<LineString<f64>>| {
        if ring.len() >= 3 {
            ring.push(ring[0]);
            out.push(LineString(ring));
        }
    };
    for c in walk {
        if let Some(&i) = at.get(&key(c)) {
            let lp: Vec<Coord<f64>> = stack.drain(i..).collect();
            for q in &lp[1..] {
                at.remove(&key(*q));
            }
            close(lp, &mut out);
            stack.push(c);
        } else {
            at.insert(key(c), stack.len());
            stack.push(c);
        }
    }
    close(stack, &mut out);
    out
}

fn coord(mesh: &Mesh, v: u32) -> Coord<f64> {
    let p = mesh.pts[v as usize];
    Coord { x: p[0], y: p[1] }
}

fn signed_area(ring: &LineString<f64>) -> f64 {
    ring.0
        .windows(2)
        .map(|w| w[0].x * w[1].y - w[1].x * w[0].y)
        .sum::<f64>()
        / 2.0
}

/// Groups rings into polygons: counter-clockwise rings are exteriors, clockwise ones holes of
/// the exterior that contains them.
fn assemble(rings: Vec<LineString<f64>>) -> MultiPolygon<f64> {
    let (outer, holes): (Vec<_>, Vec<_>) = rings.into_iter().partition(|r| signed_area(r) > 0.0);
    let mut polys: Vec<Polygon<f64>> = outer.into_iter().map(|r| Polygon::new(r, vec![])).collect();
    for hole in holes {
        let probe = Coord {
            x: (hole.0[0].x + hole.0[1].x) / 2.0,
            y: (hole.0[0].y + hole.0[1].y) / 2.0,
        };
        let owner = if polys.len() == 1 {
            Some(0)
        } else {
            polys.iter().position(|p| {
                Polygon::new(p.exterior().clone(), vec![]).coordinate_position(&probe)
                    == CoordPos::Inside
            })
        };
        if let Some(i) = owner {
            polys[i].interiors_push(hole);
        }
    }
    polys.sort_by(|a, b| {
        let (pa, pb) = (a.exterior().0[0], b.exterior().0[0]);
        pa.x.total_cmp(&pb.x).then(pa.y.total_cmp(&pb.y))
    });
    MultiPolygon(polys)
}
