//! Splits a set of mesh triangles into `k` contiguous regions of chosen relative weight.
//!
//! Regions grow from seeds across triangle edges (a multi-source Dijkstra in which each region
//! spreads at its own speed), then seeds move to their region's centre of mass and speeds adapt
//! to the achieved weights; a few rounds give compact regions close to their targets. Growth
//! across shared edges keeps every region edge-connected within its part of the parent.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::mesh::{Mesh, NONE};

/// Metres-like scale for longitude at Zhengzhou's latitude (cos 34.75°).
const X_SCALE: f64 = 0.8217;
const ROUNDS: usize = 6;

/// What to split and how.
pub(super) struct Split<'a> {
    /// The parent's triangles, sorted ascending.
    pub tris: &'a [u32],
    /// Weight of each of those triangles (households, in arbitrary units).
    pub weight: &'a [f64],
    /// Target share of each child (any positive scale).
    pub targets: &'a [f64],
    /// Optional preferred location (lon, lat) for a child's seed.
    pub anchors: &'a [Option<[f64; 2]>],
}

#[derive(PartialEq)]
struct Entry {
    key: f64,
    tri: u32,
    region: u32,
}

impl Eq for Entry {}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        // Min-heap on key; ties broken by triangle then region for determinism.
        other
            .key
            .total_cmp(&self.key)
            .then_with(|| other.tri.cmp(&self.tri))
            .then_with(|| other.region.cmp(&self.region))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

fn dist(a: [f64; 2], b: [f64; 2]) -> f64 {
    ((a[0] - b[0]) * X_SCALE).hypot(a[1] - b[1])
}

/// Returns, for each triangle of `split.tris` (same order), the child it belongs to.
/// Children that cannot get a triangle (more children than triangles) get none.
pub(super) fn split(mesh: &Mesh, split: &Split<'_>, rng: &mut ChaCha8Rng) -> Vec<u32> {
    let n = split.tris.len();
    let k = split.targets.len().min(n);
    if k <= 1 {
        return vec![0; n];
    }
    let centres: Vec<[f64; 2]> = split.tris.iter().map(|&t| mesh.centroid(t)).collect();
    let local = |g: u32| -> u32 {
        if g == NONE {
            return NONE;
        }
        split.tris.binary_search(&g).map_or(NONE, |i| i as u32)
    };
    let nbrs: Vec<[u32; 3]> = split
        .tris
        .iter()
        .map(|&t| mesh.nbrs[t as usize].map(local))
        .collect();

    let mut seeds = initial_seeds(&centres, split, k, rng);
    let total_target: f64 = split.targets[..k].iter().sum();
    let total_weight: f64 = split.weight.iter().sum();
    let mut speed: Vec<f64> = split.targets[..k]
        .iter()
        .map(|t| (t / total_target * k as f64).sqrt())
        .collect();
    let mut owner = vec![NONE; n];
    for round in 0..ROUNDS {
        grow(&centres, &nbrs, &seeds, &speed, &mut owner);
        if round + 1 == ROUNDS {
            break;
        }
        let mut w = vec![0.0; k];
        let mut cx = vec![[0.0f64; 2]; k];
        for i in 0..n {
            let r = owner[i] as usize;
            w[r] += split.weight[i];
            cx[r][0] += split.weight[i] * centres[i][0];
            cx[r][1] += split.weight[i] * centres[i][1];
        }
        let mut best = vec![(f64::INFINITY, NONE); k];
        for r in 0..k {
            if w[r] > 0.0 {
                cx[r] = [cx[r][0] / w[r], cx[r][1] / w[r]];
            }
            let want = split.targets[r] / total_target * total_weight;
            let ratio = if w[r] > 0.0 { want / w[r] } else { 2.0 };
            speed[r] *= ratio.sqrt().clamp(0.6, 1.6);
        }
        for i in 0..n {
            let r = owner[i] as usize;
            let d = dist(centres[i], cx[r]);
            if d < best[r].0 {
                best[r] = (d, i as u32);
            }
        }
        for r in 0..k {
            if best[r].1 != NONE {
                seeds[r] = best[r].1;
            }
        }
        dedup_seeds(&mut seeds, n, rng);
    }
    owner
}

fn dedup_seeds(seeds: &mut [u32], n: usize, rng: &mut ChaCha8Rng) {
    let mut used = std::collections::BTreeSet::new();
    for s in seeds.iter_mut() {
        while !used.insert(*s) {
            *s = rng.random_range(0..n as u32);
        }
    }
}

fn initial_seeds(
    centres: &[[f64; 2]],
    split: &Split<'_>,
    k: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<u32> {
    let n = centres.len();
    let mut seeds: Vec<u32> = Vec::with_capacity(k);
    let mut nearest = vec![f64::INFINITY; n];
    let add = |s: u32, seeds: &mut Vec<u32>, nearest: &mut Vec<f64>| {
        seeds.push(s);
        for i in 0..n {
            let d = dist(centres[i], centres[s as usize]);
            if d < nearest[i] {
                nearest[i] = d;
            }
        }
    };
    for r in 0..k {
        let s = match split.anchors.get(r).copied().flatten() {
            Some(a) => {
                let jitter = [rng.random_range(-0.03..0.03), rng.random_range(-0.03..0.03)];
                let a = [a[0] + jitter[0], a[1] + jitter[1]];
                (0..n)
                    .filter(|i| nearest[*i] > 0.0)
                    .min_by(|&i, &j| dist(centres[i], a).total_cmp(&dist(centres[j], a)))
                    .unwrap_or(0) as u32
            }
            None if seeds.is_empty() => weighted_pick(split.weight, |_| 1.0, rng),
            // k-means++: far from existing seeds, weighted by households.
            None => weighted_pick(split.weight, |i| nearest[i] * nearest[i], rng),
        };
        add(s, &mut seeds, &mut nearest);
    }
    dedup_seeds(&mut seeds, n, rng);
    seeds
}

fn weighted_pick(weight: &[f64], factor: impl Fn(usize) -> f64, rng: &mut ChaCha8Rng) -> u32 {
    let total: f64 = weight.iter().enumerate().map(|(i, w)| w * factor(i)).sum();
    if total <= 0.0 || !total.is_finite() {
        return rng.random_range(0..weight.len() as u32);
    }
    let mut x = rng.random_range(0.0..total);
    for (i, w) in weight.iter().enumerate() {
        x -= w * factor(i);
        if x <= 0.0 {
            return i as u32;
        }
    }
    (weight.len() - 1) as u32
}

fn grow(centres: &[[f64; 2]], nbrs: &[[u32; 3]], seeds: &[u32], speed: &[f64], owner: &mut [u32]) {
    owner.fill(NONE);
    let mut heap = BinaryHeap::new();
    let mut best = vec![f64::INFINITY; centres.len()];
    for (r, &s) in seeds.iter().enumerate() {
        best[s as usize] = 0.0;
        heap.push(Entry {
            key: 0.0,
            tri: s,
            region: r as u32,
        });
    }
    while let Some(Entry { key, tri, region }) = heap.pop() {
        if owner[tri as usize] != NONE {
            continue;
        }
        owner[tri as usize] = region;
        let sp = speed[region as usize];
        for &nb in &nbrs[tri as usize] {
            if nb == NONE || owner[nb as usize] != NONE {
                continue;
            }
            let k = key + dist(centres[tri as usize], centres[nb as usize]) / sp;
            if k < best[nb as usize] {
                best[nb as usize] = k;
                heap.push(Entry {
                    key: k,
                    tri: nb,
                    region,
                });
            }
        }
    }
    // Parts of the parent no seed could reach (islands): nearest seed by straight distance.
    for i in 0..centres.len() {
        if owner[i] == NONE {
            let r = (0..seeds.len())
                .min_by(|&a, &b| {
                    dist(centres[i], centres[seeds[a] as usize])
                        .total_cmp(&dist(centres[i], centres[seeds[b] as usize]))
                })
                .unwrap_or(0);
            owner[i] = r as u32;
        }
    }
}
