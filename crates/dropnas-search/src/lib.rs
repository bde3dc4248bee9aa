//! dropnas-search
