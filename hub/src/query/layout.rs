//! Where each figure sits in the rollup arrays: one slot for every metric's total and one for
//! every part of a disaggregated metric.

use std::collections::HashMap;

use pingan_domain::{Catalogue, Level, MetricId, MetricKind, period::PeriodKind, rollup::Value};

/// The slot layout of a catalogue.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Per metric (catalogue order): its total's slot, its kind, and its parts' slots by name.
    metrics: Vec<MetricSlots>,
    /// Looked up for every stored figure read (villages' values): foldhash, not SipHash.
    by_id: HashMap<String, usize, foldhash::fast::RandomState>,
    slots: usize,
    /// Each slot's metric kind.
    kinds: Vec<MetricKind>,
    /// What a zero report (零报告) of a level for a kind of period says is 0: the total slots of
    /// the count metrics its form asks. A level and kind no form covers: every count metric.
    zero: HashMap<(Level, PeriodKind), Vec<usize>>,
}

/// The slots of one metric.
#[derive(Debug, Clone)]
pub struct MetricSlots {
    pub id: MetricId,
    pub kind: MetricKind,
    pub total: usize,
    /// (part name, slot), in the category's order.
    pub parts: Vec<(String, usize)>,
}

impl Layout {
    /// Lays out a catalogue.
    pub fn new(catalogue: &Catalogue) -> Layout {
        let mut metrics = Vec::new();
        let mut by_id = HashMap::default();
        let mut next = 0;
        for m in catalogue.metrics() {
            let total = next;
            next += 1;
            let parts = catalogue
                .category_of(&m.id)
                .map(|c| {
                    c.values
                        .iter()
                        .map(|v| {
                            next += 1;
                            (v.clone(), next - 1)
                        })
                        .collect()
                })
                .unwrap_or_default();
            by_id.insert(m.id.to_string(), metrics.len());
            metrics.push(MetricSlots {
                id: m.id.clone(),
                kind: m.kind,
                total,
                parts,
            });
        }
        let mut kinds = vec![MetricKind::Count; next];
        for m in &metrics {
            kinds[m.total] = m.kind;
            for (_, s) in &m.parts {
                kinds[*s] = m.kind;
            }
        }
        let mut zero = HashMap::new();
        for f in catalogue.forms() {
            for l in &f.levels {
                let slots = f
                    .metrics_for(*l)
                    .filter(|m| catalogue.metric(m).kind == MetricKind::Count)
                    .map(|m| metrics[by_id[m.as_str()]].total)
                    .collect();
                zero.insert((*l, f.period), slots);
            }
        }
        Layout {
            metrics,
            by_id,
            slots: next,
            kinds,
            zero,
        }
    }

    /// Number of slots.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Each slot's metric kind (how a span combines it).
    pub fn kinds(&self) -> &[MetricKind] {
        &self.kinds
    }

    /// Every metric's slots, in catalogue order.
    pub fn metrics(&self) -> &[MetricSlots] {
        &self.metrics
    }

    /// A metric's slots.
    pub fn metric(&self, id: &str) -> Option<&MetricSlots> {
        self.by_id.get(id).map(|&i| &self.metrics[i])
    }

    /// The slot of a metric's total (`part` empty) or of one of its parts.
    pub fn slot(&self, metric: &str, part: &str) -> Option<usize> {
        let m = self.metric(metric)?;
        if part.is_empty() {
            return Some(m.total);
        }
        m.parts.iter().find(|(p, _)| p == part).map(|(_, s)| *s)
    }

    /// What every slot holds: (metric id, part; empty for the total), in slot order.
    pub fn slot_names(&self) -> Vec<(String, String)> {
        let mut out = vec![(String::new(), String::new()); self.slots];
        for m in &self.metrics {
            out[m.total] = (m.id.to_string(), String::new());
            for (part, slot) in &m.parts {
                out[*slot] = (m.id.to_string(), part.clone());
            }
        }
        out
    }

    /// A report's values as (slot, value) pairs, for a report of `level` for a period of `kind`.
    /// A zero report (零报告) carries every count metric its form asks as 0; stocks are not
    /// implied by it.
    pub fn cells(
        &self,
        level: Level,
        kind: PeriodKind,
        zero_report: bool,
        values: &[Value],
    ) -> Vec<(usize, i64)> {
        let mut out = Vec::with_capacity(values.len() + 4);
        for v in values {
            let Some(&i) = self.by_id.get(&v.metric) else {
                // a metric removed from the catalogue since the report was stored
                continue;
            };
            let m = &self.metrics[i];
            let parts = || v.parts.values().fold(0i64, |a, b| a.saturating_add(*b));
            out.push((m.total, v.total.unwrap_or_else(parts)));
            for (name, slot) in &m.parts {
                if let Some(n) = v.parts.get(name) {
                    out.push((*slot, *n));
                }
            }
        }
        self.add_zeros(level, kind, zero_report, &mut out);
        out
    }

    /// [`Layout::cells`] of figures already placed: (slot, value) for each metric's total (its
    /// parts' sum when it gave none) and each of its parts this layout has, as a store reader
    /// maps its numbered pairs to slots.
    pub fn cells_placed(
        &self,
        level: Level,
        kind: PeriodKind,
        zero_report: bool,
        placed: impl Iterator<Item = (usize, i64)>,
    ) -> Vec<(usize, i64)> {
        let mut out: Vec<(usize, i64)> = placed.collect();
        self.add_zeros(level, kind, zero_report, &mut out);
        out
    }

    /// A zero report's implied zeros, added to `out` where it has no figure.
    fn add_zeros(
        &self,
        level: Level,
        kind: PeriodKind,
        zero_report: bool,
        out: &mut Vec<(usize, i64)>,
    ) {
        if !zero_report {
            return;
        }
        for slot in self.implied_zeros(level, kind) {
            if !out.iter().any(|(s, _)| *s == slot) {
                out.push((slot, 0));
            }
        }
    }

    /// The slots a zero report of `level` for periods of `kind` says are 0 where it gives no
    /// figure: the count metrics its form asks (a level and kind no form covers: every count
    /// metric).
    pub fn implied_zeros(&self, level: Level, kind: PeriodKind) -> impl Iterator<Item = usize> {
        let form = self.zero.get(&(level, kind));
        let no_form = form.is_none();
        form.into_iter().flatten().copied().chain(
            self.metrics
                .iter()
                .filter(move |m| no_form && m.kind == MetricKind::Count)
                .map(|m| m.total),
        )
    }
}
