//! Command-line interface: one file per subcommand.

mod assign;
mod demo;
mod export;
mod import;
mod progress;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// gridscope: grid registry, report assignment and tiles for city grid governance.
#[derive(Parser)]
#[command(name = "gridscope", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate the Zhengzhou demo city, check its topology and assign a batch of reports.
    Demo(demo::Args),
    /// Import grid boundaries from GeoJSON, FlatGeobuf or Shapefile, with a quality report.
    Import(import::Args),
    /// Assign points from a CSV or GeoJSON file to their responsible grids.
    Assign(assign::Args),
    /// Run the HTTP server (on the demo city unless grids are given).
    Serve(serve::Args),
    /// Write offline packages: vector tiles to PMTiles.
    Export(export::Args),
}

/// Runs the command line; errors are printed with their context.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Import(args) => import::run(args),
        Command::Assign(args) => assign::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Export(args) => export::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
