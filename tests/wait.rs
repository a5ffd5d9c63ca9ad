//! `mpkit::wait` over every kind of object, across processes: the one that became ready (and
//! only it) is reported, exits and dead peers wake the waiter, timeouts hold, and 64 mixed
//! objects work as well as one.

mod common;

use std::time::{Duration, Instant};

use common::{PATIENCE, child, join};
use mpkit::{Error, Event, Pool, PoolOptions, Process, Queue, RawEvent, Waitable, pipe, wait};

fn pool(workers: usize) -> Pool {
    let opts = PoolOptions { workers, ..PoolOptions::default() };
    // SAFETY: created before this test starts threads; tasks are plain functions of this image.
    unsafe { Pool::new(&opts) }.expect("pool")
}

fn nap(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

#[test]
fn a_message_on_one_pipe_wakes_the_waiter_and_only_that_pipe_is_ready() {
    let ends: Vec<_> = (0..3).map(|_| pipe(false).unwrap()).collect();
    let (mut rx, mut tx): (Vec<_>, Vec<_>) = ends.into_iter().unzip();
    let sender = child(|| {
        nap(50);
        i32::from(tx[1].send(b"one").is_err())
    });
    tx.iter_mut().for_each(|t| t.close());
    let mut items: Vec<&mut dyn Waitable> = rx.iter_mut().map(|c| c as &mut dyn Waitable).collect();
    assert_eq!(wait(&mut items, Some(PATIENCE)), Ok(vec![1]));
    let mut buf = [0u8; 8];
    assert_eq!(rx[1].recv(&mut buf), Ok(3));
    assert_eq!(join(&sender), 0);
    // The sender exited: every pipe now reads as closed, so all three are ready.
    let mut items: Vec<&mut dyn Waitable> = rx.iter_mut().map(|c| c as &mut dyn Waitable).collect();
    assert_eq!(wait(&mut items, Some(PATIENCE)), Ok(vec![0, 1, 2]));
}

#[test]
fn a_peer_killed_without_closing_makes_its_pipe_ready() {
    let (mut rx, mut tx) = pipe(false).unwrap();
    let victim = child(|| {
        nap(60_000);
        0
    });
    // The child holds `tx` too; close ours, so only the victim keeps the write end open.
    tx.close();
    let t0 = Instant::now();
    nap(30);
    victim.kill().unwrap();
    assert_eq!(wait(&mut [&mut rx], Some(PATIENCE)), Ok(vec![0]));
    assert!(t0.elapsed() < PATIENCE);
    let mut buf = [0u8; 8];
    assert_eq!(rx.recv(&mut buf), Err(Error::Closed));
    assert_eq!(join(&victim), -9);
}

#[test]
fn a_put_wakes_a_waiter_on_the_queue() {
    let (q, other) = (Queue::<u64>::new(8).unwrap(), Queue::<u64>::new(8).unwrap());
    let producer = child(|| {
        nap(50);
        i32::from(q.put(7).is_err())
    });
    let (mut a, mut b) = (other, q);
    assert_eq!(wait(&mut [&mut a, &mut b], Some(PATIENCE)), Ok(vec![1]));
    assert_eq!(b.try_get(), Ok(Some(7)));
    assert_eq!(join(&producer), 0);
    b.close();
    assert_eq!(wait(&mut [&mut a, &mut b], Some(PATIENCE)), Ok(vec![1]), "a closed queue is ready");
}

#[test]
fn an_exit_wakes_the_waiter_however_the_child_ends() {
    let mut quick = child(|| 3); // may exit before or after it takes its life lock
    let mut slow = child(|| {
        nap(80);
        0
    });
    let mut killed = child(|| {
        nap(60_000);
        0
    });
    let mut panics = child(|| panic!("a child that panics still exits"));
    assert!(wait(&mut [&mut quick], Some(PATIENCE)).is_ok());
    assert_eq!(quick.join_timeout(PATIENCE), Ok(3));
    assert_eq!(wait(&mut [&mut slow, &mut killed], Some(PATIENCE)), Ok(vec![0]));
    killed.kill().unwrap();
    assert_eq!(wait(&mut [&mut killed, &mut panics], Some(PATIENCE)).map(|r| r.contains(&0)), Ok(true));
    assert_eq!(wait(&mut [&mut panics], Some(PATIENCE)), Ok(vec![0]));
    assert_eq!(join(&killed), -9);
    assert_eq!(join(&panics), mpkit::process::CHILD_PANIC_EXIT);
    assert_eq!(join(&slow), 0);
    // Reaped: still ready.
    assert_eq!(wait(&mut [&mut slow], Some(Duration::ZERO)), Ok(vec![0]));
}

#[test]
fn every_process_waiting_on_one_exit_is_woken() {
    // The kernel wakes one sleeper on a dead owner's word; the woken waiter passes it on. Two
    // siblings watch the same child through their copies of its handle, as the parent does.
    let mut p = child(|| {
        nap(150);
        0
    });
    let watcher = |p: &Process| {
        child(|| {
            // SAFETY: a bitwise copy of the parent's handle, never dropped (this child `_exit`s):
            // it only reads the child's life lock in shared memory.
            let mut mine = std::mem::ManuallyDrop::new(unsafe { std::ptr::read(p) });
            i32::from(wait(&mut [&mut *mine], Some(PATIENCE)) != Ok(vec![0]))
        })
    };
    let watchers = [watcher(&p), watcher(&p)];
    assert_eq!(wait(&mut [&mut p], Some(PATIENCE)), Ok(vec![0]));
    for w in &watchers {
        assert_eq!(join(w), 0, "a watcher was not woken");
    }
    assert_eq!(join(&p), 0);
}

#[test]
fn pool_results_wake_the_waiter() {
    fn slow_square(x: u64) -> u64 {
        std::thread::sleep(Duration::from_millis(30));
        x * x
    }
    let pool = pool(2);
    let mut a = pool.apply_async(slow_square, 3).unwrap();
    assert_eq!(wait(&mut [&mut a], Some(PATIENCE)), Ok(vec![0]));
    assert_eq!(a.get(), Ok(9));
    let items: Vec<u64> = (0..8).collect();
    let mut m = pool.map_async(slow_square, &items, 1).unwrap();
    assert_eq!(wait(&mut [&mut m], Some(PATIENCE)), Ok(vec![0]));
    assert!(m.ready(), "ready for wait means every chunk ended");
    assert_eq!(m.get().unwrap(), items.iter().map(|x| x * x).collect::<Vec<_>>());
    let mut it = pool.imap(slow_square, &items, 1).unwrap();
    let mut got = Vec::new();
    while got.len() < items.len() {
        assert_eq!(wait(&mut [&mut it], Some(PATIENCE)), Ok(vec![0]));
        got.push(it.next_timeout(Duration::ZERO).expect("an item").unwrap().1);
    }
    assert_eq!(got, items.iter().map(|x| x * x).collect::<Vec<_>>());
    assert_eq!(wait(&mut [&mut it], Some(PATIENCE)), Ok(vec![0]), "exhausted: next answers at once");
}

#[test]
fn nothing_ready_times_out_and_no_objects_is_invalid() {
    let (mut rx, _tx) = pipe(false).unwrap();
    let mut q = Queue::<u64>::new(4).unwrap();
    let t0 = Instant::now();
    assert_eq!(wait(&mut [&mut rx, &mut q], Some(Duration::from_millis(50))), Err(Error::Timeout));
    assert!(t0.elapsed() >= Duration::from_millis(50));
    assert_eq!(wait(&mut [&mut rx, &mut q], Some(Duration::ZERO)), Err(Error::Timeout));
    assert_eq!(wait(&mut [], Some(Duration::ZERO)), Err(Error::Inval));
}

/// 22 pipes, 21 queues, 21 events; a child makes object k = 37 i mod 64 ready in round i,
/// waiting for the parent's acknowledgement between rounds. Each round exactly object k is
/// reported.
#[test]
fn sixty_four_mixed_objects_report_exactly_the_one_made_ready() {
    const ROUNDS: usize = 200;
    let (mut rx, mut tx): (Vec<_>, Vec<_>) = (0..22).map(|_| pipe(false).unwrap()).unzip();
    let mut queues: Vec<Queue<u64>> = (0..21).map(|_| Queue::new(4).unwrap()).collect();
    let mut events: Vec<Event> = (0..21).map(|_| Event::new().unwrap()).collect();
    let ack = Queue::<u64>::new(4).unwrap();
    let maker = child(|| {
        for i in 0..ROUNDS {
            let k = 37 * i % 64;
            let made = match k {
                0..22 => tx[k].send(&(i as u64).to_le_bytes()),
                22..43 => queues[k - 22].put(i as u64),
                _ => {
                    events[k - 43].set();
                    Ok(())
                }
            };
            if made.is_err() || ack.get_timeout(PATIENCE) != Ok(i as u64) {
                return 1;
            }
        }
        0
    });
    tx.iter_mut().for_each(|t| t.close());
    for i in 0..ROUNDS {
        let k = 37 * i % 64;
        let mut items: Vec<&mut dyn Waitable> = rx.iter_mut().map(|c| c as &mut dyn Waitable).collect();
        items.extend(queues.iter_mut().map(|q| q as &mut dyn Waitable));
        items.extend(events.iter_mut().map(|e| e as &mut dyn Waitable));
        assert_eq!(wait(&mut items, Some(PATIENCE)), Ok(vec![k]), "round {i}");
        match k {
            0..22 => {
                let mut buf = [0u8; 8];
                assert_eq!(rx[k].recv(&mut buf), Ok(8));
                assert_eq!(u64::from_le_bytes(buf), i as u64);
            }
            22..43 => assert_eq!(queues[k - 22].try_get(), Ok(Some(i as u64))),
            _ => events[k - 43].clear(),
        }
        ack.put(i as u64).unwrap();
    }
    assert_eq!(join(&maker), 0);
}

#[test]
fn a_set_wakes_a_waiter_on_the_event_in_place_or_owned() {
    let owned = Event::new().unwrap();
    let region = mpkit::Region::new(64).unwrap();
    let at = region.as_ptr().cast::<RawEvent>();
    // SAFETY: fresh, aligned shared memory of the region, large enough for an event.
    unsafe { at.write(RawEvent::new()) };
    // SAFETY: initialised above, used only as an event while the region lives.
    let raw: &RawEvent = unsafe { &*at };
    let setter = child(|| {
        nap(50);
        raw.set();
        nap(50);
        owned.set();
        0
    });
    let (mut a, mut b) = (raw, owned);
    let mut q = Queue::<u64>::new(4).unwrap();
    assert_eq!(wait(&mut [&mut q, &mut a], Some(PATIENCE)), Ok(vec![1]));
    assert_eq!(wait(&mut [&mut q, &mut b], Some(PATIENCE)), Ok(vec![1]));
    assert!(b.is_set());
    assert_eq!(join(&setter), 0);
}

#[test]
fn a_process_and_pipes_together() {
    let (mut rx, mut tx) = pipe(false).unwrap();
    let mut p: Process = child(|| {
        nap(50);
        7
    });
    let _keep_open = &mut tx; // our write end stays open: the pipe is not at end-of-file
    assert_eq!(wait(&mut [&mut rx, &mut p], Some(PATIENCE)), Ok(vec![1]));
    assert_eq!(p.join_timeout(PATIENCE), Ok(7));
}
