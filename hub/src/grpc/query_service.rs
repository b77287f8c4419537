//! `pingan.v1.QueryService`: leaders' questions over gRPC, each within the caller's jurisdiction.
//! A request becomes its typed question here, once; the engine answers the question.

use pingan_domain::{
    pb::{self, query_service_server::QueryService},
    question::{BadQuestion, Question},
};
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::{
    access::authz::Action,
    error::HubError,
    query::{
        AssessQuery, CompareQuery, CompletenessQuery, DepartmentsQuery, Engine, QueryError,
        RollupQuery, Root, TrendQuery,
    },
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

    /// Turns the wire request into its typed question (INVALID_ARGUMENT when it is not one),
    /// checks that the caller may read the area it asks about, then runs the engine call through
    /// the question gate (one identity's questions at a time, a deadline that stops the work),
    /// off the async threads (it may read the store and run polars).
    async fn run<R, Q, T>(
        &self,
        req: Request<R>,
        f: impl FnOnce(&Engine, &Q) -> Result<T, QueryError> + Send + 'static,
    ) -> Result<Response<T>, Status>
    where
        Q: for<'a> TryFrom<&'a R, Error = BadQuestion> + Question + Send + 'static,
        T: Send + 'static,
    {
        let id = self.state.auth.identity(&self.state.store, &req)?;
        let who = match (&id, req.remote_addr()) {
            (Some(id), _) => id.uri(),
            (None, Some(addr)) => format!("peer:{}", addr.ip()),
            (None, None) => "peer:unknown".to_owned(),
        };
        let deadline = crate::query::gate::grpc_timeout(req.metadata());
        let query = Q::try_from(req.get_ref()).map_err(|e| HubError::from(QueryError::from(e)))?;
        match query.about() {
            Root::Nation => {
                self.state
                    .auth
                    .require_nation(&self.state.store, id.as_ref(), Action::Read)?
            }
            Root::Area(code) => {
                self.state
                    .auth
                    .require(&self.state.store, id.as_ref(), Action::Read, code)?
            }
        }
        let engine = self.state.engine.clone();
        self.state
            .gate
            .run(&who, deadline, move || f(&engine, &query))
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
        self.run(req, |e, q: &RollupQuery| e.rollup(q).map(Into::into))
            .await
    }

    #[instrument(skip_all, fields(area = %req.get_ref().area, period = %req.get_ref().period, metric = %req.get_ref().metric))]
    async fn compare(
        &self,
        mut req: Request<pb::CompareRequest>,
    ) -> Result<Response<pb::CompareReply>, Status> {
        let r = req.get_mut();
        r.page_size = r.page_size.min(MAX_PAGE);
        self.run(req, |e, q: &CompareQuery| e.compare(q).map(Into::into))
            .await
    }

    #[instrument(skip_all, fields(area = %req.get_ref().area, period = %req.get_ref().period, metric = %req.get_ref().metric))]
    async fn trend(
        &self,
        req: Request<pb::TrendRequest>,
    ) -> Result<Response<pb::TrendReply>, Status> {
        self.run(req, |e, q: &TrendQuery| {
            e.trend(q)
                .map(|a| pingan_domain::trend_columns::trend_reply(a, q.as_columns))
        })
        .await
    }

    #[instrument(skip_all, fields(area = %req.get_ref().area, period = %req.get_ref().period))]
    async fn completeness(
        &self,
        mut req: Request<pb::CompletenessRequest>,
    ) -> Result<Response<pb::CompletenessReply>, Status> {
        let r = req.get_mut();
        r.page_size = r.page_size.min(MAX_PAGE);
        self.run(req, |e, q: &CompletenessQuery| {
            e.completeness(q).map(Into::into)
        })
        .await
    }

    #[instrument(skip_all, fields(area = %req.get_ref().area, period = %req.get_ref().period, metric = %req.get_ref().metric))]
    async fn departments(
        &self,
        req: Request<pb::DepartmentsRequest>,
    ) -> Result<Response<pb::DepartmentsReply>, Status> {
        self.run(req, |e, q: &DepartmentsQuery| {
            e.departments(q).map(Into::into)
        })
        .await
    }

    #[instrument(skip_all, fields(area = %req.get_ref().area, period = %req.get_ref().period))]
    async fn assess(
        &self,
        req: Request<pb::AssessRequest>,
    ) -> Result<Response<pb::AssessReply>, Status> {
        self.run(req, |e, q: &AssessQuery| e.assess(q).map(Into::into))
            .await
    }
}
