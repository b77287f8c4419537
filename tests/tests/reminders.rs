//! 催报: who has not reported, per township, posted to a webhook in the 企业微信 and 钉钉 group
//! robots' formats at the scheduled time; a webhook that fails is retried and every attempt
//! recorded; one that hangs never slows ingest.

use std::time::Duration;

use pingan_domain::{Level, Period, fixtures, pb};
use pingan_hub::remind::{Format, RemindConfig, contacts::Contacts};
use pingan_tests::{Reply, TestHub, report, value, webhook};

fn config(url: &str, format: Format, hub: &TestHub) -> RemindConfig {
    let csv =
        "区划代码,联系人,电话,企业微信,钉钉\n510722101003,李主任,13800000001,lizhuren,ding-li\n";
    RemindConfig {
        webhook: url.to_owned(),
        format,
        contacts: Contacts::from_csv(csv.as_bytes(), &hub.state.areas).unwrap(),
        deadlines: Default::default(),
        before_days: 1,
        hour: 9,
        attempts: 3,
        first_backoff: Duration::from_millis(50),
        timeout: Duration::from_millis(500),
    }
}

fn at(m: u32, d: u32, h: u32) -> chrono::DateTime<chrono::FixedOffset> {
    use chrono::TimeZone as _;
    pingan_hub::clock::beijing()
        .with_ymd_and_hms(2026, m, d, h, 0, 0)
        .single()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_day_before_the_deadline_each_township_hears_who_has_not_reported() {
    let hub = TestHub::start().await;
    let areas = fixtures::santai_areas();
    let town: pingan_domain::AreaCode = "510722101".parse().unwrap();
    let villages = areas.descendants_at(town, Level::Village);
    // 潼川镇 and all its villages but two report November; the other townships do not
    hub.state.clock.set(at(12, 1, 10));
    let mut client = hub.client().await;
    let (late, reported) = villages.split_at(2);
    for v in reported.iter().chain([&town]) {
        client
            .submit(report(
                &v.to_string(),
                "2026-11",
                vec![value("petitions.letters", 1)],
            ))
            .await
            .unwrap();
    }
    let (url, got) = webhook(vec![Reply::Ok]).await;
    let cfg = config(&url, Format::Wecom, &hub);
    let month: Period = "2026-11".parse().unwrap();
    let form = hub.state.catalogue.form("zongzhi_monthly").unwrap().clone();
    let (_, before, after) = cfg.moments(&form, month);
    assert_eq!(
        before,
        at(12, 4, 9).timestamp_millis(),
        "the day before the 5th, 09:00"
    );
    assert_eq!(after, at(12, 6, 9).timestamp_millis(), "the morning after");

    // too early: nothing; at 09:00 on the 4th: one message per township owing the form
    assert_eq!(
        pingan_hub::remind::pass(&hub.state, &cfg, at(12, 3, 10).timestamp_millis()).await,
        0
    );
    let sent =
        pingan_hub::remind::pass(&hub.state, &cfg, at(12, 4, 9).timestamp_millis() + 1).await;
    let townships = areas
        .descendants_at(fixtures::santai(), Level::Township)
        .len();
    // the monthly form's reminder before its deadline, and the half-monthly form's after the
    // deadline of 11月下半月 (due by the 3rd): every township owes both
    assert_eq!(sent, 2 * townships);
    let messages = got.lock().unwrap().clone();
    let of = |needle: &str| -> Vec<serde_json::Value> {
        messages
            .iter()
            .filter(|m| {
                let c = m["markdown"]["content"].as_str().unwrap();
                c.contains("潼川镇") && c.contains(needle)
            })
            .cloned()
            .collect()
    };
    let half = of("矛盾纠纷排查化解半月报");
    assert_eq!(half.len(), 1);
    let half = half[0]["markdown"]["content"].as_str().unwrap();
    assert!(
        half.contains("1 个单位尚未上报") && half.contains("（510722101）"),
        "{half}"
    );
    let ours = of("综治工作月报");
    assert_eq!(ours.len(), 1);
    let content = ours[0]["markdown"]["content"].as_str().unwrap();
    assert_eq!(ours[0]["msgtype"], "markdown");
    // exactly the two villages, the first with its contact and the robot's @
    for v in late {
        assert!(content.contains(&v.to_string()), "{v} in {content}");
    }
    for v in reported {
        assert!(!content.contains(&v.to_string()), "{v} reported: {content}");
    }
    assert!(content.contains("2 个单位尚未上报"), "{content}");
    assert!(
        content.contains("李主任 13800000001 <@lizhuren>"),
        "{content}"
    );
    assert!(content.contains("2026-12-05 24:00"), "{content}");
    // sent once: the same moment again sends nothing
    assert_eq!(
        pingan_hub::remind::pass(&hub.state, &cfg, at(12, 4, 11).timestamp_millis()).await,
        0
    );
    let recorded = hub.state.store.reminder_sends().unwrap();
    assert_eq!(recorded.len(), 2 * townships);
    assert!(recorded.iter().all(|r| r.ok));
    assert_eq!(
        recorded.iter().filter(|r| r.moment == "before").count(),
        townships
    );

    // 钉钉's format, with @ by phone and user id
    let (url, got) = webhook(vec![Reply::Ok]).await;
    let cfg = config(&url, Format::Dingtalk, &hub);
    let missing =
        pingan_hub::remind::missing_by_township(&hub.state, &form, month, Some(town)).unwrap();
    assert_eq!(missing.len(), 1);
    assert_eq!(
        missing[0]
            .offices
            .iter()
            .map(|(c, _)| *c)
            .collect::<Vec<_>>(),
        late.to_vec()
    );
    assert!(pingan_hub::remind::send_one(&hub.state, &cfg, "now", &form, month, &missing[0]).await);
    let ding = got.lock().unwrap()[0].clone();
    assert_eq!(ding["msgtype"], "markdown");
    assert!(
        ding["markdown"]["title"]
            .as_str()
            .unwrap()
            .contains("潼川镇"),
        "{ding}"
    );
    assert!(
        ding["markdown"]["text"]
            .as_str()
            .unwrap()
            .contains("@13800000001"),
        "{ding}"
    );
    assert_eq!(ding["at"]["atMobiles"], serde_json::json!(["13800000001"]));
    assert_eq!(ding["at"]["atUserIds"], serde_json::json!(["ding-li"]));
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_webhook_is_retried_and_a_hanging_one_never_slows_ingest() {
    let hub = TestHub::start().await;
    let form = hub.state.catalogue.form("zongzhi_monthly").unwrap().clone();
    let month: Period = "2026-10".parse().unwrap();
    let town: pingan_domain::AreaCode = "510722101".parse().unwrap();
    let missing =
        pingan_hub::remind::missing_by_township(&hub.state, &form, month, Some(town)).unwrap();
    // 500, then 200: two attempts recorded, the second delivered
    let (url, got) = webhook(vec![Reply::Fail, Reply::Ok]).await;
    let cfg = config(&url, Format::Json, &hub);
    assert!(pingan_hub::remind::send_one(&hub.state, &cfg, "now", &form, month, &missing[0]).await);
    assert_eq!(got.lock().unwrap()[0]["kind"], "pingan.reminder");
    let tries: Vec<(u32, bool)> = hub
        .state
        .store
        .reminder_sends()
        .unwrap()
        .iter()
        .map(|r| (r.attempt, r.ok))
        .collect();
    assert_eq!(tries, [(1, false), (2, true)]);
    assert!(
        hub.state.store.reminder_sends().unwrap()[0]
            .result
            .contains("HTTP 500")
    );

    // a webhook that never answers: every attempt times out and is recorded; meanwhile
    // reports are taken as usual
    let (url, _) = webhook(vec![Reply::Hang]).await;
    let cfg = config(&url, Format::Wecom, &hub);
    let state = hub.state.clone();
    let (f, m) = (form.clone(), missing[0].clone());
    let sending = tokio::spawn(async move {
        pingan_hub::remind::send_one(&state, &cfg, "now", &f, month, &m).await
    });
    let started = std::time::Instant::now();
    hub.client()
        .await
        .submit(report(
            "510722101002",
            "2026-10",
            vec![value("petitions.letters", 1)],
        ))
        .await
        .expect("ingest goes on");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(!sending.await.unwrap(), "never delivered");
    let hung: Vec<String> = hub
        .state
        .store
        .reminder_sends()
        .unwrap()
        .into_iter()
        .skip(2)
        .map(|r| r.result)
        .collect();
    assert_eq!(hung.len(), 3, "{hung:?}");
    assert!(hung.iter().all(|r| r.contains("没有应答")), "{hung:?}");
    let _ = pb::Report::default();
    hub.stop().await;
}
