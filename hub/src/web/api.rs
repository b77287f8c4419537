//! The dashboard's JSON and downloads. Every endpoint but sign-in needs a session; every area
//! asked about is checked with [`crate::access::authz::Authorizer::require`] for the user's viewer
//! identity (refusals land in the audit trail, as over gRPC), and every table comes from the same
//! engine call and the same [`crate::tables`] function as the gRPC answer and the command line.

use axum::{
    Json,
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use pingan_domain::{AreaCode, Span, question::MAX_TREND_PERIODS};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    ApiError, Web,
    brief::{area_brief, me_json},
    session,
};
use crate::{
    access::{authz::Action, users::User},
    error::HubError,
    query::{
        AssessQuery, CompareQuery, CompletenessQuery, DepartmentsQuery, Engine, Figures, Paging,
        QueryError, RollupQuery, Root, TrendQuery,
    },
    tables::{self, Table},
};

/// `GET /api/me`.
pub async fn me(State(web): State<Web>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let user = session::user(&web, &headers).await?;
    Ok(Json(me_json(&web, &user)))
}

/// The area asked about, after checking the user may read it.
/// A period or span as the page sends it, or 400 saying why not.
fn period_of<T>(period: &str) -> Result<T, ApiError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    period
        .parse()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("期间 {period:?}: {e}")))
}

/// `approved=1`: approved figures only (审核).
fn approved_asked(approved: &Option<String>) -> Figures {
    Figures::approved_only(approved.as_deref() == Some("1"))
}

/// Runs `f` (blocking: it may read the store and run polars) through the question gate as the
/// user, as gRPC questions run: one or two at a time per user, within a deadline.
async fn gated<T: Send + 'static>(
    web: &Web,
    user: &User,
    f: impl FnOnce() -> Result<T, QueryError> + Send + 'static,
) -> Result<T, ApiError> {
    let who = format!("web:{}:{}", user.name, user.identity().uri());
    web.hub
        .gate
        .run(&who, None, f)
        .await
        .map_err(|e| ApiError::from(HubError::from(e)))
}

fn readable_area(web: &Web, user: &User, code: &str) -> Result<AreaCode, ApiError> {
    let area: AreaCode = code
        .parse()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("区划代码 {code:?}: {e}")))?;
    web.hub
        .auth
        .require(&web.hub.store, Some(&user.identity()), Action::Read, area)
        .map_err(|s| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "无权查看 {area} {}：{} 只能查看 {} {} 及其下辖区域 ({})",
                    web.hub.areas.name(area),
                    user.name,
                    user.area,
                    web.hub.areas.name(user.area),
                    s.message()
                ),
            )
        })?;
    if web.hub.areas.get(area).is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("区划代码 {area} 不在本系统的区划表中"),
        ));
    }
    Ok(area)
}

/// Which area.
#[derive(Debug, Deserialize)]
pub struct AreaQuery {
    pub code: Option<String>,
}

/// `GET /api/area?code=`: an area, the trail to it from the user's own area, and its children
/// (the area picker walks down one level at a time, so it stays fast nationally).
pub async fn area(
    State(web): State<Web>,
    headers: HeaderMap,
    Query(q): Query<AreaQuery>,
) -> Result<Json<Value>, ApiError> {
    let user = session::user(&web, &headers).await?;
    let code = q.code.unwrap_or_else(|| user.area.to_string());
    let area = readable_area(&web, &user, &code)?;
    let mut trail = Vec::new();
    let mut at = Some(area);
    while let Some(a) = at {
        trail.push(area_brief(&web, a));
        if a == user.area || !a.is_within(user.area) {
            break;
        }
        at = a.parent();
    }
    trail.reverse();
    let children: Vec<Value> = web
        .hub
        .areas
        .children(area)
        .iter()
        .map(|c| area_brief(&web, *c))
        .collect();
    let mut out = area_brief(&web, area);
    out["trail"] = Value::Array(trail);
    out["children"] = Value::Array(children);
    Ok(Json(out))
}

/// `GET /api/catalogue`: the metrics and indicators a table may rank on.
pub async fn catalogue(
    State(web): State<Web>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    session::user(&web, &headers).await?;
    let c = &web.hub.catalogue;
    let group = |id: &str| c.group_of(id).map_or("其他", |g| g.zh.as_str()).to_owned();
    let metrics: Vec<Value> = c
        .metrics()
        .iter()
        .map(|m| json!({"id": m.id.as_str(), "zh": m.zh, "unit": m.unit, "group": group(m.id.as_str())}))
        .collect();
    let indicators: Vec<Value> = c
        .indicators()
        .iter()
        .map(|i| json!({"id": i.id, "zh": i.zh, "unit": i.unit, "group": group(&i.id)}))
        .collect();
    let forms: Vec<Value> = c
        .forms()
        .iter()
        .map(|f| json!({"id": f.id, "zh": f.zh, "period": f.period, "departments": f.departments, "levels": f.levels.len()}))
        .collect();
    // who the hub's 考核方案 assesses: the page computes 考核 by itself only where the areas
    // below the one shown are those (elsewhere on a button: a province's townships are thousands)
    let scheme = web.hub.engine.scheme();
    Ok(Json(json!({
        "metrics": metrics, "indicators": indicators, "forms": forms,
        "scheme": {"title": scheme.title, "level": scheme.level.map(|l| l.as_str())},
    })))
}

/// Which table, for which area, period and metric, in which format (as the page asks).
#[derive(Debug, Clone, Deserialize)]
pub struct TableQuery {
    pub view: View,
    pub area: String,
    pub period: String,
    /// For compare and trend; default: the catalogue's first metric.
    pub metric: Option<String>,
    /// For trend: how many periods (default 12, at most 120).
    pub periods: Option<u32>,
    /// For completeness: only this form (id); default: every form.
    pub form: Option<String>,
    #[serde(default)]
    pub format: Format,
    /// `1`: approved figures only (审核), for compare, trend and breakdown.
    #[serde(default)]
    pub approved: Option<String>,
}

/// The tables the dashboard shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum View {
    Compare,
    Trend,
    Completeness,
    Breakdown,
    Departments,
    Assess,
}

impl View {
    /// The view's Chinese name, for file names.
    fn zh(self) -> &'static str {
        match self {
            View::Compare => "排名对比",
            View::Trend => "走势",
            View::Completeness => "上报情况",
            View::Breakdown => "分类汇总",
            View::Departments => "部门",
            View::Assess => "考核",
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            View::Compare => "compare",
            View::Trend => "trend",
            View::Completeness => "completeness",
            View::Breakdown => "breakdown",
            View::Departments => "departments",
            View::Assess => "assess",
        }
    }
}

/// How a table is sent: JSON for the page, or a download.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Json,
    Xlsx,
    Csv,
}

/// A table's question, checked: the area the user may read and the span.
#[derive(Debug, Clone)]
pub struct TableAsk {
    pub view: View,
    pub area: AreaCode,
    pub span: Span,
    pub metric: Option<String>,
    pub periods: Option<u32>,
    pub form: Option<String>,
    pub figures: Figures,
}

/// Rows a table shows on the page (a province's late reporters can be tens of thousands); the
/// downloads always hold every row.
pub const PAGE_ROWS: usize = 1000;

/// Builds one table from the engine (blocking: it may run polars).
pub fn build_table(
    engine: &Engine,
    catalogue: &pingan_domain::Catalogue,
    q: &TableAsk,
) -> Result<Table, ApiError> {
    let metric = || {
        q.metric
            .clone()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| catalogue.metrics()[0].id.to_string())
    };
    let failed = |e: QueryError| ApiError::from(HubError::from(e));
    Ok(match q.view {
        View::Compare => tables::compare_table(
            &engine
                .compare(&CompareQuery {
                    root: Root::Area(q.area),
                    span: q.span,
                    metric: metric(),
                    level: None,
                    complete_only: false,
                    // every row: the page shows the first 1,000, downloads hold all
                    page: Paging::everything(),
                    figures: q.figures,
                    as_columns: false,
                })
                .map_err(failed)?
                .into(),
        ),
        View::Trend => tables::trend_table(
            &engine
                .trend(&TrendQuery {
                    root: Root::Area(q.area),
                    last: q.span,
                    periods: q.periods.unwrap_or(12).clamp(1, MAX_TREND_PERIODS),
                    metric: metric(),
                    figures: q.figures,
                    level: None,
                    as_columns: false,
                })
                .map_err(failed)?
                .into(),
        ),
        View::Completeness => tables::completeness_table(
            &engine
                .completeness(&CompletenessQuery {
                    area: q.area,
                    span: q.span,
                    level: None,
                    form: q.form.clone().filter(|f| !f.is_empty()),
                    page: Paging::everything(),
                })
                .map_err(failed)?
                .into(),
            None,
        ),
        View::Departments => department_view(engine, catalogue, q)?,
        View::Assess => tables::assess_table(
            &engine
                .assess(&AssessQuery {
                    area: q.area,
                    span: q.span,
                    scheme: None,
                    figures: q.figures,
                })
                .map_err(failed)?
                .into(),
        ),
        View::Breakdown => {
            let rollup = |span: Span| {
                engine
                    .rollup(&RollupQuery {
                        area: q.area,
                        span,
                        metrics: Vec::new(),
                        by_category: false,
                        figures: q.figures,
                    })
                    .map(Into::into)
                    .map_err(failed)
            };
            let now = rollup(q.span)?;
            let before = rollup(q.span.year_earlier())?;
            tables::breakdown_table(&now, &before, catalogue)
        }
    })
}

/// The departments (条) of the area: the metric picked when departments report it, else their
/// form's first.
fn department_view(
    engine: &Engine,
    catalogue: &pingan_domain::Catalogue,
    q: &TableAsk,
) -> Result<Table, ApiError> {
    let failed = |e: QueryError| ApiError::from(HubError::from(e));
    let metric = || {
        q.metric
            .clone()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| catalogue.metrics()[0].id.to_string())
    };
    // the metric picked, when departments report it; else their form's first
    let asked = q
        .metric
        .as_deref()
        .and_then(|m| catalogue.metric_id(m))
        .filter(|m| {
            catalogue
                .forms()
                .iter()
                .any(|f| f.departments && f.department_metrics().any(|x| x == m))
        });
    let metric = asked
        .or_else(|| {
            catalogue
                .forms()
                .iter()
                .find(|f| f.departments)
                .and_then(|f| f.department_metrics().next().cloned())
        })
        .map_or_else(metric, |m| m.to_string());
    Ok(tables::departments_table(
        &engine
            .departments(&DepartmentsQuery {
                area: q.area,
                span: q.span,
                metric,
                group: Default::default(),
                system: None,
            })
            .map_err(failed)?
            .into(),
    ))
}

/// Who to call beside each office that has not reported (or reported late).
fn with_contacts(mut table: Table, contacts: &crate::remind::contacts::Contacts) -> Table {
    table.columns.push(("contacts", "联系人".into()));
    for row in &mut table.rows {
        let people = match row.first() {
            Some(tables::Cell::Text(code)) => code
                .parse()
                .map(|c| {
                    contacts
                        .of(c)
                        .iter()
                        .map(|p| format!("{} {}", p.person, p.phone))
                        .collect::<Vec<_>>()
                        .join("，")
                })
                .unwrap_or_default(),
            _ => String::new(),
        };
        row.push(tables::Cell::Text(people));
    }
    table
}

/// Which reports to list for review.
#[derive(Debug, Clone, Deserialize)]
pub struct ReviewQuery {
    pub area: String,
    pub period: String,
    #[serde(default)]
    pub form: String,
}

fn review_item(i: &pingan_domain::pb::ReviewItem) -> Value {
    json!({
        "area": i.area, "name": i.name, "period": i.period, "revision": i.revision,
        "state": i.state, "by": i.by, "at": crate::clock::minute_text(i.at_ms), "reason": i.reason,
    })
}

/// `GET /api/review?area=&period=[&form=]`: 审核, the reports of the period below the area with
/// where each stands (the user must read the area).
pub async fn review_list(
    State(web): State<Web>,
    headers: HeaderMap,
    Query(q): Query<ReviewQuery>,
) -> Result<Json<Value>, ApiError> {
    let user = session::user(&web, &headers).await?;
    let area = readable_area(&web, &user, &q.area)?;
    let period: pingan_domain::Period = period_of(&q.period)?;
    let service = crate::grpc::review_service::ReviewService::new(web.hub.clone());
    let form = service.form(&q.form).map_err(ApiError::from)?.clone();
    let mut items = tokio::task::spawn_blocking(move || service.pending(area, period, &form))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(ApiError::from)?;
    // a province's month is tens of thousands of reports: what waits first, at most a page
    let (total, pending) = (
        items.len(),
        items.iter().filter(|i| i.state == "pending").count(),
    );
    items.sort_by_key(|i| i.state != "pending");
    items.truncate(PAGE_ROWS);
    Ok(Json(json!({
        "items": items.iter().map(review_item).collect::<Vec<_>>(),
        "total": total,
        "pending": pending,
    })))
}

/// What the page decides.
#[derive(Debug, Clone, Deserialize)]
pub struct ReviewDecision {
    pub targets: Vec<ReviewTargetJson>,
    pub approve: bool,
    #[serde(default)]
    pub reason: String,
}

/// One report, by its revision.
#[derive(Debug, Clone, Deserialize)]
pub struct ReviewTargetJson {
    pub area: String,
    pub period: String,
    pub revision: u32,
}

/// `POST /api/review`: approve or return reports as the signed-in leader.
pub async fn review_decide(
    State(web): State<Web>,
    headers: HeaderMap,
    Json(d): Json<ReviewDecision>,
) -> Result<Json<Value>, ApiError> {
    let user = session::user(&web, &headers).await?;
    let id = user.identity();
    let req = pingan_domain::pb::DecideRequest {
        targets: d
            .targets
            .into_iter()
            .map(|t| pingan_domain::pb::ReviewTarget {
                area: t.area,
                period: t.period,
                revision: t.revision,
            })
            .collect(),
        approve: d.approve,
        reason: d.reason,
        by: user.name.clone(),
    };
    let service = crate::grpc::review_service::ReviewService::new(web.hub.clone());
    let reply = tokio::task::spawn_blocking(move || service.decide_as(Some(&id), req))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(ApiError::from)?;
    Ok(Json(json!({
        "items": reply.items.iter().map(review_item).collect::<Vec<_>>(),
        "refused": reply.refused,
    })))
}

/// `GET /api/review/history?area=&period=`: every step of one office's report (each revision
/// as submitted, each decision), oldest first.
pub async fn review_history(
    State(web): State<Web>,
    headers: HeaderMap,
    Query(q): Query<ReviewQuery>,
) -> Result<Json<Value>, ApiError> {
    let user = session::user(&web, &headers).await?;
    let area = readable_area(&web, &user, &q.area)?;
    let period: pingan_domain::Period = period_of(&q.period)?;
    let service = crate::grpc::review_service::ReviewService::new(web.hub.clone());
    let steps = tokio::task::spawn_blocking(move || service.history_of(area, period))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(ApiError::from)?;
    Ok(Json(
        json!({ "steps": steps.iter().map(review_item).collect::<Vec<_>>() }),
    ))
}

/// A lock as the page shows it.
fn lock_json(l: &pingan_domain::pb::LockState) -> Value {
    json!({
        "area": l.area, "period": l.period, "form": l.form, "locked": l.locked, "by": l.by,
        "at": crate::clock::minute_text(l.at_ms), "reason": l.reason, "via": l.via,
    })
}

/// The period whose locks are asked about.
#[derive(Debug, Clone, Deserialize)]
pub struct LocksQuery {
    pub area: String,
    pub period: String,
}

/// `GET /api/locks?area=&period=`: 锁定, the locks of the period over or within the area (child
/// hubs' ones too), and every lock and unlock of it within the area.
pub async fn locks_list(
    State(web): State<Web>,
    headers: HeaderMap,
    Query(q): Query<LocksQuery>,
) -> Result<Json<Value>, ApiError> {
    let user = session::user(&web, &headers).await?;
    let area = readable_area(&web, &user, &q.area)?;
    let service = crate::grpc::lock_service::LockService::new(web.hub.clone());
    let req = pingan_domain::pb::LocksRequest {
        period: q.period.clone(),
        history: true,
    };
    let reply = tokio::task::spawn_blocking(move || service.list(req))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(ApiError::from)?;
    let related = |l: &&pingan_domain::pb::LockState| {
        l.area
            .parse::<AreaCode>()
            .is_ok_and(|root| root.is_within(area) || area.is_within(root))
    };
    Ok(Json(json!({
        "locks": reply.locks.iter().filter(related).map(lock_json).collect::<Vec<_>>(),
        "events": reply.events.iter().filter(related).map(lock_json).collect::<Vec<_>>(),
        "lock_after_days": reply.lock_after_days,
    })))
}

/// What the page asks: lock (关账, optionally forced) or unlock the area's period.
#[derive(Debug, Clone, Deserialize)]
pub struct LockAsk {
    pub area: String,
    pub period: String,
    #[serde(default)]
    pub form: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub force: bool,
    /// true: lock; false: unlock.
    pub lock: bool,
}

/// `POST /api/locks`: lock or unlock a form's period for the area's subtree as the signed-in
/// leader (refused while reports are missing unless forced, recorded either way).
pub async fn locks_set(
    State(web): State<Web>,
    headers: HeaderMap,
    Json(a): Json<LockAsk>,
) -> Result<Json<Value>, ApiError> {
    let user = session::user(&web, &headers).await?;
    let id = user.identity();
    let req = pingan_domain::pb::LockRequest {
        area: a.area,
        period: a.period,
        form: a.form,
        reason: a.reason,
        by: user.name.clone(),
        force: a.force,
    };
    let service = crate::grpc::lock_service::LockService::new(web.hub.clone());
    let reply = tokio::task::spawn_blocking(move || service.set_as(Some(&id), req, a.lock))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(ApiError::from)?;
    Ok(Json(
        json!({ "state": reply.state.as_ref().map(lock_json) }),
    ))
}

/// The area whose children's boundaries are asked for.
#[derive(Debug, Clone, Deserialize)]
pub struct BoundariesQuery {
    pub area: String,
}

/// `GET /api/boundaries?area=`: the GeoJSON of the area's children that have boundaries
/// (`serve --boundaries`); `{"features": []}` when none do (the page then shows no map).
pub async fn boundaries(
    State(web): State<Web>,
    headers: HeaderMap,
    Query(q): Query<BoundariesQuery>,
) -> Result<Json<Value>, ApiError> {
    let user = session::user(&web, &headers).await?;
    let area = readable_area(&web, &user, &q.area)?;
    Ok(Json(
        web.hub
            .boundaries
            .children_of(area, &web.hub.areas)
            .unwrap_or_else(|| json!({"type": "FeatureCollection", "features": []})),
    ))
}

/// Whose parts.
#[derive(Debug, Clone, Deserialize)]
pub struct PartsQuery {
    pub area: String,
    pub period: String,
    pub metric: String,
    #[serde(default)]
    pub approved: Option<String>,
}

/// `GET /api/parts?area=&period=&metric=[&approved=1]`: a metric's total broken down by its
/// category (纠纷类型, 专职/兼职, 星级 ...) for the area's subtree, for the breakdown's chart;
/// `parts` is empty for a metric without a category or an indicator.
pub async fn parts(
    State(web): State<Web>,
    headers: HeaderMap,
    Query(q): Query<PartsQuery>,
) -> Result<Json<Value>, ApiError> {
    let user = session::user(&web, &headers).await?;
    let area = readable_area(&web, &user, &q.area)?;
    let span: Span = period_of(&q.period)?;
    let Some(id) = web.hub.catalogue.metric_id(&q.metric) else {
        return Ok(Json(json!({"metric": q.metric, "parts": []})));
    };
    let figures = approved_asked(&q.approved);
    let engine = web.hub.engine.clone();
    let answer = gated(&web, &user, move || {
        engine.rollup(&RollupQuery {
            area,
            span,
            metrics: vec![id.to_string()],
            by_category: true,
            figures,
        })
    })
    .await?;
    let figure = answer.figures.into_iter().next();
    Ok(Json(json!({
        "metric": figure.as_ref().map(|f| f.metric.clone()),
        "name": figure.as_ref().map(|f| f.name.clone()),
        "unit": figure.as_ref().map(|f| f.unit.clone()),
        "total": figure.as_ref().and_then(|f| f.total),
        "parts": figure.map(|f| f.parts.into_iter().map(|p| json!({"part": p.part, "value": p.value})).collect::<Vec<_>>()).unwrap_or_default(),
    })))
}

/// Which cards.
#[derive(Debug, Clone, Deserialize)]
pub struct HeadlineQuery {
    pub area: String,
    pub period: String,
    #[serde(default)]
    pub approved: Option<String>,
}

/// `GET /api/headline?area=&period=[&approved=1]`: the first screen's cards (see
/// [`super::headline`]).
pub async fn headline(
    State(web): State<Web>,
    headers: HeaderMap,
    Query(q): Query<HeadlineQuery>,
) -> Result<Json<Value>, ApiError> {
    let user = session::user(&web, &headers).await?;
    let area = readable_area(&web, &user, &q.area)?;
    let span: Span = period_of(&q.period)?;
    let figures = approved_asked(&q.approved);
    let hub = web.hub.clone();
    let cards = gated(&web, &user, move || {
        let latest = hub
            .store
            .reader()
            .and_then(|r| r.latest_received_under(area, &span.reported()))
            .map_err(crate::query::QueryError::from)?;
        super::headline::cards(&hub.engine, &hub.catalogue, area, span, figures, latest)
    })
    .await?;
    Ok(Json(cards))
}

/// The bulletin asked for.
#[derive(Debug, Clone, Deserialize)]
pub struct BulletinQuery {
    pub area: String,
    pub period: String,
    /// `docx` (a download) or `html` (the print view, the default).
    #[serde(default)]
    pub format: String,
}

/// `GET /api/bulletin?area=&period=[&format=docx|html]`: 通报 of the area for the period, as a
/// Word document or a print-ready page (the user must read the area).
pub async fn bulletin(
    State(web): State<Web>,
    headers: HeaderMap,
    Query(q): Query<BulletinQuery>,
) -> Result<Response, ApiError> {
    let user = session::user(&web, &headers).await?;
    let area = readable_area(&web, &user, &q.area)?;
    let span: Span = period_of(&q.period)?;
    let hub = web.hub.clone();
    let composed = gated(&web, &user, move || {
        crate::bulletin::gather(&hub, area, span).map(|i| crate::bulletin::compose(&i))
    })
    .await?;
    let internal =
        |e: std::io::Error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    if q.format == "docx" {
        let bytes = crate::bulletin::docx(&composed).map_err(internal)?;
        let stem = format!(
            "{area}-{}-{}-通报",
            web.hub.areas.name(area),
            q.period.replace("..", "至")
        );
        let disposition = format!(
            "attachment; filename=\"{area}-{}-bulletin.docx\"; filename*=UTF-8''{}.docx",
            q.period.replace("..", "_"),
            percent_encode(&stem)
        );
        let mut response = bytes.into_response();
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            ),
        );
        h.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_str(&disposition)
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?,
        );
        return Ok(response);
    }
    let mut response = axum::response::Html(crate::bulletin::html(&composed)).into_response();
    // a page of its own: its inline style and pictures, no script
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'",
        ),
    );
    Ok(response)
}

/// Which reminder to send now.
#[derive(Debug, Clone, Deserialize)]
pub struct RemindQuery {
    pub area: String,
    pub period: String,
    /// The form's id; default: the default form.
    #[serde(default)]
    pub form: String,
}

/// `POST /api/remind?area=&period=[&form=]`: 催报 now, to every township within the area that
/// owes the form's period (the user must read the area).
pub async fn remind(
    State(web): State<Web>,
    headers: HeaderMap,
    Query(q): Query<RemindQuery>,
) -> Result<Json<Value>, ApiError> {
    let user = session::user(&web, &headers).await?;
    let area = readable_area(&web, &user, &q.area)?;
    let Some(cfg) = web.hub.reminders.clone() else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "本平台没有设置催报（serve --remind-webhook）",
        ));
    };
    let period: pingan_domain::Period = period_of(&q.period)?;
    let c = &web.hub.catalogue;
    let form = if q.form.is_empty() {
        Some(c.default_form())
    } else {
        c.form(&q.form)
    }
    .filter(|f| f.period == period.kind())
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("催报按报表的一期发送：{period} 不是所选报表的期间"),
        )
    })?
    .clone();
    let hub = web.hub.clone();
    tracing::info!(user = %user.name, %area, %period, form = %form.id, "reminder asked from the dashboard");
    let (told, offices) = crate::remind::send_now(&hub, &cfg, area, &form, period)
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()))?;
    Ok(Json(json!({
        "townships": told,
        "offices": offices,
        "message": format!("已向 {told} 个乡镇发送催报，涉及 {offices} 个未报单位"),
    })))
}

/// `GET /api/table?view=&area=&period=[&metric=][&format=xlsx|csv]`: a table as JSON for the
/// page, or as a spreadsheet download.
pub async fn table(
    State(web): State<Web>,
    headers: HeaderMap,
    Query(q): Query<TableQuery>,
) -> Result<Response, ApiError> {
    let user = session::user(&web, &headers).await?;
    let area = readable_area(&web, &user, &q.area)?;
    let span: Span = period_of(&q.period)?;
    let ask = TableAsk {
        view: q.view,
        area,
        span,
        metric: q.metric.clone(),
        periods: q.periods,
        form: q.form.clone(),
        figures: approved_asked(&q.approved),
    };
    let (engine, catalogue) = (web.hub.engine.clone(), web.hub.catalogue.clone());
    // through the same gate as gRPC: a user's questions one or two at a time, within a deadline
    let table = gated(&web, &user, move || {
        Ok(build_table(&engine, &catalogue, &ask))
    })
    .await??;
    let table = match (&web.hub.reminders, q.view) {
        (Some(r), View::Completeness) => with_contacts(table, &r.contacts),
        _ => table,
    };
    let stem = format!(
        "{area}-{}-{}-{}",
        web.hub.areas.name(area),
        q.period.replace("..", "至"),
        q.view.zh()
    );
    let (body, content_type, ext) = match q.format {
        Format::Xlsx => (
            table
                .to_xlsx()
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "xlsx",
        ),
        Format::Csv => (
            table.to_csv().into_bytes(),
            "text/csv; charset=utf-8",
            "csv",
        ),
        Format::Json => {
            let mut table = table;
            let total = table.rows.len();
            if total > PAGE_ROWS {
                table.rows.truncate(PAGE_ROWS);
                table.notes.push(format!(
                    "只显示前 {PAGE_ROWS} 行，共 {total} 行；下载 Excel 或 CSV 查看全部"
                ));
            }
            return Ok(Json(table.to_web_json()).into_response());
        }
    };
    let ascii = format!(
        "{area}-{}-{}.{ext}",
        q.period.replace("..", "_"),
        q.view.as_str()
    );
    let disposition = format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}.{ext}",
        percent_encode(&stem)
    );
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?,
    );
    Ok(response)
}

/// RFC 5987 percent-encoding of a file name (UTF-8 bytes; unreserved characters kept).
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_percent_encoded_utf8() {
        assert_eq!(
            percent_encode("510722-三台县"),
            "510722-%E4%B8%89%E5%8F%B0%E5%8E%BF"
        );
        assert_eq!(percent_encode("a b"), "a%20b");
    }
}
