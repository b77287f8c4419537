//! `pingan-bench`: pingan at national scale. So far: `pingan-bench dataset`, the synthetic national
//! dataset that `pingan-hub import` loads (the timed runs are still to come).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use pingan_proto::{Areas, Catalogue, Period};

use pingan_bench::dataset;

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
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
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
