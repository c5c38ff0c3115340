//! GDAL, the reader behind QGIS, opens the grid files gridscope writes and finds every
//! geometry valid (GEOS `ST_IsValid` through GDAL's SQLite dialect). `ogrinfo` comes from
//! Debian's gdal-bin, installed by `scripts/test`.

use std::path::Path;
use std::process::Command;

use gridscope::grid::demo::{DemoConfig, generate};
use gridscope::grid::export::{level_file_stem, write_levels};
use gridscope::{GridSet, Level};

fn count_valid(file: &Path, layer: &str) -> (usize, usize) {
    let out = Command::new("ogrinfo")
        .args(["-q", "-dialect", "SQLite", "-sql"])
        .arg(format!(
            "SELECT count(*) AS n, sum(ST_IsValid(geometry)) AS valid FROM \"{layer}\""
        ))
        .arg(file)
        .output()
        .expect("ogrinfo not found: run scripts/test, which installs gdal-bin");
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{name} (Integer) = ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "no {name} in ogrinfo output for {}:\n{text}{}",
                    file.display(),
                    String::from_utf8_lossy(&out.stderr)
                )
            })
    };
    (field("n"), field("valid"))
}

#[test]
fn gdal_opens_the_demo_files_and_finds_every_geometry_valid() {
    let set = GridSet::new(generate(&DemoConfig::scaled_down(10), &|_| {}).unwrap());
    let dir = tempfile::tempdir().unwrap();
    write_levels(&set, dir.path(), true).unwrap();
    for level in Level::ALL {
        for ext in ["fgb", "geojson"] {
            let stem = level_file_stem(level);
            let file = dir.path().join(format!("{stem}.{ext}"));
            // FlatGeobuf files name their layer "grids"; GeoJSON layers take the file's name.
            let layer = if ext == "fgb" { "grids" } else { stem };
            let (n, valid) = count_valid(&file, layer);
            assert_eq!(n, set.count(level), "{}", file.display());
            assert_eq!(
                valid,
                n,
                "{}: GEOS finds invalid geometries",
                file.display()
            );
        }
    }
}
