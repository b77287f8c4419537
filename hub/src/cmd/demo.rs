//! The README's demo: a hub on loopback, and 三台县's 462 village, 33 township and 1 county
//! nodes, each with its own durable outbox, reporting their figures to it over gRPC.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use anyhow::Context as _;
use pingan_domain::{AreaCode, Catalogue, Level, Period, fixtures, pb, period::PeriodKind};
use pingan_outbox::{Deliverer, Outbox};
use rand::{Rng, SeedableRng, rngs::StdRng};
use tokio::net::TcpListener;

use crate::{Clock, HubState, cmd::config::DemoArgs, grpc::server};

/// Plausible monthly figures for an area, deterministic in (area, period).
pub fn figures(area: AreaCode, period: Period) -> Vec<pb::MetricValue> {
    let seed = area.digits()
        ^ (period
            .first_day()
            .to_string()
            .bytes()
            .fold(0u64, |h, b| h * 31 + u64::from(b))
            << 20);
    let mut f = Figures {
        rng: StdRng::seed_from_u64(seed),
        out: Vec::new(),
        // areas differ: some are busier than others, all year round
        busy: 1 + (area.digits() % 7) as i64,
    };
    match (area.level(), period.kind()) {
        (Level::Village, _) => village_figures(&mut f, area),
        // townships report disputes half-monthly (矛盾纠纷排查化解半月报), the rest monthly
        (Level::Township, PeriodKind::HalfMonth) => township_disputes(&mut f),
        (Level::Township, _) => township_figures(&mut f),
        _ => county_figures(&mut f),
    }
    f.out
}

/// Plausible monthly figures of a department (条) on the departments' form, deterministic in
/// (department, period): petitions it handled, disputes it found, hazards it fixed.
pub fn department_figures(department: &str, period: Period) -> Vec<pb::MetricValue> {
    let seed = department
        .bytes()
        .chain(period.to_string().bytes())
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    let letters = rng.random_range(1..=8);
    let referred = rng.random_range(0..=letters.min(3));
    let identified = rng.random_range(0..=4);
    let mediated = rng.random_range(0..=identified);
    let found = rng.random_range(0..=6);
    let parts = |k: &str, n: i64| BTreeMap::from([(k.to_owned(), n)]);
    put(&mut out, "petitions.letters", letters, none());
    put(
        &mut out,
        "petitions.letters_concluded",
        letters - rng.random_range(0..=1),
        none(),
    );
    put(
        &mut out,
        "petitions.referred",
        referred,
        parts("信访局转办", referred),
    );
    put(
        &mut out,
        "petitions.visitors",
        rng.random_range(2..=40),
        none(),
    );
    let batches = rng.random_range(0..=3);
    put(&mut out, "petitions.collective_batches", batches, none());
    put(
        &mut out,
        "petitions.collective_persons",
        batches * rng.random_range(5..=12),
        none(),
    );
    put(&mut out, "disputes.identified", identified, none());
    put(&mut out, "disputes.mediated", mediated, none());
    put(
        &mut out,
        "disputes.resolved",
        mediated - rng.random_range(0..=mediated.min(1)),
        none(),
    );
    put(&mut out, "hazards.found", found, none());
    put(
        &mut out,
        "hazards.fixed",
        found - rng.random_range(0..=found.min(2)),
        none(),
    );
    out
}

/// Figures being made up for one area and month.
struct Figures {
    rng: StdRng,
    out: Vec<pb::MetricValue>,
    busy: i64,
}

fn put(out: &mut Vec<pb::MetricValue>, metric: &str, total: i64, parts: BTreeMap<String, i64>) {
    out.push(pb::MetricValue {
        metric: metric.into(),
        total: Some(total),
        parts: parts.into_iter().collect(),
    })
}

fn none() -> BTreeMap<String, i64> {
    BTreeMap::new()
}

fn village_figures(f: &mut Figures, area: AreaCode) {
    let identified = f.rng.random_range(0..=f.busy * 2);
    let mediated = identified - f.rng.random_range(0..=identified.min(1));
    let resolved = mediated - f.rng.random_range(0..=mediated.min(1));
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
            .entry(types[f.rng.random_range(0..types.len())].to_owned())
            .or_insert(0) += 1;
    }
    put(&mut f.out, "disputes.identified", identified, parts);
    put(&mut f.out, "disputes.mediated", mediated, none());
    put(&mut f.out, "disputes.resolved", resolved, none());
    let visitors = f.rng.random_range(0..=f.busy);
    put(&mut f.out, "petitions.visitors", visitors, none());
    put(
        &mut f.out,
        "petitions.repeat_visitors",
        f.rng.random_range(0..=visitors / 2),
        none(),
    );
    let sessions = f.rng.random_range(4..=12);
    put(&mut f.out, "patrol.sessions", sessions, none());
    put(
        &mut f.out,
        "patrol.person_times",
        sessions * f.rng.random_range(2..=5),
        none(),
    );
    put(&mut f.out, "patrol.hours", sessions * 2, none());
    put(
        &mut f.out,
        "grid.events_handled",
        f.rng.random_range(3..=20),
        none(),
    );
    put(
        &mut f.out,
        "grid.visits",
        f.rng.random_range(20..=120),
        none(),
    );
    let found = f.rng.random_range(0..=4);
    put(&mut f.out, "hazards.found", found, none());
    put(
        &mut f.out,
        "hazards.fixed",
        f.rng.random_range(0..=found),
        none(),
    );
    // stocks broken down by a category: grid workers 专职/兼职, the village's 平安村 rating
    let full_time = 1 + (area.digits() % 2) as i64;
    let part_time = 1 + (area.digits() % 4) as i64;
    let workers = BTreeMap::from([
        ("专职".to_owned(), full_time),
        ("兼职".to_owned(), part_time),
    ]);
    put(&mut f.out, "grid.workers", full_time + part_time, workers);
    let stars = ["★", "★★", "★★★"][(area.digits() % 3) as usize];
    put(
        &mut f.out,
        "creation.safe_villages",
        1,
        BTreeMap::from([(stars.to_owned(), 1)]),
    );
    // a survey of 安全感满意度 as two counts, so the rate is a ratio of sums at every level
    let asked = f.rng.random_range(20..=40);
    put(&mut f.out, "survey.respondents", asked, none());
    put(
        &mut f.out,
        "survey.satisfied",
        asked - f.rng.random_range(0..=asked / 8),
        none(),
    );
}

fn township_disputes(f: &mut Figures) {
    let mediated = f.rng.random_range(1..=3 + f.busy);
    put(
        &mut f.out,
        "disputes.identified",
        mediated + f.rng.random_range(0..=2),
        none(),
    );
    put(&mut f.out, "disputes.mediated", mediated, none());
    put(
        &mut f.out,
        "disputes.resolved",
        mediated - f.rng.random_range(0..=mediated.min(2)),
        none(),
    );
}

fn township_figures(f: &mut Figures) {
    let mut channels = BTreeMap::new();
    for (c, hi) in [("来信", 3), ("来访", 6), ("网上", 8), ("来电", 4)] {
        channels.insert(c.to_owned(), f.rng.random_range(0..=hi));
    }
    let letters: i64 = channels.values().sum();
    put(&mut f.out, "petitions.letters", letters, channels);
    put(
        &mut f.out,
        "petitions.letters_concluded",
        letters - f.rng.random_range(0..=letters.min(2)),
        none(),
    );
    put(
        &mut f.out,
        "petitions.hotline",
        f.rng.random_range(5..=40),
        none(),
    );
    let batches = f.rng.random_range(0..=1);
    put(&mut f.out, "petitions.collective_batches", batches, none());
    put(
        &mut f.out,
        "petitions.collective_persons",
        batches * f.rng.random_range(5..=12),
        none(),
    );
    put(
        &mut f.out,
        "cases.public_order",
        f.rng.random_range(0..=6),
        none(),
    );
}

fn county_figures(f: &mut Figures) {
    let filed = f.rng.random_range(40..=90);
    put(&mut f.out, "cases.criminal_filed", filed, none());
    put(
        &mut f.out,
        "cases.criminal_solved",
        filed * f.rng.random_range(40..=75) / 100,
        none(),
    );
    put(
        &mut f.out,
        "cases.homicide",
        f.rng.random_range(0..=1),
        none(),
    );
    put(
        &mut f.out,
        "cases.fraud",
        f.rng.random_range(10..=35),
        none(),
    );
    put(
        &mut f.out,
        "cases.juvenile",
        f.rng.random_range(0..=3),
        none(),
    );
    put(
        &mut f.out,
        "cases.public_order",
        f.rng.random_range(60..=140),
        none(),
    );
    put(
        &mut f.out,
        "disputes.escalated",
        f.rng.random_range(0..=2),
        none(),
    );
    put(
        &mut f.out,
        "petitions.leapfrog",
        f.rng.random_range(0..=3),
        none(),
    );
}

/// One office's node: its own durable outbox and its connection to the hub.
struct Node {
    code: AreaCode,
    /// A department's (条) node: its id (`code` is then the area it belongs to).
    department: Option<String>,
    outbox: Outbox,
    deliverer: Deliverer,
}

impl Node {
    /// Queues a report and delivers the outbox, as `pingan-node submit` does.
    async fn submit(&mut self, report: pb::Report) -> anyhow::Result<()> {
        self.outbox.enqueue(&[report])?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let pass = self
            .deliverer
            .deliver_until(&mut self.outbox, Some(deadline), |o| {
                Ok(o.pending_count()? == 0)
            })
            .await?;
        anyhow::ensure!(
            pass.parked == 0,
            "{}: a report was refused, see its outbox",
            self.code
        );
        Ok(())
    }
}

/// Whether the demo has this village miss (0), report late (1) or on time (2) in a month.
fn behaviour(code: AreaCode, month_index: usize, last: bool) -> u8 {
    let h = code
        .digits()
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(month_index as u32 * 7)
        % 100;
    match (last, h) {
        (true, 0..=1) | (false, 0) => 0,
        (true, 2..=4) | (false, 1..=2) => 1,
        _ => 2,
    }
}

fn at(day: chrono::NaiveDate, hour: u32) -> chrono::DateTime<chrono::FixedOffset> {
    use chrono::TimeZone as _;
    crate::clock::beijing()
        .from_local_datetime(&day.and_hms_opt(hour, 0, 0).expect("valid"))
        .single()
        .expect("fixed offset")
}

/// Runs the demo.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let data = args.data.clone().unwrap_or_else(|| tmp.path().join("hub"));
    let areas = fixtures::santai_areas();
    let county = fixtures::santai();
    let last = Period::month_of(Clock::System.today()).previous();
    let months: Vec<Period> = (0..24).rev().map(|i| last.shift(-i)).collect();
    // the demo's hub runs on a clock the demo moves month by month, so that on time and late mean
    // what they would have meant then
    let clock = Clock::manual(at(months[0].next().first_day(), 9));
    let departments = fixtures::santai_departments();
    let state = HubState::open(
        &data,
        Catalogue::builtin(),
        areas.clone(),
        clock.clone(),
        Default::default(),
    )?
    .with_departments(departments.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let hub_url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::serve(listener, state.clone(), async {
        let _ = stopped.await;
    }));
    println!(
        "pingan demo: a hub for {county} {} on {hub_url}, store in {}",
        areas.name(county),
        data.display()
    );

    let mut codes: Vec<AreaCode> = vec![county];
    codes.extend(areas.descendants_at(county, Level::Township));
    let villages = areas.descendants_at(county, Level::Village);
    codes.extend(&villages);
    let mut nodes = Vec::with_capacity(codes.len());
    for code in &codes {
        nodes.push(Node {
            code: *code,
            department: None,
            outbox: Outbox::open(&tmp.path().join("nodes").join(code.to_string()))?,
            deliverer: Deliverer::new(hub_url.clone(), Duration::from_secs(30)),
        });
    }
    for d in departments.iter() {
        nodes.push(Node {
            code: d.area,
            department: Some(d.id.clone()),
            outbox: Outbox::open(&tmp.path().join("nodes").join(&d.id))?,
            deliverer: Deliverer::new(hub_url.clone(), Duration::from_secs(30)),
        });
    }
    let names: Vec<&str> = departments.iter().map(|d| d.name.as_str()).collect();
    println!(
        "{} nodes (1 county, 33 townships, 462 villages and {} departments: {}), each with its own durable outbox, report {} .. {} over loopback gRPC",
        nodes.len(),
        names.len(),
        names.join("、"),
        months[0],
        last
    );
    let started = std::time::Instant::now();
    let mut nodes = report_months(nodes, &months, &clock, started).await?;
    let village = villages[0];
    correct(&mut nodes, &state, &areas, &clock, village, last).await?;
    show_refusal(&hub_url, village, last).await?;
    show_answers(&hub_url, county, last).await?;
    show_loop(&hub_url, county, village, last).await?;
    show_assessment(&state, county, last)?;
    let _ = stop.send(());
    server.await.context("hub task")??;
    println!(
        "hub stopped cleanly after {:.1?}; {} revisions stored. Ask it yourself: pingan-hub demo --data DIR, then pingan-hub serve --data DIR and pingan-hub query ...",
        started.elapsed(),
        state.store.reader()?.revision_count()?
    );
    Ok(())
}

/// 考核 of the county's townships for the closed month (the shipped scheme), the first and the
/// sanctioned, and its 通报 written as a Word document.
fn show_assessment(state: &HubState, county: AreaCode, last: Period) -> anyhow::Result<()> {
    let span = pingan_domain::Span::single(last);
    let scores = state
        .engine
        .assess(&crate::query::AssessQuery {
            area: county,
            span,
            scheme: None,
            figures: crate::query::Figures::Current,
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let top: Vec<String> = scores
        .rows
        .iter()
        .take(5)
        .map(|r| {
            format!(
                "{} {} {}",
                r.rank,
                r.name,
                r.total.map_or("—".into(), |t| format!("{t:.2}"))
            )
        })
        .collect();
    println!(
        "\n考核 (assessment, {}): {}",
        scores.scheme.title,
        top.join("；")
    );
    for r in &scores.rows {
        if !r.vetoes.is_empty() || !r.yellow.is_empty() || r.missing > 0 {
            println!("  {} {}：{}", r.code, r.name, {
                let mut why: Vec<String> =
                    r.vetoes.iter().map(|v| format!("一票否决 {v}")).collect();
                why.extend(r.yellow.iter().map(|y| format!("黄牌 {y}")));
                if !r.note.is_empty() && r.vetoes.is_empty() {
                    why.push(r.note.clone());
                }
                why.join("，")
            });
        }
    }
    let inputs =
        crate::bulletin::gather(state, county, span).map_err(|e| anyhow::anyhow!("{e}"))?;
    let bulletin = crate::bulletin::compose(&inputs);
    let out = std::env::temp_dir().join(format!("pingan-demo-通报-{county}-{last}.docx"));
    std::fs::write(&out, crate::bulletin::docx(&bulletin)?)?;
    println!(
        "通报 (bulletin): {} → {} (pingan-hub bulletin --area {county} --period {last} --out 通报.docx)",
        bulletin.title,
        out.display()
    );
    Ok(())
}

/// Every node reports every month, as the clock moves: most on time, some villages late, a few
/// not at all. Returns the nodes.
async fn report_months(
    mut nodes: Vec<Node>,
    months: &[Period],
    clock: &Clock,
    started: std::time::Instant,
) -> anyhow::Result<Vec<Node>> {
    for (mi, month) in months.iter().enumerate() {
        let is_last = mi + 1 == months.len();
        // townships report the month's first half (上半月) in its second half
        let [first_half, _] = month.half_months().expect("a month");
        clock.set(at(first_half.last_day() + chrono::Days::new(2), 9));
        let (towns, others): (Vec<Node>, Vec<Node>) = nodes
            .drain(..)
            .partition(|n| n.code.level() == Level::Township);
        nodes = submit_all(towns, first_half).await?;
        nodes.extend(others);
        let mut late = Vec::new();
        let mut on_time = Vec::new();
        for node in nodes.drain(..) {
            match (node.code.level(), behaviour(node.code, mi, is_last)) {
                (Level::Village, 0) => late.push((node, false)),
                (Level::Village, 1) => late.push((node, true)),
                _ => on_time.push(node),
            }
        }
        clock.set(at(month.next().first_day() + chrono::Days::new(2), 9));
        let mut done = submit_all(on_time, *month).await?;
        let (late_nodes, missing): (Vec<_>, Vec<_>) = late.into_iter().partition(|(_, l)| *l);
        clock.set(at(month.next().first_day() + chrono::Days::new(8), 15));
        let late_count = late_nodes.len();
        done.extend(submit_all(late_nodes.into_iter().map(|(n, _)| n).collect(), *month).await?);
        done.extend(missing.into_iter().map(|(n, _)| n));
        nodes = done;
        nodes.sort_by_key(|n| n.code);
        if is_last || mi % 6 == 5 {
            println!(
                "  {month}: reported ({late_count} villages late), {:.1?} so far",
                started.elapsed()
            );
        }
    }
    Ok(nodes)
}

/// A correction: one village finds it missed a mediated dispute; its revisions are shown.
async fn correct(
    nodes: &mut [Node],
    state: &HubState,
    areas: &pingan_domain::Areas,
    clock: &Clock,
    village: AreaCode,
    last: Period,
) -> anyhow::Result<()> {
    let mut values = figures(village, last);
    for v in &mut values {
        if v.metric == "disputes.mediated" || v.metric == "disputes.resolved" {
            v.total = v.total.map(|t| t + 1);
        }
    }
    clock.set(at(last.next().first_day() + chrono::Days::new(10), 11));
    let node = nodes
        .iter_mut()
        .find(|n| n.code == village)
        .expect("the village's node");
    node.submit(pb::Report {
        submission_id: pingan_outbox::new_submission_id(),
        area: village.to_string(),
        period: last.to_string(),
        values,
        notes: "更正：漏报一件调解成功的纠纷".into(),
        reporter: format!("node-{village}"),
        ..Default::default()
    })
    .await?;
    let reader = state.store.reader()?;
    println!(
        "\n更正 (a correction): {village} {} {last}",
        areas.name(village)
    );
    for rev in reader.revisions(village, last)? {
        let mediated = rev
            .values
            .iter()
            .find(|v| v.metric == "disputes.mediated")
            .and_then(|v| v.total);
        println!(
            "  revision {} from {}: 调处矛盾纠纷 = {} {}",
            rev.revision,
            rev.reporter,
            mediated.unwrap_or(0),
            rev.notes
        );
    }
    Ok(())
}

/// An invalid report is refused with every reason, and nothing of it is stored.
async fn show_refusal(hub_url: &str, village: AreaCode, last: Period) -> anyhow::Result<()> {
    let mut reports =
        pb::report_service_client::ReportServiceClient::connect(hub_url.to_owned()).await?;
    let refused = reports
        .submit(pb::Report {
            submission_id: pingan_outbox::new_submission_id(),
            area: village.to_string(),
            period: last.next().next().to_string(),
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
        })
        .await
        .expect_err("the demo's bad report must be refused");
    println!(
        "\n拒收 (an invalid report, {:?}): {}",
        refused.code(),
        refused.message()
    );
    Ok(())
}

/// What a leader sees, asked over gRPC like `pingan-hub query ...`.
async fn show_answers(hub_url: &str, county: AreaCode, last: Period) -> anyhow::Result<()> {
    let mut queries =
        pb::query_service_client::QueryServiceClient::connect(hub_url.to_owned()).await?;
    let rollup = queries
        .rollup(pb::RollupRequest {
            area: county.to_string(),
            period: last.to_string(),
            metrics: vec![],
            by_category: false,
            approved_only: false,
        })
        .await?
        .into_inner();
    println!("\n{}", crate::tables::rollup_table(&rollup).to_text());
    let compare = queries
        .compare(pb::CompareRequest {
            area: county.to_string(),
            period: last.to_string(),
            metric: "调处成功率".into(),
            level: String::new(),
            complete_only: false,
            ..Default::default()
        })
        .await?
        .into_inner();
    println!("{}", crate::tables::compare_table(&compare).to_text());
    let missing = queries
        .completeness(pb::CompletenessRequest {
            area: county.to_string(),
            period: last.to_string(),
            level: "village".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    println!(
        "{}",
        crate::tables::completeness_table(&missing, Some(Level::Village)).to_text()
    );
    let departments = queries
        .departments(pb::DepartmentsRequest {
            area: county.to_string(),
            period: last.to_string(),
            metric: "petitions.visitors".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    println!(
        "{}",
        crate::tables::departments_table(&departments).to_text()
    );
    Ok(())
}

/// The reporting loop: 潼川镇 reviews its villages' month, the county closes it, and a late
/// correction is refused naming who closed it.
async fn show_loop(
    hub_url: &str,
    county: AreaCode,
    village: AreaCode,
    last: Period,
) -> anyhow::Result<()> {
    let town = village.parent().context("a village's township")?;
    let mut reviews =
        pb::review_service_client::ReviewServiceClient::connect(hub_url.to_owned()).await?;
    let items = reviews
        .pending(pb::PendingRequest {
            area: town.to_string(),
            period: last.to_string(),
            form: String::new(),
        })
        .await?
        .into_inner()
        .items;
    let targets: Vec<pb::ReviewTarget> = items
        .iter()
        .filter(|i| i.state == "pending")
        .map(|i| pb::ReviewTarget {
            area: i.area.clone(),
            period: i.period.clone(),
            revision: i.revision,
        })
        .collect();
    let waiting = targets.len();
    let decided = reviews
        .decide(pb::DecideRequest {
            targets,
            approve: true,
            reason: String::new(),
            by: "潼川镇综治中心".into(),
        })
        .await?
        .into_inner();
    println!(
        "审核 (review): 潼川镇综治中心 approves {} of {waiting} reports waiting for {last}",
        decided.items.len()
    );
    let locked = pb::lock_service_client::LockServiceClient::connect(hub_url.to_owned())
        .await?
        .lock(pb::LockRequest {
            area: county.to_string(),
            period: last.to_string(),
            reason: "月度考核".into(),
            by: "县综治中心".into(),
            force: true,
            ..Default::default()
        })
        .await?
        .into_inner();
    println!(
        "锁定 (lock): {} {}",
        last,
        locked.state.map(|s| s.reason).unwrap_or_default()
    );
    let refused = pb::report_service_client::ReportServiceClient::connect(hub_url.to_owned())
        .await?
        .submit(pb::Report {
            submission_id: pingan_outbox::new_submission_id(),
            area: village.to_string(),
            period: last.to_string(),
            values: figures(village, last),
            ..Default::default()
        })
        .await
        .expect_err("a closed month takes no correction");
    println!("更正被拒 ({:?}): {}", refused.code(), refused.message());
    Ok(())
}

/// Every node in `nodes` submits its figures for `month`, many at once, townships their second
/// half-month's too; returns the nodes.
async fn submit_all(nodes: Vec<Node>, month: Period) -> anyhow::Result<Vec<Node>> {
    let limit = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = tokio::task::JoinSet::new();
    for mut node in nodes {
        let limit = limit.clone();
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await?;
            if let Some(d) = node.department.clone() {
                // a department reports its own form; its figures stay out of the county's
                node.submit(pb::Report {
                    submission_id: pingan_outbox::new_submission_id(),
                    area: node.code.to_string(),
                    period: month.to_string(),
                    values: department_figures(&d, month),
                    reporter: format!("node-{d}"),
                    department: d,
                    ..Default::default()
                })
                .await?;
                return anyhow::Ok(node);
            }
            let values = figures(node.code, month);
            let zero = node.code.level() == Level::Village && node.code.digits() % 41 == 0;
            node.submit(pb::Report {
                submission_id: pingan_outbox::new_submission_id(),
                area: node.code.to_string(),
                period: month.to_string(),
                values: if zero { Vec::new() } else { values },
                zero_report: zero,
                reporter: format!("node-{}", node.code),
                ..Default::default()
            })
            .await?;
            if let (Level::Township, Some([_, second])) = (node.code.level(), month.half_months()) {
                node.submit(pb::Report {
                    submission_id: pingan_outbox::new_submission_id(),
                    area: node.code.to_string(),
                    period: second.to_string(),
                    values: figures(node.code, second),
                    reporter: format!("node-{}", node.code),
                    ..Default::default()
                })
                .await?;
            }
            anyhow::Ok(node)
        });
    }
    let mut out = Vec::new();
    while let Some(r) = tasks.join_next().await {
        out.push(r??);
    }
    Ok(out)
}
