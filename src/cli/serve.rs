//! `gridscope serve`: the HTTP server, on the demo city unless told otherwise.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use gridscope::api::grid_version::{GridsInForce, china_today, read_grid_dir};
use gridscope::api::{self, AppState};
use gridscope::config::Config;
use gridscope::grid::demo::{DemoConfig, generate};
use gridscope::grid::export::write_levels;
use gridscope::grid::import::grid_files_in;
use gridscope::store::keys::{self, NewKey, Role};
use gridscope::store::{Store, StoreOptions};
use gridscope::{Assigner, GridSet};

/// Arguments of `gridscope serve`; each overrides the configuration file and environment.
#[derive(clap::Args)]
pub struct Args {
    /// TOML configuration file (default: ./gridscope.toml when it exists).
    #[arg(long, env = "GRIDSCOPE_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080.
    #[arg(long)]
    listen: Option<String>,
    /// DuckDB file.
    #[arg(long)]
    database: Option<PathBuf>,
    /// Directory of grid files (default: the demo city).
    #[arg(long)]
    grids: Option<PathBuf>,
    /// Directory the demo city is written to and reused from.
    #[arg(long)]
    demo_dir: Option<PathBuf>,
    /// Divide the demo city's counts by this (quick trials).
    #[arg(long)]
    demo_scale_down: Option<usize>,
    /// Where the first admin key is written.
    #[arg(long)]
    admin_key_file: Option<PathBuf>,
}

fn load_config(args: &Args) -> anyhow::Result<Config> {
    let default_file = Path::new("gridscope.toml");
    let file = args
        .config
        .clone()
        .or_else(|| default_file.exists().then(|| default_file.to_path_buf()));
    let (mut cfg, warnings) = Config::load(file.as_deref(), std::env::vars())?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    if let Some(v) = &args.listen {
        cfg.listen.clone_from(v);
    }
    if let Some(v) = &args.database {
        cfg.database.clone_from(v);
    }
    if let Some(v) = &args.grids {
        cfg.grids = Some(v.clone());
    }
    if let Some(v) = &args.demo_dir {
        cfg.demo_dir.clone_from(v);
    }
    if let Some(v) = args.demo_scale_down {
        cfg.demo_scale_down = v.max(1);
    }
    if let Some(v) = &args.admin_key_file {
        cfg.admin_key_file.clone_from(v);
    }
    Ok(cfg)
}

fn init_logging(cfg: &Config) -> tracing_appender::non_blocking::WorkerGuard {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.log.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking(std::io::stdout());
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal())
        .with_writer(writer);
    let _ = if cfg.log.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    guard
}

/// Imports grid files from `dir`, refusing to start on nothing. Unlike a reload (which keeps
/// the old version rather than serve a partial one), a start serves what imports and warns.
fn import_dir(dir: &Path) -> anyhow::Result<GridSet> {
    let outcome = read_grid_dir(dir)?;
    for f in &outcome.failed_files {
        tracing::warn!(file = %f.file, reason = %f.reason, "grid file not read");
    }
    if !outcome.refused.is_empty() {
        tracing::warn!(
            refused = outcome.refused.len(),
            "grid features refused; run `gridscope import` for the report"
        );
    }
    if outcome.grids.is_empty() {
        bail!("no grids in {}", dir.display());
    }
    Ok(GridSet::new(outcome.grids))
}

/// The grids of `cfg`: its grid directory, else the demo city (generated once into the demo
/// directory and reused after).
pub(super) fn load_grids(cfg: &Config) -> anyhow::Result<GridSet> {
    if let Some(dir) = &cfg.grids {
        return import_dir(dir);
    }
    let dir = &cfg.demo_dir;
    let have_files = grid_files_in(dir).map(|f| !f.is_empty()).unwrap_or(false);
    if have_files {
        tracing::info!(dir = %dir.display(), "loading the demo city");
        return import_dir(dir);
    }
    tracing::info!(dir = %dir.display(), "generating the Zhengzhou demo city (once; reused on later starts)");
    let demo = DemoConfig::scaled_down(cfg.demo_scale_down);
    let grids = generate(&demo, &|step| tracing::debug!(step, "demo city"))
        .context("generating the demo city")?;
    let set = GridSet::new(grids);
    write_levels(&set, dir, false).with_context(|| format!("writing {}", dir.display()))?;
    Ok(set)
}

/// On the demo city, fills a database without reports with the demo report history (once), so
/// that the map wall and the KPIs have a city's worth of data from the first start.
fn seed_demo_history(cfg: &Config, assigner: &Assigner) -> anyhow::Result<()> {
    let empty = match duckdb::Connection::open(&cfg.database) {
        Ok(conn) => {
            gridscope::store::schema::migrate(&conn)?;
            gridscope::store::bulk::report_count(&conn)? == 0
        }
        Err(e) => return Err(e).with_context(|| format!("opening {}", cfg.database.display())),
    };
    if !empty {
        return Ok(());
    }
    let reports = cfg.demo_history / cfg.demo_scale_down.max(1) as u64;
    tracing::info!(
        reports,
        "loading the demo report history (once; about a minute for 5 million)"
    );
    super::demo::load_history(&cfg.database, reports, 7, None, assigner, false)
}

/// On the demo city, keeps adding reports at `per_sec` (through the store, as intake would),
/// so the map wall moves. Stops when the store closes.
fn start_live_demo(
    per_sec: f64,
    assigner: Arc<Assigner>,
    rules: Arc<gridscope::report::DeadlineRules>,
    store: Arc<Store>,
    runtime: tokio::runtime::Handle,
) -> anyhow::Result<()> {
    use gridscope::report::Catalog;
    use gridscope::report::history::{HistoryConfig, HistoryGenerator};
    use rand::SeedableRng;

    tracing::info!(per_sec, "adding live demo reports");
    std::thread::Builder::new()
        .name("gridscope-live-demo".into())
        .spawn(move || {
            let today = (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive();
            let catalog = Catalog::embedded();
            let generator =
                HistoryGenerator::new(HistoryConfig::zhengzhou(today), &assigner, &rules, &catalog);
            let mut rng = rand_chacha::ChaCha8Rng::from_os_rng();
            let pause = std::time::Duration::from_secs_f64(1.0 / per_sec.max(0.01));
            loop {
                std::thread::sleep(pause);
                let Some(mut report) = generator.live(&mut rng, chrono::Utc::now()) else {
                    continue;
                };
                report.created_by = "demo-live".into();
                if let Err(e) = runtime.block_on(store.create(vec![report])) {
                    tracing::info!(error = %e, "live demo stopped");
                    return;
                }
            }
        })
        .context("starting the live demo")?;
    Ok(())
}

/// Creates an admin key when the database has none, and writes its secret to a file only the
/// owner can read; with it, a read-only key for the map wall when `wall_key` names a file.
fn bootstrap_keys(store: &Store, admin: &Path, wall_key: &Path) -> anyhow::Result<()> {
    if !store.read(keys::all)?.is_empty() {
        return Ok(());
    }
    let make = |name: &str, role: Role, path: &Path| -> anyhow::Result<()> {
        let (key, secret) = store.read(|conn| {
            keys::create(
                conn,
                &NewKey {
                    name: name.into(),
                    role,
                    scope: None,
                    rate_per_sec: None,
                },
            )
        })?;
        write_secret(path, &secret).with_context(|| format!("writing {}", path.display()))?;
        tracing::info!(key = %key.id, file = %path.display(), "created the {name} key");
        Ok(())
    };
    make("first admin", Role::Admin, admin)?;
    if !wall_key.as_os_str().is_empty() {
        make("map wall", Role::Analyst, wall_key)?;
    }
    Ok(())
}

/// The map wall's address, with its key when the key file is readable.
fn wall_url(addr: std::net::SocketAddr, key_file: &Path) -> String {
    let key = std::fs::read_to_string(key_file).unwrap_or_default();
    match key.trim() {
        "" => format!("http://{addr}/"),
        k => format!("http://{addr}/?key={k}"),
    }
}

fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    writeln!(f, "{secret}")
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    tracing::info!("shutting down: finishing in-flight requests and flushing storage");
}

/// Starts the server and runs until SIGINT or SIGTERM.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let cfg = load_config(&args)?;
    let _log = init_logging(&cfg);
    let t = Instant::now();
    let loaded = Arc::new(load_grids(&cfg)?);
    let grids = GridsInForce::build(&cfg, loaded, china_today());
    let assigner = Arc::clone(&grids.assigner);
    tracing::info!(
        grids = assigner.grids().len(),
        loaded = grids.loaded.len(),
        seconds = t.elapsed().as_secs_f64(),
        "grids in force indexed"
    );
    if assigner.grids().is_empty() {
        bail!(
            "none of the {} grids loaded is in force today",
            grids.loaded.len()
        );
    }
    if cfg.grids.is_none() && cfg.demo_history > 0 {
        seed_demo_history(&cfg, &assigner)?;
    }
    let rules = Arc::new(cfg.deadlines.clone().prepare().context("[deadlines]")?);
    let store = Arc::new(
        Store::open(
            &cfg.database,
            Arc::clone(&rules),
            &StoreOptions {
                max_batch: cfg.store.max_batch,
                checkpoint_wal_bytes: cfg.store.checkpoint_wal_mb << 20,
                checkpoint_idle_wal_bytes: cfg.store.checkpoint_idle_wal_mb << 20,
                query_threads: cfg.store.query_threads,
                ..StoreOptions::default()
            },
        )
        .with_context(|| format!("opening {}", cfg.database.display()))?,
    );
    bootstrap_keys(&store, &cfg.admin_key_file, &cfg.wall.key_file)?;
    let wall_key = cfg.wall.key_file.clone();
    let listen = cfg.listen.clone();
    let live =
        (cfg.grids.is_none() && cfg.demo_live_per_sec > 0.0).then_some(cfg.demo_live_per_sec);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    if let Some(rate) = live {
        start_live_demo(
            rate,
            Arc::clone(&assigner),
            Arc::clone(&rules),
            Arc::clone(&store),
            runtime.handle().clone(),
        )?;
    }
    let state = AppState::with_grids(cfg, grids, rules, store)?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "listening");
        println!("gridscope is serving on http://{addr}/  (API: http://{addr}/api/v1/openapi.json, health: http://{addr}/health)");
        println!("map wall: {}", wall_url(addr, &wall_key));
        api::serve(state, listener, shutdown_signal()).await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
