//! Grid tile benchmarks on the full demo city: building the tile set, and cold generation
//! (no cache) of `grids` tiles over a fixed shuffled list of addresses across zooms 8–16.
//! `scripts/bench-tiles` runs PostGIS `ST_AsMVT` on the same tiles and prints the ratio.
//!
//! The tile list is read from `$GRIDSCOPE_TILE_LIST` (one `z/x/y` per line) when set, so the
//! reference sees exactly the same addresses; otherwise it is made here the same way.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gridscope::GridSet;
use gridscope::grid::demo::{DemoConfig, generate};
use gridscope::tiles::sets::GridTiles;
use gridscope::tiles::{TileFilter, TileId, TileSet};

/// The server's allocator, so the figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn tile_list(set: &GridTiles) -> Vec<TileId> {
    if let Ok(path) = std::env::var("GRIDSCOPE_TILE_LIST") {
        let text = std::fs::read_to_string(&path).expect("tile list");
        return text
            .lines()
            .filter_map(|l| {
                let mut p = l.trim().split('/');
                TileId::parse(p.next()?, p.next()?, p.next()?).ok()
            })
            .collect();
    }
    gridscope::tiles::sample::shuffled_tiles(set.bounds(), 8..=16, 200, 42)
}

fn bench(c: &mut Criterion) {
    let grids = generate(&DemoConfig::default(), &|_| {}).expect("demo city");
    let set = Arc::new(GridSet::new(grids));
    let t = Instant::now();
    let tiles = GridTiles::build(set.clone());
    let (arcs, points) = tiles.topology_size();
    eprintln!(
        "grids tile set: {} grids, {arcs} arcs, {points} vertices, built in {:.2} s",
        set.len(),
        t.elapsed().as_secs_f64()
    );
    let list = tile_list(&tiles);
    let t = Instant::now();
    let mut bytes = 0usize;
    let mut largest = (0usize, None);
    for &tile in &list {
        let b = tiles
            .render(tile, &TileFilter::default())
            .expect("tile")
            .len();
        bytes += b;
        if b > largest.0 {
            largest = (b, Some(tile));
        }
    }
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "one pass over {} tiles (z8–16): {:.0} tiles/s on one core, {:.1} KB mean, largest {:.1} KB ({:?})",
        list.len(),
        list.len() as f64 / secs,
        bytes as f64 / list.len() as f64 / 1024.0,
        largest.0 as f64 / 1024.0,
        largest.1.map(|t| t.to_string())
    );

    let mut g = c.benchmark_group("grids_tiles_cold");
    g.sample_size(10);
    g.throughput(Throughput::Elements(list.len() as u64));
    g.bench_function("render_tile_list_one_core", |b| {
        b.iter(|| {
            for &tile in &list {
                black_box(tiles.render(tile, &TileFilter::default()).expect("tile"));
            }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("grids_tile_set");
    g.sample_size(10);
    g.bench_function("build_demo_city", |b| {
        b.iter(|| black_box(GridTiles::build(set.clone())))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
