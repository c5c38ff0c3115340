//! Hot spots: where reports cluster more than chance would have it (Getis-Ord Gi*), and how
//! each place's clustering moves over time (emerging hot-spot analysis: Gi* per time step and a
//! Mann-Kendall trend on the z-scores, classified as ArcGIS Pro's tool does: new, consecutive,
//! intensifying, persistent, diminishing, sporadic, oscillating, historical).
//!
//! The space is a set of H3 cells covering the area (cells without reports count as zero), each
//! cell's neighbours being the cells around it (binary weights, the cell itself included, as
//! Gi* wants).

use std::collections::HashMap;

use h3o::geom::{ContainmentMode, TilerBuilder};
use h3o::{CellIndex, Resolution};
use serde::Serialize;
use utoipa::ToSchema;

/// Gi* of one place.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct GiStar {
    /// The standardised Gi* (a z-score): positive for hot, negative for cold.
    pub z: f64,
    /// Two-sided p-value of `z` under the normal approximation.
    pub p: f64,
    /// Confidence bin: ±3 (99%), ±2 (95%), ±1 (90%), 0 (not significant).
    pub bin: i8,
}

/// Two-sided p-value of a standard normal z-score.
pub fn two_sided_p(z: f64) -> f64 {
    libm::erfc(z.abs() / std::f64::consts::SQRT_2)
}

/// The confidence bin of a z-score: its sign times 3, 2 or 1 at 99%, 95% or 90%.
pub fn confidence_bin(z: f64, p: f64) -> i8 {
    let level = if p < 0.01 {
        3
    } else if p < 0.05 {
        2
    } else if p < 0.10 {
        1
    } else {
        0
    };
    if z < 0.0 { -level } else { level }
}

/// Getis-Ord Gi* of every place: `values[i]` at place `i`, whose neighbours (itself left out)
/// are `neighbours[i]`. With fewer than three places, or all values equal, every z is 0.
pub fn gi_star(values: &[f64], neighbours: &[Vec<u32>]) -> Vec<GiStar> {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let spread = (values.iter().map(|x| x * x).sum::<f64>() / n - mean * mean)
        .max(0.0)
        .sqrt();
    values
        .iter()
        .zip(neighbours)
        .map(|(&own, around)| {
            let weight = around.len() as f64 + 1.0;
            let local = own + around.iter().map(|&j| values[j as usize]).sum::<f64>();
            let denominator = spread * ((n * weight - weight * weight) / (n - 1.0)).sqrt();
            let z = if n < 3.0 || denominator <= 0.0 || !denominator.is_finite() {
                0.0
            } else {
                (local - mean * weight) / denominator
            };
            let p = two_sided_p(z);
            GiStar {
                z,
                p,
                bin: confidence_bin(z, p),
            }
        })
        .collect()
}

/// The Mann-Kendall trend test of a series (oldest first): its z-score (positive: rising) and
/// two-sided p-value, with the variance corrected for ties.
pub fn mann_kendall(series: &[f64]) -> (f64, f64) {
    let n = series.len();
    if n < 3 {
        return (0.0, 1.0);
    }
    let mut s = 0.0;
    for i in 0..n {
        for j in i + 1..n {
            s += (series[j] - series[i]).signum() * f64::from(series[j] != series[i]);
        }
    }
    let mut sorted = series.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut ties = 0.0;
    let mut run = 1.0;
    for w in sorted.windows(2) {
        if w[0] == w[1] {
            run += 1.0;
        } else {
            ties += run * (run - 1.0) * (2.0 * run + 5.0);
            run = 1.0;
        }
    }
    ties += run * (run - 1.0) * (2.0 * run + 5.0);
    let nf = n as f64;
    let variance = (nf * (nf - 1.0) * (2.0 * nf + 5.0) - ties) / 18.0;
    if variance <= 0.0 {
        return (0.0, 1.0);
    }
    let z = if s > 0.0 {
        (s - 1.0) / variance.sqrt()
    } else if s < 0.0 {
        (s + 1.0) / variance.sqrt()
    } else {
        0.0
    };
    (z, two_sided_p(z))
}

/// How a place's clustering moved over the time steps (ArcGIS Pro's emerging hot-spot classes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Pattern {
    /// Significant in the last step only.
    New,
    /// An unbroken run of significant steps at the end, never before it, under 90% of steps.
    Consecutive,
    /// Significant in at least 90% of steps including the last, growing stronger.
    Intensifying,
    /// Significant in at least 90% of steps including the last, with no trend.
    Persistent,
    /// Significant in at least 90% of steps including the last, growing weaker.
    Diminishing,
    /// On and off, including the last step, never the opposite kind.
    Sporadic,
    /// Significant in the last step, and of the opposite kind in some earlier one.
    Oscillating,
    /// Significant in at least 90% of steps but not the last.
    Historical,
    /// None of the above.
    None,
}

impl Pattern {
    /// The snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Pattern::New => "new",
            Pattern::Consecutive => "consecutive",
            Pattern::Intensifying => "intensifying",
            Pattern::Persistent => "persistent",
            Pattern::Diminishing => "diminishing",
            Pattern::Sporadic => "sporadic",
            Pattern::Oscillating => "oscillating",
            Pattern::Historical => "historical",
            Pattern::None => "none",
        }
    }
}

/// One place's emerging hot-spot class.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct Emerging {
    /// `hot`, `cold` or `none`.
    pub kind: &'static str,
    /// The pattern of its significant steps.
    pub pattern: Pattern,
    /// Mann-Kendall z of its Gi* z-scores over the steps (positive: hotter over time).
    pub trend_z: f64,
    /// Two-sided p-value of the trend.
    pub trend_p: f64,
}

/// Significance level of the emerging classes (ArcGIS uses 90% for the bins, 95% for trends).
const TREND_P: f64 = 0.05;

/// The class of one place from its Gi* per step (oldest first).
pub fn classify(steps: &[GiStar]) -> Emerging {
    let zs: Vec<f64> = steps.iter().map(|g| g.z).collect();
    let (trend_z, trend_p) = mann_kendall(&zs);
    let hot = |g: &GiStar| g.bin > 0;
    let cold = |g: &GiStar| g.bin < 0;
    let none = Emerging {
        kind: "none",
        pattern: Pattern::None,
        trend_z,
        trend_p,
    };
    let Some(last) = steps.last() else {
        return none;
    };
    let try_kind = |same: &dyn Fn(&GiStar) -> bool,
                    other: &dyn Fn(&GiStar) -> bool,
                    sign: f64|
     -> Option<Pattern> {
        let count = steps.iter().filter(|g| same(g)).count();
        if count == 0 {
            return None;
        }
        let share = count as f64 / steps.len() as f64;
        let last_same = same(last);
        if !last_same {
            return (share >= 0.9).then_some(Pattern::Historical);
        }
        if share >= 0.9 {
            let trend = trend_z * sign;
            return Some(if trend_p < TREND_P && trend > 0.0 {
                Pattern::Intensifying
            } else if trend_p < TREND_P && trend < 0.0 {
                Pattern::Diminishing
            } else {
                Pattern::Persistent
            });
        }
        if count == 1 {
            return Some(Pattern::New);
        }
        if steps.iter().any(other) {
            return Some(Pattern::Oscillating);
        }
        let run = steps.iter().rev().take_while(|g| same(g)).count();
        if run == count && run >= 2 {
            return Some(Pattern::Consecutive);
        }
        Some(Pattern::Sporadic)
    };
    if let Some(pattern) = try_kind(&hot, &cold, 1.0) {
        return Emerging {
            kind: "hot",
            pattern,
            ..none
        };
    }
    if let Some(pattern) = try_kind(&cold, &hot, -1.0) {
        return Emerging {
            kind: "cold",
            pattern,
            ..none
        };
    }
    none
}

/// Why the cells of an area could not be listed.
#[derive(Debug, thiserror::Error)]
#[error("covering the area with H3 cells: {0}")]
pub struct CoverError(String);

/// The H3 cells of `res` whose centres lie in `polygons` (WGS84), sorted.
pub fn cover(
    polygons: &[&geo::MultiPolygon<f64>],
    res: Resolution,
) -> Result<Vec<CellIndex>, CoverError> {
    let mut tiler = TilerBuilder::new(res)
        .containment_mode(ContainmentMode::ContainsCentroid)
        .build();
    for mp in polygons {
        for p in &mp.0 {
            tiler
                .add(p.clone())
                .map_err(|e| CoverError(e.to_string()))?;
        }
    }
    let mut cells: Vec<CellIndex> = tiler.into_coverage().collect();
    cells.sort_unstable();
    cells.dedup();
    Ok(cells)
}

/// For each cell, the positions in `cells` of the cells around it (the ring at distance 1).
pub fn neighbours(cells: &[CellIndex]) -> Vec<Vec<u32>> {
    let at: HashMap<CellIndex, u32> = cells
        .iter()
        .enumerate()
        .map(|(i, &c)| (c, i as u32))
        .collect();
    cells
        .iter()
        .map(|&c| {
            c.grid_disk::<Vec<_>>(1)
                .into_iter()
                .filter(|&n| n != c)
                .filter_map(|n| at.get(&n).copied())
                .collect()
        })
        .collect()
}

/// For each polygon, the positions in `polygons` of those sharing at least one vertex with it
/// (queen contiguity, as PySAL's `Queen` builds it): partitions whose neighbours share their
/// borders share the vertices on them. Coordinates must match exactly.
pub fn queen_neighbours(polygons: &[&geo::MultiPolygon<f64>]) -> Vec<Vec<u32>> {
    let key = |c: &geo::Coord<f64>| ((c.x + 0.0).to_bits(), (c.y + 0.0).to_bits());
    let mut at_vertex: HashMap<(u64, u64), Vec<u32>> = HashMap::new();
    for (i, mp) in polygons.iter().enumerate() {
        let rings =
            mp.0.iter()
                .flat_map(|p| std::iter::once(p.exterior()).chain(p.interiors()));
        for ring in rings {
            for c in &ring.0 {
                let owners = at_vertex.entry(key(c)).or_default();
                if owners.last() != Some(&(i as u32)) {
                    owners.push(i as u32);
                }
            }
        }
    }
    let mut neighbours: Vec<Vec<u32>> = vec![Vec::new(); polygons.len()];
    for owners in at_vertex.values().filter(|o| o.len() > 1) {
        for &a in owners {
            neighbours[a as usize].extend(owners.iter().copied().filter(|&b| b != a));
        }
    }
    for n in &mut neighbours {
        n.sort_unstable();
        n.dedup();
    }
    neighbours
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(bin: i8) -> GiStar {
        GiStar {
            z: f64::from(bin) * 1.0,
            p: 0.01,
            bin,
        }
    }

    #[test]
    fn a_cluster_of_high_values_is_hot_and_its_surroundings_are_not() {
        // A path 0-1-2-3-4-5-6-7-8-9 with high values at one end.
        let values = [9.0, 8.0, 9.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0];
        let neighbours: Vec<Vec<u32>> = (0..10u32)
            .map(|i| {
                [i.checked_sub(1), (i < 9).then_some(i + 1)]
                    .into_iter()
                    .flatten()
                    .collect()
            })
            .collect();
        let gi = gi_star(&values, &neighbours);
        assert!(gi[1].z > 2.0 && gi[1].bin >= 2, "{:?}", gi[1]);
        assert!(gi[6].z < 0.0);
        // Worked by hand: n=10, mean 3, s = sqrt(230/10 - 9) = 3.741657; place 1: W=3, sum 26,
        // z = (26 - 9) / (3.741657 * sqrt((30 - 9) / 9)) = 17 / 5.715476 = 2.97438.
        assert!((gi[1].z - 2.97438).abs() < 1e-4, "{}", gi[1].z);
        assert_eq!(gi[1].bin, 3);
        assert!((two_sided_p(1.959_964) - 0.05).abs() < 1e-6);
    }

    #[test]
    fn polygons_sharing_a_vertex_are_neighbours() {
        // A row of three unit squares, and a fourth touching the third at one corner only.
        use geo::polygon;
        let square = |x: f64, y: f64| {
            geo::MultiPolygon::new(vec![polygon![
                (x: x, y: y), (x: x + 1.0, y: y), (x: x + 1.0, y: y + 1.0), (x: x, y: y + 1.0),
            ]])
        };
        let shapes = [
            square(0.0, 0.0),
            square(1.0, 0.0),
            square(2.0, 0.0),
            square(3.0, 1.0),
        ];
        let refs: Vec<&geo::MultiPolygon<f64>> = shapes.iter().collect();
        let n = queen_neighbours(&refs);
        assert_eq!(n, vec![vec![1], vec![0, 2], vec![1, 3], vec![2]]);
    }

    #[test]
    fn mann_kendall_sees_trends_and_their_absence() {
        let rising: Vec<f64> = (0..12).map(f64::from).collect();
        let (z, p) = mann_kendall(&rising);
        // S = 66, var = 12*11*29/18 = 212.667, z = 65/14.583 = 4.457.
        assert!((z - 4.457).abs() < 1e-3 && p < 1e-4, "{z} {p}");
        let (z, _) = mann_kendall(&[1.0, 1.0, 1.0, 1.0]);
        assert_eq!(z, 0.0);
    }

    #[test]
    fn emerging_patterns_follow_their_definitions() {
        let p = |bins: &[i8]| classify(&bins.iter().map(|&b| g(b)).collect::<Vec<_>>());
        assert_eq!(p(&[0, 0, 0, 0, 0, 3]).pattern, Pattern::New);
        assert_eq!(p(&[0, 0, 0, 2, 2, 3]).pattern, Pattern::Consecutive);
        assert_eq!(
            p(&[2, 2, 2, 2, 2, 2, 2, 2, 2, 2]).pattern,
            Pattern::Persistent
        );
        assert_eq!(p(&[2, 0, 2, 0, 0, 2]).pattern, Pattern::Sporadic);
        assert_eq!(p(&[-2, 0, 0, 2, 0, 2]).pattern, Pattern::Oscillating);
        assert_eq!(
            p(&[2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0]).pattern,
            Pattern::Historical
        );
        assert_eq!(p(&[0, 0, -3]).kind, "cold");
        assert_eq!(p(&[0, 0, 0]).pattern, Pattern::None);
        let rising: Vec<GiStar> = (0..10)
            .map(|i| GiStar {
                z: 2.0 + f64::from(i),
                p: 0.001,
                bin: 3,
            })
            .collect();
        assert_eq!(classify(&rising).pattern, Pattern::Intensifying);
    }
}
