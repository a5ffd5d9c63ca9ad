//! Cross-process locks that work in any shared memory, in place: the robust futex mutex, the
//! recursive robust mutex and the counting semaphore; and the synchronisation built beside them:
//! event, condition variable, barrier.

pub(crate) mod backoff;
mod barrier;
mod condvar;
mod event;
mod mutex;
#[cfg(feature = "std")]
mod owned;
mod rmutex;
mod semaphore;

#[cfg(feature = "std")]
pub use barrier::Barrier;
pub use barrier::{MAX_PARTIES, RawBarrier};
#[cfg(feature = "std")]
pub use condvar::Condvar;
pub use condvar::RawCondvar;
#[cfg(feature = "std")]
pub use event::Event;
pub use event::RawEvent;
pub use mutex::{Acquired, MutexGuard, RawMutex};
#[cfg(feature = "std")]
pub use owned::Lock;
#[cfg(feature = "std")]
pub use rmutex::RLock;
pub use rmutex::{RMutexGuard, RawRMutex};
#[cfg(feature = "std")]
pub use semaphore::Semaphore;
pub use semaphore::{Permit, RawSemaphore, SEM_VALUE_MAX};

use crate::error::Error;

/// Why taking a lock with a guard did not simply succeed.
#[derive(Debug)]
pub enum LockError<G> {
    /// The lock is held (by the guard inside), but its previous owner died holding it: the data
    /// it protects may be half-updated. Repair it, then call the guard's `make_consistent`;
    /// dropping the guard without that makes the lock permanently `NotRecoverable`.
    OwnerDead(G),
    /// The lock was not taken: `Timeout`, `NotRecoverable`, `State` (already held by this
    /// thread) or a system error.
    Failed(Error),
}

/// The result of taking a lock with a guard.
pub type LockResult<G> = Result<G, LockError<G>>;

impl<G> From<LockError<G>> for Error {
    /// Drops the guard of an `OwnerDead` error (which releases the lock as not recoverable).
    fn from(e: LockError<G>) -> Error {
        match e {
            LockError::OwnerDead(_) => Error::OwnerDead,
            LockError::Failed(e) => e,
        }
    }
}

impl<G> LockError<G> {
    /// Maps the guard inside `OwnerDead`.
    pub fn map<H>(self, f: impl FnOnce(G) -> H) -> LockError<H> {
        match self {
            LockError::OwnerDead(g) => LockError::OwnerDead(f(g)),
            LockError::Failed(e) => LockError::Failed(e),
        }
    }
}
