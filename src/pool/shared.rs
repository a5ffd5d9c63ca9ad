//! The pool's shared region: header, worker slots, the task board (`board.rs`), job slots
//! (each with its task's description and room for one task's argument and result), group
//! counters and the data arena. The parent builds it before forking the supervisor, so the
//! supervisor and every worker see it at the same address, and task descriptions carry plain
//! pointers into it.

use core::ptr::NonNull;

use bytemuck::{Pod, Zeroable};

use super::board::{Board, BoardCtl};
use super::job::{GroupWord, JobWord};
use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// What the parent asks of the supervisor (`Header::command`).
pub(crate) const RUN: u32 = 0;
pub(crate) const CLOSE: u32 = 1;
pub(crate) const TERMINATE: u32 = 2;

/// A C task entry point, as `mpk_task_fn`.
pub(crate) type TaskFn = unsafe extern "C" fn(
    ctx: *mut core::ffi::c_void,
    arg: *const core::ffi::c_void,
    arg_len: usize,
    out: *mut core::ffi::c_void,
    out_cap: usize,
    out_len: *mut usize,
) -> core::ffi::c_int;

/// A worker initializer, as `mpk_init_fn`: non-zero stops the worker.
pub(crate) type InitFn = unsafe extern "C" fn(arg: *mut core::ffi::c_void) -> core::ffi::c_int;

/// A task's description, in its job slot (written by the parent before it queues the task,
/// read by the worker that claimed it): a single call, or a chunk of `n` calls over arrays.
#[repr(C)]
#[derive(Copy, Clone, Pod, Zeroable, Debug)]
pub(crate) struct TaskMsg {
    /// `SINGLE`, `CHUNK` or `CHUNK_LEN`.
    pub(crate) kind: u32,
    pub(crate) _r: u32,
    pub(crate) func: u64,
    pub(crate) ctx: u64,
    /// First argument; for a chunk, item `i` is at `arg + i * arg_len`.
    pub(crate) arg: u64,
    pub(crate) arg_len: u64,
    /// Items of a chunk (0 for a single call).
    pub(crate) n: u64,
    /// First result slot; for a chunk, item `i`'s is at `out + i * out_cap`.
    pub(crate) out: u64,
    pub(crate) out_cap: u64,
    /// Longest one call may run, in milliseconds (0: no limit).
    pub(crate) timeout_ms: u64,
}
pub(crate) const SINGLE: u32 = 1;
pub(crate) const CHUNK: u32 = 2;
/// A chunk whose result slots start with a `LEN_WORD`-byte length (for the iterators).
pub(crate) const CHUNK_LEN: u32 = 3;
/// Bytes of the length word in front of each `CHUNK_LEN` result.
pub(crate) const LEN_WORD: usize = 8;

/// Read-only after creation, except `command` and `broken`.
#[repr(C)]
pub(crate) struct Header {
    pub(crate) workers: u32,
    pub(crate) jobs: u32,
    pub(crate) groups: u32,
    pub(crate) _r: u32,
    pub(crate) max_arg: u64,
    pub(crate) max_result: u64,
    pub(crate) maxtasks: u64,
    pub(crate) init_fn: u64,
    pub(crate) init_arg: u64,
    /// Parent → supervisor: `RUN`, `CLOSE` or `TERMINATE`.
    pub(crate) command: AtomicU32,
    /// Supervisor → parent: non-zero once workers cannot be kept alive (initializer failing).
    pub(crate) broken: AtomicU32,
    /// Supervisor → workers: when it wakes next to check time limits (monotonic ns;
    /// `u64::MAX`: not before a worker asks). A worker whose limit falls earlier wakes it.
    pub(crate) armed: AtomicU64,
}

/// Per-worker bookkeeping, one cache line each.
#[repr(C)]
pub(crate) struct WorkerSlot {
    /// The task the worker runs, or is about to claim, as `running_word` (0: none). Written
    /// before the claiming CAS, so that a task taken away from the worker (cancelled, timed
    /// out) is always found here while the worker may still run it.
    pub(crate) running: AtomicU64,
    /// When the running call's time limit passes (monotonic ns; 0: no limit).
    pub(crate) deadline: AtomicU64,
    /// Process id of the current worker in this slot.
    pub(crate) pid: AtomicU32,
    /// The CPU the worker ran on when it last claimed a task (a hint for waiters).
    pub(crate) cpu: AtomicU32,
    _pad: [u8; 40],
}

#[cfg(not(loom))]
mod layout_checks {
    use static_assertions::const_assert_eq;
    const_assert_eq!(size_of::<super::TaskMsg>(), 72);
    const_assert_eq!(size_of::<super::WorkerSlot>(), 64);
}

/// `WorkerSlot::running` for task `ticket` in job slot `job`: (ticket, job + 1), never 0.
pub(crate) fn running_word(job: u32, ticket: u32) -> u64 {
    (ticket as u64) << 32 | (job as u64 + 1)
}

/// The (job, ticket) of a non-zero `running` word.
pub(crate) fn running_task(word: u64) -> (u32, u32) {
    ((word as u32) - 1, (word >> 32) as u32)
}

/// Where everything lives in the region: computed once by the parent, copied by fork.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Layout {
    pub(crate) workers: usize,
    pub(crate) jobs: usize,
    pub(crate) groups: usize,
    workers_off: usize,
    board_off: usize,
    cells_off: usize,
    cells: usize,
    bits_off: usize,
    bits: usize,
    jobs_off: usize,
    job_stride: usize,
    /// Bytes before a job's argument area inside its slot.
    job_data_off: usize,
    groups_off: usize,
    pub(crate) arena_off: usize,
    pub(crate) arena_len: usize,
    pub(crate) total: usize,
    pub(crate) max_arg: usize,
    pub(crate) max_result: usize,
}

const fn line(n: usize) -> usize {
    n.next_multiple_of(64)
}

impl Layout {
    /// `None` if the sizes overflow.
    pub(crate) fn new(
        workers: usize,
        jobs: usize,
        groups: usize,
        max_arg: usize,
        max_result: usize,
        arena: usize,
    ) -> Option<Layout> {
        let job_data_off = line(size_of::<JobWord>() + size_of::<TaskMsg>());
        let data = max_arg.checked_next_multiple_of(8)?.checked_add(max_result)?;
        let job_stride = job_data_off.checked_add(data)?.checked_next_multiple_of(64)?;
        let workers_off = line(size_of::<Header>());
        let board_off = workers_off + workers * size_of::<WorkerSlot>();
        let cells_off = board_off + size_of::<BoardCtl>();
        let cells = Board::cells_for(jobs);
        let bits_off = cells_off.checked_add(cells.checked_mul(8)?)?;
        let bits = jobs.div_ceil(64);
        let jobs_off = line(bits_off.checked_add(bits * 8)?);
        let groups_off = jobs_off.checked_add(job_stride.checked_mul(jobs)?)?;
        let arena_off = groups_off.checked_add(groups.checked_mul(64)?)?.checked_next_multiple_of(64)?;
        let total = arena_off.checked_add(arena)?;
        (total <= isize::MAX as usize).then_some(Layout {
            workers,
            jobs,
            groups,
            workers_off,
            board_off,
            cells_off,
            cells,
            bits_off,
            bits,
            jobs_off,
            job_stride,
            job_data_off,
            groups_off,
            arena_off,
            arena_len: arena,
            total,
            max_arg,
            max_result,
        })
    }
}

/// The region as seen by any of the pool's processes. Copy; valid while the region is mapped.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Shared {
    base: NonNull<u8>,
    pub(crate) layout: Layout,
}

// SAFETY: everything `Shared` hands out is atomics, rings (themselves Sync), or raw pointers
// whose use follows the job protocol; the mapping is valid from any thread.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

impl Shared {
    /// Builds the pool's objects in fresh, zeroed memory of `layout.total` bytes.
    ///
    /// # Safety
    /// - `base` is 64-byte aligned, valid for `layout.total` bytes, used by nothing else, and
    ///   outlives every `Shared` copied from the result.
    pub(crate) unsafe fn init(base: NonNull<u8>, layout: Layout, header: Header) -> Shared {
        let s = Shared { base, layout };
        // SAFETY: the header starts the exclusive region.
        unsafe { base.cast::<Header>().write(header) };
        for w in 0..layout.workers {
            let at = s.at(layout.workers_off + w * size_of::<WorkerSlot>());
            let slot = WorkerSlot {
                running: AtomicU64::new(0),
                deadline: AtomicU64::new(0),
                pid: AtomicU32::new(0),
                cpu: AtomicU32::new(u32::MAX),
                _pad: [0; 40],
            };
            // SAFETY: slot `w` lies in the region, 64-byte aligned.
            unsafe { at.cast::<WorkerSlot>().write(slot) };
        }
        // SAFETY: the board's control block lies in the region, 64-byte aligned; its cells and
        // bits follow, zeroed, which is their initial state (see `BoardCtl::new`).
        unsafe { s.at(layout.board_off).cast::<BoardCtl>().write(BoardCtl::new()) };
        for j in 0..layout.jobs {
            // SAFETY: job slot `j` lies in the region.
            unsafe { s.at(layout.jobs_off + j * layout.job_stride).cast::<JobWord>().write(JobWord::new()) };
        }
        for g in 0..layout.groups {
            // SAFETY: group `g` lies in the region.
            unsafe { s.at(layout.groups_off + g * 64).cast::<GroupWord>().write(GroupWord::new()) };
        }
        s
    }

    fn at(&self, offset: usize) -> NonNull<u8> {
        debug_assert!(offset < self.layout.total);
        NonNull::new(self.base.as_ptr().wrapping_add(offset)).expect("inside the region")
    }

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: built by `init`; the region outlives `self`.
        unsafe { self.base.cast::<Header>().as_ref() }
    }

    pub(crate) fn worker(&self, w: usize) -> &WorkerSlot {
        debug_assert!(w < self.layout.workers);
        // SAFETY: built by `init`; the region outlives `self`.
        unsafe { self.at(self.layout.workers_off + w * size_of::<WorkerSlot>()).cast::<WorkerSlot>().as_ref() }
    }

    pub(crate) fn board(&self) -> Board<'_> {
        let l = &self.layout;
        let atomics = |off: usize, n: usize| {
            // SAFETY: `n` zeroed (so initialised) 8-byte-aligned atomics built by `init` lie at
            // `off`; the region outlives `self`.
            unsafe { core::slice::from_raw_parts(self.at(off).cast::<AtomicU64>().as_ptr(), n) }
        };
        // SAFETY: the control block was built by `init`; the region outlives `self`.
        let ctl = unsafe { self.at(l.board_off).cast::<BoardCtl>().as_ref() };
        Board::new(ctl, atomics(l.cells_off, l.cells), atomics(l.bits_off, l.bits))
    }

    pub(crate) fn job(&self, j: u32) -> &JobWord {
        debug_assert!((j as usize) < self.layout.jobs);
        // SAFETY: built by `init`; the region outlives `self`.
        unsafe { self.at(self.layout.jobs_off + j as usize * self.layout.job_stride).cast::<JobWord>().as_ref() }
    }

    /// Job `j`'s task description (see `TaskMsg` for who writes and reads it when).
    pub(crate) fn task(&self, j: u32) -> *mut TaskMsg {
        debug_assert!((j as usize) < self.layout.jobs);
        let at = self.at(self.layout.jobs_off + j as usize * self.layout.job_stride + size_of::<JobWord>());
        at.cast::<TaskMsg>().as_ptr()
    }

    /// Where job `j`'s argument (`max_arg` bytes) and then its result (`max_result`) live.
    pub(crate) fn job_data(&self, j: u32) -> (*mut u8, *mut u8) {
        let arg = self.at(self.layout.jobs_off + j as usize * self.layout.job_stride + self.layout.job_data_off);
        (arg.as_ptr(), arg.as_ptr().wrapping_add(self.layout.max_arg.next_multiple_of(8)))
    }

    pub(crate) fn group(&self, g: u32) -> &GroupWord {
        debug_assert!((g as usize) < self.layout.groups);
        // SAFETY: built by `init`; the region outlives `self`.
        unsafe { self.at(self.layout.groups_off + g as usize * 64).cast::<GroupWord>().as_ref() }
    }

    /// The arena byte at `offset`.
    pub(crate) fn arena(&self, offset: usize) -> *mut u8 {
        debug_assert!(offset <= self.layout.arena_len);
        self.base.as_ptr().wrapping_add(self.layout.arena_off + offset)
    }

    /// The supervisor's or parent's view of the command word.
    pub(crate) fn command(&self) -> u32 {
        // Acquire pairs with the parent's Release store when it changes the command.
        self.header().command.load(Ordering::Acquire)
    }
}
