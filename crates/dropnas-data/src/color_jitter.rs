//! torchvision's `ColorJitter` on PIL images, reproduced exactly: brightness, contrast and
//! saturation are Pillow's `ImageEnhance` (a blend of the image with a "degenerate" image: black,
//! the mean grey, the greyscale image) in `ImagingBlend`'s float arithmetic; hue goes through
//! Pillow's RGB -> HSV -> RGB conversions with the hue channel shifted in u8 arithmetic, as
//! torchvision's `adjust_hue` does. Greyscale is Pillow's `L` conversion (ITU-R 601-2 luma in
//! 16-bit fixed point). Checked byte for byte against `tests/fixtures/folder_transforms.json`.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::resize::Rgb8;

/// `ColorJitter(brightness, contrast, saturation, hue)`: each factor is drawn uniformly from
/// `[max(0, 1 - v), 1 + v]` (hue: from `[-hue, hue]`), the four adjustments applied in a random
/// order; a 0 leaves that adjustment out.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ColorJitter {
    pub brightness: f64,
    pub contrast: f64,
    pub saturation: f64,
    /// At most 0.5.
    pub hue: f64,
}

/// The four adjustments, in torchvision's numbering (`fn_idx`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Adjust {
    Brightness(f64),
    Contrast(f64),
    Saturation(f64),
    Hue(f64),
}

impl ColorJitter {
    /// DARTS' ImageNet training jitter: `ColorJitter(0.4, 0.4, 0.4, 0.2)`.
    pub const DARTS_IMAGENET: ColorJitter = ColorJitter { brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.2 };

    /// Why these values cannot be used, if they cannot.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [("brightness", self.brightness), ("contrast", self.contrast), ("saturation", self.saturation)]
        {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(format!("colour jitter {name} must be a non-negative number, got {v}"));
            }
        }
        if !(0.0..=0.5).contains(&self.hue) {
            return Err(format!("colour jitter hue must be in [0, 0.5], got {}", self.hue));
        }
        Ok(())
    }

    /// Draws the order and the factors as `ColorJitter.get_params` does: a permutation of the
    /// four adjustments, then brightness, contrast, saturation and hue factors (those that are
    /// not left out), each uniform in its range. Returns the adjustments in application order.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Vec<Adjust> {
        let mut order = [0usize, 1, 2, 3];
        // Fisher-Yates, like the loader's sample order.
        for i in (1..4).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        let mut factor = |v: f64| (v > 0.0).then(|| rng.random_range((1.0 - v).max(0.0)..=1.0 + v));
        let b = factor(self.brightness);
        let c = factor(self.contrast);
        let s = factor(self.saturation);
        let h = (self.hue > 0.0).then(|| rng.random_range(-self.hue..=self.hue));
        order
            .iter()
            .filter_map(|&i| match i {
                0 => b.map(Adjust::Brightness),
                1 => c.map(Adjust::Contrast),
                2 => s.map(Adjust::Saturation),
                _ => h.map(Adjust::Hue),
            })
            .collect()
    }
}

/// Applies one adjustment in place.
pub fn adjust(img: &mut Rgb8, a: Adjust) {
    match a {
        Adjust::Brightness(f) => blend_constant(img, 0, f),
        Adjust::Contrast(f) => {
            // ImageStat's mean of the L image, rounded as `int(mean + 0.5)`.
            let sum: u64 = img.data.chunks_exact(3).map(|p| u64::from(luma(p))).sum();
            let n = (img.data.len() / 3).max(1);
            let mean = (sum as f64 / n as f64 + 0.5) as u8;
            blend_constant(img, mean, f)
        }
        Adjust::Saturation(f) => {
            let alpha = f as f32;
            if alpha == 1.0 {
                return;
            }
            for p in img.data.chunks_exact_mut(3) {
                let l = luma(p);
                for v in p.iter_mut() {
                    *v = blend(l, *v, alpha);
                }
            }
        }
        Adjust::Hue(h) => adjust_hue(img, h),
    }
}

/// Pillow's `L` of an RGB pixel: `(R * 19595 + G * 38470 + B * 7471 + 0x8000) >> 16`.
pub fn luma(p: &[u8]) -> u8 {
    ((u32::from(p[0]) * 19595 + u32::from(p[1]) * 38470 + u32::from(p[2]) * 7471 + 0x8000) >> 16) as u8
}

/// `ImagingBlend(degenerate, image, alpha)` for one value: `in1 + alpha * (in2 - in1)` in C
/// float arithmetic, truncated, clipped when extrapolating.
fn blend(in1: u8, in2: u8, alpha: f32) -> u8 {
    let d = (i32::from(in2) - i32::from(in1)) as f32;
    let t = f32::from(in1) + alpha * d;
    if (0.0..=1.0).contains(&alpha) {
        t as u8
    } else if t <= 0.0 {
        0
    } else if t >= 255.0 {
        255
    } else {
        t as u8
    }
}

/// Blend with a constant image of value `c` (brightness: black; contrast: the mean grey).
fn blend_constant(img: &mut Rgb8, c: u8, factor: f64) {
    let alpha = factor as f32;
    if alpha == 1.0 {
        return;
    }
    if alpha == 0.0 {
        img.data.fill(c);
        return;
    }
    let table: Vec<u8> = (0..=255u8).map(|v| blend(c, v, alpha)).collect();
    for v in &mut img.data {
        *v = table[usize::from(*v)];
    }
}

/// Pillow's `rgb2hsv_row` (following colorsys.py, in C float/double arithmetic).
fn rgb_to_hsv(r: u8, g: u8, b: u8) -> [u8; 3] {
    let maxc = r.max(g).max(b);
    let minc = r.min(g).min(b);
    if minc == maxc {
        return [0, 0, maxc];
    }
    let cr = f32::from(maxc - minc);
    let s = cr / f32::from(maxc);
    let rc = f32::from(maxc - r) / cr;
    let gc = f32::from(maxc - g) / cr;
    let bc = f32::from(maxc - b) / cr;
    let h: f32 = if r == maxc {
        bc - gc
    } else if g == maxc {
        (2.0 + f64::from(rc) - f64::from(bc)) as f32
    } else {
        (4.0 + f64::from(gc) - f64::from(rc)) as f32
    };
    let h = ((f64::from(h) / 6.0 + 1.0) % 1.0) as f32;
    let to_u8 = |v: f32| ((f64::from(v) * 255.0) as i32).clamp(0, 255) as u8;
    [to_u8(h), to_u8(s), maxc]
}

/// Pillow's `hsv2rgb`.
fn hsv_to_rgb(h: u8, s: u8, v: u8) -> [u8; 3] {
    if s == 0 {
        return [v; 3];
    }
    let hf = f64::from(f32::from(h)) * 6.0 / 255.0;
    let i = hf.floor() as i32;
    let f = (hf - f64::from(i as f32)) as f32;
    let fs = (f64::from(f32::from(s)) / 255.0) as f32;
    let vf = f64::from(f32::from(v));
    let clip = |x: f64| (x.round() as i32).clamp(0, 255) as u8;
    let p = clip(vf * (1.0 - f64::from(fs)));
    let q = clip(vf * (1.0 - f64::from(fs * f)));
    let t = clip(vf * (1.0 - f64::from(fs) * (1.0 - f64::from(f))));
    match i % 6 {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

/// torchvision's PIL `adjust_hue`: to HSV, `h += uint8(int32(hue * 255))` with wrap-around,
/// back to RGB (the round trip runs even when the shift is 0, as there).
fn adjust_hue(img: &mut Rgb8, hue: f64) {
    let shift = ((hue * 255.0) as i32) as u8;
    for p in img.data.chunks_exact_mut(3) {
        let [h, s, v] = rgb_to_hsv(p[0], p[1], p[2]);
        p.copy_from_slice(&hsv_to_rgb(h.wrapping_add(shift), s, v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn sampling_draws_in_range_and_shuffles() {
        let j = ColorJitter::DARTS_IMAGENET;
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut first = [0usize; 4];
        for _ in 0..400 {
            let a = j.sample(&mut rng);
            assert_eq!(a.len(), 4);
            for x in &a {
                match *x {
                    Adjust::Brightness(f) | Adjust::Contrast(f) | Adjust::Saturation(f) => {
                        assert!((0.6..=1.4).contains(&f))
                    }
                    Adjust::Hue(h) => assert!((-0.2..=0.2).contains(&h)),
                }
            }
            first[match a[0] {
                Adjust::Brightness(_) => 0,
                Adjust::Contrast(_) => 1,
                Adjust::Saturation(_) => 2,
                Adjust::Hue(_) => 3,
            }] += 1;
        }
        assert!(first.iter().all(|&n| n > 60), "every adjustment comes first sometimes: {first:?}");
        let none = ColorJitter { brightness: 0.0, contrast: 0.5, saturation: 0.0, hue: 0.0 };
        assert!(matches!(none.sample(&mut rng)[..], [Adjust::Contrast(_)]));
        assert!(ColorJitter { hue: 0.6, ..j }.validate().is_err());
        assert!(ColorJitter { brightness: -0.1, ..j }.validate().is_err());
    }

    #[test]
    fn identity_factors_and_grey_pixels() {
        let mut img = Rgb8 { width: 2, height: 1, data: vec![10, 200, 30, 90, 90, 90] };
        let orig = img.clone();
        for a in [Adjust::Brightness(1.0), Adjust::Contrast(1.0), Adjust::Saturation(1.0)] {
            adjust(&mut img, a);
            assert_eq!(img, orig);
        }
        // A grey pixel has no hue or saturation: the round trip keeps it.
        let mut grey = Rgb8 { width: 1, height: 1, data: vec![90, 90, 90] };
        adjust(&mut grey, Adjust::Hue(0.3));
        adjust(&mut grey, Adjust::Saturation(1.7));
        assert_eq!(grey.data, vec![90, 90, 90]);
        adjust(&mut grey, Adjust::Brightness(0.5));
        assert_eq!(grey.data, vec![45, 45, 45]);
    }
}
