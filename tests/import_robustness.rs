//! The importer on real and deliberately broken inputs: it repairs what is safe, refuses the
//! rest with the feature and the reason, and never panics.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use gridscope::grid::import::{
    FeatureProblem, ImportError, ImportOptions, ImportOutcome, grid_files_in, import_files,
    read_flatgeobuf, read_geojson, to_grids,
};
use gridscope::grid::quality::QualityReport;
use gridscope::{Crs, GridSet};
use proptest::prelude::*;

fn data(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn import_text(text: &str, crs: Crs) -> ImportOutcome {
    let features = read_geojson(text.as_bytes()).expect("readable GeoJSON");
    let mut out = ImportOutcome::default();
    let opts = ImportOptions {
        crs,
        ..Default::default()
    };
    to_grids(
        "test.geojson",
        features,
        &opts,
        &mut HashMap::new(),
        &mut out,
    );
    out
}

fn feature(code: &str, rings: &str) -> String {
    format!(
        r#"{{"type":"Feature","properties":{{"code":"{code}","name":"t"}},"geometry":{{"type":"Polygon","coordinates":{rings}}}}}"#
    )
}

fn collection(features: &[String]) -> String {
    format!(
        r#"{{"type":"FeatureCollection","features":[{}]}}"#,
        features.join(",")
    )
}

#[test]
fn real_district_file_imports_cleanly_from_gcj02() {
    let opts = ImportOptions {
        crs: Crs::Gcj02,
        code_field: Some("adcode".into()),
        ..Default::default()
    };
    let out = import_files(
        &[data("data/zhengzhou/districts-gcj02.geojson")],
        &opts,
        &|_, _| {},
    );
    assert!(
        out.failed_files.is_empty() && out.refused.is_empty(),
        "{:?} {:?}",
        out.failed_files,
        out.refused
    );
    assert_eq!(out.grids.len(), 12);
    let report = QualityReport::check(&GridSet::new(out.grids.clone()));
    assert!(report.invalid.is_empty(), "{report}");
    // GCJ-02 was converted: Erqi (二七区) moved ~0.5 km south-east... check one vertex offset.
    let raw = read_geojson(&std::fs::read(data("data/zhengzhou/districts-gcj02.geojson")).unwrap())
        .unwrap();
    let gridscope::grid::import::RawGeometry::Polygons(p) = &raw[0].geometry else {
        panic!()
    };
    let [x, y] = p[0][0][0];
    let c = out
        .grids
        .iter()
        .find(|g| g.code.as_str() == "410102")
        .unwrap()
        .geometry
        .0[0]
        .exterior()
        .0[0];
    let shift_m = ((c.x - x) * 91_400.0).hypot((c.y - y) * 111_200.0);
    assert!(
        (400.0..800.0).contains(&shift_m),
        "GCJ-02 shift {shift_m} m"
    );
}

#[test]
fn safe_repairs_are_made_and_listed() {
    let square_cw_unclosed = "[[[113.60,34.70],[113.60,34.71],[113.61,34.71],[113.61,34.70]]]";
    let repeated = "[[[113.62,34.70],[113.63,34.70],[113.63,34.70],[113.63,34.71],[113.62,34.71],[113.62,34.70]]]";
    let out = import_text(
        &collection(&[
            feature("410102001", square_cw_unclosed),
            feature("410102002", repeated),
        ]),
        Crs::Wgs84,
    );
    assert_eq!(out.grids.len(), 2, "{:?}", out.refused);
    let what: Vec<&str> = out.repairs.iter().map(|r| r.what.as_str()).collect();
    assert!(
        what.iter().any(|w| w.starts_with("closed ring")),
        "{what:?}"
    );
    assert!(what.iter().any(|w| w.starts_with("reoriented")), "{what:?}");
    assert!(
        what.iter().any(|w| w.starts_with("removed 1 repeated")),
        "{what:?}"
    );
}

#[test]
fn unsafe_input_is_refused_with_feature_and_reason() {
    let bowtie = "[[[113.60,34.70],[113.61,34.71],[113.61,34.70],[113.60,34.71],[113.60,34.70]]]";
    let swapped = "[[[34.70,113.60],[34.70,113.61],[34.71,113.61],[34.70,113.60]]]";
    let metres = "[[[12651000,4128000],[12652000,4128000],[12652000,4129000],[12651000,4128000]]]";
    let too_few = "[[[113.60,34.70],[113.61,34.71],[113.60,34.70]]]";
    let features = [
        feature("410102001", bowtie),
        feature("410102002", swapped),
        feature("410102003", metres),
        feature("410102004", too_few),
        feature("410102005", "[]"),
        r#"{"type":"Feature","properties":{"code":"410102006"},"geometry":null}"#.to_string(),
        r#"{"type":"Feature","properties":{"code":"410102007"},"geometry":{"type":"Point","coordinates":[113.6,34.7]}}"#.to_string(),
        feature("4101", "[[[113.60,34.70],[113.61,34.70],[113.61,34.71],[113.60,34.70]]]"),
        feature("410102009", "[[[113.60,34.70],[113.61,34.70],[113.61,34.71],[113.60,34.70]]]"),
        feature("410102009", "[[[113.70,34.70],[113.71,34.70],[113.71,34.71],[113.70,34.70]]]"),
        feature("410102010", r#"[[["a","b"]]]"#),
    ];
    let out = import_text(&collection(&features), Crs::Wgs84);
    let reason = |i: usize| {
        out.refused
            .iter()
            .find(|r| r.feature == i)
            .map(|r| r.reason.clone())
    };
    assert!(
        matches!(reason(0), Some(FeatureProblem::SelfIntersection { .. })),
        "{:?}",
        reason(0)
    );
    assert!(
        matches!(reason(1), Some(FeatureProblem::BadCoordinate { ref reason, .. }) if reason.contains("swapped"))
    );
    assert!(
        matches!(reason(2), Some(FeatureProblem::BadCoordinate { ref reason, .. }) if reason.contains("projected"))
    );
    assert_eq!(reason(3), Some(FeatureProblem::TooFewPoints(0)));
    assert_eq!(reason(4), Some(FeatureProblem::EmptyGeometry));
    assert_eq!(reason(5), Some(FeatureProblem::EmptyGeometry));
    assert!(matches!(reason(6), Some(FeatureProblem::NotPolygonal(_))));
    assert!(matches!(reason(7), Some(FeatureProblem::BadCode(_))));
    assert!(reason(8).is_none());
    assert!(matches!(
        reason(9),
        Some(FeatureProblem::DuplicateCode { first: 8, .. })
    ));
    assert!(matches!(
        reason(10),
        Some(FeatureProblem::MalformedGeometry(_))
    ));
    assert_eq!(out.grids.len(), 1);
    assert!(out.refused.iter().all(|r| !r.message.is_empty()));
}

#[test]
fn a_tiny_self_intersection_is_repaired() {
    // A spike that crosses back over the exterior by a hair: area change far below 0.1%.
    let ring = "[[[113.60,34.70],[113.62,34.70],[113.62,34.72],[113.61,34.72],[113.6100001,34.6999999],[113.6099999,34.72],[113.60,34.72],[113.60,34.70]]]";
    let out = import_text(&collection(&[feature("410102001", ring)]), Crs::Wgs84);
    assert!(out.refused.is_empty(), "{:?}", out.refused);
    assert_eq!(out.grids.len(), 1);
    assert!(
        out.repairs
            .iter()
            .any(|r| r.what.starts_with("repaired invalid geometry")),
        "{:?}",
        out.repairs
    );
}

#[test]
fn unreadable_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let good = std::fs::read(data("data/zhengzhou/districts-gcj02.geojson")).unwrap();
    let cases = [
        (write("empty.geojson", b""), "empty"),
        (write("truncated.geojson", &good[..good.len() / 2]), "not valid GeoJSON"),
        (write("nan.geojson", br#"{"type":"Polygon","coordinates":[[[NaN,1],[2,2],[3,1],[NaN,1]]]}"#), "not valid GeoJSON"),
        (write("latin1.geojson", b"{\"type\":\"Feature\",\"properties\":{\"name\":\"\xd6\xd0\xd4\xad\"},\"geometry\":null}"), "not valid GeoJSON"),
        (write("mercator.geojson", br#"{"type":"FeatureCollection","crs":{"type":"name","properties":{"name":"urn:ogc:def:crs:EPSG::3857"}},"features":[]}"#), "coordinate system"),
        (write("garbage.fgb", b"not a flatgeobuf at all"), "not valid FlatGeobuf"),
        (write("unknown.kml", b"<kml/>"), "unknown file type"),
    ];
    for (path, expect) in cases {
        let out = import_files(
            std::slice::from_ref(&path),
            &ImportOptions::default(),
            &|_, _| {},
        );
        assert_eq!(out.failed_files.len(), 1, "{}", path.display());
        assert!(
            out.failed_files[0].reason.contains(expect),
            "{}: {}",
            path.display(),
            out.failed_files[0].reason
        );
    }
    // A FlatGeobuf written by us, then cut short.
    let set = GridSet::new(
        import_files(
            &[data("data/zhengzhou/districts-gcj02.geojson")],
            &ImportOptions {
                crs: Crs::Gcj02,
                code_field: Some("adcode".into()),
                ..Default::default()
            },
            &|_, _| {},
        )
        .grids,
    );
    let ids: Vec<u32> = (0..set.len() as u32).collect();
    let mut buf = Vec::new();
    gridscope::grid::export::write_flatgeobuf(&set, &ids, &mut buf).unwrap();
    assert_eq!(
        read_flatgeobuf(std::io::Cursor::new(&buf)).unwrap().len(),
        12
    );
    for cut in [8, 100, buf.len() / 2, buf.len() - 10] {
        let r = read_flatgeobuf(std::io::Cursor::new(&buf[..cut]));
        assert!(
            matches!(r, Err(ImportError::Malformed { .. })),
            "cut at {cut}: {:?}",
            r.map(|f| f.len())
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = read_geojson(&bytes);
        let _ = read_flatgeobuf(std::io::Cursor::new(&bytes));
    }

    #[test]
    fn arbitrary_coordinates_never_panic(coords in proptest::collection::vec((-1e9f64..1e9, -1e9f64..1e9), 0..12)) {
        let ring: Vec<String> = coords.iter().map(|(x, y)| format!("[{x},{y}]")).collect();
        let text = collection(&[feature("410102001", &format!("[[{}]]", ring.join(",")))]);
        let out = import_text(&text, Crs::Gcj02);
        prop_assert_eq!(out.grids.len() + out.refused.len(), 1);
    }
}

#[test]
fn shapefiles_are_read_with_their_attributes() {
    use shapefile::dbase::{FieldName, FieldValue, Record, TableWriterBuilder};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grids.shp");
    let table = TableWriterBuilder::new()
        .add_character_field(FieldName::try_from("code").unwrap(), 20)
        .add_character_field(FieldName::try_from("name").unwrap(), 50);
    let mut writer = shapefile::Writer::from_path(&path, table).unwrap();
    let square = |x: f64| {
        geo::MultiPolygon(vec![
            geo::Rect::new(
                geo::coord! {x: x, y: 34.70},
                geo::coord! {x: x + 0.01, y: 34.71},
            )
            .to_polygon(),
        ])
    };
    for (i, code) in ["410102001", "410102002"].iter().enumerate() {
        let mut record = Record::default();
        record.insert("code".into(), FieldValue::Character(Some(code.to_string())));
        record.insert(
            "name".into(),
            FieldValue::Character(Some(format!("street {i}"))),
        );
        let shape = shapefile::Polygon::from(square(113.6 + i as f64 * 0.01));
        writer.write_shape_and_record(&shape, &record).unwrap();
    }
    drop(writer);
    let out = import_files(&[path], &ImportOptions::default(), &|_, _| {});
    assert!(
        out.failed_files.is_empty() && out.refused.is_empty(),
        "{:?} {:?}",
        out.failed_files,
        out.refused
    );
    let names: Vec<(&str, &str)> = out
        .grids
        .iter()
        .map(|g| (g.code.as_str(), &*g.name))
        .collect();
    assert_eq!(
        names,
        [("410102001", "street 0"), ("410102002", "street 1")]
    );
    let report = QualityReport::check(&GridSet::new(out.grids));
    assert!(report.invalid.is_empty());
}

#[test]
fn a_directory_scan_takes_one_format_per_layer_and_skips_the_quality_report() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "level3.fgb",
        "level3.geojson",
        "level2.geojson",
        "quality.json",
        "notes.txt",
    ] {
        std::fs::write(dir.path().join(name), b"{}").unwrap();
    }
    let names: Vec<String> = grid_files_in(dir.path())
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["level2.geojson", "level3.fgb"]);
}
