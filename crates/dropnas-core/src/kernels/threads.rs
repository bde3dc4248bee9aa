//! The CPU kernels' parallelism: the compute thread pool and the chunked fill of outputs.

/// Planes per parallel task for planes of `plane` elements: enough work (about 16K elements)
/// per task that the thread pool's scheduling costs nothing next to it.
#[cfg(feature = "flex")]
pub(crate) fn min_planes(plane: usize) -> usize {
    (16384 / plane.max(1)).max(1)
}

/// A vector of `len` values made chunk by chunk in parallel, without zero-filling it first.
/// `fill(i, chunk, scratch)` must write every value of `chunk`, the `i`-th run of `chunk_len`
/// values (fewer for the last); `chunk` is a buffer reused from one chunk to the next, which
/// is then copied into the vector, and `scratch` a reused buffer of the caller's own.
///
/// Why: `vec![0.0; len]` writes every output value twice (the zeros, then the result); on
/// tensors larger than the cache that is a second pass over memory (6% of a search step,
/// measured). Here each chunk is computed in a buffer that stays in cache and written out once.
#[cfg(feature = "flex")]
pub(crate) fn par_fill(
    len: usize,
    chunk_len: usize,
    min_chunks: usize,
    fill: impl Fn(usize, &mut [f32], &mut Vec<f32>) + Sync,
) -> Vec<f32> {
    use rayon::prelude::*;
    let mut out: Vec<f32> = Vec::with_capacity(len);
    let chunk_len = chunk_len.max(1);
    out.spare_capacity_mut()[..len].par_chunks_mut(chunk_len).enumerate().with_min_len(min_chunks).for_each_init(
        || (vec![0.0f32; chunk_len], Vec::new()),
        |(tmp, scratch), (i, dst)| {
            let tmp = &mut tmp[..dst.len()];
            fill(i, tmp, scratch);
            for (d, &v) in dst.iter_mut().zip(tmp.iter()) {
                d.write(v);
            }
        },
    );
    // SAFETY: every one of the `len` values was written just above (each chunk in full)
    unsafe { out.set_len(len) };
    out
}

/// Runs `f` on a worker of the compute thread pool (rayon's global pool on the CPU backend).
///
/// Every CPU kernel is a short parallel burst. Called from a thread outside the pool, each burst
/// is injected into the pool and the caller sleeps until it is done: two thread wake-ups per
/// operation, thousands per training step. From inside the pool the caller does its share of
/// the work itself and the other workers steal the rest.
pub fn on_compute_threads<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    #[cfg(feature = "flex")]
    {
        // the caller's work now runs on a pool thread: give those the main thread's stack size
        // (an error only means that the pool exists already)
        let _ = rayon::ThreadPoolBuilder::new().stack_size(8 << 20).build_global();
        let mut out = None;
        rayon::scope(|s| s.spawn(|_| out = Some(f())));
        out.expect("the compute pool ran the job")
    }
    #[cfg(not(feature = "flex"))]
    {
        f()
    }
}
