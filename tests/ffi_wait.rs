//! `mpk_wait` through the C ABI: bad input gets a status, and the normal path reports exactly
//! the ready objects.
#![allow(clippy::multiple_unsafe_ops_per_block)] // tests group C-style calls

use std::ffi::c_void;
use std::ptr::null_mut;

use mpkit::ffi::*;

fn queue() -> *mut mpk_queue {
    let mut q = null_mut();
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { mpk_queue_create(4, 8, &mut q) }, MPK_OK);
    q
}

fn item(kind: mpk_wait_kind, object: *mut c_void) -> mpk_waitable {
    mpk_waitable { kind, object, ready: true }
}

#[test]
fn bad_input_gets_a_status() {
    let q = queue();
    let mut n = 99usize;
    // SAFETY: pointers are valid or deliberately NULL, as each case says.
    unsafe {
        assert_eq!(mpk_wait(null_mut(), 1, 0, &mut n), MPK_ERR_NULL);
        let mut one = [item(MPK_WAIT_QUEUE, q.cast())];
        assert_eq!(mpk_wait(one.as_mut_ptr(), 0, 0, &mut n), MPK_ERR_INVAL, "n = 0");
        let mut unknown = [item(42, q.cast())];
        assert_eq!(mpk_wait(unknown.as_mut_ptr(), 1, 0, &mut n), MPK_ERR_INVAL, "unknown kind");
        let mut twice = [item(MPK_WAIT_QUEUE, q.cast()), item(MPK_WAIT_QUEUE, q.cast())];
        assert_eq!(mpk_wait(twice.as_mut_ptr(), 2, 0, &mut n), MPK_ERR_INVAL, "one object twice");
        let mut nul = [item(MPK_WAIT_QUEUE, q.cast()), item(MPK_WAIT_CONN, null_mut())];
        assert_eq!(mpk_wait(nul.as_mut_ptr(), 2, 0, &mut n), MPK_ERR_NULL, "NULL object");
        let mut foreign = [0u64; 64];
        let mut bad = [item(MPK_WAIT_QUEUE, foreign.as_mut_ptr().cast())];
        assert_eq!(mpk_wait(bad.as_mut_ptr(), 1, 0, &mut n), MPK_ERR_BAD_OBJECT, "not a queue");
        assert_eq!(mpk_wait(one.as_mut_ptr(), 1, -5, &mut n), MPK_ERR_INVAL, "bad timeout");
        assert_eq!(n, 99, "out_ready untouched on failure");
        assert_eq!(mpk_wait(one.as_mut_ptr(), 1, 20, &mut n), MPK_ERR_TIMEOUT, "empty queue");
        mpk_queue_destroy(q);
    }
}

#[test]
fn the_ready_objects_are_marked() {
    let (a, b) = (queue(), queue());
    let (mut rx, mut tx) = (null_mut(), null_mut());
    let mut n = 0usize;
    // SAFETY: live handles from the calls above.
    unsafe {
        assert_eq!(mpk_pipe_create(4096, false, &mut rx, &mut tx), MPK_OK);
        let v = 5u64.to_le_bytes();
        assert_eq!(mpk_queue_put(b, v.as_ptr().cast(), 8, 0), MPK_OK);
        assert_eq!(mpk_conn_send(tx, b"hi".as_ptr().cast(), 2, 0), MPK_OK);
        let mut e = null_mut();
        assert_eq!(mpk_event_create(&mut e), MPK_OK);
        let mut items = [
            item(MPK_WAIT_QUEUE, a.cast()),
            item(MPK_WAIT_QUEUE, b.cast()),
            item(MPK_WAIT_CONN, rx.cast()),
            item(MPK_WAIT_EVENT, e.cast()),
        ];
        assert_eq!(mpk_wait(items.as_mut_ptr(), 4, MPK_FOREVER, &mut n), MPK_OK);
        assert_eq!(n, 2);
        assert_eq!(items.iter().map(|i| i.ready).collect::<Vec<_>>(), [false, true, true, false]);
        assert_eq!(mpk_event_set(e), MPK_OK);
        assert_eq!(mpk_wait(items.as_mut_ptr(), 4, 0, null_mut()), MPK_OK, "out_ready may be NULL");
        assert_eq!(items.iter().map(|i| i.ready).collect::<Vec<_>>(), [false, true, true, true]);
        let mut junk = [0xffu64; 8];
        let mut bad = [item(MPK_WAIT_EVENT, junk.as_mut_ptr().cast())];
        assert_eq!(mpk_wait(bad.as_mut_ptr(), 1, 0, &mut n), MPK_ERR_BAD_OBJECT, "not an event");
        mpk_event_destroy(e);
        mpk_queue_destroy(a);
        mpk_queue_destroy(b);
        mpk_conn_destroy(rx);
        mpk_conn_destroy(tx);
    }
}
