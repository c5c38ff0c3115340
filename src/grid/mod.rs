//! Grids: codes and levels, the model, import from GIS files, quality checks, export, and the
//! demo city.

pub mod code;
pub mod demo;
pub mod export;
pub mod import;
pub mod model;
pub mod quality;
