//! loom models of the MPMC ring: the slot protocol with try-operations (each message exactly
//! once, FIFO per producer), and the sleep/wake protocol with blocking calls and close (a lost
//! wake-up is a loom deadlock, through the futex model in `sync`).
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --test loom_queue`.
//! Mutation checks (.ci/loom): `MPK_MUTANT=queue_no_wake` must deadlock `blocking_1p1c_wakes`;
//! `queue_relaxed_publish` must make `try_2p1c` report a causality violation;
//! `queue_close_no_recheck` must make `close_after_put_drains_first` lose the message.
//!
//! Slots hold their lap as stamp (all-zero = free for lap 0); `ring` builds them with `init`,
//! the same stamps that `init_zeroed` leaves as zero bytes, and the capacity-1 and -2 models wrap
//! so every stamp transition (free, published, released for the next lap) is exercised.
#![cfg(loom)]

use std::ptr::NonNull;

use loom::thread;
use mpkit::{Deadline, Error, QueueRef};

/// A ring in heap memory that lives as long as the model's threads (leaked per execution).
fn ring(capacity: usize) -> QueueRef<'static> {
    let size = QueueRef::size_for(capacity, 8).unwrap();
    let mem: &'static mut [u64] = Vec::leak(vec![0u64; size.div_ceil(8)]);
    let base = NonNull::new(mem.as_mut_ptr().cast::<u8>()).unwrap();
    // SAFETY: fresh, 8-aligned, large enough, never freed while the model runs.
    unsafe { QueueRef::init(base, size, capacity, 8) }.unwrap()
}

fn put_spin(q: QueueRef<'_>, v: u64) {
    loop {
        match q.try_put(&v.to_le_bytes()) {
            Ok(()) => return,
            Err(Error::Timeout) => thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    }
}

fn get_spin(q: QueueRef<'_>) -> u64 {
    let mut buf = [0u8; 8];
    loop {
        match q.try_get(&mut buf) {
            Ok(8) => return u64::from_le_bytes(buf),
            Ok(n) => panic!("short message {n}"),
            Err(Error::Timeout) => thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    }
}

/// Two producers, one consumer, capacity 2: both messages arrive exactly once.
#[test]
fn try_2p1c() {
    loom::model(|| {
        let q = ring(2);
        let ps: Vec<_> = [1u64, 2].into_iter().map(|v| thread::spawn(move || put_spin(q, v))).collect();
        let mut got = vec![get_spin(q), get_spin(q)];
        for p in ps {
            p.join().unwrap();
        }
        got.sort();
        assert_eq!(got, [1, 2]);
        assert!(q.is_empty());
    });
}

/// One producer, two consumers racing for its two messages (each consumer tries twice, without
/// spinning; the main thread drains what is left): each message exactly once, and a consumer
/// never sees them out of order.
#[test]
fn try_1p2c() {
    loom::model(|| {
        let q = ring(2);
        let p = thread::spawn(move || {
            put_spin(q, 1);
            put_spin(q, 2);
        });
        let cs: Vec<_> = (0..2)
            .map(|_| {
                thread::spawn(move || {
                    let mut mine = Vec::new();
                    let mut buf = [0u8; 8];
                    for _ in 0..2 {
                        match q.try_get(&mut buf) {
                            Ok(_) => mine.push(u64::from_le_bytes(buf)),
                            Err(Error::Timeout) => {}
                            Err(e) => panic!("{e}"),
                        }
                    }
                    mine
                })
            })
            .collect();
        p.join().unwrap();
        let lists: Vec<Vec<u64>> = cs.into_iter().map(|c| c.join().unwrap()).collect();
        for l in &lists {
            assert!(l.windows(2).all(|w| w[0] < w[1]), "out of order: {l:?}");
        }
        let mut all: Vec<u64> = lists.concat();
        while !q.is_empty() {
            all.push(get_spin(q));
        }
        all.sort();
        assert_eq!(all, [1, 2]);
    });
}

/// Blocking put and get on a capacity-1 ring (two messages: it wraps): both sides must sleep at
/// times, and every sleeper must be woken (a missed wake-up is a deadlock).
#[test]
fn blocking_1p1c_wakes() {
    loom::model(|| {
        let q = ring(1);
        let p = thread::spawn(move || {
            for v in 1..=2u64 {
                q.put(&v.to_le_bytes(), Deadline::FOREVER).unwrap();
            }
        });
        let mut buf = [0u8; 8];
        for v in 1..=2u64 {
            assert_eq!(q.get(&mut buf, Deadline::FOREVER), Ok(8));
            assert_eq!(u64::from_le_bytes(buf), v);
        }
        p.join().unwrap();
    });
}

/// `close` wakes a consumer asleep on an empty ring, which then reports `Closed`.
#[test]
fn close_wakes_a_sleeping_consumer() {
    loom::model(|| {
        let q = ring(1);
        let c = thread::spawn(move || {
            let mut buf = [0u8; 8];
            q.get(&mut buf, Deadline::FOREVER)
        });
        q.close();
        assert_eq!(c.join().unwrap(), Err(Error::Closed));
    });
}

/// `join` waits for `task_done` and is woken by it.
#[test]
fn join_wakes_after_task_done() {
    loom::model(|| {
        let q = ring(1);
        q.try_put(&1u64.to_le_bytes()).unwrap();
        let worker = thread::spawn(move || {
            let v = get_spin(q);
            q.task_done().unwrap();
            v
        });
        q.join(Deadline::FOREVER).unwrap();
        assert_eq!(worker.join().unwrap(), 1);
    });
}

/// A put that completed before `close` is still delivered: a consumer that sees the ring closed
/// looks at the head once more before it answers `Closed` (its first look may have been stale).
#[test]
fn close_after_put_drains_first() {
    loom::model(|| {
        let q = ring(1);
        let p = thread::spawn(move || {
            q.put(&7u64.to_le_bytes(), Deadline::FOREVER).unwrap();
            q.close();
        });
        let mut buf = [0u8; 8];
        let first = q.get(&mut buf, Deadline::FOREVER);
        assert_eq!(first, Ok(8), "the message put before close was lost");
        assert_eq!(u64::from_le_bytes(buf), 7);
        assert_eq!(q.get(&mut buf, Deadline::FOREVER), Err(Error::Closed));
        p.join().unwrap();
    });
}

/// A producer claims a slot and stalls before publishing it (as if it died); a consumer blocks
/// at that slot; `close` releases it with `Closed` (it used to wait at the slot forever).
#[test]
fn close_releases_a_getter_behind_an_unpublished_slot() {
    loom::model(|| {
        let q = ring(2);
        let release = std::sync::Arc::new(loom::sync::atomic::AtomicBool::new(false));
        let claimed = std::sync::Arc::new(loom::sync::atomic::AtomicBool::new(false));
        let (r, c) = (release.clone(), claimed.clone());
        let p = thread::spawn(move || {
            let calls = std::cell::Cell::new(0);
            // The first call is the length check before the claim; the second runs between the
            // claim and the publish: stall there until the consumer has its answer.
            let _ = q.put_many(
                1,
                |_| {
                    calls.set(calls.get() + 1);
                    if calls.get() == 2 {
                        c.store(true, loom::sync::atomic::Ordering::Release);
                        while !r.load(loom::sync::atomic::Ordering::Acquire) {
                            thread::yield_now();
                        }
                    }
                    &[1u8; 8][..]
                },
                Deadline::FOREVER,
            );
        });
        while !claimed.load(loom::sync::atomic::Ordering::Acquire) {
            thread::yield_now();
        }
        let cons = thread::spawn(move || {
            let mut buf = [0u8; 8];
            q.get(&mut buf, Deadline::FOREVER)
        });
        q.close();
        assert_eq!(cons.join().unwrap(), Err(Error::Closed));
        release.store(true, loom::sync::atomic::Ordering::Release);
        p.join().unwrap();
    });
}
