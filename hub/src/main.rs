//! `pingan-hub`: the hub's command line.

use std::io::IsTerminal as _;

use anyhow::Context as _;
use clap::Parser as _;
use pingan_hub::{
    Clock, HubState,
    cmd::{
        config::{CertsCommand, Cli, Command, ImportArgs, OwnersCommand, ServeArgs, UsersCommand},
        demo,
    },
    grpc::server,
    store::{
        StoreAt,
        lease::{Duty, Lease},
    },
};
use pingan_outbox::CancellationToken;

/// mimalloc: glibc's malloc and free were a fifth of a unary `Submit`'s CPU (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (`include/mimalloc.h` of mimalloc v3, the version
/// libmimalloc-sys builds): how long freed pages stay mapped before they go back to the OS.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed pages kept for ten seconds rather than one: a national ranking frees and takes again
/// tens of MB per question, and with the default each question faulted 300 pages back in (a
/// page fault costs about 4 µs on the benchmark's VM: 80,000 faults over the benchmark's
/// questions with the default, 7,000 with ten seconds). Memory still goes back once the hub
/// has been idle for the delay. An operator's own `MIMALLOC_PURGE_DELAY` is left as set.
fn keep_freed_pages() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: sets one of mimalloc's options; any value is valid for the delay, and mimalloc
    // reads it at each purge
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 10_000) };
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    keep_freed_pages();
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // the causes, never a backtrace: RUST_BACKTRACE is for developers' panics
            eprintln!("错误 (error)：{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                // the demo and the query client print their own output; the server logs its work
                if matches!(cli.command, Command::Serve(_)) {
                    "info"
                } else {
                    "warn"
                }
                .into()
            }),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match cli.command {
        Command::Serve(args) => serve(*args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Query(cmd) => pingan_hub::cmd::query_client::run(cmd).await,
        Command::Locks(cmd) => pingan_hub::cmd::lock_client::run(cmd).await,
        Command::Review(cmd) => pingan_hub::cmd::review_client::run(cmd).await,
        Command::Bulletin(args) => pingan_hub::cmd::bulletin_client::run(args).await,
        Command::Certs(cmd) => certs(cmd),
        Command::Import(args) => import(args).await,
        Command::Owners(cmd) => owners(cmd),
        Command::Migrate(args) => pingan_hub::cmd::migrate::run(&args),
        Command::Users(cmd) => users(cmd),
        Command::Forms(args) => forms(args),
    }
}

/// `pingan-hub forms`: the forms, and whether the catalogue keeps the store's figures.
fn forms(args: pingan_hub::cmd::config::FormsArgs) -> anyhow::Result<()> {
    let catalogue = match &args.catalogue {
        Some(p) => pingan_domain::Catalogue::load(p)
            .with_context(|| format!("指标目录 {}", p.display()))?,
        None => pingan_domain::Catalogue::builtin(),
    };
    let table = pingan_hub::tables::forms_table(&catalogue, args.metrics);
    pingan_domain::text::print_out(&table.to_text());
    if let Some(data) = &args.data {
        let reader = pingan_hub::store::StoreReader::open(&data.join(pingan_hub::store::DB_FILE))?;
        let used = reader
            .catalogue_use()
            .context("the store predates forms: start the hub once with its current catalogue")?;
        pingan_hub::state::orphans(&used, &catalogue).map_err(|e| anyhow::anyhow!("{e}"))?;
        println!(
            "此目录保留了 {} 中已存储的全部指标和类别 (the catalogue keeps every stored figure)",
            data.display()
        );
    }
    Ok(())
}

fn users(cmd: UsersCommand) -> anyhow::Result<()> {
    use pingan_hub::access::users::Users;
    let open = |data: &std::path::Path, store: &pingan_hub::cmd::config::StoreArgs| {
        Users::open_at(data, store.store.as_deref())
            .with_context(|| format!("opening the accounts of {}", store.at(data).shown()))
    };
    let now = chrono::Utc::now().timestamp_millis();
    match cmd {
        UsersCommand::Add {
            data,
            store,
            area,
            registry,
            name,
        } => {
            let (_, areas) = registry.load(None)?;
            let users = open(&data, &store)?;
            let password = pingan_outbox::password::read(&name)?;
            let user = users.add(&areas, &name, area, &password, now)?;
            println!(
                "已添加账号 {}：可查看 {} {} 及其下级 (added {}: reads {} and everything under it)",
                user.name,
                user.area,
                areas.name(user.area),
                user.name,
                user.area
            );
        }
        UsersCommand::List { data, store } => {
            let users = open(&data, &store)?.list()?;
            if users.is_empty() {
                println!(
                    "还没有账号 (no accounts)；添加：`pingan-hub users add 名字 --area 区划代码`"
                );
            }
            for u in users {
                println!("{}\t{}", u.name, u.area);
            }
        }
        UsersCommand::Passwd { data, store, name } => {
            let users = open(&data, &store)?;
            let password = pingan_outbox::password::read(&name)?;
            users.set_password(&name, &password, now)?;
            println!(
                "{name} 的密码已更改，已登录的会话全部失效 (password changed; its sessions ended)"
            );
        }
        UsersCommand::Remove { data, store, name } => {
            open(&data, &store)?.remove(&name)?;
            println!("已删除账号 {name}，已登录的会话全部失效 (removed; its sessions ended)");
        }
    }
    Ok(())
}

fn owners(cmd: OwnersCommand) -> anyhow::Result<()> {
    let open = |data: &std::path::Path, store: &pingan_hub::cmd::config::StoreArgs| {
        pingan_hub::Store::open_at(data, store.at(data), None).with_context(|| {
            format!(
                "opening the store {} (stop the hub first)",
                store.at(data).shown()
            )
        })
    };
    match cmd {
        OwnersCommand::List { data, store } => {
            // only reads: works while the hub runs
            let db = store.at(&data);
            anyhow::ensure!(
                db.exists(),
                "{} 里没有 hub 的数据（用 --data 指向 pingan-hub serve 的数据目录）(no hub store there)",
                data.display()
            );
            let owners = pingan_hub::store::StoreReader::open_at(&db)
                .with_context(|| format!("读取 {} 失败 (reading the store)", db.shown()))?
                .owners()?;
            if owners.is_empty() {
                println!("没有由下级平台汇总上报的区划 (no subtree is owned by a child hub)");
            }
            for o in owners {
                let since = pingan_hub::clock::minute_text(o.since_ms);
                println!(
                    "{}\t{}\t证书 {}\t自 {since} (certificate, since)",
                    o.root, o.identity, o.serial
                );
            }
        }
        OwnersCommand::Release { data, store, area } => {
            let store = open(&data, &store)?;
            if store.release_owner(area)? {
                println!(
                    "{area} 已解除：下一个为它汇总上报的下级平台接管 (released: the next child hub to forward for it owns it)"
                );
            } else {
                anyhow::bail!("{area} 不属于任何下级平台 (not owned by any child hub)");
            }
        }
    }
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let jurisdiction = args.federation.jurisdiction(&args.tls)?;
    let (catalogue, areas) = args.registry.load(jurisdiction)?;
    tracing::info!(
        areas = areas.len(),
        jurisdiction = %jurisdiction.map_or_else(|| "all".to_owned(), |a| a.to_string()),
        metrics = catalogue.metrics().len(),
        "registry loaded"
    );
    // TLS and federation problems are reported before the (possibly long) load of the store
    let auth = args.tls.authorizer()?;
    let departments = args
        .departments
        .as_deref()
        .map(|p| pingan_hub::cmd::config::load_departments(p, &areas))
        .transpose()?;
    let forwarding = args.federation.config(&args.tls, &args.data)?;
    let started = std::time::Instant::now();
    let store = args.store.at(&args.data);
    let state = HubState::open_on(
        &args.data,
        store.clone(),
        catalogue,
        areas,
        Clock::System,
        args.deadlines(),
    )
    .with_context(|| format!("opening the store {}", store.shown()))?
    .with_auth(auth);
    let state = with_loop(state, &args, departments)?;
    tracing::info!(elapsed = ?started.elapsed(), "store open, rollups loaded");
    // one token stops everything: gRPC, the dashboard, the forwarder, the rollup saver
    let shutdown = CancellationToken::new();
    watch_signals(shutdown.clone())?;
    // with several processes on one PostgreSQL store, each reads the child hubs' claims again
    // (made through any of them), and the database gives each duty to one process
    let owners_fresh = matches!(store, StoreAt::Postgres(_)).then(|| {
        state
            .owners
            .clone()
            .keep_fresh(state.store.clone(), shutdown.clone())
    });
    let lease = |duty| Lease::take(&store, duty, shutdown.clone());
    let reminders = match state.reminders.as_deref().cloned() {
        Some(cfg) => Some(pingan_hub::remind::start(
            state.clone(),
            cfg,
            lease(Duty::Reminders)?,
            shutdown.clone(),
        )),
        None => None,
    };
    let forwarder = match forwarding {
        Some(cfg) => Some(pingan_hub::federation::forward::start(
            state.forwarding(),
            cfg,
            lease(Duty::Forwarding)?,
            shutdown.clone(),
        )?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let web = match args.web_listen {
        Some(addr) => Some(
            start_dashboard(
                addr,
                &args.data,
                args.store.store.as_deref(),
                &state,
                shutdown.clone(),
            )
            .await?,
        ),
        None => None,
    };
    // plain lines on stdout, for scripts and tests that start the hub on port 0 (the gRPC
    // address first)
    println!("pingan-hub listening on {}", listener.local_addr()?);
    if let Some((url, _)) = &web {
        println!("pingan-hub dashboard on {url}");
    }
    let engine = state.engine.clone();
    let saver = tokio::spawn(keep_rollups_saved(engine.clone(), shutdown.clone()));
    let served = server::serve(listener, state, shutdown.clone().cancelled_owned()).await;
    // gRPC has drained and the store is closed: nothing more can be acked
    if let Some((_, task)) = web {
        match task.await {
            Ok(Err(e)) => tracing::error!(error = %e, "the dashboard failed"),
            Err(e) => tracing::error!(error = %e, "the dashboard stopped abnormally"),
            Ok(Ok(())) => {}
        }
    }
    if let Some(f) = forwarder {
        f.stopped().await;
    }
    if let Some(r) = reminders {
        // a reminder being sent is recorded as it ends; the store outlives it
        r.abort();
        let _ = r.await;
    }
    if let Some(t) = owners_fresh {
        let _ = t.await;
    }
    let _ = saver.await;
    save_rollups(engine).await;
    served
}

/// The hub with what its reporting loop is told at start: the lock rule (`--lock-after-days`),
/// the departments (`--departments`) and the reminders (`--remind-webhook`, `--contacts`).
fn with_loop(
    state: HubState,
    args: &ServeArgs,
    departments: Option<pingan_domain::department::Departments>,
) -> anyhow::Result<HubState> {
    state.store.set_lock_rule(pingan_hub::store::LockRule {
        after_days: args.lock_after_days,
        deadlines: args.deadlines(),
        forms: state
            .catalogue
            .forms()
            .iter()
            .map(|f| (f.id.clone(), f.deadline))
            .collect(),
    });
    let state = match departments {
        Some(d) => {
            tracing::info!(departments = d.iter().count(), "departments loaded");
            state.with_departments(d)
        }
        None => state,
    };
    let state = match &args.boundaries {
        Some(dir) => {
            let b = pingan_hub::web::boundaries::Boundaries::load_dir(dir, &state.areas)?;
            state.with_boundaries(b)
        }
        None => state,
    };
    if let Some(p) = &args.scheme {
        let text = pingan_hub::cmd::read_text(p)?;
        let scheme = pingan_domain::assess::Scheme::parse(&text, &state.catalogue)
            .map_err(|e| anyhow::anyhow!("考核方案 {}: {e}", p.display()))?;
        tracing::info!(scheme = %scheme.title, "assessment scheme loaded");
        state.engine.set_scheme(scheme);
    }
    let Some(url) = &args.remind_webhook else {
        return Ok(state);
    };
    let contacts = match &args.contacts {
        Some(p) => pingan_hub::remind::contacts::Contacts::from_csv(
            &std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
            &state.areas,
        )
        .with_context(|| format!("联系人表 {}", p.display()))?,
        None => Default::default(),
    };
    tracing::info!(webhook = %url, "reminders on");
    let deadlines = args.deadlines().with_forms(&state.catalogue);
    Ok(state.with_reminders(pingan_hub::remind::RemindConfig {
        webhook: url.clone(),
        format: args.remind_format,
        contacts,
        deadlines,
        before_days: 1,
        hour: 9,
        attempts: 5,
        first_backoff: std::time::Duration::from_secs(30),
        timeout: std::time::Duration::from_secs(10),
    }))
}

/// The dashboard, started on `addr`: its URL and its task.
async fn start_dashboard(
    addr: std::net::SocketAddr,
    data: &std::path::Path,
    store: Option<&str>,
    state: &HubState,
    shutdown: CancellationToken,
) -> anyhow::Result<(String, tokio::task::JoinHandle<anyhow::Result<()>>)> {
    let users = pingan_hub::access::users::Users::open_at(data, store)
        .with_context(|| format!("opening the web accounts in {}", data.display()))?;
    let web_listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the dashboard's {addr}"))?;
    let tls = state.auth.tls().cloned();
    let url = format!(
        "{}://{}",
        if tls.is_some() { "https" } else { "http" },
        web_listener.local_addr()?
    );
    let web = pingan_hub::web::Web::new(state.clone(), users, tls.is_some());
    let task = tokio::spawn(pingan_hub::web::serve(web_listener, web, tls, shutdown));
    Ok((url, task))
}

/// How often a serving hub saves its rollups when reports came in.
const SAVE_ROLLUPS_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Saves the rollups for a fast restart: at once if the start rebuilt any period, then every
/// [`SAVE_ROLLUPS_EVERY`] when reports came in, until `shutdown` (the caller saves once more
/// after the store closed).
async fn keep_rollups_saved(
    engine: std::sync::Arc<pingan_hub::query::Engine>,
    shutdown: CancellationToken,
) {
    while !shutdown.is_cancelled() {
        save_rollups(engine.clone()).await;
        tokio::select! {
            () = tokio::time::sleep(SAVE_ROLLUPS_EVERY) => {}
            () = shutdown.cancelled() => {}
        }
    }
}

async fn save_rollups(engine: std::sync::Arc<pingan_hub::query::Engine>) {
    let started = std::time::Instant::now();
    match tokio::task::spawn_blocking(move || engine.save_snapshot()).await {
        Ok(Ok(0)) => {}
        Ok(Ok(periods)) => {
            tracing::info!(periods, elapsed = ?started.elapsed(), "rollups saved for a fast restart")
        }
        // a cache: the next start rebuilds from the store
        Ok(Err(e)) => tracing::warn!(error = %e, "could not save the rollups"),
        Err(e) => tracing::warn!(error = %e, "saving the rollups stopped"),
    }
}

async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let (catalogue, areas) = args.registry.load(args.area)?;
    let departments = args
        .departments
        .as_deref()
        .map(|p| pingan_hub::cmd::config::load_departments(p, &areas))
        .transpose()?;
    let store = args.store.at(&args.data);
    let mut state = HubState::open_for_import(&args.data, store.clone(), catalogue, areas)
        .with_context(|| format!("opening the store {}", store.shown()))?;
    if let Some(d) = departments {
        state = state.with_departments(d);
    }
    let mut refused = 0;
    for file in &args.file {
        let started = std::time::Instant::now();
        let summary = match pingan_hub::cmd::import::import_file(&state, file).await {
            Ok(s) => s,
            Err(e) => {
                state.store.close();
                return Err(e);
            }
        };
        println!(
            "{}：读入 {} 份报表，用时 {:.1?}：新存 {}，已存过 {}，拒收 {} ({} reports read: {} stored, {} already stored, {} refused)",
            file.display(),
            summary.reports,
            started.elapsed(),
            summary.stored,
            summary.duplicates,
            summary.refused.len(),
            summary.reports,
            summary.stored,
            summary.duplicates,
            summary.refused.len()
        );
        for (line, reason) in summary.refused.iter().take(50) {
            println!("  第 {line} 行 (line {line})：{reason}");
        }
        if summary.refused.len() > 50 {
            println!("  …… 另有 {} 份", summary.refused.len() - 50);
        }
        refused += summary.refused.len();
    }
    state.store.close();
    anyhow::ensure!(
        refused == 0,
        "{refused} 份报表被拒收，被拒收的报表一个数也没有存入；改正后重新导入，已存入的不会重复 ({refused} reports were refused; nothing of them was stored)"
    );
    Ok(())
}

fn certs(cmd: CertsCommand) -> anyhow::Result<()> {
    use pingan_hub::access::tls::certs;
    match cmd {
        CertsCommand::Init { dir } => {
            let (cert, key) = certs::init(&dir)?;
            println!(
                "已创建 CA：{}（发给每个单位）、{}（私钥，妥善保管，勿外传）(CA created: the first for every office, the second kept secret)",
                cert.display(),
                key.display()
            );
        }
        CertsCommand::Issue {
            dir,
            role,
            area,
            department,
            hosts,
            days,
        } => {
            let mut req = certs::IssueRequest::valid_for_days(role, area, days);
            req.hosts.extend(hosts);
            if let Some(d) = department {
                anyhow::ensure!(
                    role == pingan_hub::access::tls::Role::Node,
                    "--department 只用于部门的 node 证书 (a department's certificate has role node)"
                );
                anyhow::ensure!(
                    pingan_domain::department::valid_id(&d),
                    "部门代码「{d}」应以小写字母开头，只含小写字母、数字、- 和 _，例如 sw-510722"
                );
                req.department = Some(d);
            }
            let (cert, key, issued) = certs::issue(&dir, &req)?;
            println!(
                "已签发 {} 的证书，序列号 {}：{} 和 {}（连同 CA 的 ca.pem 一起装到该单位的电脑上）(issued: install both with ca.pem on the office's machine)",
                req.uri(),
                issued.serial,
                cert.display(),
                key.display()
            );
        }
    }
    Ok(())
}

/// Cancels `shutdown` on SIGTERM or SIGINT. The handlers are installed before this returns,
/// so a signal right after the "listening" line is not lost.
fn watch_signals(shutdown: CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutdown requested, finishing in-flight work");
        shutdown.cancel();
    });
    Ok(())
}
