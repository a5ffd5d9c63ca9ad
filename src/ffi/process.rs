//! `mpk_process`: run a function in a forked child (Python's `Process`).

use core::ffi::{c_int, c_void};

use super::{
    Fail, MPK_ERR_INVAL, MPK_ERR_NULL, MPK_ERR_STATE, call, call_or, deadline, mpk_status, non_null, write_out,
};
use crate::process::{Process, ProcessOptions};

/// A child's entry point: runs in the forked child; its return value is the exit status (0..255).
pub type mpk_process_fn = Option<unsafe extern "C" fn(arg: *mut c_void) -> c_int>;

/// Options for `mpk_process_start`. Set `struct_size = sizeof(mpk_process_opts)`; fields added in
/// later versions go at the end, and older callers keep working.
#[repr(C)]
pub struct mpk_process_opts {
    /// `sizeof(mpk_process_opts)` as the caller was compiled.
    pub struct_size: usize,
    /// Kill the child (SIGKILL) when the parent thread that started it exits (Python's `daemon`).
    pub daemon: bool,
}

/// A child process. The handle is thread-safe.
pub struct mpk_process {
    inner: Process,
}

fn options(opts: *const mpk_process_opts) -> Result<ProcessOptions, Fail> {
    // SAFETY: NULL or readable for `struct_size` bytes (C contract); we read `struct_size` first
    // and then only the fields it covers.
    let Some(o) = (unsafe { opts.as_ref() }) else { return Ok(ProcessOptions::default()) };
    if o.struct_size < core::mem::offset_of!(mpk_process_opts, daemon) + size_of::<bool>() {
        return Err(Fail(MPK_ERR_INVAL));
    }
    Ok(ProcessOptions { daemon: o.daemon })
}

/// # Safety
/// - `p` is NULL or a live handle.
pub(super) unsafe fn process<'a>(p: *const mpk_process) -> Result<&'a Process, Fail> {
    // SAFETY: forwarded caller duty.
    unsafe { p.as_ref() }.map(|p| &p.inner).ok_or(Fail(MPK_ERR_NULL))
}

/// Forks a child that runs `fn(arg)` and exits with its return value. `opts` may be NULL.
///
/// Fork rules: if this process has other threads, the child may only do async-signal-safe work
/// and use mpkit's shared-memory primitives until it returns (no stdio, no locks other threads
/// may have held). Objects created before this call are shared with the child at the same address.
///
/// # Safety
/// `fn` is NULL or callable with `arg` in the child; `opts` is NULL or a valid options struct;
/// `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_process_start(
    r#fn: mpk_process_fn,
    arg: *mut c_void,
    opts: *const mpk_process_opts,
    out: *mut *mut mpk_process,
) -> mpk_status {
    call(|| {
        non_null(out)?;
        let f = r#fn.ok_or(Fail(MPK_ERR_NULL))?;
        let opts = options(opts)?;
        // SAFETY: `f` is callable with `arg` in the child (caller duty).
        let child = || unsafe { f(arg) };
        // SAFETY: the C caller accepts the fork rules above for `fn`.
        let inner = unsafe { Process::spawn_with(&opts, child) }?;
        let p = Box::into_raw(Box::new(mpk_process { inner }));
        // SAFETY: checked non-NULL above; writable by the caller's contract.
        unsafe { write_out(out, p) }
    })
}

/// Waits for the child to exit, at most `timeout_ms`. `MPK_OK` once it has exited (read the code
/// with `mpk_process_exitcode`), `MPK_ERR_TIMEOUT` if it still runs.
///
/// # Safety
/// `p` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_process_join(p: *mut mpk_process, timeout_ms: i64) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        let p = unsafe { process(p) }?;
        p.join_until(deadline(timeout_ms)?)?;
        Ok(())
    })
}

/// The exit code: the function's return value, or `-N` if signal N killed the child.
/// `MPK_ERR_STATE` while it runs.
///
/// # Safety
/// `p` is NULL or a live handle; `out_code` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_process_exitcode(p: *const mpk_process, out_code: *mut c_int) -> mpk_status {
    call(|| {
        non_null(out_code)?;
        // SAFETY: forwarded caller duty.
        let code = unsafe { process(p) }?.exitcode().ok_or(Fail(MPK_ERR_STATE))?;
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out_code, code) }
    })
}

/// The child's process id (-1 if `p` is NULL).
///
/// # Safety
/// `p` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_process_pid(p: *const mpk_process) -> c_int {
    // SAFETY: forwarded caller duty.
    call_or(-1, || unsafe { process(p) }.map_or(-1, Process::pid))
}

/// Whether the child is still running (false if `p` is NULL).
///
/// # Safety
/// `p` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_process_is_alive(p: *mut mpk_process) -> bool {
    // SAFETY: forwarded caller duty.
    call_or(false, || unsafe { process(p) }.is_ok_and(Process::is_alive))
}

/// Sends SIGTERM (no-op once the child has exited).
///
/// # Safety
/// `p` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_process_terminate(p: *mut mpk_process) -> mpk_status {
    // SAFETY: forwarded caller duty.
    call(|| Ok(unsafe { process(p) }?.terminate()?))
}

/// Sends SIGKILL (no-op once the child has exited).
///
/// # Safety
/// `p` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_process_kill(p: *mut mpk_process) -> mpk_status {
    // SAFETY: forwarded caller duty.
    call(|| Ok(unsafe { process(p) }?.kill()?))
}

/// A file descriptor that polls readable (POLLIN) once the child has exited (Python's
/// `sentinel`); owned by the handle, valid until `mpk_process_destroy`. -1 if `p` is NULL.
///
/// # Safety
/// `p` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_process_sentinel(p: *const mpk_process) -> c_int {
    use rustix::fd::AsRawFd;
    // SAFETY: forwarded caller duty.
    call_or(-1, || unsafe { process(p) }.map_or(-1, |p| p.sentinel().as_raw_fd()))
}

/// Releases the handle. An exited child is reaped now; a running one is detached and reaped by
/// a later `mpk_process_start`/`mpk_process_destroy` (it is not killed). NULL is ignored.
/// Destroying the same handle twice is undefined behaviour, as with `free`.
///
/// # Safety
/// `p` is NULL or a live handle, not used after the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_process_destroy(p: *mut mpk_process) {
    if !p.is_null() {
        // SAFETY: `p` came from Box::into_raw in `mpk_process_start` and is not used again.
        call_or((), || drop(unsafe { Box::from_raw(p) }));
    }
}
