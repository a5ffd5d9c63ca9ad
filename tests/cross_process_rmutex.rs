//! The recursive robust mutex across real processes: recursion over many levels, mutual
//! exclusion, owner death at depth 2 (exit and kill -9; depth reset to 1), recovery and
//! not-recoverable, non-owner unlock, timeouts.
#![allow(clippy::multiple_unsafe_ops_per_block)] // tests group C-style calls

mod common;

use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{child, flag, join, wait_until};
use mpkit::lock::LockError;
use mpkit::{Acquired, Deadline, Error, RLock, RawRMutex, Region};

/// A region laid out as: flags (first KiB), the lock at 1024, a plain u64 counter at 1152.
struct Shared {
    region: Region,
}

impl Shared {
    fn new() -> Shared {
        let region = Region::new(4096).unwrap();
        // SAFETY: offset 1024 is 8-aligned, inside the region, and nothing else uses it yet.
        unsafe { region.as_ptr().add(1024).cast::<RawRMutex>().write(RawRMutex::new()) };
        Shared { region }
    }
    fn lock(&self) -> &RawRMutex {
        // SAFETY: initialised in `new`, lives as long as `self`.
        unsafe { &*self.region.as_ptr().add(1024).cast::<RawRMutex>() }
    }
    fn counter(&self) -> NonNull<u64> {
        // SAFETY: offset 1152 is inside the 4 KiB region.
        NonNull::new(unsafe { self.region.as_ptr().add(1152) }.cast::<u64>()).unwrap()
    }
    /// A deliberately non-atomic read-modify-write: only the lock protects it.
    fn bump(&self) {
        // SAFETY: called only under the lock.
        unsafe {
            let c = self.counter().as_ptr();
            c.write_volatile(c.read_volatile() + 1);
        }
    }
}

/// Each process takes the lock three levels deep and increments at every level.
#[test]
fn many_processes_nested_lose_no_increment() {
    const PROCS: usize = 6;
    const ITERS: u64 = 10_000;
    let s = Shared::new();
    let children: Vec<_> = (0..PROCS)
        .map(|_| {
            child(|| {
                for _ in 0..ITERS {
                    let a = s.lock().lock().expect("lock");
                    s.bump();
                    let b = s.lock().lock().expect("relock");
                    s.bump();
                    let c = s.lock().try_lock().expect("relock never waits");
                    s.bump();
                    drop(c);
                    s.bump();
                    drop(b);
                    s.bump();
                    drop(a);
                }
                0
            })
        })
        .collect();
    for c in &children {
        assert_eq!(join(c), 0);
    }
    let _g = s.lock().lock().unwrap();
    // SAFETY: all children have exited; we hold the lock.
    assert_eq!(unsafe { s.counter().as_ptr().read_volatile() }, PROCS as u64 * ITERS * 5);
}

/// A thousand levels deep, then back: held by the owner until the last unlock; a second process
/// cannot take it at any depth.
#[test]
fn recursion_across_many_levels() {
    const LEVELS: u32 = 1000;
    let s = Shared::new();
    for i in 1..=LEVELS {
        assert_eq!(s.lock().lock_until(Deadline::NOW), Ok(Acquired::Locked));
        assert_eq!(s.lock().depth(), i);
    }
    let probe = |s: &Shared| {
        let c = child(|| match s.lock().lock_until(Deadline::NOW) {
            Err(Error::Timeout) => 0,
            _ => 1,
        });
        join(&c)
    };
    assert_eq!(probe(&s), 0, "held at depth {LEVELS}");
    for i in (1..LEVELS).rev() {
        s.lock().unlock().unwrap();
        assert_eq!(s.lock().depth(), i);
    }
    assert_eq!(probe(&s), 0, "held at depth 1");
    s.lock().unlock().unwrap();
    assert_eq!(s.lock().depth(), 0);
    assert_eq!(s.lock().unlock(), Err(Error::NotOwner));
    let c = child(|| match s.lock().lock_until(Deadline::NOW) {
        Ok(Acquired::Locked) => i32::from(s.lock().unlock().is_err()),
        _ => 1,
    });
    assert_eq!(join(&c), 0, "free after the last unlock");
}

/// Child takes the lock twice, raises flag 0, then sleeps until killed (or, with `exit`, exits).
fn double_holder(s: &Shared, exit: bool) -> mpkit::Process {
    child(move || {
        std::mem::forget(s.lock().lock().unwrap());
        std::mem::forget(s.lock().lock().unwrap());
        flag(&s.region, 0).store(1, Ordering::Release);
        if exit {
            return 0;
        }
        loop {
            // SAFETY: pause() only sleeps until a signal arrives.
            unsafe { libc::pause() };
        }
    })
}

#[test]
fn kill_9_at_depth_two_gives_owner_dead_at_depth_one() {
    let s = Shared::new();
    let h = double_holder(&s, false);
    wait_until("holder to lock", || flag(&s.region, 0).load(Ordering::Acquire) == 1);
    assert!(matches!(s.lock().try_lock(), Err(LockError::Failed(Error::Timeout))));
    h.kill().unwrap();
    assert_eq!(join(&h), -libc::SIGKILL);
    let Err(LockError::OwnerDead(g)) = s.lock().lock_timeout(Duration::from_secs(10)) else {
        panic!("expected OwnerDead");
    };
    assert_eq!(s.lock().depth(), 1, "depth reset to 1");
    g.make_consistent().unwrap();
    drop(g); // one unlock frees it
    let c = child(|| match s.lock().lock_until(Deadline::NOW) {
        Ok(Acquired::Locked) => i32::from(s.lock().unlock().is_err()),
        _ => 1,
    });
    assert_eq!(join(&c), 0, "free and consistent again");
}

#[test]
fn exit_at_depth_two_wakes_a_waiter_already_asleep() {
    let s = Shared::new();
    // The child locks twice, waits for the parent to be asleep on the lock, then exits.
    let h = child(|| {
        std::mem::forget(s.lock().lock().unwrap());
        std::mem::forget(s.lock().lock().unwrap());
        flag(&s.region, 0).store(1, Ordering::Release);
        while flag(&s.region, 1).load(Ordering::Acquire) == 0 {
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_millis(50));
        0
    });
    wait_until("holder to lock", || flag(&s.region, 0).load(Ordering::Acquire) == 1);
    flag(&s.region, 1).store(1, Ordering::Release);
    let r = s.lock().lock_until(Deadline::after(Duration::from_secs(30)));
    assert_eq!(r, Ok(Acquired::OwnerDied));
    assert_eq!(join(&h), 0);
    assert_eq!(s.lock().depth(), 1);
    // Recursion works on the inherited lock; the last unlock without `consistent` poisons it.
    assert_eq!(s.lock().lock_until(Deadline::NOW), Ok(Acquired::Locked));
    s.lock().unlock().unwrap();
    s.lock().unlock().unwrap();
    assert_eq!(s.lock().lock_until(Deadline::NOW), Err(Error::NotRecoverable));
    let c = child(|| i32::from(s.lock().lock_until(Deadline::NOW) != Err(Error::NotRecoverable)));
    assert_eq!(join(&c), 0);
}

#[test]
fn unlock_by_non_owner_is_refused_and_changes_nothing() {
    let s = Shared::new();
    assert_eq!(s.lock().lock_until(Deadline::NOW), Ok(Acquired::Locked));
    assert_eq!(s.lock().lock_until(Deadline::NOW), Ok(Acquired::Locked));
    let c = child(|| {
        let refused = s.lock().unlock() == Err(Error::NotOwner) && s.lock().consistent() == Err(Error::NotOwner);
        let still_held = s.lock().lock_until(Deadline::NOW) == Err(Error::Timeout);
        i32::from(!(refused && still_held && s.lock().depth() == 0))
    });
    assert_eq!(join(&c), 0);
    let other = std::thread::scope(|t| t.spawn(|| s.lock().unlock()).join().unwrap());
    assert_eq!(other, Err(Error::NotOwner), "another thread is not the owner either");
    assert_eq!(s.lock().depth(), 2);
    s.lock().unlock().unwrap();
    s.lock().unlock().unwrap();
}

#[test]
fn lock_timeout_returns_timeout_after_waiting() {
    let s = Shared::new();
    let h = double_holder(&s, false);
    wait_until("holder to lock", || flag(&s.region, 0).load(Ordering::Acquire) == 1);
    let t0 = std::time::Instant::now();
    assert!(matches!(s.lock().lock_timeout(Duration::from_millis(50)), Err(LockError::Failed(Error::Timeout))));
    assert!(t0.elapsed() >= Duration::from_millis(50));
    h.kill().unwrap();
    assert_eq!(join(&h), -libc::SIGKILL);
}

/// The owned lock: shared with a child, and a child that dies holding it at depth 2.
#[test]
fn owned_rlock_across_fork() {
    let lock = RLock::new().unwrap();
    let c = child(|| {
        std::mem::forget(lock.lock().unwrap());
        std::mem::forget(lock.lock().unwrap());
        0
    });
    assert_eq!(join(&c), 0);
    let Err(LockError::OwnerDead(g)) = lock.lock_timeout(Duration::from_secs(10)) else {
        panic!("expected OwnerDead");
    };
    assert_eq!(lock.raw().depth(), 1);
    g.make_consistent().unwrap();
    let inner = lock.try_lock().unwrap();
    drop(inner);
    drop(g);
    assert_eq!(lock.raw().depth(), 0);
    assert!(lock.try_lock().is_ok());
}
