//! The batch split of PyTorch's DataParallel (`scatter`, i.e. `torch.chunk`): contiguous chunks
//! of `ceil(batch / peers)` samples, the last one smaller when the batch does not divide.

use dropnas_data::Batch;

/// The sizes of the chunks `torch.chunk` cuts `batch` samples into for `peers` peers (fewer than
/// `peers` chunks when `batch` is too small to give each peer one).
pub fn chunk_sizes(batch: usize, peers: usize) -> Vec<usize> {
    let chunk = batch.div_ceil(peers.max(1));
    if chunk == 0 {
        return Vec::new();
    }
    let mut sizes = vec![chunk; batch / chunk];
    if !batch.is_multiple_of(chunk) {
        sizes.push(batch % chunk);
    }
    sizes
}

/// Refuses a batch size that leaves a peer without samples (in a full batch, or in the
/// epoch's last, smaller batch of `last` samples), naming the sizes that work.
pub fn check_split(batch_size: usize, last: usize, peers: usize) -> Result<(), String> {
    for (what, n) in [("--batch-size", batch_size), ("the epoch's last batch", last)] {
        let sizes = chunk_sizes(n, peers);
        if sizes.len() != peers {
            return Err(format!(
                "{what} of {n} samples cannot be split over {peers} peers: DataParallel's split gives \
                 {} chunks ({sizes:?}); every peer needs a sub-batch. Use a batch size of at least {peers} \
                 (and one that leaves every peer a chunk, e.g. a multiple of {peers}), fewer --devices, \
                 or a --max-train-samples that leaves a last batch of at least {peers}",
                sizes.len()
            ));
        }
    }
    Ok(())
}

/// The contiguous sub-batches of `batch`, one per peer.
pub fn split_batch(batch: &Batch, peers: usize) -> Vec<Batch> {
    let [_, c, h, w] = batch.shape;
    let per = c * h * w;
    let mut at = 0;
    chunk_sizes(batch.len(), peers)
        .into_iter()
        .map(|n| {
            let part = Batch {
                images: batch.images[at * per..(at + n) * per].to_vec(),
                labels: batch.labels[at..at + n].to_vec(),
                indices: batch.indices[at..at + n].to_vec(),
                shape: [n, c, h, w],
            };
            at += n;
            part
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_as_torch_chunk() {
        assert_eq!(chunk_sizes(8, 2), vec![4, 4]);
        assert_eq!(chunk_sizes(9, 2), vec![5, 4]);
        assert_eq!(chunk_sizes(10, 4), vec![3, 3, 3, 1]);
        // torch.chunk(5 samples, 4) gives 3 chunks: a peer would be idle
        assert_eq!(chunk_sizes(5, 4), vec![2, 2, 1]);
        assert_eq!(chunk_sizes(1, 2), vec![1]);
        assert!(check_split(9, 9, 2).is_ok());
        let e = check_split(1, 1, 2).unwrap_err();
        assert!(e.contains("--batch-size of 1") && e.contains("2 peers"), "{e}");
        assert!(check_split(8, 1, 2).unwrap_err().contains("last batch"));
    }

    #[test]
    fn sub_batches_are_contiguous() {
        let batch = Batch {
            images: (0..9 * 2).map(|v| v as f32).collect(),
            labels: (0..9).collect(),
            indices: (10..19).collect(),
            shape: [9, 2, 1, 1],
        };
        let parts = split_batch(&batch, 2);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].labels, vec![0, 1, 2, 3, 4]);
        assert_eq!(parts[1].labels, vec![5, 6, 7, 8]);
        assert_eq!(parts[1].images, (10..18).map(|v| v as f32).collect::<Vec<_>>());
        assert_eq!(parts[1].indices, vec![15, 16, 17, 18]);
        assert_eq!(parts[1].shape, [4, 2, 1, 1]);
    }
}
