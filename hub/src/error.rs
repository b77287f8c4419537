//! The hub's errors, and the one place they become gRPC status codes.

use pingan_domain::Violations;

use crate::{federation::owners::OwnershipError, query::QueryError, store::StoreError};
use tonic::{Code, Status};

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
            // a compact report taken against another catalogue: sent again named, not wrong
            HubError::Invalid(v) if v.catalogue_differs() => Code::FailedPrecondition,
            HubError::Invalid(_) => Code::InvalidArgument,
            HubError::Store(StoreError::IdReused(_)) => Code::AlreadyExists,
            HubError::Store(StoreError::TooManyRevisions { .. }) => Code::ResourceExhausted,
            // 锁定: final until someone with the right unlocks it
            HubError::Store(StoreError::Locked { .. }) => Code::FailedPrecondition,
            HubError::Store(StoreError::Review(_)) => Code::FailedPrecondition,
            // transient: the node keeps the report and retries
            HubError::Store(StoreError::DiskFull(_) | StoreError::Closed) => Code::Unavailable,
            HubError::Store(e) if e.is_connection_lost() => Code::Unavailable,
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
            HubError::Query(QueryError::Store(e)) if e.is_connection_lost() => Code::Unavailable,
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
