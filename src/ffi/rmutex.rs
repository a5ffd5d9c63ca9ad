//! `mpk_rmutex`: the robust recursive process-shared mutex (Python's `RLock`), in place or owned.

use core::ptr::NonNull;

use super::{Fail, MPK_ERR_INVAL, call, call_or, deadline, mpk_status, non_null, write_out};
use crate::error::Error;
use crate::lock::{Acquired, RLock, RawRMutex};
use crate::shm::{HEADER_LEN, Kind, Region};

/// A robust, recursive, process-shared mutex: 72 bytes, 8-byte aligned, placed anywhere
/// (typically in shared memory). Initialise in place with `mpk_rmutex_init` (all-zero bytes are
/// also a valid unlocked lock), or get an owned one from `mpk_rmutex_create`. Treat the contents
/// as opaque.
#[repr(C)]
pub struct mpk_rmutex {
    _opaque: [u64; 9],
}

static_assertions::assert_eq_size!(mpk_rmutex, RawRMutex);
static_assertions::assert_eq_align!(mpk_rmutex, RawRMutex);

/// The Rust lock behind a C pointer: `MPK_ERR_NULL` / `MPK_ERR_INVAL` (misaligned).
///
/// # Safety
/// - `m` is NULL or points to an initialised `mpk_rmutex` that stays valid for `'a`.
unsafe fn raw<'a>(m: *const mpk_rmutex) -> Result<&'a RawRMutex, Fail> {
    non_null(m)?;
    if !(m as usize).is_multiple_of(align_of::<RawRMutex>()) {
        return Err(Fail(MPK_ERR_INVAL));
    }
    // SAFETY: non-NULL, aligned, and an initialised lock (caller duty); same size and alignment
    // as RawRMutex (asserted above), which is only ever accessed through atomics.
    Ok(unsafe { &*m.cast::<RawRMutex>() })
}

/// Initialises (or re-initialises, e.g. after `MPK_ERR_NOT_RECOVERABLE`) a recursive mutex in
/// place: unlocked, consistent. Do not call it while any thread holds or waits on it.
///
/// # Safety
/// `m` is NULL or valid for writes of an `mpk_rmutex`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_rmutex_init(m: *mut mpk_rmutex) -> mpk_status {
    call(|| {
        non_null(m)?;
        if !(m as usize).is_multiple_of(align_of::<RawRMutex>()) {
            return Err(Fail(MPK_ERR_INVAL));
        }
        // SAFETY: non-NULL, aligned, writable (caller duty); no thread uses it (caller duty).
        unsafe { m.cast::<RawRMutex>().write(RawRMutex::new()) };
        Ok(())
    })
}

/// Creates a recursive mutex in its own small shared mapping, shared with children forked
/// afterwards. Release it with `mpk_rmutex_destroy`.
///
/// # Safety
/// `out` is NULL or valid for a write of a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_rmutex_create(out: *mut *mut mpk_rmutex) -> mpk_status {
    call(|| {
        non_null(out)?;
        let m = RLock::new()?.into_raw().cast::<mpk_rmutex>();
        // SAFETY: `out` checked non-NULL above; valid by the caller's contract.
        unsafe { write_out(out, m.as_ptr()) }
    })
}

/// Unmaps this process's view of a lock made by `mpk_rmutex_create`. NULL, and a lock that was
/// initialised in place, are ignored. A lock the calling thread holds (at any depth) is released
/// first as if its owner had died (other processes get `MPK_ERR_OWNER_DEAD`); one that another
/// thread of this process holds stays mapped (its memory is leaked), since that thread's robust
/// list links it. Destroying the same handle twice is undefined behaviour, as with `free`.
///
/// # Safety
/// `m` is NULL or a valid recursive mutex, not used by this process after the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_rmutex_destroy(m: *mut mpk_rmutex) {
    call_or((), || {
        let Some(m) = NonNull::new(m) else { return };
        // SAFETY: `m` is valid (caller duty); `from_payload` only reads the header when the lock
        // sits where `mpk_rmutex_create` puts it (page offset HEADER_LEN), i.e. in the same page.
        if let Some(region) = unsafe { Region::from_payload(m.cast(), Kind::RMutex) } {
            // SAFETY: the region holds an initialised RawRMutex at its payload (mpk_rmutex_create).
            if unsafe { region.payload().cast::<RawRMutex>().as_ref() }.prepare_unmap() {
                drop(region);
            } else {
                let _ = region.into_raw();
            }
        }
    })
}

/// Locks the mutex, or one more level of it if the calling thread already holds it (each
/// success needs one `mpk_rmutex_unlock`), waiting at most `timeout_ms` (`MPK_FOREVER`,
/// `MPK_NOWAIT`, or ms).
///
/// Returns `MPK_OK`; `MPK_ERR_OWNER_DEAD` when the lock was taken from a dead owner (the caller
/// holds it at depth 1, whatever the dead owner's depth: repair the data, call
/// `mpk_rmutex_consistent`, then unlock; unlocking without that makes it unusable);
/// `MPK_ERR_TIMEOUT`; `MPK_ERR_NOT_RECOVERABLE`; `MPK_ERR_STATE` if the depth would pass
/// `UINT32_MAX`; `MPK_ERR_NOMEM` if the calling thread already holds `MPK_MAX_HELD_LOCKS` robust
/// locks; `MPK_ERR_NULL`; `MPK_ERR_INVAL` (bad timeout, misaligned).
///
/// # Safety
/// `m` is NULL or an initialised recursive mutex.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_rmutex_lock(m: *mut mpk_rmutex, timeout_ms: i64) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        let m = unsafe { raw(m) }?;
        match m.lock_until(deadline(timeout_ms)?)? {
            Acquired::Locked => Ok(()),
            Acquired::OwnerDied => Err(Error::OwnerDead.into()),
        }
    })
}

/// Releases one level; the last releases the lock. `MPK_ERR_NOT_OWNER` if the calling thread
/// does not hold it.
///
/// # Safety
/// `m` is NULL or an initialised recursive mutex.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_rmutex_unlock(m: *mut mpk_rmutex) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        Ok(unsafe { raw(m) }?.unlock()?)
    })
}

/// Marks a lock taken with `MPK_ERR_OWNER_DEAD` consistent again (it stays locked).
/// `MPK_ERR_NOT_OWNER` if the caller does not hold it; `MPK_ERR_INVAL` if it is not inconsistent.
///
/// # Safety
/// `m` is NULL or an initialised recursive mutex.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_rmutex_consistent(m: *mut mpk_rmutex) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        Ok(unsafe { raw(m) }?.consistent()?)
    })
}

/// How many times the calling thread holds the lock (0 if it does not, or for NULL).
///
/// # Safety
/// `m` is NULL or an initialised recursive mutex.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_rmutex_depth(m: *const mpk_rmutex) -> u32 {
    call_or(0, || {
        // SAFETY: forwarded caller duty.
        unsafe { raw(m) }.map_or(0, RawRMutex::depth)
    })
}

const _: () = assert!(HEADER_LEN.is_multiple_of(align_of::<RawRMutex>()));
