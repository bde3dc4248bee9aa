//! Operations that get a specialised kernel on some backends, as an extension of Burn's
//! `Backend` trait (Burn's documented way to add custom operations).
//!
//! Model code calls them through the functions of [`ops`] ([`depthwise_conv2d`], ...); every
//! backend implements [`DropnasBackend`] ([`backend`]): the default methods use Burn's own
//! operations ([`generic`]: what runs on wgpu and CUDA, [`gpu`]), the CPU backend overrides
//! them with the loops of [`depthwise_cpu`] and its siblings ([`flex`]), and the autodiff
//! backend ([`autodiff`]) records one graph node whose backward calls the inner backend's
//! gradient methods. [`threads`] holds the CPU kernels' thread pool.

/// Calls `$f` compiled for AVX2 when the CPU has it (the caller's `avx2::$f`, a copy of `$f`
/// with `#[target_feature(enable = "avx2")]`), else its plain build. Without it, x86-64 code is
/// limited to 128-bit vectors.
#[cfg(feature = "flex")]
macro_rules! simd {
    ($f:ident $(:: < $($k:tt),+ >)? ( $($arg:expr),* $(,)? )) => {{
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked just above).
                unsafe { avx2::$f $(::<$($k),+>)? ($($arg),*) }
            } else {
                $f $(::<$($k),+>)? ($($arg),*)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            $f $(::<$($k),+>)? ($($arg),*)
        }
    }};
}

pub mod autodiff;
pub mod backend;
#[cfg(feature = "flex")]
pub mod batch_norm_cpu;
#[cfg(feature = "flex")]
pub mod depthwise_cpu;
#[cfg(feature = "flex")]
mod depthwise_padded;
#[cfg(feature = "flex")]
mod flex;
pub mod generic;
pub mod gpu;
#[cfg(feature = "flex")]
mod lanes;
pub mod ops;
#[cfg(feature = "flex")]
pub mod pointwise_cpu;
#[cfg(feature = "flex")]
pub mod pool_cpu;
#[cfg(all(test, feature = "flex"))]
mod tests;
pub mod threads;

pub use backend::{DepthwiseOptions, DropnasAutodiffBackend, DropnasBackend, PoolKind};
pub use generic::*;
pub use ops::*;
pub use threads::on_compute_threads;
#[cfg(feature = "flex")]
pub(crate) use threads::{min_planes, par_fill};
