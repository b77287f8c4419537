//! `pingan.v1.QueryService`: leaders' questions over gRPC.

use pingan_proto::pb::{self, query_service_server::QueryService};
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::{error::HubError, state::HubState};

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

    /// Runs an engine call off the async threads (it may read the store and run polars).
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&crate::query::Engine) -> Result<T, crate::query::QueryError> + Send + 'static,
    ) -> Result<Response<T>, Status> {
        let engine = self.state.engine.clone();
        let answer = tokio::task::spawn_blocking(move || f(&engine))
            .await
            .map_err(|e| Status::internal(format!("query task failed: {e}")))?;
        answer
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
        let req = req.into_inner();
        self.run(move |e| e.rollup(&req)).await
    }

    #[instrument(skip_all, fields(area = %req.get_ref().area, period = %req.get_ref().period, metric = %req.get_ref().metric))]
    async fn compare(
        &self,
        req: Request<pb::CompareRequest>,
    ) -> Result<Response<pb::CompareReply>, Status> {
        let req = req.into_inner();
        self.run(move |e| e.compare(&req)).await
    }

    #[instrument(skip_all, fields(area = %req.get_ref().area, period = %req.get_ref().period, metric = %req.get_ref().metric))]
    async fn trend(
        &self,
        req: Request<pb::TrendRequest>,
    ) -> Result<Response<pb::TrendReply>, Status> {
        let req = req.into_inner();
        self.run(move |e| e.trend(&req)).await
    }

    #[instrument(skip_all, fields(area = %req.get_ref().area, period = %req.get_ref().period))]
    async fn completeness(
        &self,
        req: Request<pb::CompletenessRequest>,
    ) -> Result<Response<pb::CompletenessReply>, Status> {
        let req = req.into_inner();
        self.run(move |e| e.completeness(&req)).await
    }
}
