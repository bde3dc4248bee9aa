//! Throughput of the CIFAR training pipeline (crop + flip + normalise [+ cutout]) through the
//! loader, on synthetic CIFAR-shaped data, for 1 and 2 worker threads.
//!
//! Run: `cargo bench -p dropnas-data --bench pipeline` (images per second; the consumer does
//! nothing but receive batches, so this is the most the loader can feed a training step).
//! `DROPNAS_BENCH_IMAGES` sets the data set size (default 20,000).

use std::sync::Arc;
use std::time::Instant;

use dropnas_data::{Augment, DatasetKind, ImageSet, Loader, LoaderConfig};

fn synthetic(n: usize) -> ImageSet {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let pixels: Vec<u8> = (0..n * 3072).map(|_| (next() >> 24) as u8).collect();
    let labels: Vec<u8> = (0..n).map(|_| (next() % 10) as u8).collect();
    match ImageSet::new(3, 32, 32, 10, pixels, labels) {
        Ok(set) => set,
        Err(e) => panic!("synthetic set: {e}"),
    }
}

/// Images per second over `epochs` full epochs.
fn measure(set: &Arc<ImageSet>, batch_size: usize, cutout: usize, workers: usize, epochs: usize) -> f64 {
    let loader = match Loader::new(
        Arc::clone(set),
        Augment::train(DatasetKind::Cifar10, cutout),
        LoaderConfig::train(batch_size, 1, workers),
    ) {
        Ok(l) => l,
        Err(e) => panic!("loader: {e}"),
    };
    // Warm-up: page in the data, spin up the allocator.
    let _ = loader.epoch(0, 0).take(5).count();
    let start = Instant::now();
    let mut images = 0usize;
    for epoch in 0..epochs {
        for batch in loader.epoch(epoch + 1, 0) {
            images += std::hint::black_box(batch).map_or(0, |b| b.len());
        }
    }
    images as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let n = std::env::var("DROPNAS_BENCH_IMAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let set = Arc::new(synthetic(n));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("CIFAR training pipeline, {n} synthetic 3x32x32 images, {cores} CPU cores");
    println!("{:<44} {:>8} {:>14}", "configuration", "workers", "images/s");
    for (label, batch, cutout) in
        [("crop+flip+normalise, batch 96", 96, 0), ("crop+flip+normalise+cutout 16, batch 192", 192, 16)]
    {
        for workers in [1, 2] {
            let rate = measure(&set, batch, cutout, workers, 3);
            println!("{label:<44} {workers:>8} {rate:>14.0}");
        }
    }
}
