//! 考核: an assessment scheme (考核方案) and the scores it gives an area's children for a span.
//!
//! A scheme (TOML, `[[item]]`, `[[veto]]`, `[[yellow]]`, `[[bonus]]`) names figures of the
//! catalogue (a metric's total or one of its parts, or an indicator) and how each scores:
//! - `rank`: full marks to the best of the peers, 0 to the last, linear in the rank between
//!   (`lower_is_better = true` for 发案率 and the like); ties share the better rank;
//! - `target`: full marks at `full` or better, 0 at `zero` or worse, linear between (`full` below
//!   `zero`: lower is better);
//! - `bands`: `[[threshold, points], ...]`, thresholds from high to low: the first the figure
//!   reaches gives its points;
//! - `deduct`: `per` points off the total per occurrence, at most `max`.
//!
//! `[[veto]]` (一票否决) sets the total to 0 and ranks the area after every other; `[[yellow]]`
//! (黄牌警告) is a warning the bulletin names; `[[bonus]]` adds `per` per unit, at most `max`.
//! An area with missing reports is never silently scored on the figures it has: `missing =
//! "zero"` (the default) gives it 0 and says why, `missing = "exclude"` leaves it unranked
//! (未参评). The scoring here is pure; the hub gathers the figures from its rollups.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::{AreaCode, Catalogue, Level};

/// The most items a scheme may have.
pub const MAX_ITEMS: usize = 30;

/// The shipped sample scheme: townships of a county, monthly, built from the seeds.
pub const SAMPLE: &str = include_str!("../data/assessment-township.toml");

/// A figure a scheme reads: a metric's total (`part` empty) or part, or an indicator's value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Figure {
    /// The metric or indicator id (as the catalogue has it).
    pub metric: String,
    pub part: String,
}

/// How an item scores.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    Rank { lower_is_better: bool },
    Target { full: f64, zero: f64 },
    Bands(Vec<(f64, f64)>),
    Deduct { per: f64, max: Option<f64> },
}

/// One scored item.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: String,
    pub name: String,
    pub figure: Figure,
    /// Full marks (0 for a deduction).
    pub weight: f64,
    pub rule: Rule,
}

/// A condition on a figure: 一票否决 or 黄牌 when the figure is above `above`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub name: String,
    pub figure: Figure,
    pub above: f64,
}

/// Points added per unit of a figure, at most `max`.
#[derive(Debug, Clone, PartialEq)]
pub struct Bonus {
    pub name: String,
    pub figure: Figure,
    pub per: f64,
    pub max: f64,
}

/// What an area with missing reports gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Missing {
    /// 0 points, ranked after the areas scored, with why.
    #[default]
    Zero,
    /// Not scored (未参评), listed with why.
    Exclude,
}

/// A checked scheme.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheme {
    pub title: String,
    /// Who is assessed: the area's descendants at this level (none: its children).
    pub level: Option<Level>,
    pub missing: Missing,
    /// How many of the top are 通报表扬.
    pub praise: usize,
    pub items: Vec<Item>,
    pub veto: Vec<Condition>,
    pub yellow: Vec<Condition>,
    pub bonus: Vec<Bonus>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScheme {
    title: String,
    #[serde(default)]
    level: Option<String>,
    #[serde(default)]
    missing: Missing,
    #[serde(default = "three")]
    praise: usize,
    #[serde(default, rename = "item")]
    items: Vec<RawItem>,
    #[serde(default)]
    veto: Vec<RawCondition>,
    #[serde(default)]
    yellow: Vec<RawCondition>,
    #[serde(default)]
    bonus: Vec<RawBonus>,
}

fn three() -> usize {
    3
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawItem {
    id: String,
    #[serde(default)]
    name: String,
    metric: String,
    #[serde(default)]
    part: String,
    #[serde(default)]
    weight: f64,
    rule: String,
    #[serde(default)]
    lower_is_better: bool,
    full: Option<f64>,
    zero: Option<f64>,
    bands: Option<Vec<[f64; 2]>>,
    per: Option<f64>,
    max: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    name: String,
    metric: String,
    #[serde(default)]
    part: String,
    #[serde(default)]
    above: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBonus {
    name: String,
    metric: String,
    #[serde(default)]
    part: String,
    per: f64,
    max: f64,
}

impl Scheme {
    /// The shipped sample scheme.
    pub fn sample(catalogue: &Catalogue) -> Scheme {
        Scheme::parse(SAMPLE, catalogue).expect("the shipped scheme is valid")
    }

    /// Reads and checks a scheme against the catalogue: every figure known (by id or Chinese
    /// name), every part a value of its metric's category, every rule complete. The error says
    /// what is wrong, in Chinese, where.
    pub fn parse(text: &str, catalogue: &Catalogue) -> Result<Scheme, String> {
        let raw: RawScheme = toml::from_str(text).map_err(|e| format!("考核方案无法读取：{e}"))?;
        let level = match raw.level.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(l) => Some(
                l.parse::<Level>()
                    .map_err(|e| format!("考核方案 level「{l}」：{e}"))?,
            ),
        };
        let figure = |metric: &str, part: &str, at: &str| -> Result<Figure, String> {
            let part = part.trim().to_owned();
            if let Some(id) = catalogue.metric_id(metric) {
                if !part.is_empty() {
                    let values = catalogue
                        .category_of(&id)
                        .map(|c| c.values.clone())
                        .unwrap_or_default();
                    if !values.contains(&part) {
                        return Err(format!(
                            "{at}：指标 {id} 没有分类「{part}」（可选：{}）",
                            values.join("、")
                        ));
                    }
                }
                return Ok(Figure {
                    metric: id.to_string(),
                    part,
                });
            }
            if let Some(ind) = catalogue.indicator(metric) {
                if !part.is_empty() {
                    return Err(format!("{at}：比率 {} 没有分类", ind.id));
                }
                return Ok(Figure {
                    metric: ind.id.clone(),
                    part,
                });
            }
            let hint = catalogue
                .suggest(metric)
                .map(|s| format!("，是否是 {s}？"))
                .unwrap_or_default();
            Err(format!("{at}：未知的指标或比率「{metric}」{hint}"))
        };
        let zh_of = |f: &Figure| {
            catalogue
                .metric_id(&f.metric)
                .map(|id| catalogue.metric(&id).zh.clone())
                .or_else(|| catalogue.indicator(&f.metric).map(|i| i.zh.clone()))
                .unwrap_or_default()
        };
        let mut items = Vec::new();
        for r in raw.items {
            let at = format!("考核项目 {}", r.id);
            if items.iter().any(|i: &Item| i.id == r.id) {
                return Err(format!("{at} 重复"));
            }
            let fig = figure(&r.metric, &r.part, &at)?;
            let need = |v: Option<f64>, key: &str| {
                v.filter(|x| x.is_finite())
                    .ok_or_else(|| format!("{at}：规则 {} 需要 {key}", r.rule))
            };
            let rule = match r.rule.as_str() {
                "rank" => Rule::Rank {
                    lower_is_better: r.lower_is_better,
                },
                "target" => {
                    let (full, zero) = (need(r.full, "full")?, need(r.zero, "zero")?);
                    if full == zero {
                        return Err(format!("{at}：full 与 zero 不能相等"));
                    }
                    Rule::Target { full, zero }
                }
                "bands" => {
                    let bands: Vec<(f64, f64)> = r
                        .bands
                        .ok_or_else(|| format!("{at}：规则 bands 需要 bands"))?
                        .into_iter()
                        .map(|[t, p]| (t, p))
                        .collect();
                    if bands.len() > 20 {
                        return Err(format!("{at}：bands 最多 20 档"));
                    }
                    if bands.is_empty() || bands.windows(2).any(|w| w[0].0 <= w[1].0) {
                        return Err(format!("{at}：bands 的门槛须从高到低排列"));
                    }
                    if bands.iter().any(|(_, p)| *p > r.weight || *p < 0.0) {
                        return Err(format!("{at}：bands 的得分须在 0 到满分 {} 之间", r.weight));
                    }
                    Rule::Bands(bands)
                }
                "deduct" => Rule::Deduct {
                    per: need(r.per, "per")?,
                    max: r.max,
                },
                other => {
                    return Err(format!(
                        "{at}：未知的计分规则「{other}」（rank、target、bands 或 deduct）"
                    ));
                }
            };
            if !(r.weight.is_finite() && r.weight >= 0.0) {
                return Err(format!("{at}：weight 须为非负数"));
            }
            let name = if r.name.trim().is_empty() {
                zh_of(&fig)
            } else {
                r.name.trim().to_owned()
            };
            items.push(Item {
                id: r.id,
                name,
                figure: fig,
                weight: if matches!(rule, Rule::Deduct { .. }) {
                    0.0
                } else {
                    r.weight
                },
                rule,
            });
        }
        if items.is_empty() {
            return Err("考核方案至少要有一个考核项目 [[item]]".into());
        }
        if items.len() > MAX_ITEMS {
            return Err(format!("考核方案最多 {MAX_ITEMS} 个考核项目"));
        }
        if raw.veto.len() + raw.yellow.len() + raw.bonus.len() > MAX_ITEMS {
            return Err(format!(
                "考核方案的一票否决、黄牌和加分项合计最多 {MAX_ITEMS} 条"
            ));
        }
        let conditions = |raw: Vec<RawCondition>, what: &str| -> Result<Vec<Condition>, String> {
            raw.into_iter()
                .map(|c| {
                    Ok(Condition {
                        figure: figure(&c.metric, &c.part, &format!("{what} {}", c.name))?,
                        name: c.name,
                        above: c.above,
                    })
                })
                .collect()
        };
        let veto = conditions(raw.veto, "一票否决")?;
        let yellow = conditions(raw.yellow, "黄牌")?;
        let bonus = raw
            .bonus
            .into_iter()
            .map(|b| {
                Ok(Bonus {
                    figure: figure(&b.metric, &b.part, &format!("加分 {}", b.name))?,
                    name: b.name,
                    per: b.per,
                    max: b.max,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Scheme {
            title: raw.title,
            level,
            missing: raw.missing,
            praise: raw.praise,
            items,
            veto,
            yellow,
            bonus,
        })
    }

    /// Every figure the scheme reads, once.
    pub fn figures(&self) -> Vec<Figure> {
        let mut out: Vec<Figure> = self
            .items
            .iter()
            .map(|i| i.figure.clone())
            .chain(self.veto.iter().map(|c| c.figure.clone()))
            .chain(self.yellow.iter().map(|c| c.figure.clone()))
            .chain(self.bonus.iter().map(|b| b.figure.clone()))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Full marks: the items' weights added up.
    pub fn full_marks(&self) -> f64 {
        self.items.iter().map(|i| i.weight).sum()
    }
}

impl Rule {
    /// The rule in words, as the bulletin and the tables say it.
    pub fn describe(&self, weight: f64) -> String {
        match self {
            Rule::Rank { lower_is_better } => format!(
                "按排名计分：{}者得满分 {weight}，末位 0 分，其间按名次线性",
                if *lower_is_better { "最低" } else { "最高" }
            ),
            Rule::Target { full, zero } => format!(
                "达到 {full} 得满分 {weight}，{} {zero} 得 0 分，其间线性",
                if full > zero { "低至" } else { "高至" }
            ),
            Rule::Bands(bands) => bands
                .iter()
                .map(|(t, p)| format!("≥{t} 得 {p} 分"))
                .collect::<Vec<_>>()
                .join("；"),
            Rule::Deduct { per, max } => format!(
                "每起扣 {per} 分{}",
                max.map(|m| format!("，最多扣 {m} 分")).unwrap_or_default()
            ),
        }
    }
}

/// One assessed area's figures, as the hub read them.
#[derive(Debug, Clone, PartialEq)]
pub struct AreaFigures {
    pub code: AreaCode,
    pub name: String,
    /// Reports expected of the area's subtree for the span and not received.
    pub missing: u64,
    pub values: BTreeMap<Figure, Option<f64>>,
}

/// One item's score.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemScore {
    pub item: String,
    pub value: Option<f64>,
    pub points: f64,
    /// Why it scored so, when that is not the rule itself (无数据, 漏报).
    pub note: String,
}

/// One area's scores.
#[derive(Debug, Clone, PartialEq)]
pub struct AreaScore {
    pub code: AreaCode,
    pub name: String,
    /// None: not scored (未参评).
    pub total: Option<f64>,
    /// 1 = first; 0 = not ranked.
    pub rank: u32,
    pub items: Vec<ItemScore>,
    pub bonus: f64,
    pub vetoes: Vec<String>,
    pub yellow: Vec<String>,
    pub missing: u64,
    /// Why the total is what it is beyond the items (漏报, 一票否决), in words.
    pub note: String,
}

/// An assessment's answer: the scheme, and every area's scores in rank order.
#[derive(Debug, Clone, PartialEq)]
pub struct AssessAnswer {
    pub area: AreaCode,
    pub name: String,
    pub span: crate::Span,
    pub scheme: std::sync::Arc<Scheme>,
    pub rows: Vec<AreaScore>,
    pub approved_only: bool,
}

impl From<AssessAnswer> for crate::pb::AssessReply {
    fn from(a: AssessAnswer) -> Self {
        use crate::pb;
        pb::AssessReply {
            area: a.area.to_string(),
            name: a.name,
            period: a.span.to_string(),
            title: a.scheme.title.clone(),
            items: a
                .scheme
                .items
                .iter()
                .map(|i| pb::AssessItem {
                    id: i.id.clone(),
                    name: i.name.clone(),
                    metric: i.figure.metric.clone(),
                    part: i.figure.part.clone(),
                    weight: i.weight,
                    rule: i.rule.describe(i.weight),
                })
                .collect(),
            rows: a
                .rows
                .into_iter()
                .map(|r| pb::AreaScore {
                    code: r.code.to_string(),
                    name: r.name,
                    total: r.total,
                    rank: r.rank,
                    items: r
                        .items
                        .into_iter()
                        .map(|x| pb::ItemScore {
                            item: x.item,
                            value: x.value,
                            points: x.points,
                            note: x.note,
                        })
                        .collect(),
                    bonus: r.bonus,
                    vetoes: r.vetoes,
                    yellow: r.yellow,
                    missing: r.missing,
                    note: r.note,
                })
                .collect(),
            full_marks: a.scheme.full_marks(),
            approved_only: a.approved_only,
            praise: a.scheme.praise as u32,
            bonus: a
                .scheme
                .bonus
                .iter()
                .map(|b| format!("{}：每个加 {} 分，最多 {} 分", b.name, b.per, b.max))
                .collect(),
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Competition ranks (1, 2, 2, 4) of the values; `better` says which comes first.
fn ranks(values: &[(usize, f64)], lower_is_better: bool) -> BTreeMap<usize, usize> {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| {
        let o = a.1.total_cmp(&b.1);
        if lower_is_better { o } else { o.reverse() }
    });
    let mut out = BTreeMap::new();
    for (pos, (i, v)) in sorted.iter().enumerate() {
        let rank = sorted
            .iter()
            .position(|(_, w)| w.total_cmp(v).is_eq())
            .unwrap_or(pos);
        out.insert(*i, rank + 1);
    }
    out
}

/// Scores every area by the scheme, ordered by rank (those not ranked last, by code).
pub fn score(scheme: &Scheme, areas: &[AreaFigures]) -> Vec<AreaScore> {
    let value = |a: &AreaFigures, f: &Figure| a.values.get(f).copied().flatten();
    // peers for rank rules: the areas whose reports are all in
    let complete: Vec<usize> = (0..areas.len())
        .filter(|i| areas[*i].missing == 0)
        .collect();
    let mut out: Vec<AreaScore> = areas
        .iter()
        .map(|a| AreaScore {
            code: a.code,
            name: a.name.clone(),
            total: None,
            rank: 0,
            items: Vec::new(),
            bonus: 0.0,
            vetoes: Vec::new(),
            yellow: Vec::new(),
            missing: a.missing,
            note: String::new(),
        })
        .collect();
    for item in &scheme.items {
        let rank_of = match item.rule {
            Rule::Rank { lower_is_better } => {
                let vals: Vec<(usize, f64)> = complete
                    .iter()
                    .filter_map(|i| value(&areas[*i], &item.figure).map(|v| (*i, v)))
                    .collect();
                Some((ranks(&vals, lower_is_better), vals.len()))
            }
            _ => None,
        };
        for (i, a) in areas.iter().enumerate() {
            let v = value(a, &item.figure);
            let (points, note) = if a.missing > 0 {
                (0.0, format!("漏报 {} 份", a.missing))
            } else {
                match (&item.rule, v) {
                    (_, None) => (0.0, "无数据".to_owned()),
                    (Rule::Rank { .. }, Some(_)) => {
                        let (ranked, n) = rank_of.as_ref().expect("ranked");
                        let p = ranked[&i];
                        let pts = if *n <= 1 {
                            item.weight
                        } else {
                            item.weight * (n - p) as f64 / (n - 1) as f64
                        };
                        (pts, format!("第 {p} 名/{n}"))
                    }
                    (Rule::Target { full, zero }, Some(v)) => {
                        let frac = ((v - zero) / (full - zero)).clamp(0.0, 1.0);
                        (item.weight * frac, String::new())
                    }
                    (Rule::Bands(bands), Some(v)) => (
                        bands.iter().find(|(t, _)| v >= *t).map_or(0.0, |(_, p)| *p),
                        String::new(),
                    ),
                    (Rule::Deduct { per, max }, Some(v)) => {
                        let off = (per * v).min(max.unwrap_or(f64::INFINITY));
                        (-off, String::new())
                    }
                }
            };
            out[i].items.push(ItemScore {
                item: item.id.clone(),
                value: v,
                points: round2(points),
                note,
            });
        }
    }
    for (i, a) in areas.iter().enumerate() {
        let s = &mut out[i];
        let said = |c: &Condition| {
            value(a, &c.figure)
                .filter(|v| *v > c.above)
                .map(|v| format!("{}（{v}）", c.name))
        };
        s.vetoes = scheme.veto.iter().filter_map(said).collect();
        s.yellow = scheme.yellow.iter().filter_map(said).collect();
        if a.missing > 0 {
            match scheme.missing {
                Missing::Zero => {
                    s.total = Some(0.0);
                    s.note = format!("漏报 {} 份，按方案计 0 分", a.missing);
                }
                Missing::Exclude => s.note = format!("漏报 {} 份，未参评", a.missing),
            }
            continue;
        }
        s.bonus = round2(
            scheme
                .bonus
                .iter()
                .map(|b| value(a, &b.figure).map_or(0.0, |v| (b.per * v).clamp(0.0, b.max)))
                .sum(),
        );
        let sum: f64 = s.items.iter().map(|x| x.points).sum::<f64>() + s.bonus;
        if s.vetoes.is_empty() {
            s.total = Some(round2(sum.max(0.0)));
        } else {
            s.total = Some(0.0);
            s.note = format!("一票否决：{}", s.vetoes.join("、"));
        }
    }
    // ranked: the scored first by total, then the vetoed and those given 0 for missing reports
    let key = |s: &AreaScore| {
        let demoted = !s.vetoes.is_empty() || s.missing > 0;
        (demoted, -(s.total.unwrap_or(0.0) * 100.0).round() as i64)
    };
    let scored: Vec<usize> = (0..out.len()).filter(|i| out[*i].total.is_some()).collect();
    let mut order = scored.clone();
    order.sort_by_key(|i| (key(&out[*i]), out[*i].code));
    let mut ranks_of = vec![0u32; out.len()];
    for (pos, i) in order.iter().enumerate() {
        let first_equal = order
            .iter()
            .position(|j| key(&out[*j]) == key(&out[*i]))
            .unwrap_or(pos);
        ranks_of[*i] = first_equal as u32 + 1;
    }
    for (i, s) in out.iter_mut().enumerate() {
        s.rank = ranks_of[i];
    }
    out.sort_by_key(|s| (s.rank == 0, s.rank, s.code));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheme(text: &str) -> Scheme {
        Scheme::parse(text, &Catalogue::builtin()).unwrap()
    }

    fn area(code: &str, missing: u64, values: &[(&str, &str, Option<f64>)]) -> AreaFigures {
        AreaFigures {
            code: code.parse().unwrap(),
            name: code.into(),
            missing,
            values: values
                .iter()
                .map(|(m, p, v)| {
                    (
                        Figure {
                            metric: (*m).into(),
                            part: (*p).into(),
                        },
                        *v,
                    )
                })
                .collect(),
        }
    }

    const SMALL: &str = r#"
title = "测试方案"
level = "township"
[[item]]
id = "rate"
metric = "调处成功率"
weight = 20
rule = "target"
full = 98
zero = 90
[[item]]
id = "cases"
metric = "cases.criminal_per_10k"
weight = 10
rule = "rank"
lower_is_better = true
[[item]]
id = "patrol"
metric = "patrol.sessions"
weight = 10
rule = "bands"
bands = [[60, 10], [30, 6], [10, 2]]
[[item]]
id = "leapfrog"
metric = "petitions.leapfrog"
part = "进京"
rule = "deduct"
per = 2
max = 6
[[veto]]
name = "发生群体性事件"
metric = "stability.mass_incidents"
[[yellow]]
name = "发生命案"
metric = "cases.homicide"
[[bonus]]
name = "平安村创建"
metric = "creation.safe_villages"
per = 0.5
max = 2
"#;

    /// Four townships worked by hand: the scores, ranks, the veto and the one with a
    /// missing report.
    #[test]
    fn a_small_case_scores_as_computed_by_hand() {
        let s = scheme(SMALL);
        assert_eq!(s.full_marks(), 40.0);
        let rate = ("disputes.success_rate", "");
        let cases = ("cases.criminal_per_10k", "");
        let patrol = ("patrol.sessions", "");
        let jing = ("petitions.leapfrog", "进京");
        let mass = ("stability.mass_incidents", "");
        let homicide = ("cases.homicide", "");
        let safe = ("creation.safe_villages", "");
        let v = |(m, p): (&'static str, &'static str), x: f64| (m, p, Some(x));
        let areas = [
            // 20 × (96 − 90)/8 = 15; best of 3 on cases: 10; 45 patrols: 6; 1 进京: −2;
            // 3 safe villages: +1.5 → 30.5
            area(
                "510722101",
                0,
                &[
                    v(rate, 96.0),
                    v(cases, 1.0),
                    v(patrol, 45.0),
                    v(jing, 1.0),
                    v(safe, 3.0),
                ],
            ),
            // 20 (≥ 98); second on cases: 5; 60 patrols: 10; 5 进京: −6 (the cap); a homicide:
            // yellow card only → 29
            area(
                "510722102",
                0,
                &[
                    v(rate, 99.0),
                    v(cases, 2.0),
                    v(patrol, 60.0),
                    v(jing, 5.0),
                    v(homicide, 1.0),
                ],
            ),
            // 0 (≤ 90); last on cases: 0; 5 patrols: 0 → 0, and a mass incident: vetoed
            area(
                "510722103",
                0,
                &[v(rate, 85.0), v(cases, 3.0), v(patrol, 5.0), v(mass, 1.0)],
            ),
            // a report missing: 0, whatever its figures, and not among the peers of the ranking
            area(
                "510722104",
                1,
                &[v(rate, 100.0), v(cases, 0.0), v(patrol, 99.0)],
            ),
        ];
        let out = score(&s, &areas);
        let got: Vec<(&str, Option<f64>, u32)> = out
            .iter()
            .map(|a| (a.name.as_str(), a.total, a.rank))
            .collect();
        assert_eq!(
            got,
            [
                ("510722101", Some(30.5), 1),
                ("510722102", Some(29.0), 2),
                ("510722103", Some(0.0), 3),
                ("510722104", Some(0.0), 3),
            ]
        );
        let first = &out[0];
        let points: Vec<f64> = first.items.iter().map(|i| i.points).collect();
        assert_eq!(points, [15.0, 10.0, 6.0, -2.0]);
        assert_eq!(first.bonus, 1.5);
        assert_eq!(first.items[1].note, "第 1 名/3");
        assert_eq!(out[1].items[3].points, -6.0);
        assert_eq!(out[1].yellow, ["发生命案（1）"]);
        assert_eq!(out[2].vetoes, ["发生群体性事件（1）"]);
        assert!(out[2].note.starts_with("一票否决"));
        assert_eq!(out[3].note, "漏报 1 份，按方案计 0 分");
        assert!(out[3].items.iter().all(|i| i.points == 0.0));

        // excluded instead: not ranked, listed last
        let excluded = Scheme {
            missing: Missing::Exclude,
            ..s.clone()
        };
        let out = score(&excluded, &areas);
        let last = out.last().unwrap();
        assert_eq!(
            (last.name.as_str(), last.total, last.rank),
            ("510722104", None, 0)
        );
        assert_eq!(last.note, "漏报 1 份，未参评");
    }

    #[test]
    fn a_scheme_with_a_typo_says_where_and_what() {
        let c = Catalogue::builtin();
        let bad = SMALL.replace("patrol.sessions", "patrol.session");
        let e = Scheme::parse(&bad, &c).unwrap_err();
        assert!(
            e.contains("考核项目 patrol") && e.contains("patrol.sessions"),
            "{e}"
        );
        let bad = SMALL.replace("part = \"进京\"", "part = \"北京\"");
        let e = Scheme::parse(&bad, &c).unwrap_err();
        assert!(e.contains("没有分类「北京」") && e.contains("进京"), "{e}");
        let bad = SMALL.replace("rule = \"bands\"", "rule = \"band\"");
        assert!(
            Scheme::parse(&bad, &c)
                .unwrap_err()
                .contains("未知的计分规则")
        );
        let bad = SMALL.replace("weight = 20", "wieght = 20");
        assert!(Scheme::parse(&bad, &c).unwrap_err().contains("wieght"));
        let bad = SMALL.replace("[[60, 10], [30, 6], [10, 2]]", "[[10, 2], [30, 6]]");
        assert!(Scheme::parse(&bad, &c).unwrap_err().contains("从高到低"));
        // what a hostile client could send over gRPC is bounded
        let many: Vec<String> = (0..21).map(|i| format!("[{}, 1]", 100 - i)).collect();
        let bad = SMALL.replace(
            "[[60, 10], [30, 6], [10, 2]]",
            &format!("[{}]", many.join(", ")),
        );
        assert!(Scheme::parse(&bad, &c).unwrap_err().contains("最多 20 档"));
    }

    #[test]
    fn the_sample_scheme_reads() {
        let s = Scheme::sample(&Catalogue::builtin());
        assert_eq!(s.full_marks(), 100.0);
        assert!(!s.veto.is_empty() && !s.yellow.is_empty() && !s.bonus.is_empty());
    }
}
