//! `mpk_mutex`: the robust process-shared mutex, in place or owned.

use core::ptr::NonNull;

use super::{Fail, MPK_ERR_INVAL, call, call_or, deadline, mpk_status, non_null, write_out};
use crate::error::Error;
use crate::lock::{Acquired, RawMutex};
use crate::shm::{HEADER_LEN, Kind, Region};

/// A robust process-shared mutex: 64 bytes, 8-byte aligned, placed anywhere (typically in shared
/// memory). Initialise in place with `mpk_mutex_init` (all-zero bytes are also a valid unlocked
/// mutex), or get an owned one from `mpk_mutex_create`. Treat the contents as opaque.
#[repr(C)]
pub struct mpk_mutex {
    _opaque: [u64; 8],
}

static_assertions::assert_eq_size!(mpk_mutex, RawMutex);
static_assertions::assert_eq_align!(mpk_mutex, RawMutex);

/// The Rust mutex behind a C pointer: `MPK_ERR_NULL` / `MPK_ERR_INVAL` (misaligned).
///
/// # Safety
/// - `m` is NULL or points to an initialised `mpk_mutex` that stays valid for `'a`.
pub(super) unsafe fn raw<'a>(m: *const mpk_mutex) -> Result<&'a RawMutex, Fail> {
    non_null(m)?;
    if !(m as usize).is_multiple_of(align_of::<RawMutex>()) {
        return Err(Fail(MPK_ERR_INVAL));
    }
    // SAFETY: non-NULL, aligned, and an initialised mutex (caller duty); same size and alignment
    // as RawMutex (asserted above), and RawMutex is only ever accessed through atomics.
    Ok(unsafe { &*m.cast::<RawMutex>() })
}

/// Initialises (or re-initialises, e.g. after `MPK_ERR_NOT_RECOVERABLE`) a mutex in place:
/// unlocked, consistent. Do not call it while any thread holds or waits on the mutex.
///
/// # Safety
/// `m` is NULL or valid for writes of an `mpk_mutex`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_mutex_init(m: *mut mpk_mutex) -> mpk_status {
    call(|| {
        non_null(m)?;
        if !(m as usize).is_multiple_of(align_of::<RawMutex>()) {
            return Err(Fail(MPK_ERR_INVAL));
        }
        // SAFETY: non-NULL, aligned, writable (caller duty); no thread uses it (caller duty).
        unsafe { m.cast::<RawMutex>().write(RawMutex::new()) };
        Ok(())
    })
}

/// Creates a mutex in its own small shared mapping, shared with children forked afterwards.
/// Release it with `mpk_mutex_destroy`.
///
/// # Safety
/// `out` is NULL or valid for a write of a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_mutex_create(out: *mut *mut mpk_mutex) -> mpk_status {
    call(|| {
        non_null(out)?;
        let m = crate::lock::Lock::new()?.into_raw().cast::<mpk_mutex>();
        // SAFETY: `out` checked non-NULL above; valid by the caller's contract.
        unsafe { write_out(out, m.as_ptr()) }
    })
}

/// Unmaps this process's view of a mutex made by `mpk_mutex_create`. NULL, and a mutex that was
/// initialised in place, are ignored (in-place mutexes need no destruction). A mutex the calling
/// thread holds is released first as if its owner had died (other processes get
/// `MPK_ERR_OWNER_DEAD`); one that another thread of this process holds stays mapped (its
/// memory is leaked), since that thread's robust list links it.
/// Destroying the same handle twice is undefined behaviour, as with `free`.
///
/// # Safety
/// `m` is NULL or a valid mutex, not used by this process after the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_mutex_destroy(m: *mut mpk_mutex) {
    call_or((), || {
        let Some(m) = NonNull::new(m) else { return };
        // SAFETY: `m` is valid (caller duty); `from_payload` only reads the header when the mutex
        // sits where `mpk_mutex_create` puts it (page offset HEADER_LEN), i.e. in the same page.
        if let Some(region) = unsafe { Region::from_payload(m.cast(), Kind::Mutex) } {
            // SAFETY: the region holds an initialised RawMutex at its payload (mpk_mutex_create).
            if unsafe { region.payload().cast::<RawMutex>().as_ref() }.prepare_unmap() {
                drop(region);
            } else {
                let _ = region.into_raw();
            }
        }
    })
}

/// Locks the mutex, waiting at most `timeout_ms` (`MPK_FOREVER`, `MPK_NOWAIT`, or ms).
///
/// Returns `MPK_OK`; `MPK_ERR_OWNER_DEAD` when the lock was taken from a dead owner (the caller
/// holds it: repair the data, call `mpk_mutex_consistent`, then unlock; unlocking without that
/// makes the mutex unusable); `MPK_ERR_TIMEOUT`; `MPK_ERR_NOT_RECOVERABLE`; `MPK_ERR_STATE` if the
/// calling thread already holds it; `MPK_ERR_NOMEM` if the calling thread already holds
/// `MPK_MAX_HELD_LOCKS` locks; `MPK_ERR_NULL`; `MPK_ERR_INVAL` (bad timeout, misaligned).
///
/// # Safety
/// `m` is NULL or an initialised mutex.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_mutex_lock(m: *mut mpk_mutex, timeout_ms: i64) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        let m = unsafe { raw(m) }?;
        match m.lock_until(deadline(timeout_ms)?)? {
            Acquired::Locked => Ok(()),
            Acquired::OwnerDied => Err(Error::OwnerDead.into()),
        }
    })
}

/// Unlocks the mutex. `MPK_ERR_NOT_OWNER` if the calling thread does not hold it.
///
/// # Safety
/// `m` is NULL or an initialised mutex.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_mutex_unlock(m: *mut mpk_mutex) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        Ok(unsafe { raw(m) }?.unlock()?)
    })
}

/// Marks a mutex taken with `MPK_ERR_OWNER_DEAD` consistent again (it stays locked).
/// `MPK_ERR_NOT_OWNER` if the caller does not hold it; `MPK_ERR_INVAL` if it is not inconsistent.
///
/// # Safety
/// `m` is NULL or an initialised mutex.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_mutex_consistent(m: *mut mpk_mutex) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        Ok(unsafe { raw(m) }?.consistent()?)
    })
}

const _: () = assert!(HEADER_LEN.is_multiple_of(align_of::<RawMutex>()));
