//! An assignment spelled out with codes and names, as reporting apps and files need it.

use std::sync::Arc;

use serde::Serialize;

use super::{Assigner, Assignment, Method};
use crate::grid::code::Level;
use crate::grid::model::{ExclusiveKind, GridId};

/// One grid as named in an answer. Code and name are shared with the registry: an answer
/// names up to seven grids, and copying their text was most of the cost of spelling it out.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct GridRef {
    /// Level.
    pub level: Level,
    /// Code.
    #[schema(value_type = String)]
    pub code: Arc<str>,
    /// Name.
    #[schema(value_type = String)]
    pub name: Arc<str>,
    /// Kind, for exclusive grids.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<ExclusiveKind>,
}

/// An [`Assignment`] with grid codes and names instead of ids.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct AssignmentView {
    /// How it was reached.
    pub method: Method,
    /// The chain from the assigned grid up to the district (level-3 → 2 → 1 → district).
    pub chain: Vec<GridRef>,
    /// The micro-grid containing the point.
    pub micro: Option<GridRef>,
    /// Exclusive grids containing the point, in order of precedence.
    pub exclusive: Vec<GridRef>,
    /// The grid whose head is responsible (None: the city queue).
    pub responsible: Option<GridRef>,
    /// Snapping distance in metres (0 unless snapped).
    pub distance_m: f32,
}

impl Assigner {
    /// Names a grid.
    pub fn grid_ref(&self, id: GridId) -> GridRef {
        let g = self.grids().grid(id);
        GridRef {
            level: g.level(),
            code: g.code.shared(),
            name: Arc::clone(&g.name),
            kind: g.kind,
        }
    }

    /// Spells an assignment out with codes and names.
    pub fn view(&self, a: &Assignment) -> AssignmentView {
        AssignmentView {
            method: a.method,
            chain: self
                .chain(a)
                .into_iter()
                .map(|id| self.grid_ref(id))
                .collect(),
            micro: a.micro.map(|id| self.grid_ref(id)),
            exclusive: a.exclusive.iter().map(|&id| self.grid_ref(id)).collect(),
            responsible: a.responsible.map(|id| self.grid_ref(id)),
            distance_m: a.distance_m,
        }
    }
}

/// Column names of the flat (CSV) form of an assignment.
pub const FLAT_COLUMNS: [&str; 10] = [
    "method",
    "grid_code",
    "level2_code",
    "level1_code",
    "district_code",
    "micro_code",
    "exclusive_codes",
    "responsible_code",
    "grid_name",
    "distance_m",
];

impl AssignmentView {
    /// The flat form, matching [`FLAT_COLUMNS`].
    pub fn flat(&self) -> [String; 10] {
        let at = |level: Level| {
            self.chain
                .iter()
                .find(|g| g.level == level)
                .map(|g| g.code.to_string())
                .unwrap_or_default()
        };
        [
            self.method.name().to_string(),
            self.chain
                .first()
                .map(|g| g.code.to_string())
                .unwrap_or_default(),
            at(Level::Two),
            at(Level::One),
            at(Level::District),
            self.micro
                .as_ref()
                .map(|g| g.code.to_string())
                .unwrap_or_default(),
            self.exclusive
                .iter()
                .map(|g| &*g.code)
                .collect::<Vec<_>>()
                .join(";"),
            self.responsible
                .as_ref()
                .map(|g| g.code.to_string())
                .unwrap_or_default(),
            self.chain
                .first()
                .map(|g| g.name.to_string())
                .unwrap_or_default(),
            if self.method == Method::Snapped {
                format!("{:.1}", self.distance_m)
            } else {
                String::new()
            },
        ]
    }
}
