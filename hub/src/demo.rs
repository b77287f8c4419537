//! The README's demo: a hub on loopback, and 三台县's 462 village, 33 township and 1 county
//! nodes, each with its own durable outbox, reporting their figures to it over gRPC.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use anyhow::Context as _;
use pingan_node::{Deliverer, Outbox};
use pingan_proto::{AreaCode, Catalogue, Level, Period, fixtures, pb};
use rand::{Rng, SeedableRng, rngs::StdRng};
use tokio::net::TcpListener;

use crate::{Clock, HubState, Store, config::DemoArgs, server};

/// Plausible monthly figures for an area, deterministic in (area, period).
pub fn figures(area: AreaCode, period: Period) -> Vec<pb::MetricValue> {
    let seed = area.digits()
        ^ (period
            .first_day()
            .to_string()
            .bytes()
            .fold(0u64, |h, b| h * 31 + u64::from(b))
            << 20);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    let mut put = |metric: &str, total: i64, parts: BTreeMap<String, i64>| {
        out.push(pb::MetricValue {
            metric: metric.into(),
            total: Some(total),
            parts: parts.into_iter().collect(),
        })
    };
    let none = BTreeMap::new;
    // areas differ: some are busier than others, all year round
    let busy = 1 + (area.digits() % 7) as i64;
    match area.level() {
        Level::Village => {
            let identified = rng.random_range(0..=busy * 2);
            let mediated = identified - rng.random_range(0..=identified.min(1));
            let resolved = mediated - rng.random_range(0..=mediated.min(1));
            let mut parts = BTreeMap::new();
            let types = [
                "婚姻家庭邻里",
                "土地山林水利权属",
                "村务管理",
                "劳动争议",
                "其他",
            ];
            for _ in 0..identified {
                *parts
                    .entry(types[rng.random_range(0..types.len())].to_owned())
                    .or_insert(0) += 1;
            }
            put("disputes.identified", identified, parts);
            put("disputes.mediated", mediated, none());
            put("disputes.resolved", resolved, none());
            let visitors = rng.random_range(0..=busy);
            put("petitions.visitors", visitors, none());
            put(
                "petitions.repeat_visitors",
                rng.random_range(0..=visitors / 2),
                none(),
            );
            let sessions = rng.random_range(4..=12);
            put("patrol.sessions", sessions, none());
            put(
                "patrol.person_times",
                sessions * rng.random_range(2..=5),
                none(),
            );
            put("patrol.hours", sessions * 2, none());
            put("grid.events_handled", rng.random_range(3..=20), none());
            put("grid.visits", rng.random_range(20..=120), none());
            let found = rng.random_range(0..=4);
            put("hazards.found", found, none());
            put("hazards.fixed", rng.random_range(0..=found), none());
            put("grid.workers", 2 + (area.digits() % 5) as i64, none());
        }
        Level::Township => {
            let mediated = rng.random_range(2..=6 + busy * 2);
            put(
                "disputes.identified",
                mediated + rng.random_range(0..=2),
                none(),
            );
            put("disputes.mediated", mediated, none());
            put(
                "disputes.resolved",
                mediated - rng.random_range(0..=mediated.min(2)),
                none(),
            );
            let mut channels = BTreeMap::new();
            for (c, hi) in [("来信", 3), ("来访", 6), ("网上", 8), ("来电", 4)] {
                channels.insert(c.to_owned(), rng.random_range(0..=hi));
            }
            let letters: i64 = channels.values().sum();
            put("petitions.letters", letters, channels);
            put(
                "petitions.letters_concluded",
                letters - rng.random_range(0..=letters.min(2)),
                none(),
            );
            put("petitions.hotline", rng.random_range(5..=40), none());
            let batches = rng.random_range(0..=1);
            put("petitions.collective_batches", batches, none());
            put(
                "petitions.collective_persons",
                batches * rng.random_range(5..=12),
                none(),
            );
            put("cases.public_order", rng.random_range(0..=6), none());
        }
        _ => {
            let filed = rng.random_range(40..=90);
            put("cases.criminal_filed", filed, none());
            put(
                "cases.criminal_solved",
                filed * rng.random_range(40..=75) / 100,
                none(),
            );
            put("cases.homicide", rng.random_range(0..=1), none());
            put("cases.fraud", rng.random_range(10..=35), none());
            put("cases.juvenile", rng.random_range(0..=3), none());
            put("cases.public_order", rng.random_range(60..=140), none());
            put("disputes.escalated", rng.random_range(0..=2), none());
            put("petitions.leapfrog", rng.random_range(0..=3), none());
        }
    }
    out
}

/// Runs the demo.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let data = args.data.clone().unwrap_or_else(|| tmp.path().join("hub"));
    let areas = fixtures::santai_areas();
    let county = fixtures::santai();
    let state = HubState {
        catalogue: Arc::new(Catalogue::builtin()),
        areas: Arc::new(areas.clone()),
        store: Arc::new(Store::open(&data)?),
        clock: Clock::System,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let hub_url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::serve(listener, state.clone(), async {
        let _ = stopped.await;
    }));
    println!(
        "pingan demo: hub for {} {} on {hub_url} (store {})",
        county,
        areas.name(county),
        data.display()
    );

    let period = Period::month_of(Clock::System.today()).previous();
    let mut reporters: Vec<AreaCode> = vec![county];
    reporters.extend(areas.descendants_at(county, Level::Township));
    reporters.extend(areas.descendants_at(county, Level::Village));
    println!(
        "{} nodes (1 county, 33 townships, 462 villages) report {period} over loopback gRPC ...",
        reporters.len()
    );

    let started = std::time::Instant::now();
    let outboxes = tmp.path().join("nodes");
    let mut tasks = tokio::task::JoinSet::new();
    let limit = Arc::new(tokio::sync::Semaphore::new(32));
    for code in reporters.iter().copied() {
        let (hub_url, outboxes, limit) = (hub_url.clone(), outboxes.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await?;
            let report = pb::Report {
                submission_id: pingan_node::new_submission_id(),
                area: code.to_string(),
                period: period.to_string(),
                values: figures(code, period),
                reporter: format!("node-{code}"),
                ..Default::default()
            };
            deliver(&outboxes.join(code.to_string()), &hub_url, report).await
        });
    }
    let mut receipts = Vec::new();
    while let Some(r) = tasks.join_next().await {
        receipts.push(r??);
    }
    println!(
        "  {} receipts in {:.1?}, each after its revision was durable on disk",
        receipts.len(),
        started.elapsed()
    );

    // a correction: the first village resubmits with one more mediated dispute
    let village = areas.descendants_at(county, Level::Village)[0];
    let mut values = figures(village, period);
    for v in &mut values {
        if v.metric == "disputes.mediated" {
            v.total = v.total.map(|t| t + 1);
        }
    }
    let correction = pb::Report {
        submission_id: pingan_node::new_submission_id(),
        area: village.to_string(),
        period: period.to_string(),
        values,
        notes: "更正：漏报一件调解".into(),
        reporter: format!("node-{village}"),
        ..Default::default()
    };
    let receipt = deliver(&outboxes.join(village.to_string()), &hub_url, correction).await?;
    println!(
        "  correction by {village} {}: revision {}",
        areas.name(village),
        receipt.revision
    );

    // an invalid report is refused with every reason, and nothing of it is stored
    let mut client =
        pb::report_service_client::ReportServiceClient::connect(hub_url.clone()).await?;
    let bad = pb::Report {
        submission_id: pingan_node::new_submission_id(),
        area: village.to_string(),
        period: period.next().next().to_string(),
        values: vec![
            pb::MetricValue {
                metric: "disputes.mediated".into(),
                total: Some(2),
                parts: Default::default(),
            },
            pb::MetricValue {
                metric: "disputes.resolved".into(),
                total: Some(5),
                parts: Default::default(),
            },
        ],
        ..Default::default()
    };
    let refused = client
        .submit(bad)
        .await
        .expect_err("the demo's bad report must be refused");
    println!(
        "  an invalid report was refused ({:?}): {}",
        refused.code(),
        refused.message()
    );

    let reader = state.store.reader()?;
    println!("  audit trail of {village} {period}:");
    for rev in reader.revisions(&village.to_string(), &period.to_string())? {
        let mediated = rev
            .values
            .iter()
            .find(|v| v.metric == "disputes.mediated")
            .and_then(|v| v.total);
        println!(
            "    revision {} from {} ({}): 调处矛盾纠纷 = {} {}",
            rev.revision,
            rev.reporter,
            rev.sender,
            mediated.unwrap_or(0),
            rev.notes
        );
    }
    let mut totals: BTreeMap<String, i64> = BTreeMap::new();
    reader.for_each_current(|rev| {
        if rev.period == period.to_string() {
            for v in rev.values {
                *totals.entry(v.metric).or_default() += v.total.unwrap_or(0);
            }
        }
    })?;
    println!(
        "  {} {period}, current revisions summed over the whole county:",
        areas.name(county)
    );
    let catalogue = Catalogue::builtin();
    for m in catalogue.metrics() {
        if let Some(t) = totals.get(m.id.as_str()) {
            println!("    {:<28} {t:>8} {}", m.zh, m.unit);
        }
    }
    let _ = stop.send(());
    server.await.context("hub task")??;
    println!(
        "hub stopped cleanly; {} revisions stored",
        state.store.reader()?.revision_count()?
    );
    Ok(())
}

/// One node's submit: outbox first, then delivery with retries, like `pingan-node submit`.
async fn deliver(
    outbox_dir: &std::path::Path,
    hub: &str,
    report: pb::Report,
) -> anyhow::Result<pb::Receipt> {
    let id = report.submission_id.clone();
    let mut outbox = Outbox::open(outbox_dir)?;
    outbox.enqueue(&[report])?;
    let mut deliverer = Deliverer::new(hub, Duration::from_secs(30));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    deliverer
        .deliver_until(&mut outbox, Some(deadline), |o| Ok(o.pending_count()? == 0))
        .await?;
    let entry = outbox.get(&id)?.context("entry vanished")?;
    anyhow::ensure!(
        entry.state == pingan_node::EntryState::Delivered,
        "{} {} not delivered: {}",
        entry.area,
        entry.period,
        entry.last_error.unwrap_or_default()
    );
    Ok(pb::Receipt {
        submission_id: id,
        area: entry.area,
        period: entry.period,
        revision: entry.revision.unwrap_or_default(),
        warnings: entry.warnings,
        ..Default::default()
    })
}
