//! The learning-rate schedule of both loops: cosine annealing stepped at the START of each
//! epoch, as the original (`lr_scheduler.step()` first thing in the epoch loop), so epoch `e`
//! (from 0) trains at `lr(e + 1) = lr_min + (lr_max - lr_min) * (1 + cos(pi (e + 1) / epochs)) / 2`
//! and the last epoch at `lr_min`.

use burn::lr_scheduler::LrScheduler;
use burn::lr_scheduler::cosine::{CosineAnnealingLrScheduler, CosineAnnealingLrSchedulerConfig};

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

#[cfg(test)]
mod tests {
    use super::*;

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
