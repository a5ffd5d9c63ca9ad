//! `mpk_pool`, `mpk_async`, `mpk_iter`: the worker pool.

use core::ffi::{c_int, c_void};
use std::cell::Cell;
use std::sync::Arc;

use super::array::mpk_array;
use super::queue::{bytes, bytes_mut};
use super::{
    Fail, MPK_ERR_INVAL, MPK_ERR_NULL, MPK_ERR_STATE, call, call_or, deadline, mpk_status, non_null, write_out,
};
use crate::error::Error;
use crate::pool::{ImapBytes, InitFn, Limit, MapBytesAsync, Pool, PoolOptions, TaskError, TaskFn};
use crate::sync::Arm;

static_assertions::const_assert_eq!(crate::pool::RESULT_TOO_LONG, super::MPK_ERR_MSGSIZE);

/// A task: reads `arg_len` bytes at `arg`, writes at most `out_cap` bytes at `out` and their
/// number to `*out_len`, returns 0 on success (non-zero fails the task with
/// `MPK_ERR_TASK_FAILED`, the code kept; a `*out_len` over `out_cap` fails it with code
/// `MPK_ERR_MSGSIZE`). Runs in a worker process: it may use code of this program and data that
/// existed when the pool was created; `ctx` is passed through as is.
pub type mpk_task_fn = Option<
    unsafe extern "C" fn(
        ctx: *mut c_void,
        arg: *const c_void,
        arg_len: usize,
        out: *mut c_void,
        out_cap: usize,
        out_len: *mut usize,
    ) -> c_int,
>;

/// Runs once in each worker before its first task; non-zero stops that worker (and repeated
/// failures make the pool's calls return `MPK_ERR_BROKEN`).
pub type mpk_init_fn = Option<unsafe extern "C" fn(arg: *mut c_void) -> c_int>;

/// Options for `mpk_pool_create`. Set `struct_size = sizeof(mpk_pool_opts)`; a field left 0
/// takes its default (except `workers`, which must be set).
#[repr(C)]
pub struct mpk_pool_opts {
    /// `sizeof(mpk_pool_opts)` as the caller was compiled.
    pub struct_size: usize,
    /// Worker processes (1 to 4095).
    pub workers: usize,
    /// Largest argument of a single task or `imap` item, in bytes (default 1024).
    pub max_arg: usize,
    /// Largest result of a single task or `imap` item, in bytes (default 1024).
    pub max_result: usize,
    /// Replace a worker after this many tasks (0: never).
    pub maxtasksperchild: usize,
    /// Optional worker initializer, with its argument.
    pub initializer: mpk_init_fn,
    /// Argument of `initializer`.
    pub initarg: *mut c_void,
    /// Tasks and chunks that may be unfinished or not yet collected at once (default 4096).
    /// Beyond it `mpk_pool_apply_async` fails at once with `MPK_ERR_NOMEM` (Python's would
    /// queue without bound): collect or destroy results to make room, or size this for the
    /// backlog you keep. Maps and iterators wait for their own chunks to make room.
    pub max_tasks: usize,
    /// Bytes of the arena that carries map chunks, virtual (default 256 MiB).
    pub arena_bytes: usize,
    /// Longest one call of a task function may run, in ms (0: no limit). Counted from the moment
    /// a worker starts the call (for a map, each item's call); a call running longer is stopped
    /// (its worker is killed and replaced) and fails with `MPK_ERR_TASK_TIMEOUT`.
    pub task_timeout_ms: u64,
}

/// A pool of worker processes. Thread-safe: several threads may submit work at once. Create it
/// early, from a single-threaded point of the program (it forks its supervisor).
/// A pool belongs to the process that created it: in a forked child that inherited it (and its
/// `mpk_async`/`mpk_iter` handles), every call fails with `MPK_ERR_STATE` and touches nothing
/// shared, and `mpk_pool_destroy` there frees only the child's copy; the creator's pool runs on.
pub struct mpk_pool {
    inner: Arc<Pool>,
}

/// A task started with `mpk_pool_apply_async`, or a map started with `mpk_pool_map_async`.
/// One thread at a time per handle.
pub struct mpk_async {
    what: Started,
    /// Declared last, so dropped after the map that borrows it.
    pool: Arc<Pool>,
}

enum Started {
    /// A single task's job slot; `None` once its result was taken.
    Task(Option<u32>),
    /// A map, with the caller's results array (`n` × `result_size` bytes) and `n`; `None` once
    /// its result was returned.
    Map(Option<Box<MapBytesAsync<'static>>>, *mut u8, usize),
}

/// Results of `mpk_pool_imap`/`mpk_pool_imap_unordered`. One thread at a time per handle.
pub struct mpk_iter {
    /// Borrows `_pool` (declared first, so dropped first).
    it: ImapBytes<'static>,
    _pool: Arc<Pool>,
}

std::thread_local! {
    static LAST_FAILURE: Cell<(usize, c_int)> = const { Cell::new((0, 0)) };
}

/// Records which item failed (and its task code) for `mpk_pool_last_failure`.
fn note(error: Error, item: usize) -> Error {
    match error {
        Error::TaskFailed(code) => LAST_FAILURE.set((item, code)),
        Error::WorkerDied | Error::TaskTimeout => LAST_FAILURE.set((item, 0)),
        _ => {}
    }
    error
}

fn failed(e: TaskError) -> Fail {
    note(e.error, e.item).into()
}

fn options(opts: *const mpk_pool_opts) -> Result<PoolOptions, Fail> {
    let mut o = PoolOptions::default();
    // SAFETY: NULL or readable for `struct_size` bytes (C contract); fields beyond
    // `struct_size` are not read.
    let Some(c) = (unsafe { opts.as_ref() }) else { return Ok(o) };
    let has = |end: usize| c.struct_size >= end;
    use core::mem::offset_of;
    if !has(offset_of!(mpk_pool_opts, workers) + size_of::<usize>()) || c.workers == 0 {
        return Err(Fail(MPK_ERR_INVAL));
    }
    o.workers = c.workers;
    let nonzero = |v: usize, default: usize| if v == 0 { default } else { v };
    if has(offset_of!(mpk_pool_opts, max_arg) + size_of::<usize>()) {
        o.max_arg = nonzero(c.max_arg, o.max_arg);
    }
    if has(offset_of!(mpk_pool_opts, max_result) + size_of::<usize>()) {
        o.max_result = nonzero(c.max_result, o.max_result);
    }
    if has(offset_of!(mpk_pool_opts, maxtasksperchild) + size_of::<usize>()) {
        o.maxtasksperchild = c.maxtasksperchild;
    }
    if has(offset_of!(mpk_pool_opts, initarg) + size_of::<*mut c_void>()) {
        o.initializer = c.initializer.map(|f| (f as InitFn, c.initarg as usize));
    }
    if has(offset_of!(mpk_pool_opts, max_tasks) + size_of::<usize>()) {
        o.max_tasks = nonzero(c.max_tasks, o.max_tasks);
    }
    if has(offset_of!(mpk_pool_opts, arena_bytes) + size_of::<usize>()) {
        o.arena_bytes = nonzero(c.arena_bytes, o.arena_bytes);
    }
    if has(offset_of!(mpk_pool_opts, task_timeout_ms) + size_of::<u64>()) && c.task_timeout_ms != 0 {
        o.task_timeout = Some(core::time::Duration::from_millis(c.task_timeout_ms));
    }
    Ok(o)
}

/// # Safety
/// - `p` is NULL or a live pool handle.
unsafe fn pool<'a>(p: *const mpk_pool) -> Result<&'a Arc<Pool>, Fail> {
    // SAFETY: forwarded caller duty.
    unsafe { p.as_ref() }.map(|p| &p.inner).ok_or(Fail(MPK_ERR_NULL))
}

fn task(f: mpk_task_fn) -> Result<TaskFn, Fail> {
    f.ok_or(Fail(MPK_ERR_NULL))
}

/// Creates a pool: maps its shared state and forks a supervisor process, which forks the
/// workers and replaces any that dies. `opts` may be NULL: one worker per CPU, defaults
/// elsewhere. `MPK_ERR_INVAL` for `workers` 0 or sizes that overflow.
///
/// # Safety
/// `opts` is NULL or a valid options struct; `out` is NULL or writable. The initializer and
/// every task function must be code of this program (see `mpk_task_fn`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_pool_create(opts: *const mpk_pool_opts, out: *mut *mut mpk_pool) -> mpk_status {
    call(|| {
        non_null(out)?;
        let opts = options(opts)?;
        // SAFETY: the C caller accepts the fork rules and the validity of its functions.
        let inner = Arc::new(unsafe { Pool::new(&opts) }?);
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out, Box::into_raw(Box::new(mpk_pool { inner }))) }
    })
}

/// Number of worker processes (0 if `p` is NULL).
///
/// # Safety
/// `p` is NULL or a live pool.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_pool_workers(p: *const mpk_pool) -> usize {
    // SAFETY: forwarded caller duty.
    call_or(0, || unsafe { pool(p) }.map_or(0, |p| p.workers()))
}

/// Calls `fn` on each of `n` items (`arg_size` bytes each, back to back at `args`), in the
/// workers, chunks of `chunksize` items (0: automatic); item `i`'s result (`result_size` bytes)
/// goes to `results + i * result_size`. Arguments and results are copied once each way.
/// On `MPK_ERR_TASK_FAILED`/`MPK_ERR_WORKER_DIED`, `mpk_pool_last_failure` names the item.
///
/// # Safety
/// `p` is NULL or a live pool; `args` is readable for `n * arg_size` bytes and `results`
/// writable for `n * result_size` (either may be NULL when its size is 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_pool_map(
    p: *mut mpk_pool,
    r#fn: mpk_task_fn,
    ctx: *mut c_void,
    args: *const c_void,
    arg_size: usize,
    n: usize,
    results: *mut c_void,
    result_size: usize,
    chunksize: usize,
) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        let p = unsafe { pool(p) }?;
        let f = task(r#fn)?;
        let (arg_total, result_total) =
            (n.checked_mul(arg_size).ok_or(Error::Inval)?, n.checked_mul(result_size).ok_or(Error::Inval)?);
        // SAFETY: forwarded caller duty.
        let args = unsafe { bytes(args, arg_total) }?;
        // SAFETY: forwarded caller duty.
        let results = unsafe { bytes_mut(results, result_total) }?;
        // SAFETY: `f` and `ctx` are valid in the workers (caller duty).
        unsafe { p.map_bytes(f, ctx as usize, args, arg_size, n, results, result_size, chunksize) }.map_err(failed)
    })
}

/// `mpk_pool_map` in place over two arrays made before the pool (so the workers have them):
/// item `i` of `in` is the argument, item `i` of `out` the result; nothing is copied.
/// `MPK_ERR_STATE` if either array was made after the pool, `MPK_ERR_INVAL` if the lengths differ.
///
/// # Safety
/// `p` is NULL or a live pool; `in`/`out` are NULL or live arrays not written by others during
/// the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_pool_map_array(
    p: *mut mpk_pool,
    r#fn: mpk_task_fn,
    ctx: *mut c_void,
    r#in: *const mpk_array,
    out: *mut mpk_array,
    chunksize: usize,
) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        let p = unsafe { pool(p) }?;
        let f = task(r#fn)?;
        // SAFETY: forwarded caller duty.
        let input = unsafe { super::array::array(r#in) }.ok_or(Fail(MPK_ERR_NULL))?;
        // SAFETY: forwarded caller duty.
        let output = unsafe { super::array::array(out) }.ok_or(Fail(MPK_ERR_NULL))?;
        // SAFETY: `f` and `ctx` are valid in the workers; the arrays follow the caller's duty.
        unsafe { p.map_arrays(f, ctx as usize, input, output, chunksize) }.map_err(failed)
    })
}

/// Runs `fn(ctx, arg)` in a worker and waits for its result (`*out_len` bytes at `out`).
/// `MPK_ERR_MSGSIZE` if `arg_len` exceeds max_arg, or the result exceeds `out_cap` (then
/// `*out_len` is its size).
///
/// # Safety
/// `p` is NULL or a live pool; `arg` readable for `arg_len` bytes, `out` writable for `out_cap`,
/// `out_len` NULL or writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn mpk_pool_apply(
    p: *mut mpk_pool,
    r#fn: mpk_task_fn,
    ctx: *mut c_void,
    arg: *const c_void,
    arg_len: usize,
    out: *mut c_void,
    out_cap: usize,
    out_len: *mut usize,
) -> mpk_status {
    call(|| {
        non_null(out_len)?;
        // SAFETY: forwarded caller duty.
        let p = unsafe { pool(p) }?;
        let f = task(r#fn)?;
        // SAFETY: forwarded caller duty.
        let arg = unsafe { bytes(arg, arg_len) }?;
        // SAFETY: forwarded caller duty.
        let out = unsafe { bytes_mut(out, out_cap) }?;
        // SAFETY: `f` and `ctx` are valid in the workers by the caller's contract.
        let got = unsafe { p.apply_bytes(f, ctx as usize, arg, out) };
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { super::queue::report_len(out_len, got.map_err(|e| note(e, 0))) }
    })
}

/// Starts `fn(ctx, arg)` in a worker; `*out` is its handle (destroy it with
/// `mpk_async_destroy`, even after the pool: the handle keeps what it needs).
/// `MPK_ERR_NOMEM` at once when `max_tasks` tasks are unfinished or uncollected (it never
/// waits for room); `MPK_ERR_STATE` after close, `MPK_ERR_CLOSED` after terminate.
/// The pool's `task_timeout_ms` applies.
///
/// # Safety
/// `p` is NULL or a live pool; `arg` readable for `arg_len` bytes; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_pool_apply_async(
    p: *mut mpk_pool,
    r#fn: mpk_task_fn,
    ctx: *mut c_void,
    arg: *const c_void,
    arg_len: usize,
    out: *mut *mut mpk_async,
) -> mpk_status {
    // SAFETY: forwarded caller duty.
    unsafe { start_task(p, r#fn, ctx, arg, arg_len, None, out) }
}

/// `mpk_pool_apply_async` with the task's own time limit: a call running longer than
/// `timeout_ms` is stopped (its worker killed and replaced) and `get` returns
/// `MPK_ERR_TASK_TIMEOUT`. `MPK_FOREVER`: no limit, whatever the pool's; 0: the pool's
/// `task_timeout_ms`; other negative values: `MPK_ERR_INVAL`.
///
/// # Safety
/// As for `mpk_pool_apply_async`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_pool_apply_async_timeout(
    p: *mut mpk_pool,
    r#fn: mpk_task_fn,
    ctx: *mut c_void,
    arg: *const c_void,
    arg_len: usize,
    timeout_ms: i64,
    out: *mut *mut mpk_async,
) -> mpk_status {
    let limit = match timeout_ms {
        super::MPK_FOREVER => Some(Limit::None),
        0 => None,
        ms if ms > 0 => Some(Limit::After(core::time::Duration::from_millis(ms as u64))),
        _ => return MPK_ERR_INVAL,
    };
    // SAFETY: forwarded caller duty.
    unsafe { start_task(p, r#fn, ctx, arg, arg_len, limit, out) }
}

/// # Safety
/// As for `mpk_pool_apply_async`.
unsafe fn start_task(
    p: *mut mpk_pool,
    f: mpk_task_fn,
    ctx: *mut c_void,
    arg: *const c_void,
    arg_len: usize,
    limit: Option<Limit>,
    out: *mut *mut mpk_async,
) -> mpk_status {
    call(|| {
        non_null(out)?;
        // SAFETY: forwarded caller duty.
        let p = unsafe { pool(p) }?;
        let f = task(f)?;
        // SAFETY: forwarded caller duty.
        let arg = unsafe { bytes(arg, arg_len) }?;
        let j = p.submit(f, ctx as usize, arg, limit)?;
        let a = Box::into_raw(Box::new(mpk_async { what: Started::Task(Some(j)), pool: p.clone() }));
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out, a) }
    })
}

/// Starts `mpk_pool_map` and returns at once with its handle in `*out` (Python's `map_async`):
/// the arguments are copied (`args` may be freed after the call); `results` must stay valid
/// until `mpk_async_get` returned `MPK_OK` (which fills it) or the handle is destroyed. Chunks
/// run in the background as far as `max_tasks` and the arena hold them; the rest is submitted
/// as the handle's calls (`get`, `wait`, `ready`) are made. On the handle, `mpk_async_get` fills
/// `results` (its `out`/`out_cap` are ignored, `*out_len` is `n`) or returns the map's failure
/// (`mpk_pool_last_failure` names the item), `mpk_async_cancel` stops every chunk.
///
/// # Safety
/// `p` is NULL or a live pool; `args` readable for `n * arg_size` bytes; `results` writable for
/// `n * result_size` bytes until the handle's result is returned or it is destroyed; `out` NULL
/// or writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn mpk_pool_map_async(
    p: *mut mpk_pool,
    r#fn: mpk_task_fn,
    ctx: *mut c_void,
    args: *const c_void,
    arg_size: usize,
    n: usize,
    results: *mut c_void,
    result_size: usize,
    chunksize: usize,
    out: *mut *mut mpk_async,
) -> mpk_status {
    call(|| {
        non_null(out)?;
        // SAFETY: forwarded caller duty.
        let p = unsafe { pool(p) }?;
        let f = task(r#fn)?;
        let result_total = n.checked_mul(result_size).ok_or(Error::Inval)?;
        // SAFETY: forwarded caller duty.
        let args = unsafe { bytes(args, n.checked_mul(arg_size).ok_or(Error::Inval)?) }?;
        // SAFETY: forwarded caller duty (checked here, written at `get`).
        let results = unsafe { bytes_mut(results, result_total) }?.as_mut_ptr();
        // SAFETY: `f`/`ctx` valid in the workers (caller duty); the map copies `args`.
        let map = unsafe { p.map_bytes_async(f, ctx as usize, args, arg_size, n, result_size, chunksize) }?;
        // SAFETY: the map borrows the pool inside the Arc kept in the same handle (and dropped
        // after it), so the borrow outlives every use; the Arc's target never moves.
        let map = unsafe { core::mem::transmute::<MapBytesAsync<'_>, MapBytesAsync<'static>>(map) };
        let what = Started::Map(Some(Box::new(map)), results, n);
        let a = Box::into_raw(Box::new(mpk_async { what, pool: p.clone() }));
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out, a) }
    })
}

impl mpk_async {
    /// For `mpk_wait`: ready once `mpk_async_get` would not block.
    pub(super) fn arm(&mut self, thorough: bool) -> Arm<'_> {
        match &mut self.what {
            Started::Task(Some(j)) => self.pool.arm_job(*j, thorough),
            Started::Map(Some(m), ..) => m.arm(thorough),
            Started::Task(None) | Started::Map(None, ..) => Arm::Ready, // answers MPK_ERR_STATE
        }
    }
}

impl mpk_iter {
    /// For `mpk_wait`: ready once `mpk_iter_next` would not block.
    pub(super) fn arm(&mut self, thorough: bool) -> Arm<'_> {
        self.it.arm(thorough)
    }
}

/// # Safety
/// - `a` is NULL or a live handle, used by one thread at a time.
pub(super) unsafe fn handle<'a>(a: *mut mpk_async) -> Result<&'a mut mpk_async, Fail> {
    // SAFETY: forwarded caller duty.
    unsafe { a.as_mut() }.ok_or(Fail(MPK_ERR_NULL))
}

/// Waits at most `timeout_ms` for the result and copies it to `out`. `MPK_ERR_TIMEOUT` leaves the
/// task running (try again later); `MPK_ERR_MSGSIZE` (`*out_len` = size needed) keeps the
/// result; `MPK_ERR_TASK_FAILED`, `MPK_ERR_WORKER_DIED`, `MPK_ERR_TASK_TIMEOUT` (stopped at its
/// time limit), `MPK_ERR_CANCELLED`, `MPK_ERR_CLOSED` (terminated) end it. After a result or
/// failure was returned, `MPK_ERR_STATE`. For a map's handle, see `mpk_pool_map_async`.
///
/// # Safety
/// `a` is NULL or a live handle; `out` writable for `out_cap` bytes; `out_len` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_async_get(
    a: *mut mpk_async,
    out: *mut c_void,
    out_cap: usize,
    out_len: *mut usize,
    timeout_ms: i64,
) -> mpk_status {
    call(|| {
        non_null(out_len)?;
        // SAFETY: forwarded caller duty.
        let a = unsafe { handle(a) }?;
        let deadline = deadline(timeout_ms)?;
        match &mut a.what {
            Started::Task(job) => {
                let j = job.ok_or(Fail(MPK_ERR_STATE))?;
                // SAFETY: forwarded caller duty.
                let out = unsafe { bytes_mut(out, out_cap) }?;
                let got = a.pool.collect(j, out, deadline);
                if !matches!(got, Err(Error::Timeout | Error::MsgSize { .. })) {
                    *job = None; // collected (or failed): the slot is released
                }
                // SAFETY: checked non-NULL; writable by the caller's contract.
                unsafe { super::queue::report_len(out_len, got.map_err(|e| note(e, 0))) }
            }
            Started::Map(map, results, n) => {
                let m = map.as_mut().ok_or(Fail(MPK_ERR_STATE))?;
                match m.results(deadline) {
                    Ok(got) => {
                        // SAFETY: `results` holds `n * result_size` = `got.len()` bytes and is
                        // writable until the result is returned (caller duty).
                        unsafe { results.copy_from_nonoverlapping(got.as_ptr(), got.len()) };
                        *map = None;
                        // SAFETY: checked non-NULL; writable by the caller's contract.
                        unsafe { write_out(out_len, *n) }
                    }
                    Err(e) if matches!(e.error, Error::Timeout | Error::State) => Err(e.error.into()),
                    Err(e) => {
                        *map = None;
                        Err(failed(e))
                    }
                }
            }
        }
    })
}

/// Waits at most `timeout_ms` until the task (or every chunk of the map) has ended (`MPK_OK`),
/// without taking its result.
///
/// # Safety
/// `a` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_async_wait(a: *mut mpk_async, timeout_ms: i64) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        let a = unsafe { handle(a) }?;
        let deadline = deadline(timeout_ms)?;
        match &mut a.what {
            Started::Task(job) => Ok(a.pool.wait_for(job.ok_or(Fail(MPK_ERR_STATE))?, deadline)?),
            Started::Map(map, ..) => Ok(map.as_mut().ok_or(Fail(MPK_ERR_STATE))?.wait(deadline)?),
        }
    })
}

/// Whether the task (or map) has ended (false if `a` is NULL or its result was already taken).
///
/// # Safety
/// `a` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_async_ready(a: *mut mpk_async) -> bool {
    call_or(false, || {
        // SAFETY: forwarded caller duty.
        let Ok(a) = (unsafe { handle(a) }) else { return false };
        match &mut a.what {
            Started::Task(job) => job.is_some_and(|j| a.pool.peek(j).is_some()),
            Started::Map(map, ..) => map.as_mut().is_some_and(|m| m.ready()),
        }
    })
}

/// Whether the task (or map) ended successfully (`*out`); `MPK_ERR_STATE` while it runs (or
/// after its result was taken).
///
/// # Safety
/// `a` is NULL or a live handle; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_async_successful(a: *mut mpk_async, out: *mut bool) -> mpk_status {
    call(|| {
        non_null(out)?;
        // SAFETY: forwarded caller duty.
        let a = unsafe { handle(a) }?;
        let ok = match &mut a.what {
            Started::Task(job) => job.and_then(|j| a.pool.peek(j)).ok_or(Fail(MPK_ERR_STATE))?.is_ok(),
            Started::Map(map, ..) => {
                let m = map.as_mut().ok_or(Fail(MPK_ERR_STATE))?;
                match m.results(crate::sync::Deadline::NOW) {
                    Ok(_) => true,
                    Err(e) if matches!(e.error, Error::Timeout | Error::State) => return Err(Fail(MPK_ERR_STATE)),
                    Err(_) => false,
                }
            }
        };
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out, ok) }
    })
}

/// Takes the task back: a queued task never runs, a running one is stopped (its worker is
/// killed and replaced); `mpk_async_get` then returns `MPK_ERR_CANCELLED`. For a map, every
/// chunk not yet ended. `MPK_ERR_STATE` if it had ended (or its result was taken).
///
/// # Safety
/// `a` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_async_cancel(a: *mut mpk_async) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        let a = unsafe { handle(a) }?;
        match &mut a.what {
            Started::Task(job) => Ok(a.pool.cancel(job.ok_or(Fail(MPK_ERR_STATE))?)?),
            Started::Map(map, ..) => Ok(map.as_mut().ok_or(Fail(MPK_ERR_STATE))?.cancel()?),
        }
    })
}

/// Frees the handle. A task still running goes on; its slot is reclaimed once it ends (a map's
/// chunks not yet submitted are dropped). NULL is ignored.
/// Destroying the same handle twice is undefined behaviour, as with `free`.
///
/// # Safety
/// `a` is NULL or a live handle, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_async_destroy(a: *mut mpk_async) {
    if !a.is_null() {
        call_or((), || {
            // SAFETY: `a` came from Box::into_raw in `start_task`/`mpk_pool_map_async`, not
            // used again.
            let a = unsafe { Box::from_raw(a) };
            if let Started::Task(Some(j)) = a.what {
                a.pool.abandon(j);
            }
        });
    }
}

/// # Safety
/// As for `mpk_pool_imap`.
#[allow(clippy::too_many_arguments)]
unsafe fn imap(
    p: *mut mpk_pool,
    f: mpk_task_fn,
    ctx: *mut c_void,
    args: *const c_void,
    arg_size: usize,
    n: usize,
    chunksize: usize,
    ordered: bool,
    out: *mut *mut mpk_iter,
) -> mpk_status {
    call(|| {
        non_null(out)?;
        // SAFETY: forwarded caller duty.
        let p = unsafe { pool(p) }?;
        let f = task(f)?;
        // SAFETY: forwarded caller duty.
        let args = unsafe { bytes(args, n.checked_mul(arg_size).ok_or(Error::Inval)?) }?;
        // SAFETY: `f`/`ctx` valid in the workers (caller duty); the iterator copies `args`.
        let it = unsafe { p.imap_bytes(f, ctx as usize, args, arg_size, n, chunksize, ordered) }?;
        // SAFETY: the iterator borrows the pool inside the Arc kept next to it (and dropped
        // after it), so the borrow outlives every use; the Arc's target never moves.
        let it = unsafe { core::mem::transmute::<ImapBytes<'_>, ImapBytes<'static>>(it) };
        let handle = Box::into_raw(Box::new(mpk_iter { it, _pool: p.clone() }));
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out, handle) }
    })
}

/// Starts `fn` on `n` items in the workers and returns an iterator over the results in item
/// order (Python's `imap`). Each result may be up to max_result bytes. The arguments are copied:
/// `args` may be freed after the call.
///
/// # Safety
/// `p` is NULL or a live pool; `args` readable for `n * arg_size` bytes; `out` NULL or writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn mpk_pool_imap(
    p: *mut mpk_pool,
    r#fn: mpk_task_fn,
    ctx: *mut c_void,
    args: *const c_void,
    arg_size: usize,
    n: usize,
    chunksize: usize,
    out: *mut *mut mpk_iter,
) -> mpk_status {
    // SAFETY: forwarded caller duty.
    unsafe { imap(p, r#fn, ctx, args, arg_size, n, chunksize, true, out) }
}

/// As `mpk_pool_imap`, results in the order they finish (Python's `imap_unordered`).
///
/// # Safety
/// As for `mpk_pool_imap`.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn mpk_pool_imap_unordered(
    p: *mut mpk_pool,
    r#fn: mpk_task_fn,
    ctx: *mut c_void,
    args: *const c_void,
    arg_size: usize,
    n: usize,
    chunksize: usize,
    out: *mut *mut mpk_iter,
) -> mpk_status {
    // SAFETY: forwarded caller duty.
    unsafe { imap(p, r#fn, ctx, args, arg_size, n, chunksize, false, out) }
}

/// The next result: `*out_index` is its item, `*out_len` bytes are at `out`. `MPK_ERR_CLOSED`
/// once every item was returned; `MPK_ERR_TIMEOUT`; `MPK_ERR_MSGSIZE` (`*out_len` = size needed,
/// the result stays); for a failed item `MPK_ERR_TASK_FAILED`/`MPK_ERR_WORKER_DIED` with
/// `*out_index` set, and the following calls go on with the other items.
///
/// # Safety
/// `it` is NULL or a live iterator; `out` writable for `out_cap` bytes; `out_index`, `out_len`
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_iter_next(
    it: *mut mpk_iter,
    out_index: *mut usize,
    out: *mut c_void,
    out_cap: usize,
    out_len: *mut usize,
    timeout_ms: i64,
) -> mpk_status {
    call(|| {
        non_null(out_index)?;
        non_null(out_len)?;
        // SAFETY: forwarded caller duty.
        let it = unsafe { it.as_mut() }.ok_or(Fail(MPK_ERR_NULL))?;
        // SAFETY: forwarded caller duty.
        let out = unsafe { bytes_mut(out, out_cap) }?;
        match it.it.next_into(out, deadline(timeout_ms)?) {
            Ok((i, len)) => {
                // SAFETY: both checked non-NULL; writable by the caller's contract.
                unsafe { write_out(out_index, i) }?;
                // SAFETY: as above.
                unsafe { write_out(out_len, len) }
            }
            Err(TaskError { error: Error::MsgSize { needed }, item }) => {
                // SAFETY: as above (the documented exception: sizes on MSGSIZE).
                unsafe { write_out(out_index, item) }?;
                // SAFETY: as above.
                unsafe { write_out(out_len, needed) }?;
                Err(Error::MsgSize { needed }.into())
            }
            Err(e @ TaskError { error: Error::TaskFailed(_) | Error::WorkerDied, item }) => {
                // SAFETY: as above (the failed item is named).
                unsafe { out_index.write(item) };
                Err(failed(e))
            }
            Err(e) => Err(e.error.into()),
        }
    })
}

/// Frees the iterator; chunks still running go on and are reclaimed once they end. NULL is
/// ignored.
/// Destroying the same handle twice is undefined behaviour, as with `free`.
///
/// # Safety
/// `it` is NULL or a live iterator, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_iter_destroy(it: *mut mpk_iter) {
    if !it.is_null() {
        // SAFETY: `it` came from Box::into_raw in `imap`, not used again.
        call_or((), || drop(unsafe { Box::from_raw(it) }));
    }
}

/// Which item the last `MPK_ERR_TASK_FAILED`/`MPK_ERR_WORKER_DIED` from a pool call on this
/// thread was about (`*out_index`; 0 for single tasks), and the task's return code
/// (`*out_code`; 0 for a dead worker). Either pointer may be NULL.
///
/// # Safety
/// Non-NULL pointers are writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_pool_last_failure(out_index: *mut usize, out_code: *mut c_int) -> mpk_status {
    call(|| {
        let (index, code) = LAST_FAILURE.get();
        if !out_index.is_null() {
            // SAFETY: non-NULL, so writable (caller duty).
            unsafe { write_out(out_index, index) }?;
        }
        if !out_code.is_null() {
            // SAFETY: as above.
            unsafe { write_out(out_code, code) }?;
        }
        Ok(())
    })
}

/// No more tasks: workers finish what was submitted, then exit (join afterwards).
///
/// # Safety
/// `p` is NULL or a live pool.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_pool_close(p: *mut mpk_pool) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        unsafe { pool(p) }?.close();
        Ok(())
    })
}

/// Stops the workers now; unfinished tasks end with `MPK_ERR_CLOSED`.
///
/// # Safety
/// `p` is NULL or a live pool.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_pool_terminate(p: *mut mpk_pool) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        unsafe { pool(p) }?.terminate();
        Ok(())
    })
}

/// Waits at most `timeout_ms` for the workers to exit, after close or terminate
/// (`MPK_ERR_STATE` before).
///
/// # Safety
/// `p` is NULL or a live pool.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_pool_join(p: *mut mpk_pool, timeout_ms: i64) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        Ok(unsafe { pool(p) }?.join_until(deadline(timeout_ms)?)?)
    })
}

/// Terminates the pool (unless it was joined), reaps its processes and frees the handle.
/// Outstanding `mpk_async`/`mpk_iter` handles stay safe to use (they report `MPK_ERR_CLOSED`)
/// and to destroy. NULL is ignored.
/// Destroying the same handle twice is undefined behaviour, as with `free`.
///
/// # Safety
/// `p` is NULL or a live pool, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_pool_destroy(p: *mut mpk_pool) {
    if !p.is_null() {
        call_or((), || {
            // SAFETY: `p` came from Box::into_raw in `mpk_pool_create`, not used again.
            let p = unsafe { Box::from_raw(p) };
            p.inner.shutdown();
        });
    }
}
