//! The page's JSON API: the office and its forms, one form to fill in (with the previous
//! figures), the check on every change, drafts, and submitting through the outbox.

use std::collections::BTreeMap;

use axum::{
    Json,
    extract::{Query, State},
    http::StatusCode,
};
use pingan_domain::{MetricKind, Period, pb};
use pingan_outbox::{EntryState, Outbox, drafts::Draft};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    NodeWeb, PageError,
    entry::{self, Fields},
};
use crate::office::{Office, Reporter, period_label};

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Which form: reporter, period and form id.
#[derive(Debug, Clone, Deserialize)]
pub struct Which {
    pub key: String,
    pub period: String,
    pub form: String,
}

/// The reporter, form and period asked, if the office fills them in.
pub fn resolve<'a>(
    office: &'a Office,
    w: &Which,
) -> Result<(&'a Reporter, &'a pingan_domain::Form, Period), PageError> {
    let r = office
        .reporter(&w.key)
        .ok_or_else(|| PageError::bad(format!("本节点不为「{}」填报", w.key)))?;
    let form = office
        .form_of(r, &w.form)
        .ok_or_else(|| PageError::bad(format!("{} 不填报「{}」", r.name, w.form)))?;
    let period: Period = w
        .period
        .parse()
        .map_err(|e| PageError::bad(format!("期间「{}」：{e}", w.period)))?;
    if period.kind() != form.period {
        return Err(PageError::bad(format!(
            "{} 是{}，{} 不是它的期间",
            form.zh,
            pingan_domain::form::period_zh(form.period),
            period
        )));
    }
    Ok((r, form, period))
}

/// `GET /api/office`: who the office reports for, each reporter's forms and their recent
/// periods with where each stands.
pub async fn office(State(web): State<NodeWeb>) -> Result<Json<Value>, PageError> {
    let today = crate::today_beijing();
    let (mut all, pending) = {
        let outbox = web.outbox.lock().expect("not poisoned");
        let mut all = Vec::new();
        for r in &web.office.reporters {
            all.push((r, web.office.overview(&outbox, r, today, now_ms())?));
        }
        (all, outbox.pending_count()?)
    };
    for (r, forms) in &mut all {
        if r.department.is_none()
            && let Some(client) = &web.review
        {
            crate::office::with_reviews(client, r, forms).await;
        }
    }
    let reporters: Vec<Value> = all
        .into_iter()
        .map(|(r, forms)| {
            json!({"key": r.key, "name": r.name, "department": r.department, "forms": forms})
        })
        .collect();
    Ok(Json(json!({
        "today": today.to_string(),
        "hub": web.hub,
        "pending": pending,
        "reporters": reporters,
    })))
}

/// What this node last sent for (reporter, period) that the hub took or may still take:
/// the delivered report, else the one waiting.
fn last_sent(outbox: &Outbox, key: &str, period: Period) -> Result<Option<pb::Report>, PageError> {
    let history = outbox.history(key, &period.to_string())?;
    let pick = |state| history.iter().rev().find(|(e, _)| e.state == state);
    Ok(pick(EntryState::Delivered)
        .or_else(|| pick(EntryState::Pending))
        .map(|(_, r)| r.clone()))
}

/// A sent report's figures by metric: `{"metric": {"total": n, "parts": {...}}}`, and a zero
/// report as such.
fn figures(report: Option<pb::Report>) -> Value {
    let Some(r) = report else { return Value::Null };
    let values: BTreeMap<String, Value> = r
        .values
        .iter()
        .map(|v| {
            let total = v.total.unwrap_or_else(|| v.parts.values().sum());
            (v.metric.clone(), json!({"total": total, "parts": v.parts}))
        })
        .collect();
    json!({"zero": r.zero_report, "values": values, "notes": r.notes})
}

/// `GET /api/form?key=&period=&form=`: the form to fill in: its sections and metrics (Chinese
/// names, units, categories), the previous period's and last year's figures as sent by this
/// node, the saved draft, and what was delivered (a correction starts from it).
pub async fn form(
    State(web): State<NodeWeb>,
    Query(w): Query<Which>,
) -> Result<Json<Value>, PageError> {
    let office = &web.office;
    let (r, form, period) = resolve(office, &w)?;
    let c = &office.catalogue;
    let asked: Vec<_> = office.metrics_of(r, form);
    let sections: Vec<Value> = form
        .sections
        .iter()
        .filter_map(|s| {
            let metrics: Vec<Value> = s
                .metrics
                .iter()
                .filter(|m| asked.contains(m))
                .map(|m| {
                    let def = c.metric(m);
                    json!({
                        "id": m.as_str(), "zh": def.zh, "unit": def.unit,
                        "stock": def.kind == MetricKind::Stock,
                        "parts": c.category_of(m).map(|cat| json!({"zh": cat.zh, "values": cat.values})),
                    })
                })
                .collect();
            (!metrics.is_empty()).then(|| json!({"zh": s.zh, "metrics": metrics}))
        })
        .collect();
    let outbox = web.outbox.lock().expect("not poisoned");
    let status = office.status(&outbox, r, form, period, now_ms())?;
    let draft = outbox
        .draft(&r.key, &w.period, &form.id)?
        .and_then(|d| serde_json::from_str::<Value>(&d.body).ok());
    Ok(Json(json!({
        "reporter": {"key": r.key, "name": r.name},
        "form": {"id": form.id, "zh": form.zh},
        "period": period.to_string(),
        "period_label": period_label(period),
        "previous_label": period_label(period.previous()),
        "last_year_label": period_label(period.year_earlier()),
        "sections": sections,
        "status": status,
        "previous": figures(last_sent(&outbox, &r.key, period.previous())?),
        "last_year": figures(last_sent(&outbox, &r.key, period.year_earlier())?),
        "sent": figures(last_sent(&outbox, &r.key, period)?),
        "draft": draft,
    })))
}

/// `POST /api/check`: the fields checked as the hub will check them.
pub async fn check(
    State(web): State<NodeWeb>,
    Json(fields): Json<Fields>,
) -> Result<Json<entry::Checked>, PageError> {
    let r = web
        .office
        .reporter(&fields.key)
        .ok_or_else(|| PageError::bad(format!("本节点不为「{}」填报", fields.key)))?;
    let (_, checked) = entry::check(
        &web.office,
        r,
        &fields,
        &web.reporter,
        crate::today_beijing(),
    );
    Ok(Json(checked))
}

/// `POST /api/draft`: keeps the fields as typed, whatever they hold.
pub async fn save_draft(
    State(web): State<NodeWeb>,
    Json(fields): Json<Fields>,
) -> Result<Json<Value>, PageError> {
    let which = Which {
        key: fields.key.clone(),
        period: fields.period.clone(),
        form: fields.form.clone(),
    };
    resolve(&web.office, &which)?;
    let body = serde_json::to_string(&fields).expect("fields serialise");
    let at = now_ms();
    web.outbox
        .lock()
        .expect("not poisoned")
        .save_draft(&Draft {
            area: fields.key,
            period: fields.period,
            form: fields.form,
            body,
            updated_at_ms: at,
        })?;
    Ok(Json(
        json!({"saved_at": crate::office::minute_text(at), "message": "草稿已保存在本机"}),
    ))
}

/// `POST /api/submit`: checked again, then written to the outbox (the deliverer is woken); a
/// correction of a delivered period needs a reason, soft-rule warnings need the office's
/// word and a note. Answers 422 with the problems (or 409 with the warnings) and writes
/// nothing when it may not go.
pub async fn submit(
    State(web): State<NodeWeb>,
    Json(mut fields): Json<Fields>,
) -> Result<(StatusCode, Json<Value>), PageError> {
    let which = Which {
        key: fields.key.clone(),
        period: fields.period.clone(),
        form: fields.form.clone(),
    };
    let (r, form, period) = resolve(&web.office, &which)?;
    let outbox = web.outbox.lock().expect("not poisoned");
    let delivered = last_sent(&outbox, &r.key, period)?.is_some();
    if delivered {
        let reason = fields.reason.trim();
        if reason.is_empty() {
            return Ok(refusal(
                StatusCode::UNPROCESSABLE_ENTITY,
                "reason",
                "本期已经上报过：更正请写明原因（会作为这一版的备注）",
            ));
        }
        fields.notes = if fields.notes.trim().is_empty() {
            format!("更正：{reason}")
        } else {
            format!("更正：{reason}；{}", fields.notes.trim())
        };
    }
    let (valid, checked) = entry::check(
        &web.office,
        r,
        &fields,
        &web.reporter,
        crate::today_beijing(),
    );
    let Some(valid) = valid else {
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(json!(checked))));
    };
    if !checked.warnings.is_empty() && (!fields.accept_warnings || fields.notes.trim().is_empty()) {
        return Ok((
            StatusCode::CONFLICT,
            Json(json!({"warnings": checked.warnings, "problems": [],
                "message": "有提示：确认无误请在备注中说明后再上报"})),
        ));
    }
    let mut outbox = outbox;
    outbox.enqueue(&[valid.to_wire()])?;
    outbox.discard_draft(&r.key, &fields.period, &form.id)?;
    drop(outbox);
    web.send_now.notify_one();
    tracing::info!(key = %r.key, period = %period, id = %valid.submission_id, "queued from the page");
    Ok((
        StatusCode::OK,
        Json(json!({
            "submission_id": valid.submission_id,
            "status": "pending",
            "status_zh": "已保存，待发送",
            "warnings": checked.warnings,
        })),
    ))
}

fn refusal(status: StatusCode, field: &str, reason: &str) -> (StatusCode, Json<Value>) {
    (
        status,
        Json(json!({"problems": [{"field": field, "reason": reason}], "warnings": []})),
    )
}
