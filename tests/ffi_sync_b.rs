//! The C ABI of the event, condition variable and barrier: NULL, bad arguments and foreign
//! objects get their documented status; the normal paths, in place and owned.
#![allow(clippy::multiple_unsafe_ops_per_block)] // tests group C-style calls

use std::mem::MaybeUninit;
use std::ptr::{null, null_mut};

use mpkit::ffi::*;

/// Foreign bytes shaped like any of the three (16 bytes, 8-aligned), all ones.
#[repr(C, align(8))]
struct Junk([u32; 4]);

#[test]
fn event_bad_input() {
    // SAFETY: NULL and junk are exactly the bad inputs under test; the junk buffer is large enough.
    unsafe {
        assert_eq!(mpk_event_init(null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_event_create(null_mut()), MPK_ERR_NULL);
        mpk_event_destroy(null_mut());
        assert_eq!(mpk_event_set(null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_event_clear(null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_event_wait(null_mut(), 0), MPK_ERR_NULL);
        assert!(!mpk_event_is_set(null()));
        let mut junk = Junk([u32::MAX; 4]);
        let e = (&raw mut junk).cast::<mpk_event>();
        assert_eq!(mpk_event_set(e), MPK_ERR_BAD_OBJECT);
        assert_eq!(mpk_event_clear(e), MPK_ERR_BAD_OBJECT);
        assert_eq!(mpk_event_wait(e, MPK_FOREVER), MPK_ERR_BAD_OBJECT);
        assert!(!mpk_event_is_set(e));
        mpk_event_destroy(e); // not owned: ignored
        assert_eq!(junk.0, [u32::MAX; 4]);
        let misaligned = (&raw mut junk).cast::<u8>().add(1).cast::<mpk_event>();
        assert_eq!(mpk_event_init(misaligned), MPK_ERR_INVAL);
        assert_eq!(mpk_event_init(e), MPK_OK);
        assert_eq!(mpk_event_wait(e, -2), MPK_ERR_INVAL);
    }
}

#[test]
fn event_in_place_and_owned() {
    // SAFETY: the event lives on this stack frame, initialised before use; the owned one is
    // destroyed once, at the end.
    unsafe {
        let mut e = MaybeUninit::<mpk_event>::zeroed(); // all-zero: a valid clear event
        let e = e.as_mut_ptr();
        assert_eq!(mpk_event_wait(e, MPK_NOWAIT), MPK_ERR_TIMEOUT);
        assert_eq!(mpk_event_set(e), MPK_OK);
        assert!(mpk_event_is_set(e));
        assert_eq!(mpk_event_wait(e, MPK_FOREVER), MPK_OK);
        assert_eq!(mpk_event_clear(e), MPK_OK);
        assert_eq!(mpk_event_wait(e, 5), MPK_ERR_TIMEOUT);
        let mut owned = null_mut();
        assert_eq!(mpk_event_create(&mut owned), MPK_OK);
        assert!(!mpk_event_is_set(owned));
        assert_eq!(mpk_event_set(owned), MPK_OK);
        assert_eq!(mpk_event_wait(owned, 0), MPK_OK);
        mpk_event_destroy(owned);
    }
}

#[test]
fn cond_bad_input() {
    // SAFETY: NULL and junk are the bad inputs under test; the mutex and condition variable live
    // on this stack frame and are initialised before use.
    unsafe {
        let mut m = MaybeUninit::<mpk_mutex>::zeroed();
        let m = m.as_mut_ptr();
        let mut c = MaybeUninit::<mpk_cond>::zeroed();
        let c = c.as_mut_ptr();
        assert_eq!(mpk_cond_init(null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_cond_create(null_mut()), MPK_ERR_NULL);
        mpk_cond_destroy(null_mut());
        assert_eq!(mpk_cond_wait(null_mut(), m, 0), MPK_ERR_NULL);
        assert_eq!(mpk_cond_wait(c, null_mut(), 0), MPK_ERR_NULL);
        assert_eq!(mpk_cond_notify(null_mut(), 1), MPK_ERR_NULL);
        assert_eq!(mpk_cond_notify_all(null_mut()), MPK_ERR_NULL);
        let mut junk = Junk([u32::MAX; 4]);
        let j = (&raw mut junk).cast::<mpk_cond>();
        assert_eq!(mpk_cond_notify(j, 1), MPK_ERR_BAD_OBJECT);
        assert_eq!(mpk_cond_notify_all(j), MPK_ERR_BAD_OBJECT);
        assert_eq!(mpk_cond_wait(j, m, 0), MPK_ERR_BAD_OBJECT);
        mpk_cond_destroy(j); // not owned: ignored
        // Not holding the mutex: refused, nothing happens.
        assert_eq!(mpk_cond_wait(c, m, MPK_FOREVER), MPK_ERR_NOT_OWNER);
        assert_eq!(mpk_mutex_lock(m, MPK_FOREVER), MPK_OK);
        assert_eq!(mpk_cond_wait(c, m, -5), MPK_ERR_INVAL);
        assert_eq!(mpk_cond_wait(c, m, MPK_NOWAIT), MPK_ERR_TIMEOUT);
        assert_eq!(mpk_cond_wait(c, m, 5), MPK_ERR_TIMEOUT);
        assert_eq!(mpk_mutex_unlock(m), MPK_OK, "held again after the timeouts");
        assert_eq!(mpk_cond_notify(c, 0), MPK_OK);
    }
}

#[test]
fn cond_owned_with_owned_mutex() {
    // SAFETY: handles from the create calls, destroyed once at the end.
    unsafe {
        let (mut c, mut m) = (null_mut(), null_mut());
        assert_eq!(mpk_cond_create(&mut c), MPK_OK);
        assert_eq!(mpk_mutex_create(&mut m), MPK_OK);
        assert_eq!(mpk_mutex_lock(m, MPK_FOREVER), MPK_OK);
        assert_eq!(mpk_cond_notify_all(c), MPK_OK);
        assert_eq!(mpk_cond_wait(c, m, 1), MPK_ERR_TIMEOUT);
        assert_eq!(mpk_mutex_unlock(m), MPK_OK);
        mpk_cond_destroy(c);
        mpk_mutex_destroy(m);
    }
}

#[test]
fn barrier_bad_input() {
    // SAFETY: NULL, zeroed and junk bytes are the bad inputs under test; the buffers are large enough.
    unsafe {
        let mut out = 7u32;
        assert_eq!(mpk_barrier_init(null_mut(), 2), MPK_ERR_NULL);
        assert_eq!(mpk_barrier_create(2, null_mut()), MPK_ERR_NULL);
        mpk_barrier_destroy(null_mut());
        assert_eq!(mpk_barrier_wait(null_mut(), 0, &mut out), MPK_ERR_NULL);
        assert_eq!(mpk_barrier_abort(null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_barrier_reset(null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_barrier_n_waiting(null()), 0);
        assert!(!mpk_barrier_broken(null()));
        let mut b = MaybeUninit::<mpk_barrier>::zeroed();
        let b = b.as_mut_ptr();
        // All-zero bytes are no barrier (no parties).
        assert_eq!(mpk_barrier_wait(b, 0, &mut out), MPK_ERR_BAD_OBJECT);
        assert_eq!(mpk_barrier_abort(b), MPK_ERR_BAD_OBJECT);
        assert_eq!(mpk_barrier_init(b, 0), MPK_ERR_INVAL);
        assert_eq!(mpk_barrier_init(b, MPK_BARRIER_MAX_PARTIES + 1), MPK_ERR_INVAL);
        let mut created = null_mut();
        assert_eq!(mpk_barrier_create(0, &mut created), MPK_ERR_INVAL);
        assert!(created.is_null(), "out written only on success");
        let mut junk = Junk([u32::MAX; 4]);
        let j = (&raw mut junk).cast::<mpk_barrier>();
        assert_eq!(mpk_barrier_wait(j, MPK_FOREVER, &mut out), MPK_ERR_BAD_OBJECT);
        assert_eq!(mpk_barrier_reset(j), MPK_ERR_BAD_OBJECT);
        assert_eq!(mpk_barrier_n_waiting(j), 0);
        assert!(!mpk_barrier_broken(j));
        mpk_barrier_destroy(j); // not owned: ignored
        assert_eq!(out, 7, "out_index written only on success");
        assert_eq!(mpk_barrier_init(b, 2), MPK_OK);
        assert_eq!(mpk_barrier_wait(b, -3, &mut out), MPK_ERR_INVAL);
        assert!(!mpk_barrier_broken(b), "a bad timeout breaks nothing");
    }
}

#[test]
fn barrier_in_place_and_owned() {
    // SAFETY: the in-place barrier lives on this stack frame, initialised before use; the owned one
    // is destroyed once, at the end.
    unsafe {
        let mut b = MaybeUninit::<mpk_barrier>::uninit();
        let b = b.as_mut_ptr();
        assert_eq!(mpk_barrier_init(b, 1), MPK_OK);
        let mut out = 9;
        assert_eq!(mpk_barrier_wait(b, MPK_FOREVER, &mut out), MPK_OK);
        assert_eq!(out, 0);
        assert_eq!(mpk_barrier_wait(b, MPK_NOWAIT, null_mut()), MPK_OK);
        let mut owned = null_mut();
        assert_eq!(mpk_barrier_create(2, &mut owned), MPK_OK);
        assert_eq!(mpk_barrier_wait(owned, MPK_NOWAIT, &mut out), MPK_ERR_TIMEOUT);
        assert!(mpk_barrier_broken(owned));
        assert_eq!(mpk_barrier_wait(owned, MPK_NOWAIT, &mut out), MPK_ERR_BROKEN);
        assert_eq!(mpk_barrier_reset(owned), MPK_OK);
        assert!(!mpk_barrier_broken(owned));
        assert_eq!(mpk_barrier_n_waiting(owned), 0);
        assert_eq!(mpk_barrier_abort(owned), MPK_OK);
        assert!(mpk_barrier_broken(owned));
        mpk_barrier_destroy(owned);
    }
}
