#!/usr/bin/env python3
"""Regenerates crates/dropnas-data/tests/fixtures/affine.json: torchvision's affine on small images.

The DropNAS MNIST / Fashion-MNIST pipeline applies RandomAffine to PIL images (torchvision's MNIST
data set yields PIL images and ToTensor comes last), so the reference is F.affine on a PIL image,
which Pillow resamples with its 16.16 fixed-point nearest-neighbour engine. The Rust port in
crates/dropnas-data/src/affine.rs must reproduce these outputs byte for byte.

Usage: python3 tools/data_affine_fixture.py   (needs torch, torchvision, pillow, numpy)
"""
import json
import pathlib

import numpy as np
import torchvision
import torchvision.transforms.functional as F
from PIL import Image

OUT = pathlib.Path(__file__).resolve().parent.parent / "crates/dropnas-data/tests/fixtures/affine.json"

# (angle degrees, (tx, ty) integer pixels, scale, (shear_x, shear_y) degrees): values within
# RandomAffine(degrees=15, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=0.1), plus extremes.
PARAMS = [
    (7.3, (2, -1), 1.04, (0.06, 0.0)),
    (-14.2, (-3, 2), 0.93, (-0.09, 0.0)),
    (15.0, (0, 0), 1.1, (0.1, 0.0)),
    (-3.7, (1, 3), 0.9, (0.0, 0.0)),
    (0.0, (0, 0), 1.07, (0.0, 0.0)),  # pure scaling: Pillow's separate ImagingScaleAffine path
    (0.0, (3, -2), 1.0, (0.0, 0.0)),  # pure integer shift
]


def main():
    rng = np.random.default_rng(20240601)
    cases = []
    # 28x28 like MNIST, and a non-square image so that a width/height mix-up cannot pass.
    for h, w in [(28, 28), (9, 13)]:
        img = rng.integers(1, 256, size=(h, w), dtype=np.uint8)  # no zeros: fill is visible
        for angle, translate, scale, shear in PARAMS:
            out = F.affine(
                Image.fromarray(img, mode="L"),
                angle=angle,
                translate=list(translate),
                scale=scale,
                shear=list(shear),
                interpolation=F.InterpolationMode.NEAREST,
                fill=0,
            )
            matrix = F._get_inverse_affine_matrix([w * 0.5, h * 0.5], angle, list(translate), scale, list(shear))
            cases.append(
                {
                    "height": h,
                    "width": w,
                    "angle": angle,
                    "translate": list(translate),
                    "scale": scale,
                    "shear": list(shear),
                    "inverse_matrix": matrix,
                    "input": img.flatten().tolist(),
                    "output": np.asarray(out, dtype=np.uint8).flatten().tolist(),
                }
            )
    doc = {
        "generator": "tools/data_affine_fixture.py",
        "torchvision": torchvision.__version__,
        "pillow": Image.__version__,
        "cases": cases,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({len(cases)} cases)")


if __name__ == "__main__":
    main()
