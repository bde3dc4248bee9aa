//! # dropnas-search
//!
//! The one-level DropNAS search: the step ([`step`], read it top to bottom), the alpha
//! adjustment ([`alpha_adjust`]), partial decay ([`decay`]), and the search as a task of the
//! run engine ([`search`]).

pub mod alpha_adam;
pub mod alpha_adjust;
pub mod bench;
pub mod collapse;
pub mod config;
pub mod decay;
pub mod search;
pub mod step;

pub use config::{SearchConfig, SearchSettings};
pub use search::{SearchState, SearchTask};

#[cfg(any(test, feature = "testkit"))]
pub mod cross_device;
#[cfg(any(test, feature = "testkit"))]
pub mod reference;
