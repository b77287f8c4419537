//! `pingan-bench`: pingan at national scale. `pingan-bench all` runs everything into
//! BENCHMARKS.md: the synthetic national dataset (`dataset`), loaded with `pingan-hub import`,
//! a national month submitted over gRPC (`ingest`), and leaders' questions against DuckDB with
//! the hub's restart time and memory (`queries`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use pingan_domain::{Areas, Catalogue, Period};

use pingan_bench::{dataset, drain, ingest, queries, report};
use pingan_hub::store::StoreAt;

/// The node backlog the benchmark drains (the benchmark issue's 100,000).
const DRAIN_REPORTS: usize = 100_000;

#[derive(Debug, Parser)]
#[command(name = "pingan-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Everything, into one Markdown file: the dataset (made once), its months imported with
    /// `pingan-hub import` (once), the ingest run, and the questions against DuckDB with the
    /// hub's restart time and memory. `pingan-hub` is taken from next to this program.
    All(AllArgs),
    /// Leaders' questions on an imported store, against DuckDB on the same raw rows.
    Queries {
        #[arg(long, default_value = "domain/data/divisions-national")]
        divisions: PathBuf,
        /// The hub's data directory, with the dataset's months imported.
        #[arg(long)]
        data: PathBuf,
        /// The dataset directory those months came from.
        #[arg(long)]
        dataset: PathBuf,
        #[arg(long, default_value_t = 100)]
        runs: usize,
        #[arg(long, default_value = "python3")]
        python: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The questions of `queries`, asked of a hub already serving (e.g. one under `perf`): each
    /// one's p50 and p99 on stderr. No DuckDB, nothing compared.
    Ask {
        /// The hub's gRPC address, serving without TLS.
        #[arg(long, default_value = "http://127.0.0.1:7499")]
        hub: String,
        /// The dataset directory the hub's months came from (for the month asked about).
        #[arg(long)]
        dataset: PathBuf,
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
    /// Write the synthetic dataset (wide CSV per month, corrections, populations) for every
    /// county, township and village of a division registry.
    Dataset {
        /// Division codes in the national CSV format.
        #[arg(long, default_value = "domain/data/divisions-national")]
        divisions: PathBuf,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// First month.
        #[arg(long, default_value = "2024-11")]
        first: Period,
        #[arg(long, default_value_t = 24)]
        months: u32,
        #[arg(long, default_value_t = 20261123)]
        seed: u64,
    },
    /// The ingest twice, alone and with every township of the registry ranked in a loop beside
    /// it: what leaders' questions cost the receipts (p99 ratio, target ≤ 1.5×). `all` runs it
    /// too, after its ingest.
    ReceiptsUnderRanking {
        #[command(flatten)]
        run: IngestRun,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// A node's backlog: an outbox of N village reports delivered by the real `pingan-node run`
    /// to `pingan-hub serve` on an empty store (both taken from next to this program).
    Drain {
        #[arg(long, default_value = "domain/data/divisions-national")]
        divisions: PathBuf,
        #[arg(long, default_value_t = DRAIN_REPORTS)]
        reports: usize,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Simulated nodes submit one month for every reporter over mutual TLS, with durable
    /// receipts; the no-work RPC's rate and freshness are measured in the same run.
    Ingest {
        #[command(flatten)]
        run: IngestRun,
        /// Seconds the Ping baseline runs.
        #[arg(long, default_value_t = 5)]
        ping_seconds: u64,
        /// Also write the Markdown section to this file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `pingan-bench all`'s options.
#[derive(Debug, Args)]
struct AllArgs {
    #[arg(long, default_value = "domain/data/divisions-national")]
    divisions: PathBuf,
    /// Where the dataset and the hub's store are kept (and reused by the next run).
    #[arg(long, default_value = "bench-work")]
    work: PathBuf,
    #[arg(long, default_value_t = 24)]
    months: u32,
    #[arg(long, default_value_t = 100)]
    runs: usize,
    #[arg(long, default_value = "python3")]
    python: String,
    /// Leave out the ingest run (e.g. when only the questions changed).
    #[arg(long)]
    skip_ingest: bool,
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
    /// Run on PostgreSQL instead of SQLite: the URL of any database on a server where this
    /// user may create databases; the benchmark makes its own there (`pingan_bench`, kept
    /// for the next run like the SQLite store, and `pingan_bench_ingest`,
    /// `pingan_bench_drain`, made anew each run).
    #[arg(long, value_name = "postgres://...")]
    store: Option<String>,
}

/// What an ingest run submits, and how many at once.
#[derive(Debug, Args)]
struct IngestRun {
    /// Division codes in the national CSV format; `builtin` for the 三台县 extract.
    #[arg(long, default_value = "domain/data/divisions-national")]
    divisions: PathBuf,
    /// Submissions in flight per simulated node (one node per province).
    #[arg(long, default_value_t = 32)]
    in_flight: usize,
    /// Submit only this many reports (a quick run); default: every reporter.
    #[arg(long)]
    limit: Option<usize>,
    /// Start from a copy of this hub data directory (e.g. ~/.cache/pingan-bench/hub, the
    /// dataset imported): the ingest with its months already stored.
    #[arg(long)]
    history: Option<PathBuf>,
    /// The month submitted (unary), and the one after it (SubmitBatch): both must have ended,
    /// and be new to the history's hub.
    #[arg(long, default_value = "2026-10")]
    month: Period,
    /// Send the values by metric name, as nodes did before the compact form (PackedValues).
    #[arg(long)]
    named: bool,
}

impl IngestRun {
    /// The run's settings, with the Ping baseline running for `ping_for`.
    fn config(&self, ping_for: std::time::Duration) -> ingest::IngestConfig {
        ingest::IngestConfig {
            in_flight: self.in_flight,
            limit: self.limit,
            ping_for,
            month: self.month,
            history: self.history.clone(),
            packed: !self.named,
            ..Default::default()
        }
    }
}

/// The `pingan-hub` binary next to this one (same build).
fn hub_binary() -> anyhow::Result<PathBuf> {
    let hub = std::env::current_exe()?.with_file_name("pingan-hub");
    anyhow::ensure!(
        hub.exists(),
        "{} not found: build it with this program (cargo build --release -p pingan-hub -p pingan-node -p pingan-bench)",
        hub.display()
    );
    Ok(hub)
}

fn load_areas(
    divisions: &std::path::Path,
    population: Option<&std::path::Path>,
) -> anyhow::Result<Areas> {
    let mut areas = Areas::load_dir(divisions)
        .map_err(|e| anyhow::anyhow!("loading {}: {e}", divisions.display()))?;
    if let Some(p) = population {
        let file = std::fs::File::open(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
        areas
            .load_population(std::io::BufReader::new(file))
            .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
    }
    Ok(areas)
}

/// The questions' settings for a national dataset: 四川省, 三台县, the dataset's last month.
fn queries_config(
    divisions: PathBuf,
    data: PathBuf,
    dataset: PathBuf,
    runs: usize,
    python: String,
) -> anyhow::Result<queries::QueriesConfig> {
    let last = std::fs::read_dir(&dataset)
        .map_err(|e| anyhow::anyhow!("{}: {e}", dataset.display()))?
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_prefix("reports-")?
                .strip_suffix(".csv")?
                .parse::<Period>()
                .ok()
        })
        .max()
        .ok_or_else(|| anyhow::anyhow!("no reports-*.csv in {}", dataset.display()))?;
    Ok(queries::QueriesConfig {
        hub: hub_binary()?,
        data,
        divisions,
        dataset,
        runs,
        python,
        province: "51".into(),
        county: "510722".into(),
        month: last,
        store: None,
    })
}

/// Prints a report section, and writes it to `out` too when given.
fn emit(text: &str, out: Option<&std::path::Path>) -> anyhow::Result<()> {
    print!("{text}");
    match out {
        Some(path) => write_out(path, text),
        None => Ok(()),
    }
}

fn write_out(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
}

/// mimalloc: glibc's malloc and free were a fifth of a unary `Submit`'s CPU (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::All(args) => all(args),
        Command::Queries {
            divisions,
            data,
            dataset,
            runs,
            python,
            out,
        } => queries_only(divisions, data, dataset, runs, python, out),
        Command::Ingest {
            run,
            ping_seconds,
            out,
        } => ingest_only(&run, ping_seconds, out),
        Command::Ask { hub, dataset, runs } => {
            let cfg = queries_config(PathBuf::new(), PathBuf::new(), dataset, runs, String::new())?;
            tokio::runtime::Runtime::new()?.block_on(queries::ask_only(
                &hub,
                &cfg,
                &Catalogue::builtin(),
            ))
        }
        Command::ReceiptsUnderRanking { run, out } => receipts_under_ranking(&run, out),
        Command::Drain {
            divisions,
            reports,
            out,
        } => {
            let machine = report::Machine::here();
            let areas = load_areas(&divisions, None)?;
            let d = drain::run(&hub_binary()?, &divisions, None, &areas, reports, None)?;
            emit(&report::drain_markdown(&machine, &d), out.as_deref())
        }
        Command::Dataset {
            divisions,
            out,
            first,
            months,
            seed,
        } => dataset_only(divisions, out, first, months, seed),
    }
}

/// `pingan-bench all`.
fn all(args: AllArgs) -> anyhow::Result<()> {
    let AllArgs {
        divisions,
        work,
        months,
        runs,
        python,
        skip_ingest,
        out,
        store,
    } = args;
    let postgres = store.as_deref();
    let machine = report::Machine::here();
    let hub = hub_binary()?;
    let dataset_dir = work.join("dataset");
    let started = std::time::Instant::now();
    let areas = load_areas(&divisions, None)?;
    let registry = format!("{} areas from {}", areas.len(), divisions.display());
    let store_name = match postgres {
        Some(server) => format!("PostgreSQL {}", postgres_version(server)?),
        None => "SQLite".to_owned(),
    };
    let mut text = format!(
        "# pingan benchmarks{}\n\nWritten by `scripts/benchmarks{}` (`pingan-bench all`) on {}: {} cores, {:.0} GiB, {} profile, the hub's store on {store_name}. The national registry: {registry}. Targets are the benchmark issue's; a missed one is marked, and the profile behind each miss (what `perf record` of it shows takes the time) is written up under the last run in README.md's Benchmarks section.\n\n",
        if postgres.is_some() {
            " on PostgreSQL"
        } else {
            ""
        },
        if postgres.is_some() { "-postgres" } else { "" },
        machine.date,
        machine.cores,
        machine.memory_gib,
        machine.profile
    );
    let population = dataset_dir.join("population.csv");
    ensure_dataset(&areas, months, &dataset_dir, &population)?;
    let from = ImportFrom {
        hub: &hub,
        divisions: &divisions,
        dataset: &dataset_dir,
        population: &population,
    };
    // the SQLite store, imported once and kept; on PostgreSQL it is what is moved there
    let sqlite_data = work.join("hub");
    let imported = work.join("imported");
    ensure_imported(&from, &sqlite_data, &imported, None, None)?;
    let import_said = std::fs::read_to_string(&imported).unwrap_or_default();
    // on PostgreSQL the data directory keeps the saved rollups, the database the rest
    let (data, store_url) = match postgres {
        Some(server) => {
            let data = work.join("hub-postgres");
            let url = ensure_migrated(&hub, &sqlite_data, &data, server, &work)?;
            // the import's own rate on PostgreSQL: the first month into an empty database
            let first = work.join("imported-postgres-1m");
            let _ = std::fs::remove_file(&first);
            let scratch = tempfile::tempdir()?;
            let import_url = StoreAt::new_database(server, "pingan_bench_import", true)?;
            ensure_imported(&from, scratch.path(), &first, Some(1), Some(&import_url))?;
            let said = std::fs::read_to_string(&first).unwrap_or_default();
            let migrated = std::fs::read_to_string(work.join("migrated-postgres"))?;
            text += &format!(
                "The dataset ({months} months, `pingan-bench dataset`) was imported into SQLite with `pingan-hub import` in {} and moved into PostgreSQL with `pingan-hub migrate` in {} (copied, then every period counted and digested on both sides). `pingan-hub import` straight into PostgreSQL, the first month into an empty database:\n\n",
                import_said.lines().next().unwrap_or_default().trim(),
                migrated.lines().next().unwrap_or_default().trim()
            );
            text += &import_growth(&said);
            (data, Some(url))
        }
        None => {
            text += &format!(
                "The dataset ({months} months, `pingan-bench dataset`) was loaded with `pingan-hub import` in {} (every report validated, stored with durable group commits).\n\n",
                import_said.lines().next().unwrap_or_default().trim()
            );
            text += &import_growth(&import_said);
            (sqlite_data, None)
        }
    };
    if !skip_ingest {
        eprintln!("== ingest: one national month over gRPC with mutual TLS");
        // one national month on a new store, with or without rankings asked beside it
        let store = || -> anyhow::Result<Option<StoreAt>> {
            Ok(postgres
                .map(|server| StoreAt::new_database(server, "pingan_bench_ingest", true))
                .transpose()?
                .map(StoreAt::Postgres))
        };
        let national_ingest = |rank_during: bool| -> anyhow::Result<ingest::IngestResult> {
            ingest_once(
                areas.clone(),
                &ingest::IngestConfig {
                    store: store()?,
                    rank_during,
                    ..Default::default()
                },
            )
        };
        let result = national_ingest(false)?;
        text += &report::ingest_markdown(&machine, &registry, &result);
        text.push('\n');
        eprintln!("== the same ingest with every township ranked in a loop beside it");
        let ranked = national_ingest(true)?;
        let paced = paced_pair(&areas, &ingest::IngestConfig::default(), store)?;
        text += &report::receipts_under_ranking_markdown(
            &machine,
            &registry,
            (&result, &ranked),
            (&paced.0, &paced.1),
        );
        text.push('\n');
        eprintln!("== a node's backlog of {DRAIN_REPORTS} reports drained by pingan-node run");
        let drain_url = postgres
            .map(|server| StoreAt::new_database(server, "pingan_bench_drain", true))
            .transpose()?;
        let drained = drain::run(
            &hub,
            &divisions,
            Some(&population),
            &areas,
            DRAIN_REPORTS,
            drain_url.as_deref(),
        )?;
        text += &report::drain_markdown(&machine, &drained);
        if postgres.is_none() {
            let mut grown = vec![(0, result)];
            // two months new to every hub (the two before the dataset's: the ones after it may
            // not have ended), onto hubs holding its first 1, 12 and all months
            let month = dataset::Shape::default().first.shift(-2);
            for k in [1u32, 12, months] {
                if k > months || grown.iter().any(|(m, _)| *m == k) {
                    continue;
                }
                let history = if k == months {
                    // on SQLite the main hub's data directory is the imported store
                    data.clone()
                } else {
                    first_months_hub(&from, &work, k)?
                };
                eprintln!(
                    "== ingest of {month} onto a hub holding the dataset's first {k} month(s)"
                );
                let r = ingest_once(
                    areas.clone(),
                    &ingest::IngestConfig {
                        month,
                        probes: 0,
                        history: Some(history),
                        ..Default::default()
                    },
                )?;
                grown.push((k, r));
            }
            text += &report::ingest_growth_markdown(&grown);
        }
    }
    eprintln!("== queries against DuckDB, restart, memory");
    let areas = load_areas(&divisions, Some(&population))?;
    let mut cfg = queries_config(divisions, data, dataset_dir, runs, python)?;
    cfg.store = store_url;
    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(queries::run(&cfg, &areas))?;
    text += &report::queries_markdown(&machine, &registry, &result);
    // how memory and the snapshot grow with the months stored: hubs holding the first 1 and 12
    // months (imported once into their own stores beside the main one), then the main one; on
    // SQLite only (the rollups are the same whichever store they are read from)
    let mut growth = Vec::new();
    for k in [1u32, 12]
        .into_iter()
        .filter(|k| *k < months && postgres.is_none())
    {
        eprintln!("== footprint with the first {k} months stored");
        let from = ImportFrom {
            hub: &hub,
            divisions: &cfg.divisions,
            dataset: &cfg.dataset,
            population: &population,
        };
        let data_k = first_months_hub(&from, &work, k)?;
        let cfg_k = queries::QueriesConfig {
            data: data_k,
            ..cfg.clone()
        };
        growth.push(queries::footprint(&cfg_k, k as usize)?);
    }
    growth.push(result.footprint());
    text += &report::footprint_markdown(&growth);
    text += &format!(
        "\nThe whole run took {:.0} min.\n",
        started.elapsed().as_secs_f64() / 60.0
    );
    if postgres.is_none() {
        text += "\nThe same benchmarks with the hub's store on PostgreSQL: `scripts/benchmarks-postgres` writes [BENCHMARKS-postgres.md](BENCHMARKS-postgres.md).\n";
    }
    write_out(&out, &text)?;
    print!("{text}");
    result.ensure_equal()?;

    Ok(())
}

/// Moves the SQLite store in `sqlite_data` into the database `pingan_bench` on `server` with
/// `pingan-hub migrate`, once (`WORK/migrated-postgres` records how long it took; delete it to
/// move again); the database's URL.
fn ensure_migrated(
    hub: &std::path::Path,
    sqlite_data: &std::path::Path,
    data: &std::path::Path,
    server: &str,
    work: &std::path::Path,
) -> anyhow::Result<String> {
    let marker = work.join("migrated-postgres");
    if marker.exists() {
        return Ok(StoreAt::database_on(server, "pingan_bench")?);
    }
    // a new database, and no rollups saved from an older one
    let _ = std::fs::remove_dir_all(data);
    let url = StoreAt::new_database(server, "pingan_bench", true)?;
    eprintln!(
        "== pingan-hub migrate: {} into PostgreSQL",
        sqlite_data.display()
    );
    let t = std::time::Instant::now();
    let status = std::process::Command::new(hub)
        .arg("migrate")
        .arg("--from")
        .arg(sqlite_data)
        .arg("--to")
        .arg(&url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .status()?;
    anyhow::ensure!(status.success(), "pingan-hub migrate failed: {status}");
    write_out(&marker, &format!("{:.0} s\n", t.elapsed().as_secs_f64()))?;
    Ok(url)
}

/// The PostgreSQL server's version, as the report names it.
fn postgres_version(server: &str) -> anyhow::Result<String> {
    let db = pingan_hub::store::db::Db::open(&StoreAt::Postgres(server.to_owned()))?;
    let v = db
        .one("SELECT current_setting('server_version')", &[], |r| {
            r.string(0)
        })?
        .unwrap_or_default();
    Ok(v)
}

/// `pingan-bench queries`.
fn queries_only(
    divisions: PathBuf,
    data: PathBuf,
    dataset: PathBuf,
    runs: usize,
    python: String,
    out: Option<PathBuf>,
) -> anyhow::Result<()> {
    let machine = report::Machine::here();
    let areas = load_areas(&divisions, Some(&dataset.join("population.csv")))?;
    let registry = format!("{} areas from {}", areas.len(), divisions.display());
    let cfg = queries_config(divisions, data, dataset, runs, python)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(queries::run(&cfg, &areas))?;
    let text = report::queries_markdown(&machine, &registry, &result);
    emit(&text, out.as_deref())?;
    result.ensure_equal()?;

    Ok(())
}

/// A registry by path, or `builtin` for the 三台县 extract; and how the report names it.
fn registry(divisions: &std::path::Path) -> anyhow::Result<(Areas, String)> {
    if divisions.as_os_str() == "builtin" {
        return Ok((
            pingan_domain::fixtures::santai_areas(),
            "三台县 (510722, built-in extract)".to_owned(),
        ));
    }
    let areas = load_areas(divisions, None)?;
    let registry = format!("{} areas from {}", areas.len(), divisions.display());
    Ok((areas, registry))
}

/// One ingest run over `areas`, with progress on stderr.
fn ingest_once(areas: Areas, cfg: &ingest::IngestConfig) -> anyhow::Result<ingest::IngestResult> {
    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(ingest::run(
        areas,
        Catalogue::builtin(),
        cfg,
        |done, total| eprint!("\r  {done} of {total} reports acknowledged"),
    ))?;
    eprintln!();
    Ok(result)
}

/// The steady load of the paced pair ([`paced_pair`]): a quarter of what the hub takes
/// unary on these two cores, far above any real month's (665,000 villages over days).
const PACE: f64 = 5_000.0;
/// How many reports each run of the paced pair sends (20 s at [`PACE`]).
const PACED_REPORTS: usize = 100_000;

/// The same ingest at a steady [`PACE`] (open loop), alone and then with every township
/// ranked in a loop beside it: what a question costs the receipts when the hub is not already
/// full, which a closed loop at full load cannot show (there a ranking's CPU only lengthens
/// the queue).
/// `store` gives each run its own (`None`: SQLite in a temporary directory).
fn paced_pair(
    areas: &Areas,
    cfg: &ingest::IngestConfig,
    store: impl Fn() -> anyhow::Result<Option<StoreAt>>,
) -> anyhow::Result<(ingest::IngestResult, ingest::IngestResult)> {
    let paced = ingest::IngestConfig {
        store: store()?,
        pace: Some(PACE),
        limit: Some(cfg.limit.map_or(PACED_REPORTS, |l| l.min(PACED_REPORTS))),
        rounds: 1,
        ping_for: std::time::Duration::from_millis(200),
        batch: false,
        ..cfg.clone()
    };
    eprintln!("== the ingest at a steady {PACE} reports/s, alone");
    let quiet = ingest_once(areas.clone(), &paced)?;
    eprintln!("== the same with every township ranked in a loop beside it");
    let ranked = ingest_once(
        areas.clone(),
        &ingest::IngestConfig {
            rank_during: true,
            store: store()?,
            ..paced
        },
    )?;
    Ok((quiet, ranked))
}

/// `pingan-bench ingest`.
fn ingest_only(run: &IngestRun, ping_seconds: u64, out: Option<PathBuf>) -> anyhow::Result<()> {
    let (areas, registry) = registry(&run.divisions)?;
    let cfg = run.config(std::time::Duration::from_secs(ping_seconds));
    let result = ingest_once(areas, &cfg)?;
    let text = report::ingest_markdown(&report::Machine::here(), &registry, &result);
    emit(&text, out.as_deref())?;
    Ok(())
}

/// `pingan-bench receipts-under-ranking`: the same ingest alone, then beside national rankings.
fn receipts_under_ranking(run: &IngestRun, out: Option<PathBuf>) -> anyhow::Result<()> {
    let (areas, registry) = registry(&run.divisions)?;
    let cfg = run.config(std::time::Duration::from_millis(200));
    eprintln!("== the ingest alone");
    let quiet = ingest_once(areas.clone(), &cfg)?;
    eprintln!("== the same ingest with every township ranked in a loop beside it");
    let ranked = ingest_once(
        areas.clone(),
        &ingest::IngestConfig {
            rank_during: true,
            ..cfg.clone()
        },
    )?;
    let paced = paced_pair(&areas, &cfg, || Ok(None))?;
    let text = report::receipts_under_ranking_markdown(
        &report::Machine::here(),
        &registry,
        (&quiet, &ranked),
        (&paced.0, &paced.1),
    );
    emit(&text, out.as_deref())?;
    Ok(())
}

/// `pingan-bench dataset`.
fn dataset_only(
    divisions: PathBuf,
    out: PathBuf,
    first: Period,
    months: u32,
    seed: u64,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let areas = load_areas(&divisions, None)?;
    let shape = dataset::Shape {
        first,
        months,
        seed,
        ..Default::default()
    };
    let w = dataset::write(
        &areas,
        &Catalogue::builtin(),
        &shape,
        &out,
        dataset::print_progress,
    )?;
    println!(
        "{} reports, {} corrections, {} values in {} files under {} ({:.1?}); populations in {}",
        w.reports,
        w.corrections,
        w.values,
        w.files.len(),
        out.display(),
        started.elapsed(),
        w.population.display()
    );
    println!(
        "load: for f in {}/reports-*.csv ...; pingan-hub import --file $f --divisions {} --population {}",
        out.display(),
        divisions.display(),
        w.population.display()
    );

    Ok(())
}

/// Writes the dataset into `dataset_dir` unless it is there already.
fn ensure_dataset(
    areas: &Areas,
    months: u32,
    dataset_dir: &std::path::Path,
    population: &std::path::Path,
) -> anyhow::Result<()> {
    let shape = dataset::Shape {
        months,
        ..Default::default()
    };
    if !population.exists() {
        eprintln!("== the dataset: {months} months from {}", shape.first);
        let w = dataset::write(
            areas,
            &Catalogue::builtin(),
            &shape,
            dataset_dir,
            dataset::print_progress,
        )?;
        eprintln!("{} reports, {} corrections", w.reports, w.corrections);
    }
    Ok(())
}

/// What `pingan-hub import` is run with: the binary, the registry, the dataset and its
/// populations.
#[derive(Clone, Copy)]
struct ImportFrom<'a> {
    hub: &'a std::path::Path,
    divisions: &'a std::path::Path,
    dataset: &'a std::path::Path,
    population: &'a std::path::Path,
}

/// The data directory of a hub holding the dataset's first `k` months (`hub-{k}m` in `work`),
/// imported into its own store the first time it is asked for.
fn first_months_hub(
    from: &ImportFrom<'_>,
    work: &std::path::Path,
    k: u32,
) -> anyhow::Result<PathBuf> {
    let data = work.join(format!("hub-{k}m"));
    ensure_imported(
        from,
        &data,
        &work.join(format!("imported-{k}m")),
        Some(k as usize),
        None,
    )?;
    Ok(data)
}

/// Imports the dataset's files (all, or the first `months` months) into the hub's store with
/// `pingan-hub import`, once: `imported` records how long it took.
fn ensure_imported(
    from: &ImportFrom<'_>,
    data: &std::path::Path,
    imported: &std::path::Path,
    months: Option<usize>,
    store: Option<&str>,
) -> anyhow::Result<()> {
    let ImportFrom {
        hub,
        divisions,
        dataset: dataset_dir,
        population,
    } = *from;
    if !imported.exists() {
        let mut files = Vec::new();
        let mut names: Vec<String> = std::fs::read_dir(dataset_dir)?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("reports-"))
            .collect();
        names.sort();
        names.truncate(months.unwrap_or(usize::MAX));
        for n in names {
            files.push(dataset_dir.join(&n));
            let c = dataset_dir.join(n.replace("reports-", "corrections-"));
            if c.exists() {
                files.push(c);
            }
        }
        eprintln!(
            "== pingan-hub import: {} files into {}",
            files.len(),
            store.map_or_else(
                || data.display().to_string(),
                |s| StoreAt::Postgres(s.into()).shown()
            )
        );
        let t = std::time::Instant::now();
        let out = std::process::Command::new(hub)
            .arg("import")
            .arg("--data")
            .arg(data)
            .arg("--divisions")
            .arg(divisions)
            .arg("--population")
            .arg(population)
            .args(store.map(|s| ["--store", s]).into_iter().flatten())
            .arg("--file")
            .args(&files)
            .stderr(std::process::Stdio::inherit())
            .output()?;
        let said = String::from_utf8_lossy(&out.stdout);
        print!("{said}");
        anyhow::ensure!(
            out.status.success(),
            "pingan-hub import failed: {}",
            out.status
        );
        // the first line: the whole import; then each file's reports and seconds, as the
        // import said them ("<file>：读入 N 份报表，用时 Xs：...")
        let mut text = format!("{:.0} s\n", t.elapsed().as_secs_f64());
        for line in said.lines() {
            if let Some((file, n, secs)) = per_file(line) {
                text += &format!("{file}\t{n}\t{secs}\n");
            }
        }
        write_out(imported, &text)?;
    }
    Ok(())
}

/// A file's line of `pingan-hub import`'s summary: (file name, reports read, seconds).
fn per_file(line: &str) -> Option<(String, u64, f64)> {
    let (path, rest) = line.split_once("：读入 ")?;
    let (n, rest) = rest.split_once(" 份报表，用时 ")?;
    // a Duration as Debug writes it: "18.6s", "950.0ms"
    let took = rest.split('：').next()?;
    let secs = match took.strip_suffix("ms") {
        Some(ms) => ms.parse::<f64>().ok()? / 1000.0,
        None => took.strip_suffix('s')?.parse().ok()?,
    };
    let name = std::path::Path::new(path)
        .file_name()?
        .to_string_lossy()
        .into_owned();
    Some((name, n.parse().ok()?, secs))
}

/// How the import's rate went as months piled up: each month's reports per second (the
/// corrections files are small and left out), the first, every sixth and the last month.
fn import_growth(imported: &str) -> String {
    let months: Vec<(String, u64, f64)> = imported
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((
                f.next()?.to_owned(),
                f.next()?.parse().ok()?,
                f.next()?.parse().ok()?,
            ))
        })
        .filter(|(name, _, _)| name.starts_with("reports-"))
        .collect();
    if months.is_empty() {
        return String::new();
    }
    let total: u64 = months.iter().map(|m| m.1).sum();
    let secs: f64 = months.iter().map(|m| m.2).sum();
    let rate = total as f64 / secs;
    let mut out = format!(
        "### Import, and how its rate goes as history grows\n\n\
         `pingan-hub import` of the dataset's monthly files one after the other (each month's \
         rate with every earlier month already stored).\n\n\
         | measure | value | target | |\n|---|---:|---|---|\n\
         | reports imported (monthly files) | {total} | | |\n\
         | reports/s over all months | {rate:.0} | ≥ 50,000 | {} |\n\n\
         | month (already stored before it) | reports | s | reports/s |\n|---|---:|---:|---:|\n",
        if rate >= 50_000.0 {
            "met"
        } else {
            "**missed**"
        }
    );
    for (i, (name, n, s)) in months.iter().enumerate() {
        if i == 0 || (i + 1) % 6 == 0 || i + 1 == months.len() {
            out += &format!(
                "| {} ({} months before) | {n} | {s:.1} | {:.0} |\n",
                name.trim_start_matches("reports-").trim_end_matches(".csv"),
                i,
                *n as f64 / s
            );
        }
    }
    let (first, last) = (&months[0], &months[months.len() - 1]);
    let (r0, r1) = (first.1 as f64 / first.2, last.1 as f64 / last.2);
    if r1 < r0 * 0.8 {
        out += &format!(
            "\n**The rate falls as history grows**: {r0:.0}/s for the first month, {r1:.0}/s for the last.\n"
        );
    }
    out + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_imports_summary_lines_are_read_and_the_growth_table_says_the_rates() {
        let line = "/w/dataset/reports-2026-10.csv：读入 644846 份报表，用时 9.4s：新存 644846，已存过 0，拒收 0 (644846 reports read: ...)";
        assert_eq!(
            per_file(line),
            Some(("reports-2026-10.csv".to_owned(), 644846, 9.4))
        );
        let short = "c/corrections-2026-10.csv：读入 6473 份报表，用时 950.0ms：新存 6473，已存过 0，拒收 0";
        assert_eq!(
            per_file(short),
            Some(("corrections-2026-10.csv".to_owned(), 6473, 0.95))
        );
        assert_eq!(per_file("import: 第 19300 行"), None);
        let said = "30 s\nreports-2025-01.csv\t100000\t1.0\ncorrections-2025-01.csv\t1000\t0.1\nreports-2025-02.csv\t100000\t4.0\n";
        let table = import_growth(said);
        assert!(
            table.contains("| reports/s over all months | 40000 | ≥ 50,000 | **missed** |"),
            "{table}"
        );
        assert!(
            table.contains("| 2025-01 (0 months before) | 100000 | 1.0 | 100000 |"),
            "{table}"
        );
        assert!(
            table.contains("| 2025-02 (1 months before) | 100000 | 4.0 | 25000 |"),
            "{table}"
        );
        assert!(
            table.contains("**The rate falls as history grows**"),
            "{table}"
        );
    }
}
