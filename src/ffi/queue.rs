//! `mpk_queue`: the bounded MPMC message queue, in place over caller memory or owned.

use core::ffi::{c_char, c_void};
use core::ptr::NonNull;

use super::{Fail, MPK_ERR_INVAL, MPK_ERR_NULL, call, call_or, deadline, mpk_status, non_null, str_arg, write_out};
use crate::error::Error;
use crate::queue::{ByteQueue, QueueRef};
use crate::shm::{Kind, Region};

/// Largest queue capacity, in messages (2^30). Capacities 1..=this are accepted; 0, or more than this, is
/// `MPK_ERR_INVAL`.
pub const MPK_QUEUE_MAX_CAPACITY: usize = 1 << 30;
const _: () = assert!(MPK_QUEUE_MAX_CAPACITY == crate::queue::MAX_CAPACITY);
/// Largest `max_msg`, in bytes (2^28). 1..=this is accepted; 0, or more than this, is `MPK_ERR_INVAL`.
pub const MPK_QUEUE_MAX_MSG: usize = 1 << 28;
const _: () = assert!(MPK_QUEUE_MAX_MSG == crate::queue::MAX_MSG);

/// A bounded multi-producer multi-consumer queue of messages of 0..=max_msg bytes. The pointer
/// is the queue itself, in place in shared memory: use it from any thread of any process that
/// maps that memory (children forked after creation inherit it at the same address).
///
/// Sizes: `capacity` 1..=`MPK_QUEUE_MAX_CAPACITY` messages, `max_msg` 1..=`MPK_QUEUE_MAX_MSG`
/// bytes; the ring takes `mpk_queue_size(capacity, max_msg)` bytes (448 plus `capacity` slots of
/// `max_msg + 8` rounded up to 8), which must fit the address space. Beyond these limits every
/// constructor returns `MPK_ERR_INVAL` (and `mpk_queue_size` 0). An owned queue costs memory only
/// as messages first reach its slots, so a huge one is created at once; if the system cannot map
/// it, creation fails with `MPK_ERR_NOMEM`, and if it cannot supply a page later (a ring larger
/// than memory, filled), the process gets the kernel's answer to any overcommitted shared
/// mapping (SIGBUS or the OOM killer).
pub struct mpk_queue {
    _in_shared_memory: [u8; 0],
}

/// The ring behind a C pointer: `MPK_ERR_NULL`, or `MPK_ERR_BAD_OBJECT` if it is not a queue.
///
/// # Safety
/// - `q` is NULL or points to readable memory that, if it holds a queue, stays mapped for `'a`.
pub(super) unsafe fn ring<'a>(q: *const mpk_queue) -> Result<QueueRef<'a>, Fail> {
    let p = NonNull::new(q.cast_mut().cast::<u8>()).ok_or(Fail(MPK_ERR_NULL))?;
    // SAFETY: forwarded caller duty.
    Ok(unsafe { QueueRef::from_raw(p) }?)
}

/// Hands an owned queue's region to C as its ring pointer (taken back by `mpk_queue_destroy`).
fn publish(out: *mut *mut mpk_queue, q: ByteQueue) -> Result<(), Fail> {
    let p = q.into_region().into_raw().cast::<mpk_queue>();
    // SAFETY: callers check `out` non-NULL first; writable by the C contract.
    unsafe { write_out(out, p.as_ptr()) }
}

/// Bytes of memory `mpk_queue_init` needs for `capacity` messages of up to `max_msg` bytes; 0 if
/// either is 0 or too large.
#[unsafe(no_mangle)]
pub extern "C" fn mpk_queue_size(capacity: usize, max_msg: usize) -> usize {
    call_or(0, || QueueRef::size_for(capacity, max_msg).unwrap_or(0))
}

/// Builds an empty queue in caller memory (8-byte aligned, `mem_len >= mpk_queue_size(...)`):
/// no allocation; put it in shared memory to share it. `*out` is `mem` as a queue.
/// `MPK_ERR_INVAL` for bad sizes (see `mpk_queue`), too little memory or misalignment. Writes
/// one word per slot (the memory may hold anything), so it touches every slot's page.
///
/// # Safety
/// `mem` is NULL or valid for `mem_len` bytes, used by nothing else, and outlives every use of
/// the queue; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_queue_init(
    mem: *mut c_void,
    mem_len: usize,
    capacity: usize,
    max_msg: usize,
    out: *mut *mut mpk_queue,
) -> mpk_status {
    call(|| {
        non_null(out)?;
        let mem = NonNull::new(mem.cast::<u8>()).ok_or(Fail(MPK_ERR_NULL))?;
        // SAFETY: forwarded caller duty (exclusive, `mem_len` bytes, outlives the queue).
        let q = unsafe { QueueRef::init(mem, mem_len, capacity, max_msg) }?;
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out, q.as_ptr().cast()) }
    })
}

/// Creates a queue in its own shared mapping, shared with children forked afterwards.
/// Release it with `mpk_queue_destroy`. `MPK_ERR_INVAL` for bad sizes (see `mpk_queue`),
/// `MPK_ERR_NOMEM` if the mapping cannot be made. Returns at once whatever the size: slots'
/// pages are allocated when messages first reach them.
///
/// # Safety
/// `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_queue_create(capacity: usize, max_msg: usize, out: *mut *mut mpk_queue) -> mpk_status {
    call(|| {
        non_null(out)?;
        publish(out, ByteQueue::new(capacity, max_msg)?)
    })
}

/// Creates a named queue that unrelated processes open with `mpk_queue_open_named`; the name
/// stays until `mpk_shm_unlink`. `MPK_ERR_EXISTS` if the name is taken.
///
/// # Safety
/// `name` is NULL or NUL-terminated; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_queue_create_named(
    name: *const c_char,
    capacity: usize,
    max_msg: usize,
    out: *mut *mut mpk_queue,
) -> mpk_status {
    call(|| {
        non_null(out)?;
        // SAFETY: forwarded caller duty.
        let mut q = ByteQueue::create_named(unsafe { str_arg(name) }?, capacity, max_msg)?;
        q.persist();
        publish(out, q)
    })
}

/// Opens a named queue. `MPK_ERR_NOT_FOUND`; `MPK_ERR_BAD_OBJECT` at once if it is not an mpkit
/// queue or any of its layout words is inconsistent (corrupted); `MPK_ERR_VERSION`.
///
/// # Safety
/// `name` is NULL or NUL-terminated; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_queue_open_named(name: *const c_char, out: *mut *mut mpk_queue) -> mpk_status {
    call(|| {
        non_null(out)?;
        // SAFETY: forwarded caller duty.
        publish(out, ByteQueue::open_named(unsafe { str_arg(name) }?)?)
    })
}

/// Puts one message of `len` bytes (`msg` may be NULL when `len` is 0), waiting at most
/// `timeout_ms` for room. `MPK_ERR_TIMEOUT` (full), `MPK_ERR_CLOSED`, `MPK_ERR_MSGSIZE` (longer
/// than max_msg).
///
/// # Safety
/// `q` is NULL or a queue; `msg` is readable for `len` bytes (or NULL with `len` 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_queue_put(
    q: *mut mpk_queue,
    msg: *const c_void,
    len: usize,
    timeout_ms: i64,
) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        let q = unsafe { ring(q) }?;
        // SAFETY: forwarded caller duty.
        let msg = unsafe { bytes(msg, len) }?;
        Ok(q.put(msg, deadline(timeout_ms)?)?)
    })
}

/// Takes one message into `buf` (`cap` bytes), waiting at most `timeout_ms`; `*out_len` is its
/// length. `MPK_ERR_TIMEOUT` (empty), `MPK_ERR_CLOSED` (closed and drained), `MPK_ERR_MSGSIZE`
/// when `cap` is too small: then `*out_len` is the size needed and the message stays queued.
///
/// # Safety
/// `q` is NULL or a queue; `buf` is writable for `cap` bytes (or NULL with `cap` 0); `out_len`
/// is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_queue_get(
    q: *mut mpk_queue,
    buf: *mut c_void,
    cap: usize,
    out_len: *mut usize,
    timeout_ms: i64,
) -> mpk_status {
    call(|| {
        non_null(out_len)?;
        // SAFETY: forwarded caller duty.
        let q = unsafe { ring(q) }?;
        // SAFETY: forwarded caller duty.
        let buf = unsafe { bytes_mut(buf, cap) }?;
        let got = q.get(buf, deadline(timeout_ms)?);
        // SAFETY: `out_len` checked non-NULL; writable by the caller's contract.
        unsafe { report_len(out_len, got) }
    })
}

/// Waits (at most `timeout_ms`) until one of the `n` messages of `msg_size` bytes each (stored
/// back to back at `msgs`) fits, then puts as many as fit without waiting again, claiming them
/// at once. `*out_count` is how many were put.
///
/// # Safety
/// `q` is NULL or a queue; `msgs` is readable for `n * msg_size` bytes; `out_count` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_queue_put_many(
    q: *mut mpk_queue,
    msgs: *const c_void,
    msg_size: usize,
    n: usize,
    out_count: *mut usize,
    timeout_ms: i64,
) -> mpk_status {
    call(|| {
        non_null(out_count)?;
        // SAFETY: forwarded caller duty.
        let q = unsafe { ring(q) }?;
        let total = n.checked_mul(msg_size).ok_or(Error::Inval)?;
        // SAFETY: forwarded caller duty.
        let all = unsafe { bytes(msgs, total) }?;
        let put = q.put_many(n, |i| &all[i * msg_size..(i + 1) * msg_size], deadline(timeout_ms)?)?;
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out_count, put) }
    })
}

/// Waits (at most `timeout_ms`) until a message is there, then takes up to `n` that are there
/// without waiting again, claiming them at once. Message `i` goes to `bufs + i * buf_size` with
/// its length in `out_lens[i]`; `*out_count` is how many. `buf_size` must be at least the
/// queue's max_msg (`MPK_ERR_INVAL` otherwise).
///
/// # Safety
/// `q` is NULL or a queue; `bufs` is writable for `n * buf_size` bytes; `out_lens` for `n`
/// values; `out_count` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_queue_get_many(
    q: *mut mpk_queue,
    bufs: *mut c_void,
    buf_size: usize,
    n: usize,
    out_lens: *mut usize,
    out_count: *mut usize,
    timeout_ms: i64,
) -> mpk_status {
    call(|| {
        non_null(out_count)?;
        // SAFETY: forwarded caller duty.
        let q = unsafe { ring(q) }?;
        if buf_size < q.max_msg() {
            return Err(Fail(MPK_ERR_INVAL));
        }
        if n == 0 {
            // SAFETY: checked non-NULL; writable by the caller's contract.
            return unsafe { write_out(out_count, 0) };
        }
        let total = n.checked_mul(buf_size).ok_or(Error::Inval)?;
        // SAFETY: forwarded caller duty.
        let all = unsafe { bytes_mut(bufs, total) }?;
        non_null(out_lens)?;
        // SAFETY: `out_lens` is non-NULL and writable for `n` values (caller duty).
        let lens = unsafe { core::slice::from_raw_parts_mut(out_lens, n) };
        let got = q.get_many(
            n,
            buf_size,
            |i, m| {
                all[i * buf_size..i * buf_size + m.len()].copy_from_slice(m);
                lens[i] = m.len();
            },
            deadline(timeout_ms)?,
        )?;
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out_count, got) }
    })
}

/// Messages in the queue now (Python's `qsize`); 0 if `q` is NULL or not a queue.
///
/// # Safety
/// `q` is NULL or a queue.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_queue_len(q: *const mpk_queue) -> usize {
    // SAFETY: forwarded caller duty.
    call_or(0, || unsafe { ring(q) }.map_or(0, QueueRef::len))
}

/// The queue's capacity in messages (0 if `q` is NULL or not a queue).
///
/// # Safety
/// `q` is NULL or a queue.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_queue_capacity(q: *const mpk_queue) -> usize {
    // SAFETY: forwarded caller duty.
    call_or(0, || unsafe { ring(q) }.map_or(0, QueueRef::capacity))
}

/// The largest message in bytes (0 if `q` is NULL or not a queue).
///
/// # Safety
/// `q` is NULL or a queue.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_queue_max_msg(q: *const mpk_queue) -> usize {
    // SAFETY: forwarded caller duty.
    call_or(0, || unsafe { ring(q) }.map_or(0, QueueRef::max_msg))
}

/// Closes the queue for every process: puts fail with `MPK_ERR_CLOSED`; gets drain what is
/// left, then fail with `MPK_ERR_CLOSED`. Sleepers are woken. A slot claimed by a put that has
/// not finished (its process is stopped, or is a thread whose death the kernel does not report)
/// counts as not there: gets waiting at it return `MPK_ERR_CLOSED` (messages put behind it stay
/// unreachable). A put whose process died is repaired, not waited for (see `mpk_queue_stats`).
///
/// # Safety
/// `q` is NULL or a queue.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_queue_close(q: *mut mpk_queue) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        unsafe { ring(q) }?.close();
        Ok(())
    })
}

/// What a queue repaired after a process died mid-operation (see `mpk_queue_stats`).
#[repr(C)]
pub struct mpk_queue_repairs {
    /// Puts abandoned by a dead producer (claimed, never published), stepped over by a consumer:
    /// the message being put is lost, no other.
    pub dead_writers: u64,
    /// Gets abandoned by a dead consumer (claimed, not returned to its caller), whose slot a
    /// producer took back: that one message is lost.
    pub dead_readers: u64,
}

/// Writes the queue's repair counts to `*out`. A process killed between claiming a slot and
/// publishing (or freeing) it is noticed by the next process that waits for that slot, with no
/// system call: the kernel marks the claim when the process dies, and the waiter ends it. Each
/// repair also counts as one `mpk_queue_task_done`, so `mpk_queue_join` does not wait for the
/// lost message. A stopped process is alive: its claims are waited for, never repaired.
///
/// # Safety
/// `q` is NULL or a queue; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_queue_stats(q: *const mpk_queue, out: *mut mpk_queue_repairs) -> mpk_status {
    call(|| {
        non_null(out)?;
        // SAFETY: forwarded caller duty.
        let r = unsafe { ring(q) }?.repairs();
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out, mpk_queue_repairs { dead_writers: r.dead_writers, dead_readers: r.dead_readers }) }
    })
}

/// Marks one message processed (JoinableQueue). `MPK_ERR_STATE` if called more often than
/// messages were put.
///
/// # Safety
/// `q` is NULL or a queue.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_queue_task_done(q: *mut mpk_queue) -> mpk_status {
    // SAFETY: forwarded caller duty.
    call(|| Ok(unsafe { ring(q) }?.task_done()?))
}

/// Waits (at most `timeout_ms`) until every message put so far was marked done.
///
/// # Safety
/// `q` is NULL or a queue.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_queue_join(q: *mut mpk_queue, timeout_ms: i64) -> mpk_status {
    // SAFETY: forwarded caller duty.
    call(|| Ok(unsafe { ring(q) }?.join(deadline(timeout_ms)?)?))
}

/// Unmaps this process's view of a queue from `mpk_queue_create*`/`mpk_queue_open_named`.
/// NULL, and queues built in place with `mpk_queue_init`, are ignored. Destroying the same
/// handle twice is undefined behaviour, as with `free`.
///
/// # Safety
/// `q` is NULL or a queue, not used by this process afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_queue_destroy(q: *mut mpk_queue) {
    call_or((), || {
        let Some(p) = NonNull::new(q.cast::<u8>()) else { return };
        // SAFETY: `q` is valid (caller duty); `from_payload` reads only the page `q` lies in.
        drop(unsafe { Region::from_payload(p, Kind::Queue) });
    })
}

/// `len` bytes at `p` as a slice (`p` may be NULL when `len` is 0).
///
/// # Safety
/// - `p` is readable for `len` bytes for `'a`, or NULL with `len` 0.
pub(crate) unsafe fn bytes<'a>(p: *const c_void, len: usize) -> Result<&'a [u8], Fail> {
    if len == 0 {
        return Ok(&[]);
    }
    non_null(p)?;
    // SAFETY: non-NULL and readable for `len` bytes (caller duty).
    Ok(unsafe { core::slice::from_raw_parts(p.cast::<u8>(), len) })
}

/// `len` writable bytes at `p` as a slice (`p` may be NULL when `len` is 0).
///
/// # Safety
/// - `p` is writable for `len` bytes for `'a`, not aliased, or NULL with `len` 0.
pub(crate) unsafe fn bytes_mut<'a>(p: *mut c_void, len: usize) -> Result<&'a mut [u8], Fail> {
    if len == 0 {
        return Ok(&mut []);
    }
    non_null(p)?;
    // SAFETY: non-NULL, writable and unaliased for `len` bytes (caller duty).
    Ok(unsafe { core::slice::from_raw_parts_mut(p.cast::<u8>(), len) })
}

/// Writes a received length to `out_len`: the message length on success, the size needed on
/// `MsgSize` (the one case where an error writes an output, as documented), nothing otherwise.
///
/// # Safety
/// - `out_len` is non-NULL and writable.
pub(crate) unsafe fn report_len(out_len: *mut usize, got: Result<usize, Error>) -> Result<(), Fail> {
    match got {
        Ok(n) => {
            // SAFETY: caller duty.
            unsafe { out_len.write(n) };
            Ok(())
        }
        Err(Error::MsgSize { needed }) => {
            // SAFETY: caller duty.
            unsafe { out_len.write(needed) };
            Err(Error::MsgSize { needed }.into())
        }
        Err(e) => Err(e.into()),
    }
}
