//! pingan at national scale, measured.
//!
//! - [`dataset`]: the synthetic national dataset (deterministic, valid by the one `Validator`).

pub mod dataset;
