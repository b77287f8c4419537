//! What a valid report is. The node checks a report with [`Validator`] before it writes it to its
//! outbox; the hub checks it again before it stores it. Both use this one definition.

use std::{collections::BTreeMap, fmt};

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use crate::{
    AreaCode, Areas, Catalogue, MetricId, Period,
    catalogue::{RuleOp, Severity},
    department::{Department, Departments},
    form::{Form, period_zh},
    pb,
    period::PeriodKind,
};

/// A period of a kind, as a message's example.
fn example_period(kind: PeriodKind) -> &'static str {
    match kind {
        PeriodKind::HalfMonth => "2026-10-H1",
        PeriodKind::Week => "2026-W40",
        PeriodKind::Day => "2026-10-01",
        _ => "2026-10",
    }
}

/// One metric's value in a valid report: its total, and its parts when they were given (they
/// add up to the total).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidValue {
    pub metric: MetricId,
    pub total: i64,
    pub parts: BTreeMap<String, i64>,
}

/// A report that passed validation, in canonical form (values sorted by metric id).
#[derive(Debug, Clone, PartialEq)]
pub struct ValidReport {
    pub submission_id: String,
    pub area: AreaCode,
    pub period: Period,
    /// The form's id: as the report named it, or the one its level reports for the period.
    /// Empty only for a forwarded rollup of an area no form is reported by (a province).
    pub form: String,
    /// A department's (条) report: the department's id; `area` is then the area it belongs to.
    /// Its figures are stored apart and never added into the area's totals.
    pub department: Option<String>,
    pub values: Vec<ValidValue>,
    pub zero_report: bool,
    pub notes: String,
    pub reporter: String,
    /// Soft-rule findings.
    pub warnings: Vec<String>,
    /// A child hub's forwarded rollup (federation), in canonical order (cells by metric and
    /// part, reporters by level).
    pub rollup: Option<crate::rollup::Rollup>,
}

/// What the hub answers for a stored submission: its revision of the (area, period), when it
/// was accepted, and whether the submission id had been stored before (then the original
/// receipt is given again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub submission_id: String,
    pub area: AreaCode,
    pub period: Period,
    pub revision: u32,
    pub accepted_at_ms: i64,
    pub warnings: Vec<String>,
    pub duplicate: bool,
    /// The department the report is for (a department's report).
    pub department: Option<String>,
}

impl From<Receipt> for pb::Receipt {
    fn from(r: Receipt) -> Self {
        pb::Receipt {
            submission_id: r.submission_id,
            area: r.area.to_string(),
            period: r.period.to_string(),
            revision: r.revision,
            accepted_at_ms: r.accepted_at_ms,
            warnings: r.warnings,
            duplicate: r.duplicate,
            department: r.department.unwrap_or_default(),
        }
    }
}

/// How many values a wire report gives, named and compact.
fn given_count(r: &pb::Report) -> usize {
    r.values.len() + r.packed.as_ref().map_or(0, |p| p.metrics.len())
}

/// The start of the refusal of a compact report taken against another catalogue: the client
/// sends it again with named values ([`unpack`]).
pub const PACKED_CATALOGUE_DIFFERS: &str = "紧凑编码所依据的指标目录与本中心的不同";

/// Moves a report's plain totals (a known metric, no parts) into the catalogue's compact form
/// ([`pb::PackedValues`]): what a client does when the hub's catalogue has the fingerprint of
/// its own. Values with parts, and names the catalogue does not know, stay named (the hub
/// names the problem as it would have).
pub fn pack(report: &mut pb::Report, catalogue: &Catalogue) {
    if report.packed.is_some() {
        return;
    }
    let mut packed = pb::PackedValues {
        catalogue: catalogue.fingerprint(),
        metrics: Vec::with_capacity(report.values.len()),
        totals: Vec::with_capacity(report.values.len()),
    };
    report.values.retain(|v| {
        match (
            v.total,
            v.parts.is_empty(),
            catalogue.metric_slot(&v.metric),
        ) {
            (Some(total), true, Some(slot)) => {
                packed.metrics.push(slot as u32);
                packed.totals.push(total);
                false
            }
            _ => true,
        }
    });
    if !packed.metrics.is_empty() {
        report.packed = Some(packed);
    }
}

/// A compact report's values named again ([`pack`] undone), against the catalogue it was
/// packed with; positions outside it are left packed.
pub fn unpack(report: &mut pb::Report, catalogue: &Catalogue) {
    let Some(packed) = report.packed.take() else {
        return;
    };
    let metrics = catalogue.metrics();
    let mut left = pb::PackedValues {
        catalogue: packed.catalogue,
        ..Default::default()
    };
    for (at, total) in packed.metrics.into_iter().zip(packed.totals) {
        match metrics.get(at as usize) {
            Some(m) => report.values.push(pb::MetricValue {
                metric: m.id.as_str().to_owned(),
                total: Some(total),
                parts: Default::default(),
            }),
            None => {
                left.metrics.push(at);
                left.totals.push(total);
            }
        }
    }
    if !left.metrics.is_empty() {
        report.packed = Some(left);
    }
}

/// One reason a report is refused, naming the offending field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub reason: String,
}

/// Every reason a report is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violations(pub Vec<Violation>);

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "报表未通过校验（{} 个问题）：", self.0.len())?;
        // a report with thousands of problems is answered in a few kilobytes: the first ones
        // and how many more (a gRPC status travels in a trailer the client caps)
        for (i, v) in self.0.iter().take(SHOWN_PROBLEMS).enumerate() {
            if i > 0 {
                f.write_str("；")?;
            }
            write!(f, "{} [{}]", v.reason, v.field)?;
        }
        if self.0.len() > SHOWN_PROBLEMS {
            write!(f, "；……另有 {} 个问题", self.0.len() - SHOWN_PROBLEMS)?;
        }
        Ok(())
    }
}

impl std::error::Error for Violations {}

impl Violations {
    /// Whether the report was refused only because its compact values were taken against
    /// another catalogue ([`PACKED_CATALOGUE_DIFFERS`]): nothing is wrong with its figures.
    pub fn catalogue_differs(&self) -> bool {
        self.0.iter().any(|v| v.field == "packed.catalogue")
    }
}

/// Problems a refusal names before it says how many more there are.
pub const SHOWN_PROBLEMS: usize = 20;

/// Longest accepted submission id.
pub const MAX_SUBMISSION_ID: usize = 128;
/// Longest accepted notes, in characters.
pub const MAX_NOTES: usize = 4000;
/// Largest value of one metric in one report; anything larger is a typing error.
pub const MAX_VALUE: i64 = 1_000_000_000;

/// Checks wire reports against a catalogue, optionally a division registry, and today's date.
#[derive(Debug, Clone, Copy)]
pub struct Validator<'a> {
    pub catalogue: &'a Catalogue,
    /// When `None` (a node that has no registry), area codes are checked for form only; the hub
    /// always has one.
    pub areas: Option<&'a Areas>,
    /// The checker's date in 北京时间; periods that have not ended yet are refused.
    pub today: NaiveDate,
    /// The deployment's departments (条); `None` (a node) checks a department id's form only.
    pub departments: Option<&'a Departments>,
}

/// The violations found so far in one report.
#[derive(Debug, Default)]
struct Problems(Vec<Violation>);

impl Problems {
    fn add(&mut self, field: &str, reason: String) {
        self.0.push(Violation {
            field: field.to_owned(),
            reason,
        });
    }
}

/// A report's valid values by catalogue slot ([`Catalogue::metric_slot`]), in canonical order.
struct Given {
    /// (slot, value), sorted by metric id.
    values: Vec<(usize, ValidValue)>,
    /// For each slot of the catalogue: 0 when not given, the value's place + 1 when valid,
    /// `u32::MAX` when given but refused.
    at: Vec<u32>,
}

impl Given {
    /// The valid value at a slot.
    fn get(&self, slot: usize) -> Option<&ValidValue> {
        match self.at[slot] {
            0 | u32::MAX => None,
            i => Some(&self.values[i as usize - 1].1),
        }
    }

    fn iter(&self) -> impl Iterator<Item = (usize, &ValidValue)> {
        self.values.iter().map(|(slot, v)| (*slot, v))
    }
}

impl Validator<'_> {
    /// Validates a wire report; on failure lists every offending field.
    pub fn validate(&self, r: &pb::Report) -> Result<ValidReport, Violations> {
        let mut bad = Problems::default();
        check_submission_id(&r.submission_id, &mut bad);
        let period = self.period(r, &mut bad);
        let department = self.department(r, &mut bad);
        let area = match &department {
            Some(Some(d)) if r.area.trim().is_empty() => Some(d.area),
            _ => self.area(r, period, &mut bad),
        };
        if let (Some(Some(d)), Some(a)) = (&department, area)
            && d.area != a
        {
            bad.add(
                "area",
                format!("部门 {} {} 属于 {}，不是 {a}", d.id, d.name, d.area),
            );
        }
        let department_id = department.is_some().then(|| r.department.trim().to_owned());
        if r.notes.chars().count() > MAX_NOTES {
            bad.add("notes", format!("备注超过 {MAX_NOTES} 字"));
        }
        if r.reporter.chars().count() > 200 {
            bad.add("reporter", "填报人超过 200 字".into());
        }
        // each metric at most once: a longer list is refused whole, before any per-value work
        let most = self.catalogue.metrics().len();
        if given_count(r) > most {
            bad.add(
                "values",
                format!(
                    "报表有 {} 项数值，指标目录只有 {most} 个指标",
                    given_count(r)
                ),
            );
            return Err(Violations(bad.0));
        }
        if let Some(packed) = &r.packed
            && let Err(v) = self.check_packed(packed)
        {
            bad.0.push(v);
            return Err(Violations(bad.0));
        }
        let values = self.values(r, &mut bad);
        let form = match (area, period, &department_id) {
            (_, Some(period), Some(_)) => self.department_form(r, period, &values, &mut bad),
            (Some(area), Some(period), None) => self.form(r, area, period, &values, &mut bad),
            _ => None,
        };
        self.check_own(r, &values, &mut bad);
        let warnings = self.check_rules(&values, &mut bad);
        let rollup = match (&r.rollup, area) {
            (Some(ru), Some(area)) => Some(self.check_rollup(ru, area, period, &mut bad).into()),
            _ => None,
        };
        if !bad.0.is_empty() {
            return Err(Violations(bad.0));
        }
        Ok(ValidReport {
            submission_id: r.submission_id.clone(),
            area: area.expect("checked"),
            period: period.expect("checked"),
            form: form.map(|f| f.id.clone()).unwrap_or_default(),
            department: department_id,
            values: values.values.into_iter().map(|(_, v)| v).collect(),
            zero_report: r.zero_report,
            notes: r.notes.clone(),
            reporter: r.reporter.clone(),
            warnings,
            rollup,
        })
    }

    /// The report's period, when it is a reportable one that has ended.
    fn period(&self, r: &pb::Report, bad: &mut Problems) -> Option<Period> {
        // a child hub's rollup was checked against the child's clock: a parent whose clock is up
        // to a day behind still takes it rather than parking it for good
        let today = if r.rollup.is_some() {
            self.today.succ_opt().unwrap_or(self.today)
        } else {
            self.today
        };
        match r.period.parse::<Period>() {
            Ok(p) if !p.is_reportable() => {
                bad.add(
                    "period",
                    format!(
                        "{p} 不是上报期间：只按月、半月、ISO 周或日上报，季度、半年和年度由月度汇总"
                    ),
                );
                None
            }
            Ok(p) if !p.open_for_reports_on(today) => {
                bad.add(
                    "period",
                    format!("期间 {p} 尚未结束（今天是 {}），结束后才能上报", self.today),
                );
                None
            }
            Ok(p) => Some(p),
            Err(e) => {
                bad.add("period", e.for_reports().to_string());
                None
            }
        }
    }

    /// The report's area, when it is a code of the registry valid for the period.
    fn area(&self, r: &pb::Report, period: Option<Period>, bad: &mut Problems) -> Option<AreaCode> {
        let code = match r.area.parse::<AreaCode>() {
            Ok(code) => code,
            Err(e) => {
                bad.add("area", e.to_string());
                return None;
            }
        };
        let Some(areas) = self.areas else {
            return Some(code);
        };
        match areas.get(code) {
            None => {
                bad.add("area", format!("区划代码 {code} 不存在"));
                None
            }
            Some(a) if period.is_some_and(|p| !a.valid_for(p)) => {
                let hint = a
                    .successor
                    .map(|s| format!("；已由 {s} {} 承继", areas.name(s)))
                    .unwrap_or_default();
                bad.add(
                    "area",
                    format!("区划 {code} {} 在 {} 不是有效区划{hint}", a.name, r.period),
                );
                None
            }
            Some(_) => Some(code),
        }
    }

    /// Whether a report's compact values can be read against this catalogue: taken from a
    /// catalogue of the same fingerprint, a total for every position.
    fn check_packed(&self, packed: &pb::PackedValues) -> Result<(), Violation> {
        let ours = self.catalogue.fingerprint();
        if packed.catalogue != ours {
            return Err(Violation {
                field: "packed.catalogue".into(),
                reason: format!(
                    "{PACKED_CATALOGUE_DIFFERS}（报表按 {:016x}，本中心为 {ours:016x}）：请按指标名重发",
                    packed.catalogue
                ),
            });
        }
        if packed.metrics.len() != packed.totals.len() {
            return Err(Violation {
                field: "packed".into(),
                reason: format!(
                    "紧凑编码有 {} 个指标序号、{} 个数值，应一一对应",
                    packed.metrics.len(),
                    packed.totals.len()
                ),
            });
        }
        Ok(())
    }

    /// The valid values, each metric once, named ones first, then the compact ones.
    fn values(&self, r: &pb::Report, bad: &mut Problems) -> Given {
        let mut values = Given {
            values: Vec::with_capacity(given_count(r)),
            at: vec![0; self.catalogue.metrics().len()],
        };
        self.named_values(&r.values, &mut values, bad);
        if let Some(packed) = &r.packed {
            self.packed_values(packed, &mut values, bad);
        }
        values
            .values
            .sort_unstable_by_key(|(slot, _)| self.catalogue.id_rank(*slot));
        for (i, (slot, _)) in values.values.iter().enumerate() {
            values.at[*slot] = i as u32 + 1;
        }
        values
    }

    /// The compact values (their catalogue checked): a total at a position of the catalogue.
    fn packed_values(&self, packed: &pb::PackedValues, values: &mut Given, bad: &mut Problems) {
        let metrics = self.catalogue.metrics();
        for (i, (&at, &total)) in packed.metrics.iter().zip(&packed.totals).enumerate() {
            let Some(m) = metrics.get(at as usize) else {
                bad.add(
                    &format!("packed.metrics[{i}]"),
                    format!(
                        "紧凑编码的指标序号 {at} 超出指标目录（共 {} 个指标）",
                        metrics.len()
                    ),
                );
                continue;
            };
            let v = pb::MetricValue {
                metric: String::new(),
                total: Some(total),
                parts: Default::default(),
            };
            self.take_value(at as usize, &m.id, &v, values, bad);
        }
    }

    /// The named values: each a known metric.
    fn named_values(&self, given: &[pb::MetricValue], values: &mut Given, bad: &mut Problems) {
        for (i, v) in given.iter().enumerate() {
            let Some(slot) = self.catalogue.metric_slot(&v.metric) else {
                let hint = self
                    .catalogue
                    .suggest(&v.metric)
                    .map(|s| format!("，是否是 {s}？"))
                    .unwrap_or_default();
                bad.add(
                    &format!("values[{i}].metric"),
                    format!("未知指标「{}」{hint}", v.metric),
                );
                continue;
            };
            let metric = &self.catalogue.metrics()[slot].id;
            self.take_value(slot, metric, v, values, bad);
        }
    }

    /// One given value of the metric at a slot, unless the metric was given before.
    fn take_value(
        &self,
        slot: usize,
        metric: &MetricId,
        v: &pb::MetricValue,
        values: &mut Given,
        bad: &mut Problems,
    ) {
        if values.at[slot] != 0 {
            let label = self.catalogue.label(metric);
            bad.add(&format!("values[{metric}]"), format!("{label} 填了两次"));
            return;
        }
        // marked as given even when refused, so a second one is named as given twice
        values.at[slot] = u32::MAX;
        if let Some(valid) = self.value(metric.clone(), v, bad) {
            values.values.push((slot, valid));
            values.at[slot] = values.values.len() as u32;
        }
    }

    /// One value of a known metric: total and parts in range, parts of the metric's category,
    /// adding up to the total.
    fn value(
        &self,
        metric: MetricId,
        v: &pb::MetricValue,
        bad: &mut Problems,
    ) -> Option<ValidValue> {
        // the field and the label are only written out for a problem: most values have none
        let field = || format!("values[{metric}]");
        let label = || self.catalogue.label(&metric);
        let mut ok = true;
        if let Some(t) = v.total
            && !(0..=MAX_VALUE).contains(&t)
        {
            bad.add(
                &format!("{}.total", field()),
                format!("{} 的数值 {t} 不在 0 到 {MAX_VALUE} 之间", label()),
            );
            ok = false;
        }
        let parts = self.parts(&metric, v, bad);
        let parts = match parts {
            Some(p) if ok => p,
            _ => return None,
        };
        let sum: i64 = parts.values().sum();
        let total = match v.total {
            Some(t) if !parts.is_empty() && t != sum => {
                bad.add(
                    &field(),
                    format!("{} 各类别之和为 {sum}，与合计 {t} 不符", label()),
                );
                return None;
            }
            Some(t) => t,
            None if parts.is_empty() => {
                bad.add(&field(), format!("{} 既没有合计也没有分类数值", label()));
                return None;
            }
            None => sum,
        };
        Some(ValidValue {
            metric,
            total,
            parts,
        })
    }

    /// A value's parts, when every one names a category of the metric and is in range.
    fn parts(
        &self,
        metric: &MetricId,
        v: &pb::MetricValue,
        bad: &mut Problems,
    ) -> Option<BTreeMap<String, i64>> {
        let mut parts = BTreeMap::new();
        if v.parts.is_empty() {
            return Some(parts);
        }
        let field = format!("values[{metric}]");
        let label = self.catalogue.label(metric);
        let Some(cat) = self.catalogue.category_of(metric) else {
            bad.add(&field, format!("{label} 不分类别，只填合计"));
            return None;
        };
        let mut ok = true;
        for (name, &n) in &v.parts {
            let field = format!("{field}.parts[{name}]");
            if !cat.values.iter().any(|c| c == name) {
                bad.add(
                    &field,
                    format!(
                        "「{name}」不是{} ({}) 的类别；可选：{}",
                        cat.zh,
                        cat.id,
                        cat.values.join("、")
                    ),
                );
                ok = false;
            } else if !(0..=MAX_VALUE).contains(&n) {
                bad.add(
                    &field,
                    format!("{label}「{name}」的数值 {n} 不在 0 到 {MAX_VALUE} 之间"),
                );
                ok = false;
            } else {
                parts.insert(name.clone(), n);
            }
        }
        ok.then_some(parts)
    }

    /// The report's form: the one it names, or the one its area's level reports for the
    /// period's kind; it must be reported by that level for that kind of period, and ask every
    /// metric given. A forwarded rollup of an area no form is reported by (a province) has none.
    fn form(
        &self,
        r: &pb::Report,
        area: AreaCode,
        period: Period,
        values: &Given,
        bad: &mut Problems,
    ) -> Option<&Form> {
        let level = area.level();
        let kind = period.kind();
        let expected = self.catalogue.form_for(level, kind);
        let form = if r.form.is_empty() {
            if expected.is_none() && r.rollup.is_some() && given_count(r) == 0 && !r.zero_report {
                return None;
            }
            let Some(f) = expected else {
                let offered = self.forms_of(level);
                bad.add(
                    "period",
                    format!(
                        "{} 不按{}上报（{}报的表：{offered}）",
                        level.zh(),
                        period_zh(kind),
                        level.zh()
                    ),
                );
                return None;
            };
            f
        } else {
            let Some(f) = self.catalogue.form(r.form.trim()) else {
                bad.add("form", self.catalogue.unknown_form(&r.form));
                return None;
            };
            if !f.reported_by(level) {
                bad.add(
                    "form",
                    format!(
                        "{} 不由{}填报（{}报的表：{}）",
                        f.label(),
                        level.zh(),
                        level.zh(),
                        self.forms_of(level)
                    ),
                );
                return None;
            }
            if f.period != kind {
                bad.add(
                    "period",
                    format!(
                        "{} 是{}，期间 {period} 不是（例如 {}）",
                        f.label(),
                        period_zh(f.period),
                        example_period(f.period)
                    ),
                );
                return None;
            }
            f
        };
        for (slot, v) in values.iter() {
            if !form.asks_slot(level, slot) {
                let elsewhere = self
                    .catalogue
                    .forms()
                    .iter()
                    .find(|f| f.reported_by(level) && f.asks(level, &v.metric))
                    .map(|f| format!("，它在 {} 中填报", f.label()))
                    .unwrap_or_default();
                bad.add(
                    &format!("values[{}]", v.metric),
                    format!(
                        "{} 不在{}的{}中{elsewhere}",
                        self.catalogue.label(&v.metric),
                        level.zh(),
                        form.label()
                    ),
                );
            }
        }
        Some(form)
    }

    /// A department report's department: `None` for a division's report, `Some(None)` for a
    /// well-formed id the validator has no list to look up (a node), `Some(Some(d))` for a
    /// department of the list. A forwarded rollup is never a department's.
    fn department(&self, r: &pb::Report, bad: &mut Problems) -> Option<Option<&Department>> {
        let id = r.department.trim();
        if id.is_empty() {
            return None;
        }
        if r.rollup.is_some() {
            bad.add(
                "department",
                "部门报表不经下级 hub 汇总转发，由部门直接报送".into(),
            );
        }
        if !crate::department::valid_id(id) {
            bad.add(
                "department",
                format!(
                    "部门代码「{id}」应以小写字母开头，只含小写字母、数字、- 和 _，例如 sw-510722"
                ),
            );
            return Some(None);
        }
        let Some(list) = self.departments else {
            return Some(None);
        };
        match list.get(id) {
            Some(d) => Some(Some(d)),
            None => {
                bad.add(
                    "department",
                    format!("部门 {id} 不在本 hub 的部门名录中（--departments 给出的部门名录）"),
                );
                Some(None)
            }
        }
    }

    /// A department report's form: the one it names or the departments' form for the period's
    /// kind; it must be a departments' form and ask every metric given.
    fn department_form(
        &self,
        r: &pb::Report,
        period: Period,
        values: &Given,
        bad: &mut Problems,
    ) -> Option<&Form> {
        let kind = period.kind();
        let form = if r.form.trim().is_empty() {
            self.catalogue.form_for_departments(kind)
        } else {
            let Some(f) = self.catalogue.form(r.form.trim()) else {
                bad.add("form", self.catalogue.unknown_form(&r.form));
                return None;
            };
            f.departments.then_some(f)
        };
        let Some(form) = form.filter(|f| f.period == kind) else {
            let offered: Vec<String> = self
                .catalogue
                .forms()
                .iter()
                .filter(|f| f.departments)
                .map(|f| format!("{}：{}", f.label(), period_zh(f.period)))
                .collect();
            bad.add(
                "form",
                format!(
                    "部门没有{}期间 {period} 的报表（部门报的表：{}）",
                    period_zh(kind),
                    if offered.is_empty() {
                        "无".into()
                    } else {
                        offered.join("、")
                    }
                ),
            );
            return None;
        };
        for (slot, v) in values.iter() {
            if !form.asks_department_slot(slot) {
                bad.add(
                    &format!("values[{}]", v.metric),
                    format!(
                        "{} 不在部门的{}中",
                        self.catalogue.label(&v.metric),
                        form.label()
                    ),
                );
            }
        }
        Some(form)
    }

    /// The forms a level reports, as a message lists them.
    fn forms_of(&self, level: crate::Level) -> String {
        let forms: Vec<String> = self
            .catalogue
            .forms()
            .iter()
            .filter(|f| f.reported_by(level))
            .map(|f| format!("{}：{}", f.label(), period_zh(f.period)))
            .collect();
        if forms.is_empty() {
            "无".into()
        } else {
            forms.join("、")
        }
    }

    /// The area's own report: values or a zero report, not both, not neither.
    fn check_own(&self, r: &pb::Report, values: &Given, bad: &mut Problems) {
        let own_reported = r.rollup.as_ref().is_none_or(|ru| ru.own_reported);
        if !own_reported {
            if r.zero_report || given_count(r) > 0 {
                bad.add(
                    "rollup.own_reported",
                    "本级报表标为未收到，却带有数值或零报告".into(),
                );
            }
        } else if r.zero_report {
            if let Some((_, v)) = values.iter().find(|(_, v)| v.total != 0) {
                bad.add(
                    &format!("values[{}]", v.metric),
                    format!(
                        "零报告不能有非零数值：{} = {}",
                        self.catalogue.label(&v.metric),
                        v.total
                    ),
                );
            }
        } else if given_count(r) == 0 {
            bad.add(
                "values",
                "报表没有任何数值；本期没有发生的事项请报零报告".into(),
            );
        }
    }

    /// The catalogue's rules: a broken hard rule is a violation, a broken soft rule a warning
    /// (returned).
    fn check_rules(&self, values: &Given, bad: &mut Problems) -> Vec<String> {
        let mut warnings = Vec::new();
        let given = |slot: usize| values.get(slot).is_some();
        for (rule, metric, other) in self.catalogue.rules_with_slots() {
            // a hard rule's bounded side comes with its bound (调处成功 needs 调处矛盾纠纷), so that
            // the rule holds for every sum of valid reports, and a rollup can be held to it
            let ((bounded, bounded_slot), (bound, bound_slot)) = match rule.op {
                RuleOp::Le => ((&rule.metric, metric), (&rule.other, other)),
                RuleOp::Ge => ((&rule.other, other), (&rule.metric, metric)),
            };
            if rule.severity == Severity::Hard && given(bounded_slot) && !given(bound_slot) {
                bad.add(
                    &format!("values[{bounded}]"),
                    format!(
                        "填了 {} 就要同时填 {}",
                        self.catalogue.label(bounded),
                        self.catalogue.label(bound)
                    ),
                );
            }
            let (Some(a), Some(b)) = (values.get(metric), values.get(other)) else {
                continue;
            };
            let rhs = rule.factor.saturating_mul(b.total);
            let holds = match rule.op {
                RuleOp::Le => a.total <= rhs,
                RuleOp::Ge => a.total >= rhs,
            };
            if holds {
                continue;
            }
            let text = self.broken_rule(rule, a.total, b.total);
            match rule.severity {
                Severity::Hard => bad.add(&format!("values[{}]", rule.metric), text),
                Severity::Soft => warnings.push(format!("{text}（提示，可照常上报）")),
            }
        }
        warnings
    }

    /// What is wrong, said the way round it happened: "调处成功 9 大于 调处矛盾纠纷 3".
    fn broken_rule(&self, rule: &crate::catalogue::Rule, a: i64, b: i64) -> String {
        let (ma, mb) = (
            self.catalogue.metric(&rule.metric),
            self.catalogue.metric(&rule.other),
        );
        let broken = match rule.op {
            RuleOp::Le => "大于",
            RuleOp::Ge => "小于",
        };
        let factor = if rule.factor == 1 {
            String::new()
        } else {
            format!("{} × ", rule.factor)
        };
        format!(
            "{} ({}) {a} {broken} {factor}{} ({}) {b}",
            ma.zh, ma.id, mb.zh, mb.id
        )
    }
}

/// 1 to [`MAX_SUBMISSION_ID`] printable ASCII characters.
fn check_submission_id(id: &str, bad: &mut Problems) {
    if id.is_empty() || id.len() > MAX_SUBMISSION_ID || !id.bytes().all(|b| b.is_ascii_graphic()) {
        bad.add(
            "submission_id",
            format!("提交编号应为 1 到 {MAX_SUBMISSION_ID} 个可打印的 ASCII 字符，不含空格"),
        );
    }
}

/// A rollup cell's field name: `rollup.cells[metric]` or `rollup.cells[metric/part]`.
fn cell_field(c: &pb::RollupCell) -> String {
    if c.part.is_empty() {
        format!("rollup.cells[{}]", c.metric)
    } else {
        format!("rollup.cells[{}/{}]", c.metric, c.part)
    }
}

impl Validator<'_> {
    /// Checks a forwarded rollup and returns it in canonical order. Beyond its form, it must be
    /// plausible for the child's subtree: no more reporters of a level than the registry has
    /// there, no sum larger than its reports could carry (each at most [`MAX_VALUE`]), parts no
    /// larger than their total, and the catalogue's hard rules kept by the sums, as they are by
    /// any set of valid reports. So no child hub, broken or hostile, can make a parent's totals
    /// overflow or show a 1000% success rate.
    fn check_rollup(
        &self,
        ru: &pb::Rollup,
        area: AreaCode,
        period: Option<Period>,
        bad: &mut Problems,
    ) -> pb::Rollup {
        if !matches!(
            ru.scope(),
            pb::rollup::Scope::Subtree | pb::rollup::Scope::Own
        ) {
            bad.add("rollup.scope", "汇总范围应为 SUBTREE 或 OWN".into());
        }
        if ru.own_on_time && !ru.own_reported {
            bad.add(
                "rollup.own_on_time",
                "标为按时，本级报表却标为未收到".into(),
            );
        }
        let cells = self.rollup_cells(ru, bad);
        let reporters = rollup_reporters(ru, area, bad);
        if let (Some(areas), Some(period)) = (self.areas, period) {
            check_reporters_exist(areas, area, period, &reporters, bad);
        }
        let reports: u64 = reporters.iter().map(|(_, lc)| u64::from(lc.received)).sum();
        for c in &cells {
            if u64::from(c.present) > reports {
                bad.add(
                    &cell_field(c),
                    format!(
                        "{} 份报表带这一项，汇总却只收到 {reports} 份报表",
                        c.present
                    ),
                );
            }
            if i128::from(c.sum) > i128::from(c.present) * i128::from(MAX_VALUE) {
                bad.add(
                    &cell_field(c),
                    format!(
                        "合计 {} 超过 {} 份报表可能的最大值（每份至多 {MAX_VALUE}）",
                        c.sum, c.present
                    ),
                );
            }
        }
        self.check_rollup_sums(&cells, bad);
        let own_level = reporters
            .iter()
            .find(|(l, _)| *l == area.level())
            .map_or(0, |(_, lc)| lc.received);
        if ru.own_reported && own_level == 0 {
            bad.add(
                "rollup.reporters",
                format!("本级报表已收到，却没有计入 {} 级的上报单位", area.level()),
            );
        }
        // a child hub's lock (锁定): a form of the catalogue, its words bounded
        if let Some(l) = &ru.lock
            && self.catalogue.form(&l.form).is_none()
        {
            bad.add(
                "rollup.lock.form",
                format!(
                    "锁定的报表「{}」不在指标目录中",
                    l.form.chars().take(64).collect::<String>()
                ),
            );
        }
        let bounded = |s: &str| s.chars().take(500).collect::<String>();
        pb::Rollup {
            scope: ru.scope,
            own_reported: ru.own_reported,
            own_on_time: ru.own_on_time,
            own_first_received_at_ms: ru.own_first_received_at_ms,
            cells,
            reporters: reporters.into_iter().map(|(_, lc)| lc).collect(),
            lock: ru.lock.as_ref().map(|l| pb::RollupLock {
                form: l.form.clone(),
                by: bounded(&l.by),
                at_ms: l.at_ms,
                reason: bounded(&l.reason),
            }),
        }
    }

    /// A rollup's cells in canonical order, each of a known metric and category, once.
    fn rollup_cells(&self, ru: &pb::Rollup, bad: &mut Problems) -> Vec<pb::RollupCell> {
        let mut cells = ru.cells.clone();
        cells.sort_by(|a, b| (&a.metric, &a.part).cmp(&(&b.metric, &b.part)));
        for (i, c) in cells.iter().enumerate() {
            let field = cell_field(c);
            match self.catalogue.metric_id(&c.metric) {
                None => bad.add(&field, format!("未知指标「{}」", c.metric)),
                Some(m)
                    if !c.part.is_empty()
                        && !self
                            .catalogue
                            .category_of(&m)
                            .is_some_and(|cat| cat.values.contains(&c.part)) =>
                {
                    bad.add(&field, format!("{m} 没有类别「{}」", c.part))
                }
                Some(_) => {}
            }
            if c.sum < 0 {
                bad.add(&field, format!("合计为负数 {}", c.sum));
            }
            if c.present == 0 {
                bad.add(&field, "没有任何报表带这一项 (present = 0)，应省略".into());
            }
            if i > 0 && (&cells[i - 1].metric, &cells[i - 1].part) == (&c.metric, &c.part) {
                bad.add(&field, "填了两次".into());
            }
        }
        cells
    }
}

/// A rollup's reporter counts by level, in level order: levels at or below the area's, each
/// once, no more on time than received.
fn rollup_reporters(
    ru: &pb::Rollup,
    area: AreaCode,
    bad: &mut Problems,
) -> Vec<(crate::Level, pb::LevelCount)> {
    let mut reporters: Vec<(crate::Level, pb::LevelCount)> = Vec::with_capacity(ru.reporters.len());
    for lc in &ru.reporters {
        let field = format!("rollup.reporters[{}]", lc.level);
        match lc.level.parse::<crate::Level>() {
            Err(e) => bad.add(&field, e.to_string()),
            Ok(l) if l < area.level() => bad.add(
                &field,
                format!("{l} 层级高于汇总的区划 {area} ({})", area.level()),
            ),
            Ok(l) => {
                if lc.on_time > lc.received {
                    bad.add(
                        &field,
                        format!("按时 {} 多于已报 {}", lc.on_time, lc.received),
                    );
                }
                if reporters.iter().any(|(seen, _)| *seen == l) {
                    bad.add(&field, "填了两次".into());
                }
                reporters.push((l, lc.clone()));
            }
        }
    }
    reporters.sort_by_key(|(l, _)| *l);
    reporters
}

/// No more reporters of a level than the subtree has for the period.
fn check_reporters_exist(
    areas: &Areas,
    area: AreaCode,
    period: Period,
    reporters: &[(crate::Level, pb::LevelCount)],
    bad: &mut Problems,
) {
    for (l, lc) in reporters {
        let expected = areas
            .descendants_at(area, *l)
            .into_iter()
            .filter(|c| areas.get(*c).is_some_and(|a| a.valid_for(period)))
            .count() as u64;
        if u64::from(lc.received) > expected {
            bad.add(
                &format!("rollup.reporters[{l}]"),
                format!(
                    "{area} 在 {period} 只有 {expected} 个 {l} 级上报单位，汇总却说收到 {} 份",
                    lc.received
                ),
            );
        }
    }
}

impl Validator<'_> {
    /// A forwarded rollup's sums against the catalogue: each metric's parts add up to no more
    /// than its total (a report may give the total alone), and the hard rules hold for the sums
    /// as they do for every valid report (whose bounded side always comes with its bound).
    fn check_rollup_sums(&self, cells: &[pb::RollupCell], bad: &mut Problems) {
        let total = |metric: &str| {
            cells
                .iter()
                .find(|c| c.metric == metric && c.part.is_empty())
        };
        check_parts_within_totals(cells, &total, bad);
        for rule in self
            .catalogue
            .rules()
            .iter()
            .filter(|r| r.severity == Severity::Hard)
        {
            let (bounded, bound) = match rule.op {
                RuleOp::Le => (&rule.metric, &rule.other),
                RuleOp::Ge => (&rule.other, &rule.metric),
            };
            let Some(b) = total(bounded.as_str()) else {
                continue;
            };
            let field = format!("rollup.cells[{bounded}]");
            let Some(c) = total(bound.as_str()) else {
                bad.add(
                    &field,
                    format!(
                        "有 {} 却没有 {}",
                        self.catalogue.label(bounded),
                        self.catalogue.label(bound)
                    ),
                );
                continue;
            };
            let (a, o) = match rule.op {
                RuleOp::Le => (b, c),
                RuleOp::Ge => (c, b),
            };
            let rhs = i128::from(rule.factor) * i128::from(o.sum);
            let holds = match rule.op {
                RuleOp::Le => i128::from(a.sum) <= rhs,
                RuleOp::Ge => i128::from(a.sum) >= rhs,
            };
            if !holds {
                bad.add(
                    &field,
                    format!(
                        "汇总不合规则：{} {} 与 {} {}（{} {} {}×）",
                        self.catalogue.label(&rule.metric),
                        a.sum,
                        self.catalogue.label(&rule.other),
                        o.sum,
                        rule.metric,
                        match rule.op {
                            RuleOp::Le => "≤",
                            RuleOp::Ge => "≥",
                        },
                        rule.factor
                    ),
                );
            }
            if b.present > c.present {
                bad.add(
                    &field,
                    format!(
                        "{} 份报表有 {}，只有 {} 份有 {}",
                        b.present,
                        self.catalogue.label(bounded),
                        c.present,
                        self.catalogue.label(bound)
                    ),
                );
            }
        }
    }
}

/// Each metric's parts in a rollup add up to no more than its total (a report may give the
/// total alone), and parts come with a total.
fn check_parts_within_totals<'a>(
    cells: &'a [pb::RollupCell],
    total: &impl Fn(&str) -> Option<&'a pb::RollupCell>,
    bad: &mut Problems,
) {
    let mut parts: BTreeMap<&str, i128> = BTreeMap::new();
    for c in cells.iter().filter(|c| !c.part.is_empty()) {
        *parts.entry(c.metric.as_str()).or_default() += i128::from(c.sum);
    }
    for (metric, sum) in parts {
        match total(metric) {
            Some(t) if sum > i128::from(t.sum) => bad.add(
                &format!("rollup.cells[{metric}]"),
                format!("各类别合计 {sum} 大于总数 {}", t.sum),
            ),
            None => bad.add(
                &format!("rollup.cells[{metric}]"),
                "有分类数值却没有总数".into(),
            ),
            Some(_) => {}
        }
    }
}

impl ValidReport {
    /// The content digest: equal for two submissions that say the same thing (same area, period,
    /// values, zero flag and notes), whoever sent them.
    pub fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.area.to_string());
        h.update([0]);
        h.update(self.period.to_string());
        if let Some(d) = &self.department {
            h.update(b"\0department\0");
            h.update(d.as_bytes());
        }
        h.update([0, u8::from(self.zero_report)]);
        h.update(self.notes.as_bytes());
        h.update([0]);
        for v in &self.values {
            h.update(v.metric.as_str());
            h.update(v.total.to_le_bytes());
            for (k, n) in &v.parts {
                h.update(k.as_bytes());
                h.update([0]);
                h.update(n.to_le_bytes());
            }
            h.update([0xff]);
        }
        if let Some(ru) = &self.rollup {
            h.update(b"rollup");
            h.update(prost::Message::encode_to_vec(&pb::Rollup::from(ru)));
        }
        h.finalize().into()
    }

    /// The values in wire form (what the hub stores per revision).
    pub fn wire_values(&self) -> Vec<pb::MetricValue> {
        self.values
            .iter()
            .map(|v| pb::MetricValue {
                metric: v.metric.to_string(),
                total: Some(v.total),
                parts: v.parts.iter().map(|(k, n)| (k.clone(), *n)).collect(),
            })
            .collect()
    }

    /// The values as given (what a revision's rollup is computed from).
    pub fn values_as_given(&self) -> Vec<crate::rollup::Value> {
        self.values
            .iter()
            .map(|v| crate::rollup::Value {
                metric: v.metric.to_string(),
                total: Some(v.total),
                parts: v.parts.clone(),
            })
            .collect()
    }

    /// Back to the wire form, as a node sends it.
    pub fn to_wire(&self) -> pb::Report {
        pb::Report {
            submission_id: self.submission_id.clone(),
            area: self.area.to_string(),
            period: self.period.to_string(),
            values: self.wire_values(),
            zero_report: self.zero_report,
            notes: self.notes.clone(),
            reporter: self.reporter.clone(),
            rollup: self.rollup.as_ref().map(Into::into),
            form: self.form.clone(),
            department: self.department.clone().unwrap_or_default(),
            packed: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::fixtures;
    use prost::Message as _;

    fn value(metric: &str, total: Option<i64>, parts: &[(&str, i64)]) -> pb::MetricValue {
        pb::MetricValue {
            metric: metric.into(),
            total,
            parts: parts
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn report(values: Vec<pb::MetricValue>) -> pb::Report {
        pb::Report {
            submission_id: "s-1".into(),
            area: "510722101002".into(),
            period: "2026-10".into(),
            values,
            ..Default::default()
        }
    }

    fn check(r: &pb::Report) -> Result<ValidReport, Violations> {
        let catalogue = Catalogue::builtin();
        let areas = fixtures::santai_areas();
        let today = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        Validator {
            catalogue: &catalogue,
            areas: Some(&areas),
            today,
            departments: None,
        }
        .validate(r)
    }

    #[test]
    fn accepts_a_good_report_and_sums_parts_into_the_total() {
        let ok = check(&report(vec![
            value("disputes.mediated", None, &[("劳动争议", 3), ("医患", 2)]),
            value("调处成功", Some(4), &[]),
        ]))
        .unwrap();
        assert_eq!(ok.values.len(), 2);
        let mediated = ok
            .values
            .iter()
            .find(|v| v.metric.as_str() == "disputes.mediated")
            .unwrap();
        assert_eq!(mediated.total, 5);
        assert!(ok.warnings.is_empty());
    }

    #[test]
    fn compact_totals_are_checked_and_stored_as_named_ones_are() {
        let catalogue = Catalogue::builtin();
        let named = report(vec![
            value("disputes.mediated", None, &[("劳动争议", 3), ("医患", 2)]),
            value("调处成功", Some(4), &[]),
            value("cases.fraud", Some(7), &[]),
        ]);
        let mut packed = named.clone();
        pack(&mut packed, &catalogue);
        // the plain totals moved by position; the value with parts stays named
        let p = packed.packed.as_ref().expect("packed");
        assert_eq!(p.catalogue, catalogue.fingerprint());
        assert_eq!(p.totals, vec![4, 7]);
        assert_eq!(packed.values.len(), 1);
        assert!(packed.encoded_len() < named.encoded_len());
        assert_eq!(check(&packed).unwrap(), check(&named).unwrap());
        // undone, the same values by id
        let mut back = packed.clone();
        unpack(&mut back, &catalogue);
        assert!(back.packed.is_none());
        assert_eq!(check(&back).unwrap(), check(&named).unwrap());

        // a position past the catalogue, a total out of range, a metric given in both forms
        let mut bad = packed.clone();
        let p = bad.packed.as_mut().unwrap();
        p.metrics.push(catalogue.metrics().len() as u32);
        p.totals.push(1);
        p.metrics
            .push(catalogue.metric_slot("patrol.hours").unwrap() as u32);
        p.totals.push(-3);
        p.metrics.push(u32::MAX);
        p.totals.push(1);
        p.metrics
            .push(catalogue.metric_slot("patrol.sessions").unwrap() as u32);
        p.totals.push(i64::MAX);
        bad.values.push(value("cases.fraud", Some(7), &[]));
        let e = check(&bad).unwrap_err();
        assert!(!e.catalogue_differs());
        let fields: Vec<&str> = e.0.iter().map(|v| v.field.as_str()).collect();
        for f in [
            "packed.metrics[2]",
            "values[patrol.hours].total",
            "packed.metrics[4]",
            "values[patrol.sessions].total",
            "values[cases.fraud]",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
        assert!(e.to_string().contains("填了两次"), "{e}");

        // as many positions as totals
        let mut ragged = packed.clone();
        ragged.packed.as_mut().unwrap().totals.pop();
        let e = check(&ragged).unwrap_err();
        assert!(e.to_string().contains("应一一对应"), "{e}");

        // taken against another catalogue: refused as such, nothing read by position
        let mut other = packed.clone();
        other.packed.as_mut().unwrap().catalogue ^= 1;
        let e = check(&other).unwrap_err();
        assert!(e.catalogue_differs(), "{e}");
        assert!(e.to_string().contains(PACKED_CATALOGUE_DIFFERS), "{e}");

        // a zero report's totals by position are still zeros; nothing given is still nothing
        let mut zero = report(vec![value("cases.fraud", Some(2), &[])]);
        zero.zero_report = true;
        pack(&mut zero, &catalogue);
        assert!(zero.values.is_empty());
        assert!(
            check(&zero)
                .unwrap_err()
                .to_string()
                .contains("零报告不能有非零数值")
        );
        let mut empty = report(vec![]);
        empty.packed = Some(pb::PackedValues {
            catalogue: catalogue.fingerprint(),
            ..Default::default()
        });
        assert!(
            check(&empty)
                .unwrap_err()
                .to_string()
                .contains("没有任何数值")
        );
    }

    #[test]
    fn a_catalogue_fingerprint_changes_with_its_metrics_and_their_order() {
        let builtin = Catalogue::builtin();
        assert_eq!(builtin.fingerprint(), Catalogue::builtin().fingerprint());
        // the same metrics in another order: positions mean other metrics
        let swapped = crate::fixtures::reordered_catalogue();
        assert_eq!(swapped.metrics().len(), builtin.metrics().len());
        assert_ne!(swapped.fingerprint(), builtin.fingerprint());
    }

    #[test]
    fn names_every_offending_field() {
        let mut r = report(vec![
            value("disputes.resolved", Some(9), &[]),
            value("disputes.mediated", Some(5), &[]),
            value("cases.criminal_filed", Some(-1), &[]),
            value("no.such.metric", Some(1), &[]),
            value(
                "disputes.identified",
                Some(10),
                &[("劳动争议", 3), ("医患", 2)],
            ),
            value("petitions.letters", Some(1), &[("飞鸽", 1)]),
            value("patrol.hours", None, &[]),
        ]);
        r.area = "510722999999".into();
        r.submission_id = String::new();
        let e = check(&r).unwrap_err();
        let fields: Vec<&str> = e.0.iter().map(|v| v.field.as_str()).collect();
        for f in [
            "submission_id",
            "area",
            "values[cases.criminal_filed].total",
            "values[3].metric",
            "values[disputes.identified]",
            "values[petitions.letters].parts[飞鸽]",
            "values[patrol.hours]",
            "values[disputes.resolved]",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
        assert!(
            e.to_string()
                .contains("排查矛盾纠纷 (disputes.identified) 各类别之和为 5，与合计 10 不符"),
            "{e}"
        );
    }

    #[test]
    fn periods_must_have_ended_and_be_reportable() {
        for (p, needle) in [
            ("2026-11", "尚未结束"),
            ("2026-Q3", "由月度汇总"),
            ("2026-13", "月份应为 01 到 12"),
        ] {
            let mut r = report(vec![value("cases.fraud", Some(1), &[])]);
            r.period = p.into();
            let e = check(&r).unwrap_err();
            assert!(e.to_string().contains(needle), "{p}: {e}");
        }
        let mut r = report(vec![value("keypersons.under_control", Some(1), &[])]);
        r.period = "2026-11-22".into();
        assert!(check(&r).is_ok(), "a daily report may come on its own day");
    }

    #[test]
    fn a_department_reports_its_own_form_for_its_own_area() {
        let catalogue = Catalogue::builtin();
        let areas = fixtures::santai_areas();
        let departments = fixtures::santai_departments();
        let validator = |list| Validator {
            catalogue: &catalogue,
            areas: Some(&areas),
            today: NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
            departments: list,
        };
        let hub = validator(Some(&departments));
        let mut r = report(vec![value("petitions.letters", Some(3), &[])]);
        r.area = String::new();
        r.department = "sw-510722".into();
        // the area is the department's own, from the list
        let ok = hub.validate(&r).unwrap();
        assert_eq!(ok.department.as_deref(), Some("sw-510722"));
        assert_eq!(
            (ok.area.to_string(), ok.form.as_str()),
            ("510722".into(), "department_monthly")
        );
        assert_eq!(ok.to_wire().department, "sw-510722");
        // a department's report differs from the same figures of its area
        let mut county = r.clone();
        county.department = String::new();
        county.area = "510722".into();
        assert_ne!(hub.validate(&county).unwrap().digest(), ok.digest());
        // another area, a figure off the form, a department not listed, an id like a code
        let mut wrong = r.clone();
        wrong.area = "510722101".into();
        wrong.values.push(value("cases.fraud", Some(1), &[]));
        let e = hub.validate(&wrong).unwrap_err().to_string();
        assert!(e.contains("部门 sw-510722 三台县商务局 属于 510722"), "{e}");
        assert!(
            e.contains("电信网络诈骗") || e.contains("cases.fraud"),
            "{e}"
        );
        assert!(e.contains("不在部门的部门平安建设月报"), "{e}");
        let mut unknown = r.clone();
        unknown.department = "ga-510722".into();
        let e = hub.validate(&unknown).unwrap_err().to_string();
        assert!(e.contains("部门 ga-510722 不在本 hub 的部门名录中"), "{e}");
        unknown.department = "510722".into();
        let e = hub.validate(&unknown).unwrap_err().to_string();
        assert!(e.contains("应以小写字母开头"), "{e}");
        // no departments' form for weeks; a division's form named
        let mut weekly = r.clone();
        weekly.period = "2026-W40".into();
        let e = hub.validate(&weekly).unwrap_err().to_string();
        assert!(
            e.contains("部门没有周报") && e.contains("department_monthly"),
            "{e}"
        );
        weekly.period = "2026-10".into();
        weekly.form = "zongzhi_monthly".into();
        assert!(hub.validate(&weekly).is_err());
        // a node has no list: the id's form is checked, the area must be given
        let node = validator(None);
        let e = node.validate(&r).unwrap_err().to_string();
        assert!(e.contains("[area]"), "{e}");
        r.area = "510722".into();
        assert_eq!(
            node.validate(&r).unwrap().department.as_deref(),
            Some("sw-510722")
        );
    }

    #[test]
    fn a_report_is_on_its_form() {
        // no form named: the one the village reports for months, the default
        let ok = check(&report(vec![value("disputes.identified", Some(2), &[])])).unwrap();
        assert_eq!(ok.form, "zongzhi_monthly");
        assert_eq!(ok.to_wire().form, "zongzhi_monthly");
        // a township reports disputes half-monthly, not on its monthly form
        let mut r = report(vec![value("disputes.identified", Some(2), &[])]);
        r.area = "510722101".into();
        let e = check(&r).unwrap_err().to_string();
        assert!(
            e.contains(
                "排查矛盾纠纷 (disputes.identified) 不在乡镇的综治工作月报 (zongzhi_monthly)中"
            ) && e.contains("矛盾纠纷排查化解半月报 (disputes_half_monthly)"),
            "{e}"
        );
        r.period = "2026-10-H2".into();
        assert_eq!(check(&r).unwrap().form, "disputes_half_monthly");
        r.form = "矛盾纠纷排查化解半月报".into();
        assert_eq!(check(&r).unwrap().form, "disputes_half_monthly");
        // a form named for the wrong kind of period, level, or not at all
        r.period = "2026-10".into();
        let e = check(&r).unwrap_err().to_string();
        assert!(
            e.contains("是半月报，期间 2026-10 不是（例如 2026-10-H1）"),
            "{e}"
        );
        let mut v = report(vec![value("disputes.identified", Some(2), &[])]);
        v.period = "2026-10-H1".into();
        let e = check(&v).unwrap_err().to_string();
        assert!(e.contains("村社区 不按半月报上报"), "{e}");
        v.form = "disputes_half_monthly".into();
        let e = check(&v).unwrap_err().to_string();
        assert!(e.contains("不由村社区填报"), "{e}");
        v.form = "完全不对的表".into();
        let e = check(&v).unwrap_err().to_string();
        assert!(
            e.contains("未知报表「完全不对的表」（可选：综治工作月报 (zongzhi_monthly)"),
            "{e}"
        );
        v.form = "综治工作月表".into();
        let e = check(&v).unwrap_err().to_string();
        assert!(e.contains("是否是 综治工作月报 (zongzhi_monthly)？"), "{e}");
        // a stock broken down by a category, on the monthly form
        let stars = check(&report(vec![value(
            "creation.safe_villages",
            None,
            &[("★★", 1)],
        )]))
        .unwrap();
        assert_eq!(stars.values[0].total, 1);
    }

    #[test]
    fn zero_reports_carry_no_values() {
        let mut r = report(vec![]);
        r.zero_report = true;
        assert!(check(&r).is_ok());
        r.values = vec![value("cases.fraud", Some(1), &[])];
        assert!(check(&r).unwrap_err().to_string().contains("零报告"));
        let empty = report(vec![]);
        assert!(check(&empty).unwrap_err().to_string().contains("零报告"));
    }

    #[test]
    fn soft_rules_warn_and_hard_rules_reject() {
        let ok = check(&report(vec![
            value("cases.criminal_filed", Some(2), &[]),
            value("cases.criminal_solved", Some(5), &[]),
        ]))
        .unwrap();
        assert_eq!(ok.warnings.len(), 1, "{:?}", ok.warnings);
        let e = check(&report(vec![
            value("petitions.collective_batches", Some(2), &[]),
            value("petitions.collective_persons", Some(9), &[]),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("5 ×"), "{e}");
        let e = check(&report(vec![
            value("disputes.mediated", Some(3), &[]),
            value("disputes.resolved", Some(9), &[]),
        ]))
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("调处成功 (disputes.resolved) 9 大于 调处矛盾纠纷 (disputes.mediated) 3"),
            "{e}"
        );
        let e = check(&report(vec![value("调解矛盾纠纷", Some(3), &[])])).unwrap_err();
        assert!(
            e.to_string()
                .contains("未知指标「调解矛盾纠纷」，是否是 调处矛盾纠纷 (disputes.mediated)？"),
            "{e}"
        );
    }

    #[test]
    fn digest_ignores_order_and_reporter_but_not_content() {
        let a = check(&report(vec![
            value("cases.fraud", Some(1), &[]),
            value("cases.homicide", Some(0), &[]),
        ]))
        .unwrap();
        let mut b_wire = report(vec![
            value("cases.homicide", Some(0), &[]),
            value("cases.fraud", Some(1), &[]),
        ]);
        b_wire.reporter = "someone else".into();
        assert_eq!(a.digest(), check(&b_wire).unwrap().digest());
        let c = check(&report(vec![value("cases.fraud", Some(2), &[])])).unwrap();
        assert_ne!(a.digest(), c.digest());
        assert_eq!(check(&a.to_wire()).unwrap(), a);
    }

    fn rollup_report(cells: Vec<pb::RollupCell>, reporters: Vec<pb::LevelCount>) -> pb::Report {
        pb::Report {
            submission_id: "fwd-1".into(),
            area: "510722101".into(),
            period: "2026-10".into(),
            rollup: Some(pb::Rollup {
                scope: pb::rollup::Scope::Subtree as i32,
                cells,
                reporters,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn cell(metric: &str, part: &str, sum: i64, present: u32) -> pb::RollupCell {
        pb::RollupCell {
            metric: metric.into(),
            part: part.into(),
            sum,
            present,
        }
    }

    fn level(l: &str, received: u32, on_time: u32) -> pb::LevelCount {
        pb::LevelCount {
            level: l.into(),
            received,
            on_time,
        }
    }

    #[test]
    fn a_forwarded_rollup_is_checked_and_put_in_canonical_order() {
        let ok = check(&rollup_report(
            vec![
                cell("disputes.identified", "医患", 2, 1),
                cell("cases.fraud", "", 7, 3),
                cell("disputes.identified", "", 2, 1),
            ],
            vec![level("village", 3, 1), level("township", 0, 0)],
        ))
        .unwrap();
        let ru = ok.rollup.as_ref().unwrap();
        let order: Vec<(&str, &str)> = ru
            .cells
            .iter()
            .map(|c| (c.metric.as_str(), c.part.as_str()))
            .collect();
        assert_eq!(
            order,
            [
                ("cases.fraud", ""),
                ("disputes.identified", ""),
                ("disputes.identified", "医患")
            ]
        );
        assert_eq!(ru.reporters[0].level, crate::Level::Township);
        assert!(
            ok.values.is_empty(),
            "the township's own office has not reported"
        );
        let again = check(&ok.to_wire()).unwrap();
        assert_eq!(again.digest(), ok.digest());
        let mut changed = ok.to_wire();
        changed.rollup.as_mut().unwrap().cells[0].sum = 8;
        assert_ne!(check(&changed).unwrap().digest(), ok.digest());
    }

    #[test]
    fn a_bad_rollup_names_every_problem() {
        let mut r = rollup_report(
            vec![
                cell("no.such", "", 1, 1),
                cell("cases.fraud", "劳动争议", 1, 1),
                cell("cases.homicide", "", -2, 1),
                cell("cases.juvenile", "", 0, 0),
                cell("cases.juvenile", "", 0, 0),
            ],
            vec![
                level("county", 1, 0),
                level("village", 1, 2),
                level("hamlet", 1, 1),
            ],
        );
        r.rollup.as_mut().unwrap().own_reported = false;
        r.rollup.as_mut().unwrap().own_on_time = true;
        r.zero_report = true;
        let err = check(&r).unwrap_err();
        let fields: Vec<&str> = err.0.iter().map(|v| v.field.as_str()).collect();
        for f in [
            "rollup.own_reported",
            "rollup.own_on_time",
            "rollup.cells[no.such]",
            "rollup.cells[cases.fraud/劳动争议]",
            "rollup.cells[cases.homicide]",
            "rollup.cells[cases.juvenile]",
            "rollup.reporters[county]",
            "rollup.reporters[village]",
            "rollup.reporters[hamlet]",
        ] {
            assert!(fields.contains(&f), "{f} not named in {err}");
        }
        let mut unspecified = rollup_report(Vec::new(), Vec::new());
        unspecified.rollup.as_mut().unwrap().scope = 0;
        assert!(
            check(&unspecified)
                .unwrap_err()
                .to_string()
                .contains("rollup.scope")
        );
        let mut claims_own = rollup_report(Vec::new(), vec![level("village", 2, 2)]);
        claims_own.rollup.as_mut().unwrap().own_reported = true;
        claims_own.zero_report = true;
        let err = check(&claims_own).unwrap_err().to_string();
        assert!(err.contains("没有计入 township 级"), "{err}");
    }
}
