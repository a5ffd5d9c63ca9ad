//! `mpk_shm`: raw shared memory, anonymous or named (Python's `shared_memory.SharedMemory`).

use core::ffi::{c_char, c_void};

use super::{Fail, call, call_or, mpk_status, non_null, str_arg, write_out};
use crate::shm::Region;

/// A shared memory region. Thread-safe handle.
pub struct mpk_shm {
    inner: Region,
}

fn publish(out: *mut *mut mpk_shm, inner: Region) -> Result<(), Fail> {
    let p = Box::into_raw(Box::new(mpk_shm { inner }));
    // SAFETY: the callers check `out` non-NULL first; writable by the C contract.
    unsafe { write_out(out, p) }
}

/// Creates an anonymous region of `size` zero bytes (64-byte aligned), shared with children
/// forked afterwards. Pages cost nothing until touched. `MPK_ERR_INVAL` if `size` is 0 or too large.
///
/// # Safety
/// `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_shm_create(size: usize, out: *mut *mut mpk_shm) -> mpk_status {
    call(|| {
        non_null(out)?;
        publish(out, Region::new(size)?)
    })
}

/// Creates the named region `name` (`"/name"` or `"name"`, no other `/`) of `size` zero bytes.
/// The name stays until `mpk_shm_unlink`. `MPK_ERR_EXISTS` if taken, `MPK_ERR_INVAL` for a bad name.
///
/// # Safety
/// `name` is NULL or NUL-terminated; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_shm_create_named(name: *const c_char, size: usize, out: *mut *mut mpk_shm) -> mpk_status {
    call(|| {
        non_null(out)?;
        // SAFETY: forwarded caller duty.
        let mut r = Region::create_named(unsafe { str_arg(name) }?, size)?;
        r.persist();
        publish(out, r)
    })
}

/// Opens a region made by `mpk_shm_create_named`. `MPK_ERR_NOT_FOUND`; `MPK_ERR_BAD_OBJECT` for a
/// foreign or truncated object or another kind of mpkit object; `MPK_ERR_VERSION`. Never waits:
/// mpkit names an object only once it is complete, so anything else found under a name (empty,
/// all zero, half-built) is refused at once.
///
/// # Safety
/// `name` is NULL or NUL-terminated; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_shm_open_named(name: *const c_char, out: *mut *mut mpk_shm) -> mpk_status {
    call(|| {
        non_null(out)?;
        // SAFETY: forwarded caller duty.
        publish(out, Region::open_named(unsafe { str_arg(name) }?)?)
    })
}

/// Removes a name made by any `*_create_named` call; open mappings stay valid.
/// `MPK_ERR_NOT_FOUND` if there is no such name.
///
/// # Safety
/// `name` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_shm_unlink(name: *const c_char) -> mpk_status {
    // SAFETY: forwarded caller duty.
    call(|| Ok(Region::unlink(unsafe { str_arg(name) }?)?))
}

/// The region's first byte (NULL if `r` is NULL); valid until `mpk_shm_destroy`.
///
/// # Safety
/// `r` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_shm_data(r: *mut mpk_shm) -> *mut c_void {
    // SAFETY: forwarded caller duty.
    call_or(core::ptr::null_mut(), || unsafe { r.as_ref() }.map_or(core::ptr::null_mut(), |r| r.inner.as_ptr().cast()))
}

/// The region's size in bytes (0 if `r` is NULL).
///
/// # Safety
/// `r` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_shm_size(r: *const mpk_shm) -> usize {
    // SAFETY: forwarded caller duty.
    call_or(0, || unsafe { r.as_ref() }.map_or(0, |r| r.inner.len()))
}

/// Unmaps this process's view and frees the handle (the name, if any, stays). NULL is ignored.
/// Destroying the same handle twice is undefined behaviour, as with `free`.
///
/// # Safety
/// `r` is NULL or a live handle, not used after the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_shm_destroy(r: *mut mpk_shm) {
    if !r.is_null() {
        // SAFETY: `r` came from Box::into_raw in `publish` and is not used again (caller duty).
        call_or((), || drop(unsafe { Box::from_raw(r) }));
    }
}
