//! A small hub for the engine's unit tests: 三台县's registry, the shipped catalogue, a store in
//! a temporary directory whose commits roll up into the engine, as a serving hub wires them.

use std::sync::Arc;

use chrono::TimeZone as _;
use pingan_domain::{AreaCode, Catalogue, Level, Validator, fixtures, pb};

use super::Engine;
use crate::{
    query::Deadlines,
    store::{Committed, Store},
};

pub(super) struct Fixture {
    pub(super) engine: Arc<Engine>,
    pub(super) store: Store,
    catalogue: Catalogue,
    areas: Arc<pingan_domain::Areas>,
    _dir: tempfile::TempDir,
    sent: std::sync::atomic::AtomicU64,
    /// The store's writes are async; the questions are asked off the runtime, as the hub asks
    /// them on its blocking threads (polars must not run on an async one).
    rt: tokio::runtime::Runtime,
}

/// 北京时间 midnight of a day, in milliseconds.
pub(super) fn beijing_ms(y: i32, m: u32, d: u32) -> i64 {
    chrono::FixedOffset::east_opt(8 * 3600)
        .unwrap()
        .with_ymd_and_hms(y, m, d, 0, 0, 0)
        .unwrap()
        .timestamp_millis()
}

pub(super) fn code(s: &str) -> AreaCode {
    s.parse().unwrap()
}

/// The first `n` villages of a township, by code.
pub(super) fn villages(f: &Fixture, township: &str, n: usize) -> Vec<AreaCode> {
    let mut v = f.areas.descendants_at(code(township), Level::Village);
    v.sort();
    v.truncate(n);
    v
}

impl Fixture {
    pub(super) fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let catalogue = Catalogue::builtin();
        let areas = Arc::new(fixtures::santai_areas());
        let engine = Arc::new(Engine::new(
            Arc::new(catalogue.clone()),
            areas.clone(),
            Deadlines::default(),
            Engine::default_reporting_levels(),
        ));
        let hook_engine = engine.clone();
        let store = Store::open_with_hook(
            dir.path(),
            Some(Arc::new(move |c: &[Committed]| hook_engine.apply(c))),
        )
        .unwrap();
        engine.load(store.at().clone(), None).unwrap();
        Fixture {
            engine,
            store,
            catalogue,
            areas,
            _dir: dir,
            sent: Default::default(),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        }
    }

    pub(super) fn areas(&self) -> &pingan_domain::Areas {
        &self.areas
    }

    /// Stores a report of `values` (metric id, total) for `area` and `period`, received at
    /// `at_ms`.
    pub(super) fn report(&self, area: AreaCode, period: &str, values: &[(&str, i64)], at_ms: i64) {
        let values = values
            .iter()
            .map(|(m, v)| pb::MetricValue {
                metric: (*m).into(),
                total: Some(*v),
                parts: Default::default(),
            })
            .collect();
        self.report_values(area, period, values, false, at_ms);
    }

    /// Stores a report of wire `values` (parts too), or a zero report, received at `at_ms`.
    pub(super) fn report_values(
        &self,
        area: AreaCode,
        period: &str,
        values: Vec<pb::MetricValue>,
        zero_report: bool,
        at_ms: i64,
    ) {
        let n = self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let wire = pb::Report {
            submission_id: format!("t-{n}"),
            area: area.to_string(),
            period: period.into(),
            values,
            zero_report,
            ..Default::default()
        };
        let valid = Validator {
            catalogue: &self.catalogue,
            areas: Some(&self.areas),
            today: chrono::NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
            departments: None,
        }
        .validate(&wire)
        .unwrap();
        self.rt
            .block_on(self.store.write(valid, "test".into(), at_ms))
            .unwrap();
    }
}
