//! # dropnas-train
//!
//! The run engine under every dropnas run ([`run`]: run folders, typed checkpoints, resume,
//! signals, metric lines), what every training step needs (PyTorch's global-norm clipping and
//! PyTorch 1.0's zero gradients: [`grads`]; the per-epoch cosine schedule: [`schedule`];
//! accuracy meters: [`metrics`]; Burn records as bytes: [`records`]), and the retraining
//! ("augment") task.

pub mod augment;
pub mod eval;
pub mod grads;
pub mod metrics;
pub mod records;
pub mod run;
pub mod schedule;

#[cfg(any(test, feature = "testkit"))]
pub mod reference;
