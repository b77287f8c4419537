//! The query engine: leaders' questions answered from the cube (inner areas) and the store
//! (villages' own values), with the comparison table's columns computed by polars. It takes the
//! typed questions of `pingan_domain::question` and never parses a code or a period itself.
//!
//! One module per question: [`rollup`], [`compare`], [`trend`], [`completeness`], and
//! [`forward`] (what a child hub sends its parent); [`load`] builds the rollups at start-up and
//! saves them. What they share (the cube's reads, expected reporters, measures) is here.

mod approved;
mod assess;
mod columns;
mod compare;
mod completeness;
mod departments;
#[cfg(test)]
mod fixture;
mod forward;
mod load;
mod rollup;
mod trend;
mod waits;

pub use waits::WaitsSeen;

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex, OnceLock, PoisonError, RwLock},
};

use pingan_domain::{
    AreaCode, Areas, Catalogue, Level, MetricKind, Period, Span, catalogue::Denominator,
    department::Departments, period::PeriodKind,
};

use super::{
    Deadlines, QueryError,
    cube::{AreaIndex, Cube, LEVELS, NONE, ON_TIME, REPORTED, Slab},
    layout::Layout,
    snapshot::{self, Saved},
    table::{self, OUTLIER_Z, TableInput},
};
use crate::store::{Committed, LeafFigures, StoreError, StoreReader};
pub use pingan_domain::answer::{
    CompareAnswer, CompareColumns, CompareRow, Completeness, CompletenessAnswer, DepartmentRow,
    DepartmentsAnswer, Figure, Part, Rate, Reporter, RollupAnswer, TrendAnswer, TrendPoint,
};
pub use pingan_domain::question::{
    AssessQuery, CompareQuery, CompletenessQuery, DepartmentsQuery, Figures, NATION, Paging,
    RollupQuery, Root, TrendQuery,
};
pub use pingan_domain::rollup::{LevelCount, Rollup, RollupCell, Scope, Value};

/// What a question ranks or reads: a metric's figure, or an indicator's ratio of sums.
#[derive(Debug, Clone)]
enum Measure {
    Metric {
        id: String,
        name: String,
        unit: String,
        slot: usize,
    },
    Indicator {
        id: String,
        name: String,
        unit: String,
        num: usize,
        den: Option<usize>,
        factor: f64,
    },
}

impl Measure {
    fn id(&self) -> &str {
        match self {
            Measure::Metric { id, .. } | Measure::Indicator { id, .. } => id,
        }
    }

    /// The slots it reads.
    fn slots(&self) -> Vec<usize> {
        match self {
            Measure::Metric { slot, .. } => vec![*slot],
            Measure::Indicator { num, den, .. } => std::iter::once(*num).chain(*den).collect(),
        }
    }

    fn labels(&self) -> (&str, &str) {
        match self {
            Measure::Metric { name, unit, .. } | Measure::Indicator { name, unit, .. } => {
                (name, unit)
            }
        }
    }
}

/// One period's values of an area's subtree (inner area `id` of a slab) or own report.
enum PeriodCell<'a> {
    Inner { slab: &'a Slab, id: usize },
    Cells(&'a [(usize, i64)]),
}

/// Villages' current values, read from the store, by (area, period).
/// Villages' own values by (village, period): tens of thousands of entries for a province's
/// villages, so hashed with foldhash rather than SipHash (the keys are the hub's own codes).
type LeafValues = HashMap<(AreaCode, Period), Vec<(usize, i64)>, foldhash::fast::RandomState>;

/// Expected / received / on-time counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub expected: u64,
    pub received: u64,
    pub on_time: u64,
}

impl Counts {
    /// As an answer says it.
    pub fn summary(self) -> Completeness {
        Completeness {
            expected: self.expected,
            received: self.received,
            on_time: self.on_time,
            late: self.received - self.on_time,
            missing: self.expected.saturating_sub(self.received),
        }
    }
}

/// What a child hub forwards for one area and period: the own report and the rollup.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardedRollup {
    pub zero_report: bool,
    pub values: Vec<Value>,
    pub rollup: Rollup,
}

/// Expected reporters per inner area (by index) and level.
type Expected = Arc<Vec<[u32; LEVELS]>>;

/// The expected reporters that hold for every period: those whose codes are valid forever, and
/// the few whose validity is bounded. A period's expectation is `always` plus the `bounded` ones
/// valid for it, so no period rescans the whole registry.
#[derive(Debug)]
struct ExpectedBase {
    always: Expected,
    bounded: Vec<u32>,
    /// Per area: its validity is bounded (it is one of `bounded`).
    is_bounded: Vec<bool>,
}

/// The query engine of one hub.
#[derive(Debug)]
pub struct Engine {
    catalogue: Arc<Catalogue>,
    areas: Arc<Areas>,
    /// The deployment's departments (条), set once at start-up; none by default.
    departments: OnceLock<Arc<Departments>>,
    /// The assessment scheme (考核方案) asked when a question names none.
    scheme: OnceLock<Arc<pingan_domain::assess::Scheme>>,
    deadlines: Deadlines,
    reporting_levels: Vec<Level>,
    cube: RwLock<Cube>,
    expected: Mutex<HashMap<Period, Expected>>,
    expected_base: OnceLock<ExpectedBase>,
    /// Per year, every area's population by id (see [`Engine::populations`]).
    population: Mutex<HashMap<i32, Arc<Vec<Option<f64>>>>>,
    db: OnceLock<crate::store::StoreAt>,
    readers: Mutex<Vec<StoreReader>>,
    /// Where the rollups are saved for a fast restart.
    snapshot: OnceLock<PathBuf>,
    /// Per period, the revisions the last saved (or loaded) snapshot reflects.
    saved_rows: Mutex<HashMap<Period, u64>>,
    saving: Mutex<()>,
    loaded: Mutex<Loaded>,
    /// Set when applying a committed group failed half-way (a bug): the rollups in memory may
    /// be off until the next start, which rebuilds them from the store, so they are not saved.
    distrusted: std::sync::atomic::AtomicBool,
    /// Villages' figures a question read, until a revision of their period commits.
    leaf_cache: Mutex<columns::LeafCache>,
    /// How long the writer waited for `cube` before applying each committed group.
    lock_waits: waits::LockWaits,
}

/// A span's periods with their slabs and expected reporters looked up once, for questions that
/// read many areas over the same span.
struct SpanView<'a> {
    periods: Vec<Period>,
    slabs: Vec<Option<&'a Slab>>,
    expected: Vec<Expected>,
    /// Per period and level: whether the level is expected to report for it (a form of that
    /// level is for periods like it, and active then), decided once per period.
    reporting: Vec<[bool; LEVELS]>,
    /// Per level: the periods (indices) it reports for, so that counting an inner area's
    /// reporters visits only those.
    reported_by: [Vec<usize>; LEVELS],
}

impl<'a> SpanView<'a> {
    /// The span's slabs of `figures`: the approved rollups of a period where they differ (they
    /// must be built already, see [`Engine::approved_view`]).
    fn new(engine: &Engine, cube: &'a Cube, periods: &[Period], figures: Figures) -> SpanView<'a> {
        SpanView {
            periods: periods.to_vec(),
            slabs: periods
                .iter()
                .map(|p| match figures {
                    Figures::Approved if engine.review_in(*p) => cube.approved.get(p),
                    _ => cube.slabs.get(p),
                })
                .collect(),
            expected: periods
                .iter()
                .map(|p| engine.expected_for(cube, *p))
                .collect(),
            reporting: periods
                .iter()
                .map(|p| Level::ALL.map(|l| engine.reports(l, *p)))
                .collect(),
            reported_by: Level::ALL.map(|l| {
                (0..periods.len())
                    .filter(|k| engine.reports(l, periods[*k]))
                    .collect()
            }),
        }
    }
}

/// A sum of two optional figures: either alone when the other is missing.
fn sum_opt(acc: Option<f64>, x: Option<f64>) -> Option<f64> {
    match (acc, x) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    }
}

/// Periods whose expected reporters are kept, before the cache starts again.
const EXPECTED_CACHED: usize = 8192;

/// Rows of a comparison computed under one hold of the rollups' lock.
const ROWS_PER_LOCK: usize = 2048;

/// Rows (or named reporters) in a page when the request does not say.
pub const DEFAULT_PAGE: usize = 50_000;

/// One page of `all`: `size` items (0: [`DEFAULT_PAGE`]) from the position `token` names (empty:
/// the start), and the token of the next page (empty: this is the last).
fn page<T>(all: Vec<T>, paging: &Paging) -> Result<(Vec<T>, String), QueryError> {
    let token = paging.token.as_str();
    let size = match paging.size {
        0 => DEFAULT_PAGE,
        n => n as usize,
    };
    let start: usize = if token.is_empty() {
        0
    } else {
        token
            .parse()
            .map_err(|_| QueryError::BadRequest(format!("page_token「{token}」无效")))?
    };
    let end = start.saturating_add(size).min(all.len());
    let next = if end < all.len() {
        end.to_string()
    } else {
        String::new()
    };
    // in place: the first page of a long answer (usually all of it) moves nothing
    let mut page = all;
    page.truncate(end);
    page.drain(..start.min(end));
    Ok((page, next))
}

/// How [`Engine::load`] got the rollups.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// Periods taken from the snapshot, with their stored revisions.
    pub unchanged: HashMap<Period, u64>,
    /// Periods rebuilt from the store (no snapshot, or changed since).
    pub rebuilt: Vec<Period>,
    /// Current revisions read from the store for them.
    pub revisions: u64,
    /// Stored revisions whose figures no valid report carries (named, rolled up saturated).
    pub implausible: Vec<String>,
}

impl Engine {
    /// An empty engine. `reporting_levels` are the levels expected to report (by default county,
    /// township and village).
    pub fn new(
        catalogue: Arc<Catalogue>,
        areas: Arc<Areas>,
        deadlines: Deadlines,
        reporting_levels: Vec<Level>,
    ) -> Engine {
        let cube = Cube::new(
            AreaIndex::new(&areas),
            Layout::new(&catalogue),
            deadlines.with_forms(&catalogue),
        );
        Engine {
            catalogue,
            areas,
            departments: OnceLock::new(),
            scheme: OnceLock::new(),
            deadlines: cube.deadlines,
            reporting_levels,
            cube: RwLock::new(cube),
            expected: Mutex::new(HashMap::new()),
            expected_base: OnceLock::new(),
            population: Mutex::new(HashMap::new()),
            db: OnceLock::new(),
            readers: Mutex::new(Vec::new()),
            snapshot: OnceLock::new(),
            saved_rows: Mutex::new(HashMap::new()),
            saving: Mutex::new(()),
            loaded: Mutex::new(Loaded::default()),
            distrusted: std::sync::atomic::AtomicBool::new(false),
            leaf_cache: Mutex::default(),
            lock_waits: Default::default(),
        }
    }

    /// Marks the rollups in memory as not to be trusted (applying a group failed half-way):
    /// they are never saved, and the saved ones are removed, so the next start rebuilds them
    /// from the store.
    pub fn distrust(&self) {
        self.distrusted
            .store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(path) = self.snapshot.get() {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Sets the deployment's departments (once, before serving; a second call is ignored).
    pub fn set_departments(&self, departments: Arc<Departments>) {
        let _ = self.departments.set(departments);
    }

    /// The deployment's departments (none unless set).
    pub fn department_list(&self) -> Arc<Departments> {
        self.departments.get().cloned().unwrap_or_default()
    }

    /// The default reporting levels.
    pub fn default_reporting_levels() -> Vec<Level> {
        vec![Level::County, Level::Township, Level::Village]
    }

    /// Applies committed revisions (the store's commit hook).
    pub fn apply(&self, committed: &[Committed]) {
        {
            let asked = std::time::Instant::now();
            let mut cube = self.cube.write().unwrap_or_else(PoisonError::into_inner);
            self.lock_waits.record(asked.elapsed());
            for c in committed {
                cube.apply(
                    c,
                    c.rollup.is_none() && self.reviewed(c.area.level(), c.period),
                );
            }
        }
        let mut periods: Vec<Period> = committed.iter().map(|c| c.period).collect();
        periods.sort_unstable();
        periods.dedup();
        self.leaf_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .committed(periods.into_iter());
    }

    /// The writer's waits for the rollups' lock so far, one per committed group applied:
    /// what questions running meanwhile held the receipts up (benchmark `receipts-under-ranking`).
    pub fn lock_waits(&self) -> WaitsSeen {
        self.lock_waits.seen()
    }

    /// Whether a report of an office of `level` for `p` waits for review (审核) before it
    /// counts among approved figures: its form has review and a reporting level is above it
    /// (the top reporting level, the county by default, is reviewed by the hub above, which
    /// takes its figures in the county hub's forwarded rollup). A child hub's forwarded rollup
    /// never waits for review here: the child decided what it forwards.
    pub fn reviewed(&self, level: Level, p: Period) -> bool {
        self.reporting_levels.iter().any(|l| *l < level)
            && self
                .catalogue
                .form_for(level, p.kind())
                .is_some_and(|f| f.review)
    }

    fn reader(&self) -> Result<StoreReader, QueryError> {
        loop {
            let Some(r) = self.readers.lock().expect("not poisoned").pop() else {
                break;
            };
            // a pooled PostgreSQL connection may have died with its server (a failover)
            if r.alive() {
                return Ok(r);
            }
        }
        let db = self
            .db
            .get()
            .ok_or_else(|| QueryError::Engine("the engine has no store yet".into()))?;
        Ok(StoreReader::open_at(db)?)
    }

    fn give_back(&self, reader: StoreReader) {
        let mut pool = self.readers.lock().expect("not poisoned");
        if pool.len() < 8 {
            pool.push(reader);
        }
    }

    /// `code`, when the registry has it.
    fn registered(&self, code: AreaCode) -> Result<AreaCode, QueryError> {
        match self.areas.get(code) {
            Some(_) => Ok(code),
            None => Err(QueryError::UnknownArea(code.to_string())),
        }
    }

    /// A question's root (an area must be registered) and the areas it spans from the top: the
    /// area itself, or the registry's top areas for the nation.
    fn root_and_tops(&self, root: Root) -> Result<(Root, Vec<AreaCode>), QueryError> {
        Ok(match root {
            Root::Area(a) => (Root::Area(self.registered(a)?), vec![a]),
            Root::Nation => (Root::Nation, self.areas.roots().to_vec()),
        })
    }

    /// A question asked rows of a level that is not below its area, said in words.
    fn level_not_below(&self, level: Level, area: AreaCode) -> QueryError {
        QueryError::BadRequest(format!(
            "{}级不在 {area} {}（{}级）之下，请选它下面的层级 (level {level} is not below {area})",
            level.zh(),
            self.areas.name(area),
            area.level().zh()
        ))
    }

    /// Refuses a question about `code` when it lies strictly below a subtree that a child hub
    /// forwards as one rollup: this hub knows that subtree's totals and counts only, and would
    /// otherwise answer "nothing reported" for areas whose figures simply live elsewhere.
    fn known_here(&self, cube: &Cube, code: AreaCode) -> Result<(), QueryError> {
        let mut above = code.parent();
        while let Some(a) = above {
            if cube
                .index
                .id(a)
                .is_some_and(|id| cube.summarized[id as usize])
            {
                return Err(QueryError::BelowForwarding {
                    area: code.to_string(),
                    name: self.areas.name(code),
                    root: a.to_string(),
                    root_name: self.areas.name(a),
                });
            }
            above = a.parent();
        }
        Ok(())
    }

    fn measure(&self, cube: &Cube, name: &str) -> Result<Measure, QueryError> {
        if let Some(ind) = self.catalogue.indicator(name) {
            let slot = |id: &str| {
                cube.layout
                    .metric(id)
                    .map(|m| m.total)
                    .expect("catalogue metric has a slot")
            };
            return Ok(Measure::Indicator {
                id: ind.id.clone(),
                name: ind.zh.clone(),
                unit: ind.unit.clone(),
                num: slot(ind.numerator.as_str()),
                den: match &ind.denominator {
                    Denominator::Metric(m) => Some(slot(m.as_str())),
                    Denominator::Population => None,
                },
                factor: ind.factor,
            });
        }
        let id = self.catalogue.metric_id(name).ok_or_else(|| {
            let hint = self
                .catalogue
                .suggest(name)
                .map(|s| format!("，是否是 {s}？"))
                .unwrap_or_default();
            QueryError::BadRequest(format!("未知的指标或比率「{name}」{hint}"))
        })?;
        let m = self.catalogue.metric(&id);
        Ok(Measure::Metric {
            id: id.to_string(),
            name: m.zh.clone(),
            unit: m.unit.clone(),
            slot: cube.layout.metric(id.as_str()).expect("slot").total,
        })
    }

    /// Villages' current (or approved) values under `prefix` for `periods`.
    fn fetch_leaves(
        &self,
        layout: &Layout,
        reader: &StoreReader,
        prefix: AreaCode,
        periods: &[Period],
        figures: Figures,
    ) -> Result<LeafValues, QueryError> {
        let mut out = LeafValues::default();
        // the store's pair numbers mapped to this layout's slots once (again when a row names a
        // pair numbered since), so that no figure is named on the way
        let map = || reader.map_pairs(|metric, part| layout.slot(metric, part));
        let mut slots = map();
        for p in periods {
            crate::query::budget::check()?;
            let approved = figures == Figures::Approved && self.reviewed(Level::Village, *p);
            reader.village_figures_under(prefix, *p, approved, |code, zero_report, figures| {
                if code.level() != Level::Village {
                    return;
                }
                let cells = match figures {
                    LeafFigures::Numbered(numbered) => {
                        if numbered.iter().any(|(id, _)| *id as usize >= slots.len()) {
                            slots = map();
                        }
                        let placed = numbered.iter().filter_map(|(id, v)| {
                            slots.get(*id as usize).copied().flatten().map(|s| (s, *v))
                        });
                        layout.cells_placed(code.level(), p.kind(), zero_report, placed)
                    }
                    LeafFigures::Named(values) => {
                        layout.cells(code.level(), p.kind(), zero_report, &values)
                    }
                };
                out.insert((code, *p), cells);
            })?;
        }
        Ok(out)
    }

    /// An area's own current (or approved) report's values for `periods`.
    fn fetch_own(
        &self,
        layout: &Layout,
        reader: &StoreReader,
        area: AreaCode,
        periods: &[Period],
        figures: Figures,
    ) -> Result<LeafValues, QueryError> {
        let mut out = LeafValues::default();
        for p in periods {
            let rec = if figures == Figures::Approved && self.reviewed(area.level(), *p) {
                reader.approved(area, *p)?
            } else {
                reader.current(area, *p)?
            };
            if let Some(rec) = rec {
                let cells = layout.cells(area.level(), p.kind(), rec.zero_report, &rec.values);
                out.insert((area, *p), cells);
            }
        }
        Ok(out)
    }

    /// Combines the periods of a span: counts sum over the periods that carry them; stocks take
    /// the last period that carries them within each series of periods (a month's and its
    /// half-months' are reported by different offices, so the last of each adds up); a slot no
    /// period carries is missing. With `only`, just those slots are combined (the others stay
    /// missing).
    fn combine<'a>(
        cube: &Cube,
        cells: impl Iterator<Item = (Period, Option<PeriodCell<'a>>)>,
        only: Option<&[usize]>,
    ) -> Vec<Option<i64>> {
        let mut out = Vec::new();
        Engine::combine_into(cube, cells, only, &mut out);
        out
    }

    /// [`Engine::combine`] into `out`: a question over many rows reuses one buffer rather than
    /// allocating one per row. With `only`, a buffer of the layout's size is reused as it is:
    /// just the `only` slots are reset and combined, the others keep what they held (missing,
    /// unless an earlier call with other slots wrote them), so the caller reads `only` alone;
    /// a national ranking would otherwise clear every slot three times a row.
    fn combine_into<'a>(
        cube: &Cube,
        cells: impl Iterator<Item = (Period, Option<PeriodCell<'a>>)>,
        only: Option<&[usize]>,
        out: &mut Vec<Option<i64>>,
    ) {
        let slots = cube.layout.slots();
        let kind = cube.layout.kinds();
        match only {
            Some(only) if out.len() == slots => {
                for &slot in only {
                    out[slot] = None;
                }
            }
            _ => {
                out.clear();
                out.resize(slots, None);
            }
        }
        // stocks of the half-month series, added to the month series' at the end
        let mut halves: Option<Vec<Option<i64>>> = None;
        for (period, cell) in cells {
            let Some(cell) = cell else { continue };
            let acc = if period.kind() == PeriodKind::HalfMonth {
                halves.get_or_insert_with(|| vec![None; slots])
            } else {
                &mut *out
            };
            let mut put = |slot: usize, v: i64| {
                acc[slot] = match (kind[slot], acc[slot]) {
                    (MetricKind::Count, Some(a)) => Some(a.saturating_add(v)),
                    _ => Some(v),
                }
            };
            match cell {
                PeriodCell::Inner { slab, id } => {
                    let mut take = |slot: usize| {
                        let i = slab.cell(id, slot);
                        if slab.present[i] > 0 {
                            put(slot, slab.sums[i]);
                        }
                    };
                    match only {
                        None => (0..slots).for_each(&mut take),
                        Some(only) => only.iter().copied().for_each(&mut take),
                    }
                }
                PeriodCell::Cells(cells) => {
                    for &(slot, v) in cells {
                        if only.is_none_or(|o| o.contains(&slot)) {
                            put(slot, v);
                        }
                    }
                }
            }
        }
        if let Some(halves) = halves {
            for (o, h) in out.iter_mut().zip(halves) {
                *o = match (*o, h) {
                    (Some(a), Some(b)) => Some(a.saturating_add(b)),
                    (a, b) => a.or(b),
                };
            }
        }
    }

    /// The subtree values of an area over a span.
    fn subtree(
        &self,
        cube: &Cube,
        area: AreaCode,
        periods: &[Period],
        leaves: &LeafValues,
        figures: Figures,
    ) -> Vec<Option<i64>> {
        let view = SpanView::new(self, cube, periods, figures);
        Engine::values_in(cube, &view, area, leaves, None)
    }

    /// An area's values over a span whose slabs are looked up already; `only`: just these slots.
    fn values_in(
        cube: &Cube,
        view: &SpanView<'_>,
        area: AreaCode,
        leaves: &LeafValues,
        only: Option<&[usize]>,
    ) -> Vec<Option<i64>> {
        let mut out = Vec::new();
        Engine::values_into(cube, view, area, leaves, only, &mut out);
        out
    }

    /// [`Engine::values_in`] into `out` (see [`Engine::combine_into`] for what a reused buffer
    /// holds with `only`).
    fn values_into(
        cube: &Cube,
        view: &SpanView<'_>,
        area: AreaCode,
        leaves: &LeafValues,
        only: Option<&[usize]>,
        out: &mut Vec<Option<i64>>,
    ) {
        let id = cube.index.id(area);
        let cells = view.periods.iter().zip(&view.slabs).map(|(p, slab)| {
            let cell = match id {
                Some(id) if cube.index.is_inner(id) => slab.map(|slab| PeriodCell::Inner {
                    slab,
                    id: id as usize,
                }),
                _ => leaves.get(&(area, *p)).map(|c| PeriodCell::Cells(c)),
            };
            (*p, cell)
        });
        Engine::combine_into(cube, cells, only, out)
    }

    fn own(cube: &Cube, area: AreaCode, periods: &[Period], own: &LeafValues) -> Vec<Option<i64>> {
        Engine::combine(
            cube,
            periods
                .iter()
                .map(|p| (*p, own.get(&(area, *p)).map(|c| PeriodCell::Cells(c)))),
            None,
        )
    }

    /// Population of an area for a year: its attribute, or else the sum of its children's.
    fn population_of(&self, cube: &Cube, area: AreaCode, year: i32) -> Option<f64> {
        match cube.index.id(area) {
            Some(id) => self.populations(cube, year)[id as usize],
            None => self.areas.population(area, year).map(|p| p as f64),
        }
    }

    /// Every area's population for `year` by id, computed once per year in one pass from the
    /// villages up: an area's attribute, or else the sum of its children's.
    fn populations(&self, cube: &Cube, year: i32) -> Arc<Vec<Option<f64>>> {
        if let Some(p) = self.population.lock().expect("not poisoned").get(&year) {
            return p.clone();
        }
        let n = cube.index.codes.len();
        let mut sum: Vec<Option<f64>> = vec![None; n];
        // ids run by level from the top, villages last: backwards, children come before parents
        for id in (0..n).rev() {
            let code = cube.index.codes[id];
            let own = self.areas.population(code, year).map(|p| p as f64);
            let v = own.or(sum[id]);
            sum[id] = v;
            let parent = cube.index.parent[id];
            if let (Some(v), true) = (v, parent != NONE) {
                *sum[parent as usize].get_or_insert(0.0) += v;
            }
        }
        let sum = Arc::new(sum);
        self.population
            .lock()
            .expect("not poisoned")
            .insert(year, sum.clone());
        sum
    }

    /// (numerator, denominator) of a measure from span values.
    fn num_den(
        &self,
        cube: &Cube,
        m: &Measure,
        vals: &[Option<i64>],
        area: AreaCode,
        span: &Span,
    ) -> (Option<f64>, Option<f64>) {
        Engine::num_den_with(
            m,
            |slot| vals[slot],
            || self.population_of(cube, area, span.population_year()),
        )
    }

    /// [`Engine::num_den`] with the area's figures by slot and its population for the span
    /// given (asked only when the measure is a rate per population): a question over many rows
    /// looks every area's up once.
    fn num_den_with(
        m: &Measure,
        value: impl Fn(usize) -> Option<i64>,
        population: impl FnOnce() -> Option<f64>,
    ) -> (Option<f64>, Option<f64>) {
        match m {
            Measure::Metric { slot, .. } => (value(*slot).map(|v| v as f64), None),
            Measure::Indicator { num, den, .. } => (
                value(*num).map(|v| v as f64),
                match den {
                    Some(d) => value(*d).map(|v| v as f64),
                    None => population(),
                },
            ),
        }
    }

    fn value_of(m: &Measure, (num, den): (Option<f64>, Option<f64>)) -> Option<f64> {
        match m {
            Measure::Metric { .. } => num,
            Measure::Indicator { factor, .. } => match (num, den) {
                (Some(n), Some(d)) if d != 0.0 => Some(n / d * factor),
                _ => None,
            },
        }
    }

    /// Adds reporter `id` to the expected counts of itself (when inner) and every ancestor.
    fn count_expected(cube: &Cube, counts: &mut [[u32; LEVELS]], id: u32, level: Level) {
        let mut x = if cube.index.is_inner(id) {
            id
        } else {
            cube.index.parent[id as usize]
        };
        while x != NONE {
            counts[x as usize][level as usize] += 1;
            x = cube.index.parent[x as usize];
        }
    }

    fn expected_base(&self, cube: &Cube) -> &ExpectedBase {
        self.expected_base.get_or_init(|| {
            let mut counts = vec![[0u32; LEVELS]; cube.index.n_inner];
            let mut bounded = Vec::new();
            for (id, code) in cube.index.codes.iter().enumerate() {
                if !self.reporting_levels.contains(&code.level()) {
                    continue;
                }
                match self.areas.get(*code) {
                    Some(a) if a.valid_from.is_none() && a.valid_until.is_none() => {
                        Self::count_expected(cube, &mut counts, id as u32, code.level());
                    }
                    Some(_) => bounded.push(id as u32),
                    None => {}
                }
            }
            let mut is_bounded = vec![false; cube.index.codes.len()];
            for &id in &bounded {
                is_bounded[id as usize] = true;
            }
            ExpectedBase {
                always: Arc::new(counts),
                bounded,
                is_bounded,
            }
        })
    }

    fn expected_for(&self, cube: &Cube, p: Period) -> Expected {
        if let Some(e) = self.expected.lock().expect("not poisoned").get(&p) {
            return e.clone();
        }
        let ExpectedBase {
            always, bounded, ..
        } = self.expected_base(cube);
        let valid: Vec<u32> = bounded
            .iter()
            .copied()
            .filter(|&id| {
                let code = cube.index.codes[id as usize];
                self.areas.get(code).is_some_and(|a| a.valid_for(p))
            })
            .collect();
        let counts = if valid.is_empty() {
            always.clone()
        } else {
            let mut counts = (**always).clone();
            for id in valid {
                let level = cube.index.codes[id as usize].level();
                Self::count_expected(cube, &mut counts, id, level);
            }
            Arc::new(counts)
        };
        let mut cache = self.expected.lock().expect("not poisoned");
        // every day of ten-year trends would be kept for ever: the cache is a cache
        if cache.len() >= EXPECTED_CACHED {
            cache.clear();
        }
        cache.insert(p, counts.clone());
        counts
    }

    /// Completeness of the reporters in an area's subtree (itself included) at `levels`.
    fn counts(
        &self,
        cube: &Cube,
        area: AreaCode,
        periods: &[Period],
        levels: &[Level],
        figures: Figures,
    ) -> Counts {
        self.counts_in(
            cube,
            &SpanView::new(self, cube, periods, figures),
            area,
            levels,
        )
    }

    /// [`Engine::counts`] over a span whose slabs and expectations are looked up already.
    fn counts_in(
        &self,
        cube: &Cube,
        view: &SpanView<'_>,
        area: AreaCode,
        levels: &[Level],
    ) -> Counts {
        match cube.index.id(area) {
            Some(id) => self.counts_of(cube, view, area, id, levels),
            None => Counts::default(),
        }
    }

    /// [`Engine::counts_in`] of an area whose id is known.
    fn counts_of(
        &self,
        cube: &Cube,
        view: &SpanView<'_>,
        area: AreaCode,
        id: u32,
        levels: &[Level],
    ) -> Counts {
        let mut c = Counts::default();
        if cube.index.is_inner(id) {
            let id = id as usize;
            for l in levels {
                let i = *l as usize;
                for &k in &view.reported_by[i] {
                    c.expected += u64::from(view.expected[k][id][i]);
                    if let Some(slab) = view.slabs[k] {
                        c.received += u64::from(slab.received[id * LEVELS + i]);
                        c.on_time += u64::from(slab.on_time_n[id * LEVELS + i]);
                    }
                }
            }
            return c;
        }
        let periods = view.periods.iter().zip(&view.slabs);
        for ((p, slab), reporting) in periods.zip(&view.reporting) {
            if levels.contains(&area.level())
                && reporting[area.level() as usize]
                && (!cube.index.dated[id as usize]
                    || self.areas.get(area).is_some_and(|a| a.valid_for(*p)))
            {
                c.expected += 1;
                if let Some(slab) = slab
                    && slab.status[id as usize] & REPORTED != 0
                {
                    c.received += 1;
                    c.on_time += u64::from(slab.status[id as usize] & ON_TIME != 0);
                }
            }
        }
        c
    }

    /// Whether offices of `level` are expected to report for `p`: a form of theirs is for periods
    /// like it, and active then.
    fn reports(&self, level: Level, p: Period) -> bool {
        self.catalogue
            .form_for(level, p.kind())
            .is_some_and(|f| f.expected_in(p))
    }

    fn levels_below(&self, area: AreaCode, only: Option<Level>) -> Vec<Level> {
        self.reporting_levels
            .iter()
            .copied()
            .filter(|l| *l >= area.level() && only.is_none_or(|o| o == *l))
            .collect()
    }

    /// Every period this hub holds rollups for, oldest first.
    pub fn periods(&self) -> Vec<Period> {
        let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<Period> = cube.slabs.keys().copied().collect();
        out.sort();
        out
    }
}
