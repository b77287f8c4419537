//! `pingan.v1.LockService`: leaders lock (锁定) and unlock a form's period for their subtree.

use pingan_domain::{AreaCode, Period, pb};
use tonic::{Request, Response, Status};

use crate::{
    access::authz::Action,
    error::HubError,
    state::HubState,
    store::{LockRecord, StoreError},
};

/// The lock service.
#[derive(Debug, Clone)]
pub struct LockService {
    state: HubState,
}

impl LockService {
    /// A service over the hub's state.
    pub fn new(state: HubState) -> LockService {
        LockService { state }
    }

    /// Checks the request and the caller, then records the lock or unlock.
    fn set(&self, req: Request<pb::LockRequest>, locked: bool) -> Result<pb::LockReply, Status> {
        let id = self.state.auth.identity(&self.state.store, &req)?;
        self.set_as(id.as_ref(), req.into_inner(), locked)
    }

    /// Locks or unlocks as `id` (a certificate, or a dashboard user's viewer identity).
    pub(crate) fn set_as(
        &self,
        id: Option<&crate::access::tls::Identity>,
        r: pb::LockRequest,
        locked: bool,
    ) -> Result<pb::LockReply, Status> {
        let state = &self.state;
        let bad = |m: String| Status::invalid_argument(m);
        let root: AreaCode = r
            .area
            .trim()
            .parse()
            .map_err(|e| bad(format!("area: {e}")))?;
        if state.areas.get(root).is_none() {
            return Err(Status::not_found(format!("区划代码 {root} 不存在")));
        }
        state.auth.require(&state.store, id, Action::Lock, root)?;
        let period: Period =
            Period::parse_typed(&r.period).map_err(|e| bad(e.for_reports().to_string()))?;
        if !period.is_reportable() {
            return Err(bad(format!(
                "{period} 不是上报期间：锁定按月、半月、周或日"
            )));
        }
        let form = if r.form.trim().is_empty() {
            state
                .catalogue
                .form_for(root.level(), period.kind())
                .or_else(|| {
                    state
                        .catalogue
                        .forms()
                        .iter()
                        .find(|f| f.period == period.kind())
                })
        } else {
            state.catalogue.form(r.form.trim())
        }
        .ok_or_else(|| bad(state.catalogue.unknown_form(&r.form)))?;
        if form.period != period.kind() {
            return Err(bad(format!(
                "{} 不按 {period} 这样的期间上报",
                form.label()
            )));
        }
        let reason: String = r.reason.trim().chars().take(500).collect();
        let reason = if locked {
            self.signed_off(root, period, form, r.force, reason)?
        } else {
            reason
        };
        let who = id.map_or_else(|| "insecure".to_owned(), |i| i.uri());
        let record = LockRecord {
            form: form.id.clone(),
            period: period.to_string(),
            root: root.to_string(),
            locked,
            by: if r.by.trim().is_empty() {
                who.clone()
            } else {
                r.by.trim().to_owned()
            },
            identity: who,
            at_ms: state.clock.now_ms(),
            reason,
        };
        tracing::info!(%root, %period, form = %form.id, locked, by = %record.by, "lock changed");
        let stored = state
            .store
            .set_lock(record)
            .map_err(|e: StoreError| Status::from(HubError::from(e)))?;
        state.forward_locks_changed(period);
        Ok(pb::LockReply {
            state: Some(wire(&stored)),
        })
    }
}

impl LockService {
    /// 关账: a subtree's period locks only once every report expected of it is in, unless
    /// forced; a forced lock says so, and how many were missing, in its reason.
    fn signed_off(
        &self,
        root: AreaCode,
        period: Period,
        form: &pingan_domain::Form,
        force: bool,
        reason: String,
    ) -> Result<String, Status> {
        let answer = self
            .state
            .engine
            .completeness(&crate::query::CompletenessQuery {
                area: root,
                span: pingan_domain::Span::single(period),
                level: None,
                form: Some(form.id.clone()),
                page: pingan_domain::question::Paging {
                    size: 5,
                    token: String::new(),
                },
            })
            .map_err(|e| Status::from(HubError::from(e)))?;
        let missing = answer.summary.missing;
        // on a form with review, what is in must be approved too (returned or waiting: not yet)
        let unreviewed = answer
            .review
            .map_or(0, |(received, approved)| received.saturating_sub(approved));
        if missing == 0 && unreviewed == 0 {
            return Ok(reason);
        }
        if force {
            let mut why = Vec::new();
            if missing > 0 {
                why.push(format!("{missing} 个单位未报"));
            }
            if unreviewed > 0 {
                why.push(format!("{unreviewed} 份未审核"));
            }
            return Ok(format!("强制关账（{}）：{reason}", why.join("，")));
        }
        let name = self.state.areas.name(root);
        if missing == 0 {
            return Err(Status::failed_precondition(format!(
                "{root} {name} 的{} {period} 还有 {unreviewed} 份报表待审核或被退回：全部审核通过后才能锁定关账（pingan-hub review list 查看）；确需关账请用“强制关账”（命令行 --force），会记录在案 (reports are not all approved; use force to lock anyway)",
                form.zh
            )));
        }
        let some: Vec<String> = answer
            .missing
            .iter()
            .map(|r| format!("{} {}", r.code, r.name))
            .collect();
        Err(Status::failed_precondition(format!(
            "{root} {name} 的{} {period} 还有 {missing} 个单位未报（{}……）：全部上报后才能锁定关账；确需关账请用“强制关账”（命令行 --force），会记录在案 (reports are missing; use force to lock anyway)",
            form.zh,
            some.join("、")
        )))
    }
}

/// A lock as the wire carries it.
pub fn wire(r: &LockRecord) -> pb::LockState {
    pb::LockState {
        area: r.root.clone(),
        period: r.period.clone(),
        form: r.form.clone(),
        locked: r.locked,
        by: r.by.clone(),
        at_ms: r.at_ms,
        reason: r.reason.clone(),
        via: String::new(),
    }
}

#[tonic::async_trait]
impl pb::lock_service_server::LockService for LockService {
    async fn lock(&self, req: Request<pb::LockRequest>) -> Result<Response<pb::LockReply>, Status> {
        self.set(req, true).map(Response::new)
    }

    async fn unlock(
        &self,
        req: Request<pb::LockRequest>,
    ) -> Result<Response<pb::LockReply>, Status> {
        self.set(req, false).map(Response::new)
    }

    async fn locks(
        &self,
        req: Request<pb::LocksRequest>,
    ) -> Result<Response<pb::LocksReply>, Status> {
        self.state.auth.identity(&self.state.store, &req)?;
        self.list(req.into_inner()).map(Response::new)
    }
}

impl LockService {
    /// The locks of a period (or every explicit one), those child hubs forwarded for it, and
    /// with `history` every lock and unlock.
    pub(crate) fn list(&self, r: pb::LocksRequest) -> Result<pb::LocksReply, Status> {
        let period = r.period.trim();
        let events = if r.history {
            self.state
                .store
                .lock_events((!period.is_empty()).then_some(period))
                .map_err(|e| Status::from(HubError::from(e)))?
                .iter()
                .map(wire)
                .collect()
        } else {
            Vec::new()
        };
        let (list, days) = self
            .state
            .store
            .locks((!period.is_empty()).then_some(period));
        let mut locks: Vec<pb::LockState> = list.iter().map(wire).collect();
        // what child hubs closed for their subtrees, as their forwarded rollups say (one period)
        if !period.is_empty() {
            let p = Period::parse_typed(period)
                .map_err(|e| Status::invalid_argument(e.for_reports().to_string()))?;
            let forwarded = self
                .state
                .store
                .reader()
                .and_then(|r| r.forwarded_locks(p))
                .map_err(|e| Status::from(HubError::from(e)))?;
            locks.extend(
                forwarded
                    .into_iter()
                    .map(|(area, sender, l)| pb::LockState {
                        area,
                        period: p.to_string(),
                        form: l.form,
                        locked: true,
                        by: l.by,
                        at_ms: l.at_ms,
                        reason: l.reason,
                        via: sender,
                    }),
            );
        }
        Ok(pb::LocksReply {
            locks,
            lock_after_days: days,
            events,
        })
    }
}
