//! An assignment spelled out with codes and names, as reporting apps and files need it.

use std::ops::Deref;
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use super::{Assigner, Assignment, Method};
use crate::grid::code::Level;
use crate::grid::model::{ExclusiveKind, Grid, GridId, GridSet};

/// What an answer says about one grid.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[schema(as = GridRef)]
pub struct GridLabel {
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

/// One grid as named in an answer: its label, shared by every answer that names the grid,
/// with the label's JSON written once when the grids are indexed. An answer names up to
/// seven grids; copying their text, then escaping it into JSON field by field, was most of
/// the cost of spelling an answer out.
#[derive(Debug, Clone)]
pub struct GridRef(Arc<LabelEntry>);

#[derive(Debug)]
struct LabelEntry {
    label: GridLabel,
    /// The label as JSON; None only if it could not be written, and then it is written at
    /// each use instead.
    json: Option<Box<RawValue>>,
}

impl GridRef {
    /// A grid's label, with its JSON written out.
    pub fn new(label: GridLabel) -> Self {
        let json = serde_json::value::to_raw_value(&label).ok();
        GridRef(Arc::new(LabelEntry { label, json }))
    }

    /// The label of a grid of the registry.
    fn of(g: &Grid) -> Self {
        Self::new(GridLabel {
            level: g.level(),
            code: g.code.shared(),
            name: Arc::clone(&g.name),
            kind: g.kind,
        })
    }
}

impl Deref for GridRef {
    type Target = GridLabel;

    fn deref(&self) -> &GridLabel {
        &self.0.label
    }
}

impl PartialEq for GridRef {
    fn eq(&self, other: &Self) -> bool {
        self.0.label == other.0.label
    }
}

impl Serialize for GridRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0.json {
            Some(json) => json.serialize(s),
            None => self.0.label.serialize(s),
        }
    }
}

/// The labels of all grids of a set, by grid id.
#[derive(Debug, Default)]
pub(super) struct GridLabels(Vec<GridRef>);

impl GridLabels {
    /// Labels every grid of `set`.
    pub(super) fn new(set: &GridSet) -> Self {
        GridLabels(set.grids().par_iter().map(GridRef::of).collect())
    }
}

/// An [`Assignment`] with grid codes and names instead of ids.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct AssignmentView {
    /// How it was reached.
    pub method: Method,
    /// The chain from the assigned grid up to the district (level-3 → 2 → 1 → district).
    #[schema(value_type = Vec<GridLabel>)]
    pub chain: Vec<GridRef>,
    /// The micro-grid containing the point.
    #[schema(value_type = Option<GridLabel>)]
    pub micro: Option<GridRef>,
    /// Exclusive grids containing the point, in order of precedence.
    #[schema(value_type = Vec<GridLabel>)]
    pub exclusive: Vec<GridRef>,
    /// The grid whose head is responsible (None: the city queue).
    #[schema(value_type = Option<GridLabel>)]
    pub responsible: Option<GridRef>,
    /// Snapping distance in metres (0 unless snapped).
    pub distance_m: f32,
}

impl Assigner {
    /// Names a grid.
    pub fn grid_ref(&self, id: GridId) -> GridRef {
        self.labels.0[id as usize].clone()
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{GridLabel, GridRef};
    use crate::assign::{AssignConfig, Assigner};
    use crate::grid::code::Level;
    use crate::grid::demo::{DemoConfig, generate};
    use crate::grid::model::{ExclusiveKind, GridSet};

    /// A label's JSON as serde would write it field by field.
    fn written(label: &GridLabel) -> String {
        serde_json::to_string(label).unwrap()
    }

    #[test]
    fn prewritten_labels_read_as_the_fields_would() {
        let city = GridSet::new(generate(&DemoConfig::scaled_down(50), &|_| {}).unwrap());
        let assigner = Assigner::new(Arc::new(city), AssignConfig::default());
        let set = assigner.grids();
        let mut kinds = 0;
        for (id, g) in set.grids().iter().enumerate() {
            let r = assigner.grid_ref(id as u32);
            let label = GridLabel {
                level: g.level(),
                code: g.code.shared(),
                name: Arc::clone(&g.name),
                kind: g.kind,
            };
            kinds += usize::from(g.kind.is_some());
            assert_eq!(*r, label);
            assert_eq!(serde_json::to_string(&r).unwrap(), written(&label));
            assert_eq!(
                serde_json::to_value(&r).unwrap(),
                serde_json::to_value(&label).unwrap()
            );
        }
        assert!(kinds > 0, "the demo has exclusive grids, with kinds");
    }

    #[test]
    fn names_needing_escapes_are_written_escaped() {
        let label = GridLabel {
            level: Level::Exclusive,
            code: "410103900001".into(),
            name: "\"金水\" \\ 广场\n\t\u{1}".into(),
            kind: Some(ExclusiveKind::Park),
        };
        let text = serde_json::to_string(&GridRef::new(label.clone())).unwrap();
        assert_eq!(text, written(&label));
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["name"], "\"金水\" \\ 广场\n\t\u{1}");
    }
}
