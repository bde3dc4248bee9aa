//! dropnas-data
