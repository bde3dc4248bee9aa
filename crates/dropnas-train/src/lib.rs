//! # dropnas-train
//!
//! The run engine under every dropnas run ([`run`]: run folders, typed checkpoints, resume,
//! signals, metric lines, progress), what every training step needs (PyTorch's global-norm
//! clipping and PyTorch 1.0's zero gradients: [`grads`]; the per-epoch schedules: [`schedule`];
//! accuracy meters: [`metrics`]; Burn records as bytes: [`records`]), and the retraining
//! ("augment") task with its loss ([`loss`]: label smoothing) and recipes ([`recipe`]: DARTS'
//! ImageNet setting).

pub mod augment;
pub mod eval;
pub mod grads;
pub mod loss;
pub mod metrics;
pub mod parallel;
pub mod pending;
pub mod recipe;
pub mod records;
pub mod run;
pub mod schedule;

#[cfg(any(test, feature = "testkit"))]
pub mod reference;
