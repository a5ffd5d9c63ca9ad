//! The one error type of the crate. The C ABI maps it to `mpk_status` in exactly one place
//! (`ffi::status_of`).

use core::fmt;

/// What went wrong. `Copy`, so it travels through shared code paths and across the FFI freely.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// An argument is out of range: a zero or overflowing size, an unknown type code or enum value.
    Inval,
    /// Memory (or address space) ran out.
    NoMem,
    /// The operation would have had to wait longer than allowed.
    Timeout,
    /// The object was closed.
    Closed,
    /// A message or buffer is too large or too small; `needed` is the size that would fit.
    MsgSize {
        /// The size the caller must provide.
        needed: usize,
    },
    /// The lock was acquired, but its previous owner died holding it: the protected data may be
    /// inconsistent. The caller owns the lock; see [`RawMutex::consistent`](crate::RawMutex::consistent).
    OwnerDead,
    /// The lock's owner died and the lock was released without being made consistent; it is
    /// permanently unusable until re-initialised.
    NotRecoverable,
    /// The calling thread does not own the lock.
    NotOwner,
    /// A worker process died while running the task.
    WorkerDied,
    /// The task returned this non-zero code.
    TaskFailed(i32),
    /// A shared object is not what it claims to be: foreign, truncated, wrong kind or corrupted.
    BadObject,
    /// The shared object was made by an incompatible version of mpkit.
    Version,
    /// A named object already exists.
    Exists,
    /// A named object does not exist.
    NotFound,
    /// The object can no longer do its work: a pool whose supervisor died or whose workers
    /// cannot start.
    Broken,
    /// The call is not valid in the object's current state (for example `exitcode` of a running
    /// process, or locking a lock the caller already holds).
    State,
    /// A system call failed with this `errno`.
    Sys(i32),
    /// A pool task ran past its time limit and was stopped (its worker killed). Unlike
    /// `Timeout`, which means a wait gave up while the task goes on.
    TaskTimeout,
    /// The pool task was cancelled before it ended.
    Cancelled,
}

impl Error {
    /// Maps a failed system call to an error, keeping the errno.
    pub(crate) fn from_errno(e: rustix::io::Errno) -> Error {
        match e {
            rustix::io::Errno::NOMEM => Error::NoMem,
            rustix::io::Errno::EXIST => Error::Exists,
            rustix::io::Errno::NOENT => Error::NotFound,
            e => Error::Sys(e.raw_os_error()),
        }
    }
}

impl From<rustix::io::Errno> for Error {
    fn from(e: rustix::io::Errno) -> Error {
        Error::from_errno(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Inval => f.write_str("invalid argument"),
            Error::NoMem => f.write_str("out of memory"),
            Error::Timeout => f.write_str("timed out"),
            Error::Closed => f.write_str("closed"),
            Error::MsgSize { needed } => write!(f, "message size mismatch ({needed} bytes needed)"),
            Error::OwnerDead => f.write_str("previous lock owner died; state may be inconsistent"),
            Error::NotRecoverable => f.write_str("lock is not recoverable"),
            Error::NotOwner => f.write_str("caller does not own the lock"),
            Error::WorkerDied => f.write_str("worker process died while running the task"),
            Error::TaskFailed(code) => write!(f, "task failed with code {code}"),
            Error::BadObject => f.write_str("not a valid mpkit object"),
            Error::Version => f.write_str("object made by an incompatible mpkit version"),
            Error::Exists => f.write_str("object already exists"),
            Error::NotFound => f.write_str("object not found"),
            Error::Broken => f.write_str("broken: can no longer work"),
            Error::State => f.write_str("invalid in the object's current state"),
            Error::Sys(errno) => write!(f, "system call failed (errno {errno})"),
            Error::TaskTimeout => f.write_str("task ran past its time limit and was stopped"),
            Error::Cancelled => f.write_str("task was cancelled"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}
