"""PyTorch CPU benchmark of one full DropNAS search step (the work the Rust benchmark times).

    python3 tools/reference/bench_search.py --layers 5 --init-channels 8 --batch-size 32 --steps 3 --warmup 1 --json

One step: draw grouped-dropout masks (rate 3e-5 for both groups), forward, cross entropy,
backward, clip (3), SGD (weights) + Adam (alphas), partial decay loss, backward, clip, steps,
alpha adjustment; on a fixed random 32x32x3 batch with 10 classes.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common  # noqa: E402
import dropnas_ref as R  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--init-channels", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--space", default="original", choices=sorted(R.SEARCH_SPACES))
    ap.add_argument("--drop-rate", type=float, default=3e-5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    ap.add_argument("--json", action="store_true", help="print one JSON line")
    ap.add_argument("--torch-compat", default="1.0", choices=R.COMPATS, help="PyTorch semantics (PYTORCH-1.0.md)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed + 1)
    n_ops = len(R.space_ops(args.space))
    dev = torch.device(args.device)
    model = R.SearchNetwork(3, args.init_channels, 10, args.layers, args.space, compat=args.torch_compat).train().to(dev)
    alphas = R.Alphas(4, n_ops).to(dev)
    w_opt = torch.optim.SGD(model.parameters(), lr=0.0375, momentum=0.9, weight_decay=0)
    a_opt = R.alpha_optimizer(alphas.parameters(), args.torch_compat)
    x = torch.randn(args.batch_size, 3, 32, 32, device=dev)
    y = torch.randint(0, 10, (args.batch_size,), device=dev)
    rates = [args.drop_rate, args.drop_rate]

    def step():
        mn = R.draw_cell_mask(args.space, 4, rates, gen)
        mr = R.draw_cell_mask(args.space, 4, rates, gen)
        R.search_step(model, alphas, w_opt, a_opt, x, y, mn, mr, compat=args.torch_compat)

    bench_common.run(step, args.steps, args.warmup, args.json, "search step",
                     {"layers": args.layers, "C": args.init_channels, "batch": args.batch_size,
                      "threads": args.threads, "space": args.space, "device": args.device}, args.device)


if __name__ == "__main__":
    main()
