//! `pingan-hub query rollup|compare|trend|completeness`: asks a hub's QueryService and prints
//! the answer as an aligned table (Chinese names, CJK-aware widths), CSV (UTF-8 with a BOM, so
//! Excel and WPS open it right) or JSON (rows with plain field names).

use clap::{Args, Subcommand, ValueEnum};
use pingan_proto::pb::{self, query_service_client::QueryServiceClient};

use crate::tables::{Table, compare_table, completeness_table, rollup_table, trend_table};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// What to ask.
#[derive(Debug, Subcommand)]
pub enum QueryCommand {
    /// An area's own figures and subtree totals, rates and completeness.
    Rollup(QueryArgs),
    /// The areas below an area ranked on a metric or indicator, with 同比, 环比 and completeness.
    Compare(QueryArgs),
    /// One area's series over the last N periods, with 同比.
    Trend(QueryArgs),
    /// Who should have reported, who did (on time or late), and who is missing.
    Completeness(QueryArgs),
}

/// Arguments shared by the queries.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The hub's address (https:// with mutual TLS; http:// with --insecure).
    #[arg(long, env = "PINGAN_HUB", default_value = "https://localhost:7400")]
    pub hub: String,
    #[command(flatten)]
    pub tls: pingan_node::client_tls::ClientTlsArgs,
    /// Division code of the area asked about; in `compare`, 全国 is the whole registry.
    #[arg(long)]
    pub area: String,
    /// 2026-10, 2026-Q3, 2026-H2, 2026, 2026-01..2026-10, 2026-W40, 2026-10-01, ...
    #[arg(long)]
    pub period: String,
    /// Metric or indicator (id or Chinese name); for rollup, repeat to choose metrics.
    #[arg(long)]
    pub metric: Vec<String>,
    /// Level of the areas compared or checked (province, prefecture, county, township, village).
    #[arg(long, default_value = "")]
    pub level: String,
    /// Number of periods in a trend.
    #[arg(long, default_value_t = 12)]
    pub periods: u32,
    /// Rollup: break disaggregated metrics down by category.
    #[arg(long)]
    pub by_category: bool,
    /// Compare: withhold values of areas whose reports are incomplete.
    #[arg(long)]
    pub complete_only: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// A table in an output format.
pub fn render(table: &Table, format: Format) -> String {
    match format {
        Format::Table => table.to_text(),
        Format::Csv => table.to_csv(),
        Format::Json => serde_json::to_string_pretty(&table.to_json()).unwrap_or_default() + "\n",
    }
}

/// Runs a query command against a hub and prints the answer.
pub async fn run(cmd: QueryCommand) -> anyhow::Result<()> {
    let (args, kind) = match &cmd {
        QueryCommand::Rollup(a) => (a, "rollup"),
        QueryCommand::Compare(a) => (a, "compare"),
        QueryCommand::Trend(a) => (a, "trend"),
        QueryCommand::Completeness(a) => (a, "completeness"),
    };
    let tls = args.tls.config(&args.hub)?;
    let channel = pingan_node::client_tls::endpoint(&args.hub, tls.as_ref())?
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach hub {}: {e}", args.hub))?;
    let mut client = QueryServiceClient::new(channel).max_decoding_message_size(64 * 1024 * 1024);
    let one_metric = || -> anyhow::Result<String> {
        match args.metric.as_slice() {
            [m] => Ok(m.clone()),
            _ => anyhow::bail!(
                "{kind} needs exactly one --metric (a metric or an indicator such as 调处成功率)"
            ),
        }
    };
    let status = |e: tonic::Status| anyhow::anyhow!("{:?}: {}", e.code(), e.message());
    let table = match kind {
        "rollup" => rollup_table(
            &client
                .rollup(pb::RollupRequest {
                    area: args.area.clone(),
                    period: args.period.clone(),
                    metrics: args.metric.clone(),
                    by_category: args.by_category,
                })
                .await
                .map_err(status)?
                .into_inner(),
        ),
        "compare" => compare_table(
            &client
                .compare(pb::CompareRequest {
                    area: args.area.clone(),
                    period: args.period.clone(),
                    metric: one_metric()?,
                    level: args.level.clone(),
                    complete_only: args.complete_only,
                })
                .await
                .map_err(status)?
                .into_inner(),
        ),
        "trend" => trend_table(
            &client
                .trend(pb::TrendRequest {
                    area: args.area.clone(),
                    period: args.period.clone(),
                    periods: args.periods,
                    metric: one_metric()?,
                })
                .await
                .map_err(status)?
                .into_inner(),
        ),
        _ => completeness_table(
            &client
                .completeness(pb::CompletenessRequest {
                    area: args.area.clone(),
                    period: args.period.clone(),
                    level: args.level.clone(),
                })
                .await
                .map_err(status)?
                .into_inner(),
        ),
    };
    print!("{}", render(&table, args.format));
    Ok(())
}
