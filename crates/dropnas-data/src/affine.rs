//! torchvision's `RandomAffine` on u8 images, reproduced exactly.
//!
//! The original (Fashion-)MNIST pipeline applies `RandomAffine` to PIL images, so the reference
//! is `torchvision.transforms.functional.affine` on a PIL image: the inverse matrix of
//! `_get_inverse_affine_matrix` with the centre at (W/2, H/2), resampled by Pillow's
//! nearest-neighbour `ImagingTransformAffine`. Pillow samples at pixel centres and has three
//! code paths (pure scaling, 16.16 fixed point, floating point) that round differently at exact
//! ties; all three are ported so that the output matches Pillow byte for byte
//! (checked against `tests/fixtures/affine.json`, made by `tools/data_affine_fixture.py`).

use rand::Rng;

/// Parameters of one affine transform, as `RandomAffine.get_params` returns them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AffineParams {
    /// Rotation in degrees (clockwise in image coordinates, as in torchvision).
    pub angle: f64,
    /// Translation in whole pixels (x, y), applied after rotation.
    pub translate: (i64, i64),
    /// Overall scale factor.
    pub scale: f64,
    /// Shear angles in degrees: (parallel to x, parallel to y).
    pub shear: (f64, f64),
}

impl AffineParams {
    /// The identity transform.
    pub const IDENTITY: AffineParams = AffineParams { angle: 0.0, translate: (0, 0), scale: 1.0, shear: (0.0, 0.0) };
}

/// The ranges of `RandomAffine(degrees, translate, scale, shear)`, with a single shear number
/// meaning an x-shear range and no y-shear (torchvision's reading).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomAffine {
    /// Angle ~ U(-degrees, degrees).
    pub degrees: f64,
    /// Translation fraction of (width, height): tx ~ round(U(-f*W, f*W)).
    pub translate: (f64, f64),
    /// Scale ~ U(min, max).
    pub scale: (f64, f64),
    /// x-shear ~ U(-shear, shear) degrees.
    pub shear: f64,
}

impl RandomAffine {
    /// `RandomAffine(degrees=15, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=0.1)`, the
    /// (Fashion-)MNIST training augmentation of DropNAS.
    pub const DROPNAS_MNIST: RandomAffine =
        RandomAffine { degrees: 15.0, translate: (0.1, 0.1), scale: (0.9, 1.1), shear: 0.1 };

    /// Draws parameters for a `width` x `height` image in `RandomAffine.get_params`' order:
    /// angle, tx, ty, scale, x-shear.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R, width: usize, height: usize) -> AffineParams {
        let angle = uniform(rng, -self.degrees, self.degrees);
        let max_dx = self.translate.0 * width as f64;
        let max_dy = self.translate.1 * height as f64;
        // Python's round() rounds half to even.
        let tx = uniform(rng, -max_dx, max_dx).round_ties_even() as i64;
        let ty = uniform(rng, -max_dy, max_dy).round_ties_even() as i64;
        let scale = uniform(rng, self.scale.0, self.scale.1);
        let shear_x = uniform(rng, -self.shear, self.shear);
        AffineParams { angle, translate: (tx, ty), scale, shear: (shear_x, 0.0) }
    }
}

/// U[lo, hi) like `torch.empty(1).uniform_(lo, hi)`; a degenerate range gives `lo`.
fn uniform<R: Rng + ?Sized>(rng: &mut R, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

/// Port of torchvision's `_get_inverse_affine_matrix(center, angle, translate, scale, shear)`:
/// the 2x3 matrix mapping output pixel coordinates to input coordinates, row-major.
pub fn inverse_affine_matrix(center: (f64, f64), p: &AffineParams) -> [f64; 6] {
    let rot = p.angle.to_radians();
    let sx = p.shear.0.to_radians();
    let sy = p.shear.1.to_radians();
    let (cx, cy) = center;
    let (tx, ty) = (p.translate.0 as f64, p.translate.1 as f64);

    // Rotation-shear matrix without scaling; same expression order as torchvision, so the
    // floating-point results are identical.
    let a = (rot - sy).cos() / sy.cos();
    let b = -(rot - sy).cos() * sx.tan() / sy.cos() - rot.sin();
    let c = (rot - sy).sin() / sy.cos();
    let d = -(rot - sy).sin() * sx.tan() / sy.cos() + rot.cos();

    let mut m = [d, -b, 0.0, -c, a, 0.0].map(|v| v / p.scale);
    m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty);
    m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty);
    m[2] += cx;
    m[5] += cy;
    m
}

/// Pillow's `COORD`: truncation, with every negative coordinate mapped to -1 (outside).
fn coord(v: f64) -> i64 {
    if v < 0.0 { -1 } else { v as i64 }
}

/// Pillow's `FIX`: to 16.16 fixed point, rounding half up.
fn fix(v: f64) -> i64 {
    (v * 65536.0 + 0.5).floor() as i64
}

/// Nearest-neighbour affine warp of a CHW-planar u8 image, as Pillow's `Image.transform(size,
/// AFFINE, matrix, NEAREST)` with fill 0: output pixel (x, y) takes the input pixel holding the
/// point `matrix * (x + 0.5, y + 0.5, 1)`, or 0 when that point is outside the image.
///
/// `src` and `out` hold `channels * height * width` bytes.
pub fn warp_affine_nearest(src: &[u8], out: &mut [u8], channels: usize, height: usize, width: usize, m: &[f64; 6]) {
    let plane = height * width;
    debug_assert!(src.len() >= channels * plane && out.len() >= channels * plane);
    // The source pixel index for every output pixel (or None), computed once for all channels.
    let mut map: Vec<Option<usize>> = vec![None; plane];
    let (w, h) = (width as i64, height as i64);
    // Only coordinates that pass this are cast to usize, so the casts below cannot wrap.
    let inside = |xin: i64, yin: i64| (0..w).contains(&xin) && (0..h).contains(&yin);

    if m[1] == 0.0 && m[3] == 0.0 {
        // ImagingScaleAffine: pure scaling / translation, floating point, truncation.
        let mut xo = m[2] + m[0] * 0.5;
        let mut yo = m[5] + m[4] * 0.5;
        let mut xin_tab = vec![-1i64; width];
        for entry in xin_tab.iter_mut() {
            *entry = coord(xo);
            xo += m[0];
        }
        for y in 0..height {
            let yi = coord(yo);
            for (x, &xin) in xin_tab.iter().enumerate() {
                if inside(xin, yi) {
                    map[y * width + x] = Some((yi * w + xin) as usize);
                }
            }
            yo += m[4];
        }
    } else if [(0, 0), (w, h), (0, h), (w, 0)].iter().all(|&(x, y)| {
        let (x, y) = (x as f64, y as f64);
        (x * m[0] + y * m[1] + m[2]).abs() < 32768.0 && (x * m[3] + y * m[4] + m[5]).abs() < 32768.0
    }) {
        // affine_fixed: 16.16 fixed point, stepping by the matrix columns.
        let (a0, a1, a3, a4) = (fix(m[0]), fix(m[1]), fix(m[3]), fix(m[4]));
        let mut a2 = fix(m[2] + m[0] * 0.5 + m[1] * 0.5);
        let mut a5 = fix(m[5] + m[3] * 0.5 + m[4] * 0.5);
        for y in 0..height {
            let (mut xx, mut yy) = (a2, a5);
            for x in 0..width {
                let (xin, yin) = (xx >> 16, yy >> 16);
                if inside(xin, yin) {
                    map[y * width + x] = Some((yin * w + xin) as usize);
                }
                xx += a0;
                yy += a3;
            }
            a2 += a1;
            a5 += a4;
        }
    } else {
        // Floating-point fallback for coordinates beyond fixed-point range.
        let mut xo = m[2] + m[1] * 0.5 + m[0] * 0.5;
        let mut yo = m[5] + m[4] * 0.5 + m[3] * 0.5;
        for y in 0..height {
            let (mut xx, mut yy) = (xo, yo);
            for x in 0..width {
                let (xin, yin) = (coord(xx), coord(yy));
                if inside(xin, yin) {
                    map[y * width + x] = Some((yin * w + xin) as usize);
                }
                xx += m[0];
                yy += m[3];
            }
            xo += m[1];
            yo += m[4];
        }
    }

    for c in 0..channels {
        let (s, o) = (&src[c * plane..(c + 1) * plane], &mut out[c * plane..(c + 1) * plane]);
        for (dst, from) in o.iter_mut().zip(&map) {
            *dst = from.map_or(0, |i| s[i]);
        }
    }
}

/// `F.affine(img, angle, translate, scale, shear, NEAREST, fill=0)` on a PIL-like u8 image.
pub fn affine(src: &[u8], out: &mut [u8], channels: usize, height: usize, width: usize, p: &AffineParams) {
    let center = (width as f64 * 0.5, height as f64 * 0.5);
    let m = inverse_affine_matrix(center, p);
    warp_affine_nearest(src, out, channels, height, width, &m);
}
