//! The process-shared counting semaphore (`mpk_sem`, Python's `Semaphore` and `BoundedSemaphore`).
//!
//! # The futex word
//! | bits            | meaning                                                                |
//! |-----------------|------------------------------------------------------------------------|
//! | `0..31` (count) | permits available, `0..=limit` (limit: `max`, or [`SEM_VALUE_MAX`])    |
//! | `31` (`WAITERS`)| someone may sleep on the word, so a release must wake one              |
//!
//! One word, so every step is a read-modify-write of one location (no store→load pattern):
//! - acquire takes a permit with a CAS `count → count - 1` when `count > 0`, keeping `WAITERS`
//!   as it is (no system call). With none left it spins a little (an adaptive budget in `spin`,
//!   shared by all users of the semaphore), then sets `WAITERS` (CAS, only while `count == 0`)
//!   and sleeps while the word is `WAITERS | 0`.
//! - release CAS-increments `count` (refusing to pass the limit: `State`) and clears `WAITERS`;
//!   if it was set, it wakes one sleeper.
//! - a thread that slept takes its permit with `WAITERS` set again, since other sleepers may
//!   remain; and if permits are still left after its take, it wakes one more: a release that
//!   came while it was waking found `WAITERS` clear and woke nobody (the wake is passed on).
//!
//! The futex re-checks the word atomically with queueing the sleeper, so a release between the
//! sleeper's look and its sleep makes the sleep return at once.
//!
//! # What a dead process leaves
//! A semaphore has no owner (any thread may release): a process that dies holding a permit
//! takes it with it, so the count stays one lower for good (as with POSIX semaphores and
//! Python's). Waiters then wait for releases that may never come; a timeout is the cure. A
//! process that dies asleep leaves `WAITERS` set, which costs one spare wake-up; one killed in
//! the instant between being woken and taking its permit takes that wake-up along, and the
//! other sleepers wait for the next release (or their timeout).

use core::time::Duration;

use super::backoff::adaptive_spin;
use crate::error::Error;
use crate::sync::{AtomicU32, Deadline, Ordering, futex_wait, futex_wake, mutant};

/// The largest count a semaphore holds (POSIX's `SEM_VALUE_MAX`); releases past it fail with
/// `State` even when unbounded.
pub const SEM_VALUE_MAX: u32 = i32::MAX as u32;

/// `word`: a sleeper may exist (module table).
const WAITERS: u32 = 1 << 31;
/// `word`: the count.
const COUNT: u32 = !WAITERS;
const _: () = assert!(SEM_VALUE_MAX == COUNT);

/// Marks an initialised semaphore, so that zeroed or foreign memory is refused (`BadObject`).
const MAGIC: u32 = 0x6d70_6b53; // "mpkS"

/// A counting semaphore that lives in place in any memory, shared or not. 32 bytes,
/// `#[repr(C)]`; build it with [`new`](Self::new) (all-zero bytes are *not* a semaphore: every
/// call on one fails with [`Error::BadObject`]).
///
/// With `max == 0` it is Python's `Semaphore`; with `max > 0` a `BoundedSemaphore`, whose
/// [`release`](Self::release) past `max` fails with [`Error::State`] (Python's `ValueError`).
/// A process that dies holding a permit loses it (module docs): wait with a timeout where
/// that matters.
///
/// ```
/// use std::time::Duration;
/// use mpkit::{Error, RawSemaphore};
///
/// let s = RawSemaphore::new(1, 2)?; // one permit now, at most two
/// let permit = s.acquire_timeout(Duration::from_secs(1))?;
/// assert_eq!(s.try_acquire().err(), Some(Error::Timeout));
/// drop(permit); // releases
/// s.release()?;
/// assert_eq!(s.value(), 2);
/// assert_eq!(s.release(), Err(Error::State)); // bounded at 2
/// # Ok::<(), mpkit::Error>(())
/// ```
#[repr(C, align(8))]
pub struct RawSemaphore {
    /// The futex word: count and `WAITERS` (module table).
    word: AtomicU32,
    /// 0 (unbounded) or the bound; written only by `new`.
    max: AtomicU32,
    /// `MAGIC` once built.
    magic: AtomicU32,
    /// The adaptive spin budget of acquirers (`backoff::adaptive_spin`).
    spin: AtomicU32,
    _reserved: [u32; 4],
}

#[cfg(not(loom))]
const _: () = {
    use static_assertions::const_assert_eq;
    const_assert_eq!(core::mem::size_of::<RawSemaphore>(), 32);
    const_assert_eq!(core::mem::align_of::<RawSemaphore>(), 8);
    const_assert_eq!(core::mem::offset_of!(RawSemaphore, word), 0);
};

impl RawSemaphore {
    /// A semaphore holding `value` permits; `max` 0 for unbounded, else the bound.
    /// Errors: `Inval` if `max != 0 && value > max`, or either passes [`SEM_VALUE_MAX`].
    pub fn new(value: u32, max: u32) -> Result<RawSemaphore, Error> {
        if value > SEM_VALUE_MAX || max > SEM_VALUE_MAX || (max != 0 && value > max) {
            return Err(Error::Inval);
        }
        Ok(RawSemaphore {
            word: AtomicU32::new(value),
            max: AtomicU32::new(max),
            magic: AtomicU32::new(MAGIC),
            spin: AtomicU32::new(super::backoff::ADAPTIVE_INITIAL),
            _reserved: [0; 4],
        })
    }

    /// The most permits it holds: `max`, or [`SEM_VALUE_MAX`] if unbounded; `BadObject` if this
    /// is not a semaphore.
    #[inline]
    fn limit(&self) -> Result<u32, Error> {
        // Relaxed: written once by `new`, before the semaphore was shared.
        if self.magic.load(Ordering::Relaxed) != MAGIC {
            return Err(Error::BadObject);
        }
        match self.max.load(Ordering::Relaxed) {
            0 => Ok(SEM_VALUE_MAX),
            max if max <= SEM_VALUE_MAX => Ok(max),
            _ => Err(Error::BadObject),
        }
    }

    /// The bound given to [`new`](Self::new): 0 for an unbounded semaphore.
    pub fn max(&self) -> u32 {
        // Relaxed: written once, before sharing.
        self.max.load(Ordering::Relaxed)
    }

    /// Takes one permit if there is one now; returns how many are left. `slept`: the caller has
    /// slept, so it sets `WAITERS` (others may still sleep); otherwise `WAITERS` stays as it is.
    #[inline]
    fn take(&self, slept: bool) -> Option<u32> {
        let mut v = self.word.load(Ordering::Relaxed);
        while v & COUNT > 0 {
            let new = (v - 1) | if slept && !mutant("sem_forget_waiters") { WAITERS } else { 0 };
            // Acquire pairs with the Release CAS of `release`: what the releaser wrote before
            // releasing is visible to the taker (a semaphore used as a signal publishes data).
            match self.word.compare_exchange_weak(v, new, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return Some((v & COUNT) - 1),
                Err(now) => v = now,
            }
        }
        None
    }

    /// Takes a permit, waiting until `deadline`. C-style: the caller releases it (or not: a
    /// semaphore has no owner). Errors: `Timeout`, `BadObject`.
    #[inline]
    pub fn acquire_until(&self, deadline: Deadline) -> Result<(), Error> {
        self.limit()?;
        if self.take(false).is_some() {
            return Ok(());
        }
        self.acquire_contended(deadline)
    }

    #[cold]
    fn acquire_contended(&self, deadline: Deadline) -> Result<(), Error> {
        if deadline.is_now() {
            return Err(Error::Timeout);
        }
        // A short spin: a release within it saves both sides a futex system call.
        if adaptive_spin(&self.spin, 64, || self.take(false)).is_some() {
            return Ok(());
        }
        let mut slept = false;
        loop {
            if let Some(left) = self.take(slept) {
                if slept && left > 0 && !mutant("sem_no_pass_on") {
                    futex_wake(&self.word, 1); // pass the wake-up on (module docs)
                }
                return Ok(());
            }
            // Relaxed: the flag orders nothing; the futex re-checks the word itself.
            let v = self.word.load(Ordering::Relaxed);
            if v & COUNT != 0 {
                continue;
            }
            if v & WAITERS == 0
                && self.word.compare_exchange(v, v | WAITERS, Ordering::Relaxed, Ordering::Relaxed).is_err()
            {
                continue;
            }
            match futex_wait(&self.word, WAITERS, deadline) {
                Ok(()) => slept = true,
                // A timed-out wait consumed no wake-up; a permit released just then is taken.
                Err(Error::Timeout) => {
                    return match self.take(slept) {
                        Some(left) => {
                            if slept && left > 0 {
                                futex_wake(&self.word, 1);
                            }
                            Ok(())
                        }
                        None => Err(Error::Timeout),
                    };
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Returns a permit, waking one waiter if any may sleep. Errors: `State` if that would pass
    /// the bound (a `BoundedSemaphore` released more often than acquired; nothing changes),
    /// `BadObject`.
    #[inline]
    pub fn release(&self) -> Result<(), Error> {
        let limit = self.limit()?;
        let release = if mutant("sem_relaxed_release") { Ordering::Relaxed } else { Ordering::Release };
        let mut v = self.word.load(Ordering::Relaxed);
        loop {
            if v & COUNT >= limit {
                return Err(Error::State);
            }
            // Release pairs with the taker's Acquire CAS (publishes what was written before).
            // Clearing WAITERS: the one woken below sets it again if it must (module docs).
            match self.word.compare_exchange_weak(v, (v & COUNT) + 1, release, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => v = now,
            }
        }
        if v & WAITERS != 0 && !mutant("sem_no_wake") {
            futex_wake(&self.word, 1);
        }
        Ok(())
    }

    /// Permits available now (a snapshot; Python's `get_value`); 0 if this is not a semaphore.
    pub fn value(&self) -> u32 {
        // Relaxed: a snapshot, ordered with nothing.
        if self.limit().is_ok() { self.word.load(Ordering::Relaxed) & COUNT } else { 0 }
    }

    /// Takes a permit, blocking as long as needed; the [`Permit`] releases it when dropped.
    pub fn acquire(&self) -> Result<Permit<'_>, Error> {
        self.permit_until(Deadline::FOREVER)
    }

    /// Takes a permit if one is available now; `Timeout` if not.
    pub fn try_acquire(&self) -> Result<Permit<'_>, Error> {
        self.permit_until(Deadline::NOW)
    }

    /// Takes a permit, waiting at most `timeout`.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<Permit<'_>, Error> {
        self.permit_until(Deadline::after(timeout))
    }

    fn permit_until(&self, deadline: Deadline) -> Result<Permit<'_>, Error> {
        self.acquire_until(deadline)?;
        Ok(Permit { sem: self })
    }
}

/// A permit taken from a [`RawSemaphore`]; released when dropped. It may move to another thread
/// (a semaphore has no owner).
#[must_use = "the permit is released when dropped"]
#[derive(Debug)]
pub struct Permit<'a> {
    sem: &'a RawSemaphore,
}

impl Permit<'_> {
    /// Keeps the permit taken: nothing is released now (release it later with
    /// [`RawSemaphore::release`], perhaps from another process).
    pub fn forget(self) {
        core::mem::forget(self);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        // `State` here means someone else over-released a bounded semaphore; that release
        // already failed or will fail for them, and the count stays at its bound.
        let _ = self.sem.release();
    }
}

impl core::fmt::Debug for RawSemaphore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RawSemaphore").field("value", &self.value()).field("max", &self.max()).finish_non_exhaustive()
    }
}

/// A counting semaphore in a mapping of its own, as `mpk_sem_create` makes in C: Python's
/// `multiprocessing.Semaphore` (`max` 0) or `BoundedSemaphore` (`max` > 0). Made before `fork`,
/// it is shared with the children at the same address. For one inside memory you already
/// share, use [`RawSemaphore`] in place.
///
/// Three processes at a time:
/// ```
/// use std::time::Duration;
/// use mpkit::{Process, Semaphore};
///
/// let sem = Semaphore::new(3, 0)?;
/// let kids: Vec<_> = (0..5)
///     .map(|_| {
///         // SAFETY: the child only uses `sem`, an mpkit object made before the fork.
///         unsafe { Process::spawn(|| sem.acquire_timeout(Duration::from_secs(10)).map_or(1, |_permit| 0)) }
///     })
///     .collect::<Result<_, _>>()?;
/// for k in kids {
///     assert_eq!(k.join_timeout(Duration::from_secs(10))?, 0);
/// }
/// assert_eq!(sem.value(), 3);
/// # Ok::<(), mpkit::Error>(())
/// ```
#[cfg(feature = "std")]
#[derive(Debug)]
pub struct Semaphore {
    /// Holds an initialised `RawSemaphore` at its payload.
    region: crate::shm::Region,
}

#[cfg(feature = "std")]
impl Semaphore {
    /// A semaphore with `value` permits in a fresh shared mapping; `max` 0 for unbounded, else
    /// the bound. Errors: as [`RawSemaphore::new`], or from mapping.
    pub fn new(value: u32, max: u32) -> Result<Semaphore, Error> {
        let sem = RawSemaphore::new(value, max)?;
        let layout = [u64::from(value), u64::from(max), 0, 0];
        let region =
            crate::shm::Region::build(crate::shm::Kind::Semaphore, layout, size_of::<RawSemaphore>(), None, |mem| {
                // SAFETY: the fresh payload is 64-byte aligned and large enough for one RawSemaphore.
                unsafe { mem.cast::<RawSemaphore>().write(sem) }
            })?;
        Ok(Semaphore { region })
    }

    /// The semaphore itself.
    pub fn raw(&self) -> &RawSemaphore {
        // SAFETY: the payload holds the RawSemaphore written by `new`, mapped while `self` lives.
        unsafe { self.region.payload().cast::<RawSemaphore>().as_ref() }
    }

    /// Takes a permit, blocking as long as needed.
    pub fn acquire(&self) -> Result<Permit<'_>, Error> {
        self.raw().acquire()
    }

    /// Takes a permit if one is available now; `Timeout` if not.
    pub fn try_acquire(&self) -> Result<Permit<'_>, Error> {
        self.raw().try_acquire()
    }

    /// Takes a permit, waiting at most `timeout`.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<Permit<'_>, Error> {
        self.raw().acquire_timeout(timeout)
    }

    /// Returns a permit (`State` past the bound).
    pub fn release(&self) -> Result<(), Error> {
        self.raw().release()
    }

    /// Permits available now.
    pub fn value(&self) -> u32 {
        self.raw().value()
    }

    /// Gives up ownership of the mapping: the semaphore stays mapped for the rest of the process.
    #[cfg(feature = "ffi")]
    pub(crate) fn into_raw(self) -> core::ptr::NonNull<RawSemaphore> {
        self.region.into_raw().cast()
    }
}
