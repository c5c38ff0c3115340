//! The assignment rules of DESIGN.md §2 on a small hand-made city whose answers are known.

use std::sync::Arc;

use chrono::NaiveDate;
use geo::{MultiPolygon, Rect, coord};
use gridscope::assign::Precedence;
use gridscope::grid::demo::{DemoConfig, generate, report_points};
use gridscope::{
    AssignConfig, Assigner, Crs, ExclusiveKind, Grid, GridCode, GridSet, Method, Validity,
    Wgs84Point,
};

const X0: f64 = 113.60;
const Y0: f64 = 34.70;
const U: f64 = 0.01; // about 900 m east-west, 1.1 km north-south

fn rect(x0: f64, y0: f64, x1: f64, y1: f64) -> MultiPolygon<f64> {
    let r = Rect::new(
        coord! { x: X0 + x0 * U, y: Y0 + y0 * U },
        coord! { x: X0 + x1 * U, y: Y0 + y1 * U },
    );
    MultiPolygon(vec![r.to_polygon()])
}

fn grid(code: &str, shape: MultiPolygon<f64>, kind: Option<ExclusiveKind>) -> Grid {
    Grid {
        code: GridCode::parse(code).unwrap(),
        name: code.into(),
        parent: None,
        kind,
        geometry: shape,
        validity: Validity::since(NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()),
    }
}

fn city() -> Arc<GridSet> {
    Arc::new(GridSet::new(vec![
        grid("410102", rect(0.0, 0.0, 4.0, 2.0), None),
        grid("410102001", rect(0.0, 0.0, 4.0, 2.0), None),
        grid("410102001001", rect(0.0, 0.0, 3.0, 2.0), None),
        grid("410102001002", rect(3.0, 0.0, 4.0, 2.0), None),
        // Level-3 grids cover x 0..2 of community 001; x 2..3 is a gap.
        grid("410102001001001", rect(0.0, 0.0, 1.0, 2.0), None),
        grid("410102001001002", rect(1.0, 0.0, 2.0, 2.0), None),
        grid("410102001001001001", rect(0.0, 0.0, 0.5, 2.0), None),
        grid("410102001001001002", rect(0.5, 0.0, 1.0, 2.0), None),
        grid(
            "410102001Z0001",
            rect(0.9, 0.9, 1.1, 1.1),
            Some(ExclusiveKind::School),
        ),
        grid(
            "410102001Z0002",
            rect(0.5, 0.5, 1.5, 1.5),
            Some(ExclusiveKind::Park),
        ),
    ]))
}

fn pt(x: f64, y: f64) -> Wgs84Point {
    Wgs84Point::new(X0 + x * U, Y0 + y * U).unwrap()
}

fn codes(a: &Assigner, ids: impl IntoIterator<Item = u32>) -> Vec<String> {
    ids.into_iter()
        .map(|id| a.grids().grid(id).code.to_string())
        .collect()
}

#[test]
fn interior_point_gets_its_grid_micro_grid_and_chain() {
    let a = Assigner::new(city(), AssignConfig::default());
    let r = a.assign(pt(0.25, 0.3));
    assert_eq!(r.method, Method::Interior);
    assert_eq!(
        codes(&a, a.chain(&r)),
        ["410102001001001", "410102001001", "410102001", "410102"]
    );
    assert_eq!(codes(&a, r.micro), ["410102001001001001"]);
    assert!(r.exclusive.is_empty());
    assert_eq!(r.responsible, r.grid);
}

#[test]
fn boundary_points_go_to_the_smaller_code_and_say_so() {
    let a = Assigner::new(city(), AssignConfig::default());
    for p in [pt(1.0, 0.25), pt(1.0, 0.0), pt(1.0, 2.0)] {
        let r = a.assign(p);
        assert_eq!(r.method, Method::Boundary, "{p:?}");
        assert_eq!(codes(&a, r.grid), ["410102001001001"]);
    }
    // Between two micro-grids inside one level-3 grid: the level-3 answer is interior.
    let r = a.assign(pt(0.5, 0.25));
    assert_eq!(r.method, Method::Interior);
    assert_eq!(codes(&a, r.micro), ["410102001001001001"]);
}

#[test]
fn near_points_snap_with_distance_and_far_ones_fall_back() {
    let a = Assigner::new(city(), AssignConfig::default());
    let r = a.assign(pt(2.03, 0.5)); // 0.0003° east of the grid edge at x = 2: about 27 m
    assert_eq!(r.method, Method::Snapped);
    assert_eq!(codes(&a, r.grid), ["410102001001002"]);
    assert!((25.0..30.0).contains(&r.distance_m), "{}", r.distance_m);

    let r = a.assign(pt(2.5, 0.5)); // in the gap, far from every level-3 grid: the community
    assert_eq!(r.method, Method::Fallback);
    assert_eq!(codes(&a, r.grid), ["410102001001"]);
    let r = a.assign(pt(3.5, 0.5)); // a community with no level-3 grids at all
    assert_eq!(
        (r.method, codes(&a, r.grid)),
        (Method::Fallback, vec!["410102001002".to_string()])
    );

    let r = a.assign(pt(-0.03, 0.5)); // just outside the city, within 50 m
    assert_eq!(
        (r.method, codes(&a, r.grid)),
        (Method::Snapped, vec!["410102001001001".to_string()])
    );
    let r = a.assign(pt(-5.0, -5.0));
    assert_eq!(
        (r.method, r.grid, r.responsible),
        (Method::CityQueue, None, None)
    );

    let tight = Assigner::new(
        city(),
        AssignConfig {
            snap_tolerance_m: 10.0,
            ..Default::default()
        },
    );
    assert_eq!(tight.assign(pt(2.03, 0.5)).method, Method::Fallback);
}

#[test]
fn exclusive_grids_are_listed_and_precedence_picks_the_responsible_one() {
    let a = Assigner::new(city(), AssignConfig::default());
    let r = a.assign(pt(0.95, 1.0));
    assert_eq!(
        codes(&a, r.exclusive.iter().copied()),
        ["410102001Z0001", "410102001Z0002"]
    );
    assert_eq!(codes(&a, r.responsible), ["410102001Z0001"]);
    assert_eq!(codes(&a, r.grid), ["410102001001001"]);

    let parks_first = AssignConfig {
        precedence: Precedence {
            exclusive_first: true,
            kinds: vec![ExclusiveKind::Park, ExclusiveKind::School],
        },
        ..Default::default()
    };
    let b = Assigner::new(city(), parks_first);
    assert_eq!(
        codes(&b, b.assign(pt(0.95, 1.0)).responsible),
        ["410102001Z0002"]
    );

    let grid_first = AssignConfig {
        precedence: Precedence {
            exclusive_first: false,
            ..Default::default()
        },
        ..Default::default()
    };
    let c = Assigner::new(city(), grid_first);
    assert_eq!(
        codes(&c, c.assign(pt(0.95, 1.0)).responsible),
        ["410102001001001"]
    );
}

#[test]
fn input_in_any_coordinate_system_lands_in_the_same_grid() {
    let a = Assigner::new(city(), AssignConfig::default());
    let p = pt(1.5, 0.3);
    for crs in Crs::ALL {
        let (x, y) = crs.from_wgs84(p);
        let q = crs.to_wgs84(x, y).unwrap();
        assert_eq!(codes(&a, a.assign(q).grid), ["410102001001002"], "{crs}");
    }
    // Sent as GCJ-02 but read as WGS84, the point is ~550 m off: a different grid.
    let (x, y) = Crs::Gcj02.from_wgs84(pt(0.97, 0.3));
    assert_ne!(
        a.assign(Wgs84Point::new(x, y).unwrap()).grid,
        a.assign(pt(0.97, 0.3)).grid
    );
}

#[test]
fn fast_path_matches_exact_path_on_a_dense_sample() {
    let a = Assigner::new(city(), AssignConfig::default());
    for i in -20..=100 {
        for j in -20..=60 {
            let p = pt(i as f64 * 0.0437, j as f64 * 0.0437);
            assert_eq!(a.assign(p), a.assign_exact(p), "{p:?}");
        }
    }
}

#[test]
fn demo_city_is_deterministic_and_fast_path_matches_exact_path() {
    let cfg = DemoConfig::scaled_down(10);
    let one = generate(&cfg, &|_| {}).unwrap();
    let two = generate(&cfg, &|_| {}).unwrap();
    assert!(one == two, "same seed, different city");
    let set = Arc::new(GridSet::new(one));
    let a = Assigner::new(set.clone(), AssignConfig::default());
    let points = report_points(&set, 50_000, 0.05, 3);
    let mut many = Vec::new();
    a.assign_many(&points, &mut many);
    assert_eq!(many, a.assign_batch(&points));
    for (p, m) in points.iter().zip(&many) {
        assert_eq!(a.assign(*p), a.assign_exact(*p), "{p:?}");
        assert_eq!(*m, a.assign_exact(*p), "{p:?}");
    }
}

#[test]
fn a_grid_without_geometry_never_breaks_the_engine() {
    let mut grids: Vec<Grid> = city().grids().to_vec();
    grids.push(grid("410102001001003", MultiPolygon(vec![]), None));
    let a = Assigner::new(Arc::new(GridSet::new(grids)), AssignConfig::default());
    assert_eq!(codes(&a, a.assign(pt(0.25, 0.3)).grid), ["410102001001001"]);
    assert_eq!(a.assign(pt(2.5, 0.5)).method, Method::Fallback);
}
