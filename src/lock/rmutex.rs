//! The robust recursive mutex (`mpk_rmutex`, Python's `RLock`).
//!
//! # Protocol
//! A [`RawMutex`] (the robust futex word: owner TID, `WAITERS`, `OWNER_DIED`; see its module)
//! plus `count`, the owner's recursion depth. The owner check is the TID in the mutex word:
//!
//! | operation               | caller holds it (TID matches) | caller does not                      |
//! |-------------------------|-------------------------------|--------------------------------------|
//! | lock                    | `count += 1`, no atomic RMW   | lock the mutex, then `count = 1`     |
//! | unlock                  | `count -= 1`; at 0 unlock it  | `NotOwner`, nothing changes          |
//!
//! `count` is read and written only by the owner, between its Acquire of the mutex word and its
//! Release of it, so Relaxed accesses suffice: the word orders them for the next owner.
//!
//! # Owner death
//! The kernel releases a dead owner's word with `OWNER_DIED` whatever its depth was; the next
//! locker gets [`Acquired::OwnerDied`] with `count` reset to 1, so one unlock frees the lock.
//! As with [`RawMutex`], it must call [`consistent`](RawRMutex::consistent) before its last
//! unlock, or the lock becomes `NotRecoverable`.

use core::marker::PhantomData;
use core::time::Duration;

use super::{Acquired, LockError, LockResult, RawMutex};
use crate::error::Error;
use crate::sync::{AtomicU32, Deadline, Ordering, mutant};

/// A robust, recursive, process-shared mutex in place: the thread that holds it may lock it
/// again, and must unlock it as many times. 72 bytes, `#[repr(C)]`; all-zero bytes are a valid
/// unlocked lock. If the owner dies, the next locker gets the lock with `OwnerDied` and a depth
/// of 1, as [`RawMutex`] does.
///
/// ```
/// use std::time::Duration;
/// use mpkit::{Acquired, Deadline, Error, RawRMutex, Region};
///
/// let region = Region::new(size_of::<RawRMutex>())?; // zeroed, 64-byte aligned
/// // SAFETY: aligned, large enough, zero bytes are a valid `RawRMutex`; `region` outlives `m`.
/// let m = unsafe { &*region.as_ptr().cast::<RawRMutex>() };
/// {
///     let _outer = m.lock_timeout(Duration::from_secs(1))?;
///     let _inner = m.try_lock()?; // the owner may relock
///     assert_eq!(m.depth(), 2);
/// }
/// assert_eq!(m.lock_until(Deadline::NOW)?, Acquired::Locked);
/// m.unlock()?;
/// assert_eq!(m.unlock(), Err(Error::NotOwner));
/// # Ok::<(), mpkit::Error>(())
/// ```
#[repr(C)]
pub struct RawRMutex {
    mutex: RawMutex,
    /// Recursion depth, 0 while unlocked; the owner's alone (module docs).
    count: AtomicU32,
    _reserved: u32,
}

#[cfg(not(loom))]
const _: () = {
    use static_assertions::const_assert_eq;
    const_assert_eq!(core::mem::size_of::<RawRMutex>(), 72);
    const_assert_eq!(core::mem::align_of::<RawRMutex>(), 8);
    const_assert_eq!(core::mem::offset_of!(RawRMutex, mutex), 0);
};

impl Default for RawRMutex {
    fn default() -> Self {
        Self::new()
    }
}

impl RawRMutex {
    /// An unlocked lock.
    #[cfg(not(loom))]
    pub const fn new() -> RawRMutex {
        RawRMutex { mutex: RawMutex::new(), count: AtomicU32::new(0), _reserved: 0 }
    }

    /// An unlocked lock (loom's atomics have no `const` constructor).
    #[cfg(loom)]
    pub fn new() -> RawRMutex {
        RawRMutex { mutex: RawMutex::new(), count: AtomicU32::new(0), _reserved: 0 }
    }

    /// Takes the lock (or one more level of it), waiting until `deadline`. C-style: each success
    /// needs one [`unlock`](Self::unlock).
    ///
    /// Errors: `Timeout`, `NotRecoverable`, `State` (the depth would pass `u32::MAX`), `NoMem`
    /// (this thread already holds [`MAX_HELD_LOCKS`](crate::MAX_HELD_LOCKS) robust locks).
    #[inline]
    pub fn lock_until(&self, deadline: Deadline) -> Result<Acquired, Error> {
        if self.mutex.held_by_me() {
            // Relaxed: `count` is the owner's (module docs).
            let depth = self.count.load(Ordering::Relaxed);
            let deeper = depth.checked_add(1).ok_or(Error::State)?;
            self.count.store(deeper, Ordering::Relaxed);
            return Ok(Acquired::Locked);
        }
        let how = self.mutex.lock_until(deadline)?;
        // A dead owner's depth is void: the new owner holds one level (Relaxed: as above).
        let depth = if how == Acquired::OwnerDied && mutant("rmutex_keep_dead_depth") {
            self.count.load(Ordering::Relaxed)
        } else {
            1
        };
        self.count.store(depth, Ordering::Relaxed);
        Ok(how)
    }

    /// Releases one level; the last one releases the lock. Errors: `NotOwner` if the calling
    /// thread does not hold it. Releasing the last level of a lock taken with `OwnerDied` before
    /// calling [`consistent`](Self::consistent) makes it permanently `NotRecoverable`.
    #[inline]
    pub fn unlock(&self) -> Result<(), Error> {
        if !self.mutex.held_by_me() {
            return Err(Error::NotOwner);
        }
        // Relaxed: `count` is the owner's (module docs).
        let depth = self.count.load(Ordering::Relaxed);
        if depth > 1 && !mutant("rmutex_ignore_depth") {
            self.count.store(depth - 1, Ordering::Relaxed);
            return Ok(());
        }
        self.count.store(0, Ordering::Relaxed);
        self.mutex.unlock()
    }

    /// Declares the data consistent again after [`Acquired::OwnerDied`]; the lock stays held at
    /// its depth. Errors: `NotOwner`, or `Inval` if it is not inconsistent.
    pub fn consistent(&self) -> Result<(), Error> {
        self.mutex.consistent()
    }

    /// How many times the calling thread holds the lock (0 if it does not).
    pub fn depth(&self) -> u32 {
        // Relaxed: the owner reads its own writes; anyone else gets 0 without looking.
        if self.mutex.held_by_me() { self.count.load(Ordering::Relaxed) } else { 0 }
    }

    /// As [`RawMutex::prepare_unmap`]: a lock this thread holds, at any depth, is released as if
    /// its owner had died.
    #[cfg(feature = "std")]
    pub(crate) fn prepare_unmap(&self) -> bool {
        self.mutex.prepare_unmap()
    }

    /// Takes the lock (or one more level), blocking as long as needed.
    pub fn lock(&self) -> LockResult<RMutexGuard<'_>> {
        self.guard_until(Deadline::FOREVER)
    }

    /// Takes the lock (or one more level) if that needs no waiting; `Failed(Timeout)` otherwise.
    pub fn try_lock(&self) -> LockResult<RMutexGuard<'_>> {
        self.guard_until(Deadline::NOW)
    }

    /// Takes the lock (or one more level), waiting at most `timeout`.
    pub fn lock_timeout(&self, timeout: Duration) -> LockResult<RMutexGuard<'_>> {
        self.guard_until(Deadline::after(timeout))
    }

    fn guard_until(&self, deadline: Deadline) -> LockResult<RMutexGuard<'_>> {
        let guard = |lock| RMutexGuard { lock, _not_send: PhantomData };
        match self.lock_until(deadline) {
            Ok(Acquired::Locked) => Ok(guard(self)),
            Ok(Acquired::OwnerDied) => Err(LockError::OwnerDead(guard(self))),
            Err(e) => Err(LockError::Failed(e)),
        }
    }
}

/// Holds one level of a [`RawRMutex`]; releases it when dropped. Not `Send`: the owning thread
/// must unlock.
#[must_use = "the level is released when the guard is dropped"]
#[derive(Debug)]
pub struct RMutexGuard<'a> {
    lock: &'a RawRMutex,
    _not_send: PhantomData<*const ()>,
}

impl RMutexGuard<'_> {
    /// Declares the protected data repaired after [`LockError::OwnerDead`].
    pub fn make_consistent(&self) -> Result<(), Error> {
        self.lock.consistent()
    }
}

impl Drop for RMutexGuard<'_> {
    fn drop(&mut self) {
        let unlocked = self.lock.unlock();
        debug_assert!(unlocked.is_ok(), "guard's thread must own the lock");
    }
}

impl core::fmt::Debug for RawRMutex {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RawRMutex").field("mutex", &self.mutex).field("depth", &self.depth()).finish()
    }
}

/// A recursive cross-process lock that owns its shared memory, as `mpk_rmutex_create` makes in
/// C: Python's `multiprocessing.RLock`. Made before `fork`, it is shared with the children at
/// the same address; if a holder dies, the next locker gets
/// [`LockError::OwnerDead`](super::LockError::OwnerDead) at depth 1. For one inside memory you
/// already share, use [`RawRMutex`] in place.
///
/// ```
/// use mpkit::RLock;
///
/// let lock = RLock::new()?;
/// let outer = lock.lock()?;
/// let inner = lock.lock()?; // the same thread may take it again
/// drop(inner);
/// drop(outer); // released after as many unlocks as locks
/// assert!(lock.try_lock().is_ok());
/// # Ok::<(), mpkit::Error>(())
/// ```
#[cfg(feature = "std")]
#[derive(Debug)]
pub struct RLock {
    /// Holds an initialised `RawRMutex` at its payload; dropped only by `Drop`.
    region: core::mem::ManuallyDrop<crate::shm::Region>,
}

#[cfg(feature = "std")]
impl RLock {
    /// A new, unlocked lock in a fresh shared mapping.
    pub fn new() -> Result<RLock, Error> {
        let region =
            crate::shm::Region::build(crate::shm::Kind::RMutex, [0; 4], size_of::<RawRMutex>(), None, |mem| {
                // SAFETY: the fresh payload is 64-byte aligned and large enough for one RawRMutex.
                unsafe { mem.cast::<RawRMutex>().write(RawRMutex::new()) }
            })?;
        Ok(RLock { region: core::mem::ManuallyDrop::new(region) })
    }

    /// The lock itself (for [`RawRMutex::lock_until`], `unlock`, `consistent`, `depth`).
    pub fn raw(&self) -> &RawRMutex {
        // SAFETY: the payload holds the RawRMutex written by `new`, mapped while `self` lives.
        unsafe { self.region.payload().cast::<RawRMutex>().as_ref() }
    }

    /// Takes the lock (or one more level), waiting as long as needed.
    pub fn lock(&self) -> LockResult<RMutexGuard<'_>> {
        self.raw().lock()
    }

    /// Takes the lock (or one more level) if that needs no waiting.
    pub fn try_lock(&self) -> LockResult<RMutexGuard<'_>> {
        self.raw().try_lock()
    }

    /// Takes the lock (or one more level), waiting at most `timeout`.
    pub fn lock_timeout(&self, timeout: Duration) -> LockResult<RMutexGuard<'_>> {
        self.raw().lock_timeout(timeout)
    }

    /// Gives up ownership of the mapping: the lock stays mapped for the rest of the process.
    #[cfg(feature = "ffi")]
    pub(crate) fn into_raw(self) -> core::ptr::NonNull<RawRMutex> {
        let mut this = core::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so the region is taken out exactly once.
        let region = unsafe { core::mem::ManuallyDrop::take(&mut this.region) };
        region.into_raw().cast()
    }
}

#[cfg(feature = "std")]
impl Drop for RLock {
    /// Unmaps this process's view; a lock this thread still holds is released as if its owner
    /// died, and one another thread holds stays mapped (see `RawMutex::prepare_unmap`).
    fn drop(&mut self) {
        if self.raw().prepare_unmap() {
            // SAFETY: `region` is dropped once, here, and not used afterwards.
            unsafe { core::mem::ManuallyDrop::drop(&mut self.region) }
        }
    }
}
