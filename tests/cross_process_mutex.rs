//! The robust mutex across real processes: mutual exclusion, owner death (kill -9, holding and
//! with a waiter already asleep), recovery, timeouts, ownership errors.
#![allow(clippy::multiple_unsafe_ops_per_block)] // tests group C-style calls

mod common;

use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{child, flag, join, wait_until};
use mpkit::lock::LockError;
use mpkit::{Acquired, Error, RawMutex, Region};

/// A region laid out as: flags (first KiB), the mutex at 1024, a plain u64 counter at 1088.
struct Shared {
    region: Region,
}

impl Shared {
    fn new() -> Shared {
        let region = Region::new(4096).unwrap();
        // SAFETY: offset 1024 is 8-aligned, inside the region, and nothing else uses it yet.
        unsafe { region.as_ptr().add(1024).cast::<RawMutex>().write(RawMutex::new()) };
        Shared { region }
    }
    fn mutex(&self) -> &RawMutex {
        // SAFETY: initialised in `new`, lives as long as `self`.
        unsafe { &*self.region.as_ptr().add(1024).cast::<RawMutex>() }
    }
    fn counter(&self) -> NonNull<u64> {
        // SAFETY: offset 1088 is inside the 4 KiB region.
        NonNull::new(unsafe { self.region.as_ptr().add(1088) }.cast::<u64>()).unwrap()
    }
}

#[test]
fn many_processes_lose_no_increment() {
    const PROCS: usize = 6;
    const ITERS: u64 = 25_000;
    let s = Shared::new();
    let children: Vec<_> = (0..PROCS)
        .map(|_| {
            child(|| {
                for _ in 0..ITERS {
                    let g = s.mutex().lock().expect("lock");
                    // A deliberately non-atomic read-modify-write: only the lock protects it.
                    // SAFETY: the counter is only touched under the lock.
                    unsafe {
                        let c = s.counter().as_ptr();
                        c.write_volatile(c.read_volatile() + 1);
                    }
                    drop(g);
                }
                0
            })
        })
        .collect();
    for c in &children {
        assert_eq!(join(c), 0);
    }
    let _g = s.mutex().lock().unwrap();
    // SAFETY: all children have exited; we hold the lock.
    assert_eq!(unsafe { s.counter().as_ptr().read_volatile() }, PROCS as u64 * ITERS);
}

#[test]
fn threads_and_processes_together() {
    const ITERS: u64 = 20_000;
    let s = Shared::new();
    let work = || {
        for _ in 0..ITERS {
            let _g = s.mutex().lock().unwrap();
            // SAFETY: only touched under the lock.
            unsafe {
                let c = s.counter().as_ptr();
                c.write_volatile(c.read_volatile() + 1);
            }
        }
    };
    let kids: Vec<_> = (0..2)
        .map(|_| {
            child(|| {
                work();
                0
            })
        })
        .collect();
    std::thread::scope(|sc| {
        sc.spawn(work);
        sc.spawn(work);
    });
    for k in &kids {
        assert_eq!(join(k), 0);
    }
    let _g = s.mutex().lock().unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { s.counter().as_ptr().read_volatile() }, 4 * ITERS);
}

#[test]
fn value_written_by_child_is_seen_by_parent() {
    let s = Shared::new();
    let c = child(|| {
        let _g = s.mutex().lock().unwrap();
        // SAFETY: under the lock.
        unsafe { s.counter().as_ptr().write_volatile(0xfeed_beef) };
        0
    });
    assert_eq!(join(&c), 0);
    let _g = s.mutex().lock().unwrap();
    // SAFETY: under the lock.
    assert_eq!(unsafe { s.counter().as_ptr().read_volatile() }, 0xfeed_beef);
}

/// Child takes the lock, raises flag 0, then sleeps until killed.
fn holder(s: &Shared) -> mpkit::Process {
    child(|| {
        let g = s.mutex().lock().unwrap();
        std::mem::forget(g);
        flag(&s.region, 0).store(1, Ordering::Release);
        loop {
            // SAFETY: pause() only sleeps until a signal arrives.
            unsafe { libc::pause() };
        }
    })
}

#[test]
fn kill_9_of_holder_gives_owner_dead_to_next_locker() {
    let s = Shared::new();
    let h = holder(&s);
    wait_until("holder to lock", || flag(&s.region, 0).load(Ordering::Acquire) == 1);
    assert!(matches!(s.mutex().try_lock(), Err(LockError::Failed(Error::Timeout))));
    h.kill().unwrap();
    assert_eq!(join(&h), -libc::SIGKILL);
    match s.mutex().lock_timeout(Duration::from_secs(10)) {
        Err(LockError::OwnerDead(g)) => {
            g.make_consistent().unwrap();
        }
        other => panic!("expected OwnerDead, got {other:?}"),
    }
    // Made consistent: a normal lock again.
    assert!(s.mutex().try_lock().is_ok());
}

#[test]
fn kill_9_of_holder_wakes_a_waiter_already_asleep() {
    let s = Shared::new();
    let h = holder(&s);
    wait_until("holder to lock", || flag(&s.region, 0).load(Ordering::Acquire) == 1);
    // The waiter blocks forever (no timeout): only owner-death handling can wake it.
    let w = child(|| {
        flag(&s.region, 1).store(1, Ordering::Release);
        match s.mutex().lock_until(mpkit::sync::Deadline::FOREVER) {
            Ok(Acquired::OwnerDied) => {
                s.mutex().consistent().unwrap();
                s.mutex().unlock().unwrap();
                7
            }
            Ok(Acquired::Locked) => 1,
            Err(_) => 2,
        }
    });
    wait_until("waiter to start", || flag(&s.region, 1).load(Ordering::Acquire) == 1);
    // Give the waiter time to reach FUTEX_WAIT (the test passes either way; this makes the
    // "already asleep" case the common one).
    std::thread::sleep(Duration::from_millis(50));
    let t0 = Instant::now();
    h.kill().unwrap();
    assert_eq!(join(&w), 7, "waiter must get OwnerDied");
    eprintln!("waiter got the lock {:?} after the kill", t0.elapsed());
    assert_eq!(join(&h), -libc::SIGKILL);
    assert!(s.mutex().try_lock().is_ok());
}

#[test]
fn unlock_without_consistent_makes_it_not_recoverable() {
    let s = Shared::new();
    let h = holder(&s);
    wait_until("holder to lock", || flag(&s.region, 0).load(Ordering::Acquire) == 1);
    h.kill().unwrap();
    join(&h);
    assert_eq!(s.mutex().lock_until(mpkit::sync::Deadline::FOREVER), Ok(Acquired::OwnerDied));
    s.mutex().unlock().unwrap();
    assert_eq!(s.mutex().lock_until(mpkit::sync::Deadline::FOREVER), Err(Error::NotRecoverable));
    assert_eq!(s.mutex().lock_until(mpkit::sync::Deadline::NOW), Err(Error::NotRecoverable));
    let other = child(|| match s.mutex().lock_until(mpkit::sync::Deadline::FOREVER) {
        Err(Error::NotRecoverable) => 0,
        _ => 1,
    });
    assert_eq!(join(&other), 0);
}

#[test]
fn waiters_asleep_when_it_becomes_not_recoverable_are_woken() {
    let s = Shared::new();
    let h = holder(&s);
    wait_until("holder to lock", || flag(&s.region, 0).load(Ordering::Acquire) == 1);
    h.kill().unwrap();
    join(&h);
    assert_eq!(s.mutex().lock_until(mpkit::sync::Deadline::FOREVER), Ok(Acquired::OwnerDied));
    let s = &s;
    let waiters: Vec<_> = (0..3)
        .map(|i| {
            child(move || {
                flag(&s.region, 1 + i).store(1, Ordering::Release);
                match s.mutex().lock_until(mpkit::sync::Deadline::FOREVER) {
                    Err(Error::NotRecoverable) => 0,
                    _ => 1,
                }
            })
        })
        .collect();
    wait_until("waiters", || (1..4).all(|i| flag(&s.region, i).load(Ordering::Acquire) == 1));
    std::thread::sleep(Duration::from_millis(50));
    s.mutex().unlock().unwrap();
    for w in &waiters {
        assert_eq!(join(w), 0);
    }
}

#[test]
fn thread_exit_while_holding_is_owner_death() {
    let s = Shared::new();
    std::thread::scope(|sc| {
        sc.spawn(|| std::mem::forget(s.mutex().lock().unwrap()));
    });
    match s.mutex().lock_timeout(Duration::from_secs(10)) {
        Err(LockError::OwnerDead(g)) => g.make_consistent().unwrap(),
        other => panic!("expected OwnerDead, got {other:?}"),
    }
}

#[test]
fn lock_timeout_returns_timeout_after_waiting() {
    let s = Shared::new();
    let h = holder(&s);
    wait_until("holder to lock", || flag(&s.region, 0).load(Ordering::Acquire) == 1);
    let t0 = Instant::now();
    let r = s.mutex().lock_timeout(Duration::from_millis(100));
    let waited = t0.elapsed();
    assert!(matches!(r, Err(LockError::Failed(Error::Timeout))));
    assert!(waited >= Duration::from_millis(100), "returned early: {waited:?}");
    h.kill().unwrap();
    join(&h);
}

#[test]
fn unlock_by_non_owner_is_refused() {
    let s = Shared::new();
    assert_eq!(s.mutex().unlock(), Err(Error::NotOwner));
    let g = s.mutex().lock().unwrap();
    let c = child(|| if s.mutex().unlock() == Err(Error::NotOwner) { 0 } else { 1 });
    assert_eq!(join(&c), 0);
    std::thread::scope(|sc| {
        sc.spawn(|| assert_eq!(s.mutex().unlock(), Err(Error::NotOwner)));
    });
    assert_eq!(s.mutex().consistent(), Err(Error::Inval));
    drop(g);
    assert_eq!(s.mutex().consistent(), Err(Error::NotOwner));
}

#[test]
fn relocking_by_the_owner_is_a_state_error_not_a_deadlock() {
    let s = Shared::new();
    let _g = s.mutex().lock().unwrap();
    assert_eq!(s.mutex().lock_until(mpkit::sync::Deadline::FOREVER), Err(Error::State));
}

/// Our lock shares the kernel's robust list with glibc's robust mutexes: hold both, interleave
/// their lock and unlock orders, then die holding both: both must report the owner's death.
#[test]
fn coexists_with_glibc_robust_pthread_mutexes() {
    let s = Shared::new();
    // SAFETY: zeroed shared memory at offset 2048 (room for two pthread_mutex_t), initialised
    // below with process-shared robust attributes before any use.
    let pm = |i: usize| unsafe { s.region.as_ptr().add(2048 + i * 64).cast::<libc::pthread_mutex_t>() };
    for i in 0..2 {
        // SAFETY: valid attribute and mutex storage; standard pthread initialisation.
        unsafe {
            let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
            libc::pthread_mutexattr_init(&mut attr);
            libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
            libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST);
            assert_eq!(libc::pthread_mutex_init(pm(i), &attr), 0);
        }
    }
    let h = child(|| {
        // SAFETY: the mutexes were initialised before the fork.
        unsafe {
            // Interleave: glibc, ours, glibc; unlock the middle one of each kind, relock.
            assert_eq!(libc::pthread_mutex_lock(pm(0)), 0);
            std::mem::forget(s.mutex().lock().unwrap());
            assert_eq!(libc::pthread_mutex_lock(pm(1)), 0);
            s.mutex().unlock().unwrap();
            assert_eq!(libc::pthread_mutex_unlock(pm(0)), 0);
            std::mem::forget(s.mutex().lock().unwrap());
            assert_eq!(libc::pthread_mutex_lock(pm(0)), 0);
        }
        flag(&s.region, 0).store(1, Ordering::Release);
        loop {
            // SAFETY: sleeps until killed.
            unsafe { libc::pause() };
        }
    });
    wait_until("holder to lock", || flag(&s.region, 0).load(Ordering::Acquire) == 1);
    h.kill().unwrap();
    assert_eq!(join(&h), -libc::SIGKILL);
    for i in 0..2 {
        // SAFETY: initialised robust mutexes whose owner died.
        unsafe {
            assert_eq!(libc::pthread_mutex_lock(pm(i)), libc::EOWNERDEAD, "glibc mutex {i}");
            libc::pthread_mutex_consistent(pm(i));
            libc::pthread_mutex_unlock(pm(i));
        }
    }
    assert_eq!(s.mutex().lock_until(mpkit::sync::Deadline::NOW), Ok(Acquired::OwnerDied));
}

/// The owned `Lock` (issue 15.3): made before the fork it is shared with the children, guards a
/// counter with nothing lost, and a holder killed with SIGKILL gives the next locker `OwnerDead`.
#[test]
fn owned_lock_is_shared_with_children_and_survives_a_holder() {
    let lock = mpkit::Lock::new().unwrap();
    let s = Shared::new(); // only for its counter and flags
    let children: Vec<_> = (0..4)
        .map(|_| {
            child(|| {
                for _ in 0..10_000 {
                    let g = lock.lock().expect("lock");
                    // SAFETY: the counter is only touched under the lock.
                    unsafe {
                        let c = s.counter().as_ptr();
                        c.write_volatile(c.read_volatile() + 1);
                    }
                    drop(g);
                }
                0
            })
        })
        .collect();
    for c in &children {
        assert_eq!(join(c), 0);
    }
    // SAFETY: every child has exited.
    assert_eq!(unsafe { s.counter().as_ptr().read_volatile() }, 40_000);
    let h = child(|| {
        std::mem::forget(lock.lock().unwrap());
        flag(&s.region, 0).store(1, Ordering::Release);
        loop {
            // SAFETY: pause() only sleeps until a signal arrives.
            unsafe { libc::pause() };
        }
    });
    wait_until("holder to lock", || flag(&s.region, 0).load(Ordering::Acquire) == 1);
    h.kill().unwrap();
    assert_eq!(join(&h), -libc::SIGKILL);
    match lock.lock_timeout(Duration::from_secs(10)) {
        Err(LockError::OwnerDead(g)) => g.make_consistent().unwrap(),
        other => panic!("expected OwnerDead, got {other:?}"),
    }
    assert!(lock.try_lock().is_ok());
}
