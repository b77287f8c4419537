//! 通报: the bulletin leaders circulate, written from the same answers every other view gives:
//! a title and number line, 总体情况 in words (totals, 同比/环比 上升/下降 with percentages, the
//! form's completeness), ranking tables on key indicators, the 考核 table, who is 通报表扬 and
//! who 通报批评 (一票否决, 黄牌, 迟报/漏报), and two charts. [`compose`] lays it out once;
//! [`docx`] writes it for Word and WPS, [`html`] as a print view. [`gather`] asks the engine;
//! the command line asks a hub over gRPC for the same replies.

pub mod chart;
mod docx;
mod html;

pub use docx::docx;
pub use html::html;

use pingan_domain::{AreaCode, Span, pb};

/// The key figures of 总体情况, in order: (metric, counted with).
pub const KEY_METRICS: [&str; 5] = [
    "disputes.identified",
    "cases.criminal_filed",
    "cases.public_order",
    "petitions.letters",
    "patrol.sessions",
];
/// The key rates of 总体情况 and the ranking tables.
pub const KEY_RATES: [&str; 2] = ["disputes.success_rate", "cases.criminal_per_10k"];
/// The metric whose trend is the first chart.
pub const TREND_METRIC: &str = "cases.criminal_filed";

/// The answers a bulletin is written from.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub area: String,
    pub name: String,
    pub span: Span,
    pub now: pb::RollupReply,
    pub year_earlier: pb::RollupReply,
    pub previous: pb::RollupReply,
    pub completeness: pb::CompletenessReply,
    /// One ranking of the children per key rate.
    pub rankings: Vec<pb::CompareReply>,
    /// 考核, when the scheme assesses areas under this one.
    pub assess: Option<pb::AssessReply>,
    pub trend: pb::TrendReply,
    /// The lock (锁定) that makes the period final for the area, in words.
    pub lock: Option<String>,
    /// The date it is issued, e.g. 2026年11月20日.
    pub issued: String,
}

/// A table of the bulletin.
#[derive(Debug, Clone, PartialEq)]
pub struct TableBlock {
    pub caption: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// One block of the bulletin, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Heading(String),
    Para(String),
    Table(TableBlock),
    Chart { caption: String, png: Vec<u8> },
}

/// The bulletin laid out.
#[derive(Debug, Clone, PartialEq)]
pub struct Bulletin {
    pub title: String,
    /// The number line: （2026年第10期） and who issues it, when.
    pub number: String,
    /// Said at the top: 初步, how many reports are missing, or that the period is locked.
    pub status: Vec<String>,
    pub blocks: Vec<Block>,
}

/// A span as a bulletin says it: 2026年10月, 2026年第三季度, 2026年1月至10月.
pub fn span_zh(span: &Span) -> String {
    let s = span.to_string();
    let month = |m: &str| format!("{}年{}月", &m[..4], m[5..7].trim_start_matches('0'));
    let b = s.as_bytes();
    if let Some((from, to)) = s.split_once("..") {
        if from.len() == 7 && to.len() == 7 && from[..4] == to[..4] {
            return format!("{}至{}月", month(from), to[5..7].trim_start_matches('0'));
        }
        return format!("{from}至{to}");
    }
    match s.len() {
        7 if b[4] == b'-' && b[5] != b'Q' && b[5] != b'H' => month(&s),
        7 if b[5] == b'Q' => format!(
            "{}年第{}季度",
            &s[..4],
            ["一", "二", "三", "四"][usize::from(b[6] - b'1').min(3)]
        ),
        4 => format!("{s}年"),
        _ => s,
    }
}

fn figure(r: &pb::RollupReply, metric: &str) -> Option<(String, String, Option<f64>)> {
    if let Some(f) = r.figures.iter().find(|f| f.metric == metric) {
        return Some((f.name.clone(), f.unit.clone(), f.total.map(|v| v as f64)));
    }
    r.rates
        .iter()
        .find(|x| x.indicator == metric)
        .map(|x| (x.name.clone(), x.unit.clone(), x.value))
}

/// A number as the bulletin prints it: whole numbers plain, others with two decimals.
pub fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.2}")
    }
}

/// 同比/环比 in words: 上升 12.5%, 下降 3 (percentage points for a rate), 持平, or 无可比数据.
fn change(now: Option<f64>, base: Option<f64>, rate: bool) -> String {
    match (now, base) {
        (Some(n), Some(b)) if rate => {
            let d = n - b;
            if d.abs() < 0.005 {
                "持平".into()
            } else {
                format!(
                    "{}{:.2}个百分点",
                    if d > 0.0 { "上升" } else { "下降" },
                    d.abs()
                )
            }
        }
        (Some(n), Some(b)) if b != 0.0 => {
            let pct = (n - b) / b * 100.0;
            if pct.abs() < 0.05 {
                "持平".into()
            } else {
                format!(
                    "{}{:.1}%",
                    if pct > 0.0 { "上升" } else { "下降" },
                    pct.abs()
                )
            }
        }
        (Some(0.0), Some(_)) => "持平".into(),
        (Some(_), Some(_)) => "上期为零".into(),
        _ => "无可比数据".into(),
    }
}

/// Lays the bulletin out from the answers.
pub fn compose(i: &Inputs) -> Bulletin {
    let when = span_zh(&i.span);
    let preliminary = i.lock.is_none();
    let title = format!(
        "{}平安建设工作通报{}",
        i.name,
        if preliminary { "（初步）" } else { "" }
    );
    let number = format!(
        "（{}年第{}期）　{}平安建设领导小组办公室　{}",
        &i.span.to.to_string()[..4],
        i.span
            .to
            .to_string()
            .get(5..7)
            .map_or("1".into(), |m| m.trim_start_matches('0').to_owned()),
        i.name,
        i.issued
    );
    let summary = i.completeness.summary.unwrap_or_default();
    let mut status = Vec::new();
    if summary.missing > 0 {
        status.push(format!(
            "本期应报 {} 份，已报 {} 份，尚有 {} 份未报，以下数据为初步统计。",
            summary.expected, summary.received, summary.missing
        ));
    }
    match &i.lock {
        Some(l) => status.push(format!("本期数据已锁定：{l}。")),
        None => status.push("本期数据尚未锁定关账，为初步数据，以锁定后的数据为准。".into()),
    }
    let mut blocks = Vec::new();

    // 一、总体情况
    blocks.push(Block::Heading("一、总体情况".into()));
    let mut said = Vec::new();
    for m in KEY_METRICS.iter().chain(&KEY_RATES) {
        let Some((name, unit, v)) = figure(&i.now, m) else {
            continue;
        };
        let Some(v) = v else { continue };
        // a percentage changes in percentage points; a count or a rate per 10,000 in percent
        let rate = unit == "%";
        let base = figure(&i.year_earlier, m).and_then(|x| x.2);
        let prev = figure(&i.previous, m).and_then(|x| x.2);
        said.push(format!(
            "{name}{}{}，同比{}，环比{}",
            num(v),
            if unit == "%" { "%".to_owned() } else { unit },
            change(Some(v), base, rate),
            change(Some(v), prev, rate)
        ));
    }
    let reporting = if summary.expected > 0 {
        format!(
            "。本期应报 {} 份，已报 {} 份（上报率 {:.1}%），其中按时 {} 份、迟报 {} 份，未报 {} 份",
            summary.expected,
            summary.received,
            summary.received as f64 / summary.expected as f64 * 100.0,
            summary.on_time,
            summary.late,
            summary.missing
        )
    } else {
        String::new()
    };
    blocks.push(Block::Para(if said.is_empty() {
        format!("{when}，{}没有收到报表数据{reporting}。", i.name)
    } else {
        format!("{when}，{}{}{reporting}。", i.name, said.join("；"))
    }));

    // 二、排名
    blocks.push(Block::Heading("二、各地主要指标排名".into()));
    for (k, r) in i.rankings.iter().enumerate() {
        let unit = if r.unit == "%" {
            "%".to_owned()
        } else {
            r.unit.clone()
        };
        let rows = r
            .rows
            .iter()
            .map(|x| {
                let v = if r.is_rate { x.rate } else { x.value };
                vec![
                    if x.rank > 0 {
                        x.rank.to_string()
                    } else {
                        "—".into()
                    },
                    x.code.clone(),
                    x.name.clone(),
                    v.map_or("—".into(), num),
                    x.yoy_change.map_or("—".into(), |c| {
                        format!(
                            "{}{}",
                            if c > 0.0 { "+" } else { "" },
                            num((c * 100.0).round() / 100.0)
                        )
                    }),
                ]
            })
            .collect();
        blocks.push(Block::Table(TableBlock {
            caption: format!("表{} {}（{unit}）", k + 1, r.metric_name),
            header: ["排名", "代码", "名称", "数值", "同比增减"]
                .map(String::from)
                .to_vec(),
            rows,
        }));
    }

    // 三、考核 and 四、表扬批评
    let n_tables = i.rankings.len();
    if let Some(a) = &i.assess {
        blocks.push(Block::Heading(format!("三、{}", a.title)));
        blocks.push(Block::Para(format!(
            "按《{}》（满分 {}），{}",
            a.title,
            num(a.full_marks),
            a.items
                .iter()
                .map(|x| format!("{}：{}", x.name, x.rule))
                .collect::<Vec<_>>()
                .join("；")
        )));
        let rows = a
            .rows
            .iter()
            .map(|r| {
                vec![
                    if r.rank > 0 {
                        r.rank.to_string()
                    } else {
                        "—".into()
                    },
                    r.code.clone(),
                    r.name.clone(),
                    r.total.map_or("—".into(), |t| format!("{t:.2}")),
                    r.vetoes.join("、"),
                    r.yellow.join("、"),
                    r.note.clone(),
                ]
            })
            .collect();
        blocks.push(Block::Table(TableBlock {
            caption: format!("表{} 考核得分", n_tables + 1),
            header: ["名次", "代码", "名称", "总分", "一票否决", "黄牌", "说明"]
                .map(String::from)
                .to_vec(),
            rows,
        }));
    }
    blocks.push(Block::Heading(
        if i.assess.is_some() {
            "四、通报表扬与批评"
        } else {
            "三、通报表扬与批评"
        }
        .into(),
    ));
    // a unit criticised below for 漏报 or 迟报 (its own report or one under it) is not praised
    // in the same bulletin, however it scored
    let late_or_missing = late_and_missing(i);
    let criticised_codes: std::collections::HashSet<&str> = late_or_missing
        .iter()
        .map(|(code, ..)| code.as_str())
        .collect();
    let praised: Vec<String> = i
        .assess
        .iter()
        .flat_map(|a| {
            a.rows
                .iter()
                .filter(|r| {
                    r.rank > 0
                        && r.vetoes.is_empty()
                        && r.yellow.is_empty()
                        && r.missing == 0
                        && !criticised_codes.contains(r.code.as_str())
                        && r.total.is_some_and(|t| t > 0.0)
                })
                .take(a.praise as usize)
                .map(|r| format!("{}（{:.2} 分）", r.name, r.total.unwrap_or(0.0)))
        })
        .collect();
    blocks.push(Block::Para(if praised.is_empty() {
        "通报表扬：本期没有符合条件的单位。".into()
    } else {
        format!(
            "通报表扬：{}，考核成绩位居前列，予以通报表扬。",
            praised.join("、")
        )
    }));
    let mut criticised = Vec::new();
    if let Some(a) = &i.assess {
        for r in &a.rows {
            if !r.vetoes.is_empty() {
                criticised.push(format!("{}：一票否决（{}）", r.name, r.vetoes.join("、")));
            }
            if !r.yellow.is_empty() {
                criticised.push(format!("{}：黄牌警告（{}）", r.name, r.yellow.join("、")));
            }
        }
    }
    for (_, child, missing, late) in &late_or_missing {
        let mut why = Vec::new();
        if *missing > 0 {
            why.push(format!("漏报 {missing} 份"));
        }
        if *late > 0 {
            why.push(format!("迟报 {late} 份"));
        }
        criticised.push(format!("{child}：{}", why.join("、")));
    }
    blocks.push(Block::Para(if criticised.is_empty() {
        "通报批评：本期没有。".into()
    } else {
        format!("通报批评：{}。", criticised.join("；"))
    }));

    // charts
    let labels: Vec<String> = i
        .trend
        .points
        .iter()
        .map(|p| {
            p.period
                .get(5..7)
                .map_or(p.period.clone(), |m| m.trim_start_matches('0').to_owned())
        })
        .collect();
    let now: Vec<Option<f64>> = i.trend.points.iter().map(|p| p.value).collect();
    let before: Vec<Option<f64>> = i.trend.points.iter().map(|p| p.yoy_base).collect();
    blocks.push(Block::Chart {
        caption: format!(
            "图1 {}近{}期{}走势（实线：本期；虚线：去年同期；横轴为月份）",
            i.name,
            i.trend.points.len(),
            i.trend.metric_name
        ),
        png: chart::lines(&now, &before, &labels).png(),
    });
    if let Some(a) = &i.assess {
        let totals: Vec<Option<f64>> = a.rows.iter().map(|r| r.total).collect();
        let marked: Vec<bool> = a
            .rows
            .iter()
            .map(|r| !r.vetoes.is_empty() || !r.yellow.is_empty())
            .collect();
        blocks.push(Block::Chart {
            caption: format!(
                "图2 各地考核得分（按表{} 的顺序编号；红色为一票否决或黄牌）",
                n_tables + 1
            ),
            png: chart::bars(&totals, &marked).png(),
        });
    } else if let Some(r) = i.rankings.first() {
        let values: Vec<Option<f64>> = r
            .rows
            .iter()
            .map(|x| if r.is_rate { x.rate } else { x.value })
            .collect();
        blocks.push(Block::Chart {
            caption: format!("图2 各地{}（按表1 的顺序编号）", r.metric_name),
            png: chart::bars(&values, &[]).png(),
        });
    }
    Bulletin {
        title,
        number,
        status,
        blocks,
    }
}

/// Per child area of the bulletin's: (code, name, missing, late) reports, those with any.
fn late_and_missing(i: &Inputs) -> Vec<(String, String, u64, u64)> {
    let Ok(area) = i.area.parse::<AreaCode>() else {
        return Vec::new();
    };
    let Some(level) = area.level().child() else {
        return Vec::new();
    };
    let mut by_child: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    let child_of = |code: &str| {
        code.parse::<AreaCode>()
            .ok()
            .and_then(|c| c.ancestor_at(level))
            .map(|c| c.to_string())
    };
    for r in &i.completeness.missing {
        if let Some(c) = child_of(&r.code) {
            by_child.entry(c).or_default().0 += 1;
        }
    }
    for r in &i.completeness.late {
        if let Some(c) = child_of(&r.code) {
            by_child.entry(c).or_default().1 += 1;
        }
    }
    // the children's names from the first ranking, else from the 考核 table
    let names: std::collections::HashMap<&str, &str> = i
        .assess
        .iter()
        .flat_map(|a| a.rows.iter().map(|x| (x.code.as_str(), x.name.as_str())))
        .chain(
            i.rankings
                .first()
                .into_iter()
                .flat_map(|r| r.rows.iter().map(|x| (x.code.as_str(), x.name.as_str()))),
        )
        .collect();
    by_child
        .into_iter()
        .map(|(code, (m, l))| {
            let name = names
                .get(code.as_str())
                .map_or(code.clone(), |n| n.to_string());
            (code, name, m, l)
        })
        .collect()
}

/// The answers for a bulletin, asked of this hub's engine (the dashboard's button).
pub fn gather(
    state: &crate::state::HubState,
    area: AreaCode,
    span: Span,
) -> Result<Inputs, crate::query::QueryError> {
    use crate::query::{
        AssessQuery, CompareQuery, CompletenessQuery, Figures, Paging, RollupQuery, Root,
        TrendQuery,
    };
    let e = &state.engine;
    let rollup = |s: Span| {
        e.rollup(&RollupQuery {
            area,
            span: s,
            metrics: Vec::new(),
            by_category: false,
            figures: Figures::Current,
        })
        .map(pb::RollupReply::from)
    };
    let rankings = if area.level().child().is_some() {
        KEY_RATES
            .iter()
            .map(|m| {
                e.compare(&CompareQuery {
                    root: Root::Area(area),
                    span,
                    metric: (*m).into(),
                    level: None,
                    complete_only: false,
                    page: Paging::everything(),
                    figures: Figures::Current,
                    as_columns: false,
                })
                .map(pb::CompareReply::from)
            })
            .collect::<Result<Vec<_>, _>>()?
    } else {
        Vec::new()
    };
    let assess = e
        .assess(&AssessQuery {
            area,
            span,
            scheme: None,
            figures: Figures::Current,
        })
        .ok()
        .map(pb::AssessReply::from);
    let lock_service = crate::grpc::lock_service::LockService::new(state.clone());
    let locks = lock_service
        .list(pb::LocksRequest {
            period: span.to.to_string(),
            history: false,
        })
        .map(|r| r.locks)
        .unwrap_or_default();
    Ok(Inputs {
        area: area.to_string(),
        name: state.areas.name(area),
        span,
        now: rollup(span)?,
        year_earlier: rollup(span.year_earlier())?,
        previous: rollup(span.previous())?,
        completeness: e
            .completeness(&CompletenessQuery {
                area,
                span,
                level: None,
                form: None,
                page: Paging::everything(),
            })?
            .into(),
        rankings,
        assess,
        trend: e
            .trend(&TrendQuery {
                root: Root::Area(area),
                last: Span::single(span.to),
                periods: 12,
                metric: TREND_METRIC.into(),
                figures: Figures::Current,
                level: None,
                as_columns: false,
            })?
            .into(),
        lock: lock_over(&locks, area),
        issued: issued_today(state.clock.today()),
    })
}

/// The lock that closes the period for `area`: the deepest record over it (its own or an
/// ancestor's), when it locks; in words.
pub fn lock_over(locks: &[pb::LockState], area: AreaCode) -> Option<String> {
    let deepest = locks
        .iter()
        .filter_map(|l| Some((l.area.parse::<AreaCode>().ok()?, l)))
        .filter(|(root, _)| area.is_within(*root))
        .max_by_key(|(root, _)| root.level())?;
    let l = deepest.1;
    l.locked.then(|| {
        format!(
            "{} 于 {} 锁定（{}）",
            l.by,
            crate::clock::minute_text(l.at_ms),
            l.reason
        )
    })
}

/// A date as a bulletin is dated: 2026年11月20日.
pub fn issued_today(d: chrono::NaiveDate) -> String {
    use chrono::Datelike as _;
    format!("{}年{}月{}日", d.year(), d.month(), d.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_changes_read_as_a_bulletin_says_them() {
        let s = |t: &str| span_zh(&t.parse().unwrap());
        assert_eq!(s("2026-10"), "2026年10月");
        assert_eq!(s("2026-Q3"), "2026年第三季度");
        assert_eq!(s("2026-01..2026-10"), "2026年1月至10月");
        assert_eq!(change(Some(12.0), Some(10.0), false), "上升20.0%");
        assert_eq!(change(Some(8.0), Some(10.0), false), "下降20.0%");
        assert_eq!(change(Some(95.5), Some(97.0), true), "下降1.50个百分点");
        assert_eq!(change(Some(3.0), None, false), "无可比数据");
        assert_eq!(change(Some(0.0), Some(0.0), false), "持平");
    }

    fn inputs(missing: u64, lock: Option<&str>) -> Inputs {
        Inputs {
            area: "510722".into(),
            name: "三台县".into(),
            span: "2026-10".parse().unwrap(),
            now: pb::RollupReply::default(),
            year_earlier: pb::RollupReply::default(),
            previous: pb::RollupReply::default(),
            completeness: pb::CompletenessReply {
                summary: Some(pb::CompletenessSummary {
                    expected: 10,
                    received: 10 - missing,
                    on_time: 10 - missing,
                    late: 0,
                    missing,
                }),
                ..Default::default()
            },
            rankings: Vec::new(),
            assess: None,
            trend: pb::TrendReply::default(),
            lock: lock.map(str::to_owned),
            issued: "2026年11月20日".into(),
        }
    }

    #[test]
    fn an_open_period_is_preliminary_and_says_what_is_missing_a_locked_one_is_final() {
        let open = compose(&inputs(3, None));
        assert_eq!(open.title, "三台县平安建设工作通报（初步）");
        assert!(
            open.status[0].contains("尚有 3 份未报"),
            "{:?}",
            open.status
        );
        let locked = compose(&inputs(
            0,
            Some("县综治中心 于 2026-11-10 09:00 锁定（月度考核）"),
        ));
        assert_eq!(locked.title, "三台县平安建设工作通报");
        assert_eq!(
            locked.status.len(),
            1,
            "nothing missing: {:?}",
            locked.status
        );
        assert!(locked.status[0].contains("已锁定"));
        assert!(locked.number.contains("2026年第10期"), "{}", locked.number);
        // a Word document and a page of the same bulletin, with a ranking, a 考核 table and
        // both charts (kept in the temporary directory for a look with python-docx or Word)
        let mut full = inputs(0, None);
        full.rankings = vec![pb::CompareReply {
            metric_name: "调处成功率".into(),
            unit: "%".into(),
            is_rate: true,
            rows: vec![pb::CompareRow {
                code: "510722101".into(),
                name: "潼川镇".into(),
                rate: Some(97.5),
                rank: 1,
                ..Default::default()
            }],
            ..Default::default()
        }];
        full.assess = Some(pb::AssessReply {
            title: "乡镇（街道）平安建设考核".into(),
            full_marks: 100.0,
            praise: 3,
            rows: vec![pb::AreaScore {
                code: "510722101".into(),
                name: "潼川镇".into(),
                total: Some(88.5),
                rank: 1,
                ..Default::default()
            }],
            ..Default::default()
        });
        let bytes = docx(&compose(&full)).unwrap();
        assert_eq!(&bytes[..2], b"PK");
        let _ = std::fs::write(
            std::env::temp_dir().join("pingan-bulletin-test.docx"),
            &bytes,
        );
        assert!(html(&locked).contains("三台县平安建设工作通报"));
    }

    /// The bulletin's paragraph that starts with `start`.
    fn para<'a>(b: &'a Bulletin, start: &str) -> &'a str {
        b.blocks
            .iter()
            .find_map(|x| match x {
                Block::Para(p) if p.starts_with(start) => Some(p.as_str()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no paragraph starting {start}"))
    }

    #[test]
    fn a_township_criticised_for_a_late_report_is_not_praised_in_the_same_bulletin() {
        let mut i = inputs(0, None);
        let township = |code: &str, name: &str, total: f64, rank: u32| pb::AreaScore {
            code: code.into(),
            name: name.into(),
            total: Some(total),
            rank,
            ..Default::default()
        };
        i.assess = Some(pb::AssessReply {
            title: "乡镇（街道）平安建设考核".into(),
            full_marks: 100.0,
            praise: 2,
            rows: vec![
                township("510722101", "潼川镇", 92.0, 1),
                township("510722102", "塔山镇", 90.0, 2),
                township("510722103", "石安镇", 85.0, 3),
            ],
            ..Default::default()
        });
        // a village of 潼川镇 reported after the deadline
        i.completeness.late = vec![pb::Reporter {
            code: "510722101201".into(),
            name: "某村".into(),
            period: "2026-10".into(),
            ..Default::default()
        }];
        let b = compose(&i);
        assert_eq!(
            para(&b, "通报表扬"),
            "通报表扬：塔山镇（90.00 分）、石安镇（85.00 分），考核成绩位居前列，予以通报表扬。"
        );
        assert_eq!(para(&b, "通报批评"), "通报批评：潼川镇：迟报 1 份。");
        // without the late report, the top two are praised
        i.completeness.late.clear();
        assert_eq!(
            para(&compose(&i), "通报表扬"),
            "通报表扬：潼川镇（92.00 分）、塔山镇（90.00 分），考核成绩位居前列，予以通报表扬。"
        );
    }
}
