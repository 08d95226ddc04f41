//! 밖에서 찾은 공격과 결함 (이슈 18, CONTRACT 2절): 조각 펼치기, 느린 본문, 변수 강제 변환, 요청 오류, 짧은 오류,
//! 로그와 헤더. 각 테스트는 공격을 실제 HTTP로 재현한다.
use std::time::{Duration, Instant};

use couponql::domain::Role;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{Backend, TestApp, fresh_db, new_user, start, token};

const C1: &str = "c0000000-0000-4000-8000-000000000001";
const GQL: &str = "application/graphql-response+json";

/// (상태, 헤더, 본문 바이트 수, 본문)
async fn post_json(base: &str, accept: &str, body: &Value, bearer: Option<&str>) -> (u16, reqwest::header::HeaderMap, usize, Value) {
    let mut req = reqwest::Client::new().post(format!("{base}/graphql")).header("accept", accept).json(body);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("HTTP");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.expect("본문");
    (status, headers, bytes.len(), serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn code(v: &Value) -> &str {
    v["errors"][0]["extensions"]["code"].as_str().unwrap_or_default()
}

/// 조각 N개가 각각 다음 조각을 두 번 펼친다: 1 KB 안팎의 문서가 펼치면 2^N.
fn fan_out(n: usize) -> String {
    let mut q = String::from("query { ...F0 }\n");
    for i in 0..n {
        q.push_str(&format!("fragment F{i} on Query {{ a: __typename ...F{} ...F{} }}\n", i + 1, i + 1));
    }
    q.push_str(&format!("fragment F{n} on Query {{ __typename }}\n"));
    q
}

/// 공격: 펼치면 2^N인 1 KB 문서 여덟 개를 한꺼번에 (bcc4ff5에서 N = 25는 10초, N = 30은 약 5분의 CPU).
/// 모두 곧바로 GRAPHQL_VALIDATION_FAILED이고, 그동안 다른 손님은 1초 안에 답을 받는다.
async fn fragment_fan_out_is_refused_cheaply_while_others_are_served(app: TestApp) {
    couponql::seed::seed(&app.db.conn).await.expect("seed");
    for n in [23, 25, 30] {
        let q = fan_out(n);
        assert!(q.len() < 2048, "{}", q.len());
        let t = Instant::now();
        let (status, _, _, v) = post_json(&app.base, GQL, &json!({ "query": q }), None).await;
        println!("fan-out N = {n} ({} bytes): {} in {:.1} ms", q.len(), code(&v), t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!((status, code(&v)), (400, "GRAPHQL_VALIDATION_FAILED"), "{v}");
        assert!(v.get("data").is_none(), "{v}");
    }
    // 여덟 개가 동시에, 되풀이해서 오는 동안 정상 질의.
    let base = app.base.clone();
    let attack = tokio::spawn(async move {
        let mut rounds = Vec::new();
        for _ in 0..8 {
            let base = base.clone();
            rounds.push(tokio::spawn(async move {
                for _ in 0..10 {
                    let (_, _, _, v) = post_json(&base, GQL, &json!({ "query": fan_out(30) }), None).await;
                    assert_eq!(code(&v), "GRAPHQL_VALIDATION_FAILED", "{v}");
                }
            }));
        }
        for r in rounds {
            r.await.expect("공격");
        }
    });
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        let t = Instant::now();
        let (status, _, _, v) =
            post_json(&app.base, GQL, &json!({ "query": format!("{{ coupon(id: \"{C1}\") {{ id name }} }}") }), None).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["data"]["coupon"]["id"], C1);
        worst = worst.max(t.elapsed());
    }
    attack.await.expect("공격");
    println!("during 8 concurrent fan-out attackers: slowest normal query {:.1} ms", worst.as_secs_f64() * 1000.0);
    assert!(worst < Duration::from_secs(1), "{worst:?}");
}
crate::backend_tests!(fragment_fan_out_is_refused_cheaply_while_others_are_served, crate::helpers::spawn_app, mysql => MySql; postgres => Postgres; sqlite => Sqlite);

/// 변수 강제 변환은 요청의 일부: 빠진 필수 변수, 틀린 JSON 타입, 스칼라가 거절하는 값은 INTERNAL이 아니라
/// BAD_USER_INPUT 요청 오류(`variable`, `field`, data 없음, graphql-response+json이면 400)이고, 아무것도 실행되지 않는다.
async fn variable_coercion_errors_are_request_errors_that_change_nothing(app: TestApp) {
    let user = new_user(&app.db.conn).await;
    let admin = token(user.id, Role::Admin);
    let create = "mutation($input: CreateCouponInput!) { createCoupon(input: $input) { id } }";
    let good = json!({"name": "변수 쿠폰", "discountType": "FIXED", "discountValue": "1000", "validFrom": "2025-01-01T00:00:00Z", "validUntil": "2099-01-01T00:00:00Z"});
    let cases = [
        (json!({}), "input", "input"),
        (json!({ "input": 7 }), "input", "input"),
        (json!({ "input": with(&good, "validUntil", json!("어제")) }), "input", "validUntil"),
        (json!({ "input": with(&good, "discountValue", json!("1e3")) }), "input", "discountValue"),
        (json!({ "input": with(&good, "totalQuantity", json!(4_000_000_000u64)) }), "input", "totalQuantity"),
    ];
    for (variables, variable, field) in cases {
        for accept in [GQL, "application/json"] {
            let (status, _, _, v) = post_json(&app.base, accept, &json!({ "query": create, "variables": variables }), Some(&admin)).await;
            assert_eq!(code(&v), "BAD_USER_INPUT", "{v}");
            assert_eq!(v["errors"][0]["extensions"]["variable"], variable, "{v}");
            assert_eq!(v["errors"][0]["extensions"]["field"], field, "{v}");
            assert!(v.get("data").is_none(), "{v}");
            assert_eq!(status, if accept == GQL { 400 } else { 200 });
        }
    }
    let created = sea_orm::PaginatorTrait::count(<couponql::entities::coupon::Entity as sea_orm::EntityTrait>::find(), &app.db.conn)
        .await
        .expect("count");
    assert_eq!(created, 0, "거절된 요청이 쿠폰을 만들었다");
    // 강제 변환은 권한보다 먼저 (익명도 같은 요청 오류).
    let (_, _, _, v) = post_json(&app.base, GQL, &json!({ "query": create, "variables": {} }), None).await;
    assert_eq!(code(&v), "BAD_USER_INPUT", "{v}");
    let (status, _, _, v) = post_json(&app.base, GQL, &json!({ "query": create, "variables": { "input": good } }), Some(&admin)).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["data"]["createCoupon"]["id"].is_string(), "{v}");
}
crate::e2e_on_all_backends!(variable_coercion_errors_are_request_errors_that_change_nothing);

fn with(base: &Value, key: &str, value: Value) -> Value {
    let mut v = base.clone();
    v[key] = value;
    v
}

/// GET의 operationName, HTTP로 온 구독(POST·GET 모두 400 BAD_REQUEST), `[]`(배치: 400), 짧은 오류 (8 KiB 이하).
async fn request_shapes_that_are_not_runnable_get_short_clear_errors(app: TestApp) {
    couponql::seed::seed(&app.db.conn).await.expect("seed");
    let http = reqwest::Client::new();
    // 여러 연산 중 이름으로 고른 것이 돈다.
    let doc = format!("query A {{ __typename }} query B {{ coupon(id: \"{C1}\") {{ id }} }}");
    let resp =
        http.get(format!("{}/graphql", app.base)).query(&[("query", doc.as_str()), ("operationName", "B")]).send().await.expect("GET");
    let v: Value = resp.json().await.expect("JSON");
    assert_eq!(v["data"]["coupon"]["id"], C1, "{v}");
    let resp = http
        .get(format!("{}/graphql", app.base))
        .query(&[("query", doc.as_str()), ("operationName", "Z")])
        .header("accept", GQL)
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status().as_u16(), 400);
    let v: Value = resp.json().await.expect("JSON");
    assert!(v.get("data").is_none() && v["errors"][0]["extensions"]["code"].is_string(), "{v}");

    let sub = format!("subscription {{ couponStock(couponId: \"{C1}\") {{ soldOut }} }}");
    for accept in [GQL, "application/json"] {
        let (status, _, _, v) = post_json(&app.base, accept, &json!({ "query": sub }), None).await;
        assert_eq!((status, code(&v)), (400, "BAD_REQUEST"), "{v}");
        assert!(v["errors"][0]["message"].as_str().unwrap_or_default().contains("/graphql/ws"), "{v}");
        let resp =
            http.get(format!("{}/graphql", app.base)).query(&[("query", sub.as_str())]).header("accept", accept).send().await.expect("GET");
        assert_eq!(resp.status().as_u16(), 400);
        let v: Value = resp.json().await.expect("JSON");
        assert_eq!(code(&v), "BAD_REQUEST", "{v}");
    }

    for body in ["[]", " [ ] ", r#"[{"query":"{ __typename }"}]"#] {
        let resp =
            http.post(format!("{}/graphql", app.base)).header("content-type", "application/json").body(body).send().await.expect("POST");
        assert_eq!(resp.status().as_u16(), 400, "{body}");
        let v: Value = resp.json().await.expect("JSON");
        assert_eq!(code(&v), "BAD_REQUEST", "{v}");
    }

    // 쓰지 않은 변수 3,000개 (bcc4ff5: 436 KB 오류)와 문서 전체를 인용하던 파싱 오류.
    let unused = format!("query({}) {{ __typename }}", (0..3000).map(|i| format!("$v{i}: Int")).collect::<Vec<_>>().join(", "));
    assert!(unused.len() > 30_000);
    let (_, _, size, v) = post_json(&app.base, GQL, &json!({ "query": unused }), None).await;
    assert_eq!(code(&v), "GRAPHQL_VALIDATION_FAILED", "{v}");
    assert!(size <= 8 * 1024, "{size} bytes");
    let broken = format!("{{ coupon(id: \"{}\") {{ id ", "x".repeat(60_000));
    let (_, _, size, v) = post_json(&app.base, GQL, &json!({ "query": broken }), None).await;
    assert_eq!(code(&v), "GRAPHQL_PARSE_FAILED", "{v}");
    assert!(size <= 8 * 1024, "{size} bytes");
    // 64 KiB 안에 괄호 수만 단: 파서에 닿기 전에 거절 (스택을 다 쓰지 않는다).
    let deep = format!("{{{}", "a{".repeat(30_000));
    let (_, _, size, v) = post_json(&app.base, GQL, &json!({ "query": deep }), None).await;
    assert_eq!(code(&v), "GRAPHQL_PARSE_FAILED", "{v}");
    assert!(size <= 8 * 1024, "{size} bytes");
    println!("error sizes stay under 8 KiB (last: {size} bytes)");
}
crate::backend_tests!(request_shapes_that_are_not_runnable_get_short_clear_errors, crate::helpers::spawn_app, sqlite => Sqlite);

/// 캐시: 익명 GET 조회만 `public, max-age=N`(가장 작은 힌트), 힌트 없는 필드·토큰·POST·오류는 `private, no-store`.
/// CORS: 브라우저 앱이 읽을 응답 헤더를 `Access-Control-Expose-Headers`로.
async fn cache_control_follows_the_hints_and_cors_exposes_the_headers_apps_read(app: TestApp) {
    couponql::seed::seed(&app.db.conn).await.expect("seed");
    let http = reqwest::Client::new();
    let get = |q: String, bearer: Option<String>| {
        let mut req = http.get(format!("{}/graphql", app.base)).query(&[("query", q)]);
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        req
    };
    let cc = |r: &reqwest::Response| r.headers().get("cache-control").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let read = format!("{{ coupon(id: \"{C1}\") {{ id name }} coupons(first: 2) {{ nodes {{ id }} }} }}");
    let r = get(read.clone(), None).send().await.expect("GET");
    assert_eq!(cc(&r), "public, max-age=5");
    let user = new_user(&app.db.conn).await;
    let r = get(read.clone(), Some(token(user.id, Role::User))).send().await.expect("GET");
    assert_eq!(cc(&r), "private, no-store", "토큰이 있는 응답");
    let r = get("{ __typename }".to_owned(), None).send().await.expect("GET");
    assert_eq!(cc(&r), "private, no-store", "힌트 없는 필드");
    let r = get(format!("{{ coupon(id: \"{C1}\") {{ discountFor(orderAmount: \"-1\") }} }}"), None).send().await.expect("GET");
    assert_eq!(cc(&r), "private, no-store", "오류가 있는 응답");
    let (_, headers, _, _) = post_json(&app.base, GQL, &json!({ "query": read }), None).await;
    assert_eq!(headers.get("cache-control").and_then(|v| v.to_str().ok()), Some("private, no-store"), "POST");

    let db = fresh_db(Backend::Sqlite).await.expect("sqlite");
    let base = start(db.conn.clone(), |s| s.cors_allowed_origins = Some("https://shop.example".into())).await;
    let r = http
        .post(format!("{base}/graphql"))
        .header("origin", "https://shop.example")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("POST");
    let exposed = r.headers().get("access-control-expose-headers").and_then(|v| v.to_str().ok()).unwrap_or_default().to_lowercase();
    for h in ["idempotent-replayed", "content-disposition", "retry-after", "traceparent"] {
        assert!(exposed.contains(h), "{h} not in {exposed:?}");
    }
}
crate::backend_tests!(cache_control_follows_the_hints_and_cors_exposes_the_headers_apps_read, crate::helpers::spawn_app, sqlite => Sqlite);

/// 공격: 헤더를 다 보내고 본문을 몇 초마다 한 바이트씩 흘리는 연결들 (bcc4ff5: 2,100개가 영영 닫히지 않았고
/// 정상 요청 8개 중 7개가 시간 초과). 본문은 헤더 뒤 10초라는 하나의 마감으로 잘리고(408, 연결 닫힘),
/// 그동안 다른 손님은 곧바로 답을 받는다.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_bodies_are_cut_at_the_total_deadline_while_others_are_served() {
    let Some(db) = fresh_db(Backend::Sqlite).await else { return };
    let base = start(db.conn.clone(), |_| {}).await;
    let addr = base.trim_start_matches("http://").to_owned();
    const SLOW: usize = 2_100;
    let mut slow = Vec::with_capacity(SLOW);
    for _ in 0..SLOW {
        let mut s = tokio::net::TcpStream::connect(addr.as_str()).await.expect("연결");
        s.write_all(b"POST /graphql HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
            .await
            .expect("쓰기");
        slow.push(s);
    }
    let opened = Instant::now();
    // 흘리기: 2초마다 한 바이트씩 (프레임마다 타이머를 다시 거는 제한이면 영영 끊기지 않는다).
    let trickle = tokio::spawn(async move {
        for _ in 0..7 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            for s in slow.iter_mut() {
                let _ = s.write_all(b" ").await;
            }
        }
        slow
    });
    let http = reqwest::Client::new();
    let mut answered = 0;
    let mut worst = Duration::ZERO;
    for _ in 0..40 {
        let t = Instant::now();
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            http.post(format!("{base}/graphql")).json(&json!({ "query": "{ __typename }" })).send(),
        )
        .await;
        if matches!(r, Ok(Ok(ref resp)) if resp.status().is_success()) {
            answered += 1;
        }
        worst = worst.max(t.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("{SLOW} trickling bodies: {answered}/40 normal requests answered, slowest {:.1} ms", worst.as_secs_f64() * 1000.0);
    assert_eq!(answered, 40);
    assert!(worst < Duration::from_secs(1), "{worst:?}");

    let mut slow = trickle.await.expect("흘리기");
    assert!(opened.elapsed() >= Duration::from_secs(12));
    // 모두 408로 답을 받고 닫혔어야 한다 (흘리는 동안에도 마감은 그대로).
    let mut buf = vec![0u8; 1024];
    let mut cut = 0;
    for s in slow.iter_mut().take(100) {
        let mut seen = Vec::new();
        while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&seen).to_lowercase();
        if text.starts_with("http/1.1 408") && text.contains("connection: close") {
            cut += 1;
        }
    }
    assert_eq!(cut, 100, "흘리는 본문이 10초 마감에 잘리지 않았다");
}

/// 로그: 클라이언트가 고른 글자(operationName의 줄바꿈, 터미널 이스케이프)는 이스케이프되어 가짜 줄을 만들지 않고,
/// 파일로 가는 텍스트 로그에는 색 코드가 없고, JSON 로그의 시작 실패도 JSON 한 줄이다.
/// 지표: 처음 긁을 때부터 표의 모든 지표가 `# TYPE` 줄을 갖고, 레이블 없는 것은 0 표본을 낸다.
#[test]
fn logs_escape_client_text_and_metrics_are_registered_from_the_first_scrape() {
    use std::io::{BufRead, BufReader};
    let bin = env!("CARGO_BIN_EXE_couponql");
    let dir = std::env::temp_dir().join(format!("couponql-logs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut child = std::process::Command::new(bin)
        .arg("serve")
        .env("DATABASE_URL", format!("sqlite://{}?mode=rwc", dir.join("db.sqlite").display()))
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .env_remove("LOG_FORMAT")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("couponql serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let port = loop {
        let line = rx.recv_timeout(Duration::from_secs(30)).expect("listening 줄");
        lines.push(line.clone());
        if let Some(p) = line
            .split("http://127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|p| p.parse::<u16>().ok())
            && p != 0
        {
            break p;
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    let metrics = rt.block_on(async {
        let http = reqwest::Client::new();
        let text = http.get(format!("http://127.0.0.1:{port}/metrics")).send().await.expect("metrics").text().await.expect("text");
        let forged = "x\nINFO forged line\u{1b}[31m";
        http.post(format!("http://127.0.0.1:{port}/graphql"))
            .json(&json!({ "query": "query x { __typename }", "operationName": forged }))
            .send()
            .await
            .expect("POST");
        text
    });
    for (name, ty) in [
        ("couponql_graphql_requests_total", "counter"),
        ("couponql_graphql_request_duration_seconds", "histogram"),
        ("couponql_issuance_total", "counter"),
        ("couponql_issuance_batch_size", "histogram"),
        ("couponql_db_pool_connections", "gauge"),
        ("couponql_http_open_connections", "gauge"),
        ("couponql_subscriptions_active", "gauge"),
    ] {
        assert!(metrics.contains(&format!("# TYPE {name} {ty}")), "{name} missing from the first scrape:\n{metrics}");
    }
    for unlabelled in ["couponql_issuance_batch_size_count ", "couponql_http_open_connections ", "couponql_subscriptions_active "] {
        assert!(metrics.lines().any(|l| l.starts_with(unlabelled)), "{unlabelled}:\n{metrics}");
    }
    std::thread::sleep(Duration::from_millis(500));
    let _ = child.kill();
    let _ = child.wait();
    while let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
        lines.push(l);
    }
    let all = lines.join("\n");
    assert!(!all.contains('\u{1b}'), "색 코드나 클라이언트의 이스케이프가 파일로 가는 로그에 있다:\n{all}");
    assert!(!lines.iter().any(|l| l.starts_with("INFO forged line")), "가짜 로그 줄:\n{all}");
    assert!(lines.iter().any(|l| l.contains("operation=x\\u{a}INFO forged line\\u{1b}[31m")), "{all}");

    // JSON 로그의 시작 실패도 JSON 한 줄 (RUST_LOG=off여도).
    let out = std::process::Command::new(bin)
        .arg("migrate")
        .env("DATABASE_URL", "postgres://someone:hunter2@127.0.0.1:9/none")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "off")
        .output()
        .expect("couponql migrate");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or_default();
    let v: Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("JSON이 아닌 시작 실패 ({e}): {stderr}"));
    assert_eq!(v["level"], "ERROR");
    assert!(v["message"].as_str().unwrap_or_default().contains("cannot connect to the database"), "{v}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
