//! Preprocessing: hand-made images with known answers, torchvision reference outputs, shapes,
//! value ranges and reproducibility.

mod common;

use dropnas_data::affine::{self, AffineParams, RandomAffine, inverse_affine_matrix};
use dropnas_data::transform::{CropParams, crop_flip, cutout, hflip};
use dropnas_data::{Augment, DatasetKind};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[test]
fn hflip_mirrors_each_row_of_each_channel() {
    // 2 channels of 2x3.
    let src = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
    let mut out = [0u8; 12];
    hflip(&src, &mut out, [2, 2, 3]);
    assert_eq!(out, [3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10]);
}

#[test]
fn crop_with_known_offsets() {
    // 1x4x4 image holding 1..=16, padding 2 (padded image 8x8, windows at 0..=4).
    let src: Vec<u8> = (1..=16).collect();
    let shape = [1, 4, 4];
    let crop = |top, left, flip| {
        let mut out = vec![0u8; 16];
        crop_flip(&src, &mut out, shape, 2, CropParams { top, left, flip });
        out
    };
    // Window at (2, 2) is the original image.
    assert_eq!(crop(2, 2, false), src);
    // Top-left window: two rows and columns of padding zeros, then the top-left 2x2.
    #[rustfmt::skip]
    assert_eq!(crop(0, 0, false), [
        0, 0, 0, 0,
        0, 0, 0, 0,
        0, 0, 1, 2,
        0, 0, 5, 6,
    ]);
    // Window at (3, 4): rows 1..4 of the source, columns 2..4 then padding.
    #[rustfmt::skip]
    assert_eq!(crop(3, 4, false), [
        7, 8, 0, 0,
        11, 12, 0, 0,
        15, 16, 0, 0,
        0, 0, 0, 0,
    ]);
    // The flip comes after the crop: the cropped window mirrored.
    #[rustfmt::skip]
    assert_eq!(crop(3, 4, true), [
        0, 0, 8, 7,
        0, 0, 12, 11,
        0, 0, 16, 15,
        0, 0, 0, 0,
    ]);
}

#[test]
fn cutout_zeroes_exactly_the_clipped_square() {
    let shape = [2, 10, 10];
    let check = |cy: usize, cx: usize, len: usize, rows: std::ops::Range<usize>, cols: std::ops::Range<usize>| {
        let mut img = vec![1.5f32; 200];
        cutout(&mut img, shape, cy, cx, len);
        for c in 0..2 {
            for y in 0..10 {
                for x in 0..10 {
                    let v = img[(c * 10 + y) * 10 + x];
                    let cut = rows.contains(&y) && cols.contains(&x);
                    assert_eq!(v, if cut { 0.0 } else { 1.5 }, "c{c} y{y} x{x} ({cy},{cx},{len})");
                }
            }
        }
    };
    check(5, 5, 4, 3..7, 3..7);
    // At a corner the square is clipped to the image.
    check(0, 9, 6, 0..3, 6..10);
    check(9, 0, 16, 1..10, 0..8);
    // Odd length: integer division, as the original.
    check(4, 4, 5, 2..6, 2..6);
}

#[test]
fn affine_integer_shift_is_exact() {
    let (h, w) = (6usize, 7usize);
    let src: Vec<u8> = (1..=(h * w) as u8).collect();
    for (tx, ty) in [(2i64, 1i64), (-3, 2), (0, -1), (1, 0)] {
        let p = AffineParams { translate: (tx, ty), ..AffineParams::IDENTITY };
        let mut out = vec![0u8; h * w];
        affine::affine(&src, &mut out, 1, h, w, &p);
        for y in 0..h as i64 {
            for x in 0..w as i64 {
                let (sy, sx) = (y - ty, x - tx);
                let expected = if (0..h as i64).contains(&sy) && (0..w as i64).contains(&sx) {
                    src[(sy * w as i64 + sx) as usize]
                } else {
                    0
                };
                assert_eq!(out[(y * w as i64 + x) as usize], expected, "shift ({tx},{ty}) at ({x},{y})");
            }
        }
    }
}

#[test]
fn affine_matches_torchvision_on_pil_images() {
    let text = include_str!("fixtures/affine.json");
    let doc: serde_json::Value = serde_json::from_str(text).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 6);
    let bytes = |v: &serde_json::Value| -> Vec<u8> {
        v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u8).collect()
    };
    for (i, case) in cases.iter().enumerate() {
        let h = case["height"].as_u64().unwrap() as usize;
        let w = case["width"].as_u64().unwrap() as usize;
        let p = AffineParams {
            angle: case["angle"].as_f64().unwrap(),
            translate: (case["translate"][0].as_i64().unwrap(), case["translate"][1].as_i64().unwrap()),
            scale: case["scale"].as_f64().unwrap(),
            shear: (case["shear"][0].as_f64().unwrap(), case["shear"][1].as_f64().unwrap()),
        };
        let m = inverse_affine_matrix((w as f64 * 0.5, h as f64 * 0.5), &p);
        for (k, reference) in case["inverse_matrix"].as_array().unwrap().iter().enumerate() {
            let r = reference.as_f64().unwrap();
            assert!((m[k] - r).abs() <= 1e-12 * r.abs().max(1.0), "case {i} matrix[{k}]: {} vs {r}", m[k]);
        }
        let (src, expected) = (bytes(&case["input"]), bytes(&case["output"]));
        let mut out = vec![0u8; h * w];
        affine::affine(&src, &mut out, 1, h, w, &p);
        let wrong = out.iter().zip(&expected).filter(|(a, b)| a != b).count();
        assert_eq!(wrong, 0, "case {i} ({p:?}, {w}x{h}): {wrong} pixels differ from torchvision");
    }
}

#[test]
fn random_affine_parameters_stay_in_range() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut shifts = std::collections::BTreeSet::new();
    for _ in 0..2000 {
        let p = RandomAffine::DROPNAS_MNIST.sample(&mut rng, 28, 28);
        assert!((-15.0..15.0).contains(&p.angle));
        assert!((0.9..1.1).contains(&p.scale));
        assert!((-0.1..0.1).contains(&p.shear.0) && p.shear.1 == 0.0);
        // 0.1 * 28 = 2.8, rounded: -3..=3 pixels.
        assert!(p.translate.0.abs() <= 3 && p.translate.1.abs() <= 3);
        shifts.insert(p.translate.0);
    }
    assert_eq!(shifts.len(), 7, "every shift in -3..=3 should occur");
}

/// All values a pipeline can produce from a byte are the table values plus cutout's 0.
fn check_range(kind: DatasetKind, out: &[f32]) {
    let (c, s) = (kind.input_channels(), kind.input_size());
    for ch in 0..c {
        let (m, sd) = (kind.mean()[ch] as f32, kind.std()[ch] as f32);
        let (lo, hi) = ((0.0 - m) / sd, (1.0 - m) / sd);
        for &v in &out[ch * s * s..(ch + 1) * s * s] {
            assert!(v == 0.0 || (lo..=hi).contains(&v), "{kind} value {v} outside [{lo}, {hi}]");
        }
    }
}

#[test]
fn pipelines_keep_shape_range_and_are_reproducible() {
    for kind in DatasetKind::ALL {
        let n = kind.input_channels() * kind.input_size() * kind.input_size();
        let image = common::bytes(n, 3);
        for augment in [Augment::train(kind, 16), Augment::train(kind, 0), Augment::eval(kind)] {
            let run = |seed| {
                let mut out = vec![f32::NAN; n];
                augment.apply(&image, &mut ChaCha8Rng::seed_from_u64(seed), &mut out);
                out
            };
            let a = run(1);
            assert!(a.iter().all(|v| v.is_finite()), "{kind}: every output element is written");
            check_range(kind, &a);
            assert_eq!(a, run(1), "{kind}: same seed, same output");
            let random = augment.geometry() != dropnas_data::Geometry::Identity;
            let differs = (2..6).any(|s| run(s) != a);
            assert_eq!(differs, random, "{kind}: only training pipelines are random");
        }
    }
}

#[test]
fn eval_is_torchvision_to_tensor_then_normalize() {
    let kind = DatasetKind::Cifar10;
    let image: Vec<u8> = (0..3072).map(|i| (i % 256) as u8).collect();
    let mut out = vec![0f32; 3072];
    Augment::eval(kind).apply(&image, &mut ChaCha8Rng::seed_from_u64(0), &mut out);
    for (i, (&v, &o)) in image.iter().zip(&out).enumerate() {
        let c = i / 1024;
        let expected = (v as f32 / 255.0 - kind.mean()[c] as f32) / kind.std()[c] as f32;
        assert_eq!(o, expected);
    }
    // Spot value: red 255 of CIFAR-10 normalises to (1 - 0.49139968) / 0.24703233.
    assert!((out[255] - 2.058_838_7).abs() < 1e-5);
}

#[test]
fn cifar_training_pipeline_is_a_padded_crop_of_the_normalised_image() {
    // Whatever the draw, every output row is a (possibly mirrored) shifted copy of a source row
    // or padding, so each output value is the normalised value of some source pixel or of 0.
    let kind = DatasetKind::Cifar10;
    let image = common::bytes(3072, 9);
    let eval = {
        let mut out = vec![0f32; 3072];
        Augment::eval(kind).apply(&image, &mut ChaCha8Rng::seed_from_u64(0), &mut out);
        out
    };
    let zero_norm: Vec<f32> = (0..3).map(|c| (0.0 - kind.mean()[c] as f32) / kind.std()[c] as f32).collect();
    let mut out = vec![0f32; 3072];
    let mut saw_flip = false;
    for seed in 0..20 {
        Augment::train(kind, 0).apply(&image, &mut ChaCha8Rng::seed_from_u64(seed), &mut out);
        // Find the shift of row 16 of the red plane among all offsets and flips.
        let row = &out[16 * 32..17 * 32];
        let found = (0..=8usize)
            .flat_map(|t| (0..=8usize).map(move |l| (t, l)))
            .flat_map(|(t, l)| [(t, l, false), (t, l, true)])
            .find(|&(t, l, flip)| {
                (0..32).all(|x| {
                    let xc = if flip { 31 - x } else { x };
                    let (sy, sx) = (16 + t, xc + l);
                    let v = if (4..36).contains(&sy) && (4..36).contains(&sx) {
                        eval[(sy - 4) * 32 + sx - 4]
                    } else {
                        zero_norm[0]
                    };
                    row[x] == v
                })
            });
        let (_, _, flip) = found.unwrap_or_else(|| panic!("seed {seed}: output row is not a padded crop"));
        saw_flip |= flip;
    }
    assert!(saw_flip);
}

/// The retraining pipeline cuts out after normalisation (the square holds exact zeros, not the
/// normalised value of a black pixel), at a centre drawn over the whole image after the crop's
/// draws (so the crop is the one of the pipeline without cutout), clipped at the borders.
#[test]
fn cutout_follows_normalisation_at_a_uniform_centre() {
    let kind = DatasetKind::Cifar10;
    let (h, w, len) = (32usize, 32usize, 16usize);
    let image = common::bytes(3 * h * w, 21);
    let (mut clipped, mut whole) = (0, 0);
    // per axis (rows, columns): the smallest and largest centre of a full side
    let mut centres = [(usize::MAX, 0usize); 2];
    for seed in 0..300 {
        let mut plain = vec![0f32; 3 * h * w];
        let mut cut = vec![0f32; 3 * h * w];
        Augment::train(kind, 0).apply(&image, &mut ChaCha8Rng::seed_from_u64(seed), &mut plain);
        Augment::train(kind, len).apply(&image, &mut ChaCha8Rng::seed_from_u64(seed), &mut cut);
        // the pixels that differ form one rectangle, the same in every channel, holding 0.0
        let differs = |c: usize, y: usize, x: usize| plain[(c * h + y) * w + x] != cut[(c * h + y) * w + x];
        let rows: Vec<usize> = (0..h).filter(|&y| (0..w).any(|x| differs(0, y, x))).collect();
        let cols: Vec<usize> = (0..w).filter(|&x| (0..h).any(|y| differs(0, y, x))).collect();
        assert!(!rows.is_empty(), "seed {seed}: no cutout");
        for c in 0..3 {
            for y in 0..h {
                for x in 0..w {
                    let inside = rows.contains(&y) && cols.contains(&x);
                    let v = cut[(c * h + y) * w + x];
                    if inside {
                        // a value equal to the plain one is a pixel that was 0.0 already
                        assert!(v == 0.0, "seed {seed}: c{c} y{y} x{x} holds {v}, not 0 (cut before normalising?)");
                    } else {
                        assert_eq!(v, plain[(c * h + y) * w + x], "seed {seed}: c{c} y{y} x{x} outside the square");
                    }
                }
            }
        }
        let span = |v: &[usize]| (v[0], v[v.len() - 1] + 1);
        for (axis, (lo, hi)) in [span(&rows), span(&cols)].into_iter().enumerate() {
            assert!(hi - lo <= len && hi - lo >= len / 2, "seed {seed}: side {lo}..{hi}");
            // a full side is centred at lo + L/2; a clipped one touches a border
            assert!(hi - lo == len || lo == 0 || hi == h, "seed {seed}: a short side {lo}..{hi} inside the image");
            if hi - lo == len {
                whole += 1;
                centres[axis] = (centres[axis].0.min(lo + len / 2), centres[axis].1.max(lo + len / 2));
            } else {
                clipped += 1;
            }
        }
    }
    // centres are uniform over 0..32: about half the sides are clipped (centre within 8 of a border)
    assert!(clipped > 200 && whole > 200, "clipped {clipped}, whole {whole} of 600 sides");
    assert_eq!(centres, [(8, 24); 2], "full squares' centres span 8..=24 on both axes");
}

/// Fashion-MNIST's training pipeline is MNIST's affine followed by a vertical flip drawn with
/// probability 0.5 after the affine's parameters; MNIST's never flips.
#[test]
fn fashion_mnist_flips_upside_down_half_the_time_after_the_affine() {
    use dropnas_data::Geometry;
    let image = common::bytes(28 * 28, 5);
    let unflipped = |kind: DatasetKind, seed: u64| {
        let geometry = Geometry::Affine { ranges: RandomAffine::DROPNAS_MNIST, vertical_flip: false };
        let a = Augment::custom([1, 28, 28], kind.mean(), kind.std(), geometry, 0).unwrap();
        let mut out = vec![0f32; 28 * 28];
        a.apply(&image, &mut ChaCha8Rng::seed_from_u64(seed), &mut out);
        out
    };
    let mirrored = |v: &[f32]| v.chunks_exact(28).rev().flatten().copied().collect::<Vec<f32>>();
    let mut flips = 0;
    for seed in 0..200 {
        let mut out = vec![0f32; 28 * 28];
        Augment::train(DatasetKind::FashionMnist, 0).apply(&image, &mut ChaCha8Rng::seed_from_u64(seed), &mut out);
        let plain = unflipped(DatasetKind::FashionMnist, seed);
        assert!(out == plain || out == mirrored(&plain), "seed {seed}: neither the affine image nor its flip");
        flips += usize::from(out != plain);
        Augment::train(DatasetKind::Mnist, 0).apply(&image, &mut ChaCha8Rng::seed_from_u64(seed), &mut out);
        assert_eq!(out, unflipped(DatasetKind::Mnist, seed), "seed {seed}: MNIST flipped");
    }
    // binomial(200, 0.5): 100 ± 5 standard deviations (35)
    assert!((65..=135).contains(&flips), "{flips} flips in 200 draws");
}
