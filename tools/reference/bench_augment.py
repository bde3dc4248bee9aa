"""PyTorch CPU benchmark of one augment (retraining) step (the work the Rust benchmark times).

    python3 tools/reference/bench_augment.py --genotype dropnas-cifar10 --layers 8 --init-channels 16 --batch-size 32 --steps 3 --json

One step: forward with drop path (prob 0.2) and the auxiliary head, loss = CE + 0.4 CE_aux,
backward, clip (3, all parameters), SGD (lr 0.05, momentum 0.9, weight decay 3e-4); on a fixed
random 32x32x3 batch with 10 classes.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common  # noqa: E402
import dropnas_ref as R  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--genotype", default="dropnas-cifar10", help="a name (dropnas-cifar10, darts-v2) or genotype text")
    ap.add_argument("--layers", type=int, default=20)
    ap.add_argument("--init-channels", type=int, default=36)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--drop-path", type=float, default=0.2)
    ap.add_argument("--aux-weight", type=float, default=0.4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    ap.add_argument("--json", action="store_true", help="print one JSON line")
    ap.add_argument("--torch-compat", default="1.0", choices=R.COMPATS, help="PyTorch semantics (PYTORCH-1.0.md)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed + 1)
    aux = args.aux_weight > 0
    dev = torch.device(args.device)
    model = R.AugmentNetwork(32, 3, args.init_channels, 10, args.layers, aux, args.genotype,
                             compat=args.torch_compat).train().to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=3e-4)
    x = torch.randn(args.batch_size, 3, 32, 32, device=dev)
    y = torch.randint(0, 10, (args.batch_size,), device=dev)

    def step():
        opt.zero_grad(set_to_none=args.torch_compat != "1.0")
        logits, aux_logits = model(x, R.RandomDropPath(args.drop_path, gen))
        loss = F.cross_entropy(logits, y)
        if aux_logits is not None:
            loss = loss + args.aux_weight * F.cross_entropy(aux_logits, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 3.0)
        opt.step()

    name = args.genotype if args.genotype in R.NAMED_GENOTYPES else "custom"
    bench_common.run(step, args.steps, args.warmup, args.json, "augment step",
                     {"genotype": name, "layers": args.layers, "C": args.init_channels,
                      "batch": args.batch_size, "threads": args.threads, "device": args.device}, args.device)


if __name__ == "__main__":
    main()
