//! Thread identity and the kernel's robust futex list, shared with glibc.
//!
//! # Why a robust lock joins glibc's list
//! The kernel keeps one robust-list head per thread (`set_robust_list`). When a thread dies, for
//! any reason, the kernel walks that list and, for every futex word whose owner bits hold the dying
//! thread's TID, sets `FUTEX_OWNER_DIED` and wakes one waiter. glibc registers the head of every
//! thread it creates (and of the main thread) for its own robust `pthread_mutex_t`s, so registering
//! a second head would break glibc's mutexes. Instead our lock puts a node laid out exactly like
//! glibc's `__pthread_list_t` (`prev` 24 bytes and `next` 32 bytes after the futex word, matching
//! the head's `futex_offset` of −32 on 64-bit glibc) into that same list, with the same doubly
//! linked insert/remove steps glibc uses (`ENQUEUE_MUTEX_BOTH` / `DEQUEUE_MUTEX` in nptl). glibc
//! and mpkit then each add and remove their own entries, always from the owning thread, and the
//! kernel sees one well-formed list. `prev` pointers point at the predecessor's `next` field (or the
//! head); inserting into an empty list writes the word before the head, which glibc reserves for
//! exactly that (`robust_prev` in `struct pthread`). This leans on glibc's layout: the crate refuses
//! to build for other C libraries, and `current()` checks the head's `futex_offset` at run time.
//!
//! # Soundness, including PID reuse
//! * The word holds the owner's TID, as the kernel requires. The kernel rewrites it during the
//!   owner's exit, before the TID can be reused, so a reused TID never meets a stale owner word.
//! * `list_op_pending` covers the windows in which the list and the word disagree: it is set
//!   before the lock's CAS and cleared after the node is linked; set before unlinking and cleared
//!   after the release store and wake. A death in between is handled by the kernel's pending-op
//!   rules (owner == tid: mark dead; owner == 0: wake a waiter so a wake-up is never lost).
//! * Waiters set `list_op_pending` too, so a waiter killed after being woken passes the wake on.
//! * Only the owning thread links or unlinks a node, so the list needs no synchronisation; compiler
//!   fences keep the stores in the order the kernel may observe them in when the thread is killed.
//! * Limits: lock holders must be glibc threads in the same PID namespace; a lock must stay mapped
//!   while held (the kernel stops at an unreadable node, as it does for glibc's mutexes).
//! * The kernel walks at most `ROBUST_LIST_LIMIT` (2048) entries of a dying thread's list, so a
//!   thread holding more would leave the oldest locked by a dead owner forever. With `std` each
//!   thread counts the mpkit locks it holds and a lock beyond [`MAX_HELD`] is refused (`NoMem`);
//!   glibc's robust mutexes held by the same thread share the kernel's 2048. Without `std` there
//!   is no thread-local to count in, and the limit is the caller's to keep.
//!
//! # The TID cache and fork
//! With `std` the TID and head address are cached per thread. A child of `fork` starts with the
//! parent's cache in its only thread, so a `pthread_atfork` child handler clears it. Without `std`
//! there are no thread-locals: each lock and unlock asks the kernel (two system calls).

use core::ptr;
use core::sync::atomic::{Ordering, compiler_fence};

/// `struct robust_list_head` of the kernel ABI.
#[repr(C)]
struct RobustListHead {
    list: usize,
    futex_offset: isize,
    list_op_pending: usize,
}

/// Offsets of `struct robust_list_head`'s words.
const LIST: usize = core::mem::offset_of!(RobustListHead, list);
const FUTEX_OFFSET: usize = core::mem::offset_of!(RobustListHead, futex_offset);
const PENDING: usize = core::mem::offset_of!(RobustListHead, list_op_pending);

/// Byte offset of a node's `next` field from its futex word: the head's `futex_offset` negated.
pub(crate) const NODE_NEXT_OFFSET: usize = 32;
/// Byte offset of a node's `prev` field from its futex word.
pub(crate) const NODE_PREV_OFFSET: usize = 24;
/// Bytes between a `next` field and the `prev` field before it (glibc's `QUEUE_PTR_ADJUST`).
const PREV_BEFORE_NEXT: usize = NODE_NEXT_OFFSET - NODE_PREV_OFFSET;

/// The most robust locks one thread may hold at once: the kernel's `ROBUST_LIST_LIMIT`, the
/// number of list entries it walks when the thread dies.
pub(crate) const MAX_HELD: u32 = 2048;

/// The calling thread's TID and robust-list head, as the robust lock needs them.
#[derive(Copy, Clone, Debug)]
pub(crate) struct ThreadIdentity {
    /// Kernel thread id (what the futex word holds while this thread owns a lock).
    pub(crate) tid: u32,
    /// Address of the thread's robust-list head, or 0 if it has none we can join.
    head: usize,
}

impl ThreadIdentity {
    #[cfg(feature = "std")]
    const EMPTY: ThreadIdentity = ThreadIdentity { tid: 0, head: 0 };

    /// Whether this thread may link one more lock (see [`MAX_HELD`]); always true without `std`.
    #[inline]
    pub(crate) fn may_hold_another(self) -> bool {
        #[cfg(feature = "std")]
        {
            self.head == 0 || HELD.get() < MAX_HELD
        }
        #[cfg(not(feature = "std"))]
        {
            true
        }
    }

    /// Whether the kernel will report this thread's death (it has a robust-list head we share).
    #[cfg(feature = "std")] // the queue's claimant, anonymous without `std`
    #[inline]
    pub(crate) fn reports_death(self) -> bool {
        self.head != 0
    }

    /// The identity of the calling thread.
    #[inline]
    pub(crate) fn current() -> ThreadIdentity {
        #[cfg(feature = "std")]
        {
            let cached = CACHE.get();
            if cached.tid != 0 {
                return cached;
            }
            fill_cache()
        }
        #[cfg(not(feature = "std"))]
        {
            query()
        }
    }

    /// A word of this thread's robust-list head.
    fn head_word(self, offset: usize) -> *mut usize {
        (self.head + offset) as *mut usize
    }

    /// Records `next` as the list operation in progress (`list_op_pending`).
    ///
    /// # Safety
    /// - `next` is the `next` field of a node whose futex word lies `NODE_NEXT_OFFSET` bytes
    ///   before it, in memory that stays mapped until `clear_pending`.
    /// - `self` is the identity of the calling thread.
    #[inline]
    pub(crate) unsafe fn set_pending(self, next: *mut usize) {
        if self.head != 0 {
            compiler_fence(Ordering::SeqCst);
            // SAFETY: `head` came from get_robust_list for this thread and stays valid while it lives.
            unsafe { self.head_word(PENDING).write_volatile(next as usize) };
            compiler_fence(Ordering::SeqCst);
        }
    }

    /// Clears `list_op_pending`.
    ///
    /// # Safety
    /// - `self` is the identity of the calling thread.
    #[inline]
    pub(crate) unsafe fn clear_pending(self) {
        if self.head != 0 {
            compiler_fence(Ordering::SeqCst);
            // SAFETY: as in `set_pending`.
            unsafe { self.head_word(PENDING).write_volatile(0) };
        }
    }

    /// Links a node at the front of this thread's robust list (glibc's `ENQUEUE_MUTEX_BOTH`).
    ///
    /// # Safety
    /// - The calling thread (`self`) has just acquired the lock that owns `next`.
    /// - `next` is the `next` field of that lock's node, not currently linked anywhere.
    #[inline]
    pub(crate) unsafe fn enqueue(self, next: *mut usize) {
        if self.head == 0 {
            return;
        }
        let head = self.head_word(LIST);
        // SAFETY: only this thread links or unlinks entries of its own list, and every address
        // below is a live link field: the head's `list`, a `{prev, next}` pair of ours or glibc's,
        // or glibc's `robust_prev` word before the head. One splice, one invariant.
        #[allow(clippy::multiple_unsafe_ops_per_block)]
        unsafe {
            let first = head.read_volatile();
            (((first & !1) - PREV_BEFORE_NEXT) as *mut usize).write_volatile(next as usize);
            next.write_volatile(first);
            next.byte_sub(PREV_BEFORE_NEXT).write_volatile(head as usize);
            compiler_fence(Ordering::SeqCst);
            head.write_volatile(next as usize);
            compiler_fence(Ordering::SeqCst);
        }
        #[cfg(feature = "std")]
        HELD.set(HELD.get() + 1);
    }

    /// Unlinks a node from this thread's robust list (glibc's `DEQUEUE_MUTEX`).
    ///
    /// # Safety
    /// - The calling thread (`self`) owns the lock and linked its node with `enqueue`.
    #[inline]
    pub(crate) unsafe fn dequeue(self, next: *mut usize) {
        if self.head == 0 {
            return;
        }
        // SAFETY: the node is linked in this thread's list (caller duty), so its neighbours are
        // live entries of the same list, touched only by this thread. One splice, one invariant.
        #[allow(clippy::multiple_unsafe_ops_per_block)]
        unsafe {
            let prev = next.byte_sub(PREV_BEFORE_NEXT);
            let after = next.read_volatile();
            let before = prev.read_volatile();
            (((after & !1) - PREV_BEFORE_NEXT) as *mut usize).write_volatile(before);
            ((before & !1) as *mut usize).write_volatile(after);
            compiler_fence(Ordering::SeqCst);
            prev.write_volatile(0);
            next.write_volatile(0);
        }
        #[cfg(feature = "std")]
        HELD.set(HELD.get() - 1);
    }
}

/// Whether `tid` is a live thread of the calling process.
#[cfg(feature = "std")]
pub(crate) fn is_own_thread(tid: u32) -> bool {
    let Ok(tid) = i32::try_from(tid) else { return false };
    thread_lives(rustix::process::getpid().as_raw_nonzero().get(), tid)
}

/// Whether thread `tid` of process `pid` exists (`tgkill(pid, tid, 0)`).
#[cfg(feature = "std")]
pub(crate) fn thread_lives(pid: i32, tid: i32) -> bool {
    // SAFETY: signal 0 only checks that the thread exists in that thread group; nothing is sent.
    unsafe { libc::syscall(libc::SYS_tgkill, pid as libc::c_long, tid as libc::c_long, 0 as libc::c_long) == 0 }
}

/// Asks the kernel for the TID and robust-list head of the calling thread.
fn query() -> ThreadIdentity {
    let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
    let mut head: *mut RobustListHead = ptr::null_mut();
    let mut len: libc::size_t = 0;
    // SAFETY: get_robust_list(0, ..) writes the calling thread's head pointer and length into the
    // two out-parameters, which are valid for writes.
    let rc = unsafe { libc::syscall(libc::SYS_get_robust_list, 0 as libc::c_long, &mut head, &mut len) };
    let usable = rc == 0
        && !head.is_null()
        && len == core::mem::size_of::<RobustListHead>()
        // SAFETY: the kernel returned this thread's registered head, which glibc keeps alive for
        // the thread's lifetime.
        && unsafe { ((head as usize + FUTEX_OFFSET) as *const isize).read_volatile() } == -(NODE_NEXT_OFFSET as isize);
    // Without a usable head (a thread glibc did not create) the lock still works, but the kernel
    // cannot report this thread's death to other lockers.
    ThreadIdentity { tid, head: if usable { head as usize } else { 0 } }
}

#[cfg(feature = "std")]
std::thread_local! {
    static CACHE: core::cell::Cell<ThreadIdentity> = const { core::cell::Cell::new(ThreadIdentity::EMPTY) };
    /// Locks this thread has linked into its robust list and not yet unlinked.
    static HELD: core::cell::Cell<u32> = const { core::cell::Cell::new(0) };
}

#[cfg(feature = "std")]
#[cold]
fn fill_cache() -> ThreadIdentity {
    static ATFORK: std::sync::Once = std::sync::Once::new();
    extern "C" fn clear_in_child() {
        // The child's only thread is the one that forked: its cached TID is the parent's, and
        // glibc gave it a fresh, empty robust list.
        CACHE.set(ThreadIdentity::EMPTY);
        HELD.set(0);
    }
    ATFORK.call_once(|| {
        // SAFETY: registers a handler that only writes a const-initialised thread-local Cell.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(clear_in_child)) };
        assert_eq!(rc, 0, "pthread_atfork failed");
    });
    let id = query();
    CACHE.set(id);
    id
}
