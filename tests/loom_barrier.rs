//! loom models of the barrier: rounds release every party with distinct indices and publish
//! each party's writes to the others; a fast party re-entering the next round is not confused
//! with the round its peers still leave; reset breaks the waiters and leaves a usable barrier; a
//! timed-out wait breaks it for all. A lost wake-up is a loom deadlock (futex model in `sync`).
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --test loom_barrier`.
//! Mutation checks (.ci/loom): `MPK_MUTANT=barrier_no_wake` (the last party wakes nobody) and
//! `MPK_MUTANT=barrier_no_generation` (waiters look at the count, not the generation) must make
//! `two_parties_two_rounds` deadlock.
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;
use mpkit::{Deadline, Error, RawBarrier};

struct Shared {
    barrier: RawBarrier,
    /// `slots[r % 2][i]` is written by party `i` before its wait of round `r`, read by the
    /// others after that wait (two sets: a party may write round `r + 1`'s slot while the others
    /// still read round `r`'s).
    slots: [[UnsafeCell<u32>; 3]; 2],
}

// SAFETY: each slot is written by one party before a wait and read by the others after it; it is
// written again two rounds later, after they have all arrived at the round in between (loom
// checks this).
unsafe impl Sync for Shared {}

fn shared(parties: u32) -> Arc<Shared> {
    Arc::new(Shared { barrier: RawBarrier::new(parties).unwrap(), slots: Default::default() })
}

/// Party `me` of `n`, for `rounds` rounds: writes its slot, waits, checks the others' slots.
/// Returns its index per round.
fn party(s: &Shared, me: usize, n: usize, rounds: u32) -> Vec<u32> {
    (1..=rounds)
        .map(|round| {
            let slots = &s.slots[round as usize % 2];
            // SAFETY: see the `Sync` impl.
            slots[me].with_mut(|v| unsafe { *v = round });
            let index = s.barrier.wait_until(Deadline::FOREVER).unwrap();
            for other in (0..n).filter(|&o| o != me) {
                // SAFETY: see the `Sync` impl.
                let seen = slots[other].with(|v| unsafe { *v });
                assert_eq!(seen, round, "party {other}'s round-{round} write not visible");
            }
            index
        })
        .collect()
}

fn check_rounds(per_party: &[Vec<u32>], n: usize) {
    for round in 0..per_party[0].len() {
        let mut got: Vec<u32> = per_party.iter().map(|p| p[round]).collect();
        got.sort();
        assert_eq!(got, (0..n as u32).collect::<Vec<_>>(), "round {round}: indices not a permutation");
    }
}

#[test]
fn two_parties_two_rounds() {
    loom::model(|| {
        let s = shared(2);
        let s1 = s.clone();
        let other = thread::spawn(move || party(&s1, 1, 2, 2));
        let mine = party(&s, 0, 2, 2);
        check_rounds(&[mine, other.join().unwrap()], 2);
    });
}

#[test]
fn three_parties_one_round() {
    loom::model(|| {
        let s = shared(3);
        let others: Vec<_> = (1..3)
            .map(|me| {
                let s = s.clone();
                thread::spawn(move || party(&s, me, 3, 1))
            })
            .collect();
        let mut all = vec![party(&s, 0, 3, 1)];
        all.extend(others.into_iter().map(|t| t.join().unwrap()));
        check_rounds(&all, 3);
    });
}

/// A reset while a party waits: it gets `Broken`; then the barrier works again for both.
#[test]
fn reset_breaks_the_waiter_then_works() {
    loom::model(|| {
        let b = Arc::new(RawBarrier::new(2).unwrap());
        let b1 = b.clone();
        let waiter = thread::spawn(move || {
            let first = b1.wait_until(Deadline::FOREVER);
            (first, b1.wait_until(Deadline::FOREVER))
        });
        while b.n_waiting() == 0 {
            thread::yield_now();
        }
        b.reset();
        let mine = b.wait_until(Deadline::FOREVER).unwrap();
        let (first, second) = waiter.join().unwrap();
        assert_eq!(first, Err(Error::Broken));
        assert_eq!(mine + second.unwrap(), 1, "indices of the round after the reset");
    });
}

/// A party whose wait times out (in loom a timed wait expires at its first sleep) breaks the
/// barrier: the other gets `Broken`, unless the round completed first.
#[test]
fn timeout_breaks_the_barrier() {
    loom::model(|| {
        let b = Arc::new(RawBarrier::new(2).unwrap());
        let b1 = b.clone();
        let impatient = thread::spawn(move || b1.wait_until(Deadline::after(std::time::Duration::from_millis(1))));
        let patient = b.wait_until(Deadline::FOREVER);
        match (impatient.join().unwrap(), patient) {
            (Err(Error::Timeout), Err(Error::Broken)) => assert!(b.broken()),
            (Ok(i), Ok(j)) => assert_eq!(i + j, 1),
            other => panic!("unexpected outcome {other:?}"),
        }
    });
}
