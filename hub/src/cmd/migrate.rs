//! `pingan-hub migrate --from A --to B`: a stopped hub's store copied to another database
//! (a data directory's SQLite to PostgreSQL, or back), its accounts with it, then checked
//! period by period; the command fails unless every period reads back the same.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use crate::{
    access::users::Users,
    store::{DataLock, Store, StoreAt, migrate},
};

/// `pingan-hub migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The store to copy: a hub's data directory (SQLite) or postgres://... (stop its hubs).
    #[arg(long)]
    pub from: String,
    /// Where to copy it: an empty data directory (SQLite) or an empty postgres://... database.
    #[arg(long)]
    pub to: String,
}

/// One side of a migration: where its store and accounts are, and the data directory's lock
/// (a SQLite store is only copied while no hub has it open).
struct Side {
    store: StoreAt,
    dir: Option<PathBuf>,
    _lock: Option<DataLock>,
}

impl Side {
    /// `text` as `--from` (`create` false: the data directory must be there) or `--to`.
    fn new(text: &str, create: bool) -> anyhow::Result<Side> {
        if StoreAt::is_postgres_url(text) {
            return Ok(Side {
                store: StoreAt::Postgres(text.to_owned()),
                dir: None,
                _lock: None,
            });
        }
        let dir = PathBuf::from(text);
        if create {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        } else {
            anyhow::ensure!(
                dir.join(crate::store::DB_FILE).exists(),
                "{} 里没有 hub 的存储（--from 给 pingan-hub serve 的数据目录或 postgres://...）(no hub store there)",
                dir.display()
            );
        }
        let lock = DataLock::take(&dir)?;
        Ok(Side {
            store: StoreAt::new(&dir, None),
            dir: Some(dir),
            _lock: Some(lock),
        })
    }

    fn users(&self) -> anyhow::Result<Option<Users>> {
        match (&self.dir, &self.store) {
            (Some(dir), _) if !dir.join(crate::access::users::USERS_FILE).exists() => Ok(None),
            (Some(dir), _) => Ok(Some(Users::open(dir)?)),
            (None, StoreAt::Postgres(url)) => {
                Ok(Some(Users::open_at(std::path::Path::new("."), Some(url))?))
            }
            (None, StoreAt::Sqlite(_)) => Ok(None),
        }
    }

    fn users_to(&self) -> anyhow::Result<Users> {
        match (&self.dir, &self.store) {
            (Some(dir), _) => Ok(Users::open(dir)?),
            (None, StoreAt::Postgres(url)) => {
                Ok(Users::open_at(std::path::Path::new("."), Some(url))?)
            }
            (None, StoreAt::Sqlite(p)) => anyhow::bail!("no accounts beside {}", p.display()),
        }
    }
}

/// Runs `pingan-hub migrate`.
pub fn run(args: &MigrateArgs) -> anyhow::Result<()> {
    let from = Side::new(&args.from, false)?;
    let to = Side::new(&args.to, true)?;
    anyhow::ensure!(
        from.store != to.store,
        "--from 和 --to 是同一个存储 (the same store)"
    );
    eprintln!(
        "迁移 (migrating) {} → {}",
        from.store.shown(),
        to.store.shown()
    );
    let started = std::time::Instant::now();
    let copied = Store::migrate(&from.store, &to.store, |what, n| {
        eprintln!("  {what}: {n}");
    })?;
    let mut accounts = 0;
    if let Some(users) = from.users()? {
        let target = to.users_to()?;
        for table in migrate::ACCOUNT_TABLES {
            accounts += migrate::copy_table(&users.db(), &target.db(), table)?;
        }
    }
    println!("期间\t源份数\t目标份数\t摘要 (SHA-256)\t一致 (period, revisions, digest, same)");
    for (a, b) in &copied.periods {
        println!(
            "{}\t{}\t{}\t{}\t{}",
            a.period,
            a.revisions,
            b.revisions,
            &a.digest[..16],
            if a == b { "是" } else { "否 (DIFFERENT)" }
        );
    }
    let revisions: u64 = copied.periods.iter().map(|(a, _)| a.revisions).sum();
    if revisions == 0 {
        eprintln!("注意 (note)：源存储里没有报表 (the source holds no reports)");
    }
    anyhow::ensure!(
        copied.verified(),
        "复制后校验不一致：目标存储与源存储不同，请勿使用目标存储 (the copy does not check: do not use it)"
    );
    println!(
        "已迁移并校验 {} 个期间的 {revisions} 份报表、{accounts} 条账号记录，用时 {:.1?} (copied and checked)",
        copied.periods.len(),
        started.elapsed()
    );
    Ok(())
}
