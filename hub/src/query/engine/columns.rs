//! Many inner areas' span figures and completeness read period by period: for each period of the
//! span, one pass over the rows reading that period's arrays in id order. Row by row, a
//! national ranking over ten months kept sixty streams of memory open at once (each period's
//! sums and presence for three spans) and waited on memory for most of its time; period by
//! period it reads two streams at a time. The results are exactly
//! [`Engine::combine_into`]'s and [`Engine::counts_in`]'s for each row: only the order of the
//! loops differs (each row still meets its periods in order).
//!
//! Villages are not in the rollups: their own figures are read from the store as a column per
//! slot a question reads ([`Engine::leaf_columns`]) and kept in [`LeafCache`] until a revision
//! of their period commits.

use std::{
    collections::HashMap,
    sync::{Arc, PoisonError},
};

use pingan_domain::{AreaCode, Level, MetricKind, Period, period::PeriodKind};

use super::{Counts, Cube, Engine, Figures, LEVELS, Layout, QueryError, SpanView};
use crate::store::{LeafFigures, StoreReader};

/// One span's figures of some slots for rows of inner areas: `columns[k][j]` is slot
/// `slots[k]` of row `j`, missing where no period of the span carries it.
pub(super) struct SpanColumns {
    pub(super) slots: Vec<usize>,
    pub(super) columns: Vec<Vec<Option<i64>>>,
}

impl SpanColumns {
    /// Slot `slot` of row `j` (missing when the slot was not read).
    pub(super) fn get(&self, slot: usize, j: usize) -> Option<i64> {
        let k = self.slots.iter().position(|s| *s == slot)?;
        self.columns[k][j]
    }
}

/// The span's figures of `slots` for the inner areas `ids`, combined as
/// [`super::Engine::combine_into`] combines one area's: counts summed over the periods that
/// carry them, stocks the last period's that carries them within each series (months, and
/// half-months added to them at the end).
pub(super) fn span_sums(
    cube: &Cube,
    view: &SpanView<'_>,
    ids: &[u32],
    slots: &[usize],
) -> SpanColumns {
    let periods = view.periods.iter().zip(&view.slabs).map(|(p, slab)| {
        let figure = slab.map(|slab| {
            move |slot: usize, j: usize| {
                let i = slab.cell(ids[j] as usize, slot);
                (slab.present[i] > 0).then(|| slab.sums[i])
            }
        });
        (p.kind(), figure)
    });
    combine_rows(cube.layout.kinds(), periods, ids.len(), slots)
}

/// The span's figures of `slots` for the villages `ids` from their own reports' columns.
pub(super) fn leaf_sums(
    cube: &Cube,
    view: &SpanView<'_>,
    leaves: &LeafSource,
    ids: &[u32],
    slots: &[usize],
) -> SpanColumns {
    let periods = view.periods.iter().map(|p| {
        // each slot's columns looked up once a period, not once a figure
        let by_slot: Vec<(usize, &[Arc<LeafColumn>])> = slots
            .iter()
            .map(|s| (*s, leaves.columns_of(*p, *s)))
            .collect();
        let figure = move |slot: usize, j: usize| {
            let (_, columns) = by_slot.iter().find(|(s, _)| *s == slot)?;
            LeafSource::find(columns, ids[j])
        };
        (p.kind(), Some(figure))
    });
    combine_rows(cube.layout.kinds(), periods, ids.len(), slots)
}

/// Rows' figures of `slots` over periods in order, each period's `figure(slot, row)` (none: the
/// period holds nothing), combined as [`super::Engine::combine_into`] combines one area's.
fn combine_rows<F: Fn(usize, usize) -> Option<i64>>(
    kinds: &[MetricKind],
    periods: impl Iterator<Item = (PeriodKind, Option<F>)>,
    rows: usize,
    slots: &[usize],
) -> SpanColumns {
    let mut columns: Vec<Vec<Option<i64>>> = vec![vec![None; rows]; slots.len()];
    let mut halves: Option<Vec<Vec<Option<i64>>>> = None;
    for (kind, figure) in periods {
        let Some(figure) = figure else { continue };
        let acc = if kind == PeriodKind::HalfMonth {
            halves.get_or_insert_with(|| vec![vec![None; rows]; slots.len()])
        } else {
            &mut columns
        };
        for (column, &slot) in acc.iter_mut().zip(slots) {
            let count = kinds[slot] == MetricKind::Count;
            for (j, out) in column.iter_mut().enumerate() {
                if let Some(v) = figure(slot, j) {
                    *out = match (count, *out) {
                        (true, Some(a)) => Some(a.saturating_add(v)),
                        _ => Some(v),
                    };
                }
            }
        }
    }
    if let Some(halves) = halves {
        for (column, half) in columns.iter_mut().zip(halves) {
            for (o, h) in column.iter_mut().zip(half) {
                *o = match (*o, h) {
                    (Some(a), Some(b)) => Some(a.saturating_add(b)),
                    (a, b) => a.or(b),
                };
            }
        }
    }
    SpanColumns {
        slots: slots.to_vec(),
        columns,
    }
}

/// The span's completeness of the inner areas `ids`, as [`super::Engine::counts_in`] counts
/// one: reporters of the levels in each row's mask (bit `1 << level`). One pass over the rows
/// per period, every level the period is reported by at once (a pass per level and period read
/// each row's counters once for every level).
pub(super) fn span_counts(view: &SpanView<'_>, ids: &[u32], masks: &[u8]) -> Vec<Counts> {
    let mut out = vec![Counts::default(); ids.len()];
    for (k, reporting) in view.reporting.iter().enumerate() {
        let levels: Vec<usize> = (0..LEVELS).filter(|l| reporting[*l]).collect();
        if levels.is_empty() {
            continue;
        }
        let expected = &view.expected[k];
        let slab = view.slabs[k];
        for ((c, &id), &mask) in out.iter_mut().zip(ids).zip(masks) {
            let id = id as usize;
            let e = &expected[id];
            for &l in &levels {
                if mask & (1 << l) == 0 {
                    continue;
                }
                c.expected += u64::from(e[l]);
                if let Some(slab) = slab {
                    c.received += u64::from(slab.received[id * LEVELS + l]);
                    c.on_time += u64::from(slab.on_time_n[id * LEVELS + l]);
                }
            }
        }
    }
    out
}

/// One slot of the villages' own current (or approved) figures for one period, over the
/// villages of one area: ids `start..start + values.len()`, `None` where a village gave none
/// (a zero report's implied zeros included, as [`crate::query::layout::Layout::cells`] adds).
#[derive(Debug)]
pub(super) struct LeafColumn {
    start: u32,
    values: Vec<Option<i64>>,
}

impl LeafColumn {
    fn get(&self, id: u32) -> Option<Option<i64>> {
        self.values
            .get(id.checked_sub(self.start)? as usize)
            .copied()
    }
}

/// The villages' columns a question reads: per (period, slot), one column per area it spans,
/// in id order.
#[derive(Debug, Default)]
pub(super) struct LeafSource {
    columns: HashMap<(Period, usize), Vec<Arc<LeafColumn>>>,
}

impl LeafSource {
    /// The columns of `slot` for `period`, in id order (none read: empty).
    fn columns_of(&self, period: Period, slot: usize) -> &[Arc<LeafColumn>] {
        self.columns
            .get(&(period, slot))
            .map_or(&[], |c| c.as_slice())
    }

    /// Village `id`'s figure in the column of `columns` that holds it (none: not read, or not
    /// given).
    fn find(columns: &[Arc<LeafColumn>], id: u32) -> Option<i64> {
        let i = columns.partition_point(|c| c.start <= id).checked_sub(1)?;
        columns[i].get(id).flatten()
    }

    fn add(&mut self, period: Period, slot: usize, column: Arc<LeafColumn>) {
        let columns = self.columns.entry((period, slot)).or_default();
        let at = columns.partition_point(|c| c.start < column.start);
        columns.insert(at, column);
    }
}

/// Villages' current figures by (area, period, slot), kept after a question read them from the
/// store until a revision of that period commits: a province's villages ranked again read
/// memory, not 34,000 stored rows. Bounded by [`LEAF_CELLS`]; emptied when full.
#[derive(Debug, Default)]
pub(super) struct LeafCache {
    columns: HashMap<(AreaCode, Period, usize), Arc<LeafColumn>>,
    cells: usize,
    /// Per period, moved by every commit of it: a column read from the store is kept only
    /// when its period's generation did not move while it was read.
    generation: HashMap<Period, u64>,
}

/// Figures the villages' cache holds at most (16 bytes each: 64 MiB).
const LEAF_CELLS: usize = 4 << 20;

impl LeafCache {
    /// Forgets the columns of the periods committed revisions belong to.
    pub(super) fn committed(&mut self, periods: impl Iterator<Item = Period>) {
        for p in periods {
            let g = self.generation.entry(p).or_default();
            *g = g.wrapping_add(1);
            let cells = &mut self.cells;
            self.columns.retain(|(_, period, _), c| {
                let keep = *period != p;
                if !keep {
                    *cells -= c.values.len();
                }
                keep
            });
        }
    }

    /// Figures held of `period`.
    #[cfg(test)]
    pub(super) fn held(&self, period: Period) -> usize {
        self.columns
            .iter()
            .filter(|((_, p, _), _)| *p == period)
            .map(|(_, c)| c.values.len())
            .sum()
    }

    fn generation(&self, p: Period) -> u64 {
        self.generation.get(&p).copied().unwrap_or_default()
    }

    fn keep(&mut self, key: (AreaCode, Period, usize), column: Arc<LeafColumn>) {
        if self.cells + column.values.len() > LEAF_CELLS {
            self.columns.clear();
            self.cells = 0;
        }
        self.cells += column.values.len();
        if let Some(old) = self.columns.insert(key, column) {
            self.cells -= old.values.len();
        }
    }
}

impl Engine {
    /// The columns of `slots` of the villages under `tops` for `periods`: current figures from
    /// the villages' cache where it holds them, the rest read from the store (one walk of each
    /// area's villages per period) and kept; approved figures (审核) always read.
    pub(super) fn leaf_columns(
        &self,
        tops: &[AreaCode],
        periods: &[Period],
        figures: Figures,
        slots: &[usize],
    ) -> Result<LeafSource, QueryError> {
        // each top's villages: the first id and the codes in id order, read under the rollups'
        // lock once for every period
        let (layout, villages) = {
            let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
            let villages: Vec<(u32, Vec<AreaCode>)> = tops
                .iter()
                .map(|t| {
                    let range = cube.index.range_at(*t, Level::Village);
                    let codes = cube.index.codes[range.start as usize..range.end as usize].to_vec();
                    (range.start, codes)
                })
                .collect();
            (cube.layout.clone(), villages)
        };
        let mut out = LeafSource::default();
        let mut reader = None;
        for (top, (start, codes)) in tops.iter().zip(&villages) {
            for p in periods {
                let approved = figures == Figures::Approved && self.reviewed(Level::Village, *p);
                let (generation, missing) = {
                    let cache = self.leaf_cache.lock().expect("not poisoned");
                    let mut missing = Vec::new();
                    for &slot in slots {
                        match cache.columns.get(&(*top, *p, slot)) {
                            Some(c) if !approved => out.add(*p, slot, c.clone()),
                            _ => missing.push(slot),
                        }
                    }
                    (cache.generation(*p), missing)
                };
                if missing.is_empty() {
                    continue;
                }
                crate::query::budget::check()?;
                if reader.is_none() {
                    reader = Some(self.reader()?);
                }
                let read = self.read_leaf_columns(
                    &layout,
                    reader.as_ref().expect("just set"),
                    (*top, *start, codes),
                    *p,
                    approved,
                    &missing,
                )?;
                let mut cache = self.leaf_cache.lock().expect("not poisoned");
                let unchanged = cache.generation(*p) == generation;
                for (slot, column) in missing.into_iter().zip(read) {
                    let column = Arc::new(column);
                    if unchanged && !approved {
                        cache.keep((*top, *p, slot), column.clone());
                    }
                    out.add(*p, slot, column);
                }
            }
        }
        if let Some(reader) = reader {
            self.give_back(reader);
        }
        Ok(out)
    }

    /// One walk of `top`'s villages (`codes`, ids from `start`) for `period`: a column of each
    /// of `slots`.
    fn read_leaf_columns(
        &self,
        layout: &Layout,
        reader: &StoreReader,
        (top, start, codes): (AreaCode, u32, &[AreaCode]),
        period: Period,
        approved: bool,
        slots: &[usize],
    ) -> Result<Vec<LeafColumn>, QueryError> {
        let mut columns: Vec<LeafColumn> = slots
            .iter()
            .map(|_| LeafColumn {
                start,
                values: vec![None; codes.len()],
            })
            .collect();
        let zeros: Vec<bool> = slots
            .iter()
            .map(|s| {
                layout
                    .implied_zeros(Level::Village, period.kind())
                    .any(|z| z == *s)
            })
            .collect();
        let pair_slots = || reader.map_pairs(|metric, part| layout.slot(metric, part));
        let mut by_pair = pair_slots();
        reader.village_figures_under(top, period, approved, |code, zero_report, figures| {
            let Ok(at) = codes.binary_search(&code) else {
                return;
            };
            let mut put = |slot: usize, v: i64| {
                if let Some(k) = slots.iter().position(|s| *s == slot) {
                    columns[k].values[at] = Some(v);
                }
            };
            match figures {
                LeafFigures::Numbered(numbered) => {
                    if numbered.iter().any(|(id, _)| *id as usize >= by_pair.len()) {
                        by_pair = pair_slots();
                    }
                    for (id, v) in numbered {
                        if let Some(Some(slot)) = by_pair.get(*id as usize) {
                            put(*slot, *v);
                        }
                    }
                }
                LeafFigures::Named(values) => {
                    for (slot, v) in layout.cells(Level::Village, period.kind(), false, &values) {
                        put(slot, v);
                    }
                }
            }
            if zero_report {
                for (column, zero) in columns.iter_mut().zip(&zeros) {
                    if *zero && column.values[at].is_none() {
                        column.values[at] = Some(0);
                    }
                }
            }
        })?;
        Ok(columns)
    }
}
