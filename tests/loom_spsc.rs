//! loom model of the SPSC byte ring under pipes: frames written and read through a 64-byte ring
//! (so it fills and wraps), with both ends sleeping when they must; every frame arrives intact
//! and in order, and no sleeper is forgotten (a missed wake-up is a loom deadlock); a reader may
//! look ahead at published frames before consuming them; and a reader that never waits sees the
//! data sent before end-of-file, then `Closed`.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --test loom_spsc`.
//! Mutation checks (.ci/loom): `MPK_MUTANT=spsc_no_wake` must deadlock it;
//! `spsc_relaxed_publish` must report a causality violation (here and in the look-ahead model);
//! `spsc_eof_before_data` must make the no-wait reader miss the last frame.
#![cfg(loom)]

use std::ptr::NonNull;

use loom::thread;
use mpkit::Deadline;
use mpkit::queue::spsc::{MIN_CAPACITY, RingRef, UNIT, Want};

fn ring() -> RingRef<'static> {
    let cap = RingRef::capacity_for(MIN_CAPACITY).unwrap();
    let size = RingRef::size_for(cap);
    let mem: &'static mut [u64] = Vec::leak(vec![0u64; size.div_ceil(8)]);
    // SAFETY: fresh, 8-aligned, `size_for(cap)` bytes, never freed while the model runs.
    unsafe { RingRef::init(NonNull::new(mem.as_mut_ptr().cast()).unwrap(), cap) }
}

const FRAMES: u64 = 5; // 5 x 16 bytes through 64: the ring fills and wraps
const PAYLOAD: usize = 8;

#[test]
fn frames_through_a_small_ring() {
    loom::model(|| {
        let r = ring();
        let writer = thread::spawn(move || {
            let mut head_hint = 0;
            for i in 0..FRAMES {
                let whole = UNIT + PAYLOAD;
                while r.free(&mut head_hint, whole) < whole {
                    r.wait(Want::Space, whole, Deadline::FOREVER, true, None, &mut || true).unwrap();
                }
                r.write_frame(Some(i), &(i * 1000).to_le_bytes());
            }
        });
        let mut tail_hint = 0;
        for i in 0..FRAMES {
            let whole = UNIT + PAYLOAD;
            while r.available(&mut tail_hint, whole) < whole {
                r.wait(Want::Data, whole, Deadline::FOREVER, true, None, &mut || true).unwrap();
            }
            assert_eq!(r.peek_unit(0), i, "frames in order");
            let mut payload = [0u8; PAYLOAD];
            r.read_frame(UNIT, &mut payload);
            assert_eq!(u64::from_le_bytes(payload), i * 1000, "payload intact");
        }
        writer.join().unwrap();
    });
}

/// The reader looks ahead before consuming (as a pipe does to skip a message its sender
/// aborted): once two frames are available, the second one's header can be peeked at its offset
/// and both consumed in one step, while the writer goes on filling the ring behind them.
#[test]
fn look_ahead_then_consume_two_frames() {
    loom::model(|| {
        let r = ring();
        let writer = thread::spawn(move || {
            let mut head_hint = 0;
            for i in 0..3u64 {
                let whole = UNIT + PAYLOAD;
                while r.free(&mut head_hint, whole) < whole {
                    r.wait(Want::Space, whole, Deadline::FOREVER, true, None, &mut || true).unwrap();
                }
                r.write_frame(Some(i), &(i * 1000).to_le_bytes());
            }
        });
        let (mut tail_hint, two) = (0, 2 * (UNIT + PAYLOAD));
        while r.available(&mut tail_hint, two) < two {
            r.wait(Want::Data, two, Deadline::FOREVER, true, None, &mut || true).unwrap();
        }
        assert_eq!((r.peek_unit(0), r.peek_unit(UNIT + PAYLOAD)), (0, 1), "both headers, in order");
        r.read_frame(two, &mut []);
        let whole = UNIT + PAYLOAD;
        while r.available(&mut tail_hint, whole) < whole {
            r.wait(Want::Data, whole, Deadline::FOREVER, true, None, &mut || true).unwrap();
        }
        assert_eq!(r.peek_unit(0), 2);
        let mut payload = [0u8; PAYLOAD];
        r.read_frame(UNIT, &mut payload);
        assert_eq!(u64::from_le_bytes(payload), 2000, "payload intact");
        writer.join().unwrap();
    });
}

/// A reader that never waits (`Deadline::NOW`) sees the writer's last frame, then `Closed`:
/// end-of-file is an answer without waiting, and never comes before the data sent ahead of it.
#[test]
fn nowait_reader_sees_the_data_then_closed() {
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicBool, Ordering};
    loom::model(|| {
        let r = ring();
        let gone = Arc::new(AtomicBool::new(false));
        let writer = {
            let gone = gone.clone();
            thread::spawn(move || {
                r.write_frame(Some(7), &7000u64.to_le_bytes());
                // Release pairs with the reader's Acquire in `alive` (the kernel's order for a
                // closed socket).
                gone.store(true, Ordering::Release);
            })
        };
        let (mut tail_hint, whole) = (0, UNIT + PAYLOAD);
        let mut alive = || !gone.load(Ordering::Acquire);
        let mut got = None;
        loop {
            match r.wait(Want::Data, whole, Deadline::NOW, false, None, &mut alive) {
                Ok(()) => {
                    assert!(r.available(&mut tail_hint, whole) >= whole && got.is_none());
                    let mut payload = [0u8; PAYLOAD];
                    r.read_frame(UNIT, &mut payload);
                    got = Some(u64::from_le_bytes(payload));
                }
                Err(mpkit::Error::Timeout) => thread::yield_now(),
                Err(mpkit::Error::Closed) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, Some(7000), "the frame before end-of-file");
        writer.join().unwrap();
    });
}
