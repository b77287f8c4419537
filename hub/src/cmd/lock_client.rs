//! `pingan-hub lock|unlock|locks`: a leader closes (锁定) a form's period for their subtree, opens
//! it again, or lists what is locked, over gRPC with their viewer certificate.

use clap::{Args, Subcommand};
use pingan_domain::pb::{self, lock_service_client::LockServiceClient};

use crate::cmd::query_client::ViewerTlsArgs;

/// What to do with locks.
#[derive(Debug, Subcommand)]
pub enum LockCommand {
    /// Lock a form's period for an area's subtree: reports and corrections are refused after.
    Lock(LockArgs),
    /// Unlock it again (recorded in the audit trail).
    Unlock(LockArgs),
    /// The locks and unlocks recorded (of one period), and the automatic rule.
    List(ListArgs),
}

/// Which period of which form, for which subtree.
#[derive(Debug, Args)]
pub struct LockArgs {
    /// The hub's address.
    #[arg(long, env = "PINGAN_HUB", default_value = "https://localhost:7400")]
    pub hub: String,
    #[command(flatten)]
    pub tls: ViewerTlsArgs,
    /// The subtree's root, e.g. 510722 (all of 三台县) or 510722101 (潼川镇).
    #[arg(long)]
    pub area: String,
    /// The period: 2026-10, 2026年10月, 2026-10-H2 ...
    #[arg(long)]
    pub period: String,
    /// The form (id or title); default: the one the area's level reports for the period.
    #[arg(long, default_value = "")]
    pub form: String,
    /// Why (shown to whoever is refused).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Who, as you want to be named (default: your certificate's identity).
    #[arg(long, default_value = "")]
    pub by: String,
    /// Lock (关账) even though reports are missing; recorded in the reason.
    #[arg(long)]
    pub force: bool,
}

/// `pingan-hub locks list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long, env = "PINGAN_HUB", default_value = "https://localhost:7400")]
    pub hub: String,
    #[command(flatten)]
    pub tls: ViewerTlsArgs,
    /// Only this period (and then also what child hubs locked for it).
    #[arg(long, default_value = "")]
    pub period: String,
    /// Also every lock and unlock ever made, oldest first (the audit trail).
    #[arg(long)]
    pub history: bool,
}

async fn client(
    hub: &str,
    tls: &ViewerTlsArgs,
) -> anyhow::Result<LockServiceClient<tonic::transport::Channel>> {
    let config = tls.client().config(hub)?;
    let channel = pingan_outbox::client_tls::endpoint(hub, config.as_ref())?
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!(pingan_outbox::client_tls::describe(hub, &e)))?;
    Ok(LockServiceClient::new(channel))
}

fn line(s: &pb::LockState) -> String {
    format!(
        "{} {} {} {}：{}，{}（{}）",
        s.area,
        s.period,
        s.form,
        if s.locked { "已锁定" } else { "已解锁" },
        s.by,
        crate::clock::minute_text(s.at_ms),
        s.reason
    ) + &if s.via.is_empty() {
        String::new()
    } else {
        format!(" [下级平台 {} 锁定，随其汇总报来]", s.via)
    }
}

/// Runs a lock command against a hub.
pub async fn run(cmd: LockCommand) -> anyhow::Result<()> {
    let status = |e: tonic::Status| anyhow::anyhow!("{:?}: {}", e.code(), e.message());
    match cmd {
        LockCommand::Lock(a) | LockCommand::Unlock(a) if a.area.is_empty() => {
            anyhow::bail!("--area is required")
        }
        LockCommand::Lock(a) => {
            let mut c = client(&a.hub, &a.tls).await?;
            let r = c.lock(request(&a)).await.map_err(status)?.into_inner();
            println!("{}", r.state.as_ref().map(line).unwrap_or_default());
        }
        LockCommand::Unlock(a) => {
            let mut c = client(&a.hub, &a.tls).await?;
            let r = c.unlock(request(&a)).await.map_err(status)?.into_inner();
            println!("{}", r.state.as_ref().map(line).unwrap_or_default());
        }
        LockCommand::List(a) => {
            let mut c = client(&a.hub, &a.tls).await?;
            let r = c
                .locks(pb::LocksRequest {
                    period: a.period,
                    history: a.history,
                })
                .await
                .map_err(status)?
                .into_inner();
            if r.lock_after_days > 0 {
                println!(
                    "自动锁定：各报表截止后 {} 天 (automatic)",
                    r.lock_after_days
                );
            }
            for s in &r.locks {
                println!("{}", line(s));
            }
            if a.history {
                println!("锁定与解锁记录 (every lock and unlock, oldest first)：");
                for s in &r.events {
                    println!("  {}", line(s));
                }
            }
        }
    }
    Ok(())
}

fn request(a: &LockArgs) -> pb::LockRequest {
    pb::LockRequest {
        area: a.area.clone(),
        period: pingan_domain::Span::parse_typed(&a.period)
            .map(|s| s.to_string())
            .unwrap_or_else(|_| a.period.clone()),
        form: a.form.clone(),
        reason: a.reason.clone(),
        by: a.by.clone(),
        force: a.force,
    }
}
