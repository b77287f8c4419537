//! Leaders' questions: rollups kept current as reports arrive ([`cube`]), the engine that answers
//! rollup, compare, trend and completeness from them ([`engine`]), the comparison table's polars
//! computation ([`table`]), slot layout ([`layout`]), deadlines ([`deadline`]) and the rollups saved for a fast restart
//! ([`snapshot`]).

pub(crate) mod cube;
pub mod deadline;
pub mod engine;
pub mod layout;
pub mod snapshot;
pub(crate) mod table;

pub use deadline::Deadlines;
pub use engine::Engine;

use crate::error::StoreError;

/// Why a question could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    BadRequest(String),
    #[error("unknown area {0}")]
    UnknownArea(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("query engine: {0}")]
    Engine(String),
}
