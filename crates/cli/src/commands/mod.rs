pub mod augment;
pub mod bench;
pub mod genotype;
pub mod info;
pub mod plot;
pub mod report;
pub mod search;
pub mod selftest;
