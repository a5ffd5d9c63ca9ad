//! The pool's scheduling, time limits and cancelling, across real processes: no task waits behind
//! a busy worker while another is idle; a call past its time limit is stopped (its worker killed
//! and replaced, no zombie left) and named; cancelled tasks never run, or are stopped; map_async
//! and starmap; a worker's death during each of these.
#![allow(clippy::multiple_unsafe_ops_per_block)] // tests group C-style calls

mod common;

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use common::{PATIENCE, wait_until};
use mpkit::{Error, Pool, PoolOptions, Region, TaskError};

fn pool_with(opts: PoolOptions) -> Pool {
    // SAFETY: the tasks below are plain functions of this test binary.
    unsafe { Pool::new(&opts) }.expect("pool")
}

fn pool(workers: usize) -> Pool {
    pool_with(PoolOptions { workers, ..PoolOptions::default() })
}

fn square(x: u64) -> u64 {
    x * x
}

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// Sleeps 10 s on item 5, squares the others.
fn stuck_on_5(x: u64) -> u64 {
    if x == 5 {
        std::thread::sleep(Duration::from_secs(10));
    }
    x * x
}

/// Address of the marks region (made before the pool, so the workers have it).
static MARKS: AtomicUsize = AtomicUsize::new(0);

fn marks() -> Region {
    let r = Region::new(4096).unwrap();
    MARKS.store(r.as_ptr() as usize, Ordering::Relaxed);
    r
}

fn mark_word(i: u32) -> &'static AtomicU32 {
    // SAFETY: `MARKS` holds a live, zeroed 4 KiB region (set by `marks`, kept alive by the test)
    // and `i` < 1024.
    unsafe { &*(MARKS.load(Ordering::Relaxed) as *const AtomicU32).add(i as usize) }
}

/// Counts one run of mark `i`.
fn mark(i: u32) -> u32 {
    mark_word(i).fetch_add(1, Ordering::AcqRel) + 1
}

/// Counts mark 0 (it started), then sleeps 10 s.
fn mark_then_sleep(_: u32) -> u32 {
    mark_word(0).fetch_add(1, Ordering::AcqRel);
    std::thread::sleep(Duration::from_secs(10));
    0
}

/// Item 0 is `mark_then_sleep`; others count their mark.
fn sleep_on_0(i: u32) -> u32 {
    if i == 0 { mark_then_sleep(0) } else { mark(i) }
}

fn gone(pid: i32) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn started_workers(p: &Pool) -> Vec<i32> {
    wait_until("workers to start", || p.worker_pids().iter().all(|&pid| pid > 0));
    p.worker_pids()
}

/// The case: one worker busy for 10 s, three idle; a tiny task must not wait for it.
#[test]
fn a_tiny_task_runs_while_another_worker_is_busy() {
    let p = pool(4);
    let long = p.apply_async(sleep_ms, 10_000).unwrap();
    std::thread::sleep(Duration::from_millis(50)); // let a worker take it
    let mut tiny = p.apply_async(square, 7).unwrap();
    assert_eq!(tiny.get_timeout(Duration::from_secs(5)), Ok(49));
    assert!(!long.ready(), "the long task is still running: the tiny one did not wait for it");
}

/// Both workers busy (10 s and 300 ms); the tiny task queued after them runs as soon as the
/// short one frees its worker, not behind the long one.
#[test]
fn all_busy_then_one_frees() {
    let p = pool(2);
    let long = p.apply_async(sleep_ms, 10_000).unwrap();
    let short = p.apply_async(sleep_ms, 300).unwrap();
    let tinies: Vec<_> = (0..50u64).map(|i| p.apply_async(square, i).unwrap()).collect();
    for (i, mut t) in tinies.into_iter().enumerate() {
        assert_eq!(t.get_timeout(Duration::from_secs(5)), Ok((i * i) as u64));
    }
    assert_eq!(short.get(), Ok(300));
    assert!(!long.ready(), "every tiny task ran beside the long one");
}

/// Many threads submit while one worker is stuck: every task completes once, none waits for it.
#[test]
fn a_backlog_drains_beside_a_stuck_worker() {
    let _m = marks();
    let p = pool(3);
    let long = p.apply_async(sleep_ms, 10_000).unwrap();
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let p = &p;
            s.spawn(move || {
                let hs: Vec<_> = (0..200u32).map(|i| p.apply_async(mark, 1 + (t * 200 + i) % 1000).unwrap()).collect();
                for mut h in hs {
                    assert!(h.get_timeout(PATIENCE).is_ok());
                }
            });
        }
    });
    let runs: u32 = (1..801).map(|i| mark_word(i).load(Ordering::Acquire)).sum();
    assert_eq!(runs, 800, "each task ran exactly once");
    assert!(!long.ready());
}

#[test]
fn a_task_past_its_limit_is_stopped_and_the_pool_serves_on() {
    let p = pool(2);
    let before = started_workers(&p);
    let mut t = p.apply_async_timeout(sleep_ms, 10_000, Duration::from_millis(300)).unwrap();
    assert_eq!(t.get_timeout(Duration::from_secs(8)), Err(Error::TaskTimeout));
    // Its worker was killed, reaped (no zombie) and replaced; the pool serves.
    assert_eq!(p.apply(square, 9), Ok(81));
    wait_until("replacement worker", || {
        let now = p.worker_pids();
        now.iter().all(|&pid| pid > 0) && now.iter().filter(|pid| !before.contains(pid)).count() == 1
    });
    let killed: Vec<i32> = before.iter().copied().filter(|pid| !p.worker_pids().contains(pid)).collect();
    assert_eq!(killed.len(), 1);
    wait_until("the stopped worker to be reaped", || gone(killed[0]));
    // A task within its limit is untouched; a limit does not leak into the next task.
    assert_eq!(p.apply_async_timeout(sleep_ms, 10, Duration::from_secs(5)).unwrap().get(), Ok(10));
    assert_eq!(p.apply_async(sleep_ms, 400).unwrap().get(), Ok(400));
    assert_eq!(p.apply_async_timeout(square, 1, Duration::ZERO).err(), Some(Error::Inval));
}

#[test]
fn a_map_names_the_item_that_ran_past_the_pool_limit() {
    let p = pool_with(PoolOptions { workers: 2, task_timeout: Some(Duration::from_millis(500)), ..Default::default() });
    let items: Vec<u64> = (0..40).collect();
    assert_eq!(p.map_chunked(stuck_on_5, &items, 4), Err(TaskError { error: Error::TaskTimeout, item: 5 }));
    assert_eq!(p.map(square, &items).unwrap(), items.iter().map(|x| x * x).collect::<Vec<_>>());
    // The iterators report the item and go on with the rest.
    let got: Vec<_> = p.imap(stuck_on_5, &items, 4).unwrap().collect();
    assert_eq!(got.len(), 40);
    for (i, r) in got.into_iter().enumerate() {
        if i == 5 {
            assert_eq!(r, Err(TaskError { error: Error::TaskTimeout, item: 5 }));
        } else {
            assert_eq!(r, Ok((i, (i * i) as u64)));
        }
    }
    let zero = PoolOptions { task_timeout: Some(Duration::ZERO), ..Default::default() };
    // SAFETY: no task runs (the options are refused).
    assert_eq!(unsafe { Pool::new(&zero) }.err(), Some(Error::Inval), "a zero limit is refused");
}

#[test]
fn cancel_queued_running_and_finished() {
    let _m = marks();
    let p = pool(1);
    let running = p.apply_async(mark_then_sleep, 0).unwrap();
    wait_until("the long task to start", || mark_word(0).load(Ordering::Acquire) == 1);
    let mut queued = p.apply_async(mark, 1).unwrap();
    assert_eq!(queued.cancel(), Ok(()));
    assert_eq!(queued.cancel(), Err(Error::State), "already cancelled");
    assert_eq!(queued.get_timeout(PATIENCE), Err(Error::Cancelled));
    let mut running = running;
    assert_eq!(running.cancel(), Ok(()));
    assert_eq!(running.get_timeout(Duration::from_secs(8)), Err(Error::Cancelled));
    // The worker was stopped: the next task runs at once, and the cancelled one never ran.
    assert_eq!(p.apply_async(mark, 2).unwrap().get_timeout(Duration::from_secs(8)), Ok(1));
    assert_eq!(mark_word(1).load(Ordering::Acquire), 0, "the cancelled queued task never ran");
    let done = p.apply_async(square, 3).unwrap();
    done.wait(Some(PATIENCE)).unwrap();
    assert_eq!(done.cancel(), Err(Error::State), "a finished task cannot be cancelled");
    assert_eq!(done.get(), Ok(9), "and keeps its result");
}

#[test]
fn map_async_and_starmap() {
    fn add(a: u64, b: u32) -> u64 {
        a + b as u64
    }
    fn weigh(a: u8, b: u16, c: u32, d: u64) -> u64 {
        a as u64 + 10 * b as u64 + 100 * c as u64 + 1000 * d
    }
    let p = pool(3);
    let items: Vec<u64> = (0..10_000).collect();
    let m = p.map_async(square, &items, 0).unwrap();
    assert_eq!(m.get().unwrap(), items.iter().map(|x| x * x).collect::<Vec<_>>());
    let mut m = p.map_async(square, &items, 7).unwrap();
    m.wait(Some(PATIENCE)).unwrap();
    assert!(m.ready());
    assert_eq!(m.cancel(), Err(Error::State), "an ended map cannot be cancelled");
    assert_eq!(m.get_timeout(PATIENCE).unwrap()[9999], 9999 * 9999);
    // A failure is the lowest failed item, as for map.
    let p2 =
        pool_with(PoolOptions { workers: 2, task_timeout: Some(Duration::from_millis(300)), ..Default::default() });
    let m = p2.map_async(stuck_on_5, &items[..20], 2).unwrap();
    assert_eq!(m.get(), Err(TaskError { error: Error::TaskTimeout, item: 5 }));
    // Cancel: chunks not yet run never run, running ones are stopped.
    let mut m = p.map_async(sleep_ms, &[10_000, 10_000, 10_000, 10_000, 10_000, 10_000], 1).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(m.cancel(), Ok(()));
    assert_eq!(m.get_timeout(Duration::from_secs(8)).map_err(|e| e.error), Err(Error::Cancelled));
    assert_eq!(p.map(square, &[4]).unwrap(), [16], "the pool serves after a cancelled map");
    // starmap over tuples of 2 and 4 Pod fields.
    let pairs: Vec<(u64, u32)> = (0..1000).map(|i| (i as u64 * 1000, i)).collect();
    let sums = p.starmap(add as fn(u64, u32) -> u64, &pairs).unwrap();
    assert!(sums.iter().enumerate().all(|(i, &s)| s == i as u64 * 1001));
    let quads = [(1u8, 2u16, 3u32, 4u64), (5, 6, 7, 8)];
    assert_eq!(p.starmap(weigh as fn(u8, u16, u32, u64) -> u64, &quads).unwrap(), [4321, 8765]);
}

/// Kills the pool's only worker once mark 0 says its task started; returns its pid.
fn kill_the_runner(p: &Pool) -> i32 {
    wait_until("the task to start", || mark_word(0).load(Ordering::Acquire) >= 1);
    let pids = started_workers(p);
    assert_eq!(pids.len(), 1);
    // SAFETY: kills the pool's only worker, mid-task.
    unsafe { libc::kill(pids[0], libc::SIGKILL) };
    pids[0]
}

#[test]
fn worker_death_during_a_timed_task_a_map_async_and_a_cancel() {
    let _m = marks();
    let p = pool(1);
    // A task with a time limit whose worker dies first: WorkerDied, not TaskTimeout.
    let mut t = p.apply_async_timeout(mark_then_sleep, 0, Duration::from_secs(5)).unwrap();
    kill_the_runner(&p);
    assert_eq!(t.get_timeout(PATIENCE), Err(Error::WorkerDied));
    // A map_async chunk whose worker dies: the map names the item; the others ran.
    mark_word(0).store(0, Ordering::Release);
    let m = p.map_async(sleep_on_0, &[3, 4, 0, 5], 1).unwrap();
    kill_the_runner(&p);
    assert_eq!(m.get(), Err(TaskError { error: Error::WorkerDied, item: 2 }));
    assert!([3, 4, 5].iter().all(|&i| mark_word(i).load(Ordering::Acquire) == 1));
    // A worker that dies after its task was cancelled: the task stays cancelled.
    mark_word(0).store(0, Ordering::Release);
    let mut c = p.apply_async(mark_then_sleep, 0).unwrap();
    wait_until("the task to start", || mark_word(0).load(Ordering::Acquire) >= 1);
    c.cancel().unwrap();
    assert_eq!(c.get_timeout(PATIENCE), Err(Error::Cancelled));
    // Queued tasks survive their would-be worker's death: all complete on the replacement.
    mark_word(0).store(0, Ordering::Release);
    let blocker = p.apply_async(mark_then_sleep, 0).unwrap();
    let queued: Vec<_> = (100..120u32).map(|i| p.apply_async(mark, i).unwrap()).collect();
    kill_the_runner(&p);
    assert_eq!(blocker.get(), Err(Error::WorkerDied));
    for (i, mut h) in queued.into_iter().enumerate() {
        assert_eq!(h.get_timeout(PATIENCE), Ok(1), "task {i} ran once");
    }
}

/// Returns `x` after 50 ms (or 40 ms): slow enough that a stopped chunk's worker writes late.
fn slow50(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(50));
    x
}

fn slow40(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(40));
    x
}

/// A cancelled chunk's job slot and arena range are not reused while its worker may still write
/// there: with the supervisor held (SIGSTOP, as if descheduled) the stopped chunk's worker runs
/// on, and the next map must still get its own results. (Found in review: the old code freed
/// the range at once and the next map read 999s.)
#[test]
fn a_cancelled_chunks_memory_is_not_reused_while_its_worker_runs() {
    let p = pool(2);
    let worker = started_workers(&p)[0];
    let stat = std::fs::read_to_string(format!("/proc/{worker}/stat")).unwrap();
    let supervisor: i32 = stat.rsplit(')').next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut a = p.map_async(slow50, &[999u64, 999], 2).unwrap();
    std::thread::sleep(Duration::from_millis(10)); // a worker takes the chunk
    // SAFETY: stops the pool's own supervisor for a while (it is continued below).
    unsafe { libc::kill(supervisor, libc::SIGSTOP) };
    a.cancel().unwrap();
    assert_eq!(a.get_timeout(PATIENCE).map_err(|e| e.error), Err(Error::Cancelled));
    let mut b = p.map_async(slow40, &[1u64, 2, 3, 4], 4).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: continues the supervisor stopped above.
    unsafe { libc::kill(supervisor, libc::SIGCONT) };
    assert_eq!(b.get_timeout(PATIENCE).map_err(|e| e.error), Ok(vec![1, 2, 3, 4]));
}
