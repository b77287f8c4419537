//! The hub's errors, and the one place they become gRPC status codes.

use pingan_proto::Violations;

use crate::{owners::OwnershipError, query::QueryError};
use tonic::{Code, Status};

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("hub store is full, nothing was stored: {0}")]
    DiskFull(String),
    #[error(
        "submission id {0:?} was already used for a different report; use a new id for a correction"
    )]
    IdReused(String),
    #[error("hub store is shutting down")]
    Closed,
    #[error("hub store error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("hub store {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "hub data directory {dir} is in use by another process ({holder}): stop that pingan-hub first (数据目录正被另一个进程使用)"
    )]
    InUse { dir: String, holder: String },
    #[error(
        "{area} {period} has {MAX_REVISIONS} revisions already; no more corrections are taken (更正次数已达上限)",
        MAX_REVISIONS = crate::store::MAX_REVISIONS
    )]
    TooManyRevisions { area: String, period: String },
    #[error("hub store holds a corrupt revision of {area} {period}: {reason}")]
    Corrupt {
        area: String,
        period: String,
        reason: String,
    },
}

impl StoreError {
    /// Classifies SQLite's "disk full" apart from other failures.
    pub(crate) fn from_sqlite(e: rusqlite::Error) -> StoreError {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => StoreError::DiskFull(e.to_string()),
            _ => StoreError::Sqlite(e),
        }
    }
}

/// Anything a hub RPC can fail with.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(transparent)]
    Invalid(#[from] Violations),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Ownership(#[from] OwnershipError),
}

impl From<HubError> for Status {
    fn from(e: HubError) -> Status {
        let code = match &e {
            HubError::Invalid(_) => Code::InvalidArgument,
            HubError::Store(StoreError::IdReused(_)) => Code::AlreadyExists,
            HubError::Store(StoreError::TooManyRevisions { .. }) => Code::ResourceExhausted,
            // transient: the node keeps the report and retries
            HubError::Store(StoreError::DiskFull(_) | StoreError::Closed) => Code::Unavailable,
            HubError::Store(_) => Code::Internal,
            HubError::Query(QueryError::BadRequest(_)) => Code::InvalidArgument,
            HubError::Query(QueryError::UnknownArea(_)) => Code::NotFound,
            // asked of the wrong hub: the child hub that forwards the subtree has the answer
            HubError::Query(QueryError::BelowForwarding { .. }) => Code::FailedPrecondition,
            HubError::Query(QueryError::TooLarge { .. } | QueryError::Busy { .. }) => {
                Code::ResourceExhausted
            }
            HubError::Query(QueryError::DeadlineExceeded) => Code::DeadlineExceeded,
            HubError::Query(QueryError::Store(StoreError::Closed)) => Code::Unavailable,
            HubError::Query(_) => Code::Internal,
            // a second child hub for an owned subtree: not this certificate's to write
            HubError::Ownership(OwnershipError::Conflict(_)) => Code::PermissionDenied,
            // a node whose forms belong to a child hub: the system is set up that way on purpose
            HubError::Ownership(OwnershipError::Delegated { .. }) => Code::FailedPrecondition,
            HubError::Ownership(OwnershipError::Store(
                StoreError::DiskFull(_) | StoreError::Closed,
            )) => Code::Unavailable,
            HubError::Ownership(OwnershipError::Store(_)) => Code::Internal,
        };
        Status::new(code, e.to_string())
    }
}

/// The HTTP status the web dashboard answers for a gRPC code, so that both front doors refuse
/// the same things the same way.
pub fn http_status(code: Code) -> u16 {
    match code {
        Code::Ok => 200,
        Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => 400,
        Code::Unauthenticated => 401,
        Code::PermissionDenied => 403,
        Code::NotFound => 404,
        Code::AlreadyExists | Code::Aborted => 409,
        Code::ResourceExhausted => 429,
        Code::Unavailable => 503,
        Code::DeadlineExceeded => 504,
        _ => 500,
    }
}
