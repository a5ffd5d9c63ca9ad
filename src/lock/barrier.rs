//! The barrier (`mpk_barrier`, Python's `multiprocessing.Barrier`): `parties` processes wait
//! until all have arrived, then all go on.
//!
//! # The futex word
//! | bits   | field        | meaning                                                          |
//! |--------|--------------|------------------------------------------------------------------|
//! | 0-15   | `count`      | parties arrived in the current generation                        |
//! | 16-28  | `gen`        | the generation (round), wrapping at 2^13                         |
//! | 29     | `LAST_RESET` | the previous generation ended by `reset` (not by a release)      |
//! | 30     | `BROKEN`     | the current generation is broken (abort, or a wait timed out)    |
//! | 31     | `WAITERS`    | a party may sleep on the word, so whoever ends the round wakes   |
//!
//! An arriving party CASes `count + 1` into the word; its index is the count before it (0 for
//! the first, `parties - 1` for the last, as CPython's `threading.Barrier`). The last one ends the
//! generation instead: it CASes in the next `gen` with `count` 0 and the flags clear, and wakes
//! every sleeper if `WAITERS` was set. The others spin, then set `WAITERS` and futex-wait, until
//! `gen` moves (released) or `BROKEN` appears. Since everything lives in one word, a fast party
//! that re-enters counts in the next generation, never in the one its peers still leave.
//!
//! `abort`, and a wait that times out, set `BROKEN`: every waiter and every later arrival gets
//! `Broken` until `reset`, which moves to the next generation with `LAST_RESET` set, so the
//! parties still waiting in the old one (they count as arrived) learn that it was not released.
//! How older generations ended is kept in `history`, bit `gen % 32`, written by whoever ends the
//! generation after (from its `LAST_RESET`) before its CAS: a party that only looks many rounds
//! later still learns its outcome, unless it sleeps through 32 generations (or a thread about to
//! end one stalls that long), when a reset may read as a release or the other way round.
//!
//! A party that dies while others wait leaves them waiting: with a timeout, the first to time out
//! breaks the barrier for all (a timeout is the cure); with `FOREVER`, they wait forever.

use core::time::Duration;

use crate::error::Error;
use crate::sync::{AtomicU32, Deadline, Ordering, futex_wait, futex_wake, mutant, spin_hint};

const COUNT_MASK: u32 = 0xffff;
const GEN_SHIFT: u32 = 16;
const GEN_MASK: u32 = 0x1fff;
const LAST_RESET: u32 = 1 << 29;
const BROKEN: u32 = 1 << 30;
const WAITERS: u32 = 1 << 31;

/// The most parties a barrier may have (what `count` holds).
pub const MAX_PARTIES: u32 = COUNT_MASK;

/// `pause` hints a waiter spends watching the word before it sleeps (none under loom).
const SPIN: u32 = super::event::SPIN;

fn gen_of(v: u32) -> u32 {
    (v >> GEN_SHIFT) & GEN_MASK
}

/// The word that opens the generation after `gen`: no arrivals, no flags.
fn next_gen(round: u32) -> u32 {
    ((round + 1) & GEN_MASK) << GEN_SHIFT
}

/// A process-shared barrier for a fixed number of parties that lives in place in any memory:
/// 16 bytes, `#[repr(C)]`. Unlike the other primitives, all-zero bytes are not a barrier (it
/// needs its number of parties): build it with [`new`](Self::new) or `mpk_barrier_init`.
///
/// ```
/// use std::time::Duration;
/// use mpkit::{Error, RawBarrier};
///
/// let b = RawBarrier::new(2)?;
/// // Alone, the wait times out, and that breaks the barrier until it is reset.
/// assert_eq!(b.wait_timeout(Duration::from_millis(1)), Err(Error::Timeout));
/// assert!(b.broken());
/// assert_eq!(b.wait(), Err(Error::Broken));
/// b.reset();
/// assert!(!b.broken());
/// assert_eq!(b.n_waiting(), 0);
/// # Ok::<(), mpkit::Error>(())
/// ```
#[repr(C)]
pub struct RawBarrier {
    /// The futex word: see the module table.
    word: AtomicU32,
    /// Bit `gen % 32`: generation `gen` ended by a reset.
    history: AtomicU32,
    /// 1..=MAX_PARTIES; written once by `new`.
    parties: AtomicU32,
    _reserved: u32,
}

#[cfg(not(loom))]
const _: () = {
    use static_assertions::const_assert_eq;
    const_assert_eq!(core::mem::size_of::<RawBarrier>(), 16);
    const_assert_eq!(core::mem::align_of::<RawBarrier>(), 4);
};

impl RawBarrier {
    /// A barrier for `parties` parties (`Inval` for 0 or more than [`MAX_PARTIES`]).
    pub fn new(parties: u32) -> Result<RawBarrier, Error> {
        if parties == 0 || parties > MAX_PARTIES {
            return Err(Error::Inval);
        }
        Ok(RawBarrier {
            word: AtomicU32::new(0),
            history: AtomicU32::new(0),
            parties: AtomicU32::new(parties),
            _reserved: 0,
        })
    }

    /// The number of parties (`BadObject` for bytes that are no barrier: zero, foreign, corrupted).
    pub fn parties(&self) -> Result<u32, Error> {
        // Relaxed: written before the barrier was shared (the sharing orders it).
        let parties = self.parties.load(Ordering::Relaxed);
        let count = self.word.load(Ordering::Relaxed) & COUNT_MASK;
        if parties == 0 || parties > MAX_PARTIES || count >= parties {
            return Err(Error::BadObject);
        }
        Ok(parties)
    }

    /// Waits until all parties have called `wait`, or `deadline`. Returns this party's index:
    /// `0..parties`, a distinct one for each party of a round, in order of arrival (as Python).
    ///
    /// Errors: `Broken` (the barrier is broken, or was broken or reset while waiting);
    /// `Timeout` (this party's deadline passed first: that breaks the barrier for all, whose waits
    /// end in `Broken`. Python raises `BrokenBarrierError` here too); `BadObject`.
    pub fn wait_until(&self, deadline: Deadline) -> Result<u32, Error> {
        let parties = self.parties()?;
        let mut v = self.word.load(Ordering::Relaxed);
        loop {
            if v & BROKEN != 0 {
                return Err(Error::Broken);
            }
            let count = v & COUNT_MASK;
            if count + 1 >= parties {
                self.record(v);
                // AcqRel: Acquire pairs with the arrivals' Release CASes (their writes before the
                // wait are visible to us); Release publishes ours, and `history`, to the waiters'
                // Acquire loads.
                match self.word.compare_exchange(v, next_gen(gen_of(v)), Ordering::AcqRel, Ordering::Relaxed) {
                    Ok(_) => {
                        if v & WAITERS != 0 && !mutant("barrier_no_wake") {
                            futex_wake(&self.word, i32::MAX as u32);
                        }
                        return Ok(count);
                    }
                    Err(now) => v = now,
                }
                continue;
            }
            // Release: our writes before the wait reach the party that ends the round, and through
            // its CAS (all writes to the word are RMWs: one release sequence) every waiter.
            match self.word.compare_exchange(v, v + 1, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return self.await_end(gen_of(v), count, deadline),
                Err(now) => v = now,
            }
        }
    }

    /// Waits for generation `gen` to end (this party arrived in it with index `index`).
    #[cold]
    fn await_end(&self, round: u32, index: u32, deadline: Deadline) -> Result<u32, Error> {
        let mut spins = 0;
        loop {
            // Acquire pairs with the Release of the CAS that ended the generation.
            let v = self.word.load(Ordering::Acquire);
            if !self.same_generation(round, v) {
                return self.outcome(round, v, index);
            }
            if v & BROKEN != 0 {
                return Err(Error::Broken);
            }
            if spins < SPIN && !deadline.is_now() {
                spins += 1;
                spin_hint();
                continue;
            }
            if deadline.is_now() {
                return self.time_out(round, index);
            }
            let asleep = v | WAITERS;
            // Relaxed: the flag publishes nothing; the futex re-checks the word.
            if v != asleep && self.word.compare_exchange(v, asleep, Ordering::Relaxed, Ordering::Relaxed).is_err() {
                continue;
            }
            // Returns at once if the word moved on since (an arrival, the end of the round).
            if futex_wait(&self.word, asleep, deadline).is_err() {
                return self.time_out(round, index);
            }
        }
    }

    /// Whether word `v` is still in generation `gen`. The `barrier_no_generation` mutant looks at
    /// the count instead, as a barrier without generations would.
    fn same_generation(&self, round: u32, v: u32) -> bool {
        if mutant("barrier_no_generation") {
            return v & COUNT_MASK != 0;
        }
        gen_of(v) == round
    }

    /// This party's deadline passed in generation `gen`: breaks it, unless it ended meanwhile.
    fn time_out(&self, round: u32, index: u32) -> Result<u32, Error> {
        let mut v = self.word.load(Ordering::Acquire);
        loop {
            if gen_of(v) != round {
                return self.outcome(round, v, index);
            }
            if v & BROKEN != 0 {
                return Err(Error::Broken);
            }
            // Acquire on failure: a word of the next generation is read as in `await_end`.
            match self.word.compare_exchange(v, (v | BROKEN) & !WAITERS, Ordering::Relaxed, Ordering::Acquire) {
                Ok(_) => {
                    if v & WAITERS != 0 {
                        futex_wake(&self.word, i32::MAX as u32);
                    }
                    return Err(Error::Timeout);
                }
                Err(now) => v = now,
            }
        }
    }

    /// How generation `gen` ended, seen from word `v` of a later generation.
    fn outcome(&self, round: u32, v: u32, index: u32) -> Result<u32, Error> {
        let reset = if gen_of(v) == gen_of(next_gen(round)) {
            v & LAST_RESET != 0
        } else {
            // Relaxed: written before the CAS that ended generation gen + 1, which our Acquire load
            // of a later word synchronises with (one release sequence).
            self.history.load(Ordering::Relaxed) & (1 << (round % 32)) != 0
        };
        if reset { Err(Error::Broken) } else { Ok(index) }
    }

    /// Before ending the generation of word `v`: records in `history` how the one before ended.
    fn record(&self, v: u32) {
        let bit = 1 << ((gen_of(v).wrapping_sub(1) & GEN_MASK) % 32);
        // Relaxed: published by the Release CAS that follows (see `outcome`).
        if v & LAST_RESET != 0 {
            self.history.fetch_or(bit, Ordering::Relaxed);
        } else {
            self.history.fetch_and(!bit, Ordering::Relaxed);
        }
    }

    /// Breaks the barrier: every waiter, and every later `wait` until [`reset`](Self::reset),
    /// gets `Broken` (Python's `abort`).
    pub fn abort(&self) {
        // Relaxed: breaking publishes nothing.
        let mut v = self.word.load(Ordering::Relaxed);
        while v & BROKEN == 0 {
            match self.word.compare_exchange(v, (v | BROKEN) & !WAITERS, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => {
                    if v & WAITERS != 0 {
                        futex_wake(&self.word, i32::MAX as u32);
                    }
                    return;
                }
                Err(now) => v = now,
            }
        }
    }

    /// Returns the barrier to its empty state, not broken; parties waiting now get `Broken`
    /// (Python's `reset`).
    pub fn reset(&self) {
        let mut v = self.word.load(Ordering::Relaxed);
        loop {
            self.record(v);
            // Release: publishes `history` (see `outcome`).
            match self.word.compare_exchange(v, next_gen(gen_of(v)) | LAST_RESET, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => {
                    if v & WAITERS != 0 {
                        futex_wake(&self.word, i32::MAX as u32);
                    }
                    return;
                }
                Err(now) => v = now,
            }
        }
    }

    /// How many parties wait in the current generation (0 while broken).
    pub fn n_waiting(&self) -> u32 {
        // Relaxed: a snapshot.
        let v = self.word.load(Ordering::Relaxed);
        if v & BROKEN != 0 { 0 } else { v & COUNT_MASK }
    }

    /// Whether the barrier is broken.
    pub fn broken(&self) -> bool {
        // Relaxed: a snapshot.
        self.word.load(Ordering::Relaxed) & BROKEN != 0
    }

    /// Waits as long as needed for all parties (see [`wait_until`](Self::wait_until)).
    pub fn wait(&self) -> Result<u32, Error> {
        self.wait_until(Deadline::FOREVER)
    }

    /// Waits at most `timeout` for all parties (see [`wait_until`](Self::wait_until)).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<u32, Error> {
        self.wait_until(Deadline::after(timeout))
    }
}

impl core::fmt::Debug for RawBarrier {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RawBarrier")
            .field("parties", &self.parties.load(Ordering::Relaxed))
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.broken())
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "std")]
pub use owned::Barrier;

#[cfg(feature = "std")]
mod owned {
    use core::ptr::NonNull;
    use core::time::Duration;

    use super::RawBarrier;
    use crate::error::Error;
    use crate::shm::{Kind, Region};

    /// A cross-process barrier that owns its shared memory, as `mpk_barrier_create` makes in C
    /// (Python's `multiprocessing.Barrier`).
    /// ```
    /// use std::time::Duration;
    /// use mpkit::{Barrier, Process};
    ///
    /// let b = Barrier::new(2)?;
    /// let party = || match b.wait_timeout(Duration::from_secs(10)) {
    ///     Ok(_) => 0,
    ///     Err(_) => 1,
    /// };
    /// // SAFETY: the child only uses `b`, an mpkit object made before the fork.
    /// let child = unsafe { Process::spawn(party) }?;
    /// let index = b.wait_timeout(Duration::from_secs(10))?;
    /// assert!(index < 2);
    /// assert_eq!(child.join_timeout(Duration::from_secs(10))?, 0);
    /// # Ok::<(), mpkit::Error>(())
    /// ```
    #[derive(Debug)]
    pub struct Barrier {
        /// Holds an initialised `RawBarrier` at its payload.
        region: Region,
    }

    impl Barrier {
        /// A new barrier for `parties` parties in a fresh shared mapping (`Inval` for 0 or more
        /// than [`MAX_PARTIES`](super::MAX_PARTIES)).
        pub fn new(parties: u32) -> Result<Barrier, Error> {
            let barrier = RawBarrier::new(parties)?;
            let region =
                Region::build(Kind::Barrier, [parties.into(), 0, 0, 0], size_of::<RawBarrier>(), None, |mem| {
                    // SAFETY: the fresh payload is 64-byte aligned and large enough for one RawBarrier.
                    unsafe { mem.cast::<RawBarrier>().write(barrier) }
                })?;
            Ok(Barrier { region })
        }

        /// The barrier itself.
        pub fn raw(&self) -> &RawBarrier {
            // SAFETY: the payload holds the RawBarrier written by `new`, mapped while `self` lives.
            unsafe { self.region.payload().cast::<RawBarrier>().as_ref() }
        }

        /// See [`RawBarrier::wait`].
        pub fn wait(&self) -> Result<u32, Error> {
            self.raw().wait()
        }

        /// See [`RawBarrier::wait_timeout`].
        pub fn wait_timeout(&self, timeout: Duration) -> Result<u32, Error> {
            self.raw().wait_timeout(timeout)
        }

        /// See [`RawBarrier::abort`].
        pub fn abort(&self) {
            self.raw().abort()
        }

        /// See [`RawBarrier::reset`].
        pub fn reset(&self) {
            self.raw().reset()
        }

        /// See [`RawBarrier::n_waiting`].
        pub fn n_waiting(&self) -> u32 {
            self.raw().n_waiting()
        }

        /// See [`RawBarrier::broken`].
        pub fn broken(&self) -> bool {
            self.raw().broken()
        }

        /// The number of parties.
        pub fn parties(&self) -> u32 {
            self.raw().parties.load(crate::sync::Ordering::Relaxed)
        }

        /// Gives up ownership of the mapping: it stays mapped for the rest of the process.
        #[cfg_attr(not(feature = "ffi"), allow(dead_code))]
        pub(crate) fn into_raw(self) -> NonNull<RawBarrier> {
            self.region.into_raw().cast()
        }
    }
}
