"""mpi/bench.sh's mpi4py side: the same maps with mpi4py.futures.MPIPoolExecutor.
Run as: mpirun -n R python -m mpi4py.futures mpi/bench_mpi4py.py tiny N CHUNK | heavy N ROUNDS CHUNK
(rank 0 runs this script, the other R-1 ranks are the executor's workers)."""
import sys
import time

from mpi4py.futures import MPIPoolExecutor

M = (1 << 64) - 1


def tiny(x):
    return (x * x + 1) & M


def burn(rounds):
    h = rounds
    for _ in range(rounds):
        h = (h * 6364136223846793005 + 1442695040888963407) & M
        h ^= h >> 33
    return h


def main():
    what, n = sys.argv[1], int(sys.argv[2])
    if what == "heavy":
        rounds, chunk = int(sys.argv[3]), int(sys.argv[4])
        f, items = burn, [rounds + i for i in range(n)]
    else:
        chunk = int(sys.argv[3])
        f, items = tiny, list(range(n))
    with MPIPoolExecutor() as ex:
        ex.submit(tiny, 1).result()  # workers up before the clock starts
        t = time.perf_counter()
        got = list(ex.map(f, items, chunksize=chunk))
        secs = time.perf_counter() - t
        workers = ex.num_workers
    check = items[:10] if what == "heavy" else items  # a serial burn in Python is slow
    assert got[: len(check)] == [f(x) for x in check], "results differ from a serial run"
    label = f"heavy burn({rounds})" if what == "heavy" else "tiny"
    print(f"mpi4py {label}: {n} items on {workers} worker ranks (+ rank 0): {secs:.3f} s, {n / secs:.0f} tasks/s")


if __name__ == "__main__":
    main()
