//! The worker pool: every call, failures and worker death at several points (before, during,
//! after a task), maxtasksperchild, initializers, timeouts, close/join/terminate, bad input, and
//! no zombie or orphan left behind, even when the pool's owner is killed.
#![allow(clippy::multiple_unsafe_ops_per_block)] // tests group C-style calls

mod common;

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{PATIENCE, child, flag, join, wait_until};
use mpkit::{Deadline, Error, Pool, PoolOptions, Region, SharedArray, TaskError};

fn pool_with(opts: PoolOptions) -> Pool {
    // SAFETY: the tasks below are plain functions of this test binary.
    unsafe { Pool::new(&opts) }.expect("pool")
}

fn pool(workers: usize) -> Pool {
    pool_with(PoolOptions { workers, ..PoolOptions::default() })
}

/// The pool's worker pids, once every worker has been started.
fn started_workers(p: &Pool) -> Vec<i32> {
    wait_until("workers to start", || p.worker_pids().iter().all(|&pid| pid > 0));
    p.worker_pids()
}

fn square(x: u64) -> u64 {
    x * x
}

fn my_pid(_: u8) -> i32 {
    std::process::id() as i32
}

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// Dies (SIGKILL to itself) on the item 13; squares the others.
fn die_on_13(x: u64) -> u64 {
    if x == 13 {
        // SAFETY: the worker kills itself, as a crash would.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
    x * x
}

/// Panics on item 5 (a Rust task's failure: code 101).
fn panic_on_5(x: u64) -> u64 {
    assert!(x != 5, "five");
    x + 1
}

fn alive(pid: i32) -> bool {
    // A zombie still answers kill(0): look at its state too.
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().map(|r| r.trim_start().starts_with('Z')));
    matches!(state, Some(false))
}

#[test]
fn map_in_order_any_chunksize() {
    let p = pool(2);
    assert_eq!(p.workers(), 2);
    assert_eq!(p.map(square, &[1, 2, 3]).unwrap(), [1, 4, 9]);
    let items: Vec<u64> = (0..100_000).collect();
    let out = p.map(square, &items).unwrap();
    assert!(out.iter().enumerate().all(|(i, &v)| v == (i * i) as u64));
    for chunk in [1, 7, 1000, 1_000_000] {
        assert_eq!(p.map_chunked(square, &items[..5000], chunk).unwrap(), out[..5000]);
    }
    assert_eq!(p.map(square, &[]).unwrap(), Vec::<u64>::new());
}

#[test]
fn apply_and_apply_async() {
    let p = pool(2);
    assert_eq!(p.apply(square, 20u64).unwrap(), 400);
    let r = p.apply_async(square, 7u64).unwrap();
    assert_eq!(r.get().unwrap(), 49);
    let handles: Vec<_> = (0..8).map(|_| p.apply_async(my_pid, 0u8).unwrap()).collect();
    let pids: Vec<i32> = handles.into_iter().map(|r| r.get().unwrap()).collect();
    let workers = p.worker_pids();
    assert!(pids.iter().all(|pid| workers.contains(pid)), "{pids:?} vs {workers:?}");
    assert!(!pids.contains(&(std::process::id() as i32)));
}

#[test]
fn async_get_timeout_leaves_the_task_running() {
    let p = pool(1);
    let mut r = p.apply_async(sleep_ms, 300u64).unwrap();
    assert!(!r.ready());
    assert_eq!(r.successful(), None);
    let t0 = Instant::now();
    assert_eq!(r.get_timeout(Duration::from_millis(50)), Err(Error::Timeout));
    assert!(t0.elapsed() >= Duration::from_millis(50));
    assert_eq!(r.wait(Some(Duration::from_millis(10))), Err(Error::Timeout));
    r.wait(Some(PATIENCE)).unwrap();
    assert!(r.ready());
    assert_eq!(r.successful(), Some(true));
    assert_eq!(r.get_timeout(PATIENCE), Ok(300));
    // Dropping an unfinished handle is safe, and the pool keeps working.
    drop(p.apply_async(sleep_ms, 200u64).unwrap());
    assert_eq!(p.apply(square, 3u64), Ok(9));
}

#[test]
fn imap_ordered_and_unordered() {
    let p = pool(2);
    let items: Vec<u64> = (0..1000).collect();
    let ordered: Vec<(usize, u64)> = p.imap(square, &items, 7).unwrap().map(Result::unwrap).collect();
    assert_eq!(ordered, items.iter().map(|&x| (x as usize, x * x)).collect::<Vec<_>>());
    let mut unordered: Vec<(usize, u64)> = p.imap_unordered(square, &items, 0).unwrap().map(Result::unwrap).collect();
    unordered.sort();
    assert_eq!(unordered, ordered);
    assert_eq!(p.imap(square, &[], 1).unwrap().count(), 0);
}

#[test]
fn task_failure_keeps_its_code_and_item() {
    let p = pool(2);
    assert_eq!(p.apply(panic_on_5, 5u64), Err(Error::TaskFailed(mpkit::pool::TASK_PANIC_CODE)));
    let items: Vec<u64> = (0..20).collect();
    assert_eq!(p.map_chunked(panic_on_5, &items, 3), Err(TaskError { error: Error::TaskFailed(101), item: 5 }));
    // The iterator reports the failed item and goes on with the others.
    let got: Vec<_> = p.imap(panic_on_5, &items, 3).unwrap().collect();
    assert_eq!(got.len(), 20);
    for (i, r) in got.into_iter().enumerate() {
        if i == 5 {
            assert_eq!(r, Err(TaskError { error: Error::TaskFailed(101), item: 5 }));
        } else {
            assert_eq!(r, Ok((i, i as u64 + 1)));
        }
    }
    assert_eq!(p.apply(square, 4u64), Ok(16), "the pool still serves");
}

unsafe extern "C" fn c_task(
    _ctx: *mut c_void,
    arg: *const c_void,
    len: usize,
    out: *mut c_void,
    cap: usize,
    out_len: *mut usize,
) -> c_int {
    // SAFETY: the pool passes `len` readable argument bytes and `cap` writable result bytes.
    unsafe {
        let x = if len >= 4 { (arg as *const i32).read_unaligned() } else { 0 };
        if x < 0 {
            return x; // a failure with a code of the task's choosing
        }
        if x == 1000 {
            *out_len = cap + 1; // claims more than fits
            return 0;
        }
        (out as *mut i32).write_unaligned(x * 2);
        *out_len = 4;
    }
    0
}

#[test]
fn byte_level_calls_and_size_limits() {
    let p = pool_with(PoolOptions { workers: 1, max_arg: 8, max_result: 8, ..PoolOptions::default() });
    let mut out = [0u8; 8];
    // SAFETY: c_task is valid in the workers (code of this binary).
    unsafe {
        assert_eq!(p.apply_bytes(c_task, 0, &21i32.to_ne_bytes(), &mut out), Ok(4));
        assert_eq!(i32::from_ne_bytes(out[..4].try_into().unwrap()), 42);
        assert_eq!(p.apply_bytes(c_task, 0, &(-7i32).to_ne_bytes(), &mut out), Err(Error::TaskFailed(-7)));
        assert_eq!(
            p.apply_bytes(c_task, 0, &[0u8; 9], &mut out),
            Err(Error::MsgSize { needed: 8 }),
            "argument too large"
        );
        assert_eq!(
            p.apply_bytes(c_task, 0, &1000i32.to_ne_bytes(), &mut out),
            Err(Error::TaskFailed(mpkit::pool::RESULT_TOO_LONG)),
            "a task claiming more than its result area fails"
        );
        let mut small = [0u8; 2];
        assert_eq!(p.apply_bytes(c_task, 0, &1i32.to_ne_bytes(), &mut small), Err(Error::MsgSize { needed: 4 }));
        let args: Vec<u8> = [1i32, 2, 3].iter().flat_map(|x| x.to_ne_bytes()).collect();
        let mut results = [0u8; 12];
        p.map_bytes(c_task, 0, &args, 4, 3, &mut results, 4, 0).unwrap();
        assert_eq!(results.chunks(4).map(|c| i32::from_ne_bytes(c.try_into().unwrap())).collect::<Vec<_>>(), [2, 4, 6]);
        assert_eq!(p.map_bytes(c_task, 0, &args, 4, 3, &mut results[..8], 4, 0).unwrap_err().error, Error::Inval);
        assert_eq!(p.map_bytes(c_task, 0, &args, 4, 3, &mut results, 0, 0).unwrap_err().error, Error::Inval);
    }
}

/// A task that claims a longer result than its room fails alone: its job slot is released once,
/// so the tasks that reuse the slot (two slots in all here) keep their own results.
#[test]
fn an_overlong_result_fails_only_its_task() {
    let p = pool_with(PoolOptions { workers: 2, max_tasks: 2, max_result: 8, ..PoolOptions::default() });
    let too_long = 1000i32.to_ne_bytes();
    for round in 0..20u64 {
        let mut out = [0u8; 8];
        // SAFETY: c_task is valid in the workers (code of this binary).
        let r = unsafe { p.apply_bytes(c_task, 0, &too_long, &mut out) };
        assert_eq!(r, Err(Error::TaskFailed(mpkit::pool::RESULT_TOO_LONG)));
        let mut a = p.apply_async(square, round).unwrap();
        let mut b = p.apply_async(square, round + 100).unwrap();
        let got = (a.get_timeout(PATIENCE), b.get_timeout(PATIENCE));
        assert_eq!(got, (Ok(round * round), Ok((round + 100) * (round + 100))));
    }
    let args: Vec<u8> = [1i32, 1000, 3].iter().flat_map(|x| x.to_ne_bytes()).collect();
    // SAFETY: as above.
    let mut it = unsafe { p.imap_bytes(c_task, 0, &args, 4, 3, 1, true) }.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 8];
    loop {
        match it.next_into(&mut buf, Deadline::after(PATIENCE)) {
            Err(TaskError { error: Error::Closed, .. }) => break,
            r => got.push(r.map_err(|e| (e.item, e.error))),
        }
    }
    assert_eq!(got, [Ok((0, 4)), Err((1, Error::TaskFailed(mpkit::pool::RESULT_TOO_LONG))), Ok((2, 4))]);
}

#[test]
fn worker_death_during_a_task_fails_it_and_the_pool_recovers() {
    let p = pool(2);
    let before = started_workers(&p);
    assert_eq!(p.apply(die_on_13, 13u64), Err(Error::WorkerDied));
    assert_eq!(p.apply(die_on_13, 12u64), Ok(144), "a replacement worker serves");
    wait_until("replacement worker", || {
        p.worker_pids().iter().filter(|&&pid| pid > 0 && !before.contains(&pid)).count() == 1
    });
    // In a map, the item that killed its worker is named; the others are unaffected.
    let items: Vec<u64> = (0..40).collect();
    assert_eq!(p.map_chunked(die_on_13, &items, 4), Err(TaskError { error: Error::WorkerDied, item: 13 }));
    let got: Vec<_> = p.imap_unordered(die_on_13, &items, 4).unwrap().collect();
    assert_eq!(got.len(), 40);
    for r in got {
        match r {
            Ok((i, v)) => assert_eq!(v, (i * i) as u64),
            Err(e) => assert_eq!(e, TaskError { error: Error::WorkerDied, item: 13 }),
        }
    }
    assert_eq!(p.map(square, &[5]).unwrap(), [25]);
}

#[test]
fn worker_death_between_tasks_loses_nothing() {
    let p = pool(2);
    assert_eq!(p.apply(square, 2u64), Ok(4)); // a task finished before the death
    for pid in started_workers(&p) {
        // SAFETY: kills one of the pool's idle workers.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    // Tasks submitted around the deaths all complete (queued ones run on the replacements).
    let handles: Vec<_> = (0..20u64).map(|i| p.apply_async(square, i).unwrap()).collect();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.get(), Ok((i * i) as u64));
    }
}

#[test]
fn maxtasksperchild_recycles_workers() {
    let p = pool_with(PoolOptions { workers: 2, maxtasksperchild: 2, ..PoolOptions::default() });
    let mut pids = std::collections::HashSet::new();
    for _ in 0..12 {
        pids.insert(p.apply(my_pid, 0u8).unwrap());
    }
    assert!(pids.len() >= 6, "12 tasks at 2 per worker need at least 6 workers, saw {}", pids.len());
}

static INIT_MARK: AtomicU64 = AtomicU64::new(0);

fn mark_init() {
    INIT_MARK.store(42, Ordering::Relaxed);
}

fn read_mark(_: u8) -> u64 {
    INIT_MARK.load(Ordering::Relaxed)
}

unsafe extern "C" fn failing_init(_: *mut c_void) -> c_int {
    1
}

#[test]
fn initializer_runs_in_each_worker() {
    let p = pool_with(PoolOptions { workers: 2, ..PoolOptions::default() }.with_initializer(mark_init));
    assert_eq!(INIT_MARK.load(Ordering::Relaxed), 0, "not in the parent");
    for _ in 0..4 {
        assert_eq!(p.apply(read_mark, 0u8), Ok(42));
    }
    // An initializer that always fails makes the pool Broken, not hung.
    let bad = pool_with(PoolOptions { workers: 1, initializer: Some((failing_init, 0)), ..PoolOptions::default() });
    let t0 = Instant::now();
    assert_eq!(bad.apply(square, 1u64), Err(Error::Broken));
    assert!(t0.elapsed() < PATIENCE);
}

#[test]
fn close_join_terminate() {
    let p = pool(2);
    assert_eq!(p.join_timeout(Duration::from_millis(10)), Err(Error::State), "join needs close first");
    let pending: Vec<_> = (0..4u64).map(|i| p.apply_async(sleep_ms, 20 + i).unwrap()).collect();
    p.close();
    assert_eq!(p.apply(square, 1u64).unwrap_err(), Error::State, "closed");
    assert_eq!(p.map(square, &[1]).unwrap_err().error, Error::State);
    for (i, h) in pending.into_iter().enumerate() {
        assert_eq!(h.get(), Ok(20 + i as u64), "close lets submitted tasks finish");
    }
    p.join_timeout(PATIENCE).unwrap();

    let q = pool(1);
    let mut long = q.apply_async(sleep_ms, 10_000u64).unwrap();
    assert_eq!(long.get_timeout(Duration::from_millis(100)), Err(Error::Timeout));
    let t0 = Instant::now();
    q.terminate();
    assert_eq!(long.get_timeout(PATIENCE), Err(Error::Closed));
    q.join_timeout(PATIENCE).unwrap();
    assert!(t0.elapsed() < Duration::from_secs(9), "terminate does not wait for tasks");
}

#[test]
fn no_zombie_no_orphan_after_drop() {
    let p = pool(3);
    p.map(square, &[1, 2, 3]).unwrap();
    let workers = started_workers(&p);
    assert!(workers.iter().all(|&w| alive(w)));
    drop(p);
    for w in workers {
        wait_until("worker to be gone", || !alive(w));
    }
}

#[test]
fn workers_exit_when_the_pool_owner_is_killed() {
    let r = Region::new(4096).unwrap();
    let owner = child(|| {
        let p = pool(2);
        p.map(square, &[1]).unwrap();
        for (i, pid) in started_workers(&p).into_iter().enumerate() {
            flag(&r, 1 + i).store(pid as u32, Ordering::Release);
        }
        flag(&r, 0).store(1, Ordering::Release);
        loop {
            // SAFETY: waits to be killed.
            unsafe { libc::pause() };
        }
    });
    wait_until("owner's pool", || flag(&r, 0).load(Ordering::Acquire) == 1);
    let workers: Vec<i32> = (1..3).map(|i| flag(&r, i).load(Ordering::Acquire) as i32).collect();
    assert!(workers.iter().all(|&w| w > 0 && alive(w)));
    owner.kill().unwrap();
    join(&owner);
    for w in workers {
        wait_until("orphaned worker to exit", || !alive(w));
    }
}

#[test]
fn map_in_place_over_inherited_arrays() {
    let input = SharedArray::from_slice(&(0..10_000u64).collect::<Vec<_>>()).unwrap();
    let output = SharedArray::<u64>::new(10_000).unwrap();
    let p = pool(2);
    p.map_in_place(square, &input, &output, 0).unwrap();
    assert!(output.to_vec().unwrap().iter().enumerate().all(|(i, &v)| v == (i * i) as u64));
    let late = SharedArray::<u64>::new(10_000).unwrap();
    assert_eq!(p.map_in_place(square, &input, &late, 0).unwrap_err().error, Error::State, "made after the pool");
    let short = SharedArray::<u64>::new(5).unwrap();
    assert_eq!(p.map_in_place(square, &short, &output, 0).unwrap_err().error, Error::Inval);
}

#[test]
fn bad_options() {
    for opts in [
        PoolOptions { workers: 0, ..PoolOptions::default() },
        PoolOptions { workers: 100_000, ..PoolOptions::default() },
        PoolOptions { max_tasks: 0, ..PoolOptions::default() },
        PoolOptions { max_arg: usize::MAX, ..PoolOptions::default() },
    ] {
        // SAFETY: no pool is created.
        assert_eq!(unsafe { Pool::new(&opts) }.unwrap_err(), Error::Inval, "{opts:?}");
    }
}

#[test]
fn many_threads_share_one_pool() {
    let p = pool(2);
    let done = AtomicU32::new(0);
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (p, done) = (&p, &done);
            s.spawn(move || {
                for i in 0..200 {
                    let x = t * 1000 + i;
                    assert_eq!(p.apply(square, x), Ok(x * x));
                }
                let items: Vec<u64> = (0..1000).collect();
                assert_eq!(p.map(square, &items).unwrap()[999], 999 * 999);
                done.fetch_add(1, Ordering::Relaxed);
            });
        }
    });
    assert_eq!(done.load(Ordering::Relaxed), 4);
}
