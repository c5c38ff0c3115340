//! The H3 cells stored with every report (resolutions 6–10, used by heat aggregates and tiles)
//! agree with the reference H3 library (PyPI `h3`, Uber's C library) on 20,000 random points
//! over and around the city, at every resolution.

use std::path::Path;
use std::process::Command;

use gridscope::Wgs84Point;
use gridscope::report::intake::h3_cells;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[test]
fn stored_h3_cells_agree_with_the_reference_library() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let points: Vec<(f64, f64)> = (0..20_000)
        .map(|_| (rng.random_range(112.6..114.3), rng.random_range(34.2..35.1)))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("points.csv");
    let text: String = points
        .iter()
        .map(|(lon, lat)| format!("{lat:.9},{lon:.9}\n"))
        .collect();
    std::fs::write(&file, text).unwrap();
    let python = std::env::var("GRIDSCOPE_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/h3_cells.py"))
        .arg(&file)
        .output()
        .expect("python: run scripts/test, which installs h3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference = String::from_utf8(out.stdout).unwrap();
    let mut checked = 0;
    for ((lon, lat), line) in points.iter().zip(reference.lines()) {
        // The same rounded coordinates the reference saw.
        let (lon, lat) = (
            format!("{lon:.9}").parse().unwrap(),
            format!("{lat:.9}").parse().unwrap(),
        );
        let ours: Vec<String> = h3_cells(Wgs84Point::new(lon, lat).unwrap())
            .iter()
            .map(|c| format!("{c:x}"))
            .collect();
        assert_eq!(ours.join(","), line, "point {lon},{lat}");
        checked += 1;
    }
    assert_eq!(checked, 20_000);
}
