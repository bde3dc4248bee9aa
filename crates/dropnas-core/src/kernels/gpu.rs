//! The backends without kernels of dropnas' own: the trait's default methods (Burn's
//! operations) serve them.

#[cfg(any(feature = "wgpu", feature = "cuda", feature = "ndarray"))]
use super::backend::DropnasBackend;

#[cfg(feature = "wgpu")]
impl DropnasBackend for burn::backend::Wgpu {}
#[cfg(feature = "cuda")]
impl DropnasBackend for burn::backend::Cuda {}
#[cfg(feature = "ndarray")]
impl DropnasBackend for burn::backend::NdArray {}
