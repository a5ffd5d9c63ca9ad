//! The distributed map: rank 0's coordinator and the other ranks' worker loop (the protocol is
//! in the crate docs), each mapping its chunks on a local mpkit pool through the core's C ABI
//! (`mpk_pool_map_async`, polled with `mpk_async_get(.., MPK_NOWAIT)`), so that one thread polls
//! MPI and the local pool together and never blocks in either.

use core::ffi::{c_int, c_void};

use mpkit::ffi::{
    MPK_ERR_TIMEOUT, MPK_OK, mpk_async, mpk_async_destroy, mpk_async_get, mpk_pool, mpk_pool_create, mpk_pool_destroy,
    mpk_pool_last_failure, mpk_pool_map_async, mpk_pool_opts, mpk_pool_workers, mpk_status, mpk_task_fn,
};

use crate::transport::{Backoff, Comm, TAG_DOWN, TAG_UP, word, words};
use crate::{Error, Failure};

/// Chunks a rank asks for ahead: one runs (on the local pool) while the next one is on its way.
pub(crate) const DEPTH: usize = 2;
/// Largest chunk, in argument + result bytes (and it must fit an MPI count).
const MAX_CHUNK_BYTES: usize = 16 << 20;

// Message kinds (word 0).
const K_READY: u64 = 1; // up: [K_READY]: one more chunk, please
const K_DONE: u64 = 2; // up: [K_DONE, start, count] + results; and one more chunk, please
const K_FAIL: u64 = 3; // up: [K_FAIL, start, count, item, status, code]; and one more, please
const K_BEGIN: u64 = 10; // down: [K_BEGIN]: a map starts
const K_WORK: u64 = 11; // down: [K_WORK, start, count, arg_size, result_size, fn_off, ctx_off] + args
const K_NONE: u64 = 12; // down: [K_NONE]: no chunk for that request
const K_END: u64 = 13; // down: [K_END, ok, status, code, item, rank]: the map's outcome
const K_SHUTDOWN: u64 = 14; // down: [K_SHUTDOWN]: the executor ends (serve returns)

/// The task a rank runs for a chunk.
#[derive(Copy, Clone)]
pub(crate) struct Task {
    pub(crate) f: mpk_task_fn,
    pub(crate) ctx: usize,
}

/// How a worker rank finds the task of a chunk: its own (collective calls) or the one rank 0
/// named by code offsets (the executor).
pub(crate) type Resolve<'a> = &'a dyn Fn(u64, u64) -> Task;

/// A local mpkit pool, made with `mpk_pool_create` (so `mpk_pool_opts` is validated by the core).
pub(crate) struct Local {
    pool: *mut mpk_pool,
}

impl Local {
    /// # Safety
    /// `opts` is NULL or a valid options struct; the fork rules of `mpk_pool_create` apply.
    pub(crate) unsafe fn new(opts: *const mpk_pool_opts) -> Result<Local, mpk_status> {
        let mut pool = core::ptr::null_mut();
        // SAFETY: forwarded caller duty; `pool` is writable.
        let st = unsafe { mpk_pool_create(opts, &mut pool) };
        if st == MPK_OK { Ok(Local { pool }) } else { Err(st) }
    }

    pub(crate) fn workers(&self) -> usize {
        // SAFETY: a live pool.
        unsafe { mpk_pool_workers(self.pool) }
    }

    /// Starts a chunk: `count` items from `args` (copied by the pool).
    fn start(
        &self,
        task: Task,
        start: usize,
        count: usize,
        args: &[u8],
        arg_size: usize,
        result_size: usize,
    ) -> Running {
        let mut results = vec![0u8; count * result_size];
        let mut handle = core::ptr::null_mut();
        // SAFETY: a live pool; `args` holds `count * arg_size` bytes; `results` (heap, owned by
        // the `Running` with the handle, destroyed first) holds `count * result_size`; the task
        // and ctx are valid in the workers (the callers' duty, see `mpk_mpi_map`).
        let st = unsafe {
            mpk_pool_map_async(
                self.pool,
                task.f,
                task.ctx as *mut c_void,
                args.as_ptr().cast(),
                arg_size,
                count,
                results.as_mut_ptr().cast(),
                result_size,
                0,
                &mut handle,
            )
        };
        let failed = (st != MPK_OK).then_some(Failure { status: st, code: 0, item: start, rank: -1 });
        Running { start, count, handle, results, failed }
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        // SAFETY: our pool, destroyed once (after every `Running`, which borrow it).
        unsafe { mpk_pool_destroy(self.pool) };
    }
}

/// A chunk on the local pool.
struct Running {
    start: usize,
    count: usize,
    handle: *mut mpk_async,
    results: Vec<u8>,
    /// It could not start.
    failed: Option<Failure>,
}

impl Running {
    /// `None` while it runs; then its outcome (the results are in `self.results`).
    fn poll(&mut self, rank: c_int) -> Option<Result<(), Failure>> {
        if let Some(mut f) = self.failed {
            f.rank = rank;
            return Some(Err(f));
        }
        let mut len = 0usize;
        // SAFETY: a live map handle; `out` is ignored for maps; `len` is writable.
        let st = unsafe { mpk_async_get(self.handle, core::ptr::null_mut(), 0, &mut len, 0) };
        match st {
            MPK_OK => Some(Ok(())),
            MPK_ERR_TIMEOUT => None,
            status => {
                let (mut item, mut code) = (0usize, 0 as c_int);
                // SAFETY: writable out-parameters; this thread made the failed call.
                unsafe { mpk_pool_last_failure(&mut item, &mut code) };
                Some(Err(Failure { status, code, item: self.start + item, rank }))
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // SAFETY: our handle (or NULL), destroyed once, before `results` is freed.
        unsafe { mpk_async_destroy(self.handle) };
    }
}

/// How rank 0 cuts chunks: `chunksize` items each, or automatic (0): guided self-scheduling,
/// each chunk `remaining / (2 × ranks × workers)` items but at least `n / (ranks × workers ×
/// 32)` (and 1): large chunks first (few messages), small ones at the end (no rank is left
/// with a long tail). Both capped at `MAX_CHUNK_BYTES` of arguments + results.
#[derive(Copy, Clone)]
pub(crate) struct Chunking {
    fixed: usize,
    share: usize,
    floor: usize,
    cap: usize,
}

impl Chunking {
    pub(crate) fn new(chunksize: usize, n: usize, ranks: usize, workers: usize, item_bytes: usize) -> Chunking {
        let p = ranks.max(1) * workers.max(1);
        let cap = (MAX_CHUNK_BYTES / item_bytes.max(1)).max(1);
        Chunking { fixed: chunksize, share: 2 * p, floor: (n / (p * 32)).max(1), cap }
    }

    /// Items in the next chunk, with `remaining` > 0 items left.
    pub(crate) fn next(&self, remaining: usize) -> usize {
        let c = if self.fixed != 0 { self.fixed } else { (remaining / self.share).max(self.floor) };
        c.clamp(1, self.cap).min(remaining)
    }
}

/// What rank 0 maps.
pub(crate) struct Job<'a> {
    pub(crate) task: Task,
    /// Code offsets of `task` for the executor's workers (0 in collective calls).
    pub(crate) offsets: (u64, u64),
    pub(crate) args: &'a [u8],
    pub(crate) arg_size: usize,
    pub(crate) result_size: usize,
    pub(crate) n: usize,
    pub(crate) chunksize: usize,
}

/// Rank 0's side of one map.
pub(crate) struct Coordinator<'a> {
    job: Job<'a>,
    chunking: Chunking,
    next: usize,
    /// The lowest failed item so far: no more chunks are handed out.
    failure: Option<Failure>,
    /// `K_NONE`s sent to each rank; a rank is done with the map at `DEPTH`.
    nones: Vec<usize>,
    local: Vec<Running>,
    ended: bool,
}

/// What one step did.
#[derive(PartialEq, Eq)]
pub(crate) enum Step {
    Progress,
    Idle,
    Ended,
}

impl<'a> Coordinator<'a> {
    /// Starts a map: tells every other rank (`K_BEGIN`). `local` is rank 0's pool (or why it
    /// could not be made: the map then fails at its first item, on every rank).
    pub(crate) fn begin(comm: &mut Comm, local: Result<&Local, mpk_status>, job: Job<'a>) -> Result<Self, Error> {
        let workers = local.map_or(1, |l| l.workers());
        let chunking =
            Chunking::new(job.chunksize, job.n, comm.size() as usize, workers, job.arg_size + job.result_size);
        let failure = local.err().map(|status| Failure { status, code: 0, item: 0, rank: 0 });
        for r in 1..comm.size() {
            comm.send(r, TAG_DOWN, words(&[K_BEGIN], &[]))?;
        }
        let nones = vec![0; comm.size() as usize];
        Ok(Coordinator { job, chunking, next: 0, failure, nones, local: Vec::new(), ended: false })
    }

    fn fail(&mut self, f: Failure) {
        if self.failure.is_none_or(|old| f.item < old.item) {
            self.failure = Some(f);
        }
    }

    /// The next chunk to hand out, if any.
    fn take(&mut self) -> Option<(usize, usize)> {
        if self.failure.is_some() || self.next >= self.job.n {
            return None;
        }
        let (start, count) = (self.next, self.chunking.next(self.job.n - self.next));
        self.next += count;
        Some((start, count))
    }

    fn reply(&mut self, comm: &mut Comm, to: c_int) -> Result<(), Error> {
        let msg = match self.take() {
            Some((start, count)) => {
                let j = &self.job;
                let head = [
                    K_WORK,
                    start as u64,
                    count as u64,
                    j.arg_size as u64,
                    j.result_size as u64,
                    j.offsets.0,
                    j.offsets.1,
                ];
                words(&head, &j.args[start * j.arg_size..(start + count) * j.arg_size])
            }
            None => {
                self.nones[to as usize] += 1;
                words(&[K_NONE], &[])
            }
        };
        comm.send(to, TAG_DOWN, msg)
    }

    /// One round: serve what arrived, start and collect local chunks. `sink(start, count,
    /// results)` gets every chunk's results on rank 0, in the order they come.
    pub(crate) fn step(
        &mut self,
        comm: &mut Comm,
        local: Option<&Local>,
        sink: &mut dyn FnMut(usize, usize, &[u8]),
    ) -> Result<Step, Error> {
        if self.ended {
            return Ok(Step::Ended);
        }
        let mut progress = comm.flush()?;
        while let Some((from, msg)) = comm.try_recv(None, TAG_UP)? {
            progress = true;
            match word(&msg, 0) {
                K_READY => {}
                K_DONE => {
                    let (start, count) = (word(&msg, 1) as usize, word(&msg, 2) as usize);
                    let results = &msg[24..];
                    if results.len() != count * self.job.result_size || start + count > self.job.n {
                        return Err(Error::Protocol { rank: from });
                    }
                    sink(start, count, results);
                }
                K_FAIL => self.fail(Failure {
                    status: word(&msg, 4) as i64 as i32,
                    code: word(&msg, 5) as i64 as i32,
                    item: word(&msg, 3) as usize,
                    rank: from,
                }),
                _ => return Err(Error::Protocol { rank: from }),
            }
            self.reply(comm, from)?;
        }
        if let Some(local) = local {
            while self.local.len() < DEPTH {
                let Some((start, count)) = self.take() else { break };
                let j = &self.job;
                let args = &j.args[start * j.arg_size..(start + count) * j.arg_size];
                self.local.push(local.start(j.task, start, count, args, j.arg_size, j.result_size));
                progress = true;
            }
        }
        let mut i = 0;
        while i < self.local.len() {
            match self.local[i].poll(0) {
                None => i += 1,
                Some(outcome) => {
                    let r = self.local.swap_remove(i);
                    match outcome {
                        Ok(()) => sink(r.start, r.count, &r.results),
                        Err(f) => self.fail(f),
                    }
                    progress = true;
                }
            }
        }
        if self.local.is_empty()
            && (self.next >= self.job.n || self.failure.is_some())
            && self.nones[1..].iter().all(|&k| k >= DEPTH)
        {
            // Every rank is done with the map (each got DEPTH K_NONEs after its last chunk's
            // results arrived): tell them its outcome.
            let f = self.failure;
            let end = match f {
                None => [K_END, 1, 0, 0, 0, 0],
                Some(f) => [K_END, 0, f.status as i64 as u64, f.code as i64 as u64, f.item as u64, f.rank as u64],
            };
            for r in 1..comm.size() {
                comm.send(r, TAG_DOWN, words(&end, &[]))?;
            }
            comm.drain()?;
            self.ended = true;
            return Ok(Step::Ended);
        }
        Ok(if progress { Step::Progress } else { Step::Idle })
    }

    /// The map's outcome once ended.
    pub(crate) fn outcome(&self) -> Result<(), Error> {
        self.failure.map_or(Ok(()), |f| Err(f.into()))
    }

    /// Runs the map to its end.
    pub(crate) fn run(
        &mut self,
        comm: &mut Comm,
        local: Option<&Local>,
        sink: &mut dyn FnMut(usize, usize, &[u8]),
    ) -> Result<(), Error> {
        let mut backoff = Backoff::new();
        loop {
            match self.step(comm, local, sink)? {
                Step::Ended => return self.outcome(),
                Step::Progress => backoff.reset(),
                Step::Idle => backoff.idle(),
            }
        }
    }
}

/// A worker rank's side: waits for `K_BEGIN` (then maps, returning the map's outcome, the same
/// on every rank) or `K_SHUTDOWN` (`Ok(false)`).
pub(crate) fn serve_one(
    comm: &mut Comm,
    local: Result<&Local, mpk_status>,
    resolve: Resolve<'_>,
) -> Result<bool, Error> {
    let mut backoff = Backoff::idle_between_maps();
    loop {
        match comm.try_recv(Some(0), TAG_DOWN)? {
            None => backoff.idle(),
            Some((_, msg)) => match word(&msg, 0) {
                K_BEGIN => break,
                K_SHUTDOWN => return Ok(false),
                _ => return Err(Error::Protocol { rank: 0 }),
            },
        }
    }
    let rank = comm.rank();
    for _ in 0..DEPTH {
        comm.send(0, TAG_UP, words(&[K_READY], &[]))?;
    }
    let mut running: Vec<Running> = Vec::new();
    let mut backoff = Backoff::new();
    loop {
        let mut progress = comm.flush()?;
        while let Some((_, msg)) = comm.try_recv(Some(0), TAG_DOWN)? {
            progress = true;
            match word(&msg, 0) {
                K_WORK => {
                    let (start, count) = (word(&msg, 1) as usize, word(&msg, 2) as usize);
                    let (arg_size, result_size) = (word(&msg, 3) as usize, word(&msg, 4) as usize);
                    let args = &msg[56..];
                    if args.len() != count * arg_size {
                        return Err(Error::Protocol { rank: 0 });
                    }
                    let task = resolve(word(&msg, 5), word(&msg, 6));
                    running.push(match local {
                        Ok(l) => l.start(task, start, count, args, arg_size, result_size),
                        Err(status) => Running {
                            start,
                            count,
                            handle: core::ptr::null_mut(),
                            results: Vec::new(),
                            failed: Some(Failure { status, code: 0, item: start, rank }),
                        },
                    });
                }
                K_NONE => {}
                K_END => {
                    comm.drain()?;
                    if word(&msg, 1) == 1 {
                        return Ok(true);
                    }
                    return Err(Failure {
                        status: word(&msg, 2) as i64 as i32,
                        code: word(&msg, 3) as i64 as i32,
                        item: word(&msg, 4) as usize,
                        rank: word(&msg, 5) as i64 as c_int,
                    }
                    .into());
                }
                _ => return Err(Error::Protocol { rank: 0 }),
            }
        }
        let mut i = 0;
        while i < running.len() {
            match running[i].poll(rank) {
                None => i += 1,
                Some(outcome) => {
                    let r = running.swap_remove(i);
                    let msg = match outcome {
                        Ok(()) => words(&[K_DONE, r.start as u64, r.count as u64], &r.results),
                        Err(f) => words(
                            &[
                                K_FAIL,
                                r.start as u64,
                                r.count as u64,
                                f.item as u64,
                                f.status as i64 as u64,
                                f.code as i64 as u64,
                            ],
                            &[],
                        ),
                    };
                    comm.send(0, TAG_UP, msg)?;
                    progress = true;
                }
            }
        }
        if progress { backoff.reset() } else { backoff.idle() }
    }
}

/// Rank 0 ends the executor: every worker rank's `serve` returns.
pub(crate) fn shutdown(comm: &mut Comm) -> Result<(), Error> {
    for r in 1..comm.size() {
        comm.send(r, TAG_DOWN, words(&[K_SHUTDOWN], &[]))?;
    }
    comm.drain()
}
