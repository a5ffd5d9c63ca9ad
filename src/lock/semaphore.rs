//! The process-shared counting semaphore (`mpk_sem`, Python's `Semaphore` and `BoundedSemaphore`).
//!
//! # Protocol
//! | word      | meaning                                                                     |
//! |-----------|-----------------------------------------------------------------------------|
//! | `count`   | permits available, `0..=limit`; the futex word sleepers wait on (at 0)      |
//! | `waiters` | threads past their spin that may sleep on `count`; release wakes only if > 0 |
//! | `max`     | 0: unbounded (limit [`SEM_VALUE_MAX`]); else the bound (`BoundedSemaphore`) |
//!
//! Acquire takes a permit with a CAS `count → count - 1` when `count > 0` (no system call). With
//! none left it spins a little (an adaptive budget in `spin`, shared by all users of the
//! semaphore), then registers in `waiters`, re-checks `count` and sleeps on `count == 0`. Release
//! CAS-increments `count` (refusing to pass the limit: `State`), then wakes one sleeper if
//! `waiters` is non-zero. The registration and the release are the two sides of a store→load
//! (Dekker) pattern, all SeqCst: either the sleeper's re-check sees the new permit or the
//! releaser sees the sleeper and wakes it; the futex re-checks `count == 0` atomically with
//! queueing the sleeper, so a permit released in between is never slept through.
//!
//! # What a dead process leaves
//! A semaphore has no owner (any thread may release): a process that dies holding a permit
//! takes it with it, so the count stays one lower for good (as with POSIX semaphores and
//! Python's). Waiters then wait for releases that may never come; a timeout is the cure. A
//! process that dies while waiting leaves `waiters` one too high, which costs only a spare
//! wake-up system call per release.

use core::time::Duration;

use super::backoff::adaptive_spin;
use crate::error::Error;
use crate::sync::{AtomicU32, Deadline, Ordering, futex_wait, futex_wake, mutant};

/// The largest count a semaphore holds (POSIX's `SEM_VALUE_MAX`); releases past it fail with
/// `State` even when unbounded.
pub const SEM_VALUE_MAX: u32 = i32::MAX as u32;

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
    /// Permits available: the futex word (module table).
    count: AtomicU32,
    /// Threads that may be asleep on `count` (module table).
    waiters: AtomicU32,
    /// 0 (unbounded) or the bound; written only by `new`.
    max: AtomicU32,
    /// `MAGIC` once built.
    magic: AtomicU32,
    /// The adaptive spin budget of acquirers (`backoff::adaptive_spin`).
    spin: AtomicU32,
    _reserved: [u32; 3],
}

#[cfg(not(loom))]
const _: () = {
    use static_assertions::const_assert_eq;
    const_assert_eq!(core::mem::size_of::<RawSemaphore>(), 32);
    const_assert_eq!(core::mem::align_of::<RawSemaphore>(), 8);
    const_assert_eq!(core::mem::offset_of!(RawSemaphore, count), 0);
};

impl RawSemaphore {
    /// A semaphore holding `value` permits; `max` 0 for unbounded, else the bound.
    /// Errors: `Inval` if `max != 0 && value > max`, or either passes [`SEM_VALUE_MAX`].
    pub fn new(value: u32, max: u32) -> Result<RawSemaphore, Error> {
        if value > SEM_VALUE_MAX || max > SEM_VALUE_MAX || (max != 0 && value > max) {
            return Err(Error::Inval);
        }
        Ok(RawSemaphore {
            count: AtomicU32::new(value),
            waiters: AtomicU32::new(0),
            max: AtomicU32::new(max),
            magic: AtomicU32::new(MAGIC),
            spin: AtomicU32::new(super::backoff::ADAPTIVE_INITIAL),
            _reserved: [0; 3],
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

    /// Takes one permit if there is one now. `order` is `Acquire`, or `SeqCst` for the re-check
    /// after registering in `waiters` (then the first load is SeqCst too).
    #[inline]
    fn take(&self, order: Ordering) -> bool {
        let load = if order == Ordering::SeqCst { Ordering::SeqCst } else { Ordering::Relaxed };
        let mut v = self.count.load(load);
        while v > 0 {
            // Acquire pairs with the Release half of the releaser's CAS: what it wrote before
            // releasing is visible to the taker (a semaphore used as a signal publishes data).
            match self.count.compare_exchange_weak(v, v - 1, order, load) {
                Ok(_) => return true,
                Err(now) => v = now,
            }
        }
        false
    }

    /// Takes a permit, waiting until `deadline`. C-style: the caller releases it (or not: a
    /// semaphore has no owner). Errors: `Timeout`, `BadObject`.
    #[inline]
    pub fn acquire_until(&self, deadline: Deadline) -> Result<(), Error> {
        self.limit()?;
        if self.take(Ordering::Acquire) {
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
        if adaptive_spin(&self.spin, 64, || self.take(Ordering::Acquire).then_some(())).is_some() {
            return Ok(());
        }
        // SeqCst (with the re-check below): the store→load pattern against `release`'s SeqCst
        // increment of `count` then load of `waiters` (module docs).
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let result = loop {
            // SeqCst load of `count` inside `take`: the re-check after registering.
            if self.take(Ordering::SeqCst) {
                break Ok(());
            }
            match futex_wait(&self.count, 0, deadline) {
                Ok(()) => {}
                // A permit released just as time ran out is still taken.
                Err(Error::Timeout) if self.take(Ordering::Acquire) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        // Relaxed: a stale non-zero count only costs a releaser a spare wake.
        self.waiters.fetch_sub(1, Ordering::Relaxed);
        result
    }

    /// Returns a permit, waking one waiter if any may sleep. Errors: `State` if that would pass
    /// the bound (a `BoundedSemaphore` released more often than acquired; nothing changes),
    /// `BadObject`.
    #[inline]
    pub fn release(&self) -> Result<(), Error> {
        let limit = self.limit()?;
        let release = if mutant("sem_relaxed_release") { Ordering::Relaxed } else { Ordering::SeqCst };
        let mut v = self.count.load(Ordering::Relaxed);
        loop {
            if v >= limit {
                return Err(Error::State);
            }
            // SeqCst: Release pairs with the taker's Acquire CAS (publishes what was written
            // before); SeqCst orders it before the `waiters` load below (module docs).
            match self.count.compare_exchange_weak(v, v + 1, release, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => v = now,
            }
        }
        if self.waiters.load(Ordering::SeqCst) != 0 && !mutant("sem_no_wake") {
            futex_wake(&self.count, 1);
        }
        Ok(())
    }

    /// Permits available now (a snapshot; Python's `get_value`); 0 if this is not a semaphore.
    pub fn value(&self) -> u32 {
        // Relaxed: a snapshot, ordered with nothing.
        if self.limit().is_ok() { self.count.load(Ordering::Relaxed) } else { 0 }
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
        let region = crate::shm::Region::build(crate::shm::Kind::Semaphore, layout, size_of::<RawSemaphore>(), None, |mem| {
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
