//! # dropnas-train
//!
//! What every dropnas training loop needs: run folders and atomic checkpoints ([`run_dir`],
//! [`checkpoint`], [`records`]), PyTorch's global-norm clipping and PyTorch 1.0's zero
//! gradients ([`grads`]), the per-epoch cosine schedule ([`schedule`]), accuracy meters
//! ([`metrics`]), progress bars ([`progress`]); and the retraining ("augment") loop.

pub mod augment;
pub mod checkpoint;
pub mod eval;
pub mod grads;
pub mod metrics;
pub mod pending;
pub mod progress;
pub mod records;
pub mod run_dir;
pub mod schedule;

#[cfg(any(test, feature = "testkit"))]
pub mod reference;
