//! 가장자리 (CONTRACT 2·4절): GraphQL over HTTP의 미디어 타입과 요청 오류, 415/405, null 전파, 스키마 하나,
//! CORS, persisted query, /metrics, 느린 클라이언트, 로그 형식과 시작 실패.
use std::time::{Duration, Instant};

use couponql::domain::Role;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::client::first_code;
use crate::e2e_on_all_backends;
use crate::helpers::{Backend, TestApp, fresh_db, new_coupon, new_user, start, token};

const C1: &str = "c0000000-0000-4000-8000-000000000001";
const GQL: &str = "application/graphql-response+json";

/// (상태, Content-Type, 본문)
async fn post(app: &TestApp, accept: Option<&str>, content_type: Option<&str>, body: &str) -> (u16, String, Value) {
    let mut req = app.http.post(format!("{}/graphql", app.base)).body(body.to_owned());
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    if let Some(c) = content_type {
        req = req.header("content-type", c);
    }
    let resp = req.send().await.expect("HTTP");
    let status = resp.status().as_u16();
    let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    (status, ct, serde_json::from_str(&resp.text().await.unwrap_or_default()).unwrap_or(Value::Null))
}

async fn request_errors_have_no_data_and_are_400_under_graphql_response_json(app: TestApp) {
    couponql::seed::seed(&app.db.conn).await.expect("seed");
    let parse_error = json!({ "query": "{ coupons { " }).to_string();
    let invalid = json!({ "query": "{ nope }" }).to_string();
    for body in [&parse_error, &invalid] {
        let (status, ct, v) = post(&app, Some(GQL), Some("application/json"), body).await;
        assert_eq!(status, 400, "{v}");
        assert!(ct.starts_with(GQL), "{ct}");
        assert!(v.get("data").is_none() && v.get("errors").is_some(), "{v}");
        let (status, ct, v) = post(&app, Some("application/json"), Some("application/json"), body).await;
        assert_eq!(status, 200, "{v}");
        assert!(ct.starts_with("application/json"), "{ct}");
        assert!(v.get("data").is_none(), "{v}");
    }
    // 실행된 요청은 어느 쪽이든 200이고 data가 있다.
    let ok = json!({ "query": format!("{{ coupon(id: \"{C1}\") {{ id }} }}") }).to_string();
    let (status, ct, v) = post(&app, Some(GQL), Some("application/json; charset=utf-8"), &ok).await;
    assert_eq!((status, ct.starts_with(GQL)), (200, true), "{v}");
    assert_eq!(v["data"]["coupon"]["id"], C1);
    // Accept가 없거나 */*면 application/json.
    let (_, ct, _) = post(&app, None, Some("application/json"), &ok).await;
    assert!(ct.starts_with("application/json"), "{ct}");
    let (_, ct, _) = post(&app, Some("*/*"), Some("application/json"), &ok).await;
    assert!(ct.starts_with("application/json"), "{ct}");
}
e2e_on_all_backends!(request_errors_have_no_data_and_are_400_under_graphql_response_json);

async fn a_post_that_is_not_json_is_refused_with_415_and_runs_nothing(app: TestApp) {
    let coupon = new_coupon(&app.db.conn, Some(10)).await;
    let user = new_user(&app.db.conn).await;
    let t = token(user.id, Role::User);
    let body = json!({ "query": format!("mutation {{ issueCoupon(couponId: \"{}\") {{ id }} }}", coupon.id) }).to_string();
    for ct in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None, Some("application/json; charset=latin1")] {
        let mut req = app.http.post(format!("{}/graphql", app.base)).bearer_auth(&t).body(body.clone());
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let resp = req.send().await.expect("HTTP");
        assert_eq!(resp.status().as_u16(), 415, "{ct:?}");
    }
    let now = couponql::repo::coupon::find_by_id(&app.db.conn, coupon.id).await.expect("조회").expect("쿠폰");
    assert_eq!(now.issued_quantity, 0, "415 요청이 발급을 실행함");
}
crate::backend_tests!(a_post_that_is_not_json_is_refused_with_415_and_runs_nothing, crate::helpers::spawn_app, sqlite => Sqlite);

async fn a_mutation_over_get_is_405_with_allow_post_even_as_a_persisted_query(app: TestApp) {
    let coupon = new_coupon(&app.db.conn, Some(10)).await;
    let user = new_user(&app.db.conn).await;
    let t = token(user.id, Role::User);
    let mutation = format!("mutation {{ issueCoupon(couponId: \"{}\") {{ id }} }}", coupon.id);
    let resp =
        app.http.get(format!("{}/graphql", app.base)).query(&[("query", mutation.as_str())]).bearer_auth(&t).send().await.expect("HTTP");
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(resp.headers().get("allow").and_then(|v| v.to_str().ok()), Some("POST"));
    // 해시를 POST로 알려 준 뒤(실행됨 → 한 장 발급) GET으로 해시만 보내도 405이고 다시 실행되지 않는다.
    let hash = sha256_hex(&mutation);
    let ext = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });
    let (status, v) = app.raw(Some(&t), json!({ "query": mutation, "extensions": ext }).to_string()).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["data"]["issueCoupon"]["id"].is_string(), "{v}");
    let resp = app
        .http
        .get(format!("{}/graphql", app.base))
        .query(&[("extensions", ext.to_string().as_str())])
        .bearer_auth(&t)
        .send()
        .await
        .expect("HTTP");
    assert_eq!(resp.status().as_u16(), 405);
    let now = couponql::repo::coupon::find_by_id(&app.db.conn, coupon.id).await.expect("조회").expect("쿠폰");
    assert_eq!(now.issued_quantity, 1);
}
crate::backend_tests!(a_mutation_over_get_is_405_with_allow_post_even_as_a_persisted_query, crate::helpers::spawn_app, sqlite => Sqlite);

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(s.as_bytes()))
}

async fn persisted_queries_follow_the_apollo_protocol(app: TestApp) {
    couponql::seed::seed(&app.db.conn).await.expect("seed");
    let query = format!("{{ coupon(id: \"{C1}\") {{ id name }} }}");
    let hash = sha256_hex(&query);
    let ext = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });
    let (_, v) = app.raw(None, json!({ "extensions": ext }).to_string()).await;
    assert_eq!(first_code(&v), Some("PERSISTED_QUERY_NOT_FOUND"), "{v}");
    let wrong = json!({ "persistedQuery": { "version": 1, "sha256Hash": sha256_hex("something else") } });
    let (_, v) = app.raw(None, json!({ "query": query, "extensions": wrong }).to_string()).await;
    assert_eq!(first_code(&v), Some("BAD_USER_INPUT"), "{v}");
    let (_, v) = app.raw(None, json!({ "query": query, "extensions": ext }).to_string()).await;
    assert_eq!(v["data"]["coupon"]["id"], C1, "{v}");
    // 이제 해시만으로, GET으로도 (CDN이 캐시할 수 있게).
    let resp = app.http.get(format!("{}/graphql", app.base)).query(&[("extensions", ext.to_string().as_str())]).send().await.expect("HTTP");
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["data"]["coupon"]["name"], "5,000원 할인 쿠폰", "{v}");
}
crate::backend_tests!(persisted_queries_follow_the_apollo_protocol, crate::helpers::spawn_app, sqlite => Sqlite);

async fn a_failing_non_null_field_nulls_its_nearest_nullable_parent(app: TestApp) {
    couponql::seed::seed(&app.db.conn).await.expect("seed");
    let (_, v) = app
        .raw(None, json!({ "query": format!("{{ coupon(id: \"{C1}\") {{ id discountFor(orderAmount: \"-1\") }} }}") }).to_string())
        .await;
    assert_eq!(v["data"], json!({ "coupon": null }), "{v}");
    assert_eq!(v["errors"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(first_code(&v), Some("BAD_USER_INPUT"));
    assert_eq!(v["errors"][0]["path"], json!(["coupon", "discountFor"]), "{v}");
    // 형제 필드는 남는다: 별칭으로 고른 두 쿠폰 중 하나만 null.
    let q = format!("{{ a: coupon(id: \"{C1}\") {{ id }} b: coupon(id: \"{C1}\") {{ id discountFor(orderAmount: \"x\") }} }}");
    let (_, v) = app.raw(None, json!({ "query": q }).to_string()).await;
    assert_eq!(v["data"], json!({ "a": { "id": C1 }, "b": null }), "{v}");
    // 경로가 모두 non-null이면 data 자체가 null: me → coupons → coupon → discountFor.
    let user = token(uuid::Uuid::parse_str("11111111-1111-4111-8111-111111111111").expect("uuid"), Role::User);
    let q = "{ me { id coupons { id coupon { discountFor(orderAmount: \"-5\") } } } }";
    let (_, v) = app.raw(Some(&user), json!({ "query": q }).to_string()).await;
    assert_eq!(v["data"], Value::Null, "{v}");
    assert!(v.as_object().is_some_and(|o| o.contains_key("data")), "실행된 요청은 data 항목이 있어야 함: {v}");
}
e2e_on_all_backends!(a_failing_non_null_field_nulls_its_nearest_nullable_parent);

#[test]
fn introspection_serves_exactly_the_checked_in_schema() {
    // 인트로스펙션 결과를 SDL과 같은 기준(타입·필드·인자·기본값·설명)으로 비교한다.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    let schema = couponql::graphql::build_schema(None, couponql::service::issuance::IssueMode::PerRequest);
    let q = "{ __schema { types { name kind description fields { name description args { name defaultValue description type { ...T } } type { ...T } } inputFields { name defaultValue description type { ...T } } enumValues { name description } } } }
             fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }";
    let resp = rt.block_on(schema.execute(q));
    assert!(resp.errors.is_empty(), "{:?}", resp.errors);
    let introspected = resp.data.into_json().expect("json");
    let sdl = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).expect("schema.graphql");
    let from_file = canon_sdl(&sdl);
    let live = canon_introspection(&introspected);
    let missing: Vec<_> = from_file.difference(&live).collect();
    let extra: Vec<_> = live.difference(&from_file).collect();
    assert!(missing.is_empty() && extra.is_empty(), "schema.graphql에만: {missing:#?}\n인트로스펙션에만: {extra:#?}");
    assert!(!live.iter().any(|l| l.starts_with("type Role")), "도달할 수 없는 Role이 스키마에 남음");
    assert!(live.iter().any(|l| l.starts_with("field Query.coupons")), "비교 대상이 비어 있음");
}

const BUILTIN_SCALARS: [&str; 5] = ["String", "Int", "Float", "Boolean", "ID"];

/// SDL을 비교용 줄들로: 타입, 필드(타입), 인자(타입과 기본값), 입력 필드, 열거 값, 설명.
fn canon_sdl(sdl: &str) -> std::collections::BTreeSet<String> {
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
    let doc = async_graphql::parser::parse_schema(sdl).expect("schema.graphql 파싱");
    let mut out = std::collections::BTreeSet::new();
    for def in doc.definitions {
        let TypeSystemDefinition::Type(t) = def else { continue };
        let t = t.node;
        let name = t.name.node.to_string();
        // 내장 스칼라(쓰이지 않는 Float)는 파일에 선언되지만 인트로스펙션 쪽에서도 빼므로 여기서도 뺀다.
        if BUILTIN_SCALARS.contains(&name.as_str()) {
            continue;
        }
        let desc = |d: &Option<async_graphql::Positioned<String>>| d.as_ref().map(|d| d.node.clone()).unwrap_or_default();
        out.insert(format!("type {name} \"{}\"", desc(&t.description)));
        match t.kind {
            TypeKind::Object(o) => {
                for f in o.fields {
                    let f = f.node;
                    out.insert(format!("field {name}.{}: {} \"{}\"", f.name.node, f.ty.node, desc(&f.description)));
                    for a in f.arguments {
                        let a = a.node;
                        let default = a.default_value.map(|v| v.node.to_string()).unwrap_or_default();
                        out.insert(format!(
                            "arg {name}.{}({}): {} = {default} \"{}\"",
                            f.name.node,
                            a.name.node,
                            a.ty.node,
                            desc(&a.description)
                        ));
                    }
                }
            }
            TypeKind::InputObject(o) => {
                for f in o.fields {
                    let f = f.node;
                    let default = f.default_value.map(|v| v.node.to_string()).unwrap_or_default();
                    out.insert(format!("input {name}.{}: {} = {default} \"{}\"", f.name.node, f.ty.node, desc(&f.description)));
                }
            }
            TypeKind::Enum(e) => {
                for v in e.values {
                    out.insert(format!("enum {name}.{} \"{}\"", v.node.value.node, desc(&v.node.description)));
                }
            }
            _ => {}
        }
    }
    out
}

fn type_ref(t: &Value) -> String {
    match t["kind"].as_str() {
        Some("NON_NULL") => format!("{}!", type_ref(&t["ofType"])),
        Some("LIST") => format!("[{}]", type_ref(&t["ofType"])),
        _ => t["name"].as_str().unwrap_or_default().to_owned(),
    }
}

/// 인트로스펙션 결과를 같은 줄들로 (내장 타입과 스칼라는 SDL에 없으므로 뺀다).
fn canon_introspection(v: &Value) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    for t in v["__schema"]["types"].as_array().into_iter().flatten() {
        let name = s(&t["name"]);
        if name.starts_with("__") || BUILTIN_SCALARS.contains(&name.as_str()) {
            continue;
        }
        out.insert(format!("type {name} \"{}\"", s(&t["description"])));
        for f in t["fields"].as_array().into_iter().flatten() {
            let fname = s(&f["name"]);
            out.insert(format!("field {name}.{fname}: {} \"{}\"", type_ref(&f["type"]), s(&f["description"])));
            for a in f["args"].as_array().into_iter().flatten() {
                out.insert(format!(
                    "arg {name}.{fname}({}): {} = {} \"{}\"",
                    s(&a["name"]),
                    type_ref(&a["type"]),
                    s(&a["defaultValue"]),
                    s(&a["description"])
                ));
            }
        }
        for f in t["inputFields"].as_array().into_iter().flatten() {
            out.insert(format!(
                "input {name}.{}: {} = {} \"{}\"",
                s(&f["name"]),
                type_ref(&f["type"]),
                s(&f["defaultValue"]),
                s(&f["description"])
            ));
        }
        for e in t["enumValues"].as_array().into_iter().flatten() {
            out.insert(format!("enum {name}.{} \"{}\"", s(&e["name"]), s(&e["description"])));
        }
    }
    out
}

async fn cors_answers_allowed_origins_only(app: TestApp) {
    let base = start(app.db.conn.clone(), |s| s.cors_allowed_origins = Some("https://shop.example, https://admin.example".into())).await;
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, format!("{base}/graphql"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type, idempotency-key")
            .send()
    };
    let resp = preflight("https://shop.example").await.expect("HTTP");
    assert_eq!(resp.status().as_u16(), 204);
    let h = resp.headers();
    assert_eq!(h.get("access-control-allow-origin").and_then(|v| v.to_str().ok()), Some("https://shop.example"));
    let methods = h.get("access-control-allow-methods").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(methods.contains("GET") && methods.contains("POST"), "{methods}");
    let allowed = h.get("access-control-allow-headers").and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
    assert!(["authorization", "content-type", "idempotency-key"].iter().all(|x| allowed.contains(x)), "{allowed}");
    assert!(h.get("access-control-max-age").is_some());
    let resp = preflight("https://evil.example").await.expect("HTTP");
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    let resp = app
        .http
        .post(format!("{base}/graphql"))
        .header("origin", "https://admin.example")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("HTTP");
    assert_eq!(resp.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()), Some("https://admin.example"));
    let vary = resp.headers().get_all("vary").iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join(",").to_ascii_lowercase();
    assert!(vary.contains("origin"), "{vary}");
    // 설정하지 않으면 CORS 헤더가 전혀 없다.
    let resp = app
        .http
        .post(format!("{}/graphql", app.base))
        .header("origin", "https://shop.example")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("HTTP");
    assert!(resp.headers().get("access-control-allow-origin").is_none());
}
crate::backend_tests!(cors_answers_allowed_origins_only, crate::helpers::spawn_app, sqlite => Sqlite);

async fn metrics_are_served_in_prometheus_text(app: TestApp) {
    couponql::seed::seed(&app.db.conn).await.expect("seed");
    let user = new_user(&app.db.conn).await;
    let coupon = new_coupon(&app.db.conn, Some(5)).await;
    let t = token(user.id, Role::User);
    let (_, v) = app
        .raw(Some(&t), json!({ "query": format!("mutation {{ issueCoupon(couponId: \"{}\") {{ id }} }}", coupon.id) }).to_string())
        .await;
    assert!(v["data"]["issueCoupon"]["id"].is_string(), "{v}");
    let text = app.http.get(format!("{}/metrics", app.base)).send().await.expect("HTTP").text().await.expect("text");
    for name in [
        "couponql_graphql_requests_total{",
        "couponql_graphql_request_duration_seconds_bucket{",
        "couponql_issuance_total{outcome=\"OK\"}",
        "couponql_issuance_batch_size_bucket",
        "couponql_db_pool_connections{state=\"idle\"}",
        "couponql_http_open_connections",
        "couponql_subscriptions_active",
    ] {
        assert!(text.contains(name), "/metrics에 {name}가 없음:\n{text}");
    }
    assert!(text.contains("operation_type=\"mutation\""), "{text}");
    // METRICS_BIND_ADDR: 지표는 그 주소에만.
    let port = testkit::free_port().expect("빈 포트");
    let base = start(app.db.conn.clone(), |s| s.metrics_bind_addr = Some(format!("127.0.0.1:{port}"))).await;
    assert_eq!(app.http.get(format!("{base}/metrics")).send().await.expect("HTTP").status().as_u16(), 404);
    let text = app.http.get(format!("http://127.0.0.1:{port}/metrics")).send().await.expect("HTTP").text().await.expect("text");
    assert!(text.contains("couponql_db_pool_connections"), "{text}");
}
crate::backend_tests!(metrics_are_served_in_prometheus_text, crate::helpers::spawn_app, sqlite => Sqlite);

/// 1,100개의 연결이 헤더를 한 바이트씩 흘려도 다른 손님은 곧바로 답을 받고, 느린 연결은 10초 안팎에 닫힌다.
/// 본문을 다 보내지 않는 요청도 10초 뒤 408로 끝난다.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickling_clients_do_not_stop_others_and_are_cut_after_ten_seconds() {
    let Some(db) = fresh_db(Backend::Sqlite).await else { return };
    let base = start(db.conn.clone(), |_| {}).await;
    let addr = base.trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    for _ in 0..1100 {
        let mut s = tokio::net::TcpStream::connect(addr.as_str()).await.expect("연결");
        s.write_all(b"GET /health HTTP/1.1\r\n").await.expect("쓰기");
        slow.push(s);
    }
    let opened = Instant::now();
    // 흘리기: 2초마다 한 바이트씩.
    let trickle = tokio::spawn(async move {
        let mut closed = 0;
        for _ in 0..7 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            closed = 0;
            for s in slow.iter_mut() {
                if s.write_all(b"X").await.is_err() {
                    closed += 1;
                }
            }
        }
        (slow, closed)
    });
    // 본문을 반만 보내는 요청.
    let mut half = tokio::net::TcpStream::connect(addr.as_str()).await.expect("연결");
    half.write_all(b"POST /graphql HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"query\":")
        .await
        .expect("쓰기");
    let half_sent = Instant::now();

    let http = reqwest::Client::new();
    let mut latencies = Vec::new();
    for _ in 0..40 {
        let t = Instant::now();
        let status = http.get(format!("{base}/health")).send().await.expect("정상 요청").status();
        assert_eq!(status.as_u16(), 200);
        latencies.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    latencies.sort();
    let p95 = latencies[latencies.len() * 95 / 100 - 1];
    println!("1,100 trickling connections: normal /health p95 {:.1} ms", p95.as_secs_f64() * 1000.0);
    assert!(p95 < Duration::from_secs(1), "p95 {p95:?}");

    let mut buf = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(15), half.read(&mut buf)).await.expect("본문 시간 제한이 없음").unwrap_or(0);
    let answer = String::from_utf8_lossy(&buf[..n]).to_lowercase();
    assert!(answer.starts_with("http/1.1 408"), "{answer}");
    assert!(half_sent.elapsed() >= Duration::from_secs(9), "너무 일찍 끊음");

    let (mut slow, _) = trickle.await.expect("흘리기");
    // 헤더 시간 제한(10초)이 지났으니 모두 닫혀 있어야 한다: 읽으면 곧 EOF(또는 오류).
    assert!(opened.elapsed() >= Duration::from_secs(12));
    let mut still_open = 0;
    for s in slow.iter_mut().take(50) {
        match tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {}
            Ok(Ok(_)) => {} // 408 같은 답을 받고 닫힘
            Err(_) => still_open += 1,
        }
    }
    assert_eq!(still_open, 0, "헤더를 끝내지 않은 연결이 10초 뒤에도 열려 있음");
}

#[test]
fn json_logs_are_one_object_per_line_and_startup_failures_name_the_cause() {
    let bin = env!("CARGO_BIN_EXE_couponql");
    let out = std::process::Command::new(bin)
        .arg("migrate")
        .env("DATABASE_URL", "sqlite::memory:")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .output()
        .expect("couponql migrate");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "로그가 없음");
    for l in &lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("JSON이 아닌 로그 줄 ({e}): {l}"));
        assert!(v.get("level").is_some(), "{l}");
    }
    // 닿지 않는 데이터베이스: 0이 아닌 종료, 원인을 밝히는 한 줄, 백트레이스 없음, 비밀번호 없음.
    let started = Instant::now();
    let out = std::process::Command::new(bin)
        .arg("migrate")
        .env("DATABASE_URL", "postgres://someone:hunter2@127.0.0.1:9/none")
        .env("RUST_LOG", "off")
        .output()
        .expect("couponql migrate");
    assert!(!out.status.success());
    assert!(started.elapsed() < Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot connect to the database"), "{stderr}");
    assert!(!stderr.contains("hunter2") && !stderr.contains("panicked"), "{stderr}");
    // 잘못된 설정 값.
    let out = std::process::Command::new(bin).arg("schema").env("DB_MAX_CONNECTIONS", "0").output().expect("couponql");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).to_lowercase().contains("db-max-connections"), "{}", String::from_utf8_lossy(&out.stderr));
}
