//! # gridscope
//!
//! A geospatial tile and analytics server for city grid governance (网格化治理). A city is
//! divided into a hierarchy of grids (districts → streets → communities → level-3 grids →
//! micro-grids, with exclusive grids of schools, parks and malls on top). gridscope stores the
//! boundaries, assigns every incoming report to the grid responsible for it, and (in later
//! parts) keeps reports, computes governance KPIs and serves vector tiles.
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
//!
//! Data flows one way: the CLI (and later the HTTP API) call the domain modules; the domain
//! never reaches back up.

#![warn(missing_docs)]

pub mod assign;
pub mod coords;
pub mod grid;
pub mod measure;

pub use assign::{AssignConfig, Assigner, Assignment, Method};
pub use coords::{CoordError, Crs, Wgs84Point};
pub use grid::code::{GridCode, Level};
pub use grid::model::{ExclusiveKind, Grid, GridId, GridSet, Validity};
