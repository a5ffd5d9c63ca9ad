//! `mpk_cond`: the process-shared condition variable (Python's `multiprocessing.Condition`,
//! without its bundled lock), used with an `mpk_mutex`; in place or owned.

use core::ptr::NonNull;

use super::{Fail, MPK_ERR_INVAL, call, call_or, deadline, mpk_status, mutex::raw as raw_mutex, non_null, write_out};
use crate::lock::{Condvar, RawCondvar};
use crate::shm::{HEADER_LEN, Kind, Region};

/// A process-shared condition variable: 16 bytes, 4-byte aligned, placed anywhere (typically in
/// shared memory). Initialise in place with `mpk_cond_init` (all-zero bytes are also valid), or get
/// an owned one from `mpk_cond_create`. Treat the contents as opaque.
#[repr(C)]
pub struct mpk_cond {
    _opaque: [u32; 4],
}

static_assertions::assert_eq_size!(mpk_cond, RawCondvar);
static_assertions::assert_eq_align!(mpk_cond, RawCondvar);

/// The Rust condition variable behind a C pointer: `MPK_ERR_NULL`, `MPK_ERR_INVAL` (misaligned),
/// `MPK_ERR_BAD_OBJECT` (non-zero reserved bytes).
///
/// # Safety
/// - `c` is NULL or points to `mpk_cond`-sized memory that stays valid for `'a`.
unsafe fn raw<'a>(c: *const mpk_cond) -> Result<&'a RawCondvar, Fail> {
    non_null(c)?;
    if !(c as usize).is_multiple_of(align_of::<RawCondvar>()) {
        return Err(Fail(MPK_ERR_INVAL));
    }
    // SAFETY: non-NULL, aligned, valid (caller duty); same size and alignment as RawCondvar
    // (asserted above), whose words are atomics or reserved words nobody writes after init.
    let c = unsafe { &*c.cast::<RawCondvar>() };
    c.check()?;
    Ok(c)
}

/// Initialises a condition variable in place. Do not call it while anyone waits on it.
///
/// # Safety
/// `c` is NULL or valid for writes of an `mpk_cond`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_cond_init(c: *mut mpk_cond) -> mpk_status {
    call(|| {
        non_null(c)?;
        if !(c as usize).is_multiple_of(align_of::<RawCondvar>()) {
            return Err(Fail(MPK_ERR_INVAL));
        }
        // SAFETY: non-NULL, aligned, writable (caller duty); nobody uses it (caller duty).
        unsafe { c.cast::<RawCondvar>().write(RawCondvar::new()) };
        Ok(())
    })
}

/// Creates a condition variable in its own small shared mapping, shared with children forked
/// afterwards. Release it with `mpk_cond_destroy`.
///
/// # Safety
/// `out` is NULL or valid for a write of a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_cond_create(out: *mut *mut mpk_cond) -> mpk_status {
    call(|| {
        non_null(out)?;
        let c = Condvar::new()?.into_raw().cast::<mpk_cond>();
        // SAFETY: `out` checked non-NULL above; valid by the caller's contract.
        unsafe { write_out(out, c.as_ptr()) }
    })
}

/// Unmaps this process's view of a condition variable made by `mpk_cond_create`. NULL, and one
/// initialised in place, are ignored. Destroying the same handle twice is undefined behaviour.
///
/// # Safety
/// `c` is NULL or a valid condition variable, not used by this process after the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_cond_destroy(c: *mut mpk_cond) {
    call_or((), || {
        let Some(c) = NonNull::new(c) else { return };
        // SAFETY: `c` is valid (caller duty); `from_payload` only reads the header when it sits
        // where `mpk_cond_create` puts it (page offset HEADER_LEN), i.e. in the same page.
        drop(unsafe { Region::from_payload(c.cast(), Kind::Cond) });
    })
}

/// Atomically releases `m` (which the calling thread must hold), waits until notified or
/// `timeout_ms` passes (`MPK_FOREVER`, `MPK_NOWAIT`, or ms), then locks `m` again, whatever the
/// outcome (like `pthread_cond_timedwait`). Wake-ups may be spurious: wait in a loop that
/// re-checks your condition.
///
/// With `m` held on return: `MPK_OK`; `MPK_ERR_TIMEOUT`; `MPK_ERR_OWNER_DEAD` (`m` was re-taken
/// from a process that died holding it: repair, `mpk_mutex_consistent`, as after
/// `mpk_mutex_lock`). Without: `MPK_ERR_NOT_OWNER` (the caller did not hold `m`),
/// `MPK_ERR_STATE` (the caller holds `m` still inconsistent: call `mpk_mutex_consistent` first),
/// `MPK_ERR_NOT_RECOVERABLE`, `MPK_ERR_NULL`, `MPK_ERR_INVAL` (bad timeout, misaligned),
/// `MPK_ERR_BAD_OBJECT`.
///
/// # Safety
/// `c` is NULL or an initialised condition variable; `m` is NULL or an initialised mutex.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_cond_wait(c: *mut mpk_cond, m: *mut super::mpk_mutex, timeout_ms: i64) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        let c = unsafe { raw(c) }?;
        // SAFETY: forwarded caller duty.
        let m = unsafe { raw_mutex(m) }?;
        Ok(c.wait_raw_until(m, deadline(timeout_ms)?)?)
    })
}

/// Wakes at most `n` waiters (more may wake: spurious wake-ups); no system call when nobody
/// sleeps. `n` = 0 does nothing.
///
/// # Safety
/// `c` is NULL or an initialised condition variable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_cond_notify(c: *mut mpk_cond, n: u32) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        unsafe { raw(c) }?.notify(n);
        Ok(())
    })
}

/// Wakes every waiter.
///
/// # Safety
/// `c` is NULL or an initialised condition variable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_cond_notify_all(c: *mut mpk_cond) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        unsafe { raw(c) }?.notify_all();
        Ok(())
    })
}

const _: () = assert!(HEADER_LEN.is_multiple_of(align_of::<RawCondvar>()));
