//! loom models of the counting semaphore: no lost wake-up when permits are handed between
//! sleeping acquirers (a missed wake is a loom deadlock, through the futex model in `sync`),
//! a release publishes what was written before it, and never more holders than permits.
//!
//! Run: `RUSTFLAGS="--cfg loom -C debug-assertions" LOOM_MAX_PREEMPTIONS=2 cargo test --release
//! --target-dir target/loom --test loom_semaphore` (0.7 s here; 8 s with bound 3). Mutation checks
//! (.ci/loom): `MPK_MUTANT=sem_no_wake`, `sem_no_pass_on` and `sem_forget_waiters` must make
//! `two_sleepers_two_releases` deadlock,
//! `sem_relaxed_release` must make `release_publishes` fail with a causality violation.
#![allow(clippy::multiple_unsafe_ops_per_block)] // tests group C-style calls
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicU32, Ordering};
use loom::thread;
use mpkit::{Deadline, RawSemaphore};

/// Two threads block on an empty semaphore; the main thread releases twice. Both must get a
/// permit (whoever sleeps must be woken), and none is left over.
#[test]
fn two_sleepers_two_releases() {
    loom::model(|| {
        let s = Arc::new(RawSemaphore::new(0, 0).unwrap());
        let ts: Vec<_> = (0..2)
            .map(|_| {
                let s = s.clone();
                thread::spawn(move || s.acquire_until(Deadline::FOREVER).unwrap())
            })
            .collect();
        s.release().unwrap();
        s.release().unwrap();
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(s.value(), 0);
    });
}

struct Signal {
    sem: RawSemaphore,
    data: UnsafeCell<u32>,
}

// SAFETY: `data` is written before the release and read after the matching acquire.
unsafe impl Sync for Signal {}

/// A semaphore at 0 used as a signal: the data written before the release is seen after the
/// acquire.
#[test]
fn release_publishes() {
    loom::model(|| {
        let s = Arc::new(Signal { sem: RawSemaphore::new(0, 1).unwrap(), data: UnsafeCell::new(0) });
        let s1 = s.clone();
        let waiter = thread::spawn(move || {
            s1.sem.acquire_until(Deadline::FOREVER).unwrap();
            // SAFETY: the release below happened before this acquire returned.
            s1.data.with(|d| unsafe { *d })
        });
        // SAFETY: the waiter reads only after acquiring, which needs the release below.
        s.data.with_mut(|d| unsafe { *d = 42 });
        s.sem.release().unwrap();
        assert_eq!(waiter.join().unwrap(), 42);
    });
}

/// One permit, three users: never two inside at once, and every user gets in.
#[test]
fn one_permit_excludes() {
    loom::model(|| {
        let s = Arc::new(RawSemaphore::new(1, 1).unwrap());
        let inside = Arc::new(AtomicU32::new(0));
        let enter = |s: &RawSemaphore, inside: &AtomicU32| {
            let permit = s.acquire().unwrap();
            assert_eq!(inside.fetch_add(1, Ordering::Relaxed), 0, "two holders of one permit");
            inside.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        };
        let ts: Vec<_> = (0..2)
            .map(|_| {
                let (s, inside) = (s.clone(), inside.clone());
                thread::spawn(move || enter(&s, &inside))
            })
            .collect();
        enter(&s, &inside);
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(s.value(), 1);
    });
}
