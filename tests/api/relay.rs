//! 원장 → NATS JetStream 중계 (CONTRACT 9절)를 진짜 nats-server로: 순서, 중계자가 죽었다 살아나도 빠짐 없음(중복은 스트림이 버림),
//! NATS가 멈춘 동안 발급은 그대로 되고 이벤트는 데이터베이스에서 기다렸다가 간다.
//! nats-server는 이 시험만의 포트와 저장 디렉터리로 띄운다 (기계의 NATS를 멈추지 않으려고). 없으면 실패한다(건너뛰지 않는다).
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use couponql::service::issuance::{IssueMode, Issuer};
use couponql::service::relay;
use serde_json::Value;
use tokio::sync::watch;
use uuid::Uuid;

use crate::helpers::{TestDb, new_coupon, new_users};
use crate::on_all_backends;

const NATS_BIN: &str = "/usr/sbin/nats-server";

struct Nats {
    child: Option<Child>,
    port: u16,
    dir: std::path::PathBuf,
}

impl Nats {
    fn start() -> Self {
        let port = testkit::free_port().expect("빈 포트");
        let dir = std::env::temp_dir().join(format!("couponql-nats-{}", Uuid::new_v4().simple()));
        let mut n = Nats { child: None, port, dir };
        n.up();
        n
    }

    fn up(&mut self) {
        let child = Command::new(NATS_BIN)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-js", "-sd"])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{NATS_BIN}를 띄울 수 없음 (Debian의 nats-server 패키지): {e}"));
        self.child = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(10), "nats-server가 10초 안에 뜨지 않음");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// 스트림의 메시지를 모두 읽어 (sequence 문자열을 숫자로, 종류) 목록으로. 스트림이 `want`개가 될 때까지 기다린다.
async fn stream_events(url: &str, want: u64) -> Vec<(i64, String, String)> {
    let client = async_nats::connect(url).await.expect("NATS 연결");
    let js = async_nats::jetstream::new(client);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut stream = loop {
        if let Ok(s) = js.get_stream(relay::STREAM).await {
            break s;
        }
        assert!(Instant::now() < deadline, "스트림이 생기지 않음");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    loop {
        let n = stream.info().await.expect("스트림 정보").state.messages;
        if n >= want {
            assert_eq!(n, want, "스트림에 중복이 있음");
            break;
        }
        assert!(Instant::now() < deadline, "30초 안에 {want}개가 오지 않음 (지금 {n}개)");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut out = Vec::new();
    for seq in 1..=want {
        let m = stream.get_raw_message(seq).await.expect("메시지");
        let v: Value = serde_json::from_slice(&m.payload).expect("JSON");
        let id = m.headers.get("Nats-Msg-Id").map(|h| h.to_string()).unwrap_or_default();
        assert_eq!(v["id"].as_str(), Some(id.as_str()), "Nats-Msg-Id는 이벤트 id");
        assert_eq!(m.subject.as_str(), format!("couponql.events.{}", v["type"].as_str().unwrap_or_default()));
        out.push((
            v["sequence"].as_str().and_then(|s| s.parse().ok()).expect("sequence"),
            v["type"].as_str().unwrap_or_default().to_owned(),
            id,
        ));
    }
    out
}

async fn the_relay_publishes_every_event_once_in_order_across_a_crash_and_a_nats_outage(db: TestDb) {
    let mut nats = Nats::start();
    let coupon = new_coupon(&db.conn, None).await;
    let users = new_users(&db.conn, 220).await;
    let issuer = Issuer::new(db.conn.clone(), IssueMode::Coalesced);

    // 중계자 하나를 띄우고, 발급 200건이 도는 도중에 죽인다(임대를 놓지 않는다). 다른 중계자가 임대 만료 뒤 이어받는다.
    let (_stop_tx, stop) = watch::channel(false);
    // 도장(커밋 뒤 sequence를 매긴다)은 서버마다 도는 일꾼: 여기서는 하나를 따로 띄운다.
    let stamper = tokio::spawn(couponql::service::ledger::run(db.conn.clone(), stop.clone()));
    let first = tokio::spawn(relay::run(db.conn.clone(), nats.url(), stop.clone()));
    let burst = {
        let (issuer, ids) = (issuer.clone(), users[..200].iter().map(|u| u.id).collect::<Vec<_>>());
        tokio::spawn(async move {
            let all = futures::future::join_all(ids.into_iter().map(|u| {
                let issuer = issuer.clone();
                async move { issuer.issue(u, coupon.id).await.map(|_| ()) }
            }));
            all.await.into_iter().collect::<Result<Vec<_>, _>>()
        })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    first.abort();
    let _ = first.await;
    burst.await.expect("발급 작업").expect("발급 200건");
    let second = tokio::spawn(relay::run(db.conn.clone(), nats.url(), stop.clone()));
    let events = stream_events(&nats.url(), 200).await;
    assert!(events.iter().all(|(_, kind, _)| kind == "COUPON_ISSUED"));
    assert!(events.windows(2).all(|w| w[0].0 < w[1].0), "sequence 순서가 아님");

    // NATS가 멈춘 동안: 발급은 그대로 되고(막히지도 실패하지도 않는다), 이벤트는 데이터베이스에서 기다린다.
    nats.down();
    let started = Instant::now();
    for u in &users[200..] {
        issuer.issue(u.id, coupon.id).await.expect("NATS가 멈춰도 발급");
    }
    assert!(started.elapsed() < Duration::from_secs(5), "NATS가 멈춘 동안 발급이 느려짐: {:?}", started.elapsed());
    nats.up();
    let events = stream_events(&nats.url(), 220).await;
    assert!(events.windows(2).all(|w| w[0].0 < w[1].0), "sequence 순서가 아님");
    let ids: std::collections::HashSet<&str> = events.iter().map(|(_, _, id)| id.as_str()).collect();
    assert_eq!(ids.len(), 220);
    // 원장의 이벤트가 모두 스트림에 있다.
    let ledger = couponql::repo::ledger::page(&db.conn, Some(coupon.id), None, 1000).await.expect("원장");
    stamper.abort();
    assert_eq!(ledger.iter().map(|e| e.sequence).collect::<Vec<_>>(), events.iter().map(|e| e.0).collect::<Vec<_>>());
    second.abort();
}
on_all_backends!(the_relay_publishes_every_event_once_in_order_across_a_crash_and_a_nats_outage);
