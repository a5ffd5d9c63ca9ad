//! [`Lock`]: a robust mutex in a mapping of its own (Python's `multiprocessing.Lock`).

use core::mem::ManuallyDrop;
use core::ptr::NonNull;
use core::time::Duration;

use super::{LockResult, MutexGuard, RawMutex};
use crate::error::Error;
use crate::shm::{Kind, Region};

/// A cross-process lock that owns its shared memory, as `mpk_mutex_create` makes in C. Made
/// before `fork`, it is shared with the children at the same address; if a holder dies, the
/// next locker gets [`LockError::OwnerDead`](super::LockError::OwnerDead). For a lock inside
/// memory you already share, use [`RawMutex`] in place.
///
/// Here a child dies holding the lock, and the parent repairs what it protects:
/// ```
/// use std::time::Duration;
/// use mpkit::lock::LockError;
/// use mpkit::{Lock, Process};
///
/// let lock = Lock::new()?;
/// let die_holding = || match lock.lock_timeout(Duration::from_secs(10)) {
///     Ok(guard) => {
///         std::mem::forget(guard); // exits without unlocking
///         0
///     }
///     Err(_) => 1,
/// };
/// // SAFETY: the child only uses `lock`, an mpkit object made before the fork.
/// let child = unsafe { Process::spawn(die_holding) }?;
/// assert_eq!(child.join_timeout(Duration::from_secs(10))?, 0);
/// let Err(LockError::OwnerDead(guard)) = lock.lock_timeout(Duration::from_secs(10)) else {
///     panic!("the kernel releases a dead owner's lock as OwnerDead");
/// };
/// guard.make_consistent()?; // after repairing the protected data
/// drop(guard);
/// assert!(lock.try_lock().is_ok()); // free, and consistent again
/// # Ok::<(), mpkit::Error>(())
/// ```
#[derive(Debug)]
pub struct Lock {
    /// Holds an initialised `RawMutex` at its payload; dropped only by `Drop`.
    region: ManuallyDrop<Region>,
}

impl Lock {
    /// A new, unlocked lock in a fresh shared mapping.
    pub fn new() -> Result<Lock, Error> {
        let region = Region::build(Kind::Mutex, [0; 4], size_of::<RawMutex>(), None, |mem| {
            // SAFETY: the fresh payload is 64-byte aligned and large enough for one RawMutex.
            unsafe { mem.cast::<RawMutex>().write(RawMutex::new()) }
        })?;
        Ok(Lock { region: ManuallyDrop::new(region) })
    }

    /// The mutex itself (for [`RawMutex::lock_until`], `unlock`, `consistent`).
    pub fn raw(&self) -> &RawMutex {
        // SAFETY: the payload holds the RawMutex written by `new`, mapped while `self` lives.
        unsafe { self.region.payload().cast::<RawMutex>().as_ref() }
    }

    /// Takes the lock, waiting as long as needed.
    pub fn lock(&self) -> LockResult<MutexGuard<'_>> {
        self.raw().lock()
    }

    /// Takes the lock if it is free now.
    pub fn try_lock(&self) -> LockResult<MutexGuard<'_>> {
        self.raw().try_lock()
    }

    /// Takes the lock, waiting at most `timeout`.
    pub fn lock_timeout(&self, timeout: Duration) -> LockResult<MutexGuard<'_>> {
        self.raw().lock_timeout(timeout)
    }

    /// Gives up ownership of the mapping: the mutex stays mapped for the rest of the process.
    pub(crate) fn into_raw(self) -> NonNull<RawMutex> {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so the region is taken out exactly once.
        let region = unsafe { ManuallyDrop::take(&mut this.region) };
        region.into_raw().cast()
    }
}

impl Drop for Lock {
    /// Unmaps this process's view; a lock this thread still holds (a forgotten guard) is released
    /// as if its owner died, and one another thread holds stays mapped (see `prepare_unmap`).
    fn drop(&mut self) {
        if self.raw().prepare_unmap() {
            // SAFETY: `region` is dropped once, here, and not used afterwards.
            unsafe { ManuallyDrop::drop(&mut self.region) }
        }
    }
}
