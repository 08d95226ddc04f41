//! 끝에서 끝까지, 운영 측면: 요청 남용과 한도, N+1 없음, /ready, 스키마 드리프트, HTTP 위의 선착순.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use couponql::domain::Role;
use serde_json::{Value, json};
use tokio::sync::Barrier;
use uuid::Uuid;

use crate::client::*;
use crate::e2e_on_all_backends;
use crate::helpers::{Backend, TestApp, assert_invariant, new_coupon, new_users, token};

const C1: &str = "c0000000-0000-4000-8000-000000000001";

#[tokio::test]
async fn the_checked_in_schema_matches_the_server() {
    let checked_in = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).expect("schema.graphql");
    assert!(
        checked_in == couponql::graphql::sdl().await.expect("SDL"),
        "schema.graphql is out of date: regenerate it with `cargo run -- schema > schema.graphql`"
    );
}

async fn abusive_and_malformed_requests_are_refused_and_the_server_keeps_serving(app: TestApp) {
    couponql::seed::seed(&app.db.conn).await.expect("seed");
    // 깊은 중첩
    let mut deep = String::from("name");
    for _ in 0..25 {
        deep = format!("ofType {{ {deep} }}");
    }
    let (status, body) = app.raw(None, json!({ "query": format!("{{ __type(name: \"Coupon\") {{ {deep} }} }}") }).to_string()).await;
    assert_eq!((status, first_code(&body)), (200, Some("GRAPHQL_VALIDATION_FAILED")), "{body}");
    // 별칭 300개로 부풀린 목록 (계약의 비용: 300 × 202 = 60,600 > 50,000)
    let aliases: String = (0..300).map(|i| format!("a{i}:coupons(first:100){{nodes{{id name}}}} ")).collect();
    let (status, body) = app.raw(None, json!({ "query": format!("{{ {aliases} }}") }).to_string()).await;
    assert_eq!((status, first_code(&body)), (200, Some("GRAPHQL_VALIDATION_FAILED")), "{body}");
    assert_eq!(body["errors"].as_array().map(Vec::len), Some(1), "{body}");
    // 64 KiB를 넘는 본문
    let big = json!({ "query": format!("{{ __typename }} # {}", "x".repeat(70 * 1024)) }).to_string();
    assert_eq!(app.raw(None, big).await.0, 413);
    // 깨진 JSON, 배치
    assert_eq!(app.raw(None, "{\"query\": ".into()).await.0, 400);
    assert_eq!(app.raw(None, json!([{ "query": "{ __typename }" }, { "query": "{ __typename }" }]).to_string()).await.0, 400);
    // 파싱 실패, 검증 실패
    let (_, body) = app.raw(None, json!({ "query": "{ coupons { " }).to_string()).await;
    assert_eq!(first_code(&body), Some("GRAPHQL_PARSE_FAILED"), "{body}");
    let (_, body) = app.raw(None, json!({ "query": "{ nope }" }).to_string()).await;
    assert_eq!(first_code(&body), Some("GRAPHQL_VALIDATION_FAILED"), "{body}");
    // 변수 타입이 틀림 (Decimal 자리에 숫자)
    let (_, body) = app
        .raw(None, json!({ "query": "query($a: Decimal!){ coupon(id: \"c0000000-0000-4000-8000-000000000001\") { discountFor(orderAmount: $a) } }", "variables": { "a": 5 } }).to_string())
        .await;
    assert_eq!(first_code(&body), Some("BAD_USER_INPUT"), "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"].as_str(), Some("orderAmount"), "{body}");
    // 너무 큰 주문 금액도 입력 오류 (계산이 넘치지 않는다).
    let (_, body) = app
        .raw(None, json!({ "query": "{ coupon(id: \"c0000000-0000-4000-8000-000000000002\") { discountFor(orderAmount: \"8000000000000000000000000000\") } }" }).to_string())
        .await;
    assert_eq!(first_code(&body), Some("BAD_USER_INPUT"), "{body}");
    // 요청 수준의 에러도 코드를 갖는다: 없는 operationName, 이름 없이 여러 연산.
    let (_, body) = app.raw(None, json!({ "query": "query A { __typename }", "operationName": "B" }).to_string()).await;
    assert_eq!(first_code(&body), Some("GRAPHQL_VALIDATION_FAILED"), "{body}");
    let (_, body) = app.raw(None, json!({ "query": "query A { __typename } query B { __typename }" }).to_string()).await;
    assert_eq!(first_code(&body), Some("GRAPHQL_VALIDATION_FAILED"), "{body}");
    // 익명 요청은 입력 검사보다 인증이 먼저.
    let (_, body) = app.raw(None, json!({ "query": "mutation { issueCoupon(couponId: \"nope\") { id } }" }).to_string()).await;
    assert_eq!(first_code(&body), Some("UNAUTHENTICATED"), "{body}");
    // GET으로 보낸 mutation은 거부, GET 조회는 허용
    let jihoon = token(Uuid::from_u128(0x33333333_3333_4333_8333_333333333333), Role::User);
    let get = app
        .http
        .get(format!("{}/graphql", app.base))
        .query(&[("query", format!("mutation {{ issueCoupon(couponId: \"{C1}\") {{ id }} }}"))])
        .bearer_auth(&jihoon)
        .send()
        .await
        .expect("GET");
    assert_eq!(get.status().as_u16(), 405);
    let get = app.http.get(format!("{}/graphql", app.base)).query(&[("query", "{ coupons { nodes { id } } }")]).send().await.expect("GET");
    let body: Value = get.json().await.expect("json");
    assert_eq!(body["data"]["coupons"]["nodes"].as_array().map(Vec::len), Some(5));
    // GraphiQL
    let page = app.http.get(format!("{}/graphql", app.base)).send().await.expect("GET").text().await.expect("html");
    assert!(page.to_lowercase().contains("graphiql"));
    // 도구들이 보내는 인트로스펙션 질의는 한도를 통과한다.
    let (status, body) = app.raw(None, json!({ "query": include_str!("introspection.graphql") }).to_string()).await;
    assert_eq!(status, 200);
    assert!(body.get("errors").is_none(), "{body}");
    assert!(body["data"]["__schema"]["types"].as_array().is_some_and(|t| t.len() > 10));
    // 정상 질의 중 가장 큰 것(한 페이지 100개, 모든 필드)도 통과한다.
    let all_fields = "id name discountType discountValue minPurchaseAmount maxDiscountAmount totalQuantity issuedQuantity remainingQuantity validFrom validUntil isAvailable discountFor(orderAmount: \"10000\") createdAt updatedAt";
    let (_, body) = app.raw(None, json!({ "query": format!("{{ coupons(first: 100) {{ edges {{ cursor node {{ {all_fields} }} }} nodes {{ {all_fields} }} pageInfo {{ hasNextPage endCursor }} }} }}") }).to_string()).await;
    assert!(body.get("errors").is_none(), "{body}");
    // 서버는 멀쩡하다.
    assert_eq!(app.get("/health").await, 200);
    assert_eq!(app.get("/ready").await, 200);
    assert!(app.call::<Coupon>(None, coupon::Variables { id: C1.into() }).await.ok().coupon.is_some());
}
e2e_on_all_backends!(abusive_and_malformed_requests_are_refused_and_the_server_keeps_serving);

/// 사용자 n명의 쿠폰과 그 쿠폰의 상세를 읽는 데 드는 SQL 문 수.
async fn statements_for(app: &TestApp, admin: &str, ids: &[String]) -> usize {
    let before = app.statements.load(Ordering::SeqCst);
    let users = app.call::<UsersWithCoupons>(Some(admin), users_with_coupons::Variables { ids: ids.to_vec() }).await.ok().users;
    let after = app.statements.load(Ordering::SeqCst);
    assert_eq!(users.len(), ids.len());
    assert!(users.iter().all(|u| u.as_ref().is_some_and(|u| u.coupons.len() == 2 && u.coupons.iter().all(|c| !c.coupon.name.is_empty()))));
    after - before
}

async fn users_with_coupons_cost_the_same_statements_for_50_users_as_for_5(app: TestApp) {
    let users = new_users(&app.db.conn, 50).await;
    let coupons = [new_coupon(&app.db.conn, None).await, new_coupon(&app.db.conn, None).await];
    for u in &users {
        for c in &coupons {
            couponql::service::issuance::Issuer::new(app.db.conn.clone(), couponql::service::issuance::IssueMode::PerRequest)
                .issue(u.id, c.id)
                .await
                .expect("발급");
        }
    }
    let admin = token(users[0].id, Role::Admin);
    let ids: Vec<String> = users.iter().map(|u| u.id.to_string()).collect();
    let five = statements_for(&app, &admin, &ids[..5]).await;
    let fifty = statements_for(&app, &admin, &ids).await;
    println!("[{:?}] statements: 5 users → {five}, 50 users → {fifty}", app.db.backend);
    assert_eq!(five, fifty, "DataLoader가 묶지 못함: 5명 {five}개, 50명 {fifty}개");
    assert!(fifty <= 2, "사용자 한 번, 발급 내역과 쿠폰(JOIN) 한 번이면 충분: {fifty}");
}
e2e_on_all_backends!(users_with_coupons_cost_the_same_statements_for_50_users_as_for_5);

#[tokio::test]
async fn ready_answers_503_while_the_database_is_unreachable() {
    // 아무도 듣지 않는 포트로 향한 지연 연결 풀: 프로세스는 살아 있고(/health) 준비는 안 됨(/ready).
    let mut opt = sea_orm::ConnectOptions::new("postgres://nobody@127.0.0.1:9/none");
    opt.connect_lazy(true).acquire_timeout(std::time::Duration::from_millis(500));
    let dead = sea_orm::Database::connect(opt).await.expect("지연 연결");
    let base = crate::helpers::start(dead, |_| {}).await;
    let http = reqwest::Client::new();
    assert_eq!(http.get(format!("{base}/health")).send().await.expect("health").status().as_u16(), 200);
    assert_eq!(http.get(format!("{base}/ready")).send().await.expect("ready").status().as_u16(), 503);
    // 데이터베이스 오류는 INTERNAL/TRY_AGAIN으로, SQL이나 내부 정보 없이.
    let resp: Value = http
        .post(format!("{base}/graphql"))
        .json(&json!({ "query": format!("{{ coupon(id: \"{C1}\") {{ id }} }}") }))
        .send()
        .await
        .expect("graphql")
        .json()
        .await
        .expect("json");
    let code = first_code(&resp).unwrap_or_default().to_owned();
    assert!(code == "INTERNAL" || code == "TRY_AGAIN", "{resp}");
    let msg = resp["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(msg == "일시적인 오류가 발생했습니다" || msg == "잠시 후 다시 시도해 주세요", "{msg}");
}

/// 1000개의 HTTP 클라이언트가 100장짜리 쿠폰에 동시에 → 정확히 100장.
async fn a_thousand_http_clients_race_for_a_hundred_coupons(app: TestApp) {
    let coupon = new_coupon(&app.db.conn, Some(100)).await;
    let users = new_users(&app.db.conn, 1000).await;
    let barrier = Arc::new(Barrier::new(users.len()));
    let app = Arc::new(app);
    let started = Instant::now();
    let tasks: Vec<_> = users
        .iter()
        .map(|u| {
            let app = app.clone();
            let barrier = barrier.clone();
            let t = token(u.id, Role::User);
            let coupon_id = coupon.id.to_string();
            tokio::spawn(async move {
                barrier.wait().await;
                let ans = app.call::<IssueCoupon>(Some(&t), issue_coupon::Variables { coupon_id, user_id: None }).await;
                if ans.errors.is_empty() { "OK".to_owned() } else { ans.code() }
            })
        })
        .collect();
    let mut got: BTreeMap<String, usize> = BTreeMap::new();
    for t in tasks {
        *got.entry(t.await.expect("작업")).or_default() += 1;
    }
    println!("[{:?}] 1000 HTTP clients / 100 coupons: wall {:.0} ms, {got:?}", app.db.backend, started.elapsed().as_secs_f64() * 1000.0);
    assert_eq!(got, BTreeMap::from([("COUPON_SOLD_OUT".to_owned(), 900), ("OK".to_owned(), 100)]));
    assert_eq!(assert_invariant(&app.db.conn, coupon.id).await, 100);
}

crate::backend_tests!(a_thousand_http_clients_race_for_a_hundred_coupons, crate::helpers::spawn_app, mysql => MySql; postgres => Postgres);

/// 연결 한도에 다가가면 응답마다 연결을 닫아, keep-alive로 남아 노는 연결이 자리를 다 차지해
/// 새 손님을 굶기는 일이 없다.
#[tokio::test]
async fn keep_alive_clients_cannot_starve_new_clients_when_the_server_is_crowded() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(db) = crate::helpers::fresh_db(Backend::Sqlite).await else {
        return;
    };
    let base = crate::helpers::start_app(db.conn.clone(), |_| {}, |app| app.with_max_connections(4)).await;
    let addr = base.trim_start_matches("http://").to_owned();
    async fn health(stream: &mut tokio::net::TcpStream) -> String {
        stream.write_all(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n").await.expect("쓰기");
        let mut buf = vec![0u8; 1024];
        let n = stream.read(&mut buf).await.expect("읽기");
        String::from_utf8_lossy(&buf[..n]).to_lowercase()
    }
    // 손님마다 연결을 열고, 답을 받은 뒤에도 연결을 쥐고 있는다 (브라우저의 keep-alive 풀처럼).
    // 자리는 4개뿐이지만 열 명 모두 답을 받아야 한다.
    let mut held = Vec::new();
    for i in 0..10 {
        let mut s = tokio::net::TcpStream::connect(addr.as_str()).await.expect("연결");
        let answer =
            tokio::time::timeout(std::time::Duration::from_secs(5), health(&mut s)).await.unwrap_or_else(|_| panic!("손님 {i}이 굶음"));
        assert!(answer.starts_with("http/1.1 200"), "{answer}");
        // 자리가 덜 찼을 때의 응답은 keep-alive로 남는다.
        if i == 0 {
            assert!(!answer.contains("connection: close"), "{answer}");
        }
        held.push(s);
    }
}

/// `me { coupons { coupon } }`는 문장 하나(사용자 ⟕ 발급 내역 ⟕ 쿠폰)로 답하고, 그 답은 따로 읽은 것과 같다:
/// 최신순, `unusedOnly`는 미사용만, 내역이 없거나 모두 사용한 사용자도 사용자로 나온다.
async fn me_with_its_coupons_is_one_statement(app: TestApp) {
    let users = new_users(&app.db.conn, 3).await;
    let coupons = [new_coupon(&app.db.conn, None).await, new_coupon(&app.db.conn, None).await];
    for c in &coupons {
        couponql::service::issuance::Issuer::new(app.db.conn.clone(), couponql::service::issuance::IssueMode::PerRequest)
            .issue(users[0].id, c.id)
            .await
            .expect("발급");
    }
    let used = couponql::service::issuance::Issuer::new(app.db.conn.clone(), couponql::service::issuance::IssueMode::PerRequest)
        .issue(users[1].id, coupons[0].id)
        .await
        .expect("발급");
    let viewer = couponql::domain::Viewer { user_id: users[1].id, role: Role::User };
    couponql::service::user_coupons::use_coupon(&app.db.conn, Some(&viewer), used.id, Some("50000".parse().expect("금액")), None, None)
        .await
        .expect("사용");
    let ask = async |user: Uuid, unused_only: bool| {
        let q = format!("{{ me {{ id name coupons(unusedOnly: {unused_only}) {{ id isUsed coupon {{ id name remainingQuantity }} }} }} }}");
        let before = app.statements.load(Ordering::SeqCst);
        let (_, body) = app.raw(Some(&token(user, Role::User)), json!({ "query": q }).to_string()).await;
        (app.statements.load(Ordering::SeqCst) - before, body)
    };
    let (n, body) = ask(users[0].id, false).await;
    assert_eq!(n, 1, "{body}");
    let list = body["data"]["me"]["coupons"].as_array().cloned().unwrap_or_default();
    let ids: Vec<&str> = list.iter().filter_map(|c| c["coupon"]["id"].as_str()).collect();
    // 최신순: 나중에 발급한 쿠폰이 먼저.
    assert_eq!(ids, vec![coupons[1].id.to_string(), coupons[0].id.to_string()], "{body}");
    assert_eq!(body["data"]["me"]["id"], users[0].id.to_string());
    let (n, body) = ask(users[1].id, true).await;
    assert_eq!(n, 1, "{body}");
    assert_eq!(body["data"]["me"]["coupons"], json!([]), "모두 사용한 사용자의 미사용 목록: {body}");
    assert_eq!(body["data"]["me"]["name"], users[1].name.as_str());
    let (_, body) = ask(users[1].id, false).await;
    assert_eq!(body["data"]["me"]["coupons"][0]["isUsed"], true, "{body}");
    let (n, body) = ask(users[2].id, false).await;
    assert_eq!((n, &body["data"]["me"]["coupons"]), (1, &json!([])), "내역이 없는 사용자: {body}");
    let (_, body) = ask(Uuid::new_v4(), false).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "USER_NOT_FOUND", "{body}");
}
e2e_on_all_backends!(me_with_its_coupons_is_one_statement);
