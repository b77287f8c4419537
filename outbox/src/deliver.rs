//! Delivery of the outbox to the hub: pending reports go in order on one `SubmitBatch` stream;
//! acks mark them delivered, refusals park them with the reason, and only `UNAVAILABLE` and
//! `DEADLINE_EXCEEDED` (the hub is down, overloaded or out of disk) are retried, with backoff.

use std::{sync::Arc, time::Duration};

use pingan_domain::{
    Catalogue, PACKED_CATALOGUE_DIFFERS,
    pb::{self, report_service_client::ReportServiceClient},
};
use tokio::{sync::Notify, time::Instant};
use tokio_util::sync::CancellationToken;
use tonic::{Code, transport::Channel};

use crate::{
    backoff::Backoff,
    outbox::{Outbox, OutboxError, PendingReport},
};

/// Most reports sent on one stream.
const BATCH: usize = 256;

/// What one delivery pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    pub delivered: usize,
    pub parked: usize,
    /// Set when the pass stopped on a retryable error (the rest stays pending).
    pub retry: Option<String>,
}

/// Whether a gRPC code is worth retrying: the report stays pending.
pub fn is_retryable(code: Code) -> bool {
    matches!(code, Code::Unavailable | Code::DeadlineExceeded)
}

/// tonic reports the client's own timeout as `CANCELLED: Timeout expired`: it is a deadline
/// that passed, not a refusal by the hub.
fn normalise(status: tonic::Status) -> tonic::Status {
    if status.code() == Code::Cancelled && status.message().contains("Timeout expired") {
        return tonic::Status::deadline_exceeded(format!(
            "no answer in time ({})",
            status.message()
        ));
    }
    status
}

/// Why no connection to the hub could be made (the reason, as the office reads it).
#[derive(Debug)]
struct Unreachable(String);

/// Delivers one node's outbox to one hub.
#[derive(Debug)]
pub struct Deliverer {
    hub: String,
    timeout: Duration,
    client: Option<ReportServiceClient<Channel>>,
    tls: Option<tonic::transport::ClientTlsConfig>,
    /// The node's catalogue, when reports may go in its compact form.
    catalogue: Option<Arc<Catalogue>>,
    /// Whether the hub of the current connection has the same catalogue (its `Ping` said so):
    /// the reports' totals then go by catalogue position ([`pingan_domain::pack`]).
    packing: bool,
    pub backoff: Backoff,
}

impl Deliverer {
    /// A deliverer for the hub at `hub` (e.g. `http://127.0.0.1:7400`), giving each stream
    /// `timeout` to answer.
    pub fn new(hub: impl Into<String>, timeout: Duration) -> Deliverer {
        Deliverer {
            hub: hub.into(),
            timeout,
            client: None,
            tls: None,
            catalogue: None,
            packing: false,
            backoff: Backoff::default(),
        }
    }

    /// Connects with mutual TLS (`None`: plaintext).
    pub fn with_tls(mut self, tls: Option<tonic::transport::ClientTlsConfig>) -> Deliverer {
        self.tls = tls;
        self
    }

    /// Sends the totals in the compact form when the hub's catalogue is this one (asked with a
    /// `Ping` on every new connection; a hub with another catalogue, or one older than the
    /// compact form, gets them named).
    pub fn with_catalogue(mut self, catalogue: Catalogue) -> Deliverer {
        self.catalogue = Some(Arc::new(catalogue));
        self
    }

    /// Whether the current connection's reports go by catalogue position.
    pub fn sends_by_position(&self) -> bool {
        self.packing
    }

    async fn client(&mut self) -> Result<ReportServiceClient<Channel>, Unreachable> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let endpoint = crate::client_tls::endpoint(&self.hub, self.tls.as_ref())
            .map_err(|e| Unreachable(format!("{e:#}")))?
            .connect_timeout(self.timeout)
            .timeout(self.timeout);
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| Unreachable(crate::client_tls::describe(&self.hub, &e)))?;
        let mut client = ReportServiceClient::new(channel);
        self.packing = match &self.catalogue {
            // a refused Ping (an old hub, a certificate it does not take) leaves them named:
            // the reports' own answers say what is wrong
            Some(c) => client
                .ping(pb::PingRequest {})
                .await
                .is_ok_and(|r| r.into_inner().catalogue == c.fingerprint()),
            None => false,
        };
        self.client = Some(client.clone());
        Ok(client)
    }

    /// One pass over the pending reports, oldest first, until they are all answered or a
    /// retryable error stops the pass.
    pub async fn pass(&mut self, outbox: &mut Outbox) -> Result<Pass, OutboxError> {
        let mut pass = Pass::default();
        loop {
            let pending = outbox.pending(BATCH)?;
            if pending.is_empty() {
                return Ok(pass);
            }
            let client = match self.client().await {
                Ok(c) => c,
                Err(Unreachable(e)) => {
                    outbox.note_attempt(pending[0].seq, &e)?;
                    pass.retry = Some(e);
                    return Ok(pass);
                }
            };
            let packing = self.catalogue.as_deref().filter(|_| self.packing);
            let (results, stopped) = send(client, &pending, packing).await;
            let mut retry = settle(outbox, &pending, &results, packing.is_some(), &mut pass)?;
            if packing.is_some()
                && retry
                    .as_deref()
                    .is_some_and(|m| m.contains(PACKED_CATALOGUE_DIFFERS))
            {
                // the hub's catalogue changed since this connection's Ping: the rest go named
                tracing::info!(hub = %self.hub, "the hub's catalogue differs from ours; sending values by name");
                self.packing = false;
                continue;
            }
            if retry.is_none() && results.len() < pending.len() {
                let (retryable, message) = self.why_stopped(stopped);
                if retryable {
                    self.client = None;
                    retry = Some(message);
                } else {
                    // a refusal of the whole stream (e.g. permission denied) parks its first report
                    outbox.set_failed(pending[results.len()].seq, &message)?;
                    pass.parked += 1;
                    continue;
                }
            }
            if let Some(e) = retry {
                if let Some(p) = pending.get(results.len().min(pending.len() - 1)) {
                    outbox.note_attempt(p.seq, &e)?;
                }
                pass.retry = Some(e);
                return Ok(pass);
            }
            self.backoff.reset();
        }
    }

    /// Why a stream ended before every report was answered, and whether that is worth a retry.
    /// The hub maps every error of its own to a definite code; UNKNOWN on a stream is a
    /// connection that broke (h2 reset, hub killed), so it is retried like UNAVAILABLE.
    fn why_stopped(&self, stopped: Option<tonic::Status>) -> (bool, String) {
        let status = stopped.unwrap_or_else(|| tonic::Status::unavailable("stream ended early"));
        let message = match std::error::Error::source(&status) {
            // a broken connection: say what broke it
            Some(_) => format!(
                "{:?}: {}",
                status.code(),
                crate::client_tls::describe(&self.hub, &status)
            ),
            None => format!("{:?}: {}", status.code(), status.message()),
        };
        let retryable = is_retryable(status.code()) || status.code() == Code::Unknown;
        (retryable, message)
    }

    /// Delivers with backoff until `done` says so (checked after every pass) or `deadline`
    /// passes. Returns the last pass.
    pub async fn deliver_until(
        &mut self,
        outbox: &mut Outbox,
        deadline: Option<Instant>,
        mut done: impl FnMut(&Outbox) -> Result<bool, OutboxError>,
    ) -> Result<Pass, OutboxError> {
        loop {
            let pass = self.pass(outbox).await?;
            if done(outbox)? {
                return Ok(pass);
            }
            let Some(reason) = &pass.retry else {
                return Ok(pass);
            };
            let delay = self.backoff.next_delay();
            if deadline.is_some_and(|d| Instant::now() + delay > d) {
                return Ok(pass);
            }
            tracing::info!(error = %reason, retry_in = ?delay, "hub not reachable, will retry");
            tokio::time::sleep(delay).await;
        }
    }

    /// Keeps delivering until `shutdown` is cancelled: a pass, then a wait (the backoff while
    /// the hub is unreachable; otherwise until `wake` is notified or `idle` has passed), and
    /// again. What is not delivered stays in the outbox. This is the loop of `pingan-node run`
    /// and of a hub forwarding to its parent.
    pub async fn run(
        &mut self,
        outbox: &mut Outbox,
        wake: Option<&Notify>,
        idle: Duration,
        shutdown: &CancellationToken,
    ) -> Result<(), OutboxError> {
        while !shutdown.is_cancelled() {
            let pass = tokio::select! {
                pass = self.pass(outbox) => pass?,
                () = shutdown.cancelled() => break,
            };
            if pass.delivered + pass.parked > 0 {
                tracing::info!(
                    hub = %self.hub,
                    delivered = pass.delivered,
                    parked = pass.parked,
                    "delivery pass done"
                );
            }
            let wait = match &pass.retry {
                Some(reason) => {
                    let delay = self.backoff.next_delay();
                    tracing::warn!(hub = %self.hub, error = %reason, retry_in = ?delay, "hub not reachable; reports wait in the outbox");
                    delay
                }
                None => idle,
            };
            let woken = async {
                match wake {
                    Some(w) => w.notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = woken, if pass.retry.is_none() => {}
                () = shutdown.cancelled() => break,
            }
        }
        Ok(())
    }
}

/// Sends `pending` on one stream; the answers that came, and the status that ended the stream
/// early, if one did.
async fn send(
    mut client: ReportServiceClient<Channel>,
    pending: &[PendingReport],
    packing: Option<&Catalogue>,
) -> (Vec<pb::BatchResult>, Option<tonic::Status>) {
    let reports: Vec<pb::Report> = pending
        .iter()
        .map(|p| {
            let mut r = p.report.clone();
            if let Some(c) = packing {
                pingan_domain::pack(&mut r, c);
            }
            r
        })
        .collect();
    match client.submit_batch(tokio_stream::iter(reports)).await {
        Ok(resp) => {
            let mut stream = resp.into_inner();
            let mut results = Vec::with_capacity(pending.len());
            let stopped = loop {
                match stream.message().await {
                    Ok(Some(r)) => results.push(r),
                    Ok(None) => break None,
                    Err(status) => break Some(normalise(status)),
                }
            };
            (results, stopped)
        }
        Err(status) => (Vec::new(), Some(normalise(status))),
    }
}

/// Records the answers in order: receipts mark reports delivered, refusals park them. Stops at
/// the first answer that calls for a retry (returned), which leaves that report and the ones
/// after it pending: a retryable code, or, when the reports went by catalogue position
/// (`packed`), a hub whose catalogue is not the one they were packed against.
fn settle(
    outbox: &mut Outbox,
    pending: &[PendingReport],
    results: &[pb::BatchResult],
    packed: bool,
    pass: &mut Pass,
) -> Result<Option<String>, OutboxError> {
    let mut delivered = Vec::new();
    let mut retry = None;
    for (p, result) in pending.iter().zip(results) {
        if result.submission_id != p.report.submission_id {
            retry = Some(format!(
                "hub answered out of order ({} for {})",
                result.submission_id, p.report.submission_id
            ));
            break;
        }
        match &result.outcome {
            Some(pb::batch_result::Outcome::Receipt(r)) => delivered.push((p.seq, r.clone())),
            Some(pb::batch_result::Outcome::Rejection(rej))
                if is_retryable(Code::from(rej.code))
                    || (packed && rej.message.contains(PACKED_CATALOGUE_DIFFERS)) =>
            {
                retry = Some(rej.message.clone());
                break;
            }
            Some(pb::batch_result::Outcome::Rejection(rej)) => {
                let reason = format!("{:?}: {}", Code::from(rej.code), rej.message);
                tracing::warn!(id = %p.report.submission_id, %reason, "report refused by the hub, parked");
                outbox.set_failed(p.seq, &reason)?;
                pass.parked += 1;
            }
            None => {
                retry = Some("hub answered without an outcome".into());
                break;
            }
        }
    }
    pass.delivered += delivered.len();
    outbox.mark_delivered(&delivered)?;
    Ok(retry)
}
