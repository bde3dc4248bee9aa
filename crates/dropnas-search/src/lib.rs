//! # dropnas-search
//!
//! The one-level DropNAS search: the step ([`step`], read it top to bottom), the alpha
//! adjustment ([`alpha_adjust`]), partial decay ([`decay`]), and the epoch loop with
//! checkpoints and exact resume ([`search`]).

pub mod alpha_adam;
pub mod alpha_adjust;
pub mod bench;
pub mod config;
pub mod decay;
pub mod search;
pub mod step;

pub use config::SearchConfig;
pub use search::{SearchError, SearchOutcome, run_search};

#[cfg(any(test, feature = "testkit"))]
pub mod cross_device;
#[cfg(any(test, feature = "testkit"))]
pub mod reference;
