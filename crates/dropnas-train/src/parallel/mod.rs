//! Data parallelism, written once in the run engine for both tasks: one peer per device (each
//! on its own thread, with a replica of the task restored from the leader's state), several
//! processes (nodes), one per machine, each with its own devices.
//!
//! Every step splits the batch as PyTorch's DataParallel does ([`split`]). Each peer runs the
//! task's own step on its sub-batch and, after backward and before anything reads the
//! gradients, hands them to [`Share::reduce`]: the gradients of the weights and of the alphas,
//! each peer's weighted by its sub-batch's share of the batch, are summed over the peers in one
//! all-reduce ([`collective`]: burn-collective between the peers of a process, then [`nodes`]
//! between processes), together with the step's loss and correct counts. The result
//! is the gradient of the whole batch's mean loss, even when the split is uneven, and every
//! peer takes the same step. Peer 0 (the leader) alone writes the run folder.

pub mod bench;
pub mod collective;
pub mod fingerprint;
pub mod flat;
pub mod liveness;
pub mod nodes;
pub mod peers;
pub mod split;
pub mod topology;

use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};
use flat::{GradPart, cut, join};

/// How a peer reaches the others: the element-wise sum of one vector over all peers.
pub trait AllReduce<B: Backend> {
    /// The sum of `flat` over all peers; every peer gets the same result.
    fn sum(&self, flat: Tensor<B, 1>) -> Tensor<B, 1>;
}

/// One peer's part in a data-parallel step.
pub struct Share<'a, B: Backend> {
    pub link: &'a dyn AllReduce<B>,
    /// This peer's sub-batch over the whole batch (the weight of its mean loss in the batch's).
    pub weight: f64,
    /// The whole batch, all peers together.
    pub batch: usize,
}

impl<B: Backend> Share<'_, B> {
    /// Replaces the gradients in `parts` by their sum over the peers, each peer's weighted by its
    /// share of the batch: the gradient of the whole batch's mean loss. `means` (losses, each a
    /// mean over this peer's sub-batch) come back as means over the whole batch, and `counts`
    /// (correct predictions) as the batch's counts. One all-reduce for all of it.
    pub fn reduce<AB: AutodiffBackend<InnerBackend = B>>(
        &self,
        parts: &mut [&mut dyn GradPart<AB>],
        means: Tensor<B, 1>,
        counts: Tensor<B, 1>,
    ) -> (Tensor<B, 1>, Tensor<B, 1>) {
        let mut pieces = Vec::new();
        for p in parts.iter() {
            p.take(&mut pieces);
        }
        let (n_means, n_counts) = (means.dims()[0], counts.dims()[0]);
        pieces.push(means);
        let (weighted, mut lens) = join(pieces);
        lens.pop();
        let flat = Tensor::cat(vec![weighted.mul_scalar(self.weight), counts], 0);
        let (reduced, rest) = cut(self.link.sum(flat), &lens);
        let mut reduced = reduced.into_iter();
        for p in parts.iter_mut() {
            p.put(&mut reduced);
        }
        (rest.clone().narrow(0, 0, n_means), rest.narrow(0, n_means, n_counts))
    }
}
