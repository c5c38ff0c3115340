//! Offline tile packages: a tile set over a zoom range written to one PMTiles v3 archive, for
//! map walls on isolated networks (served by any PMTiles reader, opened by QGIS and GDAL).

use std::io::{Seek, Write};
use std::ops::RangeInclusive;

use pmtiles::{PmTilesWriter, TileCoord, TileType};
use rayon::prelude::*;
use serde_json::json;
use thiserror::Error;

use super::layer::{TileError, TileFilter, TileSet};
use super::tile_id::TileId;
use super::tilejson::ATTRIBUTION;

/// Why a package could not be written.
#[derive(Debug, Error)]
pub enum PackageError {
    /// A tile could not be rendered.
    #[error("tile {tile}: {source}")]
    Tile {
        /// Which tile.
        tile: TileId,
        /// Why.
        source: TileError,
    },
    /// The archive could not be written.
    #[error("writing the archive: {0}")]
    Archive(#[from] pmtiles::PmtError),
}

/// What went into one zoom of a package.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ZoomSummary {
    /// The zoom.
    pub z: u8,
    /// Tiles looked at (every tile touching the bounds).
    pub tiles: u64,
    /// Tiles with no feature (left out of the archive).
    pub empty: u64,
    /// Uncompressed bytes of the tiles written.
    pub bytes: u64,
    /// The largest tile, uncompressed.
    pub largest_bytes: u64,
    /// Where the largest tile is (`z/x/y`).
    pub largest_tile: String,
}

/// Renders `set` at every zoom of `zooms` over `bounds` (west, south, east, north) and writes
/// the tiles to `out` as PMTiles v3 (gzip-compressed tiles, in Hilbert order). `progress` is
/// called with the number of tiles done after each batch.
pub fn write_pmtiles<W: Write + Seek>(
    set: &dyn TileSet,
    zooms: RangeInclusive<u8>,
    bounds: [f64; 4],
    out: W,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<ZoomSummary>, PackageError> {
    let (min_z, max_z) = (*zooms.start(), *zooms.end());
    let metadata = json!({
        "name": set.name(),
        "description": set.description(),
        "attribution": ATTRIBUTION,
        "version": format!("{:016x}", set.version()),
        "format": "pbf",
        "vector_layers": set.layers(),
    });
    let mut writer = PmTilesWriter::new(TileType::Mvt)
        .min_zoom(min_z)
        .max_zoom(max_z)
        .bounds(bounds[0], bounds[1], bounds[2], bounds[3])
        .center((bounds[0] + bounds[2]) / 2.0, (bounds[1] + bounds[3]) / 2.0)
        .center_zoom(min_z.max(10).min(max_z))
        .metadata(metadata.to_string())
        .create(out)?;
    let mut summaries = Vec::new();
    let mut done = 0u64;
    for z in zooms {
        let mut tiles: Vec<(u64, TileId)> = TileId::covering(z, bounds)
            .map(|t| Ok((pmtiles::TileId::from(coord(t)?).value(), t)))
            .collect::<Result<_, PackageError>>()?;
        tiles.sort_unstable_by_key(|(id, _)| *id);
        let mut summary = ZoomSummary {
            z,
            tiles: tiles.len() as u64,
            ..ZoomSummary::default()
        };
        for chunk in tiles.chunks(512) {
            let rendered: Vec<(TileId, Vec<u8>)> = chunk
                .par_iter()
                .map(|&(_, t)| {
                    set.render(t, &TileFilter::default())
                        .map(|bytes| (t, bytes))
                        .map_err(|source| PackageError::Tile { tile: t, source })
                })
                .collect::<Result<_, _>>()?;
            for (t, bytes) in rendered {
                if bytes.is_empty() {
                    summary.empty += 1;
                    continue;
                }
                summary.bytes += bytes.len() as u64;
                if bytes.len() as u64 > summary.largest_bytes {
                    summary.largest_bytes = bytes.len() as u64;
                    summary.largest_tile = t.to_string();
                }
                writer.add_tile(coord(t)?, &bytes)?;
            }
            done += chunk.len() as u64;
            progress(done);
        }
        summaries.push(summary);
    }
    writer.finalize()?;
    Ok(summaries)
}

/// How many tiles [`write_pmtiles`] will look at.
pub fn tile_count(zooms: RangeInclusive<u8>, bounds: [f64; 4]) -> u64 {
    zooms
        .map(|z| TileId::covering(z, bounds).count() as u64)
        .sum()
}

fn coord(t: TileId) -> Result<TileCoord, PackageError> {
    Ok(TileCoord::new(t.z, t.x, t.y)?)
}
