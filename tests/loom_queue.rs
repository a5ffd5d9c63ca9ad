//! loom models of the MPMC ring: the slot protocol with try-operations (each message exactly
//! once, FIFO per producer), and the sleep/wake protocol with blocking calls and close (a lost
//! wake-up is a loom deadlock, through the futex model in `sync`).
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --test loom_queue`.
//! Mutation checks (.ci/loom): `MPK_MUTANT=queue_no_wake` must deadlock `blocking_1p1c_wakes`;
//! `queue_relaxed_publish` must make `try_1p2c` report a causality violation;
//! `queue_close_no_recheck` must make `close_after_put_drains_first` lose the message;
//! `queue_no_repair` and `queue_no_settle` must make the dying-thread models wait forever.
//!
//! Peer death: a thread "dies" at a named point of the protocol (`loom_model::die_at`): the
//! kernel's robust-list cleanup is replayed (its pending slot or index word is marked
//! `FUTEX_OWNER_DIED`) and it does nothing more. The models kill a producer at every point
//! between its claim and its publish, and a consumer at every point between claim and free.
//!
//! Slots hold their lap as stamp (all-zero = free for lap 0); `ring` builds them with `init`,
//! the same stamps that `init_zeroed` leaves as zero bytes, and the capacity-1 and -2 models wrap
//! so every stamp transition (free, published, released for the next lap) is exercised.
#![cfg(loom)]

use std::ptr::NonNull;

use loom::thread;
use mpkit::sync::loom_model;
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

/// Two producers, one consumer, capacity 2: every message put arrives exactly once. The
/// producers try a bounded number of times (a producer may wait for the other to cover its
/// claim, and two threads spinning on yields can starve a third in loom's schedules); the
/// consumer takes what it finds meanwhile, then the rest.
#[test]
fn try_2p1c() {
    loom::model(|| {
        let q = ring(2);
        let ps: Vec<_> = [1u64, 2].into_iter().map(|v| thread::spawn(move || try_put_a_few(q, v))).collect();
        let mut buf = [0u8; 8];
        let mut got = Vec::new();
        for _ in 0..2 {
            if q.try_get(&mut buf) == Ok(8) {
                got.push(u64::from_le_bytes(buf));
            }
        }
        let put: Vec<u64> = ps.into_iter().filter_map(|p| p.join().unwrap()).collect();
        while got.len() < put.len() {
            got.push(get_spin(q));
        }
        got.sort();
        assert_eq!(got, put);
        assert!(q.is_empty());
    });
}

fn try_put_a_few(q: QueueRef<'_>, v: u64) -> Option<u64> {
    for _ in 0..3 {
        match q.try_put(&v.to_le_bytes()) {
            Ok(()) => return Some(v),
            Err(Error::Timeout) => thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    }
    None
}

/// Runs `op` in a thread that dies at death point `at` (the kernel's cleanup runs, the thread
/// does nothing more); true if it died there.
fn dies_at(at: &'static str, op: impl FnOnce()) -> bool {
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<loom_model::Died>().is_none() {
                report(info);
            }
        }));
    });
    loom_model::die_at(at);
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(op)) {
        Ok(()) => false,
        Err(e) if e.downcast_ref::<loom_model::Died>().is_some() => true,
        Err(e) => std::panic::resume_unwind(e), // a real panic, or loom ending the thread
    }
}

/// The points between claim and publish where a producer may die (`mpmc.rs` names them).
const PUT_POINTS: [&str; 5] = ["put: claimed", "put: named", "put: pending", "put: written", "put: published"];
/// The points between claim and free where a consumer may die.
const GET_POINTS: [&str; 5] = ["get: claimed", "get: named", "get: pending", "get: read", "get: freed"];

/// A producer dies at each point between its claim and its publish while a consumer waits in a
/// blocking get; then another producer puts (after the death: two threads spinning on yields
/// can starve a third in loom's schedules, and the live producer may wait for the dying one to
/// name itself in its slot). The consumer gets the live producer's message (a dead writer's
/// slot is discarded, one it never covered is settled first), the dead one's only if it was
/// published, nothing twice; the repair is counted. Mutation checks: without the repair
/// (`queue_no_repair`) or the settling (`queue_no_settle`, at `put: claimed`) the consumer waits
/// at the dead slot forever (in re-check ticks: loom's branch limit).
#[test]
fn a_dying_producer_loses_only_its_own_message() {
    for at in PUT_POINTS {
        loom::model(move || {
            let q = ring(2);
            let a = thread::spawn(move || dies_at(at, || q.put(&100u64.to_le_bytes(), Deadline::FOREVER).unwrap()));
            let c = thread::spawn(move || {
                let mut buf = [0u8; 8];
                let mut got = Vec::new();
                while !got.contains(&1) {
                    assert_eq!(q.get(&mut buf, Deadline::FOREVER), Ok(8));
                    got.push(u64::from_le_bytes(buf));
                }
                got
            });
            assert!(a.join().unwrap(), "the producer did not reach {at}");
            q.put(&1u64.to_le_bytes(), Deadline::FOREVER).unwrap();
            let mut got = c.join().unwrap();
            let mut buf = [0u8; 8];
            while let Ok(8) = q.try_get(&mut buf) {
                got.push(u64::from_le_bytes(buf));
            }
            got.sort();
            let published = at == "put: published";
            assert_eq!(got, if published { vec![1, 100] } else { vec![1] }, "died at {at}");
            assert_eq!(q.repairs().dead_writers, u64::from(!published), "died at {at}");
            assert_eq!(q.repairs().dead_readers, 0);
        });
    }
}

/// A consumer dies at each point between its claim and its free, holding the one slot of a
/// full ring, while a producer waits to put: the producer takes the slot back (after settling
/// a claim the reader never covered) and its message reaches the next consumer; the dead
/// reader's message is lost, counted as a repair and as done. Mutation checks: without the
/// repair or the settling the producer waits forever (ticks: loom's branch limit).
#[test]
fn a_dying_consumer_loses_only_the_message_it_held() {
    for at in GET_POINTS {
        loom::model(move || {
            let q = ring(1);
            q.try_put(&1u64.to_le_bytes()).unwrap();
            let c = thread::spawn(move || {
                dies_at(at, || {
                    let _ = q.get(&mut [0u8; 8], Deadline::FOREVER);
                })
            });
            let p = thread::spawn(move || q.put(&2u64.to_le_bytes(), Deadline::FOREVER).unwrap());
            assert!(c.join().unwrap(), "the consumer did not reach {at}");
            let mut buf = [0u8; 8];
            assert_eq!(q.get(&mut buf, Deadline::FOREVER), Ok(8));
            assert_eq!(u64::from_le_bytes(buf), 2, "died at {at}");
            p.join().unwrap();
            let freed = at == "get: freed";
            assert_eq!(q.repairs().dead_readers, u64::from(!freed), "died at {at}");
            // Both messages are done: the lost one by the repair (or never: the reader freed
            // it), the delivered one by us.
            q.task_done().unwrap();
            if freed {
                q.task_done().unwrap();
            }
            assert_eq!(q.join(Deadline::NOW), Ok(()));
        });
    }
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
