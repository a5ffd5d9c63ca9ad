//! The robust lock at the kernel's limits: more locks than the kernel's robust-list walk recovers
//! (issue 14.2), and a lock destroyed while held (issue 14.3).
#![allow(clippy::multiple_unsafe_ops_per_block)] // tests group C-style calls

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{child, flag, wait_until};
use mpkit::ffi::*;
use mpkit::{Acquired, Error, MAX_HELD_LOCKS, RawMutex, Region};

const LOCKS: usize = 3000;

/// `LOCKS` mutexes after a KiB of flags.
fn locks(region: &Region) -> &[RawMutex] {
    // SAFETY: the region is zeroed (all-zero is an unlocked RawMutex), 64-aligned past the first
    // KiB, large enough, and lives as long as the slice.
    unsafe { std::slice::from_raw_parts(region.as_ptr().add(1024).cast::<RawMutex>(), LOCKS) }
}

/// A child takes as many of 3,000 locks as it is allowed, then dies by kill -9. Every lock it took
/// must come back with OwnerDead; none may stay locked by the dead owner (the kernel walks only
/// 2,048 robust-list entries, so without a limit 952 did: MPK_FOREVER would hang on them).
#[test]
fn a_dead_thread_never_leaves_a_lock_unrecoverable() {
    let region = Region::new(1024 + LOCKS * 64).unwrap();
    let ls = locks(&region);
    let h = child(|| {
        let mut taken = 0u32;
        for l in ls {
            match l.lock_until(mpkit::Deadline::NOW) {
                Ok(Acquired::Locked) => taken += 1,
                Err(Error::NoMem) => {}
                _ => return 3,
            }
        }
        flag(&region, 1).store(taken, Ordering::Relaxed);
        flag(&region, 0).store(1, Ordering::Release);
        // SAFETY: pause() only sleeps until the kill.
        unsafe { libc::pause() };
        0
    });
    wait_until("the child to lock", || flag(&region, 0).load(Ordering::Acquire) == 1);
    // The child's main thread already holds one robust lock: its life lock (see `Process`).
    assert_eq!(flag(&region, 1).load(Ordering::Relaxed), MAX_HELD_LOCKS - 1, "locks taken up to the limit");
    h.kill().unwrap();
    let _ = h.join_timeout(common::PATIENCE);
    let (mut dead, mut free, mut stuck) = (0, 0, 0);
    for l in ls {
        match l.lock_until(mpkit::Deadline::after(Duration::from_millis(100))) {
            Ok(Acquired::OwnerDied) => {
                dead += 1;
                l.consistent().unwrap();
                l.unlock().unwrap();
            }
            Ok(Acquired::Locked) => {
                free += 1;
                l.unlock().unwrap();
            }
            Err(Error::Timeout) => stuck += 1,
            Err(e) => panic!("lock: {e:?}"),
        }
    }
    let held = MAX_HELD_LOCKS as usize - 1;
    assert_eq!((dead, free, stuck), (held, LOCKS - held, 0));
}

/// The limit counts held locks: unlocking makes room again, and a thread that holds nothing has
/// the whole allowance.
#[test]
fn the_limit_counts_only_locks_still_held() {
    let region = Region::new(1024 + LOCKS * 64).unwrap();
    let ls = locks(&region);
    let n = MAX_HELD_LOCKS as usize;
    for l in &ls[..n] {
        assert_eq!(l.lock_until(mpkit::Deadline::NOW), Ok(Acquired::Locked));
    }
    assert_eq!(ls[n].lock_until(mpkit::Deadline::NOW), Err(Error::NoMem));
    ls[0].unlock().unwrap();
    assert_eq!(ls[n].lock_until(mpkit::Deadline::NOW), Ok(Acquired::Locked));
    ls[n].unlock().unwrap();
    for l in &ls[1..n] {
        l.unlock().unwrap();
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            for l in &ls[..n] {
                assert_eq!(l.lock_until(mpkit::Deadline::NOW), Ok(Acquired::Locked));
            }
            for l in &ls[..n] {
                l.unlock().unwrap();
            }
        });
    });
}

/// Destroying a held owned mutex, and an array whose lock is held, must leave the thread's robust
/// list intact: unlocking another mutex afterwards used to segfault in `sys::robust`.
#[test]
fn destroying_a_held_lock_keeps_the_robust_list_sound() {
    // SAFETY: C-style calls with valid out-pointers; each handle is destroyed once.
    unsafe {
        let mut keep = std::ptr::null_mut();
        assert_eq!(mpk_mutex_create(&mut keep), MPK_OK);
        for _ in 0..3 {
            let mut m = std::ptr::null_mut();
            assert_eq!(mpk_mutex_create(&mut m), MPK_OK);
            let mut a = std::ptr::null_mut();
            assert_eq!(mpk_value_create(MPK_TYPE_I64, std::ptr::null(), &mut a), MPK_OK);
            assert_eq!(mpk_mutex_lock(keep, MPK_NOWAIT), MPK_OK);
            assert_eq!(mpk_mutex_lock(m, MPK_NOWAIT), MPK_OK);
            assert_eq!(mpk_mutex_lock(mpk_array_lock(a), MPK_NOWAIT), MPK_OK);
            mpk_array_destroy(a);
            mpk_mutex_destroy(m);
            // Unlinking `keep` touches its list neighbours: they must not be the unmapped locks.
            assert_eq!(mpk_mutex_unlock(keep), MPK_OK);
        }
        mpk_mutex_destroy(keep);
    }
}

/// Other processes sharing a destroyed-while-held mutex see an abandoned lock (OwnerDead), and a
/// glibc robust mutex held by the same thread is still recovered when that thread dies.
#[test]
fn a_lock_destroyed_while_held_is_abandoned_for_the_others() {
    let region = Region::new(4096).unwrap();
    // SAFETY: C-style calls with valid pointers; the pthread mutex lives in the shared region.
    unsafe {
        let mut m = std::ptr::null_mut();
        assert_eq!(mpk_mutex_create(&mut m), MPK_OK);
        let pm = region.as_ptr().add(1024).cast::<libc::pthread_mutex_t>();
        let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
        libc::pthread_mutexattr_init(&mut attr);
        libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
        libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST);
        assert_eq!(libc::pthread_mutex_init(pm, &attr), 0);
        let mm = m as usize;
        let pmm = pm as usize;
        let region = &region;
        let h = child(move || {
            let m = mm as *mut mpk_mutex;
            if libc::pthread_mutex_lock(pmm as *mut libc::pthread_mutex_t) != 0 {
                return 2;
            }
            if mpk_mutex_lock(m, MPK_NOWAIT) != MPK_OK {
                return 3;
            }
            mpk_mutex_destroy(m);
            flag(region, 0).store(1, Ordering::Release);
            libc::pause();
            0
        });
        wait_until("the child to destroy", || flag(region, 0).load(Ordering::Acquire) == 1);
        assert_eq!(mpk_mutex_lock(m, 10_000), MPK_ERR_OWNER_DEAD, "the parent's view of the abandoned lock");
        assert_eq!(mpk_mutex_consistent(m), MPK_OK);
        assert_eq!(mpk_mutex_unlock(m), MPK_OK);
        h.kill().unwrap();
        let _ = join_killed(&h);
        let mut ts: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts);
        ts.tv_sec += 10;
        assert_eq!(libc::pthread_mutex_timedlock(pm, &ts), libc::EOWNERDEAD, "glibc's lock recovered");
        mpk_mutex_destroy(m);
    }
}

fn join_killed(p: &mpkit::Process) -> i32 {
    p.join_timeout(common::PATIENCE).unwrap_or(0)
}

/// A lock another thread of this process holds keeps its mapping when destroyed, so that thread's
/// unlock (and its robust list) stay valid.
#[test]
fn destroying_a_lock_another_thread_holds_keeps_it_mapped() {
    // SAFETY: C-style calls with valid pointers.
    unsafe {
        let mut m = std::ptr::null_mut();
        assert_eq!(mpk_mutex_create(&mut m), MPK_OK);
        let mm = m as usize;
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            assert_eq!(mpk_mutex_lock(mm as *mut mpk_mutex, MPK_NOWAIT), MPK_OK);
            locked_tx.send(()).unwrap();
            go_rx.recv_timeout(common::PATIENCE).unwrap();
            mpk_mutex_unlock(mm as *mut mpk_mutex)
        });
        locked_rx.recv_timeout(common::PATIENCE).unwrap();
        mpk_mutex_destroy(m);
        go_tx.send(()).unwrap();
        assert_eq!(t.join().unwrap(), MPK_OK);
    }
}
