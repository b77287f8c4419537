//! pingan at national scale, measured.
//!
//! - [`dataset`]: the synthetic national dataset (deterministic, valid by the one `Validator`).
//! - [`drain`]: a node's backlog delivered by the real `pingan-node run` to `pingan-hub serve`.
//! - [`ingest`]: simulated nodes submitting a national month over mutual TLS, with the no-work
//!   RPC's rate and freshness measured in the same run.
//! - [`queries`]: leaders' questions on the national months against DuckDB, with the hub's
//!   restart time and memory.
//! - [`report`]: the machine's facts and the results as a Markdown table.

pub mod dataset;
pub mod drain;
pub mod ingest;
pub mod queries;
pub mod report;
mod wire;
