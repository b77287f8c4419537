//! 催报: telling the offices that have not reported. On a schedule per form (by default at 09:00
//! the day before its deadline, and at 09:00 after it), the hub posts to a webhook, per
//! township, who has not reported and whom to call: as a 企业微信 group robot's markdown, a 钉钉
//! group robot's markdown (with @ the people whose ids the contacts list gives), or plain JSON.
//! Each attempt is recorded with its answer; a failure is retried with backoff; the sending runs
//! on its own task, so a webhook that hangs or fails never touches ingest.
//!
//! - [`contacts`]: who to tell in each area (CSV).
//! - [`send`]: one HTTP POST.

pub mod contacts;
pub mod send;

use std::time::Duration;

use pingan_domain::{AreaCode, Form, Level, Period, Span, deadline::Deadlines, question::Paging};
use serde_json::{Value, json};

use crate::{
    query::CompletenessQuery,
    state::HubState,
    store::{ReminderSend, lease::Lease},
};
use contacts::Contacts;

/// The message format of the webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// 企业微信 group robot (markdown).
    Wecom,
    /// 钉钉 group robot (markdown, with @).
    Dingtalk,
    /// `{"kind": "pingan.reminder", ...}`.
    Json,
}

/// How reminders are sent.
#[derive(Debug, Clone)]
pub struct RemindConfig {
    pub webhook: String,
    pub format: Format,
    pub contacts: Contacts,
    pub deadlines: Deadlines,
    /// Days before the deadline of the first reminder (at `hour`).
    pub before_days: u32,
    /// Hour of the day (北京时间) reminders go.
    pub hour: u32,
    pub attempts: u32,
    pub first_backoff: Duration,
    pub timeout: Duration,
}

const HOUR_MS: i64 = 3600 * 1000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// One township's offices that owe a form's period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub township: AreaCode,
    pub township_name: String,
    pub offices: Vec<(AreaCode, String)>,
}

impl RemindConfig {
    /// When a form's period is due, and the two scheduled reminders: the day(s) before at
    /// `hour`, and the first `hour` after the deadline.
    pub fn moments(&self, form: &Form, period: Period) -> (i64, i64, i64) {
        let due = self.deadlines.due_ms_of(form.deadline, period);
        let offset = 8 * HOUR_MS; // 北京时间
        let day_start = |ms: i64| (ms + offset).div_euclid(DAY_MS) * DAY_MS - offset;
        let hour = i64::from(self.hour) * HOUR_MS;
        let before = day_start(due - 1) - i64::from(self.before_days) * DAY_MS + hour;
        let mut after = day_start(due) + hour;
        if after < due {
            after += DAY_MS;
        }
        (due, before, after)
    }
}

/// The offices of each township that owe `form`'s `period`, as completeness names them.
pub fn missing_by_township(
    state: &HubState,
    form: &Form,
    period: Period,
    only: Option<AreaCode>,
) -> anyhow::Result<Vec<Missing>> {
    let mut out = Vec::new();
    let townships = state
        .areas
        .iter()
        .filter(|a| a.code.level() == Level::Township && only.is_none_or(|o| a.code.is_within(o)))
        .map(|a| a.code)
        .collect::<Vec<_>>();
    for t in townships {
        let answer = state.engine.completeness(&CompletenessQuery {
            area: t,
            span: Span::single(period),
            level: None,
            form: Some(form.id.clone()),
            page: Paging::everything(),
        });
        let answer = match answer {
            Ok(a) => a,
            // a form the township's offices do not report: nobody owes it here
            Err(crate::query::QueryError::BadRequest(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        if answer.missing.is_empty() {
            continue;
        }
        out.push(Missing {
            township: t,
            township_name: state.areas.name(t),
            offices: answer
                .missing
                .iter()
                .map(|r| (r.code, r.name.clone()))
                .collect(),
        });
    }
    Ok(out)
}

/// The message for one township, in the webhook's format.
pub fn message(cfg: &RemindConfig, form: &Form, period: Period, due: &str, m: &Missing) -> Value {
    let mut lines = vec![format!(
        "**催报：{} {} {}**\n截止：{due}（北京时间）\n{} 个单位尚未上报：",
        m.township_name,
        form.zh,
        period,
        m.offices.len()
    )];
    let (mut mobiles, mut ding_ids) = (Vec::new(), Vec::new());
    for (code, name) in &m.offices {
        let people: Vec<String> = cfg
            .contacts
            .of(*code)
            .iter()
            .map(|c| {
                if !c.phone.is_empty() {
                    mobiles.push(c.phone.clone());
                }
                if !c.dingtalk.is_empty() {
                    ding_ids.push(c.dingtalk.clone());
                }
                let at = match cfg.format {
                    Format::Wecom if !c.wecom.is_empty() => format!(" <@{}>", c.wecom),
                    Format::Dingtalk if !c.phone.is_empty() => format!(" @{}", c.phone),
                    _ => String::new(),
                };
                format!("{} {}{at}", c.person, c.phone)
            })
            .collect();
        let who = if people.is_empty() {
            "（无联系人）".to_owned()
        } else {
            people.join("，")
        };
        lines.push(format!("- {name}（{code}）：{who}"));
    }
    let text = lines.join("\n");
    match cfg.format {
        Format::Wecom => json!({"msgtype": "markdown", "markdown": {"content": text}}),
        Format::Dingtalk => json!({
            "msgtype": "markdown",
            "markdown": {"title": format!("催报 {} {}", m.township_name, form.zh), "text": text},
            "at": {"atMobiles": mobiles, "atUserIds": ding_ids, "isAtAll": false},
        }),
        Format::Json => json!({
            "kind": "pingan.reminder",
            "form": form.id, "form_title": form.zh, "period": period.to_string(), "due": due,
            "township": {"code": m.township.to_string(), "name": m.township_name},
            "missing": m.offices.iter().map(|(code, name)| json!({
                "code": code.to_string(), "name": name, "contacts": cfg.contacts.of(*code),
            })).collect::<Vec<_>>(),
        }),
    }
}

/// Sends one township's reminder, retrying with backoff; every attempt is recorded. Whether
/// it was delivered.
pub async fn send_one(
    state: &HubState,
    cfg: &RemindConfig,
    moment: &str,
    form: &Form,
    period: Period,
    m: &Missing,
) -> bool {
    let (due, _, _) = cfg.moments(form, period);
    let body = message(
        cfg,
        form,
        period,
        &pingan_domain::deadline::due_text(due),
        m,
    );
    let mut wait = cfg.first_backoff;
    for attempt in 1..=cfg.attempts.max(1) {
        let answer = send::post_json(&cfg.webhook, &body, cfg.timeout).await;
        let (ok, result) = match &answer {
            Ok(a) => (a.ok(), format!("HTTP {} {}", a.status, a.body)),
            Err(e) => (false, e.clone()),
        };
        let row = ReminderSend {
            at_ms: state.clock.now_ms(),
            form: form.id.clone(),
            period: period.to_string(),
            moment: moment.to_owned(),
            township: m.township.to_string(),
            attempt,
            ok,
            result,
            offices: m.offices.len() as u32,
        };
        if let Err(e) = state.store.record_reminder(&row) {
            tracing::error!(error = %e, "could not record a reminder");
        }
        if ok {
            return true;
        }
        tracing::warn!(township = %m.township, attempt, result = %row.result, "reminder not delivered");
        if attempt < cfg.attempts {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(300));
        }
    }
    false
}

/// One pass of the schedule at `now_ms`: every form's recent periods whose reminder time has
/// come (within the last day) and that was not sent yet. Returns how many were delivered.
pub async fn pass(state: &HubState, cfg: &RemindConfig, now_ms: i64) -> usize {
    let mut delivered = 0;
    let today = chrono::DateTime::from_timestamp_millis(now_ms)
        .map(|t| {
            t.with_timezone(&pingan_domain::deadline::beijing())
                .date_naive()
        })
        .unwrap_or_default();
    for form in state
        .catalogue
        .forms()
        .iter()
        .filter(|f| !f.levels.is_empty())
    {
        let mut p = current_of(form, today);
        for _ in 0..3 {
            p = p.previous();
            if !form.expected_in(p) {
                continue;
            }
            let (_, before, after) = cfg.moments(form, p);
            for (moment, at) in [("before", before), ("after", after)] {
                if now_ms < at || now_ms >= at + DAY_MS {
                    continue;
                }
                delivered += send_moment(state, cfg, moment, form, p).await;
            }
        }
        // the period running now: its reminder before the deadline may be due
        let now_period = current_of(form, today);
        let (_, before, _) = cfg.moments(form, now_period);
        if now_ms >= before && now_ms < before + DAY_MS && form.expected_in(now_period) {
            delivered += send_moment(state, cfg, "before", form, now_period).await;
        }
    }
    delivered
}

/// The period of `form`'s kind that `today` is in.
fn current_of(form: &Form, today: chrono::NaiveDate) -> Period {
    Period::containing(form.period, today)
}

/// Sends a scheduled reminder of a form's period to every township that owes it and was not
/// told yet.
async fn send_moment(
    state: &HubState,
    cfg: &RemindConfig,
    moment: &str,
    form: &Form,
    p: Period,
) -> usize {
    let missing = match missing_by_township(state, form, p, None) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "reminders: who has not reported");
            return 0;
        }
    };
    let mut delivered = 0;
    for m in missing {
        let done = state
            .store
            .reminder_sent(&form.id, &p.to_string(), moment, &m.township.to_string())
            .unwrap_or(false);
        if done {
            continue;
        }
        if send_one(state, cfg, moment, form, p, &m).await {
            delivered += 1;
        }
    }
    delivered
}

/// Sends reminders now (the dashboard's button) of `form`'s `period` to every township within
/// `area` that owes it: (townships told, offices named).
pub async fn send_now(
    state: &HubState,
    cfg: &RemindConfig,
    area: AreaCode,
    form: &Form,
    period: Period,
) -> anyhow::Result<(usize, usize)> {
    let missing = missing_by_township(state, form, period, Some(area))?;
    let (mut told, mut offices) = (0, 0);
    for m in &missing {
        if send_one(state, cfg, "now", form, period, m).await {
            told += 1;
            offices += m.offices.len();
        }
    }
    anyhow::ensure!(
        told == missing.len(),
        "{} 个乡镇的催报没有送达（已重试，见 reminder_sends）",
        missing.len() - told
    );
    Ok((told, offices))
}

/// Runs the schedule every minute until `shutdown`, while `lease` is held (with several hub
/// processes on one store, one of them sends).
pub fn start(
    state: HubState,
    cfg: RemindConfig,
    lease: Lease,
    shutdown: pingan_outbox::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if lease.is_held() {
                let n = pass(&state, &cfg, state.clock.now_ms()).await;
                if n > 0 {
                    tracing::info!(sent = n, "reminders sent");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(60)) => {}
                () = shutdown.cancelled() => return,
            }
        }
    })
}
