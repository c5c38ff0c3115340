//! Tile addresses in the XYZ scheme over Web Mercator, and the "world" coordinates tiles are cut
//! from.
//!
//! World coordinates put the whole Web Mercator square on `[0, 2³²)` in both axes, x growing
//! east and y growing south (the tile scheme's orientation). Grid vertices are projected and
//! quantised to them once, at load, so cutting a tile is integer-friendly arithmetic with no
//! trigonometry. One world unit is under a centimetre at the equator.

use std::fmt;

use thiserror::Error;

/// The deepest zoom any tile address may name (impossible addresses are refused, not clamped).
pub const MAX_ZOOM: u8 = 24;

/// Width of the world in world units.
pub const WORLD: f64 = 4_294_967_296.0;

/// The northern and southern limit of Web Mercator, in degrees.
pub const MAX_LATITUDE: f64 = 85.051_128_779_806_59;

/// A tile address: zoom, column (west to east) and row (north to south).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileId {
    /// Zoom level, 0 ..= [`MAX_ZOOM`].
    pub z: u8,
    /// Column, 0 .. 2^z.
    pub x: u32,
    /// Row, 0 .. 2^z.
    pub y: u32,
}

/// Why a tile address is impossible.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TileIdError {
    /// A part is not a non-negative integer.
    #[error("{part} must be a non-negative integer, got {value:?}")]
    NotANumber {
        /// `z`, `x` or `y`.
        part: &'static str,
        /// What was given.
        value: String,
    },
    /// The zoom is deeper than [`MAX_ZOOM`].
    #[error("zoom {0} is beyond the deepest zoom {MAX_ZOOM}")]
    ZoomTooDeep(u64),
    /// The column or row does not exist at this zoom.
    #[error("{part} = {value} does not exist at zoom {z}: it must be below {limit}")]
    OutOfRange {
        /// `x` or `y`.
        part: &'static str,
        /// What was given.
        value: u64,
        /// The zoom.
        z: u8,
        /// 2^z.
        limit: u64,
    },
}

impl TileIdError {
    /// The address part at fault: `z`, `x` or `y`.
    pub fn part(&self) -> &'static str {
        match self {
            Self::NotANumber { part, .. } | Self::OutOfRange { part, .. } => part,
            Self::ZoomTooDeep(_) => "z",
        }
    }
}

fn number(part: &'static str, value: &str) -> Result<u64, TileIdError> {
    let not_a_number = || TileIdError::NotANumber {
        part,
        value: value.to_string(),
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_a_number());
    }
    value.parse().map_err(|_| not_a_number())
}

impl TileId {
    /// A checked address.
    pub fn new(z: u8, x: u32, y: u32) -> Result<Self, TileIdError> {
        Self::from_parts(u64::from(z), u64::from(x), u64::from(y))
    }

    fn from_parts(z: u64, x: u64, y: u64) -> Result<Self, TileIdError> {
        if z > u64::from(MAX_ZOOM) {
            return Err(TileIdError::ZoomTooDeep(z));
        }
        let z = z as u8;
        let limit = 1u64 << z;
        for (part, value) in [("x", x), ("y", y)] {
            if value >= limit {
                return Err(TileIdError::OutOfRange {
                    part,
                    value,
                    z,
                    limit,
                });
            }
        }
        Ok(Self {
            z,
            x: x as u32,
            y: y as u32,
        })
    }

    /// Parses the three path segments of `/{z}/{x}/{y}` (any file extension already removed).
    pub fn parse(z: &str, x: &str, y: &str) -> Result<Self, TileIdError> {
        Self::from_parts(number("z", z)?, number("x", x)?, number("y", y)?)
    }

    /// Width of this tile in world units.
    pub fn span(&self) -> f64 {
        WORLD / f64::from(1u32 << self.z)
    }

    /// West and north edge of this tile in world units.
    pub fn origin(&self) -> [f64; 2] {
        let span = self.span();
        [f64::from(self.x) * span, f64::from(self.y) * span]
    }

    /// West, south, east, north edge in degrees.
    pub fn lon_lat_bounds(&self) -> [f64; 4] {
        let [x0, y0] = self.origin();
        let span = self.span();
        let [west, north] = world_to_lon_lat([x0, y0]);
        let [east, south] = world_to_lon_lat([x0 + span, y0 + span]);
        [west, south, east, north]
    }

    /// The four children one zoom deeper.
    pub fn children(&self) -> [TileId; 4] {
        let (z, x, y) = (self.z + 1, self.x * 2, self.y * 2);
        [
            TileId { z, x, y },
            TileId { z, x: x + 1, y },
            TileId { z, x, y: y + 1 },
            TileId {
                z,
                x: x + 1,
                y: y + 1,
            },
        ]
    }

    /// Every tile at zoom `z` that touches the lon/lat box `[west, south, east, north]`.
    pub fn covering(z: u8, bbox: [f64; 4]) -> impl Iterator<Item = TileId> {
        let n = 1u64 << z;
        let span = WORLD / n as f64;
        let [x0, y1] = lon_lat_to_world(bbox[0], bbox[1]);
        let [x1, y0] = lon_lat_to_world(bbox[2], bbox[3]);
        let cell = |v: f64| ((v / span).floor().max(0.0) as u64).min(n - 1) as u32;
        let (cx0, cx1, cy0, cy1) = (cell(x0), cell(x1), cell(y0), cell(y1));
        (cy0..=cy1).flat_map(move |y| (cx0..=cx1).map(move |x| TileId { z, x, y }))
    }
}

impl fmt::Display for TileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.z, self.x, self.y)
    }
}

/// Projects WGS84 degrees to world units (latitude clamped to Web Mercator's limit).
pub fn lon_lat_to_world(lon: f64, lat: f64) -> [f64; 2] {
    let lat = lat.clamp(-MAX_LATITUDE, MAX_LATITUDE).to_radians();
    let x = (lon + 180.0) / 360.0;
    let y = 0.5 - (lat.tan() + 1.0 / lat.cos()).ln() / (2.0 * std::f64::consts::PI);
    [x * WORLD, y * WORLD]
}

/// The inverse of [`lon_lat_to_world`].
pub fn world_to_lon_lat([x, y]: [f64; 2]) -> [f64; 2] {
    let lon = x / WORLD * 360.0 - 180.0;
    let n = std::f64::consts::PI * (1.0 - 2.0 * y / WORLD);
    let lat = n.sinh().atan().to_degrees();
    [lon, lat]
}

/// Projects and quantises a WGS84 position to integer world units.
pub fn quantize(lon: f64, lat: f64) -> [u32; 2] {
    let [x, y] = lon_lat_to_world(lon, lat);
    let q = |v: f64| v.round().clamp(0.0, WORLD - 1.0) as u32;
    [q(x), q(y)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_addresses() {
        assert_eq!(TileId::parse("3", "7", "0"), TileId::new(3, 7, 0));
        assert_eq!(
            TileId::parse("3", "8", "0"),
            Err(TileIdError::OutOfRange {
                part: "x",
                value: 8,
                z: 3,
                limit: 8
            })
        );
        assert_eq!(
            TileId::parse("25", "0", "0"),
            Err(TileIdError::ZoomTooDeep(25))
        );
        for bad in ["", "-1", "1.5", "x", "99999999999999999999999"] {
            let err = TileId::parse("1", bad, "0").unwrap_err();
            assert_eq!(err.part(), "x", "{bad:?}");
        }
    }

    #[test]
    fn projection_round_trips_and_matches_known_tiles() {
        // Zhengzhou's centre lies in tile 13/6682/3251 (the standard XYZ formula, by hand).
        let [x, y] = lon_lat_to_world(113.65, 34.75);
        let span = TileId::new(13, 0, 0).unwrap().span();
        assert_eq!(((x / span) as u32, (y / span) as u32), (6682, 3251));
        let [lon, lat] = world_to_lon_lat([x, y]);
        assert!((lon - 113.65).abs() < 1e-12 && (lat - 34.75).abs() < 1e-12);
        let b = TileId::new(1, 1, 0).unwrap().lon_lat_bounds();
        assert!((b[0] - 0.0).abs() < 1e-9 && (b[3] - MAX_LATITUDE).abs() < 1e-9);
    }

    #[test]
    fn covering_lists_the_tiles_of_a_box() {
        let tiles: Vec<_> = TileId::covering(1, [-10.0, -10.0, 10.0, 10.0]).collect();
        assert_eq!(tiles.len(), 4);
        let one: Vec<_> = TileId::covering(0, [113.0, 34.0, 114.0, 35.0]).collect();
        assert_eq!(one, vec![TileId::new(0, 0, 0).unwrap()]);
    }
}
