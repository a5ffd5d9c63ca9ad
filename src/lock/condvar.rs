//! The condition variable (`mpk_cond`, Python's `multiprocessing.Condition`), used with the
//! robust [`RawMutex`].
//!
//! # The words
//! - `seq`, the futex word: a counter that every notify bumps (wrapping).
//! - `sleepers`: how many waiters are counted as (about to be) asleep on `seq`.
//!
//! A waiter reads `seq` while it still holds the mutex, releases the mutex, spins briefly until
//! `seq` moves, then counts itself in `sleepers` and futex-waits on the value it read. A notify
//! bumps `seq` and wakes `n` sleepers only if `sleepers` is non-zero (no system call otherwise). A
//! notify made after the waiter released the mutex (so after it read `seq`) changes `seq`, so the
//! waiter's futex wait returns at once: no lost wake-up. A sleeper increments `sleepers`, then
//! re-reads `seq` with an RMW; a notifier bumps `seq`, then reads `sleepers`: either the notifier
//! sees the sleeper or the sleeper sees the new `seq` (see `sleep`). Then the waiter re-takes the mutex (spinning a
//! little first, since the notifier usually still holds it).
//!
//! Wake-ups may be spurious (a notify of one may release several waiters that had not yet slept,
//! a signal may end the sleep): wait in a loop that re-checks a predicate, as Python's
//! `wait_for` does. A waiter that dies while asleep leaves `sleepers` one too high: notifies then
//! make a wake call that finds nobody, which costs time, never correctness.

use core::time::Duration;

use super::mutex::MutexGuard;
use crate::error::Error;
use crate::lock::{Acquired, RawMutex};
use crate::sync::{AtomicU32, Deadline, Ordering, futex_wait, futex_wake, mutant, spin_hint};

/// `pause` hints spent watching `seq`, and then the mutex, before sleeping (none under loom).
const SPIN: u32 = super::event::SPIN;

/// A process-shared condition variable that lives in place in any memory: 16 bytes,
/// `#[repr(C)]`, all-zero is a valid condition variable. Any number of mutexes may be used with
/// it over its life, but waiters that wait at the same time should use the same one.
///
/// ```
/// use std::time::Duration;
/// use mpkit::{Error, RawCondvar, RawMutex};
///
/// let (m, c) = (RawMutex::new(), RawCondvar::new());
/// let guard = m.lock().unwrap();
/// // Nobody notifies: the wait times out, and the lock is held again afterwards.
/// assert_eq!(c.wait_timeout(&guard, Duration::from_millis(1)), Err(Error::Timeout));
/// drop(guard);
/// c.notify_all(); // nobody waits: no system call
/// # Ok::<(), mpkit::Error>(())
/// ```
#[repr(C)]
pub struct RawCondvar {
    /// The futex word: bumped by every notify.
    seq: AtomicU32,
    /// Waiters counted as asleep on `seq`.
    sleepers: AtomicU32,
    _reserved: [u32; 2],
}

#[cfg(not(loom))]
const _: () = {
    use static_assertions::const_assert_eq;
    const_assert_eq!(core::mem::size_of::<RawCondvar>(), 16);
    const_assert_eq!(core::mem::align_of::<RawCondvar>(), 4);
};

impl Default for RawCondvar {
    fn default() -> Self {
        Self::new()
    }
}

impl RawCondvar {
    /// A condition variable nobody waits on.
    #[cfg(not(loom))]
    pub const fn new() -> RawCondvar {
        RawCondvar { seq: AtomicU32::new(0), sleepers: AtomicU32::new(0), _reserved: [0; 2] }
    }

    /// A condition variable nobody waits on (loom's atomics have no `const` constructor).
    #[cfg(loom)]
    pub fn new() -> RawCondvar {
        RawCondvar { seq: AtomicU32::new(0), sleepers: AtomicU32::new(0), _reserved: [0; 2] }
    }

    /// `BadObject` for bytes that are no condition variable (foreign or corrupted), as far as
    /// that shows: a reserved word that is not zero.
    pub fn check(&self) -> Result<(), Error> {
        if self._reserved != [0; 2] { Err(Error::BadObject) } else { Ok(()) }
    }

    /// Releases `mutex` (which the calling thread holds), sleeps until notified or `deadline`,
    /// then takes `mutex` again, C-style (see [`wait`](Self::wait) for the guard version).
    ///
    /// Returns with the mutex held: `Ok` (notified, or a spurious wake-up), `Timeout` (the
    /// deadline passed; as `pthread_cond_timedwait`, the mutex is held again), `OwnerDead` (the
    /// mutex was re-taken from a dead owner: repair, then [`RawMutex::consistent`]).
    /// Returns without it: `NotOwner` (the caller did not hold it; nothing happened), `State`
    /// (the caller holds it inconsistent: call `consistent` first; nothing happened),
    /// `NotRecoverable`.
    pub fn wait_raw_until(&self, mutex: &RawMutex, deadline: Deadline) -> Result<(), Error> {
        mutex.check_held_consistent()?;
        // Read while holding the mutex: a notify that comes after we release it bumps `seq`
        // past this value. Relaxed: the mutex orders it before such a notify's bump.
        let late = mutant("cond_late_seq");
        let mut seen = self.seq.load(Ordering::Relaxed);
        mutex.unlock()?;
        if late {
            seen = self.seq.load(Ordering::Relaxed);
        }
        let slept = self.sleep(seen, deadline);
        let relocked = relock(mutex);
        match (relocked, slept) {
            (Err(e), _) => Err(e),
            (Ok(Acquired::OwnerDied), _) => Err(Error::OwnerDead),
            (Ok(Acquired::Locked), r) => r,
        }
    }

    /// Waits for `seq` to move from `seen`: spins, then sleeps.
    fn sleep(&self, seen: u32, deadline: Deadline) -> Result<(), Error> {
        for _ in 0..SPIN {
            spin_hint();
            // Relaxed: the wait promises no ordering of its own; the mutex orders the data.
            if self.seq.load(Ordering::Relaxed) != seen {
                return Ok(());
            }
        }
        if deadline.is_now() {
            return Err(Error::Timeout);
        }
        // This increment, then a read of `seq`, against `notify`'s bump of `seq`, then its read of
        // `sleepers`: one of us must see the other. The read is an RMW, which reads the latest
        // `seq`: if it comes before the bump in `seq`'s order, the bump (Acquire) reads from it
        // (Release), so our increment happens before `notify` reads `sleepers`. Otherwise we see the
        // bump. (SeqCst alone, with a plain load, would do on hardware; this holds under AcqRel,
        // which is also all that loom models.)
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        let r = if self.seq.fetch_add(0, Ordering::SeqCst) != seen {
            Ok(())
        } else {
            // Returns at once if `seq` has moved since (the kernel compares atomically with queueing).
            futex_wait(&self.seq, seen, deadline)
        };
        // Relaxed: a count, ordered with nothing else.
        self.sleepers.fetch_sub(1, Ordering::Relaxed);
        r
    }

    /// Wakes at most `n` waiters (more may wake: see the module docs). No system call when
    /// nobody sleeps. The caller need not hold the mutex, but should, for the usual reasons.
    #[inline]
    pub fn notify(&self, n: u32) {
        if n == 0 {
            return;
        }
        // SeqCst (AcqRel is what matters): see `sleep`.
        self.seq.fetch_add(1, Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) != 0 && !mutant("cond_no_wake") {
            futex_wake(&self.seq, n.min(i32::MAX as u32));
        }
    }

    /// Wakes one waiter.
    pub fn notify_one(&self) {
        self.notify(1)
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        self.notify(i32::MAX as u32)
    }

    /// Releases the guard's mutex, waits until notified, then takes the mutex again (Python's
    /// `Condition.wait()`); the guard stays valid whatever the result. Errors: `OwnerDead` (the
    /// mutex was re-taken from a dead owner: repair, then the guard's `make_consistent`), `State`
    /// (the guard's mutex is still inconsistent: nothing happened), `NotRecoverable` (the mutex
    /// is lost: the guard must be forgotten, not dropped). Wake-ups may be spurious.
    pub fn wait(&self, guard: &MutexGuard<'_>) -> Result<(), Error> {
        self.wait_until(guard, Deadline::FOREVER)
    }

    /// As [`wait`](Self::wait), at most `timeout` (`Timeout`, with the mutex held again).
    pub fn wait_timeout(&self, guard: &MutexGuard<'_>, timeout: Duration) -> Result<(), Error> {
        self.wait_until(guard, Deadline::after(timeout))
    }

    /// As [`wait`](Self::wait), until `deadline`.
    pub fn wait_until(&self, guard: &MutexGuard<'_>, deadline: Deadline) -> Result<(), Error> {
        self.wait_raw_until(guard.mutex(), deadline)
    }

    /// Waits until `pred()` holds, re-checking after every wake-up (Python's `wait_for`); the
    /// guard's mutex is held whenever `pred` runs. `Timeout` if it still fails at `deadline`.
    pub fn wait_for_until(
        &self,
        guard: &MutexGuard<'_>,
        deadline: Deadline,
        mut pred: impl FnMut() -> bool,
    ) -> Result<(), Error> {
        while !pred() {
            match self.wait_until(guard, deadline) {
                Err(Error::Timeout) => return if pred() { Ok(()) } else { Err(Error::Timeout) },
                r => r?,
            }
        }
        Ok(())
    }
}

/// Takes `mutex` again after the wait, however long that takes (as `pthread_cond_wait`),
/// spinning first while it looks held: the notifier usually releases it within microseconds.
fn relock(mutex: &RawMutex) -> Result<Acquired, Error> {
    for _ in 0..SPIN {
        if mutex.looks_free() {
            match mutex.lock_until(Deadline::NOW) {
                Err(Error::Timeout) => {}
                r => return r,
            }
        }
        spin_hint();
    }
    mutex.lock_until(Deadline::FOREVER)
}

impl core::fmt::Debug for RawCondvar {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RawCondvar").field("seq", &self.seq.load(Ordering::Relaxed)).finish_non_exhaustive()
    }
}

#[cfg(feature = "std")]
pub use owned::Condvar;

#[cfg(feature = "std")]
mod owned {
    use core::ptr::NonNull;
    use core::time::Duration;

    use super::{MutexGuard, RawCondvar};
    use crate::error::Error;
    use crate::shm::{Kind, Region};

    /// A cross-process condition variable that owns its shared memory, as `mpk_cond_create` makes
    /// in C. Python's `Condition` bundles its lock; here the condition variable is used with any
    /// [`Lock`](crate::Lock) or [`RawMutex`](crate::RawMutex) guard.
    /// ```
    /// use std::time::Duration;
    /// use mpkit::{Condvar, Lock, Process, SharedValue};
    ///
    /// let (lock, cond, ready) = (Lock::new()?, Condvar::new()?, SharedValue::new(0u32)?);
    /// let produce = || {
    ///     let _g = lock.lock().unwrap();
    ///     ready.set(1).unwrap();
    ///     cond.notify_all();
    ///     0
    /// };
    /// // SAFETY: the child only uses mpkit objects made before the fork.
    /// let child = unsafe { Process::spawn(produce) }?;
    /// let g = lock.lock().unwrap();
    /// cond.wait_for_timeout(&g, Duration::from_secs(10), || ready.get().unwrap() == 1)?;
    /// drop(g);
    /// assert_eq!(child.join_timeout(Duration::from_secs(10))?, 0);
    /// # Ok::<(), mpkit::Error>(())
    /// ```
    #[derive(Debug)]
    pub struct Condvar {
        /// Holds an initialised `RawCondvar` at its payload.
        region: Region,
    }

    impl Condvar {
        /// A new condition variable in a fresh shared mapping.
        pub fn new() -> Result<Condvar, Error> {
            let region = Region::build(Kind::Cond, [0; 4], size_of::<RawCondvar>(), None, |mem| {
                // SAFETY: the fresh payload is 64-byte aligned and large enough for one RawCondvar.
                unsafe { mem.cast::<RawCondvar>().write(RawCondvar::new()) }
            })?;
            Ok(Condvar { region })
        }

        /// The condition variable itself.
        pub fn raw(&self) -> &RawCondvar {
            // SAFETY: the payload holds the RawCondvar written by `new`, mapped while `self` lives.
            unsafe { self.region.payload().cast::<RawCondvar>().as_ref() }
        }

        /// See [`RawCondvar::wait`].
        pub fn wait(&self, guard: &MutexGuard<'_>) -> Result<(), Error> {
            self.raw().wait(guard)
        }

        /// See [`RawCondvar::wait_timeout`].
        pub fn wait_timeout(&self, guard: &MutexGuard<'_>, timeout: Duration) -> Result<(), Error> {
            self.raw().wait_timeout(guard, timeout)
        }

        /// Waits at most `timeout` until `pred()` holds (see [`RawCondvar::wait_for_until`]).
        pub fn wait_for_timeout(
            &self,
            guard: &MutexGuard<'_>,
            timeout: Duration,
            pred: impl FnMut() -> bool,
        ) -> Result<(), Error> {
            self.raw().wait_for_until(guard, crate::Deadline::after(timeout), pred)
        }

        /// See [`RawCondvar::notify`].
        pub fn notify(&self, n: u32) {
            self.raw().notify(n)
        }

        /// Wakes one waiter.
        pub fn notify_one(&self) {
            self.raw().notify(1)
        }

        /// Wakes every waiter.
        pub fn notify_all(&self) {
            self.raw().notify_all()
        }

        /// Gives up ownership of the mapping: it stays mapped for the rest of the process.
        #[cfg_attr(not(feature = "ffi"), allow(dead_code))]
        pub(crate) fn into_raw(self) -> NonNull<RawCondvar> {
            self.region.into_raw().cast()
        }
    }
}
