//! Departments (条) compared among themselves: each department's figure over a span, or their
//! figures added up by the area they belong to or by 系统, with who owes a report. Departments'
//! reports live in their own table, so nothing here ever meets a division's total. Departments
//! are few (tens per county), so the answer is read from their current reports per question
//! rather than kept in rollups.

use std::collections::BTreeMap;

use pingan_domain::{
    MetricId, MetricKind, Period, department::Department, form::Form, period::PeriodKind,
    question::DepartmentGroup,
};

use super::{DepartmentRow, DepartmentsAnswer, DepartmentsQuery, Engine, QueryError};
use crate::store::RevisionRecord;

/// One department's figure over the span and what it owed.
#[derive(Debug, Default)]
struct Tally {
    /// The figure: counts summed over the periods, stocks the last period's (months and
    /// half-months each their own series, added).
    months: Option<i64>,
    halves: Option<i64>,
    expected: u64,
    received: u64,
    on_time: u64,
    missing: Vec<String>,
}

impl Tally {
    fn value(&self) -> Option<i64> {
        match (self.months, self.halves) {
            (Some(a), Some(b)) => Some(a.saturating_add(b)),
            (a, b) => a.or(b),
        }
    }

    fn add(&mut self, kind: MetricKind, period: Period, v: i64) {
        let series = if period.kind() == PeriodKind::HalfMonth {
            &mut self.halves
        } else {
            &mut self.months
        };
        *series = match (kind, *series) {
            (MetricKind::Count, Some(acc)) => Some(acc.saturating_add(v)),
            _ => Some(v),
        };
    }
}

impl Engine {
    /// The departments within the question's area compared on its metric over its span.
    pub fn departments(&self, q: &DepartmentsQuery) -> Result<DepartmentsAnswer, QueryError> {
        let area = self.registered(q.area)?;
        let metric = self.department_metric(&q.metric)?;
        let kind = self.catalogue.metric(&metric).kind;
        let list = self.department_list();
        let members: Vec<&Department> = list
            .within(area)
            .filter(|d| q.system.as_ref().is_none_or(|s| &d.system == s))
            .collect();
        // the periods some departments' form is reported for
        let periods: Vec<(Period, &Form)> = q
            .span
            .reported()
            .into_iter()
            .filter_map(|p| {
                self.catalogue
                    .form_for_departments(p.kind())
                    .map(|f| (p, f))
            })
            .collect();
        let mut tallies: Vec<Tally> = members.iter().map(|_| Tally::default()).collect();
        let reader = self.reader()?;
        for &(p, form) in &periods {
            let current: BTreeMap<String, (RevisionRecord, i64)> = reader
                .department_currents(p)?
                .into_iter()
                .map(|(r, first)| (r.area.clone(), (r, first)))
                .collect();
            let due = self.deadlines.due_ms_of(form.deadline, p);
            for (d, t) in members.iter().zip(tallies.iter_mut()) {
                let report = current.get(&d.id);
                if form.expected_in(p) {
                    t.expected += 1;
                    match report {
                        Some((_, first)) => {
                            t.received += 1;
                            t.on_time += u64::from(*first <= due);
                        }
                        None => t.missing.push(format!("{} {} {p}", d.id, d.name)),
                    }
                }
                if let Some(v) = report.and_then(|(r, _)| self.figure(r, form, &metric, kind)) {
                    t.add(kind, p, v);
                }
            }
        }
        self.give_back(reader);
        let rows = self.department_rows(q.group, &members, tallies);
        let m = self.catalogue.metric(&metric);
        Ok(DepartmentsAnswer {
            area,
            name: self.areas.name(area),
            span: q.span.to_string(),
            metric: metric.to_string(),
            metric_name: m.zh.clone(),
            unit: m.unit.clone(),
            group: q.group,
            form: periods
                .first()
                .map(|(_, f)| f.zh.clone())
                .unwrap_or_default(),
            rows: ranked(rows),
        })
    }

    /// A department's current report of `period` (what forwarding sends the parent hub).
    pub fn department_current(
        &self,
        department: &str,
        period: Period,
    ) -> Result<Option<RevisionRecord>, QueryError> {
        let reader = self.reader()?;
        let current = reader.department_revisions(department, period)?.pop();
        self.give_back(reader);
        Ok(current)
    }

    /// Every (department, period) with a stored report.
    pub fn department_keys(&self) -> Result<Vec<(String, Period)>, QueryError> {
        let reader = self.reader()?;
        let keys = reader.department_keys()?;
        self.give_back(reader);
        Ok(keys
            .into_iter()
            .filter_map(|(d, p)| Some((d, p.parse().ok()?)))
            .collect())
    }

    /// The metric asked, by id or name; departments are compared on metrics, not indicators.
    fn department_metric(&self, name: &str) -> Result<MetricId, QueryError> {
        self.catalogue.metric_id(name).ok_or_else(|| {
            if self.catalogue.indicator(name).is_some() {
                return QueryError::BadRequest(format!(
                    "部门之间只比较指标，不比较比率「{name}」：请选一个指标"
                ));
            }
            let hint = self
                .catalogue
                .suggest(name)
                .map(|s| format!("，是否是 {s}？"))
                .unwrap_or_default();
            QueryError::BadRequest(format!("未知的指标「{name}」{hint}"))
        })
    }

    /// A department report's figure for `metric`: the value given, or 0 in a zero report for a
    /// count its form asks.
    fn figure(
        &self,
        r: &RevisionRecord,
        form: &Form,
        metric: &MetricId,
        kind: MetricKind,
    ) -> Option<i64> {
        match r.values.iter().find(|v| v.metric == metric.as_str()) {
            Some(v) => Some(v.total.unwrap_or_else(|| v.parts.values().sum())),
            None => (r.zero_report
                && kind == MetricKind::Count
                && form.department_metrics().any(|m| m == metric))
            .then_some(0),
        }
    }

    /// The rows of a grouping: one per department, or the departments' sums per area or 系统.
    fn department_rows(
        &self,
        group: DepartmentGroup,
        members: &[&Department],
        tallies: Vec<Tally>,
    ) -> Vec<DepartmentRow> {
        let mut rows: BTreeMap<String, DepartmentRow> = BTreeMap::new();
        for (d, t) in members.iter().zip(tallies) {
            let (key, name, area, system) = match group {
                DepartmentGroup::Department => {
                    (d.id.clone(), d.name.clone(), Some(d.area), d.system.clone())
                }
                DepartmentGroup::Area => (
                    d.area.to_string(),
                    self.areas.name(d.area),
                    Some(d.area),
                    String::new(),
                ),
                DepartmentGroup::System => {
                    (d.system.clone(), d.system.clone(), None, d.system.clone())
                }
            };
            let row = rows.entry(key.clone()).or_insert_with(|| DepartmentRow {
                key,
                name,
                area,
                area_name: area.map(|a| self.areas.name(a)).unwrap_or_default(),
                system,
                value: None,
                rank: 0,
                expected: 0,
                received: 0,
                on_time: 0,
                missing: Vec::new(),
            });
            if let Some(v) = t.value() {
                row.value = Some(row.value.unwrap_or(0).saturating_add(v));
            }
            row.expected += t.expected;
            row.received += t.received;
            row.on_time += t.on_time;
            row.missing.extend(t.missing);
        }
        rows.into_values().collect()
    }
}

/// Rows largest value first, equal values sharing a rank (1, 2, 2, 4); rows without a value
/// last, unranked.
fn ranked(mut rows: Vec<DepartmentRow>) -> Vec<DepartmentRow> {
    rows.sort_by(|a, b| {
        b.value
            .is_some()
            .cmp(&a.value.is_some())
            .then(b.value.cmp(&a.value))
            .then(a.key.cmp(&b.key))
    });
    let mut previous: Option<(i64, u32)> = None;
    for (i, row) in rows.iter_mut().enumerate() {
        let Some(v) = row.value else { break };
        row.rank = match previous {
            Some((pv, rank)) if pv == v => rank,
            _ => i as u32 + 1,
        };
        previous = Some((v, row.rank));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, value: Option<i64>) -> DepartmentRow {
        DepartmentRow {
            key: key.into(),
            name: key.into(),
            area: None,
            area_name: String::new(),
            system: String::new(),
            value,
            rank: 0,
            expected: 0,
            received: 0,
            on_time: 0,
            missing: Vec::new(),
        }
    }

    #[test]
    fn equal_values_share_a_rank_and_rows_without_one_come_last() {
        let rows = ranked(vec![
            row("a", Some(3)),
            row("b", None),
            row("c", Some(9)),
            row("d", Some(3)),
            row("e", Some(1)),
        ]);
        let got: Vec<(&str, u32)> = rows.iter().map(|r| (r.key.as_str(), r.rank)).collect();
        assert_eq!(got, [("c", 1), ("a", 2), ("d", 2), ("e", 4), ("b", 0)]);
    }
}
