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
    /// The area lies below a subtree a child hub forwards as one rollup: this hub has that
    /// subtree's totals and reporter counts, not the figures of the areas in it.
    #[error(
        "{area} {name} 在 {root} {root_name} 之下，{root} 由下级平台汇总上报，本平台只有 {root} 的合计和上报数量，没有其下级的数字：请到下级平台查询，或在本平台查询 {root} 这一级 ({area} is below the forwarding depth of the child hub for {root})"
    )]
    BelowForwarding {
        area: String,
        name: String,
        root: String,
        root_name: String,
    },
}
