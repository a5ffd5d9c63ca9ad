//! loom model of the SPSC byte ring under pipes: frames written and read through a 64-byte ring
//! (so it fills and wraps), with both ends sleeping when they must; every frame arrives intact
//! and in order, and no sleeper is forgotten (a missed wake-up is a loom deadlock).
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --test loom_spsc`.
//! Mutation checks (.ci/loom): `MPK_MUTANT=spsc_no_wake` must deadlock it;
//! `spsc_relaxed_publish` must report a causality violation.
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
            assert_eq!(r.peek_unit(), i, "frames in order");
            let mut payload = [0u8; PAYLOAD];
            r.read_frame(UNIT, &mut payload);
            assert_eq!(u64::from_le_bytes(payload), i * 1000, "payload intact");
        }
        writer.join().unwrap();
    });
}
