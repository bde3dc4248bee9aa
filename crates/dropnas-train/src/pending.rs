//! Step scalars kept on the device until a log point, then read in one transfer.
//!
//! Why: reading a value back from a GPU waits until everything queued before it has run; read
//! every step, it stops the host from queueing the next step while the device works on this
//! one. The loops push each step's scalars here and read them together where they print
//! (every `print_freq` steps, the original's 50, and at the end of an epoch), before a
//! checkpoint, and where the run stops. On the CPU backend nothing changes (it computes
//! eagerly): the values are the same, only read later.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

/// Steps whose scalars are still on the device, each with what the loop needs to log it.
pub struct PendingScalars<B: Backend, M> {
    steps: Vec<(M, Tensor<B, 1>)>,
}

impl<B: Backend, M> Default for PendingScalars<B, M> {
    fn default() -> Self {
        Self { steps: Vec::new() }
    }
}

impl<B: Backend, M> PendingScalars<B, M> {
    /// Queues one step's scalars (no device work, no read).
    pub fn push(&mut self, meta: M, scalars: Tensor<B, 1>) {
        self.steps.push((meta, scalars));
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Every queued step's values, in order, from one transfer; the queue is then empty.
    pub fn read(&mut self) -> Vec<(M, Vec<f64>)> {
        if self.steps.is_empty() {
            return Vec::new();
        }
        let (metas, tensors): (Vec<M>, Vec<Tensor<B, 1>>) = self.steps.drain(..).unzip();
        let lens: Vec<usize> = tensors.iter().map(|t| t.dims()[0]).collect();
        let all = Tensor::cat(tensors, 0).into_data().convert::<f64>().into_vec::<f64>().unwrap_or_default();
        let mut offset = 0;
        metas
            .into_iter()
            .zip(lens)
            .map(|(meta, n)| {
                let values = all[offset..offset + n].to_vec();
                offset += n;
                (meta, values)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::tensor::TensorData;

    #[test]
    fn reads_every_queued_step_in_order_once() {
        let device = Default::default();
        let mut pending = PendingScalars::<Flex, usize>::default();
        assert!(pending.read().is_empty());
        for (i, v) in [vec![1.0f32, 2.0], vec![3.0], vec![4.0, 5.0, 6.0]].into_iter().enumerate() {
            let n = v.len();
            pending.push(i, Tensor::from_data(TensorData::new(v, [n]), &device));
        }
        assert_eq!(pending.len(), 3);
        let got = pending.read();
        assert_eq!(got, vec![(0, vec![1.0, 2.0]), (1, vec![3.0]), (2, vec![4.0, 5.0, 6.0])]);
        assert!(pending.is_empty() && pending.read().is_empty());
    }
}
