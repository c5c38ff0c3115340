//! Assignment engine benchmarks on the full demo city: index build, and single-core
//! throughput over 1,000,000 points (90% inside the city) through the raster fast path and
//! through the exact R-tree path for comparison. `scripts/bench-assign` runs the shapely and
//! PostGIS references on the same points and prints the ratios.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use gridscope::grid::demo::{DemoConfig, generate, uniform_points};
use gridscope::{AssignConfig, Assigner, GridSet, Method};

fn bench(c: &mut Criterion) {
    let t = Instant::now();
    let grids = generate(&DemoConfig::default(), &|_| {}).expect("demo city");
    let set = Arc::new(GridSet::new(grids));
    eprintln!(
        "demo city: {} grids in {:.1} s",
        set.len(),
        t.elapsed().as_secs_f64()
    );
    let assigner = Assigner::new(set.clone(), AssignConfig::default());
    let points = uniform_points(&set, 1_000_000, 0.9, 7, |p| {
        assigner.assign_exact(p).method != Method::CityQueue
    });

    let mut g = c.benchmark_group("index");
    g.sample_size(10);
    // The build alone: the copy of the grids it takes is made, and the index it returns is
    // freed, outside the timed part.
    g.bench_function("build_demo_city", |b| {
        b.iter_batched(
            || set.clone(),
            |grids| Assigner::new(grids, AssignConfig::default()),
            BatchSize::PerIteration,
        )
    });
    g.finish();

    let mut g = c.benchmark_group("assign_1M_points_one_core");
    g.sample_size(10);
    g.throughput(Throughput::Elements(points.len() as u64));
    g.bench_function("batch_assign_many", |b| {
        let mut out = Vec::with_capacity(points.len());
        b.iter(|| {
            out.clear();
            assigner.assign_many(&points, &mut out);
            out.len()
        })
    });
    g.bench_function("one_by_one_assign", |b| {
        b.iter(|| {
            let mut interior = 0usize;
            for &p in &points {
                interior += usize::from(black_box(assigner.assign(p)).method == Method::Interior);
            }
            interior
        })
    });
    g.finish();

    let mut g = c.benchmark_group("assign_100k_points_one_core");
    g.sample_size(10);
    g.throughput(Throughput::Elements(100_000));
    g.bench_function("exact_rtree_path", |b| {
        b.iter(|| {
            let mut interior = 0usize;
            for &p in &points[..100_000] {
                interior +=
                    usize::from(black_box(assigner.assign_exact(p)).method == Method::Interior);
            }
            interior
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
