#!/usr/bin/env bash
# CPU benchmarks of dropnas against the PyTorch reference, in the same run, on the same machine:
# one full search step and one augment step at the sizes of docs/benchmarks.md, each timed by
# `dropnas bench` and by tools/reference/bench_*.py (PyTorch, the same work, the same thread count),
# printed as a markdown table with the ratios (dropnas / PyTorch: under 1 means dropnas is faster
# or smaller).
#
#   tools/bench-cpu.sh                 # all sizes (about 15 minutes on 2 cores)
#   QUICK=1 tools/bench-cpu.sh         # the smallest size of each, to try the script
#   THREADS=4 tools/bench-cpu.sh       # thread count of both (default: 2, the issue's setting)
#   ROUNDS=2 tools/bench-cpu.sh        # alternate the two sides twice per size, keep each one's best
#
# Needs `pip install torch numpy` for the PyTorch side. Run it on a quiet machine: both sides
# share the cores with anything else that runs.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS="${THREADS:-2}"
STEPS="${STEPS:-3}"
OUT="${OUT:-target/bench-cpu}"
mkdir -p "$OUT"
cargo build --release -q -p dropnas-cli
BIN=target/release/dropnas
export RAYON_NUM_THREADS="$THREADS"

if [ "${QUICK:-0}" = 1 ]; then
    SEARCH_SIZES="5,8,32"
    AUGMENT_SIZES="8,16,32"
else
    SEARCH_SIZES="5,8,32 8,16,64"
    AUGMENT_SIZES="20,36,32 20,36,96"
fi

field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])['$2'])" "$1"; }
ratio() { python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.2f}')" "$1" "$2"; }
row() { # what ours pytorch
    local ours="$1" theirs="$2" what="$3"
    local t_o t_p m_o m_p
    t_o=$(field "$ours" median_s); t_p=$(field "$theirs" median_s)
    m_o=$(field "$ours" peak_rss_mib); m_p=$(field "$theirs" peak_rss_mib)
    printf '| %s | %.3f | %.3f | %s | %.0f | %.0f | %s |\n' "$what" "$t_o" "$t_p" "$(ratio "$t_o" "$t_p")" \
        "$m_o" "$m_p" "$(ratio "$m_o" "$m_p")" | tee -a "$OUT/table.md"
}

{
    echo "date: $(date -u +%Y-%m-%dT%H:%MZ); cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs);"
    echo "threads: $THREADS; steps: $STEPS timed after 1 warm-up; rounds: ${ROUNDS:-1}; torch $(python3 -c 'import torch; print(torch.__version__)')"
    echo
    echo "| step (layers, channels, batch) | dropnas s | PyTorch s | time ratio | dropnas MiB | PyTorch MiB | memory ratio |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
} | tee "$OUT/table.md"

# the faster of two results (lower median), for ROUNDS > 1
faster() { python3 -c "import json,sys; a,b=[json.loads(v) for v in sys.argv[1:]]; print(json.dumps(a if a['median_s']<=b['median_s'] else b))" "$1" "$2"; }

# ROUNDS alternating runs of each side (default 1); each side keeps its best median, so that a
# slow spell of this shared machine does not land on one side only
ROUNDS="${ROUNDS:-1}"
measure() { # kind layers channels batch
    local kind="$1" l="$2" c="$3" b="$4" ours="" theirs="" o t
    local common=(--layers "$l" --init-channels "$c" --batch-size "$b" --steps "$STEPS")
    local genotype=()
    [ "$kind" = augment ] && genotype=(--genotype dropnas-cifar10)
    for _ in $(seq "$ROUNDS"); do
        o=$("$BIN" bench "$kind" "${genotype[@]}" "${common[@]}" --json)
        t=$(python3 "tools/reference/bench_$kind.py" "${genotype[@]}" "${common[@]}" --threads "$THREADS" --json)
        echo "$kind ($l, $c, $b): dropnas $o; pytorch $t" >> "$OUT/raw.txt"
        ours=${ours:+$(faster "$ours" "$o")}; ours=${ours:-$o}
        theirs=${theirs:+$(faster "$theirs" "$t")}; theirs=${theirs:-$t}
    done
    local what="$kind ($l, $c, $b)"
    [ "$kind" = augment ] && what="augment dropnas-cifar10 ($l, $c, $b)"
    row "$ours" "$theirs" "$what"
}

for size in $SEARCH_SIZES; do
    IFS=, read -r l c b <<< "$size"
    measure search "$l" "$c" "$b"
done
for size in $AUGMENT_SIZES; do
    IFS=, read -r l c b <<< "$size"
    measure augment "$l" "$c" "$b"
done
echo "table: $OUT/table.md; raw JSON: $OUT/raw.txt"
