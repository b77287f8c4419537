//! `pingan.v1.ReviewService`: 审核. Leaders of an area list the reports below it with where each
//! stands, and approve or return them; an office asks where its own report stands.

use pingan_domain::{AreaCode, Form, Period, pb};
use tonic::{Request, Response, Status};

use crate::{
    access::authz::Action,
    error::HubError,
    state::HubState,
    store::{ReviewEvent, StoreError, StoreReader},
};

/// The review service.
#[derive(Debug, Clone)]
pub struct ReviewService {
    state: HubState,
}

impl ReviewService {
    /// A service over the hub's state.
    pub fn new(state: HubState) -> ReviewService {
        ReviewService { state }
    }

    pub(crate) fn form(&self, name: &str) -> Result<&Form, Status> {
        let c = &self.state.catalogue;
        let form = if name.trim().is_empty() {
            Some(c.default_form())
        } else {
            c.form(name.trim())
        };
        form.ok_or_else(|| Status::invalid_argument(c.unknown_form(name)))
    }

    /// Where (area, period)'s current revision stands, read with `reader`.
    fn item(
        &self,
        reader: &StoreReader,
        area: AreaCode,
        period: Period,
        revision: u32,
        review: bool,
    ) -> Result<pb::ReviewItem, Status> {
        let decided = if review {
            reader
                .review_latest(&area.to_string(), &period.to_string(), revision)
                .map_err(|e| Status::from(HubError::from(e)))?
        } else {
            None
        };
        Ok(self.decided(area, period, revision, review, decided))
    }

    /// An item for a revision and its latest decision.
    fn decided(
        &self,
        area: AreaCode,
        period: Period,
        revision: u32,
        review: bool,
        decision: Option<ReviewEvent>,
    ) -> pb::ReviewItem {
        let mut item = pb::ReviewItem {
            area: area.to_string(),
            name: self.state.areas.name(area),
            period: period.to_string(),
            revision,
            state: if review { "pending" } else { "none" }.into(),
            ..Default::default()
        };
        if let Some(e) = decision {
            item.state = if e.approved { "approved" } else { "returned" }.into();
            item.by = e.by;
            item.at_ms = e.at_ms;
            item.reason = e.reason;
        }
        item
    }

    /// The office itself (its node certificate) or a leader above may ask about its report.
    fn own_or_above(
        &self,
        id: Option<&crate::access::tls::Identity>,
        code: AreaCode,
    ) -> Result<(), Status> {
        if self.state.auth.check(id, Action::Submit, code).is_ok() {
            return Ok(());
        }
        self.state
            .auth
            .require(&self.state.store, id, Action::Read, code)
    }

    /// Every step of (area, period), oldest first: each revision as submitted and each decision.
    pub(crate) fn history_of(
        &self,
        code: AreaCode,
        p: Period,
    ) -> Result<Vec<pb::ReviewItem>, Status> {
        let failed = |e: StoreError| Status::from(HubError::from(e));
        let reader = self.state.store.reader().map_err(failed)?;
        let name = self.state.areas.name(code);
        let mut steps: Vec<pb::ReviewItem> = reader
            .revisions(code, p)
            .map_err(failed)?
            .into_iter()
            .map(|r| pb::ReviewItem {
                area: code.to_string(),
                name: name.clone(),
                period: p.to_string(),
                revision: r.revision,
                state: "submitted".into(),
                by: if r.reporter.is_empty() {
                    r.sender
                } else {
                    r.reporter
                },
                at_ms: r.received_at_ms,
                reason: r.notes,
            })
            .collect();
        for e in reader
            .review_events(&code.to_string(), &p.to_string())
            .map_err(failed)?
        {
            steps.push(self.decided(code, p, e.revision, true, Some(e)));
        }
        // by revision, each submission before the decisions on it, decisions in their order
        steps.sort_by_key(|s| (s.revision, s.state != "submitted", s.at_ms));
        Ok(steps)
    }

    /// The reports of `period` strictly below `area` on `form`, each with its review: one
    /// query for the subtree (a province's month is tens of thousands of reports).
    pub(crate) fn pending(
        &self,
        area: AreaCode,
        period: Period,
        form: &Form,
    ) -> Result<Vec<pb::ReviewItem>, Status> {
        let reader = self
            .state
            .store
            .reader()
            .map_err(|e| Status::from(HubError::from(e)))?;
        let states = reader
            .review_states_under(area, period)
            .map_err(|e| Status::from(HubError::from(e)))?;
        Ok(states
            .into_iter()
            .filter_map(|(a, revision, decision)| {
                let code = a.parse::<AreaCode>().ok()?;
                form.reported_by(code.level()).then(|| {
                    self.decided(
                        code,
                        period,
                        revision,
                        form.review,
                        decision.filter(|_| form.review),
                    )
                })
            })
            .collect())
    }

    /// Approves or returns the targets as `id` (a certificate, or a dashboard user's viewer
    /// identity): what was decided, and what was not with why.
    pub(crate) fn decide_as(
        &self,
        id: Option<&crate::access::tls::Identity>,
        r: pb::DecideRequest,
    ) -> Result<pb::DecideReply, Status> {
        if !r.approve && r.reason.trim().is_empty() {
            return Err(Status::invalid_argument(
                "退回须写明原因 (a return needs a reason)",
            ));
        }
        let who = id
            .as_ref()
            .map_or_else(|| "insecure".to_owned(), |i| i.uri());
        let mut reply = pb::DecideReply::default();
        for t in &r.targets {
            let code = area(&t.area)?;
            let p = period(&t.period)?;
            if let Err(s) = self
                .state
                .auth
                .require(&self.state.store, id, Action::Review, code)
            {
                reply.refused.push(format!("{code} {p}：{}", s.message()));
                continue;
            }
            let form = self.state.catalogue.form_for(code.level(), p.kind());
            if !form.is_some_and(|f| f.review) {
                reply.refused.push(format!("{code} {p}：这张报表不审核"));
                continue;
            }
            let event = ReviewEvent {
                area: code.to_string(),
                period: p.to_string(),
                revision: t.revision,
                approved: r.approve,
                by: if r.by.trim().is_empty() {
                    who.clone()
                } else {
                    r.by.trim().to_owned()
                },
                identity: who.clone(),
                at_ms: self.state.clock.now_ms(),
                reason: r.reason.trim().chars().take(500).collect(),
            };
            match self.state.store.decide(event) {
                Ok(e) => {
                    if e.approved {
                        // the approved rollups (when kept) take it; the store holds it already
                        if let Err(err) = self.state.engine.take_approval(code, p, e.revision) {
                            tracing::warn!(%code, %p, error = %err, "approved rollups not updated; they are rebuilt when next asked after a restart");
                        }
                        self.state.forward_approved(code, p);
                    }
                    reply
                        .items
                        .push(self.decided(code, p, t.revision, true, Some(e)))
                }
                Err(StoreError::Review(why)) => reply.refused.push(why),
                Err(e) => return Err(HubError::from(e).into()),
            }
        }
        tracing::info!(
            decided = reply.items.len(),
            refused = reply.refused.len(),
            approve = r.approve,
            "review"
        );
        Ok(reply)
    }
}

fn period(s: &str) -> Result<Period, Status> {
    Period::parse_typed(s).map_err(|e| Status::invalid_argument(e.for_reports().to_string()))
}

fn area(s: &str) -> Result<AreaCode, Status> {
    s.trim()
        .parse()
        .map_err(|e: pingan_domain::area::AreaCodeError| Status::invalid_argument(e.to_string()))
}

#[tonic::async_trait]
impl pb::review_service_server::ReviewService for ReviewService {
    async fn pending(
        &self,
        req: Request<pb::PendingRequest>,
    ) -> Result<Response<pb::PendingReply>, Status> {
        let id = self.state.auth.identity(&self.state.store, &req)?;
        let r = req.into_inner();
        let root = area(&r.area)?;
        self.state
            .auth
            .require(&self.state.store, id.as_ref(), Action::Read, root)?;
        let form = self.form(&r.form)?;
        let items = self.pending(root, period(&r.period)?, form)?;
        Ok(Response::new(pb::PendingReply { items }))
    }

    async fn decide(
        &self,
        req: Request<pb::DecideRequest>,
    ) -> Result<Response<pb::DecideReply>, Status> {
        let id = self.state.auth.identity(&self.state.store, &req)?;
        self.decide_as(id.as_ref(), req.into_inner())
            .map(Response::new)
    }

    async fn history(
        &self,
        req: Request<pb::ReviewStatusRequest>,
    ) -> Result<Response<pb::PendingReply>, Status> {
        let id = self.state.auth.identity(&self.state.store, &req)?;
        let r = req.into_inner();
        let code = area(&r.area)?;
        self.own_or_above(id.as_ref(), code)?;
        let items = self.history_of(code, period(&r.period)?)?;
        Ok(Response::new(pb::PendingReply { items }))
    }

    async fn status(
        &self,
        req: Request<pb::ReviewStatusRequest>,
    ) -> Result<Response<pb::ReviewItem>, Status> {
        let id = self.state.auth.identity(&self.state.store, &req)?;
        let r = req.into_inner();
        let code = area(&r.area)?;
        self.own_or_above(id.as_ref(), code)?;
        let p = period(&r.period)?;
        let reader = self
            .state
            .store
            .reader()
            .map_err(|e| Status::from(HubError::from(e)))?;
        let current = reader
            .current(code, p)
            .map_err(|e| Status::from(HubError::from(e)))?
            .ok_or_else(|| Status::not_found(format!("{code} {p} 没有报表")))?;
        let review = self
            .state
            .catalogue
            .form_for(code.level(), p.kind())
            .is_some_and(|f| f.review);
        Ok(Response::new(self.item(
            &reader,
            code,
            p,
            current.revision,
            review,
        )?))
    }
}
