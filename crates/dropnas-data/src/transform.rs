//! Per-sample preprocessing, with torchvision's semantics:
//! CIFAR training: `RandomCrop(32, padding=4)` (zero padding), `RandomHorizontalFlip()`;
//! (Fashion-)MNIST training: `RandomAffine(15, (0.1, 0.1), (0.9, 1.1), 0.1)` (+
//! `RandomVerticalFlip()` for Fashion-MNIST); then `ToTensor()`, `Normalize(mean, std)` and,
//! when retraining, `Cutout(L)`. Evaluation only normalises.
//!
//! Geometry works on u8 like PIL does, and normalisation goes through a 256-entry table per
//! channel computed with torchvision's f32 arithmetic, `(v / 255 - mean) / std`, so the values
//! are the ones PyTorch would produce.

use rand::Rng;

use crate::affine::{self, RandomAffine};
use crate::dataset::DatasetKind;
use crate::error::DataError;

/// The random geometric step of a training pipeline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Geometry {
    /// None (evaluation).
    Identity,
    /// `RandomCrop(size, padding)` with zero fill, then `RandomHorizontalFlip(0.5)`.
    CropFlip {
        /// Zero pixels added on each side before cropping back to the original size.
        padding: usize,
    },
    /// `RandomAffine(...)`, then `RandomVerticalFlip(0.5)` when `vertical_flip`.
    Affine {
        /// Parameter ranges.
        ranges: RandomAffine,
        /// Flip upside down with probability 0.5 afterwards (Fashion-MNIST).
        vertical_flip: bool,
    },
}

/// Where a padded random crop starts and whether it is mirrored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropParams {
    /// First row of the window in the padded image (0..=2*padding).
    pub top: usize,
    /// First column of the window in the padded image (0..=2*padding).
    pub left: usize,
    /// Mirror left-right after cropping.
    pub flip: bool,
}

/// The full preprocessing of one sample: u8 CHW in, normalised f32 CHW out.
#[derive(Debug, Clone, PartialEq)]
pub struct Augment {
    channels: usize,
    height: usize,
    width: usize,
    geometry: Geometry,
    cutout: usize,
    /// `lut[c][v]` = normalised value of byte `v` in channel `c`.
    lut: Vec<[f32; 256]>,
}

impl Augment {
    /// The pipeline of the original code for `kind`: training augmentation when `train`
    /// (with `Cutout(cutout)` when `cutout > 0`), normalisation only otherwise.
    pub fn new(kind: DatasetKind, train: bool, cutout: usize) -> Self {
        let geometry = match (train, kind) {
            (false, _) => Geometry::Identity,
            (true, DatasetKind::Cifar10 | DatasetKind::Cifar100) => Geometry::CropFlip { padding: 4 },
            (true, DatasetKind::Mnist) => {
                Geometry::Affine { ranges: RandomAffine::DROPNAS_MNIST, vertical_flip: false }
            }
            (true, DatasetKind::FashionMnist) => {
                Geometry::Affine { ranges: RandomAffine::DROPNAS_MNIST, vertical_flip: true }
            }
        };
        let (s, c) = (kind.input_size(), kind.input_channels());
        Augment {
            channels: c,
            height: s,
            width: s,
            geometry,
            cutout: if train { cutout } else { 0 },
            lut: normalisation_tables(kind.mean(), kind.std()),
        }
    }

    /// Training pipeline (search: `cutout = 0`; retraining: the `--cutout-length`).
    pub fn train(kind: DatasetKind, cutout: usize) -> Self {
        Self::new(kind, true, cutout)
    }

    /// Evaluation pipeline: normalisation only.
    pub fn eval(kind: DatasetKind) -> Self {
        Self::new(kind, false, 0)
    }

    /// A pipeline for any image shape and statistics (synthetic data, tests).
    pub fn custom(
        shape: [usize; 3],
        mean: &[f64],
        std: &[f64],
        geometry: Geometry,
        cutout: usize,
    ) -> Result<Self, DataError> {
        let [channels, height, width] = shape;
        if mean.len() != channels || std.len() != channels || std.iter().any(|&s| s <= 0.0) {
            return Err(DataError::InvalidOption(format!(
                "normalisation needs {channels} means and {channels} positive stds, got {mean:?} and {std:?}"
            )));
        }
        Ok(Augment { channels, height, width, geometry, cutout, lut: normalisation_tables(mean, std) })
    }

    /// Image shape this pipeline takes and produces: [channels, height, width].
    pub fn shape(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }

    /// The geometric step.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// The cutout side length (0: no cutout).
    pub fn cutout(&self) -> usize {
        self.cutout
    }

    /// Preprocesses one image (`image` and `out` of `channels * height * width` elements),
    /// drawing its random parameters from `rng` in torchvision's order.
    pub fn apply<R: Rng + ?Sized>(&self, image: &[u8], rng: &mut R, out: &mut [f32]) {
        let [c, h, w] = self.shape();
        match self.geometry {
            Geometry::Identity => {
                for (ch, (o, i)) in out.chunks_exact_mut(h * w).zip(image.chunks_exact(h * w)).enumerate() {
                    let lut = &self.lut[ch];
                    for (o, &v) in o.iter_mut().zip(i) {
                        *o = lut[usize::from(v)];
                    }
                }
            }
            Geometry::CropFlip { padding } => {
                let p = sample_crop(rng, padding);
                // Fused with normalisation: one pass, no intermediate image.
                crop_flip_map(image, out, [c, h, w], padding, p, |ch, v| self.lut[ch][usize::from(v)]);
            }
            Geometry::Affine { ranges, vertical_flip } => {
                let params = ranges.sample(rng, w, h);
                let mut warped = vec![0u8; c * h * w];
                affine::affine(image, &mut warped, c, h, w, &params);
                let flip = vertical_flip && rng.random::<f64>() < 0.5;
                for ch in 0..c {
                    let lut = &self.lut[ch];
                    for y in 0..h {
                        let sy = if flip { h - 1 - y } else { y };
                        let src = &warped[(ch * h + sy) * w..(ch * h + sy + 1) * w];
                        let dst = &mut out[(ch * h + y) * w..(ch * h + y + 1) * w];
                        for (o, &v) in dst.iter_mut().zip(src) {
                            *o = lut[usize::from(v)];
                        }
                    }
                }
            }
        }
        if self.cutout > 0 {
            let cy = rng.random_range(0..h);
            let cx = rng.random_range(0..w);
            cutout(out, [c, h, w], cy, cx, self.cutout);
        }
    }
}

/// `ToTensor` + `Normalize` for every byte value, in PyTorch's f32 arithmetic.
pub(crate) fn normalisation_tables(mean: &[f64], std: &[f64]) -> Vec<[f32; 256]> {
    mean.iter()
        .zip(std)
        .map(|(&m, &s)| {
            let (m, s) = (m as f32, s as f32);
            let mut t = [0f32; 256];
            for (v, e) in t.iter_mut().enumerate() {
                *e = (v as f32 / 255.0 - m) / s;
            }
            t
        })
        .collect()
}

/// Draws `RandomCrop` offsets (top, then left, each uniform in 0..=2*padding) and then the
/// `RandomHorizontalFlip(0.5)` coin.
pub fn sample_crop<R: Rng + ?Sized>(rng: &mut R, padding: usize) -> CropParams {
    let top = rng.random_range(0..=2 * padding);
    let left = rng.random_range(0..=2 * padding);
    let flip = rng.random::<f64>() < 0.5;
    CropParams { top, left, flip }
}

/// Zero-pads `src` by `padding` on every side, takes the window at (`top`, `left`) of the
/// original size, mirrors it when `flip`, and writes `f(channel, byte)` of each pixel to `out`.
pub fn crop_flip_map<T>(
    src: &[u8],
    out: &mut [T],
    [c, h, w]: [usize; 3],
    padding: usize,
    p: CropParams,
    f: impl Fn(usize, u8) -> T,
) {
    for ch in 0..c {
        let plane = &src[ch * h * w..(ch + 1) * h * w];
        for y in 0..h {
            // Row in the unpadded source; outside it the padding's zeros show.
            let sy = (y + p.top).checked_sub(padding).filter(|&sy| sy < h);
            let dst = &mut out[(ch * h + y) * w..(ch * h + y + 1) * w];
            for (x, o) in dst.iter_mut().enumerate() {
                let xc = if p.flip { w - 1 - x } else { x };
                let sx = (xc + p.left).checked_sub(padding).filter(|&sx| sx < w);
                let v = match (sy, sx) {
                    (Some(sy), Some(sx)) => plane[sy * w + sx],
                    _ => 0,
                };
                *o = f(ch, v);
            }
        }
    }
}

/// u8 version of [`crop_flip_map`]: the crop and flip alone.
pub fn crop_flip(src: &[u8], out: &mut [u8], shape: [usize; 3], padding: usize, p: CropParams) {
    crop_flip_map(src, out, shape, padding, p, |_, v| v);
}

/// Mirrors a CHW image left-right (`RandomHorizontalFlip` when it fires).
pub fn hflip(src: &[u8], out: &mut [u8], shape: [usize; 3]) {
    let p = CropParams { top: 0, left: 0, flip: true };
    crop_flip(src, out, shape, 0, p);
}

/// DARTS' `Cutout(length)` at centre (`cy`, `cx`): zeroes rows `clip(cy - L/2, 0, H)..clip(cy +
/// L/2, 0, H)` and the same columns around `cx`, in every channel (integer division, so an odd
/// length cuts `L - 1` pixels, as in the original).
pub fn cutout(img: &mut [f32], [c, h, w]: [usize; 3], cy: usize, cx: usize, length: usize) {
    let half = length / 2;
    let (y1, y2) = (cy.saturating_sub(half).min(h), (cy + half).min(h));
    let (x1, x2) = (cx.saturating_sub(half).min(w), (cx + half).min(w));
    for ch in 0..c {
        for y in y1..y2 {
            img[(ch * h + y) * w + x1..(ch * h + y) * w + x2].fill(0.0);
        }
    }
}
