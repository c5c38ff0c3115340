//! Coordinate systems and validated points.
//!
//! gridscope stores everything in WGS84 (CGCS2000 is the same to well under a metre at city
//! scale). Chinese apps send GCJ-02 (高德/腾讯/微信) or BD-09 (百度), offset from WGS84 by 50–700 m:
//! enough to put a report in the wrong grid. Every location entering the system therefore names
//! its [`Crs`] and is converted once, here, at the edge.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A coordinate reference system a location may arrive in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Crs {
    /// WGS84 longitude/latitude (GPS, EPSG:4326).
    #[default]
    Wgs84,
    /// China's obfuscated "Mars" datum used by Amap, Tencent and WeChat (火星坐标).
    Gcj02,
    /// Baidu's datum, a further offset on top of GCJ-02.
    Bd09,
    /// China Geodetic Coordinate System 2000; treated as WGS84 (differences are centimetres).
    Cgcs2000,
}

impl Crs {
    /// All supported systems, in the order they are documented.
    pub const ALL: [Crs; 4] = [Crs::Wgs84, Crs::Gcj02, Crs::Bd09, Crs::Cgcs2000];

    /// The lowercase name used in files, URLs and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            Crs::Wgs84 => "wgs84",
            Crs::Gcj02 => "gcj02",
            Crs::Bd09 => "bd09",
            Crs::Cgcs2000 => "cgcs2000",
        }
    }

    /// Converts a longitude/latitude in this system to WGS84, validating the result.
    ///
    /// ```
    /// use gridscope::Crs;
    ///
    /// // A point sent by an Amap-based app near 二七广场 lies about 550 m east of its WGS84 place.
    /// let p = Crs::Gcj02.to_wgs84(113.6607, 34.7486).unwrap();
    /// assert!((p.lon() - 113.6547).abs() < 0.001 && (p.lat() - 34.7499).abs() < 0.001);
    /// assert!(Crs::Wgs84.to_wgs84(f64::NAN, 34.7).is_err());
    /// ```
    pub fn to_wgs84(self, lon: f64, lat: f64) -> Result<Wgs84Point, CoordError> {
        // Validate the raw input first so NaN never reaches the datum formulas.
        check_lon_lat(lon, lat)?;
        let (x, y) = match self {
            Crs::Wgs84 | Crs::Cgcs2000 => (lon, lat),
            Crs::Gcj02 => coordtransform::gcj02_to_wgs84(lon, lat),
            Crs::Bd09 => coordtransform::bd09_to_wgs84(lon, lat),
        };
        Wgs84Point::new(x, y)
    }

    /// Converts a WGS84 point into this system (for round-trip checks and exports to apps).
    pub fn from_wgs84(self, p: Wgs84Point) -> (f64, f64) {
        match self {
            Crs::Wgs84 | Crs::Cgcs2000 => (p.lon(), p.lat()),
            Crs::Gcj02 => coordtransform::wgs84_to_gcj02(p.lon(), p.lat()),
            Crs::Bd09 => coordtransform::wgs84_to_bd09(p.lon(), p.lat()),
        }
    }
}

impl fmt::Display for Crs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Crs {
    type Err = CoordError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "wgs84" | "wgs-84" | "epsg:4326" | "4326" => Ok(Crs::Wgs84),
            "gcj02" | "gcj-02" => Ok(Crs::Gcj02),
            "bd09" | "bd-09" | "bd09ll" => Ok(Crs::Bd09),
            "cgcs2000" | "epsg:4490" | "4490" => Ok(Crs::Cgcs2000),
            _ => Err(CoordError::UnknownCrs(s.to_string())),
        }
    }
}

/// Why a coordinate was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CoordError {
    /// A longitude or latitude is NaN or infinite.
    #[error("coordinate is not a finite number (lon {lon}, lat {lat})")]
    NotFinite {
        /// Longitude as given.
        lon: f64,
        /// Latitude as given.
        lat: f64,
    },
    /// Latitude outside ±90° but the pair would be valid the other way round.
    #[error("latitude {lat} is out of range; longitude and latitude look swapped")]
    LikelySwapped {
        /// Longitude as given.
        lon: f64,
        /// Latitude as given.
        lat: f64,
    },
    /// Longitude outside ±180° or latitude outside ±90°.
    #[error("coordinate out of range (lon {lon} must be within ±180, lat {lat} within ±90)")]
    OutOfRange {
        /// Longitude as given.
        lon: f64,
        /// Latitude as given.
        lat: f64,
    },
    /// A coordinate system name gridscope does not know.
    #[error("unknown coordinate system {0:?} (expected wgs84, gcj02, bd09 or cgcs2000)")]
    UnknownCrs(String),
}

fn check_lon_lat(lon: f64, lat: f64) -> Result<(), CoordError> {
    if !lon.is_finite() || !lat.is_finite() {
        return Err(CoordError::NotFinite { lon, lat });
    }
    if !(-90.0..=90.0).contains(&lat) {
        if (-90.0..=90.0).contains(&lon) && (-180.0..=180.0).contains(&lat) {
            return Err(CoordError::LikelySwapped { lon, lat });
        }
        return Err(CoordError::OutOfRange { lon, lat });
    }
    if !(-180.0..=180.0).contains(&lon) {
        return Err(CoordError::OutOfRange { lon, lat });
    }
    Ok(())
}

/// A WGS84 longitude/latitude that is finite and in range: the only kind of point the
/// grid index and the store ever see.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Wgs84Point {
    lon: f64,
    lat: f64,
}

impl Wgs84Point {
    /// Validates a WGS84 longitude/latitude.
    pub fn new(lon: f64, lat: f64) -> Result<Self, CoordError> {
        check_lon_lat(lon, lat)?;
        Ok(Self { lon, lat })
    }

    /// Longitude in degrees east.
    pub fn lon(self) -> f64 {
        self.lon
    }

    /// Latitude in degrees north.
    pub fn lat(self) -> f64 {
        self.lat
    }

    /// The point as a `geo` coordinate (x = lon, y = lat).
    pub fn coord(self) -> geo::Coord<f64> {
        geo::Coord {
            x: self.lon,
            y: self.lat,
        }
    }
}

impl From<Wgs84Point> for geo::Coord<f64> {
    fn from(p: Wgs84Point) -> Self {
        p.coord()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::haversine_m;

    #[test]
    fn gcj02_and_bd09_round_trip_within_a_metre() {
        for &(lon, lat) in &[
            (113.65, 34.75),
            (113.02, 34.46),
            (114.2, 34.9),
            (112.8, 34.3),
        ] {
            let p = Wgs84Point::new(lon, lat).unwrap();
            for crs in Crs::ALL {
                let (x, y) = crs.from_wgs84(p);
                let back = crs.to_wgs84(x, y).unwrap();
                assert!(haversine_m(p, back) < 1.0, "{crs}: {p:?} -> {back:?}");
            }
        }
    }

    #[test]
    fn gcj02_offset_in_zhengzhou_is_hundreds_of_metres() {
        let p = Wgs84Point::new(113.65, 34.75).unwrap();
        let (x, y) = Crs::Gcj02.from_wgs84(p);
        let d = haversine_m(p, Wgs84Point::new(x, y).unwrap());
        assert!((400.0..700.0).contains(&d), "offset {d} m");
    }

    #[test]
    fn bad_coordinates_are_named() {
        assert!(matches!(
            Wgs84Point::new(f64::NAN, 1.0),
            Err(CoordError::NotFinite { .. })
        ));
        assert!(matches!(
            Wgs84Point::new(34.7, 113.6),
            Err(CoordError::LikelySwapped { .. })
        ));
        assert!(matches!(
            Wgs84Point::new(200.0, 10.0),
            Err(CoordError::OutOfRange { .. })
        ));
        assert!(matches!(
            "utm".parse::<Crs>(),
            Err(CoordError::UnknownCrs(_))
        ));
        assert_eq!("GCJ-02".parse::<Crs>().unwrap(), Crs::Gcj02);
    }
}
