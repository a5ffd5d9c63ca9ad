#!/usr/bin/env bash
# A second mpkit-bench in the same anchors run (an A/B: benches/anchors.sh with MPK_AB_BIN):
# runs "$MPK_AB_BIN" with the harness's arguments, lists only the ids matching $MPK_AB_IDS
# (an extended regex; all by default), and renames its figures kit_* -> kit<MPK_AB_TAG>_* on
# stdout and stderr, so both builds' figures sit side by side in one table.
set -uo pipefail
bin=${MPK_AB_BIN:?}
tag=${MPK_AB_TAG:-base}
if [ "${1:-}" = --list ]; then
    "$bin" --list | grep -E "^(${MPK_AB_IDS:-.*}) "
    exit 0
fi
{ "$bin" "$@" 2>&1 1>&3 | sed "s/\.kit_/.kit${tag}_/" >&2; } 3>&1 | sed "s/\.kit_/.kit${tag}_/"
exit "${PIPESTATUS[0]}"
