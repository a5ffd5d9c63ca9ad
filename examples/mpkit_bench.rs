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

use mpkit::{Process, RawMutex, Region};

struct Bench {
    id: &'static str,
    est_s: f64,
    run: fn(&Env),
}

const BENCHES: &[Bench] = &[
    Bench { id: "mutex_uncontended", est_s: 0.5, run: mutex_uncontended },
    Bench { id: "mutex_contended", est_s: 1.0, run: mutex_contended },
    Bench { id: "process_start_join", est_s: 1.5, run: process_start_join },
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
