//! # dropnas-core
//!
//! The DropNAS model, written once against Burn's `Backend` trait: the DARTS operations
//! ([`ops`]), search spaces as data ([`search_space`]), grouped operation dropout
//! ([`dropout`]), the mixed op and search network with its alphas ([`mixed_op`],
//! [`search_network`], [`alphas`]), the augment network with drop path and auxiliary head
//! ([`augment_network`]; DARTS' ImageNet variant in [`augment_network_imagenet`]), their
//! multiply-adds ([`flops`]), and genotypes ([`genotype`]). No I/O lives here.

pub mod alphas;
pub mod augment_cell;
pub mod augment_network;
pub mod augment_network_imagenet;
pub mod aux_head;
pub mod batch_norm;
pub mod compat;
pub mod conv;
pub mod drop_path;
pub mod dropout;
pub mod flops;
pub mod genotype;
pub mod init;
pub mod kernels;
pub mod mixed_op;
pub mod ops;
pub mod params;
#[cfg(any(test, feature = "testkit"))]
pub mod reference;
pub mod search_cell;
pub mod search_network;
pub mod search_space;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

pub use alphas::{Alphas, CellType};
pub use augment_network::{AugmentNetwork, AugmentNetworkConfig};
pub use augment_network_imagenet::NetworkKind;
pub use compat::TorchCompat;
pub use dropout::{CellMask, GroupedDropout, StepMasks};
pub use genotype::Genotype;
pub use init::ParamInit;
pub use kernels::{DropnasAutodiffBackend, DropnasBackend};
pub use search_network::{SearchNetwork, SearchNetworkConfig, Supernet};
pub use search_space::{OpKind, SearchSpace};
