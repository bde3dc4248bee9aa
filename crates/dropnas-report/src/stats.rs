//! Mean and standard deviation over runs: one definition for `report --compare` and the
//! protocol's results.

use serde::{Deserialize, Serialize};

/// Mean ± standard deviation of some values (accuracies in %, say).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanStd {
    /// How many values.
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n - 1, numpy's `std(ddof=1)`); `None` for a single value.
    pub std: Option<f64>,
    /// Population standard deviation (n, numpy's default `std()`): what the original's
    /// `start.py` printed next to the mean.
    pub std_population: f64,
    pub min: f64,
    pub max: f64,
}

impl MeanStd {
    /// `None` for no values.
    pub fn of(values: &[f64]) -> Option<MeanStd> {
        if values.is_empty() {
            return None;
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let squares = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>();
        Some(MeanStd {
            n: values.len(),
            mean,
            std: (values.len() > 1).then(|| (squares / (n - 1.0)).sqrt()),
            std_population: (squares / n).sqrt(),
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }

    /// `97.42±0.14` (sample std), or `97.42` for one value; two decimals, as the DropNAS README.
    pub fn short(&self) -> String {
        Self::short_of(self.mean, self.std)
    }

    /// [`MeanStd::short`] of a mean and a sample std.
    pub fn short_of(mean: f64, std: Option<f64>) -> String {
        match std {
            Some(sd) => format!("{mean:.2}±{sd:.2}"),
            None => format!("{mean:.2}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_and_population_deviations_are_numpys() {
        // numpy: np.std([97.1, 97.5, 97.3, 97.6], ddof=1) = 0.22173557826083526, ddof=0: 0.19202864369671585
        let s = MeanStd::of(&[97.1, 97.5, 97.3, 97.6]).unwrap();
        assert!((s.mean - 97.375).abs() < 1e-12);
        assert!((s.std.unwrap() - 0.22173557826083526).abs() < 1e-12);
        assert!((s.std_population - 0.19202864369671585).abs() < 1e-12);
        assert_eq!((s.n, s.min, s.max), (4, 97.1, 97.6));
        assert_eq!(s.short(), "97.38±0.22");
        let one = MeanStd::of(&[50.0]).unwrap();
        assert_eq!((one.std, one.std_population, one.short().as_str()), (None, 0.0, "50.00"));
        assert!(MeanStd::of(&[]).is_none());
    }
}
