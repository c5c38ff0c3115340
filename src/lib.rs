//! # gridscope
//!
//! A geospatial tile and analytics server for city grid governance (网格化治理). A city is
//! divided into a hierarchy of grids (districts → streets → communities → level-3 grids →
//! micro-grids, with exclusive grids of schools, parks and malls on top). gridscope stores the
//! boundaries, assigns every incoming report to the grid responsible for it, keeps reports and
//! their lifecycle in an embedded DuckDB, and serves it all over HTTP, with vector tiles of the
//! grids, report heat and KPI choropleths for map walls and GIS tools.
//!
//! | concept | where |
//! |---|---|
//! | coordinate systems (WGS84, GCJ-02, BD-09, CGCS2000), validated points | [`coords`] |
//! | grid levels and codes (网格编码) | [`grid::code`] |
//! | grids, versions, a grid set with its hierarchy | [`grid::model`] |
//! | reading GeoJSON / FlatGeobuf / Shapefile, repairs, refusals | [`grid::import`] |
//! | topology quality report (gaps, overlaps, outside parent, orphans) | [`grid::quality`] |
//! | writing grids (FlatGeobuf, GeoJSON) | [`grid::export`] |
//! | the Zhengzhou demo city | [`grid::demo`] |
//! | point → responsible grid (R-tree, raster fast path, boundary/snap/fallback rules) | [`assign`] |
//! | distances and areas in metres | [`measure`] |
//! | reports: channels, categories (GB/T 47678.5), lifecycle, deadlines, intake | [`report`] |
//! | storage in DuckDB: schema, single writer with group commit, queries, API keys | [`store`] |
//! | governance KPIs per grid | [`stats`] |
//! | vector tiles: grids, heat, report points, KPI choropleths; TileJSON; PMTiles | [`tiles`] |
//! | the HTTP API: routes, auth, limits, errors, OpenAPI | [`api`] |
//! | server configuration (TOML + environment) | [`config`] |
//!
//! Data flows one way: the CLI and the HTTP API call the domain modules (`grid`, `assign`,
//! `report`), which persist through `store`; the domain never reaches back up.

#![warn(missing_docs)]

pub mod api;
pub mod assign;
pub mod config;
pub mod coords;
pub mod export;
pub mod grid;
pub mod measure;
pub mod report;
pub mod stats;
pub mod store;
pub mod tiles;

pub use assign::{AssignConfig, Assigner, Assignment, Method};
pub use coords::{CoordError, Crs, Wgs84Point};
pub use grid::code::{GridCode, Level};
pub use grid::model::{ExclusiveKind, Grid, GridId, GridSet, Validity};
