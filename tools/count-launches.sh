#!/usr/bin/env bash
# Kernel launches per DropNAS search step on a CubeCL backend (wgpu, CUDA), from CubeCL's own
# profiling log at level "minimal" (one line per launched kernel, no timing, no synchronisation).
#
#   BIN=target/release/dropnas DEVICE=wgpu tools/count-launches.sh [LAYERS CHANNELS BATCH]
#
# `dropnas bench search` runs W warm-up and S timed steps; two runs that differ only in S
# (after a first run that fills CubeCL's autotune cache, so that the warm-up launches the same
# kernels every time) give the launches of the extra steps: their difference over the step
# difference is the mean per step. The steps draw the same dropout masks in both runs.
# Build BIN with and without the `fusion` feature to compare the two.
set -euo pipefail
BIN="$(realpath "${BIN:-target/release/dropnas}")"
DEVICE="${DEVICE:-wgpu}"
L="${1:-5}" C="${2:-8}" B="${3:-16}"
WARMUP="${WARMUP:-2}" S1="${S1:-1}" S2="${S2:-4}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat > "$work/cubecl.toml" <<EOF
[profiling.logger]
level = "minimal"
file = "$work/launches.log"
append = true

[autotune]
cache = "local"
EOF
launches() { # steps -> launches logged by one bench run
    : > "$work/launches.log"
    (cd "$work" && "$BIN" bench search --layers "$L" --init-channels "$C" --batch-size "$B" \
        --steps "$1" --warmup "$WARMUP" --device "$DEVICE" --json > /dev/null)
    sleep 1 # the logger writes from its own thread
    grep -c '^Executing' "$work/launches.log" || true
}
launches "$S1" > /dev/null # fills the autotune cache
n1=$(launches "$S1")
n2=$(launches "$S2")
per_step=$(python3 -c "print(round(($n2 - $n1) / ($S2 - $S1), 1))")
echo "{\"device\":\"$DEVICE\",\"layers\":$L,\"channels\":$C,\"batch\":$B,\"runs\":{\"$S1\":$n1,\"$S2\":$n2},\"launches_per_step\":$per_step}"
