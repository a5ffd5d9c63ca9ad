//! The fast paths cost what they promise: no heap allocation per message on put/get/send/recv
//! (a global allocator that counts per thread), and no futex system call while nobody has to
//! wait (mpkit's own process-wide counter of FUTEX_WAIT/FUTEX_WAKE calls; the tests here take
//! turns so that none sees another's calls, whatever the test runner).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Mutex;
use std::time::Duration;

use mpkit::sync::futex_calls;
use mpkit::{ByteQueue, Queue, RawMutex, pipe};

struct Counting;

std::thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

/// Serialises the tests of this file (see the module docs).
static TURN: Mutex<()> = Mutex::new(());

// SAFETY: forwards to the system allocator, counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.set(ALLOCATIONS.get() + 1);
        // SAFETY: forwarded caller duty.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded caller duty.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.set(ALLOCATIONS.get() + 1);
        // SAFETY: forwarded caller duty.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns the allocations it made on this thread and the futex calls it made.
fn cost(f: impl FnOnce()) -> (usize, (u64, u64)) {
    let (a0, (w0, k0)) = (ALLOCATIONS.get(), futex_calls());
    f();
    let (a1, (w1, k1)) = (ALLOCATIONS.get(), futex_calls());
    (a1 - a0, (w1 - w0, k1 - k0))
}

fn my_turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn queue_messages_allocate_nothing_and_make_no_syscall() {
    let _turn = my_turn();
    let q = ByteQueue::new(16, 64).unwrap();
    let typed = Queue::<u64>::new(16).unwrap();
    let mut buf = [0u8; 64];
    let mut many = [0u64; 8];
    let (allocs, futex) = cost(|| {
        for i in 0..10_000u64 {
            q.put(&i.to_le_bytes()).unwrap();
            q.try_put(&[1u8; 64]).unwrap();
            assert_eq!(q.get(&mut buf).unwrap(), 8);
            assert_eq!(q.try_get(&mut buf).unwrap(), 64);
            typed.put(i).unwrap();
            assert_eq!(typed.get().unwrap(), i);
            assert_eq!(typed.put_many(&[1, 2, 3]).unwrap(), 3);
            assert_eq!(typed.get_many(&mut many).unwrap(), 3);
        }
    });
    assert_eq!(allocs, 0, "allocations on the message path");
    assert_eq!(futex, (0, 0), "futex calls while nobody waits");
}

#[test]
fn pipe_messages_allocate_nothing_and_make_no_syscall() {
    let _turn = my_turn();
    let (mut a, mut b) = pipe(true).unwrap();
    let big = vec![7u8; 3 * 1024 * 1024]; // larger than the ring: streams, needs a reader
    let mut buf = vec![0u8; big.len()];
    let (allocs, futex) = cost(|| {
        for i in 0..10_000u64 {
            a.send(&i.to_le_bytes()).unwrap();
            assert_eq!(b.recv(&mut buf).unwrap(), 8);
            b.send(&[9u8; 100]).unwrap();
            assert_eq!(a.recv(&mut buf).unwrap(), 100);
        }
    });
    assert_eq!(allocs, 0, "allocations on the message path");
    assert_eq!(futex, (0, 0), "futex calls while nobody waits");
    // Streaming a message larger than the ring needs both ends at once; still no allocation on
    // either side.
    std::thread::scope(|s| {
        let sender = s.spawn(|| cost(|| a.send(&big).unwrap()).0);
        let (received, _) = cost(|| assert_eq!(b.recv(&mut buf).unwrap(), big.len()));
        assert_eq!((sender.join().unwrap(), received), (0, 0), "allocations streaming 3 MiB in pieces");
    });
}

#[test]
fn uncontended_lock_makes_no_syscall() {
    let _turn = my_turn();
    let m = RawMutex::new();
    let (allocs, futex) = cost(|| {
        for _ in 0..100_000 {
            drop(m.lock().unwrap());
        }
    });
    assert_eq!((allocs, futex), (0, (0, 0)));
}

#[test]
fn the_counter_does_see_real_waits() {
    let _turn = my_turn();
    let q = Queue::<u32>::new(1).unwrap();
    let (_, (waits, wakes)) = cost(|| {
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(50));
                q.put(1).unwrap();
            });
            assert_eq!(q.get().unwrap(), 1);
        })
    });
    assert!(waits >= 1 && wakes >= 1, "a consumer that had to sleep: {waits} waits, {wakes} wakes");
}
