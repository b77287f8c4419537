//! `pingan-node`: submit an office's figures, keep delivering the outbox, show its status.

use std::{io::IsTerminal as _, path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use pingan_domain::{Areas, Catalogue, Period, Validator, pb};
use pingan_node::form;
use pingan_outbox::{
    CancellationToken, Deliverer, EntryState, Outbox, OutboxError, client_tls::ClientTlsArgs,
};

/// Exit status when the report is safe in the outbox but not yet acked.
const EXIT_PENDING: u8 = 75;

/// pingan-node: report a village's, township's or county's 平安建设 figures to its hub.
#[derive(Debug, Parser)]
#[command(name = "pingan-node", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a report, write it to the outbox, deliver it; exit 0 only once the hub acked it.
    Submit(Box<SubmitArgs>),
    /// Keep delivering the outbox (daemon); stops on SIGINT or SIGTERM.
    Run(RunArgs),
    /// List pending, delivered and failed reports.
    Status(StatusArgs),
    /// Send a parked (refused) report again, once its cause is fixed.
    Retry(ParkedArgs),
    /// Drop a parked (refused) report: kept for the record, never sent.
    Drop(ParkedArgs),
    /// Serve the entry page (填报) in a browser, and keep delivering the outbox.
    Serve(Box<ServeArgs>),
    /// Accounts of the entry page (needed when it is served beyond this computer).
    #[command(subcommand)]
    Users(UsersCommand),
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Add an account; the password is asked twice (or read as one line from standard input).
    Add {
        name: String,
        #[command(flatten)]
        outbox: OutboxArgs,
    },
    /// List the accounts.
    List {
        #[command(flatten)]
        outbox: OutboxArgs,
    },
    /// Remove an account.
    Remove {
        name: String,
        #[command(flatten)]
        outbox: OutboxArgs,
    },
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    hub: HubArgs,
    #[command(flatten)]
    outbox: OutboxArgs,
    /// Address of the page. Beyond loopback (e.g. 0.0.0.0:7480 for phones on the office
    /// Wi-Fi) it asks for a password (`pingan-node users add`) and serves HTTPS.
    #[arg(long, env = "PINGAN_NODE_LISTEN", default_value = "127.0.0.1:7480")]
    listen: std::net::SocketAddr,
    /// The page's certificate (PEM) beyond loopback; default: one the node makes for itself
    /// (self-signed, kept beside the outbox; its fingerprint is printed).
    #[arg(long, env = "PINGAN_PAGE_CERT", requires = "page_key")]
    page_cert: Option<PathBuf>,
    /// The page certificate's private key (PEM).
    #[arg(long, env = "PINGAN_PAGE_KEY", requires = "page_cert")]
    page_key: Option<PathBuf>,
    /// Who the office reports for: its area code (repeat for the areas it was granted, e.g. a
    /// township entering its villages' paper forms), or ID@AREA for a department (sw-510722@510722).
    #[arg(
        long = "area",
        required = true,
        env = "PINGAN_AREA",
        value_delimiter = ','
    )]
    areas: Vec<String>,
    /// This node's name, kept with every report (who sent it).
    #[arg(long, env = "PINGAN_REPORTER", default_value = "")]
    reporter: String,
    /// Indicator catalogue (TOML); default: the built-in one.
    #[arg(long, env = "PINGAN_CATALOGUE")]
    catalogue: Option<PathBuf>,
    /// Division codes (national CSV format); default: the national registry built in.
    #[arg(long, env = "PINGAN_DIVISIONS")]
    divisions: Option<PathBuf>,
    /// How long between looks at an empty outbox (5, 5s, 1m ...).
    #[arg(long, env = "PINGAN_INTERVAL", default_value = "5s", value_parser = pingan_domain::duration::parse)]
    interval: Duration,
}

#[derive(Debug, Args)]
struct ParkedArgs {
    #[command(flatten)]
    outbox: OutboxArgs,
    /// Submission ids of parked reports (as `pingan-node status` lists them).
    #[arg(required = true)]
    ids: Vec<String>,
}

#[derive(Debug, Args)]
struct HubArgs {
    /// The hub's address (https:// with mutual TLS; http:// with --insecure).
    #[arg(long, env = "PINGAN_HUB", default_value = "https://localhost:7400")]
    hub: String,
    /// How long the hub has to answer one attempt (30, 30s, 2m ...).
    #[arg(long, env = "PINGAN_TIMEOUT", default_value = "30s", value_parser = pingan_domain::duration::parse)]
    timeout: Duration,
    #[command(flatten)]
    tls: ClientTlsArgs,
}

impl HubArgs {
    /// A deliverer for this hub, with its TLS configuration checked now.
    fn deliverer(&self) -> anyhow::Result<Deliverer> {
        let tls = self.tls.config(&self.hub)?;
        Ok(Deliverer::new(self.hub.clone(), self.timeout).with_tls(tls))
    }
}

#[derive(Debug, Args)]
struct OutboxArgs {
    /// Directory of the durable outbox (default: the user's data directory).
    #[arg(long, env = "PINGAN_OUTBOX", default_value_os_t = default_outbox())]
    outbox: PathBuf,
}

#[derive(Debug, Args)]
struct SubmitArgs {
    #[command(flatten)]
    hub: HubArgs,
    #[command(flatten)]
    outbox: OutboxArgs,
    /// Division code of the area reported on; for a department, the area it belongs to.
    #[arg(long)]
    area: String,
    /// A department's (条) report: the department's id in the hub's departments file, e.g.
    /// sw-510722 (三台县商务局); sent with the department's own certificate, on the
    /// departments' form. Its figures are kept apart from the area's totals.
    #[arg(long, env = "PINGAN_DEPARTMENT", default_value = "")]
    department: String,
    /// Period: 2026-10 (month), 2026-W40 (ISO week) or 2026-10-01 (day); 2026/10 and
    /// 2026年10月 are read as 2026-10.
    #[arg(long)]
    period: String,
    /// The form (报表) by id or title, e.g. disputes_half_monthly or 矛盾纠纷排查化解半月报.
    /// Default: the form the area's level reports for the period (for a month, 综治工作月报).
    #[arg(long, default_value = "")]
    form: String,
    /// A value: metric=value, or metric[part]=value; metric by id or Chinese name. Repeatable.
    #[arg(long = "set", value_name = "METRIC=VALUE")]
    sets: Vec<String>,
    /// A form file: .csv (metric,value or metric,part,value, or 指标,数值 / 指标,类别,数值;
    /// UTF-8 or GBK), .xlsx (the same columns on the first sheet) or .json.
    #[arg(long)]
    file: Option<PathBuf>,
    /// A zero report (零报告): nothing happened this period.
    #[arg(long, conflicts_with_all = ["sets", "file"])]
    zero: bool,
    /// Free-text notes kept with the report.
    #[arg(long, default_value = "")]
    notes: String,
    /// This node's name, kept in the hub's audit trail.
    #[arg(long, env = "PINGAN_REPORTER", default_value = "")]
    reporter: String,
    /// Idempotency key; default: a new random id (give the same one to resend the same report).
    #[arg(long)]
    submission_id: Option<String>,
    /// How long to keep trying before leaving the report in the outbox for `pingan-node run`
    /// (60, 60s, 5m ...).
    #[arg(long, env = "PINGAN_WAIT", default_value = "60s", value_parser = pingan_domain::duration::parse)]
    wait: Duration,
    /// Indicator catalogue (TOML); default: the built-in one.
    #[arg(long, env = "PINGAN_CATALOGUE")]
    catalogue: Option<PathBuf>,
    /// Division codes (national CSV format) to check area codes against locally; default: the
    /// hub checks them.
    #[arg(long, env = "PINGAN_DIVISIONS")]
    divisions: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    hub: HubArgs,
    #[command(flatten)]
    outbox: OutboxArgs,
    /// How long between looks at an empty outbox (5, 5s, 1m ...).
    #[arg(long, env = "PINGAN_INTERVAL", default_value = "5s", value_parser = pingan_domain::duration::parse)]
    interval: Duration,
}

#[derive(Debug, Args)]
struct StatusArgs {
    #[command(flatten)]
    outbox: OutboxArgs,
    /// With --area: the hub asked where each delivered report's review stands (审核: 待审核,
    /// 已审核, or 退回 with the reason); unreachable, the list says what the outbox knows.
    #[command(flatten)]
    hub: HubArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = StatusFormat::Table)]
    format: StatusFormat,
    /// Also list what this office owes (its forms' recent periods, due when, and where each
    /// stands), as the entry page does: its area code, or ID@AREA for a department. Repeatable.
    #[arg(long = "area", value_delimiter = ',')]
    areas: Vec<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum StatusFormat {
    Table,
    Json,
}

fn default_outbox() -> PathBuf {
    dirs::data_dir().map_or_else(
        || PathBuf::from("pingan-node-outbox"),
        |d| d.join("pingan-node"),
    )
}

/// mimalloc: glibc's malloc and free were a fifth of a unary `Submit`'s CPU (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = match Cli::parse().command {
        Command::Submit(args) => submit(*args).await,
        Command::Run(args) => run(args).await,
        Command::Status(args) => status(args).await,
        Command::Retry(args) => parked(args, true),
        Command::Drop(args) => parked(args, false),
        Command::Serve(args) => serve(*args).await,
        Command::Users(cmd) => users(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // the causes, never a backtrace (RUST_BACKTRACE is for developers' panics)
            eprintln!("错误 (error)：{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn read_values(args: &SubmitArgs) -> anyhow::Result<Vec<pb::MetricValue>> {
    let mut values = form::from_sets(&args.sets)?;
    if let Some(path) = &args.file {
        let (from_file, encoding) = form::from_file(path)?;
        if encoding != pingan_domain::text::TextEncoding::Utf8 {
            eprintln!(
                "{} 按 {} 编码读取（Excel/WPS 另存的 CSV）",
                path.display(),
                encoding.name()
            );
        }
        if let Some(dup) = from_file
            .iter()
            .find(|v| values.iter().any(|s| s.metric == v.metric))
        {
            anyhow::bail!("{} 既在 --set 里又在 {} 里", dup.metric, path.display());
        }
        values.extend(from_file);
    }
    Ok(values)
}

async fn submit(args: SubmitArgs) -> anyhow::Result<ExitCode> {
    let report = match checked_report(&args)? {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    // a wrong TLS setup (unreadable files, a key that is not the certificate's) fails here,
    // before anything is queued that could never be sent
    let mut deliverer = match args.hub.deliverer() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("未发送 (not sent)：{e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    let id = report.submission_id.clone();
    let mut outbox = Outbox::open(&args.outbox.outbox)?;
    match outbox.enqueue(&[report.to_wire()]) {
        Ok(()) => {}
        // resending with the same id: deliver what the outbox holds (the hub dedups)
        Err(OutboxError::Exists(_)) => {}
        Err(e) => return Err(e.into()),
    }
    println!(
        "已保存到发件箱 (queued)：{id}（{} {}）{}",
        report.area,
        report.period,
        outbox.path().display()
    );
    let deadline = tokio::time::Instant::now() + args.wait;
    let pass = deliverer
        .deliver_until(&mut outbox, Some(deadline), |o| {
            Ok(o.get(&id)?.is_some_and(|e| e.state != EntryState::Pending))
        })
        .await?;
    say_outcome(&outbox, &id, pass.retry)
}

/// The report the arguments describe, validated as the hub will; what is wrong is said, and the
/// exit status returned instead.
fn checked_report(
    args: &SubmitArgs,
) -> anyhow::Result<Result<pingan_domain::ValidReport, ExitCode>> {
    let catalogue = match &args.catalogue {
        Some(p) => Catalogue::load(p)?,
        None => Catalogue::builtin(),
    };
    let areas = args
        .divisions
        .as_deref()
        .map(|d| Areas::load_dir(d).with_context(|| format!("读取区划 {} 失败", d.display())))
        .transpose()?;
    let values = match read_values(args) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("未发送 (not sent)：{e:#}");
            return Ok(Err(ExitCode::from(2)));
        }
    };
    // what a clerk types (2026/10, 2026年10月) becomes the canonical period
    let period = match Period::parse_typed(&args.period) {
        Ok(p) => p.to_string(),
        Err(e) => {
            eprintln!("未发送 (not sent)：{}", e.for_reports());
            return Ok(Err(ExitCode::from(2)));
        }
    };
    let wire = pb::Report {
        submission_id: args
            .submission_id
            .clone()
            .unwrap_or_else(pingan_node::new_submission_id),
        area: args.area.trim().to_owned(),
        period,
        values,
        zero_report: args.zero,
        notes: args.notes.clone(),
        reporter: args.reporter.clone(),
        rollup: None,
        form: args.form.trim().to_owned(),
        department: args.department.trim().to_owned(),
        packed: None,
    };
    let validator = Validator {
        catalogue: &catalogue,
        areas: areas.as_ref(),
        today: pingan_node::today_beijing(),
        departments: None,
    };
    let report = match validator.validate(&wire) {
        Ok(r) => r,
        Err(violations) => {
            eprintln!("未发送 (not sent)：{violations}");
            return Ok(Err(ExitCode::from(2)));
        }
    };
    for w in &report.warnings {
        eprintln!("提示 (warning)：{w}");
    }
    Ok(Ok(report))
}

/// Says where the report stands after delivery was tried; the exit status: 0 delivered, 1
/// refused, 75 kept for later.
fn say_outcome(outbox: &Outbox, id: &str, retry: Option<String>) -> anyhow::Result<ExitCode> {
    let entry = outbox.get(id)?.context("the outbox lost the entry")?;
    match entry.state {
        EntryState::Delivered => {
            println!(
                "已上报 (delivered)：{id}（{} {}）第 {} 版 (revision {})",
                entry.area,
                entry.period,
                entry.revision.unwrap_or_default(),
                entry.revision.unwrap_or_default()
            );
            for w in &entry.warnings {
                println!("hub 提示 (warning)：{w}");
            }
            Ok(ExitCode::SUCCESS)
        }
        EntryState::Failed | EntryState::Dropped => {
            eprintln!(
                "被 hub 拒收 (refused by the hub)：{}\n改正后重新提交；如原因已排除（如证书已更新），可用 `pingan-node retry {id}` 重发",
                entry.last_error.unwrap_or_default()
            );
            Ok(ExitCode::FAILURE)
        }
        EntryState::Pending => {
            eprintln!(
                "尚未送达 (not yet delivered)：{}\n报表已安全保存在发件箱，`pingan-node run` 或下一次提交会继续发送",
                retry.unwrap_or_else(|| "没有应答".into())
            );
            Ok(ExitCode::from(EXIT_PENDING))
        }
    }
}

/// The office's division registry: `--divisions`, or the national one built in, cut to the
/// county of its first area.
fn office_areas(args: &ServeArgs) -> anyhow::Result<Areas> {
    if let Some(d) = &args.divisions {
        return Areas::load_dir(d).with_context(|| format!("读取区划 {} 失败", d.display()));
    }
    let first = args
        .areas
        .first()
        .map(|a| a.rsplit('@').next().unwrap_or(a).trim());
    let code: Option<pingan_domain::AreaCode> = first.and_then(|a| a.parse().ok());
    let within = code.map(|c| c.ancestor_at(pingan_domain::Level::County).unwrap_or(c));
    Ok(pingan_domain::fixtures::national_areas(within))
}

fn users(cmd: UsersCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        UsersCommand::Add { name, outbox } => {
            let password = pingan_outbox::password::read(&name)?;
            Outbox::open(&outbox.outbox)?.add_page_user(name.trim(), &password)?;
            println!("已添加填报页面账号 {name} (account added)");
        }
        UsersCommand::List { outbox } => {
            for name in Outbox::open(&outbox.outbox)?.page_users()? {
                println!("{name}");
            }
        }
        UsersCommand::Remove { name, outbox } => {
            Outbox::open(&outbox.outbox)?.remove_page_user(&name)?;
            println!("已删除账号 {name} (account removed)");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Beyond loopback: the page's TLS (given, or the node's own certificate) and its sessions;
/// refused without any account. Prints the certificate's fingerprint.
fn page_security(
    args: &ServeArgs,
) -> anyhow::Result<(
    Option<tokio_rustls::TlsAcceptor>,
    Option<std::sync::Arc<pingan_node::web::auth::PageAuth>>,
)> {
    if args.listen.ip().is_loopback() {
        return Ok((None, None));
    }
    anyhow::ensure!(
        !Outbox::open(&args.outbox.outbox)?.page_users()?.is_empty(),
        "填报页面在 {} 上对办公网络开放，需要密码：先用 `pingan-node users add 用户名` 建一个账号 (add an account first)",
        args.listen
    );
    let (cert, key) = match (&args.page_cert, &args.page_key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => {
            let mut hosts = vec!["localhost".to_owned()];
            if !args.listen.ip().is_unspecified() {
                hosts.push(args.listen.ip().to_string());
            }
            pingan_node::web::tls::own_certificate(&args.outbox.outbox, &hosts)?
        }
    };
    let (acceptor, print) = pingan_node::web::tls::acceptor(&cert, &key)?;
    println!("pingan-node page certificate SHA-256 {print}");
    eprintln!(
        "pingan-node: 页面证书 {}，指纹 (SHA-256) {print}：手机浏览器提示证书不受信任时，核对这个指纹",
        cert.display()
    );
    Ok((Some(acceptor), pingan_node::web::auth::required()))
}

/// A client of the hub's review service (connected when first asked).
fn review_client(
    hub: &HubArgs,
) -> anyhow::Result<Option<pb::review_service_client::ReviewServiceClient<tonic::transport::Channel>>>
{
    let tls = hub.tls.config(&hub.hub)?;
    let channel = pingan_outbox::client_tls::endpoint(&hub.hub, tls.as_ref())?
        .timeout(Duration::from_secs(5))
        .connect_lazy();
    Ok(Some(pb::review_service_client::ReviewServiceClient::new(
        channel,
    )))
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let (acceptor, auth) = page_security(&args)?;
    let catalogue = match &args.catalogue {
        Some(p) => Catalogue::load(p)?,
        None => Catalogue::builtin(),
    };
    let areas = office_areas(&args)?;
    let reporters = args
        .areas
        .iter()
        .map(|a| pingan_node::office::parse_reporter(a, Some(&areas)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // the outbox's totals go by catalogue position when the hub's catalogue is this one
    let mut deliverer = args.hub.deliverer()?.with_catalogue(catalogue.clone());
    let office = pingan_node::office::Office {
        reporters,
        catalogue,
        areas: Some(areas),
        deadlines: pingan_domain::deadline::Deadlines::default(),
    };
    let mut delivery = Outbox::open(&args.outbox.outbox)?;
    let web = pingan_node::web::NodeWeb {
        office: std::sync::Arc::new(office),
        outbox: std::sync::Arc::new(std::sync::Mutex::new(Outbox::open(&args.outbox.outbox)?)),
        send_now: std::sync::Arc::default(),
        reporter: args.reporter.clone(),
        hub: args.hub.hub.clone(),
        auth,
        review: review_client(&args.hub)?,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    println!("pingan-node page on {scheme}://{}", listener.local_addr()?);
    eprintln!(
        "pingan-node: 在浏览器打开 {scheme}://{} 填报；发件箱 {}，上级平台 {}（Ctrl-C 停止）",
        listener.local_addr()?,
        delivery.path().display(),
        args.hub.hub
    );
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        stop.cancel();
    });
    let wake = web.send_now.clone();
    let (interval, deliver_stop) = (args.interval, shutdown.clone());
    let delivering = tokio::spawn(async move {
        deliverer
            .run(&mut delivery, Some(&wake), interval, &deliver_stop)
            .await
    });
    pingan_node::web::serve(listener, web, acceptor, shutdown.clone()).await?;
    shutdown.cancel();
    delivering.await??;
    Ok(ExitCode::SUCCESS)
}

async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let mut outbox = Outbox::open(&args.outbox.outbox)?;
    // the built-in catalogue's positions, when the hub's catalogue is the built-in one
    let mut deliverer = args.hub.deliverer()?.with_catalogue(Catalogue::builtin());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tracing::info!(outbox = %outbox.path().display(), hub = %args.hub.hub, "delivering");
    eprintln!(
        "pingan-node: 正在向 {} 发送发件箱 {}（Ctrl-C 停止）",
        args.hub.hub,
        outbox.path().display()
    );
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        stop.cancel();
    });
    deliverer
        .run(&mut outbox, None, args.interval, &shutdown)
        .await?;
    tracing::info!("stopped; pending reports stay in the outbox");
    Ok(ExitCode::SUCCESS)
}

async fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    use std::fmt::Write as _;
    let outbox = Outbox::open(&args.outbox.outbox)?;
    let entries = outbox.list()?;
    if matches!(args.format, StatusFormat::Json) {
        pingan_node::print_out(&format!("{}\n", serde_json::to_string_pretty(&entries)?));
        return Ok(ExitCode::SUCCESS);
    }
    let count = |s| entries.iter().filter(|e| e.state == s).count();
    let mut text = format!(
        "{}：待发送 {}，已上报 {}，被拒收 {}，已作废 {} (pending, delivered, failed, dropped)\n",
        outbox.path().display(),
        count(EntryState::Pending),
        count(EntryState::Delivered),
        count(EntryState::Failed),
        count(EntryState::Dropped)
    );
    for e in &entries {
        let detail = match e.state {
            EntryState::Delivered => format!("第 {} 版", e.revision.unwrap_or_default()),
            _ => e.last_error.clone().unwrap_or_default(),
        };
        let _ = writeln!(
            text,
            "{:<9} {} {:<36} {:<12} {:<10} 尝试 {:<3} {}",
            e.state_str(),
            e.state.zh(),
            e.submission_id,
            e.area,
            e.period,
            e.attempts,
            detail
        );
    }
    if count(EntryState::Failed) > 0 {
        text.push_str("被拒收的报表：改正后重新提交，或 `pingan-node retry ID` 重发、`pingan-node drop ID` 作废\n");
    }
    let review = review_client(&args.hub).ok().flatten();
    text.push_str(&owed(&args.areas, &outbox, review.as_ref()).await?);
    pingan_node::print_out(&text);
    Ok(ExitCode::SUCCESS)
}

/// What the offices of `areas` owe: each form's recent periods, due when, and where each
/// stands (the entry page's list), as lines.
async fn owed(
    areas: &[String],
    outbox: &Outbox,
    review: Option<&pingan_node::office::ReviewClient>,
) -> anyhow::Result<String> {
    use std::fmt::Write as _;
    if areas.is_empty() {
        return Ok(String::new());
    }
    let first = areas[0].rsplit('@').next().unwrap_or_default().trim();
    let within = first
        .parse::<pingan_domain::AreaCode>()
        .ok()
        .map(|c| c.ancestor_at(pingan_domain::Level::County).unwrap_or(c));
    let registry = pingan_domain::fixtures::national_areas(within);
    let office = pingan_node::office::Office {
        reporters: areas
            .iter()
            .map(|a| pingan_node::office::parse_reporter(a, Some(&registry)))
            .collect::<anyhow::Result<_>>()?,
        catalogue: Catalogue::builtin(),
        areas: Some(registry),
        deadlines: pingan_domain::deadline::Deadlines::default(),
    };
    let (today, now) = (
        pingan_node::today_beijing(),
        chrono::Utc::now().timestamp_millis(),
    );
    let mut text = String::new();
    for r in &office.reporters {
        let _ = writeln!(text, "\n{} {} 的报表 (forms owed)：", r.key, r.name);
        let mut forms = office.overview(outbox, r, today, now)?;
        if let (Some(client), None) = (review, &r.department) {
            pingan_node::office::with_reviews(client, r, &mut forms).await;
        }
        for f in &forms {
            for p in &f.periods {
                let _ = writeln!(
                    text,
                    "  {}（{}） {:<14} 截止 {}  {}{}",
                    f.zh,
                    f.period_zh,
                    p.label,
                    p.due,
                    p.status_zh,
                    match (&p.reason, p.status) {
                        (Some(why), "returned") => format!("：退回原因「{why}」"),
                        _ => String::new(),
                    }
                );
            }
        }
    }
    Ok(text)
}

/// `retry` (back to the queue) or `drop` (never sent) parked reports.
fn parked(args: ParkedArgs, retry: bool) -> anyhow::Result<ExitCode> {
    let mut outbox = Outbox::open(&args.outbox.outbox)?;
    let mut code = ExitCode::SUCCESS;
    for id in &args.ids {
        let done = if retry {
            outbox.retry(id)
        } else {
            outbox.drop_parked(id)
        };
        match done {
            Ok(e) if retry => println!(
                "{id}（{} {}）已放回发件箱，`pingan-node run` 或下一次提交会发送",
                e.area, e.period
            ),
            Ok(e) => println!("{id}（{} {}）已作废，不会发送", e.area, e.period),
            Err(e) => {
                eprintln!("错误 (error)：{e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}
