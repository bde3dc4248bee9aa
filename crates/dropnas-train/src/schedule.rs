//! The learning-rate schedule of both loops: cosine annealing stepped at the START of each
//! epoch, as the original (`lr_scheduler.step()` first thing in the epoch loop), so epoch `e`
//! (from 0) trains at `lr(e + 1) = lr_min + (lr_max - lr_min) * (1 + cos(pi (e + 1) / epochs)) / 2`
//! and the last epoch at `lr_min`.
//!
//! Retraining may instead use a step decay ([`LrSchedule`]): DARTS' ImageNet script multiplies
//! the learning rate by 0.97 every epoch (`StepLR(optimizer, 1, gamma=0.97)`, also stepped at
//! the start of each epoch, so epoch `e` trains at `lr * 0.97^(e + 1)` here).

use burn::lr_scheduler::LrScheduler;
use burn::lr_scheduler::cosine::{CosineAnnealingLrScheduler, CosineAnnealingLrSchedulerConfig};
use burn::lr_scheduler::step::StepLrSchedulerConfig;
use serde::{Deserialize, Serialize};

/// Burn's cosine scheduler, driven once per epoch.
#[derive(Debug, Clone)]
pub struct EpochSchedule {
    inner: CosineAnnealingLrScheduler,
}

impl EpochSchedule {
    pub fn new(lr_max: f64, lr_min: f64, epochs: usize) -> Result<Self, String> {
        let mut inner = CosineAnnealingLrSchedulerConfig::new(lr_max, epochs.max(1))
            .with_min_lr(lr_min)
            .init()
            .map_err(|e| format!("learning-rate schedule: {e} (lr {lr_max}, lr min {lr_min})"))?;
        // PyTorch's scheduler takes its first step when it is built (position 0).
        inner.step();
        Ok(Self { inner })
    }

    /// The learning rate of `epoch` (from 0). Resuming rebuilds the schedule and replays it.
    pub fn lr_of_epoch(lr_max: f64, lr_min: f64, epochs: usize, epoch: usize) -> Result<f64, String> {
        let mut s = Self::new(lr_max, lr_min, epochs)?;
        let mut lr = lr_max;
        for _ in 0..=epoch {
            lr = s.start_epoch();
        }
        Ok(lr)
    }

    /// Steps the schedule at the start of an epoch and returns that epoch's learning rate.
    pub fn start_epoch(&mut self) -> f64 {
        self.inner.step()
    }
}

/// The retraining schedule: cosine annealing (DropNAS, DARTS on CIFAR) or step decay (DARTS on
/// ImageNet), both stepped at the start of each epoch like [`EpochSchedule`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum LrSchedule {
    /// From the initial learning rate down to `lr_min` along a half cosine over the run.
    Cosine { lr_min: f64 },
    /// PyTorch's `StepLR`: the initial learning rate times `gamma^(position / step_size)`.
    Step { gamma: f64, step_size: usize },
}

impl Default for LrSchedule {
    /// The original's retraining schedule: cosine down to 0.
    fn default() -> Self {
        LrSchedule::Cosine { lr_min: 0.0 }
    }
}

impl LrSchedule {
    /// DARTS' ImageNet schedule (`cnn/train_imagenet.py`: `--gamma 0.97 --decay_period 1`).
    pub const DARTS_IMAGENET: LrSchedule = LrSchedule::Step { gamma: 0.97, step_size: 1 };

    /// Why this schedule cannot run, if it cannot.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            LrSchedule::Cosine { lr_min } if lr_min.is_nan() || lr_min < 0.0 => {
                Err(format!("the cosine lr min must be >= 0, got {lr_min}"))
            }
            LrSchedule::Step { gamma, .. } if !(gamma > 0.0 && gamma <= 1.0) => {
                Err(format!("--lr-gamma must be in (0, 1], got {gamma}"))
            }
            LrSchedule::Step { step_size: 0, .. } => Err("--lr-step must be at least 1 epoch".into()),
            _ => Ok(()),
        }
    }

    /// The learning rate of `epoch` (from 0) of `epochs`, starting from `lr`.
    pub fn lr_of_epoch(&self, lr: f64, epochs: usize, epoch: usize) -> Result<f64, String> {
        match *self {
            LrSchedule::Cosine { lr_min } => EpochSchedule::lr_of_epoch(lr, lr_min, epochs, epoch),
            LrSchedule::Step { gamma, step_size } => {
                self.validate()?;
                let mut s = StepLrSchedulerConfig::new(lr, step_size).with_gamma(gamma).init()?;
                // Position 0 when built (as PyTorch's), then one step at the start of each epoch.
                let mut rate = s.step();
                for _ in 0..=epoch {
                    rate = s.step();
                }
                Ok(rate)
            }
        }
    }

    /// In words, for logs: "cosine to 0", "x0.97 every epoch".
    pub fn describe(&self) -> String {
        match *self {
            LrSchedule::Cosine { lr_min } => format!("cosine to {lr_min}"),
            LrSchedule::Step { gamma, step_size: 1 } => format!("x{gamma} every epoch"),
            LrSchedule::Step { gamma, step_size } => format!("x{gamma} every {step_size} epochs"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PyTorch's closed form of `StepLR(SGD(lr=0.1), 1, gamma=0.97)` (`0.1 * 0.97 ** position`),
    /// at the positions epochs 0, 1, 100 and 249 of DARTS' 250-epoch ImageNet run train at,
    /// printed by `python3 tools/reference/lr_schedule.py`.
    #[test]
    fn darts_imagenet_schedule_matches_pytorch() {
        let s = LrSchedule::DARTS_IMAGENET;
        for (e, lr) in
            [(0usize, 0.097), (1, 0.09409000000000001), (100, 0.004612593268764346), (249, 4.93098369595677e-05)]
        {
            let got = s.lr_of_epoch(0.1, 250, e).unwrap();
            assert!((got - lr).abs() < 1e-15 + 1e-12 * lr, "epoch {e}: {got} vs {lr}");
        }
        let every3 = LrSchedule::Step { gamma: 0.5, step_size: 3 };
        let lrs: Vec<f64> = (0..6).map(|e| every3.lr_of_epoch(1.0, 6, e).unwrap()).collect();
        assert_eq!(lrs, vec![1.0, 1.0, 0.5, 0.5, 0.5, 0.25]);
        assert!(LrSchedule::Step { gamma: 1.5, step_size: 1 }.validate().is_err());
        assert!(LrSchedule::Step { gamma: 0.9, step_size: 0 }.validate().is_err());
        assert_eq!(LrSchedule::default().lr_of_epoch(0.05, 2, 1).unwrap(), 0.0);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"{"kind":"step","gamma":0.97,"step_size":1}"#);
        assert_eq!(serde_json::from_str::<LrSchedule>(&json).unwrap(), s);
    }

    /// PyTorch's closed-form `CosineAnnealingLR(SGD(lr=0.0375), T_max=76, eta_min=0.0015)` after
    /// 1, 2, 38, 75 and 76 steps, printed by `python3 tools/reference/lr_schedule.py`.
    #[test]
    fn search_schedule_matches_pytorch() {
        let expected = [
            (0usize, 0.03748462365097142),
            (1, 0.03743852087412006),
            (37, 0.0195),
            (74, 0.0015153763490285818),
            (75, 0.0015),
        ];
        let mut s = EpochSchedule::new(0.0375, 0.0015, 76).unwrap();
        let lrs: Vec<f64> = (0..76).map(|_| s.start_epoch()).collect();
        for (e, lr) in expected {
            assert!((lrs[e] - lr).abs() < 1e-12, "epoch {e}: {} vs {lr}", lrs[e]);
            assert!((EpochSchedule::lr_of_epoch(0.0375, 0.0015, 76, e).unwrap() - lr).abs() < 1e-12);
        }
    }

    /// Same script: `CosineAnnealingLR(SGD(lr=0.05), T_max=600)`.
    #[test]
    fn augment_schedule_matches_pytorch() {
        let mut s = EpochSchedule::new(0.05, 0.0, 600).unwrap();
        let lrs: Vec<f64> = (0..600).map(|_| s.start_epoch()).collect();
        for (e, lr) in [(0usize, 0.04999965730618567), (299, 0.025), (598, 3.4269381433138515e-07), (599, 0.0)] {
            assert!((lrs[e] - lr).abs() < 1e-12, "epoch {e}: {} vs {lr}", lrs[e]);
        }
    }

    #[test]
    fn augment_schedule_ends_at_zero() {
        let mut s = EpochSchedule::new(0.05, 0.0, 2).unwrap();
        assert!((s.start_epoch() - 0.025).abs() < 1e-12);
        assert!(s.start_epoch().abs() < 1e-12);
        assert!(EpochSchedule::new(1.5, 0.0, 2).unwrap_err().contains("at most 1"));
    }
}
