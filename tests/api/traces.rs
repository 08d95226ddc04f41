//! CONTRACT 13절의 추적: 진짜 실행 파일이 OTLP/HTTP로 내보내는 스팬을 이 테스트가 띄운 작은 수신기가 받아 읽는다.
//! 추적은 프로세스 전역(로그 구독자)이라 테스트 안의 앱이 아니라 실행 파일로 본다.
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use serde_json::{Value, json};

use crate::helpers::{binary, token};
use couponql::domain::Role;

const COUPON: &str = "c0000000-0000-4000-8000-000000000003";
const USERS: [&str; 3] =
    ["11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222", "33333333-3333-4333-8333-333333333333"];
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// 받은 스팬들 (`/v1/traces`로 온 protobuf를 푼 것).
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<Span>>>);

impl Received {
    fn all(&self) -> Vec<Span> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// `pred`를 만족하는 스팬이 `n`개 모일 때까지 (최대 10초).
    async fn wait_for(&self, n: usize, pred: impl Fn(&Span) -> bool) -> Vec<Span> {
        let started = Instant::now();
        loop {
            let found: Vec<Span> = self.all().into_iter().filter(|s| pred(s)).collect();
            if found.len() >= n || started.elapsed() > Duration::from_secs(10) {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// 작은 OTLP/HTTP 수신기: `POST /v1/traces`의 protobuf를 풀어 담는다. 주소를 돌려준다.
async fn receiver() -> (String, Received) {
    let received = Received::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            let sink = sink.clone();
            async move {
                if let Ok(req) = ExportTraceServiceRequest::decode(body) {
                    let spans = req.resource_spans.into_iter().flat_map(|r| r.scope_spans).flat_map(|s| s.spans);
                    if let Ok(mut all) = sink.0.lock() {
                        all.extend(spans);
                    }
                }
                ([("content-type", "application/x-protobuf")], Vec::<u8>::new())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("수신기 포트");
    let addr = listener.local_addr().expect("주소");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), received)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a AnyValue> {
    span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()).and_then(|v| v.value.as_ref())
}

/// 시드한 파일 SQLite 위의 실행 파일 (추적 설정은 `envs`).
async fn server(envs: &[(&str, &str)]) -> (testkit::Server, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("couponql-trace-{}.db", uuid::Uuid::new_v4()));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let seeded = binary(&url).arg("seed").status().expect("seed");
    assert!(seeded.success());
    let mut cmd = binary(&url);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    (testkit::Server::start(cmd).await.unwrap_or_else(|e| panic!("{e:#}")), path)
}

async fn post(base: &str, bearer: &str, traceparent: Option<&str>, body: Value) -> (u16, Option<String>, Value) {
    let mut req = reqwest::Client::new().post(format!("{base}/graphql")).bearer_auth(bearer).json(&body);
    if let Some(tp) = traceparent {
        req = req.header("traceparent", tp);
    }
    let resp = req.send().await.expect("HTTP");
    let status = resp.status().as_u16();
    let tp = resp.headers().get("traceparent").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (status, tp, resp.json().await.unwrap_or(Value::Null))
}

const ISSUE: &str = "mutation IssueCoupon($c: ID!, $u: ID) { issueCoupon(couponId: $c, userId: $u) { id } }";

/// 들어온 traceparent를 잇는 SERVER 스팬(`mutation IssueCoupon`), 그 아래의 배치·트랜잭션(`db.system`) 스팬,
/// 요청에서 배치로의 링크, 응답의 traceparent. 트레이스가 없던 조회도 새 트레이스의 `query Coupons`이다.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_one_trace_with_its_transactions_and_batches() {
    let (collector, received) = receiver().await;
    let (server, db) = server(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &collector), ("OTEL_BSP_SCHEDULE_DELAY", "50")]).await;
    let admin = token(USERS[0].parse().expect("uuid"), Role::Admin);

    let incoming = format!("00-{TRACE_ID}-{CALLER_SPAN}-01");
    let body = json!({ "query": ISSUE, "operationName": "IssueCoupon", "variables": { "c": COUPON, "u": USERS[0] } });
    let (status, tp, v) = post(server.base(), &admin, Some(&incoming), body).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["errors"].is_null(), "{v}");
    let tp = tp.expect("응답의 traceparent");
    let parts: Vec<&str> = tp.split('-').collect();
    assert_eq!((parts.len(), parts[0], parts[1]), (4, "00", TRACE_ID), "{tp}");
    assert_ne!(parts[2], CALLER_SPAN, "이 서버의 스팬");
    let server_span_id = parts[2].to_owned();

    let in_trace = |s: &Span| hex(&s.trace_id) == TRACE_ID;
    let spans = received.wait_for(3, in_trace).await;
    let by_name = |name: &str| spans.iter().find(|s| s.name.starts_with(name)).unwrap_or_else(|| panic!("{name}: {spans:#?}"));
    let root = by_name("mutation IssueCoupon");
    assert_eq!(hex(&root.span_id), server_span_id);
    assert_eq!(hex(&root.parent_span_id), CALLER_SPAN, "호출한 쪽의 스팬을 잇는다");
    assert_eq!(root.kind, SpanKind::Server as i32);
    let batch = by_name("issuance batch");
    assert_eq!(batch.parent_span_id, root.span_id, "배치는 그것을 띄운 요청 아래");
    assert!(root.links.iter().any(|l| l.span_id == batch.span_id), "요청이 배치에 링크: {root:#?}");
    let txn = by_name("transaction issue");
    assert_eq!(txn.parent_span_id, batch.span_id);
    assert!(matches!(attr(txn, "db.system"), Some(AnyValue::StringValue(s)) if s == "sqlite"), "{txn:#?}");

    // 세 요청이 한꺼번에: 각자의 SERVER 스팬이 자기를 처리한 배치에 링크된다.
    let mut calls = Vec::new();
    for (i, user) in USERS.iter().enumerate() {
        let base = server.base().to_owned();
        let admin = admin.clone();
        let body = json!({ "query": ISSUE, "operationName": "IssueCoupon", "variables": { "c": "c0000000-0000-4000-8000-000000000002", "u": user } });
        let tp = format!("00-{:032x}-{:016x}-01", i + 1, i + 1);
        calls.push(tokio::spawn(async move { post(&base, &admin, Some(&tp), body).await }));
    }
    for c in calls {
        let (status, _, _) = c.await.expect("작업");
        assert_eq!(status, 200);
    }
    for i in 1..=3u128 {
        let trace = format!("{i:032x}");
        let waits = received.wait_for(1, |s| hex(&s.trace_id) == trace && s.name == "mutation IssueCoupon").await;
        let link = waits.first().and_then(|w| w.links.first()).unwrap_or_else(|| panic!("{trace}: 링크 없음"));
        let batches = received.wait_for(1, |s| s.name == "issuance batch" && s.span_id == link.span_id).await;
        assert_eq!(batches.len(), 1, "링크가 가리키는 배치가 내보내졌다");
    }

    // traceparent 없이 온 조회: 새 트레이스, 이름은 연산.
    let (status, tp, _) = post(server.base(), &admin, None, json!({ "query": "query Coupons { coupons { nodes { id } } }" })).await;
    assert_eq!(status, 200);
    let tp = tp.expect("응답의 traceparent");
    let trace = tp.split('-').nth(1).unwrap_or_default().to_owned();
    let found = received.wait_for(1, |s| hex(&s.trace_id) == trace && s.name == "query Coupons").await;
    assert_eq!(found.len(), 1, "{:#?}", received.all().iter().map(|s| &s.name).collect::<Vec<_>>());
    assert!(found[0].parent_span_id.is_empty());
    drop(server);
    let _ = std::fs::remove_file(db);
}

/// 수집기가 없거나(닫힌 포트), 연결은 받고 답하지 않아도 요청은 예전처럼 빨리 답하고, 버린 스팬은
/// `couponql_trace_spans_dropped_total`로 센다. SIGTERM 뒤의 내보내기는 2초로 잘려 제때 끝난다.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_never_blocks_or_fails_a_request() {
    // 연결을 받고 아무 답도 하지 않는 수집기.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("포트");
    let silent_addr = silent.local_addr().expect("주소");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("포트");
        l.local_addr().expect("주소")
    };
    for (what, endpoint) in [("silent", format!("http://{silent_addr}")), ("down", format!("http://{closed}"))] {
        let envs =
            [("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()), ("OTEL_BSP_SCHEDULE_DELAY", "10"), ("OTEL_BSP_MAX_QUEUE_SIZE", "8")];
        let (mut server, db) = server(&envs).await;
        let admin = token(USERS[0].parse().expect("uuid"), Role::Admin);
        let started = Instant::now();
        let mut slowest = Duration::ZERO;
        for _ in 0..40 {
            let t = Instant::now();
            let (status, tp, v) = post(server.base(), &admin, None, json!({ "query": "{ coupons { nodes { id } } }" })).await;
            slowest = slowest.max(t.elapsed());
            assert_eq!(status, 200, "{what}: {v}");
            assert!(v["data"]["coupons"]["nodes"].is_array() && tp.is_some(), "{what}: {v}");
        }
        println!("{what}: 40 requests in {:?}, slowest {slowest:?}", started.elapsed());
        assert!(slowest < Duration::from_secs(1), "{what}: {slowest:?}");
        // 버린 스팬이 센다 (줄이 찼거나 내보내기가 실패했다).
        let mut dropped = 0.0;
        for _ in 0..100 {
            let text = reqwest::get(format!("{}/metrics", server.base())).await.expect("metrics").text().await.expect("본문");
            dropped = text
                .lines()
                .find(|l| l.starts_with("couponql_trace_spans_dropped_total"))
                .and_then(|l| l.split_whitespace().last())
                .and_then(|n| n.parse::<f64>().ok())
                .unwrap_or(0.0);
            if dropped > 0.0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(dropped > 0.0, "{what}: couponql_trace_spans_dropped_total = {dropped}");
        // SIGTERM: 요청이 없으니 곧 멈추고, 남은 내보내기는 2초까지만.
        let stop = Instant::now();
        let killed = std::process::Command::new("kill").arg("-TERM").arg(server.pid().to_string()).status().expect("kill");
        assert!(killed.success());
        let status = loop {
            if let Some(s) = server.try_wait().expect("wait") {
                break s;
            }
            assert!(stop.elapsed() < Duration::from_secs(6), "{what}: SIGTERM 뒤 6초 안에 끝나지 않았다");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        println!("{what}: exited {status} {:?} after SIGTERM", stop.elapsed());
        assert!(status.success(), "{what}: {status}");
        let _ = std::fs::remove_file(db);
    }
}
