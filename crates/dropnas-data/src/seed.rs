//! Derivation of independent random streams from (seed, epoch[, sample]).
//!
//! Deriving every stream from its coordinates, instead of drawing from one shared generator,
//! is what makes batches independent of the number of worker threads and of where an epoch is
//! resumed: a sample's augmentation depends only on (seed, epoch, sample index).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Stream tags, so that the order stream of an epoch never equals a sample's stream.
const ORDER: u64 = 0x6f72_6465_7200_0001;
const SAMPLE: u64 = 0x7361_6d70_6c00_0002;

/// SplitMix64's finaliser: a bijective mix in which every input bit affects every output bit.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Hashes a sequence of words into one seed (order matters).
pub fn mix(words: &[u64]) -> u64 {
    words.iter().fold(0x243f_6a88_85a3_08d3, |acc, &w| splitmix64(acc ^ splitmix64(w)))
}

/// The generator of epoch `epoch`'s sample order.
pub fn order_rng(seed: u64, epoch: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix(&[ORDER, seed, epoch]))
}

/// The generator of the augmentation of sample `index` (its index in the data set) in `epoch`.
pub fn sample_rng(seed: u64, epoch: u64, index: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix(&[SAMPLE, seed, epoch, index]))
}
