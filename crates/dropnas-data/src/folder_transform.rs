//! The preprocessing of image-folder data sets, with torchvision's semantics on PIL images:
//!
//! - training: `RandomResizedCrop(size, scale, ratio)` (bilinear), `RandomHorizontalFlip()`,
//!   optionally `ColorJitter(...)`, then `ToTensor()`, `Normalize(mean, std)` and, when
//!   retraining with `--cutout-length`, `Cutout(L)`;
//! - evaluation: `Resize(resize)` (shorter side, bilinear), `CenterCrop(size)`, `ToTensor()`,
//!   `Normalize(mean, std)`.
//!
//! DARTS' ImageNet script uses exactly these with size 224, the default scale (0.08, 1) and
//! ratio (3/4, 4/3), jitter (0.4, 0.4, 0.4, 0.2), resize 256 and ImageNet's mean and std
//! ([`FolderTransforms::imagenet`]).
//!
//! The random parameters are drawn in torchvision's order from the loader's per-sample
//! generator; the draws themselves are ours (rand's ChaCha, not torch's generator), and
//! `RandomResizedCrop` samples the aspect ratio log-uniformly, as torchvision >= 0.8 does
//! (torchvision 0.2, which DARTS ran, drew it uniformly and swapped width and height with
//! probability 1/2).

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::color_jitter::{ColorJitter, adjust};
use crate::error::DataError;
use crate::resize::{Rgb8, Window, center_window, resize_bilinear, shorter_side_to};
use crate::transform::cutout;

/// ImageNet's per-channel mean (torchvision's and DARTS' constants).
pub const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
/// ImageNet's per-channel standard deviation.
pub const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];

/// How the images of an image folder become network inputs (saved in the run configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FolderTransforms {
    /// Side of the square network input: the crop size in training and evaluation.
    pub input_size: usize,
    /// `RandomResizedCrop`'s range of the crop's area, as a fraction of the image's.
    pub crop_scale: (f64, f64),
    /// `RandomResizedCrop`'s range of the crop's aspect ratio (width / height).
    pub crop_ratio: (f64, f64),
    /// `RandomHorizontalFlip(0.5)` after the crop.
    pub flip: bool,
    /// `ColorJitter` after the flip, if any.
    pub color_jitter: Option<ColorJitter>,
    /// Evaluation: the shorter side is resized to this, then the centre `input_size` square is
    /// taken.
    pub val_resize: usize,
    /// Per-channel normalisation.
    pub mean: [f64; 3],
    pub std: [f64; 3],
}

impl FolderTransforms {
    /// The default for `--input-size size` (no recipe): random-resized crop and flip, no colour
    /// jitter, ImageNet's mean and std; evaluation resizes to `size * 256 / 224` (rounded), the
    /// ratio of DARTS' 256 -> 224.
    pub fn for_input_size(size: usize) -> Self {
        FolderTransforms {
            input_size: size,
            crop_scale: (0.08, 1.0),
            crop_ratio: (3.0 / 4.0, 4.0 / 3.0),
            flip: true,
            color_jitter: None,
            val_resize: (size as f64 * 256.0 / 224.0).round() as usize,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
        }
    }

    /// DARTS' ImageNet preprocessing (`cnn/train_imagenet.py`): `RandomResizedCrop(224)`, flip,
    /// `ColorJitter(0.4, 0.4, 0.4, 0.2)`; evaluation `Resize(256)`, `CenterCrop(224)`.
    pub fn imagenet() -> Self {
        FolderTransforms { color_jitter: Some(ColorJitter::DARTS_IMAGENET), ..Self::for_input_size(224) }
    }

    /// Checks values that would fail later.
    pub fn validate(&self) -> Result<(), DataError> {
        let bad = |m: String| Err(DataError::InvalidOption(m));
        if self.input_size < 4 {
            return bad(format!("--input-size must be at least 4, got {}", self.input_size));
        }
        let (s0, s1) = self.crop_scale;
        if !(s0 > 0.0 && s0 <= s1 && s1 <= 1.0) {
            return bad(format!("--crop-scale must satisfy 0 < min <= max <= 1, got {s0},{s1}"));
        }
        let (r0, r1) = self.crop_ratio;
        if !(r0 > 0.0 && r0 <= r1 && r1.is_finite()) {
            return bad(format!("the crop ratio range must satisfy 0 < min <= max, got {r0},{r1}"));
        }
        if self.val_resize < self.input_size {
            return bad(format!(
                "--val-resize {} is smaller than --input-size {}: the centre crop would not fit",
                self.val_resize, self.input_size
            ));
        }
        if self.std.iter().any(|&s| s <= 0.0) {
            return bad(format!("normalisation stds must be positive, got {:?}", self.std));
        }
        if let Some(j) = &self.color_jitter {
            j.validate().map_err(DataError::InvalidOption)?;
        }
        Ok(())
    }
}

/// `RandomResizedCrop.get_params` (torchvision >= 0.8): up to ten tries of an area fraction
/// uniform in `scale` and an aspect ratio log-uniform in `ratio`, sides rounded half to even,
/// kept if they fit, at a uniform position; else the centre crop of the largest window within
/// the ratio range.
pub fn random_resized_crop<R: Rng + ?Sized>(
    rng: &mut R,
    width: usize,
    height: usize,
    scale: (f64, f64),
    ratio: (f64, f64),
) -> Window {
    let area = (width * height) as f64;
    let (log_lo, log_hi) = (ratio.0.ln(), ratio.1.ln());
    for _ in 0..10 {
        let target = area * rng.random_range(scale.0..=scale.1);
        let aspect = rng.random_range(log_lo..=log_hi).exp();
        let w = (target * aspect).sqrt().round_ties_even() as usize;
        let h = (target / aspect).sqrt().round_ties_even() as usize;
        if 0 < w && w <= width && 0 < h && h <= height {
            let top = rng.random_range(0..=height - h);
            let left = rng.random_range(0..=width - w);
            return Window { top, left, height: h, width: w };
        }
    }
    let in_ratio = width as f64 / height as f64;
    let (w, h) = if in_ratio < ratio.0 {
        (width, ((width as f64 / ratio.0).round_ties_even() as usize).max(1))
    } else if in_ratio > ratio.1 {
        (((height as f64 * ratio.1).round_ties_even() as usize).max(1), height)
    } else {
        (width, height)
    };
    Window { top: (height - h) / 2, left: (width - w) / 2, height: h, width: w }
}

/// The full preprocessing of one decoded image: RGB in, normalised f32 CHW out.
#[derive(Debug, Clone, PartialEq)]
pub struct FolderAugment {
    transforms: FolderTransforms,
    train: bool,
    cutout: usize,
    /// `lut[c][v]`: normalised value of byte `v` in channel `c` (torchvision's f32 arithmetic).
    lut: Vec<[f32; 256]>,
}

impl FolderAugment {
    /// Training preprocessing, with `Cutout(cutout)` when `cutout > 0`.
    pub fn train(transforms: &FolderTransforms, cutout: usize) -> Self {
        Self::new(transforms, true, cutout)
    }

    /// Evaluation preprocessing.
    pub fn eval(transforms: &FolderTransforms) -> Self {
        Self::new(transforms, false, 0)
    }

    fn new(transforms: &FolderTransforms, train: bool, cutout: usize) -> Self {
        let lut = crate::transform::normalisation_tables(&transforms.mean, &transforms.std);
        FolderAugment { transforms: transforms.clone(), train, cutout, lut }
    }

    /// The output shape: `[3, input_size, input_size]`.
    pub fn shape(&self) -> [usize; 3] {
        [3, self.transforms.input_size, self.transforms.input_size]
    }

    /// The geometric and colour steps, on bytes: what torchvision hands to `ToTensor`.
    pub fn apply_u8<R: Rng + ?Sized>(&self, image: &Rgb8, rng: &mut R) -> Rgb8 {
        let t = &self.transforms;
        let s = t.input_size;
        if !self.train {
            let (w, h) = shorter_side_to(image.width, image.height, t.val_resize);
            let resized = resize_bilinear(image, image.full(), w, h);
            return resized.crop(center_window(w, h, s));
        }
        let window = random_resized_crop(rng, image.width, image.height, t.crop_scale, t.crop_ratio);
        let mut out = resize_bilinear(image, window, s, s);
        if t.flip && rng.random::<f64>() < 0.5 {
            out.hflip();
        }
        if let Some(jitter) = &t.color_jitter {
            for a in jitter.sample(rng) {
                adjust(&mut out, a);
            }
        }
        out
    }

    /// Preprocesses one image into `out` (`3 * input_size^2` values, CHW), drawing its random
    /// parameters from `rng` in torchvision's order.
    pub fn apply<R: Rng + ?Sized>(&self, image: &Rgb8, rng: &mut R, out: &mut [f32]) {
        let img = self.apply_u8(image, rng);
        let plane = img.width * img.height;
        for (i, p) in img.data.chunks_exact(3).enumerate() {
            for c in 0..3 {
                out[c * plane + i] = self.lut[c][usize::from(p[c])];
            }
        }
        if self.cutout > 0 {
            let s = self.transforms.input_size;
            let cy = rng.random_range(0..s);
            let cx = rng.random_range(0..s);
            cutout(out, [3, s, s], cy, cx, self.cutout);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn random_resized_crops_fit_and_cover_the_scale_range() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (mut small, mut large) = (false, false);
        for _ in 0..2000 {
            let w = random_resized_crop(&mut rng, 500, 375, (0.08, 1.0), (0.75, 4.0 / 3.0));
            assert!(w.width > 0 && w.height > 0 && w.left + w.width <= 500 && w.top + w.height <= 375);
            let frac = (w.width * w.height) as f64 / (500.0 * 375.0);
            small |= frac < 0.1;
            large |= frac > 0.9;
        }
        assert!(small && large);
        // Too elongated for any try: the fallback is the centre crop at the extreme ratio.
        let w = random_resized_crop(&mut rng, 100, 10, (0.9, 1.0), (0.75, 4.0 / 3.0));
        assert_eq!(w, Window { top: 0, left: 43, height: 10, width: 13 });
    }

    #[test]
    fn eval_resizes_the_shorter_side_and_crops_the_centre() {
        let t = FolderTransforms { val_resize: 8, ..FolderTransforms::for_input_size(6) };
        let data = (0..12 * 20 * 3).map(|i| (i % 251) as u8).collect();
        let img = Rgb8 { width: 12, height: 20, data };
        let a = FolderAugment::eval(&t);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let out = a.apply_u8(&img, &mut rng);
        assert_eq!((out.width, out.height), (6, 6));
        // 12x20 -> 8x13, then the window at (top 4 (3.5 rounds to even), left 1)
        let resized = resize_bilinear(&img, img.full(), 8, 13);
        assert_eq!(out, resized.crop(Window { top: 4, left: 1, height: 6, width: 6 }));
        let mut f = vec![0f32; 3 * 36];
        a.apply(&img, &mut rng, &mut f);
        assert!((f[0] - ((f32::from(out.data[0]) / 255.0 - 0.485) / 0.229)).abs() < 1e-6);
        assert!((f[36] - ((f32::from(out.data[1]) / 255.0 - 0.456) / 0.224)).abs() < 1e-6);
    }

    #[test]
    fn defaults_and_validation() {
        assert_eq!(FolderTransforms::imagenet().val_resize, 256);
        assert_eq!(FolderTransforms::for_input_size(64).val_resize, 73);
        assert!(FolderTransforms::imagenet().validate().is_ok());
        let bad = FolderTransforms { val_resize: 100, ..FolderTransforms::imagenet() };
        assert!(bad.validate().unwrap_err().to_string().contains("--val-resize"));
        let bad = FolderTransforms { crop_scale: (0.5, 0.2), ..FolderTransforms::imagenet() };
        assert!(bad.validate().unwrap_err().to_string().contains("--crop-scale"));
    }
}
