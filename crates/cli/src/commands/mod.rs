pub mod augment;
pub mod bench;
pub mod genotype;
pub mod info;
pub mod search;
