//! `pingan.v1.ReportService`: authorize from the certificate, validate, store durably, answer
//! with the receipt.

use std::pin::Pin;

use futures_util::{Stream, StreamExt};
use pingan_domain::{
    AreaCode,
    pb::{self, report_service_server::ReportService},
};
use tonic::{Request, Response, Status, Streaming};
use tracing::instrument;

use crate::{
    access::{authz::Action, tls::Identity},
    error::HubError,
    state::HubState,
    store::Sent,
};

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

/// Who sent a request, as recorded in the audit trail: the certificate's identity, or the peer
/// address in insecure mode.
fn sender_of<T>(req: &Request<T>, id: Option<&Identity>) -> String {
    match (id, req.remote_addr()) {
        (Some(id), _) => id.uri(),
        (None, Some(addr)) => format!("peer:{addr}"),
        (None, None) => "peer:unknown".to_owned(),
    }
}

/// A refused report in the hub's log (INFO), named by area, period and submission id: what an
/// operator looks for when an office says its report did not go in. What the sender wrote is
/// cut and escaped (`?`: a newline stays `\n`), so one refusal is one line of the log however
/// long or forged the fields it sent.
fn log_refusal(report: &pb::Report, status: &Status) {
    let cut = |s: &str, most: usize| s.chars().take(most).collect::<String>();
    tracing::info!(
        area = ?cut(&report.area, 64),
        period = ?cut(&report.period, 64),
        id = ?cut(&report.submission_id, 64),
        error = ?cut(status.message(), 500),
        "refused"
    );
}

async fn accept(
    state: &HubState,
    report: &pb::Report,
    sender: String,
    id: Option<&Identity>,
    sent: Sent,
) -> Result<pb::Receipt, Status> {
    // authorization first, from the certificate: a report for someone else's area is refused
    // whatever else is wrong with it (an unparsable area is the validator's to name)
    let forward = report.rollup.is_some();
    let action = if forward {
        Action::Forward
    } else {
        Action::Submit
    };
    if let Some(id) = id {
        // a serial denied while this stream was open stops it here
        state.auth.not_revoked(&state.store, id)?;
    }
    let department = report.department.trim();
    if department.is_empty() {
        if let Ok(area) = report.area.parse::<AreaCode>() {
            state.auth.require(&state.store, id, action, area)?;
        }
    } else if let Some(d) = state.departments.get(department) {
        state
            .auth
            .require_department(&state.store, id, &d.id, d.area)?;
    }
    // then validation, before anything durable happens on the report's behalf
    let valid = state
        .validator()
        .validate(report)
        .map_err(|v| Status::from(HubError::from(v)))?;
    // then ownership: one child hub per subtree (claimed by its first valid rollup), and no
    // forms under a child hub's subtree
    let owned = match (forward, id) {
        (true, Some(hub)) => state.owners.claim(&state.store, hub, state.clock.now_ms()),
        (true, None) => Ok(()),
        // a department's report is its own (条): no child hub's subtree holds it
        (false, _) if valid.department.is_some() => Ok(()),
        (false, _) => state.owners.check_submit(valid.area),
    };
    if let Err(e) = owned {
        crate::access::authz::record_refusal(&state.store, id, action, valid.area, &e.to_string());
        return Err(HubError::from(e).into());
    }
    let department = valid.department.clone().map(|d| (d, valid.period));
    let receipt = state
        .store
        .write_sent(valid, sender, state.clock.now_ms(), sent)
        .await
        .map_err(HubError::from)?;
    if let Some((d, period)) = department {
        // a department's report goes up as it is (divisions' are marked by the commit hook)
        state.forward.mark_department(&d, period);
    }
    Ok(receipt.into())
}

#[tonic::async_trait]
impl ReportService for Reports {
    // a span per report at DEBUG: at INFO (the hub's default) its three fields would be
    // formatted for every report stored; a refusal names them in its own event
    #[instrument(level = "debug", skip_all, fields(area = %req.get_ref().area, period = %req.get_ref().period, id = %req.get_ref().submission_id))]
    async fn submit(&self, req: Request<pb::Report>) -> Result<Response<pb::Receipt>, Status> {
        let id = self.state.auth.identity(&self.state.store, &req)?;
        let sender = sender_of(&req, id.as_ref());
        let report = req.into_inner();
        match accept(&self.state, &report, sender, id.as_ref(), Sent::Alone).await {
            Ok(receipt) => {
                tracing::debug!(
                    revision = receipt.revision,
                    duplicate = receipt.duplicate,
                    "stored"
                );
                Ok(Response::new(receipt))
            }
            Err(e) => {
                log_refusal(&report, &e);
                Err(e)
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
        let id = self.state.auth.identity(&self.state.store, &req)?;
        let sender = sender_of(&req, id.as_ref());
        let state = self.state.clone();
        let results = req
            .into_inner()
            .map(move |item| {
                let (state, sender, id) = (state.clone(), sender.clone(), id.clone());
                async move {
                    let report = item?;
                    let outcome =
                        match accept(&state, &report, sender, id.as_ref(), Sent::InBatch).await {
                            Ok(receipt) => pb::batch_result::Outcome::Receipt(receipt),
                            Err(status) => {
                                log_refusal(&report, &status);
                                pb::batch_result::Outcome::Rejection(pb::Rejection {
                                    code: status.code() as i32,
                                    message: status.message().to_owned(),
                                })
                            }
                        };
                    Ok(pb::BatchResult {
                        submission_id: report.submission_id,
                        outcome: Some(outcome),
                    })
                }
            })
            // in order, but many at once, so that one stream fills group commits
            .buffered(BATCH_IN_FLIGHT);
        Ok(Response::new(Box::pin(results)))
    }

    async fn ping(&self, req: Request<pb::PingRequest>) -> Result<Response<pb::PingReply>, Status> {
        self.state.auth.identity(&self.state.store, &req)?;
        Ok(Response::new(pb::PingReply {
            catalogue: self.state.catalogue.fingerprint(),
        }))
    }
}
