//! `mpk_conn`: the two ends of a pipe (Python's `Pipe`, `Connection`).

use core::ffi::c_void;

use super::queue::{bytes, bytes_mut, report_len};
use super::{Fail, MPK_ERR_NULL, call, call_or, deadline, mpk_status, non_null, write_out};
use crate::pipe::{Conn, pipe_with_capacity};

/// One end of a pipe. One thread at a time per end (as with Python's Connection); the two ends
/// may be used concurrently. After `fork` both processes hold both ends: each should close the
/// end it does not use (`mpk_conn_close`), since an end reads as closed to its peer only once
/// every process holding it has closed it or died.
pub struct mpk_conn {
    inner: Conn,
}

/// # Safety
/// - `c` is NULL or a live handle not used by another thread during the call.
pub(super) unsafe fn conn<'a>(c: *mut mpk_conn) -> Result<&'a mut Conn, Fail> {
    // SAFETY: forwarded caller duty (exclusive use for the call).
    unsafe { c.as_mut() }.map(|c| &mut c.inner).ok_or(Fail(MPK_ERR_NULL))
}

/// Creates a connected pair with rings of `capacity_bytes` per direction (rounded up to a power
/// of two, at least 64; messages of any size stream through). `duplex`: both ends send and
/// receive; otherwise `*out_a` only receives and `*out_b` only sends. Both outputs are written,
/// or neither. `MPK_ERR_INVAL` if `capacity_bytes` is 0 or above 2^40.
///
/// # Safety
/// `out_a` and `out_b` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_pipe_create(
    capacity_bytes: usize,
    duplex: bool,
    out_a: *mut *mut mpk_conn,
    out_b: *mut *mut mpk_conn,
) -> mpk_status {
    call(|| {
        non_null(out_a)?;
        non_null(out_b)?;
        let (a, b) = pipe_with_capacity(capacity_bytes, duplex)?;
        let a = Box::into_raw(Box::new(mpk_conn { inner: a }));
        let b = Box::into_raw(Box::new(mpk_conn { inner: b }));
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out_a, a) }?;
        // SAFETY: as above.
        unsafe { write_out(out_b, b) }
    })
}

/// Sends one message of any length (`msg` may be NULL when `len` is 0), waiting at most
/// `timeout_ms` in all, for a message larger than the ring too (it streams through in pieces as
/// the reader makes room). `MPK_ERR_TIMEOUT` if it could not finish in time, `MPK_ERR_CLOSED` once
/// the other end is closed everywhere; `MPK_ERR_STATE` on a closed or receive-only end. On any
/// error the reader gets nothing of the message: one that had started is ended by an abort mark,
/// and the reader drops what it had of it. Until the reader gets past them, the aborted pieces
/// still take room in the ring.
///
/// # Safety
/// `c` is NULL or a live end (one thread at a time); `msg` is readable for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_conn_send(
    c: *mut mpk_conn,
    msg: *const c_void,
    len: usize,
    timeout_ms: i64,
) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        let c = unsafe { conn(c) }?;
        // SAFETY: forwarded caller duty.
        let msg = unsafe { bytes(msg, len) }?;
        Ok(c.send_until(msg, deadline(timeout_ms)?)?)
    })
}

/// Receives one message into `buf` (`cap` bytes), waiting at most `timeout_ms` in all; `*out_len`
/// is its length. `MPK_ERR_CLOSED` is end-of-file (the other end closed everywhere, all data read),
/// with `MPK_NOWAIT` too; `MPK_ERR_MSGSIZE`: `cap` is too small, `*out_len` is the size needed,
/// the message stays. Messages whose send failed are skipped, never returned or reported.
/// `MPK_ERR_TIMEOUT` may come part-way through a message larger than the ring: the handle keeps
/// what arrived (not `buf`), and the next receive on it continues that message. If the sender
/// dies part-way, the part is dropped and the receive returns `MPK_ERR_CLOSED`.
///
/// # Safety
/// `c` is NULL or a live end (one thread at a time); `buf` is writable for `cap` bytes;
/// `out_len` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_conn_recv(
    c: *mut mpk_conn,
    buf: *mut c_void,
    cap: usize,
    out_len: *mut usize,
    timeout_ms: i64,
) -> mpk_status {
    call(|| {
        non_null(out_len)?;
        // SAFETY: forwarded caller duty.
        let c = unsafe { conn(c) }?;
        // SAFETY: forwarded caller duty.
        let buf = unsafe { bytes_mut(buf, cap) }?;
        let got = c.recv_until(buf, deadline(timeout_ms)?);
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { report_len(out_len, got) }
    })
}

/// Waits at most `timeout_ms` for a message: `MPK_OK` if one is there or has begun (not
/// consumed; one larger than the ring may take longer to arrive whole), `MPK_ERR_TIMEOUT` if not,
/// `MPK_ERR_CLOSED` at end-of-file (with `MPK_NOWAIT` too).
///
/// # Safety
/// `c` is NULL or a live end (one thread at a time).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_conn_poll(c: *mut mpk_conn, timeout_ms: i64) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        let c = unsafe { conn(c) }?;
        Ok(c.poll_until(deadline(timeout_ms)?)?)
    })
}

/// Drops this process's hold on the end; the handle then answers `MPK_ERR_STATE` until
/// destroyed. Idempotent.
///
/// # Safety
/// `c` is NULL or a live end (one thread at a time).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_conn_close(c: *mut mpk_conn) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        unsafe { conn(c) }?.close();
        Ok(())
    })
}

/// Closes the end (if still open) and frees the handle. NULL is ignored.
///
/// # Safety
/// `c` is NULL or a live end, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_conn_destroy(c: *mut mpk_conn) {
    if !c.is_null() {
        // SAFETY: `c` came from Box::into_raw in `mpk_pipe_create` and is not used again.
        call_or((), || drop(unsafe { Box::from_raw(c) }));
    }
}
