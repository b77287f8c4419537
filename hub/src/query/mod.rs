//! Leaders' questions (typed in `pingan_domain::question`): rollups kept current as reports
//! arrive ([`cube`]), the engine that answers from them ([`engine`], a module per question), the
//! comparison table's polars computation ([`table`]), slot layout ([`layout`]), deadlines
//! (`pingan_domain::deadline`), the rollups saved for a fast restart ([`snapshot`]), what a question may cost
//! ([`budget`]) and who may ask how much at once ([`gate`]).

pub mod budget;
pub(crate) mod cube;
pub mod engine;
pub mod gate;
pub mod layout;
pub mod snapshot;
pub(crate) mod table;

pub use engine::{Engine, WaitsSeen};
pub use pingan_domain::deadline::Deadlines;
pub use pingan_domain::question::{
    AssessQuery, CompareQuery, CompletenessQuery, DepartmentsQuery, Figures, NATION, Paging,
    RollupQuery, Root, TrendQuery,
};

use crate::store::StoreError;

/// Why a question could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    BadRequest(String),
    #[error("区划代码 {0} 不在本平台的区划里，请核对代码 (unknown area {0})")]
    UnknownArea(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("query engine: {0}")]
    Engine(String),
    #[error(
        "问题太大：{what}要读 {cost} 个地区×期间，上限 {limit}；请缩小地区、层级或期间 (question too large)"
    )]
    TooLarge { cost: u64, limit: u64, what: String },
    #[error("查询超时，已停止 (the question ran past its deadline and was stopped)")]
    DeadlineExceeded,
    #[error(
        "{who} 已有 {limit} 个查询在运行或排队，请等前面的查询结束 (too many questions at once)"
    )]
    Busy { who: String, limit: usize },
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

impl From<pingan_domain::question::BadQuestion> for QueryError {
    fn from(e: pingan_domain::question::BadQuestion) -> QueryError {
        QueryError::BadRequest(e.0)
    }
}
