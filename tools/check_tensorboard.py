#!/usr/bin/env python3
"""Checks that TensorBoard itself reads the event files dropnas writes (`RUN_DIR/tb/`).

    pip install tensorboard
    python3 tools/check_tensorboard.py RUN_DIR [RUN_DIR ...]

For each run folder (after `dropnas report RUN_DIR`, or after any epoch of a search or augment
run, which rewrite `tb/`), loads `tb/` with TensorBoard's EventAccumulator (the loader behind
`tensorboard --logdir`, which also checks the records' CRCs) and compares its scalars with
`metrics.jsonl`: `train/loss`, `train/top1`, `train/top5` at every step's global step,
`train/lr` at the first step of every epoch, and `val/loss`, `val/top1`, `val/top5` (augment runs)
at the global step that ends the epoch, as the original's tensorboardX calls had them.
Exits 1 on the first mismatch, 0 when every run folder matches.
"""

import json
import math
import os
import sys

from tensorboard.backend.event_processing import event_accumulator


def expected_scalars(metrics_path):
    steps, epochs = [], []
    with open(metrics_path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            v = json.loads(line)
            if v.get("kind") == "step":
                steps.append(v)
            elif v.get("kind") == "epoch":
                epochs.append(v)
    want = {"train/loss": [], "train/top1": [], "train/top5": [], "train/lr": []}
    last_step = {}
    prev_epoch = None
    for s in steps:
        g = s["global_step"]
        if s["epoch"] != prev_epoch and s.get("lr") is not None:
            want["train/lr"].append((g, s["lr"]))
        prev_epoch = s["epoch"]
        for tag, key in (("train/loss", "loss"), ("train/top1", "top1"), ("train/top5", "top5")):
            if s.get(key) is not None:
                want[tag].append((g, s[key]))
        last_step[s["epoch"]] = max(g, last_step.get(s["epoch"], -1))
    spe = max((s["step"] + 1 for s in steps), default=1)
    for e in epochs:
        step = last_step[e["epoch"]] + 1 if e["epoch"] in last_step else e["epoch"] * spe
        for tag, key in (("val/loss", "val_loss"), ("val/top1", "val_top1"), ("val/top5", "val_top5")):
            if e.get(key) is not None:
                want.setdefault(tag, []).append((step, e[key]))
    return {t: v for t, v in want.items() if v}


def check(run_dir):
    tb_dir = os.path.join(run_dir, "tb")
    files = [f for f in os.listdir(tb_dir) if "tfevents" in f] if os.path.isdir(tb_dir) else []
    if not files:
        return f"{run_dir}: no event file in {tb_dir}"
    acc = event_accumulator.EventAccumulator(tb_dir, size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    got_tags = sorted(acc.Tags()["scalars"])
    want = expected_scalars(os.path.join(run_dir, "metrics.jsonl"))
    if got_tags != sorted(want):
        return f"{run_dir}: TensorBoard sees tags {got_tags}, metrics.jsonl gives {sorted(want)}"
    n = 0
    for tag, points in want.items():
        got = [(e.step, e.value) for e in acc.Scalars(tag)]
        if len(got) != len(points):
            return f"{run_dir}: {tag}: {len(got)} points in TensorBoard, {len(points)} in metrics.jsonl"
        for (gs, gv), (ws, wv) in zip(got, points):
            if gs != ws or not math.isclose(gv, wv, rel_tol=1e-6, abs_tol=1e-7):
                return f"{run_dir}: {tag}: TensorBoard has ({gs}, {gv}), metrics.jsonl ({ws}, {wv})"
        walls = [e.wall_time for e in acc.Scalars(tag)]
        if any(b < a for a, b in zip(walls, walls[1:])):
            return f"{run_dir}: {tag}: wall times go backwards"
        n += len(points)
    print(f"ok {run_dir}: {len(want)} tags, {n} scalars match ({', '.join(sorted(want))})")
    return None


def main(argv):
    if not argv:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    for run_dir in argv:
        err = check(run_dir)
        if err:
            print("FAIL " + err, file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
