//! The `grids` tile set: one polygon layer per grid level, each in its zoom band, the
//! exclusive grids, and label points carrying the grids' names.
//!
//! Built once per grid version: every grid is projected to world units and cut into a shared
//! topology, so a tile is a filter over precomputed simplification thresholds, a clip and an
//! encode. Features are never dropped except when smaller than a pixel.

use std::sync::Arc;

use geo::InteriorPoint;
use mvt::Tile;
use rayon::prelude::*;
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{AABB, RTree};

use crate::grid::code::{GridCode, Level};
use crate::grid::model::{GridId, GridSet, bounds};
use crate::tiles::clip::{PolygonClipper, TileFrame};
use crate::tiles::encode::{LayerBuilder, Prop};
use crate::tiles::layer::{BUFFER, EXTENT, LayerInfo, TileError, TileFilter, TileSet};
use crate::tiles::tile_id::{TileId, lon_lat_to_world};
use crate::tiles::topology::{TopoPolygon, Topology, WorldPoint};

/// The deepest zoom the grid tiles are cut at (clients overzoom beyond it).
pub const MAX_ZOOM: u8 = 18;

/// Simplification tolerance in tile units (1/4096 of a tile side): about a quarter of a screen
/// pixel on 512-pixel tiles.
pub const TOLERANCE: f64 = 2.0;

/// Features whose bounding box is smaller than this many tile units both ways are not drawn
/// (about one screen pixel on 512-pixel tiles).
pub const MIN_FEATURE: f64 = 8.0;

/// The polygon layers: name, level, first zoom, and what they show.
const POLYGON_LAYERS: [(&str, Level, u8, &str); 6] = [
    ("districts", Level::District, 0, "districts (区/县)"),
    (
        "level1",
        Level::One,
        9,
        "level-1 grids: streets and towns (街道/乡镇)",
    ),
    (
        "level2",
        Level::Two,
        11,
        "level-2 grids: communities and villages (社区/村)",
    ),
    (
        "level3",
        Level::Three,
        13,
        "level-3 grids, responsible for what happens inside them",
    ),
    ("micro", Level::Micro, 16, "micro-grids (微网格)"),
    (
        "exclusive",
        Level::Exclusive,
        13,
        "exclusive grids (专属网格): schools, parks, malls...",
    ),
];

/// First zoom at which a level's names are labelled.
fn label_zoom(level: Level) -> u8 {
    match level {
        Level::District => 8,
        Level::One => 10,
        Level::Two => 12,
        Level::Three => 14,
        Level::Micro => 17,
        Level::Exclusive => 14,
    }
}

const POLYGON_FIELDS: [(&str, &str); 5] = [
    ("code", "grid code (网格编码)"),
    ("name", "grid name"),
    ("level", "district, 1, 2, 3, micro or exclusive"),
    ("parent", "code of the parent grid"),
    (
        "kind",
        "exclusive grids: school, hospital, mall, market, park, industrial_park...",
    ),
];

/// A feature id that stays the same across versions: the code's digits as a number; for
/// exclusive grids (`<owner>Z<seq>`) the owner's digits followed by the 4-digit sequence.
pub fn feature_id(code: &GridCode) -> u64 {
    let s = code.as_str();
    let digits = |t: &str| t.parse::<u64>().unwrap_or(0);
    match s.split_once('Z') {
        Some((owner, seq)) => digits(owner) * 10_000 + digits(seq),
        None => digits(s),
    }
}

type Bbox = GeomWithData<Rectangle<[f64; 2]>, u32>;

/// Adds properties (e.g. KPIs) to a grid's feature, given its code.
pub type ExtraProps<'a> = dyn Fn(&GridCode, &mut Vec<(&'static str, Prop<'static>)>) + 'a;

struct GridFeature {
    grid: GridId,
    id: u64,
    polygons: Vec<TopoPolygon>,
    /// West, north, east, south in world units.
    bbox: [f64; 4],
}

struct PolygonLayer {
    name: &'static str,
    level: Level,
    description: &'static str,
    minzoom: u8,
    features: Vec<GridFeature>,
    index: RTree<Bbox>,
}

struct Label {
    grid: GridId,
    id: u64,
    at: [f64; 2],
    minzoom: u8,
}

/// The `grids` tile set of one grid version.
pub struct GridTiles {
    grids: Arc<GridSet>,
    topology: Topology,
    layers: Vec<PolygonLayer>,
    labels: Vec<Label>,
    label_index: RTree<GeomWithData<[f64; 2], u32>>,
    bounds: [f64; 4],
    version: u64,
}

fn world_bbox(topology: &Topology, polygons: &[TopoPolygon]) -> [f64; 4] {
    let mut b = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
    for ring in polygons.iter().filter_map(|p| p.rings.first()) {
        topology.walk_ring(ring, 0.0, |[x, y]| {
            let (x, y) = (f64::from(x), f64::from(y));
            b = [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)];
        });
    }
    b
}

/// A fingerprint of the grids' codes, names and kinds (what the tiles carry besides shapes).
fn names_fingerprint(grids: &GridSet) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = foldhash::fast::FixedState::with_seed(0x5eed_9a1d).build_hasher();
    for g in grids.grids() {
        g.code.as_str().hash(&mut h);
        g.name.hash(&mut h);
        g.kind.map(|k| k.name()).hash(&mut h);
    }
    h.finish()
}

impl GridTiles {
    /// Projects, cuts and indexes every grid of `grids`.
    pub fn build(grids: Arc<GridSet>) -> Self {
        let ids: Vec<GridId> = (0..grids.len() as GridId).collect();
        let shapes: Vec<_> = ids.iter().map(|&id| &grids.grid(id).geometry).collect();
        let (topology, polygons) = Topology::build(&shapes);
        let mut per_level: Vec<Vec<GridFeature>> =
            POLYGON_LAYERS.iter().map(|_| Vec::new()).collect();
        for (&grid, polygons) in ids.iter().zip(polygons) {
            let g = grids.grid(grid);
            let Some(slot) = POLYGON_LAYERS.iter().position(|l| l.1 == g.level()) else {
                continue;
            };
            let bbox = world_bbox(&topology, &polygons);
            per_level[slot].push(GridFeature {
                grid,
                id: feature_id(&g.code),
                polygons,
                bbox,
            });
        }
        let layers = POLYGON_LAYERS
            .iter()
            .zip(per_level)
            .map(|(&(name, level, minzoom, description), features)| {
                let index = RTree::bulk_load(
                    features
                        .iter()
                        .enumerate()
                        .filter(|(_, f)| f.bbox[0] <= f.bbox[2])
                        .map(|(i, f)| {
                            let r = Rectangle::from_corners(
                                [f.bbox[0], f.bbox[1]],
                                [f.bbox[2], f.bbox[3]],
                            );
                            GeomWithData::new(r, i as u32)
                        })
                        .collect(),
                );
                PolygonLayer {
                    name,
                    level,
                    description,
                    minzoom,
                    features,
                    index,
                }
            })
            .collect();
        let labels: Vec<Label> = ids
            .par_iter()
            .filter_map(|&grid| {
                let g = grids.grid(grid);
                let p = g.geometry.interior_point()?;
                Some(Label {
                    grid,
                    id: feature_id(&g.code),
                    at: lon_lat_to_world(p.x(), p.y()),
                    minzoom: label_zoom(g.level()),
                })
            })
            .collect();
        let label_index = RTree::bulk_load(
            labels
                .iter()
                .enumerate()
                .map(|(i, l)| GeomWithData::new(l.at, i as u32))
                .collect(),
        );
        let bounds = bounds(grids.grids().iter().map(|g| &g.geometry))
            .map_or([-180.0, -85.0, 180.0, 85.0], |r| {
                [r.min().x, r.min().y, r.max().x, r.max().y]
            });
        let version = topology.fingerprint() ^ names_fingerprint(&grids);
        Self {
            grids,
            topology,
            layers,
            labels,
            label_index,
            bounds,
            version,
        }
    }

    /// West, south, east, north of the grids, in degrees.
    pub fn bounds(&self) -> [f64; 4] {
        self.bounds
    }

    /// The grids the tiles are cut from.
    pub fn grids(&self) -> &Arc<GridSet> {
        &self.grids
    }

    /// Distinct arcs and vertices of the shared topology (for logs and benchmarks).
    pub fn topology_size(&self) -> (usize, usize) {
        (self.topology.arc_count(), self.topology.point_count())
    }

    /// Adds a layer called `name` to `tile` with the grids of `level`, each with its code,
    /// name and level plus the properties `extra` gives it (e.g. KPIs).
    pub fn render_level(
        &self,
        level: Level,
        name: &str,
        tile_id: TileId,
        tile: &mut Tile,
        extra: &ExtraProps<'_>,
    ) -> Result<(), TileError> {
        let Some(layer) = self.layers.iter().find(|l| l.level == level) else {
            return Ok(());
        };
        let frame = TileFrame::new(tile_id, EXTENT, BUFFER);
        CLIPPER.with_borrow_mut(|clipper| {
            self.render_polygons(layer, name, &frame, clipper, tile, extra)
        })
    }

    fn render_polygons(
        &self,
        layer: &PolygonLayer,
        name: &str,
        frame: &TileFrame,
        clipper: &mut PolygonClipper,
        tile: &mut Tile,
        extra: &ExtraProps<'_>,
    ) -> Result<(), TileError> {
        let window = frame.world_window();
        let [w, n, e, s] = window;
        let (lo, hi) = frame.limits();
        let tolerance = frame.to_world(TOLERANCE) as f32;
        let mut hits: Vec<u32> = layer
            .index
            .locate_in_envelope_intersecting(&AABB::from_corners([w, n], [e, s]))
            .map(|b| b.data)
            .collect();
        hits.sort_unstable();
        let mut out = LayerBuilder::new(tile, name);
        let mut ring: Vec<[f64; 2]> = Vec::new();
        let mut extras = Vec::new();
        for i in hits {
            let f = &layer.features[i as usize];
            let (fw, fh) = (
                frame.to_tile(f.bbox[2] - f.bbox[0]),
                frame.to_tile(f.bbox[3] - f.bbox[1]),
            );
            if fw < MIN_FEATURE && fh < MIN_FEATURE {
                continue;
            }
            clipper.begin();
            for polygon in &f.polygons {
                for r in &polygon.rings {
                    ring.clear();
                    self.topology
                        .walk_ring_for_window(r, tolerance, window, |p: WorldPoint| {
                            ring.push(frame.project(p));
                        });
                    clipper.add_ring(&ring, lo, hi);
                }
            }
            let shapes = clipper.finish();
            if shapes.is_empty() {
                continue;
            }
            let g = self.grids.grid(f.grid);
            let parent = self
                .grids
                .parent(f.grid)
                .map(|p| self.grids.grid(p).code.as_str());
            let mut props = vec![
                ("code", Prop::Str(g.code.as_str())),
                ("name", Prop::Str(&g.name)),
                ("level", Prop::Str(g.level().name())),
            ];
            if let Some(p) = parent {
                props.push(("parent", Prop::Str(p)));
            }
            if let Some(k) = g.kind {
                props.push(("kind", Prop::Str(k.name())));
            }
            extras.clear();
            extra(&g.code, &mut extras);
            props.extend(extras.iter().copied());
            out.polygon(f.id, &shapes, &props)?;
        }
        Ok(out.finish(tile)?)
    }

    fn render_labels(&self, z: u8, frame: &TileFrame, tile: &mut Tile) -> Result<(), TileError> {
        // Labels belong to the tile they fall in (no buffer), so each is drawn once.
        let extent = f64::from(frame.extent());
        let [w, n, e, s] = frame.world_window();
        let mut hits: Vec<u32> = self
            .label_index
            .locate_in_envelope(&AABB::from_corners([w, n], [e, s]))
            .map(|p| p.data)
            .collect();
        hits.sort_unstable();
        let mut out = LayerBuilder::new(tile, "labels");
        for i in hits {
            let l = &self.labels[i as usize];
            let [x, y] = frame.project_f64(l.at);
            if z < l.minzoom || !(0.0..extent).contains(&x) || !(0.0..extent).contains(&y) {
                continue;
            }
            let g = self.grids.grid(l.grid);
            out.point(
                l.id,
                [x.floor() as i32, y.floor() as i32],
                &[
                    ("code", Prop::Str(g.code.as_str())),
                    ("name", Prop::Str(&g.name)),
                    ("level", Prop::Str(g.level().name())),
                ],
            )?;
        }
        Ok(out.finish(tile)?)
    }
}

thread_local! {
    static CLIPPER: std::cell::RefCell<PolygonClipper> = std::cell::RefCell::new(PolygonClipper::default());
}

impl TileSet for GridTiles {
    fn name(&self) -> &str {
        "grids"
    }

    fn description(&self) -> &str {
        "grid boundaries of every level (each in its zoom band), exclusive grids and name labels"
    }

    fn layers(&self) -> Vec<LayerInfo> {
        let mut out: Vec<LayerInfo> = self
            .layers
            .iter()
            .map(|l| {
                LayerInfo::new(
                    l.name,
                    l.description,
                    (l.minzoom, MAX_ZOOM),
                    &POLYGON_FIELDS,
                )
            })
            .collect();
        out.push(LayerInfo::new(
            "labels",
            "one point per grid, inside it, for its name; each level from its own zoom",
            (label_zoom(Level::District), MAX_ZOOM),
            &POLYGON_FIELDS[..3],
        ));
        out
    }

    fn zooms(&self) -> (u8, u8) {
        (0, MAX_ZOOM)
    }

    fn bounds(&self) -> [f64; 4] {
        self.bounds
    }

    fn is_public(&self) -> bool {
        true
    }

    fn version(&self) -> u64 {
        self.version
    }

    fn render(&self, tile: TileId, _filter: &TileFilter) -> Result<Vec<u8>, TileError> {
        let frame = TileFrame::new(tile, EXTENT, BUFFER);
        let mut out = Tile::new(EXTENT);
        CLIPPER.with_borrow_mut(|clipper| {
            for layer in self.layers.iter().filter(|l| tile.z >= l.minzoom) {
                self.render_polygons(layer, layer.name, &frame, clipper, &mut out, &|_, _| {})?;
            }
            Ok::<_, TileError>(())
        })?;
        self.render_labels(tile.z, &frame, &mut out)?;
        Ok(crate::tiles::encode::tile_bytes(&out)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_ids_follow_the_codes() {
        let id = |s: &str| feature_id(&GridCode::parse(s).unwrap());
        assert_eq!(id("410105001002007"), 410_105_001_002_007);
        assert_eq!(id("410105001Z0012"), 4_101_050_010_012);
        assert_ne!(id("410105Z0001"), id("410105000Z0001"));
    }
}
