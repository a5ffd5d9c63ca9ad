//! The C ABI (`include/mpkit_mpi.h`): the distributed map. Same conventions as `mpkit.h`: an
//! `mpk_status` (the core's codes), NULL checks, no panic crosses the boundary.
#![allow(non_camel_case_types)]

use core::ffi::{c_int, c_void};
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};

use mpi::ffi::MPI_Comm;
use mpkit::ffi::{
    MPK_ERR_BROKEN, MPK_ERR_INVAL, MPK_ERR_NULL, MPK_ERR_PANIC, MPK_ERR_STATE, MPK_OK, mpk_pool_opts, mpk_status,
    mpk_task_fn,
};

use crate::engine::{self, Coordinator, Job, Local, Task};
use crate::transport::{self, Comm};
use crate::{Error, status_of};

std::thread_local! {
    /// (item, task code, rank) of the last failure on this thread.
    static LAST_FAILURE: Cell<(usize, c_int, c_int)> = const { Cell::new((0, 0, -1)) };
}

/// The status for an error, noting its details for `mpk_mpi_last_failure`.
fn report(e: Error) -> mpk_status {
    match e {
        Error::Task { error, item, rank } => {
            let code = match error {
                mpkit::Error::TaskFailed(c) | mpkit::Error::Sys(c) => c,
                _ => 0,
            };
            LAST_FAILURE.set((item, code, rank));
            status_of(error)
        }
        Error::Mpi { code } => {
            LAST_FAILURE.set((0, code, -1));
            MPK_ERR_BROKEN
        }
        Error::Protocol { rank } => {
            LAST_FAILURE.set((0, 0, rank));
            MPK_ERR_BROKEN
        }
        Error::Inval => MPK_ERR_INVAL,
        Error::NotRoot | Error::NotInitialized => MPK_ERR_STATE,
    }
}

/// Distributed `mpk_pool_map`, collective over `comm` (NULL: `MPI_COMM_WORLD`): every rank calls
/// it with the same `fn` (and its own `ctx`, `pool_opts`). Rank 0 holds the `n` arguments
/// (`arg_size` bytes each, back to back at `args`) and receives item `i`'s result at
/// `results + i * result_size`; on other ranks `args`, `arg_size`, `n`, `results`,
/// `result_size` and `chunksize` are ignored (may be NULL/0). Chunks of `chunksize` items (0:
/// automatic) are handed out by rank 0 as ranks ask for them; each rank maps them on a local
/// pool made with `pool_opts` (NULL: one worker per CPU) for the call.
///
/// Every rank returns the same status: `MPK_OK`; `MPK_ERR_TASK_FAILED`, `MPK_ERR_WORKER_DIED`,
/// `MPK_ERR_TASK_TIMEOUT` for the lowest failed item (`mpk_mpi_last_failure` names it, its task
/// code and rank); `MPK_ERR_INVAL` (also for a rank whose `pool_opts` are invalid: then the
/// failed "item" is the first one handed to it); `MPK_ERR_BROKEN` for an MPI error (the MPI code
/// from `mpk_mpi_last_failure`); `MPK_ERR_STATE` if MPI is not initialised. The caller
/// initialises MPI (`MPI_Init` or `MPI_Init_thread`; this library never does) and makes the call
/// on one thread at a time.
///
/// # Safety
/// `comm` is NULL or points to a valid intra-communicator; on rank 0, `args` is readable for
/// `n * arg_size` bytes and `results` writable for `n * result_size` (NULL when the size is 0);
/// `pool_opts` NULL or valid; `fn` and `ctx` are valid in this rank's forked workers (code of this
/// program, data that existed before the call).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn mpk_mpi_map(
    comm: *const MPI_Comm,
    r#fn: mpk_task_fn,
    ctx: *mut c_void,
    args: *const c_void,
    arg_size: usize,
    n: usize,
    results: *mut c_void,
    result_size: usize,
    chunksize: usize,
    pool_opts: *const mpk_pool_opts,
) -> mpk_status {
    let body = || -> Result<(), mpk_status> {
        if r#fn.is_none() {
            return Err(MPK_ERR_NULL);
        }
        if !transport::initialized() {
            return Err(MPK_ERR_STATE);
        }
        // SAFETY: NULL or a valid handle (caller duty).
        let parent = unsafe { comm.as_ref() }.copied().unwrap_or_else(transport::world);
        // SAFETY: a valid communicator and MPI is initialised (checked above).
        let mut comm = unsafe { Comm::dup(parent) }.map_err(report)?;
        // SAFETY: forwarded caller duty (the fork of the local pool happens here).
        let local = unsafe { Local::new(pool_opts) };
        let task = Task { f: r#fn, ctx: ctx as usize };
        if comm.rank() != 0 {
            return engine::serve_one(&mut comm, local.as_ref().map_err(|s| *s), &|_, _| task)
                .map(drop)
                .map_err(report);
        }
        let (Some(arg_total), Some(result_total)) = (n.checked_mul(arg_size), n.checked_mul(result_size)) else {
            return Err(MPK_ERR_INVAL);
        };
        let args: &[u8] = if arg_total == 0 {
            &[]
        } else if args.is_null() {
            return Err(MPK_ERR_NULL);
        } else {
            // SAFETY: readable for `n * arg_size` bytes (caller duty).
            unsafe { core::slice::from_raw_parts(args.cast::<u8>(), arg_total) }
        };
        let results: &mut [u8] = if result_total == 0 {
            &mut []
        } else if results.is_null() {
            return Err(MPK_ERR_NULL);
        } else {
            // SAFETY: writable for `n * result_size` bytes (caller duty), not read by us.
            unsafe { core::slice::from_raw_parts_mut(results.cast::<u8>(), result_total) }
        };
        let job = Job { task, offsets: (0, 0), args, arg_size, result_size, n, chunksize };
        let mut coord = Coordinator::begin(&mut comm, local.as_ref().map_err(|s| *s), job).map_err(report)?;
        coord
            .run(&mut comm, local.as_ref().ok(), &mut |start, count, got| {
                results[start * result_size..(start + count) * result_size].copy_from_slice(got)
            })
            .map_err(report)
    };
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => MPK_OK,
        Ok(Err(status)) => status,
        Err(_) => MPK_ERR_PANIC,
    }
}

/// About the last failed `mpk_mpi_map` on this thread: the failed item's index in the whole map
/// (`*out_index`), the task's return code (`*out_code`; 0 for a dead worker; the MPI error code
/// after `MPK_ERR_BROKEN`) and the rank that ran it (`*out_rank`; -1 for an MPI error). Any
/// pointer may be NULL.
///
/// # Safety
/// Non-NULL pointers are writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_mpi_last_failure(
    out_index: *mut usize,
    out_code: *mut c_int,
    out_rank: *mut c_int,
) -> mpk_status {
    let (index, code, rank) = LAST_FAILURE.get();
    // SAFETY: NULL or writable (caller duty).
    if let Some(p) = unsafe { out_index.as_mut() } {
        *p = index;
    }
    // SAFETY: as above.
    if let Some(p) = unsafe { out_code.as_mut() } {
        *p = code;
    }
    // SAFETY: as above.
    if let Some(p) = unsafe { out_rank.as_mut() } {
        *p = rank;
    }
    MPK_OK
}
