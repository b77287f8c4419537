//! `pingan-hub bulletin`: the 通报 of an area for a period, asked of a hub over gRPC with a
//! leader's viewer certificate, written as a Word document (and a print-ready HTML page).

use std::path::PathBuf;

use clap::Args;
use pingan_domain::{AreaCode, Span, pb};

use crate::{bulletin, cmd::query_client::ViewerTlsArgs};

/// `pingan-hub bulletin`.
#[derive(Debug, Args)]
pub struct BulletinArgs {
    /// The hub's address.
    #[arg(long, env = "PINGAN_HUB", default_value = "https://localhost:7400")]
    pub hub: String,
    #[command(flatten)]
    pub tls: ViewerTlsArgs,
    /// The area whose bulletin it is, e.g. 510722.
    #[arg(long)]
    pub area: String,
    /// The period: 2026-10, 2026年10月, 2026-Q3, 2026-01..2026-10.
    #[arg(long)]
    pub period: String,
    /// The assessment scheme (TOML, UTF-8 or GBK); default: the hub's own.
    #[arg(long)]
    pub scheme: Option<PathBuf>,
    /// Where to write the Word document.
    #[arg(long, default_value = "通报.docx")]
    pub out: PathBuf,
    /// Also write the print-ready HTML view here.
    #[arg(long)]
    pub html: Option<PathBuf>,
}

/// Asks the hub for the bulletin's answers and writes it.
pub async fn run(a: BulletinArgs) -> anyhow::Result<()> {
    let area: AreaCode = a
        .area
        .trim()
        .parse()
        .map_err(|e| anyhow::anyhow!("--area {}: {e}", a.area))?;
    let span = Span::parse_typed(&a.period).map_err(|e| anyhow::anyhow!("--period: {e}"))?;
    let scheme = crate::cmd::scheme_text(a.scheme.as_deref())?;
    let config = a.tls.client().config(&a.hub)?;
    let channel = pingan_outbox::client_tls::endpoint(&a.hub, config.as_ref())?
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!(pingan_outbox::client_tls::describe(&a.hub, &e)))?;
    let status = |e: tonic::Status| anyhow::anyhow!("{:?}: {}", e.code(), e.message());
    let mut q = pb::query_service_client::QueryServiceClient::new(channel.clone())
        .max_decoding_message_size(64 * 1024 * 1024);
    let rollup = async |s: Span| {
        q.clone()
            .rollup(pb::RollupRequest {
                area: area.to_string(),
                period: s.to_string(),
                ..Default::default()
            })
            .await
            .map(tonic::Response::into_inner)
    };
    let now = rollup(span).await.map_err(status)?;
    let year_earlier = rollup(span.year_earlier()).await.map_err(status)?;
    let previous = rollup(span.previous()).await.map_err(status)?;
    let mut rankings = Vec::new();
    if area.level().child().is_some() {
        for m in bulletin::KEY_RATES {
            rankings.push(
                q.compare(pb::CompareRequest {
                    area: area.to_string(),
                    period: span.to_string(),
                    metric: m.into(),
                    page_size: crate::grpc::query_service::MAX_PAGE,
                    ..Default::default()
                })
                .await
                .map_err(status)?
                .into_inner(),
            );
        }
    }
    // 考核 when the scheme assesses areas under this one (else the bulletin goes without it)
    let assess = match q
        .assess(pb::AssessRequest {
            area: area.to_string(),
            period: span.to_string(),
            scheme,
            approved_only: false,
        })
        .await
    {
        Ok(r) => Some(r.into_inner()),
        Err(e)
            if e.code() == tonic::Code::InvalidArgument
                && e.message().contains("考核方案")
                && a.scheme.is_none() =>
        {
            None
        }
        Err(e) => return Err(status(e)),
    };
    let completeness = q
        .completeness(pb::CompletenessRequest {
            area: area.to_string(),
            period: span.to_string(),
            page_size: crate::grpc::query_service::MAX_PAGE,
            ..Default::default()
        })
        .await
        .map_err(status)?
        .into_inner();
    let trend = q
        .trend(pb::TrendRequest {
            area: area.to_string(),
            period: span.to.to_string(),
            periods: 12,
            metric: bulletin::TREND_METRIC.into(),
            approved_only: false,
            level: String::new(),
            as_columns: false,
        })
        .await
        .map_err(status)?
        .into_inner();
    let locks = pb::lock_service_client::LockServiceClient::new(channel)
        .locks(pb::LocksRequest {
            period: span.to.to_string(),
            history: false,
        })
        .await
        .map_err(status)?
        .into_inner()
        .locks;
    let inputs = bulletin::Inputs {
        area: area.to_string(),
        name: now.name.clone(),
        span,
        now,
        year_earlier,
        previous,
        completeness,
        rankings,
        assess,
        trend,
        lock: bulletin::lock_over(&locks, area),
        issued: bulletin::issued_today(crate::Clock::System.today()),
    };
    let b = bulletin::compose(&inputs);
    std::fs::write(&a.out, bulletin::docx(&b)?)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", a.out.display()))?;
    println!("通报已写入 {} ({})", a.out.display(), b.title);
    if let Some(h) = &a.html {
        std::fs::write(h, bulletin::html(&b))
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", h.display()))?;
        println!("打印版已写入 {}", h.display());
    }
    for s in &b.status {
        println!("{s}");
    }
    Ok(())
}
