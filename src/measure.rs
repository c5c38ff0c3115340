//! Distances and areas on the Earth, in metres, for quality reports and snapping.

use geo::{ChamberlainDuquetteArea, MultiPolygon, Polygon};

use crate::coords::Wgs84Point;

/// Mean Earth radius used for short distances (IUGG), metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Metres per degree of latitude (and of longitude at the equator) on the mean sphere.
pub const METRES_PER_DEGREE: f64 = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;

/// Great-circle distance between two points in metres.
pub fn haversine_m(a: Wgs84Point, b: Wgs84Point) -> f64 {
    let (la1, la2) = (a.lat().to_radians(), b.lat().to_radians());
    let dlat = la2 - la1;
    let dlon = (b.lon() - a.lon()).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// Geodesic area of a WGS84 (multi)polygon in square metres.
pub fn area_m2(shape: &MultiPolygon<f64>) -> f64 {
    // Per ring on the sphere, orientation-independent: boolean-operation results may come
    // with either winding, and a geodesic area of a wrongly wound ring is the rest of the Earth.
    shape
        .iter()
        .map(|p| {
            let ring = |r: &geo::LineString<f64>| {
                Polygon::new(r.clone(), vec![]).chamberlain_duquette_unsigned_area()
            };
            (ring(p.exterior()) - p.interiors().iter().map(ring).sum::<f64>()).max(0.0)
        })
        .sum()
}

/// A local equirectangular frame: converts degree offsets near a latitude into metres.
/// Accurate to well under a millimetre over the tens of metres snapping works with.
#[derive(Debug, Clone, Copy)]
pub struct LocalMetres {
    x_scale: f64,
}

impl LocalMetres {
    /// A frame for points near `lat` degrees.
    pub fn at_lat(lat: f64) -> Self {
        Self {
            x_scale: METRES_PER_DEGREE * lat.to_radians().cos(),
        }
    }

    /// Metres east per degree of longitude in this frame.
    pub fn x_scale(self) -> f64 {
        self.x_scale
    }

    /// Degrees of longitude and latitude that span `metres` in this frame.
    pub fn degrees_for(self, metres: f64) -> (f64, f64) {
        (metres / self.x_scale, metres / METRES_PER_DEGREE)
    }
}
