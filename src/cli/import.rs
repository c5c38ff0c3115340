//! `gridscope import`: read grid files, clean them, report quality, write the clean set.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::NaiveDate;
use gridscope::grid::export::write_levels;
use gridscope::grid::import::{ImportOptions, import_files};
use gridscope::grid::quality::QualityReport;
use gridscope::{Crs, GridSet, Level};

use super::progress;

/// Arguments of `gridscope import`.
#[derive(clap::Args)]
pub struct Args {
    /// Grid files (.geojson, .json, .fgb, .shp, .gpkg) or directories holding them.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Coordinate system of the files: wgs84, gcj02, bd09 or cgcs2000.
    #[arg(long, default_value = "wgs84")]
    crs: Crs,
    /// Refuse features whose code is not of this level (district, 1, 2, 3, micro, exclusive).
    #[arg(long)]
    level: Option<Level>,
    /// Property holding the grid code (default: code, grid_code, adcode or id).
    #[arg(long)]
    code_field: Option<String>,
    /// Property holding the grid name (default: name).
    #[arg(long)]
    name_field: Option<String>,
    /// First day the grids are in force (YYYY-MM-DD), unless a feature says otherwise.
    #[arg(long)]
    valid_from: Option<NaiveDate>,
    /// Directory to write the clean grid set to (one FlatGeobuf file per level).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where to write the quality report as JSON.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Exit with status 1 when anything was refused or the topology has problems.
    #[arg(long)]
    strict: bool,
}

/// Runs the import.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut paths = Vec::new();
    for f in &args.files {
        if f.is_dir() {
            paths.extend(
                gridscope::grid::import::grid_files_in(f)
                    .with_context(|| format!("listing {}", f.display()))?,
            );
        } else {
            paths.push(f.clone());
        }
    }
    let opts = ImportOptions {
        crs: args.crs,
        level: args.level,
        code_field: args.code_field,
        name_field: args.name_field,
        valid_from: args
            .valid_from
            .unwrap_or_else(|| chrono::Local::now().date_naive()),
    };
    let bar = progress::bar(paths.len() as u64, "files");
    let outcome = import_files(&paths, &opts, &|path, n| {
        bar.set_message(format!("{} ({n} features)", path.display()));
        bar.inc(1);
    });
    bar.finish_and_clear();
    let spin = progress::spinner();
    spin.set_message(format!(
        "checking topology of {} grids",
        outcome.grids.len()
    ));
    let set = GridSet::new(outcome.grids.clone());
    let report = QualityReport::check(&set).with_import(&outcome);
    spin.finish_and_clear();
    print!("{report}");
    if let Some(path) = &args.report {
        let json = serde_json::to_vec_pretty(&report).context("encoding the quality report")?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
        println!("quality report: {}", path.display());
    }
    if let Some(dir) = &args.out {
        let files = write_levels(&set, dir, false)
            .with_context(|| format!("writing grids to {}", dir.display()))?;
        println!("wrote {} files to {}", files.len(), dir.display());
    }
    let problems =
        !report.refused.is_empty() || !report.failed_files.is_empty() || !report.is_clean();
    Ok(if args.strict && problems {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
