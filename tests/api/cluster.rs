//! Galera 클러스터 (CONTRACT 10절): 세 노드에 couponql 서버(실행 파일)를 하나씩 띄우고, 세 서버에 돌아가며 보낸 선착순이
//! 정확히 수량만큼 발급되는지, 모든 노드가 같은 값을 보는지, 노드 하나가 죽어도 나머지가 계속 발급하는지 본다.
//!
//! 클러스터 주소: `TEST_GALERA_URLS` (`scripts/galera.sh up`이 출력하는 세 주소를 쉼표로). 없으면 건너뛰었다고 출력하고,
//! `COUPONQL_REQUIRE_CLUSTER=1`(CI)이면 실패한다. 마지막 단계가 노드 3을 죽이므로(`scripts/galera.sh kill 3`),
//! 다시 돌리려면 클러스터를 새로 띄운다 (`scripts/galera.sh down && scripts/galera.sh up`).
use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use couponql::domain::Role;
use futures::StreamExt;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

use testkit::Server;

use crate::helpers::{binary, new_budget_coupon, new_coupon, new_coupon_limited, new_user, new_users, start_binary, token};

/// 선착순 하나의 크기: 사용자 1,000명, 동시에 60개, 세 서버에 돌아가며.
const USERS: usize = 1000;
const IN_FLIGHT: usize = 60;

fn cluster_urls() -> Option<Vec<String>> {
    let urls: Vec<String> =
        std::env::var("TEST_GALERA_URLS").ok()?.split(',').map(|u| u.trim().to_owned()).filter(|u| !u.is_empty()).collect();
    (!urls.is_empty()).then_some(urls)
}

/// 클러스터에 새 데이터베이스를 만들고(DDL은 모든 노드로 간다) 마이그레이션한 뒤, 노드마다 서버를 띄운다.
async fn servers_on_fresh_db(urls: &[String]) -> (Vec<Server>, Vec<DatabaseConnection>) {
    let name = format!("cq_cluster_{}", &Uuid::new_v4().simple().to_string()[..12]);
    testkit::db::create(&urls[0], &name, false).await.unwrap_or_else(|e| panic!("데이터베이스 만들기: {e:#}"));
    let node_urls: Vec<String> = urls.iter().map(|u| testkit::db::with_database(u, &name)).collect();
    let status = binary(&node_urls[0]).arg("migrate").status().expect("couponql migrate");
    assert!(status.success(), "마이그레이션 실패");
    let mut servers = Vec::new();
    let mut conns = Vec::new();
    for url in &node_urls {
        servers.push(start_binary(url).await);
        // 커넥션 하나: 세션 변수가 검사 질의와 같은 커넥션에 걸리도록.
        let mut opt = ConnectOptions::new(url.as_str());
        opt.max_connections(1).min_connections(1);
        let conn = Database::connect(opt).await.expect("노드 연결");
        // 검사용 읽기가 그 노드에 도착한 쓰기를 다 적용한 뒤에 읽게 한다 (Galera의 인과적 읽기).
        conn.execute_unprepared("SET SESSION wsrep_sync_wait = 1").await.expect("wsrep_sync_wait");
        conns.push(conn);
    }
    (servers, conns)
}

async fn scalar(db: &DatabaseConnection, sql: String) -> i64 {
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.expect("검사 질의").expect("행");
    row.try_get_by_index::<i64>(0).expect("정수")
}

/// 노드 하나에서 본 불변식(`testkit::invariant`)과 발급 수.
async fn exactly_on(db: &DatabaseConnection, coupon_id: Uuid, issued: i64, node: usize) {
    if let Err(e) = testkit::invariant::check(db, coupon_id, Some(issued)).await {
        panic!("노드 {node}: {e:#}");
    }
}

/// 판매는 쿠폰과 사용자가 모든 노드에 적용된 뒤에 연다: Galera의 읽기는 기본으로 인과적이지 않아서, 방금 다른 노드에 쓴
/// 쿠폰을 읽으면 COUPON_NOT_FOUND일 수 있다 (README의 "Running as a cluster"). 검사 연결은 인과적 읽기라 읽기 전에 따라잡는다.
async fn settled(conns: &[DatabaseConnection], coupon_id: Uuid) {
    for (n, conn) in conns.iter().enumerate() {
        exactly_on(conn, coupon_id, 0, n + 1).await;
    }
}

/// 요청 하나의 답: `OK` 또는 오류 코드.
async fn ask(http: &reqwest::Client, base: &str, user: Uuid, body: &Value) -> String {
    let resp = http.post(format!("{base}/graphql")).bearer_auth(token(user, Role::User)).json(body).send().await;
    let Ok(resp) = resp else { return "HTTP_ERROR".into() };
    let Ok(v) = resp.json::<Value>().await else { return "BAD_BODY".into() };
    match v["errors"][0]["extensions"]["code"].as_str() {
        Some(code) => code.to_owned(),
        None if v["data"].is_object() => "OK".into(),
        None => format!("UNEXPECTED {v}"),
    }
}

/// 사용자마다 한 번, 세 서버에 돌아가며 `IN_FLIGHT`개씩 동시에. `out`이 켜지면 서버 3은 더 받지 않는다
/// (부하 분산기가 `/ready` 503인 서버를 빼는 것처럼). 답마다 (서버 번호, 코드).
async fn sale(servers: &[String], users: &[Uuid], body: Value, ok: Arc<AtomicUsize>, out: Arc<AtomicBool>) -> Vec<(usize, String)> {
    let http = reqwest::Client::new();
    futures::stream::iter(users.iter().enumerate())
        .map(|(i, user)| {
            let (http, body, ok, out) = (http.clone(), body.clone(), ok.clone(), out.clone());
            async move {
                let n = if out.load(Ordering::SeqCst) { i % 2 } else { i % servers.len() };
                let code = ask(&http, &servers[n], *user, &body).await;
                if code == "OK" {
                    ok.fetch_add(1, Ordering::SeqCst);
                }
                (n, code)
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await
}

/// 서버들의 `/metrics`에서 서버 안에서 다시 돌린 트랜잭션 수의 합.
async fn retries(bases: &[String]) -> u64 {
    let http = reqwest::Client::new();
    let mut sum = 0;
    for b in bases {
        let text = http.get(format!("{b}/metrics")).send().await.expect("/metrics").text().await.expect("본문");
        sum += testkit::metric_sum(&text, "couponql_transaction_retries_total") as u64;
    }
    sum
}

fn tally(answers: &[(usize, String)]) -> HashMap<String, usize> {
    let mut t = HashMap::new();
    for (_, code) in answers {
        *t.entry(code.clone()).or_default() += 1;
    }
    t
}

/// 1,000명이 100장을 세 서버로 나눠 요청: 정확히 100장, 모든 노드가 100 = 발급 내역 수 = 서로 다른 사용자 수,
/// 나머지는 모두 COUPON_SOLD_OUT (TRY_AGAIN은 1% 이하, INTERNAL은 없다).
async fn exact_sale(urls: &[String], by_code: bool) {
    let (servers, conns) = servers_on_fresh_db(urls).await;
    let bases: Vec<String> = servers.iter().map(|s| s.base().to_owned()).collect();
    let users: Vec<Uuid> = new_users(&conns[0], USERS).await.into_iter().map(|u| u.id).collect();
    let coupon = new_coupon(&conns[0], Some(100)).await;
    let body = if by_code {
        let admin = token(Uuid::new_v4(), Role::Admin);
        let add = json!({ "query": format!(r#"mutation {{ addCouponCode(couponId: "{}", code: "GALERA100", maxRedemptions: 1000) {{ code }} }}"#, coupon.id) });
        let v: Value = reqwest::Client::new()
            .post(format!("{}/graphql", bases[0]))
            .bearer_auth(admin)
            .json(&add)
            .send()
            .await
            .expect("HTTP")
            .json()
            .await
            .expect("JSON");
        assert_eq!(v["data"]["addCouponCode"]["code"], "GALERA100", "{v}");
        json!({ "query": r#"mutation { redeemCouponCode(code: "GALERA100") { id } }"# })
    } else {
        json!({ "query": format!(r#"mutation {{ issueCoupon(couponId: "{}") {{ id }} }}"#, coupon.id) })
    };
    settled(&conns, coupon.id).await;
    let started = Instant::now();
    let answers = sale(&bases, &users, body, Arc::default(), Arc::default()).await;
    let t = tally(&answers);
    println!("cluster sale (by {}): {:?} in {:?}", if by_code { "code" } else { "id" }, t, started.elapsed());
    println!("  transactions retried inside the servers: {}", retries(&bases).await);
    for (n, conn) in conns.iter().enumerate() {
        exactly_on(conn, coupon.id, 100, n + 1).await;
    }
    if by_code {
        for (n, conn) in conns.iter().enumerate() {
            let used = scalar(conn, "SELECT CAST(redemptions AS SIGNED) FROM coupon_codes WHERE code = 'GALERA100'".into()).await;
            assert_eq!(used, 100, "노드 {}의 코드 사용 수", n + 1);
        }
    }
    assert_eq!(t.get("OK"), Some(&100), "{t:?}");
    let try_again = t.get("TRY_AGAIN").copied().unwrap_or(0);
    assert!(try_again * 100 <= USERS, "TRY_AGAIN {try_again}/{USERS}: 1%를 넘음 ({t:?})");
    assert_eq!(t.get("COUPON_SOLD_OUT").copied().unwrap_or(0) + try_again, USERS - 100, "OK와 매진·TRY_AGAIN 밖의 답: {t:?}");
}

/// 사용자당 한도 2 (CONTRACT 11절): 250명이 300장을 두고 사람마다 세 번, 세 요청을 세 서버(세 노드)에 하나씩 동시에 보낸다.
/// 정확히 300장, 모든 노드에서 발급 수 = 내역 수이고 아무도 2장을 넘지 않으며, 나머지는 매진이거나 한도다.
async fn limited_sale(urls: &[String]) {
    const LIMITED_USERS: usize = 250;
    let (servers, conns) = servers_on_fresh_db(urls).await;
    let bases: Vec<String> = servers.iter().map(|s| s.base().to_owned()).collect();
    let users: Vec<Uuid> = new_users(&conns[0], LIMITED_USERS).await.into_iter().map(|u| u.id).collect();
    let coupon = new_coupon_limited(&conns[0], Some(300), 2).await;
    let body = json!({ "query": format!(r#"mutation {{ issueCoupon(couponId: "{}") {{ id }} }}"#, coupon.id) });
    settled(&conns, coupon.id).await;
    // 사람 j의 세 요청은 3j, 3j+1, 3j+2번째: 세 서버(노드)로 하나씩, 거의 동시에 간다.
    let asks: Vec<Uuid> = users.iter().flat_map(|u| [*u; 3]).collect();
    let started = Instant::now();
    let answers = sale(&bases, &asks, body, Arc::default(), Arc::default()).await;
    let t = tally(&answers);
    println!("cluster sale, per-user limit 2: {t:?} in {:?}", started.elapsed());
    println!("  transactions retried inside the servers: {}", retries(&bases).await);
    for (n, conn) in conns.iter().enumerate() {
        exactly_on(conn, coupon.id, 300, n + 1).await;
    }
    assert_eq!(t.get("OK"), Some(&300), "{t:?}");
    let try_again = t.get("TRY_AGAIN").copied().unwrap_or(0);
    assert!(try_again * 100 <= asks.len(), "TRY_AGAIN {try_again}/{}: 1%를 넘음 ({t:?})", asks.len());
    assert!(t.keys().all(|c| matches!(c.as_str(), "OK" | "COUPON_SOLD_OUT" | "COUPON_ALREADY_ISSUED" | "TRY_AGAIN")), "{t:?}");
}

/// 예산 (CONTRACT 11절): 1,000원 쿠폰, 예산 100,000원을 가진 300명이 세 서버(세 노드)로 나눠 동시에 쓴다. 정확히 100명이
/// 쓰고, 모든 노드에서 사용의 할인 합계가 예산과 같으며(넘지 않음), 나머지는 BUDGET_EXHAUSTED다.
async fn budget_sale(urls: &[String]) {
    const BUDGET_USERS: usize = 300;
    let (servers, conns) = servers_on_fresh_db(urls).await;
    let bases: Vec<String> = servers.iter().map(|s| s.base().to_owned()).collect();
    let coupon = new_budget_coupon(&conns[0], "1000", "100000").await;
    let issuer = couponql::service::issuance::Issuer::new(conns[0].clone(), couponql::service::issuance::IssueMode::Coalesced);
    let mut holders = Vec::new();
    for u in new_users(&conns[0], BUDGET_USERS).await {
        holders.push((u.id, issuer.issue(u.id, coupon.id).await.expect("발급").id));
    }
    for (n, conn) in conns.iter().enumerate() {
        exactly_on(conn, coupon.id, BUDGET_USERS as i64, n + 1).await;
    }
    let http = reqwest::Client::new();
    let started = Instant::now();
    let answers: Vec<(usize, String)> = futures::stream::iter(holders.iter().enumerate())
        .map(|(i, (user, uc))| {
            let (http, base) = (http.clone(), bases[i % bases.len()].clone());
            let body = json!({ "query": format!(r#"mutation {{ useCoupon(userCouponId: "{uc}", orderAmount: "50000", orderId: "O-{i}") {{ id }} }}"#) });
            async move { (i % 3, ask(&http, &base, *user, &body).await) }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let t = tally(&answers);
    println!("cluster budget: {t:?} in {:?}", started.elapsed());
    println!("  transactions retried inside the servers: {}", retries(&bases).await);
    for (n, conn) in conns.iter().enumerate() {
        let spent = testkit::invariant::check_budget(conn, coupon.id, couponql::domain::now())
            .await
            .unwrap_or_else(|e| panic!("노드 {}: {e:#}", n + 1));
        assert_eq!(spent.to_string(), "100000.00", "노드 {}의 할인 합계", n + 1);
    }
    assert_eq!(t.get("OK"), Some(&100), "{t:?}");
    assert!(t.keys().all(|c| matches!(c.as_str(), "OK" | "BUDGET_EXHAUSTED" | "TRY_AGAIN")), "{t:?}");
}

/// 판매 도중 노드 3을 죽인다: 나머지 두 노드의 서버가 계속 발급해 200장이 모두 나가고, 두 노드가 200 = 내역 수 = 사용자 수를
/// 보고, 죽은 노드의 서버는 TRY_AGAIN으로 답하며 `/ready`가 503이다. INTERNAL은 어디에도 없다.
async fn sale_survives_a_dead_node(urls: &[String]) {
    const QUANTITY: i64 = 200;
    let (servers, conns) = servers_on_fresh_db(urls).await;
    let bases: Vec<String> = servers.iter().map(|s| s.base().to_owned()).collect();
    let users: Vec<Uuid> = new_users(&conns[0], USERS).await.into_iter().map(|u| u.id).collect();
    let coupon = new_coupon(&conns[0], Some(QUANTITY as i32)).await;
    let body = json!({ "query": format!(r#"mutation {{ issueCoupon(couponId: "{}") {{ id }} }}"#, coupon.id) });
    settled(&conns, coupon.id).await;
    let ok = Arc::new(AtomicUsize::new(0));
    let out = Arc::new(AtomicBool::new(false));
    let killer = {
        let (ok, out) = (ok.clone(), out.clone());
        tokio::spawn(async move {
            while ok.load(Ordering::SeqCst) < 50 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/galera.sh");
            let status = Command::new("bash").args([script, "kill", "3"]).status().expect("galera.sh kill 3");
            assert!(status.success(), "노드 3을 죽이지 못함");
            out.store(true, Ordering::SeqCst);
            ok.load(Ordering::SeqCst)
        })
    };
    let answers = sale(&bases, &users, body.clone(), ok.clone(), out.clone()).await;
    let ok_at_kill = killer.await.expect("노드를 죽이는 작업");
    let t = tally(&answers);
    println!("cluster sale with node 3 killed after {ok_at_kill} issued: {t:?}");
    assert!(ok_at_kill < QUANTITY as usize, "판매가 끝나기 전에 죽였어야 한다");
    for (n, conn) in conns.iter().take(2).enumerate() {
        exactly_on(conn, coupon.id, QUANTITY, n + 1).await;
    }
    assert!(!t.keys().any(|c| c != "OK" && c != "COUPON_SOLD_OUT" && c != "TRY_AGAIN"), "{t:?}");
    // 죽은 노드의 서버에서 커밋됐지만 답을 못 받은 발급이 있을 수 있다: 답한 OK는 수량 이하, 그 서버에 걸려 있던 만큼만 모자란다.
    let ok_answers = t.get("OK").copied().unwrap_or(0);
    assert!(ok_answers <= QUANTITY as usize && ok_answers + IN_FLIGHT >= QUANTITY as usize, "{t:?}");
    let http = reqwest::Client::new();
    let ready: Vec<u16> = futures::future::join_all(bases.iter().map(|b| http.get(format!("{b}/ready")).send()))
        .await
        .into_iter()
        .map(|r| r.map_or(0, |r| r.status().as_u16()))
        .collect();
    assert_eq!(ready, vec![200, 200, 503], "/ready of the three servers");
    let late = new_user(&conns[0]).await.id;
    assert_eq!(ask(&http, &bases[2], late, &body).await, "TRY_AGAIN", "죽은 노드의 서버");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flash_sale_over_three_galera_nodes_is_exact() {
    let Some(urls) = cluster_urls() else {
        assert!(std::env::var("COUPONQL_REQUIRE_CLUSTER").as_deref() != Ok("1"), "COUPONQL_REQUIRE_CLUSTER=1인데 TEST_GALERA_URLS가 없다");
        println!("skipped: the Galera cluster test (no TEST_GALERA_URLS; start one with scripts/galera.sh up)");
        return;
    };
    assert_eq!(urls.len(), 3, "TEST_GALERA_URLS에는 노드 셋의 주소가 있어야 한다");
    let admin = Database::connect(&urls[0]).await.expect("노드 1");
    let size = scalar(
        &admin,
        "SELECT CAST(VARIABLE_VALUE AS SIGNED) FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_CLUSTER_SIZE'".into(),
    )
    .await;
    assert_eq!(size, 3, "클러스터 크기가 3이 아니다: scripts/galera.sh down && scripts/galera.sh up");
    exact_sale(&urls, false).await;
    exact_sale(&urls, true).await;
    limited_sale(&urls).await;
    budget_sale(&urls).await;
    sale_survives_a_dead_node(&urls).await;
}
