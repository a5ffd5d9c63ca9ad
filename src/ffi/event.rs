//! `mpk_event`: the process-shared event (Python's `multiprocessing.Event`), in place or owned.

use core::ptr::NonNull;

use super::{Fail, MPK_ERR_INVAL, call, call_or, deadline, mpk_status, non_null, write_out};
use crate::lock::{Event, RawEvent};
use crate::shm::{HEADER_LEN, Kind, Region};

/// A process-shared event: 8 bytes, 4-byte aligned, placed anywhere (typically in shared memory).
/// Initialise in place with `mpk_event_init` (all-zero bytes are also a valid clear event), or
/// get an owned one from `mpk_event_create`. Treat the contents as opaque.
#[repr(C)]
pub struct mpk_event {
    _opaque: [u32; 2],
}

static_assertions::assert_eq_size!(mpk_event, RawEvent);
static_assertions::assert_eq_align!(mpk_event, RawEvent);

/// The Rust event behind a C pointer: `MPK_ERR_NULL`, `MPK_ERR_INVAL` (misaligned),
/// `MPK_ERR_BAD_OBJECT` (bytes that are no event).
///
/// # Safety
/// - `e` is NULL or points to `mpk_event`-sized memory that stays valid for `'a`.
pub(super) unsafe fn raw<'a>(e: *const mpk_event) -> Result<&'a RawEvent, Fail> {
    non_null(e)?;
    if !(e as usize).is_multiple_of(align_of::<RawEvent>()) {
        return Err(Fail(MPK_ERR_INVAL));
    }
    // SAFETY: non-NULL, aligned, valid (caller duty); same size and alignment as RawEvent
    // (asserted above), whose word is only accessed atomically and whose reserved word is
    // written by nobody after initialisation.
    let e = unsafe { &*e.cast::<RawEvent>() };
    e.check()?;
    Ok(e)
}

/// Initialises an event in place, clear. Do not call it while anyone waits on the event.
///
/// # Safety
/// `e` is NULL or valid for writes of an `mpk_event`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_event_init(e: *mut mpk_event) -> mpk_status {
    call(|| {
        non_null(e)?;
        if !(e as usize).is_multiple_of(align_of::<RawEvent>()) {
            return Err(Fail(MPK_ERR_INVAL));
        }
        // SAFETY: non-NULL, aligned, writable (caller duty); nobody uses it (caller duty).
        unsafe { e.cast::<RawEvent>().write(RawEvent::new()) };
        Ok(())
    })
}

/// Creates a clear event in its own small shared mapping, shared with children forked
/// afterwards. Release it with `mpk_event_destroy`.
///
/// # Safety
/// `out` is NULL or valid for a write of a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_event_create(out: *mut *mut mpk_event) -> mpk_status {
    call(|| {
        non_null(out)?;
        let e = Event::new()?.into_raw().cast::<mpk_event>();
        // SAFETY: `out` checked non-NULL above; valid by the caller's contract.
        unsafe { write_out(out, e.as_ptr()) }
    })
}

/// Unmaps this process's view of an event made by `mpk_event_create`. NULL, and an event
/// initialised in place, are ignored. Destroying the same handle twice is undefined behaviour.
///
/// # Safety
/// `e` is NULL or a valid event, not used by this process after the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_event_destroy(e: *mut mpk_event) {
    call_or((), || {
        let Some(e) = NonNull::new(e) else { return };
        // SAFETY: `e` is valid (caller duty); `from_payload` only reads the header when the event
        // sits where `mpk_event_create` puts it (page offset HEADER_LEN), i.e. in the same page.
        drop(unsafe { Region::from_payload(e.cast(), Kind::Event) });
    })
}

/// Sets the event and wakes every waiter (no system call when nobody waits).
///
/// # Safety
/// `e` is NULL or an initialised event.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_event_set(e: *mut mpk_event) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        unsafe { raw(e) }?.set();
        Ok(())
    })
}

/// Clears the event.
///
/// # Safety
/// `e` is NULL or an initialised event.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_event_clear(e: *mut mpk_event) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        unsafe { raw(e) }?.clear();
        Ok(())
    })
}

/// Whether the event is set; false for NULL and for bytes that are no event.
///
/// # Safety
/// `e` is NULL or an initialised event.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_event_is_set(e: *const mpk_event) -> bool {
    call_or(false, || {
        // SAFETY: forwarded caller duty.
        unsafe { raw(e) }.is_ok_and(|e| e.is_set())
    })
}

/// Waits until the event is set, at most `timeout_ms` (`MPK_FOREVER`, `MPK_NOWAIT`, or ms):
/// `MPK_OK`, or `MPK_ERR_TIMEOUT` (Python's `wait` returning False); `MPK_ERR_NULL`,
/// `MPK_ERR_INVAL` (bad timeout, misaligned), `MPK_ERR_BAD_OBJECT`.
///
/// # Safety
/// `e` is NULL or an initialised event.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_event_wait(e: *mut mpk_event, timeout_ms: i64) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        let e = unsafe { raw(e) }?;
        Ok(e.wait_until(deadline(timeout_ms)?)?)
    })
}

const _: () = assert!(HEADER_LEN.is_multiple_of(align_of::<RawEvent>()));
