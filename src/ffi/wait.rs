//! `mpk_wait`: one wait over many objects of mixed kinds (see `crate::wait`).

use core::ffi::c_void;

use super::event::raw as event;
use super::pipe::conn;
use super::pool::{handle, mpk_iter};
use super::process::process;
use super::queue::{mpk_queue, ring};
use super::{Fail, MPK_ERR_INVAL, MPK_ERR_NULL, call, deadline, mpk_status};
use crate::lock::RawEvent;
use crate::pipe::Conn;
use crate::process::Process;
use crate::queue::QueueRef;
use crate::sync::Arm;
use crate::wait::{Arming, Waitable, arm_event, wait_until};

use super::pool::mpk_async;

/// The kind of object an `mpk_waitable` names: one of the `MPK_WAIT_*` values.
pub type mpk_wait_kind = i32;
/// An `mpk_conn *`: ready when a message (or the start of one) is there, or at end-of-file.
pub const MPK_WAIT_CONN: mpk_wait_kind = 0;
/// An `mpk_queue *`: ready when a message is there, or the queue is closed.
pub const MPK_WAIT_QUEUE: mpk_wait_kind = 1;
/// An `mpk_event *`: ready when the event is set.
pub const MPK_WAIT_EVENT: mpk_wait_kind = 2;
/// An `mpk_process *`: ready when the process has exited (Python's `sentinel`).
pub const MPK_WAIT_PROCESS: mpk_wait_kind = 3;
/// An `mpk_async *`: ready when `mpk_async_get` would not block.
pub const MPK_WAIT_ASYNC: mpk_wait_kind = 4;
/// An `mpk_iter *`: ready when `mpk_iter_next` would not block (a result, or exhausted).
pub const MPK_WAIT_ITER: mpk_wait_kind = 5;

/// One object for `mpk_wait`: its kind, the handle, and `ready`, written by `mpk_wait`.
#[repr(C)]
pub struct mpk_waitable {
    /// `MPK_WAIT_*`.
    pub kind: mpk_wait_kind,
    /// The handle, of the type `kind` names.
    pub object: *mut c_void,
    /// Set by `mpk_wait` on return: whether this object is ready.
    pub ready: bool,
}

/// An object named by a C `mpk_waitable`.
enum Item<'a> {
    Conn(&'a mut Conn),
    Queue(QueueRef<'a>),
    Process(&'a Process),
    Event(&'a RawEvent),
    Async(&'a mut mpk_async),
    Iter(&'a mut mpk_iter),
}

impl Arming for Item<'_> {
    fn arm(&mut self, thorough: bool) -> Arm<'_> {
        match self {
            Item::Conn(c) => c.arm_readable(thorough),
            Item::Queue(q) => q.arm_get(),
            Item::Process(p) => p.arm_exited(thorough),
            Item::Event(e) => arm_event(e),
            Item::Async(a) => a.arm(thorough),
            Item::Iter(i) => i.arm(thorough),
        }
    }
}

/// The object `it` names.
///
/// # Safety
/// - `it.object` is NULL or a live handle of the kind `it.kind` names, used by nobody else for `'a`.
unsafe fn item<'a>(it: &mpk_waitable) -> Result<Item<'a>, Fail> {
    let o = it.object;
    if o.is_null() {
        return Err(Fail(MPK_ERR_NULL));
    }
    Ok(match it.kind {
        // SAFETY: forwarded caller duty (this and the arms below).
        MPK_WAIT_CONN => Item::Conn(unsafe { conn(o.cast()) }?),
        // SAFETY: as above; `ring` also checks that it is a queue.
        MPK_WAIT_QUEUE => Item::Queue(unsafe { ring(o.cast::<mpk_queue>()) }?),
        // SAFETY: as above; `raw` also checks that it is an event.
        MPK_WAIT_EVENT => Item::Event(unsafe { event(o.cast()) }?),
        // SAFETY: as above.
        MPK_WAIT_PROCESS => Item::Process(unsafe { process(o.cast()) }?),
        // SAFETY: as above.
        MPK_WAIT_ASYNC => Item::Async(unsafe { handle(o.cast()) }?),
        // SAFETY: as above (non-NULL).
        MPK_WAIT_ITER => Item::Iter(unsafe { &mut *o.cast::<mpk_iter>() }),
        _ => return Err(Fail(MPK_ERR_INVAL)),
    })
}

/// Waits at most `timeout_ms` until at least one of the `n` objects is ready (Python's
/// `multiprocessing.connection.wait`); sets each item's `ready` and `*out_ready` (may be NULL) to
/// how many are. Each object may appear once. `MPK_ERR_TIMEOUT` if none became ready in time;
/// `MPK_ERR_INVAL` for `n` = 0, an unknown kind or an object named twice; `MPK_ERR_NULL` for a NULL
/// `items` or object; `MPK_ERR_BAD_OBJECT` for a queue that is not one.
///
/// It sleeps in the kernel on every object's futex word at once (`futex_waitv`, Linux 5.16; on
/// older kernels it re-checks every millisecond), so a wake-up costs what one futex wake-up
/// costs. A pipe peer that died without closing is noticed within 10 ms (its socket is looked at on a tick).
/// Process items: only processes started by `mpk_process_start` (their exit is a futex wake-up).
///
/// # Safety
/// - `items` is NULL or points to `n` writable `mpk_waitable`s, each naming a live handle of
///   its kind (conn, async and iter handles not used by another thread during the call).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_wait(
    items: *mut mpk_waitable,
    n: usize,
    timeout_ms: i64,
    out_ready: *mut usize,
) -> mpk_status {
    call(|| {
        if items.is_null() {
            return Err(Fail(MPK_ERR_NULL));
        }
        if n == 0 {
            return Err(Fail(MPK_ERR_INVAL));
        }
        // SAFETY: non-NULL, `n` writable items by the caller's contract.
        let items = unsafe { core::slice::from_raw_parts_mut(items, n) };
        let mut objects: Vec<*mut c_void> = items.iter().map(|i| i.object).collect();
        objects.sort_unstable();
        if objects.windows(2).any(|w| w[0] == w[1]) {
            return Err(Fail(MPK_ERR_INVAL)); // two `&mut` to one handle
        }
        let until = deadline(timeout_ms)?;
        let mut list = Vec::with_capacity(n);
        for it in items.iter() {
            // SAFETY: a live handle of the kind named, by the caller's contract; each object is
            // named once (checked above), so the `&mut`s made from them do not alias.
            list.push(unsafe { item(it) }?);
        }
        let mut refs: Vec<&mut dyn Waitable> = list.iter_mut().map(|i| i as &mut dyn Waitable).collect();
        let mut ready = vec![false; n];
        let result = wait_until(&mut refs, &mut ready, until);
        drop(refs);
        drop(list);
        let count = result?;
        for (it, r) in items.iter_mut().zip(ready) {
            it.ready = r;
        }
        if !out_ready.is_null() {
            // SAFETY: non-NULL, writable by the caller's contract.
            unsafe { out_ready.write(count) };
        }
        Ok(())
    })
}
