//! Bilinear resizing exactly as torchvision does it on PIL images (`Image.resize(size,
//! BILINEAR)`): Pillow's two-pass convolution resampler (`libImaging/Resample.c`), whose
//! triangle filter widens with the scale factor when shrinking (the antialiasing of
//! torchvision's PIL path), with Pillow's 22-bit fixed-point coefficients and rounding. Ported
//! step for step, so that the output equals Pillow's byte for byte (checked against
//! `tests/fixtures/folder_transforms.json`, made by `tools/data_folder_fixture.py`).
//!
//! The two passes run horizontal first, except when the height shrinks by more than twice as
//! many pixels as the width does: then Pillow 13 runs the vertical pass first (it saves work;
//! the rule is Pillow 13.0.0's behaviour, checked on 684 random sizes; Pillow 12 and older
//! always go horizontal first, and differ from 13 by 1 on a few pixels of such resizes).
//!
//! Also the size arithmetic of torchvision's `Resize(int)` and `CenterCrop`.

/// An 8-bit RGB image, rows of interleaved R, G, B (what decoders hand out).
#[derive(Clone, PartialEq, Eq)]
pub struct Rgb8 {
    pub width: usize,
    pub height: usize,
    /// `height * width * 3` bytes.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Rgb8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rgb8({}x{})", self.width, self.height)
    }
}

/// A rectangle of an image: `width x height` pixels from column `left`, row `top`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub top: usize,
    pub left: usize,
    pub height: usize,
    pub width: usize,
}

impl Rgb8 {
    /// A black image.
    pub fn new(width: usize, height: usize) -> Self {
        Rgb8 { width, height, data: vec![0; width * height * 3] }
    }

    /// The whole image as a window.
    pub fn full(&self) -> Window {
        Window { top: 0, left: 0, height: self.height, width: self.width }
    }

    /// Copies `w` out (PIL's `crop` inside the image).
    pub fn crop(&self, w: Window) -> Rgb8 {
        let mut out = Rgb8::new(w.width, w.height);
        for y in 0..w.height {
            let src = ((w.top + y) * self.width + w.left) * 3;
            out.data[y * w.width * 3..(y + 1) * w.width * 3].copy_from_slice(&self.data[src..src + w.width * 3]);
        }
        out
    }

    /// Mirrors left-right (`hflip`).
    pub fn hflip(&mut self) {
        for row in self.data.chunks_exact_mut(self.width * 3) {
            let n = row.len() / 3;
            for x in 0..n / 2 {
                for c in 0..3 {
                    row.swap(x * 3 + c, (n - 1 - x) * 3 + c);
                }
            }
        }
    }
}

/// Pillow's `PRECISION_BITS` for 8-bit images: 32 - 8 - 2.
const PRECISION_BITS: u32 = 22;

/// Pillow's bilinear (triangle) filter, support 1.
fn bilinear(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

/// One output pixel's taps: the first input index and the fixed-point weights.
struct Taps {
    first: usize,
    weights: Vec<i32>,
}

/// `precompute_coeffs` then `normalize_coeffs_8bpc` for an axis of `in_size` pixels (box from 0
/// to `in_size`) resampled to `out_size`.
fn coefficients(in_size: usize, out_size: usize) -> Vec<Taps> {
    // Pillow takes the box as C floats and the scale in double.
    let scale = f64::from(in_size as f32) / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filterscale; // the bilinear filter's support (1) times the scale
    let inv = 1.0 / filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            // C's `(int)` truncates toward zero.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let mut k: Vec<f64> = (xmin..xmax).map(|x| bilinear((x as f64 - center + 0.5) * inv)).collect();
            let ww: f64 = k.iter().sum();
            if ww != 0.0 {
                k.iter_mut().for_each(|w| *w /= ww);
            }
            let unit = f64::from(1u32 << PRECISION_BITS);
            let weights =
                k.iter().map(|&w| if w < 0.0 { (-0.5 + w * unit) as i32 } else { (0.5 + w * unit) as i32 }).collect();
            Taps { first: xmin, weights }
        })
        .collect()
}

/// Pillow's `clip8` of a fixed-point sum.
fn clip8(ss: i32) -> u8 {
    (ss >> PRECISION_BITS).clamp(0, 255) as u8
}

/// One horizontal pass: rows `rows` of `window` of `src`, each resampled to `out_w` pixels.
fn horizontal(src: &Rgb8, window: Window, rows: std::ops::Range<usize>, out_w: usize) -> Rgb8 {
    let Window { top, left, width: w, .. } = window;
    let taps = coefficients(w, out_w);
    let half = 1i32 << (PRECISION_BITS - 1);
    let mut out = Rgb8::new(out_w, rows.len());
    for (y, row) in rows.enumerate() {
        let line = &src.data[((top + row) * src.width + left) * 3..][..w * 3];
        let dst = &mut out.data[y * out_w * 3..(y + 1) * out_w * 3];
        for (xx, t) in taps.iter().enumerate() {
            let mut ss = [half; 3];
            for (x, &k) in t.weights.iter().enumerate() {
                let p = &line[(t.first + x) * 3..][..3];
                for c in 0..3 {
                    ss[c] += i32::from(p[c]) * k;
                }
            }
            for c in 0..3 {
                dst[xx * 3 + c] = clip8(ss[c]);
            }
        }
    }
    out
}

/// One vertical pass: `window` of `src` resampled to `out_h` rows (its width kept).
fn vertical(src: &Rgb8, window: Window, out_h: usize) -> Rgb8 {
    let Window { top, left, height: h, width: w } = window;
    let half = 1i32 << (PRECISION_BITS - 1);
    let mut out = Rgb8::new(w, out_h);
    let row_len = w * 3;
    for (yy, t) in coefficients(h, out_h).iter().enumerate() {
        let dst = &mut out.data[yy * row_len..(yy + 1) * row_len];
        for (i, o) in dst.iter_mut().enumerate() {
            let mut ss = half;
            for (y, &k) in t.weights.iter().enumerate() {
                ss += i32::from(src.data[((top + t.first + y) * src.width + left) * 3 + i]) * k;
            }
            *o = clip8(ss);
        }
    }
    out
}

/// Resizes `window` of `src` to `out_w x out_h` as `src.crop(window).resize((out_w, out_h),
/// BILINEAR)` does in Pillow 13 (the window's edges are the image's edges).
pub fn resize_bilinear(src: &Rgb8, window: Window, out_w: usize, out_h: usize) -> Rgb8 {
    let (w, h) = (window.width, window.height);
    let (need_h, need_v) = (out_w != w, out_h != h);
    if !need_h && !need_v {
        return src.crop(window);
    }
    let vertical_first = out_h < h && 2 * (w as i64 - out_w as i64) < (h - out_h) as i64;
    if vertical_first {
        let tall = vertical(src, window, out_h);
        return if need_h { horizontal(&tall, tall.full(), 0..out_h, out_w) } else { tall };
    }
    if !need_v {
        return horizontal(src, window, 0..h, out_w);
    }
    if !need_h {
        return vertical(src, window, out_h);
    }
    // Only the rows the vertical pass reads go through the horizontal pass, as in Pillow.
    let taps = coefficients(h, out_h);
    let first = taps[0].first;
    let last = taps.last().map_or(first, |t| t.first + t.weights.len());
    let wide = horizontal(src, window, first..last, out_w);
    // The vertical taps count rows of the window; the intermediate image starts at row `first`.
    let mut out = Rgb8::new(out_w, out_h);
    let half = 1i32 << (PRECISION_BITS - 1);
    let row_len = out_w * 3;
    for (yy, t) in taps.iter().enumerate() {
        let dst = &mut out.data[yy * row_len..(yy + 1) * row_len];
        for (i, o) in dst.iter_mut().enumerate() {
            let mut ss = half;
            for (y, &k) in t.weights.iter().enumerate() {
                ss += i32::from(wide.data[(t.first - first + y) * row_len + i]) * k;
            }
            *o = clip8(ss);
        }
    }
    out
}

/// The size torchvision's `Resize(size)` gives a `width x height` image: the shorter side
/// becomes `size`, the longer one `int(size * long / short)` (truncated).
pub fn shorter_side_to(width: usize, height: usize, size: usize) -> (usize, usize) {
    let (short, long) = if width <= height { (width, height) } else { (height, width) };
    let new_long = (size as f64 * long as f64 / short as f64) as usize;
    if width <= height { (size, new_long) } else { (new_long, size) }
}

/// The window torchvision's `CenterCrop(size)` takes from a `width x height` image at least
/// `size` on each side: offsets `int(round((side - size) / 2))`, Python's round (half to even).
pub fn center_window(width: usize, height: usize, size: usize) -> Window {
    let offset = |side: usize| ((side - size) as f64 / 2.0).round_ties_even() as usize;
    Window { top: offset(height), left: offset(width), height: size, width: size }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: usize, h: usize) -> Rgb8 {
        let data = (0..w * h * 3).map(|i| ((i * 37 + i / 3) % 256) as u8).collect();
        Rgb8 { width: w, height: h, data }
    }

    #[test]
    fn same_size_is_a_copy_and_a_constant_stays_constant() {
        let img = ramp(7, 5);
        assert_eq!(resize_bilinear(&img, img.full(), 7, 5), img);
        let flat = Rgb8 { width: 9, height: 6, data: vec![200; 9 * 6 * 3] };
        for (w, h) in [(4, 3), (20, 13), (9, 2), (1, 1)] {
            assert!(resize_bilinear(&flat, flat.full(), w, h).data.iter().all(|&v| v == 200));
        }
    }

    #[test]
    fn a_window_is_a_crop() {
        let img = ramp(11, 9);
        let w = Window { top: 2, left: 3, height: 5, width: 6 };
        assert_eq!(resize_bilinear(&img, w, 4, 3), resize_bilinear(&img.crop(w), img.crop(w).full(), 4, 3));
    }

    #[test]
    fn torchvision_size_arithmetic() {
        assert_eq!(shorter_side_to(500, 375, 256), (341, 256));
        assert_eq!(shorter_side_to(375, 500, 256), (256, 341));
        assert_eq!(shorter_side_to(300, 300, 256), (256, 256));
        // round half to even: (257 - 224) / 2 = 16.5 -> 16; (259 - 224) / 2 = 17.5 -> 18
        assert_eq!(center_window(257, 259, 224), Window { top: 18, left: 16, height: 224, width: 224 });
    }

    #[test]
    fn hflip_mirrors() {
        let mut img = ramp(3, 2);
        let orig = img.clone();
        img.hflip();
        assert_eq!(&img.data[0..3], &orig.data[6..9]);
        img.hflip();
        assert_eq!(img, orig);
    }
}
