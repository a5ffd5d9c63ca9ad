//! The MPI checks, run by `mpi/run-tests.sh` under `mpirun --oversubscribe -n 3` (cargo's test
//! runners cannot start MPI jobs). Every rank runs every check; rank 0 prints one `ok ...` line
//! per check and each rank prints `rank R: ...` for what it returned; any mismatch exits 1.
//!   mpi_tests [all|tiny|heavy|failure|death|imap|executor|rank-death]   (default: all)

use std::process::exit;
use std::time::Instant;

use mpi::topology::Communicator;
use mpkit::PoolOptions;
use mpkit_mpi::{Error, Executor};

const WORKERS: usize = 2;

fn opts() -> PoolOptions {
    PoolOptions { workers: WORKERS, ..PoolOptions::default() }
}

fn tiny(x: u64) -> u64 {
    x.wrapping_mul(x).wrapping_add(1)
}

/// The tutorial's CPU-heavy function (c-examples/pool_benchmark.c's `burn`).
fn burn(rounds: u64) -> u64 {
    let mut h = rounds;
    for _ in 0..rounds {
        h = h.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        h ^= h >> 33;
    }
    h
}

const FAIL_AT: u64 = 777_777;
const DIE_AT: u64 = 123_456;

fn fails_at(x: u64) -> u64 {
    if x == FAIL_AT {
        panic!("item {x} fails on purpose");
    }
    tiny(x)
}

fn dies_at(x: u64) -> u64 {
    if x == DIE_AT {
        // SAFETY: ends this worker process at once, on purpose.
        unsafe { libc::_exit(3) };
    }
    tiny(x)
}

/// An `mpk_task_fn` that fails item FAIL_AT with code 7 (the C path).
unsafe extern "C" fn c_task(
    _ctx: *mut core::ffi::c_void,
    arg: *const core::ffi::c_void,
    _arg_len: usize,
    out: *mut core::ffi::c_void,
    _out_cap: usize,
    out_len: *mut usize,
) -> core::ffi::c_int {
    // SAFETY: the map passes 8-byte arguments and room for 8 bytes.
    let x = unsafe { arg.cast::<u64>().read_unaligned() };
    if x == FAIL_AT {
        return 7;
    }
    // SAFETY: as above.
    unsafe { out.cast::<u64>().write_unaligned(tiny(x)) };
    // SAFETY: writable.
    unsafe { out_len.write(8) };
    0
}

fn check(rank: i32, what: &str, ok: bool, detail: String) {
    println!("rank {rank}: {what}: {detail}");
    if !ok {
        eprintln!("rank {rank}: FAILED {what}: {detail}");
        exit(1);
    }
}

fn main() {
    let which = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    let (_universe, _) = mpi::initialize_with_threading(mpi::Threading::Funneled).expect("MPI initialises");
    let world = mpi::topology::SimpleCommunicator::world();
    let rank = world.rank();
    let ranks = world.size();
    let all = which == "all";
    // Silence the panic message of the task that fails on purpose (it runs in a worker).
    std::panic::set_hook(Box::new(|_| {}));

    if all || which == "tiny" {
        let items: Vec<u64> = if rank == 0 { (0..1_000_000).collect() } else { Vec::new() };
        let t = Instant::now();
        let got = mpkit_mpi::map(&world, tiny, &items, &opts(), 0);
        let secs = t.elapsed().as_secs_f64();
        match got {
            Ok(got) if rank == 0 => {
                let serial: Vec<u64> = items.iter().map(|&x| tiny(x)).collect();
                check(
                    rank,
                    "tiny",
                    got == serial,
                    format!("1000000 items identical to serial ({:.0} tasks/s)", 1e6 / secs),
                );
                println!("ok tiny: 1000000 items on {ranks} ranks x {WORKERS} workers identical to a serial run");
            }
            Ok(got) => check(rank, "tiny", got.is_empty(), "served".into()),
            Err(e) => check(rank, "tiny", false, e.to_string()),
        }
    }
    if all || which == "heavy" {
        let rounds: u64 = std::env::var("MPK_BURN_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(2_000_000);
        let items: Vec<u64> = if rank == 0 { (0..200).map(|i| rounds + i).collect() } else { Vec::new() };
        let t = Instant::now();
        let got = mpkit_mpi::map(&world, burn, &items, &opts(), 0);
        let secs = t.elapsed().as_secs_f64();
        match got {
            Ok(got) if rank == 0 => {
                let serial: Vec<u64> = items.iter().map(|&x| burn(x)).collect();
                check(rank, "heavy", got == serial, format!("200 items identical to serial ({secs:.2} s)"));
                println!(
                    "ok heavy: 200 CPU-heavy items on {ranks} ranks x {WORKERS} workers identical to a serial run"
                );
            }
            Ok(got) => check(rank, "heavy", got.is_empty(), "served".into()),
            Err(e) => check(rank, "heavy", false, e.to_string()),
        }
    }
    if all || which == "bad" {
        // Bad input every rank passes alike (so none is left waiting for another): a NULL task
        // is MPK_ERR_NULL before any MPI call; mpk_mpi_last_failure takes NULL out-parameters.
        // SAFETY: no task, no buffers (n = 0); the call must refuse before touching anything.
        let st = unsafe {
            mpkit_mpi::ffi::mpk_mpi_map(
                core::ptr::null(),
                None,
                core::ptr::null_mut(),
                core::ptr::null(),
                8,
                0,
                core::ptr::null_mut(),
                8,
                0,
                core::ptr::null(),
            )
        };
        // SAFETY: NULL out-parameters are allowed.
        let last = unsafe {
            mpkit_mpi::ffi::mpk_mpi_last_failure(core::ptr::null_mut(), core::ptr::null_mut(), core::ptr::null_mut())
        };
        let ok = st == mpkit::ffi::MPK_ERR_NULL && last == mpkit::ffi::MPK_OK;
        check(rank, "bad input", ok, format!("map status {st}, last_failure status {last}"));
        if rank == 0 {
            println!("ok bad input: a NULL task is MPK_ERR_NULL on every rank; NULL out-parameters are accepted");
        }
    }
    if all || which == "failure" {
        let items: Vec<u64> = if rank == 0 { (0..1_000_000).collect() } else { Vec::new() };
        // The Rust path: a panic is TaskFailed(101).
        let got = mpkit_mpi::map(&world, fails_at, &items, &opts(), 0);
        let ok = matches!(got, Err(Error::Task { error: mpkit::Error::TaskFailed(101), item, .. }) if item == FAIL_AT as usize);
        check(rank, "failure", ok, format!("{:?}", got.as_ref().map(|v| v.len())));
        // The C path: code 7, through mpk_mpi_map and mpk_mpi_last_failure.
        let mut results = vec![0u64; items.len()];
        // SAFETY: 8-byte items and results, sized as passed; the task is code of this program.
        let st = unsafe {
            mpkit_mpi::ffi::mpk_mpi_map(
                core::ptr::null(),
                Some(c_task),
                core::ptr::null_mut(),
                items.as_ptr().cast(),
                8,
                items.len(),
                results.as_mut_ptr().cast(),
                8,
                0,
                &mpkit::ffi::mpk_pool_opts { workers: WORKERS, ..zeroed_opts() },
            )
        };
        let (mut index, mut code, mut at) = (0usize, 0i32, 0i32);
        // SAFETY: writable out-parameters.
        unsafe { mpkit_mpi::ffi::mpk_mpi_last_failure(&mut index, &mut code, &mut at) };
        let ok = st == mpkit::ffi::MPK_ERR_TASK_FAILED && index == FAIL_AT as usize && code == 7;
        check(rank, "failure (C)", ok, format!("status {st}, index {index}, code {code}, rank {at}"));
        if rank == 0 {
            println!(
                "ok failure: item {FAIL_AT} reported on every rank (Rust: TaskFailed(101); C: MPK_ERR_TASK_FAILED, code 7)"
            );
        }
    }
    if all || which == "death" {
        let items: Vec<u64> = if rank == 0 { (0..1_000_000).collect() } else { Vec::new() };
        let got = mpkit_mpi::map(&world, dies_at, &items, &opts(), 0);
        let ok =
            matches!(got, Err(Error::Task { error: mpkit::Error::WorkerDied, item, .. }) if item == DIE_AT as usize);
        check(rank, "death", ok, format!("{:?}", got.as_ref().err()));
        if rank == 0 {
            println!("ok death: the worker that died on item {DIE_AT} reported (WorkerDied) on every rank");
        }
    }
    if all || which == "imap" {
        let items: Vec<u64> = if rank == 0 { (0..100_000).collect() } else { Vec::new() };
        let it = mpkit_mpi::imap_unordered(&world, tiny, &items, &opts(), 1000).expect("imap starts");
        let mut seen = vec![false; items.len()];
        let mut count = 0usize;
        for r in it {
            let (i, v) = r.unwrap_or_else(|e| {
                check(rank, "imap", false, e.to_string());
                unreachable!()
            });
            if v != tiny(i as u64) || seen[i] {
                check(rank, "imap", false, format!("item {i}: {v}"));
            }
            seen[i] = true;
            count += 1;
        }
        check(rank, "imap", count == items.len(), format!("{count} results streamed"));
        if rank == 0 {
            println!("ok imap: 100000 results streamed to rank 0, each once");
        }
    }
    if all || which == "executor" {
        let ex = Executor::new(&world, &opts()).expect("executor");
        if ex.is_root() {
            let futures: Vec<_> = (0..20u64).map(|i| ex.submit(burn, 1000 + i)).collect();
            let got: Vec<u64> = futures.into_iter().map(|f| f.get().expect("task")).collect();
            let serial: Vec<u64> = (0..20u64).map(|i| burn(1000 + i)).collect();
            check(rank, "executor submit", got == serial, "20 futures".into());
            let items: Vec<u64> = (0..50_000).collect();
            let got = ex.map(tiny, &items, 0).expect("map");
            check(
                rank,
                "executor map",
                got == items.iter().map(|&x| tiny(x)).collect::<Vec<_>>(),
                "50000 items".into(),
            );
            let f = ex.submit(fails_at, FAIL_AT);
            let e = f.get();
            check(
                rank,
                "executor failure",
                matches!(e, Err(Error::Task { error: mpkit::Error::TaskFailed(101), .. })),
                format!("{e:?}"),
            );
            ex.shutdown().expect("shutdown");
            println!("ok executor: submit/get, map and a failed future on rank 0, the other ranks serving");
        } else {
            let r = ex.serve();
            check(rank, "executor serve", r.is_ok(), format!("{r:?}"));
        }
    }
    if which == "rank-death" {
        // Not survivable: rank 1 is killed in the middle of a map; mpirun must end the whole job
        // (non-zero), with no rank left hanging.
        let items: Vec<u64> = if rank == 0 { (0..400).map(|i| 1_000_000 + i).collect() } else { Vec::new() };
        if rank == 1 {
            // Started before the map (whose pool forks): it only sleeps, then kills this rank.
            std::thread::spawn(|| {
                std::thread::sleep(std::time::Duration::from_millis(150));
                let me = std::process::id() as libc::pid_t;
                // SAFETY: kills this rank on purpose.
                unsafe { libc::kill(me, libc::SIGKILL) };
            });
        }
        let got = mpkit_mpi::map(&world, burn, &items, &opts(), 1);
        println!("rank {rank}: rank-death map returned {:?}", got.map(|v| v.len()));
        exit(2); // never reached: mpirun ends the job first
    }
    if rank == 0 {
        println!("all MPI checks passed ({which})");
    }
}

fn zeroed_opts() -> mpkit::ffi::mpk_pool_opts {
    mpkit::ffi::mpk_pool_opts {
        struct_size: size_of::<mpkit::ffi::mpk_pool_opts>(),
        workers: 0,
        max_arg: 0,
        max_result: 0,
        maxtasksperchild: 0,
        initializer: None,
        initarg: core::ptr::null_mut(),
        max_tasks: 0,
        arena_bytes: 0,
        task_timeout_ms: 0,
    }
}
