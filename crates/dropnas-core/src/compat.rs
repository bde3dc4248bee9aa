//! Which PyTorch the run behaves like: the version behind the published numbers (1.0.0, the
//! original's README) or today's.
//!
//! The two differ in four places that change a run's numbers (what was read, and where, is in
//! `tools/reference/PYTORCH-1.0.md`):
//! - **BatchNorm weight at initialisation**: U(0, 1) up to PyTorch 1.1, ones since 1.2;
//! - **Adam's epsilon**: added to `sqrt(v)` before the bias correction in 1.0, to
//!   `sqrt(v_hat)` since 1.6;
//! - **`zero_grad`**: zero-filled gradients in 1.0 (SGD momentum keeps moving the weights of
//!   ops dropped in a step), no gradient at all in 2.x;
//! - **the auxiliary head's in-place ReLU** (the original's code): when the head reads the
//!   last cell's output, the final pooling sees that output after the ReLU.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The PyTorch semantics a run reproduces (`--torch-compat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum TorchCompat {
    /// PyTorch 1.0.0 and the original's code, quirks included: what produced the published
    /// numbers (the default).
    #[default]
    #[serde(rename = "1.0")]
    V1_0,
    /// PyTorch >= 2.0 semantics throughout, without the original's in-place ReLU.
    #[serde(rename = "modern")]
    Modern,
}

impl TorchCompat {
    pub const ALL: [TorchCompat; 2] = [TorchCompat::V1_0, TorchCompat::Modern];

    /// The text of `--torch-compat` and of `config.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            TorchCompat::V1_0 => "1.0",
            TorchCompat::Modern => "modern",
        }
    }

    /// Affine BatchNorm weights start at U(0, 1) (else at ones).
    pub fn bn_weight_uniform(self) -> bool {
        self == TorchCompat::V1_0
    }

    /// Adam adds epsilon to `sqrt(v)` before the bias correction (else to `sqrt(v_hat)`).
    pub fn adam_eps_before_bias_correction(self) -> bool {
        self == TorchCompat::V1_0
    }

    /// `zero_grad` leaves zero gradients, so every weight that ever had a gradient gets an
    /// optimizer step (else weights without a gradient are left alone).
    pub fn zero_grad_keeps_zeros(self) -> bool {
        self == TorchCompat::V1_0
    }

    /// The auxiliary head's first ReLU works in place on the cell output it reads.
    pub fn aux_relu_in_place(self) -> bool {
        self == TorchCompat::V1_0
    }

    /// Reads `"1.0"` / `"modern"`, or the boolean `legacy_zero_grad` that configurations written
    /// before `--torch-compat` existed hold instead (`false` was `--no-legacy-momentum`, today's
    /// `modern`), so that their run folders still load (use with `alias = "legacy_zero_grad"`).
    pub fn deserialize_or_legacy_flag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Compat(TorchCompat),
            LegacyZeroGrad(bool),
        }
        Ok(match Stored::deserialize(d)? {
            Stored::Compat(c) => c,
            Stored::LegacyZeroGrad(true) => TorchCompat::V1_0,
            Stored::LegacyZeroGrad(false) => TorchCompat::Modern,
        })
    }
}

impl fmt::Display for TorchCompat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TorchCompat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "1.0" | "1.0.0" | "1" | "pt10" => Ok(TorchCompat::V1_0),
            "modern" => Ok(TorchCompat::Modern),
            other => {
                Err(format!("unknown --torch-compat `{other}`: use 1.0 (PyTorch 1.0, as the published runs) or modern"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_serde_and_default_agree() {
        assert_eq!(TorchCompat::default(), TorchCompat::V1_0);
        for c in TorchCompat::ALL {
            assert_eq!(c.to_string().parse::<TorchCompat>().unwrap(), c);
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{c}\""));
            assert_eq!(serde_json::from_str::<TorchCompat>(&json).unwrap(), c);
        }
        assert_eq!("1.0.0".parse::<TorchCompat>().unwrap(), TorchCompat::V1_0);
        let err = "1.6".parse::<TorchCompat>().unwrap_err();
        assert!(err.contains("1.0") && err.contains("modern"), "{err}");
    }

    #[test]
    fn configurations_with_the_old_legacy_zero_grad_flag_still_load() {
        #[derive(Deserialize)]
        struct Settings {
            #[serde(default, alias = "legacy_zero_grad", deserialize_with = "TorchCompat::deserialize_or_legacy_flag")]
            torch_compat: TorchCompat,
        }
        let read = |json: &str| serde_json::from_str::<Settings>(json).unwrap().torch_compat;
        assert_eq!(read(r#"{"legacy_zero_grad": false}"#), TorchCompat::Modern);
        assert_eq!(read(r#"{"legacy_zero_grad": true}"#), TorchCompat::V1_0);
        assert_eq!(read(r#"{"torch_compat": "modern"}"#), TorchCompat::Modern);
        assert_eq!(read("{}"), TorchCompat::V1_0);
    }

    #[test]
    fn each_quirk_belongs_to_1_0_only() {
        let q = |c: TorchCompat| {
            [
                c.bn_weight_uniform(),
                c.adam_eps_before_bias_correction(),
                c.zero_grad_keeps_zeros(),
                c.aux_relu_in_place(),
            ]
        };
        assert_eq!(q(TorchCompat::V1_0), [true; 4]);
        assert_eq!(q(TorchCompat::Modern), [false; 4]);
    }
}
