//! `gridscope assign`: assign every point of a file to its responsible grid, on all cores.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use gridscope::assign::batch::{read_points, write_results};
use gridscope::assign::{AssignConfig, AssignmentView};
use gridscope::grid::import::{ImportOptions, grid_files_in, import_files};
use gridscope::{Assigner, Crs, GridSet};
use rayon::prelude::*;

use super::progress;

/// Arguments of `gridscope assign`.
#[derive(clap::Args)]
pub struct Args {
    /// Directory with the grid set (as written by `gridscope demo` or `gridscope import --out`).
    #[arg(long)]
    grids: PathBuf,
    /// Points: CSV with lon/lat (and optional crs) columns, or GeoJSON Point features.
    #[arg(long)]
    input: PathBuf,
    /// Output file (.csv or .geojson): the input records with the assignment added.
    #[arg(long)]
    output: PathBuf,
    /// Coordinate system of points that do not name one.
    #[arg(long, default_value = "wgs84")]
    crs: Crs,
    /// Snapping tolerance in metres for points just outside every level-3 grid.
    #[arg(long, default_value_t = 50.0)]
    tolerance_m: f64,
    /// Also time the engine alone on one core over the input points (best of 3 runs).
    #[arg(long)]
    time_engine: bool,
}

/// Loads a grid directory into an assigner, reporting what it found.
pub fn load_assigner(dir: &std::path::Path, tolerance_m: f64) -> anyhow::Result<Assigner> {
    let files = grid_files_in(dir).with_context(|| format!("listing {}", dir.display()))?;
    anyhow::ensure!(!files.is_empty(), "no grid files in {}", dir.display());
    let spin = progress::spinner();
    spin.set_message(format!("loading grids from {}", dir.display()));
    let outcome = import_files(&files, &ImportOptions::default(), &|_, _| {});
    for f in &outcome.failed_files {
        eprintln!("warning: {}: {}", f.file, f.reason);
    }
    if !outcome.refused.is_empty() {
        eprintln!(
            "warning: {} features refused (run `gridscope import` for details)",
            outcome.refused.len()
        );
    }
    let set = Arc::new(GridSet::new(outcome.grids));
    spin.set_message(format!("indexing {} grids", set.len()));
    let t = Instant::now();
    let cfg = AssignConfig {
        snap_tolerance_m: tolerance_m,
        ..Default::default()
    };
    let assigner = Assigner::new(set, cfg);
    spin.finish_and_clear();
    eprintln!(
        "indexed {} grids in {:.2} s",
        assigner.grids().len(),
        t.elapsed().as_secs_f64()
    );
    Ok(assigner)
}

/// Runs the batch assignment.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let assigner = load_assigner(&args.grids, args.tolerance_m)?;
    let (file, points) = read_points(&args.input, args.crs)?;
    if args.time_engine {
        let valid: Vec<gridscope::Wgs84Point> = points
            .iter()
            .filter_map(|p| p.as_ref().ok().copied())
            .collect();
        let mut out = Vec::with_capacity(valid.len());
        let best = (0..3)
            .map(|_| {
                out.clear();
                let t = Instant::now();
                assigner.assign_many(&valid, &mut out);
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min);
        println!(
            "engine: {} points in {:.3} s on one core = {:.2} M points/s",
            valid.len(),
            best,
            valid.len() as f64 / best.max(1e-9) / 1e6
        );
    }
    let t = Instant::now();
    let views = assign_all(&assigner, &points);
    let secs = t.elapsed().as_secs_f64();
    write_results(&file, &views, &args.output)?;
    print_summary(&views, secs);
    println!("wrote {}", args.output.display());
    Ok(ExitCode::SUCCESS)
}

/// Assigns every point on all cores with a progress bar; bad points keep their error.
pub fn assign_all(
    assigner: &Assigner,
    points: &[Result<gridscope::Wgs84Point, String>],
) -> Vec<Result<AssignmentView, String>> {
    let bar = progress::bar(points.len() as u64, "points");
    let mut out = Vec::with_capacity(points.len());
    for chunk in points.chunks(65_536) {
        let part: Vec<Result<AssignmentView, String>> = chunk
            .par_iter()
            .map(|p| {
                p.as_ref()
                    .map(|&p| assigner.view(&assigner.assign(p)))
                    .map_err(Clone::clone)
            })
            .collect();
        out.extend(part);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    out
}

/// Prints how the points were assigned.
pub fn print_summary(views: &[Result<AssignmentView, String>], secs: f64) {
    let mut counts = std::collections::BTreeMap::new();
    for v in views {
        let key = match v {
            Ok(v) => v.method.name(),
            Err(_) => "unreadable",
        };
        *counts.entry(key).or_insert(0usize) += 1;
    }
    println!(
        "assigned {} points in {:.3} s ({:.0} points/s, with names and chains)",
        views.len(),
        secs,
        views.len() as f64 / secs.max(1e-9)
    );
    for (k, n) in counts {
        println!(
            "  {k:<11} {n:>9}  {:5.1}%",
            100.0 * n as f64 / views.len().max(1) as f64
        );
    }
}
