//! The counting semaphore across real processes: at most N inside at once (and N reached),
//! permits handed between processes, bounded overflow, timeouts, and what a dead holder leaves.
#![allow(clippy::multiple_unsafe_ops_per_block)] // tests group C-style calls

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{child, flag, join, wait_until};
use mpkit::{Deadline, Error, RawSemaphore, Region, Semaphore};

/// A region laid out as: flags (first KiB), the semaphore at 1024.
struct Shared {
    region: Region,
}

impl Shared {
    fn new(value: u32, max: u32) -> Shared {
        let region = Region::new(4096).unwrap();
        let sem = RawSemaphore::new(value, max).unwrap();
        // SAFETY: offset 1024 is 8-aligned, inside the region, and nothing else uses it yet.
        unsafe { region.as_ptr().add(1024).cast::<RawSemaphore>().write(sem) };
        Shared { region }
    }
    fn sem(&self) -> &RawSemaphore {
        // SAFETY: initialised in `new`, lives as long as `self`.
        unsafe { &*self.region.as_ptr().add(1024).cast::<RawSemaphore>() }
    }
    fn word(&self, i: usize) -> &AtomicU32 {
        flag(&self.region, i)
    }
}

/// Eight processes through a semaphore of 3: the most inside at once, counted in shared memory,
/// is at most 3 and reaches 3; every pass is counted.
#[test]
fn limits_n_processes_at_a_time() {
    const N: u32 = 3;
    const PROCS: usize = 8;
    const PASSES: u32 = 100;
    let s = Shared::new(N, 0);
    let (inside, most, passes) = (0, 1, 2);
    let children: Vec<_> = (0..PROCS)
        .map(|_| {
            child(|| {
                for _ in 0..PASSES {
                    let permit = s.sem().acquire_timeout(Duration::from_secs(30)).expect("acquire");
                    let now = s.word(inside).fetch_add(1, Ordering::AcqRel) + 1;
                    s.word(most).fetch_max(now, Ordering::AcqRel);
                    s.word(passes).fetch_add(1, Ordering::Relaxed);
                    // Stay until the permits are all taken (bounded: 2 ms), so that on two CPUs the
                    // others get to pile up behind them rather than by chance.
                    let t0 = std::time::Instant::now();
                    while s.word(inside).load(Ordering::Acquire) < N && t0.elapsed() < Duration::from_millis(2) {
                        std::thread::yield_now();
                    }
                    s.word(inside).fetch_sub(1, Ordering::AcqRel);
                    drop(permit);
                }
                0
            })
        })
        .collect();
    for c in &children {
        assert_eq!(join(c), 0);
    }
    let seen = s.word(most).load(Ordering::Acquire);
    assert!(seen <= N, "{seen} inside at once with {N} permits");
    assert_eq!(seen, N, "the {N} permits were never all in use at once");
    assert_eq!(s.word(passes).load(Ordering::Acquire), PROCS as u32 * PASSES);
    assert_eq!(s.sem().value(), N);
}

/// Two semaphores at 0 as a ping-pong between processes: each round trip is one release and
/// one acquire on each side; nothing lost, nothing extra.
#[test]
fn ping_pong_between_processes() {
    const ROUNDS: u32 = 20_000;
    let region = Region::new(4096).unwrap();
    // SAFETY: offsets 1024 and 1088 are 8-aligned, inside the region, unused otherwise.
    let (a, b) = unsafe {
        let pa = region.as_ptr().add(1024).cast::<RawSemaphore>();
        let pb = region.as_ptr().add(1088).cast::<RawSemaphore>();
        pa.write(RawSemaphore::new(0, 0).unwrap());
        pb.write(RawSemaphore::new(0, 1).unwrap());
        (&*pa, &*pb)
    };
    let c = child(|| {
        for _ in 0..ROUNDS {
            if a.acquire_until(Deadline::after(Duration::from_secs(30))).is_err() || b.release().is_err() {
                return 1;
            }
        }
        0
    });
    for _ in 0..ROUNDS {
        a.release().unwrap();
        b.acquire_timeout(Duration::from_secs(30)).unwrap().forget();
    }
    assert_eq!(join(&c), 0);
    assert_eq!((a.value(), b.value()), (0, 0));
}

/// Sleepers in other processes are all woken by as many releases, none twice.
#[test]
fn releases_wake_sleepers_in_other_processes() {
    const SLEEPERS: u32 = 4;
    let s = Shared::new(0, 0);
    let children: Vec<_> = (0..SLEEPERS)
        .map(|_| {
            child(|| {
                s.word(0).fetch_add(1, Ordering::AcqRel);
                match s.sem().acquire_timeout(Duration::from_secs(30)) {
                    Ok(p) => {
                        p.forget();
                        s.word(1).fetch_add(1, Ordering::AcqRel);
                        0
                    }
                    Err(_) => 1,
                }
            })
        })
        .collect();
    wait_until("sleepers to start", || s.word(0).load(Ordering::Acquire) == SLEEPERS);
    std::thread::sleep(Duration::from_millis(50)); // most are asleep by now
    for _ in 0..SLEEPERS {
        s.sem().release().unwrap();
    }
    for c in &children {
        assert_eq!(join(c), 0);
    }
    assert_eq!(s.word(1).load(Ordering::Acquire), SLEEPERS);
    assert_eq!(s.sem().value(), 0);
}

#[test]
fn bounded_semaphore_refuses_release_past_its_bound() {
    let s = Shared::new(2, 2);
    assert_eq!(s.sem().release(), Err(Error::State));
    assert_eq!(s.sem().value(), 2, "a refused release changes nothing");
    let c = child(|| {
        let ok = s.sem().try_acquire().map(|p| p.forget()).is_ok();
        i32::from(!ok)
    });
    assert_eq!(join(&c), 0);
    assert_eq!(s.sem().value(), 1);
    s.sem().release().unwrap();
    assert_eq!(s.sem().release(), Err(Error::State));
    // Unbounded: releases go on up to SEM_VALUE_MAX.
    let u = RawSemaphore::new(mpkit::lock::SEM_VALUE_MAX - 1, 0).unwrap();
    u.release().unwrap();
    assert_eq!(u.release(), Err(Error::State));
    assert_eq!(RawSemaphore::new(3, 2).err(), Some(Error::Inval));
    assert_eq!(RawSemaphore::new(mpkit::lock::SEM_VALUE_MAX + 1, 0).err(), Some(Error::Inval));
}

#[test]
fn acquire_timeout_waits_then_times_out() {
    let s = Shared::new(0, 0);
    assert_eq!(s.sem().try_acquire().err(), Some(Error::Timeout));
    let t0 = Instant::now();
    assert_eq!(s.sem().acquire_timeout(Duration::from_millis(50)).err(), Some(Error::Timeout));
    assert!(t0.elapsed() >= Duration::from_millis(50));
    // A release from another process before the deadline ends the wait.
    let c = child(|| {
        std::thread::sleep(Duration::from_millis(30));
        i32::from(s.sem().release().is_err())
    });
    assert!(s.sem().acquire_timeout(Duration::from_secs(30)).map(|p| p.forget()).is_ok());
    assert_eq!(join(&c), 0);
}

/// A process killed while holding a permit takes it along (no owner, as with POSIX): the count
/// stays one lower, and a waiter's timeout is what ends its wait.
#[test]
fn a_killed_holder_loses_its_permit() {
    let s = Shared::new(1, 1);
    let h = child(|| {
        s.sem().acquire().unwrap().forget();
        s.word(0).store(1, Ordering::Release);
        loop {
            // SAFETY: pause() only sleeps until a signal arrives.
            unsafe { libc::pause() };
        }
    });
    wait_until("holder to acquire", || s.word(0).load(Ordering::Acquire) == 1);
    h.kill().unwrap();
    assert_eq!(join(&h), -libc::SIGKILL);
    assert_eq!(s.sem().value(), 0);
    assert_eq!(s.sem().acquire_timeout(Duration::from_millis(20)).err(), Some(Error::Timeout));
    s.sem().release().unwrap(); // anyone may give it back
    assert!(s.sem().try_acquire().is_ok());
}

/// A zeroed semaphore is not one.
#[test]
fn zeroed_memory_is_a_bad_object() {
    let region = Region::new(64).unwrap();
    // SAFETY: aligned, large enough; all-zero bytes are valid atomics.
    let s = unsafe { &*region.as_ptr().cast::<RawSemaphore>() };
    assert_eq!(s.try_acquire().err(), Some(Error::BadObject));
    assert_eq!(s.release(), Err(Error::BadObject));
    assert_eq!(s.value(), 0);
}

/// The owned semaphore: a bounded one shared with children.
#[test]
fn owned_semaphore_across_fork() {
    let sem = Semaphore::new(1, 1).unwrap();
    let p = sem.acquire().unwrap();
    let c = child(|| match sem.try_acquire() {
        Err(Error::Timeout) => i32::from(sem.release().is_err()), // gives the parent's permit back
        _ => 1,
    });
    assert_eq!(join(&c), 0);
    assert_eq!(sem.value(), 1);
    p.forget(); // the child released it already
    assert_eq!(sem.release(), Err(Error::State));
}

/// Neither an uncontended acquire/release nor a recursive lock makes a futex system call.
#[test]
fn uncontended_paths_make_no_futex_call() {
    let s = RawSemaphore::new(2, 2).unwrap();
    let m = mpkit::RawRMutex::new();
    let before = mpkit::sync::futex_calls();
    for _ in 0..1000 {
        let (a, b) = (s.try_acquire().unwrap(), s.acquire().unwrap());
        drop((a, b));
        let (outer, inner) = (m.lock().unwrap(), m.try_lock().unwrap());
        drop((inner, outer));
    }
    assert_eq!(mpkit::sync::futex_calls(), before);
}
