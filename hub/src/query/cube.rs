//! The rollups kept current as reports arrive. For every reported period there is one slab of
//! dense arrays: per area, the current revision and whether its first revision came on time;
//! per inner area (every level above village), the subtree sums of every slot, how many current
//! reports carry each slot, and how many reporters of each level have reported. A new revision
//! adds its difference to the old one to its area and every ancestor: O(depth × values).
//! Villages' own values are not held here; they are read from the store when asked for.

use std::collections::HashMap;

use pingan_domain::{
    AreaCode, Areas, Level, Period,
    area::CodeMap,
    rollup::{Rollup, Scope, Value},
};

use super::{Deadlines, layout::Layout};
use crate::store::{Committed, Prior};

/// No parent.
pub(crate) const NONE: u32 = u32::MAX;
/// Levels, for per-level counters.
pub(crate) const LEVELS: usize = 5;
/// Status bit: the area's own office has reported.
pub(crate) const REPORTED: u8 = 1;
/// Status bit: ... and its first revision came on time.
pub(crate) const ON_TIME: u8 = 2;

/// Dense ids for the registry's areas: inner areas (above village) first, then by level and
/// code, so the areas of one level within a subtree are one range of ids.
#[derive(Debug)]
pub(crate) struct AreaIndex {
    pub(crate) codes: Vec<AreaCode>,
    pub(crate) by_code: CodeMap<AreaCode, u32>,
    pub(crate) parent: Vec<u32>,
    pub(crate) n_inner: usize,
    /// Names by id (a national comparison names tens of thousands of rows).
    pub(crate) names: Vec<Box<str>>,
    /// By id: the area exists only from or until a date (a village's expected report is then
    /// looked up in the registry; the others are expected in every period).
    pub(crate) dated: Vec<bool>,
}

impl AreaIndex {
    pub(crate) fn new(areas: &Areas) -> AreaIndex {
        let mut codes: Vec<AreaCode> = areas.iter().map(|a| a.code).collect();
        codes.sort_by_key(|c| Self::key(*c));
        let n_inner = codes
            .iter()
            .take_while(|c| c.level() != Level::Village)
            .count();
        let by_code: CodeMap<AreaCode, u32> = codes
            .iter()
            .enumerate()
            .map(|(i, c)| (*c, i as u32))
            .collect();
        let parent = codes
            .iter()
            .map(|c| {
                c.parent()
                    .and_then(|p| by_code.get(&p).copied())
                    .unwrap_or(NONE)
            })
            .collect();
        let names = codes
            .iter()
            .map(|c| areas.name(*c).into_boxed_str())
            .collect();
        let dated = codes
            .iter()
            .map(|c| {
                areas
                    .get(*c)
                    .is_some_and(|a| a.valid_from.is_some() || a.valid_until.is_some())
            })
            .collect();
        AreaIndex {
            codes,
            by_code,
            parent,
            n_inner,
            names,
            dated,
        }
    }

    fn key(c: AreaCode) -> (bool, Level, u64) {
        (c.level() == Level::Village, c.level(), c.digits())
    }

    /// The ids of the areas at `level` within `area`'s subtree (`area` itself at its level).
    pub(crate) fn range_at(&self, area: AreaCode, level: Level) -> std::ops::Range<u32> {
        if level < area.level() {
            return 0..0;
        }
        let scale = 10u64.pow((level.code_len() - area.level().code_len()) as u32);
        let village = level == Level::Village;
        let lo = (village, level, area.digits() * scale);
        let hi = (village, level, (area.digits() + 1) * scale);
        let start = self.codes.partition_point(|c| Self::key(*c) < lo);
        let end = self.codes.partition_point(|c| Self::key(*c) < hi);
        start as u32..end as u32
    }

    pub(crate) fn id(&self, code: AreaCode) -> Option<u32> {
        self.by_code.get(&code).copied()
    }

    pub(crate) fn is_inner(&self, id: u32) -> bool {
        (id as usize) < self.n_inner
    }
}

/// One reported period's rollups.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Slab {
    /// Current revision per area (0: nothing stored).
    pub(crate) revision: Vec<u32>,
    /// Per area: [`REPORTED`], [`ON_TIME`]. A forwarded rollup may be stored for an area whose
    /// own office has not reported, so "reported" is not "has a revision".
    pub(crate) status: Vec<u8>,
    /// Inner areas: the stride of `sums` and `present`.
    pub(crate) n_inner: usize,
    /// Subtree sums per slot and inner area, at [`Slab::cell`].
    pub(crate) sums: Vec<i64>,
    /// Number of current reports in the subtree carrying the slot, at [`Slab::cell`].
    pub(crate) present: Vec<u32>,
    /// Reporters of each level in the subtree that have reported.
    pub(crate) received: Vec<u32>,
    /// ... of which on time.
    pub(crate) on_time_n: Vec<u32>,
}

impl Slab {
    fn new(n: usize, n_inner: usize, slots: usize) -> Slab {
        Slab {
            revision: vec![0; n],
            status: vec![0; n],
            n_inner,
            sums: vec![0; n_inner * slots],
            present: vec![0; n_inner * slots],
            received: vec![0; n_inner * LEVELS],
            on_time_n: vec![0; n_inner * LEVELS],
        }
    }
}

impl Slab {
    /// Where inner area `id`'s figure of `slot` is in `sums` and `present`. Slot-major: one
    /// slot's figures of every inner area lie side by side, and the areas of one level within
    /// a subtree have consecutive ids, so ranking them on a metric reads each period's figures
    /// in one run of memory (area-major, each row's two figures were a cache line and a page
    /// of their own: a national ranking spent most of its time waiting on memory).
    pub(crate) fn cell(&self, id: usize, slot: usize) -> usize {
        slot * self.n_inner + id
    }
}

/// All slabs.
#[derive(Debug)]
pub(crate) struct Cube {
    pub(crate) index: AreaIndex,
    /// Immutable once built: questions take a clone of the `Arc` and let go of the lock.
    pub(crate) layout: std::sync::Arc<Layout>,
    pub(crate) deadlines: Deadlines,
    pub(crate) slabs: HashMap<Period, Slab>,
    /// Per area: a child hub forwards this area's whole subtree as one rollup, so the reporters
    /// below it are known here by their counts only.
    pub(crate) summarized: Vec<bool>,
    /// Per period: how many stored revisions the slab reflects (what a saved snapshot is
    /// checked against at start-up).
    pub(crate) rows: HashMap<Period, u64>,
    /// 审核: per period, the rollups of approved figures only (a report on a form with review
    /// with its latest approved revision, or absent), built from the store the first time a
    /// question asks for them and kept current after (see `Engine::approved_view`).
    pub(crate) approved: HashMap<Period, Slab>,
}

/// What one stored revision adds to the rollups of its area and every ancestor.
#[derive(Debug, Default)]
struct Contribution {
    /// (slot, sum, reports carrying it).
    cells: Vec<(usize, i64, u32)>,
    status: u8,
    /// (received, on time) per level.
    levels: [(u32, u32); LEVELS],
}

impl Cube {
    pub(crate) fn new(index: AreaIndex, layout: Layout, deadlines: Deadlines) -> Cube {
        let layout = std::sync::Arc::new(layout);
        let n = index.codes.len();
        Cube {
            index,
            layout,
            deadlines,
            slabs: HashMap::new(),
            summarized: vec![false; n],
            rows: HashMap::new(),
            approved: HashMap::new(),
        }
    }

    /// An empty slab for this cube's areas and slots.
    pub(crate) fn empty_slab(&self) -> Slab {
        Slab::new(
            self.index.codes.len(),
            self.index.n_inner,
            self.layout.slots(),
        )
    }

    /// A record's contribution. A plain report counts its area's own level once; `on_time`
    /// says whether its first revision came on time. A forwarded rollup brings its own sums,
    /// presence counts and reporter counts, decided by the child hub.
    fn contribution(
        &self,
        area: AreaCode,
        period: Period,
        zero_report: bool,
        values: &[Value],
        rollup: Option<&Rollup>,
        on_time: bool,
    ) -> Contribution {
        let mut c = Contribution::default();
        match rollup {
            None => {
                let cells = self
                    .layout
                    .cells(area.level(), period.kind(), zero_report, values);
                return own_contribution(area, cells, on_time);
            }
            Some(r) => {
                c.cells = r
                    .cells
                    .iter()
                    .filter_map(|cell| {
                        let slot = self.layout.slot(&cell.metric, &cell.part);
                        if slot.is_none() {
                            tracing::warn!(metric = %cell.metric, part = %cell.part, "forwarded figure not in this hub's catalogue, not rolled up");
                        }
                        Some((slot?, cell.sum, cell.present))
                    })
                    .collect();
                c.status = if r.own_reported { REPORTED } else { 0 }
                    | if r.own_on_time { ON_TIME } else { 0 };
                for lc in &r.reporters {
                    c.levels[lc.level as usize] = (lc.received, lc.on_time);
                }
            }
        }
        c
    }

    /// Whether any area's subtree is known here by a child hub's rollup only: a scan of one
    /// flag per area, in blocks that compile to vector instructions (an early exit per flag
    /// did not, and a national ranking asks it each time).
    pub(crate) fn any_summarized(&self) -> bool {
        self.summarized
            .chunks(64)
            .any(|block| block.iter().fold(false, |any, s| any | *s))
    }

    /// Applies a committed revision. Stale revisions (lower than the current one) are ignored.
    /// `reviewed`: its form has review (审核), so the approved rollups keep its area's approved
    /// revision until a decision says otherwise; else they take it too.
    pub(crate) fn apply(&mut self, c: &Committed, reviewed: bool) {
        *self.rows.entry(c.period).or_default() += 1;
        let Some(a) = self.index.id(c.area) else {
            tracing::warn!(area = %c.area, "revision for an area outside the registry, not rolled up");
            return;
        };
        if c.rollup.as_ref().is_some_and(|r| r.scope == Scope::Subtree) {
            self.summarized[a as usize] = true;
        }
        let mut slab = self
            .slabs
            .remove(&c.period)
            .unwrap_or_else(|| self.empty_slab());
        let current = slab.revision[a as usize];
        self.apply_to(&mut slab, a, c);
        self.slabs.insert(c.period, slab);
        if !reviewed && let Some(mut approved) = self.approved.remove(&c.period) {
            // its approved revision is its current one: `previous` is what the slab holds
            if approved.revision[a as usize] == current {
                self.apply_to(&mut approved, a, c);
            }
            self.approved.insert(c.period, approved);
        }
    }

    /// Applies an approved revision to the approved rollups of its period, when they are kept;
    /// `c.previous` is the area's approved revision before (none: it had none).
    pub(crate) fn approve(&mut self, c: &Committed) {
        let Some(a) = self.index.id(c.area) else {
            return;
        };
        if let Some(mut approved) = self.approved.remove(&c.period) {
            self.apply_to(&mut approved, a, c);
            self.approved.insert(c.period, approved);
        }
    }

    /// Applies a revision of area `a` to `slab`, replacing `c.previous`; ignored when the slab
    /// holds that revision or a later one.
    pub(crate) fn apply_to(&self, slab: &mut Slab, a: u32, c: &Committed) {
        let (current, old_status) = (slab.revision[a as usize], slab.status[a as usize]);
        if c.revision <= current {
            return;
        }
        let old = match (&c.previous, current > 0) {
            (
                Some(Prior {
                    zero_report,
                    values,
                    rollup,
                }),
                true,
            ) => self.contribution(
                c.area,
                c.period,
                *zero_report,
                values,
                rollup.as_ref(),
                old_status & ON_TIME != 0,
            ),
            _ => Contribution::default(),
        };
        // on time is decided once, by the first revision of the area's own report
        let on_time = if old_status & REPORTED != 0 {
            old_status & ON_TIME != 0
        } else {
            self.deadlines
                .on_time(c.area.level(), c.period, c.first_received_at_ms)
        };
        let new = self.contribution(
            c.area,
            c.period,
            c.zero_report,
            &c.values,
            c.rollup.as_ref(),
            on_time,
        );
        self.replace(slab, a, c.revision, &old, &new);
    }

    /// Puts revision `revision` of area `a` in `slab`: its status, and `new` in place of `old` in
    /// the sums of its own row (a village: its township's) and every ancestor's.
    fn replace(
        &self,
        slab: &mut Slab,
        a: u32,
        revision: u32,
        old: &Contribution,
        new: &Contribution,
    ) {
        slab.revision[a as usize] = revision;
        slab.status[a as usize] = new.status;
        let first = if self.index.is_inner(a) {
            a
        } else {
            self.index.parent[a as usize]
        };
        add_up_the_tree(slab, &self.index.parent, first, old, new);
    }

    /// Adds area `a`'s own report, its figures already placed in slots (`cells`, e.g. from
    /// [`crate::query::layout::Layout::cells_placed`]), to a slab that holds nothing of `a` yet:
    /// what [`Cube::apply_to`] does for a first revision, without naming a figure. A rebuild
    /// from the store hands each area once; a slab that already holds `a` is left as it is.
    pub(crate) fn add_placed_to(&self, slab: &mut Slab, a: u32, own: PlacedReport) {
        if slab.revision[a as usize] != 0 {
            debug_assert!(false, "{} added twice to a slab", own.area);
            return;
        }
        let on_time =
            self.deadlines
                .on_time(own.area.level(), own.period, own.first_received_at_ms);
        let new = own_contribution(own.area, own.cells, on_time);
        self.replace(slab, a, own.revision, &Contribution::default(), &new);
    }
}

/// An area's own current report with its figures placed in slots, for [`Cube::add_placed_to`].
#[derive(Debug)]
pub(crate) struct PlacedReport {
    pub(crate) area: AreaCode,
    pub(crate) period: Period,
    pub(crate) revision: u32,
    /// When its revision 1 arrived (on time is decided by it).
    pub(crate) first_received_at_ms: i64,
    pub(crate) cells: Vec<(usize, i64)>,
}

/// An area's own report's contribution: its cells (slot, value) each carried by one report.
fn own_contribution(area: AreaCode, cells: Vec<(usize, i64)>, on_time: bool) -> Contribution {
    let mut c = Contribution {
        cells: cells.into_iter().map(|(slot, v)| (slot, v, 1)).collect(),
        status: REPORTED | if on_time { ON_TIME } else { 0 },
        ..Contribution::default()
    };
    c.levels[area.level() as usize] = (1, u32::from(on_time));
    c
}

/// Replaces `old` by `new` in the rollups of `first` and every ancestor above it.
fn add_up_the_tree(
    slab: &mut Slab,
    parent: &[u32],
    first: u32,
    old: &Contribution,
    new: &Contribution,
) {
    let mut x = first;
    while x != NONE {
        // saturating, never panicking: validation bounds every stored figure so that a
        // rollup of the whole country stays far below i64::MAX, and a commit hook must not
        // take the store's writer down whatever an old store holds
        for &(slot, v, present) in &new.cells {
            let i = slab.cell(x as usize, slot);
            slab.sums[i] = slab.sums[i].saturating_add(v);
            slab.present[i] = slab.present[i].wrapping_add(present);
        }
        for &(slot, v, present) in &old.cells {
            let i = slab.cell(x as usize, slot);
            slab.sums[i] = slab.sums[i].saturating_sub(v);
            slab.present[i] = slab.present[i].wrapping_sub(present);
        }
        // wrapping: the counters are consistent by construction, and a commit hook must
        // never panic (the tests compare every counter with a plain recount)
        for l in 0..LEVELS {
            let i = x as usize * LEVELS + l;
            slab.received[i] = slab.received[i]
                .wrapping_add(new.levels[l].0)
                .wrapping_sub(old.levels[l].0);
            slab.on_time_n[i] = slab.on_time_n[i]
                .wrapping_add(new.levels[l].1)
                .wrapping_sub(old.levels[l].1);
        }
        x = parent[x as usize];
    }
}
