#!/usr/bin/env python3
"""Regenerates crates/dropnas-data/tests/fixtures/folder_transforms.json (and the two image files
next to it): torchvision's image-folder preprocessing on PIL images, for the Rust ports in
crates/dropnas-data/src/{resize,color_jitter,folder_transform}.rs.

- resized crops: F.resized_crop(img, top, left, h, w, size, BILINEAR) (RandomResizedCrop with
  fixed parameters), shrinking and enlarging, square and not;
- evaluation: F.center_crop(F.resize(img, n), size) (Resize(n) then CenterCrop(size));
- colour: F.adjust_brightness / adjust_contrast / adjust_saturation / adjust_hue at several
  factors (ColorJitter applies these in a random order), and one chain of all four;
- decoding: PIL's RGB of a JPEG and of PNGs in modes RGBA, L and P (what torchvision's loader,
  `Image.open(f).convert("RGB")`, hands on).

Images are stored as hex strings of row-major interleaved RGB bytes.

Usage: python3 tools/data_folder_fixture.py   (needs torchvision, pillow, numpy)
"""
import json
import pathlib

import numpy as np
import PIL
import torchvision
import torchvision.transforms.functional as F
from PIL import Image

DIR = pathlib.Path(__file__).resolve().parent.parent / "crates/dropnas-data/tests/fixtures"
OUT = DIR / "folder_transforms.json"
BILINEAR = F.InterpolationMode.BILINEAR


def hexof(img: Image.Image) -> str:
    return np.asarray(img.convert("RGB"), dtype=np.uint8).tobytes().hex()


def photo(rng, h, w):
    """Smooth colour gradients plus noise and a hard edge: every resampling path matters."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / 5.0) * np.cos(y / 7.0)
    g = 255 * x / max(w - 1, 1)
    b = np.where((x - w / 2) ** 2 + (y - h / 2) ** 2 < (min(h, w) / 3) ** 2, 230.0, 20.0)
    img = np.stack([r, g, b], axis=-1) + rng.normal(0, 12, (h, w, 3))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), mode="RGB")


def main():
    rng = np.random.default_rng(20261201)
    images = {"a": photo(rng, 29, 37), "b": photo(rng, 48, 64)}
    # A noise image with grey pixels mixed in (hue and saturation edge cases).
    noise = rng.integers(0, 256, size=(17, 23, 3), dtype=np.uint8)
    noise[::3, ::2] = noise[::3, ::2, :1]
    images["c"] = Image.fromarray(noise, mode="RGB")

    crops = []
    for name, (top, left, h, w), (oh, ow) in [
        ("a", (0, 0, 29, 37), (16, 16)),
        ("a", (3, 5, 20, 11), (16, 16)),
        ("a", (10, 2, 7, 9), (24, 24)),  # enlarging
        ("b", (4, 9, 40, 50), (32, 32)),
        ("b", (0, 0, 48, 64), (13, 21)),  # shrinking by odd factors, not square
        ("b", (17, 30, 5, 5), (32, 32)),  # strong enlargement
        ("c", (1, 2, 15, 19), (17, 23)),  # one axis enlarged, one shrunk
        # Pillow 13 resizes vertically first when the height shrinks by more than twice as many
        # pixels as the width: just past that boundary, and on it (horizontal first).
        ("b", (0, 2, 48, 60), (20, 55)),
        ("b", (0, 0, 48, 64), (28, 54)),
    ]:
        out = F.resized_crop(images[name], top, left, h, w, [oh, ow], BILINEAR)
        crops.append({"image": name, "top": top, "left": left, "height": h, "width": w,
                      "out_height": oh, "out_width": ow, "output": hexof(out)})

    evals = []
    for name, resize, size in [("a", 20, 16), ("b", 36, 32), ("b", 48, 40), ("c", 19, 16)]:
        resized = F.resize(images[name], resize, interpolation=BILINEAR)
        out = F.center_crop(resized, [size, size])
        evals.append({"image": name, "resize": resize, "size": size,
                      "resized_width": resized.size[0], "resized_height": resized.size[1], "output": hexof(out)})

    colour = []
    adjust = {"brightness": F.adjust_brightness, "contrast": F.adjust_contrast,
              "saturation": F.adjust_saturation, "hue": F.adjust_hue}
    # Every factor on the small noise image, a few on a smooth one.
    for kind, factors in [("brightness", [0.6, 0.93, 1.0, 1.27, 1.4]),
                          ("contrast", [0.6, 0.81, 1.33, 1.4]),
                          ("saturation", [0.0, 0.6, 0.77, 1.2, 1.4]),
                          ("hue", [-0.2, -0.13, -0.001, 0.0, 0.07, 0.2, 0.5])]:
        for name in ("c", "a"):
            for f in (factors if name == "c" else factors[1::2]):
                colour.append({"image": name, "chain": [[kind, f]], "output": hexof(adjust[kind](images[name], f))})
    for name in ("a", "b"):
        chain = [["hue", 0.11], ["contrast", 1.23], ["brightness", 0.71], ["saturation", 1.36]]
        img = images[name]
        for kind, f in chain:
            img = adjust[kind](img, f)
        colour.append({"image": name, "chain": chain, "output": hexof(img)})

    # Decoding: JPEGs with 4:2:0 chroma (PIL's default, and most photos') and 4:4:4, and PNGs in
    # other modes, converted to RGB as the loader does.
    images["b"].save(DIR / "photo.jpg", format="JPEG", quality=90)
    images["b"].save(DIR / "photo444.jpg", format="JPEG", quality=90, subsampling=0)
    rgba = np.concatenate([np.asarray(images["a"]), rng.integers(0, 256, size=(29, 37, 1), dtype=np.uint8)], axis=-1)
    Image.fromarray(rgba, mode="RGBA").save(DIR / "rgba.png")
    Image.fromarray(np.asarray(images["a"].convert("L")), mode="L").save(DIR / "grey.png")
    images["a"].convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(DIR / "palette.png")
    decoded = {f: hexof(Image.open(DIR / f).convert("RGB")) for f in ("photo.jpg", "photo444.jpg", "rgba.png", "grey.png", "palette.png")}

    fixture = {
        "generator": "tools/data_folder_fixture.py",
        "torchvision": torchvision.__version__,
        "pillow": PIL.__version__,
        "images": {k: {"width": v.size[0], "height": v.size[1], "rgb": hexof(v)} for k, v in images.items()},
        "resized_crops": crops,
        "evals": evals,
        "colour": colour,
        "decoded": decoded,
    }
    OUT.write_text(json.dumps(fixture, separators=(",", ":")) + "\n")
    print(f"{OUT}: {OUT.stat().st_size / 1024:.1f} KiB, {len(crops)} crops, {len(evals)} evals, "
          f"{len(colour)} colour cases")


if __name__ == "__main__":
    main()
