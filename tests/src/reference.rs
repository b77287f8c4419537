//! A plain, brute-force computation of every number a leader reads, straight from the stored
//! revisions: no cube, no polars, no shared code with the engine beyond the domain types. The
//! engine's answers are checked against it.

use std::collections::{BTreeMap, HashMap};

use pingan_domain::{
    AreaCode, Areas, Catalogue, Level, MetricKind, Period, Span, catalogue::Denominator,
};
use pingan_hub::{query::Deadlines, store::RevisionRecord};

/// The current revision of every (area, period), with when its first revision arrived.
#[derive(Debug)]
pub struct Reference<'a> {
    pub catalogue: &'a Catalogue,
    pub areas: &'a Areas,
    pub deadlines: Deadlines,
    pub reporting_levels: Vec<Level>,
    current: BTreeMap<(AreaCode, Period), (RevisionRecord, i64)>,
}

impl<'a> Reference<'a> {
    /// Builds the reference from every stored revision, in any order.
    pub fn new(
        catalogue: &'a Catalogue,
        areas: &'a Areas,
        revisions: Vec<RevisionRecord>,
    ) -> Reference<'a> {
        let mut current: BTreeMap<(AreaCode, Period), (RevisionRecord, i64)> = BTreeMap::new();
        let mut first: HashMap<(AreaCode, Period), i64> = HashMap::new();
        for r in revisions {
            let key = (r.area.parse().unwrap(), r.period.parse().unwrap());
            if r.revision == 1 {
                first.insert(key, r.received_at_ms);
            }
            match current.get(&key) {
                Some((c, _)) if c.revision >= r.revision => {}
                _ => {
                    current.insert(key, (r, 0));
                }
            }
        }
        for (k, v) in current.iter_mut() {
            v.1 = first[k];
        }
        Reference {
            catalogue,
            areas,
            deadlines: Deadlines::default().with_forms(catalogue),
            reporting_levels: vec![Level::County, Level::Township, Level::Village],
            current,
        }
    }

    /// One report's value of a metric (or of one of its parts).
    /// A zero report implies 0 for the count metrics its form asks of its level.
    fn report_value(
        &self,
        (area, period): (AreaCode, Period),
        r: &RevisionRecord,
        metric: &str,
        part: Option<&str>,
    ) -> Option<i64> {
        match r.values.iter().find(|v| v.metric == metric) {
            Some(v) => match part {
                None => Some(v.total.unwrap_or_else(|| v.parts.values().sum())),
                Some(p) => v.parts.get(p).copied(),
            },
            None => {
                let id = self.catalogue.metric_id(metric)?;
                let asked = self
                    .catalogue
                    .form_for(area.level(), period.kind())
                    .is_some_and(|f| f.asks(area.level(), &id));
                (r.zero_report
                    && part.is_none()
                    && asked
                    && self.catalogue.metric(&id).kind == MetricKind::Count)
                    .then_some(0)
            }
        }
    }

    /// Subtree (or own, with `own_only`) value of a metric over a span: counts sum over the
    /// periods carrying them (a month's half-months included), stocks take the last period
    /// carrying them among the months and among the half-months, and add the two.
    pub fn value(
        &self,
        area: AreaCode,
        span: &Span,
        metric: &str,
        part: Option<&str>,
        own_only: bool,
    ) -> Option<i64> {
        let kind = self
            .catalogue
            .metric(&self.catalogue.metric_id(metric).unwrap())
            .kind;
        let (mut out, mut halves) = (None, None);
        for p in span.reported() {
            let mut period_sum = None;
            for ((a, pp), (r, _)) in &self.current {
                let inside = if own_only {
                    *a == area
                } else {
                    a.is_within(area)
                };
                if *pp == p
                    && inside
                    && let Some(v) = self.report_value((*a, p), r, metric, part)
                {
                    *period_sum.get_or_insert(0) += v;
                }
            }
            let series = if p.kind() == pingan_domain::period::PeriodKind::HalfMonth {
                &mut halves
            } else {
                &mut out
            };
            if let Some(v) = period_sum {
                *series = match (kind, *series) {
                    (MetricKind::Count, Some(acc)) => Some(acc + v),
                    _ => Some(v),
                };
            }
        }
        match (out, halves) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        }
    }

    /// Whether `area`'s office reports a form for periods like `p`, active for `p`.
    fn expected(&self, area: AreaCode, p: Period) -> bool {
        self.catalogue
            .form_for(area.level(), p.kind())
            .is_some_and(|f| f.expected_in(p))
    }

    /// Population: the attribute, or the sum over children that have one.
    pub fn population(&self, area: AreaCode, year: i32) -> Option<f64> {
        if let Some(p) = self.areas.population(area, year) {
            return Some(p as f64);
        }
        let mut total = None;
        for c in self.areas.children(area) {
            if let Some(p) = self.population(*c, year) {
                *total.get_or_insert(0.0) += p;
            }
        }
        total
    }

    /// (numerator, denominator, factor) of a metric or indicator; factor None for a metric.
    pub fn num_den(
        &self,
        area: AreaCode,
        span: &Span,
        measure: &str,
    ) -> (Option<f64>, Option<f64>, Option<f64>) {
        if let Some(ind) = self.catalogue.indicator(measure) {
            let num = self
                .value(area, span, ind.numerator.as_str(), None, false)
                .map(|v| v as f64);
            let den = match &ind.denominator {
                Denominator::Metric(m) => self
                    .value(area, span, m.as_str(), None, false)
                    .map(|v| v as f64),
                Denominator::Population => self.population(area, span.population_year()),
            };
            return (num, den, Some(ind.factor));
        }
        (
            self.value(area, span, measure, None, false)
                .map(|v| v as f64),
            None,
            None,
        )
    }

    /// The figure a measure ranks on.
    pub fn figure(&self, area: AreaCode, span: &Span, measure: &str) -> Option<f64> {
        match self.num_den(area, span, measure) {
            (n, _, None) => n,
            (Some(n), Some(d), Some(f)) if d != 0.0 => Some(n / d * f),
            _ => None,
        }
    }

    /// (expected, received, on time) of the reporters at `levels` in an area's subtree.
    pub fn counts(&self, area: AreaCode, span: &Span, levels: &[Level]) -> (u64, u64, u64) {
        let (mut e, mut r, mut t) = (0, 0, 0);
        for p in span.reported() {
            for a in self.areas.iter() {
                if !a.code.is_within(area)
                    || !levels.contains(&a.code.level())
                    || !a.valid_for(p)
                    || !self.expected(a.code, p)
                {
                    continue;
                }
                e += 1;
                if let Some((_, first)) = self.current.get(&(a.code, p)) {
                    r += 1;
                    if *first < self.deadlines.due_ms(a.code.level(), p) {
                        t += 1;
                    }
                }
            }
        }
        (e, r, t)
    }

    /// The reporting levels at or below an area.
    pub fn levels_below(&self, area: AreaCode) -> Vec<Level> {
        self.reporting_levels
            .iter()
            .copied()
            .filter(|l| *l >= area.level())
            .collect()
    }

    /// Missing (code, period) pairs and late ones.
    pub fn missing_and_late(
        &self,
        area: AreaCode,
        span: &Span,
        levels: &[Level],
    ) -> (Vec<CodePeriod>, Vec<CodePeriod>) {
        let (mut missing, mut late) = (Vec::new(), Vec::new());
        for p in span.reported() {
            for a in self.areas.iter() {
                if !a.code.is_within(area)
                    || !levels.contains(&a.code.level())
                    || !a.valid_for(p)
                    || !self.expected(a.code, p)
                {
                    continue;
                }
                match self.current.get(&(a.code, p)) {
                    None => missing.push((a.code.to_string(), p.to_string())),
                    Some((_, first)) if *first >= self.deadlines.due_ms(a.code.level(), p) => {
                        late.push((a.code.to_string(), p.to_string()))
                    }
                    Some(_) => {}
                }
            }
        }
        missing.sort();
        late.sort();
        (missing, late)
    }
}

/// (area code, period) as text.
pub type CodePeriod = (String, String);

/// Ranks (1 = highest, ties share the lowest rank), None for missing values.
pub fn ranks(values: &[Option<f64>]) -> Vec<Option<u32>> {
    values
        .iter()
        .map(|v| v.map(|x| 1 + values.iter().filter(|o| o.is_some_and(|y| y > x)).count() as u32))
        .collect()
}

/// Median of the present values.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Robust z-scores (0.6745 × (x − median) / MAD), None where undefined.
pub fn robust_z(values: &[Option<f64>]) -> Vec<Option<f64>> {
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    let Some(m) = median(&present) else {
        return vec![None; values.len()];
    };
    let devs: Vec<f64> = present.iter().map(|x| (x - m).abs()).collect();
    let mad = median(&devs).unwrap_or(0.0);
    values
        .iter()
        .map(|v| v.and_then(|x| (mad != 0.0).then(|| 0.6745 * (x - m) / mad)))
        .collect()
}
