//! Throughput of the CIFAR training pipeline (crop + flip + normalise [+ cutout]) through the
//! loader, on synthetic CIFAR-shaped data, for 1 and 2 worker threads; and of the image-folder
//! pipeline (JPEG decoding, DARTS' ImageNet training preprocessing at 224, or the evaluation
//! resize 256 + centre crop) on synthetic 500x375 JPEGs (ImageNet's typical size).
//!
//! Run: `cargo bench -p dropnas-data --bench pipeline` (images per second; the consumer does
//! nothing but receive batches, so this is the most the loader can feed a training step).
//! `DROPNAS_BENCH_IMAGES` sets the CIFAR set size (default 20,000), `DROPNAS_BENCH_JPEGS` the
//! number of JPEGs (default 256).

use std::sync::Arc;
use std::time::Instant;

use dropnas_data::{
    Augment, DatasetKind, FolderAugment, FolderTransforms, ImageFolder, ImageSet, Loader, LoaderConfig, Split,
};

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

/// `n` photo-like 500x375 JPEGs (smooth gradients and noise, quality 90) in two classes under
/// `root/train`.
fn jpeg_folder(root: &std::path::Path, n: usize) {
    for i in 0..n {
        let dir = root.join("train").join(if i % 2 == 0 { "a" } else { "b" });
        if let Err(e) = std::fs::create_dir_all(&dir) {
            panic!("{}: {e}", dir.display());
        }
        let img = image::RgbImage::from_fn(500, 375, |x, y| {
            let n = ((x * 7919 + y * 104_729 + i as u32 * 31) % 41) as u8;
            image::Rgb([(x / 2) as u8 ^ n, (y / 2) as u8, ((x + y + i as u32) / 4) as u8])
        });
        let path = dir.join(format!("{i:05}.jpg"));
        let file = match std::fs::File::create(&path) {
            Ok(f) => f,
            Err(e) => panic!("{}: {e}", path.display()),
        };
        let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(std::io::BufWriter::new(file), 90);
        if let Err(e) = enc.encode_image(&img) {
            panic!("{}: {e}", path.display());
        }
    }
}

/// Images per second of an image folder through `augment` over two epochs.
fn measure_folder(folder: &Arc<ImageFolder>, augment: &FolderAugment, workers: usize) -> f64 {
    let loader = match Loader::image_folder(Arc::clone(folder), augment.clone(), LoaderConfig::train(32, 1, workers)) {
        Ok(l) => l,
        Err(e) => panic!("loader: {e}"),
    };
    let start = Instant::now();
    let mut images = 0usize;
    for epoch in 0..2 {
        for batch in loader.epoch(epoch, 0) {
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

    let jpegs = std::env::var("DROPNAS_BENCH_JPEGS").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
    let tmp = match tempfile::tempdir() {
        Ok(t) => t,
        Err(e) => panic!("temporary folder: {e}"),
    };
    jpeg_folder(tmp.path(), jpegs);
    let folder = match ImageFolder::open(tmp.path(), Split::Train, None, cores) {
        Ok(f) => Arc::new(f),
        Err(e) => panic!("image folder: {e}"),
    };
    println!();
    println!("image-folder pipeline, {jpegs} synthetic 500x375 JPEGs (quality 90), batch 32");
    println!("{:<44} {:>8} {:>14}", "configuration", "workers", "images/s");
    let t = FolderTransforms::imagenet();
    for (label, augment) in [
        ("decode+RandomResizedCrop 224+flip+jitter", FolderAugment::train(&t, 0)),
        ("decode+Resize 256+CenterCrop 224", FolderAugment::eval(&t)),
    ] {
        for workers in [1, 2] {
            let rate = measure_folder(&folder, &augment, workers);
            println!("{label:<44} {workers:>8} {rate:>14.0}");
        }
    }
}
