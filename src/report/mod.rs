//! Reports (事件) and their lifecycle: what a report is, which transitions are legal, and when
//! it is due.
//!
//! This module is pure domain logic: no storage and no HTTP. The store persists what these types
//! decide; the API turns requests into them.

pub mod category;
pub mod deadline;
pub mod history;
pub mod intake;
pub mod lifecycle;
pub mod model;

pub use category::{Catalog, Category, CategoryId, CategoryKind};
pub use deadline::{DeadlineRules, WorkCalendar};
pub use lifecycle::{Action, ActionKind, IllegalTransition};
pub use model::{Channel, Rating, ReportId, Status};
