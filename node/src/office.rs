//! What an office fills in: its reporters (its own area, the areas it was granted, or a
//! department), the forms each reports, their recent periods with deadlines, and where each
//! stands in the outbox (draft, waiting to be sent, delivered, refused). The entry page
//! ([`crate::web`]) shows this; the figures are checked by the one validator the hub uses.

use chrono::NaiveDate;
use pingan_domain::{
    AreaCode, Areas, Catalogue, Form, Period, Validator, deadline::Deadlines, department::valid_id,
    form::period_zh, pb, period::PeriodKind,
};
use pingan_outbox::{EntryState, Outbox, OutboxError};
use serde::Serialize;

/// Who the office reports for: an area, or a department (条) of an area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reporter {
    /// The outbox's key: the area's code, or the department's id.
    pub key: String,
    pub area: AreaCode,
    pub department: Option<String>,
    pub name: String,
}

/// Recent periods listed for each kind of form.
fn recent(kind: PeriodKind) -> i64 {
    match kind {
        PeriodKind::HalfMonth | PeriodKind::Week => 4,
        PeriodKind::Day => 7,
        _ => 3,
    }
}

/// A period as the office reads it: 2026年10月, 2026年10月上半月, 2026年第40周, 2026年10月1日.
pub fn period_label(p: Period) -> String {
    let text = p.to_string();
    match p.kind() {
        PeriodKind::Month => format!("{}年{}月", &text[..4], text[5..7].trim_start_matches('0')),
        PeriodKind::HalfMonth => format!(
            "{}年{}月{}",
            &text[..4],
            text[5..7].trim_start_matches('0'),
            if text.ends_with("H1") {
                "上半月"
            } else {
                "下半月"
            }
        ),
        PeriodKind::Week => format!("{}年第{}周", &text[..4], text[6..].trim_start_matches('0')),
        PeriodKind::Day => p.first_day().format("%Y年%-m月%-d日").to_string(),
        _ => text,
    }
}

pub use pingan_domain::deadline::{due_text, minute_text};

/// Where one (reporter, form, period) stands.
#[derive(Debug, Clone, Serialize)]
pub struct PeriodStatus {
    pub period: String,
    pub label: String,
    /// When it is due, 北京时间.
    pub due: String,
    /// due, late, draft, pending, delivered, refused
    pub status: &'static str,
    pub status_zh: String,
    pub revision: Option<u32>,
    /// When the hub accepted it (delivered) or it was written (pending).
    pub at: Option<String>,
    pub reason: Option<String>,
    pub submission_id: Option<String>,
    pub draft: bool,
}

/// One form of a reporter with its recent periods.
#[derive(Debug, Clone, Serialize)]
pub struct FormPeriods {
    pub id: String,
    pub zh: String,
    pub period_zh: &'static str,
    pub periods: Vec<PeriodStatus>,
}

/// The office: who it reports for, the catalogue, the registry (names, validity) and deadlines.
#[derive(Debug)]
pub struct Office {
    pub reporters: Vec<Reporter>,
    pub catalogue: Catalogue,
    pub areas: Option<Areas>,
    pub deadlines: Deadlines,
}

impl Office {
    /// The reporter of `key`, if the office reports for it.
    pub fn reporter(&self, key: &str) -> Option<&Reporter> {
        self.reporters.iter().find(|r| r.key == key)
    }

    /// The forms a reporter fills in.
    pub fn forms_of(&self, r: &Reporter) -> Vec<&Form> {
        self.catalogue
            .forms()
            .iter()
            .filter(|f| match r.department {
                Some(_) => f.departments,
                None => f.reported_by(r.area.level()),
            })
            .collect()
    }

    /// The form `id` if `r` fills it in.
    pub fn form_of(&self, r: &Reporter, id: &str) -> Option<&Form> {
        self.forms_of(r).into_iter().find(|f| f.id == id)
    }

    /// The metrics `r` fills in on `form`, in order.
    pub fn metrics_of<'a>(&self, r: &Reporter, form: &'a Form) -> Vec<&'a pingan_domain::MetricId> {
        match r.department {
            Some(_) => form.department_metrics().collect(),
            None => form.metrics_for(r.area.level()).collect(),
        }
    }

    /// When a report of `form` for `period` is due (ms since the epoch).
    pub fn due_ms(&self, form: &Form, period: Period) -> i64 {
        self.deadlines.due_ms_of(form.deadline, period)
    }

    /// The recent periods of `form` that have ended by `today` (and, for a form with 敏感节点,
    /// are among them), newest first.
    pub fn periods(&self, form: &Form, today: NaiveDate) -> Vec<Period> {
        let mut p = Period::containing(form.period, today);
        let mut out = Vec::new();
        // at most a year back for a form with 敏感节点 (days outside them are skipped)
        for _ in 0..400 {
            if out.len() as i64 >= recent(form.period) {
                break;
            }
            if p.open_for_reports_on(today) && form.expected_in(p) {
                out.push(p);
            }
            p = p.previous();
        }
        out
    }

    /// Where (reporter, form, period) stands, from the outbox and the drafts.
    pub fn status(
        &self,
        outbox: &Outbox,
        r: &Reporter,
        form: &Form,
        period: Period,
        now_ms: i64,
    ) -> Result<PeriodStatus, OutboxError> {
        let p = period.to_string();
        let due = self.due_ms(form, period);
        let draft = outbox.draft(&r.key, &p, &form.id)?.is_some();
        let history = outbox.history(&r.key, &p)?;
        let last = history
            .iter()
            .rev()
            .find(|(e, _)| e.state != EntryState::Dropped);
        let mut s = PeriodStatus {
            period: p,
            label: period_label(period),
            due: due_text(due),
            status: "due",
            status_zh: format!("待填报（{} 前）", due_text(due)),
            revision: None,
            at: None,
            reason: None,
            submission_id: None,
            draft,
        };
        let delivered = history
            .iter()
            .rev()
            .find(|(e, _)| e.state == EntryState::Delivered);
        match last {
            Some((e, _)) => {
                s.submission_id = Some(e.submission_id.clone());
                s.at = Some(minute_text(e.updated_at_ms));
                match e.state {
                    EntryState::Pending => {
                        s.status = "pending";
                        s.status_zh = "已保存，待发送".into();
                    }
                    EntryState::Failed => {
                        s.status = "refused";
                        s.status_zh = "被拒收".into();
                        s.reason = e.last_error.clone();
                    }
                    _ => {
                        s.status = "delivered";
                        s.revision = e.revision;
                        let first = history
                            .iter()
                            .find(|(e, _)| e.state == EntryState::Delivered);
                        let late = first.is_some_and(|(f, _)| f.created_at_ms > due);
                        s.status_zh = format!(
                            "已上报 第 {} 版{}",
                            e.revision.unwrap_or_default(),
                            if late { "（迟报）" } else { "" }
                        );
                    }
                }
                if e.state != EntryState::Delivered
                    && let Some((d, _)) = delivered
                {
                    s.revision = d.revision;
                }
            }
            None if draft => {
                s.status = "draft";
                s.status_zh = "草稿，未上报".into();
            }
            None if now_ms > due => {
                s.status = "late";
                s.status_zh = format!("已逾期（应于 {} 前上报）", due_text(due));
            }
            None => {}
        }
        Ok(s)
    }

    /// A reporter's forms with their recent periods and where each stands.
    pub fn overview(
        &self,
        outbox: &Outbox,
        r: &Reporter,
        today: NaiveDate,
        now_ms: i64,
    ) -> Result<Vec<FormPeriods>, OutboxError> {
        let mut out = Vec::new();
        for f in self.forms_of(r) {
            let mut periods = Vec::new();
            for p in self.periods(f, today) {
                periods.push(self.status(outbox, r, f, p, now_ms)?);
            }
            if periods.is_empty() {
                continue;
            }
            out.push(FormPeriods {
                id: f.id.clone(),
                zh: f.zh.clone(),
                period_zh: period_zh(f.period),
                periods,
            });
        }
        Ok(out)
    }

    /// A validator for today, with the registry when the office has one.
    pub fn validator(&self, today: NaiveDate) -> Validator<'_> {
        Validator {
            catalogue: &self.catalogue,
            areas: self.areas.as_ref(),
            today,
            departments: None,
        }
    }

    /// The report the page's fields describe (not yet checked).
    pub fn wire(&self, r: &Reporter, form: &Form, period: Period, entry: &Entry) -> pb::Report {
        pb::Report {
            submission_id: crate::new_submission_id(),
            area: r.area.to_string(),
            period: period.to_string(),
            values: entry.values.clone(),
            zero_report: entry.zero,
            notes: entry.notes.clone(),
            reporter: entry.reporter.clone(),
            rollup: None,
            form: form.id.clone(),
            department: r.department.clone().unwrap_or_default(),
            packed: None,
        }
    }
}

/// The figures of one form as the page sends them, parsed.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub values: Vec<pb::MetricValue>,
    pub zero: bool,
    pub notes: String,
    pub reporter: String,
}

/// Reads a reporter given on the command line: an area code, or `ID@AREA` for a department.
pub fn parse_reporter(s: &str, areas: Option<&Areas>) -> anyhow::Result<Reporter> {
    let s = s.trim();
    if let Some((id, area)) = s.split_once('@') {
        anyhow::ensure!(
            valid_id(id),
            "部门代码「{id}」应以小写字母开头，只含小写字母、数字、- 和 _，例如 sw-510722"
        );
        let area: AreaCode = area.parse()?;
        return Ok(Reporter {
            key: id.to_owned(),
            area,
            department: Some(id.to_owned()),
            name: format!(
                "{id}（{}）",
                areas.map(|a| a.name(area)).unwrap_or_default()
            ),
        });
    }
    let area: AreaCode = s.parse()?;
    if let Some(a) = areas {
        anyhow::ensure!(a.get(area).is_some(), "区划代码 {area} 不存在");
    }
    Ok(Reporter {
        key: area.to_string(),
        area,
        department: None,
        name: areas
            .map(|a| a.name(area))
            .unwrap_or_else(|| area.to_string()),
    })
}

/// A client of the hub's review service (审核).
pub type ReviewClient =
    pingan_domain::pb::review_service_client::ReviewServiceClient<tonic::transport::Channel>;

/// Adds the hub's review (审核) to `r`'s delivered periods: 待审核, 已审核, or 退回 with who
/// returned it and why (the office corrects and resubmits). Says nothing more when the hub
/// cannot be asked (2 s per question): the periods stand as the outbox knows them.
pub async fn with_reviews(client: &ReviewClient, r: &Reporter, forms: &mut [FormPeriods]) {
    for f in forms.iter_mut() {
        for p in f.periods.iter_mut().filter(|p| p.status == "delivered") {
            let mut client = client.clone();
            let ask = client.status(pingan_domain::pb::ReviewStatusRequest {
                area: r.key.clone(),
                period: p.period.clone(),
            });
            let Ok(Ok(item)) = tokio::time::timeout(std::time::Duration::from_secs(2), ask).await
            else {
                return;
            };
            let item = item.into_inner();
            if Some(item.revision) != p.revision {
                continue;
            }
            match item.state.as_str() {
                "returned" => {
                    p.status = "returned";
                    p.status_zh = format!(
                        "第 {} 版被退回（{}）：请更正后重新上报",
                        item.revision, item.by
                    );
                    p.reason = Some(item.reason);
                }
                "approved" => p.status_zh.push_str(" · 已审核"),
                "pending" => p.status_zh.push_str(" · 待审核"),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_of_a_day_is_24_00() {
        let due = Deadlines::default().due_ms_of(Default::default(), "2026-11".parse().unwrap());
        assert_eq!(due_text(due), "2026-12-05 24:00");
    }

    #[test]
    fn periods_read_as_offices_say_them() {
        for (p, label) in [
            ("2026-10", "2026年10月"),
            ("2026-01-H2", "2026年1月下半月"),
            ("2026-W05", "2026年第5周"),
            ("2026-10-01", "2026年10月1日"),
        ] {
            assert_eq!(period_label(p.parse().unwrap()), label);
        }
    }

    #[test]
    fn an_office_lists_its_forms_recent_periods_newest_first() {
        let catalogue = Catalogue::builtin();
        let areas = pingan_domain::fixtures::santai_areas();
        let office = Office {
            reporters: vec![parse_reporter("510722101", Some(&areas)).unwrap()],
            catalogue,
            areas: Some(areas),
            deadlines: Deadlines::default(),
        };
        let town = &office.reporters[0];
        assert_eq!(town.name, "潼川镇");
        let forms: Vec<&str> = office
            .forms_of(town)
            .iter()
            .map(|f| f.id.as_str())
            .collect();
        assert!(forms.contains(&"zongzhi_monthly") && forms.contains(&"disputes_half_monthly"));
        let today = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
        let monthly = office.form_of(town, "zongzhi_monthly").unwrap();
        let months: Vec<String> = office
            .periods(monthly, today)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(months, ["2026-11", "2026-10", "2026-09"]);
        let half = office.form_of(town, "disputes_half_monthly").unwrap();
        assert_eq!(office.periods(half, today)[0].to_string(), "2026-11-H2");
        // the daily form is expected on its 敏感节点 only
        let daily = office.form_of(town, "keypersons_daily").unwrap();
        assert_eq!(office.periods(daily, today)[0].to_string(), "2026-10-08");
    }
}
