#!/usr/bin/env bash
# GPU checks, prepared for the `device` tool: a machine with an NVIDIA H200 GPU, PyTorch, and
# neither Rust nor network. The binary is built here and carried there.
#
#   tools/gpu-check.sh build    # here: dropnas with the cuda and wgpu backends -> .gpu/dropnas
#   tools/gpu-check.sh run      # there: selftest on each GPU backend, `dropnas bench` on each,
#                               # PyTorch timings of the same steps; all figures into $OUT
#
# The device call carries `.gpu` (and `.gl`, the Vulkan loader packages of the device tool's
# README, for wgpu), e.g. command `tools/gpu-check.sh run`, carry [".gpu", ".gl"], timeout 600.
# A dry run of the whole script on a CPU: BACKENDS=cpu QUICK=1 tools/gpu-check.sh run
set -uo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"
BIN="${BIN:-.gpu/dropnas}"

if [ "$mode" = build ]; then
    set -e
    cargo build --release -p dropnas-cli --features cuda,wgpu
    mkdir -p .gpu
    cp target/release/dropnas .gpu/dropnas
    strip .gpu/dropnas || true
    ls -la .gpu/dropnas
    exit 0
fi

OUT="${OUT:-/tmp/gpu-check}"
mkdir -p "$OUT"
BACKENDS="${BACKENDS:-cuda wgpu}"
results="$OUT/results.jsonl"
: > "$results"
log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" | tee -a "$OUT/log.txt"; }

# wgpu needs a Vulkan loader; the device image may lack it (see the device tool's README)
if [ -d .gl ]; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
    export VK_DRIVER_FILES="${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}"
fi
command -v nvidia-smi >/dev/null && nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
[ -x "$BIN" ] || BIN=target/release/dropnas
log "binary: $BIN; backends: $BACKENDS; $(uname -m)"

if [ "${QUICK:-0}" = 1 ]; then
    SEARCH_SIZES="3,4,8 5,8,16"
    AUGMENT_SIZES="5,8,8"
    STEPS=2
else
    SEARCH_SIZES="8,16,64 14,16,96"
    AUGMENT_SIZES="20,36,96"
    STEPS=5
fi

record() { # what backend json
    printf '{"what":"%s","backend":"%s","result":%s}\n' "$1" "$2" "$3" >> "$results"
}

for backend in $BACKENDS; do
    device="$backend"
    [ "$backend" = cuda ] && device=cuda:0
    log "selftest on $device"
    timeout 120 "$BIN" selftest --device "$device" > "$OUT/selftest-$backend.txt" 2>&1
    log "  selftest rc=$? ($(tail -1 "$OUT/selftest-$backend.txt"))"
    for size in $SEARCH_SIZES; do
        IFS=, read -r l c b <<< "$size"
        r=$(timeout 200 "$BIN" bench search --layers "$l" --init-channels "$c" --batch-size "$b" \
            --steps "$STEPS" --warmup 2 --device "$device" --json 2>> "$OUT/log.txt") || r='{"error":true}'
        record "search L$l C$c B$b" "$backend" "$r"
        log "  search ($l, $c, $b): $r"
    done
    for size in $AUGMENT_SIZES; do
        IFS=, read -r l c b <<< "$size"
        r=$(timeout 200 "$BIN" bench augment --genotype dropnas-cifar10 --layers "$l" --init-channels "$c" \
            --batch-size "$b" --steps "$STEPS" --warmup 2 --device "$device" --json 2>> "$OUT/log.txt") || r='{"error":true}'
        record "augment L$l C$c B$b" "$backend" "$r"
        log "  augment ($l, $c, $b): $r"
    done
done

# PyTorch on the same GPU (or the CPU in a dry run), same steps
pt_device=cuda
case " $BACKENDS " in *" cuda "*|*" wgpu "*) ;; *) pt_device=cpu ;; esac
for size in $SEARCH_SIZES; do
    IFS=, read -r l c b <<< "$size"
    r=$(timeout 300 python3 tools/reference/bench_search.py --layers "$l" --init-channels "$c" --batch-size "$b" \
        --steps "$STEPS" --warmup 2 --device "$pt_device" --threads "$(nproc)" --json 2>> "$OUT/log.txt") || r='{"error":true}'
    record "search L$l C$c B$b" "pytorch-$pt_device" "$r"
    log "  pytorch search ($l, $c, $b): $r"
done
for size in $AUGMENT_SIZES; do
    IFS=, read -r l c b <<< "$size"
    r=$(timeout 300 python3 tools/reference/bench_augment.py --genotype dropnas-cifar10 --layers "$l" \
        --init-channels "$c" --batch-size "$b" --steps "$STEPS" --warmup 2 --device "$pt_device" \
        --threads "$(nproc)" --json 2>> "$OUT/log.txt") || r='{"error":true}'
    record "augment L$l C$c B$b" "pytorch-$pt_device" "$r"
    log "  pytorch augment ($l, $c, $b): $r"
done
log "done: $results"
