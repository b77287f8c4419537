//! `pingan.v1.ReportService`: validate, store durably, answer with the receipt.

use std::pin::Pin;

use futures_util::{Stream, StreamExt};
use pingan_proto::pb::{self, report_service_server::ReportService};
use tonic::{Request, Response, Status, Streaming};
use tracing::instrument;

use crate::{error::HubError, state::HubState};

/// How many reports of one batch stream are validated and waiting for a commit at once.
const BATCH_IN_FLIGHT: usize = 512;

/// The report service.
#[derive(Debug, Clone)]
pub struct Reports {
    state: HubState,
}

impl Reports {
    /// A service over the hub's state.
    pub fn new(state: HubState) -> Reports {
        Reports { state }
    }
}

/// Who sent a request, as recorded in the audit trail.
fn sender_of<T>(req: &Request<T>) -> String {
    match req.remote_addr() {
        Some(addr) => format!("peer:{addr}"),
        None => "peer:unknown".to_owned(),
    }
}

async fn accept(
    state: &HubState,
    report: pb::Report,
    sender: String,
) -> Result<pb::Receipt, HubError> {
    let valid = state.validator().validate(&report)?;
    let receipt = state
        .store
        .write(valid, sender, state.clock.now_ms())
        .await?;
    Ok(receipt)
}

#[tonic::async_trait]
impl ReportService for Reports {
    #[instrument(skip_all, fields(area = %req.get_ref().area, period = %req.get_ref().period, id = %req.get_ref().submission_id))]
    async fn submit(&self, req: Request<pb::Report>) -> Result<Response<pb::Receipt>, Status> {
        let sender = sender_of(&req);
        match accept(&self.state, req.into_inner(), sender).await {
            Ok(receipt) => {
                tracing::debug!(
                    revision = receipt.revision,
                    duplicate = receipt.duplicate,
                    "stored"
                );
                Ok(Response::new(receipt))
            }
            Err(e) => {
                tracing::info!(error = %e, "refused");
                Err(e.into())
            }
        }
    }

    type SubmitBatchStream =
        Pin<Box<dyn Stream<Item = Result<pb::BatchResult, Status>> + Send + 'static>>;

    #[instrument(skip_all)]
    async fn submit_batch(
        &self,
        req: Request<Streaming<pb::Report>>,
    ) -> Result<Response<Self::SubmitBatchStream>, Status> {
        let sender = sender_of(&req);
        let state = self.state.clone();
        let results = req
            .into_inner()
            .map(move |item| {
                let (state, sender) = (state.clone(), sender.clone());
                async move {
                    let report = item?;
                    let submission_id = report.submission_id.clone();
                    let outcome = match accept(&state, report, sender).await {
                        Ok(receipt) => pb::batch_result::Outcome::Receipt(receipt),
                        Err(e) => {
                            let status = Status::from(e);
                            pb::batch_result::Outcome::Rejection(pb::Rejection {
                                code: status.code() as i32,
                                message: status.message().to_owned(),
                            })
                        }
                    };
                    Ok(pb::BatchResult {
                        submission_id,
                        outcome: Some(outcome),
                    })
                }
            })
            // in order, but many at once, so that one stream fills group commits
            .buffered(BATCH_IN_FLIGHT);
        Ok(Response::new(Box::pin(results)))
    }

    async fn ping(
        &self,
        _req: Request<pb::PingRequest>,
    ) -> Result<Response<pb::PingReply>, Status> {
        Ok(Response::new(pb::PingReply {}))
    }
}
