"""PyTorch reference run of `dropnas augment` on MNIST: the same network, recipe and data subset.

    python3 tools/reference/augment_mnist.py --data-dir ../shared/data/mnist \
        --genotype darts-v2 --layers 6 --init-channels 8 --epochs 3 --batch-size 64 \
        --max-train-samples 3000 --max-test-samples 1000 --seeds 0 1 2

The recipe is the original's (and `dropnas augment`'s defaults):
- SGD lr 0.05, momentum 0.9, weight decay 3e-4 on every parameter;
- cosine schedule over the epochs stepped at the START of each epoch: epoch e (from 0) trains at
  0.05 * (1 + cos(pi * (e + 1) / epochs)) / 2, so the last epoch trains at lr 0 (BN statistics
  still move);
- global gradient-norm clipping at 3; loss = CE + 0.4 * CE(aux head);
- drop path probability 0.2 * e / epochs in epoch e (from 0), not after identity;
- MNIST training transform: RandomAffine(15, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=0.1)
  on the PIL image, ToTensor, Normalize(0.13066051707548254, 0.30810780244715075), then DARTS'
  Cutout(16) (applied after normalisation); test images are only normalised;
- the first N training images (shuffled every epoch, last partial batch kept) and the first M
  test images, evaluated after every epoch.

The network is `AugmentNetwork` of tools/reference/dropnas_ref.py (independent of the Rust code),
built under `--torch-compat` (default 1.0: BatchNorm weights start U(0, 1), as in PyTorch 1.0).
Prints one JSON line per epoch and, at the end, one summary line per seed.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dropnas_ref as R  # noqa: E402

MNIST_MEAN = 0.13066051707548254
MNIST_STD = 0.30810780244715075


def read_idx(path: str) -> np.ndarray:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    if magic == 2051:
        n, h, w = (int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(3))
        return np.frombuffer(data, np.uint8, offset=16).reshape(n, h, w)
    if magic == 2049:
        n = int.from_bytes(data[4:8], "big")
        return np.frombuffer(data, np.uint8, offset=8).reshape(n)
    raise ValueError(f"{path}: bad IDX magic {magic}")


def load_split(data_dir: str, prefix: str, limit: int | None):
    def find(name):
        for cand in (name, name + ".gz"):
            p = os.path.join(data_dir, cand)
            if os.path.isfile(p):
                return p
        raise FileNotFoundError(os.path.join(data_dir, name))

    images = read_idx(find(f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(find(f"{prefix}-labels-idx1-ubyte"))
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return images, labels.astype(np.int64)


class Cutout:
    """DARTS' Cutout: a length x length square (clipped at the borders) set to 0, every channel."""

    def __init__(self, length: int, rng: np.random.RandomState):
        self.length = length
        self.rng = rng

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[1], img.shape[2]
        mask = np.ones((h, w), np.float32)
        y = self.rng.randint(h)
        x = self.rng.randint(w)
        y1, y2 = np.clip(y - self.length // 2, 0, h), np.clip(y + self.length // 2, 0, h)
        x1, x2 = np.clip(x - self.length // 2, 0, w), np.clip(x + self.length // 2, 0, w)
        mask[y1:y2, x1:x2] = 0.0
        return img * torch.from_numpy(mask).expand_as(img)


class MnistSubset(torch.utils.data.Dataset):
    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.images[i], mode="L")), int(self.labels[i])


def lr_of_epoch(lr_max: float, epoch: int, epochs: int) -> float:
    return lr_max * (1 + math.cos(math.pi * (epoch + 1) / epochs)) / 2


@torch.no_grad()
def evaluate(model, loader):
    model.eval()
    correct1 = correct5 = n = 0
    loss_sum = 0.0
    for x, y in loader:
        logits, _ = model(x)
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        top5 = logits.topk(5, dim=1).indices
        correct1 += (top5[:, 0] == y).sum().item()
        correct5 += (top5 == y[:, None]).any(dim=1).sum().item()
        n += len(y)
    return loss_sum / n, correct1 / n, correct5 / n


def run(args, seed: int):
    torch.manual_seed(seed)
    np_rng = np.random.RandomState(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    train_tf = [
        transforms.RandomAffine(15, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=0.1),
        transforms.ToTensor(),
        transforms.Normalize([MNIST_MEAN], [MNIST_STD]),
    ]
    if args.cutout_length > 0:
        train_tf.append(Cutout(args.cutout_length, np_rng))
    test_tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize([MNIST_MEAN], [MNIST_STD])])
    train = MnistSubset(*load_split(args.data_dir, "train", args.max_train_samples), transforms.Compose(train_tf))
    test = MnistSubset(*load_split(args.data_dir, "t10k", args.max_test_samples), test_tf)
    train_loader = torch.utils.data.DataLoader(train, batch_size=args.batch_size, shuffle=True, drop_last=False,
                                               generator=torch.Generator().manual_seed(seed + 2))
    test_loader = torch.utils.data.DataLoader(test, batch_size=args.batch_size, shuffle=False)

    aux = args.aux_weight > 0
    model = R.AugmentNetwork(28, 1, args.init_channels, 10, args.layers, aux, args.genotype, compat=args.torch_compat)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=3e-4)
    history = []
    t0 = time.time()
    for epoch in range(args.epochs):
        lr = lr_of_epoch(args.lr, epoch, args.epochs)
        for g in opt.param_groups:
            g["lr"] = lr
        p_drop = args.drop_path_prob * epoch / args.epochs
        model.train()
        loss_sum = correct = n = 0
        for x, y in train_loader:
            opt.zero_grad(set_to_none=args.torch_compat != "1.0")
            logits, aux_logits = model(x, R.RandomDropPath(p_drop, gen))
            loss = F.cross_entropy(logits, y)
            if aux_logits is not None:
                loss = loss + args.aux_weight * F.cross_entropy(aux_logits, y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
            opt.step()
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            n += len(y)
        val_loss, top1, top5 = evaluate(model, test_loader)
        line = {"seed": seed, "epoch": epoch + 1, "lr": lr, "drop_path_prob": p_drop, "train_loss": loss_sum / n,
                "train_top1": correct / n, "val_loss": val_loss, "val_top1": top1, "val_top5": top5,
                "time_s": round(time.time() - t0, 1)}
        print(json.dumps(line), flush=True)
        history.append(top1)
    return history


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.path.join(os.path.dirname(__file__), "../../../shared/data/mnist"))
    ap.add_argument("--genotype", default="darts-v2")
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--init-channels", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--grad-clip", type=float, default=3.0)
    ap.add_argument("--aux-weight", type=float, default=0.4)
    ap.add_argument("--drop-path-prob", type=float, default=0.2)
    ap.add_argument("--cutout-length", type=int, default=16)
    ap.add_argument("--max-train-samples", type=int, default=3000)
    ap.add_argument("--max-test-samples", type=int, default=1000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--torch-compat", default="1.0", choices=R.COMPATS,
                    help="PyTorch semantics: 1.0 (BatchNorm weights U(0, 1), as the original) or modern")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results = {s: run(args, s) for s in args.seeds}
    for s, h in results.items():
        print(json.dumps({"seed": s, "val_top1_per_epoch": h, "best_top1": max(h)}))


if __name__ == "__main__":
    main()
