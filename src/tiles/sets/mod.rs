//! The tile sets gridscope serves.

pub mod grids;

pub use grids::GridTiles;
