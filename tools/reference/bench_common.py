"""Shared bits of the PyTorch benchmarks (timing loop, peak RSS, output)."""

from __future__ import annotations

import json
import resource
import statistics
import time


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def run(step, steps: int, warmup: int, as_json: bool, label: str, extra: dict, device: str = "cpu"):
    import torch

    cuda = device.startswith("cuda")

    def sync():
        if cuda:
            torch.cuda.synchronize()

    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    res = {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
           "peak_rss_mib": round(peak_rss_mib(), 1)}
    if cuda:
        res["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    if as_json:
        print(json.dumps(res))
    else:
        desc = ", ".join(f"{k}={v}" for k, v in extra.items())
        print(f"{label} ({desc}): median {res['median_s']:.3f} s/step (min {res['min_s']:.3f}, "
              f"max {res['max_s']:.3f}) over {steps} steps after {warmup} warm-up; peak RSS "
              f"{res['peak_rss_mib']:.0f} MiB")
    return res
