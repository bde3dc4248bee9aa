//! What a run shows while it goes: on a terminal, a bar per epoch with the epoch's and the whole
//! run's ETA; elsewhere (piped to a file, under a scheduler), no bar and no escape codes, and one
//! plain line per log point with the same figures.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Whether stderr is a terminal that may get bars and colours (`NO_COLOR` turns colours off,
/// see <https://no-color.org>; bars stay).
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// Whether console output may carry ANSI colour codes.
pub fn colour() -> bool {
    stderr_is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `H:MM:SS`.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Rates and ETAs of the epoch and of the run, from the steps of this invocation (a resumed run
/// does not count the time between invocations).
pub struct Progress {
    /// The epoch's bar (hidden when not on a terminal).
    pub bar: ProgressBar,
    pub terminal: bool,
    invocation: Instant,
    steps_at_start: usize,
    epoch_started: Instant,
    epoch_first_step: usize,
    steps_per_epoch: usize,
    total_steps: usize,
}

impl Progress {
    pub fn new(steps_per_epoch: usize, epochs: usize, global_step: usize) -> Self {
        Self {
            bar: ProgressBar::hidden(),
            terminal: stderr_is_terminal(),
            invocation: Instant::now(),
            steps_at_start: global_step,
            epoch_started: Instant::now(),
            epoch_first_step: 0,
            steps_per_epoch,
            total_steps: steps_per_epoch * epochs,
        }
    }

    /// A new epoch's bar, starting at step `first`.
    pub fn start_epoch(&mut self, epoch: usize, epochs: usize, first: usize) {
        self.bar.finish_and_clear();
        self.epoch_started = Instant::now();
        self.epoch_first_step = first;
        let len = self.steps_per_epoch as u64;
        self.bar = if self.terminal {
            let bar = ProgressBar::new(len);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} {msg} [{elapsed_precise}, epoch ETA {eta_precise}]",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(format!("epoch {}/{epochs}", epoch + 1));
            bar
        } else {
            ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden())
        };
        self.bar.set_position(first as u64);
    }

    /// The epoch's ETA after `step` (from 0) is done.
    pub fn epoch_eta(&self, step: usize) -> Option<Duration> {
        let done = step + 1 - self.epoch_first_step;
        let left = self.steps_per_epoch.saturating_sub(step + 1);
        (done > 0).then(|| self.epoch_started.elapsed().mul_f64(left as f64 / done as f64))
    }

    /// The run's ETA with `global_step` steps done: this invocation's time per step (evaluations
    /// included) times the steps left.
    pub fn run_eta(&self, global_step: usize) -> Option<Duration> {
        let done = global_step.checked_sub(self.steps_at_start).filter(|&d| d > 0)?;
        let left = self.total_steps.saturating_sub(global_step);
        Some(self.invocation.elapsed().mul_f64(left as f64 / done as f64))
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_and_etas() {
        assert_eq!(clock(Duration::from_secs(3 * 3600 + 62)), "3:01:02");
        let p = Progress::new(10, 3, 5);
        assert_eq!(p.run_eta(5), None, "no step done in this invocation yet");
        assert!(p.run_eta(6).is_some() && p.epoch_eta(0).is_some());
        assert_eq!(p.epoch_eta(9), Some(Duration::ZERO));
    }
}
