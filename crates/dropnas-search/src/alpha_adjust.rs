//! The alpha adjustment ("alpha-adjust" in the paper).
//!
//! Dropped ops get no gradient, yet Adam and the softmax move them passively: the kept ops'
//! update shifts probability mass onto or off the dropped ones. After each step, DropNAS adds
//! one constant `k` to every kept alpha of an edge so that the kept group holds exactly the
//! probability mass it held before the step, leaving dropped alphas untouched.

use dropnas_core::dropout::CellMask;

/// `ratio_e = sum over kept ops of exp(alpha) / sum over all ops`, per edge, from the alphas
/// before the update.
pub fn kept_ratios(rows: &[Vec<f32>], mask: &CellMask) -> Vec<f64> {
    rows.iter()
        .zip(&mask.keep)
        .map(|(row, keep)| {
            let (mut kept, mut all) = (0.0f64, 0.0f64);
            for (&a, &k) in row.iter().zip(keep) {
                let e = (a as f64).exp();
                all += e;
                if k {
                    kept += e;
                }
            }
            kept / all
        })
        .collect()
}

/// For every edge with a dropped op: with `U` (kept) and `R` (dropped) the sums of
/// `exp(alpha)` after the update, adds `k = ln(ratio / (1 - ratio) * R / U)` to the kept
/// alphas, so that `U' / (U' + R) = ratio` again.
pub fn adjust_rows(rows: &mut [Vec<f32>], mask: &CellMask, ratios: &[f64]) {
    for (e, row) in rows.iter_mut().enumerate() {
        if !mask.edge_has_drop(e) {
            continue;
        }
        let keep = &mask.keep[e];
        let (mut u, mut r) = (0.0f64, 0.0f64);
        for (&a, &k) in row.iter().zip(keep) {
            if k {
                u += (a as f64).exp();
            } else {
                r += (a as f64).exp();
            }
        }
        let ratio = ratios[e];
        let shift = (ratio / (1.0 - ratio) * r / u).ln();
        for (a, &k) in row.iter_mut().zip(keep) {
            if k {
                *a = (*a as f64 + shift) as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_mass_is_restored_exactly_and_dropped_alphas_untouched() {
        let mask = CellMask {
            keep: vec![
                vec![true, false, true, true, false, true, true, true],
                vec![true; 8],
                vec![false, true, true, true, true, true, true, false],
            ],
        };
        let before: Vec<Vec<f32>> = vec![
            vec![0.10, -0.20, 0.05, 0.30, 0.00, -0.10, 0.20, 0.01],
            vec![0.01; 8],
            vec![0.50, 0.10, -0.30, 0.00, 0.20, 0.10, -0.10, 0.40],
        ];
        let ratios = kept_ratios(&before, &mask);
        // a step that moved the kept alphas (and, passively, not the dropped ones)
        let mut after: Vec<Vec<f32>> = before
            .iter()
            .zip(&mask.keep)
            .map(|(r, k)| r.iter().zip(k).map(|(&a, &k)| if k { a + 0.3 } else { a }).collect())
            .collect();
        let moved = after.clone();
        adjust_rows(&mut after, &mask, &ratios);
        let again = kept_ratios(&after, &mask);
        for e in [0, 2] {
            assert!((again[e] - ratios[e]).abs() < 1e-7, "edge {e}: {} vs {}", again[e], ratios[e]);
            for c in 0..8 {
                if !mask.keep[e][c] {
                    assert_eq!(after[e][c], moved[e][c], "dropped alpha moved");
                }
            }
        }
        // an edge without drops is left alone
        assert_eq!(after[1], moved[1]);
        // the shift is uniform over kept alphas: their differences are preserved
        assert!(((after[0][0] - after[0][2]) - (moved[0][0] - moved[0][2])).abs() < 1e-6);
    }
}
