//! dropnas-train
