//! `gridscope demo`: the Zhengzhou demo city, its quality report and a batch assignment.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use gridscope::assign::AssignConfig;
use gridscope::assign::batch::{read_points, write_results};
use gridscope::grid::demo::{DemoConfig, generate, report_points};
use gridscope::grid::export::write_levels;
use gridscope::grid::import::QUALITY_REPORT_FILE;
use gridscope::grid::quality::QualityReport;
use gridscope::{Assigner, Crs, GridSet, Level};

use super::assign::{assign_all, print_summary};
use super::progress;

/// Arguments of `gridscope demo`.
#[derive(clap::Args)]
pub struct Args {
    /// Directory to write the city and the sample reports to.
    #[arg(long, default_value = "demo-out")]
    out: PathBuf,
    /// Seed: the same seed gives byte-identical files.
    #[arg(long, default_value_t = DemoConfig::default().seed)]
    seed: u64,
    /// Also write GeoJSON beside the FlatGeobuf files.
    #[arg(long)]
    geojson: bool,
    /// Number of sample reports to assign.
    #[arg(long, default_value_t = 200_000)]
    reports: usize,
    /// Divide every count by this (a small city for quick trials).
    #[arg(long, default_value_t = 1)]
    scale_down: usize,
    /// Skip the topology check (it takes a few seconds at full scale).
    #[arg(long)]
    no_check: bool,
    /// Also generate a report history of this many reports over 15 months (Zhengzhou:
    /// 5000000) and load it into --database.
    #[arg(long, default_value_t = 0)]
    history: u64,
    /// The DuckDB file the history is loaded into (created if missing; must hold no reports).
    #[arg(long, default_value = "gridscope.duckdb")]
    database: PathBuf,
    /// The day after the history ends (YYYY-MM-DD, Zhengzhou time; default: today).
    #[arg(long)]
    history_end: Option<chrono::NaiveDate>,
}

/// Generates the city and runs the batch assignment.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let cfg = DemoConfig {
        seed: args.seed,
        ..DemoConfig::scaled_down(args.scale_down)
    };
    let t = Instant::now();
    let spin = progress::spinner();
    let grids = generate(&cfg, &|step| spin.set_message(step.to_string()))
        .context("generating the demo city")?;
    let set = Arc::new(GridSet::new(grids));
    spin.set_message("writing grid files");
    let files = write_levels(&set, &args.out, args.geojson)
        .with_context(|| format!("writing {}", args.out.display()))?;
    spin.finish_and_clear();
    println!("demo city generated in {:.1} s:", t.elapsed().as_secs_f64());
    for level in Level::ALL {
        println!("  {:<9} {:>7} grids", level.name(), set.count(level));
    }
    for f in &files {
        println!("  wrote {}", f.display());
    }

    if !args.no_check {
        let spin = progress::spinner();
        spin.set_message("checking topology (gaps, overlaps, children outside parents)");
        let t = Instant::now();
        let report = QualityReport::check(&set);
        spin.finish_and_clear();
        println!("quality report ({:.1} s):", t.elapsed().as_secs_f64());
        print!("{report}");
        let path = args.out.join(QUALITY_REPORT_FILE);
        std::fs::write(&path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }

    let t = Instant::now();
    let assigner = Assigner::new(set.clone(), AssignConfig::default());
    let (bytes, [clean, local, exact, nowhere]) = assigner.raster_stats();
    let share = |n: usize| 100.0 * n as f64 / (clean + local + exact + nowhere).max(1) as f64;
    println!(
        "assignment index built in {:.2} s (raster {} MB: {:.1}% cells clean, {:.1}% local, {:.2}% exact, {:.1}% outside)",
        t.elapsed().as_secs_f64(),
        bytes / 1_000_000,
        share(clean),
        share(local),
        share(exact),
        share(nowhere),
    );

    if args.history > 0 {
        load_history(
            &args.database,
            args.history,
            args.seed,
            args.history_end,
            &assigner,
            true,
        )?;
    }
    if args.reports == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    // Sample reports as apps send them: mostly GCJ-02, some BD-09 and WGS84.
    let points = report_points(&set, args.reports, 0.02, args.seed ^ 0x5EED);
    let input = args.out.join("reports-sample.csv");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&input)?);
    writeln!(w, "report_id,lon,lat,crs")?;
    for (i, p) in points.iter().enumerate() {
        let crs = [Crs::Gcj02, Crs::Gcj02, Crs::Gcj02, Crs::Bd09, Crs::Wgs84][i % 5];
        let (x, y) = crs.from_wgs84(*p);
        writeln!(w, "R{:07},{x:.7},{y:.7},{crs}", i + 1)?;
    }
    w.flush()?;
    let (file, parsed) = read_points(&input, Crs::Wgs84)?;
    let t = Instant::now();
    let views = assign_all(&assigner, &parsed);
    let secs = t.elapsed().as_secs_f64();
    let output = args.out.join("reports-assigned.csv");
    write_results(&file, &views, &output)?;
    print_summary(&views, secs);
    println!("wrote {} and {}", input.display(), output.display());
    println!(
        "open the .fgb files in QGIS, or re-assign with: gridscope assign --grids {} --input {} --output out.csv",
        args.out.display(),
        input.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Generates a report history of `reports` reports ending on `end` (default: today) and loads
/// it into `database`, which must hold no reports; a progress bar when `show_progress`.
pub(super) fn load_history(
    database: &Path,
    reports: u64,
    seed: u64,
    end: Option<chrono::NaiveDate>,
    assigner: &Assigner,
    show_progress: bool,
) -> anyhow::Result<()> {
    use gridscope::report::history::{HistoryConfig, HistoryGenerator};
    use gridscope::report::{Catalog, DeadlineRules};
    use gridscope::store::bulk;

    let end = end.unwrap_or_else(|| (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive());
    let cfg = HistoryConfig {
        seed,
        reports,
        ..HistoryConfig::zhengzhou(end)
    };
    let rules = DeadlineRules::default()
        .prepare()
        .context("preparing the deadline rules")?;
    let catalog = Catalog::embedded();
    let t = Instant::now();
    let generator = HistoryGenerator::new(cfg, assigner, &rules, &catalog);
    let conn = duckdb::Connection::open(database)
        .with_context(|| format!("opening {}", database.display()))?;
    gridscope::store::schema::migrate(&conn)?;
    let existing = bulk::report_count(&conn)?;
    if existing > 0 {
        anyhow::bail!(
            "{} already holds {existing} reports; load the history into an empty database",
            database.display()
        );
    }
    let bar = if show_progress {
        progress::bar(generator.total(), "reports")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let loaded = bulk::load_history(&conn, &generator, &|n| bar.set_position(n))?;
    bar.finish_and_clear();
    conn.execute_batch("CHECKPOINT")?;
    println!(
        "report history: {loaded} reports over {} days up to {end}, generated and loaded into {} in {:.1} s",
        generator.days(),
        database.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
