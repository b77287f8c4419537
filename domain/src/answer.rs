//! The answers to leaders' questions as domain types: what the hub's engine returns. The front
//! doors turn them into the wire replies (`From<...> for pb::...Reply`) once, at the edge.

use crate::{
    AreaCode, MetricKind, Period, Span, pb,
    question::{NATION, Root},
};

/// Who was expected to report, who did (on time or late) and who did not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Completeness {
    pub expected: u64,
    pub received: u64,
    pub on_time: u64,
    pub late: u64,
    pub missing: u64,
}

/// One category's part of a metric's total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub part: String,
    pub value: Option<i64>,
}

/// A metric's figures for an area: its own report's value and its subtree's total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figure {
    pub metric: String,
    pub name: String,
    pub unit: String,
    pub own: Option<i64>,
    pub total: Option<i64>,
    pub parts: Vec<Part>,
    pub kind: MetricKind,
}

/// An indicator's ratio of sums for an area's subtree.
#[derive(Debug, Clone, PartialEq)]
pub struct Rate {
    pub indicator: String,
    pub name: String,
    pub unit: String,
    pub value: Option<f64>,
    pub numerator: Option<f64>,
    pub denominator: Option<f64>,
}

/// An area's rollup over a span.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupAnswer {
    pub area: AreaCode,
    pub name: String,
    pub span: Span,
    pub figures: Vec<Figure>,
    pub rates: Vec<Rate>,
    pub completeness: Completeness,
    /// Approved figures only (审核).
    pub approved_only: bool,
    /// (received on forms with review, of which approved); none when no form of the span has
    /// review.
    pub review: Option<(u64, u64)>,
}

/// One area's row of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareRow {
    pub code: AreaCode,
    pub name: String,
    /// The figure, or the rate's numerator.
    pub value: Option<f64>,
    pub rate: Option<f64>,
    pub denominator: Option<f64>,
    /// 1 = first; 0 = not ranked (no figure).
    pub rank: u32,
    pub share: Option<f64>,
    pub yoy_base: Option<f64>,
    pub yoy_change: Option<f64>,
    pub yoy_pct: Option<f64>,
    pub mom_base: Option<f64>,
    pub mom_change: Option<f64>,
    pub mom_pct: Option<f64>,
    pub completeness: Completeness,
    pub z: Option<f64>,
    pub outlier: bool,
    pub withheld: bool,
}

/// A page of a comparison's rows as columns: row i is position i of every column (asked
/// `as_columns`: a national ranking's 40,000 rows are cheaper to build, write and read so).
/// Figures and counts are kept as they go on the wire (see [`crate::compare_columns`]): a
/// figure column is little-endian doubles with NaN for a row without the figure, empty when no
/// row has it ([`crate::compare_columns::figure_column`]); a count column is little-endian
/// 64-bit numbers ([`crate::compare_columns::count_column`]). The engine writes them once,
/// straight from its own columns in the page's order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompareColumns {
    pub code: Vec<AreaCode>,
    /// The rows' names one after another; row i's ends at `name_ends[i]`
    /// ([`Self::push_name`]).
    pub names: String,
    pub name_ends: Vec<u32>,
    pub rank: Vec<u32>,
    pub value: Vec<u8>,
    pub rate: Vec<u8>,
    pub denominator: Vec<u8>,
    pub share: Vec<u8>,
    pub yoy_base: Vec<u8>,
    pub yoy_change: Vec<u8>,
    pub yoy_pct: Vec<u8>,
    pub mom_base: Vec<u8>,
    pub mom_change: Vec<u8>,
    pub mom_pct: Vec<u8>,
    pub z: Vec<u8>,
    pub expected: Vec<u8>,
    pub received: Vec<u8>,
    pub on_time: Vec<u8>,
    pub late: Vec<u8>,
    pub missing: Vec<u8>,
    pub outlier: Vec<bool>,
    pub withheld: Vec<bool>,
}

/// A comparison: one page of rows, ranked first.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareAnswer {
    pub root: Root,
    pub name: String,
    pub span: Span,
    pub metric: String,
    pub metric_name: String,
    pub unit: String,
    pub is_rate: bool,
    pub parent_total: Option<f64>,
    pub parent_rate: Option<f64>,
    /// The page's rows; empty when they were asked as columns.
    pub rows: Vec<CompareRow>,
    /// The page's rows as columns, when asked so.
    pub columns: Option<CompareColumns>,
    pub next_page_token: String,
    pub total_rows: u64,
    pub approved_only: bool,
}

/// One span of a trend.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendPoint {
    pub span: Span,
    pub value: Option<f64>,
    pub yoy_base: Option<f64>,
    pub yoy_change: Option<f64>,
    pub yoy_pct: Option<f64>,
    pub completeness: Completeness,
}

/// An area's (or the nation's) series on one metric or indicator, and with a level, the series
/// of every area of that level below it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendAnswer {
    pub root: Root,
    pub name: String,
    pub metric: String,
    pub metric_name: String,
    pub unit: String,
    pub points: Vec<TrendPoint>,
    pub approved_only: bool,
    /// By code; empty when the question named no level.
    pub series: Vec<TrendSeries>,
}

/// One area's series within a [`TrendAnswer`].
#[derive(Debug, Clone, PartialEq)]
pub struct TrendSeries {
    pub area: AreaCode,
    pub name: String,
    pub points: Vec<TrendPoint>,
}

/// A reporter named in a completeness answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reporter {
    pub code: AreaCode,
    pub name: String,
    pub period: Period,
    /// When its first report arrived (0 for a missing one).
    pub received_at_ms: i64,
    /// The title of the form owed for the period.
    pub form: String,
}

/// Who reported under an area for a span: the counts, and one page of named reporters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletenessAnswer {
    pub area: AreaCode,
    pub name: String,
    pub span: Span,
    pub summary: Completeness,
    pub missing: Vec<Reporter>,
    pub late: Vec<Reporter>,
    pub unnamed_missing: u64,
    pub unnamed_late: u64,
    pub next_page_token: String,
    pub total_named: u64,
    /// 审核: (received reports that wait for review, of which approved: their current
    /// revision); `None` when none counted waits for review.
    pub review: Option<(u64, u64)>,
}

impl From<Completeness> for pb::CompletenessSummary {
    fn from(c: Completeness) -> Self {
        pb::CompletenessSummary {
            expected: c.expected,
            received: c.received,
            on_time: c.on_time,
            late: c.late,
            missing: c.missing,
        }
    }
}

impl From<Figure> for pb::Figure {
    fn from(f: Figure) -> Self {
        pb::Figure {
            metric: f.metric,
            name: f.name,
            unit: f.unit,
            own: f.own,
            total: f.total,
            parts: f
                .parts
                .into_iter()
                .map(|p| pb::Part {
                    part: p.part,
                    value: p.value,
                })
                .collect(),
            kind: match f.kind {
                MetricKind::Count => "count".into(),
                MetricKind::Stock => "stock".into(),
            },
        }
    }
}

impl From<Rate> for pb::Rate {
    fn from(r: Rate) -> Self {
        pb::Rate {
            indicator: r.indicator,
            name: r.name,
            unit: r.unit,
            value: r.value,
            numerator: r.numerator,
            denominator: r.denominator,
        }
    }
}

impl From<RollupAnswer> for pb::RollupReply {
    fn from(a: RollupAnswer) -> Self {
        pb::RollupReply {
            area: a.area.to_string(),
            name: a.name,
            period: a.span.to_string(),
            figures: a.figures.into_iter().map(Into::into).collect(),
            rates: a.rates.into_iter().map(Into::into).collect(),
            completeness: Some(a.completeness.into()),
            approved_only: a.approved_only,
            approved: a.review.map(|(_, approved)| approved),
            reviewed_received: a.review.map_or(0, |(received, _)| received),
        }
    }
}

impl From<CompareRow> for pb::CompareRow {
    fn from(r: CompareRow) -> Self {
        pb::CompareRow {
            code: r.code.to_string(),
            name: r.name,
            value: r.value,
            rate: r.rate,
            denominator: r.denominator,
            rank: r.rank,
            share: r.share,
            yoy_base: r.yoy_base,
            yoy_change: r.yoy_change,
            yoy_pct: r.yoy_pct,
            mom_base: r.mom_base,
            mom_change: r.mom_change,
            mom_pct: r.mom_pct,
            completeness: Some(r.completeness.into()),
            z: r.z,
            outlier: r.outlier,
            withheld: r.withheld,
        }
    }
}

impl From<CompareAnswer> for pb::CompareReply {
    fn from(a: CompareAnswer) -> Self {
        let (area, name) = match a.root {
            Root::Area(code) => (code.to_string(), a.name),
            Root::Nation => (NATION.to_owned(), NATION.to_owned()),
        };
        pb::CompareReply {
            area,
            name,
            period: a.span.to_string(),
            metric: a.metric,
            metric_name: a.metric_name,
            unit: a.unit,
            is_rate: a.is_rate,
            parent_total: a.parent_total,
            parent_rate: a.parent_rate,
            rows: a.rows.into_iter().map(Into::into).collect(),
            next_page_token: a.next_page_token,
            total_rows: a.total_rows,
            approved_only: a.approved_only,
            columns: a.columns.map(Into::into),
        }
    }
}

impl From<TrendAnswer> for pb::TrendReply {
    fn from(a: TrendAnswer) -> Self {
        // every series has the same spans: each written once, not once per point (a national
        // trend by county has 71,000 points)
        let mut said: Vec<(Span, String)> = Vec::new();
        let mut points = |points: Vec<TrendPoint>| -> Vec<pb::TrendPoint> {
            points
                .into_iter()
                .map(|p| {
                    let period = match said.iter().find(|(s, _)| *s == p.span) {
                        Some((_, text)) => text.clone(),
                        None => {
                            let text = p.span.to_string();
                            said.push((p.span, text.clone()));
                            text
                        }
                    };
                    trend_point(p, period)
                })
                .collect()
        };
        pb::TrendReply {
            area: a.root.to_string(),
            name: a.name,
            metric: a.metric,
            metric_name: a.metric_name,
            unit: a.unit,
            points: points(a.points),
            approved_only: a.approved_only,
            series: a
                .series
                .into_iter()
                .map(|s| pb::TrendSeries {
                    area: s.area.to_string(),
                    name: s.name,
                    points: points(s.points),
                })
                .collect(),
            series_columns: None,
        }
    }
}

impl From<TrendPoint> for pb::TrendPoint {
    fn from(p: TrendPoint) -> Self {
        let period = p.span.to_string();
        trend_point(p, period)
    }
}

/// A point on the wire, its span already written as `period`.
fn trend_point(p: TrendPoint, period: String) -> pb::TrendPoint {
    pb::TrendPoint {
        period,
        value: p.value,
        yoy_base: p.yoy_base,
        yoy_change: p.yoy_change,
        yoy_pct: p.yoy_pct,
        completeness: Some(p.completeness.into()),
    }
}

impl From<Reporter> for pb::Reporter {
    fn from(r: Reporter) -> Self {
        pb::Reporter {
            code: r.code.to_string(),
            name: r.name,
            period: r.period.to_string(),
            received_at_ms: r.received_at_ms,
            form: r.form,
        }
    }
}

impl From<CompletenessAnswer> for pb::CompletenessReply {
    fn from(a: CompletenessAnswer) -> Self {
        pb::CompletenessReply {
            area: a.area.to_string(),
            name: a.name,
            period: a.span.to_string(),
            summary: Some(a.summary.into()),
            missing: a.missing.into_iter().map(Into::into).collect(),
            late: a.late.into_iter().map(Into::into).collect(),
            unnamed_missing: a.unnamed_missing,
            unnamed_late: a.unnamed_late,
            next_page_token: a.next_page_token,
            total_named: a.total_named,
            approved: a.review.map(|(_, approved)| approved),
            reviewed_received: a.review.map_or(0, |(received, _)| received),
        }
    }
}

/// One row of a departments answer: a department, or the departments of an area or a 系统.
#[derive(Debug, Clone, PartialEq)]
pub struct DepartmentRow {
    /// The department's id, the area's code or the 系统's name.
    pub key: String,
    pub name: String,
    /// The department's area (or the row's area), code and name; none for a 系统 row.
    pub area: Option<AreaCode>,
    pub area_name: String,
    /// The department's 系统; empty for an area row.
    pub system: String,
    pub value: Option<i64>,
    /// 1 for the largest value (equal values share a rank); 0: no value.
    pub rank: u32,
    pub expected: u64,
    pub received: u64,
    pub on_time: u64,
    /// Departments that owe a report over the span and have not sent it: `id 名称 期间`.
    pub missing: Vec<String>,
}

/// Departments compared among themselves (see [`crate::question::DepartmentsQuery`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DepartmentsAnswer {
    pub area: AreaCode,
    pub name: String,
    pub span: String,
    pub metric: String,
    pub metric_name: String,
    pub unit: String,
    pub group: crate::question::DepartmentGroup,
    /// The departments' form read, by title.
    pub form: String,
    pub rows: Vec<DepartmentRow>,
}

impl From<DepartmentRow> for pb::DepartmentRow {
    fn from(r: DepartmentRow) -> Self {
        pb::DepartmentRow {
            key: r.key,
            name: r.name,
            area: r.area.map(|a| a.to_string()).unwrap_or_default(),
            area_name: r.area_name,
            system: r.system,
            value: r.value,
            rank: r.rank,
            expected: r.expected,
            received: r.received,
            on_time: r.on_time,
            missing: r.missing,
        }
    }
}

impl From<DepartmentsAnswer> for pb::DepartmentsReply {
    fn from(a: DepartmentsAnswer) -> Self {
        pb::DepartmentsReply {
            area: a.area.to_string(),
            name: a.name,
            period: a.span,
            metric: a.metric,
            metric_name: a.metric_name,
            unit: a.unit,
            group: a.group.as_str().to_owned(),
            form: a.form,
            rows: a.rows.into_iter().map(Into::into).collect(),
        }
    }
}
