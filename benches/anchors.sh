#!/usr/bin/env bash
# Puts mpkit beside what users would pick instead, in one run of ../shared/anchors:
# builds mpkit-bench, runs the anchors' run_all.sh in a private copy (shared/ stays untouched)
# and keeps the run's TSV in benches/results/. Extra arguments are ignored; env as run_all.sh
# (ANCHOR_SCALE, ANCHOR_REPS, ANCHOR_TOTAL_BUDGET). An A/B in the same run: MPK_AB_BIN=<another
# mpkit-bench> [MPK_AB_TAG=<name>] [MPK_AB_IDS='queue_.*|pipe_.*'] adds that build's figures,
# renamed kit<name>_* (see benches/renamed.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
anchors=${ANCHORS_DIR:-$root/../shared/anchors}
if [ ! -x "$anchors/run_all.sh" ]; then
    echo "benches/anchors.sh: no anchors harness at $anchors (run_all.sh missing)." >&2
    echo "It is not part of this repository: put it at ../shared/anchors or set ANCHORS_DIR." >&2
    exit 2
fi
cargo build -q --release --example mpkit-bench
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$anchors"/. "$work"/
chmod -R u+w "$work"
mkdir -p "$root/benches/results"
extra="kit=$root/target/release/examples/mpkit-bench"
if [ -n "${MPK_AB_BIN:-}" ]; then
    extra="$extra;${MPK_AB_TAG:-base}=$root/benches/renamed.sh"
fi
ANCHOR_EXTRA="$extra" \
ANCHOR_OUT="$root/benches/results/anchors-run-$(date +%Y%m%dT%H%M%S).tsv" \
    "$work/run_all.sh"
