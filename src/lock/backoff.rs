//! Spinning before sleeping: exponential `pause` spins, then yields (after crossbeam's Backoff);
//! and the rings' adaptive spin, whose budget lives in shared memory.

use crate::sync::{AtomicU32, Ordering, spin_hint, yield_now};

/// Bounds of an adaptive spin budget (`pause` hints).
const ADAPTIVE_MIN: u32 = if cfg!(loom) { 1 } else { 64 };
const ADAPTIVE_MAX: u32 = if cfg!(loom) { 1 } else { 1 << 14 };
/// A fresh ring's budget.
pub(crate) const ADAPTIVE_INITIAL: u32 = ADAPTIVE_MIN * 16;

/// Steps that spin `2^step` hints before the backoff starts yielding.
const SPIN_STEPS: u32 = 6;
/// Steps after which a waiter should stop retrying and sleep. Under loom at once: every spin is
/// a scheduling point there, and the models check the sleeping protocol.
const YIELD_STEPS: u32 = if cfg!(loom) { 0 } else { 10 };

/// One waiter's backoff state.
pub(crate) struct Backoff {
    step: u32,
}

impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff { step: 0 }
    }

    /// Waits a little, a little longer each time: spins, and yields once spinning has not helped.
    pub(crate) fn snooze(&mut self) {
        if self.step <= SPIN_STEPS {
            for _ in 0..1u32 << self.step {
                spin_hint();
            }
        } else {
            yield_now();
        }
        if self.step <= YIELD_STEPS {
            self.step += 1;
        }
    }

    /// True once the caller has backed off long enough that sleeping is the better choice.
    pub(crate) fn is_completed(&self) -> bool {
        self.step > YIELD_STEPS
    }
}

/// Spins up to the budget in `budget`, in growing rounds (1, 2, 4 .. `round_max` hints between
/// looks): a waiter that looks after every hint keeps pulling the cache line the other side must
/// own to make progress, while one that looks less often lets it get ahead and then takes a run.
/// Returns what `poll` found, if anything. A spin that succeeds grows the budget by half, one
/// that fails halves it, so rings whose waits are long stop burning CPU on them.
pub(crate) fn adaptive_spin<R>(budget: &AtomicU32, round_max: u32, mut poll: impl FnMut() -> Option<R>) -> Option<R> {
    let limit = budget.load(Ordering::Relaxed).clamp(ADAPTIVE_MIN, ADAPTIVE_MAX);
    let (mut spent, mut round) = (0, 1);
    while spent < limit {
        for _ in 0..round {
            spin_hint();
        }
        spent += round;
        round = (round * 2).min(round_max);
        if let Some(r) = poll() {
            budget.store((limit + limit / 2).min(ADAPTIVE_MAX), Ordering::Relaxed);
            return Some(r);
        }
    }
    budget.store((limit / 2).max(ADAPTIVE_MIN), Ordering::Relaxed);
    None
}
