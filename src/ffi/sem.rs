//! `mpk_sem`: the process-shared counting semaphore (Python's `Semaphore` and
//! `BoundedSemaphore`), in place or owned.

use core::ptr::NonNull;

use super::{Fail, MPK_ERR_INVAL, call, call_or, deadline, mpk_status, non_null, write_out};
use crate::lock::{RawSemaphore, Semaphore};
use crate::shm::{HEADER_LEN, Kind, Region};

/// The largest value a semaphore holds (POSIX's `SEM_VALUE_MAX`).
pub const MPK_SEM_VALUE_MAX: u32 = 2_147_483_647;
const _: () = assert!(MPK_SEM_VALUE_MAX == crate::lock::SEM_VALUE_MAX);

/// A process-shared counting semaphore: 32 bytes, 8-byte aligned, placed anywhere (typically in
/// shared memory). Initialise it in place with `mpk_sem_init` (zeroed bytes are not a semaphore:
/// calls on one fail with `MPK_ERR_BAD_OBJECT`), or get an owned one from `mpk_sem_create`.
/// Treat the contents as opaque.
#[repr(C)]
pub struct mpk_sem {
    _opaque: [u64; 4],
}

static_assertions::assert_eq_size!(mpk_sem, RawSemaphore);
static_assertions::assert_eq_align!(mpk_sem, RawSemaphore);

/// The Rust semaphore behind a C pointer: `MPK_ERR_NULL` / `MPK_ERR_INVAL` (misaligned).
///
/// # Safety
/// - `s` is NULL or points to an `mpk_sem` (initialised or not) valid for `'a`.
unsafe fn raw<'a>(s: *const mpk_sem) -> Result<&'a RawSemaphore, Fail> {
    non_null(s)?;
    if !(s as usize).is_multiple_of(align_of::<RawSemaphore>()) {
        return Err(Fail(MPK_ERR_INVAL));
    }
    // SAFETY: non-NULL, aligned, valid (caller duty); same size and alignment as RawSemaphore
    // (asserted above), which holds only atomics (any bits: its calls check the magic word).
    Ok(unsafe { &*s.cast::<RawSemaphore>() })
}

/// Initialises a semaphore in place with `value` permits. `max` 0 makes a `Semaphore`; `max` > 0
/// a `BoundedSemaphore`, whose release past `max` fails with `MPK_ERR_STATE`.
/// `MPK_ERR_INVAL` if `max != 0 && value > max`, if either passes `MPK_SEM_VALUE_MAX`, or `s` is
/// misaligned; `MPK_ERR_NULL`. Do not call it while any thread uses or waits on the semaphore.
///
/// # Safety
/// `s` is NULL or valid for writes of an `mpk_sem`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_sem_init(s: *mut mpk_sem, value: u32, max: u32) -> mpk_status {
    call(|| {
        non_null(s)?;
        if !(s as usize).is_multiple_of(align_of::<RawSemaphore>()) {
            return Err(Fail(MPK_ERR_INVAL));
        }
        let sem = RawSemaphore::new(value, max)?;
        // SAFETY: non-NULL, aligned, writable (caller duty); no thread uses it (caller duty).
        unsafe { s.cast::<RawSemaphore>().write(sem) };
        Ok(())
    })
}

/// Creates a semaphore (arguments as `mpk_sem_init`) in its own small shared mapping, shared
/// with children forked afterwards. Release it with `mpk_sem_destroy`.
///
/// # Safety
/// `out` is NULL or valid for a write of a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_sem_create(value: u32, max: u32, out: *mut *mut mpk_sem) -> mpk_status {
    call(|| {
        non_null(out)?;
        let s = Semaphore::new(value, max)?.into_raw().cast::<mpk_sem>();
        // SAFETY: `out` checked non-NULL above; valid by the caller's contract.
        unsafe { write_out(out, s.as_ptr()) }
    })
}

/// Unmaps this process's view of a semaphore made by `mpk_sem_create`. NULL, and a semaphore
/// initialised in place, are ignored. Permits this process holds are not returned (a semaphore
/// has no owner). Destroying the same handle twice is undefined behaviour, as with `free`.
///
/// # Safety
/// `s` is NULL or a valid semaphore, not used by this process after the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_sem_destroy(s: *mut mpk_sem) {
    call_or((), || {
        let Some(s) = NonNull::new(s) else { return };
        // SAFETY: `s` is valid (caller duty); `from_payload` only reads the header when the
        // semaphore sits where `mpk_sem_create` puts it (page offset HEADER_LEN).
        drop(unsafe { Region::from_payload(s.cast(), Kind::Semaphore) });
    })
}

/// Takes a permit, waiting at most `timeout_ms` (`MPK_FOREVER`, `MPK_NOWAIT`, or ms) for one.
///
/// Returns `MPK_OK`; `MPK_ERR_TIMEOUT`; `MPK_ERR_BAD_OBJECT` (not an initialised semaphore);
/// `MPK_ERR_NULL`; `MPK_ERR_INVAL` (bad timeout, misaligned). A process that dies holding a
/// permit loses it for good (as with POSIX semaphores): wait with a timeout where that matters.
///
/// # Safety
/// `s` is NULL or points to an `mpk_sem`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_sem_acquire(s: *mut mpk_sem, timeout_ms: i64) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        let s = unsafe { raw(s) }?;
        Ok(s.acquire_until(deadline(timeout_ms)?)?)
    })
}

/// Returns a permit, waking one waiter. Any thread of any process may release. `MPK_ERR_STATE` if
/// that would pass the bound of a `BoundedSemaphore` (or `MPK_SEM_VALUE_MAX`); nothing changes.
/// `MPK_ERR_BAD_OBJECT`, `MPK_ERR_NULL`, `MPK_ERR_INVAL` (misaligned) as `mpk_sem_acquire`.
///
/// # Safety
/// `s` is NULL or points to an `mpk_sem`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_sem_release(s: *mut mpk_sem) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        Ok(unsafe { raw(s) }?.release()?)
    })
}

/// Permits available now (a snapshot, Python's `get_value`); 0 for NULL, a misaligned pointer
/// or memory that is not an initialised semaphore.
///
/// # Safety
/// `s` is NULL or points to an `mpk_sem`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_sem_value(s: *const mpk_sem) -> u32 {
    call_or(0, || {
        // SAFETY: forwarded caller duty.
        unsafe { raw(s) }.map_or(0, RawSemaphore::value)
    })
}

const _: () = assert!(HEADER_LEN.is_multiple_of(align_of::<RawSemaphore>()));
