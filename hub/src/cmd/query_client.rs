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

/// A leader's (viewer's) certificate. Its environment variables are the viewer's own, so an
/// office that exported a node's `PINGAN_CERT`/`PINGAN_KEY` does not query with the node's
/// certificate by mistake.
#[derive(Debug, Clone, Default, Args)]
pub struct ViewerTlsArgs {
    /// The deployment's CA certificate (PEM).
    #[arg(long, env = "PINGAN_CA")]
    pub ca: Option<std::path::PathBuf>,
    /// The viewer's certificate (PEM), from `pingan-hub certs issue --role viewer`.
    #[arg(long, env = "PINGAN_VIEWER_CERT")]
    pub cert: Option<std::path::PathBuf>,
    /// The viewer's private key (PEM).
    #[arg(long, env = "PINGAN_VIEWER_KEY")]
    pub key: Option<std::path::PathBuf>,
    /// Plaintext gRPC to an http:// hub serving --insecure.
    #[arg(long, env = "PINGAN_INSECURE")]
    pub insecure: bool,
}

impl ViewerTlsArgs {
    fn client(&self) -> pingan_outbox::client_tls::ClientTlsArgs {
        pingan_outbox::client_tls::ClientTlsArgs {
            ca: self.ca.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
            insecure: self.insecure,
        }
    }
}

/// Arguments shared by the queries.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The hub's address (https:// with mutual TLS; http:// with --insecure).
    #[arg(long, env = "PINGAN_HUB", default_value = "https://localhost:7400")]
    pub hub: String,
    #[command(flatten)]
    pub tls: ViewerTlsArgs,
    /// Division code of the area asked about; in `compare`, 全国 is the whole registry.
    #[arg(long)]
    pub area: String,
    /// 2026-10, 2026-Q3, 2026-H2, 2026, 2026-01..2026-10, 2026-W40, 2026-10-01; also
    /// 2026/10, 2026年10月, 2026年第三季度, 2026年1月至2026年10月.
    #[arg(long)]
    pub period: String,
    /// Metric or indicator (id or Chinese name); for rollup, repeat to choose which.
    #[arg(long)]
    pub metric: Vec<String>,
    /// Level of the areas compared or checked (province, prefecture, county, township, village,
    /// or 省 市 县 乡镇 村社区).
    #[arg(long)]
    pub level: Option<pingan_proto::Level>,
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
    let tls = args.tls.client().config(&args.hub)?;
    let period = pingan_proto::Span::parse_typed(&args.period)?.to_string();
    let level = args
        .level
        .map(|l| l.as_str().to_owned())
        .unwrap_or_default();
    let channel = pingan_outbox::client_tls::endpoint(&args.hub, tls.as_ref())?
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!(pingan_outbox::client_tls::describe(&args.hub, &e)))?;
    let mut client = QueryServiceClient::new(channel).max_decoding_message_size(64 * 1024 * 1024);
    let one_metric = || -> anyhow::Result<String> {
        match args.metric.as_slice() {
            [m] => Ok(m.clone()),
            _ => anyhow::bail!("{kind} 需要且只需要一个 --metric（指标或比率，如 调处成功率）"),
        }
    };
    let status = |e: tonic::Status| match std::error::Error::source(&e) {
        Some(_) => anyhow::anyhow!(pingan_outbox::client_tls::describe(&args.hub, &e)),
        None => anyhow::anyhow!("{:?}: {}", e.code(), e.message()),
    };
    let table = match kind {
        "rollup" => rollup_table(
            &client
                .rollup(pb::RollupRequest {
                    area: args.area.clone(),
                    period: period.clone(),
                    metrics: args.metric.clone(),
                    by_category: args.by_category,
                })
                .await
                .map_err(status)?
                .into_inner(),
        ),
        "compare" => {
            // a large comparison comes in pages: all of them make the table
            let mut req = pb::CompareRequest {
                area: args.area.clone(),
                period: period.clone(),
                metric: one_metric()?,
                level: level.clone(),
                complete_only: args.complete_only,
                ..Default::default()
            };
            let mut reply = client
                .compare(req.clone())
                .await
                .map_err(status)?
                .into_inner();
            while !reply.next_page_token.is_empty() {
                req.page_token = std::mem::take(&mut reply.next_page_token);
                let more = client
                    .compare(req.clone())
                    .await
                    .map_err(status)?
                    .into_inner();
                reply.rows.extend(more.rows);
                reply.next_page_token = more.next_page_token;
            }
            compare_table(&reply)
        }
        "trend" => trend_table(
            &client
                .trend(pb::TrendRequest {
                    area: args.area.clone(),
                    period: period.clone(),
                    periods: args.periods,
                    metric: one_metric()?,
                })
                .await
                .map_err(status)?
                .into_inner(),
        ),
        _ => {
            let mut req = pb::CompletenessRequest {
                area: args.area.clone(),
                period: period.clone(),
                level: level.clone(),
                ..Default::default()
            };
            let mut reply = client
                .completeness(req.clone())
                .await
                .map_err(status)?
                .into_inner();
            while !reply.next_page_token.is_empty() {
                req.page_token = std::mem::take(&mut reply.next_page_token);
                let more = client
                    .completeness(req.clone())
                    .await
                    .map_err(status)?
                    .into_inner();
                reply.missing.extend(more.missing);
                reply.late.extend(more.late);
                reply.next_page_token = more.next_page_token;
            }
            completeness_table(&reply, args.level)
        }
    };
    pingan_proto::text::print_out(&render(&table, args.format));
    Ok(())
}
