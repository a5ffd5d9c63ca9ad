//! mpkit-bench: mpkit's figures in the protocol of `../shared/anchors` (see its README), so that
//! `ANCHOR_EXTRA="kit=target/release/examples/mpkit-bench" ../shared/anchors/run_all.sh` puts
//! them beside Python, C and Rust in one table.
//!
//!   mpkit-bench --list        `<id> <estimated seconds>` per benchmark
//!   mpkit-bench <id>...       `<category>.<figure> <value> <unit>` on stdout, reps on stderr
//!
//! Definitions follow the anchors' C suite (`c_base.c`): same iteration counts, same shapes.
//! Env: ANCHOR_SCALE (iteration multiplier), ANCHOR_REPS (repetitions, default 3).

use std::time::Instant;

use mpkit::{Pool, PoolOptions, Process, Queue, RawBarrier, RawCondvar, RawEvent, RawMutex, Region, pipe};
use mpkit::{RawRMutex, RawSemaphore};

struct Bench {
    id: &'static str,
    est_s: f64,
    run: fn(&Env),
}

const BENCHES: &[Bench] = &[
    Bench { id: "mutex_uncontended", est_s: 0.5, run: mutex_uncontended },
    Bench { id: "mutex_contended", est_s: 1.0, run: mutex_contended },
    Bench { id: "process_start_join", est_s: 1.5, run: process_start_join },
    Bench { id: "queue_1p1c", est_s: 2.0, run: queue_1p1c },
    Bench { id: "queue_2p2c", est_s: 2.0, run: queue_2p2c },
    Bench { id: "pipe_pingpong", est_s: 1.5, run: pipe_pingpong },
    Bench { id: "pipe_pingpong_blocking", est_s: 2.0, run: pipe_pingpong_blocking },
    Bench { id: "pipe_oneway_64", est_s: 1.5, run: pipe_oneway_64 },
    Bench { id: "pipe_bandwidth", est_s: 2.0, run: pipe_bandwidth },
    Bench { id: "wait_64", est_s: 2.0, run: wait_64 },
    Bench { id: "pool_map_tiny", est_s: 1.5, run: pool_map_tiny },
    Bench { id: "pool_apply_rtt", est_s: 1.5, run: pool_apply_rtt },
    Bench { id: "pool_hol_rtt", est_s: 1.5, run: pool_hol_rtt },
    Bench { id: "pool_cpu_speedup", est_s: 5.0, run: pool_cpu_speedup },
    Bench { id: "rmutex_uncontended", est_s: 0.5, run: rmutex_uncontended },
    Bench { id: "sem_uncontended", est_s: 0.5, run: sem_uncontended },
    Bench { id: "sem_pingpong", est_s: 1.0, run: sem_pingpong },
    Bench { id: "event_pingpong", est_s: 1.5, run: event_pingpong },
    Bench { id: "cond_pingpong", est_s: 1.5, run: cond_pingpong },
    Bench { id: "barrier_2proc", est_s: 1.5, run: barrier_2proc },
    Bench { id: "dict_setget", est_s: 2.0, run: dict_setget },
    Bench { id: "dict_insert_lookup", est_s: 1.5, run: dict_insert_lookup },
    Bench { id: "list_ops", est_s: 2.0, run: list_ops },
    Bench { id: "dict_2proc_mixed", est_s: 6.0, run: dict_2proc_mixed },
];

struct Env {
    scale: f64,
    reps: usize,
}

impl Env {
    fn scaled(&self, n: u64) -> u64 {
        ((n as f64 * self.scale) as u64).max(1)
    }

    /// Runs `f` `reps` times; prints the median on stdout and every repetition on stderr.
    fn report(&self, name: &str, unit: &str, mut f: impl FnMut() -> f64) {
        let mut v: Vec<f64> = (0..self.reps).map(|_| f()).collect();
        let reps: Vec<String> = v.iter().map(|x| format!("{x:.4}")).collect();
        eprintln!("# {name} reps: {}", reps.join(" "));
        v.sort_by(f64::total_cmp);
        println!("{name} {:.4} {unit}", v[v.len() / 2]);
    }
}

/// A mutex and a plain counter in one anonymous shared region.
struct Shared {
    region: Region,
}

impl Shared {
    fn new() -> Shared {
        let region = Region::new(4096).expect("region");
        Shared { region }
    }
    fn mutex(&self) -> &RawMutex {
        // SAFETY: the region is zeroed (a valid unlocked mutex), 64-byte aligned, lives with self.
        unsafe { &*self.region.as_ptr().cast::<RawMutex>() }
    }
    fn counter(&self) -> *mut u64 {
        // SAFETY: offset 128 lies inside the 4 KiB region, on its own cache line.
        unsafe { self.region.as_ptr().add(128).cast() }
    }
    /// Slot `i` (0 or 1) for a child's end time, in seconds since the run's origin.
    fn end(&self, i: usize) -> *mut f64 {
        // SAFETY: offsets 256 and 264 lie inside the region.
        unsafe { self.region.as_ptr().add(256 + 8 * i).cast() }
    }
}

fn locked_increment(s: &Shared) {
    let _ = s.mutex().lock_until(mpkit::Deadline::FOREVER);
    let c = s.counter();
    // SAFETY: the counter is only touched under the mutex.
    let v = unsafe { c.read_volatile() };
    // SAFETY: as above.
    unsafe { c.write_volatile(v + 1) };
    let _ = s.mutex().unlock();
}

/// A start gate: children block reading a pipe until the parent closes its write end.
struct Gate([i32; 2]);

impl Gate {
    fn new() -> Gate {
        let mut fds = [0i32; 2];
        // SAFETY: `fds` has room for the two descriptors.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        Gate(fds)
    }
    /// In a child: wait until the parent opens the gate.
    fn wait(&self) {
        // SAFETY: closing our copy of the write end so that the parent's close gives EOF.
        unsafe { libc::close(self.0[1]) };
        let mut b = 0u8;
        // SAFETY: a one-byte read into a local buffer; returns at EOF.
        unsafe { libc::read(self.0[0], (&mut b as *mut u8).cast(), 1) };
    }
    /// In the parent: start everyone.
    fn open(&self) {
        for fd in self.0 {
            // SAFETY: closes the parent's two pipe ends exactly once.
            unsafe { libc::close(fd) };
        }
    }
}

/// `lock.kit_mutex_uncontended`: lock, counter++, unlock, in one process (ns per pair).
fn mutex_uncontended(env: &Env) {
    let n = env.scaled(20_000_000);
    env.report("lock.kit_mutex_uncontended", "ns/pair", || {
        let s = Shared::new();
        for _ in 0..1000 {
            locked_increment(&s);
        }
        let t0 = Instant::now();
        for _ in 0..n {
            locked_increment(&s);
        }
        t0.elapsed().as_nanos() as f64 / n as f64
    });
}

fn monotonic_s(origin: Instant) -> f64 {
    origin.elapsed().as_secs_f64()
}

/// `lock.kit_mutex_2proc_contended`: two forked processes each do n x (lock, counter++, unlock);
/// total increments per second from the start signal to the later end.
fn mutex_contended(env: &Env) {
    let n = env.scaled(4_000_000);
    env.report("lock.kit_mutex_2proc_contended", "incr/s", || {
        let s = Shared::new();
        let origin = Instant::now();
        let gate = Gate::new();
        let kids: Vec<Process> = (0..2)
            .map(|i| {
                let (s, gate) = (&s, &gate);
                let child = move || {
                    gate.wait();
                    for _ in 0..n {
                        locked_increment(s);
                    }
                    // SAFETY: each child writes only its own end slot.
                    unsafe { s.end(i).write_volatile(monotonic_s(origin)) };
                    0
                };
                // SAFETY: this program is single-threaded when it forks.
                unsafe { Process::spawn(child) }.expect("fork")
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let t0 = monotonic_s(origin);
        gate.open();
        for k in &kids {
            assert_eq!(k.join(), Ok(0), "child failed");
        }
        // SAFETY: both children exited; nothing writes the region any more.
        let count = unsafe { s.counter().read_volatile() };
        // SAFETY: as above.
        let end = |i| unsafe { s.end(i).read_volatile() };
        let t1 = end(0).max(end(1));
        assert_eq!(count, 2 * n, "lost increments");
        2.0 * n as f64 / (t1 - t0)
    });
}

/// `spawn.kit_process_start_join`: `Process::spawn(|| 0)` then `join` (us per process).
fn process_start_join(env: &Env) {
    let n = env.scaled(3000);
    env.report("spawn.kit_process_start_join", "us", || {
        let t0 = Instant::now();
        for _ in 0..n {
            // SAFETY: single-threaded parent; the child only returns.
            let p = unsafe { Process::spawn(|| 0) }.expect("fork");
            assert_eq!(p.join(), Ok(0));
        }
        t0.elapsed().as_secs_f64() * 1e6 / n as f64
    });
}

/// A shared slot per child for its end time, plus a start gate.
struct Timing {
    ends: mpkit::SharedArray<f64>,
    gate: Gate,
    origin: Instant,
}

impl Timing {
    fn new() -> Timing {
        Timing { ends: mpkit::SharedArray::new(64).expect("array"), gate: Gate::new(), origin: Instant::now() }
    }
    /// In a child: wait for the start signal.
    fn wait_start(&self) {
        self.gate.wait();
    }
    /// In a child: record that it finished now.
    fn finished(&self, i: usize) {
        self.ends.set(i, monotonic_s(self.origin)).expect("end time");
    }
    /// In the parent: let the children settle at the gate, open it, return the start time.
    fn start(&self) -> f64 {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let t0 = monotonic_s(self.origin);
        self.gate.open();
        t0
    }
    /// In the parent, after joining: the latest end time of children `0..n`.
    fn end(&self, n: usize) -> f64 {
        (0..n).map(|i| self.ends.get(i).expect("end time")).fold(0.0, f64::max)
    }
}

fn spawn(f: impl FnOnce() -> i32) -> Process {
    // SAFETY: mpkit-bench is single-threaded when it forks.
    unsafe { Process::spawn(f) }.expect("fork")
}

fn join_all(kids: &[Process]) {
    for k in kids {
        assert_eq!(k.join(), Ok(0), "child failed");
    }
}

/// `queue.kit_queue_u64_1p1c`: one producer process puts n u64 into a capacity-1024 queue, one
/// consumer process gets them (blocking calls); msgs/s from the start signal to the last get.
fn queue_1p1c(env: &Env) {
    let n = env.scaled(10_000_000);
    env.report("queue.kit_queue_u64_1p1c", "msgs/s", || queue_run(n, 1, 1));
}

/// `queue.kit_queue_u64_2p2c`: two producer and two consumer processes; total msgs/s.
fn queue_2p2c(env: &Env) {
    let n = env.scaled(10_000_000);
    env.report("queue.kit_queue_u64_2p2c", "msgs/s", || queue_run(n, 2, 2));
}

fn queue_run(n: u64, producers: u64, consumers: usize) -> f64 {
    let q = Queue::<u64>::new(1024).expect("queue");
    let sums = mpkit::SharedArray::<u64>::new(consumers).expect("sums");
    let t = Timing::new();
    let per = n / producers;
    let mut kids: Vec<Process> = (0..producers)
        .map(|p| {
            let (q, t) = (&q, &t);
            spawn(move || {
                t.wait_start();
                for i in 0..per {
                    q.put(p * per + i).expect("put");
                }
                0
            })
        })
        .collect();
    kids.extend((0..consumers).map(|c| {
        let (q, t, sums) = (&q, &t, &sums);
        spawn(move || {
            t.wait_start();
            let (mut sum, mut count) = (0u64, 0u64);
            loop {
                match q.get() {
                    Ok(v) => {
                        sum = sum.wrapping_add(v);
                        count += 1;
                        if consumers == 1 && count == per * producers {
                            break;
                        }
                    }
                    Err(mpkit::Error::Closed) => break,
                    Err(e) => panic!("{e}"),
                }
            }
            t.finished(c);
            sums.set(c, sum).expect("sum");
            0
        })
    }));
    let t0 = t.start();
    join_all(&kids[..producers as usize]);
    q.close();
    join_all(&kids[producers as usize..]);
    let total = per * producers;
    let sum: u64 = (0..consumers).map(|c| sums.get(c).expect("sum")).fold(0, u64::wrapping_add);
    assert_eq!(sum, total * (total - 1) / 2, "lost or duplicated messages");
    total as f64 / (t.end(consumers) - t0)
}

/// `pipe.kit_pipe_pingpong_rtt`: duplex pipe; the parent sends 8 bytes, the child receives and
/// sends them back, the parent receives; us per round trip (waits spin briefly, then sleep).
fn pipe_pingpong(env: &Env) {
    let n = env.scaled(200_000);
    env.report("pipe.kit_pipe_pingpong_rtt", "us", || pingpong(n, true));
}

/// `pipe.kit_pipe_pingpong_rtt_blocking`: the same with spinning turned off (every wait sleeps).
fn pipe_pingpong_blocking(env: &Env) {
    let n = env.scaled(15_000);
    env.report("pipe.kit_pipe_pingpong_rtt_blocking", "us", || pingpong(n, false));
}

fn pingpong(n: u64, spin: bool) -> f64 {
    let (mut a, mut b) = pipe(true).expect("pipe");
    a.set_spinning(spin);
    b.set_spinning(spin);
    let warm = 1000;
    let kid = spawn(|| {
        a.close();
        let mut buf = [0u8; 8];
        for _ in 0..n + warm {
            b.recv(&mut buf).expect("recv");
            b.send(&buf).expect("send");
        }
        0
    });
    b.close();
    let mut buf = [0u8; 8];
    let mut t0 = Instant::now();
    for i in 0..n + warm {
        if i == warm {
            t0 = Instant::now();
        }
        a.send(&i.to_le_bytes()).expect("send");
        a.recv(&mut buf).expect("recv");
        assert_eq!(u64::from_le_bytes(buf), i);
    }
    let rtt = t0.elapsed().as_secs_f64() * 1e6 / n as f64;
    join_all(&[kid]);
    rtt
}

/// `pipe.kit_wait_64`: the parent sleeps in `mpkit::wait` on 64 objects (22 one-way pipes, 21
/// queues, 21 events); per round the child (woken by an acknowledgement) sleeps 0.5 ms, stamps the clock and
/// makes object k = 37 i mod 64 ready; mean time from that stamp to the return of `wait`, which
/// must report exactly object k (the definition of `pipe.c_epoll_64_eventfd_wake`); us.
fn wait_64(env: &Env) {
    let n = env.scaled(1000);
    env.report("pipe.kit_wait_64", "us", || {
        let warm = 20;
        let (mut rx, mut tx): (Vec<_>, Vec<_>) = (0..22).map(|_| pipe(false).expect("pipe")).unzip();
        let mut queues: Vec<Queue<u64>> = (0..21).map(|_| Queue::new(4).expect("queue")).collect();
        let mut events: Vec<mpkit::Event> = (0..21).map(|_| mpkit::Event::new().expect("event")).collect();
        let ack = Ack::new();
        let stamp = mpkit::SharedArray::<f64>::new(1).expect("array");
        let origin = Instant::now();
        let kid = spawn(|| {
            for i in 0..n + warm {
                ack.wait();
                std::thread::sleep(std::time::Duration::from_micros(500));
                stamp.set(0, monotonic_s(origin)).expect("stamp");
                let k = (37 * i % 64) as usize;
                match k {
                    0..22 => tx[k].send(&i.to_le_bytes()).expect("send"),
                    22..43 => queues[k - 22].put(i).expect("put"),
                    _ => events[k - 43].set(),
                }
            }
            0
        });
        tx.iter_mut().for_each(|t| t.close());
        let mut sum = 0.0;
        let mut buf = [0u8; 8];
        for i in 0..n + warm {
            let k = (37 * i % 64) as usize;
            ack.post();
            let mut items: Vec<&mut dyn mpkit::Waitable> =
                rx.iter_mut().map(|c| c as &mut dyn mpkit::Waitable).collect();
            items.extend(queues.iter_mut().map(|q| q as &mut dyn mpkit::Waitable));
            items.extend(events.iter_mut().map(|e| e as &mut dyn mpkit::Waitable));
            let ready = mpkit::wait(&mut items, None).expect("wait");
            let t = monotonic_s(origin);
            assert_eq!(ready, [k], "round {i}");
            match k {
                0..22 => drop(rx[k].recv(&mut buf).expect("recv")),
                22..43 => drop(queues[k - 22].try_get().expect("get")),
                _ => events[k - 43].clear(),
            }
            if i >= warm {
                sum += t - stamp.get(0).expect("stamp");
            }
        }
        join_all(&[kid]);
        sum * 1e6 / n as f64
    });
    env.report("floor.rs_futex_waitv_64_wake", "us", || futex_waitv_64(n));
}

/// The acknowledgement of the wake-up figures: an eventfd, as in the C figure, so that the child
/// blocks on it without spinning and the wake-up measured is the same one.
struct Ack(i32);

impl Ack {
    fn new() -> Ack {
        // SAFETY: plain syscall; the fd is checked below.
        let fd = unsafe { libc::eventfd(0, 0) };
        assert!(fd >= 0, "eventfd");
        Ack(fd)
    }
    fn post(&self) {
        // SAFETY: writes 8 bytes from a live u64 to our eventfd.
        assert_eq!(unsafe { libc::write(self.0, (&1u64 as *const u64).cast(), 8) }, 8, "ack");
    }
    fn wait(&self) {
        let mut x = 0u64;
        // SAFETY: reads 8 bytes into a live u64 from our eventfd.
        assert_eq!(unsafe { libc::read(self.0, (&mut x as *mut u64).cast(), 8) }, 8, "ack");
    }
}

impl Drop for Ack {
    fn drop(&mut self) {
        // SAFETY: our fd, closed once.
        unsafe { libc::close(self.0) };
    }
}

/// `floor.rs_futex_waitv_64_wake`: the floor under `pipe.kit_wait_64`, with no mpkit object: the
/// parent sleeps in one `futex_waitv` on 64 shared futex words (one page each); per round the
/// child sleeps 0.5 ms, stamps the clock, bumps word k = 37 i mod 64 and wakes it; mean time from
/// the stamp to the syscall's return; us.
fn futex_waitv_64(n: u64) -> f64 {
    let warm = 20;
    let words = Region::new(64 * 4096).expect("region");
    let word = |k: u64| -> &std::sync::atomic::AtomicU32 {
        // SAFETY: inside the region (64 pages).
        let at = unsafe { words.as_ptr().add(k as usize * 4096) };
        // SAFETY: 4-aligned, mapped while `words` lives, used only atomically.
        unsafe { &*at.cast() }
    };
    let (ack, stamp, origin) = (Ack::new(), mpkit::SharedArray::<f64>::new(1).expect("array"), Instant::now());
    let kid = spawn(|| {
        for i in 0..n + warm {
            ack.wait();
            std::thread::sleep(std::time::Duration::from_micros(500));
            stamp.set(0, monotonic_s(origin)).expect("stamp");
            let w = word(37 * i % 64);
            w.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            // SAFETY: FUTEX_WAKE (shared) on a live word.
            unsafe { libc::syscall(libc::SYS_futex, w.as_ptr(), libc::FUTEX_WAKE, 1) };
        }
        0
    });
    let mut sum = 0.0;
    for i in 0..n + warm {
        #[repr(C)]
        struct WaitV {
            val: u64,
            addr: u64,
            flags: u32,
            reserved: u32,
        }
        let load = |k: u64| word(k).load(std::sync::atomic::Ordering::SeqCst);
        let v: Vec<WaitV> = (0..64)
            .map(|k| WaitV { val: load(k).into(), addr: word(k).as_ptr() as u64, flags: 2, reserved: 0 })
            .collect();
        ack.post();
        // futex_waitv(waiters, 64, flags 0, no timeout, CLOCK_MONOTONIC). The values were read
        // before the ack, so EAGAIN means the child's bump already came: the round is over (a
        // reload would sleep past it). Only EINTR waits again.
        let waitv = || {
            // SAFETY: `v` holds 64 valid futex_waitv entries (FUTEX2_SIZE_U32 = 2, shared).
            unsafe { libc::syscall(libc::SYS_futex_waitv, v.as_ptr(), 64, 0, 0usize, libc::CLOCK_MONOTONIC) }
        };
        while waitv() < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {}
        let t = monotonic_s(origin);
        if i >= warm {
            sum += t - stamp.get(0).expect("stamp");
        }
    }
    join_all(&[kid]);
    sum * 1e6 / n as f64
}

/// `pipe.kit_pipe_64B_oneway`: one-way pipe; the child sends n 64-byte messages, the parent
/// receives them; msgs/s from the start signal to the last receive.
fn pipe_oneway_64(env: &Env) {
    let n = env.scaled(5_000_000);
    env.report("pipe.kit_pipe_64B_oneway", "msgs/s", || {
        let (mut r, mut w) = pipe(false).expect("pipe");
        let t = Timing::new();
        let kid = spawn(|| {
            r.close();
            t.wait_start();
            let mut msg = [b'x'; 64];
            for i in 0..n {
                msg[..8].copy_from_slice(&i.to_le_bytes());
                w.send(&msg).expect("send");
            }
            0
        });
        w.close();
        let mut buf = [0u8; 64];
        let t0 = t.start();
        for i in 0..n {
            assert_eq!(r.recv(&mut buf), Ok(64));
            assert_eq!(u64::from_le_bytes(buf[..8].try_into().unwrap()), i);
        }
        let rate = n as f64 / (monotonic_s(t.origin) - t0);
        join_all(&[kid]);
        rate
    });
}

/// `pipe.kit_pipe_1MiB_bandwidth`: one-way pipe (default 1 MiB ring); the child sends n
/// messages of 1 MiB, the parent receives each whole; GB/s of message bytes.
fn pipe_bandwidth(env: &Env) {
    let n = env.scaled(2000);
    env.report("pipe.kit_pipe_1MiB_bandwidth", "GB/s", || {
        const MIB: usize = 1 << 20;
        let (mut r, mut w) = pipe(false).expect("pipe");
        let t = Timing::new();
        let kid = spawn(|| {
            r.close();
            let msg = vec![7u8; MIB];
            t.wait_start();
            for _ in 0..n {
                w.send(&msg).expect("send");
            }
            0
        });
        w.close();
        let mut buf = vec![0u8; MIB];
        let t0 = t.start();
        for _ in 0..n {
            assert_eq!(r.recv(&mut buf), Ok(MIB));
        }
        let gbs = (n as usize * MIB) as f64 / (monotonic_s(t.origin) - t0) / 1e9;
        assert!(buf.iter().all(|&b| b == 7));
        join_all(&[kid]);
        gbs
    });
}

fn pool2() -> Pool {
    // SAFETY: single-threaded when the pool forks; tasks are plain functions of this binary.
    unsafe { Pool::new(&PoolOptions { workers: 2, ..PoolOptions::default() }) }.expect("pool")
}

fn square(x: u64) -> u64 {
    x.wrapping_mul(x)
}

/// `pool.kit_pool2_map_square_tiny`: `Pool(2).map(square, 0..n)`, automatic chunks, pool
/// already started; tasks/s (arguments copied in and results copied out included).
fn pool_map_tiny(env: &Env) {
    let n = env.scaled(3_000_000);
    let p = pool2();
    let items: Vec<u64> = (0..n).collect();
    p.map(square, &items[..1000]).expect("warm-up");
    env.report("pool.kit_pool2_map_square_tiny", "tasks/s", || {
        let t0 = Instant::now();
        let r = p.map(square, &items).expect("map");
        let rate = n as f64 / t0.elapsed().as_secs_f64();
        assert_eq!(r[(n - 1) as usize], square(n - 1));
        rate
    });
}

/// `pool.kit_pool2_apply_async_get_rtt`: `apply_async(square, i).get()`, one at a time; us.
fn pool_apply_rtt(env: &Env) {
    let n = env.scaled(50_000);
    let p = pool2();
    for i in 0..100 {
        p.apply_async(square, i).expect("apply").get().expect("get");
    }
    env.report("pool.kit_pool2_apply_async_get_rtt", "us", || {
        let t0 = Instant::now();
        for i in 0..n {
            assert_eq!(p.apply_async(square, i).expect("apply").get(), Ok(square(i)));
        }
        t0.elapsed().as_secs_f64() * 1e6 / n as f64
    });
}

fn sleep_s(s: u64) -> u64 {
    std::thread::sleep(std::time::Duration::from_secs(s));
    s
}

/// `pool.kit_pool2_hol_rtt`: as `pool_apply_rtt`, while the pool's other worker runs a long
/// task (head-of-line blocking would make each tiny task wait for it); us.
fn pool_hol_rtt(env: &Env) {
    let n = env.scaled(50_000);
    let p = pool2();
    let _long = p.apply_async(sleep_s, 3600).expect("apply");
    std::thread::sleep(std::time::Duration::from_millis(50)); // a worker takes it
    for i in 0..100 {
        p.apply_async(square, i).expect("apply").get().expect("get");
    }
    env.report("pool.kit_pool2_hol_rtt", "us", || {
        let t0 = Instant::now();
        for i in 0..n {
            assert_eq!(p.apply_async(square, i).expect("apply").get(), Ok(square(i)));
        }
        t0.elapsed().as_secs_f64() * 1e6 / n as f64
    });
    p.terminate(); // the long task's worker is killed
}

/// CPU-heavy work: `rounds` dependent multiply/xor steps (as the anchors' rayon `heavy`).
fn burn(rounds: u64) -> u64 {
    let mut h = rounds;
    for _ in 0..rounds {
        h = h.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        h ^= h >> 33;
    }
    h
}

/// `pool.kit_pool<N>_cpu_speedup`: 4N x `burn` serially vs `Pool(N).map` (pool already started),
/// as Python's `pool_cpu_speedup` (about 0.1 s per task, as Python's `burn(1e6)`); x. N is 2, or
/// `MPK_BENCH_WORKERS` for a scaling curve on a larger machine.
fn pool_cpu_speedup(env: &Env) {
    let workers: usize = std::env::var("MPK_BENCH_WORKERS").ok().and_then(|w| w.parse().ok()).unwrap_or(2);
    let args = vec![env.scaled(60_000_000); 4 * workers];
    // SAFETY: single-threaded when the pool forks; tasks are plain functions of this binary.
    let p = unsafe { Pool::new(&PoolOptions { workers, ..PoolOptions::default() }) }.expect("pool");
    p.map(square, &[1, 2, 3]).expect("warm-up");
    env.report(&format!("pool.kit_pool{workers}_cpu_speedup"), "x", || {
        let t0 = Instant::now();
        let serial: Vec<u64> = args.iter().map(|&a| burn(std::hint::black_box(a))).collect();
        let ts = t0.elapsed().as_secs_f64();
        let t0 = Instant::now();
        let pooled = p.map_chunked(burn, &args, 1).expect("map");
        let tp = t0.elapsed().as_secs_f64();
        assert_eq!(serial, pooled);
        ts / tp
    });
}

/// `T` placed at byte `offset` of a fresh region's payload (which outlives the figure's run).
fn placed<T>(r: &Region, offset: usize, value: T) -> &T {
    assert!(offset + size_of::<T>() <= r.len() && offset.is_multiple_of(align_of::<T>()));
    // SAFETY: in bounds (checked above).
    let p = unsafe { r.as_ptr().add(offset) }.cast::<T>();
    // SAFETY: aligned (checked above) and used by nothing else.
    unsafe { p.write(value) };
    // SAFETY: just written, and mapped as long as `r`; the types placed here are process-shared
    // primitives built for shared memory.
    unsafe { &*p }
}

/// `sync.kit_event_pingpong_rtt` (the shape of `sync.py_event_pingpong_rtt`): two events, parent
/// `a.set(); b.wait(); b.clear()`, child `a.wait(); a.clear(); b.set()`; us per round trip.
fn event_pingpong(env: &Env) {
    let n = env.scaled(15_000);
    env.report("sync.kit_event_pingpong_rtt", "us", || {
        let r = Region::new(4096).expect("region");
        let (a, b) = (placed(&r, 0, RawEvent::new()), placed(&r, 64, RawEvent::new()));
        let warm = 1000;
        let kid = spawn(|| {
            for _ in 0..n + warm {
                a.wait().expect("wait");
                a.clear();
                b.set();
            }
            0
        });
        let mut t0 = Instant::now();
        for i in 0..n + warm {
            if i == warm {
                t0 = Instant::now();
            }
            a.set();
            b.wait().expect("wait");
            b.clear();
        }
        let rtt = t0.elapsed().as_secs_f64() * 1e6 / n as f64;
        join_all(&[kid]);
        rtt
    });
}

/// `sync.kit_cond_pingpong_rtt` (the shape of `sync.c_pthread_cond_pshared_pingpong_rtt`): one
/// mutex, one condition variable and a shared `turn`: parent (locked) `turn = 1`, notify, waits
/// until `turn == 2`; child (locked) waits until `turn == 1`, `turn = 2`, notify; us per round trip.
fn cond_pingpong(env: &Env) {
    let n = env.scaled(10_000);
    env.report("sync.kit_cond_pingpong_rtt", "us", || {
        let r = Region::new(4096).expect("region");
        let (m, c) = (placed(&r, 0, RawMutex::new()), placed(&r, 64, RawCondvar::new()));
        // Touched only under `m`: a plain value behind an atomic type, as C would keep an int.
        let turn = placed(&r, 128, std::sync::atomic::AtomicU32::new(0));
        let is = |v| turn.load(std::sync::atomic::Ordering::Relaxed) == v;
        let warm = 1000;
        let kid = spawn(|| {
            for _ in 0..n + warm {
                let g = m.lock().expect("lock");
                while !is(1) {
                    c.wait(&g).expect("wait");
                }
                turn.store(2, std::sync::atomic::Ordering::Relaxed);
                c.notify(1);
            }
            0
        });
        let mut t0 = Instant::now();
        for i in 0..n + warm {
            if i == warm {
                t0 = Instant::now();
            }
            let g = m.lock().expect("lock");
            turn.store(1, std::sync::atomic::Ordering::Relaxed);
            c.notify(1);
            while !is(2) {
                c.wait(&g).expect("wait");
            }
        }
        let rtt = t0.elapsed().as_secs_f64() * 1e6 / n as f64;
        join_all(&[kid]);
        rtt
    });
}

/// `sync.kit_barrier_2proc_per_round` (the shape of `sync.c_pthread_barrier_pshared_2proc_per_round`):
/// a barrier of 2, parent and child each wait n times; us per round (the parent's time / n).
fn barrier_2proc(env: &Env) {
    let n = env.scaled(15_000);
    env.report("sync.kit_barrier_2proc_per_round", "us", || {
        let r = Region::new(4096).expect("region");
        let b = placed(&r, 0, RawBarrier::new(2).expect("barrier"));
        let warm = 500;
        let kid = spawn(|| {
            for _ in 0..n + warm {
                b.wait().expect("wait");
            }
            0
        });
        let mut t0 = Instant::now();
        for i in 0..n + warm {
            if i == warm {
                t0 = Instant::now();
            }
            b.wait().expect("wait");
        }
        let per_round = t0.elapsed().as_secs_f64() * 1e6 / n as f64;
        join_all(&[kid]);
        per_round
    });
}

fn main() {
    let env = Env {
        scale: std::env::var("ANCHOR_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0),
        reps: std::env::var("ANCHOR_REPS").ok().and_then(|s| s.parse().ok()).unwrap_or(3).max(1),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--list") {
        for b in BENCHES {
            println!("{} {:.1}", b.id, b.est_s);
        }
        return;
    }
    let selected: Vec<&Bench> = if args.is_empty() {
        BENCHES.iter().collect()
    } else {
        args.iter()
            .map(|a| {
                BENCHES.iter().find(|b| b.id == a).unwrap_or_else(|| {
                    eprintln!("unknown benchmark id '{a}' (try --list)");
                    std::process::exit(1)
                })
            })
            .collect()
    };
    for b in selected {
        (b.run)(&env);
    }
}

/// `lock.kit_rmutex_uncontended`: lock, counter++, unlock of a `RawRMutex`, in one process (ns
/// per pair; the first level, as `kit_mutex_uncontended`).
fn rmutex_uncontended(env: &Env) {
    let n = env.scaled(20_000_000);
    env.report("lock.kit_rmutex_uncontended", "ns/pair", || {
        let m = RawRMutex::new();
        let mut counter = 0u64;
        let mut bump = || {
            let _ = m.lock_until(mpkit::Deadline::FOREVER);
            counter = std::hint::black_box(counter) + 1;
            let _ = m.unlock();
        };
        for _ in 0..1000 {
            bump();
        }
        let t0 = Instant::now();
        for _ in 0..n {
            bump();
        }
        let ns = t0.elapsed().as_nanos() as f64 / n as f64;
        assert_eq!(counter, n + 1000);
        ns
    });
}

/// Two semaphores in one anonymous shared region, a cache line apart.
fn two_sems(region: &Region, value: u32) -> (&RawSemaphore, &RawSemaphore) {
    let at = |i: usize| {
        let p = region.as_ptr().wrapping_add(64 * i).cast::<RawSemaphore>();
        // SAFETY: offsets 0 and 64 are 8-aligned, inside the 4 KiB region and used for nothing
        // else; written before any other process can see them.
        unsafe { p.write(RawSemaphore::new(value, 0).expect("sem")) };
        // SAFETY: initialised just above; lives as long as `region`.
        unsafe { &*p }
    };
    (at(0), at(1))
}

/// `sync.kit_sem_uncontended` (= `sync.c_sem_pshared_uncontended`): one process, a semaphore
/// at 1 in shared memory, acquire + release (ns per pair; never blocks).
fn sem_uncontended(env: &Env) {
    let n = env.scaled(20_000_000);
    env.report("sync.kit_sem_uncontended", "ns/pair", || {
        let region = Region::new(4096).expect("region");
        let (s, _) = two_sems(&region, 1);
        for _ in 0..1000 {
            let _ = s.acquire_until(mpkit::Deadline::FOREVER);
            let _ = s.release();
        }
        let t0 = Instant::now();
        for _ in 0..n {
            let _ = s.acquire_until(mpkit::Deadline::FOREVER);
            let _ = s.release();
        }
        let ns = t0.elapsed().as_nanos() as f64 / n as f64;
        assert_eq!(s.value(), 1);
        ns
    });
}

/// `sync.kit_sem_pingpong_rtt` (= `sync.c_sem_pshared_pingpong_rtt`): two semaphores at 0;
/// the parent releases a and acquires b, the forked child acquires a and releases b (us per
/// round trip).
fn sem_pingpong(env: &Env) {
    let n = env.scaled(15_000);
    env.report("sync.kit_sem_pingpong_rtt", "us", || {
        let region = Region::new(4096).expect("region");
        let (a, b) = two_sems(&region, 0);
        let warm = 1000;
        let kid = spawn(|| {
            for _ in 0..n + warm {
                a.acquire_until(mpkit::Deadline::FOREVER).expect("acquire");
                b.release().expect("release");
            }
            0
        });
        let mut t0 = Instant::now();
        for i in 0..n + warm {
            if i == warm {
                t0 = Instant::now();
            }
            a.release().expect("release");
            b.acquire_until(mpkit::Deadline::FOREVER).expect("acquire");
        }
        let rtt = t0.elapsed().as_secs_f64() * 1e6 / n as f64;
        join_all(&[kid]);
        rtt
    });
}

/// Runs `f` in a forked child (as the anchors' Boost figures do) and returns what it measured.
fn in_child(f: impl FnOnce() -> f64) -> f64 {
    let out = mpkit::SharedArray::<f64>::new(1).expect("array");
    let kid = spawn(|| {
        out.set(0, f()).expect("result");
        0
    });
    join_all(&[kid]);
    out.get(0).expect("result")
}

/// The anchors' pseudo-random key order for 10,000 keys (`cxx_boost.cpp`'s xorshift).
fn rand_keys() -> Vec<i64> {
    let mut x: u64 = 88172645463325252;
    (0..1 << 16)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 10000) as i64
        })
        .collect()
}

/// `shm.kit_dict_setget_per_op` (keys 0..63) and `shm.kit_dict_setget_10k_random_per_op`
/// (10,000 keys, the anchors' key order): prefilled `SharedDict`, a forked child does n x
/// (`d[k] = i`; `d[k]`); ns per op (time / 2n). The parent checks the last value.
fn dict_setget(env: &Env) {
    let keys = rand_keys();
    for (name, prefill, n) in [
        ("shm.kit_dict_setget_per_op", 64, env.scaled(2_000_000)),
        ("shm.kit_dict_setget_10k_random_per_op", 10_000, env.scaled(1_000_000)),
    ] {
        let key = |i: u64| if prefill == 64 { (i & 63) as i64 } else { keys[i as usize & 0xffff] };
        env.report(name, "ns/op", || {
            let d = mpkit::SharedDict::new().expect("dict");
            for k in 0..prefill {
                d.set(k, k).expect("set");
            }
            let ns = in_child(|| {
                let mut sink = 0i64;
                let mut round = |i: u64| {
                    let k = key(i);
                    d.set(k, i as i64).expect("set");
                    if let Ok(Some(mpkit::Value::Int(v))) = d.get(k) {
                        sink = sink.wrapping_add(v);
                    }
                };
                (0..1000).for_each(&mut round);
                let t0 = Instant::now();
                (0..n).for_each(&mut round);
                let ns = t0.elapsed().as_nanos() as f64 / (2 * n) as f64;
                std::hint::black_box(sink);
                ns
            });
            assert_eq!(d.get(key(n - 1)).expect("get"), Some(mpkit::Value::Int(n as i64 - 1)));
            ns
        });
    }
}

/// `shm.kit_dict_insert_per_op` (fill an empty dict with keys 0..4095, clear untimed, until n
/// inserts) and `shm.kit_dict_lookup_per_op` (keys 0..63 present, n x `d[i & 63]`): ns per op.
fn dict_insert_lookup(env: &Env) {
    let n = env.scaled(1_000_000);
    env.report("shm.kit_dict_insert_per_op", "ns/op", || {
        let d = mpkit::SharedDict::new().expect("dict");
        let mut timed = std::time::Duration::ZERO;
        let mut done = 0;
        while done < n {
            let t0 = Instant::now();
            for k in 0..4096.min(n - done) as i64 {
                d.set(k, k).expect("set");
            }
            timed += t0.elapsed();
            done += 4096.min(n - done);
            d.clear().expect("clear");
        }
        timed.as_nanos() as f64 / n as f64
    });
    let n = env.scaled(4_000_000);
    env.report("shm.kit_dict_lookup_per_op", "ns/op", || {
        let d = mpkit::SharedDict::new().expect("dict");
        for k in 0..64 {
            d.set(k, k).expect("set");
        }
        let t0 = Instant::now();
        let mut sink = 0;
        for i in 0..n {
            if let Ok(Some(mpkit::Value::Int(v))) = d.get((i & 63) as i64) {
                sink += v;
            }
        }
        let ns = t0.elapsed().as_nanos() as f64 / n as f64;
        assert_eq!(sink, (0..n).map(|i| (i & 63) as i64).sum::<i64>());
        ns
    });
}

/// `shm.kit_list_reverse_10` (the seed's `l.reverse()` on 10 items, n times), and the list
/// figures beside `shm.py_manager_list_*`: `append_per_op` (n appends, emptied every 4096),
/// `get_per_op` (64 items, n x `l[i & 63]`), `setget_per_op` (n x (`l[k] = i`; `l[k]`)); ns per op.
fn list_ops(env: &Env) {
    let n = env.scaled(2_000_000);
    env.report("shm.kit_list_reverse_10", "ns/op", || {
        let l = mpkit::SharedList::new().expect("list");
        l.extend(&(0..10).map(mpkit::dict::item::Item::Int).collect::<Vec<_>>()).expect("extend");
        let t0 = Instant::now();
        for _ in 0..n {
            l.reverse().expect("reverse");
        }
        let ns = t0.elapsed().as_nanos() as f64 / n as f64;
        assert_eq!(l.get(0).expect("get"), mpkit::Value::Int(if n.is_multiple_of(2) { 0 } else { 9 }));
        ns
    });
    env.report("shm.kit_list_append_per_op", "ns/op", || {
        let l = mpkit::SharedList::new().expect("list");
        let mut timed = std::time::Duration::ZERO;
        let mut done = 0;
        while done < n {
            let t0 = Instant::now();
            for i in 0..4096.min(n - done) as i64 {
                l.append(i).expect("append");
            }
            timed += t0.elapsed();
            done += 4096.min(n - done);
            l.clear().expect("clear");
        }
        timed.as_nanos() as f64 / n as f64
    });
    let l = mpkit::SharedList::new().expect("list");
    l.extend(&(0..64).map(mpkit::dict::item::Item::Int).collect::<Vec<_>>()).expect("extend");
    env.report("shm.kit_list_get_per_op", "ns/op", || {
        let t0 = Instant::now();
        let mut sink = 0;
        for i in 0..n {
            if let Ok(mpkit::Value::Int(v)) = l.get((i & 63) as i64) {
                sink += v;
            }
        }
        std::hint::black_box(sink);
        t0.elapsed().as_nanos() as f64 / n as f64
    });
    env.report("shm.kit_list_setget_per_op", "ns/op", || {
        let t0 = Instant::now();
        let mut sink = 0;
        for i in 0..n {
            let k = (i & 63) as i64;
            l.set(k, i as i64).expect("set");
            if let Ok(mpkit::Value::Int(v)) = l.get(k) {
                sink += v;
            }
        }
        std::hint::black_box(sink);
        t0.elapsed().as_nanos() as f64 / (2 * n) as f64
    });
}

/// `shm.kit_dict_2proc_mixed_per_op`: a dict of 1 M entries, 16-byte str keys and 16-byte bytes
/// values; two processes each do n ops on random keys, 90% get, 10% set; ns per op per process
/// (wall time from the start signal to the last child's end, over n); `1proc_mixed` is the
/// same with one process (what the lock and the sequence word cost under contention). Also
/// `shm.kit_dict_1m_memory_ratio`: the region's resident bytes over the 32 MB payload.
fn dict_2proc_mixed(env: &Env) {
    const ENTRIES: u64 = 1_000_000;
    // Keys and values made on the stack: the figure is the dict's, not the formatter's.
    let key = |i: u64| {
        let mut k = *b"key-000000000000";
        digits(&mut k[4..], i);
        k
    };
    let val = |i: u64, round: u64| {
        let mut v = *b"val000-000000000";
        digits(&mut v[3..6], round);
        digits(&mut v[7..], i);
        v
    };
    let d = mpkit::SharedDict::new().expect("dict");
    for i in 0..ENTRIES {
        d.set(as_str(&key(i)), &val(i, 0)[..]).expect("fill");
    }
    assert_eq!(key(0).len() + val(0, 0).len(), 32);
    let payload = ENTRIES as f64 * 32.0;
    let used = d.memory_used() as f64;
    eprintln!(
        "# dict of {ENTRIES} entries (16 B keys, 16 B values): resident {:.1} MB, heap {:.1} MB, payload {:.1} MB",
        used / 1e6,
        d.heap_bytes() as f64 / 1e6,
        payload / 1e6
    );
    println!("shm.kit_dict_1m_memory_ratio {:.4} x", used / payload);
    let n = env.scaled(1_000_000);
    for (name, procs) in [("shm.kit_dict_1proc_mixed_per_op", 1), ("shm.kit_dict_2proc_mixed_per_op", 2)] {
        env.report(name, "ns/op", || {
            let t = Timing::new();
            let kids: Vec<Process> = (0..procs)
                .map(|p| {
                    let (d, t) = (&d, &t);
                    spawn(move || {
                        let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (p + 1);
                        let mut bad = 0;
                        t.wait_start();
                        for _ in 0..n {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            let i = x % ENTRIES;
                            let k = key(i);
                            if x.is_multiple_of(10) {
                                d.set(as_str(&k), &val(i, 1 + p)[..]).expect("set");
                            } else {
                                match d.get(as_str(&k)) {
                                    Ok(Some(mpkit::Value::Bytes(v))) if v[7..] == val(i, 0)[7..] => {}
                                    _ => bad += 1,
                                }
                            }
                        }
                        t.finished(p as usize);
                        bad
                    })
                })
                .collect();
            let t0 = t.start();
            join_all(&kids);
            (t.end(procs as usize) - t0) * 1e9 / n as f64
        });
    }
}

/// Writes `n` as decimal digits, zero-padded to fill `out`.
fn digits(out: &mut [u8], mut n: u64) {
    for d in out.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

fn as_str(b: &[u8]) -> &str {
    std::str::from_utf8(b).expect("ascii")
}
