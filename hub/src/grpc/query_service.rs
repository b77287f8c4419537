//! `pingan.v1.QueryService`: leaders' questions over gRPC, each within the caller's jurisdiction.

use pingan_proto::{
    AreaCode,
    pb::{self, query_service_server::QueryService},
};
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::{
    access::authz::Action,
    error::HubError,
    query::{Engine, QueryError},
    state::HubState,
};

/// Most rows (or named reporters) one answer over gRPC holds: larger answers come in pages.
pub const MAX_PAGE: u32 = 100_000;

/// The query service.
#[derive(Debug, Clone)]
pub struct Queries {
    state: HubState,
}

impl Queries {
    /// A service over the hub's state.
    pub fn new(state: HubState) -> Queries {
        Queries { state }
    }

    /// Checks that the caller may read the request's area, then runs the engine call through
    /// the question gate (one identity's questions at a time, a deadline that stops the work),
    /// off the async threads (it may read the store and run polars).
    async fn run<R: Clone + Send + 'static, T: Send + 'static>(
        &self,
        req: Request<R>,
        area: impl FnOnce(&R) -> &str,
        f: impl FnOnce(&Engine, &R) -> Result<T, QueryError> + Send + 'static,
    ) -> Result<Response<T>, Status> {
        let id = self.state.auth.identity(&self.state.store, &req)?;
        let who = match (&id, req.remote_addr()) {
            (Some(id), _) => id.uri(),
            (None, Some(addr)) => format!("peer:{}", addr.ip()),
            (None, None) => "peer:unknown".to_owned(),
        };
        let deadline = crate::query::gate::grpc_timeout(req.metadata());
        let asked = area(req.get_ref());
        if asked == crate::query::engine::NATION {
            self.state
                .auth
                .require_nation(&self.state.store, id.as_ref(), Action::Read)?;
        }
        // an unparsable area is the engine's to name (INVALID_ARGUMENT)
        else if let Ok(code) = asked.parse::<AreaCode>() {
            self.state
                .auth
                .require(&self.state.store, id.as_ref(), Action::Read, code)?;
        }
        let (engine, req) = (self.state.engine.clone(), req.into_inner());
        self.state
            .gate
            .run(&who, deadline, move || f(&engine, &req))
            .await
            .map(Response::new)
            .map_err(|e| HubError::from(e).into())
    }
}

#[tonic::async_trait]
impl QueryService for Queries {
    #[instrument(skip_all, fields(area = %req.get_ref().area, period = %req.get_ref().period))]
    async fn rollup(
        &self,
        req: Request<pb::RollupRequest>,
    ) -> Result<Response<pb::RollupReply>, Status> {
        self.run(req, |r| &r.area, |e, r| e.rollup(r)).await
    }

    #[instrument(skip_all, fields(area = %req.get_ref().area, period = %req.get_ref().period, metric = %req.get_ref().metric))]
    async fn compare(
        &self,
        mut req: Request<pb::CompareRequest>,
    ) -> Result<Response<pb::CompareReply>, Status> {
        let r = req.get_mut();
        r.page_size = r.page_size.min(MAX_PAGE);
        self.run(req, |r| &r.area, |e, r| e.compare(r)).await
    }

    #[instrument(skip_all, fields(area = %req.get_ref().area, period = %req.get_ref().period, metric = %req.get_ref().metric))]
    async fn trend(
        &self,
        req: Request<pb::TrendRequest>,
    ) -> Result<Response<pb::TrendReply>, Status> {
        self.run(req, |r| &r.area, |e, r| e.trend(r)).await
    }

    #[instrument(skip_all, fields(area = %req.get_ref().area, period = %req.get_ref().period))]
    async fn completeness(
        &self,
        mut req: Request<pb::CompletenessRequest>,
    ) -> Result<Response<pb::CompletenessReply>, Status> {
        let r = req.get_mut();
        r.page_size = r.page_size.min(MAX_PAGE);
        self.run(req, |r| &r.area, |e, r| e.completeness(r)).await
    }
}
