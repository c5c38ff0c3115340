//! The demo city at full scale: Zhengzhou's counts, a clean partition at every level, realistic
//! shapes, denser toward the centre, byte-identical files for a seed, and files that
//! `gridscope import` reads back unchanged.

use std::sync::Arc;

use geo::{Centroid, CoordsIter};
use gridscope::grid::demo::{DemoConfig, generate};
use gridscope::grid::export::write_levels;
use gridscope::grid::import::{ImportOptions, grid_files_in, import_files};
use gridscope::grid::quality::QualityReport;
use gridscope::measure::{area_m2, haversine_m};
use gridscope::{GridSet, Level, Wgs84Point};

#[test]
fn full_scale_demo_city_has_zhengzhou_counts_and_a_clean_partition() {
    let set = Arc::new(GridSet::new(
        generate(&DemoConfig::default(), &|_| {}).unwrap(),
    ));
    let counts: Vec<usize> = Level::ALL.iter().map(|&l| set.count(l)).collect();
    assert_eq!(counts, [12, 208, 3306, 19_582, 46_800, 4_835]);

    let report = QualityReport::check(&set);
    assert!(report.is_clean(), "{report}");
    assert!(
        report.gaps.is_empty() && report.overlaps.is_empty() && report.outside_parent.is_empty()
    );

    // Vertices per polygon: tens to hundreds.
    for (level, lo, hi) in [
        (Level::One, 100, 5_000),
        (Level::Two, 40, 1_000),
        (Level::Three, 15, 300),
        (Level::Micro, 8, 200),
    ] {
        let mut v: Vec<usize> = set
            .ids_at(level)
            .map(|id| set.grid(id).geometry.coords_count())
            .collect();
        v.sort_unstable();
        let median = v[v.len() / 2];
        eprintln!(
            "level {level}: median {median} vertices, max {}",
            v[v.len() - 1]
        );
        assert!(
            (lo..hi).contains(&median),
            "level {level}: median {median} vertices"
        );
    }

    // Denser toward the centre: level-3 grids near 二七广场 are much smaller than far out.
    let centre = Wgs84Point::new(113.65, 34.75).unwrap();
    let (mut near, mut far) = (Vec::new(), Vec::new());
    for id in set.ids_at(Level::Three) {
        let g = &set.grid(id).geometry;
        let Some(c) = g.centroid() else { continue };
        let d = haversine_m(centre, Wgs84Point::new(c.x(), c.y()).unwrap());
        if d < 5_000.0 {
            near.push(area_m2(g));
        } else if d > 25_000.0 {
            far.push(area_m2(g));
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    eprintln!(
        "level-3 mean area: {:.0} m² within 5 km of the centre, {:.0} m² beyond 25 km",
        mean(&near),
        mean(&far)
    );
    assert!(mean(&far) > 10.0 * mean(&near));
}

#[test]
fn files_are_byte_identical_for_a_seed_and_import_back_unchanged() {
    let cfg = DemoConfig::scaled_down(10);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let set = GridSet::new(generate(&cfg, &|_| {}).unwrap());
    let files_a = write_levels(&set, a.path(), true).unwrap();
    write_levels(
        &GridSet::new(generate(&cfg, &|_| {}).unwrap()),
        b.path(),
        true,
    )
    .unwrap();
    for f in &files_a {
        let name = f.file_name().unwrap();
        assert!(
            std::fs::read(f).unwrap() == std::fs::read(b.path().join(name)).unwrap(),
            "{name:?} differs"
        );
    }

    let fgb: Vec<_> = grid_files_in(a.path())
        .unwrap()
        .into_iter()
        .filter(|p| p.extension().unwrap() == "fgb")
        .collect();
    let back = import_files(&fgb, &ImportOptions::default(), &|_, _| {});
    assert!(back.refused.is_empty() && back.failed_files.is_empty() && back.repairs.is_empty());
    let back = GridSet::new(back.grids);
    assert_eq!(back.len(), set.len());
    for (x, y) in set.grids().iter().zip(back.grids()) {
        assert_eq!(
            (&x.code, &x.name, &x.geometry, x.kind),
            (&y.code, &y.name, &y.geometry, y.kind)
        );
        assert_eq!(
            set.parent(set.id_of(&x.code).unwrap())
                .map(|p| &set.grid(p).code),
            back.parent(back.id_of(&y.code).unwrap())
                .map(|p| &back.grid(p).code)
        );
    }
}
