//! The demo city: Zhengzhou's real districts, streets and communities, with generated
//! geometry below the districts at the city's real scale (DESIGN.md §4).
//!
//! No public street- or grid-level boundaries exist, so the real district outlines
//! (GCJ-02, converted to WGS84) are triangulated and the triangles grouped, level by level,
//! into streets, communities, level-3 grids and micro-grids, smaller toward the centre where
//! more households live. Exclusive grids (schools, parks, malls...) are grown inside streets.
//! The same seed gives the same city, byte for byte.

mod city;
mod mesh;
mod partition;
mod trace;

use std::collections::BTreeMap;

use chrono::NaiveDate;
use geo::{Contains, MultiPolygon, Point};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::code::{CodeError, GridCode};
use super::import::{self, ImportError};
use super::model::{ExclusiveKind, Grid, Validity, bounds};
use crate::coords::Crs;
use mesh::{Mesh, NONE};

/// How big a demo city to make.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Seed for every random choice.
    pub seed: u64,
    /// Interior mesh points; more gives finer boundaries and more vertices per grid.
    pub mesh_points: usize,
    /// Level-3 grids to generate (Zhengzhou: 19,582).
    pub level3: usize,
    /// Micro-grids to generate (Zhengzhou: ~46,800).
    pub micro: usize,
    /// Exclusive grids to generate (Zhengzhou: ~4,835).
    pub exclusive: usize,
    /// First day the generated grids are in force.
    pub valid_from: NaiveDate,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            seed: 20_260_101,
            mesh_points: 1_200_000,
            level3: 19_582,
            micro: 46_800,
            exclusive: 4_835,
            valid_from: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default(),
        }
    }
}

impl DemoConfig {
    /// A city with every count divided by `factor`, for quick tests.
    pub fn scaled_down(factor: usize) -> Self {
        let d = Self::default();
        let f = factor.max(1);
        Self {
            mesh_points: d.mesh_points / f,
            level3: d.level3 / f,
            micro: d.micro / f,
            exclusive: d.exclusive / f,
            ..d
        }
    }
}

/// Why the demo city could not be built (only if its embedded inputs are broken).
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The embedded district file did not parse.
    #[error("embedded district outlines: {0}")]
    Districts(#[from] ImportError),
    /// An embedded CSV row did not parse.
    #[error("embedded {file} line {line}: {reason}")]
    Table {
        /// Which file.
        file: &'static str,
        /// 1-based line.
        line: usize,
        /// What was wrong.
        reason: String,
    },
    /// A code in the embedded tables is malformed.
    #[error("embedded code: {0}")]
    Code(#[from] CodeError),
}

struct Unit {
    code: GridCode,
    name: String,
}

struct Street {
    unit: Unit,
    communities: Vec<Unit>,
}

fn table(file: &'static str, text: &str) -> Result<Vec<Vec<String>>, DemoError> {
    let mut rows = Vec::new();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.map_err(|e| DemoError::Table {
            file,
            line: i + 2,
            reason: e.to_string(),
        })?;
        rows.push(rec.iter().map(|s| s.trim().to_string()).collect());
    }
    Ok(rows)
}

fn cell(row: &[String], i: usize, file: &'static str, line: usize) -> Result<String, DemoError> {
    row.get(i).cloned().ok_or(DemoError::Table {
        file,
        line,
        reason: format!("missing column {i}"),
    })
}

/// Reads the real streets and their communities, keyed by district adcode.
fn streets_by_district() -> Result<BTreeMap<String, Vec<Street>>, DemoError> {
    let mut communities: BTreeMap<String, Vec<Unit>> = BTreeMap::new();
    for (i, row) in table("communities.csv", city::COMMUNITIES_CSV)?
        .iter()
        .enumerate()
    {
        let code = GridCode::parse(&cell(row, 0, "communities.csv", i + 2)?)?;
        let name = cell(row, 1, "communities.csv", i + 2)?;
        let street = cell(row, 2, "communities.csv", i + 2)?;
        communities
            .entry(street)
            .or_default()
            .push(Unit { code, name });
    }
    let mut out: BTreeMap<String, Vec<Street>> = BTreeMap::new();
    for (i, row) in table("streets.csv", city::STREETS_CSV)?.iter().enumerate() {
        let code_text = cell(row, 0, "streets.csv", i + 2)?;
        let code = GridCode::parse(&code_text)?;
        let name = cell(row, 1, "streets.csv", i + 2)?;
        let district = cell(row, 2, "streets.csv", i + 2)?;
        let communities = communities.remove(&code_text).unwrap_or_default();
        out.entry(district).or_default().push(Street {
            unit: Unit { code, name },
            communities,
        });
    }
    Ok(out)
}

/// Splits `total` into integer parts proportional to `weights`, each at least 1 and at most
/// its cap (largest remainder method, deterministic).
fn apportion(total: usize, weights: &[f64], caps: &[usize]) -> Vec<usize> {
    let sum: f64 = weights.iter().sum();
    let mut parts: Vec<usize> = Vec::with_capacity(weights.len());
    let mut rema: Vec<(f64, usize)> = Vec::with_capacity(weights.len());
    for (i, w) in weights.iter().enumerate() {
        let exact = if sum > 0.0 {
            total as f64 * w / sum
        } else {
            0.0
        };
        parts.push((exact.floor() as usize).clamp(1, caps[i].max(1)));
        rema.push((exact - exact.floor(), i));
    }
    rema.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut assigned: usize = parts.iter().sum();
    for &(_, i) in rema.iter().cycle().take(weights.len() * 4) {
        if assigned >= total {
            break;
        }
        if parts[i] < caps[i] {
            parts[i] += 1;
            assigned += 1;
        }
    }
    parts
}

fn rng_for(seed: u64, level: u64, index: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(
        seed ^ (level << 56) ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    )
}

/// One parent's triangles split among its children.
struct Children {
    regions: Vec<Vec<u32>>,
}

fn split_region(
    mesh: &Mesh,
    weight: &[f64],
    tris: &[u32],
    targets: &[f64],
    anchors: &[Option<[f64; 2]>],
    rng: &mut ChaCha8Rng,
) -> Children {
    let w: Vec<f64> = tris.iter().map(|&t| weight[t as usize]).collect();
    let owner = partition::split(
        mesh,
        &partition::Split {
            tris,
            weight: &w,
            targets,
            anchors,
        },
        rng,
    );
    let mut regions = vec![Vec::new(); targets.len()];
    for (i, &t) in tris.iter().enumerate() {
        regions[owner[i] as usize].push(t);
    }
    Children { regions }
}

fn region_weight(weight: &[f64], tris: &[u32]) -> f64 {
    tris.iter().map(|&t| weight[t as usize]).sum()
}

struct Level {
    /// Triangles of each grid, sorted.
    regions: Vec<Vec<u32>>,
    /// Index of each grid's parent in the level above.
    parent: Vec<usize>,
}

fn polygons(mesh: &Mesh, level: &Level) -> Vec<MultiPolygon<f64>> {
    let mut labels = vec![NONE; mesh.tris.len()];
    for (i, r) in level.regions.iter().enumerate() {
        for &t in r {
            labels[t as usize] = i as u32;
        }
    }
    level
        .regions
        .par_iter()
        .enumerate()
        .map(|(i, r)| trace::region_polygons(mesh, r, &labels, i as u32))
        .collect()
}

fn short_name(name: &str) -> &str {
    for suffix in [
        "社区居民委员会",
        "社区居委会",
        "居民委员会",
        "居委会",
        "村民委员会",
        "村委会",
        "管理委员会",
    ] {
        if let Some(s) = name.strip_suffix(suffix) {
            return s;
        }
    }
    name
}

/// Generates the demo city: districts, level-1/2/3 grids, micro-grids and exclusive grids.
/// `progress` is told what is happening, for a terminal spinner.
pub fn generate(cfg: &DemoConfig, progress: &dyn Fn(&str)) -> Result<Vec<Grid>, DemoError> {
    let validity = Validity::since(cfg.valid_from);
    progress("reading the real district outlines (GCJ-02 → WGS84)");
    let features = import::read_geojson(city::DISTRICTS_GEOJSON.as_bytes())?;
    let mut districts: Vec<(GridCode, String, MultiPolygon<f64>)> = Vec::new();
    for f in features {
        let code = GridCode::parse(f.property("adcode").unwrap_or_default())?;
        let name = f.property("name").unwrap_or_default().to_string();
        let shape = import::to_wgs84_multipolygon(&f, Crs::Gcj02).map_err(ImportError::Feature)?;
        districts.push((code, name, shape));
    }
    districts.sort_by(|a, b| a.0.cmp(&b.0));
    let mut streets = streets_by_district()?;

    progress("triangulating the city");
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let shapes: Vec<MultiPolygon<f64>> = districts.iter().map(|d| d.2.clone()).collect();
    let mesh = mesh::build(&shapes, city::density, cfg.mesh_points, &mut rng);
    let weight: Vec<f64> = (0..mesh.tris.len() as u32)
        .map(|t| {
            let c = mesh.centroid(t);
            mesh.area_deg2(t) * c[1].to_radians().cos() * city::density(c)
        })
        .collect();

    // Streets of each statutory district, with the functional zones' streets placed in the
    // district their anchor lies in.
    let mut hosted: Vec<Vec<(Street, Option<[f64; 2]>)>> = districts
        .iter()
        .map(|d| {
            streets
                .remove(d.0.as_str())
                .unwrap_or_default()
                .into_iter()
                .map(|s| (s, None))
                .collect()
        })
        .collect();
    for (zone, anchor) in city::ZONE_ANCHORS {
        let host = districts
            .iter()
            .position(|d| d.2.contains(&Point::new(anchor[0], anchor[1])))
            .unwrap_or(0);
        for s in streets.remove(zone).unwrap_or_default() {
            hosted[host].push((s, Some(anchor)));
        }
    }

    progress("partitioning districts into streets");
    let mut district_tris: Vec<Vec<u32>> = vec![Vec::new(); districts.len()];
    for (t, &d) in mesh.district.iter().enumerate() {
        if d != NONE {
            district_tris[d as usize].push(t as u32);
        }
    }
    let street_split: Vec<Children> = hosted
        .par_iter()
        .enumerate()
        .map(|(i, list)| {
            let targets: Vec<f64> = list
                .iter()
                .map(|(s, _)| s.communities.len().max(1) as f64)
                .collect();
            let anchors: Vec<Option<[f64; 2]>> = list.iter().map(|(_, a)| *a).collect();
            split_region(
                &mesh,
                &weight,
                &district_tris[i],
                &targets,
                &anchors,
                &mut rng_for(cfg.seed, 1, i),
            )
        })
        .collect();
    let mut street_units: Vec<(Unit, Vec<Unit>)> = Vec::new();
    let mut level1 = Level {
        regions: Vec::new(),
        parent: Vec::new(),
    };
    for (d, (children, list)) in street_split.into_iter().zip(hosted).enumerate() {
        for (region, (street, _)) in children.regions.into_iter().zip(list) {
            level1.regions.push(region);
            level1.parent.push(d);
            street_units.push((street.unit, street.communities));
        }
    }

    progress("partitioning streets into communities");
    let community_split: Vec<Children> = level1
        .regions
        .par_iter()
        .enumerate()
        .map(|(i, tris)| {
            let k = street_units[i].1.len().max(1);
            split_region(
                &mesh,
                &weight,
                tris,
                &vec![1.0; k],
                &vec![None; k],
                &mut rng_for(cfg.seed, 2, i),
            )
        })
        .collect();
    let mut level2 = Level {
        regions: Vec::new(),
        parent: Vec::new(),
    };
    let mut community_units: Vec<Unit> = Vec::new();
    for (s, children) in community_split.into_iter().enumerate() {
        let units = std::mem::take(&mut street_units[s].1);
        if units.is_empty() {
            // A street with no listed community still needs one level-2 grid to hold its grids.
            let code = street_units[s].0.code.child(1)?;
            let name = format!("{}直管社区", street_units[s].0.name);
            community_units.push(Unit { code, name });
            level2
                .regions
                .push(children.regions.into_iter().flatten().collect());
            level2.parent.push(s);
            continue;
        }
        for (region, unit) in children.regions.into_iter().zip(units) {
            level2.regions.push(region);
            level2.parent.push(s);
            community_units.push(unit);
        }
    }

    progress("partitioning communities into level-3 grids");
    let level3 = split_level(cfg, &mesh, &weight, &level2, cfg.level3, 3);
    progress("partitioning level-3 grids into micro-grids");
    let micro = split_level(cfg, &mesh, &weight, &level3, cfg.micro, 4);
    progress("placing exclusive grids");
    let exclusive = place_exclusive(cfg, &mesh, &weight, &level1);

    progress("tracing boundaries");
    let mut grids = Vec::new();
    for (code, name, shape) in &districts {
        grids.push(Grid {
            code: code.clone(),
            name: name.as_str().into(),
            parent: None,
            kind: None,
            geometry: shape_rounded(shape),
            validity,
        });
    }
    let l1_shapes = polygons(&mesh, &level1);
    for (i, shape) in l1_shapes.into_iter().enumerate() {
        let (unit, _) = &street_units[i];
        // Functional-zone streets: their parent is the statutory district they lie in.
        let parent = (unit.code.district_prefix() != districts[level1.parent[i]].0.as_str())
            .then(|| districts[level1.parent[i]].0.clone());
        grids.push(Grid {
            code: unit.code.clone(),
            name: unit.name.as_str().into(),
            parent,
            kind: None,
            geometry: shape,
            validity,
        });
    }
    for (i, shape) in polygons(&mesh, &level2).into_iter().enumerate() {
        grids.push(Grid {
            code: community_units[i].code.clone(),
            name: community_units[i].name.as_str().into(),
            parent: None,
            kind: None,
            geometry: shape,
            validity,
        });
    }
    let mut l3_codes: Vec<GridCode> = Vec::with_capacity(level3.regions.len());
    let mut l3_names: Vec<String> = Vec::with_capacity(level3.regions.len());
    let mut seq = vec![0u32; level2.regions.len()];
    let order3 = west_to_east_north_to_south(&mesh, &level3);
    let mut l3_index = vec![0usize; level3.regions.len()];
    for &i in &order3 {
        let p = level3.parent[i];
        seq[p] += 1;
        l3_index[i] = l3_codes.len();
        l3_codes.push(community_units[p].code.child(seq[p])?);
        l3_names.push(format!(
            "{}第{}网格",
            short_name(&community_units[p].name),
            seq[p]
        ));
    }
    let l3_shapes = polygons(&mesh, &level3);
    for (i, shape) in l3_shapes.into_iter().enumerate() {
        grids.push(Grid {
            code: l3_codes[l3_index[i]].clone(),
            name: l3_names[l3_index[i]].as_str().into(),
            parent: None,
            kind: None,
            geometry: shape,
            validity,
        });
    }
    let mut mseq = vec![0u32; level3.regions.len()];
    let micro_shapes = polygons(&mesh, &micro);
    for i in west_to_east_north_to_south(&mesh, &micro) {
        let p = micro.parent[i];
        mseq[p] += 1;
        grids.push(Grid {
            code: l3_codes[l3_index[p]].child(mseq[p])?,
            name: format!("{}{}号微网格", l3_names[l3_index[p]], mseq[p]).into(),
            parent: None,
            kind: None,
            geometry: micro_shapes[i].clone(),
            validity,
        });
    }
    let ex_level = Level {
        regions: exclusive.iter().map(|e| e.tris.clone()).collect(),
        parent: exclusive.iter().map(|e| e.street).collect(),
    };
    let mut eseq = vec![0u32; level1.regions.len()];
    for (e, shape) in exclusive.iter().zip(polygons_each(&mesh, &ex_level)) {
        eseq[e.street] += 1;
        let street = &street_units[e.street].0;
        grids.push(Grid {
            code: street.code.exclusive(eseq[e.street])?,
            name: format!(
                "{}{}{}",
                short_name(&street.name),
                kind_label(e.kind),
                eseq[e.street]
            )
            .into(),
            parent: None,
            kind: Some(e.kind),
            geometry: shape,
            validity,
        });
    }
    grids.sort_by(|a, b| a.code.cmp(&b.code));
    Ok(grids)
}

/// Exclusive grids may overlap each other, so each is traced on its own.
fn polygons_each(mesh: &Mesh, level: &Level) -> Vec<MultiPolygon<f64>> {
    level
        .regions
        .par_iter()
        .map(|r| {
            let mut labels = vec![NONE; mesh.tris.len()];
            for &t in r {
                labels[t as usize] = 0;
            }
            trace::region_polygons(mesh, r, &labels, 0)
        })
        .collect()
}

fn shape_rounded(shape: &MultiPolygon<f64>) -> MultiPolygon<f64> {
    use geo::MapCoords;
    shape.map_coords(|c| geo::coord! { x: mesh::round7(c.x), y: mesh::round7(c.y) })
}

/// Grid order for sequence numbers: by parent, then north to south in bands, west to east.
fn west_to_east_north_to_south(mesh: &Mesh, level: &Level) -> Vec<usize> {
    let key: Vec<(usize, i64, f64)> = level
        .regions
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let (mut x, mut y, mut n) = (0.0, 0.0, 0.0);
            for &t in r {
                let c = mesh.centroid(t);
                x += c[0];
                y += c[1];
                n += 1.0;
            }
            let n = f64::max(n, 1.0);
            (level.parent[i], -((y / n) / 0.002).floor() as i64, x / n)
        })
        .collect();
    let mut order: Vec<usize> = (0..level.regions.len()).collect();
    order.sort_by(|&a, &b| {
        key[a]
            .0
            .cmp(&key[b].0)
            .then(key[a].1.cmp(&key[b].1))
            .then(key[a].2.total_cmp(&key[b].2))
    });
    order
}

fn split_level(
    cfg: &DemoConfig,
    mesh: &Mesh,
    weight: &[f64],
    parents: &Level,
    total: usize,
    level: u64,
) -> Level {
    let w: Vec<f64> = parents
        .regions
        .iter()
        .map(|r| region_weight(weight, r))
        .collect();
    let caps: Vec<usize> = parents.regions.iter().map(|r| r.len().min(999)).collect();
    let counts = apportion(total, &w, &caps);
    let split: Vec<Children> = parents
        .regions
        .par_iter()
        .enumerate()
        .map(|(i, tris)| {
            let k = counts[i];
            split_region(
                mesh,
                weight,
                tris,
                &vec![1.0; k],
                &vec![None; k],
                &mut rng_for(cfg.seed, level, i),
            )
        })
        .collect();
    let mut out = Level {
        regions: Vec::new(),
        parent: Vec::new(),
    };
    for (p, children) in split.into_iter().enumerate() {
        for r in children.regions.into_iter().filter(|r| !r.is_empty()) {
            out.regions.push(r);
            out.parent.push(p);
        }
    }
    out
}

struct Exclusive {
    street: usize,
    kind: ExclusiveKind,
    tris: Vec<u32>,
}

fn kind_label(kind: ExclusiveKind) -> &'static str {
    match kind {
        ExclusiveKind::School => "学校",
        ExclusiveKind::Hospital => "医院",
        ExclusiveKind::Mall => "商场",
        ExclusiveKind::Market => "市场",
        ExclusiveKind::Station => "车站",
        ExclusiveKind::Park => "公园",
        ExclusiveKind::IndustrialPark => "产业园",
        ExclusiveKind::Other => "单位",
    }
}

/// Kind mix and area range (m²) of exclusive grids.
const EXCLUSIVE_MIX: [(ExclusiveKind, f64, f64, f64); 8] = [
    (ExclusiveKind::School, 0.32, 20_000.0, 60_000.0),
    (ExclusiveKind::Hospital, 0.08, 10_000.0, 50_000.0),
    (ExclusiveKind::Mall, 0.08, 10_000.0, 40_000.0),
    (ExclusiveKind::Market, 0.10, 5_000.0, 20_000.0),
    (ExclusiveKind::Station, 0.03, 20_000.0, 80_000.0),
    (ExclusiveKind::Park, 0.12, 50_000.0, 400_000.0),
    (ExclusiveKind::IndustrialPark, 0.07, 500_000.0, 3_000_000.0),
    (ExclusiveKind::Other, 0.20, 5_000.0, 30_000.0),
];

fn tri_area_m2(mesh: &Mesh, t: u32) -> f64 {
    let c = mesh.centroid(t);
    mesh.area_deg2(t) * 111_320.0 * 111_320.0 * c[1].to_radians().cos()
}

fn place_exclusive(
    cfg: &DemoConfig,
    mesh: &Mesh,
    weight: &[f64],
    streets: &Level,
) -> Vec<Exclusive> {
    let w: Vec<f64> = streets
        .regions
        .iter()
        .map(|r| region_weight(weight, r))
        .collect();
    let caps: Vec<usize> = streets.regions.iter().map(|r| r.len().min(9999)).collect();
    let counts = apportion(cfg.exclusive, &w, &caps);
    streets
        .regions
        .par_iter()
        .enumerate()
        .flat_map_iter(|(s, tris)| {
            let mut rng = rng_for(cfg.seed, 5, s);
            let street_area: f64 = tris.iter().map(|&t| tri_area_m2(mesh, t)).sum();
            let tw: Vec<f64> = tris.iter().map(|&t| weight[t as usize]).collect();
            let total_w: f64 = tw.iter().sum();
            (0..counts[s])
                .map(|_| {
                    let mut x = rng.random_range(0.0..1.0);
                    let (kind, lo, hi) = EXCLUSIVE_MIX
                        .iter()
                        .find(|(_, p, _, _)| {
                            x -= p;
                            x <= 0.0
                        })
                        .map_or(
                            (ExclusiveKind::Other, 5_000.0, 30_000.0),
                            |&(k, _, lo, hi)| (k, lo, hi),
                        );
                    let target = rng.random_range(lo..hi).min(street_area * 0.2);
                    // Seed where people are: weighted by households.
                    let mut y = rng.random_range(0.0..total_w.max(f64::MIN_POSITIVE));
                    let start = tw.iter().position(|w| {
                        y -= w;
                        y <= 0.0
                    });
                    let start = tris[start.unwrap_or(0)];
                    Exclusive {
                        street: s,
                        kind,
                        tris: grow_blob(mesh, tris, start, target),
                    }
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Triangles of `within` nearest to `start` (across shared edges) until `area_m2` is covered.
fn grow_blob(mesh: &Mesh, within: &[u32], start: u32, area_m2: f64) -> Vec<u32> {
    let origin = mesh.centroid(start);
    let key = |t: u32| {
        let c = mesh.centroid(t);
        ((c[0] - origin[0]) * 0.8217).hypot(c[1] - origin[1])
    };
    let mut taken = vec![start];
    let mut seen = std::collections::BTreeSet::from([start]);
    let mut frontier: Vec<(f64, u32)> = Vec::new();
    let mut area = tri_area_m2(mesh, start);
    let mut cur = start;
    while area < area_m2 {
        for &nb in &mesh.nbrs[cur as usize] {
            if nb != NONE && within.binary_search(&nb).is_ok() && seen.insert(nb) {
                frontier.push((key(nb), nb));
            }
        }
        let Some(i) = (0..frontier.len()).min_by(|&a, &b| {
            frontier[a]
                .0
                .total_cmp(&frontier[b].0)
                .then(frontier[a].1.cmp(&frontier[b].1))
        }) else {
            break;
        };
        let (_, t) = frontier.swap_remove(i);
        taken.push(t);
        area += tri_area_m2(mesh, t);
        cur = t;
    }
    taken.sort_unstable();
    taken
}

/// Points where reports happen: each level-3 grid (about the same number of households each)
/// equally likely, a uniform point inside it; plus `outside_share` of points anywhere in the
/// city's bounding box, some of which fall outside the city. Deterministic for a seed.
pub fn report_points(
    set: &super::model::GridSet,
    n: usize,
    outside_share: f64,
    seed: u64,
) -> Vec<crate::coords::Wgs84Point> {
    use super::code::Level;
    use geo::{BoundingRect, Contains};
    let grids: Vec<u32> = set.ids_at(Level::Three).collect();
    let city = bounds(set.ids_at(Level::District).map(|id| &set.grid(id).geometry));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let anywhere = grids.is_empty() || rng.random_range(0.0..1.0) < outside_share;
        let target = (!anywhere).then(|| set.grid(grids[rng.random_range(0..grids.len())]));
        let Some(b) = target.map_or(city, |g| g.geometry.bounding_rect()) else {
            break;
        };
        // Rejection sampling inside the chosen grid; grids are compact, so few tries are needed.
        for _ in 0..256 {
            let x = rng.random_range(b.min().x..=b.max().x);
            let y = rng.random_range(b.min().y..=b.max().y);
            let Ok(p) = crate::coords::Wgs84Point::new(x, y) else {
                continue;
            };
            if target.is_none_or(|g| g.geometry.contains(&geo::Point::from(p.coord()))) {
                out.push(p);
                break;
            }
        }
    }
    out
}

/// `n` points uniform over the bounding box of the city's districts, `inside_share` of them
/// inside the city as judged by `is_inside` and the rest outside, shuffled. For benchmarks and
/// oracle tests: unlike [`report_points`], every place is equally likely.
pub fn uniform_points(
    set: &super::model::GridSet,
    n: usize,
    inside_share: f64,
    seed: u64,
    is_inside: impl Fn(crate::coords::Wgs84Point) -> bool,
) -> Vec<crate::coords::Wgs84Point> {
    use super::code::Level;
    use rand::seq::SliceRandom;
    let Some(b) = bounds(set.ids_at(Level::District).map(|id| &set.grid(id).geometry)) else {
        return Vec::new();
    };
    let want_in = (n as f64 * inside_share).round() as usize;
    let (mut inside, mut outside) = (Vec::with_capacity(want_in), Vec::with_capacity(n - want_in));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut tries = 0usize;
    while (inside.len() < want_in || outside.len() < n - want_in) && tries < n * 100 {
        tries += 1;
        let x = rng.random_range(b.min().x..=b.max().x);
        let y = rng.random_range(b.min().y..=b.max().y);
        let Ok(p) = crate::coords::Wgs84Point::new(x, y) else {
            continue;
        };
        if is_inside(p) {
            if inside.len() < want_in {
                inside.push(p);
            }
        } else if outside.len() < n - want_in {
            outside.push(p);
        }
    }
    inside.extend(outside);
    inside.shuffle(&mut rng);
    inside
}
