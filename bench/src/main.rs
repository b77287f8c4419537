//! `pingan-bench`: pingan at national scale. So far: `pingan-bench dataset`, the synthetic national
//! dataset that `pingan-hub import` loads, and `pingan-bench ingest`, a national month submitted
//! over gRPC (the query, restart and DuckDB runs are still to come).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use pingan_proto::{Areas, Catalogue, Period};

use pingan_bench::{dataset, ingest, report};

#[derive(Debug, Parser)]
#[command(name = "pingan-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write the synthetic dataset (wide CSV per month, corrections, populations) for every
    /// county, township and village of a division registry.
    Dataset {
        /// Division codes in the national CSV format.
        #[arg(long, default_value = "../shared/data/divisions")]
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
    /// Simulated nodes submit one month for every reporter over mutual TLS, with durable
    /// receipts; the no-work RPC's rate and freshness are measured in the same run.
    Ingest {
        /// Division codes in the national CSV format; `builtin` for the 三台县 extract.
        #[arg(long, default_value = "../shared/data/divisions")]
        divisions: PathBuf,
        /// Submissions in flight per simulated node (one node per province).
        #[arg(long, default_value_t = 32)]
        in_flight: usize,
        /// Submit only this many reports (a quick run); default: every reporter.
        #[arg(long)]
        limit: Option<usize>,
        /// Seconds the Ping baseline runs.
        #[arg(long, default_value_t = 5)]
        ping_seconds: u64,
        /// Also write the Markdown section to this file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Ingest {
            divisions,
            in_flight,
            limit,
            ping_seconds,
            out,
        } => {
            let (areas, registry) = if divisions.as_os_str() == "builtin" {
                (
                    pingan_proto::fixtures::santai_areas(),
                    "三台县 (510722, built-in extract)".to_owned(),
                )
            } else {
                let areas = Areas::load_dir(&divisions)
                    .map_err(|e| anyhow::anyhow!("loading {}: {e}", divisions.display()))?;
                let registry = format!("{} areas from {}", areas.len(), divisions.display());
                (areas, registry)
            };
            let cfg = ingest::IngestConfig {
                in_flight,
                limit,
                ping_for: std::time::Duration::from_secs(ping_seconds),
                ..Default::default()
            };
            let runtime = tokio::runtime::Runtime::new()?;
            let result = runtime.block_on(ingest::run(
                areas,
                Catalogue::builtin(),
                &cfg,
                |done, total| eprint!("\r  {done} of {total} reports acknowledged"),
            ))?;
            eprintln!();
            let text = report::ingest_markdown(&report::Machine::here(), &registry, &result);
            print!("{text}");
            if let Some(path) = out {
                std::fs::write(&path, &text)
                    .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
            }
        }
        Command::Dataset {
            divisions,
            out,
            first,
            months,
            seed,
        } => {
            let started = std::time::Instant::now();
            let areas = Areas::load_dir(&divisions)
                .map_err(|e| anyhow::anyhow!("loading {}: {e}", divisions.display()))?;
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
        }
    }
    Ok(())
}
