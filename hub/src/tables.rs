//! The tables leaders read, one definition for every place they are shown: the command line
//! (aligned text, CSV, JSON), the web dashboard (JSON with raw and shown values) and the
//! spreadsheets it downloads (.xlsx with numbers as numbers and percentages as percentages, and
//! CSV). Each `*_table` turns one QueryService answer into a [`Table`].

use std::fmt::Write as _;

use pingan_domain::{Catalogue, pb};
use serde_json::{Map, Value, json};
use unicode_width::UnicodeWidthStr;

/// One cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Int(i64),
    /// A number shown with this many decimals in tables.
    Num(f64, usize),
    /// A percentage in percent units (12.5 is 12.5%), shown with this many decimals; a
    /// spreadsheet holds it as the fraction 0.125 formatted as a percentage.
    Pct(f64, usize),
    Bool(bool),
    Missing,
}

impl Cell {
    fn opt_int(v: Option<i64>) -> Cell {
        v.map_or(Cell::Missing, Cell::Int)
    }

    fn opt_num(v: Option<f64>, decimals: usize) -> Cell {
        v.map_or(Cell::Missing, |x| Cell::Num(x, decimals))
    }

    fn opt_pct(v: Option<f64>, decimals: usize) -> Cell {
        v.map_or(Cell::Missing, |x| Cell::Pct(x, decimals))
    }

    /// An indicator's value: a percentage when its unit is %, a number otherwise.
    fn opt_rate(v: Option<f64>, unit: &str) -> Cell {
        if unit == "%" {
            Cell::opt_pct(v, 2)
        } else {
            Cell::opt_num(v, 2)
        }
    }

    /// A count held as f64 (compare values).
    fn opt_count(v: Option<f64>) -> Cell {
        v.map_or(Cell::Missing, |x| {
            if x.fract() == 0.0 {
                Cell::Int(x as i64)
            } else {
                Cell::Num(x, 2)
            }
        })
    }

    /// The cell as shown in tables ("—" when missing).
    pub fn shown(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Num(x, d) => format!("{x:.d$}"),
            Cell::Pct(x, d) => format!("{x:.d$}%"),
            Cell::Bool(b) => {
                if *b {
                    "是".into()
                } else {
                    String::new()
                }
            }
            Cell::Missing => "—".into(),
        }
    }

    /// The cell in CSV: numbers rounded as shown (a percentage in percent units, its header
    /// says %), yes/no as 是 or empty, missing as empty.
    fn csv(&self) -> String {
        match self {
            Cell::Num(x, d) | Cell::Pct(x, d) => format!("{x:.d$}"),
            Cell::Missing => String::new(),
            other => other.shown(),
        }
    }

    fn json(&self) -> Value {
        match self {
            Cell::Text(s) => json!(s),
            Cell::Int(n) => json!(n),
            Cell::Num(x, _) | Cell::Pct(x, _) => json!(x),
            Cell::Bool(b) => json!(b),
            Cell::Missing => Value::Null,
        }
    }

    fn is_numeric(&self) -> bool {
        matches!(
            self,
            Cell::Int(_) | Cell::Num(..) | Cell::Pct(..) | Cell::Missing
        )
    }
}

/// A titled table: columns as (json key, Chinese header).
#[derive(Debug, Clone)]
pub struct Table {
    pub title: String,
    pub columns: Vec<(&'static str, String)>,
    pub rows: Vec<Vec<Cell>>,
    /// Lines printed under a terminal table (summaries).
    pub notes: Vec<String>,
    /// A figure a chart of the table draws as a line across its bars (the parent's rate, or
    /// the average of the rows), with its label.
    pub reference: Option<(String, f64)>,
}

impl Table {
    /// Aligned text, widths counted in terminal columns (a CJK character takes two).
    pub fn to_text(&self) -> String {
        let shown: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(Cell::shown).collect())
            .collect();
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|i| {
                shown
                    .iter()
                    .map(|r| r[i].width())
                    .chain([self.columns[i].1.width()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let pad = |s: &str, w: usize, right: bool| {
            let fill = " ".repeat(w.saturating_sub(s.width()));
            if right {
                format!("{fill}{s}")
            } else {
                format!("{s}{fill}")
            }
        };
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.title);
        let header: Vec<String> = self
            .columns
            .iter()
            .zip(&widths)
            .map(|((_, h), w)| pad(h, *w, false))
            .collect();
        let _ = writeln!(out, "{}", header.join("  ").trim_end());
        for (cells, row) in shown.iter().zip(&self.rows) {
            let line: Vec<String> = cells
                .iter()
                .zip(&widths)
                .zip(row)
                .map(|((s, w), c)| pad(s, *w, c.is_numeric()))
                .collect();
            let _ = writeln!(out, "{}", line.join("  ").trim_end());
        }
        for n in &self.notes {
            let _ = writeln!(out, "{n}");
        }
        out
    }

    /// CSV with a UTF-8 BOM and Chinese headers; numbers unrounded; missing as empty.
    pub fn to_csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let _ = w.write_record(self.columns.iter().map(|c| c.1.as_str()));
        for r in &self.rows {
            let _ = w.write_record(r.iter().map(Cell::csv));
        }
        let body = String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default();
        format!("\u{feff}{body}")
    }

    /// JSON: an array of objects keyed by plain field names.
    pub fn to_json(&self) -> Value {
        Value::Array(
            self.rows
                .iter()
                .map(|r| {
                    let mut m = Map::new();
                    for ((key, _), c) in self.columns.iter().zip(r) {
                        m.insert((*key).to_owned(), c.json());
                    }
                    Value::Object(m)
                })
                .collect(),
        )
    }
}

/// Columns from (json key, Chinese header) pairs.
fn columns(cols: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    cols.iter().map(|(k, h)| (*k, (*h).to_owned())).collect()
}

/// Who a completeness summary counts, said beside its numbers: every reporting level of the
/// area's subtree, or one level.
fn reporters_of(level: Option<pingan_domain::Level>) -> String {
    match level {
        None => "本级及所有下级上报单位".into(),
        Some(l) => format!("{}级上报单位", l.zh()),
    }
}

fn completeness_note(c: &pb::CompletenessSummary, who: &str) -> String {
    format!(
        "上报情况（{who}）: 应报 {}, 已报 {} (按时 {}, 迟报 {}), 未报 {}, 上报率 {}",
        c.expected,
        c.received,
        c.on_time,
        c.late,
        c.missing,
        if c.expected == 0 {
            "—".to_owned()
        } else {
            format!("{:.1}%", c.received as f64 / c.expected as f64 * 100.0)
        }
    )
}

/// The rollup as a table: one row per metric (and part), then the rates.
pub fn rollup_table(r: &pb::RollupReply) -> Table {
    let mut rows = Vec::new();
    for f in &r.figures {
        rows.push(vec![
            Cell::Text(f.metric.clone()),
            Cell::Text(f.name.clone()),
            Cell::Text(f.unit.clone()),
            Cell::opt_int(f.own),
            Cell::opt_int(f.total),
        ]);
        for p in &f.parts {
            rows.push(vec![
                Cell::Text(format!("{}[{}]", f.metric, p.part)),
                Cell::Text(format!("  其中 {}", p.part)),
                Cell::Text(f.unit.clone()),
                Cell::Missing,
                Cell::opt_int(p.value),
            ]);
        }
    }
    for rate in &r.rates {
        rows.push(vec![
            Cell::Text(rate.indicator.clone()),
            Cell::Text(rate.name.clone()),
            Cell::Text(rate.unit.clone()),
            Cell::Missing,
            Cell::opt_rate(rate.value, &rate.unit),
        ]);
    }
    Table {
        title: format!("{} {} {} 汇总", r.area, r.name, r.period),
        columns: columns(&[
            ("metric", "指标代码"),
            ("name", "指标"),
            ("unit", "单位"),
            ("own", "本级"),
            ("total", "合计"),
        ]),
        rows,
        notes: r
            .completeness
            .iter()
            .map(|c| completeness_note(c, &reporters_of(None)))
            .chain(figures_note(r.approved_only, rollup_review(r)))
            .collect(),
        reference: None,
    }
}

/// A rollup's (received that wait for review, approved of them), when some wait for review.
fn rollup_review(r: &pb::RollupReply) -> Option<(u64, u64)> {
    r.approved.map(|a| (r.reviewed_received, a))
}

/// Column keys of an assessment's items: its points and the figure behind them (a scheme has at
/// most [`pingan_domain::assess::MAX_ITEMS`] items).
const ITEM_POINTS: [&str; 30] = [
    "p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9", "p10", "p11", "p12", "p13", "p14",
    "p15", "p16", "p17", "p18", "p19", "p20", "p21", "p22", "p23", "p24", "p25", "p26", "p27",
    "p28", "p29",
];
const ITEM_VALUES: [&str; 30] = [
    "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13", "v14",
    "v15", "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27",
    "v28", "v29",
];

/// 考核: the areas in rank order with their total, every item's points and the figure behind
/// them, the bonus, vetoes and yellow cards, and why a total is what it is.
pub fn assess_table(r: &pb::AssessReply) -> Table {
    let mut cols = columns(&[
        ("rank", "排名"),
        ("code", "代码"),
        ("name", "名称"),
        ("total", "总分"),
    ]);
    for (i, item) in r.items.iter().enumerate().take(ITEM_POINTS.len()) {
        let unit = if item.weight > 0.0 {
            format!("{}分", item.weight)
        } else {
            "扣分".into()
        };
        cols.push((ITEM_POINTS[i], format!("{}({unit})", item.name)));
        cols.push((ITEM_VALUES[i], format!("{}数值", item.name)));
    }
    cols.extend(columns(&[
        ("bonus", "加分"),
        ("veto", "一票否决"),
        ("yellow", "黄牌"),
        ("missing", "缺报"),
        ("note", "说明"),
    ]));
    let rows = r
        .rows
        .iter()
        .map(|a| {
            let mut row = vec![
                if a.rank > 0 {
                    Cell::Int(i64::from(a.rank))
                } else {
                    Cell::Missing
                },
                Cell::Text(a.code.clone()),
                Cell::Text(a.name.clone()),
                Cell::opt_num(a.total, 2),
            ];
            for (i, _) in r.items.iter().enumerate().take(ITEM_POINTS.len()) {
                let s = a.items.get(i);
                row.push(Cell::opt_num(s.map(|s| s.points), 2));
                row.push(Cell::opt_num(s.and_then(|s| s.value), 2));
            }
            row.extend([
                Cell::Num(a.bonus, 2),
                Cell::Text(a.vetoes.join("、")),
                Cell::Text(a.yellow.join("、")),
                Cell::Int(a.missing as i64),
                Cell::Text(a.note.clone()),
            ]);
            row
        })
        .collect();
    let mut notes = vec![format!(
        "{}：满分 {}；{}",
        r.title,
        r.full_marks,
        if r.approved_only {
            "仅计已审核的报表"
        } else {
            "按全部已报数据计（含未审核）"
        }
    )];
    notes.extend(r.items.iter().map(|i| format!("{}：{}", i.name, i.rule)));
    notes.extend(r.bonus.iter().map(|b| format!("加分 {b}")));
    Table {
        title: format!("{} {} {} {}", r.area, r.name, r.period, r.title),
        columns: cols,
        rows,
        notes,
        reference: None,
    }
}

/// What a table's figures are (审核): approved ones only, or current ones of which some wait
/// for review (provisional) — `review` is (received that wait for review, approved of them).
fn figures_note(approved_only: bool, review: Option<(u64, u64)>) -> Option<String> {
    if approved_only {
        return Some(
            "仅已审核数据：待审核、被退回的报表不计入（更正待审时计其上次审核通过的一版），应报/已报中的已报为已审份数".into(),
        );
    }
    match review {
        Some((received, approved)) if approved < received => Some(format!(
            "含未审核数据（初步）：需审核的已报 {received} 份中已审 {approved} 份；只看已审核的数据请选“仅已审核”"
        )),
        _ => None,
    }
}

/// The comparison as a table, in rank order. For an indicator (a rate) the table shows its
/// numerator and denominator, the rate, and 去年同期/上期 as rates too, with their changes in
/// percentage points; for a metric, the figure itself.
pub fn compare_table(r: &pb::CompareReply) -> Table {
    let rate = r.is_rate;
    let pct = r.unit == "%";
    let rows = r.rows.iter().map(|x| compare_row(r, x)).collect();
    let parent = match (r.is_rate, r.parent_rate, r.parent_total) {
        (true, value, _) => format!(
            "全域 {}: {}",
            r.metric_name,
            Cell::opt_rate(value, &r.unit).shown()
        ),
        (false, _, total) => format!("全域合计: {}", Cell::opt_count(total).shown()),
    };
    let unit = |name: &str| format!("{name}({})", r.unit);
    let points = if pct { "(百分点)" } else { "" };
    let mut cols: Vec<(&'static str, String)> = columns(&[
        ("rank", "排名"),
        ("code", "代码"),
        ("name", "名称"),
        ("value", if rate { "分子" } else { "数值" }),
    ]);
    if rate {
        cols.push(("denominator", "分母".into()));
        cols.push(("rate", unit("比率")));
    }
    let base_title = |name: &str| if rate { unit(name) } else { name.to_owned() };
    cols.extend([
        ("share", "占比%".into()),
        ("yoy_base", base_title("去年同期")),
        ("yoy_change", format!("同比增减{points}")),
        ("yoy_pct", "同比%".into()),
        ("mom_base", base_title("上期")),
        ("mom_change", format!("环比增减{points}")),
        ("mom_pct", "环比%".into()),
        ("expected", "应报".into()),
        ("received", "已报".into()),
        ("on_time", "按时".into()),
        ("complete", "完成".into()),
        ("outlier", "异常".into()),
    ]);
    Table {
        title: format!(
            "{} {} {} 按「{}」({}) 排名",
            r.area, r.name, r.period, r.metric_name, r.unit
        ),
        columns: cols,
        rows,
        notes: [
            parent,
            "— 表示无数据或无法计算 (分母为0)，不是0；应报/已报为各单位及其下级上报单位".into(),
        ]
        .into_iter()
        .chain(figures_note(r.approved_only, None))
        .collect(),
        reference: compare_reference(r),
    }
}

/// The line a ranking's chart draws: the parent's rate for an indicator, the rows' average
/// (the parent's total over its areas) for a metric.
fn compare_reference(r: &pb::CompareReply) -> Option<(String, f64)> {
    if r.is_rate {
        return r
            .parent_rate
            .map(|v| (format!("全域 {}", r.metric_name), v));
    }
    let n = r.rows.len();
    r.parent_total
        .filter(|_| n > 0)
        .map(|t| ("平均（全域合计÷区域数）".to_owned(), t / n as f64))
}

/// One area's row of a comparison table.
fn compare_row(r: &pb::CompareReply, x: &pb::CompareRow) -> Vec<Cell> {
    let rate = r.is_rate;
    let c = x.completeness.unwrap_or_default();
    let mut row = vec![
        if x.rank == 0 {
            Cell::Missing
        } else {
            Cell::Int(i64::from(x.rank))
        },
        Cell::Text(x.code.clone()),
        Cell::Text(x.name.clone()),
        Cell::opt_count(x.value),
    ];
    if rate {
        row.push(Cell::opt_count(x.denominator));
        row.push(Cell::opt_rate(x.rate, &r.unit));
    }
    // a rate's bases are rates, its changes percentage points
    let base = |v: Option<f64>| {
        if rate {
            Cell::opt_rate(v, &r.unit)
        } else {
            Cell::opt_count(v)
        }
    };
    let change = |v: Option<f64>| {
        if rate {
            Cell::opt_num(v, 2)
        } else {
            Cell::opt_count(v)
        }
    };
    row.extend([
        Cell::opt_pct(x.share, 1),
        base(x.yoy_base),
        change(x.yoy_change),
        Cell::opt_pct(x.yoy_pct, 1),
        base(x.mom_base),
        change(x.mom_change),
        Cell::opt_pct(x.mom_pct, 1),
        Cell::Int(c.expected as i64),
        Cell::Int(c.received as i64),
        Cell::Int(c.on_time as i64),
        // 已完成: every report expected of the area's subtree is in (a county may close its month)
        Cell::Text(match c.expected.saturating_sub(c.received) {
            _ if c.expected == 0 => String::new(),
            0 => "已完成".into(),
            n => format!("缺 {n}"),
        }),
        Cell::Bool(x.outlier),
    ]);
    row
}

/// The trend as a table, oldest first.
pub fn trend_table(r: &pb::TrendReply) -> Table {
    let rows = r
        .points
        .iter()
        .map(|p| {
            let mut row = vec![Cell::Text(p.period.clone())];
            row.extend(trend_cells(r, p));
            row
        })
        .collect();
    let title = format!(
        "{} {} 「{}」({}) 走势",
        r.area, r.name, r.metric_name, r.unit
    );
    trend_shaped(r, title, &[("period", "期间")], rows)
}

/// A trend with a series per area (`TrendRequest.level`): one row per area and period, the
/// asked area's own series first, then each area below by code (long form, as a pivot table
/// in Excel or WPS takes it).
pub fn trend_series_table(r: &pb::TrendReply) -> Table {
    let own = std::iter::once((&r.area, &r.name, &r.points));
    let below = r.series.iter().map(|s| (&s.area, &s.name, &s.points));
    let rows = own
        .chain(below)
        .flat_map(|(code, name, points)| {
            points.iter().map(move |p| {
                let mut row = vec![
                    Cell::Text(code.clone()),
                    Cell::Text(name.clone()),
                    Cell::Text(p.period.clone()),
                ];
                row.extend(trend_cells(r, p));
                row
            })
        })
        .collect();
    let title = format!(
        "{} {} 及下辖 {} 个地区「{}」({}) 走势",
        r.area,
        r.name,
        r.series.len(),
        r.metric_name,
        r.unit
    );
    let lead = [("code", "代码"), ("name", "名称"), ("period", "期间")];
    trend_shaped(r, title, &lead, rows)
}

/// A trend's table: the `lead` columns each row starts with, then [`trend_cells`]' columns.
fn trend_shaped(
    r: &pb::TrendReply,
    title: String,
    lead: &[(&'static str, &str)],
    rows: Vec<Vec<Cell>>,
) -> Table {
    Table {
        title,
        columns: columns(lead).into_iter().chain(trend_columns(r)).collect(),
        rows,
        notes: figures_note(r.approved_only, None).into_iter().collect(),
        reference: None,
    }
}

/// A trend point's cells after its period: value, year-earlier value, 同比, reporters.
fn trend_cells(r: &pb::TrendReply, p: &pb::TrendPoint) -> Vec<Cell> {
    let c = p.completeness.unwrap_or_default();
    // a percentage indicator reads as a percentage in every column that holds it
    let value = |v: Option<f64>| {
        if r.unit == "%" {
            Cell::opt_pct(v, 2)
        } else {
            Cell::opt_count(v)
        }
    };
    vec![
        value(p.value),
        value(p.yoy_base),
        Cell::opt_num(p.yoy_change, 2),
        Cell::opt_pct(p.yoy_pct, 1),
        Cell::Int(c.expected as i64),
        Cell::Int(c.received as i64),
    ]
}

/// The columns of [`trend_cells`].
fn trend_columns(r: &pb::TrendReply) -> Vec<(&'static str, String)> {
    let pct = r.unit == "%";
    columns(&[
        ("value", if pct { "比率(%)" } else { "数值" }),
        ("yoy_base", "去年同期"),
        (
            "yoy_change",
            if pct {
                "同比增减(百分点)"
            } else {
                "同比增减"
            },
        ),
        ("yoy_pct", "同比%"),
        ("expected", "应报"),
        ("received", "已报"),
    ])
}

/// Departments (条) compared among themselves, or their sums by area or 系统: rank, figure and
/// what they owed over the period.
pub fn departments_table(r: &pb::DepartmentsReply) -> Table {
    let rows = r
        .rows
        .iter()
        .map(|row| {
            vec![
                Cell::opt_int((row.rank > 0).then_some(i64::from(row.rank))),
                Cell::Text(row.key.clone()),
                Cell::Text(row.name.clone()),
                Cell::Text(row.area_name.clone()),
                Cell::Text(row.system.clone()),
                Cell::opt_int(row.value),
                Cell::Int(row.expected as i64),
                Cell::Int(row.received as i64),
                Cell::Int(row.on_time as i64),
                Cell::Text(row.missing.join("；")),
            ]
        })
        .collect();
    let by = match r.group.as_str() {
        "area" => "按所属区划汇总",
        "system" => "按系统汇总",
        _ => "部门排名",
    };
    let key = match r.group.as_str() {
        "area" => "区划代码",
        "system" => "系统",
        _ => "部门代码",
    };
    Table {
        title: format!(
            "{} {} 的部门（条）{} {}「{}」({}) {by}",
            r.area, r.name, r.form, r.period, r.metric_name, r.unit
        ),
        columns: columns(&[
            ("rank", "名次"),
            ("key", key),
            ("name", "名称"),
            ("area", "所属区划"),
            ("system", "系统"),
            ("value", "数值"),
            ("expected", "应报"),
            ("received", "已报"),
            ("on_time", "按时"),
            ("missing", "未报"),
        ]),
        rows,
        notes: if r.rows.is_empty() {
            vec!["本区域没有部门（条）：部门名录由 pingan-hub serve --departments 给出".into()]
        } else {
            vec![
                "部门数字单独汇总，不计入区划（块）的合计 (departments are never added into territorial totals)".into(),
            ]
        },
        reference: None,
    }
}

/// The report forms of a catalogue: id, title, period, deadline, reporters and how many metrics
/// each level fills in; with `metrics`, one row per form, section and metric.
pub fn forms_table(catalogue: &Catalogue, metrics: bool) -> Table {
    use pingan_domain::{form::period_zh, period::PeriodKind};
    let deadline = |f: &pingan_domain::Form| match (f.period, f.deadline.day, f.deadline.hour) {
        (PeriodKind::Day, _, Some(h)) => format!("当日 {h}:00 前"),
        (PeriodKind::Day, _, None) => "当日（平台默认时刻）".into(),
        (_, Some(d), _) => format!("期末后第 {d} 日内"),
        _ => "平台默认".into(),
    };
    let mut rows = Vec::new();
    for f in catalogue.forms() {
        let mut levels: Vec<String> = f
            .levels
            .iter()
            .map(|l| format!("{}({})", l.zh(), f.metrics_for(*l).count()))
            .collect();
        if f.departments {
            levels.push(format!("部门({})", f.department_metrics().count()));
        }
        rows.push(vec![
            Cell::Text(f.id.clone()),
            Cell::Text(if f.default {
                format!("{}（默认）", f.zh)
            } else {
                f.zh.clone()
            }),
            Cell::Text(if f.active.is_empty() {
                period_zh(f.period).into()
            } else {
                let spans: Vec<String> = f.active.iter().map(|s| s.to_string()).collect();
                format!("{}（仅 {}）", period_zh(f.period), spans.join("、"))
            }),
            Cell::Text(deadline(f)),
            Cell::Text(levels.join(" ")),
            Cell::Text(String::new()),
        ]);
        if metrics {
            for sec in &f.sections {
                let who = sec
                    .levels
                    .as_ref()
                    .map(|ls| {
                        let zh: Vec<&str> = ls.iter().map(|l| l.zh()).collect();
                        format!("（{}填）", zh.join("、"))
                    })
                    .unwrap_or_default();
                for m in &sec.metrics {
                    let def = catalogue.metric(m);
                    rows.push(vec![
                        Cell::Text(String::new()),
                        Cell::Text(format!("  {}{who}", sec.zh)),
                        Cell::Text(String::new()),
                        Cell::Text(String::new()),
                        Cell::Text(String::new()),
                        Cell::Text(format!("{} [{}]", catalogue.label(m), def.unit)),
                    ]);
                }
            }
        }
    }
    let retired: Vec<String> = catalogue
        .metrics()
        .iter()
        .filter(|m| m.retired)
        .map(|m| catalogue.label(&m.id))
        .collect();
    Table {
        title: "报表 (report forms)".into(),
        columns: columns(&[
            ("form", "报表代码"),
            ("title", "报表"),
            ("period", "周期"),
            ("deadline", "报送时限"),
            ("reporters", "填报层级(指标数)"),
            ("metric", "指标"),
        ]),
        rows,
        notes: if retired.is_empty() {
            Vec::new()
        } else {
            vec![format!("已停用（保留历史）：{}", retired.join("、"))]
        },
        reference: None,
    }
}

/// Completeness: the missing and late reporters, of every reporting level or of `level`.
/// Reporters a child hub summarizes are counted, not named: a note says how many and where
/// their names are.
pub fn completeness_table(r: &pb::CompletenessReply, level: Option<pingan_domain::Level>) -> Table {
    let time = crate::clock::minute_text;
    let mut rows: Vec<Vec<Cell>> = r
        .missing
        .iter()
        .map(|m| {
            vec![
                Cell::Text(m.code.clone()),
                Cell::Text(m.name.clone()),
                Cell::Text(m.period.clone()),
                Cell::Text("未报".into()),
                Cell::Missing,
                Cell::Text(m.form.clone()),
            ]
        })
        .collect();
    rows.extend(r.late.iter().map(|m| {
        vec![
            Cell::Text(m.code.clone()),
            Cell::Text(m.name.clone()),
            Cell::Text(m.period.clone()),
            Cell::Text("迟报".into()),
            Cell::Text(time(m.received_at_ms)),
            Cell::Text(m.form.clone()),
        ]
    }));
    Table {
        title: format!("{} {} {} 上报情况", r.area, r.name, r.period),
        columns: columns(&[
            ("code", "代码"),
            ("name", "名称"),
            ("period", "期间"),
            ("status", "状态"),
            ("received_at", "收到时间"),
            ("form", "报表"),
        ]),
        rows,
        notes: completeness_notes(r, level),
        reference: None,
    }
}

/// The summary line, and what the list does not name.
fn completeness_notes(
    r: &pb::CompletenessReply,
    level: Option<pingan_domain::Level>,
) -> Vec<String> {
    let mut notes: Vec<String> = r
        .summary
        .iter()
        .map(|c| completeness_note(c, &reporters_of(level)))
        .collect();
    if let Some(approved) = r.approved {
        notes.push(format!(
            "审核：已报 {} 份中已审 {approved} 份（需审核的报表；其余待审核或被退回）",
            r.reviewed_received
        ));
    }
    if r.unnamed_missing + r.unnamed_late > 0 {
        notes.push(format!(
            "另有未报 {}、迟报 {} 个单位在下级平台的汇总里，本平台只有数量：名单请到下级平台查询 (counted by a child hub, named there)",
            r.unnamed_missing, r.unnamed_late
        ));
    }
    notes
}

/// One line of a breakdown: a metric's total or an indicator's rate, now and a year earlier.
struct Line<'a> {
    id: &'a str,
    name: &'a str,
    unit: &'a str,
    now: Option<f64>,
    base: Option<f64>,
    rate: bool,
}

/// The rollup broken down by indicator group (矛盾纠纷, 案件, 信访, 巡逻防控, ...): each group's
/// metrics and rates with their subtree totals, a year earlier and 同比. Metrics of no group
/// come last under 其他.
pub fn breakdown_table(
    now: &pb::RollupReply,
    year_earlier: &pb::RollupReply,
    catalogue: &Catalogue,
) -> Table {
    let group_rank = |id: &str| {
        catalogue
            .group_of(id)
            .and_then(|g| catalogue.groups().iter().position(|x| x.id == g.id))
            .unwrap_or(usize::MAX)
    };
    let mut lines = breakdown_lines(now, year_earlier);
    // only the metrics some form asks for periods like these (a month shows no daily-only
    // 重点人员 rows), and the retired ones, which old reports may carry
    if let Ok(span) = now.period.parse::<pingan_domain::Span>() {
        use pingan_domain::form::family;
        let read = family(span.base_kind());
        let asked = |id: &str| {
            catalogue.metric_id(id).is_none_or(|m| {
                catalogue.metric(&m).retired
                    || catalogue.forms().iter().any(|f| {
                        family(f.period) == read
                            && f.sections.iter().any(|s| s.metrics.contains(&m))
                    })
            })
        };
        lines.retain(|l| l.rate || asked(l.id));
    }
    // stable: catalogue order within a group, metrics before rates
    lines.sort_by_key(|l| group_rank(l.id));
    let rows = lines.iter().map(|l| breakdown_row(l, catalogue)).collect();
    Table {
        title: format!("{} {} {} 分类汇总", now.area, now.name, now.period),
        columns: columns(&[
            ("group", "类别"),
            ("metric", "指标代码"),
            ("name", "指标"),
            ("unit", "单位"),
            ("total", "合计"),
            ("yoy_base", "去年同期"),
            ("yoy_change", "同比增减"),
            ("yoy_pct", "同比%"),
        ]),
        rows,
        notes: now
            .completeness
            .iter()
            .map(|c| completeness_note(c, &reporters_of(None)))
            .chain(figures_note(now.approved_only, rollup_review(now)))
            .collect(),
        reference: None,
    }
}

/// Every figure and rate of `now`, with its value a year earlier.
fn breakdown_lines<'a>(now: &'a pb::RollupReply, year_earlier: &pb::RollupReply) -> Vec<Line<'a>> {
    let base_of = |id: &str| {
        year_earlier
            .figures
            .iter()
            .find(|f| f.metric == id)
            .and_then(|f| f.total)
            .map(|v| v as f64)
    };
    let rate_base_of = |id: &str| {
        year_earlier
            .rates
            .iter()
            .find(|r| r.indicator == id)
            .and_then(|r| r.value)
    };
    now.figures
        .iter()
        .map(|f| Line {
            id: &f.metric,
            name: &f.name,
            unit: &f.unit,
            now: f.total.map(|v| v as f64),
            base: base_of(&f.metric),
            rate: false,
        })
        .chain(now.rates.iter().map(|r| Line {
            id: &r.indicator,
            name: &r.name,
            unit: &r.unit,
            now: r.value,
            base: rate_base_of(&r.indicator),
            rate: true,
        }))
        .collect()
}

/// A breakdown line as a row: group, metric, value now and a year earlier, 同比.
fn breakdown_row(l: &Line<'_>, catalogue: &Catalogue) -> Vec<Cell> {
    let group = catalogue.group_of(l.id).map_or("其他", |g| g.zh.as_str());
    let change = match (l.now, l.base) {
        (Some(n), Some(b)) => Some(n - b),
        _ => None,
    };
    let pct = match (change, l.base) {
        (Some(c), Some(b)) if b != 0.0 => Some(c / b * 100.0),
        _ => None,
    };
    let value = |v: Option<f64>| {
        if l.rate {
            Cell::opt_rate(v, l.unit)
        } else {
            Cell::opt_count(v)
        }
    };
    vec![
        Cell::Text(group.to_owned()),
        Cell::Text(l.id.to_owned()),
        Cell::Text(l.name.to_owned()),
        Cell::Text(l.unit.to_owned()),
        value(l.now),
        value(l.base),
        if l.rate {
            Cell::opt_num(change, 2)
        } else {
            Cell::opt_count(change)
        },
        Cell::opt_pct(pct, 1),
    ]
}

impl Table {
    /// For the web page: columns with their Chinese headers, and each cell as its raw value
    /// (`v`, null when missing; percentages in percent units) and its shown text (`s`).
    pub fn to_web_json(&self) -> Value {
        let columns: Vec<Value> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, (key, title))| {
                let numeric = self.rows.iter().all(|r| r[i].is_numeric());
                json!({"key": key, "title": title, "numeric": numeric})
            })
            .collect();
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                Value::Array(
                    r.iter()
                        .map(|c| json!({"v": c.json(), "s": c.shown()}))
                        .collect(),
                )
            })
            .collect();
        let reference = self
            .reference
            .as_ref()
            .map(|(label, value)| json!({"label": label, "value": value}));
        json!({"title": self.title, "columns": columns, "rows": rows, "notes": self.notes, "reference": reference})
    }

    /// An Excel workbook of one sheet: the title in the first row, the Chinese headers in the
    /// second, then the rows (counts and numbers as numbers, percentages as percentages, missing
    /// as empty cells) and the notes under them.
    pub fn to_xlsx(&self) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
        use rust_xlsxwriter::{Format, Workbook};
        let mut book = Workbook::new();
        let sheet = book.add_worksheet();
        let bold = Format::new().set_bold();
        let int = Format::new().set_num_format("0");
        let num = |d: usize| {
            let pattern = if d == 0 {
                "0".to_owned()
            } else {
                format!("0.{}", "0".repeat(d))
            };
            Format::new().set_num_format(pattern)
        };
        let pct = |d: usize| {
            let pattern = if d == 0 {
                "0%".to_owned()
            } else {
                format!("0.{}%", "0".repeat(d))
            };
            Format::new().set_num_format(pattern)
        };
        sheet.set_name("数据")?;
        sheet.write_with_format(0, 0, &self.title, &bold)?;
        for (c, (_, title)) in self.columns.iter().enumerate() {
            let c = u16::try_from(c).unwrap_or(u16::MAX);
            sheet.write_with_format(1, c, title.as_str(), &bold)?;
            let width = self
                .rows
                .iter()
                .map(|r| r[usize::from(c)].shown().width())
                .chain([title.width()])
                .max()
                .unwrap_or(8);
            sheet.set_column_width(c, (width + 2) as f64)?;
        }
        let mut row = 2u32;
        for cells in &self.rows {
            for (c, cell) in cells.iter().enumerate() {
                let c = u16::try_from(c).unwrap_or(u16::MAX);
                match cell {
                    Cell::Text(s) => {
                        sheet.write(row, c, s.as_str())?;
                    }
                    Cell::Int(n) => {
                        sheet.write_with_format(row, c, *n as f64, &int)?;
                    }
                    Cell::Num(x, d) => {
                        sheet.write_with_format(row, c, *x, &num(*d))?;
                    }
                    Cell::Pct(x, d) => {
                        sheet.write_with_format(row, c, *x / 100.0, &pct(*d))?;
                    }
                    Cell::Bool(true) => {
                        sheet.write(row, c, "是")?;
                    }
                    Cell::Bool(false) | Cell::Missing => {}
                }
            }
            row += 1;
        }
        sheet.set_freeze_panes(2, 0)?;
        for note in &self.notes {
            row += 1;
            sheet.write(row, 0, note.as_str())?;
        }
        book.save_to_buffer()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_by_display_width_and_writes_a_bom() {
        let t = Table {
            title: "t".into(),
            columns: columns(&[("name", "名称"), ("value", "数值")]),
            rows: vec![
                vec![Cell::Text("潼川镇".into()), Cell::Int(12)],
                vec![Cell::Text("abc".into()), Cell::Missing],
            ],
            notes: vec![],
            reference: None,
        };
        let text = t.to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[2], "潼川镇    12");
        // "abc" padded to the 6 columns of 潼川镇, two spaces, then "—" right-aligned in 4
        assert_eq!(lines[3], "abc        —");
        assert!(
            t.to_csv()
                .starts_with("\u{feff}名称,数值\n潼川镇,12\nabc,\n")
        );
        assert_eq!(t.to_json()[1]["value"], Value::Null);
    }

    fn rate_comparison() -> pb::CompareReply {
        pb::CompareReply {
            area: "510722".into(),
            name: "三台县".into(),
            period: "2026-10".into(),
            metric: "disputes.success_rate".into(),
            metric_name: "调处成功率".into(),
            unit: "%".into(),
            is_rate: true,
            parent_rate: Some(95.5),
            rows: vec![pb::CompareRow {
                code: "510722101".into(),
                name: "潼川镇".into(),
                value: Some(33.0),
                denominator: Some(34.0),
                rate: Some(97.058_823_529_411_76),
                rank: 1,
                yoy_base: Some(84.905_660_377),
                yoy_change: Some(12.153_163_152),
                yoy_pct: Some(14.313_725_490),
                outlier: true,
                completeness: Some(pb::CompletenessSummary {
                    expected: 25,
                    received: 24,
                    on_time: 24,
                    late: 0,
                    missing: 1,
                }),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_rate_ranking_labels_its_numerator_and_shows_every_rate_as_a_percentage() {
        let t = compare_table(&rate_comparison());
        let headers: Vec<&str> = t.columns.iter().map(|c| c.1.as_str()).collect();
        assert_eq!(
            &headers[..6],
            ["排名", "代码", "名称", "分子", "分母", "比率(%)"]
        );
        assert!(headers.contains(&"去年同期(%)"), "{headers:?}");
        assert!(headers.contains(&"同比增减(百分点)"), "{headers:?}");
        let text = t.to_text();
        assert!(text.contains("97.06%") && text.contains("84.91%"), "{text}");
        assert!(text.contains("全域 调处成功率: 95.50%"), "{text}");
        // CSV: rounded as shown, yes as 是, no `false`
        let csv = t.to_csv();
        let row = csv.lines().nth(1).expect("a row");
        assert!(row.starts_with("1,510722101,潼川镇,33,34,97.06,"), "{row}");
        assert!(row.contains(",84.91,12.15,14.3,"), "{row}");
        // 25 expected, 24 received (24 on time): one missing, so not 已完成
        assert!(row.ends_with(",25,24,24,缺 1,是"), "{row}");
        assert!(!csv.contains("false") && !csv.contains("97.0588"), "{csv}");
    }

    #[test]
    fn completeness_says_whom_it_counts() {
        let reply = pb::CompletenessReply {
            area: "510722".into(),
            name: "三台县".into(),
            period: "2026-10".into(),
            summary: Some(pb::CompletenessSummary {
                expected: 462,
                received: 300,
                on_time: 290,
                late: 10,
                missing: 162,
            }),
            unnamed_missing: 161,
            missing: vec![pb::Reporter {
                code: "510722".into(),
                name: "三台县".into(),
                period: "2026-10".into(),
                received_at_ms: 0,
                form: "综治工作月报".into(),
            }],
            ..Default::default()
        };
        let t = completeness_table(&reply, Some(pingan_domain::Level::Village));
        assert_eq!(t.rows[0].last(), Some(&Cell::Text("综治工作月报".into())));
        assert!(
            t.notes[0].starts_with("上报情况（村社区级上报单位）: 应报 462"),
            "{:?}",
            t.notes
        );
        assert!(t.notes[1].contains("另有未报 161"), "{:?}", t.notes);
        let all = completeness_table(&reply, None);
        assert!(all.notes[0].contains("本级及所有下级"), "{:?}", all.notes);
    }
}
