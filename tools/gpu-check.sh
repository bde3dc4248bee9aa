#!/usr/bin/env bash
# GPU checks, prepared for the `device` tool: a machine with an NVIDIA H200 GPU, PyTorch, and
# neither Rust nor network. The binaries are built here and carried there.
#
#   tools/gpu-check.sh build          # here: dropnas with the cuda and wgpu backends, once without
#                                     # and once with Burn's kernel fusion -> .gpu/dropnas-{plain,fusion}.gz
#   tools/gpu-check.sh run            # there, one call under 10 minutes: selftest (the PyTorch fixtures
#                                     # and the first steps against the CPU) on CUDA and wgpu; the search
#                                     # step at (8, 16, 64) and (14, 16, 96) and the augment step at
#                                     # (20, 36, 96) with and without fusion; the PyTorch reference's steps
#                                     # on the same GPU; the 76-epoch search estimate. Into $OUT:
#                                     # results.jsonl, log.txt, gpu-section.md
#   tools/gpu-check.sh publish DIR    # here: DIR/gpu-section.md into docs/benchmarks.md (between the
#                                     # gpu-check markers)
#
# The device call carries `.gpu` (and `.gl`, the Vulkan loader packages of the device tool's README,
# for wgpu): command `tools/gpu-check.sh run`, carry [".gpu", ".gl"], timeout 600.
# The most important figures run first (CUDA, fused and not, then PyTorch, then wgpu); whatever is
# left when DEADLINE_S (default 540) seconds have passed is skipped and said so.
# A dry run of the whole script on a CPU: BACKENDS=cpu VARIANTS=plain QUICK=1 tools/gpu-check.sh run
set -uo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"

if [ "$mode" = build ]; then
    set -e
    mkdir -p .gpu
    for variant in plain fusion; do
        features=cuda,wgpu
        [ "$variant" = fusion ] && features=cuda,wgpu,fusion
        # one target folder per variant: switching features does not rebuild the other
        CARGO_TARGET_DIR="target/gpu-$variant" cargo build --release -p dropnas-cli --features "$features"
        cp "target/gpu-$variant/release/dropnas" ".gpu/dropnas-$variant"
        strip ".gpu/dropnas-$variant" || true
        gzip -9f ".gpu/dropnas-$variant"  # two binaries fit the 64 MiB a call carries
    done
    ls -la .gpu
    exit 0
fi

if [ "$mode" = publish ]; then
    dir="${2:?usage: tools/gpu-check.sh publish DIR, the folder holding gpu-section.md}"
    python3 - "$dir/gpu-section.md" docs/benchmarks.md <<'EOF'
import sys
section, doc = open(sys.argv[1]).read().strip(), open(sys.argv[2]).read()
begin, end = "<!-- gpu-check:begin -->", "<!-- gpu-check:end -->"
i, j = doc.index(begin) + len(begin), doc.index(end)
open(sys.argv[2], "w").write(doc[:i] + "\n" + section + "\n" + doc[j:])
print("docs/benchmarks.md: GPU section replaced")
EOF
    exit $?
fi

OUT="${OUT:-/tmp/gpu-check}"
mkdir -p "$OUT"
BACKENDS="${BACKENDS:-cuda wgpu}"
VARIANTS="${VARIANTS:-fusion plain}"
DEADLINE_S="${DEADLINE_S:-540}"
results="$OUT/results.jsonl"
: > "$results"
started=$(date +%s)
log() { printf '[%s +%3ds] %s\n' "$(date -u +%H:%M:%S)" $(($(date +%s) - started)) "$*" | tee -a "$OUT/log.txt"; }
left() { echo $((DEADLINE_S - ($(date +%s) - started))); }
# `budget N`: true when N more seconds fit before the deadline (else says what is skipped)
budget() {
    if [ "$(left)" -lt "$1" ]; then
        log "  skipped (deadline): $2"
        printf '{"what":"%s","skipped":"deadline"}\n' "$2" >> "$results"
        return 1
    fi
}

# wgpu needs a Vulkan loader; the device image may lack it (see the device tool's README)
if [ -d .gl ]; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
    export VK_DRIVER_FILES="${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}"
fi
command -v nvidia-smi >/dev/null && nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
gpu_name=$(nvidia-smi -L 2>/dev/null | head -1 | sed 's/ (UUID.*//')
mkdir -p /tmp/gpu-bin
for variant in $VARIANTS; do
    bin="/tmp/gpu-bin/dropnas-$variant"
    if [ -f ".gpu/dropnas-$variant.gz" ]; then
        gunzip -c ".gpu/dropnas-$variant.gz" > "$bin" && chmod +x "$bin"
    else
        cp target/release/dropnas "$bin"  # a dry run: the local build
    fi
done
log "backends: $BACKENDS; variants: $VARIANTS; $(uname -m); deadline ${DEADLINE_S}s"

if [ "${QUICK:-0}" = 1 ]; then
    SEARCH_SIZES="3,4,8 5,8,16"
    AUGMENT_SIZES="5,8,8"
    STEPS=2
else
    SEARCH_SIZES="8,16,64 14,16,96"
    AUGMENT_SIZES="20,36,96"
    STEPS=5
fi

record() { # what backend variant json
    printf '{"what":"%s","backend":"%s","variant":"%s","result":%s}\n' "$1" "$2" "$3" "$4" >> "$results"
}

device_of() { [ "$1" = cuda ] && echo cuda:0 || echo "$1"; }

selftest() { # backend variant
    local bin="/tmp/gpu-bin/dropnas-$2" device
    device=$(device_of "$1")
    budget 60 "selftest $1 $2" || return
    log "selftest on $device ($2)"
    timeout 150 "$bin" selftest --device "$device" > "$OUT/selftest-$1-$2.txt" 2>&1
    local rc=$?
    log "  rc=$rc: $(tail -1 "$OUT/selftest-$1-$2.txt")"
    record "selftest" "$1" "$2" "{\"rc\":$rc}"
}

benches() { # backend variant
    local bin="/tmp/gpu-bin/dropnas-$2" device l c b r
    device=$(device_of "$1")
    for size in $SEARCH_SIZES; do
        IFS=, read -r l c b <<< "$size"
        budget 45 "search ($l, $c, $b) $1 $2" || continue
        r=$(timeout 150 "$bin" bench search --layers "$l" --init-channels "$c" --batch-size "$b" \
            --steps "$STEPS" --warmup 2 --device "$device" --json 2>> "$OUT/log.txt") || r='{"error":true}'
        record "search L$l C$c B$b" "$1" "$2" "$r"
        log "  search ($l, $c, $b) $1 $2: $r"
    done
    for size in $AUGMENT_SIZES; do
        IFS=, read -r l c b <<< "$size"
        budget 45 "augment ($l, $c, $b) $1 $2" || continue
        r=$(timeout 150 "$bin" bench augment --genotype dropnas-cifar10 --layers "$l" --init-channels "$c" \
            --batch-size "$b" --steps "$STEPS" --warmup 2 --device "$device" --json 2>> "$OUT/log.txt") || r='{"error":true}'
        record "augment L$l C$c B$b" "$1" "$2" "$r"
        log "  augment ($l, $c, $b) $1 $2: $r"
    done
}

pytorch() {
    local pt_device=cuda l c b r
    case " $BACKENDS " in *" cuda "*|*" wgpu "*) ;; *) pt_device=cpu ;; esac
    for size in $SEARCH_SIZES; do
        IFS=, read -r l c b <<< "$size"
        budget 45 "pytorch search ($l, $c, $b)" || continue
        r=$(timeout 150 python3 tools/reference/bench_search.py --layers "$l" --init-channels "$c" --batch-size "$b" \
            --steps "$STEPS" --warmup 2 --device "$pt_device" --threads "$(nproc)" --json 2>> "$OUT/log.txt") || r='{"error":true}'
        record "search L$l C$c B$b" "pytorch-$pt_device" "-" "$r"
        log "  pytorch search ($l, $c, $b): $r"
    done
    for size in $AUGMENT_SIZES; do
        IFS=, read -r l c b <<< "$size"
        budget 45 "pytorch augment ($l, $c, $b)" || continue
        r=$(timeout 150 python3 tools/reference/bench_augment.py --genotype dropnas-cifar10 --layers "$l" \
            --init-channels "$c" --batch-size "$b" --steps "$STEPS" --warmup 2 --device "$pt_device" \
            --threads "$(nproc)" --json 2>> "$OUT/log.txt") || r='{"error":true}'
        record "augment L$l C$c B$b" "pytorch-$pt_device" "-" "$r"
        log "  pytorch augment ($l, $c, $b): $r"
    done
}

# Most important first: the first backend (CUDA) in every variant, PyTorch, then the others.
first="${BACKENDS%% *}"
for variant in $VARIANTS; do
    selftest "$first" "$variant"
    benches "$first" "$variant"
done
pytorch
for backend in $BACKENDS; do
    [ "$backend" = "$first" ] && continue
    for variant in $VARIANTS; do
        selftest "$backend" "$variant"
        benches "$backend" "$variant"
    done
done

# The markdown section for docs/benchmarks.md (tools/gpu-check.sh publish DIR), with the
# 76-epoch estimate: CIFAR-10's 50,000 training images in batches of 96 (521 steps per epoch).
python3 - "$results" "$OUT/gpu-section.md" "$(date -u '+%Y-%m-%d %H:%M UTC')" "${gpu_name:-}" <<'EOF'
import json, math, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
when, gpu = sys.argv[3], sys.argv[4] or "unknown GPU"
out = [f"`tools/gpu-check.sh run` on {gpu}, {when} (median s/step over the timed steps after 2 warm-up steps; "
       "`plain` = without Burn's fusion, `fusion` = with it).", "",
       "| step | backend | variant | s/step | min | max | peak RSS MiB |", "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
search_paper = {}
for r in rows:
    res = r.get("result")
    if r.get("what") == "selftest" or not isinstance(res, dict):
        continue
    if "median_s" not in res:
        out.append(f"| {r['what']} | {r['backend']} | {r['variant']} | failed | | | |")
        continue
    out.append(f"| {r['what']} | {r['backend']} | {r['variant']} | {res['median_s']:.4f} | {res['min_s']:.4f} | "
               f"{res['max_s']:.4f} | {res.get('peak_rss_mib', float('nan')):.0f} |")
    if r["what"] == "search L14 C16 B96":
        search_paper[(r["backend"], r["variant"])] = res["median_s"]
out.append("")
for r in rows:
    if r.get("what") == "selftest":
        out.append(f"- selftest {r['backend']} ({r['variant']}): {'passed' if r['result']['rc'] == 0 else 'FAILED'}")
    if r.get("skipped"):
        out.append(f"- skipped for time: {r['what']}")
steps = 76 * math.ceil(50000 / 96)
for (backend, variant), s in sorted(search_paper.items()):
    out.append(f"- 76-epoch CIFAR-10 search at (14, 16, 96), {backend} {variant}: {steps} steps x {s:.3f} s = "
               f"{steps * s / 3600:.2f} h (steps only; the goal is under 2 h, 0.18 s/step)")
open(sys.argv[2], "w").write("\n".join(out) + "\n")
print("\n".join(out))
EOF
log "done: $results, $OUT/gpu-section.md"
