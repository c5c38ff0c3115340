//! Governance analytics over the stored reports: KPIs per grid.
//!
//! | piece | module |
//! |---|---|
//! | KPI counts and rates per grid, with their definitions | [`kpi`] |

pub mod kpi;
