//! The query engine: rollup, compare, trend and completeness, answered from the cube (inner
//! areas) and the store (villages' own values), with the comparison table's columns computed by
//! polars.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex, OnceLock, PoisonError, RwLock},
};

use pingan_proto::{
    AreaCode, Areas, Catalogue, Level, MetricKind, Period, Span, catalogue::Denominator, pb,
};

use super::{
    QueryError,
    cube::{AreaIndex, Cube, LEVELS, NONE, ON_TIME, REPORTED, Slab},
    deadline::Deadlines,
    layout::Layout,
    snapshot::{self, Saved},
    table::{self, OUTLIER_Z, TableInput},
};
use crate::store::{Committed, StoreError, StoreReader};

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

/// One period's values of an area's subtree (or own report).
enum PeriodCell<'a> {
    Inner { sums: &'a [i64], present: &'a [u32] },
    Cells(&'a [(usize, i64)]),
}

/// Villages' current values, read from the store, by (area, period).
type LeafValues = HashMap<(AreaCode, Period), Vec<(usize, i64)>>;

/// Expected / received / on-time counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub expected: u64,
    pub received: u64,
    pub on_time: u64,
}

impl Counts {
    /// In wire form.
    pub fn summary(self) -> pb::CompletenessSummary {
        pb::CompletenessSummary {
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
    pub values: Vec<pb::MetricValue>,
    pub rollup: pb::Rollup,
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
    reporting_levels: Vec<Level>,
    cube: RwLock<Cube>,
    expected: Mutex<HashMap<Period, Expected>>,
    expected_base: OnceLock<ExpectedBase>,
    /// Per year, every area's population by id (see [`Engine::populations`]).
    population: Mutex<HashMap<i32, Arc<Vec<Option<f64>>>>>,
    db: OnceLock<PathBuf>,
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
}

/// A span's periods with their slabs and expected reporters looked up once, for questions that
/// read many areas over the same span.
struct SpanView<'a> {
    periods: Vec<Period>,
    slabs: Vec<Option<&'a Slab>>,
    expected: Vec<Expected>,
}

impl<'a> SpanView<'a> {
    fn new(engine: &Engine, cube: &'a Cube, periods: &[Period]) -> SpanView<'a> {
        SpanView {
            periods: periods.to_vec(),
            slabs: periods.iter().map(|p| cube.slabs.get(p)).collect(),
            expected: periods
                .iter()
                .map(|p| engine.expected_for(cube, *p))
                .collect(),
        }
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
fn page<T>(all: Vec<T>, size: u32, token: &str) -> Result<(Vec<T>, String), QueryError> {
    let size = match size {
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
    let page = all
        .into_iter()
        .skip(start)
        .take(end.saturating_sub(start))
        .collect();
    Ok((page, next))
}

/// The area code that names the whole registry (every province of a national hub) in a
/// comparison: "every township in the country ranked".
pub const NATION: &str = "全国";

/// What a comparison is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Root {
    Nation,
    Area(AreaCode),
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

/// Why stored figures are beyond what validation accepts today, if they are.
fn implausible(values: &[pb::MetricValue], rollup: Option<&pb::Rollup>) -> Option<String> {
    let max = pingan_proto::report::MAX_VALUE;
    for v in values {
        let bad = v.total.is_some_and(|t| !(0..=max).contains(&t))
            || v.parts.values().any(|n| !(0..=max).contains(n));
        if bad {
            return Some(format!("{} out of 0..={max}", v.metric));
        }
    }
    for c in rollup.map_or(&[][..], |r| r.cells.as_slice()) {
        if c.sum < 0 || i128::from(c.sum) > i128::from(c.present) * i128::from(max) {
            return Some(format!(
                "forwarded {} sum {} for {} reports",
                c.metric, c.sum, c.present
            ));
        }
    }
    None
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
        let cube = Cube::new(AreaIndex::new(&areas), Layout::new(&catalogue), deadlines);
        Engine {
            catalogue,
            areas,
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

    /// The default reporting levels.
    pub fn default_reporting_levels() -> Vec<Level> {
        vec![Level::County, Level::Township, Level::Village]
    }

    /// Applies committed revisions (the store's commit hook).
    pub fn apply(&self, committed: &[Committed]) {
        let mut cube = self.cube.write().unwrap_or_else(PoisonError::into_inner);
        for c in committed {
            cube.apply(c);
        }
    }

    /// Points the engine at the store's database and loads the rollups: from the snapshot at
    /// `snapshot` for every period the store has not changed since it was taken, and from the
    /// store's current revisions for every other period. Later [`Engine::save_snapshot`] calls
    /// write to the same file.
    pub fn load(&self, db: PathBuf, snapshot: Option<PathBuf>) -> Result<Loaded, QueryError> {
        let _ = self.db.set(db);
        if let Some(path) = &snapshot {
            let _ = self.snapshot.set(path.clone());
        }
        let saved = match &snapshot {
            None => None,
            Some(path) => {
                let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
                match snapshot::read(path, &cube) {
                    Ok(saved) => saved,
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "rollup snapshot unreadable, rebuilding from the store");
                        None
                    }
                }
            }
        };
        let mut reader = self.reader()?;
        let loaded = reader.read_consistently(|reader| self.load_from(reader, saved))?;
        self.give_back(reader);
        let loaded = loaded?;
        *self.saved_rows.lock().expect("not poisoned") = loaded.unchanged.clone();
        *self.loaded.lock().expect("not poisoned") = loaded.clone();
        // the expected reporters per area, once, at start-up rather than in the first question
        self.expected_base(&self.cube.read().unwrap_or_else(PoisonError::into_inner));
        Ok(loaded)
    }

    /// How the last [`Engine::load`] got the rollups.
    pub fn loaded(&self) -> Loaded {
        self.loaded.lock().expect("not poisoned").clone()
    }

    fn load_from(
        &self,
        reader: &StoreReader,
        saved: Option<Saved>,
    ) -> Result<Result<Loaded, QueryError>, StoreError> {
        let mut counts = HashMap::new();
        for (p, n) in reader.revisions_per_period()? {
            match p.parse::<Period>() {
                Ok(p) => {
                    counts.insert(p, n);
                }
                Err(_) => return Ok(Err(QueryError::Engine(format!("stored period {p:?}")))),
            }
        }
        let mut loaded = Loaded::default();
        let mut rebuild: Vec<Period> = counts.keys().copied().collect();
        rebuild.sort();
        if let Some(saved) = saved {
            let mut cube = self.cube.write().unwrap_or_else(PoisonError::into_inner);
            for (p, s) in saved.slabs {
                if counts.get(&p) == Some(&s.rows) {
                    cube.slabs.insert(p, s.slab);
                    loaded.unchanged.insert(p, s.rows);
                }
            }
            for (flag, was) in cube.summarized.iter_mut().zip(saved.summarized) {
                *flag |= was;
            }
            rebuild.retain(|p| !loaded.unchanged.contains_key(p));
        }
        let mut failed = None;
        for p in &rebuild {
            let mut batch = Vec::with_capacity(4096);
            reader.for_each_current_of(&p.to_string(), |rec, first_at| {
                let Ok(area) = rec.area.parse::<AreaCode>() else {
                    failed = Some(format!("stored revision with bad area {}", rec.area));
                    return;
                };
                if let Some(why) = implausible(&rec.values, rec.rollup.as_ref()) {
                    loaded.implausible.push(format!(
                        "{} {} revision {}: {why}",
                        rec.area, p, rec.revision
                    ));
                }
                batch.push(Committed {
                    area,
                    period: *p,
                    revision: rec.revision,
                    received_at_ms: rec.received_at_ms,
                    first_received_at_ms: first_at,
                    zero_report: rec.zero_report,
                    values: rec.values,
                    rollup: rec.rollup,
                    previous: None,
                });
                loaded.revisions += 1;
                if batch.len() == batch.capacity() {
                    self.apply(&batch);
                    batch.clear();
                }
            })?;
            self.apply(&batch);
        }
        loaded.rebuilt = rebuild;
        if !loaded.implausible.is_empty() {
            tracing::warn!(
                count = loaded.implausible.len(),
                first = ?loaded.implausible.iter().take(20).collect::<Vec<_>>(),
                "the store holds figures no valid report carries (written before the checks that refuse them now); they are rolled up saturated, never panicking: correct them with a new revision"
            );
        }
        // what the slabs reflect: every stored revision, current or not
        self.cube
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .rows = counts;
        Ok(match failed {
            Some(e) => Err(QueryError::Engine(e)),
            None => Ok(loaded),
        })
    }

    /// Saves the rollups to the snapshot file given to [`Engine::load`], unless nothing changed
    /// since they were loaded or last saved. Each period's slab is copied under a short read
    /// lock, so ingest goes on meanwhile. Returns the number of periods written (0: skipped).
    pub fn save_snapshot(&self) -> std::io::Result<u64> {
        let Some(path) = self.snapshot.get() else {
            return Ok(0);
        };
        if self.distrusted.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(0);
        }
        let _one_at_a_time = self.saving.lock().expect("not poisoned");
        let (fingerprint, mut periods, rows, summarized) = {
            let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
            (
                snapshot::fingerprint(&cube),
                cube.slabs.keys().copied().collect::<Vec<_>>(),
                cube.rows.clone(),
                cube.summarized.clone(),
            )
        };
        if rows == *self.saved_rows.lock().expect("not poisoned") {
            return Ok(0);
        }
        periods.sort();
        let mut taken = HashMap::new();
        let written = snapshot::write(
            path,
            fingerprint,
            &periods,
            |p| {
                let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
                let slab = cube.slabs.get(&p)?.clone();
                let rows = cube.rows.get(&p).copied().unwrap_or(0);
                taken.insert(p, rows);
                Some((rows, slab))
            },
            &summarized,
        )?;
        *self.saved_rows.lock().expect("not poisoned") = taken;
        Ok(written)
    }

    fn reader(&self) -> Result<StoreReader, QueryError> {
        if let Some(r) = self.readers.lock().expect("not poisoned").pop() {
            return Ok(r);
        }
        let db = self
            .db
            .get()
            .ok_or_else(|| QueryError::Engine("the engine has no store yet".into()))?;
        Ok(StoreReader::open(db)?)
    }

    fn give_back(&self, reader: StoreReader) {
        let mut pool = self.readers.lock().expect("not poisoned");
        if pool.len() < 8 {
            pool.push(reader);
        }
    }

    fn area(&self, code: &str) -> Result<AreaCode, QueryError> {
        let c: AreaCode = code
            .parse()
            .map_err(|e: pingan_proto::area::AreaCodeError| {
                QueryError::BadRequest(e.to_string())
            })?;
        if self.areas.get(c).is_none() {
            return Err(QueryError::UnknownArea(code.to_owned()));
        }
        Ok(c)
    }

    /// What a comparison is of: an area's subtree, or the whole registry ([`NATION`]).
    fn root(&self, code: &str) -> Result<Root, QueryError> {
        if code == NATION {
            return Ok(Root::Nation);
        }
        self.area(code).map(Root::Area)
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

    fn span(s: &str) -> Result<Span, QueryError> {
        s.parse()
            .map_err(|e: pingan_proto::span::SpanError| QueryError::BadRequest(e.to_string()))
    }

    fn level(s: &str) -> Result<Option<Level>, QueryError> {
        if s.is_empty() {
            return Ok(None);
        }
        s.parse().map(Some).map_err(QueryError::BadRequest)
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

    /// Villages' current values under `prefix` for `periods`.
    fn fetch_leaves(
        &self,
        layout: &Layout,
        reader: &StoreReader,
        prefix: AreaCode,
        periods: &[Period],
    ) -> Result<LeafValues, QueryError> {
        let mut out = HashMap::new();
        let prefix_s = prefix.to_string();
        for p in periods {
            super::budget::check()?;
            for (area, zero_report, values) in
                reader.village_values_under(&prefix_s, &p.to_string())?
            {
                let Ok(code) = area.parse::<AreaCode>() else {
                    continue;
                };
                if code.level() == Level::Village {
                    out.insert((code, *p), layout.cells(zero_report, &values));
                }
            }
        }
        Ok(out)
    }

    /// An area's own current report's values for `periods`.
    fn fetch_own(
        &self,
        layout: &Layout,
        reader: &StoreReader,
        area: AreaCode,
        periods: &[Period],
    ) -> Result<LeafValues, QueryError> {
        let mut out = HashMap::new();
        let code = area.to_string();
        for p in periods {
            if let Some(rec) = reader.current(&code, &p.to_string())? {
                out.insert((area, *p), layout.cells(rec.zero_report, &rec.values));
            }
        }
        Ok(out)
    }

    /// Combines the periods of a span: counts sum over the periods that carry them, stocks take
    /// the last period that carries them; a slot no period carries is missing. With `only`, just
    /// those slots are combined (the others stay missing).
    fn combine<'a>(
        cube: &Cube,
        cells: impl Iterator<Item = Option<PeriodCell<'a>>>,
        only: Option<&[usize]>,
    ) -> Vec<Option<i64>> {
        let slots = cube.layout.slots();
        let kind = cube.layout.kinds();
        let mut out: Vec<Option<i64>> = vec![None; slots];
        let mut put = |slot: usize, v: i64| {
            out[slot] = match (kind[slot], out[slot]) {
                (MetricKind::Count, Some(acc)) => Some(acc.saturating_add(v)),
                _ => Some(v),
            }
        };
        for cell in cells.flatten() {
            match cell {
                PeriodCell::Inner { sums, present } => match only {
                    None => {
                        for slot in 0..slots {
                            if present[slot] > 0 {
                                put(slot, sums[slot]);
                            }
                        }
                    }
                    Some(only) => {
                        for &slot in only {
                            if present[slot] > 0 {
                                put(slot, sums[slot]);
                            }
                        }
                    }
                },
                PeriodCell::Cells(cells) => {
                    for &(slot, v) in cells {
                        if only.is_none_or(|o| o.contains(&slot)) {
                            put(slot, v);
                        }
                    }
                }
            }
        }
        out
    }

    /// The subtree values of an area over a span.
    fn subtree(
        &self,
        cube: &Cube,
        area: AreaCode,
        periods: &[Period],
        leaves: &LeafValues,
    ) -> Vec<Option<i64>> {
        let view = SpanView::new(self, cube, periods);
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
        let slots = cube.layout.slots();
        let id = cube.index.id(area);
        let cells = view
            .periods
            .iter()
            .zip(&view.slabs)
            .map(|(p, slab)| match id {
                Some(id) if cube.index.is_inner(id) => slab.map(|slab| {
                    let base = id as usize * slots;
                    PeriodCell::Inner {
                        sums: &slab.sums[base..base + slots],
                        present: &slab.present[base..base + slots],
                    }
                }),
                _ => leaves.get(&(area, *p)).map(|c| PeriodCell::Cells(c)),
            });
        Engine::combine(cube, cells, only)
    }

    fn own(cube: &Cube, area: AreaCode, periods: &[Period], own: &LeafValues) -> Vec<Option<i64>> {
        Engine::combine(
            cube,
            periods
                .iter()
                .map(|p| own.get(&(area, *p)).map(|c| PeriodCell::Cells(c))),
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
        match m {
            Measure::Metric { slot, .. } => (vals[*slot].map(|v| v as f64), None),
            Measure::Indicator { num, den, .. } => (
                vals[*num].map(|v| v as f64),
                match den {
                    Some(d) => vals[*d].map(|v| v as f64),
                    None => self.population_of(cube, area, span.population_year()),
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
    fn counts(&self, cube: &Cube, area: AreaCode, periods: &[Period], levels: &[Level]) -> Counts {
        self.counts_in(cube, &SpanView::new(self, cube, periods), area, levels)
    }

    /// [`Engine::counts`] over a span whose slabs and expectations are looked up already.
    fn counts_in(
        &self,
        cube: &Cube,
        view: &SpanView<'_>,
        area: AreaCode,
        levels: &[Level],
    ) -> Counts {
        let mut c = Counts::default();
        let Some(id) = cube.index.id(area) else {
            return c;
        };
        for ((p, slab), expected) in view.periods.iter().zip(&view.slabs).zip(&view.expected) {
            if cube.index.is_inner(id) {
                for l in levels {
                    let i = *l as usize;
                    c.expected += u64::from(expected[id as usize][i]);
                    if let Some(slab) = slab {
                        c.received += u64::from(slab.received[id as usize * LEVELS + i]);
                        c.on_time += u64::from(slab.on_time_n[id as usize * LEVELS + i]);
                    }
                }
            } else if levels.contains(&area.level())
                && self.areas.get(area).is_some_and(|a| a.valid_for(*p))
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

    /// What this hub forwards to its parent for `area` and `period` (federation): the area's own
    /// report and its rollup over `scope`. `None` when nothing within the scope has reported.
    pub fn forward_rollup(
        &self,
        area: AreaCode,
        period: Period,
        scope: pb::rollup::Scope,
    ) -> Result<Option<ForwardedRollup>, QueryError> {
        let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
        let id = cube
            .index
            .id(area)
            .ok_or_else(|| QueryError::UnknownArea(area.to_string()))? as usize;
        let Some(slab) = cube.slabs.get(&period) else {
            return Ok(None);
        };
        let status = slab.status[id];
        let own_reported = status & REPORTED != 0;
        let reader = self.reader()?;
        let own = reader.current(&area.to_string(), &period.to_string())?;
        let first_at = match &own {
            Some(r) if own_reported => match &r.rollup {
                Some(ru) => ru.own_first_received_at_ms,
                None => reader
                    .revisions(&area.to_string(), &period.to_string())?
                    .first()
                    .map_or(0, |f| f.received_at_ms),
            },
            _ => 0,
        };
        self.give_back(reader);
        let (zero_report, values) = match &own {
            Some(r) if own_reported => (r.zero_report, r.values.clone()),
            _ => (false, Vec::new()),
        };
        let mut rollup = pb::Rollup {
            scope: scope as i32,
            own_reported,
            own_on_time: status & ON_TIME != 0,
            own_first_received_at_ms: first_at,
            ..Default::default()
        };
        let slots = cube.layout.slots();
        let names = cube.layout.slot_names();
        if scope == pb::rollup::Scope::Subtree && cube.index.is_inner(id as u32) {
            let base = id * slots;
            for (slot, (metric, part)) in names.into_iter().enumerate() {
                if slab.present[base + slot] > 0 {
                    rollup.cells.push(pb::RollupCell {
                        metric,
                        part,
                        sum: slab.sums[base + slot],
                        present: slab.present[base + slot],
                    });
                }
            }
            for l in Level::ALL {
                let i = id * LEVELS + l as usize;
                if slab.received[i] > 0 {
                    rollup.reporters.push(pb::LevelCount {
                        level: l.as_str().to_owned(),
                        received: slab.received[i],
                        on_time: slab.on_time_n[i],
                    });
                }
            }
        } else {
            if cube.index.is_inner(id as u32)
                && own
                    .as_ref()
                    .and_then(|r| r.rollup.as_ref())
                    .is_some_and(|r| r.scope() == pb::rollup::Scope::Subtree)
            {
                return Err(QueryError::Engine(format!(
                    "{area} {period}: this hub holds {area}'s subtree as one rollup from a child hub, so it cannot forward {area}'s own figures alone: forward at a depth no finer than its child hubs do"
                )));
            }
            if own_reported {
                rollup.cells = cube
                    .layout
                    .cells(zero_report, &values)
                    .into_iter()
                    .map(|(slot, sum)| pb::RollupCell {
                        metric: names[slot].0.clone(),
                        part: names[slot].1.clone(),
                        sum,
                        present: 1,
                    })
                    .collect();
                rollup.reporters.push(pb::LevelCount {
                    level: area.level().as_str().to_owned(),
                    received: 1,
                    on_time: u32::from(rollup.own_on_time),
                });
            }
        }
        if !own_reported && rollup.cells.is_empty() && rollup.reporters.is_empty() {
            return Ok(None);
        }
        Ok(Some(ForwardedRollup {
            zero_report,
            values,
            rollup,
        }))
    }

    /// An area's own figures and subtree totals.
    pub fn rollup(&self, req: &pb::RollupRequest) -> Result<pb::RollupReply, QueryError> {
        let area = self.area(&req.area)?;
        let span = Engine::span(&req.period)?;
        let periods = span.periods();
        let layout = {
            let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
            self.known_here(&cube, area)?;
            cube.layout.clone()
        };
        // the store is read without holding the rollups' lock (the writer needs it)
        let reader = self.reader()?;
        let own = self.fetch_own(&layout, &reader, area, &periods)?;
        self.give_back(reader);
        let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
        let leaves = if area.level() == Level::Village {
            own.clone()
        } else {
            LeafValues::new()
        };
        let total = self.subtree(&cube, area, &periods, &leaves);
        let own_vals = Engine::own(&cube, area, &periods, &own);
        // the metrics and indicators asked for (by id or Chinese name); none: every one
        let mut wanted: Vec<String> = Vec::new();
        let mut wanted_rates: Vec<String> = Vec::new();
        for m in &req.metrics {
            if let Some(id) = self.catalogue.metric_id(m) {
                wanted.push(id.to_string());
            } else if let Some(ind) = self.catalogue.indicator(m) {
                wanted_rates.push(ind.id.clone());
            } else {
                let hint = self
                    .catalogue
                    .suggest(m)
                    .map(|s| format!("，是否是 {s}？"))
                    .unwrap_or_default();
                return Err(QueryError::BadRequest(format!(
                    "未知的指标或比率「{m}」{hint}"
                )));
            }
        }
        let everything = req.metrics.is_empty();
        let mut figures = Vec::new();
        for m in cube.layout.metrics() {
            if !everything && !wanted.iter().any(|w| w == m.id.as_str()) {
                continue;
            }
            let def = self.catalogue.metric(&m.id);
            let parts = if req.by_category {
                m.parts
                    .iter()
                    .map(|(name, slot)| pb::Part {
                        part: name.clone(),
                        value: total[*slot],
                    })
                    .collect()
            } else {
                Vec::new()
            };
            figures.push(pb::Figure {
                metric: m.id.to_string(),
                name: def.zh.clone(),
                unit: def.unit.clone(),
                own: own_vals[m.total],
                total: total[m.total],
                parts,
                kind: match m.kind {
                    MetricKind::Count => "count".into(),
                    MetricKind::Stock => "stock".into(),
                },
            });
        }
        let mut rates = Vec::new();
        for ind in self.catalogue.indicators() {
            if !everything && !wanted_rates.contains(&ind.id) {
                continue;
            }
            let m = self.measure(&cube, &ind.id)?;
            let nd = self.num_den(&cube, &m, &total, area, &span);
            rates.push(pb::Rate {
                indicator: ind.id.clone(),
                name: ind.zh.clone(),
                unit: ind.unit.clone(),
                value: Engine::value_of(&m, nd),
                numerator: nd.0,
                denominator: nd.1,
            });
        }
        let levels = self.levels_below(area, None);
        Ok(pb::RollupReply {
            area: area.to_string(),
            name: self.areas.name(area),
            period: span.to_string(),
            figures,
            rates,
            completeness: Some(self.counts(&cube, area, &periods, &levels).summary()),
        })
    }

    /// Children (or descendants at a level) ranked on a metric or indicator.
    pub fn compare(&self, req: &pb::CompareRequest) -> Result<pb::CompareReply, QueryError> {
        let root = self.root(&req.area)?;
        let span = Engine::span(&req.period)?;
        let top = match root {
            Root::Area(a) => a,
            Root::Nation => *self
                .areas
                .roots()
                .first()
                .ok_or_else(|| QueryError::Engine("the registry is empty".into()))?,
        };
        let level = match (Engine::level(&req.level)?, root) {
            (Some(l), Root::Area(area)) if l <= area.level() => {
                return Err(QueryError::BadRequest(format!(
                    "level {l} is not below {} ({})",
                    area,
                    area.level()
                )));
            }
            (Some(l), _) => l,
            (None, Root::Nation) => top.level(),
            (None, Root::Area(area)) => area.level().child().ok_or_else(|| {
                QueryError::BadRequest(format!("{area} is a village: it has no areas below it"))
            })?,
        };
        let tops: Vec<AreaCode> = match root {
            Root::Area(a) => vec![a],
            Root::Nation => self.areas.roots().to_vec(),
        };
        let rows: Vec<AreaCode> = tops
            .iter()
            .flat_map(|t| self.areas.descendants_at(*t, level))
            .collect();
        let spans = [span, span.year_earlier(), span.previous()];
        let periods: Vec<Vec<Period>> = spans.iter().map(Span::periods).collect();
        let read: u64 = periods.iter().map(|p| p.len() as u64).sum();
        super::budget::within(rows.len() as u64 * read, "这次排名对比")?;
        let (layout, measure) = {
            let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
            if cube.summarized.iter().any(|s| *s) {
                // the rows of one level: one of them stands for its siblings
                let mut checked = std::collections::HashSet::new();
                for code in &rows {
                    if let Some(parent) = code.parent()
                        && checked.insert(parent)
                    {
                        self.known_here(&cube, *code)?;
                    }
                }
            }
            (cube.layout.clone(), self.measure(&cube, &req.metric)?)
        };
        // villages' own values come from the store, read without the rollups' lock
        let leaves = if level == Level::Village {
            let reader = self.reader()?;
            let all: Vec<Period> = periods.iter().flatten().copied().collect();
            let mut l = LeafValues::new();
            for t in &tops {
                l.extend(self.fetch_leaves(&layout, &reader, *t, &all)?);
            }
            self.give_back(reader);
            l
        } else {
            LeafValues::new()
        };
        let levels = match root {
            Root::Area(area) => self.levels_below(area, None),
            Root::Nation => self.reporting_levels.clone(),
        };
        let mut input = TableInput {
            is_rate: matches!(measure, Measure::Indicator { .. }),
            ..Default::default()
        };
        if let Measure::Indicator { factor, .. } = measure {
            input.factor = factor;
        }
        let mut counts = Vec::with_capacity(rows.len());
        let mut withheld = Vec::with_capacity(rows.len());
        let only = measure.slots();
        // the reporting levels at and below each level (rows are mostly of one level)
        let row_levels: Vec<Vec<Level>> = (0..LEVELS)
            .map(|i| {
                levels
                    .iter()
                    .copied()
                    .filter(|l| *l as usize >= i)
                    .collect()
            })
            .collect();
        // the rollups' lock is held for one chunk of rows at a time: the store's writer, which
        // needs it before any receipt goes out, waits for a chunk, never for a whole ranking
        for chunk in rows.chunks(ROWS_PER_LOCK) {
            super::budget::check()?;
            let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
            let views: Vec<SpanView<'_>> = periods
                .iter()
                .map(|p| SpanView::new(self, &cube, p))
                .collect();
            for code in chunk {
                let c = self.counts_in(&cube, &views[0], *code, &row_levels[code.level() as usize]);
                let hide = req.complete_only && c.received < c.expected;
                let nd = |i: usize| {
                    let vals = Engine::values_in(&cube, &views[i], *code, &leaves, Some(&only));
                    self.num_den(&cube, &measure, &vals, *code, &spans[i])
                };
                let (n0, d0) = if hide { (None, None) } else { nd(0) };
                let (n1, d1) = nd(1);
                let (n2, d2) = nd(2);
                input.num.push(n0);
                input.den.push(d0);
                input.num_yoy.push(n1);
                input.den_yoy.push(d1);
                input.num_mom.push(n2);
                input.den_mom.push(d2);
                counts.push(c);
                withheld.push(hide);
            }
        }
        let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
        let parent_nd = match root {
            Root::Area(area) => {
                let vals = self.subtree(&cube, area, &periods[0], &leaves);
                self.num_den(&cube, &measure, &vals, area, &span)
            }
            // the nation: the sum of the registry's top areas
            Root::Nation => {
                let mut total: (Option<f64>, Option<f64>) = (None, None);
                for t in &tops {
                    let vals = self.subtree(&cube, *t, &periods[0], &leaves);
                    let (n, d) = self.num_den(&cube, &measure, &vals, *t, &span);
                    let add = |acc: Option<f64>, x: Option<f64>| match (acc, x) {
                        (Some(a), Some(b)) => Some(a + b),
                        (a, b) => a.or(b),
                    };
                    total = (add(total.0, n), add(total.1, d));
                }
                total
            }
        };
        input.parent_num = parent_nd.0;
        drop(cube);
        let out = table::compute(&input).map_err(|e| QueryError::Engine(e.to_string()))?;
        // ranked first, by rank then code; ordering indices, not the rows themselves
        let mut order: Vec<usize> = (0..rows.len()).collect();
        let rank_of = |i: usize| out.rank[i].unwrap_or(0);
        order.sort_by_key(|&i| (rank_of(i) == 0, rank_of(i), rows[i]));
        let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
        let name_of = |code: AreaCode| match cube.index.id(code) {
            Some(id) => cube.index.names[id as usize].to_string(),
            None => self.areas.name(code),
        };
        let result: Vec<pb::CompareRow> = order
            .into_iter()
            .map(|i| pb::CompareRow {
                code: rows[i].to_string(),
                name: name_of(rows[i]),
                value: input.num[i],
                rate: if input.is_rate { out.value[i] } else { None },
                denominator: input.den[i],
                rank: rank_of(i),
                share: out.share[i],
                yoy_base: out.yoy_base[i],
                yoy_change: out.yoy_change[i],
                yoy_pct: out.yoy_pct[i],
                mom_base: out.mom_base[i],
                mom_change: out.mom_change[i],
                mom_pct: out.mom_pct[i],
                completeness: Some(counts[i].summary()),
                z: out.z[i],
                outlier: out.z[i].is_some_and(|z| z.abs() > OUTLIER_Z),
                withheld: withheld[i],
            })
            .collect();
        drop(cube);
        let (name, unit) = measure.labels();
        let (root_code, root_name) = match root {
            Root::Area(area) => (area.to_string(), self.areas.name(area)),
            Root::Nation => (NATION.to_owned(), NATION.to_owned()),
        };
        let total_rows = result.len() as u64;
        let (result, next_page_token) = page(result, req.page_size, &req.page_token)?;
        Ok(pb::CompareReply {
            area: root_code,
            name: root_name,
            period: span.to_string(),
            metric: measure.id().to_owned(),
            metric_name: name.to_owned(),
            unit: unit.to_owned(),
            is_rate: input.is_rate,
            parent_total: parent_nd.0,
            parent_rate: if input.is_rate {
                Engine::value_of(&measure, parent_nd)
            } else {
                None
            },
            rows: result,
            next_page_token,
            total_rows,
        })
    }

    /// One area's series over the last `periods` spans ending with `period`, with 同比.
    pub fn trend(&self, req: &pb::TrendRequest) -> Result<pb::TrendReply, QueryError> {
        let area = self.area(&req.area)?;
        let last = Engine::span(&req.period)?;
        let n = req.periods.clamp(1, 120) as usize;
        let mut spans = vec![last];
        for _ in 1..n {
            let prev = spans.last().expect("non-empty").previous();
            spans.push(prev);
        }
        spans.reverse();
        let read: u64 = spans.iter().map(|s| 2 * s.periods().len() as u64).sum();
        super::budget::within(read, "这条走势")?;
        let (layout, measure) = {
            let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
            self.known_here(&cube, area)?;
            (cube.layout.clone(), self.measure(&cube, &req.metric)?)
        };
        let leaves = if area.level() == Level::Village {
            let reader = self.reader()?;
            let all: Vec<Period> = spans
                .iter()
                .flat_map(|s| s.periods().into_iter().chain(s.year_earlier().periods()))
                .collect();
            let l = self.fetch_own(&layout, &reader, area, &all)?;
            self.give_back(reader);
            l
        } else {
            LeafValues::new()
        };
        let levels = self.levels_below(area, None);
        let only = measure.slots();
        let mut points = Vec::with_capacity(spans.len());
        // one point per hold of the rollups' lock
        for s in &spans {
            super::budget::check()?;
            let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
            let at = |s: &Span| {
                let view = SpanView::new(self, &cube, &s.periods());
                let vals = Engine::values_in(&cube, &view, area, &leaves, Some(&only));
                Engine::value_of(&measure, self.num_den(&cube, &measure, &vals, area, s))
            };
            let (value, base) = (at(s), at(&s.year_earlier()));
            let change = value.zip(base).map(|(v, b)| v - b);
            points.push(pb::TrendPoint {
                period: s.to_string(),
                value,
                yoy_base: base,
                yoy_change: change,
                yoy_pct: change
                    .zip(base)
                    .and_then(|(c, b)| (b != 0.0).then(|| c / b * 100.0)),
                completeness: Some(self.counts(&cube, area, &s.periods(), &levels).summary()),
            });
        }
        let (name, unit) = measure.labels();
        Ok(pb::TrendReply {
            area: area.to_string(),
            name: self.areas.name(area),
            metric: measure.id().to_owned(),
            metric_name: name.to_owned(),
            unit: unit.to_owned(),
            points,
        })
    }

    /// Who was expected to report, who did, on time or late, and who is missing.
    pub fn completeness(
        &self,
        req: &pb::CompletenessRequest,
    ) -> Result<pb::CompletenessReply, QueryError> {
        let area = self.area(&req.area)?;
        let span = Engine::span(&req.period)?;
        let only = Engine::level(&req.level)?;
        if let Some(l) = only
            && l < area.level()
        {
            return Err(QueryError::BadRequest(format!(
                "level {l} is above {area} ({})",
                area.level()
            )));
        }
        let levels = self.levels_below(area, only);
        let periods = span.periods();
        // by level, then code: each level's reporters in the subtree are one range of ids
        let mut levels_sorted = levels.clone();
        levels_sorted.sort();
        let (summary, reporters, any_summarized) = {
            let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
            self.known_here(&cube, area)?;
            let reporters: Vec<u32> = levels_sorted
                .iter()
                .flat_map(|l| cube.index.range_at(area, *l))
                .collect();
            (
                self.counts(&cube, area, &periods, &levels).summary(),
                reporters,
                cube.summarized.iter().any(|s| *s),
            )
        };
        super::budget::within(
            reporters.len() as u64 * periods.len() as u64,
            "这份上报情况",
        )?;
        let mut missing = Vec::new();
        let mut late_keys = Vec::new();
        // one period per hold of the rollups' lock
        for p in &periods {
            super::budget::check()?;
            let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
            // reporters below a child hub's subtree rollup are known here by their counts only
            let named = |id: u32| {
                let mut x = cube.index.parent[id as usize];
                while any_summarized && x != NONE {
                    if cube.summarized[x as usize] {
                        return false;
                    }
                    x = cube.index.parent[x as usize];
                }
                true
            };
            let base = self.expected_base(&cube);
            let slab = cube.slabs.get(p);
            for &id in &reporters {
                let code = cube.index.codes[id as usize];
                if base.is_bounded[id as usize]
                    && !self.areas.get(code).is_some_and(|a| a.valid_for(*p))
                    || !named(id)
                {
                    continue;
                }
                match slab.map(|s| s.status[id as usize]) {
                    Some(status) if status & REPORTED != 0 => {
                        if status & ON_TIME == 0 {
                            late_keys.push((code, *p));
                        }
                    }
                    _ => missing.push((code, *p)),
                }
            }
        }
        let (named_missing, named_late) = (missing.len() as u64, late_keys.len() as u64);
        // one page of the named reporters: the missing ones, then the late ones
        let total_named = named_missing + named_late;
        let all: Vec<(bool, AreaCode, Period)> = missing
            .into_iter()
            .map(|(c, p)| (false, c, p))
            .chain(late_keys.into_iter().map(|(c, p)| (true, c, p)))
            .collect();
        let (shown, next_page_token) = page(all, req.page_size, &req.page_token)?;
        let missing: Vec<pb::Reporter> = shown
            .iter()
            .filter(|(is_late, _, _)| !is_late)
            .map(|(_, code, p)| pb::Reporter {
                code: code.to_string(),
                name: self.areas.name(*code),
                period: p.to_string(),
                received_at_ms: 0,
            })
            .collect();
        let late_keys: Vec<(AreaCode, Period)> = shown
            .iter()
            .filter(|(is_late, _, _)| *is_late)
            .map(|(_, c, p)| (*c, *p))
            .collect();
        let mut late = Vec::with_capacity(late_keys.len());
        if !late_keys.is_empty() {
            let reader = self.reader()?;
            for (code, p) in late_keys {
                let first = reader
                    .revisions(&code.to_string(), &p.to_string())?
                    .into_iter()
                    .next();
                // a forwarded rollup says when the area's own report reached the child hub
                let received_at_ms = match first {
                    Some(first) if first.rollup.is_some() => reader
                        .current(&code.to_string(), &p.to_string())?
                        .and_then(|r| r.rollup)
                        .map_or(0, |r| r.own_first_received_at_ms),
                    Some(first) => first.received_at_ms,
                    None => 0,
                };
                late.push(pb::Reporter {
                    code: code.to_string(),
                    name: self.areas.name(code),
                    period: p.to_string(),
                    received_at_ms,
                });
            }
            self.give_back(reader);
        }
        Ok(pb::CompletenessReply {
            area: area.to_string(),
            name: self.areas.name(area),
            period: span.to_string(),
            unnamed_missing: summary.missing.saturating_sub(named_missing),
            unnamed_late: summary.late.saturating_sub(named_late),
            summary: Some(summary),
            missing,
            late,
            next_page_token,
            total_named,
        })
    }
}
