//! Criterion: the robust mutex, uncontended (raw and guard), busy try-lock, and two threads
//! contending (per-pair time measured with `iter_custom`).

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use mpkit::{Deadline, RawMutex};

fn uncontended(c: &mut Criterion) {
    let m = RawMutex::new();
    c.bench_function("mutex/uncontended_raw", |b| {
        b.iter(|| {
            let _ = black_box(m.lock_until(Deadline::FOREVER));
            let _ = m.unlock();
        })
    });
    c.bench_function("mutex/uncontended_guard", |b| b.iter(|| drop(black_box(m.lock()))));
}

fn busy_try_lock(c: &mut Criterion) {
    let m = RawMutex::new();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        let m = &m;
        s.spawn(move || {
            let _held = m.lock().unwrap();
            locked_tx.send(()).unwrap();
            done_rx.recv().unwrap();
        });
        locked_rx.recv().unwrap();
        c.bench_function("mutex/try_lock_busy", |b| b.iter(|| black_box(m.lock_until(Deadline::NOW))));
        done_tx.send(()).unwrap();
    });
}

fn two_threads(c: &mut Criterion) {
    let m = RawMutex::new();
    c.bench_function("mutex/2thread_contended_per_pair", |b| {
        b.iter_custom(|iters| {
            let barrier = Barrier::new(2);
            std::thread::scope(|s| {
                let other = s.spawn(|| {
                    barrier.wait();
                    for _ in 0..iters {
                        drop(m.lock());
                    }
                });
                barrier.wait();
                let t0 = Instant::now();
                for _ in 0..iters {
                    drop(m.lock());
                }
                other.join().unwrap();
                t0.elapsed() / 2
            })
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    targets = uncontended, busy_try_lock, two_threads
}
criterion_main!(benches);
