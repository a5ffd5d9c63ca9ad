//! loom models of the condition variable with the robust mutex: producer/consumer on a flag
//! under the mutex, the waiter looping on its predicate. A lost wake-up is a loom deadlock (the
//! futex model in `sync`).
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --test loom_condvar`.
//! Mutation checks (.ci/loom): `MPK_MUTANT=cond_no_wake` (notify wakes nobody) and
//! `MPK_MUTANT=cond_late_seq` (the waiter reads the sequence after releasing the mutex) must
//! make `consumer_sees_the_flag` deadlock.
#![allow(clippy::multiple_unsafe_ops_per_block)] // tests group C-style calls
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;
use mpkit::sync::loom_model::die;
use mpkit::{Acquired, Deadline, Error, RawCondvar, RawMutex};

struct Shared {
    lock: RawMutex,
    cond: RawCondvar,
    /// Items produced and not yet consumed; only touched under `lock`.
    items: UnsafeCell<u32>,
}

// SAFETY: `items` is only accessed while holding `lock`.
unsafe impl Sync for Shared {}

fn shared() -> Arc<Shared> {
    Arc::new(Shared { lock: RawMutex::new(), cond: RawCondvar::new(), items: UnsafeCell::new(0) })
}

/// Takes one item, waiting on the condition variable while there is none.
fn consume(s: &Shared) {
    assert_eq!(s.lock.lock_until(Deadline::FOREVER), Ok(Acquired::Locked));
    // SAFETY: we hold the lock (re-taken by every wait).
    while s.items.with(|v| unsafe { *v }) == 0 {
        s.cond.wait_raw_until(&s.lock, Deadline::FOREVER).unwrap();
    }
    // SAFETY: as above.
    s.items.with_mut(|v| unsafe { *v -= 1 });
    s.lock.unlock().unwrap();
}

fn produce(s: &Shared) {
    assert_eq!(s.lock.lock_until(Deadline::FOREVER), Ok(Acquired::Locked));
    // SAFETY: we hold the lock.
    s.items.with_mut(|v| unsafe { *v += 1 });
    s.cond.notify(1);
    s.lock.unlock().unwrap();
}

/// One consumer, one producer: the consumer must see the item and never sleep forever.
#[test]
fn consumer_sees_the_flag() {
    loom::model(|| {
        let s = shared();
        let s1 = s.clone();
        let consumer = thread::spawn(move || consume(&s1));
        produce(&s);
        consumer.join().unwrap();
        // SAFETY: the consumer joined; nobody else touches `items`.
        assert_eq!(s.items.with(|v| unsafe { *v }), 0);
    });
}

/// Two consumers, two items, each notify for one: both consumers finish (notify(1) may release
/// both, but never none).
#[test]
fn two_consumers_two_items() {
    loom::model(|| {
        let s = shared();
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let s = s.clone();
                thread::spawn(move || consume(&s))
            })
            .collect();
        produce(&s);
        produce(&s);
        for c in consumers {
            c.join().unwrap();
        }
    });
}

/// The mutex owner dies while the other thread waits on the condition variable: the waiter
/// re-takes the mutex with `OwnerDead` (or got it normally, if the death came first) and holds it.
#[test]
fn waiter_inherits_the_dead_owners_mutex() {
    loom::model(|| {
        let s = shared();
        let s1 = s.clone();
        let waiter = thread::spawn(move || {
            let r = match s1.lock.lock_until(Deadline::FOREVER) {
                Ok(Acquired::Locked) => s1.cond.wait_raw_until(&s1.lock, Deadline::FOREVER),
                other => other.map(|_| ()).and(Err(Error::OwnerDead)), // came after the death
            };
            if r == Err(Error::OwnerDead) {
                s1.lock.consistent().unwrap();
            }
            s1.lock.unlock().unwrap();
            r
        });
        // Locks (maybe before the waiter does, maybe while it waits), notifies, dies holding it.
        assert!(s.lock.lock_until(Deadline::FOREVER).is_ok());
        s.cond.notify_all();
        die();
        let r = waiter.join().unwrap();
        assert!(r == Ok(()) || r == Err(Error::OwnerDead), "waiter got {r:?}");
    });
}
