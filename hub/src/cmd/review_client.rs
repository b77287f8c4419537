//! `pingan-hub review list|approve|return|history`: 审核 with a leader's viewer certificate.

use clap::{Args, Subcommand};
use pingan_domain::pb::{self, review_service_client::ReviewServiceClient};

use crate::cmd::query_client::ViewerTlsArgs;

/// What to do.
#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// The reports of a period below an area, with where each stands (待审核, 已审核, 退回).
    List(ListArgs),
    /// Approve reports (their current revisions).
    Approve(DecideArgs),
    /// Return reports to their offices, with the reason they will see.
    Return(DecideArgs),
    /// Every step of one office's report for a period: each revision as submitted, each
    /// decision on it (退回 with its reason, 已审核), oldest first.
    History(HistoryArgs),
}

/// `review history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub hub: HubArgs,
    /// The office's area code.
    #[arg(long)]
    pub report: String,
    #[arg(long)]
    pub period: String,
}

/// The hub and the viewer certificate.
#[derive(Debug, Args)]
pub struct HubArgs {
    #[arg(long, env = "PINGAN_HUB", default_value = "https://localhost:7400")]
    pub hub: String,
    #[command(flatten)]
    pub tls: ViewerTlsArgs,
}

/// `review list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub hub: HubArgs,
    #[arg(long)]
    pub area: String,
    #[arg(long)]
    pub period: String,
    /// The form (id or title); default: the default form.
    #[arg(long, default_value = "")]
    pub form: String,
}

/// `review approve|return`.
#[derive(Debug, Args)]
pub struct DecideArgs {
    #[command(flatten)]
    pub hub: HubArgs,
    /// The reports' areas (comma-separated or repeated).
    #[arg(long = "report", required = true, value_delimiter = ',')]
    pub reports: Vec<String>,
    #[arg(long)]
    pub period: String,
    /// Why (required to return; shown to the office).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Who, as you want to be named (default: your certificate's identity).
    #[arg(long, default_value = "")]
    pub by: String,
}

async fn client(h: &HubArgs) -> anyhow::Result<ReviewServiceClient<tonic::transport::Channel>> {
    let config = h.tls.client().config(&h.hub)?;
    let channel = pingan_outbox::client_tls::endpoint(&h.hub, config.as_ref())?
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!(pingan_outbox::client_tls::describe(&h.hub, &e)))?;
    Ok(ReviewServiceClient::new(channel))
}

fn line(i: &pb::ReviewItem) -> String {
    let state = match i.state.as_str() {
        "approved" => "已审核",
        "returned" => "退回",
        "pending" => "待审核",
        "submitted" => "上报",
        _ => "不审核",
    };
    let by = if i.by.is_empty() {
        String::new()
    } else {
        format!(
            "（{} {}{}）",
            i.by,
            crate::clock::minute_text(i.at_ms),
            if i.reason.is_empty() {
                String::new()
            } else {
                format!("：{}", i.reason)
            }
        )
    };
    format!(
        "{} {} {} 第 {} 版 {state}{by}",
        i.area, i.name, i.period, i.revision
    )
}

/// Runs a review command against a hub.
pub async fn run(cmd: ReviewCommand) -> anyhow::Result<()> {
    let status = |e: tonic::Status| anyhow::anyhow!("{:?}: {}", e.code(), e.message());
    let typed = |p: &str| {
        pingan_domain::Span::parse_typed(p)
            .map(|s| s.to_string())
            .unwrap_or_else(|_| p.to_owned())
    };
    match cmd {
        ReviewCommand::List(a) => {
            let mut c = client(&a.hub).await?;
            let r = c
                .pending(pb::PendingRequest {
                    area: a.area,
                    period: typed(&a.period),
                    form: a.form,
                })
                .await
                .map_err(status)?
                .into_inner();
            for i in &r.items {
                println!("{}", line(i));
            }
        }
        ReviewCommand::History(a) => {
            let mut c = client(&a.hub).await?;
            let r = c
                .history(pb::ReviewStatusRequest {
                    area: a.report,
                    period: typed(&a.period),
                })
                .await
                .map_err(status)?
                .into_inner();
            for i in &r.items {
                println!("{}", line(i));
            }
        }
        ReviewCommand::Approve(a) | ReviewCommand::Return(a) if a.reports.is_empty() => {
            anyhow::bail!("--report is required")
        }
        ReviewCommand::Approve(a) => decide(a, true, &status, &typed).await?,
        ReviewCommand::Return(a) => decide(a, false, &status, &typed).await?,
    }
    Ok(())
}

async fn decide(
    a: DecideArgs,
    approve: bool,
    status: &dyn Fn(tonic::Status) -> anyhow::Error,
    typed: &dyn Fn(&str) -> String,
) -> anyhow::Result<()> {
    let mut c = client(&a.hub).await?;
    let period = typed(&a.period);
    let mut targets = Vec::new();
    for area in &a.reports {
        // the current revision: a correction that arrives meanwhile is reviewed anew
        let now = c
            .status(pb::ReviewStatusRequest {
                area: area.clone(),
                period: period.clone(),
            })
            .await
            .map_err(status)?
            .into_inner();
        targets.push(pb::ReviewTarget {
            area: area.clone(),
            period: period.clone(),
            revision: now.revision,
        });
    }
    let r = c
        .decide(pb::DecideRequest {
            targets,
            approve,
            reason: a.reason,
            by: a.by,
        })
        .await
        .map_err(status)?
        .into_inner();
    for i in &r.items {
        println!("{}", line(i));
    }
    for why in &r.refused {
        eprintln!("未办理 (not done)：{why}");
    }
    anyhow::ensure!(r.refused.is_empty(), "{} 份没有办理", r.refused.len());
    Ok(())
}
