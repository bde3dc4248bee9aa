#!/usr/bin/env python3
"""Checks that TensorBoard itself reads the event files dropnas writes, as it writes them.

    pip install tensorboard
    python3 tools/check_tensorboard.py RUN_DIR [RUN_DIR ...]
    python3 tools/check_tensorboard.py --live DROPNAS [ARGS ...]

RUN_DIR mode: loads the run folder's event file (`RUN_DIR/events.out.tfevents.*`, written by the
run as it goes; `RUN_DIR/tb/` for folders that `dropnas report` filled from metrics.jsonl) with
TensorBoard's EventAccumulator (the loader behind `tensorboard --logdir`, which also checks the
records' CRCs) and compares its scalars with metrics.jsonl: `train/loss`, `train/top1`,
`train/top5` at every step's global step, `train/lr` at the first step of every epoch,
`val/loss`, `val/top1`, `val/top5` (augment runs) and the collapse monitor's `search/*` (searches)
at the global step that ends the epoch, and the loss terms (`train/ce`, `train/reg`, `train/ce_aux`) where the run has them.

--live mode: starts `DROPNAS ARGS` (a search or augment command; its --out-dir and --name give the
run folder), and while it runs keeps ONE accumulator reloading the run folder, as a TensorBoard
server started before the run does (it tails files by offset). Checks that points arrive before
the first epoch ends and keep arriving, and that at the end the same accumulator holds every
point of metrics.jsonl (a file rewritten instead of appended would freeze it).

Exits 1 on the first mismatch, 0 when everything matches.
"""

import json
import math
import os
import subprocess
import sys
import time

from tensorboard.backend.event_processing import event_accumulator


def read_metrics(metrics_path):
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
    return steps, epochs


def expected_scalars(metrics_path, terms):
    steps, epochs = read_metrics(metrics_path)
    want = {"train/loss": [], "train/top1": [], "train/top5": [], "train/lr": []}
    if terms:
        want.update({"train/ce": [], "train/reg": [], "train/ce_aux": []})
    last_step = {}
    prev_epoch = None
    for s in steps:
        g = s["global_step"]
        if s["epoch"] != prev_epoch and s.get("lr") is not None:
            want["train/lr"].append((g, s["lr"]))
        prev_epoch = s["epoch"]
        keys = [("train/loss", "loss"), ("train/top1", "top1"), ("train/top5", "top5")]
        if terms:
            keys += [("train/ce", "loss_1"), ("train/ce", "ce"), ("train/reg", "loss_2"), ("train/ce_aux", "ce_aux")]
        for tag, key in keys:
            if s.get(key) is not None:
                want[tag].append((g, s[key]))
        last_step[s["epoch"]] = max(g, last_step.get(s["epoch"], -1))
    spe = max((s["step"] + 1 for s in steps), default=1)
    for e in epochs:
        step = last_step[e["epoch"]] + 1 if e["epoch"] in last_step else e["epoch"] * spe
        epoch_tags = (
            ("val/loss", "val_loss"),
            ("val/top1", "val_top1"),
            ("val/top5", "val_top5"),
            # the collapse monitor of searches
            ("search/skip_count", "skip_connects_normal"),
            ("search/skip_count_reduce", "skip_connects_reduce"),
            ("search/alpha_entropy", "alpha_entropy_normal"),
            ("search/alpha_entropy_reduce", "alpha_entropy_reduce"),
            ("search/param_free_share", "param_free_normal"),
        )
        for tag, key in epoch_tags:
            if e.get(key) is not None:
                want.setdefault(tag, []).append((step, e[key]))
    return {t: v for t, v in want.items() if v}


def events_dir(run_dir):
    """The folder of the run's event file and whether the run wrote it live."""
    if any("tfevents" in f for f in os.listdir(run_dir)):
        return run_dir, True
    return os.path.join(run_dir, "tb"), False


def accumulator(path):
    return event_accumulator.EventAccumulator(path, size_guidance={event_accumulator.SCALARS: 0})


def compare(acc, run_dir, terms):
    got_tags = sorted(acc.Tags()["scalars"])
    want = expected_scalars(os.path.join(run_dir, "metrics.jsonl"), terms)
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


def check(run_dir):
    path, live = events_dir(run_dir)
    if not os.path.isdir(path) or not any("tfevents" in f for f in os.listdir(path)):
        return f"{run_dir}: no event file in {path}"
    acc = accumulator(path)
    acc.Reload()
    return compare(acc, run_dir, terms=live)


def flag(args, name, default):
    return args[args.index(name) + 1] if name in args else default


def live(cmd):
    out_dir = flag(cmd, "--out-dir", "searchs" if "search" in cmd else "augments")
    run_dir = os.path.join(out_dir, flag(cmd, "--name", ""))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    acc = None
    seen = []  # points of train/loss after each reload while the run goes
    first_epoch_line = None
    while proc.poll() is None:
        time.sleep(0.5)
        if acc is None and os.path.isdir(run_dir) and any("tfevents" in f for f in os.listdir(run_dir)):
            acc = accumulator(run_dir)  # made once, like a server started before the points
        if acc is None:
            continue
        acc.Reload()
        n = len(acc.Scalars("train/loss")) if "train/loss" in acc.Tags()["scalars"] else 0
        seen.append(n)
        if first_epoch_line is None:
            try:
                _, epochs = read_metrics(os.path.join(run_dir, "metrics.jsonl"))
                if epochs:
                    first_epoch_line = len(seen)
            except (OSError, json.JSONDecodeError):
                pass
    err = proc.stderr.read()
    if proc.returncode != 0:
        return f"the run failed ({proc.returncode}): {err[-2000:]}"
    if acc is None:
        return f"{run_dir}: no event file appeared while the run went"
    before_first_epoch = seen[: first_epoch_line - 1] if first_epoch_line else seen
    if not any(before_first_epoch):
        return f"{run_dir}: TensorBoard saw no point before the first epoch ended ({seen})"
    if len(set(seen)) < 3:
        return f"{run_dir}: the points did not keep arriving while the run went ({seen})"
    acc.Reload()
    print(f"live: train/loss points seen while the run went: {seen}")
    return compare(acc, run_dir, terms=True)


def main(argv):
    if not argv:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    if argv[0] == "--live":
        err = live(argv[1:])
        if err:
            print("FAIL " + err, file=sys.stderr)
            return 1
        return 0
    for run_dir in argv:
        err = check(run_dir)
        if err:
            print("FAIL " + err, file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
