//! Every C entry point with NULL and bad arguments returns its documented status; plus the
//! normal paths through the C ABI.
#![allow(clippy::multiple_unsafe_ops_per_block)] // tests group C-style calls

mod common;

use std::ffi::{CStr, c_int, c_void};
use std::ptr::{null, null_mut};

use mpkit::ffi::*;

fn name(tag: &str) -> std::ffi::CString {
    std::ffi::CString::new(format!("/mpkit-ffi-{tag}-{}", std::process::id())).unwrap()
}

#[test]
fn strerror_never_returns_null() {
    let mut seen = std::collections::HashSet::new();
    for code in [0, -1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, -12, -13, -14, -15, -16, -17, -18, -19, -20, -21] {
        let s = mpk_strerror(code);
        assert!(!s.is_null());
        // SAFETY: mpk_strerror returns static NUL-terminated strings.
        let s = unsafe { CStr::from_ptr(s) }.to_str().unwrap();
        assert!(!s.contains("unknown"), "{code} must have its own text");
        assert!(seen.insert(s.to_owned()), "{code} repeats a text");
    }
    for code in [1, 42, -22, -1000, i32::MIN, i32::MAX] {
        // SAFETY: as above.
        let s = unsafe { CStr::from_ptr(mpk_strerror(code)) };
        assert_eq!(s.to_str().unwrap(), "unknown mpkit status");
    }
}

#[test]
fn small_queries() {
    assert!(mpk_cpu_count() >= 1);
    assert_eq!(mpk_abi_version(), MPK_ABI_VERSION);
    assert_eq!(mpk_last_errno(), 0, "no MPK_ERR_SYS yet on this thread");
}

#[test]
fn sys_errors_keep_their_errno() {
    // A directory where a shared-memory object is expected: open(2) fails with EISDIR.
    let n = name("dir");
    let dir = format!("/dev/shm{}", n.to_str().unwrap());
    std::fs::create_dir(&dir).unwrap();
    let mut r = null_mut();
    // SAFETY: NUL-terminated name, valid out-pointer.
    let st = unsafe { mpk_shm_open_named(n.as_ptr(), &mut r) };
    std::fs::remove_dir(&dir).unwrap();
    assert_eq!(st, MPK_ERR_SYS);
    assert_eq!(mpk_last_errno(), libc::EISDIR);
    assert!(r.is_null(), "out is written only on success");
    let errno_elsewhere = std::thread::spawn(|| mpk_last_errno()).join().unwrap();
    assert_eq!(errno_elsewhere, 0, "the errno is per thread");
}

#[test]
fn mutex_null_and_bad_arguments() {
    // SAFETY: every pointer below is NULL, a valid mutex, or deliberately misaligned storage that
    // the calls must refuse without touching.
    unsafe {
        assert_eq!(mpk_mutex_init(null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_mutex_lock(null_mut(), MPK_FOREVER), MPK_ERR_NULL);
        assert_eq!(mpk_mutex_unlock(null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_mutex_consistent(null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_mutex_create(null_mut()), MPK_ERR_NULL);
        mpk_mutex_destroy(null_mut());

        let mut storage = [0u64; 10];
        let misaligned = (storage.as_mut_ptr() as *mut u8).add(4) as *mut mpk_mutex;
        assert_eq!(mpk_mutex_init(misaligned), MPK_ERR_INVAL);
        assert_eq!(mpk_mutex_lock(misaligned, 0), MPK_ERR_INVAL);

        let mut m: mpk_mutex = std::mem::zeroed();
        assert_eq!(mpk_mutex_init(&mut m), MPK_OK);
        for bad in [-2, -1000, i64::MIN] {
            assert_eq!(mpk_mutex_lock(&mut m, bad), MPK_ERR_INVAL);
        }
        assert_eq!(mpk_mutex_unlock(&mut m), MPK_ERR_NOT_OWNER);
        assert_eq!(mpk_mutex_consistent(&mut m), MPK_ERR_NOT_OWNER);
        assert_eq!(mpk_mutex_lock(&mut m, MPK_NOWAIT), MPK_OK);
        assert_eq!(mpk_mutex_lock(&mut m, MPK_FOREVER), MPK_ERR_STATE, "relock must not deadlock");
        assert_eq!(mpk_mutex_consistent(&mut m), MPK_ERR_INVAL, "held but not inconsistent");
        let mp = &mut m as *mut mpk_mutex as usize;
        std::thread::spawn(move || {
            let m = mp as *mut mpk_mutex;
            assert_eq!(mpk_mutex_lock(m, MPK_NOWAIT), MPK_ERR_TIMEOUT);
            assert_eq!(mpk_mutex_lock(m, 20), MPK_ERR_TIMEOUT);
            assert_eq!(mpk_mutex_unlock(m), MPK_ERR_NOT_OWNER);
        })
        .join()
        .unwrap();
        assert_eq!(mpk_mutex_unlock(&mut m), MPK_OK);
        mpk_mutex_destroy(&mut m); // in place: ignored
        assert_eq!(mpk_mutex_lock(&mut m, 0), MPK_OK, "destroy must not touch an in-place mutex");
        assert_eq!(mpk_mutex_unlock(&mut m), MPK_OK);
    }
}

#[test]
fn owned_mutex_is_shared_with_children() {
    let mut m = null_mut();
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { mpk_mutex_create(&mut m) }, MPK_OK);
    let mp = m as usize;
    // SAFETY: `m` is a live mutex throughout.
    assert_eq!(unsafe { mpk_mutex_lock(m, 0) }, MPK_OK);
    let c = common::child(move || {
        let m = mp as *mut mpk_mutex;
        // SAFETY: the mapping was inherited at the same address.
        let busy = unsafe { mpk_mutex_lock(m, 0) } == MPK_ERR_TIMEOUT;
        i32::from(!busy)
    });
    assert_eq!(common::join(&c), 0);
    // SAFETY: still live; destroyed exactly once.
    unsafe {
        assert_eq!(mpk_mutex_unlock(m), MPK_OK);
        mpk_mutex_destroy(m);
    }
}

#[test]
fn array_null_and_bad_arguments() {
    let mut a = null_mut();
    // SAFETY: pointers are NULL, valid out-pointers, or valid buffers of the stated length.
    unsafe {
        for bad in [0, 11, -1, 1000, i32::MAX, i32::MIN] {
            assert_eq!(mpk_array_create(bad, 4, null(), &mut a), MPK_ERR_INVAL, "type {bad}");
            assert_eq!(mpk_type_size(bad), 0);
        }
        assert_eq!(mpk_array_create(MPK_TYPE_I32, 0, null(), &mut a), MPK_ERR_INVAL);
        assert_eq!(mpk_array_create(MPK_TYPE_I32, usize::MAX, null(), &mut a), MPK_ERR_INVAL);
        assert_eq!(mpk_array_create(MPK_TYPE_F64, usize::MAX / 4, null(), &mut a), MPK_ERR_INVAL);
        assert_eq!(mpk_array_create(MPK_TYPE_I32, 4, null(), null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_value_create(MPK_TYPE_I32, null(), null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_value_create(0, null(), &mut a), MPK_ERR_INVAL);
        assert!(a.is_null(), "out is written only on success");

        assert!(mpk_array_data(null_mut()).is_null());
        assert_eq!(mpk_array_len(null()), 0);
        assert_eq!(mpk_array_type(null()), 0);
        assert!(mpk_array_lock(null_mut()).is_null());
        mpk_array_destroy(null_mut());

        let mut t = 0;
        assert_eq!(mpk_type_from_code(null(), &mut t), MPK_ERR_NULL);
        assert_eq!(mpk_type_from_code(c"d".as_ptr(), null_mut()), MPK_ERR_NULL);
        for bad in [c"", c"x", c"dd", c"D", c"c", c"u", c"\xff"] {
            assert_eq!(mpk_type_from_code(bad.as_ptr(), &mut t), MPK_ERR_INVAL, "{bad:?}");
        }
        let codes = [
            (c"b", MPK_TYPE_I8, 1),
            (c"B", MPK_TYPE_U8, 1),
            (c"h", MPK_TYPE_I16, 2),
            (c"H", MPK_TYPE_U16, 2),
            (c"i", MPK_TYPE_I32, 4),
            (c"I", MPK_TYPE_U32, 4),
            (c"l", MPK_TYPE_I64, 8),
            (c"L", MPK_TYPE_U64, 8),
            (c"q", MPK_TYPE_I64, 8),
            (c"Q", MPK_TYPE_U64, 8),
            (c"f", MPK_TYPE_F32, 4),
            (c"d", MPK_TYPE_F64, 8),
        ];
        for (code, ty, size) in codes {
            assert_eq!(mpk_type_from_code(code.as_ptr(), &mut t), MPK_OK);
            assert_eq!(t, ty, "{code:?}");
            assert_eq!(mpk_type_size(ty), size);
        }

        let init: [i16; 3] = [7, -8, 9];
        assert_eq!(mpk_array_create(MPK_TYPE_I16, 3, init.as_ptr().cast(), &mut a), MPK_OK);
        assert_eq!(mpk_array_len(a), 3);
        assert_eq!(mpk_array_type(a), MPK_TYPE_I16);
        assert_eq!(std::slice::from_raw_parts(mpk_array_data(a) as *const i16, 3), &init);
        let lock = mpk_array_lock(a);
        assert!(!lock.is_null());
        assert_eq!(mpk_mutex_lock(lock, 0), MPK_OK);
        assert_eq!(mpk_mutex_unlock(lock), MPK_OK);
        mpk_mutex_destroy(lock); // not an owned mutex: ignored, the array keeps working
        assert_eq!(mpk_mutex_lock(lock, 0), MPK_OK);
        assert_eq!(mpk_mutex_unlock(lock), MPK_OK);
        mpk_array_destroy(a);

        let mut v = null_mut();
        let pi = 3.5f64;
        assert_eq!(mpk_value_create(MPK_TYPE_F64, (&pi as *const f64).cast(), &mut v), MPK_OK);
        assert_eq!(mpk_array_len(v), 1);
        assert_eq!(*(mpk_array_data(v) as *const f64), 3.5);
        mpk_array_destroy(v);
    }
}

#[test]
fn named_objects_through_the_c_abi() {
    let n = name("array");
    let shm = name("shm");
    let mut a = null_mut();
    let mut b = null_mut();
    let mut r = null_mut();
    // SAFETY: C strings are NUL-terminated; out-pointers valid; handles destroyed once.
    unsafe {
        assert_eq!(mpk_array_create_named(null(), MPK_TYPE_I32, 4, null(), &mut a), MPK_ERR_NULL);
        assert_eq!(mpk_array_create_named(n.as_ptr(), MPK_TYPE_I32, 4, null(), null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_array_create_named(c"/a/b".as_ptr(), MPK_TYPE_I32, 4, null(), &mut a), MPK_ERR_INVAL);
        assert_eq!(mpk_array_create_named(n.as_ptr(), 99, 4, null(), &mut a), MPK_ERR_INVAL);
        assert_eq!(mpk_array_open_named(null(), &mut b), MPK_ERR_NULL);
        assert_eq!(mpk_array_open_named(n.as_ptr(), null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_array_open_named(n.as_ptr(), &mut b), MPK_ERR_NOT_FOUND);

        assert_eq!(mpk_array_create_named(n.as_ptr(), MPK_TYPE_I32, 4, null(), &mut a), MPK_OK);
        assert_eq!(mpk_array_create_named(n.as_ptr(), MPK_TYPE_I32, 4, null(), &mut b), MPK_ERR_EXISTS);
        *(mpk_array_data(a) as *mut i32).add(3) = 42;
        assert_eq!(mpk_array_open_named(n.as_ptr(), &mut b), MPK_OK);
        assert_eq!(mpk_array_type(b), MPK_TYPE_I32);
        assert_eq!(mpk_array_len(b), 4);
        assert_eq!(*(mpk_array_data(b) as *const i32).add(3), 42);
        mpk_array_destroy(a);
        mpk_array_destroy(b);
        assert_eq!(mpk_array_open_named(n.as_ptr(), &mut b), MPK_OK, "destroy keeps the name");
        mpk_array_destroy(b);

        // Kind checks: a raw region is not an array, and an array is not a raw region.
        assert_eq!(mpk_shm_open_named(n.as_ptr(), &mut r), MPK_ERR_BAD_OBJECT);
        assert_eq!(mpk_shm_create_named(shm.as_ptr(), 100, &mut r), MPK_OK);
        assert_eq!(mpk_array_open_named(shm.as_ptr(), &mut b), MPK_ERR_BAD_OBJECT);
        mpk_shm_destroy(r);

        assert_eq!(mpk_shm_unlink(n.as_ptr()), MPK_OK);
        assert_eq!(mpk_shm_unlink(n.as_ptr()), MPK_ERR_NOT_FOUND);
        assert_eq!(mpk_shm_unlink(shm.as_ptr()), MPK_OK);
    }
}

#[test]
fn shm_null_and_bad_arguments() {
    let mut r = null_mut();
    let n = name("raw");
    // SAFETY: as above.
    unsafe {
        assert_eq!(mpk_shm_create(0, &mut r), MPK_ERR_INVAL);
        assert_eq!(mpk_shm_create(usize::MAX, &mut r), MPK_ERR_INVAL);
        assert_eq!(mpk_shm_create(16, null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_shm_create_named(null(), 16, &mut r), MPK_ERR_NULL);
        assert_eq!(mpk_shm_create_named(n.as_ptr(), 16, null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_shm_create_named(n.as_ptr(), 0, &mut r), MPK_ERR_INVAL);
        for bad in [c"", c"/", c"a/b", c"..", c"\xff\xfe"] {
            assert_eq!(mpk_shm_create_named(bad.as_ptr(), 16, &mut r), MPK_ERR_INVAL, "{bad:?}");
        }
        assert_eq!(mpk_shm_open_named(null(), &mut r), MPK_ERR_NULL);
        assert_eq!(mpk_shm_open_named(n.as_ptr(), null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_shm_open_named(n.as_ptr(), &mut r), MPK_ERR_NOT_FOUND);
        assert_eq!(mpk_shm_unlink(null()), MPK_ERR_NULL);
        assert_eq!(mpk_shm_unlink(n.as_ptr()), MPK_ERR_NOT_FOUND);
        assert!(mpk_shm_data(null_mut()).is_null());
        assert_eq!(mpk_shm_size(null()), 0);
        mpk_shm_destroy(null_mut());
        assert!(r.is_null());

        assert_eq!(mpk_shm_create(100, &mut r), MPK_OK);
        assert_eq!(mpk_shm_size(r), 100);
        let p = mpk_shm_data(r) as *mut u8;
        assert_eq!(p as usize % 64, 0);
        assert!(std::slice::from_raw_parts(p, 100).iter().all(|&b| b == 0));
        mpk_shm_destroy(r);

        let mut a = null_mut();
        let mut b = null_mut();
        assert_eq!(mpk_shm_create_named(n.as_ptr(), 8, &mut a), MPK_OK);
        assert_eq!(mpk_shm_create_named(n.as_ptr(), 8, &mut b), MPK_ERR_EXISTS);
        assert_eq!(mpk_shm_open_named(n.as_ptr(), &mut b), MPK_OK);
        (mpk_shm_data(a) as *mut u64).write(0xabcd);
        assert_eq!((mpk_shm_data(b) as *const u64).read(), 0xabcd);
        mpk_shm_destroy(a);
        mpk_shm_destroy(b);
        assert_eq!(mpk_shm_unlink(n.as_ptr()), MPK_OK);
    }
}

unsafe extern "C" fn exit_with(arg: *mut c_void) -> c_int {
    arg as usize as c_int
}

unsafe extern "C" fn sleep_forever(_: *mut c_void) -> c_int {
    // SAFETY: alarm/pause are async-signal-safe; the alarm bounds a forgotten child.
    unsafe {
        libc::alarm(60);
        loop {
            libc::pause();
        }
    }
}

#[test]
fn process_null_and_bad_arguments() {
    let mut p = null_mut();
    let mut code: c_int = 0;
    // SAFETY: handles are NULL or live; destroyed once.
    unsafe {
        assert_eq!(mpk_process_start(None, null_mut(), null(), &mut p), MPK_ERR_NULL);
        assert_eq!(mpk_process_start(Some(exit_with), null_mut(), null(), null_mut()), MPK_ERR_NULL);
        let bad = mpk_process_opts { struct_size: 0, daemon: false };
        assert_eq!(mpk_process_start(Some(exit_with), null_mut(), &bad, &mut p), MPK_ERR_INVAL);
        assert!(p.is_null());
        assert_eq!(mpk_process_join(null_mut(), MPK_FOREVER), MPK_ERR_NULL);
        assert_eq!(mpk_process_exitcode(null(), &mut code), MPK_ERR_NULL);
        assert_eq!(mpk_process_pid(null()), -1);
        assert!(!mpk_process_is_alive(null_mut()));
        assert_eq!(mpk_process_terminate(null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_process_kill(null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_process_sentinel(null()), -1);
        mpk_process_destroy(null_mut());

        let opts = mpk_process_opts { struct_size: size_of::<mpk_process_opts>(), daemon: false };
        assert_eq!(mpk_process_start(Some(exit_with), 3 as *mut c_void, &opts, &mut p), MPK_OK);
        assert!(mpk_process_pid(p) > 0);
        assert!(mpk_process_sentinel(p) >= 0);
        assert_eq!(mpk_process_exitcode(p, null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_process_join(p, -7), MPK_ERR_INVAL);
        assert_eq!(mpk_process_join(p, 60_000), MPK_OK);
        assert_eq!(mpk_process_exitcode(p, &mut code), MPK_OK);
        assert_eq!(code, 3);
        assert!(!mpk_process_is_alive(p));
        assert_eq!(mpk_process_terminate(p), MPK_OK, "no-op after exit");
        assert_eq!(mpk_process_kill(p), MPK_OK);
        mpk_process_destroy(p);

        assert_eq!(mpk_process_start(Some(sleep_forever), null_mut(), null(), &mut p), MPK_OK);
        assert!(mpk_process_is_alive(p));
        assert_eq!(mpk_process_exitcode(p, &mut code), MPK_ERR_STATE);
        assert_eq!(mpk_process_join(p, MPK_NOWAIT), MPK_ERR_TIMEOUT);
        assert_eq!(mpk_process_join(p, 30), MPK_ERR_TIMEOUT);
        assert_eq!(mpk_process_terminate(p), MPK_OK);
        assert_eq!(mpk_process_join(p, 60_000), MPK_OK);
        assert_eq!(mpk_process_exitcode(p, &mut code), MPK_OK);
        assert_eq!(code, -libc::SIGTERM);
        mpk_process_destroy(p);
    }
}

#[test]
fn queue_null_and_bad_arguments() {
    let mut q = null_mut();
    let mut len = 0usize;
    let mut count = 0usize;
    let mut buf = [0u8; 64];
    // SAFETY: pointers are NULL, live queues, or valid buffers of the stated sizes.
    unsafe {
        assert_eq!(mpk_queue_size(0, 8), 0);
        assert_eq!(mpk_queue_size(8, 0), 0);
        assert_eq!(mpk_queue_size(usize::MAX, 8), 0);
        assert!(mpk_queue_size(8, 8) > 0);
        assert_eq!(mpk_queue_create(0, 8, &mut q), MPK_ERR_INVAL);
        assert_eq!(mpk_queue_create(8, 0, &mut q), MPK_ERR_INVAL);
        assert_eq!(mpk_queue_create(usize::MAX, 8, &mut q), MPK_ERR_INVAL);
        assert_eq!(mpk_queue_create(8, 8, null_mut()), MPK_ERR_NULL);
        assert!(q.is_null());

        for f in [mpk_queue_close, mpk_queue_task_done] {
            assert_eq!(f(null_mut()), MPK_ERR_NULL);
        }
        assert_eq!(mpk_queue_put(null_mut(), buf.as_ptr().cast(), 1, 0), MPK_ERR_NULL);
        assert_eq!(mpk_queue_get(null_mut(), buf.as_mut_ptr().cast(), 64, &mut len, 0), MPK_ERR_NULL);
        assert_eq!(mpk_queue_join(null_mut(), 0), MPK_ERR_NULL);
        assert_eq!(mpk_queue_len(null()), 0);
        assert_eq!(mpk_queue_capacity(null()), 0);
        assert_eq!(mpk_queue_max_msg(null()), 0);
        mpk_queue_destroy(null_mut());
        // Not a queue at all.
        let mut junk = [0x42u64; 64];
        let not_q = junk.as_mut_ptr().cast::<mpk_queue>();
        assert_eq!(mpk_queue_put(not_q, buf.as_ptr().cast(), 1, 0), MPK_ERR_BAD_OBJECT);
        assert_eq!(mpk_queue_len(not_q), 0);
        let mut repairs = mpk_queue_repairs { dead_writers: 7, dead_readers: 7 };
        assert_eq!(mpk_queue_stats(null(), &mut repairs), MPK_ERR_NULL);
        assert_eq!(mpk_queue_stats(not_q, &mut repairs), MPK_ERR_BAD_OBJECT);
        mpk_queue_destroy(not_q); // ignored

        assert_eq!(mpk_queue_create(2, 8, &mut q), MPK_OK);
        assert_eq!(mpk_queue_stats(q, null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_queue_stats(q, &mut repairs), MPK_OK);
        assert_eq!((repairs.dead_writers, repairs.dead_readers), (0, 0), "nothing died");
        assert_eq!(mpk_queue_capacity(q), 2);
        assert_eq!(mpk_queue_max_msg(q), 8);
        assert_eq!(mpk_queue_put(q, null(), 0, 0), MPK_OK, "NULL is fine for an empty message");
        assert_eq!(mpk_queue_put(q, null(), 3, 0), MPK_ERR_NULL);
        assert_eq!(mpk_queue_put(q, buf.as_ptr().cast(), 9, 0), MPK_ERR_MSGSIZE);
        assert_eq!(mpk_queue_put(q, buf.as_ptr().cast(), 8, -3), MPK_ERR_INVAL);
        assert_eq!(mpk_queue_put(q, b"12345678".as_ptr().cast(), 8, 0), MPK_OK);
        assert_eq!(mpk_queue_put(q, buf.as_ptr().cast(), 1, MPK_NOWAIT), MPK_ERR_TIMEOUT, "full");
        assert_eq!(mpk_queue_put(q, buf.as_ptr().cast(), 1, 10), MPK_ERR_TIMEOUT, "still full");
        assert_eq!(mpk_queue_len(q), 2);
        assert_eq!(mpk_queue_get(q, buf.as_mut_ptr().cast(), 64, null_mut(), 0), MPK_ERR_NULL);
        assert_eq!(mpk_queue_get(q, buf.as_mut_ptr().cast(), 64, &mut len, 0), MPK_OK);
        assert_eq!(len, 0);
        len = 77;
        assert_eq!(mpk_queue_get(q, buf.as_mut_ptr().cast(), 3, &mut len, 0), MPK_ERR_MSGSIZE);
        assert_eq!(len, 8, "MSGSIZE reports the size needed");
        assert_eq!(mpk_queue_get(q, null_mut(), 0, &mut len, 0), MPK_ERR_MSGSIZE, "kept queued");
        assert_eq!(mpk_queue_get(q, buf.as_mut_ptr().cast(), 8, &mut len, 0), MPK_OK);
        assert_eq!(&buf[..8], b"12345678");
        assert_eq!(mpk_queue_get(q, buf.as_mut_ptr().cast(), 8, &mut len, MPK_NOWAIT), MPK_ERR_TIMEOUT, "empty");

        // Batches.
        let msgs: [u64; 3] = [1, 2, 3];
        assert_eq!(mpk_queue_put_many(q, msgs.as_ptr().cast(), 8, 3, null_mut(), 0), MPK_ERR_NULL);
        assert_eq!(mpk_queue_put_many(q, msgs.as_ptr().cast(), 8, usize::MAX, &mut count, 0), MPK_ERR_INVAL);
        assert_eq!(mpk_queue_put_many(q, msgs.as_ptr().cast(), 9, 3, &mut count, 0), MPK_ERR_MSGSIZE);
        assert_eq!(mpk_queue_put_many(q, msgs.as_ptr().cast(), 8, 3, &mut count, 0), MPK_OK);
        assert_eq!(count, 2, "only two fit");
        let mut lens = [0usize; 4];
        let mut out = [0u64; 4];
        assert_eq!(
            mpk_queue_get_many(q, out.as_mut_ptr().cast(), 4, 4, lens.as_mut_ptr(), &mut count, 0),
            MPK_ERR_INVAL,
            "buffers smaller than max_msg"
        );
        assert_eq!(mpk_queue_get_many(q, out.as_mut_ptr().cast(), 8, 4, null_mut(), &mut count, 0), MPK_ERR_NULL);
        assert_eq!(
            mpk_queue_get_many(q, out.as_mut_ptr().cast(), 8, 4, lens.as_mut_ptr(), null_mut(), 0),
            MPK_ERR_NULL
        );
        assert_eq!(mpk_queue_get_many(q, out.as_mut_ptr().cast(), 8, 0, null_mut(), &mut count, 0), MPK_OK);
        assert_eq!(count, 0);
        assert_eq!(mpk_queue_get_many(q, out.as_mut_ptr().cast(), 8, 4, lens.as_mut_ptr(), &mut count, 0), MPK_OK);
        assert_eq!((count, out[0], out[1], lens[0], lens[1]), (2, 1, 2, 8, 8));

        // JoinableQueue.
        assert_eq!(mpk_queue_join(q, 0), MPK_ERR_TIMEOUT, "4 put, none done");
        for _ in 0..4 {
            assert_eq!(mpk_queue_task_done(q), MPK_OK);
        }
        assert_eq!(mpk_queue_task_done(q), MPK_ERR_STATE, "too many");
        assert_eq!(mpk_queue_join(q, MPK_FOREVER), MPK_OK);

        assert_eq!(mpk_queue_close(q), MPK_OK);
        assert_eq!(mpk_queue_put(q, buf.as_ptr().cast(), 1, 0), MPK_ERR_CLOSED);
        assert_eq!(mpk_queue_get(q, buf.as_mut_ptr().cast(), 8, &mut len, MPK_FOREVER), MPK_ERR_CLOSED);
        mpk_queue_destroy(q);

        // In place over caller memory.
        let size = mpk_queue_size(4, 16);
        let mut mem = vec![0u64; size / 8 + 1];
        let mut iq = null_mut();
        assert_eq!(mpk_queue_init(null_mut(), size, 4, 16, &mut iq), MPK_ERR_NULL);
        assert_eq!(mpk_queue_init(mem.as_mut_ptr().cast(), size, 4, 16, null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_queue_init(mem.as_mut_ptr().cast(), size - 1, 4, 16, &mut iq), MPK_ERR_INVAL);
        assert_eq!(mpk_queue_init(mem.as_mut_ptr().cast::<u8>().add(1).cast(), size, 4, 16, &mut iq), MPK_ERR_INVAL);
        assert_eq!(mpk_queue_init(mem.as_mut_ptr().cast(), size, 0, 16, &mut iq), MPK_ERR_INVAL);
        assert_eq!(mpk_queue_init(mem.as_mut_ptr().cast(), size, 4, 16, &mut iq), MPK_OK);
        assert_eq!(iq.cast::<u64>(), mem.as_mut_ptr(), "the queue is the memory");
        assert_eq!(mpk_queue_put(iq, b"hi".as_ptr().cast(), 2, 0), MPK_OK);
        mpk_queue_destroy(iq); // in place: ignored
        assert_eq!(mpk_queue_len(iq), 1);
    }
}

#[test]
fn named_queue_through_the_c_abi() {
    let n = name("queue");
    let mut q = null_mut();
    let mut r = null_mut();
    let mut len = 0;
    let mut buf = [0u8; 8];
    // SAFETY: as above.
    unsafe {
        assert_eq!(mpk_queue_create_named(null(), 4, 8, &mut q), MPK_ERR_NULL);
        assert_eq!(mpk_queue_open_named(n.as_ptr(), &mut r), MPK_ERR_NOT_FOUND);
        assert_eq!(mpk_queue_create_named(n.as_ptr(), 4, 8, &mut q), MPK_OK);
        assert_eq!(mpk_queue_create_named(n.as_ptr(), 4, 8, &mut r), MPK_ERR_EXISTS);
        assert_eq!(mpk_queue_open_named(n.as_ptr(), &mut r), MPK_OK);
        assert_eq!(mpk_queue_put(q, b"named".as_ptr().cast(), 5, 0), MPK_OK);
        assert_eq!(mpk_queue_get(r, buf.as_mut_ptr().cast(), 8, &mut len, 0), MPK_OK);
        assert_eq!(&buf[..len], b"named");
        let mut a = null_mut();
        assert_eq!(mpk_array_open_named(n.as_ptr(), &mut a), MPK_ERR_BAD_OBJECT, "a queue is not an array");
        mpk_queue_destroy(q);
        mpk_queue_destroy(r);
        assert_eq!(mpk_shm_unlink(n.as_ptr()), MPK_OK);
    }
}

#[test]
fn pipe_null_and_bad_arguments() {
    let (mut a, mut b) = (null_mut(), null_mut());
    let mut len = 0usize;
    let mut buf = [0u8; 32];
    // SAFETY: pointers are NULL, live ends, or valid buffers of the stated sizes.
    unsafe {
        assert_eq!(mpk_pipe_create(0, true, &mut a, &mut b), MPK_ERR_INVAL);
        assert_eq!(mpk_pipe_create(1 << 41, true, &mut a, &mut b), MPK_ERR_INVAL);
        assert_eq!(mpk_pipe_create(64, true, null_mut(), &mut b), MPK_ERR_NULL);
        assert_eq!(mpk_pipe_create(64, true, &mut a, null_mut()), MPK_ERR_NULL);
        assert!(a.is_null() && b.is_null());
        assert_eq!(mpk_conn_send(null_mut(), buf.as_ptr().cast(), 1, 0), MPK_ERR_NULL);
        assert_eq!(mpk_conn_recv(null_mut(), buf.as_mut_ptr().cast(), 32, &mut len, 0), MPK_ERR_NULL);
        assert_eq!(mpk_conn_poll(null_mut(), 0), MPK_ERR_NULL);
        assert_eq!(mpk_conn_close(null_mut()), MPK_ERR_NULL);
        mpk_conn_destroy(null_mut());

        assert_eq!(mpk_pipe_create(64, true, &mut a, &mut b), MPK_OK);
        assert_eq!(mpk_conn_send(a, null(), 5, 0), MPK_ERR_NULL);
        assert_eq!(mpk_conn_send(a, buf.as_ptr().cast(), 1, -9), MPK_ERR_INVAL);
        assert_eq!(mpk_conn_send(a, b"[42, None, 'hello']".as_ptr().cast(), 19, MPK_FOREVER), MPK_OK);
        assert_eq!(mpk_conn_poll(b, 0), MPK_OK);
        assert_eq!(mpk_conn_recv(b, buf.as_mut_ptr().cast(), 32, null_mut(), 0), MPK_ERR_NULL);
        assert_eq!(mpk_conn_recv(b, buf.as_mut_ptr().cast(), 4, &mut len, 0), MPK_ERR_MSGSIZE);
        assert_eq!(len, 19);
        assert_eq!(mpk_conn_recv(b, buf.as_mut_ptr().cast(), 32, &mut len, 0), MPK_OK);
        assert_eq!(&buf[..len], b"[42, None, 'hello']");
        assert_eq!(mpk_conn_recv(b, buf.as_mut_ptr().cast(), 32, &mut len, MPK_NOWAIT), MPK_ERR_TIMEOUT);
        assert_eq!(mpk_conn_poll(b, 10), MPK_ERR_TIMEOUT);
        assert_eq!(mpk_conn_close(a), MPK_OK);
        assert_eq!(mpk_conn_close(a), MPK_OK, "idempotent");
        assert_eq!(mpk_conn_send(a, buf.as_ptr().cast(), 1, 0), MPK_ERR_STATE, "closed handle");
        assert_eq!(mpk_conn_recv(b, buf.as_mut_ptr().cast(), 32, &mut len, MPK_FOREVER), MPK_ERR_CLOSED);
        assert_eq!(mpk_conn_poll(b, MPK_FOREVER), MPK_ERR_CLOSED);
        assert_eq!(mpk_conn_send(b, buf.as_ptr().cast(), 1, 0), MPK_ERR_CLOSED);
        mpk_conn_destroy(a);
        mpk_conn_destroy(b);

        // One way: a receives, b sends.
        assert_eq!(mpk_pipe_create(64, false, &mut a, &mut b), MPK_OK);
        assert_eq!(mpk_conn_send(a, buf.as_ptr().cast(), 1, 0), MPK_ERR_STATE);
        assert_eq!(mpk_conn_recv(b, buf.as_mut_ptr().cast(), 32, &mut len, 0), MPK_ERR_STATE);
        assert_eq!(mpk_conn_send(b, null(), 0, 0), MPK_OK);
        assert_eq!(mpk_conn_recv(a, null_mut(), 0, &mut len, 0), MPK_OK);
        assert_eq!(len, 0);
        mpk_conn_destroy(a);
        mpk_conn_destroy(b);
    }
}

/// Issue 15.2: at end-of-file `MPK_NOWAIT` answers `MPK_ERR_CLOSED`, as 1 ms does.
#[test]
fn pipe_eof_with_nowait() {
    let (mut a, mut b) = (null_mut(), null_mut());
    let mut len = 0usize;
    let mut buf = [0u8; 32];
    // SAFETY: live ends and valid buffers of the stated sizes.
    unsafe {
        assert_eq!(mpk_pipe_create(64, true, &mut a, &mut b), MPK_OK);
        assert_eq!(mpk_conn_send(a, b"bye".as_ptr().cast(), 3, MPK_NOWAIT), MPK_OK);
        assert_eq!(mpk_conn_close(a), MPK_OK);
        assert_eq!(mpk_conn_poll(b, MPK_NOWAIT), MPK_OK, "data first");
        assert_eq!(mpk_conn_recv(b, buf.as_mut_ptr().cast(), 32, &mut len, MPK_NOWAIT), MPK_OK);
        assert_eq!(&buf[..len], b"bye");
        assert_eq!(mpk_conn_recv(b, buf.as_mut_ptr().cast(), 32, &mut len, MPK_NOWAIT), MPK_ERR_CLOSED);
        assert_eq!(mpk_conn_poll(b, MPK_NOWAIT), MPK_ERR_CLOSED);
        assert_eq!(mpk_conn_poll(b, 1), MPK_ERR_CLOSED);
        assert_eq!(mpk_conn_send(b, buf.as_ptr().cast(), 1, MPK_NOWAIT), MPK_ERR_CLOSED);
        mpk_conn_destroy(a);
        mpk_conn_destroy(b);
    }
}

unsafe extern "C" fn double_task(
    _: *mut c_void,
    arg: *const c_void,
    len: usize,
    out: *mut c_void,
    cap: usize,
    out_len: *mut usize,
) -> c_int {
    // SAFETY: the pool passes `len` readable bytes and `cap` writable bytes.
    unsafe {
        if len != 8 || cap < 8 {
            return 3;
        }
        let x = (arg as *const i64).read_unaligned();
        if x < 0 {
            return x as c_int;
        }
        (out as *mut i64).write_unaligned(2 * x);
        *out_len = 8;
    }
    0
}

unsafe extern "C" fn kill_self_task(
    _: *mut c_void,
    _: *const c_void,
    _: usize,
    _: *mut c_void,
    _: usize,
    _: *mut usize,
) -> c_int {
    // SAFETY: the worker kills itself, as a crash would.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    0
}

#[test]
fn pool_null_and_bad_arguments() {
    let mut p = null_mut();
    let mut a = null_mut();
    let mut it = null_mut();
    let mut len = 0usize;
    let mut idx = 0usize;
    let mut code: c_int = 0;
    let mut out = [0u8; 16];
    let x = 21i64;
    // SAFETY: pointers are NULL, live handles, or valid buffers of the stated sizes.
    unsafe {
        assert_eq!(mpk_pool_create(null(), null_mut()), MPK_ERR_NULL);
        let zero = mpk_pool_opts {
            struct_size: size_of::<mpk_pool_opts>(),
            workers: 0,
            max_arg: 0,
            max_result: 0,
            maxtasksperchild: 0,
            initializer: None,
            initarg: null_mut(),
            max_tasks: 0,
            arena_bytes: 0,
            task_timeout_ms: 0,
        };
        assert_eq!(mpk_pool_create(&zero, &mut p), MPK_ERR_INVAL, "zero workers");
        let tiny = mpk_pool_opts { struct_size: 4, ..zero };
        assert_eq!(mpk_pool_create(&tiny, &mut p), MPK_ERR_INVAL, "struct_size too small");
        assert!(p.is_null());
        let opts = mpk_pool_opts { workers: 2, max_arg: 8, max_result: 8, ..zero };
        assert_eq!(mpk_pool_create(&opts, &mut p), MPK_OK);
        assert_eq!(mpk_pool_workers(p), 2);
        assert_eq!(mpk_pool_workers(null()), 0);

        // NULL handles and functions.
        assert_eq!(
            mpk_pool_apply(
                null_mut(),
                Some(double_task),
                null_mut(),
                (&x as *const i64).cast(),
                8,
                out.as_mut_ptr().cast(),
                16,
                &mut len
            ),
            MPK_ERR_NULL
        );
        assert_eq!(
            mpk_pool_apply(p, None, null_mut(), (&x as *const i64).cast(), 8, out.as_mut_ptr().cast(), 16, &mut len),
            MPK_ERR_NULL
        );
        assert_eq!(
            mpk_pool_apply(p, Some(double_task), null_mut(), null(), 8, out.as_mut_ptr().cast(), 16, &mut len),
            MPK_ERR_NULL
        );
        assert_eq!(
            mpk_pool_apply(
                p,
                Some(double_task),
                null_mut(),
                (&x as *const i64).cast(),
                8,
                out.as_mut_ptr().cast(),
                16,
                null_mut()
            ),
            MPK_ERR_NULL
        );
        assert_eq!(
            mpk_pool_apply_async(p, Some(double_task), null_mut(), (&x as *const i64).cast(), 8, null_mut()),
            MPK_ERR_NULL
        );
        assert_eq!(mpk_pool_map(p, None, null_mut(), null(), 8, 0, null_mut(), 8, 0), MPK_ERR_NULL);
        assert_eq!(
            mpk_pool_map(p, Some(double_task), null_mut(), null(), 8, 3, out.as_mut_ptr().cast(), 8, 0),
            MPK_ERR_NULL
        );
        assert_eq!(
            mpk_pool_map(p, Some(double_task), null_mut(), null(), usize::MAX, 2, null_mut(), 8, 0),
            MPK_ERR_INVAL
        );
        assert_eq!(mpk_pool_imap(p, None, null_mut(), null(), 8, 0, 0, &mut it), MPK_ERR_NULL);
        assert_eq!(mpk_pool_imap(p, Some(double_task), null_mut(), null(), 8, 0, 0, null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_pool_map_array(p, Some(double_task), null_mut(), null(), null_mut(), 0), MPK_ERR_NULL);
        assert_eq!(mpk_async_get(null_mut(), out.as_mut_ptr().cast(), 16, &mut len, 0), MPK_ERR_NULL);
        assert_eq!(mpk_async_wait(null_mut(), 0), MPK_ERR_NULL);
        assert!(!mpk_async_ready(null_mut()));
        let mut ok = false;
        assert_eq!(mpk_async_successful(null_mut(), &mut ok), MPK_ERR_NULL);
        assert_eq!(mpk_iter_next(null_mut(), &mut idx, out.as_mut_ptr().cast(), 16, &mut len, 0), MPK_ERR_NULL);
        assert_eq!(mpk_async_cancel(null_mut()), MPK_ERR_NULL);
        let arg = (&x as *const i64).cast();
        assert_eq!(
            mpk_pool_apply_async_timeout(null_mut(), Some(double_task), null_mut(), arg, 8, 5, &mut a),
            MPK_ERR_NULL
        );
        assert_eq!(mpk_pool_apply_async_timeout(p, Some(double_task), null_mut(), arg, 8, 5, null_mut()), MPK_ERR_NULL);
        for bad in [-2, -1000, i64::MIN] {
            assert_eq!(
                mpk_pool_apply_async_timeout(p, Some(double_task), null_mut(), arg, 8, bad, &mut a),
                MPK_ERR_INVAL
            );
        }
        assert_eq!(mpk_pool_map_async(p, None, null_mut(), null(), 8, 0, null_mut(), 8, 0, &mut a), MPK_ERR_NULL);
        assert_eq!(
            mpk_pool_map_async(p, Some(double_task), null_mut(), null(), 8, 0, null_mut(), 8, 0, null_mut()),
            MPK_ERR_NULL
        );
        assert_eq!(
            mpk_pool_map_async(p, Some(double_task), null_mut(), null(), 8, 2, out.as_mut_ptr().cast(), 8, 0, &mut a),
            MPK_ERR_NULL,
            "NULL args for 2 items"
        );
        assert_eq!(
            mpk_pool_map_async(p, Some(double_task), null_mut(), out.as_ptr().cast(), 8, 2, null_mut(), 8, 0, &mut a),
            MPK_ERR_NULL,
            "NULL results for 2 items"
        );
        assert_eq!(
            mpk_pool_map_async(p, Some(double_task), null_mut(), null(), usize::MAX, 2, null_mut(), 8, 0, &mut a),
            MPK_ERR_INVAL
        );
        assert!(a.is_null(), "no handle on failure");
        mpk_async_destroy(null_mut());
        mpk_iter_destroy(null_mut());
        for f in [mpk_pool_close, mpk_pool_terminate] {
            assert_eq!(f(null_mut()), MPK_ERR_NULL);
        }
        assert_eq!(mpk_pool_join(null_mut(), 0), MPK_ERR_NULL);
        mpk_pool_destroy(null_mut());

        // Sizes over max_arg / max_result.
        assert_eq!(
            mpk_pool_apply(
                p,
                Some(double_task),
                null_mut(),
                out.as_ptr().cast(),
                9,
                out.as_mut_ptr().cast(),
                16,
                &mut len
            ),
            MPK_ERR_MSGSIZE
        );
        assert_eq!(
            mpk_pool_apply(
                p,
                Some(double_task),
                null_mut(),
                (&x as *const i64).cast(),
                8,
                out.as_mut_ptr().cast(),
                4,
                &mut len
            ),
            MPK_ERR_MSGSIZE
        );
        assert_eq!(len, 8, "the size needed");

        // The normal paths.
        assert_eq!(
            mpk_pool_apply(
                p,
                Some(double_task),
                null_mut(),
                (&x as *const i64).cast(),
                8,
                out.as_mut_ptr().cast(),
                16,
                &mut len
            ),
            MPK_OK
        );
        assert_eq!((len, i64::from_ne_bytes(out[..8].try_into().unwrap())), (8, 42));
        let neg = -9i64;
        assert_eq!(
            mpk_pool_apply(
                p,
                Some(double_task),
                null_mut(),
                (&neg as *const i64).cast(),
                8,
                out.as_mut_ptr().cast(),
                16,
                &mut len
            ),
            MPK_ERR_TASK_FAILED
        );
        assert_eq!(mpk_pool_last_failure(&mut idx, &mut code), MPK_OK);
        assert_eq!((idx, code), (0, -9), "the task's code is kept");
        assert_eq!(mpk_pool_last_failure(null_mut(), null_mut()), MPK_OK);
        assert_eq!(
            mpk_pool_apply(p, Some(kill_self_task), null_mut(), null(), 0, out.as_mut_ptr().cast(), 16, &mut len),
            MPK_ERR_WORKER_DIED
        );

        let items: [i64; 5] = [0, 1, 2, -4, 4];
        let mut results = [0i64; 5];
        assert_eq!(
            mpk_pool_map(
                p,
                Some(double_task),
                null_mut(),
                items.as_ptr().cast(),
                8,
                5,
                results.as_mut_ptr().cast(),
                8,
                1
            ),
            MPK_ERR_TASK_FAILED
        );
        assert_eq!(mpk_pool_last_failure(&mut idx, &mut code), MPK_OK);
        assert_eq!((idx, code), (3, -4), "map names the failed item");
        assert_eq!(
            mpk_pool_map(
                p,
                Some(double_task),
                null_mut(),
                items.as_ptr().cast(),
                8,
                3,
                results.as_mut_ptr().cast(),
                8,
                0
            ),
            MPK_OK
        );
        assert_eq!(results[..3], [0, 2, 4]);

        assert_eq!(
            mpk_pool_apply_async(p, Some(double_task), null_mut(), (&x as *const i64).cast(), 8, &mut a),
            MPK_OK
        );
        assert_eq!(mpk_async_wait(a, 60_000), MPK_OK);
        assert!(mpk_async_ready(a));
        assert_eq!(mpk_async_successful(a, &mut ok), MPK_OK);
        assert!(ok);
        assert_eq!(
            mpk_async_get(a, out.as_mut_ptr().cast(), 2, &mut len, 0),
            MPK_ERR_MSGSIZE,
            "kept for a bigger buffer"
        );
        assert_eq!(mpk_async_get(a, out.as_mut_ptr().cast(), 16, &mut len, 0), MPK_OK);
        assert_eq!(mpk_async_get(a, out.as_mut_ptr().cast(), 16, &mut len, 0), MPK_ERR_STATE, "already taken");
        assert_eq!(mpk_async_successful(a, &mut ok), MPK_ERR_STATE);
        mpk_async_destroy(a);

        assert_eq!(mpk_pool_imap(p, Some(double_task), null_mut(), items.as_ptr().cast(), 8, 5, 2, &mut it), MPK_OK);
        let mut seen = Vec::new();
        loop {
            let mut v = [0u8; 8];
            match mpk_iter_next(it, &mut idx, v.as_mut_ptr().cast(), 8, &mut len, 60_000) {
                MPK_OK => seen.push((idx, i64::from_ne_bytes(v))),
                MPK_ERR_TASK_FAILED => seen.push((idx, -1)),
                MPK_ERR_CLOSED => break,
                other => panic!("iter: {other}"),
            }
        }
        assert_eq!(seen, [(0, 0), (1, 2), (2, 4), (3, -1), (4, 8)]);
        assert_eq!(mpk_iter_next(it, &mut idx, out.as_mut_ptr().cast(), 16, &mut len, 0), MPK_ERR_CLOSED);
        assert_eq!(mpk_iter_next(it, null_mut(), out.as_mut_ptr().cast(), 16, &mut len, 0), MPK_ERR_NULL);
        mpk_iter_destroy(it);

        // Handles outlive the pool safely.
        assert_eq!(
            mpk_pool_apply_async(p, Some(double_task), null_mut(), (&x as *const i64).cast(), 8, &mut a),
            MPK_OK
        );
        assert_eq!(mpk_pool_join(p, 0), MPK_ERR_STATE, "join before close");
        assert_eq!(mpk_pool_close(p), MPK_OK);
        let mut refused = null_mut();
        assert_eq!(
            mpk_pool_apply_async(p, Some(double_task), null_mut(), (&x as *const i64).cast(), 8, &mut refused),
            MPK_ERR_STATE
        );
        assert!(refused.is_null());
        assert_eq!(mpk_pool_join(p, 60_000), MPK_OK);
        mpk_pool_destroy(p);
        assert_eq!(mpk_async_get(a, out.as_mut_ptr().cast(), 16, &mut len, 60_000), MPK_OK, "finished before close");
        mpk_async_destroy(a);
    }
}

/// Doubles an i64, but sleeps 10 s first on the value 3.
unsafe extern "C" fn double_stuck_on_3(
    ctx: *mut c_void,
    arg: *const c_void,
    len: usize,
    out: *mut c_void,
    cap: usize,
    out_len: *mut usize,
) -> c_int {
    // SAFETY: the pool passes `len` readable bytes.
    if len == 8 && unsafe { arg.cast::<i64>().read_unaligned() } == 3 {
        std::thread::sleep(std::time::Duration::from_secs(10));
    }
    // SAFETY: forwarded.
    unsafe { double_task(ctx, arg, len, out, cap, out_len) }
}

#[test]
fn pool_time_limits_cancel_and_map_async_through_the_abi() {
    let mut p = null_mut();
    let mut a = null_mut();
    let (mut len, mut idx, mut code) = (0usize, 0usize, 0 as c_int);
    let items: Vec<i64> = (0..8).collect();
    let mut results = vec![0i64; 8];
    // SAFETY: pointers are live handles or valid buffers of the stated sizes.
    unsafe {
        let opts = mpk_pool_opts {
            struct_size: size_of::<mpk_pool_opts>(),
            workers: 2,
            max_arg: 8,
            max_result: 8,
            maxtasksperchild: 0,
            initializer: None,
            initarg: null_mut(),
            max_tasks: 0,
            arena_bytes: 0,
            task_timeout_ms: 300,
        };
        assert_eq!(mpk_pool_create(&opts, &mut p), MPK_OK);
        let (args, res) = (items.as_ptr().cast(), results.as_mut_ptr().cast());
        let st = mpk_pool_map(p, Some(double_stuck_on_3), null_mut(), args, 8, 8, res, 8, 2);
        assert_eq!(st, MPK_ERR_TASK_TIMEOUT);
        assert_eq!(mpk_pool_last_failure(&mut idx, &mut code), MPK_OK);
        assert_eq!((idx, code), (3, 0), "the item that ran past the limit is named");
        // map_async: fills `results` at get, with *out_len = n.
        assert_eq!(mpk_pool_map_async(p, Some(double_task), null_mut(), args, 8, 8, res, 8, 0, &mut a), MPK_OK);
        assert_eq!(mpk_async_wait(a, 60_000), MPK_OK);
        let mut ok = false;
        assert_eq!(mpk_async_successful(a, &mut ok), MPK_OK);
        assert!(ok);
        assert_eq!(mpk_async_get(a, null_mut(), 0, &mut len, 60_000), MPK_OK);
        assert_eq!((len, &results[..]), (8, &[0, 2, 4, 6, 8, 10, 12, 14][..]));
        assert_eq!(mpk_async_get(a, null_mut(), 0, &mut len, 0), MPK_ERR_STATE, "taken once");
        assert_eq!(mpk_async_cancel(a), MPK_ERR_STATE);
        mpk_async_destroy(a);
        // A map_async whose item times out reports it like a map.
        assert_eq!(mpk_pool_map_async(p, Some(double_stuck_on_3), null_mut(), args, 8, 8, res, 8, 1, &mut a), MPK_OK);
        assert_eq!(mpk_async_get(a, null_mut(), 0, &mut len, 60_000), MPK_ERR_TASK_TIMEOUT);
        assert_eq!(mpk_pool_last_failure(&mut idx, null_mut()), MPK_OK);
        assert_eq!(idx, 3);
        mpk_async_destroy(a);
        let eight = 8i64;
        let limitless = (&eight as *const i64).cast();
        assert_eq!(
            mpk_pool_apply_async_timeout(p, Some(double_task), null_mut(), limitless, 8, MPK_FOREVER, &mut a),
            MPK_OK
        );
        let mut out = 0i64;
        assert_eq!(mpk_async_get(a, (&mut out as *mut i64).cast(), 8, &mut len, 60_000), MPK_OK);
        assert_eq!(out, 16);
        mpk_async_destroy(a);
        let three = 3i64;
        let stuck = (&three as *const i64).cast();
        assert_eq!(
            mpk_pool_apply_async_timeout(p, Some(double_stuck_on_3), null_mut(), stuck, 8, MPK_FOREVER, &mut a),
            MPK_OK
        );
        assert_eq!(
            mpk_async_get(a, (&mut out as *mut i64).cast(), 8, &mut len, 500),
            MPK_ERR_TIMEOUT,
            "no limit: it runs on"
        );
        assert_eq!(mpk_async_cancel(a), MPK_OK);
        assert_eq!(mpk_async_get(a, (&mut out as *mut i64).cast(), 8, &mut len, 60_000), MPK_ERR_CANCELLED);
        mpk_async_destroy(a);
        mpk_pool_destroy(p);
    }
}
