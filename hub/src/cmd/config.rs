//! Command-line configuration of `pingan-hub` (clap derive). The flags a deployment sets once
//! (data directory, addresses, TLS files, deadlines, federation) also read an environment
//! variable, named in `--help`; flags are typed (area codes, levels, roles, addresses), so a
//! wrong value is refused before anything starts.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use pingan_domain::{AreaCode, Areas, Catalogue, fixtures};

/// pingan-hub: receives 平安建设 reports from nodes and answers leaders' questions.
#[derive(Debug, Parser)]
#[command(name = "pingan-hub", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the hub's gRPC server.
    Serve(Box<ServeArgs>),
    /// Start a hub on loopback and have 三台县's nodes report to it (the README's demo).
    Demo(DemoArgs),
    /// Ask a hub: rollup, compare, trend, completeness or departments.
    #[command(subcommand)]
    Query(crate::cmd::query_client::QueryCommand),
    /// 锁定: lock or unlock a form's period for a subtree, or list the locks (a leader's viewer
    /// certificate of the subtree).
    #[command(subcommand)]
    Locks(crate::cmd::lock_client::LockCommand),
    /// 审核: list the reports below an area, approve them or return them (a leader's viewer
    /// certificate of an area above them).
    #[command(subcommand)]
    Review(crate::cmd::review_client::ReviewCommand),
    /// 通报: write an area's bulletin for a period as a Word document (and a print view):
    /// 总体情况, rankings, 考核, 通报表扬/批评 and charts, from the hub's answers.
    Bulletin(crate::cmd::bulletin_client::BulletinArgs),
    /// Load historical figures from CSV into a (stopped) hub's store, validated like any report.
    Import(ImportArgs),
    /// Certificates for mutual TLS: a CA, and certificates for nodes, viewers and hubs.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Copy a stopped hub's store to another database and check the copy, period by period:
    /// SQLite (a data directory) to PostgreSQL (postgres://...), or back.
    Migrate(crate::cmd::migrate::MigrateArgs),
    /// Subtrees owned by child hubs (federation), in a stopped hub's store.
    #[command(subcommand)]
    Owners(OwnersCommand),
    /// Web accounts of leaders (the dashboard): each reads one area's subtree.
    #[command(subcommand)]
    Users(UsersCommand),
    /// The report forms (报表) of a catalogue: who reports what, for which periods, by when.
    /// With --data, also checks that the catalogue keeps every figure the store holds (do this
    /// before restarting a hub with a changed catalogue).
    Forms(FormsArgs),
}

/// `pingan-hub forms`.
#[derive(Debug, Args)]
pub struct FormsArgs {
    /// Indicator catalogue (TOML); default: the built-in catalogue.
    #[arg(long, env = "PINGAN_CATALOGUE")]
    pub catalogue: Option<PathBuf>,
    /// A hub's data directory (the hub may be running): check the catalogue against its store.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// List every form's metrics too.
    #[arg(long)]
    pub metrics: bool,
}

/// `pingan-hub users`. Passwords are read from the terminal without echo, or as one line on
/// standard input when it is not a terminal.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add an account that reads AREA's subtree.
    Add {
        #[arg(long, env = "PINGAN_HUB_DATA", default_value_os_t = default_data_dir())]
        data: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
        /// The area whose subtree the user reads, e.g. 510722101.
        #[arg(long)]
        area: AreaCode,
        #[command(flatten)]
        registry: RegistryArgs,
        /// User name (Chinese characters allowed).
        name: String,
    },
    /// Every account and the area it reads.
    List {
        #[arg(long, env = "PINGAN_HUB_DATA", default_value_os_t = default_data_dir())]
        data: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Set a new password; the user's sessions end.
    Passwd {
        #[arg(long, env = "PINGAN_HUB_DATA", default_value_os_t = default_data_dir())]
        data: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
        name: String,
    },
    /// Remove an account; its sessions end.
    Remove {
        #[arg(long, env = "PINGAN_HUB_DATA", default_value_os_t = default_data_dir())]
        data: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
        name: String,
    },
}

/// `pingan-hub owners`.
#[derive(Debug, Subcommand)]
pub enum OwnersCommand {
    /// Which child hub owns which subtree.
    List {
        #[arg(long, env = "PINGAN_HUB_DATA", default_value_os_t = default_data_dir())]
        data: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Forget the owner of a subtree (its child hub was replaced); the next child hub to forward
    /// for it claims it.
    Release {
        #[arg(long, env = "PINGAN_HUB_DATA", default_value_os_t = default_data_dir())]
        data: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
        /// The subtree's root, e.g. 510722.
        area: AreaCode,
    },
}

/// `pingan-hub certs`.
#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Create the deployment's CA (ca.pem, ca.key) in a directory.
    Init {
        /// Directory for the CA (keep ca.key offline where you can).
        #[arg(long)]
        dir: PathBuf,
    },
    /// Issue a certificate (ROLE-AREA.pem, ROLE-AREA.key) signed by the CA in --dir.
    Issue {
        /// Directory holding ca.pem and ca.key; the new files go there too.
        #[arg(long)]
        dir: PathBuf,
        /// node (submits for its area), viewer (reads its subtree) or hub (serves, federates).
        #[arg(long, value_enum)]
        role: crate::access::tls::Role,
        /// The area the identity is for, e.g. 510722101001; for a department, the area it
        /// belongs to.
        #[arg(long)]
        area: AreaCode,
        /// A department's (条) node: the department's id from the hub's departments file, e.g.
        /// sw-510722 (role node; the certificate says pingan://node/AREA/ID).
        #[arg(long)]
        department: Option<String>,
        /// Host names or IP addresses clients use to reach a hub (hub role; repeatable).
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// Days the certificate is valid, from today: 1 to 3650 (ten years).
        #[arg(long, default_value_t = 730, value_parser = clap::value_parser!(i64).range(1..=3650))]
        days: i64,
    },
}

/// The hub's TLS and access flags.
#[derive(Debug, Args, Clone, Default)]
pub struct ServerTlsArgs {
    /// CA certificate (PEM) that client certificates must chain to.
    #[arg(long, env = "PINGAN_CA")]
    pub ca: Option<PathBuf>,
    /// The hub's certificate (PEM); reloaded when the file changes.
    #[arg(long, env = "PINGAN_CERT")]
    pub cert: Option<PathBuf>,
    /// The hub's private key (PEM); reloaded when the file changes.
    #[arg(long, env = "PINGAN_KEY")]
    pub key: Option<PathBuf>,
    /// Revoked certificate serials (hex), one a line; reloaded when the file changes.
    #[arg(long, env = "PINGAN_DENY_LIST")]
    pub deny_list: Option<PathBuf>,
    /// Subtrees granted to identities beyond their own area (TOML, see README).
    #[arg(long, env = "PINGAN_GRANTS")]
    pub grants: Option<PathBuf>,
    /// Serve plaintext gRPC with no authentication (trusted networks and demos only).
    #[arg(long, env = "PINGAN_INSECURE")]
    pub insecure: bool,
}

impl ServerTlsArgs {
    /// The access rules these flags describe, with clear errors.
    pub fn authorizer(&self) -> anyhow::Result<crate::access::authz::Authorizer> {
        if self.insecure {
            tracing::warn!("--insecure: plaintext gRPC, no client certificates, no access control");
            return Ok(crate::access::authz::Authorizer::insecure());
        }
        let (Some(ca), Some(cert), Some(key)) = (&self.ca, &self.cert, &self.key) else {
            anyhow::bail!(
                "mutual TLS needs --ca, --cert and --key (create them with `pingan-hub certs init` and `certs issue --role hub`), or --insecure for plaintext"
            );
        };
        let tls = crate::access::tls::ServerTls::load(crate::access::tls::TlsFiles {
            ca: ca.clone(),
            cert: cert.clone(),
            key: key.clone(),
            deny_list: self.deny_list.clone(),
        })?;
        let grants = match &self.grants {
            Some(p) => crate::access::authz::load_grants(p)?,
            None => Vec::new(),
        };
        Ok(crate::access::authz::Authorizer::mtls(tls, grants))
    }
}

/// Where the store is, when not SQLite in the data directory.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Keep the store in a PostgreSQL database (15 or later, or one that speaks its protocol
    /// and SQL) instead of SQLite in --data: postgres://USER:PASSWORD@HOST:PORT/DATABASE.
    /// Several hub processes may share one database; each keeps its own --data (rollup
    /// snapshot, certificates).
    #[arg(long = "store", env = "PINGAN_HUB_STORE", value_parser = parse_store)]
    pub store: Option<String>,
}

impl StoreArgs {
    /// The store of the hub whose data directory is `data`.
    pub fn at(&self, data: &std::path::Path) -> crate::store::StoreAt {
        crate::store::StoreAt::new(data, self.store.as_deref())
    }
}

fn parse_store(text: &str) -> Result<String, String> {
    if !crate::store::StoreAt::is_postgres_url(text) {
        return Err(format!(
            "--store 应为 postgres://用户:密码@主机:端口/数据库 (a postgres:// URL), 而不是 {text:?}；SQLite 存储用 --data 目录即可"
        ));
    }
    text.parse::<tokio_postgres::Config>().map_err(|e| {
        format!(
            "--store {text:?} 不是有效的 PostgreSQL 连接串 (not a valid connection string): {e}"
        )
    })?;
    Ok(text.to_owned())
}

/// `pingan-hub serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Directory holding the store (created if missing).
    #[arg(long, env = "PINGAN_HUB_DATA", default_value_os_t = default_data_dir())]
    pub data: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on.
    #[arg(long, env = "PINGAN_HUB_LISTEN", default_value = "127.0.0.1:7400")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub tls: ServerTlsArgs,
    /// Monthly figures are on time until the end of this day of the next month.
    #[arg(long, env = "PINGAN_MONTHLY_DUE_DAY", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=28))]
    pub monthly_due_day: u32,
    /// Weekly figures are on time until the end of this many days after the week.
    #[arg(long, env = "PINGAN_WEEKLY_DUE_DAYS", default_value_t = 2)]
    pub weekly_due_days: u32,
    /// Daily figures are on time until this hour of the same day.
    #[arg(long, env = "PINGAN_DAILY_DUE_HOUR", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=23))]
    pub daily_due_hour: u32,
    #[command(flatten)]
    pub federation: FederationArgs,
    /// Departments (条) that report their own form: CSV `id,name,area,system` (or
    /// `部门代码,部门名称,所属区划,系统`), UTF-8 or GBK. Their figures are kept apart from the
    /// divisions' totals; `pingan-hub query departments` compares them.
    #[arg(long, env = "PINGAN_DEPARTMENTS")]
    pub departments: Option<PathBuf>,
    /// 考核: the assessment scheme (TOML, UTF-8 or GBK) `query assess`, the dashboard's 考核 and
    /// the bulletin use when they name none; default: the shipped sample
    /// (domain/data/assessment-township.toml).
    #[arg(long, env = "PINGAN_SCHEME")]
    pub scheme: Option<PathBuf>,
    /// 锁定: a form's periods lock by themselves this many days after its deadline (a report
    /// or correction after that is refused until a leader unlocks it); 0: never.
    #[arg(long, env = "PINGAN_LOCK_AFTER_DAYS", default_value_t = 0)]
    pub lock_after_days: u32,
    /// 催报: post who has not reported, per township, to this webhook (a 企业微信 or 钉钉 group
    /// robot's URL, or any JSON endpoint) at 09:00 the day before each deadline and after it.
    #[arg(long, env = "PINGAN_REMIND_WEBHOOK")]
    pub remind_webhook: Option<String>,
    /// The webhook's message format.
    #[arg(
        long,
        env = "PINGAN_REMIND_FORMAT",
        value_enum,
        default_value = "wecom"
    )]
    pub remind_format: crate::remind::Format,
    /// Who to tell in each area: CSV area,person,phone[,wecom,dingtalk] (or 区划代码,联系人,电话,企业微信,钉钉).
    #[arg(long, env = "PINGAN_CONTACTS")]
    pub contacts: Option<PathBuf>,
    /// Serve the leaders' web dashboard on this address (HTTPS with the hub's certificate;
    /// accounts from `pingan-hub users add`), e.g. 0.0.0.0:7443. Off when not given.
    #[arg(long, env = "PINGAN_WEB_LISTEN")]
    pub web_listen: Option<SocketAddr>,
    /// Map boundaries for the dashboard: a directory of GeoJSON FeatureCollections whose
    /// features carry the division code (`properties.code`, `adcode` or `区划代码`); the page
    /// draws an area's children that have one as a map of the metric picked.
    #[arg(long, env = "PINGAN_BOUNDARIES")]
    pub boundaries: Option<PathBuf>,
}

/// Federation: forwarding this hub's rollups to a parent hub.
#[derive(Debug, Args, Clone, Default)]
pub struct FederationArgs {
    /// The parent hub (e.g. https://mianyang.example:7400): forward this hub's rollups there,
    /// with this hub's own certificate (--cert, --key, --ca).
    #[arg(long, env = "PINGAN_PARENT")]
    pub parent: Option<String>,
    /// This hub's jurisdiction: only its subtree of the divisions is loaded, and forwarding
    /// to --parent is for it; default: the area of the hub certificate (none with --insecure:
    /// the whole registry).
    #[arg(long, env = "PINGAN_HUB_AREA")]
    pub area: Option<String>,
    /// How fine the forwarded rollups are: county (totals only), township or village; default:
    /// the jurisdiction's own level (one rollup for the whole subtree).
    #[arg(long, env = "PINGAN_FORWARD_DEPTH")]
    pub forward_depth: Option<pingan_domain::Level>,
    /// How long between full checks of every rollup against what the parent last received
    /// (600, 10m, 1h ...; changes are forwarded as they commit, whatever this is).
    #[arg(long, env = "PINGAN_FORWARD_EVERY", default_value = "10m", value_parser = pingan_domain::duration::parse)]
    pub forward_every: std::time::Duration,
    /// Talk plaintext to an http:// parent (trusted networks only).
    #[arg(long, env = "PINGAN_PARENT_INSECURE")]
    pub parent_insecure: bool,
    /// Forward approved figures only (审核): on a form with review, a report below this hub's
    /// level goes up once approved (its latest approved revision), and an approval forwards it.
    #[arg(long, env = "PINGAN_FORWARD_APPROVED_ONLY")]
    pub forward_approved_only: bool,
}

impl FederationArgs {
    /// The hub's jurisdiction: `--area`, or else the area of its hub certificate; none for a
    /// hub serving --insecure without --area (it holds the whole registry).
    pub fn jurisdiction(&self, tls: &ServerTlsArgs) -> anyhow::Result<Option<AreaCode>> {
        match (&self.area, &tls.cert) {
            (Some(a), _) => Ok(Some(a.parse().with_context(|| format!("--area {a}"))?)),
            (None, Some(cert)) if !tls.insecure => {
                use rustls_pki_types::{CertificateDer, pem::PemObject as _};
                let der = CertificateDer::from_pem_file(cert)
                    .with_context(|| format!("reading {}", cert.display()))?;
                Ok(Some(
                    crate::access::tls::Identity::from_der(&der)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", cert.display()))?
                        .area,
                ))
            }
            _ => Ok(None),
        }
    }

    /// The forwarding configuration, when --parent is given; `data` is the hub's data directory.
    pub fn config(
        &self,
        tls: &ServerTlsArgs,
        data: &std::path::Path,
    ) -> anyhow::Result<Option<crate::federation::forward::ForwardConfig>> {
        let Some(parent) = &self.parent else {
            return Ok(None);
        };
        let client = pingan_outbox::client_tls::ClientTlsArgs {
            ca: tls.ca.clone(),
            cert: tls.cert.clone(),
            key: tls.key.clone(),
            insecure: self.parent_insecure,
        };
        let client_tls = client
            .config(parent)
            .context("connecting to the parent hub (--parent)")?;
        let Some(root) = self.jurisdiction(tls)? else {
            anyhow::bail!("--parent needs the hub's area: give --area");
        };
        let depth = self.forward_depth.unwrap_or_else(|| root.level());
        Ok(Some(crate::federation::forward::ForwardConfig {
            parent: parent.clone(),
            plan: crate::federation::forward::Plan::new(root, depth)?.with_figures(
                pingan_domain::question::Figures::approved_only(self.forward_approved_only),
            ),
            tls: client_tls,
            dir: data.join("forward"),
            sweep_every: self.forward_every,
            timeout: std::time::Duration::from_secs(30),
            max_backoff: std::time::Duration::from_secs(60),
        }))
    }
}

impl ServeArgs {
    /// The deadlines configured.
    pub fn deadlines(&self) -> crate::query::Deadlines {
        crate::query::Deadlines {
            monthly_day: self.monthly_due_day,
            weekly_days: self.weekly_due_days,
            daily_hour: self.daily_due_hour,
            forms: Default::default(),
        }
    }
}

/// `pingan-hub import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The hub's data directory (stop the hub first; it rebuilds its rollups at start-up).
    #[arg(long, env = "PINGAN_HUB_DATA", default_value_os_t = default_data_dir())]
    pub data: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
    /// CSV file: `area,period,metric,value[,part]` (long) or `area,period,<metric>...` (wide).
    /// Repeat it, or give several after one --file, to load many in one run, in order.
    #[arg(long, required = true, num_args = 1..)]
    pub file: Vec<PathBuf>,
    /// The hub's jurisdiction (as `serve --area`): only its subtree of the divisions is loaded;
    /// reports outside it are refused.
    #[arg(long, env = "PINGAN_HUB_AREA")]
    pub area: Option<AreaCode>,
    /// The departments file (as `serve --departments`): a row whose area is a department's id
    /// (e.g. sw-510722) is that department's report on the departments' form.
    #[arg(long, env = "PINGAN_DEPARTMENTS")]
    pub departments: Option<PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `pingan-hub demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the demo's hub store here instead of a temporary directory.
    #[arg(long, env = "PINGAN_DEMO_DATA")]
    pub data: Option<PathBuf>,
}

/// Where the areas, their population and the catalogue come from.
#[derive(Debug, Args, Clone, Default)]
pub struct RegistryArgs {
    /// Division codes: `national` for the national registry shipped with pingan, or a
    /// directory in the national CSV format (provinces.csv ... villages.csv[.gz]); default:
    /// the built-in 三台县 (510722) extract.
    #[arg(long, env = "PINGAN_DIVISIONS")]
    pub divisions: Option<PathBuf>,
    /// Population per area and year, CSV `code,year,population`; default: the built-in
    /// synthetic figures when the built-in divisions are used, none otherwise.
    #[arg(long, env = "PINGAN_POPULATION")]
    pub population: Option<PathBuf>,
    /// Indicator catalogue (TOML); default: the built-in catalogue.
    #[arg(long, env = "PINGAN_CATALOGUE")]
    pub catalogue: Option<PathBuf>,
}

/// Reads a departments file against the division registry.
pub fn load_departments(
    path: &std::path::Path,
    areas: &Areas,
) -> anyhow::Result<pingan_domain::department::Departments> {
    let bytes =
        std::fs::read(path).with_context(|| format!("读取部门名录 {} 失败", path.display()))?;
    pingan_domain::department::Departments::from_csv(&bytes, Some(areas))
        .with_context(|| format!("部门名录 {} (departments file)", path.display()))
}

/// The `--divisions` value that names the national registry shipped with pingan.
pub const NATIONAL: [&str; 2] = ["national", "全国"];

impl RegistryArgs {
    /// Loads the catalogue and the division registry, with clear errors. With `within` (the
    /// hub's jurisdiction) only that area's subtree and its ancestors are kept: a county hub
    /// given the national divisions pays for its county, not for the nation.
    pub fn load(&self, within: Option<AreaCode>) -> anyhow::Result<(Catalogue, Areas)> {
        let catalogue = match &self.catalogue {
            Some(path) => Catalogue::load(path)?,
            None => Catalogue::builtin(),
        };
        let mut areas = match &self.divisions {
            Some(dir) if NATIONAL.iter().any(|n| dir.as_os_str() == *n) => {
                fixtures::national_areas(within)
            }
            Some(dir) => Areas::load_dir_within(dir, within)
                .with_context(|| format!("读取区划 {} 失败 (loading divisions)", dir.display()))?,
            None => {
                let extract = fixtures::santai_areas();
                match within {
                    Some(root) => extract.within(root).with_context(|| {
                        format!(
                            "{root} 不在内置的三台县区划里：用 --divisions national（全国区划）或 --divisions DIR"
                        )
                    })?,
                    None => extract,
                }
            }
        };
        if let Some(root) = within {
            anyhow::ensure!(
                areas.get(root).is_some(),
                "本平台的辖区 {root} 不在区划里 (jurisdiction {root} is not in the divisions)"
            );
        }
        if let Some(path) = &self.population {
            let file = std::fs::File::open(path)
                .with_context(|| format!("无法打开人口文件 {} (opening)", path.display()))?;
            areas
                .load_population(std::io::BufReader::new(file))
                .with_context(|| format!("读取人口文件 {} 失败 (loading)", path.display()))?;
        }
        Ok((catalogue, areas))
    }
}

fn default_data_dir() -> PathBuf {
    dirs::data_dir().map_or_else(
        || PathBuf::from("pingan-hub-data"),
        |d| d.join("pingan-hub"),
    )
}
