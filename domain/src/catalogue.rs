//! The indicator catalogue: metrics (with zh and en names, count or stock, an optional
//! category to break them down by), the rules between them, and derived indicators. It is
//! data (`data/catalogue.toml` is the default), parsed strictly and checked once.

use std::{collections::HashMap, fmt, path::Path, sync::Arc};

use serde::{Deserialize, Serialize};

use crate::{Level, form::Form, period::PeriodKind};

/// A metric id known to a catalogue, e.g. `disputes.mediated`. Only a [`Catalogue`] makes one.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetricId(Arc<str>);

impl MetricId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MetricId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for MetricId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MetricId({})", self.0)
    }
}

impl Serialize for MetricId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// How a metric behaves over time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    /// Sums over periods (cases, visits, person-times).
    #[default]
    Count,
    /// A level at a moment (number of grid workers): over time the last value counts.
    Stock,
}

/// Whether breaking a rule rejects a report or only warns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Hard,
    Soft,
}

/// Comparison of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RuleOp {
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">=")]
    Ge,
}

/// Which way a figure is better: fewer 发案 is better, a higher 调处成功率 is. Unsaid: neither
/// (more 排查 may be diligence or trouble).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    Higher,
    Lower,
}

/// A metric definition.
#[derive(Debug, Clone, Serialize)]
pub struct Metric {
    pub id: MetricId,
    pub zh: String,
    pub en: String,
    pub unit: String,
    pub kind: MetricKind,
    /// The category (by id) the metric may be broken down by.
    pub category: Option<String>,
    /// Kept for the reports that carry it, no longer asked on any form.
    pub retired: bool,
    /// Which way is better, when one is.
    pub better: Option<Better>,
    /// A headline figure of the dashboard's first screen.
    pub headline: bool,
}

/// A category of parts, e.g. dispute type with its values.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    pub id: String,
    pub zh: String,
    pub en: String,
    pub values: Vec<String>,
}

/// A group of metrics for breakdowns (矛盾纠纷, 案件, 信访, ...): every metric whose id starts
/// with `id` and a dot.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub id: String,
    pub zh: String,
    pub en: String,
}

/// `metric op factor × other`.
#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    pub metric: MetricId,
    pub op: RuleOp,
    pub factor: i64,
    pub other: MetricId,
    pub severity: Severity,
}

/// What an indicator divides by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Denominator {
    Metric(MetricId),
    /// The area's population for the period's year.
    Population,
}

/// A derived indicator: numerator / denominator × factor, a ratio of sums at every level.
#[derive(Debug, Clone, Serialize)]
pub struct Indicator {
    pub id: String,
    pub zh: String,
    pub en: String,
    pub numerator: MetricId,
    pub denominator: Denominator,
    pub factor: f64,
    pub unit: String,
    /// Which way is better, when one is.
    pub better: Option<Better>,
    /// A headline figure of the dashboard's first screen.
    pub headline: bool,
}

/// Why a catalogue file was refused.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("cannot read catalogue {0}: {1}")]
    Io(String, std::io::Error),
    #[error("catalogue is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("catalogue: {0}")]
    Invalid(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    #[serde(default)]
    category: Vec<Category>,
    #[serde(default)]
    metric: Vec<MetricFile>,
    #[serde(default)]
    rule: Vec<RuleFile>,
    #[serde(default)]
    indicator: Vec<IndicatorFile>,
    #[serde(default)]
    group: Vec<Group>,
    #[serde(default)]
    form: Vec<crate::form::FormFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricFile {
    id: String,
    zh: String,
    en: String,
    #[serde(default)]
    unit: String,
    #[serde(default)]
    kind: MetricKind,
    category: Option<String>,
    #[serde(default)]
    retired: bool,
    #[serde(default)]
    better: Option<Better>,
    #[serde(default)]
    headline: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    metric: String,
    op: RuleOp,
    #[serde(default = "one")]
    factor: i64,
    other: String,
    severity: Severity,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IndicatorFile {
    id: String,
    zh: String,
    en: String,
    numerator: String,
    denominator: String,
    #[serde(default = "one_f")]
    factor: f64,
    #[serde(default)]
    unit: String,
    #[serde(default)]
    better: Option<Better>,
    #[serde(default)]
    headline: bool,
}

fn one() -> i64 {
    1
}

fn one_f() -> f64 {
    1.0
}

/// [`Catalogue::fingerprint`] of a list of metrics.
fn fingerprint_of(metrics: &[Metric]) -> u64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for m in metrics {
        h.update(m.id.as_str().as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// A set of catalogue slots ([`Catalogue::metric_slot`]), one bit each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slots(Vec<u64>);

impl Slots {
    /// An empty set for a catalogue of `n` metrics.
    pub fn with_capacity(n: usize) -> Slots {
        Slots(vec![0; n.div_ceil(64)])
    }

    /// Adds a slot, growing the set when needed.
    pub fn insert(&mut self, slot: usize) {
        let word = slot / 64;
        if word >= self.0.len() {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= 1 << (slot % 64);
    }

    /// Whether the slot is in the set.
    pub fn contains(&self, slot: usize) -> bool {
        self.0
            .get(slot / 64)
            .is_some_and(|w| w & (1 << (slot % 64)) != 0)
    }
}

/// The catalogue in force.
#[derive(Debug, Clone)]
pub struct Catalogue {
    metrics: Vec<Metric>,
    index: HashMap<Arc<str>, usize, foldhash::fast::FixedState>,
    /// Each slot's place in id order: a report's values sorted by it are in canonical order.
    rank: Vec<u32>,
    categories: HashMap<String, Category>,
    rules: Vec<Rule>,
    /// Each rule's (metric, other) slots, in rule order.
    rule_slots: Vec<(usize, usize)>,
    indicators: Vec<Indicator>,
    groups: Vec<Group>,
    forms: Vec<Form>,
    /// [`Catalogue::fingerprint`].
    fingerprint: u64,
}

impl Catalogue {
    /// The default catalogue shipped with pingan (`data/catalogue.toml`).
    pub fn builtin() -> Catalogue {
        Catalogue::from_toml(crate::fixtures::CATALOGUE_TOML)
            .expect("the shipped catalogue is valid")
    }

    /// Reads a catalogue file.
    pub fn load(path: &Path) -> Result<Catalogue, CatalogueError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CatalogueError::Io(path.display().to_string(), e))?;
        Catalogue::from_toml(&text)
    }

    /// Parses and checks a catalogue.
    pub fn from_toml(text: &str) -> Result<Catalogue, CatalogueError> {
        let file: CatalogueFile = toml::from_str(text)?;
        let categories = checked_categories(file.category)?;
        let (metrics, index) = checked_metrics(file.metric, &categories)?;
        let mut by_id: Vec<usize> = (0..metrics.len()).collect();
        by_id.sort_by(|&a, &b| metrics[a].id.cmp(&metrics[b].id));
        let mut rank = vec![0u32; metrics.len()];
        for (place, &slot) in by_id.iter().enumerate() {
            rank[slot] = place as u32;
        }
        let mut cat = Catalogue {
            metrics,
            index,
            rank,
            categories,
            rules: Vec::new(),
            rule_slots: Vec::new(),
            indicators: Vec::new(),
            groups: file.group,
            forms: Vec::new(),
            fingerprint: 0,
        };
        cat.fingerprint = fingerprint_of(&cat.metrics);
        let known = |cat: &Catalogue, id: &str, what: &str| {
            cat.metric_id(id).ok_or_else(|| {
                CatalogueError::Invalid(format!("{what} names unknown metric {id:?}"))
            })
        };
        for r in file.rule {
            let rule = Rule {
                metric: known(&cat, &r.metric, "a rule")?,
                op: r.op,
                factor: r.factor,
                other: known(&cat, &r.other, "a rule")?,
                severity: r.severity,
            };
            cat.rule_slots.push((
                cat.index[rule.metric.as_str()],
                cat.index[rule.other.as_str()],
            ));
            cat.rules.push(rule);
        }
        for i in file.indicator {
            let denominator = match i.denominator.as_str() {
                "population" => Denominator::Population,
                other => Denominator::Metric(known(&cat, other, "an indicator")?),
            };
            if !(i.factor.is_finite() && i.factor > 0.0) {
                return Err(CatalogueError::Invalid(format!(
                    "indicator {:?}: factor must be positive",
                    i.id
                )));
            }
            let numerator = known(&cat, &i.numerator, "an indicator")?;
            cat.indicators.push(Indicator {
                id: i.id,
                zh: i.zh,
                en: i.en,
                numerator,
                denominator,
                factor: i.factor,
                unit: i.unit,
                better: i.better,
                headline: i.headline,
            });
        }
        cat.forms = cat.checked_forms(file.form)?;
        for f in &mut cat.forms {
            let mut asked = vec![Slots::with_capacity(cat.metrics.len()); Level::ALL.len() + 1];
            for level in Level::ALL {
                for m in f.metrics_for(level) {
                    asked[level as usize].insert(cat.index[m.as_str()]);
                }
            }
            for m in f.department_metrics() {
                asked[Level::ALL.len()].insert(cat.index[m.as_str()]);
            }
            f.asked = asked;
        }
        Ok(cat)
    }

    /// The file's forms, checked, or the ones a catalogue without forms implies; every current
    /// metric is on a form, no retired one is.
    fn checked_forms(&self, file: Vec<crate::form::FormFile>) -> Result<Vec<Form>, CatalogueError> {
        let current: Vec<MetricId> = self
            .metrics
            .iter()
            .filter(|m| !m.retired)
            .map(|m| m.id.clone())
            .collect();
        if file.is_empty() {
            return Ok(crate::form::implied_forms(current));
        }
        let metric = |id: &str| match self.index.get(id).map(|&i| &self.metrics[i]) {
            None => Err(format!("未知指标 {id:?}")),
            Some(m) if m.retired => Err(format!("指标 {id:?} 已停用（retired），不能再列入报表")),
            Some(m) => Ok(m.id.clone()),
        };
        let forms = crate::form::checked_forms(file, &metric).map_err(CatalogueError::Invalid)?;
        if let Some(orphan) = current.iter().find(|m| {
            !forms
                .iter()
                .any(|f| f.sections.iter().any(|s| s.metrics.contains(m)))
        }) {
            return Err(CatalogueError::Invalid(format!(
                "指标 {orphan} 不在任何报表中：把它加到一张报表的 section，或标记 retired = true"
            )));
        }
        self.check_bounds_on_forms(&forms)?;
        Ok(forms)
    }

    /// A hard rule's bounded metric (调处成功 ≤ 调处矛盾纠纷) is asked on a form only with its
    /// bound, for every reporter of the form: otherwise no report of it could be valid.
    fn check_bounds_on_forms(&self, forms: &[Form]) -> Result<(), CatalogueError> {
        for rule in self.rules.iter().filter(|r| r.severity == Severity::Hard) {
            let (bounded, bound) = match rule.op {
                RuleOp::Le => (&rule.metric, &rule.other),
                RuleOp::Ge => (&rule.other, &rule.metric),
            };
            for f in forms {
                let mut reporters: Vec<(String, Vec<&MetricId>)> = f
                    .levels
                    .iter()
                    .map(|l| (l.zh().to_owned(), f.metrics_for(*l).collect()))
                    .collect();
                if f.departments {
                    reporters.push(("部门".into(), f.department_metrics().collect()));
                }
                for (who, asked) in reporters {
                    if asked.contains(&bounded) && !asked.contains(&bound) {
                        return Err(CatalogueError::Invalid(format!(
                            "报表 {:?}：{who}填 {bounded} 却不填 {bound}，而规则要求填了前者就同时填后者：把 {bound} 加到同一张表",
                            f.id
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// The report forms, in catalogue order.
    pub fn forms(&self) -> &[Form] {
        &self.forms
    }

    /// A form by id or Chinese title.
    pub fn form(&self, id_or_zh: &str) -> Option<&Form> {
        self.forms
            .iter()
            .find(|f| f.id == id_or_zh || f.zh == id_or_zh)
    }

    /// The form a mistyped form name most likely meant (a character or two off its id or
    /// title), as a label.
    pub fn suggest_form(&self, typed: &str) -> Option<String> {
        let typed = typed.trim();
        self.forms
            .iter()
            .flat_map(|f| [(f.id.as_str(), f), (f.zh.as_str(), f)])
            .map(|(name, f)| (edit_distance(typed, name), f))
            .filter(|(d, _)| *d <= (typed.chars().count() / 3).max(1))
            .min_by_key(|(d, _)| *d)
            .map(|(_, f)| f.label())
    }

    /// What a clerk reads for a form name the catalogue does not know: the near miss it likely
    /// meant, or every form.
    pub fn unknown_form(&self, typed: &str) -> String {
        let hint = match self.suggest_form(typed) {
            Some(s) => format!("，是否是 {s}？"),
            None => {
                let all: Vec<String> = self.forms.iter().map(Form::label).collect();
                format!("（可选：{}）", all.join("、"))
            }
        };
        format!("未知报表「{typed}」{hint}")
    }

    /// The form offices of `level` report for periods of `kind`, if any.
    pub fn form_for(&self, level: Level, kind: PeriodKind) -> Option<&Form> {
        self.forms
            .iter()
            .find(|f| f.period == kind && f.reported_by(level))
    }

    /// The form departments (条) report for periods of `kind`, if any.
    pub fn form_for_departments(&self, kind: PeriodKind) -> Option<&Form> {
        self.forms
            .iter()
            .find(|f| f.period == kind && f.departments)
    }

    /// The default form (monthly).
    pub fn default_form(&self) -> &Form {
        self.forms
            .iter()
            .find(|f| f.default)
            .expect("checked: one default form")
    }

    /// The id for a known metric, accepting its id or its Chinese name.
    pub fn metric_id(&self, id_or_zh: &str) -> Option<MetricId> {
        self.metric_slot(id_or_zh)
            .map(|i| self.metrics[i].id.clone())
    }

    /// A known metric's slot: its place in [`Catalogue::metrics`], accepting its id or its
    /// Chinese name.
    pub fn metric_slot(&self, id_or_zh: &str) -> Option<usize> {
        if let Some(&i) = self.index.get(id_or_zh) {
            return Some(i);
        }
        self.metrics.iter().position(|m| m.zh == id_or_zh)
    }

    /// What a compact report's metric positions ([`crate::pb::PackedValues`]) are taken against:
    /// the first 8 bytes of SHA-256 over the metric ids in catalogue order. Two catalogues with
    /// the same fingerprint give every position the same metric.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// A slot's place in id order ([`MetricId`]'s order): values sorted by it are canonical.
    pub fn id_rank(&self, slot: usize) -> u32 {
        self.rank[slot]
    }

    /// The rules with their metrics' slots: (rule, metric's slot, other's slot).
    pub fn rules_with_slots(&self) -> impl Iterator<Item = (&Rule, usize, usize)> {
        self.rules
            .iter()
            .zip(&self.rule_slots)
            .map(|(r, &(a, b))| (r, a, b))
    }

    /// A metric as users read it: its Chinese name with its id beside it,
    /// e.g. `调处成功 (disputes.resolved)`.
    pub fn label(&self, id: &MetricId) -> String {
        format!("{} ({id})", self.metric(id).zh)
    }

    /// The known metric or indicator a mistyped name most likely meant (a character or two
    /// off its id or Chinese name), as a label.
    pub fn suggest(&self, typed: &str) -> Option<String> {
        let typed = typed.trim();
        let candidates = self
            .metrics
            .iter()
            .flat_map(|m| {
                let label = self.label(&m.id);
                [(m.id.as_str(), label.clone()), (m.zh.as_str(), label)]
            })
            .chain(self.indicators.iter().flat_map(|i| {
                let label = format!("{} ({})", i.zh, i.id);
                [(i.id.as_str(), label.clone()), (i.zh.as_str(), label)]
            }));
        candidates
            .map(|(name, label)| (edit_distance(typed, name), label))
            .filter(|(d, _)| *d <= (typed.chars().count() / 3).max(1))
            .min_by_key(|(d, _)| *d)
            .map(|(_, label)| label)
    }

    /// The definition of a metric.
    pub fn metric(&self, id: &MetricId) -> &Metric {
        &self.metrics[self.index[id.as_str()]]
    }

    /// Every metric, in catalogue order.
    pub fn metrics(&self) -> &[Metric] {
        &self.metrics
    }

    /// The category of parts a metric may be broken down by.
    pub fn category_of(&self, id: &MetricId) -> Option<&Category> {
        self.metric(id)
            .category
            .as_ref()
            .map(|c| &self.categories[c])
    }

    /// The rules, in catalogue order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The derived indicators, in catalogue order.
    pub fn indicators(&self) -> &[Indicator] {
        &self.indicators
    }

    /// The groups, in catalogue order.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The group a metric belongs to (by its id's first segment), if the catalogue names one.
    pub fn group_of(&self, id: &str) -> Option<&Group> {
        let prefix = id.split('.').next().unwrap_or(id);
        self.groups.iter().find(|g| g.id == prefix)
    }

    /// An indicator by id or Chinese name.
    pub fn indicator(&self, id_or_zh: &str) -> Option<&Indicator> {
        self.indicators
            .iter()
            .find(|i| i.id == id_or_zh || i.zh == id_or_zh)
    }
}

/// Levenshtein distance over characters (a Chinese character counts as one).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The catalogue file's categories, each with values, none listed twice.
fn checked_categories(file: Vec<Category>) -> Result<HashMap<String, Category>, CatalogueError> {
    let invalid = |m: String| Err(CatalogueError::Invalid(m));
    let mut categories = HashMap::new();
    for c in file {
        if c.values.is_empty() {
            return invalid(format!("category {:?} has no values", c.id));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = c.values.iter().find(|v| !seen.insert(v.as_str())) {
            return invalid(format!("category {:?} lists {dup:?} twice", c.id));
        }
        if categories.insert(c.id.clone(), c.clone()).is_some() {
            return invalid(format!("category {:?} is defined twice", c.id));
        }
    }
    Ok(categories)
}

/// The catalogue file's metrics with well-formed ids, each once, breaking down by known
/// categories (a stock too: 网格员 by 专职/兼职); and the index of their ids.
type Metrics = (
    Vec<Metric>,
    HashMap<Arc<str>, usize, foldhash::fast::FixedState>,
);

fn checked_metrics(
    file: Vec<MetricFile>,
    categories: &HashMap<String, Category>,
) -> Result<Metrics, CatalogueError> {
    let invalid = |m: String| Err(CatalogueError::Invalid(m));
    let mut metrics = Vec::new();
    // asked once per value of every report validated, so a fast hash; the keys stored are the
    // catalogue's own ids, so no sender can crowd them into one bucket
    let mut index = HashMap::with_hasher(foldhash::fast::FixedState::default());
    for m in file {
        let valid_id = !m.id.is_empty()
            && m.id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_');
        if !valid_id {
            return invalid(format!(
                "metric id {:?}: use lowercase letters, digits, '.' and '_'",
                m.id
            ));
        }
        if let Some(cat) = &m.category
            && !categories.contains_key(cat)
        {
            return invalid(format!("metric {:?} names unknown category {cat:?}", m.id));
        }
        let id: Arc<str> = m.id.as_str().into();
        if index.insert(id.clone(), metrics.len()).is_some() {
            return invalid(format!("metric {:?} is defined twice", m.id));
        }
        metrics.push(Metric {
            id: MetricId(id),
            zh: m.zh,
            en: m.en,
            unit: m.unit,
            kind: m.kind,
            category: m.category,
            retired: m.retired,
            better: m.better,
            headline: m.headline,
        });
    }
    Ok((metrics, index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_answer_as_the_ids_do() {
        // the validator asks by slot; every answer equals the one by id, for every form,
        // reporter and metric, and slots in rank order are the ids in order
        let c = Catalogue::builtin();
        let mut asked = 0;
        for f in c.forms() {
            for (slot, m) in c.metrics().iter().enumerate() {
                assert_eq!(c.metric_slot(m.id.as_str()), Some(slot));
                assert_eq!(c.metric_slot(&m.zh), Some(slot));
                for level in Level::ALL {
                    assert_eq!(f.asks_slot(level, slot), f.asks(level, &m.id), "{}", f.id);
                    asked += usize::from(f.asks(level, &m.id));
                }
                let by_department = f.departments && f.department_metrics().any(|d| d == &m.id);
                assert_eq!(f.asks_department_slot(slot), by_department, "{}", f.id);
            }
        }
        assert!(asked > 50, "the forms ask {asked} (form, level, metric)s");
        let mut by_rank: Vec<usize> = (0..c.metrics().len()).collect();
        by_rank.sort_by_key(|&s| c.id_rank(s));
        let ids: Vec<&MetricId> = by_rank.iter().map(|&s| &c.metrics()[s].id).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        for ((rule, a, b), r) in c.rules_with_slots().zip(c.rules()) {
            assert_eq!(
                (&c.metrics()[a].id, &c.metrics()[b].id),
                (&r.metric, &r.other)
            );
            assert!(std::ptr::eq(rule, r));
        }
        let mut s = Slots::with_capacity(3);
        s.insert(130);
        assert!(s.contains(130) && !s.contains(2) && !s.contains(500));
    }

    #[test]
    fn typos_get_a_suggestion() {
        let c = Catalogue::builtin();
        assert_eq!(
            c.suggest("调解矛盾纠纷").as_deref(),
            Some("调处矛盾纠纷 (disputes.mediated)")
        );
        assert_eq!(
            c.suggest("disputes.mediatd").as_deref(),
            Some("调处矛盾纠纷 (disputes.mediated)")
        );
        assert_eq!(
            c.suggest("调处成攻率").as_deref(),
            Some("调处成功率 (disputes.success_rate)")
        );
        assert_eq!(c.suggest("完全无关的名字"), None);
        assert_eq!(edit_distance("abc", "abd"), 1);
        assert_eq!(edit_distance("", "ab"), 2);
    }

    #[test]
    fn builtin_catalogue_holds_the_domain_table() {
        let c = Catalogue::builtin();
        assert_eq!(c.metrics().len(), 53);
        // every built-in metric is in a group, so breakdowns leave nothing under 其他
        for m in c.metrics() {
            assert!(c.group_of(m.id.as_str()).is_some(), "{} has no group", m.id);
        }
        assert_eq!(c.group_of("petitions.letters").unwrap().zh, "信访");
        let workers = c.metric_id("网格员人数").unwrap();
        assert_eq!(c.metric(&workers).kind, MetricKind::Stock);
        let identified = c.metric_id("disputes.identified").unwrap();
        assert_eq!(c.category_of(&identified).unwrap().values.len(), 12);
        assert!(
            c.rules()
                .iter()
                .any(|r| r.metric.as_str() == "disputes.resolved"
                    && r.other.as_str() == "disputes.mediated"
                    && r.severity == Severity::Hard)
        );
        assert_eq!(
            c.indicator("万人发案率").unwrap().denominator,
            Denominator::Population
        );
        // a stock broken down by a category
        let villages = c.metric_id("平安村(社区)创建").unwrap();
        assert_eq!(c.metric(&villages).kind, MetricKind::Stock);
        assert_eq!(c.category_of(&villages).unwrap().values, ["★", "★★", "★★★"]);
        assert_eq!(
            c.metric(&c.metric_id("非法集资涉案金额").unwrap()).unit,
            "万元"
        );
    }

    #[test]
    fn forms_say_who_reports_what_for_which_periods() {
        let c = Catalogue::builtin();
        let monthly = c.default_form();
        assert_eq!(
            (monthly.id.as_str(), monthly.zh.as_str()),
            ("zongzhi_monthly", "综治工作月报")
        );
        let identified = c.metric_id("disputes.identified").unwrap();
        assert!(monthly.asks(Level::Village, &identified));
        assert!(!monthly.asks(Level::Township, &identified));
        let half = c.form_for(Level::Township, PeriodKind::HalfMonth).unwrap();
        assert_eq!(half.zh, "矛盾纠纷排查化解半月报");
        assert!(half.asks(Level::Township, &identified));
        let daily = c.form("重点人员稳控日报").unwrap();
        assert_eq!(daily.period, PeriodKind::Day);
        assert_eq!(daily.deadline.hour, Some(12));
        assert!(c.form_for(Level::Province, PeriodKind::Month).is_none());
        assert_eq!(
            c.suggest_form("矛盾纠纷排查半月报").as_deref(),
            Some("矛盾纠纷排查化解半月报 (disputes_half_monthly)")
        );
        assert_eq!(c.suggest_form("完全无关"), None);
        // every current metric is on a form
        for m in c.metrics() {
            assert!(
                c.forms()
                    .iter()
                    .any(|f| f.sections.iter().any(|s| s.metrics.contains(&m.id))),
                "{} is on no form",
                m.id
            );
        }
        // a catalogue without forms (before forms) implies the forms pingan took before
        let old =
            Catalogue::from_toml("[[metric]]\nid = \"a\"\nzh = \"甲\"\nen = \"a\"\n").unwrap();
        assert_eq!(old.default_form().period, PeriodKind::Month);
        let a = old.metric_id("a").unwrap();
        for kind in [PeriodKind::Month, PeriodKind::Week, PeriodKind::Day] {
            for level in [Level::County, Level::Township, Level::Village] {
                assert!(old.form_for(level, kind).unwrap().asks(level, &a));
            }
        }
    }

    #[test]
    fn refuses_forms_that_would_count_a_figure_twice() {
        let metrics = "[[metric]]\nid = \"a\"\nzh = \"甲\"\nen = \"a\"\n\
                       [[metric]]\nid = \"b\"\nzh = \"乙\"\nen = \"b\"\nretired = true\n";
        let form = |id: &str, period: &str, levels: &str, metrics: &str, default: bool| {
            format!(
                "[[form]]\nid = \"{id}\"\nzh = \"{id}\"\nperiod = \"{period}\"\n\
                 levels = [{levels}]\ndefault = {default}\n[[form.section]]\nzh = \"x\"\n\
                 metrics = [{metrics}]\n"
            )
        };
        for (forms, needle) in [
            (
                form("m", "month", "\"village\"", "\"a\"", true)
                    + &form("h", "half_month", "\"village\"", "\"a\"", false),
                "加两次",
            ),
            (
                form("m", "month", "\"village\"", "\"a\"", true)
                    + &form("n", "month", "\"village\"", "", false),
                "两张报表",
            ),
            (
                form("m", "month", "\"village\"", "\"a\", \"b\"", true),
                "停用",
            ),
            (
                form("m", "month", "\"village\"", "\"a\", \"a\"", true),
                "两次",
            ),
            (form("m", "month", "\"village\"", "", true), "不在任何报表"),
            (form("m", "week", "\"village\"", "\"a\"", true), "默认报表"),
            (
                form("m", "quarter", "\"village\"", "\"a\"", true),
                "half_month",
            ),
            (
                form("m", "month", "\"village\"", "\"a\"", false),
                "没有默认报表",
            ),
            (
                form("m", "month", "\"village\"", "\"a\"", true)
                    + "[[form]]\nid = \"d\"\nzh = \"d\"\nperiod = \"day\"\nlevels = [\"village\"]\n\
                       active = [\"2026-10\"]\n[[form.section]]\nzh = \"x\"\nmetrics = []\n",
                "应由日报的期间组成",
            ),
        ] {
            let e = Catalogue::from_toml(&format!("{metrics}{forms}"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{e:?} should mention {needle:?}");
        }
        // departments (条) report a form of their own; the same metric may be on a division's
        // form too: departments' figures are never added into territorial totals
        let dept = |id: &str, metrics: &str| {
            format!(
                "[[form]]\nid = \"{id}\"\nzh = \"{id}\"\nperiod = \"month\"\n\
                 departments = true\n[[form.section]]\nzh = \"x\"\nmetrics = [{metrics}]\n"
            )
        };
        let c = Catalogue::from_toml(&format!(
            "{metrics}{}{}",
            form("m", "month", "\"village\"", "\"a\"", true),
            dept("d", "\"a\"")
        ))
        .unwrap();
        let d = c.form_for_departments(PeriodKind::Month).unwrap();
        assert_eq!(d.id, "d");
        assert!(d.levels.is_empty() && d.department_metrics().count() == 1);
        assert!(c.form_for_departments(PeriodKind::Day).is_none());
        for (forms, needle) in [
            (
                form("m", "month", "\"village\"", "\"a\"", true)
                    + &dept("d", "\"a\"")
                    + &dept("e", "\"a\""),
                "部门按月报上报了两张报表",
            ),
            (
                form("m", "month", "\"village\"", "\"a\"", true) + &dept("d", "\"a\", \"a\""),
                "列了两次",
            ),
            (form("m", "month", "", "\"a\"", true), "没有填报单位"),
        ] {
            let e = Catalogue::from_toml(&format!("{metrics}{forms}"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{e:?} should mention {needle:?}");
        }
        // the same metric on a monthly form for villages and a half-monthly one for townships
        let ok = form("m", "month", "\"village\"", "\"a\"", true)
            + &form("h", "half_month", "\"township\"", "\"a\"", false);
        let c = Catalogue::from_toml(&format!("{metrics}{ok}")).unwrap();
        assert!(c.metric(&c.metric_id("b").unwrap()).retired);
    }

    #[test]
    fn an_operator_adds_a_metric_without_recompiling() {
        // the new metric goes on the last form of the file (the daily one) as a section
        let text = format!(
            "[[metric]]\nid = \"drugs.seized_cases\"\nzh = \"涉毒案件\"\nen = \"drug cases\"\n{}\n\
             [[form.section]]\nzh = \"涉毒\"\nmetrics = [\"drugs.seized_cases\"]\n",
            crate::fixtures::CATALOGUE_TOML
        );
        let c = Catalogue::from_toml(&text).unwrap();
        assert_eq!(c.metrics().len(), Catalogue::builtin().metrics().len() + 1);
        assert!(c.metric_id("涉毒案件").is_some());
    }

    #[test]
    fn a_form_asks_a_bounded_figure_only_with_its_bound() {
        // 调处成功 ≤ 调处矛盾纠纷, hard: a form asking the first without the second could never be
        // filled in validly, for a level or for departments
        let text = |levels: &str, departments: bool, metrics: &str| {
            format!(
                "[[metric]]\nid = \"a\"\nzh = \"甲\"\nen = \"a\"\n\
                 [[metric]]\nid = \"c\"\nzh = \"丙\"\nen = \"c\"\n\
                 [[rule]]\nmetric = \"c\"\nop = \"<=\"\nother = \"a\"\nseverity = \"hard\"\n\
                 [[form]]\nid = \"m\"\nzh = \"m\"\nperiod = \"month\"\nlevels = [\"village\"]\n\
                 default = true\n[[form.section]]\nzh = \"x\"\nmetrics = [\"a\", \"c\"]\n\
                 [[form]]\nid = \"d\"\nzh = \"d\"\nperiod = \"week\"\nlevels = [{levels}]\n\
                 departments = {departments}\n[[form.section]]\nzh = \"x\"\nmetrics = [{metrics}]\n"
            )
        };
        for (levels, departments) in [("\"village\"", false), ("", true)] {
            let e = Catalogue::from_toml(&text(levels, departments, "\"c\""))
                .unwrap_err()
                .to_string();
            assert!(e.contains("填 c 却不填 a"), "{e}");
            Catalogue::from_toml(&text(levels, departments, "\"c\", \"a\"")).unwrap();
        }
    }

    #[test]
    fn refuses_inconsistent_catalogues() {
        for (text, needle) in [
            (
                "[[metric]]\nid = \"a\"\nzh = \"甲\"\nen = \"a\"\ncolour = \"red\"\n",
                "unknown field",
            ),
            (
                "[[metric]]\nid = \"A b\"\nzh = \"甲\"\nen = \"a\"\n",
                "lowercase",
            ),
            (
                "[[metric]]\nid = \"a\"\nzh = \"甲\"\nen = \"a\"\ncategory = \"nope\"\n",
                "unknown category",
            ),
            (
                "[[rule]]\nmetric = \"a\"\nop = \"<=\"\nother = \"b\"\nseverity = \"hard\"\n",
                "unknown metric",
            ),
            (
                "[[metric]]\nid = \"a\"\nzh = \"甲\"\nen = \"a\"\n[[metric]]\nid = \"a\"\nzh = \"乙\"\nen = \"a\"\n",
                "twice",
            ),
        ] {
            let e = Catalogue::from_toml(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{e:?} should mention {needle:?}");
        }
    }
}
