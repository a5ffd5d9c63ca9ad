//! The MPMC queue within one process: semantics of every call (put/get, try and timeout forms,
//! batches, MsgSize, close, len, task_done/join), in place and owned, plus thread stress.
#![allow(clippy::multiple_unsafe_ops_per_block)] // tests group C-style calls

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mpkit::{ByteQueue, Deadline, Error, Queue, QueueRef};

#[test]
fn smoke_fifo() {
    let q = ByteQueue::new(4, 16).unwrap();
    assert_eq!(q.capacity(), 4);
    assert_eq!(q.max_msg(), 16);
    assert!(q.is_empty());
    for m in [&b"a"[..], b"bc", b"", b"0123456789abcdef"] {
        q.put(m).unwrap();
    }
    assert_eq!(q.len(), 4);
    assert_eq!(q.try_put(b"x"), Err(Error::Timeout), "full");
    let mut buf = [0u8; 16];
    for m in [&b"a"[..], b"bc", b"", b"0123456789abcdef"] {
        let n = q.get(&mut buf).unwrap();
        assert_eq!(&buf[..n], m);
    }
    assert_eq!(q.try_get(&mut buf), Err(Error::Timeout), "empty");
}

#[test]
fn sizes_are_checked() {
    assert_eq!(ByteQueue::new(0, 8).unwrap_err(), Error::Inval);
    assert_eq!(ByteQueue::new(8, 0).unwrap_err(), Error::Inval);
    assert_eq!(ByteQueue::new(usize::MAX, 8).unwrap_err(), Error::Inval);
    assert_eq!(ByteQueue::new(8, usize::MAX).unwrap_err(), Error::Inval);
    assert_eq!(ByteQueue::new(8, mpkit::queue::MAX_MSG + 1).unwrap_err(), Error::Inval);
    assert_eq!(ByteQueue::new(1 << 30, mpkit::queue::MAX_MSG).unwrap_err(), Error::NoMem, "256 PiB does not map");
    assert_eq!(QueueRef::size_for(0, 1), None);
    let q = ByteQueue::new(2, 4).unwrap();
    assert_eq!(q.put(b"12345"), Err(Error::MsgSize { needed: 4 }));
}

#[test]
fn small_receive_buffer_keeps_the_message() {
    let q = ByteQueue::new(2, 32).unwrap();
    q.put(b"hello world").unwrap();
    let mut small = [0u8; 4];
    assert_eq!(q.get(&mut small), Err(Error::MsgSize { needed: 11 }));
    assert_eq!(q.try_get(&mut small), Err(Error::MsgSize { needed: 11 }));
    assert_eq!(q.len(), 1);
    let mut big = [0u8; 32];
    assert_eq!(q.get(&mut big), Ok(11));
    assert_eq!(&big[..11], b"hello world");
}

#[test]
fn wrap_around_many_laps() {
    let q = Queue::<u64>::new(3).unwrap();
    for i in 0..1000u64 {
        q.put(i).unwrap();
        if i % 2 == 1 {
            assert_eq!(q.get().unwrap(), i - 1);
            assert_eq!(q.get().unwrap(), i);
        }
    }
    assert!(q.is_empty());
}

#[test]
fn timeouts_wait_then_give_up() {
    let q = Queue::<u32>::new(1).unwrap();
    let t0 = Instant::now();
    assert_eq!(q.get_timeout(Duration::from_millis(50)), Err(Error::Timeout));
    assert!(t0.elapsed() >= Duration::from_millis(50));
    q.put(1).unwrap();
    let t0 = Instant::now();
    assert_eq!(q.put_timeout(2, Duration::from_millis(50)), Err(Error::Timeout));
    assert!(t0.elapsed() >= Duration::from_millis(50));
    assert_eq!(q.try_put(3), Ok(false));
    assert_eq!(q.try_get(), Ok(Some(1)));
    assert_eq!(q.try_get(), Ok(None));
}

#[test]
fn close_fails_puts_and_drains_gets() {
    let q = Queue::<u32>::new(4).unwrap();
    q.put(1).unwrap();
    q.put(2).unwrap();
    q.close();
    assert!(q.as_bytes().as_ref().is_closed());
    assert_eq!(q.put(3), Err(Error::Closed));
    assert_eq!(q.get(), Ok(1));
    assert_eq!(q.get(), Ok(2));
    assert_eq!(q.get(), Err(Error::Closed));
    assert_eq!(q.try_get(), Err(Error::Closed));
}

#[test]
fn close_wakes_sleepers_on_both_sides() {
    let empty = Queue::<u32>::new(1).unwrap();
    let full = Queue::<u32>::new(1).unwrap();
    full.put(0).unwrap();
    std::thread::scope(|s| {
        let a = s.spawn(|| empty.get());
        let b = s.spawn(|| full.put(1));
        std::thread::sleep(Duration::from_millis(50));
        empty.close();
        full.close();
        assert_eq!(a.join().unwrap(), Err(Error::Closed));
        assert_eq!(b.join().unwrap(), Err(Error::Closed));
    });
}

#[test]
fn batches_claim_many_at_once() {
    let q = Queue::<u16>::new(8).unwrap();
    assert_eq!(q.put_many(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]).unwrap(), 8, "only 8 fit");
    let mut out = [0u16; 5];
    assert_eq!(q.get_many(&mut out).unwrap(), 5);
    assert_eq!(out, [1, 2, 3, 4, 5]);
    // 3 left at the end of the lap, then room at the start of the next one.
    assert_eq!(q.put_many(&[11, 12, 13, 14, 15]).unwrap(), 5);
    let mut all = [0u16; 16];
    let mut got = Vec::new();
    while !q.is_empty() {
        let n = q.get_many(&mut all).unwrap();
        got.extend_from_slice(&all[..n]);
    }
    assert_eq!(got, [6, 7, 8, 11, 12, 13, 14, 15]);
    let bq = ByteQueue::new(4, 8).unwrap();
    bq.put(b"longer").unwrap();
    let r = bq.as_ref().try_get_many(4, 2, |_, _| panic!("nothing fits"));
    assert_eq!(r, Err(Error::MsgSize { needed: 6 }));
}

#[test]
fn task_done_and_join() {
    let q = Queue::<u32>::new(8).unwrap();
    assert_eq!(q.task_done(), Err(Error::State), "nothing was put");
    q.join().unwrap();
    q.put(1).unwrap();
    q.put(2).unwrap();
    assert_eq!(q.as_bytes().join_timeout(Duration::from_millis(20)), Err(Error::Timeout));
    std::thread::scope(|s| {
        let j = s.spawn(|| q.join());
        std::thread::sleep(Duration::from_millis(20));
        q.get().unwrap();
        q.task_done().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert!(!j.is_finished(), "one task is still open");
        q.get().unwrap();
        q.task_done().unwrap();
        assert_eq!(j.join().unwrap(), Ok(()));
    });
    assert_eq!(q.task_done(), Err(Error::State), "called too many times");
}

#[test]
fn in_place_over_caller_memory() {
    let size = QueueRef::size_for(16, 24).unwrap();
    let mut mem = vec![0u64; size.div_ceil(8)];
    let base = NonNull::new(mem.as_mut_ptr().cast::<u8>()).unwrap();
    // SAFETY: `mem` is 8-aligned, large enough, and used only through this queue.
    let q = unsafe { QueueRef::init(base, size, 16, 24) }.unwrap();
    // SAFETY: as above; too little memory and misalignment are refused.
    unsafe {
        assert_eq!(QueueRef::init(base, size - 1, 16, 24).err(), Some(Error::Inval));
        assert_eq!(QueueRef::init(base.add(4), size - 8, 1, 8).err(), Some(Error::Inval));
    }
    q.put(b"in place", Deadline::FOREVER).unwrap();
    // SAFETY: the same memory, still holding the ring.
    let again = unsafe { QueueRef::from_raw(base) }.unwrap();
    let mut buf = [0u8; 24];
    assert_eq!(again.get(&mut buf, Deadline::NOW), Ok(8));
    let mut junk = [0x55u8; 64];
    // SAFETY: readable memory that holds no ring.
    assert_eq!(unsafe { QueueRef::from_raw(NonNull::new(junk.as_mut_ptr()).unwrap()) }.err(), Some(Error::BadObject));
}

/// Threads: 4 producers, 3 consumers, blocking and non-blocking calls mixed; every message
/// arrives exactly once (count and sum).
#[test]
fn threads_mpmc_exactly_once() {
    const PER: u64 = if cfg!(miri) { 100 } else { 50_000 };
    let q = Queue::<u64>::new(64).unwrap();
    let sum = AtomicU64::new(0);
    let count = AtomicU64::new(0);
    std::thread::scope(|s| {
        for p in 0..4u64 {
            let q = &q;
            s.spawn(move || {
                for i in 0..PER {
                    let v = p * PER + i + 1;
                    if i % 3 == 0 {
                        while !q.try_put(v).unwrap() {
                            std::thread::yield_now();
                        }
                    } else {
                        q.put(v).unwrap();
                    }
                }
            });
        }
        for c in 0..3 {
            let (q, sum, count) = (&q, &sum, &count);
            s.spawn(move || {
                let mut batch = [0u64; 7];
                loop {
                    let got = if c == 0 {
                        match q.get() {
                            Ok(v) => vec![v],
                            Err(Error::Closed) => break,
                            Err(e) => panic!("{e}"),
                        }
                    } else {
                        match q.get_many(&mut batch) {
                            Ok(n) => batch[..n].to_vec(),
                            Err(Error::Closed) => break,
                            Err(e) => panic!("{e}"),
                        }
                    };
                    for v in got {
                        sum.fetch_add(v, Ordering::Relaxed);
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        s.spawn(|| {
            while count.load(Ordering::Relaxed) < 4 * PER {
                std::thread::sleep(Duration::from_millis(1));
            }
            q.close();
        });
    });
    let n = 4 * PER;
    assert_eq!(count.load(Ordering::Relaxed), n);
    assert_eq!(sum.load(Ordering::Relaxed), n * (n + 1) / 2);
}

/// Resident pages of this process, in bytes (`/proc/self/statm`, second field).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Issue 14.6: a queue of 2^30 slots (24 GiB of ring) is created at once and costs nothing until
/// used: creating it must not touch every slot (it used to run until the machine ran out of
/// memory). Through both the C ABI and the Rust API.
#[test]
fn huge_queue_is_created_lazily() {
    use mpkit::ffi::{
        MPK_OK, mpk_queue, mpk_queue_capacity, mpk_queue_create, mpk_queue_destroy, mpk_queue_get, mpk_queue_put,
    };
    const SLOTS: usize = 1 << 30;
    let before = rss_bytes();
    let t0 = Instant::now();
    let mut q: *mut mpk_queue = std::ptr::null_mut();
    // SAFETY: `q` is writable.
    assert_eq!(unsafe { mpk_queue_create(SLOTS, 16, &mut q) }, MPK_OK);
    let took = t0.elapsed();
    // The bug is "does not answer in time" (it ran for minutes): a generous bound.
    assert!(took < Duration::from_secs(3), "creating 2^30 slots took {took:?}");
    let grown = rss_bytes().saturating_sub(before);
    assert!(grown < 64 << 20, "creating the queue made {} MiB resident", grown >> 20);
    // SAFETY: `q` is a live queue; the buffers have the stated sizes.
    unsafe {
        assert_eq!(mpk_queue_capacity(q), SLOTS);
        for i in 0..1000u64 {
            assert_eq!(mpk_queue_put(q, i.to_le_bytes().as_ptr().cast(), 8, 0), MPK_OK);
        }
        let mut buf = [0u8; 16];
        let mut len = 0;
        for i in 0..1000u64 {
            assert_eq!(mpk_queue_get(q, buf.as_mut_ptr().cast(), 16, &mut len, 0), MPK_OK);
            assert_eq!((len, u64::from_le_bytes(buf[..8].try_into().unwrap())), (8, i));
        }
        mpk_queue_destroy(q);
    }

    let t0 = Instant::now();
    let q = ByteQueue::new(SLOTS, 16).unwrap();
    assert!(t0.elapsed() < Duration::from_secs(3), "ByteQueue::new took {:?}", t0.elapsed());
    q.put(b"far from full").unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(q.get(&mut buf), Ok(13));
    assert_eq!(q.len(), 0);
    let grown = rss_bytes().saturating_sub(before);
    assert!(grown < 64 << 20, "two huge queues made {} MiB resident", grown >> 20);
}

/// Issue 14.6: an absurd size (2^30 slots of 16 KiB: 16 TiB of ring) is refused with NoMem or
/// created without touching memory, at once.
#[test]
fn absurd_queue_size_is_refused_or_lazy() {
    use mpkit::ffi::{
        MPK_ERR_NOMEM, MPK_OK, mpk_queue, mpk_queue_create, mpk_queue_destroy, mpk_queue_get, mpk_queue_put,
        mpk_queue_size,
    };
    const SLOTS: usize = 1 << 30;
    const MSG: usize = (1 << 14) - 8; // a 16 KiB stride
    assert_eq!(mpk_queue_size(SLOTS, MSG), (SLOTS << 14) + 448, "16 TiB of ring");
    let before = rss_bytes();
    let t0 = Instant::now();
    let mut q: *mut mpk_queue = std::ptr::null_mut();
    // SAFETY: `q` is writable.
    let st = unsafe { mpk_queue_create(SLOTS, MSG, &mut q) };
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(3), "creating a 16 TiB queue took {took:?}");
    assert!(st == MPK_OK || st == MPK_ERR_NOMEM, "status {st}");
    if st == MPK_OK {
        let msg = vec![7u8; MSG];
        let mut buf = vec![0u8; MSG];
        let mut len = 0;
        // SAFETY: `q` is a live queue; the buffers have the stated sizes.
        unsafe {
            assert_eq!(mpk_queue_put(q, msg.as_ptr().cast(), MSG, 0), MPK_OK);
            assert_eq!(mpk_queue_get(q, buf.as_mut_ptr().cast(), MSG, &mut len, 0), MPK_OK);
            mpk_queue_destroy(q);
        }
        assert_eq!((len, &buf), (MSG, &msg));
    }
    // The largest sizes the queue accepts: 2^30 slots of 2^28 bytes, 256 PiB, beyond any
    // address space: NoMem at once.
    let t0 = Instant::now();
    // SAFETY: `q` is writable.
    let st = unsafe { mpk_queue_create(SLOTS, 1 << 28, &mut q) };
    assert_eq!(st, MPK_ERR_NOMEM, "a 256 PiB queue");
    assert!(t0.elapsed() < Duration::from_secs(3), "refusing a 256 PiB queue took {:?}", t0.elapsed());
    let grown = rss_bytes().saturating_sub(before);
    assert!(grown < 64 << 20, "the absurd queues made {} MiB resident", grown >> 20);
}
