//! Zhengzhou facts the demo city is built on: the embedded real inputs, where people live,
//! and where the functional zones lie.

/// Real district outlines, GCJ-02 (see `data/zhengzhou/README.md` for provenance).
pub(super) const DISTRICTS_GEOJSON: &str =
    include_str!("../../../data/zhengzhou/districts-gcj02.geojson");
/// Real street and town names and 9-digit codes.
pub(super) const STREETS_CSV: &str = include_str!("../../../data/zhengzhou/streets.csv");
/// Real community and village names and 12-digit codes.
pub(super) const COMMUNITIES_CSV: &str = include_str!("../../../data/zhengzhou/communities.csv");

/// The city centre (二七广场 area) the density peaks on, WGS84.
pub(super) const CENTRE: [f64; 2] = [113.65, 34.75];

/// Seats of the outer districts and county-level cities, where density peaks again (approximate).
const TOWNS: [[f64; 2]; 9] = [
    [113.73, 34.77], // 郑东新区
    [113.02, 34.75], // 巩义
    [113.38, 34.79], // 荥阳
    [113.30, 34.81], // 上街
    [113.38, 34.52], // 新密
    [113.74, 34.40], // 新郑
    [113.04, 34.46], // 登封
    [113.98, 34.72], // 中牟
    [113.84, 34.53], // 航空港
];

/// Where the functional zones (no statutory polygon) lie, WGS84 (approximate).
pub(super) const ZONE_ANCHORS: [(&str, [f64; 2]); 3] = [
    ("410171", [113.74, 34.70]), // 经开区
    ("410172", [113.55, 34.82]), // 高新区
    ("410173", [113.85, 34.52]), // 航空港区
];

/// Relative household density at a point: a metropolitan core, town centres, a rural floor.
pub(super) fn density(p: [f64; 2]) -> f64 {
    let bump = |c: [f64; 2], sigma_km: f64| {
        let dx = (p[0] - c[0]) * 91.4;
        let dy = (p[1] - c[1]) * 111.2;
        (-(dx * dx + dy * dy) / (2.0 * sigma_km * sigma_km)).exp()
    };
    0.015 + bump(CENTRE, 7.0) + TOWNS.iter().map(|&t| 0.2 * bump(t, 2.5)).sum::<f64>()
}
