//! loom models of the robust mutex: mutual exclusion with publication of the protected data,
//! no lost wake-up (a missed wake is a loom deadlock, through the futex model in `sync`), and
//! owner death handled by the kernel's robust-list cleanup (`loom_model::die`).
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --test loom_mutex`.
//! Mutation checks (.ci/loom-mutants): `MPK_MUTANT=mutex_no_wake | mutex_relaxed_unlock |
//! mutex_relaxed_lock` must make `contended_increments` fail.
#![allow(clippy::multiple_unsafe_ops_per_block)] // tests group C-style calls
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;
use mpkit::sync::loom_model::die;
use mpkit::{Acquired, Deadline, Error, RawMutex};

struct Counter {
    lock: RawMutex,
    value: UnsafeCell<u32>,
}

// SAFETY: `value` is only accessed while holding `lock`.
unsafe impl Sync for Counter {}

fn bump(c: &Counter) {
    assert_eq!(c.lock.lock_until(Deadline::FOREVER), Ok(Acquired::Locked));
    // SAFETY: we hold the lock; loom checks that no other access is concurrent with this one.
    c.value.with_mut(|v| unsafe { *v += 1 });
    c.lock.unlock().unwrap();
}

/// Three threads increment under the lock; every increment must be visible and nobody may sleep
/// forever.
#[test]
fn contended_increments() {
    loom::model(|| {
        let c = Arc::new(Counter { lock: RawMutex::new(), value: UnsafeCell::new(0) });
        let ts: Vec<_> = (0..2)
            .map(|_| {
                let c = c.clone();
                thread::spawn(move || bump(&c))
            })
            .collect();
        bump(&c);
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(c.lock.lock_until(Deadline::NOW), Ok(Acquired::Locked));
        // SAFETY: all other threads joined; we hold the lock.
        assert_eq!(c.value.with(|v| unsafe { *v }), 3);
    });
}

/// A thread dies holding the lock while another may already sleep on it: the other must get
/// the lock with `OwnerDied` (never hang), and after `consistent` the lock is normal again.
#[test]
fn owner_death_wakes_the_next_locker() {
    loom::model(|| {
        let m = Arc::new(RawMutex::new());
        let m1 = m.clone();
        let dier = thread::spawn(move || {
            assert_eq!(m1.lock_until(Deadline::FOREVER), Ok(Acquired::Locked));
            die();
        });
        let m2 = m.clone();
        let waiter = thread::spawn(move || match m2.lock_until(Deadline::FOREVER) {
            Ok(Acquired::OwnerDied) => {
                m2.consistent().unwrap();
                m2.unlock().unwrap();
                true
            }
            Ok(Acquired::Locked) => {
                m2.unlock().unwrap();
                false
            }
            Err(e) => panic!("waiter got {e:?}"),
        });
        dier.join().unwrap();
        let waiter_saw_death = waiter.join().unwrap();
        // Either the waiter came after the death (and repaired it) or before the dier locked.
        let expect = if waiter_saw_death { Acquired::Locked } else { Acquired::OwnerDied };
        assert_eq!(m.lock_until(Deadline::NOW), Ok(expect));
    });
}

/// Unlocking after `OwnerDied` without `consistent` poisons the lock for everyone, sleepers
/// included: of two lockers, one inherits the dead lock and releases it unrepaired, the other
/// (asleep or not) must then get `NotRecoverable`.
#[test]
fn unlock_without_consistent_is_not_recoverable() {
    loom::model(|| {
        let m = Arc::new(RawMutex::new());
        assert_eq!(m.lock_until(Deadline::FOREVER), Ok(Acquired::Locked));
        let lockers: Vec<_> = (0..2)
            .map(|_| {
                let m = m.clone();
                thread::spawn(move || {
                    let r = m.lock_until(Deadline::FOREVER);
                    if r == Ok(Acquired::OwnerDied) {
                        m.unlock().unwrap(); // without consistent()
                    }
                    r
                })
            })
            .collect();
        die(); // the main thread "dies" holding the lock
        let mut outcomes: Vec<_> = lockers.into_iter().map(|t| t.join().unwrap()).collect();
        outcomes.sort_by_key(|r| r.is_err());
        assert_eq!(outcomes, [Ok(Acquired::OwnerDied), Err(Error::NotRecoverable)]);
    });
}
