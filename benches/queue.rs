//! Criterion: queue and pipe costs inside one process. Cross-process figures beside the
//! alternatives come from `mpkit-bench` (`benches/anchors.sh`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mpkit::{Queue, pipe};

fn queue(c: &mut Criterion) {
    let q = Queue::<u64>::new(1024).unwrap();
    c.bench_function("queue/put_get_same_thread", |b| {
        b.iter(|| {
            q.put(black_box(7)).unwrap();
            black_box(q.get().unwrap())
        })
    });
    let mut out = [0u64; 32];
    let items = [1u64; 32];
    let mut g = c.benchmark_group("queue");
    g.throughput(Throughput::Elements(32));
    g.bench_function("put_many_get_many_32", |b| {
        b.iter(|| {
            q.put_many(&items).unwrap();
            black_box(q.get_many(&mut out).unwrap())
        })
    });
    g.finish();
    c.bench_function("queue/1p1c_threads_per_msg", |b| {
        b.iter_custom(|iters| {
            std::thread::scope(|s| {
                let t0 = Instant::now();
                s.spawn(|| {
                    for i in 0..iters {
                        q.put(i).unwrap();
                    }
                });
                for _ in 0..iters {
                    black_box(q.get().unwrap());
                }
                t0.elapsed()
            })
        })
    });
}

fn pipes(c: &mut Criterion) {
    let (mut a, mut b) = pipe(true).unwrap();
    let mut buf = [0u8; 64];
    c.bench_function("pipe/send_recv_64B_same_thread", |bench| {
        bench.iter(|| {
            a.send(black_box(&[1u8; 64])).unwrap();
            black_box(b.recv(&mut buf).unwrap())
        })
    });
    c.bench_function("pipe/pingpong_threads_rtt", |bench| {
        bench.iter_custom(|iters| {
            std::thread::scope(|s| {
                let (a, b) = (&mut a, &mut b);
                s.spawn(move || {
                    let mut buf = [0u8; 8];
                    for _ in 0..iters {
                        b.recv(&mut buf).unwrap();
                        b.send(&buf).unwrap();
                    }
                });
                let mut buf = [0u8; 8];
                let t0 = Instant::now();
                for i in 0..iters {
                    a.send(&i.to_le_bytes()).unwrap();
                    a.recv(&mut buf).unwrap();
                }
                t0.elapsed()
            })
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    targets = queue, pipes
}
criterion_main!(benches);
