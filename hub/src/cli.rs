//! `pingan-hub query rollup|compare|trend|completeness`: asks a hub's QueryService and prints
//! the answer as an aligned table (Chinese names, CJK-aware widths), CSV (UTF-8 with a BOM, so
//! Excel and WPS open it right) or JSON (rows with plain field names).

use std::fmt::Write as _;

use clap::{Args, Subcommand, ValueEnum};
use pingan_proto::pb::{self, query_service_client::QueryServiceClient};
use serde_json::{Map, Value, json};
use unicode_width::UnicodeWidthStr;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// What to ask.
#[derive(Debug, Subcommand)]
pub enum QueryCommand {
    /// An area's own figures and subtree totals, rates and completeness.
    Rollup(QueryArgs),
    /// The areas below an area ranked on a metric or indicator, with 同比, 环比 and completeness.
    Compare(QueryArgs),
    /// One area's series over the last N periods, with 同比.
    Trend(QueryArgs),
    /// Who should have reported, who did (on time or late), and who is missing.
    Completeness(QueryArgs),
}

/// Arguments shared by the queries.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The hub's address (https:// with mutual TLS; http:// with --insecure).
    #[arg(long, env = "PINGAN_HUB", default_value = "https://localhost:7400")]
    pub hub: String,
    #[command(flatten)]
    pub tls: pingan_node::client_tls::ClientTlsArgs,
    /// Division code of the area asked about.
    #[arg(long)]
    pub area: String,
    /// 2026-10, 2026-Q3, 2026-H2, 2026, 2026-01..2026-10, 2026-W40, 2026-10-01, ...
    #[arg(long)]
    pub period: String,
    /// Metric or indicator (id or Chinese name); for rollup, repeat to choose metrics.
    #[arg(long)]
    pub metric: Vec<String>,
    /// Level of the areas compared or checked (province, prefecture, county, township, village).
    #[arg(long, default_value = "")]
    pub level: String,
    /// Number of periods in a trend.
    #[arg(long, default_value_t = 12)]
    pub periods: u32,
    /// Rollup: break disaggregated metrics down by category.
    #[arg(long)]
    pub by_category: bool,
    /// Compare: withhold values of areas whose reports are incomplete.
    #[arg(long)]
    pub complete_only: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// One cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Int(i64),
    /// A number shown with this many decimals in tables.
    Num(f64, usize),
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

    fn shown(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Num(x, d) => format!("{x:.d$}"),
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

    fn csv(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Num(x, _) => x.to_string(),
            Cell::Bool(b) => b.to_string(),
            Cell::Missing => String::new(),
        }
    }

    fn json(&self) -> Value {
        match self {
            Cell::Text(s) => json!(s),
            Cell::Int(n) => json!(n),
            Cell::Num(x, _) => json!(x),
            Cell::Bool(b) => json!(b),
            Cell::Missing => Value::Null,
        }
    }

    fn is_numeric(&self) -> bool {
        matches!(self, Cell::Int(_) | Cell::Num(..) | Cell::Missing)
    }
}

/// A titled table: columns as (json key, Chinese header).
#[derive(Debug, Clone)]
pub struct Table {
    pub title: String,
    pub columns: Vec<(&'static str, &'static str)>,
    pub rows: Vec<Vec<Cell>>,
    /// Lines printed under a terminal table (summaries).
    pub notes: Vec<String>,
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
        let _ = w.write_record(self.columns.iter().map(|c| c.1));
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

    /// The table in a format.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Table => self.to_text(),
            Format::Csv => self.to_csv(),
            Format::Json => {
                serde_json::to_string_pretty(&self.to_json()).unwrap_or_default() + "\n"
            }
        }
    }
}

fn completeness_note(c: &pb::CompletenessSummary) -> String {
    format!(
        "上报情况: 应报 {}, 已报 {} (按时 {}, 迟报 {}), 未报 {}, 上报率 {}",
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
            Cell::opt_num(rate.value, 2),
        ]);
    }
    Table {
        title: format!("{} {} {} 汇总", r.area, r.name, r.period),
        columns: vec![
            ("metric", "指标代码"),
            ("name", "指标"),
            ("unit", "单位"),
            ("own", "本级"),
            ("total", "合计"),
        ],
        rows,
        notes: r.completeness.iter().map(completeness_note).collect(),
    }
}

/// The comparison as a table, in rank order.
pub fn compare_table(r: &pb::CompareReply) -> Table {
    let rows = r
        .rows
        .iter()
        .map(|x| {
            let c = x.completeness.unwrap_or_default();
            vec![
                if x.rank == 0 {
                    Cell::Missing
                } else {
                    Cell::Int(i64::from(x.rank))
                },
                Cell::Text(x.code.clone()),
                Cell::Text(x.name.clone()),
                Cell::opt_count(x.value),
                Cell::opt_num(x.rate, 2),
                Cell::opt_num(x.share, 1),
                Cell::opt_num(x.yoy_base, 2),
                Cell::opt_num(x.yoy_change, 2),
                Cell::opt_num(x.yoy_pct, 1),
                Cell::opt_num(x.mom_base, 2),
                Cell::opt_num(x.mom_change, 2),
                Cell::opt_num(x.mom_pct, 1),
                Cell::Int(c.expected as i64),
                Cell::Int(c.received as i64),
                Cell::Int(c.on_time as i64),
                Cell::Bool(x.outlier),
            ]
        })
        .collect();
    let parent = match (r.is_rate, r.parent_rate, r.parent_total) {
        (true, rate, _) => format!("全域 {}: {}", r.metric_name, Cell::opt_num(rate, 2).shown()),
        (false, _, total) => format!("全域合计: {}", Cell::opt_count(total).shown()),
    };
    Table {
        title: format!(
            "{} {} {} 按「{}」({}) 排名",
            r.area, r.name, r.period, r.metric_name, r.unit
        ),
        columns: vec![
            ("rank", "排名"),
            ("code", "代码"),
            ("name", "名称"),
            ("value", "数值"),
            ("rate", "比率"),
            ("share", "占比%"),
            ("yoy_base", "去年同期"),
            ("yoy_change", "同比增减"),
            ("yoy_pct", "同比%"),
            ("mom_base", "上期"),
            ("mom_change", "环比增减"),
            ("mom_pct", "环比%"),
            ("expected", "应报"),
            ("received", "已报"),
            ("on_time", "按时"),
            ("outlier", "异常"),
        ],
        rows,
        notes: vec![parent, "— 表示无数据或无法计算 (分母为0)，不是0".into()],
    }
}

/// The trend as a table, oldest first.
pub fn trend_table(r: &pb::TrendReply) -> Table {
    let rows = r
        .points
        .iter()
        .map(|p| {
            let c = p.completeness.unwrap_or_default();
            vec![
                Cell::Text(p.period.clone()),
                Cell::opt_count(p.value),
                Cell::opt_count(p.yoy_base),
                Cell::opt_num(p.yoy_change, 2),
                Cell::opt_num(p.yoy_pct, 1),
                Cell::Int(c.expected as i64),
                Cell::Int(c.received as i64),
            ]
        })
        .collect();
    Table {
        title: format!(
            "{} {} 「{}」({}) 走势",
            r.area, r.name, r.metric_name, r.unit
        ),
        columns: vec![
            ("period", "期间"),
            ("value", "数值"),
            ("yoy_base", "去年同期"),
            ("yoy_change", "同比增减"),
            ("yoy_pct", "同比%"),
            ("expected", "应报"),
            ("received", "已报"),
        ],
        rows,
        notes: Vec::new(),
    }
}

/// Completeness: the missing and late reporters.
pub fn completeness_table(r: &pb::CompletenessReply) -> Table {
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
        ]
    }));
    Table {
        title: format!("{} {} {} 上报情况", r.area, r.name, r.period),
        columns: vec![
            ("code", "代码"),
            ("name", "名称"),
            ("period", "期间"),
            ("status", "状态"),
            ("received_at", "收到时间"),
        ],
        rows,
        notes: r.summary.iter().map(completeness_note).collect(),
    }
}

/// Runs a query command against a hub and prints the answer.
pub async fn run(cmd: QueryCommand) -> anyhow::Result<()> {
    let (args, kind) = match &cmd {
        QueryCommand::Rollup(a) => (a, "rollup"),
        QueryCommand::Compare(a) => (a, "compare"),
        QueryCommand::Trend(a) => (a, "trend"),
        QueryCommand::Completeness(a) => (a, "completeness"),
    };
    let tls = args.tls.config(&args.hub)?;
    let channel = pingan_node::client_tls::endpoint(&args.hub, tls.as_ref())?
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach hub {}: {e}", args.hub))?;
    let mut client = QueryServiceClient::new(channel).max_decoding_message_size(64 * 1024 * 1024);
    let one_metric = || -> anyhow::Result<String> {
        match args.metric.as_slice() {
            [m] => Ok(m.clone()),
            _ => anyhow::bail!(
                "{kind} needs exactly one --metric (a metric or an indicator such as 调处成功率)"
            ),
        }
    };
    let status = |e: tonic::Status| anyhow::anyhow!("{:?}: {}", e.code(), e.message());
    let table = match kind {
        "rollup" => rollup_table(
            &client
                .rollup(pb::RollupRequest {
                    area: args.area.clone(),
                    period: args.period.clone(),
                    metrics: args.metric.clone(),
                    by_category: args.by_category,
                })
                .await
                .map_err(status)?
                .into_inner(),
        ),
        "compare" => compare_table(
            &client
                .compare(pb::CompareRequest {
                    area: args.area.clone(),
                    period: args.period.clone(),
                    metric: one_metric()?,
                    level: args.level.clone(),
                    complete_only: args.complete_only,
                })
                .await
                .map_err(status)?
                .into_inner(),
        ),
        "trend" => trend_table(
            &client
                .trend(pb::TrendRequest {
                    area: args.area.clone(),
                    period: args.period.clone(),
                    periods: args.periods,
                    metric: one_metric()?,
                })
                .await
                .map_err(status)?
                .into_inner(),
        ),
        _ => completeness_table(
            &client
                .completeness(pb::CompletenessRequest {
                    area: args.area.clone(),
                    period: args.period.clone(),
                    level: args.level.clone(),
                })
                .await
                .map_err(status)?
                .into_inner(),
        ),
    };
    print!("{}", table.render(args.format));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_by_display_width_and_writes_a_bom() {
        let t = Table {
            title: "t".into(),
            columns: vec![("name", "名称"), ("value", "数值")],
            rows: vec![
                vec![Cell::Text("潼川镇".into()), Cell::Int(12)],
                vec![Cell::Text("abc".into()), Cell::Missing],
            ],
            notes: vec![],
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
}
