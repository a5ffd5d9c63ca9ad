//! Spinning before sleeping: exponential `pause` spins, then yields (after crossbeam's Backoff).

use crate::sync::{spin_hint, yield_now};

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
