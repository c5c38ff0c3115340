//! The grid model: grids, their versions, and a grid set with its resolved hierarchy.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;
use geo::{BoundingRect, Contains, InteriorPoint, MultiPolygon, Rect};
use rstar::{AABB, RTree, RTreeObject};
use serde::{Deserialize, Serialize};

use super::code::{GridCode, Level};

/// What kind of unit an exclusive grid (专属网格) belongs to; drives which one is responsible
/// when several overlap.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ExclusiveKind {
    /// A school or kindergarten (学校).
    School,
    /// A hospital or clinic (医院).
    Hospital,
    /// A shopping mall (商场).
    Mall,
    /// A market (市场).
    Market,
    /// A railway or bus station (车站).
    Station,
    /// A park or scenic area (公园).
    Park,
    /// An industrial park (产业园区).
    IndustrialPark,
    /// Any other unit.
    Other,
}

impl ExclusiveKind {
    /// All kinds, in the default order of precedence.
    pub const ALL: [ExclusiveKind; 8] = [
        ExclusiveKind::School,
        ExclusiveKind::Hospital,
        ExclusiveKind::Station,
        ExclusiveKind::Market,
        ExclusiveKind::Mall,
        ExclusiveKind::Park,
        ExclusiveKind::IndustrialPark,
        ExclusiveKind::Other,
    ];

    /// The snake_case name used in files.
    pub fn name(self) -> &'static str {
        match self {
            ExclusiveKind::School => "school",
            ExclusiveKind::Hospital => "hospital",
            ExclusiveKind::Mall => "mall",
            ExclusiveKind::Market => "market",
            ExclusiveKind::Station => "station",
            ExclusiveKind::Park => "park",
            ExclusiveKind::IndustrialPark => "industrial_park",
            ExclusiveKind::Other => "other",
        }
    }

    /// Parses a kind name; unknown names become [`ExclusiveKind::Other`].
    pub fn from_name(s: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s.trim())
            .unwrap_or(ExclusiveKind::Other)
    }
}

/// The period a grid boundary is in force: from `from` (inclusive) to `to` (exclusive, open-ended
/// when `None`). Reports are routed and analysed with the grids in force when they were made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validity {
    /// First day in force.
    pub from: NaiveDate,
    /// First day no longer in force, if the grid has been replaced.
    pub to: Option<NaiveDate>,
}

impl Validity {
    /// In force from `from` with no end.
    pub fn since(from: NaiveDate) -> Self {
        Self { from, to: None }
    }

    /// Whether the grid is in force on `day`.
    pub fn contains(&self, day: NaiveDate) -> bool {
        day >= self.from && self.to.is_none_or(|to| day < to)
    }
}

/// One grid: a polygon with a code, a name and a place in the hierarchy.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// The grid's code; its level follows from it.
    pub code: GridCode,
    /// Human name (e.g. 碧沙岗社区居委会), shared with every answer that names the grid.
    pub name: Arc<str>,
    /// The parent as given by the source, when the source names one that differs from the
    /// code prefix (functional-zone streets, exclusive grids owned elsewhere).
    pub parent: Option<GridCode>,
    /// The kind of unit, for exclusive grids.
    pub kind: Option<ExclusiveKind>,
    /// Boundary in WGS84.
    pub geometry: MultiPolygon<f64>,
    /// When this version of the grid is in force.
    pub validity: Validity,
}

impl Grid {
    /// The grid's level.
    pub fn level(&self) -> Level {
        self.code.level()
    }
}

/// A grid set: all grids of one city in force together, indexed by code, with each grid's
/// parent resolved (by code prefix, or by containment when the prefix names no grid here).
#[derive(Debug, Clone, Default)]
pub struct GridSet {
    grids: Vec<Grid>,
    by_code: HashMap<GridCode, u32>,
    parents: Vec<Option<u32>>,
    children: Vec<Vec<u32>>,
    orphans: Vec<u32>,
    partition: Vec<PartitionChain>,
}

/// The grids of a chain at the levels of the partition: district, level 1, level 2, level 3.
pub type PartitionChain = [Option<GridId>; 4];

/// Index of a grid inside its [`GridSet`]; cheap to copy and valid for that set only.
pub type GridId = u32;

struct Candidate {
    id: u32,
    bbox: AABB<[f64; 2]>,
}

impl RTreeObject for Candidate {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        self.bbox
    }
}

/// The bounding box of several shapes together (`None` when all are empty).
pub fn bounds<'a>(shapes: impl IntoIterator<Item = &'a MultiPolygon<f64>>) -> Option<Rect<f64>> {
    shapes
        .into_iter()
        .filter_map(BoundingRect::bounding_rect)
        .reduce(|a, b| {
            Rect::new(
                geo::coord! { x: a.min().x.min(b.min().x), y: a.min().y.min(b.min().y) },
                geo::coord! { x: a.max().x.max(b.max().x), y: a.max().y.max(b.max().y) },
            )
        })
}

/// The bounding box of a shape as an R-tree envelope (an empty shape gets an empty one).
pub(crate) fn envelope(shape: &MultiPolygon<f64>) -> AABB<[f64; 2]> {
    match shape.bounding_rect() {
        Some(r) => rect_envelope(r),
        None => AABB::from_corners([f64::NAN; 2], [f64::NAN; 2]),
    }
}

fn rect_envelope(r: Rect<f64>) -> AABB<[f64; 2]> {
    AABB::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y])
}

impl GridSet {
    /// Builds a set from grids with unique codes (duplicates are the importer's to refuse),
    /// resolving every grid's parent.
    pub fn new(mut grids: Vec<Grid>) -> Self {
        grids.sort_by(|a, b| a.code.cmp(&b.code));
        grids.dedup_by(|a, b| a.code == b.code);
        let by_code: HashMap<GridCode, u32> = grids
            .iter()
            .enumerate()
            .map(|(i, g)| (g.code.clone(), i as u32))
            .collect();
        let mut set = Self {
            parents: vec![None; grids.len()],
            children: vec![Vec::new(); grids.len()],
            grids,
            by_code,
            orphans: Vec::new(),
            partition: Vec::new(),
        };
        set.resolve_parents();
        set.partition = (0..set.grids.len() as GridId)
            .map(|id| set.partition_of(id))
            .collect();
        set
    }

    fn partition_of(&self, id: GridId) -> PartitionChain {
        let mut out = [None; 4];
        for g in self.chain(id) {
            let slot = match self.grid(g).level() {
                Level::District => 0,
                Level::One => 1,
                Level::Two => 2,
                Level::Three => 3,
                Level::Micro | Level::Exclusive => continue,
            };
            out[slot] = Some(g);
        }
        out
    }

    fn resolve_parents(&mut self) {
        let mut by_level: HashMap<Level, RTree<Candidate>> = HashMap::new();
        for level in [Level::District, Level::One, Level::Two, Level::Three] {
            let items = self
                .grids
                .iter()
                .enumerate()
                .filter(|(_, g)| g.level() == level)
                .map(|(i, g)| Candidate {
                    id: i as u32,
                    bbox: envelope(&g.geometry),
                })
                .filter(|c| c.bbox.lower()[0].is_finite())
                .collect();
            by_level.insert(level, RTree::bulk_load(items));
        }
        for i in 0..self.grids.len() {
            let g = &self.grids[i];
            let level = g.level();
            if level == Level::District {
                continue;
            }
            let named = g.parent.clone().or_else(|| g.code.parent());
            let by_name = named.and_then(|c| self.by_code.get(&c).copied());
            let parent = by_name.or_else(|| {
                // No parent by code: the containing grid one level up (for exclusive grids, the
                // smallest area that contains them), if any.
                let point = g.geometry.interior_point()?;
                let levels: &[Level] = match level.parent() {
                    Some(p) => &[p][..],
                    None => &[Level::Two, Level::One, Level::District][..],
                };
                levels.iter().find_map(|l| {
                    by_level
                        .get(l)?
                        .locate_in_envelope_intersecting(&AABB::from_point([point.x(), point.y()]))
                        .find_map(|c| {
                            let cand = &self.grids[c.id as usize];
                            cand.geometry.contains(&point).then_some(c.id)
                        })
                })
            });
            match parent {
                Some(p) => {
                    self.parents[i] = Some(p);
                    self.children[p as usize].push(i as u32);
                }
                None => self.orphans.push(i as u32),
            }
        }
    }

    /// All grids, sorted by code.
    pub fn grids(&self) -> &[Grid] {
        &self.grids
    }

    /// Number of grids.
    pub fn len(&self) -> usize {
        self.grids.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.grids.is_empty()
    }

    /// The grid with this id.
    pub fn grid(&self, id: GridId) -> &Grid {
        &self.grids[id as usize]
    }

    /// Looks a grid up by code.
    pub fn id_of(&self, code: &GridCode) -> Option<GridId> {
        self.by_code.get(code).copied()
    }

    /// The resolved parent of a grid.
    pub fn parent(&self, id: GridId) -> Option<GridId> {
        self.parents[id as usize]
    }

    /// The grids whose resolved parent is this one (partition children and exclusive grids).
    pub fn children(&self, id: GridId) -> &[GridId] {
        &self.children[id as usize]
    }

    /// Grids (other than districts) whose parent could be found neither by code nor by
    /// containment.
    pub fn orphans(&self) -> &[GridId] {
        &self.orphans
    }

    /// Ids of all grids of one level, in code order.
    pub fn ids_at(&self, level: Level) -> impl Iterator<Item = GridId> + '_ {
        self.grids
            .iter()
            .enumerate()
            .filter(move |(_, g)| g.level() == level)
            .map(|(i, _)| i as GridId)
    }

    /// Ids of the grids of `level` inside `area` (the area itself included when it is of that
    /// level; every grid of the level when there is none), in code order.
    pub fn ids_within(&self, level: Level, area: Option<GridId>) -> Vec<GridId> {
        self.ids_at(level)
            .filter(|&id| area.is_none_or(|a| id == a || self.chain(id).contains(&a)))
            .collect()
    }

    /// Count of grids per level.
    pub fn count(&self, level: Level) -> usize {
        self.ids_at(level).count()
    }

    /// The grids of a grid's chain (itself included) at the district and levels 1 to 3, worked
    /// out once per set: every report placed in the grid needs them.
    pub fn partition_chain(&self, id: GridId) -> &PartitionChain {
        &self.partition[id as usize]
    }

    /// The chain from a grid up to its district: `[id, parent, grandparent, ...]`.
    pub fn chain(&self, id: GridId) -> Vec<GridId> {
        let mut chain = vec![id];
        let mut cur = id;
        while let Some(p) = self.parent(cur) {
            if chain.contains(&p) {
                break; // a cycle in source parent codes; never loop forever
            }
            chain.push(p);
            cur = p;
        }
        chain
    }

    /// The grids in force on `day`, as a new set.
    pub fn as_of(&self, day: NaiveDate) -> GridSet {
        GridSet::new(
            self.grids
                .iter()
                .filter(|g| g.validity.contains(day))
                .cloned()
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{Rect, coord};

    fn square(code: &str, x: f64, validity: Validity) -> Grid {
        Grid {
            code: GridCode::parse(code).unwrap(),
            name: code.into(),
            parent: None,
            kind: None,
            geometry: MultiPolygon(vec![
                Rect::new(coord! {x: x, y: 0.0}, coord! {x: x + 1.0, y: 1.0}).to_polygon(),
            ]),
            validity,
        }
    }

    #[test]
    fn versions_select_the_grids_in_force_on_a_day() {
        let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
        let old = Validity {
            from: day(1, 1),
            to: Some(day(6, 1)),
        };
        let set = GridSet::new(vec![
            square("410102", 0.0, Validity::since(day(1, 1))),
            square("410102001", 0.0, old),
            square("410102002", 0.0, Validity::since(day(6, 1))),
        ]);
        let codes = |s: &GridSet| {
            s.grids()
                .iter()
                .map(|g| g.code.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(codes(&set.as_of(day(5, 31))), ["410102", "410102001"]);
        assert_eq!(codes(&set.as_of(day(6, 1))), ["410102", "410102002"]);
        let may = set.as_of(day(5, 31));
        let street = may.id_of(&GridCode::parse("410102001").unwrap()).unwrap();
        assert_eq!(may.chain(street).len(), 2);
    }

    #[test]
    fn parents_come_from_codes_or_else_from_containment() {
        let v = Validity::since(NaiveDate::from_ymd_opt(2026, 1, 1).unwrap());
        let mut zone_street = square("410171001", 0.2, v);
        zone_street.geometry = MultiPolygon(vec![
            Rect::new(coord! {x: 0.2, y: 0.2}, coord! {x: 0.4, y: 0.4}).to_polygon(),
        ]);
        let set = GridSet::new(vec![
            square("410102", 0.0, v),
            square("410103", 1.0, v),
            zone_street,
            square("410199001", 5.0, v),
        ]);
        let id = |c: &str| set.id_of(&GridCode::parse(c).unwrap()).unwrap();
        // 410171 (a functional zone) has no polygon: the street's parent is the district around it.
        assert_eq!(set.parent(id("410171001")), Some(id("410102")));
        // Neither by code nor by containment: an orphan.
        assert_eq!(set.orphans(), [id("410199001")]);
        // The partition chain follows the resolved parents, not the code.
        assert_eq!(
            set.partition_chain(id("410171001")),
            &[Some(id("410102")), Some(id("410171001")), None, None]
        );
        assert_eq!(
            set.partition_chain(id("410199001")),
            &[None, Some(id("410199001")), None, None]
        );
    }

    #[test]
    fn partition_chains_name_each_level_of_the_hierarchy() {
        let v = Validity::since(NaiveDate::from_ymd_opt(2026, 1, 1).unwrap());
        let set = GridSet::new(vec![
            square("410102", 0.0, v),
            square("410102001", 0.0, v),
            square("410102001002", 0.0, v),
            square("410102001002003", 0.0, v),
            square("410102001002003004", 0.0, v),
        ]);
        let id = |c: &str| set.id_of(&GridCode::parse(c).unwrap()).unwrap();
        let full = [
            Some(id("410102")),
            Some(id("410102001")),
            Some(id("410102001002")),
            Some(id("410102001002003")),
        ];
        // A micro-grid's chain stops at its level-3 grid.
        assert_eq!(set.partition_chain(id("410102001002003004")), &full);
        assert_eq!(set.partition_chain(id("410102001002003")), &full);
        assert_eq!(
            set.partition_chain(id("410102001")),
            &[full[0], full[1], None, None]
        );
    }
}
