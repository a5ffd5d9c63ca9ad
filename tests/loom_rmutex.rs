//! loom models of the recursive robust mutex: recursion levels keep the lock held until the last
//! unlock (mutual exclusion across levels, no lost wake-up), and a dead owner's depth is void.
//!
//! Run: `RUSTFLAGS="--cfg loom -C debug-assertions" LOOM_MAX_PREEMPTIONS=2 cargo test --release
//! --target-dir target/loom --test loom_rmutex` (0.01 s here). Mutation checks (.ci/loom):
//! `MPK_MUTANT=rmutex_ignore_depth` must make `nested_increments` fail, `rmutex_keep_dead_depth`
//! must make `dead_owner_depth_is_reset` fail.
#![allow(clippy::multiple_unsafe_ops_per_block)] // tests group C-style calls
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;
use mpkit::sync::loom_model::die;
use mpkit::{Acquired, Deadline, RawRMutex};

struct Counter {
    lock: RawRMutex,
    value: UnsafeCell<u32>,
}

// SAFETY: `value` is only accessed while holding `lock`.
unsafe impl Sync for Counter {}

/// Two levels: the data stays protected after the inner unlock.
fn bump_nested(c: &Counter) {
    assert_eq!(c.lock.lock_until(Deadline::FOREVER), Ok(Acquired::Locked));
    assert_eq!(c.lock.lock_until(Deadline::FOREVER), Ok(Acquired::Locked));
    // SAFETY: we hold the lock; loom checks that no other access is concurrent with this one.
    c.value.with_mut(|v| unsafe { *v += 1 });
    c.lock.unlock().unwrap();
    // SAFETY: still held at depth 1.
    c.value.with_mut(|v| unsafe { *v += 1 });
    assert_eq!(c.lock.unlock(), Ok(()), "the outer level was released by the inner unlock");
}

/// Two threads take the lock twice each and increment at both depths; every increment must be
/// visible, nobody may sleep forever, and the lock is free at the end.
#[test]
fn nested_increments() {
    loom::model(|| {
        let c = Arc::new(Counter { lock: RawRMutex::new(), value: UnsafeCell::new(0) });
        let c1 = c.clone();
        let t = thread::spawn(move || bump_nested(&c1));
        bump_nested(&c);
        t.join().unwrap();
        assert_eq!(c.lock.lock_until(Deadline::NOW), Ok(Acquired::Locked));
        assert_eq!(c.lock.depth(), 1);
        // SAFETY: the other thread joined; we hold the lock.
        assert_eq!(c.value.with(|v| unsafe { *v }), 4);
    });
}

/// A thread dies holding the lock at depth 2 while another may already sleep on it: the other
/// gets it with `OwnerDied` at depth 1, so one unlock (after `consistent`) frees it.
#[test]
fn dead_owner_depth_is_reset() {
    loom::model(|| {
        let m = Arc::new(RawRMutex::new());
        let m1 = m.clone();
        let dier = thread::spawn(move || {
            assert_eq!(m1.lock_until(Deadline::FOREVER), Ok(Acquired::Locked));
            assert_eq!(m1.lock_until(Deadline::FOREVER), Ok(Acquired::Locked));
            die();
        });
        let m2 = m.clone();
        let heir = thread::spawn(move || match m2.lock_until(Deadline::FOREVER) {
            Ok(Acquired::OwnerDied) => {
                assert_eq!(m2.depth(), 1, "the dead owner's depth was inherited");
                m2.consistent().unwrap();
                m2.unlock().unwrap();
                true
            }
            Ok(Acquired::Locked) => {
                m2.unlock().unwrap();
                false
            }
            Err(e) => panic!("heir got {e:?}"),
        });
        dier.join().unwrap();
        let heir_saw_death = heir.join().unwrap();
        let expect = if heir_saw_death { Acquired::Locked } else { Acquired::OwnerDied };
        assert_eq!(m.lock_until(Deadline::NOW), Ok(expect));
        assert_eq!(m.depth(), 1, "the dead owner's depth was inherited");
    });
}
