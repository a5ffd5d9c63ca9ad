#!/usr/bin/env bash
# mpkit-mpi beside mpi4py.futures.MPIPoolExecutor on the same ranks, both timed around one map
# on an executor whose workers are up (mpkit-mpi also prints its collective map, pools started
# in the call) (not part of CI: it installs
# mpi4py from PyPI into a venv, target/mpi4py-venv). Prints tasks/s for a tiny map, the heavy
# map's times, and mpkit-mpi's speed-up on 2 ranks x 1 worker over 1 rank x 1 worker.
#   mpi/bench.sh [TINY_N=200000] [HEAVY_N=200] [ROUNDS=2000000] [PY_ROUNDS=200000]
set -euo pipefail
cd "$(dirname "$0")/.."
TINY_N=${1:-200000} HEAVY_N=${2:-200} ROUNDS=${3:-2000000} PY_ROUNDS=${4:-200000}
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
run() { timeout 600 mpirun --oversubscribe -n "$@"; }

cargo build -q --release -p mpkit-mpi --example mpi_bench
BIN=target/release/examples/mpi_bench
VENV=target/mpi4py-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import mpi4py' 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q mpi4py
fi
PY=("$VENV/bin/python" -m mpi4py.futures mpi/bench_mpi4py.py)
echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg); $(mpirun --version | head -n 1); mpi4py $("$VENV/bin/python" -c 'import mpi4py; print(mpi4py.__version__)')"

# The same chunk size on both sides: mpkit-mpi's automatic one, n / (3 ranks x 2 workers x 16).
CHUNK=$((TINY_N / 96))
echo "== tiny map of $TINY_N items, 3 ranks (mpi4py: chunksize $CHUNK; mpkit-mpi: automatic, the same)"
rate() { grep -o '[0-9]* tasks/s' | sed -n 1p | cut -d' ' -f1; }
py_tiny=$(run 3 "${PY[@]}" tiny "$TINY_N" "$CHUNK" | tee >(cat >&2) | rate)
py_tiny1=$(run 3 "${PY[@]}" tiny "$TINY_N" 1 | tee >(cat >&2) | rate)
mk_tiny=$(run 3 "$BIN" tiny "$TINY_N" | tee >(cat >&2) | rate)
ratio() { awk "BEGIN { printf \"%.1f\", $1 / $2 }"; }
echo "tiny: mpkit-mpi Executor::map $mk_tiny tasks/s; mpi4py $py_tiny tasks/s at chunksize $CHUNK ($(ratio "$mk_tiny" "$py_tiny")x), $py_tiny1 at its default chunksize 1 ($(ratio "$mk_tiny" "$py_tiny1")x)"

echo "== heavy map of $HEAVY_N items of burn($PY_ROUNDS), 3 ranks (mpi4py: 2 worker ranks, chunksize 1)"
run 3 "${PY[@]}" heavy "$HEAVY_N" "$PY_ROUNDS" 1
run 3 "$BIN" heavy "$HEAVY_N" "$PY_ROUNDS" 2

echo "== mpkit-mpi heavy map of $HEAVY_N items of burn($ROUNDS): 1 rank x 1 worker, then 2 ranks x 1 worker"
secs() { grep -o '[0-9.]* s,' | sed -n 1p | cut -d' ' -f1; }
t1=$(run 1 "$BIN" heavy "$HEAVY_N" "$ROUNDS" 1 | tee >(cat >&2) | secs)
t2=$(run 2 "$BIN" heavy "$HEAVY_N" "$ROUNDS" 1 | tee >(cat >&2) | secs)
echo "speed-up 2 ranks x 1 worker over 1 rank x 1 worker (Executor::map): $(awk "BEGIN { printf \"%.2f\", $t1 / $t2 }")x"
