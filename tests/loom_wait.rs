//! loom model of `mpkit::wait` over two queues: the waiter arms both (each sets its queue's
//! sleepers bit as a blocking `get` would) and sleeps on both words in one `futex_waitv`; a put
//! on either, or a close, must wake it, and exactly the queue made ready is reported.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --test loom_wait`.
//! Mutation check (.ci/loom): `MPK_MUTANT=wait_first_word_only` (sleep on the first armed word
//! only) must deadlock `a_put_on_the_second_queue_wakes_the_waiter`.
#![cfg(loom)]

use std::ptr::NonNull;

use loom::thread;
use mpkit::{Deadline, QueueRef, Waitable, wait_until};

fn ring(capacity: usize) -> QueueRef<'static> {
    let size = QueueRef::size_for(capacity, 8).unwrap();
    let mem: &'static mut [u64] = Vec::leak(vec![0u64; size.div_ceil(8)]);
    let base = NonNull::new(mem.as_mut_ptr().cast::<u8>()).unwrap();
    // SAFETY: fresh, 8-aligned, large enough, never freed while the model runs.
    unsafe { QueueRef::init(base, size, capacity, 8) }.unwrap()
}

#[test]
fn a_put_on_the_second_queue_wakes_the_waiter() {
    loom::model(|| {
        let (mut a, mut b) = (ring(1), ring(1));
        let producer = thread::spawn(move || b.put(&7u64.to_le_bytes(), Deadline::FOREVER).unwrap());
        let mut ready = [false; 2];
        let items: &mut [&mut dyn Waitable] = &mut [&mut a, &mut b];
        assert_eq!(wait_until(items, &mut ready, Deadline::FOREVER), Ok(1));
        assert_eq!(ready, [false, true]);
        let mut buf = [0u8; 8];
        assert_eq!(b.try_get(&mut buf), Ok(8));
        assert_eq!(u64::from_le_bytes(buf), 7);
        producer.join().unwrap();
    });
}

#[test]
fn a_close_wakes_the_waiter() {
    loom::model(|| {
        let (mut a, mut b) = (ring(1), ring(1));
        let closer = thread::spawn(move || b.close());
        let mut ready = [false; 2];
        let items: &mut [&mut dyn Waitable] = &mut [&mut a, &mut b];
        assert_eq!(wait_until(items, &mut ready, Deadline::FOREVER), Ok(1));
        assert_eq!(ready, [false, true]);
        closer.join().unwrap();
    });
}
