//! `mpk_barrier`: the process-shared barrier (Python's `multiprocessing.Barrier`), in place or
//! owned.

use core::ptr::NonNull;

use super::{Fail, MPK_ERR_INVAL, call, call_or, deadline, mpk_status, non_null, write_out};
use crate::lock::{Barrier, RawBarrier};
use crate::shm::{HEADER_LEN, Kind, Region};

/// A process-shared barrier: 16 bytes, 4-byte aligned, placed anywhere (typically in shared
/// memory). Initialise in place with `mpk_barrier_init` (all-zero bytes are NOT a barrier), or
/// get an owned one from `mpk_barrier_create`. Treat the contents as opaque.
#[repr(C)]
pub struct mpk_barrier {
    _opaque: [u32; 4],
}

static_assertions::assert_eq_size!(mpk_barrier, RawBarrier);
static_assertions::assert_eq_align!(mpk_barrier, RawBarrier);

/// The most parties of a barrier.
pub const MPK_BARRIER_MAX_PARTIES: u32 = 65535;
const _: () = assert!(MPK_BARRIER_MAX_PARTIES == crate::lock::MAX_PARTIES);

/// The Rust barrier behind a C pointer: `MPK_ERR_NULL`, `MPK_ERR_INVAL` (misaligned),
/// `MPK_ERR_BAD_OBJECT` (bytes that are no barrier: zero, foreign, corrupted).
///
/// # Safety
/// - `b` is NULL or points to `mpk_barrier`-sized memory that stays valid for `'a`.
unsafe fn raw<'a>(b: *const mpk_barrier) -> Result<&'a RawBarrier, Fail> {
    non_null(b)?;
    if !(b as usize).is_multiple_of(align_of::<RawBarrier>()) {
        return Err(Fail(MPK_ERR_INVAL));
    }
    // SAFETY: non-NULL, aligned, valid (caller duty); same size and alignment as RawBarrier
    // (asserted above), whose words are atomics or a reserved word nobody writes after init.
    let b = unsafe { &*b.cast::<RawBarrier>() };
    b.parties()?;
    Ok(b)
}

/// Initialises a barrier for `parties` parties in place (`MPK_ERR_INVAL` for 0 or more than
/// `MPK_BARRIER_MAX_PARTIES`). Do not call it while anyone waits on it.
///
/// # Safety
/// `b` is NULL or valid for writes of an `mpk_barrier`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_barrier_init(b: *mut mpk_barrier, parties: u32) -> mpk_status {
    call(|| {
        non_null(b)?;
        if !(b as usize).is_multiple_of(align_of::<RawBarrier>()) {
            return Err(Fail(MPK_ERR_INVAL));
        }
        let barrier = RawBarrier::new(parties)?;
        // SAFETY: non-NULL, aligned, writable (caller duty); nobody uses it (caller duty).
        unsafe { b.cast::<RawBarrier>().write(barrier) };
        Ok(())
    })
}

/// Creates a barrier for `parties` parties in its own small shared mapping, shared with
/// children forked afterwards (`MPK_ERR_INVAL` for 0 or too many). Release it with
/// `mpk_barrier_destroy`.
///
/// # Safety
/// `out` is NULL or valid for a write of a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_barrier_create(parties: u32, out: *mut *mut mpk_barrier) -> mpk_status {
    call(|| {
        non_null(out)?;
        let b = Barrier::new(parties)?.into_raw().cast::<mpk_barrier>();
        // SAFETY: `out` checked non-NULL above; valid by the caller's contract.
        unsafe { write_out(out, b.as_ptr()) }
    })
}

/// Unmaps this process's view of a barrier made by `mpk_barrier_create`. NULL, and a barrier
/// initialised in place, are ignored. Destroying the same handle twice is undefined behaviour.
///
/// # Safety
/// `b` is NULL or a valid barrier, not used by this process after the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_barrier_destroy(b: *mut mpk_barrier) {
    call_or((), || {
        let Some(b) = NonNull::new(b) else { return };
        // SAFETY: `b` is valid (caller duty); `from_payload` only reads the header when it sits
        // where `mpk_barrier_create` puts it (page offset HEADER_LEN), i.e. in the same page.
        drop(unsafe { Region::from_payload(b.cast(), Kind::Barrier) });
    })
}

/// Waits until all parties have called `mpk_barrier_wait`, at most `timeout_ms` (`MPK_FOREVER`,
/// `MPK_NOWAIT`, or ms). On `MPK_OK`, writes this party's index to `out_index` (may be NULL):
/// `0..parties-1`, distinct within a round, in order of arrival (as Python's `Barrier.wait`).
///
/// `MPK_ERR_BROKEN`: the barrier is broken (`mpk_barrier_abort`, or another party's wait timed
/// out), or was reset while this party waited. `MPK_ERR_TIMEOUT`: this party's own timeout
/// passed first, which breaks the barrier for all (Python raises `BrokenBarrierError` for this
/// party too). A party that dies while others wait leaves them waiting until their timeouts.
/// Also `MPK_ERR_NULL`, `MPK_ERR_INVAL` (bad timeout, misaligned), `MPK_ERR_BAD_OBJECT`.
///
/// # Safety
/// `b` is NULL or an initialised barrier; `out_index` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_barrier_wait(b: *mut mpk_barrier, timeout_ms: i64, out_index: *mut u32) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        let b = unsafe { raw(b) }?;
        let index = b.wait_until(deadline(timeout_ms)?)?;
        if !out_index.is_null() {
            // SAFETY: non-NULL and writable by the caller's contract.
            unsafe { write_out(out_index, index) }?;
        }
        Ok(())
    })
}

/// Breaks the barrier: waiters and later waits get `MPK_ERR_BROKEN` until `mpk_barrier_reset`.
///
/// # Safety
/// `b` is NULL or an initialised barrier.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_barrier_abort(b: *mut mpk_barrier) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        unsafe { raw(b) }?.abort();
        Ok(())
    })
}

/// Returns the barrier to its empty, unbroken state; parties waiting now get `MPK_ERR_BROKEN`.
///
/// # Safety
/// `b` is NULL or an initialised barrier.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_barrier_reset(b: *mut mpk_barrier) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        unsafe { raw(b) }?.reset();
        Ok(())
    })
}

/// How many parties wait in the current round (0 while broken, for NULL and for bytes that are
/// no barrier).
///
/// # Safety
/// `b` is NULL or an initialised barrier.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_barrier_n_waiting(b: *const mpk_barrier) -> u32 {
    call_or(0, || {
        // SAFETY: forwarded caller duty.
        unsafe { raw(b) }.map_or(0, |b| b.n_waiting())
    })
}

/// Whether the barrier is broken (false for NULL and for bytes that are no barrier).
///
/// # Safety
/// `b` is NULL or an initialised barrier.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_barrier_broken(b: *const mpk_barrier) -> bool {
    call_or(false, || {
        // SAFETY: forwarded caller duty.
        unsafe { raw(b) }.is_ok_and(|b| b.broken())
    })
}

const _: () = assert!(HEADER_LEN.is_multiple_of(align_of::<RawBarrier>()));
