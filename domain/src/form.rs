//! Report forms (报表): which offices report which metrics, for which kind of period, by when.
//! A form is data in the catalogue (`[[form]]`): an id, a Chinese title, its sections of metrics
//! in display order (a section may be filled by some levels only), its period kind, its deadline
//! and its reporters (levels).
//!
//! Each level reports at most one form per kind of period, so a stored report's form follows
//! from its area's level and its period: the store keeps (area, period) as its key and a report
//! that names no form (every node before forms) is the form its level reports for that period.
//! No metric is in two forms one level reports for months and half-months, so adding every
//! form's figures into the territorial totals never counts a figure twice.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::{Level, MetricId, Period, Span, period::PeriodKind};

/// When a form's reports are due, in 北京时间. Omitted parts take the hub's configured defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deadline {
    /// Months and half-months: by the end of this day after the period ends (5: the 5th of the
    /// next month for a monthly form). Weeks: days after the week's Sunday.
    pub day: Option<u32>,
    /// Days: by this hour of the day itself (seed 001: 每天12点以前报告 is 12).
    pub hour: Option<u32>,
}

/// A group of a form's metrics shown together, in order.
#[derive(Debug, Clone)]
pub struct Section {
    pub zh: String,
    pub metrics: Vec<MetricId>,
    /// The levels that fill this section; `None`: every reporter of the form.
    pub levels: Option<Vec<Level>>,
}

/// A report form.
#[derive(Debug, Clone)]
pub struct Form {
    pub id: String,
    pub zh: String,
    pub period: PeriodKind,
    pub deadline: Deadline,
    /// Levels whose offices report it (and are expected to).
    pub levels: Vec<Level>,
    /// Reported by departments (条, see [`crate::department`]) instead of, or as well as, levels.
    pub departments: bool,
    /// 审核: a report of this form from below the reviewing level is 待审核 until a leader of a
    /// level above approves it (已审核) or returns it (退回) with a reason.
    pub review: bool,
    pub sections: Vec<Section>,
    /// The form a report that names none is, for its level and period (every node before forms
    /// sent only this one).
    pub default: bool,
    /// Where in the seeds the form comes from, for the operator.
    pub source: String,
    /// When the form is expected (敏感节点 for a daily form, e.g. 2026-09-28..2026-10-08); empty:
    /// every period of its kind. Reports outside are taken all the same.
    pub active: Vec<Span>,
    /// The catalogue slots of the metrics each level fills in (by `Level as usize`), and those
    /// a department fills in last: what [`Form::asks_slot`] answers from, once per value of
    /// every report validated. Filled in by the catalogue that holds the form.
    pub(crate) asked: Vec<crate::catalogue::Slots>,
}

impl Form {
    /// Whether offices of `level` report this form.
    pub fn reported_by(&self, level: Level) -> bool {
        self.levels.contains(&level)
    }

    /// The metrics `level` fills in, in display order.
    pub fn metrics_for(&self, level: Level) -> impl Iterator<Item = &MetricId> {
        self.sections
            .iter()
            .filter(move |s| s.levels.as_ref().is_none_or(|l| l.contains(&level)))
            .flat_map(|s| &s.metrics)
    }

    /// The metrics a department fills in, in display order (every section's).
    pub fn department_metrics(&self) -> impl Iterator<Item = &MetricId> {
        self.sections.iter().flat_map(|s| &s.metrics)
    }

    /// Whether `level` fills in `metric` on this form.
    pub fn asks(&self, level: Level, metric: &MetricId) -> bool {
        self.metrics_for(level).any(|m| m == metric)
    }

    /// Whether `level` fills in the metric at `slot` of the form's catalogue
    /// ([`crate::Catalogue::metric_slot`]): [`Form::asks`] without comparing ids.
    pub fn asks_slot(&self, level: Level, slot: usize) -> bool {
        self.asked
            .get(level as usize)
            .is_some_and(|s| s.contains(slot))
    }

    /// Whether a department fills in the metric at `slot` of the form's catalogue.
    pub fn asks_department_slot(&self, slot: usize) -> bool {
        self.departments
            && self
                .asked
                .get(Level::ALL.len())
                .is_some_and(|s| s.contains(slot))
    }

    /// Whether the form's reporters are expected to report for `p` (a period of its kind).
    pub fn expected_in(&self, p: Period) -> bool {
        self.active.is_empty() || self.active.iter().any(|s| s.from <= p && p <= s.to)
    }

    /// As users read it: `综治工作月报 (zongzhi_monthly)`.
    pub fn label(&self) -> String {
        format!("{} ({})", self.zh, self.id)
    }
}

/// What reports are compared for the same time: months and their half-months add up together;
/// weeks and days are each read on their own.
pub fn family(kind: PeriodKind) -> u8 {
    match kind {
        PeriodKind::Week => 1,
        PeriodKind::Day => 2,
        _ => 0,
    }
}

/// The Chinese name of a kind of period, as a form's heading says it.
pub fn period_zh(kind: PeriodKind) -> &'static str {
    match kind {
        PeriodKind::Year => "年报",
        PeriodKind::Half => "半年报",
        PeriodKind::Quarter => "季报",
        PeriodKind::Month => "月报",
        PeriodKind::HalfMonth => "半月报",
        PeriodKind::Week => "周报",
        PeriodKind::Day => "日报",
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FormFile {
    id: String,
    zh: String,
    period: PeriodKind,
    #[serde(default)]
    deadline: Deadline,
    #[serde(default)]
    levels: Vec<Level>,
    #[serde(default)]
    departments: bool,
    #[serde(default)]
    review: bool,
    #[serde(default)]
    default: bool,
    #[serde(default)]
    source: String,
    #[serde(default)]
    active: Vec<String>,
    section: Vec<SectionFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SectionFile {
    zh: String,
    metrics: Vec<String>,
    levels: Option<Vec<Level>>,
}

/// The forms of a catalogue, checked: known, current metrics; reportable periods; one form per
/// level and kind of period; no metric twice for a level within a family of periods; one
/// default form, monthly.
pub(crate) fn checked_forms(
    file: Vec<FormFile>,
    metric: &dyn Fn(&str) -> Result<MetricId, String>,
) -> Result<Vec<Form>, String> {
    let mut forms: Vec<Form> = Vec::new();
    for f in file {
        if forms.iter().any(|g| g.id == f.id) {
            return Err(format!("报表 {:?} 定义了两次", f.id));
        }
        if matches!(
            f.period,
            PeriodKind::Year | PeriodKind::Half | PeriodKind::Quarter
        ) {
            return Err(format!(
                "报表 {:?}：period 应为 month、half_month、week 或 day（季度和年度由月度汇总）",
                f.id
            ));
        }
        if f.levels.is_empty() && !f.departments {
            return Err(format!(
                "报表 {:?} 没有填报单位（levels，或 departments = true）",
                f.id
            ));
        }
        if f.default && (f.period != PeriodKind::Month || f.levels.is_empty()) {
            return Err(format!("报表 {:?}：默认报表应为各级区划填报的月报", f.id));
        }
        let mut active = Vec::new();
        for a in &f.active {
            let span: Span = a
                .parse()
                .map_err(|e| format!("报表 {:?} 的 active「{a}」：{e}", f.id))?;
            if span.base_kind() != f.period {
                return Err(format!(
                    "报表 {:?} 的 active「{a}」应由{}的期间组成",
                    f.id,
                    period_zh(f.period)
                ));
            }
            active.push(span);
        }
        let mut sections = Vec::new();
        for s in f.section {
            if let Some(levels) = &s.levels
                && let Some(l) = levels.iter().find(|l| !f.levels.contains(l))
            {
                return Err(format!(
                    "报表 {:?} 的「{}」部分由{}（{l}）填报，但该层级不报此表",
                    f.id,
                    s.zh,
                    l.zh()
                ));
            }
            let metrics = s
                .metrics
                .iter()
                .map(|m| metric(m).map_err(|e| format!("报表 {:?}：{e}", f.id)))
                .collect::<Result<Vec<_>, _>>()?;
            sections.push(Section {
                zh: s.zh,
                metrics,
                levels: s.levels,
            });
        }
        forms.push(Form {
            id: f.id,
            zh: f.zh,
            period: f.period,
            deadline: f.deadline,
            levels: f.levels,
            departments: f.departments,
            review: f.review,
            sections,
            default: f.default,
            source: f.source,
            active,
            asked: Vec::new(),
        });
    }
    check_one_form_per_level_and_period(&forms)?;
    check_no_metric_twice(&forms)?;
    match forms.iter().filter(|f| f.default).count() {
        1 => Ok(forms),
        0 => Err("没有默认报表：应有一张 default = true 的月报".into()),
        _ => Err("默认报表（default = true）只能有一张".into()),
    }
}

fn check_one_form_per_level_and_period(forms: &[Form]) -> Result<(), String> {
    let mut seen: HashMap<(Level, PeriodKind), &str> = HashMap::new();
    let mut departments: HashMap<PeriodKind, &str> = HashMap::new();
    for f in forms {
        if f.departments
            && let Some(other) = departments.insert(f.period, &f.id)
        {
            return Err(format!(
                "部门按{}上报了两张报表（{other:?} 和 {:?}）：每种期间只报一张表",
                period_zh(f.period),
                f.id
            ));
        }
        for l in &f.levels {
            if let Some(other) = seen.insert((*l, f.period), &f.id) {
                return Err(format!(
                    "{}（{l}）按{}上报了两张报表（{other:?} 和 {:?}）：每个层级每种期间只报一张表",
                    l.zh(),
                    period_zh(f.period),
                    f.id
                ));
            }
        }
    }
    Ok(())
}

fn check_no_metric_twice(forms: &[Form]) -> Result<(), String> {
    let mut by_departments: HashMap<(u8, &MetricId), &str> = HashMap::new();
    for f in forms.iter().filter(|f| f.departments) {
        for m in f.department_metrics() {
            match by_departments.insert((family(f.period), m), &f.id) {
                Some(other) if other == f.id => {
                    return Err(format!("报表 {:?}：指标 {m} 列了两次", f.id));
                }
                Some(other) => {
                    return Err(format!(
                        "指标 {m} 对部门同时出现在报表 {other:?} 和 {:?} 中：同一数字会被加两次",
                        f.id
                    ));
                }
                None => {}
            }
        }
    }
    let mut seen: HashMap<(Level, u8, &MetricId), &str> = HashMap::new();
    for f in forms {
        for l in &f.levels {
            for m in f.metrics_for(*l) {
                match seen.insert((*l, family(f.period), m), &f.id) {
                    Some(other) if other == f.id => {
                        return Err(format!(
                            "报表 {:?}：指标 {m} 对{}（{l}）列了两次",
                            f.id,
                            l.zh()
                        ));
                    }
                    Some(other) => {
                        return Err(format!(
                            "指标 {m} 对{}（{l}）同时出现在报表 {other:?} 和 {:?} 中：同一数字会被加两次",
                            l.zh(),
                            f.id
                        ));
                    }
                    None => {}
                }
            }
        }
    }
    Ok(())
}

/// The forms of a catalogue that names none (every catalogue before forms): every current
/// metric, reported by counties, townships and villages for months (the default), weeks and
/// days, as pingan took them before.
pub(crate) fn implied_forms(metrics: Vec<MetricId>) -> Vec<Form> {
    let levels = vec![Level::County, Level::Township, Level::Village];
    [
        (PeriodKind::Month, "monthly", "月报"),
        (PeriodKind::Week, "weekly", "周报"),
        (PeriodKind::Day, "daily", "日报"),
    ]
    .into_iter()
    .map(|(period, id, zh)| Form {
        id: id.into(),
        zh: zh.into(),
        period,
        deadline: Deadline::default(),
        levels: levels.clone(),
        departments: false,
        review: false,
        sections: vec![Section {
            zh: "全部指标".into(),
            metrics: metrics.clone(),
            levels: None,
        }],
        default: period == PeriodKind::Month,
        source: String::new(),
        active: Vec::new(),
        asked: Vec::new(),
    })
    .collect()
}
