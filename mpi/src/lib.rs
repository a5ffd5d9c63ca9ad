//! mpkit's pool `map` over MPI ranks: rank 0 holds the arguments and the results and hands out
//! chunks on demand; every rank (rank 0 included) maps its chunks on a local mpkit
//! [`Pool`](mpkit::Pool) (worker processes forked on that node). Rust on rsmpi over the system's MPI (Open MPI), and
//! a C ABI (`include/mpkit_mpi.h`, `libmpkit_mpi`, see [`ffi`]).
//!
//! - [`map`] / [`mpk_mpi_map`](ffi::mpk_mpi_map): a collective call (every rank of the
//!   communicator makes it); results in order on rank 0.
//! - [`imap_unordered`]: the same, collective, with rank 0 receiving results as chunks finish.
//! - [`Executor`]: the shape of mpi4py's `MPIPoolExecutor`: rank 0 calls
//!   [`submit`](Executor::submit) (a [`Future`] with [`get`](Future::get)) and
//!   [`map`](Executor::map); the other ranks call [`serve`](Executor::serve) until rank 0 shuts
//!   the executor down.
//!
//! # Protocol
//! Over a private duplicate of the caller's communicator (`MPI_Comm_dup`, so user messages never
//! mix with ours), tags `TAG_UP` (to rank 0) and `TAG_DOWN` (from it), messages of native-endian
//! `u64` words followed by bytes (the ranks must share one architecture):
//! 1. Rank 0 sends `BEGIN` to every rank. Each rank answers with `DEPTH` (2) `READY`s: it asks
//!    for two chunks, so that one is on its way while the other runs.
//! 2. Rank 0 answers each request at once: `WORK` (start, count, sizes, task, the arguments) from
//!    one shared counter, or `NONE` when no chunk is left (or the map failed). It maps chunks on
//!    its own pool from the same counter (`DEPTH` at a time).
//! 3. A rank maps a `WORK` chunk on its pool (`mpk_pool_map_async`, so two chunks overlap there)
//!    and sends `DONE` (start, count, results) or `FAIL` (global item index, status, task code),
//!    which is also its next request. So a rank that drains early asks early: no static split,
//!    and a slow node holds back at most the chunks it has.
//! 4. A rank is finished with the map once it got `DEPTH` `NONE`s (its results arrived before
//!    each). When every rank is, and rank 0's own chunks ended, rank 0 sends `END` with the
//!    map's outcome, and every rank returns that same outcome.
//!
//! A failure (a task's non-zero return, a worker process that died, a task time limit) stops the
//! hand-out: chunks already given out end, then every rank returns the failure of the lowest
//! failed item, with its global index and the rank that ran it.
//!
//! Chunks: `chunksize` items, or automatic (0): guided self-scheduling, each chunk
//! `remaining / (2 × ranks × workers)` items (workers: rank 0's pool), at least
//! `n / (ranks × workers × 32)`: large chunks first (few messages), small ones at the end (no
//! rank is left with a long tail). Either way at most 16 MiB of arguments + results.
//!
//! No rank blocks in MPI: sends are `MPI_Isend`s completed with `MPI_Test`, receives are
//! `MPI_Improbe` + `MPI_Mrecv` of arrived messages, and between polls that found nothing the
//! thread sleeps 20 µs, doubling to 100 µs (500 µs for a rank waiting for the next map). (Open MPI's blocking calls spin a core at 100%; on a
//! node whose cores run the pool's workers that would steal their CPU.) All of this runs on the
//! calling thread: MPI may be initialised with `MPI_THREAD_SINGLE` or `FUNNELED` if that thread
//! is the main one, `SERIALIZED` otherwise.
//!
//! # Failure model
//! The duplicate communicator has `MPI_ERRORS_RETURN`: an MPI error becomes [`Error::Mpi`]
//! (`MPK_ERR_BROKEN` in C, the MPI code from `mpk_mpi_last_failure`) instead of aborting.
//! A rank that dies (killed, crashed, `exit` without `MPI_Finalize`) is not survivable under Open
//! MPI 4: `mpirun` notices the dead process, kills the other ranks and exits non-zero, printing
//! which rank died (e.g. "mpirun noticed that process rank 1 with PID ... exited on signal 9
//! (Killed)"); rank 0 does not hang, it is killed with the job. A worker *process* of a rank's
//! local pool that dies is not a rank death: the pool reports `WorkerDied` for the item it ran,
//! replaces the worker, and the map fails with that item's index, as locally.
//!
//! # Tasks across ranks
//! In collective calls each rank passes its own task function and `ctx`. The executor names a
//! task to the other ranks by its code offset from a function of this crate: every rank must run
//! the same executable (as with mpi4py, where every rank runs the same script).
//!
//! # Processes
//! The collective calls create their local pool inside the call, after `MPI_Init`; its
//! supervisor and workers never call MPI. [`Executor::new`] creates it once.

use core::ffi::{c_int, c_void};
use core::fmt;
use core::marker::PhantomData;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};

use bytemuck::Pod;
use mpi::ffi::MPI_Comm;
use mpi::raw::AsRaw;
use mpkit::PoolOptions;
use mpkit::ffi::*;

mod engine;
pub mod ffi;
mod transport;

use engine::{Coordinator, Job, Local, Step, Task};
use transport::{Backoff, Comm};

pub use mpi;

/// A failed item (or a pool that could not be made), as it travels between ranks.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) status: mpk_status,
    pub(crate) code: c_int,
    pub(crate) item: usize,
    pub(crate) rank: c_int,
}

/// What went wrong in a distributed call.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// An item failed: `error` is what its rank's pool reported (`TaskFailed(code)`,
    /// `WorkerDied`, `TaskTimeout`; `Inval`/`NoMem`/... when a rank's pool could not be made,
    /// then `item` is the first item given to it), `item` its index in the whole map, `rank` the
    /// rank that ran it. Every rank returns the same.
    Task {
        /// The local pool's error.
        error: mpkit::Error,
        /// Index of the item in the whole map.
        item: usize,
        /// The rank that ran it.
        rank: i32,
    },
    /// An MPI call returned this error code (the communicator has `MPI_ERRORS_RETURN`).
    Mpi {
        /// The MPI error code.
        code: i32,
    },
    /// A message off the protocol, from `rank` (the ranks do not run the same program?).
    Protocol {
        /// The sender.
        rank: i32,
    },
    /// An argument is out of range (sizes that overflow, items larger than a message may be).
    Inval,
    /// Only rank 0 may make this call (the executor's `map` and `submit`).
    NotRoot,
    /// MPI is not initialised (or already finalised).
    NotInitialized,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Task { error, item, rank } => write!(f, "item {item} failed on rank {rank}: {error}"),
            Error::Mpi { code } => write!(f, "MPI error {code}"),
            Error::Protocol { rank } => write!(f, "unexpected message from rank {rank}"),
            Error::Inval => f.write_str("invalid argument"),
            Error::NotRoot => f.write_str("only rank 0 may do this"),
            Error::NotInitialized => f.write_str("MPI is not initialised"),
        }
    }
}

impl std::error::Error for Error {}

/// The core's error for a status (and task code).
pub(crate) fn error_of(status: mpk_status, code: c_int) -> mpkit::Error {
    use mpkit::Error as E;
    match status {
        MPK_ERR_TASK_FAILED => E::TaskFailed(code),
        MPK_ERR_WORKER_DIED => E::WorkerDied,
        MPK_ERR_TASK_TIMEOUT => E::TaskTimeout,
        MPK_ERR_CANCELLED => E::Cancelled,
        MPK_ERR_CLOSED => E::Closed,
        MPK_ERR_INVAL => E::Inval,
        MPK_ERR_NOMEM => E::NoMem,
        MPK_ERR_MSGSIZE => E::MsgSize { needed: 0 },
        MPK_ERR_STATE => E::State,
        MPK_ERR_SYS => E::Sys(code),
        _ => E::Broken,
    }
}

/// The status of the core's error (`mpkit::Error` is `non_exhaustive`: others are `BROKEN`).
pub(crate) fn status_of(e: mpkit::Error) -> mpk_status {
    use mpkit::Error as E;
    match e {
        E::TaskFailed(_) => MPK_ERR_TASK_FAILED,
        E::WorkerDied => MPK_ERR_WORKER_DIED,
        E::TaskTimeout => MPK_ERR_TASK_TIMEOUT,
        E::Cancelled => MPK_ERR_CANCELLED,
        E::Closed => MPK_ERR_CLOSED,
        E::Inval => MPK_ERR_INVAL,
        E::NoMem => MPK_ERR_NOMEM,
        E::MsgSize { .. } => MPK_ERR_MSGSIZE,
        E::State => MPK_ERR_STATE,
        E::Sys(_) => MPK_ERR_SYS,
        _ => MPK_ERR_BROKEN,
    }
}

impl From<Failure> for Error {
    fn from(f: Failure) -> Error {
        Error::Task { error: error_of(f.status, f.code), item: f.item, rank: f.rank }
    }
}

/// The C options for Rust ones.
fn c_options(o: &PoolOptions) -> mpk_pool_opts {
    mpk_pool_opts {
        struct_size: size_of::<mpk_pool_opts>(),
        workers: o.workers,
        max_arg: o.max_arg,
        max_result: o.max_result,
        maxtasksperchild: o.maxtasksperchild,
        initializer: o.initializer.map(|(f, _)| f),
        initarg: o.initializer.map_or(core::ptr::null_mut(), |(_, a)| a as *mut c_void),
        max_tasks: o.max_tasks,
        arena_bytes: o.arena_bytes,
        task_timeout_ms: o.task_timeout.map_or(0, |d| (d.as_millis() as u64).max(1)),
    }
}

/// Runs a Rust `fn(In) -> Out` (its address is `ctx`) as an `mpk_task_fn`.
unsafe extern "C" fn call_rust<In: Pod, Out: Pod>(
    ctx: *mut c_void,
    arg: *const c_void,
    arg_len: usize,
    out: *mut c_void,
    out_cap: usize,
    out_len: *mut usize,
) -> c_int {
    if arg_len != size_of::<In>() || out_cap < size_of::<Out>() {
        return MPK_ERR_INVAL;
    }
    // SAFETY: `ctx` is the `fn(In) -> Out` the task was made with (see `rust_task`).
    let f = unsafe { core::mem::transmute::<*mut c_void, fn(In) -> Out>(ctx) };
    // SAFETY: the pool passes `arg_len` = `size_of::<In>()` readable bytes.
    let a = unsafe { arg.cast::<In>().read_unaligned() };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || f(a))) {
        Ok(r) => {
            // SAFETY: `out` holds `out_cap` ≥ `size_of::<Out>()` writable bytes.
            unsafe { out.cast::<Out>().write_unaligned(r) };
            // SAFETY: the pool passes a writable `out_len`.
            unsafe { out_len.write(size_of::<Out>()) };
            0
        }
        Err(_) => mpkit::pool::TASK_PANIC_CODE,
    }
}

fn rust_task<In: Pod, Out: Pod>(f: fn(In) -> Out) -> Task {
    Task { f: Some(call_rust::<In, Out>), ctx: f as usize }
}

/// The executor's names for code: offsets from this function (the same in every process of one
/// executable, wherever it was loaded).
#[inline(never)]
fn anchor() -> usize {
    anchor as fn() -> usize as usize
}

fn code_offset(addr: usize) -> u64 {
    addr.wrapping_sub(anchor()) as u64
}

fn resolve_offsets(f_off: u64, ctx_off: u64) -> Task {
    let f = anchor().wrapping_add(f_off as usize);
    // SAFETY: rank 0 sent the offset of an `mpk_task_fn` of this executable (every rank runs
    // the same one, see the crate docs), so the address is that function here.
    let f = unsafe { core::mem::transmute::<usize, mpk_task_fn>(f) };
    Task { f, ctx: anchor().wrapping_add(ctx_off as usize) }
}

fn raw_comm<C: AsRaw<Raw = MPI_Comm>>(comm: &C) -> Result<Comm, Error> {
    if !transport::initialized() {
        return Err(Error::NotInitialized);
    }
    // SAFETY: a communicator handle of rsmpi (valid while `comm` lives) and MPI is initialised.
    unsafe { Comm::dup(comm.as_raw()) }
}

/// Checks sizes (every rank; rank 0's are the ones used) and makes the local pool.
fn prepare(opts: &PoolOptions) -> Result<Local, mpk_status> {
    let c = c_options(opts);
    // SAFETY: valid options; the pool's fork happens here (see "Processes" in the crate docs).
    unsafe { Local::new(&c) }
}

/// Collective: `f(items[i])` for every item, spread over the ranks of `comm`, each mapping its
/// chunks on a local pool made with `opts`. Rank 0 returns the results in order; the others
/// return an empty vector (their `items` are ignored). A failed item fails the call on every
/// rank with [`Error::Task`].
pub fn map<C: AsRaw<Raw = MPI_Comm>, In: Pod, Out: Pod>(
    comm: &C,
    f: fn(In) -> Out,
    items: &[In],
    opts: &PoolOptions,
    chunksize: usize,
) -> Result<Vec<Out>, Error> {
    let mut comm = raw_comm(comm)?;
    let local = prepare(opts);
    let task = rust_task(f);
    if comm.rank() != 0 {
        engine::serve_one(&mut comm, local.as_ref().map_err(|s| *s), &|_, _| task)?;
        return Ok(Vec::new());
    }
    let mut out: Vec<Out> = bytemuck::zeroed_vec(items.len());
    let results: &mut [u8] = bytemuck::cast_slice_mut(&mut out);
    let job = Job {
        task,
        offsets: (0, 0),
        args: bytemuck::cast_slice(items),
        arg_size: size_of::<In>(),
        result_size: size_of::<Out>(),
        n: items.len(),
        chunksize,
    };
    let size = size_of::<Out>();
    let mut coord = Coordinator::begin(&mut comm, local.as_ref().map_err(|s| *s), job)?;
    coord.run(&mut comm, local.as_ref().ok(), &mut |start, count, got| {
        results[start * size..(start + count) * size].copy_from_slice(got)
    })?;
    Ok(out)
}

/// Collective, streaming: on rank 0, an iterator of `(index, f(items[index]))` in the order the
/// chunks finish (Python's `imap_unordered`); on the other ranks, the call serves the whole map
/// before it returns, and the iterator yields nothing (or the map's error once). After a
/// failure the iterator yields the results that arrived, then the error, then ends.
pub fn imap_unordered<'a, C: AsRaw<Raw = MPI_Comm>, In: Pod, Out: Pod>(
    comm: &C,
    f: fn(In) -> Out,
    items: &'a [In],
    opts: &PoolOptions,
    chunksize: usize,
) -> Result<ImapUnordered<'a, Out>, Error> {
    let mut comm = raw_comm(comm)?;
    let local = prepare(opts);
    let task = rust_task(f);
    if comm.rank() != 0 {
        let outcome = engine::serve_one(&mut comm, local.as_ref().map_err(|s| *s), &|_, _| task);
        let error = outcome.err();
        return Ok(ImapUnordered { coord: None, local: None, comm, ready: VecDeque::new(), error, _out: PhantomData });
    }
    let job = Job {
        task,
        offsets: (0, 0),
        args: bytemuck::cast_slice(items),
        arg_size: size_of::<In>(),
        result_size: size_of::<Out>(),
        n: items.len(),
        chunksize,
    };
    let coord = Coordinator::begin(&mut comm, local.as_ref().map_err(|s| *s), job)?;
    Ok(ImapUnordered {
        coord: Some(coord),
        local: local.ok(),
        comm,
        ready: VecDeque::new(),
        error: None,
        _out: PhantomData,
    })
}

/// Results of [`imap_unordered`] on rank 0. Dropping it before the end still runs the map to its
/// end (the other ranks wait for it).
pub struct ImapUnordered<'a, Out: Pod> {
    /// Declared first: dropped before the pool its chunks run on.
    coord: Option<Coordinator<'a>>,
    local: Option<Local>,
    comm: Comm,
    ready: VecDeque<(usize, Out)>,
    error: Option<Error>,
    _out: PhantomData<Out>,
}

impl<Out: Pod> Iterator for ImapUnordered<'_, Out> {
    type Item = Result<(usize, Out), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut backoff = Backoff::new();
        loop {
            if let Some(r) = self.ready.pop_front() {
                return Some(Ok(r));
            }
            let Some(coord) = self.coord.as_mut() else { return self.error.take().map(Err) };
            let ready = &mut self.ready;
            let size = size_of::<Out>();
            let step = coord.step(&mut self.comm, self.local.as_ref(), &mut |start, count, got| {
                for i in 0..count {
                    ready.push_back((start + i, bytemuck::pod_read_unaligned(&got[i * size..(i + 1) * size])));
                }
            });
            match step {
                Ok(Step::Progress) => backoff.reset(),
                Ok(Step::Idle) => backoff.idle(),
                Ok(Step::Ended) => {
                    self.error = coord.outcome().err();
                    self.coord = None;
                }
                Err(e) => {
                    self.error = Some(e);
                    self.coord = None;
                }
            }
        }
    }
}

impl<Out: Pod> Drop for ImapUnordered<'_, Out> {
    fn drop(&mut self) {
        if let Some(coord) = self.coord.as_mut() {
            let _ = coord.run(&mut self.comm, self.local.as_ref(), &mut |_, _, _| {});
        }
    }
}

/// mpi4py's `MPIPoolExecutor`, for Rust tasks: rank 0 submits, the other ranks
/// [`serve`](Self::serve). Made collectively by every rank of `comm` (each makes its local pool
/// here, once). Use it from one thread (it is not `Sync`), and drop it before MPI is finalised
/// (before rsmpi's `Universe`).
///
/// [`submit`](Self::submit) queues a task and returns its [`Future`]; the queued tasks run as
/// one distributed map (per task function) when a future's [`get`](Future::get) is called (or
/// [`flush`](Self::flush)). [`map`](Self::map) runs at once.
pub struct Executor {
    comm: RefCell<Comm>,
    rank: c_int,
    /// Declared after `comm`: chunks never outlive a call, so the order only matters for the fork.
    local: Result<Local, mpk_status>,
    pending: RefCell<Vec<Pending>>,
    done: RefCell<HashMap<u64, Result<Vec<u8>, Error>>>,
    tickets: Cell<u64>,
    shut: Cell<bool>,
}

struct Pending {
    ticket: u64,
    /// `call_rust::<In, Out>` and the `fn`.
    task: (usize, usize),
    arg_size: usize,
    result_size: usize,
    arg: Vec<u8>,
}

impl Executor {
    /// Collective over `comm`: makes this rank's pool (forking its workers; do it before starting
    /// threads) and a private communicator.
    pub fn new<C: AsRaw<Raw = MPI_Comm>>(comm: &C, opts: &PoolOptions) -> Result<Executor, Error> {
        let local = prepare(opts);
        let comm = raw_comm(comm)?;
        Ok(Executor {
            rank: comm.rank(),
            comm: RefCell::new(comm),
            local,
            pending: RefCell::new(Vec::new()),
            done: RefCell::new(HashMap::new()),
            tickets: Cell::new(0),
            shut: Cell::new(false),
        })
    }

    /// Whether this is rank 0 (which submits; the others serve).
    pub fn is_root(&self) -> bool {
        self.rank == 0
    }

    /// On ranks other than 0: maps what rank 0 hands out until it shuts the executor down
    /// ([`shutdown`](Self::shutdown) or drop). A failed map is rank 0's to report; serving goes
    /// on. On rank 0: returns at once.
    pub fn serve(&self) -> Result<(), Error> {
        if self.is_root() {
            return Ok(());
        }
        let local = self.local.as_ref().map_err(|s| *s);
        let mut comm = self.comm.borrow_mut();
        loop {
            match engine::serve_one(&mut comm, local, &resolve_offsets) {
                Ok(true) | Err(Error::Task { .. }) => {}
                Ok(false) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    fn run(&self, job: Job<'_>, sink: &mut dyn FnMut(usize, usize, &[u8])) -> Result<(), Error> {
        if !self.is_root() {
            return Err(Error::NotRoot);
        }
        if self.shut.get() {
            return Err(Error::Task { error: mpkit::Error::Closed, item: 0, rank: 0 });
        }
        let mut comm = self.comm.borrow_mut();
        let mut coord = Coordinator::begin(&mut comm, self.local.as_ref().map_err(|s| *s), job)?;
        coord.run(&mut comm, self.local.as_ref().ok(), sink)
    }

    /// `f(items[i])` for every item over all ranks, results in order (rank 0 only).
    pub fn map<In: Pod, Out: Pod>(&self, f: fn(In) -> Out, items: &[In], chunksize: usize) -> Result<Vec<Out>, Error> {
        let job = Job {
            task: rust_task(f),
            offsets: (code_offset(call_rust::<In, Out> as *const () as usize), code_offset(f as usize)),
            args: bytemuck::cast_slice(items),
            arg_size: size_of::<In>(),
            result_size: size_of::<Out>(),
            n: items.len(),
            chunksize,
        };
        let mut out: Vec<Out> = bytemuck::zeroed_vec(items.len());
        let results: &mut [u8] = bytemuck::cast_slice_mut(&mut out);
        let size = size_of::<Out>();
        self.run(job, &mut |start, count, got| results[start * size..(start + count) * size].copy_from_slice(got))?;
        Ok(out)
    }

    /// Queues `f(arg)` (rank 0 only; elsewhere the future's `get` returns `NotRoot`).
    pub fn submit<In: Pod, Out: Pod>(&self, f: fn(In) -> Out, arg: In) -> Future<'_, Out> {
        let ticket = self.tickets.get();
        self.tickets.set(ticket + 1);
        self.pending.borrow_mut().push(Pending {
            ticket,
            task: (call_rust::<In, Out> as *const () as usize, f as usize),
            arg_size: size_of::<In>(),
            result_size: size_of::<Out>(),
            arg: bytemuck::bytes_of(&arg).to_vec(),
        });
        Future { ex: self, ticket, _out: PhantomData }
    }

    /// Runs every queued task: one distributed map per run of tasks with the same function.
    /// Items of a failed map that did not run get `Cancelled`.
    pub fn flush(&self) -> Result<(), Error> {
        let pending = core::mem::take(&mut *self.pending.borrow_mut());
        let mut rest = &pending[..];
        while let Some(first) = rest.first() {
            let len = rest.iter().take_while(|p| p.task == first.task).count();
            let (batch, tail) = rest.split_at(len);
            rest = tail;
            let args: Vec<u8> = batch.iter().flat_map(|p| p.arg.iter().copied()).collect();
            // SAFETY: `task.0` is `call_rust::<In, Out>` for the `In`/`Out` of `submit`.
            let f = unsafe { core::mem::transmute::<usize, mpk_task_fn>(first.task.0) };
            let job = Job {
                task: Task { f, ctx: first.task.1 },
                offsets: (code_offset(first.task.0), code_offset(first.task.1)),
                args: &args,
                arg_size: first.arg_size,
                result_size: first.result_size,
                n: batch.len(),
                chunksize: 1,
            };
            let size = first.result_size;
            let mut got: Vec<Option<Vec<u8>>> = vec![None; batch.len()];
            let outcome = self.run(job, &mut |start, count, bytes| {
                for i in 0..count {
                    got[start + i] = Some(bytes[i * size..(i + 1) * size].to_vec());
                }
            });
            let mut done = self.done.borrow_mut();
            for (i, (p, r)) in batch.iter().zip(got).enumerate() {
                let r = match (r, outcome) {
                    (Some(r), _) => Ok(r),
                    (None, Err(Error::Task { error, item, rank })) if item == i => {
                        Err(Error::Task { error, item, rank })
                    }
                    (None, Err(Error::Task { .. })) | (None, Ok(())) => {
                        Err(Error::Task { error: mpkit::Error::Cancelled, item: i, rank: 0 })
                    }
                    (None, Err(e)) => Err(e),
                };
                done.insert(p.ticket, r);
            }
            if let Err(e @ (Error::Mpi { .. } | Error::Protocol { .. })) = outcome {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Rank 0: ends every other rank's [`serve`](Self::serve). Later calls fail with `Closed`.
    /// Other ranks: nothing. (Dropping the executor on rank 0 does it too.)
    pub fn shutdown(&self) -> Result<(), Error> {
        if !self.is_root() || self.shut.replace(true) {
            return Ok(());
        }
        engine::shutdown(&mut self.comm.borrow_mut())
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// The result of [`Executor::submit`].
pub struct Future<'e, Out: Pod> {
    ex: &'e Executor,
    ticket: u64,
    _out: PhantomData<Out>,
}

impl<Out: Pod> Future<'_, Out> {
    /// Runs what is queued (if this task has not run yet) and returns its result. In a task
    /// of a failed map: `Error::Task` with the item's index in that map.
    pub fn get(self) -> Result<Out, Error> {
        if !self.ex.is_root() {
            return Err(Error::NotRoot);
        }
        if !self.ex.done.borrow().contains_key(&self.ticket) {
            self.ex.flush()?;
        }
        let r = self.ex.done.borrow_mut().remove(&self.ticket).ok_or(Error::Inval)?;
        r.map(|bytes| bytemuck::pod_read_unaligned(&bytes))
    }
}
