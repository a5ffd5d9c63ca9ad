//! mpi/bench.sh's mpkit-mpi side: `mpi_bench tiny N` (x -> x*x+1 over u64) or
//! `mpi_bench heavy N ROUNDS WORKERS` (the tutorial's `burn`), automatic chunks, checked against
//! a serial run afterwards. Timed on rank 0: `Executor::map` (pools already started, as
//! mpi4py's executor workers are), then the collective `mpkit_mpi::map`, which starts each
//! rank's pool inside the call.

use std::time::Instant;

use mpi::topology::Communicator;
use mpkit::PoolOptions;

fn tiny(x: u64) -> u64 {
    x.wrapping_mul(x).wrapping_add(1)
}

fn burn(rounds: u64) -> u64 {
    let mut h = rounds;
    for _ in 0..rounds {
        h = h.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        h ^= h >> 33;
    }
    h
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: u64| a.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let (heavy, n) = (a.get(1).is_some_and(|s| s == "heavy"), arg(2, 200_000));
    let (rounds, workers) = (arg(3, 2_000_000), arg(4, 2) as usize);
    let (_universe, _) = mpi::initialize_with_threading(mpi::Threading::Funneled).expect("MPI");
    let world = mpi::topology::SimpleCommunicator::world();
    let (rank, ranks) = (world.rank(), world.size());
    let f: fn(u64) -> u64 = if heavy { burn } else { tiny };
    let items: Vec<u64> = if rank != 0 {
        Vec::new()
    } else if heavy {
        (0..n).map(|i| rounds + i).collect()
    } else {
        (0..n).collect()
    };
    let opts = PoolOptions { workers, ..PoolOptions::default() };
    let what = if heavy { format!("heavy burn({rounds})") } else { "tiny".into() };
    let report = |how: &str, got: &[u64], secs: f64| {
        assert!(got.iter().zip(&items).all(|(&r, &x)| r == f(x)), "results differ from a serial run");
        println!(
            "mpkit-mpi {how} {what}: {n} items on {ranks} ranks x {workers} workers: {secs:.3} s, {:.0} tasks/s",
            n as f64 / secs
        );
    };
    {
        let ex = mpkit_mpi::Executor::new(&world, &opts).expect("executor");
        if ex.is_root() {
            ex.map(f, &items[..1.min(items.len())], 0).expect("warm-up");
            let t = Instant::now();
            let got = ex.map(f, &items, 0).expect("map");
            report("Executor::map", &got, t.elapsed().as_secs_f64());
        } else {
            ex.serve().expect("serve");
        }
    }
    let t = Instant::now();
    let got = mpkit_mpi::map(&world, f, &items, &opts, 0).expect("map");
    let secs = t.elapsed().as_secs_f64();
    if rank == 0 {
        report("map (pools started in the call)", &got, secs);
    }
}
