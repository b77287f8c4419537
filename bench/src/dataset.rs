//! The benchmark's synthetic national dataset: every county, township and village of a division
//! registry reports every month of a range, with plausible figures that are skewed by area
//! (a lognormal "size" per area), some zero reports, a few percent never reported, and a few
//! corrections. Deterministic: the same registry, months and seed give the same bytes.
//!
//! Written in the wide layout `pingan-hub import` reads (`area,period,<metric>...`), one file per
//! month plus one of corrections per month (imported after it, so they become revision 2), and a
//! population file `code,year,population` for the villages (higher levels sum them).

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use pingan_domain::{AreaCode, Areas, Catalogue, Level, MetricKind, Period, catalogue::RuleOp};
use rand::{Rng as _, SeedableRng as _, rngs::StdRng};

/// How the dataset is shaped.
#[derive(Debug, Clone)]
pub struct Shape {
    /// The first month.
    pub first: Period,
    /// How many months.
    pub months: u32,
    pub seed: u64,
    /// Share of (reporter, month) never reported.
    pub missing: f64,
    /// Share of reports that are zero reports (零报告), villages only.
    pub zero: f64,
    /// Share of reports corrected once.
    pub corrected: f64,
}

impl Default for Shape {
    fn default() -> Shape {
        Shape {
            first: Period::Month {
                year: 2024,
                month: 11,
            },
            months: 24,
            seed: 20261123,
            missing: 0.03,
            zero: 0.05,
            corrected: 0.01,
        }
    }
}

/// What was written.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Written {
    pub reports: u64,
    pub corrections: u64,
    pub values: u64,
    /// The files, in the order to import them.
    pub files: Vec<PathBuf>,
    pub population: PathBuf,
}

/// Mean monthly count of a metric for a village of size 1; townships and counties report their
/// own office's figures at a multiple of it. The dataset gives these 26 metrics (the catalogue
/// before forms), so its figures stay comparable with earlier runs; the others are not given.
fn village_mean(metric: &str) -> Option<f64> {
    Some(match metric {
        "disputes.identified" => 3.0,
        "disputes.mediated" => 2.8,
        "disputes.resolved" => 2.6,
        "disputes.escalated" => 0.1,
        "cases.public_order" => 0.8,
        "cases.criminal_filed" => 0.4,
        "cases.criminal_solved" => 0.3,
        "cases.homicide" => 0.002,
        "cases.fraud" => 0.2,
        "cases.juvenile" => 0.05,
        "petitions.letters" => 0.5,
        "petitions.letters_concluded" => 0.45,
        "petitions.hotline" => 1.0,
        "petitions.visitors" => 0.6,
        "petitions.repeat_visitors" => 0.1,
        "petitions.collective_batches" => 0.02,
        "petitions.collective_persons" => 0.2,
        "petitions.leapfrog" => 0.01,
        "patrol.sessions" => 8.0,
        "patrol.person_times" => 30.0,
        "patrol.hours" => 40.0,
        "grid.events_handled" => 10.0,
        "grid.visits" => 60.0,
        "hazards.found" => 2.0,
        "hazards.fixed" => 1.8,
        "grid.workers" => 3.0,
        _ => return None,
    })
}

/// Per level, which catalogue metrics a report gives (see [`given`]).
type Given = std::collections::HashMap<(usize, Level), std::rc::Rc<Vec<bool>>>;

/// Per catalogue metric: whether a report of `level` for a month gives it (its monthly form asks
/// it, and the dataset models it).
fn given(catalogue: &Catalogue, level: Level) -> std::rc::Rc<Vec<bool>> {
    thread_local! {
        // per catalogue (by address) and level: computed once, asked for every report
        static GIVEN: std::cell::RefCell<Given> = Default::default();
    }
    let key = (catalogue as *const Catalogue as usize, level);
    GIVEN.with_borrow_mut(|cache| {
        cache
            .entry(key)
            .or_insert_with(|| {
                let form = catalogue.form_for(level, pingan_domain::period::PeriodKind::Month);
                std::rc::Rc::new(
                    catalogue
                        .metrics()
                        .iter()
                        .map(|m| {
                            village_mean(m.id.as_str()).is_some()
                                && form.is_some_and(|f| f.asks(level, &m.id))
                        })
                        .collect(),
                )
            })
            .clone()
    })
}

fn level_factor(level: Level) -> f64 {
    match level {
        Level::County => 20.0,
        Level::Township => 5.0,
        _ => 1.0,
    }
}

/// A Poisson draw (Knuth's method for small means, a rounded normal for large ones).
fn poisson(rng: &mut StdRng, mean: f64) -> i64 {
    if mean <= 0.0 {
        return 0;
    }
    if mean < 30.0 {
        let limit = (-mean).exp();
        let (mut k, mut p) = (0, 1.0);
        loop {
            p *= rng.random::<f64>();
            if p <= limit {
                return k;
            }
            k += 1;
        }
    }
    // Box–Muller
    let (u1, u2): (f64, f64) = (rng.random::<f64>().max(f64::MIN_POSITIVE), rng.random());
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    (mean + z * mean.sqrt()).round().max(0.0) as i64
}

/// An area's size: lognormal around 1, fixed for the area whatever the month.
fn size(seed: u64, code: AreaCode) -> f64 {
    let mut rng = StdRng::seed_from_u64(seed ^ code.digits().wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let (u1, u2): (f64, f64) = (rng.random::<f64>().max(f64::MIN_POSITIVE), rng.random());
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    (0.8 * z).exp()
}

/// One report's values, in catalogue order (`None`: not given), with the catalogue's rules kept.
fn values(
    catalogue: &Catalogue,
    rng: &mut StdRng,
    code: AreaCode,
    size: f64,
    month_index: u32,
) -> Vec<Option<i64>> {
    // a mild seasonal swing, so that 同比 and 环比 are not flat
    let season = 1.0 + 0.15 * ((month_index as f64) * std::f64::consts::TAU / 12.0).sin();
    let scale = size * level_factor(code.level());
    let mut out: Vec<Option<i64>> = catalogue
        .metrics()
        .iter()
        .zip(given(catalogue, code.level()).iter())
        .map(|(m, &given)| {
            let mean = village_mean(m.id.as_str()).filter(|_| given)? * scale;
            Some(match m.kind {
                MetricKind::Stock => mean.round().max(1.0) as i64,
                MetricKind::Count => poisson(rng, mean * season),
            })
        })
        .collect();
    let at = |id: &str| catalogue.metrics().iter().position(|m| m.id.as_str() == id);
    for rule in catalogue.rules() {
        let (Some(a), Some(b)) = (at(rule.metric.as_str()), at(rule.other.as_str())) else {
            continue;
        };
        let (Some(x), Some(y)) = (out[a], out[b]) else {
            continue;
        };
        let bound = rule.factor * y;
        out[a] = Some(match rule.op {
            RuleOp::Le => x.min(bound),
            RuleOp::Ge => x.max(bound),
        });
    }
    out
}

/// One reporter's values for the `month_index`-th month of the dataset, in catalogue order, drawn
/// from their own seed (so concurrent generators agree without sharing a random stream): what the
/// ingest benchmark's simulated nodes submit.
pub fn report_values(
    catalogue: &Catalogue,
    seed: u64,
    code: AreaCode,
    month_index: u32,
) -> Vec<Option<i64>> {
    let mut rng = StdRng::seed_from_u64(
        seed ^ code.digits().wrapping_mul(0x2545_f491_4f6c_dd1d) ^ u64::from(month_index),
    );
    values(catalogue, &mut rng, code, size(seed, code), month_index)
}

fn create(path: &Path) -> anyhow::Result<csv::Writer<std::io::BufWriter<std::fs::File>>> {
    let file = std::fs::File::create(path)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", path.display()))?;
    Ok(csv::Writer::from_writer(std::io::BufWriter::with_capacity(
        1 << 20,
        file,
    )))
}

/// Writes the dataset for every county, township and village of `areas` into `dir`, calling
/// `progress(done, total)` after each month.
pub fn write(
    areas: &Areas,
    catalogue: &Catalogue,
    shape: &Shape,
    dir: &Path,
    mut progress: impl FnMut(u32, u32),
) -> anyhow::Result<Written> {
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    let mut reporters: Vec<AreaCode> = areas
        .iter()
        .map(|a| a.code)
        .filter(|c| c.level() >= Level::County)
        .collect();
    reporters.sort();
    let sizes: Vec<f64> = reporters.iter().map(|c| size(shape.seed, *c)).collect();
    let header: Vec<String> = ["area", "period"]
        .into_iter()
        .map(str::to_owned)
        .chain(catalogue.metrics().iter().map(|m| m.id.to_string()))
        .collect();
    let mut written = Written::default();
    for i in 0..shape.months {
        let period = shape.first.shift(i64::from(i));
        let mut rng = StdRng::seed_from_u64(shape.seed.wrapping_add(u64::from(i) * 7919));
        let reports_path = dir.join(format!("reports-{period}.csv"));
        let corrections_path = dir.join(format!("corrections-{period}.csv"));
        let mut reports = create(&reports_path)?;
        let mut corrections = create(&corrections_path)?;
        reports.write_record(&header)?;
        corrections.write_record(&header)?;
        let p = period.to_string();
        for (code, size) in reporters.iter().zip(&sizes) {
            if !areas.get(*code).is_some_and(|a| a.valid_for(period))
                || rng.random_bool(shape.missing)
            {
                continue;
            }
            let zero = code.level() == Level::Village && rng.random_bool(shape.zero);
            let vals = if zero {
                // a zero report: every count 0 (stocks still given)
                catalogue
                    .metrics()
                    .iter()
                    .zip(given(catalogue, code.level()).iter())
                    .map(|(m, &given)| {
                        let mean = village_mean(m.id.as_str()).filter(|_| given)?;
                        Some(match m.kind {
                            MetricKind::Count => 0,
                            MetricKind::Stock => mean.round() as i64,
                        })
                    })
                    .collect()
            } else {
                values(catalogue, &mut rng, *code, *size, i)
            };
            let row = |vals: &[Option<i64>]| -> Vec<String> {
                [code.to_string(), p.clone()]
                    .into_iter()
                    .chain(
                        vals.iter()
                            .map(|v| v.map(|n| n.to_string()).unwrap_or_default()),
                    )
                    .collect()
            };
            reports.write_record(row(&vals))?;
            written.reports += 1;
            written.values += vals.iter().flatten().count() as u64;
            if rng.random_bool(shape.corrected) {
                let fixed = values(catalogue, &mut rng, *code, *size, i);
                corrections.write_record(row(&fixed))?;
                written.corrections += 1;
                written.values += fixed.iter().flatten().count() as u64;
            }
        }
        reports.flush()?;
        corrections.flush()?;
        written.files.push(reports_path);
        written.files.push(corrections_path);
        progress(i + 1, shape.months);
    }
    written.population = write_population(dir, shape, &reporters, &sizes)?;
    Ok(written)
}

/// Populations: villages only (a higher level's is the sum of its villages'), every year the
/// months touch, growing slightly. Returns the file.
fn write_population(
    dir: &Path,
    shape: &Shape,
    reporters: &[AreaCode],
    sizes: &[f64],
) -> anyhow::Result<std::path::PathBuf> {
    let population = dir.join("population.csv");
    let mut pop = create(&population)?;
    pop.write_record(["code", "year", "population"])?;
    let first_year = shape
        .first
        .first_day()
        .format("%Y")
        .to_string()
        .parse::<i32>()?;
    let last_year = shape
        .first
        .shift(i64::from(shape.months.max(1) - 1))
        .first_day()
        .format("%Y")
        .to_string()
        .parse::<i32>()?;
    for (code, size) in reporters.iter().zip(sizes) {
        if code.level() != Level::Village {
            continue;
        }
        let base = (1_500.0 * size).round().max(50.0);
        for year in first_year..=last_year {
            let grown = base * (1.0 + 0.005 * f64::from(year - first_year));
            pop.write_record([
                code.to_string(),
                year.to_string(),
                (grown as u64).to_string(),
            ])?;
        }
    }
    pop.flush()?;
    Ok(population)
}

/// Writes a progress line to stderr (`\r`-rewritten on a terminal).
pub fn print_progress(done: u32, total: u32) {
    let mut err = std::io::stderr();
    let _ = write!(err, "\rdataset: {done}/{total} months");
    if done == total {
        let _ = writeln!(err);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingan_domain::{Validator, fixtures, pb};

    fn shape() -> Shape {
        Shape {
            first: "2026-09".parse().unwrap(),
            months: 2,
            ..Shape::default()
        }
    }

    /// Reads a wide file back into wire reports.
    fn read(path: &Path) -> Vec<pb::Report> {
        let mut csv = csv::Reader::from_path(path).unwrap();
        let header: Vec<String> = csv.headers().unwrap().iter().map(str::to_owned).collect();
        csv.records()
            .map(|r| {
                let r = r.unwrap();
                pb::Report {
                    submission_id: "t".into(),
                    area: r[0].to_owned(),
                    period: r[1].to_owned(),
                    values: header[2..]
                        .iter()
                        .zip(r.iter().skip(2))
                        .filter(|(_, v)| !v.is_empty())
                        .map(|(m, v)| pb::MetricValue {
                            metric: m.clone(),
                            total: Some(v.parse().unwrap()),
                            parts: Default::default(),
                        })
                        .collect(),
                    ..Default::default()
                }
            })
            .collect()
    }

    #[test]
    fn every_row_is_a_valid_report_and_the_same_seed_gives_the_same_bytes() {
        let areas = fixtures::santai_areas();
        let catalogue = Catalogue::builtin();
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let wa = write(&areas, &catalogue, &shape(), a.path(), |_, _| {}).unwrap();
        let wb = write(&areas, &catalogue, &shape(), b.path(), |_, _| {}).unwrap();
        assert_eq!((wa.reports, wa.values), (wb.reports, wb.values));
        for (fa, fb) in wa.files.iter().zip(&wb.files) {
            assert_eq!(std::fs::read(fa).unwrap(), std::fs::read(fb).unwrap());
        }

        let validator = Validator {
            catalogue: &catalogue,
            areas: Some(&areas),
            today: "2026-11-22".parse().unwrap(),
            departments: None,
        };
        let reporters = areas
            .iter()
            .filter(|a| a.code.level() >= Level::County)
            .count() as u64;
        let mut rows = 0;
        let mut zero = 0;
        let mut soft_warnings = 0;
        for f in &wa.files {
            for r in read(f) {
                let valid = validator
                    .validate(&r)
                    .unwrap_or_else(|v| panic!("{} {}: {v}", r.area, r.period));
                soft_warnings += valid.warnings.len();
                if r.values
                    .iter()
                    .all(|v| v.total == Some(0) || v.metric == "grid.workers")
                {
                    zero += 1;
                }
                rows += 1;
            }
        }
        assert_eq!(rows, wa.reports + wa.corrections);
        assert_eq!(soft_warnings, 0, "the rules are kept");
        // about 3% missing, 5% zero reports, 1% corrected, of 2 × 496 reporters
        let expected = 2 * reporters;
        assert!(
            wa.reports > expected * 94 / 100 && wa.reports < expected,
            "{} of {expected}",
            wa.reports
        );
        assert!(zero > 20 && zero < 100, "{zero} zero reports");
        assert!(
            wa.corrections > 0 && wa.corrections < 40,
            "{}",
            wa.corrections
        );

        // populations: every village, every year the months touch, loadable by the registry
        let villages = areas.descendants_at(fixtures::santai(), Level::Village);
        let mut csv = csv::Reader::from_path(&wa.population).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for r in csv.records() {
            let r = r.unwrap();
            assert!(r[2].parse::<u64>().unwrap() >= 50);
            seen.insert((r[0].to_owned(), r[1].to_owned()));
        }
        assert_eq!(seen.len(), villages.len());
        assert!(
            villages
                .iter()
                .all(|v| seen.contains(&(v.to_string(), "2026".to_owned())))
        );
        let mut areas = areas;
        areas
            .load_population(std::fs::File::open(&wa.population).unwrap())
            .unwrap();
    }
}
