//! Galera 클러스터 (CONTRACT 10절): 노드마다 서버 하나, 서버들에 돌아가며 보내는 선착순.
use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use couponql::auth::JwtKeys;
use couponql::config::DbSettings;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::json;

use crate::env::{check_invariant, create_database, http_client, make_coupon, make_users, sign, spawn_server};
use crate::load::{drive_over, issue_body};
use crate::report::median;
use crate::{Args, BENCH_DB, SECRET};

/// 클러스터 선착순 한 번의 결과.
struct ClusterRound {
    rps: f64,
    p99_ms: f64,
    try_again: f64,
    retries_per_success: f64,
    codes: BTreeMap<String, u64>,
}

/// 서버들의 `/metrics`에서 서버 안에서 다시 돌린 트랜잭션 수의 합.
pub(crate) async fn retries(client: &reqwest::Client, bases: &[String]) -> Result<f64> {
    let mut sum = 0.0;
    for b in bases {
        let text = client.get(format!("{b}/metrics")).send().await?.text().await?;
        sum += testkit::metric_sum(&text, "couponql_transaction_retries_total");
    }
    Ok(sum)
}

/// 노드의 벤치 데이터베이스에 인과적 읽기(wsrep_sync_wait = 1)로 붙는다: 읽기 전에 그 노드가 클러스터에서 이미 커밋된
/// 쓰기를 모두 적용한다. 커넥션 하나라서 세션 변수가 검사 질의와 같은 커넥션에 걸린다.
pub(crate) async fn causal(node: &str) -> Result<DatabaseConnection> {
    let one = DbSettings { max_connections: Some(1), ..DbSettings::default() };
    let conn = couponql::db::connect(&testkit::db::with_database(node, BENCH_DB), &one).await?;
    conn.execute_unprepared("SET SESSION wsrep_sync_wait = 1").await?;
    Ok(conn)
}

/// 첫 노드에 새 데이터베이스(모든 노드로 복제된다)를 만들어 마이그레이션하고, 앞의 `servers`개 노드에 서버를 하나씩 띄운다.
/// (첫 노드에 붙은 연결, 서버 지킴이들, HTTP 클라이언트)
pub(crate) async fn cluster_env(
    args: &Args,
    nodes: &[String],
    servers: usize,
) -> Result<(DatabaseConnection, Vec<testkit::Server>, reqwest::Client)> {
    let url = create_database(&nodes[0]).await?;
    crate::env::migrate(args, &url).await?;
    let db = couponql::db::connect(&url, &DbSettings::default()).await.context("connect")?;
    let client = http_client()?;
    // 서버마다 지킴이: 부르는 쪽의 `?` 어디서 빠져나가도 서버가 남지 않는다.
    let mut procs = Vec::new();
    for node in &nodes[..servers] {
        procs.push(spawn_server(args, &testkit::db::with_database(node, BENCH_DB)).await?);
    }
    Ok((db, procs, client))
}

/// 클러스터 선착순 (CONTRACT 10절): 첫 노드에 새 데이터베이스(모든 노드로 복제된다), 노드마다 서버 하나(`servers`개),
/// 사용자들의 요청을 서버들에 돌아가며 보낸다. 끝나면 모든 노드에서 정확히 `quantity`(= 발급 내역 수)인지 본다.
pub(crate) async fn cluster(
    args: &Args,
    nodes: &[String],
    servers: usize,
    users: usize,
    quantity: i32,
    concurrency: usize,
    runs: usize,
) -> Result<()> {
    if servers == 0 || servers > nodes.len() {
        bail!("--servers must be between 1 and the number of --nodes ({})", nodes.len());
    }
    let mut rounds = Vec::new();
    for run in 0..runs.max(1) {
        let (db, procs, client) = cluster_env(args, nodes, servers).await?;
        let bases: Vec<String> = procs.iter().map(|s| s.base().to_owned()).collect();
        let ids = make_users(&db, users).await?;
        let coupon = make_coupon(&db, Some(quantity)).await?;
        // 판매는 쿠폰과 사용자가 모든 노드에 적용된 뒤에 연다 (Galera의 읽기는 기본으로 인과적이지 않다: 방금 다른 노드에 쓴
        // 쿠폰을 읽으면 COUPON_NOT_FOUND일 수 있다. README의 "Running as a cluster").
        for node in &nodes[..servers] {
            let conn = causal(node).await?;
            check_invariant(&conn, coupon, Some(0)).await.with_context(|| format!("before the sale on {node}"))?;
        }
        let keys = JwtKeys::new(SECRET);
        let reqs = ids.iter().map(|u| Ok((sign(&keys, *u)?, issue_body(coupon)))).collect::<Result<Vec<_>>>()?;
        let urls: Vec<String> = bases.iter().map(|b| format!("{b}/graphql")).collect();
        let (wall, hist, codes) = drive_over(&client, &urls, reqs, concurrency).await?;
        let retried = retries(&client, &bases).await?;
        // 모든 노드가 같은 정확한 수를 본다 (인과적 읽기: 그 노드에 도착한 쓰기를 다 적용한 뒤).
        for node in nodes {
            let conn = causal(node).await?;
            check_invariant(&conn, coupon, Some(quantity.min(users as i32))).await.with_context(|| format!("on {node}"))?;
        }
        drop(procs);
        let ok = codes.get("OK").copied().unwrap_or(0) as f64;
        let round = ClusterRound {
            rps: users as f64 / wall.as_secs_f64(),
            p99_ms: hist.value_at_quantile(0.99) as f64 / 1000.0,
            try_again: codes.get("TRY_AGAIN").copied().unwrap_or(0) as f64 / users as f64,
            retries_per_success: if ok > 0.0 { retried / ok } else { 0.0 },
            codes,
        };
        eprintln!(
            "# run {}: {:.0} req/s, p99 {:.1} ms, TRY_AGAIN {:.1}%, retries/success {:.2}, {:?}",
            run + 1,
            round.rps,
            round.p99_ms,
            round.try_again * 100.0,
            round.retries_per_success,
            round.codes
        );
        rounds.push(round);
    }
    let pick = |f: &dyn Fn(&ClusterRound) -> f64| median(rounds.iter().map(f).collect());
    let (rps, p99, ta, rps_retry) = (pick(&|r| r.rps), pick(&|r| r.p99_ms), pick(&|r| r.try_again), pick(&|r| r.retries_per_success));
    println!(
        "| cluster: {users} users / {quantity}, {servers} server(s) on {} node(s), {concurrency} in flight (median of {runs}) | value |",
        nodes.len()
    );
    println!("|---|---|");
    println!("| throughput | {rps:.0} req/s |");
    println!("| p99 | {p99:.1} ms |");
    println!("| TRY_AGAIN | {:.2}% |", ta * 100.0);
    println!("| transactions retried per success | {rps_retry:.2} |");
    println!(
        "{}",
        json!({ "scenario": "cluster", "servers": servers, "users": users, "quantity": quantity, "rps": rps, "p99_ms": p99, "try_again": ta, "retries_per_success": rps_retry })
    );
    Ok(())
}
