//! The C ABI: the only module with `extern "C"`. One file per handle type; this file holds the
//! status codes, the one `Error` → `mpk_status` mapping, and the boundary that keeps panics
//! inside Rust.
//!
//! Conventions (see `include/mpkit.h`): fallible calls return `mpk_status`; `out_*` parameters are
//! written only on success; NULL handles and buffers give `MPK_ERR_NULL`; enums arrive as integers
//! and out-of-range values give `MPK_ERR_INVAL`; `*_destroy(NULL)` is a no-op. Handles are
//! thread-safe unless their type says otherwise.
#![allow(non_camel_case_types)]

mod array;
mod barrier;
mod cond;
mod dict;
mod event;
mod item;
mod list;
mod mutex;
mod pipe;
mod pool;
mod process;
mod queue;
mod rmutex;
mod sem;
mod shm;
mod wait;

pub use array::*;
pub use barrier::*;
pub use cond::*;
pub use dict::*;
pub use event::*;
pub use item::*;
pub use list::*;
pub use mutex::*;
pub use pipe::*;
pub use pool::*;
pub use process::*;
pub use queue::*;
pub use rmutex::*;
pub use sem::*;
pub use shm::*;
pub use wait::*;

use core::ffi::{CStr, c_char, c_int};
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::Error;
use crate::sync::Deadline;

/// A status code: `MPK_OK` (0) or a negative `MPK_ERR_*`. Values are fixed forever.
pub type mpk_status = i32;

/// Success.
pub const MPK_OK: mpk_status = 0;
/// A required pointer argument was NULL.
pub const MPK_ERR_NULL: mpk_status = -1;
/// An argument is out of range (zero or overflowing size, unknown enum value, bad timeout).
pub const MPK_ERR_INVAL: mpk_status = -2;
/// Out of memory or address space.
pub const MPK_ERR_NOMEM: mpk_status = -3;
/// The call would have had to wait longer than its timeout (or at all, with `MPK_NOWAIT`).
pub const MPK_ERR_TIMEOUT: mpk_status = -4;
/// The object was closed.
pub const MPK_ERR_CLOSED: mpk_status = -5;
/// A message or buffer size does not fit; `out_len` says the size needed.
pub const MPK_ERR_MSGSIZE: mpk_status = -6;
/// The lock was acquired, but its previous owner died holding it (call `mpk_mutex_consistent`).
pub const MPK_ERR_OWNER_DEAD: mpk_status = -7;
/// The lock was released while inconsistent and can no longer be used.
pub const MPK_ERR_NOT_RECOVERABLE: mpk_status = -8;
/// The calling thread does not own the lock.
pub const MPK_ERR_NOT_OWNER: mpk_status = -9;
/// A worker process died while running the task.
pub const MPK_ERR_WORKER_DIED: mpk_status = -10;
/// The task returned a non-zero code.
pub const MPK_ERR_TASK_FAILED: mpk_status = -11;
/// Not a valid mpkit object: foreign, truncated, of another kind, or corrupted.
pub const MPK_ERR_BAD_OBJECT: mpk_status = -12;
/// The object was made by an incompatible mpkit version.
pub const MPK_ERR_VERSION: mpk_status = -13;
/// A named object already exists.
pub const MPK_ERR_EXISTS: mpk_status = -14;
/// A named object does not exist.
pub const MPK_ERR_NOT_FOUND: mpk_status = -15;
/// The object can no longer work: a pool whose supervisor died or whose workers cannot start.
pub const MPK_ERR_BROKEN: mpk_status = -16;
/// Not valid in the object's current state (e.g. exit code of a running process, relocking).
pub const MPK_ERR_STATE: mpk_status = -17;
/// A system call failed; `mpk_last_errno()` gives its errno.
pub const MPK_ERR_SYS: mpk_status = -18;
/// A bug inside mpkit was caught at the boundary (a Rust panic); the call did nothing useful.
pub const MPK_ERR_PANIC: mpk_status = -19;
/// A pool task ran past its time limit and was stopped (its worker killed and replaced).
/// Unlike `MPK_ERR_TIMEOUT`, which means the caller stopped waiting and the task goes on.
pub const MPK_ERR_TASK_TIMEOUT: mpk_status = -20;
/// The pool task was cancelled (`mpk_async_cancel`) before it ended.
pub const MPK_ERR_CANCELLED: mpk_status = -21;

/// Timeout value: block as long as needed.
pub const MPK_FOREVER: i64 = -1;
/// Timeout value: never block.
pub const MPK_NOWAIT: i64 = 0;

/// The most robust locks (`mpk_mutex`, array locks) one thread may hold at once: the number of
/// entries the kernel recovers from a dying thread's robust list, shared with glibc's robust
/// `pthread_mutex_t`s held by the same thread. A lock beyond it fails with `MPK_ERR_NOMEM`.
pub const MPK_MAX_HELD_LOCKS: u32 = 2048;
const _: () = assert!(MPK_MAX_HELD_LOCKS == crate::MAX_HELD_LOCKS);

/// Version of the shared-memory layouts; objects of another version are refused with
/// `MPK_ERR_VERSION`.
pub const MPK_ABI_VERSION: u32 = 1;
const _: () = assert!(MPK_ABI_VERSION == crate::shm::ABI_VERSION);

std::thread_local! {
    static LAST_ERRNO: Cell<c_int> = const { Cell::new(0) };
}

/// The status code for an error: the one place where `Error` meets `mpk_status`.
pub(crate) fn status_of(e: Error) -> mpk_status {
    match e {
        Error::Inval => MPK_ERR_INVAL,
        Error::NoMem => MPK_ERR_NOMEM,
        Error::Timeout => MPK_ERR_TIMEOUT,
        Error::Closed => MPK_ERR_CLOSED,
        Error::MsgSize { .. } => MPK_ERR_MSGSIZE,
        Error::OwnerDead => MPK_ERR_OWNER_DEAD,
        Error::NotRecoverable => MPK_ERR_NOT_RECOVERABLE,
        Error::NotOwner => MPK_ERR_NOT_OWNER,
        Error::WorkerDied => MPK_ERR_WORKER_DIED,
        Error::TaskFailed(_) => MPK_ERR_TASK_FAILED,
        Error::BadObject => MPK_ERR_BAD_OBJECT,
        Error::Version => MPK_ERR_VERSION,
        Error::Exists => MPK_ERR_EXISTS,
        Error::NotFound => MPK_ERR_NOT_FOUND,
        Error::Broken => MPK_ERR_BROKEN,
        Error::State => MPK_ERR_STATE,
        Error::TaskTimeout => MPK_ERR_TASK_TIMEOUT,
        Error::Cancelled => MPK_ERR_CANCELLED,
        Error::Sys(errno) => {
            LAST_ERRNO.set(errno);
            MPK_ERR_SYS
        }
    }
}

/// A failed FFI call: its status. `?` converts an `Error` into one.
pub(crate) struct Fail(mpk_status);

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        Fail(status_of(e))
    }
}

/// Runs an FFI body: `Ok` → `MPK_OK`, `Err` → its status, a panic → `MPK_ERR_PANIC`.
pub(crate) fn call(body: impl FnOnce() -> Result<(), Fail>) -> mpk_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => MPK_OK,
        Ok(Err(Fail(status))) => status,
        Err(_) => MPK_ERR_PANIC,
    }
}

/// Runs an FFI body that cannot report a status; a panic gives `fallback`.
pub(crate) fn call_or<R>(fallback: R, body: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// `Err(MPK_ERR_NULL)` for a NULL pointer.
pub(crate) fn non_null<T>(p: *const T) -> Result<*const T, Fail> {
    if p.is_null() { Err(Fail(MPK_ERR_NULL)) } else { Ok(p) }
}

/// Writes `v` to a non-NULL out-parameter.
///
/// # Safety
/// - `out` is NULL or valid for a write of `T`.
pub(crate) unsafe fn write_out<T>(out: *mut T, v: T) -> Result<(), Fail> {
    non_null(out)?;
    // SAFETY: non-NULL and, by the caller's contract, valid for writes.
    unsafe { out.write(v) };
    Ok(())
}

/// A C timeout in ms as a deadline (`MPK_ERR_INVAL` for negative values other than `MPK_FOREVER`).
pub(crate) fn deadline(timeout_ms: i64) -> Result<Deadline, Fail> {
    Ok(Deadline::from_timeout_ms(timeout_ms)?)
}

/// A C string argument as UTF-8 (`MPK_ERR_NULL`, or `MPK_ERR_INVAL` if not UTF-8).
///
/// # Safety
/// - `s` is NULL or a NUL-terminated string valid for `'a`.
pub(crate) unsafe fn str_arg<'a>(s: *const c_char) -> Result<&'a str, Fail> {
    non_null(s)?;
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    unsafe { CStr::from_ptr(s) }.to_str().map_err(|_| Fail(MPK_ERR_INVAL))
}

/// A static description of `status`; never NULL, also for unknown codes.
#[unsafe(no_mangle)]
pub extern "C" fn mpk_strerror(status: mpk_status) -> *const c_char {
    let s: &'static CStr = match status {
        MPK_OK => c"success",
        MPK_ERR_NULL => c"a required pointer argument was NULL",
        MPK_ERR_INVAL => c"invalid argument",
        MPK_ERR_NOMEM => c"out of memory",
        MPK_ERR_TIMEOUT => c"timed out",
        MPK_ERR_CLOSED => c"closed",
        MPK_ERR_MSGSIZE => c"message or buffer size does not fit",
        MPK_ERR_OWNER_DEAD => c"previous lock owner died; data may be inconsistent",
        MPK_ERR_NOT_RECOVERABLE => c"lock is not recoverable",
        MPK_ERR_NOT_OWNER => c"caller does not own the lock",
        MPK_ERR_WORKER_DIED => c"worker process died while running the task",
        MPK_ERR_TASK_FAILED => c"task returned a non-zero code",
        MPK_ERR_BAD_OBJECT => c"not a valid mpkit object",
        MPK_ERR_VERSION => c"object made by an incompatible mpkit version",
        MPK_ERR_EXISTS => c"object already exists",
        MPK_ERR_NOT_FOUND => c"object not found",
        MPK_ERR_BROKEN => c"broken by a peer",
        MPK_ERR_STATE => c"invalid in the object's current state",
        MPK_ERR_SYS => c"system call failed (see mpk_last_errno)",
        MPK_ERR_PANIC => c"internal error in mpkit (caught panic)",
        MPK_ERR_TASK_TIMEOUT => c"task ran past its time limit and was stopped",
        MPK_ERR_CANCELLED => c"task was cancelled",
        _ => c"unknown mpkit status",
    };
    s.as_ptr()
}

/// The errno of the last `MPK_ERR_SYS` returned to the calling thread (0 if none yet).
#[unsafe(no_mangle)]
pub extern "C" fn mpk_last_errno() -> c_int {
    LAST_ERRNO.get()
}

/// Number of CPUs this process may run on (at least 1).
#[unsafe(no_mangle)]
pub extern "C" fn mpk_cpu_count() -> c_int {
    call_or(1, || crate::process::cpu_count().min(c_int::MAX as usize) as c_int)
}

/// `MPK_ABI_VERSION` of the linked library (compare with the header's constant).
#[unsafe(no_mangle)]
pub extern "C" fn mpk_abi_version() -> u32 {
    MPK_ABI_VERSION
}
