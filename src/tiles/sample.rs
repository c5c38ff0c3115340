//! Reproducible lists of tile addresses over an area, for benchmarks, load tests and checks.

use std::ops::RangeInclusive;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::tile_id::TileId;

/// Up to `per_zoom` tiles of each zoom in `zooms` touching `bounds` (west, south, east,
/// north), drawn at random for `seed` and shuffled together.
pub fn shuffled_tiles(
    bounds: [f64; 4],
    zooms: RangeInclusive<u8>,
    per_zoom: usize,
    seed: u64,
) -> Vec<TileId> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    for z in zooms {
        let mut all: Vec<TileId> = TileId::covering(z, bounds).collect();
        all.shuffle(&mut rng);
        out.extend(all.into_iter().take(per_zoom));
    }
    out.shuffle(&mut rng);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_list() {
        let b = [113.0, 34.3, 114.2, 35.0];
        let a = shuffled_tiles(b, 8..=12, 5, 1);
        assert_eq!(a, shuffled_tiles(b, 8..=12, 5, 1));
        assert!(a.len() > 5 && a.iter().any(|t| t.z == 12));
    }
}
