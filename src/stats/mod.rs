//! Governance analytics over the stored reports: KPIs per grid, and hot spots.
//!
//! | piece | module |
//! |---|---|
//! | KPI counts and rates per grid, with their definitions | [`kpi`] |
//! | Getis-Ord Gi* hot spots and emerging hot-spot classes over H3 cells | [`hotspots`] |

pub mod hotspots;
pub mod kpi;
