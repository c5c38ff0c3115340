//! GeoPackage grid files, as GDAL writes them (`ogr2ogr` from Debian's gdal-bin, installed by
//! `scripts/test`), import to exactly the grids their GeoJSON source gives; other coordinate
//! systems and broken files are refused with a clear reason.

use std::path::{Path, PathBuf};
use std::process::Command;

use gridscope::Crs;
use gridscope::grid::demo::{DemoConfig, generate};
use gridscope::grid::export::write_levels;
use gridscope::grid::import::{ImportOptions, ImportOutcome, import_files, read_geopackage};
use gridscope::grid::model::Grid;
use gridscope::{GridSet, Level};

fn data(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Runs `ogr2ogr` with `args`, failing with its message.
fn ogr2ogr(args: &[&str]) {
    let out = Command::new("ogr2ogr")
        .args(args)
        .output()
        .expect("ogr2ogr not found: run scripts/test, which installs gdal-bin");
    assert!(
        out.status.success(),
        "ogr2ogr {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn import(path: &Path, opts: &ImportOptions) -> ImportOutcome {
    import_files(&[path.to_path_buf()], opts, &|_, _| {})
}

fn clean(out: &ImportOutcome) {
    assert!(
        out.failed_files.is_empty() && out.refused.is_empty(),
        "{:?} {:?}",
        out.failed_files,
        out.refused
    );
}

fn same_grids(a: &[Grid], b: &[Grid]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.code, y.code);
        assert_eq!(x.name, y.name);
        assert_eq!(x.parent, y.parent, "{}", x.code);
        assert_eq!(x.geometry, y.geometry, "{}: geometry differs", x.code);
    }
}

#[test]
fn a_geopackage_from_gdal_imports_like_its_geojson_source() {
    let dir = tempfile::tempdir().unwrap();
    let source = data("data/zhengzhou/districts-gcj02.geojson");
    let gpkg = dir.path().join("districts.gpkg");
    ogr2ogr(&[
        "-f",
        "GPKG",
        gpkg.to_str().unwrap(),
        source.to_str().unwrap(),
    ]);
    let opts = ImportOptions {
        crs: Crs::Gcj02,
        code_field: Some("adcode".into()),
        ..Default::default()
    };
    let from_json = import(&source, &opts);
    let from_gpkg = import(&gpkg, &opts);
    clean(&from_json);
    clean(&from_gpkg);
    assert_eq!(from_gpkg.grids.len(), 12);
    same_grids(&from_json.grids, &from_gpkg.grids);
}

#[test]
fn every_feature_table_of_a_geopackage_is_read() {
    let set = GridSet::new(generate(&DemoConfig::scaled_down(50), &|_| {}).unwrap());
    let dir = tempfile::tempdir().unwrap();
    write_levels(&set, dir.path(), true).unwrap();
    let gpkg = dir.path().join("city.gpkg");
    for (i, stem) in ["districts", "level1", "level2", "exclusive"]
        .iter()
        .enumerate()
    {
        let src = dir.path().join(format!("{stem}.geojson"));
        let mut args = vec!["-f", "GPKG", "-nln", stem];
        if i > 0 {
            args.push("-update");
        }
        args.extend([gpkg.to_str().unwrap(), src.to_str().unwrap()]);
        ogr2ogr(&args);
    }
    let from_gpkg = import(&gpkg, &ImportOptions::default());
    clean(&from_gpkg);
    let expected = [Level::District, Level::One, Level::Two, Level::Exclusive]
        .iter()
        .map(|&l| set.count(l))
        .sum::<usize>();
    assert_eq!(from_gpkg.grids.len(), expected);
    let mut by_json = Vec::new();
    for stem in ["districts", "level1", "level2", "exclusive"] {
        let out = import(
            &dir.path().join(format!("{stem}.geojson")),
            &ImportOptions::default(),
        );
        clean(&out);
        by_json.extend(out.grids);
    }
    same_grids(&by_json, &from_gpkg.grids);
    // Exclusive grids keep their kind and validity from the layer's columns.
    let park = from_gpkg
        .grids
        .iter()
        .find(|g| g.level() == Level::Exclusive)
        .unwrap();
    let original = set.grid(set.id_of(&park.code).unwrap());
    assert_eq!(park.kind, original.kind);
    assert_eq!(park.validity, original.validity);
}

#[test]
fn other_coordinate_systems_and_broken_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let source = data("data/zhengzhou/districts-gcj02.geojson");
    let mercator = dir.path().join("mercator.gpkg");
    ogr2ogr(&[
        "-f",
        "GPKG",
        "-s_srs",
        "EPSG:4326",
        "-t_srs",
        "EPSG:3857",
        mercator.to_str().unwrap(),
        source.to_str().unwrap(),
    ]);
    let good = dir.path().join("good.gpkg");
    ogr2ogr(&[
        "-f",
        "GPKG",
        good.to_str().unwrap(),
        source.to_str().unwrap(),
    ]);
    let bytes = std::fs::read(&good).unwrap();
    let write = |name: &str, content: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    };
    let plain = dir.path().join("plain.gpkg");
    plain_sqlite_database(&plain);
    let cases = [
        (mercator, "EPSG:3857"),
        (write("empty.gpkg", b""), "empty"),
        (
            write("text.gpkg", b"this is not a database"),
            "not valid GeoPackage",
        ),
        (
            write("cut.gpkg", &bytes[..bytes.len() / 3]),
            "not valid GeoPackage",
        ),
        (plain, "not valid GeoPackage"),
    ];
    for (path, expect) in cases {
        let out = import(&path, &ImportOptions::default());
        assert_eq!(out.failed_files.len(), 1, "{}", path.display());
        assert!(
            out.failed_files[0].reason.contains(expect),
            "{}: {}",
            path.display(),
            out.failed_files[0].reason
        );
    }
    // The good file was only read.
    assert_eq!(std::fs::read(&good).unwrap(), bytes);
    assert_eq!(read_geopackage(&good).unwrap().len(), 12);
}

/// A valid SQLite database that is not a GeoPackage (GDAL's plain SQLite driver).
fn plain_sqlite_database(path: &Path) {
    let csv = path.with_extension("csv");
    std::fs::write(&csv, "code,name\n410102,x\n").unwrap();
    let sqlite = path.with_extension("sqlite");
    ogr2ogr(&[
        "-f",
        "SQLite",
        sqlite.to_str().unwrap(),
        csv.to_str().unwrap(),
    ]);
    std::fs::rename(&sqlite, path).unwrap();
}
