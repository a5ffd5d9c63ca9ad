//! `mpk_rmutex_*` and `mpk_sem_*` through the C ABI: NULL, misaligned, foreign and bad arguments
//! return their documented status; the normal paths, owned objects shared with children.
#![allow(clippy::multiple_unsafe_ops_per_block)] // tests group C-style calls

mod common;

use std::ptr::null_mut;

use mpkit::ffi::*;

#[test]
fn rmutex_null_and_bad_arguments() {
    // SAFETY: every pointer passed is NULL, or points to live, suitably sized storage.
    unsafe {
        assert_eq!(mpk_rmutex_init(null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_rmutex_lock(null_mut(), MPK_FOREVER), MPK_ERR_NULL);
        assert_eq!(mpk_rmutex_unlock(null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_rmutex_consistent(null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_rmutex_create(null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_rmutex_depth(null_mut()), 0);
        mpk_rmutex_destroy(null_mut());
        let mut storage = [0u64; 10];
        let misaligned = (storage.as_mut_ptr() as *mut u8).add(4) as *mut mpk_rmutex;
        assert_eq!(mpk_rmutex_init(misaligned), MPK_ERR_INVAL);
        assert_eq!(mpk_rmutex_lock(misaligned, 0), MPK_ERR_INVAL);
        assert_eq!(mpk_rmutex_unlock(misaligned), MPK_ERR_INVAL);
        let mut m: mpk_rmutex = std::mem::zeroed();
        assert_eq!(mpk_rmutex_init(&mut m), MPK_OK);
        for bad in [-2, -1000, i64::MIN] {
            assert_eq!(mpk_rmutex_lock(&mut m, bad), MPK_ERR_INVAL);
        }
        assert_eq!(mpk_rmutex_unlock(&mut m), MPK_ERR_NOT_OWNER);
        assert_eq!(mpk_rmutex_consistent(&mut m), MPK_ERR_NOT_OWNER);
        for depth in 1..=3 {
            assert_eq!(mpk_rmutex_lock(&mut m, MPK_NOWAIT), MPK_OK);
            assert_eq!(mpk_rmutex_depth(&m), depth);
        }
        assert_eq!(mpk_rmutex_consistent(&mut m), MPK_ERR_INVAL, "held but not inconsistent");
        let mp = &mut m as *mut mpk_rmutex as usize;
        std::thread::spawn(move || {
            let m = mp as *mut mpk_rmutex;
            assert_eq!(mpk_rmutex_lock(m, MPK_NOWAIT), MPK_ERR_TIMEOUT);
            assert_eq!(mpk_rmutex_lock(m, 20), MPK_ERR_TIMEOUT);
            assert_eq!(mpk_rmutex_unlock(m), MPK_ERR_NOT_OWNER);
            assert_eq!(mpk_rmutex_depth(m), 0);
        })
        .join()
        .unwrap();
        for _ in 0..3 {
            assert_eq!(mpk_rmutex_unlock(&mut m), MPK_OK);
        }
        assert_eq!(mpk_rmutex_unlock(&mut m), MPK_ERR_NOT_OWNER);
        mpk_rmutex_destroy(&mut m); // in place: ignored
        assert_eq!(mpk_rmutex_lock(&mut m, 0), MPK_OK, "destroy must not touch an in-place lock");
        assert_eq!(mpk_rmutex_unlock(&mut m), MPK_OK);
        // An owned mutex is not an owned rmutex: destroying one as the other is ignored.
        let mut plain = null_mut();
        assert_eq!(mpk_mutex_create(&mut plain), MPK_OK);
        mpk_rmutex_destroy(plain.cast());
        assert_eq!(mpk_mutex_lock(plain, 0), MPK_OK, "a foreign object must be left alone");
        assert_eq!(mpk_mutex_unlock(plain), MPK_OK);
        mpk_mutex_destroy(plain);
    }
}

#[test]
fn owned_rmutex_owner_death_through_c() {
    let mut m = null_mut();
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { mpk_rmutex_create(&mut m) }, MPK_OK);
    let mp = m as usize;
    let c = common::child(move || {
        let m = mp as *mut mpk_rmutex;
        // SAFETY: the mapping was inherited at the same address. Exits holding it twice.
        let ok = unsafe { mpk_rmutex_lock(m, MPK_FOREVER) == MPK_OK && mpk_rmutex_lock(m, 0) == MPK_OK };
        i32::from(!ok)
    });
    assert_eq!(common::join(&c), 0);
    // SAFETY: `m` is live until destroyed, once, at the end.
    unsafe {
        assert_eq!(mpk_rmutex_lock(m, 10_000), MPK_ERR_OWNER_DEAD);
        assert_eq!(mpk_rmutex_depth(m), 1, "depth reset to 1");
        assert_eq!(mpk_rmutex_consistent(m), MPK_OK);
        assert_eq!(mpk_rmutex_unlock(m), MPK_OK);
        assert_eq!(mpk_rmutex_depth(m), 0);
        // Dead again, this time not made consistent: not recoverable.
        let c = common::child(move || {
            // SAFETY: as above.
            i32::from(mpk_rmutex_lock(mp as *mut mpk_rmutex, MPK_FOREVER) != MPK_OK)
        });
        assert_eq!(common::join(&c), 0);
        assert_eq!(mpk_rmutex_lock(m, 10_000), MPK_ERR_OWNER_DEAD);
        assert_eq!(mpk_rmutex_unlock(m), MPK_OK);
        assert_eq!(mpk_rmutex_lock(m, 0), MPK_ERR_NOT_RECOVERABLE);
        assert_eq!(mpk_rmutex_init(m), MPK_OK, "re-initialising recovers it");
        assert_eq!(mpk_rmutex_lock(m, 0), MPK_OK);
        assert_eq!(mpk_rmutex_unlock(m), MPK_OK);
        mpk_rmutex_destroy(m);
    }
}

#[test]
fn sem_null_and_bad_arguments() {
    // SAFETY: every pointer passed is NULL, or points to live, suitably sized storage.
    unsafe {
        assert_eq!(mpk_sem_init(null_mut(), 1, 0), MPK_ERR_NULL);
        assert_eq!(mpk_sem_acquire(null_mut(), MPK_FOREVER), MPK_ERR_NULL);
        assert_eq!(mpk_sem_release(null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_sem_value(null_mut()), 0);
        assert_eq!(mpk_sem_create(1, 0, null_mut()), MPK_ERR_NULL);
        mpk_sem_destroy(null_mut());
        let mut storage = [0u64; 5];
        let misaligned = (storage.as_mut_ptr() as *mut u8).add(4) as *mut mpk_sem;
        assert_eq!(mpk_sem_init(misaligned, 1, 0), MPK_ERR_INVAL);
        assert_eq!(mpk_sem_acquire(misaligned, 0), MPK_ERR_INVAL);
        assert_eq!(mpk_sem_release(misaligned), MPK_ERR_INVAL);
        // Zeroed or foreign bytes are not a semaphore.
        let mut s: mpk_sem = std::mem::zeroed();
        assert_eq!(mpk_sem_acquire(&mut s, MPK_FOREVER), MPK_ERR_BAD_OBJECT);
        assert_eq!(mpk_sem_release(&mut s), MPK_ERR_BAD_OBJECT);
        assert_eq!(mpk_sem_value(&s), 0);
        let mut mutex: mpk_mutex = std::mem::zeroed();
        assert_eq!(mpk_mutex_init(&mut mutex), MPK_OK);
        assert_eq!(mpk_sem_acquire((&mut mutex as *mut mpk_mutex).cast(), 0), MPK_ERR_BAD_OBJECT);
        // max < value, values past MPK_SEM_VALUE_MAX: refused, the memory untouched.
        assert_eq!(mpk_sem_init(&mut s, 3, 2), MPK_ERR_INVAL);
        assert_eq!(mpk_sem_init(&mut s, MPK_SEM_VALUE_MAX + 1, 0), MPK_ERR_INVAL);
        assert_eq!(mpk_sem_init(&mut s, 0, MPK_SEM_VALUE_MAX + 1), MPK_ERR_INVAL);
        assert_eq!(mpk_sem_release(&mut s), MPK_ERR_BAD_OBJECT);
        let mut out = null_mut();
        assert_eq!(mpk_sem_create(5, 4, &mut out), MPK_ERR_INVAL);
        assert!(out.is_null(), "out written only on success");
        // A BoundedSemaphore(2) holding 1.
        assert_eq!(mpk_sem_init(&mut s, 1, 2), MPK_OK);
        assert_eq!(mpk_sem_value(&s), 1);
        for bad in [-2, -1000, i64::MIN] {
            assert_eq!(mpk_sem_acquire(&mut s, bad), MPK_ERR_INVAL);
        }
        assert_eq!(mpk_sem_acquire(&mut s, MPK_NOWAIT), MPK_OK);
        assert_eq!(mpk_sem_acquire(&mut s, MPK_NOWAIT), MPK_ERR_TIMEOUT);
        assert_eq!(mpk_sem_acquire(&mut s, 20), MPK_ERR_TIMEOUT);
        assert_eq!(mpk_sem_release(&mut s), MPK_OK);
        assert_eq!(mpk_sem_release(&mut s), MPK_OK);
        assert_eq!(mpk_sem_release(&mut s), MPK_ERR_STATE, "past the bound");
        assert_eq!(mpk_sem_value(&s), 2);
        mpk_sem_destroy(&mut s); // in place: ignored
        assert_eq!(mpk_sem_acquire(&mut s, 0), MPK_OK, "destroy must not touch an in-place semaphore");
        // Unbounded: max 0.
        assert_eq!(mpk_sem_init(&mut s, MPK_SEM_VALUE_MAX, 0), MPK_OK);
        assert_eq!(mpk_sem_release(&mut s), MPK_ERR_STATE, "past MPK_SEM_VALUE_MAX");
        // An owned semaphore is not an owned rmutex: destroying one as the other is ignored.
        let mut owned = null_mut();
        assert_eq!(mpk_sem_create(1, 0, &mut owned), MPK_OK);
        mpk_rmutex_destroy(owned.cast());
        assert_eq!(mpk_sem_acquire(owned, 0), MPK_OK, "a foreign object must be left alone");
        mpk_sem_destroy(owned);
    }
}

#[test]
fn owned_sem_is_shared_with_children() {
    let mut s = null_mut();
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { mpk_sem_create(0, 0, &mut s) }, MPK_OK);
    let sp = s as usize;
    let c = common::child(move || {
        let s = sp as *mut mpk_sem;
        // SAFETY: the mapping was inherited at the same address.
        let ok = unsafe { mpk_sem_acquire(s, 30_000) == MPK_OK && mpk_sem_release(s) == MPK_OK };
        i32::from(!ok)
    });
    // SAFETY: `s` is live until destroyed, once, at the end.
    unsafe {
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(mpk_sem_release(s), MPK_OK);
        assert_eq!(common::join(&c), 0);
        assert_eq!(mpk_sem_value(s), 1);
        mpk_sem_destroy(s);
    }
}
