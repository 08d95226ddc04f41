//! CONTRACT 13절, 운영용 API 표면: 신뢰 문서(`TRUSTED_DOCUMENTS`)와 비용. 모두 실제 HTTP와 웹소켓으로.
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use couponql::domain::{OrderId, Role, Viewer};
use couponql::service;
use couponql::service::issuance::{IssueMode, Issuer};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use uuid::Uuid;

use crate::e2e_on_all_backends;
use crate::helpers::{Backend, TestApp, fresh_db, new_coupon, new_users, start, token};

const GQL: &str = "application/graphql-response+json";
const COUPONS: &str = "query Coupons($first: Int) { coupons(first: $first) { edges { node { id name } } } }";
const STOCK: &str = "subscription Stock($c: ID!) { couponStock(couponId: $c) { couponId remainingQuantity } }";
const INTROSPECTION: &str = "query Intro { __schema { queryType { name } } }";

fn sha(text: &str) -> String {
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

/// 이 테스트만의 임시 파일 경로.
fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("couponql-{}-{name}", uuid::Uuid::new_v4()))
}

/// 목록을 임시 파일로 (client preset의 persisted-documents.json 모양: `sha256:<hex>` → 글).
fn manifest(docs: &[&str]) -> PathBuf {
    let map: serde_json::Map<String, Value> = docs.iter().map(|d| (format!("sha256:{}", sha(d)), Value::from(*d))).collect();
    let path = temp_path("manifest.json");
    std::fs::write(&path, Value::Object(map).to_string()).expect("쓰기");
    path
}

async fn post(base: &str, accept: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new().post(format!("{base}/graphql")).header("accept", accept).json(&body).send().await.expect("HTTP");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn code(v: &Value) -> &str {
    v["errors"][0]["extensions"]["code"].as_str().unwrap_or_default()
}

/// 신뢰 모드: 목록의 문서는 documentId(두 모양), GET, APQ 해시로 실행되고, 질의 글·APQ 등록·모르는 id는
/// 파싱 전에 PERSISTED_QUERY_NOT_FOUND (graphql-response+json이면 400). 인트로스펙션은 목록에 있을 때만.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_manifest_runs_over_post_and_get() {
    let Some(db) = fresh_db(Backend::Sqlite).await else { return };
    let coupon = new_coupon(&db.conn, Some(5)).await;
    let path = manifest(&[COUPONS, STOCK]);
    let base = start(db.conn.clone(), move |s| s.trusted_documents = Some(path)).await;
    let hex = sha(COUPONS);

    for id in [format!("sha256:{hex}"), hex.clone(), hex.to_uppercase()] {
        let (status, v) = post(&base, GQL, json!({ "documentId": id, "variables": { "first": 5 } })).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["data"]["coupons"]["edges"][0]["node"]["id"], coupon.id.to_string(), "{v}");
        assert_eq!(v["extensions"]["cost"], json!({ "requested": 17, "limit": 50_000 }), "{v}");
    }
    let (status, v) = post(&base, GQL, json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hex } } })).await;
    assert_eq!((status, v["errors"].is_null()), (200, true), "APQ 해시로도: {v}");
    let url = format!("{base}/graphql?documentId=sha256:{hex}&variables=%7B%22first%22%3A1%7D");
    let v: Value = reqwest::get(&url).await.expect("GET").json().await.expect("JSON");
    assert_eq!(v["data"]["coupons"]["edges"].as_array().map(Vec::len), Some(1), "{v}");

    let refused = [
        json!({ "query": COUPONS }),
        json!({ "query": COUPONS, "documentId": hex }),
        json!({ "query": COUPONS, "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hex } } }),
        json!({ "documentId": sha("{ other }") }),
        json!({ "query": INTROSPECTION }),
        json!({ "query": "{ __typename" }),
        json!({}),
    ];
    for body in refused {
        let (status, v) = post(&base, GQL, body.clone()).await;
        assert_eq!((status, code(&v)), (400, "PERSISTED_QUERY_NOT_FOUND"), "{body}: {v}");
        assert!(v.get("data").is_none(), "{v}");
        let (status, v) = post(&base, "application/json", body.clone()).await;
        assert_eq!((status, code(&v)), (200, "PERSISTED_QUERY_NOT_FOUND"), "{body}: {v}");
    }
    let v: Value = reqwest::get(format!("{base}/graphql?query=%7B__typename%7D")).await.expect("GET").json().await.expect("JSON");
    assert_eq!(code(&v), "PERSISTED_QUERY_NOT_FOUND", "{v}");
}

/// 목록에 인트로스펙션이 있으면 그것만은 실행된다 (비용 0: 한도와 상관없이).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_runs_only_from_the_manifest() {
    let Some(db) = fresh_db(Backend::Sqlite).await else { return };
    let path = manifest(&[INTROSPECTION]);
    let base = start(db.conn.clone(), move |s| {
        s.trusted_documents = Some(path);
        s.max_query_cost = 1;
    })
    .await;
    let (status, v) = post(&base, GQL, json!({ "documentId": sha(INTROSPECTION) })).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["__schema"]["queryType"]["name"], "Query", "{v}");
    assert_eq!(v["extensions"]["cost"]["requested"], 1, "{v}");
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn recv(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("5초 안에").expect("스트림").expect("메시지");
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(&t).expect("JSON");
            if v["type"] != "ping" {
                return v;
            }
        }
    }
}

/// graphql-transport-ws로 연결하고 `connection_ack`까지.
async fn ws_ready(base: &str) -> Ws {
    let mut req = format!("{}/graphql/ws", base.replace("http://", "ws://")).into_client_request().expect("요청");
    req.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().expect("헤더"));
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.expect("연결");
    ws.send(Message::Text(json!({ "type": "connection_init" }).to_string().into())).await.expect("init");
    assert_eq!(recv(&mut ws).await["type"], "connection_ack");
    ws
}

/// 웹소켓의 `subscribe`도 같은 규칙: documentId로 고른 구독은 돌고, 질의 글은 `error` 메시지로 거절된다.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_follow_the_manifest() {
    let Some(db) = fresh_db(Backend::Sqlite).await else { return };
    let coupon = new_coupon(&db.conn, Some(3)).await;
    let path = manifest(&[STOCK]);
    let base = start(db.conn.clone(), move |s| s.trusted_documents = Some(path)).await;
    let mut ws = ws_ready(&base).await;
    let send = |v: Value| Message::Text(v.to_string().into());

    ws.send(send(json!({ "id": "text", "type": "subscribe", "payload": { "query": STOCK, "variables": { "c": coupon.id } } })))
        .await
        .expect("보내기");
    let v = recv(&mut ws).await;
    assert_eq!((v["id"].as_str(), v["type"].as_str()), (Some("text"), Some("error")), "{v}");
    assert_eq!(v["payload"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND", "{v}");

    let id = json!({ "id": "doc", "type": "subscribe", "payload": { "documentId": format!("sha256:{}", sha(STOCK)), "variables": { "c": coupon.id } } });
    ws.send(send(id)).await.expect("보내기");
    let v = recv(&mut ws).await;
    assert_eq!((v["id"].as_str(), v["type"].as_str()), (Some("doc"), Some("next")), "{v}");
    assert_eq!(v["payload"]["data"]["couponStock"]["remainingQuantity"], 3, "{v}");
}

/// 어긋난 목록은 시작을 멈춘다: 0이 아닌 종료 코드와, TRUSTED_DOCUMENTS와 까닭을 말하는 한 줄 (패닉 없이).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_manifest_stops_startup_with_one_line() {
    let Some(db) = fresh_db(Backend::Sqlite).await else { return };
    let broken = "{ nope";
    let cases = [
        ("missing", None, "cannot read"),
        ("json", Some("{".to_owned()), "not valid JSON"),
        ("number", Some(json!({ sha("{ a }"): 5 }).to_string()), "is not a string"),
        ("mismatch", Some(json!({ sha("{ a }"): "{ b }" }).to_string()), "is not the SHA-256"),
        ("unparsable", Some(json!({ sha(broken): broken }).to_string()), "does not parse"),
    ];
    for (name, content, says) in cases {
        let path = temp_path(&format!("{name}.json"));
        if let Some(c) = content {
            std::fs::write(&path, c).expect("쓰기");
        }
        let started = std::time::Instant::now();
        let out = crate::helpers::binary(&db.url)
            .arg("serve")
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("TRUSTED_DOCUMENTS", &path)
            .output()
            .expect("실행");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or_default();
        assert!(!out.status.success(), "{name}: {stderr}");
        assert!(started.elapsed() < Duration::from_secs(30));
        assert!(last.contains("TRUSTED_DOCUMENTS") && last.contains(says), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

// ---------------------------------------------------------------------------------------------
// 연합 그래프 (Federation v2)

/// `_entities` 하나를 보내고 (답, 그동안 서버가 실행한 SQL 문 수).
async fn entities(app: &TestApp, token: Option<&str>, reps: Vec<Value>, selection: &str) -> (Value, usize) {
    let query = format!("query($r: [_Any!]!) {{ _entities(representations: $r) {{ {selection} }} }}");
    let before = app.statements.load(Ordering::SeqCst);
    let (status, v) = app.raw(token, json!({ "query": query, "variables": { "r": reps } }).to_string()).await;
    assert_eq!(status, 200, "{v}");
    (v, app.statements.load(Ordering::SeqCst) - before)
}

fn codes(v: &Value) -> Vec<&str> {
    v["errors"].as_array().map(|es| es.iter().filter_map(|e| e["extensions"]["code"].as_str()).collect()).unwrap_or_default()
}

/// 100개의 대표값도 타입마다 정해진 수의 문장으로 (10개일 때와 같은 수), 그리고 항목마다 그 필드의 규칙:
/// 남의 발급 내역은 null과 USER_COUPON_NOT_FOUND, 남의 사용자는 null과 FORBIDDEN, 남의 주문 쿠폰은 보이지 않고,
/// 토큰 없는 `Order.coupons`는 UNAUTHENTICATED. 다른 항목은 그대로 풀린다.
async fn entities_are_batched_and_follow_the_field_rules(app: TestApp) {
    let db = &app.db.conn;
    let users = new_users(db, 100).await;
    let coupon = new_coupon(db, Some(100)).await;
    let issuer = Issuer::new(db.clone(), IssueMode::PerRequest);
    let mut held = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let uc = issuer.issue(u.id, coupon.id).await.expect("발급");
        let viewer = Viewer { user_id: u.id, role: Role::User };
        let order = OrderId::parse(&format!("order-{i}")).expect("주문");
        let amount = rust_decimal::Decimal::from(50_000);
        service::user_coupons::reserve(db, Some(&viewer), uc.id, &order, amount, chrono::Duration::minutes(10), None).await.expect("보류");
        held.push(uc.id);
    }
    let admin = token(users[0].id, Role::Admin);
    let rep = |ty: &str, id: String| json!({ "__typename": ty, "id": id });
    let mut counts = Vec::new();
    for n in [10, 100] {
        let (v, coupons) = entities(&app, None, vec![rep("Coupon", coupon.id.to_string()); n], "... on Coupon { id name }").await;
        assert_eq!(v["data"]["_entities"].as_array().map(Vec::len), Some(n), "{v}");
        assert_eq!(v["data"]["_entities"][n - 1]["name"], coupon.name.as_str(), "{v}");
        let reps = users.iter().take(n).map(|u| rep("User", u.id.to_string())).collect();
        let (v, users_) = entities(&app, Some(&admin), reps, "... on User { id coupons { id } }").await;
        assert_eq!(v["data"]["_entities"][n - 1]["coupons"][0]["id"], held[n - 1].to_string(), "{v}");
        let reps = held.iter().take(n).map(|id| rep("UserCoupon", id.to_string())).collect();
        let (v, ucs) = entities(&app, Some(&admin), reps, "... on UserCoupon { id coupon { name } }").await;
        assert_eq!(v["data"]["_entities"][n - 1]["coupon"]["name"], coupon.name.as_str(), "{v}");
        let reps = (0..n).map(|i| rep("Order", format!("order-{i}"))).collect();
        let (v, orders) = entities(&app, Some(&admin), reps, "... on Order { id coupons { id discountAmount } }").await;
        assert_eq!(v["data"]["_entities"][n - 1]["coupons"][0]["id"], held[n - 1].to_string(), "{v}");
        assert!(v["errors"].is_null(), "{v}");
        counts.push([coupons, users_, ucs, orders]);
    }
    println!("문장 수 (Coupon, User+coupons, UserCoupon+coupon, Order+coupons): 10개 {:?}, 100개 {:?}", counts[0], counts[1]);
    assert_eq!(counts[0], counts[1], "대표값 수와 상관없이 같은 수의 문장");
    assert!(counts[1].iter().all(|&c| c <= 2), "{counts:?}");

    // 항목마다의 규칙 (USER users[0]).
    let me = token(users[0].id, Role::User);
    let reps =
        vec![rep("UserCoupon", held[0].to_string()), rep("UserCoupon", held[1].to_string()), rep("UserCoupon", Uuid::new_v4().to_string())];
    let (v, _) = entities(&app, Some(&me), reps, "... on UserCoupon { id }").await;
    assert_eq!(v["data"]["_entities"], json!([{ "id": held[0].to_string() }, null, null]), "{v}");
    assert_eq!(codes(&v), ["USER_COUPON_NOT_FOUND", "USER_COUPON_NOT_FOUND"], "{v}");
    let reps = vec![rep("User", users[0].id.to_string()), rep("User", users[1].id.to_string())];
    let (v, _) = entities(&app, Some(&me), reps, "... on User { id }").await;
    assert_eq!(v["data"]["_entities"], json!([{ "id": users[0].id.to_string() }, null]), "{v}");
    assert_eq!(codes(&v), ["FORBIDDEN"], "{v}");
    let reps = vec![rep("Order", "order-0".into()), rep("Order", "order-1".into()), rep("Order", "no such order".into())];
    let (v, _) = entities(&app, Some(&me), reps, "... on Order { id coupons { id } }").await;
    assert_eq!(
        v["data"]["_entities"],
        json!([{ "id": "order-0", "coupons": [{ "id": held[0].to_string() }] }, { "id": "order-1", "coupons": [] }, { "id": "no such order", "coupons": [] }]),
        "{v}"
    );
    let (v, _) = entities(&app, None, vec![rep("Order", "order-0".into())], "... on Order { coupons { id } }").await;
    assert_eq!(codes(&v), ["UNAUTHENTICATED"], "{v}");
    let (v, _) = entities(&app, None, vec![rep("User", users[0].id.to_string())], "... on User { id }").await;
    assert_eq!((v["data"]["_entities"].clone(), codes(&v)), (json!([null]), vec!["UNAUTHENTICATED"]), "{v}");
}
e2e_on_all_backends!(entities_are_batched_and_follow_the_field_rules);

/// `_service { sdl }`은 익명으로, 네 엔터티의 `@key`와 함께, `couponql schema --federation`이 찍는 것과 같다.
/// 일반 스키마(`schema.graphql`)에도 `_service`와 `_entities`가 있다.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subgraph_sdl_is_served_and_printed_alike() {
    let Some(db) = fresh_db(Backend::Sqlite).await else { return };
    let base = start(db.conn.clone(), |_| {}).await;
    let (status, v) = post(&base, "application/json", json!({ "query": "{ _service { sdl } }" })).await;
    assert_eq!(status, 200, "{v}");
    let sdl = v["data"]["_service"]["sdl"].as_str().unwrap_or_default().to_owned();
    for ty in ["Coupon", "User", "UserCoupon", "Order"] {
        assert!(sdl.contains(&format!("type {ty} @key(fields: \"id\")")), "{ty}: {sdl}");
    }
    let printed =
        crate::helpers::binary(&db.url).args(["schema", "--federation"]).stdout(std::process::Stdio::piped()).output().expect("실행");
    assert!(printed.status.success());
    assert_eq!(String::from_utf8_lossy(&printed.stdout), sdl);
    let plain = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).expect("schema.graphql");
    assert!(plain.contains("_entities(representations: [_Any!]!): [_Entity]!") && plain.contains("_service: _Service!"), "schema.graphql");
}

// ---------------------------------------------------------------------------------------------
// 비용 (MAX_QUERY_COST)

/// 설정한 한도가 곧 한도다: 넘는 조회는 실행 전에 GRAPHQL_VALIDATION_FAILED(400, `data` 없음), 넘는 구독은 웹소켓의
/// `error` 메시지. 한도 안의 조회는 `extensions.cost`에 그 값과 한도를 싣고, 인트로스펙션 아래는 세지 않는다.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_cost_limit_refuses_queries_and_subscriptions_before_they_run() {
    let Some(db) = fresh_db(Backend::Sqlite).await else { return };
    let coupon = new_coupon(&db.conn, Some(3)).await;
    let base = start(db.conn.clone(), |s| s.max_query_cost = 5).await;
    // coupons 1 + edges(1 + 2 × (node 1 + id 1)) = 6 > 5.
    let (status, v) = post(&base, GQL, json!({ "query": "{ coupons(first: 2) { edges { node { id } } } }" })).await;
    assert_eq!((status, code(&v)), (400, "GRAPHQL_VALIDATION_FAILED"), "{v}");
    assert!(v.get("data").is_none(), "{v}");
    let (status, v) = post(&base, GQL, json!({ "query": "{ coupons(first: 1) { edges { node { id } } } }" })).await;
    assert_eq!(status, 200, "{v}");
    // coupons 1 + edges(1 + 1 × (node 1 + id 1)) = 4.
    assert_eq!(v["extensions"]["cost"], json!({ "requested": 4, "limit": 5 }), "{v}");
    let (status, v) = post(&base, GQL, json!({ "query": "{ __schema { types { name fields { name args { name } } } } }" })).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["extensions"]["cost"]["requested"], 1, "인트로스펙션 아래는 0: {v}");

    let mut ws = ws_ready(&base).await;
    let send = |v: Value| Message::Text(v.to_string().into());
    // couponStock 1 + 다섯 필드 = 6 > 5.
    let q = "subscription($c: ID!) { couponStock(couponId: $c) { couponId issuedQuantity totalQuantity remainingQuantity soldOut } }";
    ws.send(send(json!({ "id": "s", "type": "subscribe", "payload": { "query": q, "variables": { "c": coupon.id } } })))
        .await
        .expect("보내기");
    // 실행 전의 거절: 자료 없이 GRAPHQL_VALIDATION_FAILED. async-graphql의 상태 기계는 검증 오류를 `error`가 아니라
    // `data: null`인 `next`(와 `complete`)로 보낸다: 어느 쪽이든 구독은 돌지 않았다.
    let v = recv(&mut ws).await;
    assert_eq!(v["id"].as_str(), Some("s"), "{v}");
    let errors = if v["type"] == "error" { &v["payload"] } else { &v["payload"]["errors"] };
    assert_eq!(errors[0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED", "{v}");
    assert!(v["payload"]["data"].is_null(), "{v}");
}
