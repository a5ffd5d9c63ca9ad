//! Criterion: the pool's round trip and its per-item cost on tiny tasks.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mpkit::{Pool, PoolOptions};

fn square(x: u64) -> u64 {
    x.wrapping_mul(x)
}

fn pool2() -> Pool {
    // SAFETY: criterion has started no threads when the pool forks its supervisor; the tasks are
    // plain functions of this binary.
    unsafe { Pool::new(&PoolOptions { workers: 2, ..PoolOptions::default() }) }.unwrap()
}

fn apply(c: &mut Criterion) {
    let p = pool2();
    let mut i = 0u64;
    c.bench_function("pool/apply_rtt", |b| {
        b.iter(|| {
            i += 1;
            assert_eq!(p.apply(square, i), Ok(square(i)));
        })
    });
    c.bench_function("pool/apply_async_get_rtt", |b| {
        b.iter(|| {
            i += 1;
            assert_eq!(p.apply_async(square, i).unwrap().get(), Ok(square(i)));
        })
    });
}

fn map(c: &mut Criterion) {
    let p = pool2();
    let items: Vec<u64> = (0..100_000).collect();
    let mut g = c.benchmark_group("pool");
    g.throughput(Throughput::Elements(items.len() as u64));
    g.bench_function("map_square_100k", |b| {
        b.iter(|| {
            let r = p.map(square, &items).unwrap();
            assert_eq!(r[99_999], square(99_999));
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(3));
    targets = apply, map
}
criterion_main!(benches);
