//! The worker pool (Python's `multiprocessing.Pool`): `map`, `imap`, `imap_unordered`, `apply`,
//! `apply_async`, `close`, `join`, `terminate`, with workers that may die without hanging anyone.
//!
//! # Processes
//! [`Pool::new`] maps the pool's shared region, then forks one **supervisor**, which forks the
//! workers and replaces any that exits (see `worker.rs`). Only that fork happens in the caller,
//! so create pools early, from a single-threaded point of the program (like any fork; see the
//! crate's fork rules); afterwards the caller may start threads freely, and several threads may
//! use one pool at once.
//!
//! # Tasks and data
//! A task is a plain function pointer: an `mpk_task_fn` in C, or a Rust `fn(In) -> Out` for
//! `Pod` types. Workers run the same program image, so code addresses and everything that existed
//! when the pool was created are valid there; anything else travels as bytes. Idle workers pull
//! tasks from one shared board in submission order (`board.rs`), so no task waits behind a busy
//! worker while another is idle. A single task's
//! argument and result (at most `max_arg`/`max_result` bytes) live in its job slot; a map's items
//! are cut into chunks whose arguments are copied once into the pool's arena and whose results are
//! copied once out of it. [`Pool::map_in_place`] reads and writes [`SharedArray`]s made before the
//! pool directly, with no copy at all.
//!
//! # Failures
//! A task that returns non-zero fails with `TaskFailed(code)`; a worker that dies with a task
//! (kill -9, a crash, `_exit`) fails it with `WorkerDied` as soon as the supervisor reaps it, and
//! a fresh worker takes its place. A map reports which item failed ([`TaskError::item`]); the
//! iterators report the failed item and go on with the others. If the supervisor itself dies, or
//! workers cannot start (their initializer keeps failing), every wait ends with `Broken` within
//! [`LIVENESS_TICK`].
//!
//! # Time limits and cancelling
//! A call may have a time limit ([`PoolOptions::task_timeout`], or per task with
//! [`Pool::apply_async_timeout`]); it counts from the moment a worker starts the call (for a
//! chunk, each item's call). A call running past it is stopped: its worker is killed and
//! replaced, and the task fails with `TaskTimeout` (`Timeout` stays what a `get` that stopped
//! waiting returns, the task going on). [`AsyncResult::cancel`] takes back a task: a queued one
//! never runs, a running one is stopped the same way; its `get` returns `Cancelled`.

// The job word and the board are loom-modelled (tests/loom_pool.rs), so loom builds expose them.
mod arm;
#[cfg(loom)]
#[doc(hidden)]
pub mod board;
#[cfg(not(loom))]
mod board;
#[cfg(loom)]
#[doc(hidden)]
pub mod job;
#[cfg(not(loom))]
mod job;
mod shared;
mod worker;

use core::ffi::{c_int, c_void};
use core::marker::PhantomData;
use core::time::Duration;
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use bytemuck::Pod;
use rustix::fd::{AsFd, OwnedFd};

use crate::array::{Element, SharedArray};
use crate::error::Error;
use crate::process::{Process, cpu_count};
use crate::shm::{Kind, Region};
use crate::sync::{Deadline, Ordering};
use crate::sys::proc as sys;
use job::Outcome;
use shared::{CHUNK, CHUNK_LEN, CLOSE, Header, LEN_WORD, Layout, RUN, SINGLE, Shared, TERMINATE, TaskMsg};
pub(crate) use shared::{InitFn, TaskFn};

/// Longest a waiting caller sleeps before it checks that the pool's supervisor still runs.
pub const LIVENESS_TICK: Duration = Duration::from_millis(50);
/// Exit code a Rust task reports when it panicked.
pub const TASK_PANIC_CODE: i32 = 101;
/// The code a task fails with when it reports a result longer than its result area (it broke
/// the `mpk_task_fn` contract); the value of C's `MPK_ERR_MSGSIZE`.
pub const RESULT_TOO_LONG: i32 = -6;

/// How to build a pool.
#[derive(Copy, Clone, Debug)]
pub struct PoolOptions {
    /// Worker processes (1 to 4095).
    pub workers: usize,
    /// Largest argument of a single task (`apply`, `apply_async`, one `imap` item), in bytes.
    pub max_arg: usize,
    /// Largest result of a single task or of one `imap` item, in bytes.
    pub max_result: usize,
    /// A worker is replaced after this many tasks (a chunk counts as one); 0: never.
    pub maxtasksperchild: usize,
    /// Run once in each worker before its first task; a non-zero return stops that worker (and
    /// repeated failures make the pool `Broken`).
    pub initializer: Option<(InitFn, usize)>,
    /// Job slots: tasks and chunks that may be unfinished or unclaimed at once. Beyond it
    /// `apply_async` fails at once with `NoMem` (it never waits for room).
    pub max_tasks: usize,
    /// Bytes of the arena that carries map chunks (virtual: pages are used only when touched).
    pub arena_bytes: usize,
    /// Longest one call of a task function may run (`None`: no limit); see the module docs.
    pub task_timeout: Option<Duration>,
}

impl Default for PoolOptions {
    /// One worker per CPU this process may run on; 1 KiB arguments and results.
    fn default() -> Self {
        PoolOptions {
            workers: cpu_count(),
            max_arg: 1024,
            max_result: 1024,
            maxtasksperchild: 0,
            initializer: None,
            max_tasks: 4096,
            arena_bytes: 256 << 20,
            task_timeout: None,
        }
    }
}

impl PoolOptions {
    /// Runs the Rust function `f` once in each worker before its first task.
    pub fn with_initializer(mut self, f: fn()) -> PoolOptions {
        self.initializer = Some((call_rust_init, f as usize));
        self
    }
}

unsafe extern "C" fn call_rust_init(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `fn()` stored by `with_initializer`, valid in this program image.
    let f = unsafe { core::mem::transmute::<*mut c_void, fn()>(arg) };
    std::panic::catch_unwind(f).map_or(TASK_PANIC_CODE, |()| 0)
}

/// A failed item of a map.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TaskError {
    /// `TaskFailed(code)`, `WorkerDied`, `Closed` (the pool was terminated), `Broken`, ...
    pub error: Error,
    /// Index of the item that failed (for `Broken` and the like, the first item not done).
    pub item: usize,
}

impl core::fmt::Display for TaskError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "item {}: {}", self.item, self.error)
    }
}

impl std::error::Error for TaskError {}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum Life {
    Open,
    Closed,
    Terminated,
}

impl Life {
    /// May new work start? `State` after `close`, `Closed` once terminated (the pool is gone).
    fn accepting(self) -> Result<(), Error> {
        match self {
            Life::Open => Ok(()),
            Life::Closed => Err(Error::State),
            Life::Terminated => Err(Error::Closed),
        }
    }
}

/// Parent-side bookkeeping (the parent is the only process that allocates).
struct Book {
    life: Life,
    free_jobs: Vec<u32>,
    free_groups: Vec<u32>,
    /// Outstanding references per group (its unreleased jobs, plus its owner).
    group_refs: Vec<u32>,
    /// Jobs whose owner went away before they ended, with their arena ranges.
    abandoned: Vec<(u32, Option<Span>)>,
    arena: Arena,
}

/// A range of the arena.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Span {
    off: usize,
    len: usize,
}

/// First-fit allocator over the arena's offsets, with coalescing (parent-local).
struct Arena {
    free: Vec<Span>,
}

impl Arena {
    fn alloc(&mut self, len: usize) -> Option<Span> {
        let len = len.max(1).next_multiple_of(64);
        let i = self.free.iter().position(|s| s.len >= len)?;
        let span = Span { off: self.free[i].off, len };
        self.free[i].off += len;
        self.free[i].len -= len;
        if self.free[i].len == 0 {
            self.free.remove(i);
        }
        Some(span)
    }

    fn release(&mut self, span: Span) {
        let i = self.free.partition_point(|s| s.off < span.off);
        self.free.insert(i, span);
        if i + 1 < self.free.len() && self.free[i].off + self.free[i].len == self.free[i + 1].off {
            self.free[i].len += self.free.remove(i + 1).len;
        }
        if i > 0 && self.free[i - 1].off + self.free[i - 1].len == self.free[i].off {
            self.free[i - 1].len += self.free.remove(i).len;
        }
    }
}

/// A pool of worker processes. Methods take `&self` and may be called from several threads.
/// It belongs to the process that created it: in a forked child every call fails with `State`
/// (and dropping it there touches nothing shared).
///
/// Tasks are plain `fn` items of `Pod` arguments and results, since they run in other processes.
/// ```
/// use std::time::Duration;
/// use mpkit::{Error, Pool, PoolOptions};
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
/// fn stall(_: u8) -> u8 {
///     loop {
///         std::thread::sleep(Duration::from_millis(50));
///     }
/// }
///
/// // SAFETY: the tasks are plain functions of this program; they use no lock, I/O or other
/// // state of the parent.
/// let pool = unsafe { Pool::new(&PoolOptions { workers: 2, ..PoolOptions::default() }) }?;
/// assert_eq!(pool.map(square, &[1, 2, 3]).map_err(|e| e.error)?, [1, 4, 9]);
/// let mut one = pool.apply_async(square, 7)?;
/// assert_eq!(one.get_timeout(Duration::from_secs(10))?, 49);
/// let each: Result<Vec<(usize, u64)>, _> = pool.imap(square, &[4, 5], 1)?.collect();
/// assert_eq!(each.map_err(|e| e.error)?, [(0, 16), (1, 25)]);
///
/// // A call past its own time limit is stopped (its worker replaced); the pool serves on.
/// let mut stuck = pool.apply_async_timeout(stall, 0, Duration::from_millis(100))?;
/// assert_eq!(stuck.get_timeout(Duration::from_secs(10)), Err(Error::TaskTimeout));
/// pool.close();
/// pool.join_timeout(Duration::from_secs(10))?;
/// # Ok::<(), mpkit::Error>(())
/// ```
pub struct Pool {
    shared: Shared,
    /// Keeps the shared region mapped; dropped last.
    _region: Region,
    supervisor: Process,
    /// Wakes the supervisor when the command changes.
    control: OwnedFd,
    book: Mutex<Book>,
    /// Regions made before this number are mapped in the workers too.
    generation: u64,
    /// The process that created the pool, the only one that may use it.
    creator: i32,
    /// The default time limit of one call, in ms (0: none).
    task_timeout_ms: u64,
}

/// A time limit in whole milliseconds, rounded up (at least 1).
fn limit_ms(d: Duration) -> u64 {
    u64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX).max(1)
}

/// A single task's own time limit, instead of the pool's.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Limit {
    None,
    After(Duration),
}

impl core::fmt::Debug for Pool {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Pool").field("workers", &self.workers()).field("supervisor", &self.supervisor.pid()).finish()
    }
}

/// A Rust `fn(In) -> Out` called as an `mpk_task_fn` (the function travels as `ctx`).
unsafe extern "C" fn call_rust<In: Pod, Out: Pod>(
    ctx: *mut c_void,
    arg: *const c_void,
    arg_len: usize,
    out: *mut c_void,
    out_cap: usize,
    out_len: *mut usize,
) -> c_int {
    if arg_len != size_of::<In>() || out_cap < size_of::<Out>() {
        return -1;
    }
    // SAFETY: `ctx` is the `fn(In) -> Out` the pool was given, valid in this program image.
    let f = unsafe { core::mem::transmute::<*mut c_void, fn(In) -> Out>(ctx) };
    // SAFETY: the argument slot holds `size_of::<In>()` bytes (checked), and In is Pod.
    let x = unsafe { arg.cast::<In>().read_unaligned() };
    // SAFETY: `out` has room for `Out` (checked); `out_len` is the worker's own length word.
    unsafe { give(std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || f(x))), out, out_len) }
}

/// A Rust `fn(A, B, ..) -> Out` over an argument tuple, called as an `mpk_task_fn`.
unsafe extern "C" fn call_star<Args: StarArgs, Out: Pod>(
    ctx: *mut c_void,
    arg: *const c_void,
    arg_len: usize,
    out: *mut c_void,
    out_cap: usize,
    out_len: *mut usize,
) -> c_int {
    if arg_len != Args::SIZE || out_cap < size_of::<Out>() {
        return -1;
    }
    // SAFETY: `ctx` is the function `starmap` was given, of this type, valid in this image.
    let f = unsafe { Args::func::<Out>(ctx as usize) };
    // SAFETY: the argument slot holds `Args::SIZE` bytes (checked).
    let args = Args::read(unsafe { core::slice::from_raw_parts(arg.cast::<u8>(), arg_len) });
    // SAFETY: as in `call_rust`.
    unsafe { give(std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || args.call(f))), out, out_len) }
}

/// Writes a Rust task's result (or reports its panic) as an `mpk_task_fn` does.
///
/// # Safety
/// `out` is writable for `size_of::<Out>()` bytes and `out_len` for a `usize`.
unsafe fn give<Out: Pod>(r: std::thread::Result<Out>, out: *mut c_void, out_len: *mut usize) -> c_int {
    match r {
        Ok(y) => {
            // SAFETY: caller duty.
            unsafe { out.cast::<Out>().write_unaligned(y) };
            // SAFETY: caller duty.
            unsafe { out_len.write(size_of::<Out>()) };
            0
        }
        Err(_) => TASK_PANIC_CODE,
    }
}

/// Argument tuples for [`Pool::starmap`]: `(A,)` up to `(A, B, C, D)` of `Pod` types. Items
/// travel packed, field after field.
pub trait StarArgs: Copy + 'static {
    /// Bytes of one packed item.
    const SIZE: usize;
    /// Packs the fields into `out` (`SIZE` bytes).
    fn write(&self, out: &mut [u8]);
    /// Unpacks an item from `SIZE` bytes.
    fn read(bytes: &[u8]) -> Self;
    /// The function type over these arguments, returning `Out`.
    type Func<Out: 'static>: Copy;
    /// The function's address, to travel as a task's `ctx`.
    fn addr<Out: 'static>(f: Self::Func<Out>) -> usize;
    /// The function at `addr`.
    ///
    /// # Safety
    /// `addr` came from [`addr`](Self::addr) for the same `Out`, in this program image.
    unsafe fn func<Out: 'static>(addr: usize) -> Self::Func<Out>;
    /// Calls `f` with the fields.
    fn call<Out: 'static>(self, f: Self::Func<Out>) -> Out;
}

macro_rules! star_args {
    ($($t:ident $v:ident),+) => {
        impl<$($t: Pod),+> StarArgs for ($($t,)+) {
            const SIZE: usize = 0 $(+ size_of::<$t>())+;
            fn write(&self, out: &mut [u8]) {
                let ($($v,)+) = self;
                let mut at = 0;
                $(
                    out[at..at + size_of::<$t>()].copy_from_slice(bytemuck::bytes_of($v));
                    at += size_of::<$t>();
                )+
                let _ = at;
            }
            fn read(bytes: &[u8]) -> Self {
                let mut at = 0;
                $(
                    let $v: $t = bytemuck::pod_read_unaligned(&bytes[at..at + size_of::<$t>()]);
                    at += size_of::<$t>();
                )+
                let _ = at;
                ($($v,)+)
            }
            type Func<Out: 'static> = fn($($t),+) -> Out;
            fn addr<Out: 'static>(f: Self::Func<Out>) -> usize {
                f as usize
            }
            unsafe fn func<Out: 'static>(addr: usize) -> Self::Func<Out> {
                // SAFETY: caller duty: `addr` is such a function's address.
                unsafe { core::mem::transmute::<usize, fn($($t),+) -> Out>(addr) }
            }
            fn call<Out: 'static>(self, f: Self::Func<Out>) -> Out {
                let ($($v,)+) = self;
                f($($v),+)
            }
        }
    };
}
star_args!(A a);
star_args!(A a, B b);
star_args!(A a, B b, C c);
star_args!(A a, B b, C c, D d);

impl Pool {
    /// Creates a pool: maps its region, forks the supervisor, which forks the workers.
    ///
    /// # Safety
    /// - As for [`Process::spawn`]: the fork happens here, so if this process has other threads,
    ///   the workers may only use what the fork rules allow. Create pools before starting threads.
    /// - Task functions, their `ctx` and the initializer must be valid in the workers: code of
    ///   this program image, and data that existed when the pool was created (or shared memory).
    pub unsafe fn new(opts: &PoolOptions) -> Result<Pool, Error> {
        let workers = opts.workers;
        if workers == 0
            || workers > job::MAX_OWNER as usize
            || opts.max_tasks == 0
            || opts.max_tasks > u32::MAX as usize / 4
            || opts.task_timeout == Some(Duration::ZERO)
        {
            return Err(Error::Inval);
        }
        let jobs = opts.max_tasks;
        let groups = jobs.min(4096);
        let layout =
            Layout::new(workers, jobs, groups, opts.max_arg, opts.max_result, opts.arena_bytes).ok_or(Error::Inval)?;
        let header = Header {
            workers: workers as u32,
            jobs: jobs as u32,
            groups: groups as u32,
            _r: 0,
            max_arg: opts.max_arg as u64,
            max_result: opts.max_result as u64,
            maxtasks: opts.maxtasksperchild as u64,
            init_fn: opts.initializer.map_or(0, |(f, _)| f as usize as u64),
            init_arg: opts.initializer.map_or(0, |(_, a)| a as u64),
            command: crate::sync::AtomicU32::new(RUN),
            broken: crate::sync::AtomicU32::new(0),
            armed: crate::sync::AtomicU64::new(u64::MAX),
        };
        let mut shared = None;
        let region = Region::build(Kind::Pool, [workers as u64, jobs as u64, 0, 0], layout.total, None, |mem| {
            // SAFETY: the fresh payload is exclusive, 64-byte aligned and `layout.total` long.
            shared = Some(unsafe { Shared::init(mem, layout, header) });
        })?;
        let shared = shared.expect("built above");
        let control = sys::eventfd()?;
        let generation = crate::shm::next_generation();
        let parent = std::process::id();
        let fd = control.as_fd();
        // SAFETY: the caller accepts the fork rules; the supervisor only touches the region and
        // its own children, then `_exit`s.
        let supervisor = unsafe { Process::spawn(move || worker::supervisor_main(shared, parent, fd)) }?;
        Ok(Pool {
            shared,
            _region: region,
            supervisor,
            control,
            book: Mutex::new(Book {
                life: Life::Open,
                free_jobs: (0..jobs as u32).rev().collect(),
                free_groups: (0..groups as u32).rev().collect(),
                group_refs: vec![0; groups],
                abandoned: Vec::new(),
                arena: Arena {
                    free: vec![Span { off: 0, len: opts.arena_bytes }].into_iter().filter(|s| s.len > 0).collect(),
                },
            }),
            generation,
            creator: sys::process_id(),
            task_timeout_ms: opts.task_timeout.map_or(0, limit_ms),
        })
    }

    /// Number of worker processes.
    pub fn workers(&self) -> usize {
        self.shared.layout.workers
    }

    /// Process ids of the current workers (a dead worker's slot shows its replacement once
    /// it has been started).
    pub fn worker_pids(&self) -> Vec<i32> {
        (0..self.workers()).map(|w| self.shared.worker(w).pid.load(Ordering::Relaxed) as i32).collect()
    }

    /// `State` unless the caller is the pool's creator. A forked child inherits the pool's
    /// mapping but its bookkeeping is the parent's (job slots, arena, result routing), so every
    /// call there fails and nothing shared is touched: no cross-talk with the parent's tasks.
    fn check_creator(&self) -> Result<(), Error> {
        if sys::process_id() == self.creator { Ok(()) } else { Err(Error::State) }
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Does worker `owner` (index + 1) run on this thread's CPU? Then a waiter yields rather
    /// than spins, or the worker could not run the task it waits for.
    fn beside_me(&self, owner: u32) -> bool {
        self.shared.worker(owner as usize - 1).cpu.load(Ordering::Relaxed) == crate::sync::current_cpu()
    }

    /// Is the pool still able to finish work? (Supervisor running, workers able to start.)
    fn alive(&self) -> bool {
        self.shared.header().broken.load(Ordering::Acquire) == 0 && self.supervisor.is_alive()
    }

    // ---- job slots ----------------------------------------------------------------------------

    /// Reclaims abandoned jobs that have ended.
    fn reclaim(&self, book: &mut Book) {
        let mut i = 0;
        while i < book.abandoned.len() {
            let (j, span) = book.abandoned[i];
            let job = self.shared.job(j);
            if job.outcome().is_some() && !self.still_written(j) {
                book.abandoned.swap_remove(i);
                self.release_job(book, j, span);
            } else {
                i += 1;
            }
        }
    }

    /// Whether job `j` ended but the worker it was taken from (cancelled, timed out) may still
    /// write into its slot and arena range: that worker's slot still names the task (the worker
    /// clears it after its last write, the supervisor after reaping it).
    fn still_written(&self, j: u32) -> bool {
        self.shared.job(j).taken().is_some_and(|t| {
            // Acquire pairs with the worker's (or supervisor's) Release clearing `running`.
            let running = self.shared.worker(t.owner as usize - 1).running.load(Ordering::Acquire);
            running == shared::running_word(j, t.ticket)
        })
    }

    /// Frees job `j` and its arena range, or defers that (to `reclaim`) while the worker it was
    /// taken from may still write there.
    fn release_job(&self, book: &mut Book, j: u32, span: Option<Span>) {
        if self.still_written(j) {
            book.abandoned.push((j, span));
            return;
        }
        let job = self.shared.job(j);
        let g = job.group.load(Ordering::Relaxed);
        job.free();
        book.free_jobs.push(j);
        if let Some(span) = span {
            book.arena.release(span);
        }
        if g != 0 {
            self.unref_group(book, g - 1);
        }
    }

    fn unref_group(&self, book: &mut Book, g: u32) {
        book.group_refs[g as usize] -= 1;
        if book.group_refs[g as usize] == 0 {
            self.shared.group(g).reset();
            book.free_groups.push(g);
        }
    }

    fn alloc_job(&self, book: &mut Book) -> Result<u32, Error> {
        book.life.accepting()?;
        if book.free_jobs.is_empty() {
            self.reclaim(book);
        }
        book.free_jobs.pop().ok_or(Error::NoMem)
    }

    /// Queues job `j` with task `msg` (its slot, arguments and result area already set up):
    /// offered on the board, then announced to the workers.
    fn queue(&self, j: u32, group: Option<u32>, msg: &TaskMsg) {
        // SAFETY: the job slot is ours (FREE until `queue`); nobody reads its description before
        // the Release store of QUEUED below.
        unsafe { self.shared.task(j).write(*msg) };
        let board = self.shared.board();
        board.offer(j);
        self.shared.job(j).queue(group);
        board.publish(j, crate::sync::current_cpu());
    }

    /// Takes back job `j` (the caller's): a queued task never runs, a running one is stopped
    /// (the supervisor kills its worker). `State` if it had ended.
    fn take_back(&self, j: u32) -> Result<(), Error> {
        let taken = self.shared.job(j).cancel(&|g| self.shared.group(g)).ok_or(Error::State)?;
        self.shared.board().unpend(j);
        if taken.owner != 0 {
            sys::eventfd_signal(&self.control); // the supervisor stops the worker (`stop_taken`)
        }
        Ok(())
    }

    // ---- single tasks -----------------------------------------------------------------------

    /// Queues one task: `func(ctx, arg, ...)` with the result in the job's slot, and a time
    /// limit of `limit` (`None`: the pool's default).
    pub(crate) fn submit(&self, func: TaskFn, ctx: usize, arg: &[u8], limit: Option<Limit>) -> Result<u32, Error> {
        self.check_creator()?;
        if arg.len() > self.shared.layout.max_arg {
            return Err(Error::MsgSize { needed: self.shared.layout.max_arg });
        }
        let j = self.alloc_job(&mut self.book())?;
        let (arg_at, out_at) = self.shared.job_data(j);
        // SAFETY: the job slot is ours (FREE until `queue`), with `max_arg` bytes for the argument.
        unsafe { arg_at.copy_from_nonoverlapping(arg.as_ptr(), arg.len()) };
        let msg = TaskMsg {
            kind: SINGLE,
            _r: 0,
            func: func as usize as u64,
            ctx: ctx as u64,
            arg: arg_at as usize as u64,
            arg_len: arg.len() as u64,
            n: 0,
            out: out_at as usize as u64,
            out_cap: self.shared.layout.max_result as u64,
            timeout_ms: match limit {
                None => self.task_timeout_ms,
                Some(Limit::None) => 0,
                Some(Limit::After(d)) => limit_ms(d),
            },
        };
        self.queue(j, None, &msg);
        Ok(j)
    }

    /// Takes back single task `j`: see [`AsyncResult::cancel`].
    pub(crate) fn cancel(&self, j: u32) -> Result<(), Error> {
        self.check_creator()?;
        self.take_back(j)
    }

    /// Waits for single task `j` and copies its result into `out`; the job is released unless
    /// the wait timed out or `out` is too small (`MsgSize`: kept for another try).
    pub(crate) fn collect(&self, j: u32, out: &mut [u8], deadline: Deadline) -> Result<usize, Error> {
        self.check_creator()?;
        let job = self.shared.job(j);
        let outcome = job.wait(deadline, LIVENESS_TICK, &mut || self.alive(), &|w| self.beside_me(w))?;
        let result = match outcome.failure() {
            None => {
                // At most the result area's size: the worker fails longer results.
                let len = job.len.load(Ordering::Relaxed) as usize;
                if len > out.len() {
                    return Err(Error::MsgSize { needed: len });
                }
                let (_, out_at) = self.shared.job_data(j);
                // SAFETY: the job ended, so its result area is ours; `len` fits both sides.
                unsafe { out.as_mut_ptr().copy_from_nonoverlapping(out_at, len) };
                Ok(len)
            }
            Some((error, _)) => Err(error),
        };
        self.release_job(&mut self.book(), j, None);
        result
    }

    /// Whether single task `j` has ended, and how.
    pub(crate) fn peek(&self, j: u32) -> Option<Result<(), Error>> {
        self.check_creator().ok()?;
        self.shared.job(j).outcome().map(|o| o.failure().map_or(Ok(()), |(error, _)| Err(error)))
    }

    /// Waits until single task `j` has ended (its result stays until collected).
    pub(crate) fn wait_for(&self, j: u32, deadline: Deadline) -> Result<(), Error> {
        self.check_creator()?;
        self.shared.job(j).wait(deadline, LIVENESS_TICK, &mut || self.alive(), &|w| self.beside_me(w)).map(|_| ())
    }

    /// Gives up on single task `j`: released now if it ended, else once it does.
    pub(crate) fn abandon(&self, j: u32) {
        if self.check_creator().is_err() {
            return;
        }
        let mut book = self.book();
        if self.shared.job(j).outcome().is_some() {
            self.release_job(&mut book, j, None);
        } else {
            book.abandoned.push((j, None));
        }
    }

    /// Runs `f(arg)` in a worker and waits for its result (Python's `apply`).
    pub fn apply<In: Pod, Out: Pod>(&self, f: fn(In) -> Out, arg: In) -> Result<Out, Error> {
        self.apply_async(f, arg)?.get()
    }

    /// Starts `f(arg)` in a worker (Python's `apply_async`).
    pub fn apply_async<In: Pod, Out: Pod>(&self, f: fn(In) -> Out, arg: In) -> Result<AsyncResult<'_, Out>, Error> {
        self.typed_submit(f, arg, None)
    }

    /// [`apply_async`](Self::apply_async) with its own time limit instead of the pool's: a call
    /// running longer than `limit` is stopped and fails with `TaskTimeout` (`Inval` for zero).
    pub fn apply_async_timeout<In: Pod, Out: Pod>(
        &self,
        f: fn(In) -> Out,
        arg: In,
        limit: Duration,
    ) -> Result<AsyncResult<'_, Out>, Error> {
        if limit.is_zero() {
            return Err(Error::Inval);
        }
        self.typed_submit(f, arg, Some(Limit::After(limit)))
    }

    fn typed_submit<In: Pod, Out: Pod>(
        &self,
        f: fn(In) -> Out,
        arg: In,
        limit: Option<Limit>,
    ) -> Result<AsyncResult<'_, Out>, Error> {
        if size_of::<Out>() > self.shared.layout.max_result {
            return Err(Error::MsgSize { needed: self.shared.layout.max_result });
        }
        let j = self.submit(call_rust::<In, Out>, f as usize, bytemuck::bytes_of(&arg), limit)?;
        Ok(AsyncResult { pool: self, job: Some(j), _out: PhantomData })
    }

    /// Byte-level `apply`: runs `func(ctx, arg, ...)` and copies its result into `out`.
    ///
    /// # Safety
    /// - `func` and `ctx` must be valid in the workers (see [`Pool::new`]).
    pub unsafe fn apply_bytes(&self, func: TaskFn, ctx: usize, arg: &[u8], out: &mut [u8]) -> Result<usize, Error> {
        let j = self.submit(func, ctx, arg, None)?;
        let r = self.collect(j, out, Deadline::FOREVER);
        if let Err(Error::MsgSize { .. }) = r {
            self.abandon(j);
        }
        r
    }

    // ---- maps -------------------------------------------------------------------------------

    /// Computes `f(x)` for every item in the workers; results in order (Python's `map`).
    /// Chunks are sized automatically.
    pub fn map<In: Pod, Out: Pod>(&self, f: fn(In) -> Out, items: &[In]) -> Result<Vec<Out>, TaskError> {
        self.map_chunked(f, items, 0)
    }

    /// [`map`](Self::map) with chunks of `chunksize` items (0: automatic).
    pub fn map_chunked<In: Pod, Out: Pod>(
        &self,
        f: fn(In) -> Out,
        items: &[In],
        chunksize: usize,
    ) -> Result<Vec<Out>, TaskError> {
        let mut out: Vec<Out> = bytemuck::zeroed_vec(items.len());
        // SAFETY: `call_rust::<In, Out>` with `f` is valid in the workers (code of this image).
        unsafe {
            self.map_bytes(
                call_rust::<In, Out>,
                f as usize,
                bytemuck::cast_slice(items),
                size_of::<In>(),
                items.len(),
                bytemuck::cast_slice_mut(&mut out),
                size_of::<Out>(),
                chunksize,
            )
        }?;
        Ok(out)
    }

    /// Python's `starmap`: `f(a, b, ..)` for every argument tuple; results in order.
    pub fn starmap<Args: StarArgs, Out: Pod>(&self, f: Args::Func<Out>, items: &[Args]) -> Result<Vec<Out>, TaskError> {
        let mut args = vec![0u8; items.len() * Args::SIZE];
        for (item, at) in items.iter().zip(args.chunks_exact_mut(Args::SIZE.max(1))) {
            item.write(at);
        }
        let mut out: Vec<Out> = bytemuck::zeroed_vec(items.len());
        // SAFETY: `call_star::<Args, Out>` with `f` is valid in the workers (code of this image).
        unsafe {
            self.map_bytes(
                call_star::<Args, Out>,
                Args::addr(f),
                &args,
                Args::SIZE,
                items.len(),
                bytemuck::cast_slice_mut(&mut out),
                size_of::<Out>(),
                0,
            )
        }?;
        Ok(out)
    }

    /// Starts a [`map`](Self::map) and returns at once (Python's `map_async`); the arguments
    /// are copied.
    pub fn map_async<In: Pod, Out: Pod>(
        &self,
        f: fn(In) -> Out,
        items: &[In],
        chunksize: usize,
    ) -> Result<MapAsync<'_, Out>, Error> {
        // SAFETY: `call_rust::<In, Out>` with `f` is valid in the workers (code of this image).
        let run = unsafe {
            self.map_bytes_async(
                call_rust::<In, Out>,
                f as usize,
                bytemuck::cast_slice(items),
                size_of::<In>(),
                items.len(),
                size_of::<Out>(),
                chunksize,
            )
        }?;
        Ok(MapAsync { run, _out: PhantomData })
    }

    /// Byte-level [`map_async`](Self::map_async) (see [`map_bytes`](Self::map_bytes)).
    ///
    /// # Safety
    /// - `func` and `ctx` must be valid in the workers (see [`Pool::new`]).
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn map_bytes_async(
        &self,
        func: TaskFn,
        ctx: usize,
        args: &[u8],
        arg_size: usize,
        n: usize,
        result_size: usize,
        chunksize: usize,
    ) -> Result<MapBytesAsync<'_>, Error> {
        if arg_size.checked_mul(n) != Some(args.len()) || result_size.checked_mul(n).is_none() {
            return Err(Error::Inval);
        }
        let src = Source::Copy { args: std::borrow::Cow::Owned(args.to_vec()) };
        let mut run = Chunks::new(self, func, ctx, src, arg_size, result_size, n, chunksize)?;
        run.window = usize::MAX; // as much as job slots and arena hold runs in the background
        let mut map = MapBytesAsync { run, results: vec![0; n * result_size], failure: None, finished: false };
        map.poll(Deadline::NOW).map_err(|e| e.error).or_else(|e| if e == Error::Timeout { Ok(()) } else { Err(e) })?;
        Ok(map)
    }

    /// Byte-level map: `args` holds `n` items of `arg_size` bytes; item `i`'s result goes to
    /// `results[i * result_size..]`. Either size may be 0 (tasks that take no argument or return
    /// nothing but their status).
    ///
    /// # Safety
    /// - `func` and `ctx` must be valid in the workers (see [`Pool::new`]).
    #[allow(clippy::too_many_arguments)] // the shape of the C call `mpk_pool_map`
    pub unsafe fn map_bytes(
        &self,
        func: TaskFn,
        ctx: usize,
        args: &[u8],
        arg_size: usize,
        n: usize,
        results: &mut [u8],
        result_size: usize,
        chunksize: usize,
    ) -> Result<(), TaskError> {
        let fail = |error| TaskError { error, item: 0 };
        if arg_size.checked_mul(n) != Some(args.len()) || result_size.checked_mul(n) != Some(results.len()) {
            return Err(fail(Error::Inval));
        }
        let src = Source::Copy { args: std::borrow::Cow::Borrowed(args) };
        let mut run = Chunks::new(self, func, ctx, src, arg_size, result_size, n, chunksize).map_err(fail)?;
        run.run_to_end(|start, count, got| {
            // SAFETY: `got` points to `count` results of `result_size` bytes in the arena.
            unsafe {
                results[start * result_size..(start + count) * result_size]
                    .as_mut_ptr()
                    .copy_from_nonoverlapping(got, count * result_size)
            };
        })
    }

    /// Map over a [`SharedArray`] made before the pool, in place: workers read `input` and
    /// write `output` directly, nothing is copied. `State` (as `TaskError::error`) if either
    /// array was made after the pool (the workers do not have it), `Inval` if the lengths differ.
    pub fn map_in_place<In: Element, Out: Element>(
        &self,
        f: fn(In) -> Out,
        input: &SharedArray<In>,
        output: &SharedArray<Out>,
        chunksize: usize,
    ) -> Result<(), TaskError> {
        // SAFETY: `call_rust::<In, Out>` with `f` is valid in the workers.
        unsafe { self.map_arrays(call_rust::<In, Out>, f as usize, input.as_any(), output.as_any(), chunksize) }
    }

    /// Byte-level [`map_in_place`](Self::map_in_place) over untyped arrays.
    ///
    /// # Safety
    /// - `func` and `ctx` must be valid in the workers (see [`Pool::new`]).
    /// - Nobody else writes `output` (or `input`) during the map except through their locks'
    ///   discipline; the workers write `output` without taking its lock.
    pub unsafe fn map_arrays(
        &self,
        func: TaskFn,
        ctx: usize,
        input: &crate::array::AnyArray,
        output: &crate::array::AnyArray,
        chunksize: usize,
    ) -> Result<(), TaskError> {
        let fail = |error| TaskError { error, item: 0 };
        if input.len() != output.len() {
            return Err(fail(Error::Inval));
        }
        if input.region().generation() >= self.generation || output.region().generation() >= self.generation {
            return Err(fail(Error::State));
        }
        let src = Source::InPlace { args: input.data() as usize, out: output.data() as usize };
        let mut run = Chunks::new(
            self,
            func,
            ctx,
            src,
            input.elem_type().size(),
            output.elem_type().size(),
            input.len(),
            chunksize,
        )
        .map_err(fail)?;
        run.run_to_end(|_, _, _| {})
    }

    /// Ordered results as they come (Python's `imap`): the `i`-th item yields `f(items[i])`.
    pub fn imap<In: Pod, Out: Pod>(
        &self,
        f: fn(In) -> Out,
        items: &[In],
        chunksize: usize,
    ) -> Result<Imap<'_, Out>, Error> {
        self.typed_imap(f, items, chunksize, true)
    }

    /// Results in the order they finish, with their index (Python's `imap_unordered`).
    pub fn imap_unordered<In: Pod, Out: Pod>(
        &self,
        f: fn(In) -> Out,
        items: &[In],
        chunksize: usize,
    ) -> Result<Imap<'_, Out>, Error> {
        self.typed_imap(f, items, chunksize, false)
    }

    fn typed_imap<In: Pod, Out: Pod>(
        &self,
        f: fn(In) -> Out,
        items: &[In],
        chunksize: usize,
        ordered: bool,
    ) -> Result<Imap<'_, Out>, Error> {
        let args = bytemuck::cast_slice(items);
        // SAFETY: `call_rust::<In, Out>` with `f` is valid in the workers (code of this image).
        let it = unsafe {
            self.imap_bytes(call_rust::<In, Out>, f as usize, args, size_of::<In>(), items.len(), chunksize, ordered)
        }?;
        Ok(Imap { it, _out: PhantomData })
    }

    /// Byte-level iterator over `n` items of `arg_size` bytes (each result up to `max_result`).
    ///
    /// # Safety
    /// - `func` and `ctx` must be valid in the workers (see [`Pool::new`]).
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn imap_bytes(
        &self,
        func: TaskFn,
        ctx: usize,
        args: &[u8],
        arg_size: usize,
        n: usize,
        chunksize: usize,
        ordered: bool,
    ) -> Result<ImapBytes<'_>, Error> {
        if arg_size.checked_mul(n) != Some(args.len()) || arg_size > self.shared.layout.max_arg {
            return Err(Error::Inval);
        }
        let slot = LEN_WORD + self.shared.layout.max_result.next_multiple_of(LEN_WORD);
        let src = Source::Copy { args: std::borrow::Cow::Owned(args.to_vec()) };
        let mut run = Chunks::new(self, func, ctx, src, arg_size, slot, n, chunksize)?;
        run.kind = CHUNK_LEN;
        Ok(ImapBytes { run, ordered, next: 0, yielded: 0, ready: VecDeque::new() })
    }

    // ---- life cycle ---------------------------------------------------------------------------

    /// No more tasks (Python's `close`): workers finish what was submitted, then exit.
    pub fn close(&self) {
        if self.check_creator().is_err() {
            return;
        }
        let mut book = self.book();
        if book.life == Life::Open {
            book.life = Life::Closed;
            self.command(CLOSE);
        }
    }

    /// Stops the workers now (Python's `terminate`): unfinished tasks end with `Closed`.
    pub fn terminate(&self) {
        if self.check_creator().is_err() {
            return;
        }
        {
            let mut book = self.book();
            book.life = Life::Terminated;
        }
        self.command(TERMINATE);
        let _ = self.supervisor.join_timeout(Duration::from_secs(5));
        if self.supervisor.is_alive() {
            let _ = self.supervisor.kill();
            let _ = self.supervisor.join();
        }
        let groups = |g| self.shared.group(g);
        let board = self.shared.board();
        for j in 0..self.shared.layout.jobs as u32 {
            if self.shared.job(j).terminate(&groups) {
                board.unpend(j);
            }
        }
    }

    /// Waits for the workers to exit after [`close`](Self::close) or
    /// [`terminate`](Self::terminate) (`State` before either).
    pub fn join(&self) -> Result<(), Error> {
        self.join_until(Deadline::FOREVER)
    }

    /// As [`join`](Self::join), waiting at most `timeout`.
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), Error> {
        self.join_until(Deadline::after(timeout))
    }

    /// As [`join`](Self::join), until `deadline`.
    pub fn join_until(&self, deadline: Deadline) -> Result<(), Error> {
        self.check_creator()?;
        if self.book().life == Life::Open {
            return Err(Error::State);
        }
        self.supervisor.join_until(deadline).map(|_| ())
    }

    fn command(&self, cmd: u32) {
        // Release pairs with the supervisor's Acquire load after the eventfd wakes it.
        self.shared.header().command.store(cmd, Ordering::Release);
        sys::eventfd_signal(&self.control);
    }
}

impl Pool {
    /// Terminates the pool unless its workers already exited, and reaps the supervisor.
    pub(crate) fn shutdown(&self) {
        if self.check_creator().is_err() {
            return; // the creator's pool: only this process's copy of the handle goes
        }
        if self.supervisor.is_alive() {
            self.terminate();
        }
        let _ = self.supervisor.join();
    }
}

impl Drop for Pool {
    /// Terminates the pool unless it was joined; no worker, supervisor or mapping is left
    /// (the region is unmapped when `region` drops, after this).
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A task started with [`Pool::apply_async`] (Python's `AsyncResult`). Dropping it before the
/// task ended is safe: the task goes on and its slot is reclaimed afterwards.
///
/// ```
/// use std::time::Duration;
/// use mpkit::{Error, Pool, PoolOptions};
///
/// fn double(x: i32) -> i32 {
///     2 * x
/// }
/// fn stall(_: u8) -> u8 {
///     loop {
///         std::thread::sleep(Duration::from_millis(50));
///     }
/// }
///
/// // SAFETY: the tasks are plain functions of this program; they use no lock, I/O or other
/// // state of the parent.
/// let pool = unsafe { Pool::new(&PoolOptions { workers: 1, ..PoolOptions::default() }) }?;
/// let mut r = pool.apply_async(double, 21)?;
/// r.wait(Some(Duration::from_secs(10)))?;
/// assert!(r.ready() && r.successful() == Some(true));
/// assert_eq!(r.get_timeout(Duration::from_secs(10))?, 42);
///
/// // A task that would never end: cancelling stops it (its worker is killed and replaced).
/// let mut stuck = pool.apply_async(stall, 0)?;
/// assert_eq!(stuck.get_timeout(Duration::from_millis(10)), Err(Error::Timeout)); // still going
/// stuck.cancel()?;
/// assert_eq!(stuck.get_timeout(Duration::from_secs(10)), Err(Error::Cancelled));
/// # Ok::<(), mpkit::Error>(())
/// ```
pub struct AsyncResult<'p, Out: Pod> {
    pool: &'p Pool,
    job: Option<u32>,
    _out: PhantomData<Out>,
}

impl<Out: Pod> core::fmt::Debug for AsyncResult<'_, Out> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AsyncResult").field("job", &self.job).finish()
    }
}

impl<Out: Pod> AsyncResult<'_, Out> {
    /// Waits for the result.
    pub fn get(self) -> Result<Out, Error> {
        self.get_until(Deadline::FOREVER)
    }

    /// Waits at most `timeout`: `Timeout` leaves the task running and this handle usable.
    pub fn get_timeout(&mut self, timeout: Duration) -> Result<Out, Error> {
        self.take_until(Deadline::after(timeout))
    }

    fn get_until(mut self, deadline: Deadline) -> Result<Out, Error> {
        self.take_until(deadline)
    }

    fn take_until(&mut self, deadline: Deadline) -> Result<Out, Error> {
        let j = self.job.ok_or(Error::State)?;
        let mut v = Out::zeroed();
        match self.pool.collect(j, bytemuck::bytes_of_mut(&mut v), deadline) {
            Err(Error::Timeout) => Err(Error::Timeout),
            r => {
                self.job = None;
                r.map(|_| v)
            }
        }
    }

    /// Waits until the task ended (at most `timeout`; `None`: forever).
    pub fn wait(&self, timeout: Option<Duration>) -> Result<(), Error> {
        let j = self.job.ok_or(Error::State)?;
        self.pool.wait_for(j, timeout.map_or(Deadline::FOREVER, Deadline::after))
    }

    /// Whether the task has ended.
    pub fn ready(&self) -> bool {
        self.job.is_some_and(|j| self.pool.peek(j).is_some())
    }

    /// Whether the task ended successfully; `None` while it runs.
    pub fn successful(&self) -> Option<bool> {
        self.job.and_then(|j| self.pool.peek(j)).map(|r| r.is_ok())
    }

    /// Takes the task back: a queued one never runs, a running one is stopped (its worker is
    /// killed and replaced); `get` then returns `Cancelled`. `State` if it had ended (or its
    /// result was taken).
    pub fn cancel(&self) -> Result<(), Error> {
        self.pool.cancel(self.job.ok_or(Error::State)?)
    }
}

impl<Out: Pod> Drop for AsyncResult<'_, Out> {
    fn drop(&mut self) {
        if let Some(j) = self.job.take() {
            self.pool.abandon(j);
        }
    }
}

/// A map started with [`Pool::map_bytes_async`]. Its chunks run in the background as far as the
/// pool's job slots and arena hold them; the rest is submitted as `get`, `wait` and `ready` are
/// called. Dropping it lets running chunks end on their own (their slots are reclaimed then).
pub struct MapBytesAsync<'p> {
    run: Chunks<'p, 'static>,
    results: Vec<u8>,
    /// The lowest failed item so far.
    failure: Option<TaskError>,
    /// Every chunk ended.
    finished: bool,
}

impl core::fmt::Debug for MapBytesAsync<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MapBytesAsync").field("finished", &self.finished).finish()
    }
}

impl MapBytesAsync<'_> {
    /// Drives the map until it ended or `deadline` (`Timeout`): the map's result once ended.
    fn poll(&mut self, deadline: Deadline) -> Result<(), TaskError> {
        self.run.pool.check_creator().map_err(|error| TaskError { error, item: 0 })?;
        let size = self.run.out_size;
        while !self.finished {
            let results = &mut self.results;
            let mut take = |start: usize, count: usize, got: *const u8| {
                // SAFETY: `got` points to `count` results of `size` bytes in the arena.
                unsafe {
                    results[start * size..(start + count) * size]
                        .as_mut_ptr()
                        .copy_from_nonoverlapping(got, count * size)
                };
            };
            match self.run.step(&mut self.failure, deadline, &mut take) {
                Ok(done) => self.finished = done,
                Err(e) if e.error == Error::Timeout => return Err(e),
                Err(e) => {
                    // The pool can no longer finish it (broken): that is its end.
                    self.failure = Some(self.failure.unwrap_or(e));
                    self.finished = true;
                }
            }
        }
        self.failure.map_or(Ok(()), Err)
    }

    /// Waits until every chunk ended (`Timeout` first: the map goes on).
    pub fn wait(&mut self, deadline: Deadline) -> Result<(), Error> {
        match self.poll(deadline) {
            Err(e) if e.error == Error::Timeout || e.error == Error::State => Err(e.error),
            _ => Ok(()),
        }
    }

    /// Whether every chunk ended (submitting more if there is room).
    pub fn ready(&mut self) -> bool {
        self.wait(Deadline::NOW).is_ok()
    }

    /// The results (`n * result_size` bytes, in order), waiting until `deadline`; or the
    /// lowest failed item (`TaskFailed`, `WorkerDied`, `TaskTimeout`, `Cancelled`, ...).
    pub fn results(&mut self, deadline: Deadline) -> Result<&[u8], TaskError> {
        self.poll(deadline)?;
        Ok(&self.results)
    }

    /// Takes the map back: chunks not yet run never run, running ones are stopped; the map then
    /// fails with `Cancelled` (at its first item not done). `State` once it had ended.
    pub fn cancel(&mut self) -> Result<(), Error> {
        self.run.pool.check_creator()?;
        if self.finished || self.ready() {
            return Err(Error::State);
        }
        let first = self.run.todo.front().map(|t| t.0).into_iter();
        let item = first.chain(self.run.flights.iter().map(|f| f.start)).min().unwrap_or(0);
        if self.failure.is_none_or(|f| item < f.item) {
            self.failure = Some(TaskError { error: Error::Cancelled, item });
        }
        self.run.cancel();
        Ok(())
    }
}

/// A typed map started with [`Pool::map_async`] (Python's `MapResult`).
///
/// The caller goes on while the workers compute; the results come back in item order.
/// ```
/// use std::time::Duration;
/// use mpkit::{Pool, PoolOptions};
///
/// fn cube(x: i64) -> i64 {
///     x * x * x
/// }
///
/// // SAFETY: the task is a plain function of this program; it uses no lock, I/O or other
/// // state of the parent.
/// let pool = unsafe { Pool::new(&PoolOptions { workers: 2, ..PoolOptions::default() }) }?;
/// let items: Vec<i64> = (0..100).collect();
/// let mut cubes = pool.map_async(cube, &items, 10)?; // chunks of 10 items
/// // ... other work here, while the workers compute ...
/// cubes.wait(Some(Duration::from_secs(10)))?;
/// assert!(cubes.ready());
/// let got = cubes.get_timeout(Duration::from_secs(10)).map_err(|e| e.error)?;
/// assert_eq!((got.len(), got[3], got[99]), (100, 27, 970_299));
/// # Ok::<(), mpkit::Error>(())
/// ```
pub struct MapAsync<'p, Out: Pod> {
    run: MapBytesAsync<'p>,
    _out: PhantomData<Out>,
}

impl<Out: Pod> core::fmt::Debug for MapAsync<'_, Out> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.run.fmt(f)
    }
}

impl<Out: Pod> MapAsync<'_, Out> {
    /// Waits for every result, in order; or the lowest failed item.
    pub fn get(mut self) -> Result<Vec<Out>, TaskError> {
        self.get_until(Deadline::FOREVER)
    }

    /// As [`get`](Self::get), waiting at most `timeout` (`Timeout`: the map goes on, ask again).
    pub fn get_timeout(&mut self, timeout: Duration) -> Result<Vec<Out>, TaskError> {
        self.get_until(Deadline::after(timeout))
    }

    fn get_until(&mut self, deadline: Deadline) -> Result<Vec<Out>, TaskError> {
        self.run.results(deadline).map(bytemuck::pod_collect_to_vec)
    }

    /// Waits until every chunk ended (at most `timeout`; `None`: forever).
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<(), Error> {
        self.run.wait(timeout.map_or(Deadline::FOREVER, Deadline::after))
    }

    /// Whether the map has ended.
    pub fn ready(&mut self) -> bool {
        self.run.ready()
    }

    /// See [`MapBytesAsync::cancel`].
    pub fn cancel(&mut self) -> Result<(), Error> {
        self.run.cancel()
    }
}

// ---- chunks: the engine under map and the iterators ---------------------------------------------

/// Where a chunked run's items live.
enum Source<'a> {
    /// The caller's arguments; each chunk's arguments and results are copied through the arena.
    Copy { args: std::borrow::Cow<'a, [u8]> },
    /// Inherited shared arrays, used in place (addresses valid in the workers).
    InPlace { args: usize, out: usize },
}

/// One submitted chunk.
struct Flight {
    job: u32,
    start: usize,
    count: usize,
    /// Its arena range (arguments, then results), for copied sources.
    span: Option<Span>,
    /// Where its results are.
    results: usize,
}

/// A finished chunk, in the iterators' hands.
struct Landed {
    flight: Flight,
    outcome: Outcome,
}

struct Chunks<'p, 'a> {
    pool: &'p Pool,
    func: TaskFn,
    ctx: usize,
    src: Source<'a>,
    arg_size: usize,
    out_size: usize,
    /// Item ranges not yet submitted, in order.
    todo: VecDeque<(usize, usize)>,
    flights: Vec<Flight>,
    group: u32,
    /// Group jobs seen ended.
    seen: u32,
    /// Most chunks in flight at once.
    window: usize,
    /// `CHUNK`, or `CHUNK_LEN` when each result slot starts with its length.
    kind: u32,
}

impl<'p, 'a> Chunks<'p, 'a> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        pool: &'p Pool,
        func: TaskFn,
        ctx: usize,
        src: Source<'a>,
        arg_size: usize,
        out_size: usize,
        n: usize,
        chunksize: usize,
    ) -> Result<Chunks<'p, 'a>, Error> {
        let workers = pool.workers();
        // Python's default: about four chunks per worker. Keep a chunk's bytes within a share
        // of the arena so that a window of them always fits.
        let per_item = (arg_size + out_size).max(1);
        let cap = (pool.shared.layout.arena_len / (4 * workers).max(1) / per_item).max(1);
        let chunk = if chunksize == 0 { n.div_ceil(4 * workers).max(1) } else { chunksize };
        let chunk = if matches!(src, Source::Copy { .. }) { chunk.min(cap) } else { chunk };
        pool.check_creator()?;
        let group = {
            let mut book = pool.book();
            book.life.accepting()?;
            let g = book.free_groups.pop().ok_or(Error::NoMem)?;
            book.group_refs[g as usize] = 1;
            g
        };
        let todo = (0..n).step_by(chunk.max(1)).map(|s| (s, chunk.min(n - s))).collect();
        Ok(Chunks {
            pool,
            func,
            ctx,
            src,
            arg_size,
            out_size,
            todo,
            flights: Vec::new(),
            group,
            seen: 0,
            window: 2 * workers,
            kind: CHUNK,
        })
    }

    /// Submits chunks while the window has room.
    fn fill(&mut self) -> Result<(), Error> {
        while self.flights.len() < self.window {
            let Some((start, count)) = self.todo.pop_front() else { return Ok(()) };
            if let Err(e) = self.submit(start, count) {
                self.todo.push_front((start, count));
                if e == Error::NoMem && !self.flights.is_empty() {
                    return Ok(()); // wait for room
                }
                return Err(e);
            }
        }
        Ok(())
    }

    fn submit(&mut self, start: usize, count: usize) -> Result<(), Error> {
        let pool = self.pool;
        let (j, span) = {
            let mut book = pool.book();
            let j = pool.alloc_job(&mut book)?;
            let span = match self.src {
                Source::Copy { .. } => {
                    match book.arena.alloc(count * self.arg_size + count * self.out_size).or_else(|| {
                        pool.reclaim(&mut book); // ranges kept from workers stopped meanwhile
                        book.arena.alloc(count * self.arg_size + count * self.out_size)
                    }) {
                        Some(s) => Some(s),
                        None => {
                            book.free_jobs.push(j);
                            return Err(Error::NoMem);
                        }
                    }
                }
                Source::InPlace { .. } => None,
            };
            book.group_refs[self.group as usize] += 1;
            (j, span)
        };
        let (arg, out) = match (&self.src, span) {
            (Source::Copy { args }, Some(span)) => {
                let at = pool.shared.arena(span.off);
                let bytes = &args[start * self.arg_size..(start + count) * self.arg_size];
                // SAFETY: the span is ours and holds `count` arguments and then results.
                unsafe { at.copy_from_nonoverlapping(bytes.as_ptr(), bytes.len()) };
                (at as usize, at as usize + bytes.len())
            }
            (Source::InPlace { args, out }, _) => (args + start * self.arg_size, out + start * self.out_size),
            (Source::Copy { .. }, None) => unreachable!("copied sources always get a span"),
        };
        let msg = TaskMsg {
            kind: self.kind,
            _r: 0,
            func: self.func as usize as u64,
            ctx: self.ctx as u64,
            arg: arg as u64,
            arg_len: self.arg_size as u64,
            n: count as u64,
            out: out as u64,
            out_cap: self.out_size as u64,
            timeout_ms: pool.task_timeout_ms,
        };
        self.flights.push(Flight { job: j, start, count, span, results: out });
        pool.queue(j, Some(self.group), &msg);
        Ok(())
    }

    /// Waits (until `deadline`) until at least one more chunk ended, and takes the ended ones.
    fn land(&mut self, deadline: Deadline) -> Result<Vec<Landed>, Error> {
        let group = self.pool.shared.group(self.group);
        loop {
            let mut landed = Vec::new();
            let mut i = 0;
            while i < self.flights.len() {
                if let Some(outcome) = self.pool.shared.job(self.flights[i].job).outcome() {
                    landed.push(Landed { flight: self.flights.swap_remove(i), outcome });
                } else {
                    i += 1;
                }
            }
            if !landed.is_empty() || self.flights.is_empty() {
                return Ok(landed);
            }
            self.seen = group.wait_beyond(self.seen, deadline, LIVENESS_TICK, &mut || self.pool.alive())?;
        }
    }

    /// Releases a landed chunk's job and arena range.
    fn release(&self, f: &Flight) {
        self.pool.release_job(&mut self.pool.book(), f.job, f.span);
    }

    /// Runs every chunk (stopping new submissions at the first failure), handing each finished
    /// chunk's results to `take(start, count, results)`. Fails with the lowest failed item.
    fn run_to_end(&mut self, mut take: impl FnMut(usize, usize, *const u8)) -> Result<(), TaskError> {
        let mut failure = None;
        loop {
            match self.step(&mut failure, Deadline::FOREVER, &mut take) {
                Ok(true) => return failure.map_or(Ok(()), Err),
                Ok(false) => {}
                Err(e) => return Err(failure.unwrap_or(e)),
            }
        }
    }

    /// One round of a map: submits what the window allows (unless a chunk failed), waits until
    /// `deadline` for chunks to end and takes them. `Ok(true)` once every chunk ended; the lowest
    /// failed item so far is in `failure`. `Err` if the wait failed (`Timeout`: try again).
    fn step(
        &mut self,
        failure: &mut Option<TaskError>,
        deadline: Deadline,
        take: &mut dyn FnMut(usize, usize, *const u8),
    ) -> Result<bool, TaskError> {
        if failure.is_none()
            && let Err(error) = self.fill()
        {
            let item = self.todo.front().map_or(0, |t| t.0);
            *failure = Some(TaskError { error, item });
            self.todo.clear();
        }
        if self.flights.is_empty() {
            return Ok(true);
        }
        let landed = self.land(deadline).map_err(|error| {
            let item = self.flights.iter().map(|f| f.start).min().unwrap_or(0);
            TaskError { error, item }
        })?;
        for l in landed {
            match l.outcome.failure() {
                None => take(l.flight.start, l.flight.count, l.flight.results as *const u8),
                Some((error, at)) => {
                    let item = l.flight.start + at as usize;
                    if failure.is_none_or(|f| item < f.item) {
                        *failure = Some(TaskError { error, item });
                    }
                    self.todo.clear();
                }
            }
            self.release(&l.flight);
        }
        Ok(self.flights.is_empty() && (self.todo.is_empty() || failure.is_some()))
    }

    /// Takes back every chunk not yet ended (and drops those not yet submitted).
    fn cancel(&mut self) {
        self.todo.clear();
        for f in &self.flights {
            let _ = self.pool.take_back(f.job); // `State`: it had ended, and lands as it did
        }
    }
}

impl Drop for Chunks<'_, '_> {
    /// Chunks still running belong to the workers: their slots are reclaimed once they end.
    fn drop(&mut self) {
        if self.pool.check_creator().is_err() {
            return;
        }
        let mut book = self.pool.book();
        for f in self.flights.drain(..) {
            if self.pool.shared.job(f.job).outcome().is_some() {
                self.pool.release_job(&mut book, f.job, f.span);
            } else {
                book.abandoned.push((f.job, f.span));
            }
        }
        self.pool.unref_group(&mut book, self.group);
    }
}

/// Results of [`Pool::imap_bytes`], item by item.
pub struct ImapBytes<'p> {
    run: Chunks<'p, 'static>,
    ordered: bool,
    /// Ordered: the next item index to yield.
    next: usize,
    /// Items yielded (or failed) so far.
    yielded: usize,
    /// Finished chunks with items left to yield: (chunk, items already taken from it).
    ready: VecDeque<(Landed, usize)>,
}

impl core::fmt::Debug for ImapBytes<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ImapBytes").field("ordered", &self.ordered).field("yielded", &self.yielded).finish()
    }
}

impl ImapBytes<'_> {
    /// Total items.
    fn total(&self) -> usize {
        self.yielded
            + self.ready.iter().map(|(l, k)| l.flight.count - k).sum::<usize>()
            + self.run.flights.iter().map(|f| f.count).sum::<usize>()
            + self.run.todo.iter().map(|t| t.1).sum::<usize>()
    }

    /// The next result: `(index, bytes copied into out)`. `Closed` when every item was yielded;
    /// `Timeout` if none came in time; a failed item yields its error (`TaskFailed`,
    /// `WorkerDied`) with its index in the error's `item`, and iteration goes on.
    pub fn next_into(&mut self, out: &mut [u8], deadline: Deadline) -> Result<(usize, usize), TaskError> {
        self.run.pool.check_creator().map_err(|error| TaskError { error, item: self.next })?;
        loop {
            if let Some(r) = self.take_ready(out) {
                return r;
            }
            if self.total() == self.yielded {
                return Err(TaskError { error: Error::Closed, item: self.yielded });
            }
            self.run.fill().map_err(|error| TaskError { error, item: self.next })?;
            let landed = self.run.land(deadline).map_err(|error| TaskError { error, item: self.next })?;
            for l in landed {
                self.ready.push_back((l, 0));
            }
        }
    }

    /// Yields from a finished chunk, if one has the item wanted (ordered) or any (unordered).
    fn take_ready(&mut self, out: &mut [u8]) -> Option<Result<(usize, usize), TaskError>> {
        let pos = if self.ordered {
            self.ready.iter().position(|(l, k)| l.flight.start + k == self.next)?
        } else {
            (!self.ready.is_empty()).then_some(0)?
        };
        let (l, k) = &mut self.ready[pos];
        let index = l.flight.start + *k;
        let failure = l.outcome.failure();
        let ok_until = failure.map_or(l.flight.count, |(_, at)| at as usize);
        let result = if *k < ok_until {
            let slot = l.flight.results + *k * self.run.out_size;
            // SAFETY: the chunk ended, so its result slots are ours until released; each starts
            // with the result's length (CHUNK_LEN), which the worker checked against the slot.
            let len = unsafe { (slot as *const u64).read_unaligned() } as usize;
            if len > out.len() {
                return Some(Err(TaskError { error: Error::MsgSize { needed: len }, item: index }));
            }
            // SAFETY: as above; `len` bytes follow the length word.
            unsafe { out.as_mut_ptr().copy_from_nonoverlapping((slot + LEN_WORD) as *const u8, len) };
            *k += 1;
            Ok((index, len))
        } else {
            let error = failure.map_or(Error::Closed, |(error, _)| error);
            // The failed item is reported; the rest of the chunk runs again.
            let rest = l.flight.count - *k - 1;
            if rest > 0 && !matches!(l.outcome, Outcome::Terminated | Outcome::Cancelled) {
                self.run.todo.push_front((index + 1, rest));
            }
            *k = l.flight.count;
            Err(TaskError { error, item: index })
        };
        self.yielded += 1;
        if self.ordered {
            self.next += 1;
        }
        if self.ready[pos].1 >= self.ready[pos].0.flight.count
            || !matches!(self.ready[pos].0.outcome, Outcome::Done) && result.is_err()
        {
            let (l, _) = self.ready.remove(pos).expect("present");
            self.run.release(&l.flight);
        }
        Some(result)
    }
}

impl Drop for ImapBytes<'_> {
    fn drop(&mut self) {
        if self.run.pool.check_creator().is_err() {
            return;
        }
        for (l, _) in self.ready.drain(..) {
            self.run.release(&l.flight);
        }
    }
}

/// Typed results of [`Pool::imap`] / [`Pool::imap_unordered`]: `Ok((index, value))`, or the
/// failed item's error; ends when every item was yielded.
pub struct Imap<'p, Out: Pod> {
    it: ImapBytes<'p>,
    _out: PhantomData<Out>,
}

impl<Out: Pod> core::fmt::Debug for Imap<'_, Out> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.it.fmt(f)
    }
}

impl<Out: Pod> Imap<'_, Out> {
    /// The next result, waiting at most `timeout` (`Err(Timeout)` with the item unknown).
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<Result<(usize, Out), TaskError>> {
        self.next_until(Deadline::after(timeout))
    }

    fn next_until(&mut self, deadline: Deadline) -> Option<Result<(usize, Out), TaskError>> {
        let mut v = Out::zeroed();
        match self.it.next_into(bytemuck::bytes_of_mut(&mut v), deadline) {
            Ok((i, _)) => Some(Ok((i, v))),
            Err(TaskError { error: Error::Closed, .. }) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

impl<Out: Pod> Iterator for Imap<'_, Out> {
    type Item = Result<(usize, Out), TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_until(Deadline::FOREVER)
    }
}

const _: () = assert!(RUN != CLOSE && CLOSE != TERMINATE);
