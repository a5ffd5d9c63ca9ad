#!/usr/bin/env bash
# The MPI checks (.ci/run's last step): mpkit-mpi's lints and cargo tests (header drift), then the
# checks that need an MPI job, run under `mpirun --oversubscribe -n 3` on this machine (cargo's
# test runners cannot start MPI jobs): mpi/examples/mpi_tests.rs and c-examples/mpi_map.c.
# Installs Open MPI and libclang (rsmpi's bindgen) from the distribution's packages when mpicc is
# missing and we are root; missing and not root is a failure, not a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
T0=$SECONDS
say() { printf -- '-- mpi: %s (%ss)\n' "$*" "$((SECONDS - T0))"; }

if ! command -v mpicc >/dev/null || ! command -v mpirun >/dev/null || ! ls /usr/lib/*/libclang*.so* >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing openmpi-bin libopenmpi-dev libclang-dev"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openmpi-bin libopenmpi-dev libclang-dev >/dev/null
    else
        echo "mpi: mpicc/mpirun/libclang missing; install openmpi-bin libopenmpi-dev libclang-dev (as root)" >&2
        exit 1
    fi
fi
if [ "$(id -u)" = 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
MPIRUN=(timeout 120 mpirun --oversubscribe -n 3)
T=${CARGO_TARGET_DIR:-target}

say "clippy -D warnings (mpkit-mpi only: --no-deps)"
cargo clippy -q -p mpkit-mpi --all-targets --no-deps -- -D warnings

say "cargo test -p mpkit-mpi (header drift; builds the test program)"
cargo test -q --release -p mpkit-mpi
make -s mpi TARGET="$T"

expect() { # expect OUTPUT LINE...: every LINE appears in OUTPUT
    local out=$1; shift
    for line in "$@"; do
        grep -qxF -- "$line" <<<"$out" || { printf '%s\nmpi: missing line: %s\n' "$out" "$line" >&2; exit 1; }
    done
}

say "mpirun -n 3: 1 M tiny and 200 CPU-heavy items (3 ranks x 2 workers), a task failure, a worker death, imap_unordered, the executor"
out=$("${MPIRUN[@]}" "$T"/release/examples/mpi_tests all 2>&1) || { printf '%s\n' "$out" >&2; exit 1; }
grep -E '^ok |tasks/s|s\)$' <<<"$out" || true
expect "$out" \
    "ok tiny: 1000000 items on 3 ranks x 2 workers identical to a serial run" \
    "ok heavy: 200 CPU-heavy items on 3 ranks x 2 workers identical to a serial run" \
    "ok failure: item 777777 reported on every rank (Rust: TaskFailed(101); C: MPK_ERR_TASK_FAILED, code 7)" \
    "ok death: the worker that died on item 123456 reported (WorkerDied) on every rank" \
    "ok imap: 100000 results streamed to rank 0, each once" \
    "ok executor: submit/get, map and a failed future on rank 0, the other ranks serving" \
    "ok bad input: a NULL task is MPK_ERR_NULL on every rank; NULL out-parameters are accepted" \
    "all MPI checks passed (all)"

say "mpirun -n 3: a rank killed mid-map ends the job (non-zero), nobody hangs"
rc=0
out=$("${MPIRUN[@]}" "$T"/release/examples/mpi_tests rank-death 2>&1) || rc=$?
if [ "$rc" = 0 ] || [ "$rc" = 124 ]; then
    printf '%s\nmpi: rank-death: exit %s (want non-zero, not the timeout)\n' "$out" "$rc" >&2
    exit 1
fi
grep -q "mpirun noticed that process rank 1 .* exited on signal 9" <<<"$out" || { printf '%s\n' "$out" >&2; exit 1; }
echo "rank-death: mpirun exited $rc: $(grep -o 'mpirun noticed.*' <<<"$out")"

say "c-examples/mpi_map.c: mpicc against libmpkit_mpi.a, mpirun -n 3"
mkdir -p c-examples/build
mpicc -std=c99 -Wall -Wextra -Wpedantic -Werror -O2 -Iinclude c-examples/mpi_map.c "$T"/release/libmpkit_mpi.a \
    -lpthread -ldl -lm -o c-examples/build/mpi_map
out=$("${MPIRUN[@]}" c-examples/build/mpi_map 200 2000000 2 2>&1) || { printf '%s\n' "$out" >&2; exit 1; }
printf '%s\n' "$out"
expect "$out" "items: 200" "sum: 2334280699792012150" "identical to serial: yes"

say "all green"
