//! `pingan-hub query rollup|compare|trend|completeness|departments`: asks a hub's QueryService and prints
//! the answer as an aligned table (Chinese names, CJK-aware widths), CSV (UTF-8 with a BOM, so
//! Excel and WPS open it right) or JSON (rows with plain field names).

use clap::{Args, Subcommand, ValueEnum};
use pingan_domain::pb::{self, query_service_client::QueryServiceClient};

use crate::tables::{
    Table, compare_table, completeness_table, departments_table, rollup_table, trend_series_table,
    trend_table,
};

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
    /// One area's series over the last N periods, with 同比; with --level, every area of that
    /// level below it as one row each, a column per period (e.g. --area 全国 --level county).
    Trend(QueryArgs),
    /// Who should have reported, who did (on time or late), and who is missing.
    Completeness(QueryArgs),
    /// Departments (条) within the area ranked on a metric (--group department), or their
    /// figures added up by the area they belong to (--group area) or by 系统 (--group system);
    /// never added into the divisions' totals.
    Departments(QueryArgs),
    /// 考核: the area's children (or descendants at the scheme's level) scored by an assessment
    /// scheme (--scheme FILE, else the hub's own): total, each item's points and figure, rank,
    /// 一票否决 and 黄牌 with their cause.
    Assess(QueryArgs),
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
    /// The client TLS arguments these are.
    pub fn client(&self) -> pingan_outbox::client_tls::ClientTlsArgs {
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
    /// 2026-10, 2026-10-H1 (上半月), 2026-Q3, 2026-H2, 2026, 2026-01..2026-10, 2026-W40,
    /// 2026-10-01; also 2026/10, 2026年10月, 2026年10月下半月, 2026年第三季度,
    /// 2026年1月至2026年10月. A month includes its half-months' reports.
    #[arg(long)]
    pub period: String,
    /// Metric or indicator (id or Chinese name); for rollup, repeat to choose which.
    #[arg(long)]
    pub metric: Vec<String>,
    /// Level of the areas compared or checked (province, prefecture, county, township, village,
    /// or 省 市 县 乡镇 村社区).
    #[arg(long)]
    pub level: Option<pingan_domain::Level>,
    /// Number of periods in a trend.
    #[arg(long, default_value_t = 12)]
    pub periods: u32,
    /// Rollup: break disaggregated metrics down by category.
    #[arg(long)]
    pub by_category: bool,
    /// Compare: withhold values of areas whose reports are incomplete.
    #[arg(long)]
    pub complete_only: bool,
    /// Rollup, compare, trend: approved figures only (审核; a report on a form with review
    /// counts with its latest approved revision, or not at all).
    #[arg(long)]
    pub approved_only: bool,
    /// Completeness: only this form's reporters and periods (id or title, e.g.
    /// disputes_half_monthly or 矛盾纠纷排查化解半月报); default: every form.
    #[arg(long, default_value = "")]
    pub form: String,
    /// Departments: department (one row each, ranked), area (sums by the area they belong to)
    /// or system (sums by 系统).
    #[arg(long, default_value = "department")]
    pub group: String,
    /// Departments: only this 系统, e.g. 商务系统.
    #[arg(long, default_value = "")]
    pub system: String,
    /// Assess: the assessment scheme (TOML, UTF-8 or GBK); default: the hub's own.
    #[arg(long)]
    pub scheme: Option<std::path::PathBuf>,
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

impl QueryCommand {
    fn args(&self) -> &QueryArgs {
        match self {
            QueryCommand::Rollup(a)
            | QueryCommand::Compare(a)
            | QueryCommand::Trend(a)
            | QueryCommand::Completeness(a)
            | QueryCommand::Departments(a)
            | QueryCommand::Assess(a) => a,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            QueryCommand::Rollup(_) => "rollup",
            QueryCommand::Compare(_) => "compare",
            QueryCommand::Trend(_) => "trend",
            QueryCommand::Completeness(_) => "completeness",
            QueryCommand::Departments(_) => "departments",
            QueryCommand::Assess(_) => "assess",
        }
    }
}

/// A reply that may come in pages.
trait Paged: Sized {
    /// The next page's token (empty: this was the last), taken out of the reply.
    fn take_token(&mut self) -> String;
    /// Appends the next page's rows.
    fn absorb(&mut self, more: Self);
}

impl Paged for pb::CompareReply {
    fn take_token(&mut self) -> String {
        std::mem::take(&mut self.next_page_token)
    }
    fn absorb(&mut self, more: Self) {
        self.rows.extend(more.rows);
    }
}

impl Paged for pb::CompletenessReply {
    fn take_token(&mut self) -> String {
        std::mem::take(&mut self.next_page_token)
    }
    fn absorb(&mut self, more: Self) {
        self.missing.extend(more.missing);
        self.late.extend(more.late);
    }
}

/// Asks for the first page, then the next ones until the last: all of them make the table.
async fn all_pages<R: Paged, F: std::future::Future<Output = Result<R, tonic::Status>>>(
    mut ask: impl FnMut(String) -> F,
) -> Result<R, tonic::Status> {
    let mut reply = ask(String::new()).await?;
    loop {
        let token = reply.take_token();
        if token.is_empty() {
            return Ok(reply);
        }
        let more = ask(token).await?;
        reply.absorb(more);
    }
}

type Client = QueryServiceClient<tonic::transport::Channel>;

/// Every page of a comparison, as one reply. Each page is asked as columns (a national
/// ranking's rows are several times cheaper to send so) and read back into rows.
async fn every_compare_page(
    client: &Client,
    req: pb::CompareRequest,
) -> Result<pb::CompareReply, tonic::Status> {
    all_pages(|page_token| {
        let (mut client, req) = (client.clone(), req.clone());
        async move {
            let req = pb::CompareRequest {
                page_token,
                as_columns: true,
                ..req
            };
            let mut reply = client.compare(req).await?.into_inner();
            pingan_domain::compare_columns::columns_into_rows(&mut reply)
                .map_err(|e| tonic::Status::internal(e.to_string()))?;
            Ok(reply)
        }
    })
    .await
}

/// Every page of a completeness answer, as one reply.
async fn every_completeness_page(
    client: &Client,
    req: pb::CompletenessRequest,
) -> Result<pb::CompletenessReply, tonic::Status> {
    all_pages(|page_token| {
        let (mut client, req) = (client.clone(), req.clone());
        async move {
            let req = pb::CompletenessRequest { page_token, ..req };
            Ok(client.completeness(req).await?.into_inner())
        }
    })
    .await
}

/// Runs a query command against a hub and prints the answer.
pub async fn run(cmd: QueryCommand) -> anyhow::Result<()> {
    let args = cmd.args();
    let tls = args.tls.client().config(&args.hub)?;
    let period = pingan_domain::Span::parse_typed(&args.period)?.to_string();
    let level = args
        .level
        .map(|l| l.as_str().to_owned())
        .unwrap_or_default();
    let channel = pingan_outbox::client_tls::endpoint(&args.hub, tls.as_ref())?
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!(pingan_outbox::client_tls::describe(&args.hub, &e)))?;
    let client = QueryServiceClient::new(channel).max_decoding_message_size(64 * 1024 * 1024);
    let one_metric = || -> anyhow::Result<String> {
        match args.metric.as_slice() {
            [m] => Ok(m.clone()),
            _ => anyhow::bail!(
                "{} 需要且只需要一个 --metric（指标或比率，如 调处成功率）",
                cmd.name()
            ),
        }
    };
    let status = |e: tonic::Status| match std::error::Error::source(&e) {
        Some(_) => anyhow::anyhow!(pingan_outbox::client_tls::describe(&args.hub, &e)),
        None => anyhow::anyhow!("{:?}: {}", e.code(), e.message()),
    };
    let table = match &cmd {
        QueryCommand::Rollup(_) => {
            let req = pb::RollupRequest {
                area: args.area.clone(),
                period,
                metrics: args.metric.clone(),
                by_category: args.by_category,
                approved_only: args.approved_only,
            };
            let reply = client.clone().rollup(req).await.map_err(status)?;
            rollup_table(&reply.into_inner())
        }
        QueryCommand::Compare(_) => {
            let req = pb::CompareRequest {
                area: args.area.clone(),
                period,
                metric: one_metric()?,
                level,
                complete_only: args.complete_only,
                approved_only: args.approved_only,
                ..Default::default()
            };
            let reply = every_compare_page(&client, req).await.map_err(status)?;
            compare_table(&reply)
        }
        QueryCommand::Trend(_) => {
            let req = pb::TrendRequest {
                area: args.area.clone(),
                period,
                periods: args.periods,
                metric: one_metric()?,
                approved_only: args.approved_only,
                level,
                as_columns: true,
            };
            let mut reply = client
                .clone()
                .trend(req)
                .await
                .map_err(status)?
                .into_inner();
            pingan_domain::trend_columns::columns_into_series(&mut reply)?;
            if reply.series.is_empty() {
                trend_table(&reply)
            } else {
                trend_series_table(&reply)
            }
        }
        QueryCommand::Completeness(_) => {
            let req = pb::CompletenessRequest {
                area: args.area.clone(),
                period,
                level,
                form: args.form.clone(),
                ..Default::default()
            };
            let reply = every_completeness_page(&client, req)
                .await
                .map_err(status)?;
            completeness_table(&reply, args.level)
        }
        QueryCommand::Departments(_) => {
            let req = pb::DepartmentsRequest {
                area: args.area.clone(),
                period,
                metric: one_metric()?,
                group: args.group.clone(),
                system: args.system.clone(),
            };
            let reply = client.clone().departments(req).await.map_err(status)?;
            departments_table(&reply.into_inner())
        }
        QueryCommand::Assess(_) => {
            let scheme = crate::cmd::scheme_text(args.scheme.as_deref())?;
            let req = pb::AssessRequest {
                area: args.area.clone(),
                period,
                scheme,
                approved_only: args.approved_only,
            };
            let reply = client.clone().assess(req).await.map_err(status)?;
            crate::tables::assess_table(&reply.into_inner())
        }
    };
    pingan_domain::text::print_out(&render(&table, args.format));
    Ok(())
}
