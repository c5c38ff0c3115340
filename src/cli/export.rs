//! `gridscope export tiles`: a tile set for a zoom range, packaged as one PMTiles archive.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use gridscope::config::Config;
use gridscope::tiles::package::{tile_count, write_pmtiles};
use gridscope::tiles::sets::GridTiles;

use super::progress;
use super::serve::load_grids;

/// Arguments of `gridscope export`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// Write a tile set for a zoom range to a PMTiles archive (for map walls on isolated
    /// networks); prints the largest tile of each zoom.
    Tiles(TilesArgs),
}

#[derive(clap::Args)]
struct TilesArgs {
    /// The archive to write, e.g. zhengzhou-grids.pmtiles.
    out: PathBuf,
    /// Tile set: grids.
    #[arg(long, default_value = "grids")]
    tileset: String,
    /// First zoom.
    #[arg(long, default_value_t = 0)]
    minzoom: u8,
    /// Last zoom.
    #[arg(long, default_value_t = 14)]
    maxzoom: u8,
    /// Directory of grid files (default: the demo city, generated into --demo-dir if missing).
    #[arg(long)]
    grids: Option<PathBuf>,
    /// Directory the demo city is written to and reused from.
    #[arg(long, default_value = "demo-out")]
    demo_dir: PathBuf,
    /// Divide the demo city's counts by this (quick trials).
    #[arg(long, default_value_t = 1)]
    demo_scale_down: usize,
}

/// Runs `gridscope export`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.what {
        What::Tiles(a) => tiles(a),
    }
}

fn tiles(a: TilesArgs) -> anyhow::Result<ExitCode> {
    if a.tileset != "grids" {
        bail!(
            "tile set {:?} cannot be packaged; there is: grids",
            a.tileset
        );
    }
    if a.minzoom > a.maxzoom || a.maxzoom > gridscope::tiles::sets::grids::MAX_ZOOM {
        bail!(
            "zooms {}..{} are not a range within 0..{}",
            a.minzoom,
            a.maxzoom,
            gridscope::tiles::sets::grids::MAX_ZOOM
        );
    }
    let cfg = Config {
        grids: a.grids.clone(),
        demo_dir: a.demo_dir.clone(),
        demo_scale_down: a.demo_scale_down.max(1),
        ..Config::default()
    };
    let started = Instant::now();
    let set = GridTiles::build(Arc::new(load_grids(&cfg)?));
    let bounds = set.bounds();
    let total = tile_count(a.minzoom..=a.maxzoom, bounds);
    let file = File::create(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let bar = progress::bar(total, "tiles");
    let summaries = write_pmtiles(
        &set,
        a.minzoom..=a.maxzoom,
        bounds,
        BufWriter::new(file),
        &|done| bar.set_position(done),
    )
    .with_context(|| format!("writing {}", a.out.display()))?;
    bar.finish_and_clear();
    println!("zoom  tiles  empty  written MB  largest KB  largest tile");
    for s in &summaries {
        println!(
            "{:>4} {:>6} {:>6} {:>11.1} {:>11.1}  {}",
            s.z,
            s.tiles,
            s.empty,
            s.bytes as f64 / 1048576.0,
            s.largest_bytes as f64 / 1024.0,
            s.largest_tile
        );
    }
    let size = std::fs::metadata(&a.out).map(|m| m.len()).unwrap_or(0);
    println!(
        "wrote {} ({:.1} MB, {} tiles looked at) in {:.1} s",
        a.out.display(),
        size as f64 / 1048576.0,
        total,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
