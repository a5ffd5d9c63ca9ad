//! loom model of the event: `set` wakes every waiter, sleeping or about to sleep (a missed wake
//! is a loom deadlock, through the futex model in `sync`), and what the setter wrote before `set`
//! is visible to each waiter after its wait.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --test loom_event`.
//! Mutation check (.ci/loom): `MPK_MUTANT=event_no_wake` must make `set_wakes_every_waiter` deadlock.
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;
use mpkit::{Deadline, Error, RawEvent};

struct Shared {
    event: RawEvent,
    data: UnsafeCell<u32>,
}

// SAFETY: `data` is written before `set` and read only after a successful wait.
unsafe impl Sync for Shared {}

/// Two waiters and a setter: both waiters return, and see the data.
#[test]
fn set_wakes_every_waiter() {
    loom::model(|| {
        let s = Arc::new(Shared { event: RawEvent::new(), data: UnsafeCell::new(0) });
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let s = s.clone();
                thread::spawn(move || {
                    s.event.wait_until(Deadline::FOREVER).unwrap();
                    // SAFETY: written before `set`, which our wait observed (loom checks this).
                    s.data.with(|d| unsafe { *d })
                })
            })
            .collect();
        // SAFETY: no waiter reads before the event is set.
        s.data.with_mut(|d| unsafe { *d = 42 });
        s.event.set();
        for w in waiters {
            assert_eq!(w.join().unwrap(), 42);
        }
        assert!(s.event.is_set());
    });
}

/// A clear between waits: a waiter that comes after the clear times out (in loom, a timed wait
/// expires at once), one that came before the clear may have returned; then a second set wakes it.
#[test]
fn clear_then_set_again() {
    loom::model(|| {
        let e = Arc::new(RawEvent::new());
        let e1 = e.clone();
        let waiter = thread::spawn(move || e1.wait_until(Deadline::FOREVER));
        e.set();
        e.clear();
        assert_eq!(e.wait_until(Deadline::NOW), Err(Error::Timeout));
        e.set();
        assert_eq!(waiter.join().unwrap(), Ok(()));
    });
}
