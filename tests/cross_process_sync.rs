//! Event, condition variable and barrier across real processes: start signals, set/clear and
//! timeouts, producer/consumer counts and checksums, a condition wait whose mutex owner died,
//! barrier rounds with index permutations, broken barriers (timeout, abort, a dead party), reset
//! and reuse; and no futex system call on the paths where nobody has to wait.
#![allow(clippy::multiple_unsafe_ops_per_block)] // tests group C-style calls

mod common;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{PATIENCE, child, flag, join, wait_until};
use mpkit::sync::futex_calls;
use mpkit::{Barrier, Condvar, Error, Event, Lock, RawBarrier, RawCondvar, RawEvent, RawMutex, Region};

/// A zeroed region: flags in the first KiB (`common::flag`), objects from 1024 on.
fn region() -> Region {
    Region::new(1 << 16).unwrap()
}

/// The object of type `T` at byte `offset` (≥ 1024, suitably aligned) of `r`, written with `value`.
fn place<T>(r: &Region, offset: usize, value: T) -> &T {
    assert!(offset >= 1024 && offset + size_of::<T>() <= r.len() && offset.is_multiple_of(align_of::<T>()));
    // SAFETY: in bounds and aligned (checked above), unused by anything else, and lives as long as
    // the region; the types placed here are process-shared primitives built for it.
    unsafe {
        let p = r.as_ptr().add(offset).cast::<T>();
        p.write(value);
        &*p
    }
}

/// A `u64` counter at byte `offset` (≥ 1024) of `r`.
fn counter(r: &Region, offset: usize) -> &AtomicU64 {
    place(r, offset, AtomicU64::new(0))
}

#[test]
fn event_start_signal_reaches_every_process() {
    const PROCS: u32 = 6;
    let r = region();
    let go = place(&r, 1024, RawEvent::new());
    let (ready, started) = (flag(&r, 0), flag(&r, 1));
    let kids: Vec<_> = (0..PROCS)
        .map(|_| {
            child(|| {
                ready.fetch_add(1, Ordering::AcqRel);
                match go.wait_timeout(PATIENCE) {
                    Ok(()) => {
                        started.fetch_add(1, Ordering::AcqRel);
                        0
                    }
                    Err(_) => 1,
                }
            })
        })
        .collect();
    wait_until("children to be ready", || ready.load(Ordering::Acquire) == PROCS);
    assert_eq!(started.load(Ordering::Acquire), 0, "nobody passes a clear event");
    go.set();
    for k in &kids {
        assert_eq!(join(k), 0);
    }
    assert_eq!(started.load(Ordering::Acquire), PROCS);
}

#[test]
fn event_set_clear_and_timeouts() {
    let e = Event::new().unwrap();
    let t0 = Instant::now();
    assert_eq!(e.wait_timeout(Duration::from_millis(30)), Err(Error::Timeout));
    assert!(t0.elapsed() >= Duration::from_millis(30));
    assert_eq!(e.raw().wait_until(mpkit::Deadline::NOW), Err(Error::Timeout));
    // A child that times out on the clear event, then sees it set.
    let r = region();
    let phase = flag(&r, 0);
    let k = child(|| {
        if e.wait_timeout(Duration::from_millis(20)) != Err(Error::Timeout) {
            return 1;
        }
        phase.store(1, Ordering::Release);
        if e.wait_timeout(PATIENCE).is_err() {
            return 2;
        }
        0
    });
    wait_until("child's timeout", || phase.load(Ordering::Acquire) == 1);
    e.set();
    assert_eq!(join(&k), 0);
    assert!(e.is_set());
    e.clear();
    assert!(!e.is_set());
    assert_eq!(e.wait_timeout(Duration::from_millis(1)), Err(Error::Timeout));
}

#[test]
fn no_syscall_while_nobody_has_to_wait() {
    let e = RawEvent::new();
    let (m, c) = (RawMutex::new(), RawCondvar::new());
    let b = RawBarrier::new(1).unwrap();
    let before = futex_calls();
    for _ in 0..1000 {
        e.set();
        e.wait().unwrap();
        assert!(e.is_set());
        e.clear();
        c.notify(1);
        c.notify_all();
        assert_eq!(b.wait(), Ok(0));
    }
    let _g = m.lock().unwrap();
    assert_eq!(futex_calls(), before);
}

/// A bounded buffer of `CAP` values under one mutex, with "not empty" / "not full" conditions.
struct Buffer<'a> {
    lock: &'a RawMutex,
    not_empty: &'a RawCondvar,
    not_full: &'a RawCondvar,
    /// [head, tail, slots...]; plain values touched only under `lock`.
    cells: &'a [AtomicU64],
}

const CAP: u64 = 4;

impl Buffer<'_> {
    fn put(&self, v: u64) {
        let g = self.lock.lock().unwrap();
        let cells = self.cells;
        let full = || cells[1].load(Ordering::Relaxed) - cells[0].load(Ordering::Relaxed) == CAP;
        self.not_full.wait_for_until(&g, mpkit::Deadline::after(PATIENCE), || !full()).unwrap();
        let tail = cells[1].load(Ordering::Relaxed);
        cells[2 + (tail % CAP) as usize].store(v, Ordering::Relaxed);
        cells[1].store(tail + 1, Ordering::Relaxed);
        self.not_empty.notify(1);
    }
    fn get(&self) -> u64 {
        let g = self.lock.lock().unwrap();
        let cells = self.cells;
        let empty = || cells[1].load(Ordering::Relaxed) == cells[0].load(Ordering::Relaxed);
        self.not_empty.wait_for_until(&g, mpkit::Deadline::after(PATIENCE), || !empty()).unwrap();
        let head = cells[0].load(Ordering::Relaxed);
        let v = cells[2 + (head % CAP) as usize].load(Ordering::Relaxed);
        cells[0].store(head + 1, Ordering::Relaxed);
        self.not_full.notify(1);
        v
    }
}

#[test]
fn condvar_producers_and_consumers_lose_and_duplicate_nothing() {
    const PRODUCERS: u64 = 2;
    const CONSUMERS: u64 = 2;
    const ITEMS: u64 = 3000; // per producer
    let r = region();
    let buf = Buffer {
        lock: place(&r, 1024, RawMutex::new()),
        not_empty: place(&r, 1088, RawCondvar::new()),
        not_full: place(&r, 1104, RawCondvar::new()),
        // SAFETY: 2 + CAP u64s at 1152, inside the zeroed region and used by nothing else.
        cells: unsafe { std::slice::from_raw_parts(r.as_ptr().add(1152).cast::<AtomicU64>(), 2 + CAP as usize) },
    };
    let (sum, xor, seen) = (counter(&r, 2048), counter(&r, 2056), counter(&r, 2064));
    let mut kids: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let buf = &buf;
            child(move || {
                for i in 0..ITEMS {
                    buf.put(p * ITEMS + i + 1);
                }
                0
            })
        })
        .collect();
    kids.extend((0..CONSUMERS).map(|_| {
        let buf = &buf;
        child(|| {
            for _ in 0..PRODUCERS * ITEMS / CONSUMERS {
                let v = buf.get();
                sum.fetch_add(v, Ordering::Relaxed);
                xor.fetch_xor(v.wrapping_mul(0x9e37_79b9_7f4a_7c15), Ordering::Relaxed);
                seen.fetch_add(1, Ordering::Relaxed);
            }
            0
        })
    }));
    for k in &kids {
        assert_eq!(join(k), 0);
    }
    let n = PRODUCERS * ITEMS;
    assert_eq!(seen.load(Ordering::Relaxed), n);
    assert_eq!(sum.load(Ordering::Relaxed), n * (n + 1) / 2);
    let want = (1..=n).fold(0u64, |x, v| x ^ v.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    assert_eq!(xor.load(Ordering::Relaxed), want, "each value exactly once");
}

#[test]
fn condvar_wait_whose_mutex_owner_exits_gets_owner_dead_holding_it() {
    let (lock, cond) = (Lock::new().unwrap(), Condvar::new().unwrap());
    let g = lock.lock().unwrap();
    // The child takes the mutex once the parent waits, notifies, and exits holding it.
    let k = child(|| match lock.lock_timeout(PATIENCE) {
        Ok(g) => {
            cond.notify_all();
            std::mem::forget(g);
            0
        }
        Err(_) => 1,
    });
    let r = cond.wait_timeout(&g, PATIENCE);
    assert_eq!(r, Err(Error::OwnerDead));
    assert_eq!(join(&k), 0);
    g.make_consistent().unwrap(); // the parent holds the lock
    drop(g);
    assert!(lock.try_lock().is_ok());
}

#[test]
fn condvar_wait_whose_mutex_owner_is_killed_gets_owner_dead() {
    let r = region();
    let (m, c) = (place(&r, 1024, RawMutex::new()), place(&r, 1088, RawCondvar::new()));
    let holding = flag(&r, 0);
    assert!(m.lock_until(mpkit::Deadline::FOREVER).is_ok());
    let k = child(|| {
        let g = m.lock_timeout(PATIENCE).unwrap();
        std::mem::forget(g);
        c.notify_all();
        holding.store(1, Ordering::Release);
        loop {
            // SAFETY: pause() only sleeps until a signal arrives.
            unsafe { libc::pause() };
        }
    });
    std::thread::scope(|s| {
        s.spawn(|| {
            wait_until("child to hold the mutex", || holding.load(Ordering::Acquire) == 1);
            std::thread::sleep(Duration::from_millis(20)); // let the parent block on the mutex
            k.kill().unwrap();
        });
        assert_eq!(c.wait_raw_until(m, mpkit::Deadline::after(PATIENCE)), Err(Error::OwnerDead));
    });
    assert_eq!(join(&k), -libc::SIGKILL);
    m.consistent().unwrap();
    m.unlock().unwrap();
}

#[test]
fn condvar_timeout_retakes_the_mutex_and_ownership_is_checked() {
    let r = region();
    let (m, c) = (place(&r, 1024, RawMutex::new()), place(&r, 1088, RawCondvar::new()));
    assert_eq!(c.wait_raw_until(m, mpkit::Deadline::FOREVER), Err(Error::NotOwner));
    let g = m.lock().unwrap();
    let t0 = Instant::now();
    assert_eq!(c.wait_timeout(&g, Duration::from_millis(30)), Err(Error::Timeout));
    assert!(t0.elapsed() >= Duration::from_millis(30));
    assert_eq!(c.wait_until(&g, mpkit::Deadline::NOW), Err(Error::Timeout));
    // Still held after the timeouts: another process cannot take it.
    let k = child(|| if m.try_lock().is_err() { 0 } else { 1 });
    assert_eq!(join(&k), 0);
    drop(g);
}

/// Four processes, many rounds: each round's indices are a permutation of 0..4, and every
/// party's write before a round is visible to all after it.
#[test]
fn barrier_of_four_processes_for_many_rounds() {
    const PARTIES: usize = 4;
    const ROUNDS: usize = 300;
    let r = region();
    let b = place(&r, 1024, RawBarrier::new(PARTIES as u32).unwrap());
    // SAFETY: ROUNDS * PARTIES u32s at 4096, inside the zeroed region and used by nothing else.
    let table = unsafe { std::slice::from_raw_parts(r.as_ptr().add(4096).cast::<AtomicU32>(), ROUNDS * PARTIES) };
    let party = |me: usize| {
        for round in 0..ROUNDS {
            table[round * PARTIES + me].store(1, Ordering::Relaxed);
            let Ok(index) = b.wait_timeout(PATIENCE) else { return 1 };
            // Everyone has written this round's mark; the index goes in the upper bits.
            if (0..PARTIES).any(|p| table[round * PARTIES + p].load(Ordering::Relaxed) & 1 == 0) {
                return 2;
            }
            table[round * PARTIES + me].fetch_or((index + 1) << 8, Ordering::Relaxed);
        }
        0
    };
    let kids: Vec<_> = (1..PARTIES).map(|me| child(move || party(me))).collect();
    assert_eq!(party(0), 0);
    for k in &kids {
        assert_eq!(join(k), 0);
    }
    for round in 0..ROUNDS {
        let mut idx: Vec<u32> =
            (0..PARTIES).map(|p| (table[round * PARTIES + p].load(Ordering::Relaxed) >> 8) - 1).collect();
        idx.sort();
        assert_eq!(idx, [0, 1, 2, 3], "round {round}");
    }
}

#[test]
fn barrier_timeout_breaks_it_for_all_until_reset() {
    let b = Barrier::new(3).unwrap();
    let k = child(|| match b.wait_timeout(PATIENCE) {
        Err(Error::Broken) => 0,
        _ => 1,
    });
    wait_until("the child to wait", || b.n_waiting() == 1);
    assert_eq!(b.wait_timeout(Duration::from_millis(20)), Err(Error::Timeout));
    assert_eq!(join(&k), 0);
    assert!(b.broken());
    assert_eq!(b.n_waiting(), 0);
    assert_eq!(b.wait_timeout(PATIENCE), Err(Error::Broken), "broken until reset");
    b.reset();
    assert!(!b.broken());
    // Usable again: three parties pass.
    let kids: Vec<_> = (0..2).map(|_| child(|| if b.wait_timeout(PATIENCE).is_ok() { 0 } else { 1 })).collect();
    assert!(b.wait_timeout(PATIENCE).unwrap() < 3);
    for k in &kids {
        assert_eq!(join(k), 0);
    }
}

#[test]
fn barrier_abort_breaks_the_waiters() {
    let b = Barrier::new(2).unwrap();
    let k = child(|| match b.wait_timeout(PATIENCE) {
        Err(Error::Broken) => 0,
        _ => 1,
    });
    wait_until("the child to wait", || b.n_waiting() == 1);
    b.abort();
    assert_eq!(join(&k), 0);
    assert!(b.broken());
    assert_eq!(b.wait_timeout(Duration::from_millis(1)), Err(Error::Broken));
}

#[test]
fn barrier_reset_while_waiting_breaks_the_waiter_then_is_reused() {
    let b = Barrier::new(2).unwrap();
    let r = region();
    let index = flag(&r, 0);
    let k = child(|| {
        if b.wait_timeout(PATIENCE) != Err(Error::Broken) {
            return 1;
        }
        match b.wait_timeout(PATIENCE) {
            Ok(i) => {
                index.store(i + 1, Ordering::Release);
                0
            }
            Err(_) => 2,
        }
    });
    wait_until("the child to wait", || b.n_waiting() == 1);
    b.reset();
    let mine = b.wait_timeout(PATIENCE).unwrap();
    assert_eq!(join(&k), 0);
    assert_eq!(mine + index.load(Ordering::Acquire) - 1, 1, "indices 0 and 1");
    assert!(!b.broken());
}

#[test]
fn barrier_party_killed_while_waiting_leaves_the_others_to_time_out() {
    let b = Barrier::new(4).unwrap();
    let k = child(|| {
        let _ = b.wait();
        1
    });
    wait_until("the doomed party to wait", || b.n_waiting() == 1);
    k.kill().unwrap();
    assert_eq!(join(&k), -libc::SIGKILL);
    let other = child(|| match b.wait_timeout(PATIENCE) {
        Err(Error::Broken) => 0,
        _ => 1,
    });
    wait_until("the other party to wait", || b.n_waiting() == 2);
    // The dead party still counts as arrived, the fourth never comes: the round cannot complete.
    assert_eq!(b.wait_timeout(Duration::from_millis(50)), Err(Error::Timeout));
    assert_eq!(join(&other), 0);
    assert!(b.broken());
}
