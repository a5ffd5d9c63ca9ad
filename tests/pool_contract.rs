//! The pool's C contract at its edges (issue 14.1, 14.9): a pool belongs to the process that
//! made it, maps with no results, iterators outliving their pool, the `max_tasks` bound.
#![allow(clippy::multiple_unsafe_ops_per_block)] // tests group C-style calls

use std::ffi::{c_int, c_void};
use std::ptr::{null, null_mut};

use mpkit::ffi::*;

/// `x → x * x` over one `i64`; counts its calls in `ctx` (an `i64` in shared memory) if not NULL.
unsafe extern "C" fn square(
    ctx: *mut c_void,
    arg: *const c_void,
    len: usize,
    out: *mut c_void,
    cap: usize,
    out_len: *mut usize,
) -> c_int {
    // SAFETY: the pool passes `len` readable and `cap` writable bytes; `ctx` is NULL or the
    // data of a shared i64 value made before the pool.
    unsafe {
        if !ctx.is_null() {
            (*ctx.cast::<std::sync::atomic::AtomicI64>()).fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        if len != 8 {
            return 3;
        }
        if cap >= 8 {
            let x = arg.cast::<i64>().read_unaligned();
            out.cast::<i64>().write_unaligned(x * x);
            *out_len = 8;
        }
    }
    0
}

fn pool(workers: usize, max_tasks: usize) -> *mut mpk_pool {
    let opts = mpk_pool_opts {
        struct_size: size_of::<mpk_pool_opts>(),
        workers,
        max_arg: 8,
        max_result: 8,
        maxtasksperchild: 0,
        initializer: None,
        initarg: null_mut(),
        max_tasks,
        arena_bytes: 0,
        task_timeout_ms: 0,
    };
    let mut p = null_mut();
    // SAFETY: valid options and out pointer.
    assert_eq!(unsafe { mpk_pool_create(&opts, &mut p) }, MPK_OK);
    p
}

/// Runs `n` squares through `p` in batches of 100 async tasks. Returns (results right, wrong,
/// calls refused with `MPK_ERR_STATE`, other statuses).
fn squares(p: *mut mpk_pool, n: i64, salt: i64) -> [u32; 4] {
    let mut tally = [0u32; 4];
    let mut start = 0;
    while start < n {
        let batch: Vec<(i64, *mut mpk_async)> = (start..(start + 100).min(n))
            .filter_map(|i| {
                let x = i + salt;
                let mut a = null_mut();
                // SAFETY: live pool, readable argument, writable out pointer.
                match unsafe { mpk_pool_apply_async(p, Some(square), null_mut(), (&x as *const i64).cast(), 8, &mut a) }
                {
                    MPK_OK => Some((x, a)),
                    MPK_ERR_STATE => {
                        tally[2] += 1;
                        None
                    }
                    _ => {
                        tally[3] += 1;
                        None
                    }
                }
            })
            .collect();
        for (x, a) in batch {
            let (mut y, mut len) = (0i64, 0usize);
            // SAFETY: live handle, writable 8-byte result and length.
            match unsafe { mpk_async_get(a, (&mut y as *mut i64).cast(), 8, &mut len, 60_000) } {
                MPK_OK if len == 8 && y == x * x => tally[0] += 1,
                MPK_OK => tally[1] += 1,
                _ => tally[3] += 1,
            }
            // SAFETY: the handle is not used again.
            unsafe { mpk_async_destroy(a) };
        }
        start += 100;
    }
    tally
}

/// In a forked child: 20,000 squares through the parent's pool, then destroy the child's copy of
/// the handle. Exit status: 0 when every call was refused with `MPK_ERR_STATE`, 1 otherwise.
unsafe extern "C" fn child_uses_the_pool(arg: *mut c_void) -> c_int {
    let p = arg.cast::<mpk_pool>();
    let [right, wrong, refused, other] = squares(p, 20_000, 1_000_000);
    // SAFETY: the child's copy of the handle, not used again here.
    unsafe { mpk_pool_destroy(p) };
    (right != 0 || wrong != 0 || other != 0 || refused != 20_000) as c_int
}

/// Pool made, then fork: the child's calls are all refused with `MPK_ERR_STATE` (no cross-talk),
/// its destroy leaves the parent's pool running, and the parent's 20,000 results, made while the
/// child tries, are all right.
#[test]
fn a_pool_refuses_calls_from_a_forked_child() {
    let p = pool(4, 0);
    let mut child = null_mut();
    // SAFETY: the child runs `child_uses_the_pool` with the pool pointer (valid after the fork).
    assert_eq!(unsafe { mpk_process_start(Some(child_uses_the_pool), p.cast(), null(), &mut child) }, MPK_OK);
    let tally = squares(p, 20_000, 0);
    let mut code = -1;
    // SAFETY: live process handle, writable code.
    unsafe {
        assert_eq!(mpk_process_join(child, 120_000), MPK_OK);
        assert_eq!(mpk_process_exitcode(child, &mut code), MPK_OK);
        mpk_process_destroy(child);
    }
    assert_eq!(tally, [20_000, 0, 0, 0], "parent: [right, wrong, refused, other]");
    assert_eq!(code, 0, "the child's calls must all fail with MPK_ERR_STATE");
    assert_eq!(squares(p, 1_000, 7), [1_000, 0, 0, 0], "the child's destroy must not stop the parent's pool");
    // SAFETY: not used again.
    unsafe { mpk_pool_destroy(p) };
}

/// `result_size` 0 with NULL results (as the header allows): every item runs, status only.
#[test]
fn a_map_without_results_runs_every_item() {
    let mut calls = null_mut();
    // SAFETY: valid type and out pointer.
    assert_eq!(unsafe { mpk_value_create(MPK_TYPE_I64, null(), &mut calls) }, MPK_OK);
    let p = pool(2, 0);
    let items: Vec<i64> = (0..1000).collect();
    // SAFETY: the counter was made before the pool, so its address is valid in the workers;
    // `items` holds 1000 8-byte arguments; results are NULL with size 0.
    unsafe {
        let ctx = mpk_array_data(calls);
        assert_eq!(mpk_pool_map(p, Some(square), ctx, items.as_ptr().cast(), 8, 1000, null_mut(), 0, 7), MPK_OK);
        assert_eq!(ctx.cast::<i64>().read_volatile(), 1000);
        mpk_pool_destroy(p);
        mpk_array_destroy(calls);
    }
}

/// An iterator used after its pool was destroyed reports `MPK_ERR_CLOSED`, as the header says.
#[test]
fn an_iterator_outliving_its_pool_reports_closed() {
    let p = pool(2, 0);
    let items: Vec<i64> = (0..100).collect();
    let mut it = null_mut();
    let (mut idx, mut len, mut y) = (0usize, 0usize, 0i64);
    // SAFETY: live pool and iterator; buffers of the stated sizes.
    unsafe {
        assert_eq!(mpk_pool_imap(p, Some(square), null_mut(), items.as_ptr().cast(), 8, 100, 1, &mut it), MPK_OK);
        assert_eq!(mpk_iter_next(it, &mut idx, (&mut y as *mut i64).cast(), 8, &mut len, 60_000), MPK_OK);
        assert_eq!((idx, y), (0, 0));
        mpk_pool_destroy(p);
        let mut closed = 0;
        for _ in 0..200 {
            match mpk_iter_next(it, &mut idx, (&mut y as *mut i64).cast(), 8, &mut len, 60_000) {
                MPK_OK => {}
                MPK_ERR_CLOSED => closed += 1,
                other => panic!("after destroy: status {other}"),
            }
        }
        assert!(closed > 0, "never reported MPK_ERR_CLOSED");
        mpk_iter_destroy(it);
    }
}

/// `max_tasks` bounds the tasks that are unfinished or not yet collected: one more is refused
/// with `MPK_ERR_NOMEM` at once (the documented rule), and collecting one makes room again.
#[test]
fn apply_async_beyond_max_tasks_is_nomem_until_one_is_collected() {
    let p = pool(2, 4);
    let x = 3i64;
    let mut handles = [null_mut(); 4];
    let mut extra = null_mut();
    let (mut y, mut len) = (0i64, 0usize);
    // SAFETY: live pool and handles; buffers of the stated sizes.
    unsafe {
        for a in &mut handles {
            assert_eq!(mpk_pool_apply_async(p, Some(square), null_mut(), (&x as *const i64).cast(), 8, a), MPK_OK);
        }
        assert_eq!(
            mpk_pool_apply_async(p, Some(square), null_mut(), (&x as *const i64).cast(), 8, &mut extra),
            MPK_ERR_NOMEM
        );
        assert!(extra.is_null());
        assert_eq!(mpk_async_get(handles[0], (&mut y as *mut i64).cast(), 8, &mut len, 60_000), MPK_OK);
        assert_eq!(y, 9);
        assert_eq!(mpk_pool_apply_async(p, Some(square), null_mut(), (&x as *const i64).cast(), 8, &mut extra), MPK_OK);
        for a in handles.into_iter().chain([extra]) {
            mpk_async_destroy(a);
        }
        mpk_pool_destroy(p);
    }
}
