//! The assignment engine against an independent oracle: GEOS through shapely 2
//! (`tests/oracle/shapely_covers.py`, installed by `scripts/test`), on the full demo city.
//!
//! Over 100,000 points: uniform over the city (10% outside), exactly on shared vertices, on
//! shared edges, and just outside the city edge. Interior points must agree 100%; boundary
//! points must go to a covering grid; uncovered points must snap only within the tolerance.
//! Also: the raster fast path equals the exact path, and a reversed load order changes nothing.

use std::io::Write;
use std::process::Command;
use std::sync::Arc;

use gridscope::grid::demo::{DemoConfig, generate, uniform_points};
use gridscope::grid::export::write_geojson;
use gridscope::{AssignConfig, Assigner, GridSet, Level, Method, Wgs84Point};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn python() -> String {
    std::env::var("GRIDSCOPE_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn test_points(set: &GridSet, assigner: &Assigner) -> Vec<Wgs84Point> {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let mut points = uniform_points(set, 60_000, 0.9, 1, |p| {
        assigner.assign_exact(p).method != Method::CityQueue
    });
    let level3: Vec<u32> = set.ids_at(Level::Three).collect();
    let ring_of = |id: u32, rng: &mut ChaCha8Rng| {
        let g = &set.grid(id).geometry;
        let poly = &g.0[rng.random_range(0..g.0.len())];
        poly.exterior().0.clone()
    };
    // Exactly on vertices shared by neighbouring grids.
    for _ in 0..20_000 {
        let ring = ring_of(level3[rng.random_range(0..level3.len())], &mut rng);
        let c = ring[rng.random_range(0..ring.len())];
        points.push(Wgs84Point::new(c.x, c.y).unwrap());
    }
    // On (or within rounding of) shared edges.
    for _ in 0..20_000 {
        let ring = ring_of(level3[rng.random_range(0..level3.len())], &mut rng);
        let i = rng.random_range(0..ring.len() - 1);
        let (a, b) = (ring[i], ring[i + 1]);
        let t: f64 = [0.5, 0.25, rng.random_range(0.0..1.0)][rng.random_range(0..3)];
        points.push(Wgs84Point::new(a.x + t * (b.x - a.x), a.y + t * (b.y - a.y)).unwrap());
    }
    // Just outside the city edge: within and beyond the snapping tolerance.
    let districts: Vec<u32> = set.ids_at(Level::District).collect();
    for _ in 0..5_000 {
        let ring = ring_of(districts[rng.random_range(0..districts.len())], &mut rng);
        let c = ring[rng.random_range(0..ring.len())];
        let (dx, dy) = (
            rng.random_range(-0.0015..0.0015),
            rng.random_range(-0.0015..0.0015),
        );
        points.push(Wgs84Point::new(c.x + dx, c.y + dy).unwrap());
    }
    points
}

#[test]
fn assignment_agrees_with_geos_on_the_demo_city() {
    let set = Arc::new(GridSet::new(
        generate(&DemoConfig::default(), &|_| {}).unwrap(),
    ));
    let cfg = AssignConfig::default();
    let assigner = Assigner::new(set.clone(), cfg.clone());
    let points = test_points(&set, &assigner);
    assert!(points.len() >= 100_000);

    let answers: Vec<_> = points.iter().map(|&p| assigner.assign(p)).collect();
    // The fast path is an optimisation of the exact path, never a different answer.
    let mut differ = 0;
    for (p, a) in points.iter().zip(&answers) {
        if assigner.assign_exact(*p) != *a {
            differ += 1;
        }
    }
    assert_eq!(
        differ, 0,
        "fast path and exact path disagree on {differ} points"
    );

    // Same answers whatever order the grids were loaded in.
    let mut reversed = set.grids().to_vec();
    reversed.reverse();
    let other = Assigner::new(Arc::new(GridSet::new(reversed)), cfg.clone());
    for (p, a) in points.iter().zip(&answers) {
        let b = other.assign(*p);
        let code = |s: &Assigner, g: Option<u32>| g.map(|g| s.grids().grid(g).code.clone());
        assert_eq!(
            code(&assigner, a.grid),
            code(&other, b.grid),
            "load order changed the answer at {p:?}"
        );
        assert_eq!(a.method, b.method);
    }

    let dir = tempfile::tempdir().unwrap();
    let grids_path = dir.path().join("level3.geojson");
    let ids: Vec<u32> = set.ids_at(Level::Three).collect();
    write_geojson(&set, &ids, std::fs::File::create(&grids_path).unwrap()).unwrap();
    let answers_path = dir.path().join("answers.csv");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&answers_path).unwrap());
    writeln!(w, "id,lon,lat,method,grid,distance_m").unwrap();
    let mut by_method = std::collections::BTreeMap::new();
    for (i, (p, a)) in points.iter().zip(&answers).enumerate() {
        *by_method.entry(a.method.name()).or_insert(0) += 1;
        let grid = match (a.method, a.grid) {
            (Method::Interior | Method::Boundary | Method::Snapped, Some(g)) => {
                set.grid(g).code.to_string()
            }
            _ => String::new(),
        };
        writeln!(
            w,
            "{i},{},{},{},{grid},{}",
            p.lon(),
            p.lat(),
            a.method.name(),
            a.distance_m
        )
        .unwrap();
    }
    w.flush().unwrap();
    drop(w);
    eprintln!("engine: {by_method:?}");
    assert!(
        by_method.get("boundary").copied().unwrap_or(0) > 10_000,
        "too few boundary cases tested"
    );
    assert!(
        by_method.get("snapped").copied().unwrap_or(0) > 100,
        "too few snapped cases tested"
    );

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/oracle/shapely_covers.py"
    );
    let out = Command::new(python())
        .args([
            script,
            grids_path.to_str().unwrap(),
            answers_path.to_str().unwrap(),
            &cfg.snap_tolerance_m.to_string(),
        ])
        .output()
        .expect("python3 not found: run scripts/test, which installs the oracle's dependencies");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}{stderr}");
    assert!(
        out.status.success(),
        "GEOS oracle disagrees (or shapely is missing: run scripts/test):\n{stdout}{stderr}"
    );
}
