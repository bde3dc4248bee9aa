"""Per-op CPU timings in PyTorch, forward + backward, at the shapes of
crates/dropnas-core/benches/kernels.rs (N=32, C=16, 32x32). `--threads` (default 2)."""
import argparse
import time

import torch
import torch.nn.functional as F


def median_ms(fn, reps):
    fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1e3)
    ts.sort()
    return ts[len(ts) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=15)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    n, c, s = 32, 16, 32
    x0 = torch.randn(n, c, s, s)

    def x():
        return x0.clone().requires_grad_(True)

    for k, stride, pad, dil, label in [(3, 1, 1, 1, "3x3"), (5, 1, 2, 1, "5x5"), (3, 1, 2, 2, "3x3 dil 2"),
                                       (5, 1, 4, 2, "5x5 dil 2"), (3, 2, 1, 1, "3x3 stride 2")]:
        w = (0.1 * torch.randn(c, 1, k, k)).requires_grad_(True)
        ms = median_ms(lambda: F.conv2d(x(), w, None, stride, pad, dil, c).sum().backward(), a.reps)
        print(f"{'depthwise ' + label + ' fwd+bwd (pytorch)':<44} {ms:>8.3f} ms")
    print(f"{'(baseline: sum + backward alone)':<44} {median_ms(lambda: x().sum().backward(), a.reps):>8.3f} ms")
    bn = torch.nn.BatchNorm2d(c)
    ms = median_ms(lambda: bn(x()).sum().backward(), a.reps)
    print(f"{'batch norm affine fwd+bwd (pytorch)':<44} {ms:>8.3f} ms")
    for kind, stride in [("Max", 1), ("Avg", 1), ("Max", 2)]:
        def pool(kind=kind, stride=stride):
            if kind == "Max":
                return F.max_pool2d(x(), 3, stride, 1)
            return F.avg_pool2d(x(), 3, stride, 1, count_include_pad=False)
        ms = median_ms(lambda: pool().sum().backward(), a.reps)
        print(f"{kind + ' pool 3x3 stride ' + str(stride) + ' fwd+bwd (pytorch)':<44} {ms:>8.3f} ms")
    wp = (0.1 * torch.randn(c, c, 1, 1)).requires_grad_(True)
    ms = median_ms(lambda: F.conv2d(x(), wp).sum().backward(), a.reps)
    print(f"{'pointwise 1x1 fwd+bwd (pytorch)':<44} {ms:>8.3f} ms")


if __name__ == "__main__":
    main()
