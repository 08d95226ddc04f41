//! 상점 (CONTRACT 8절): 코드 생성, 스트리밍 CSV(시간, 서버 최대 RSS 증가), 지정 코드 선착순 대 id 선착순.
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use couponql::domain::{Role, Viewer};
use serde_json::{Value, json};
use testkit::procfs;
use uuid::Uuid;

use super::flash_sale::flash_sale;
use crate::Args;
use crate::env::{Env, admin_token, check_invariant, make_coupon, make_users, setup, token};
use crate::load::{drive, keyed};
use crate::report::{Report, cpu_delta, cpu_now, median, report};

/// 지정 코드 하나로 하는 선착순: `users`명이 같은 코드를 `redeemCouponCode`로.
pub(crate) async fn code_sale(args: &Args, env: &Env, users: usize, quantity: i32, concurrency: usize) -> Result<Report> {
    let ids = make_users(&env.db, users).await?;
    let coupon = make_coupon(&env.db, Some(quantity)).await?;
    let code = format!("FLASH{}", &Uuid::new_v4().simple().to_string()[..8]).to_uppercase();
    let admin = Viewer { user_id: Uuid::new_v4(), role: Role::Admin };
    couponql::service::codes::add(&env.db, Some(&admin), coupon, &code, None).await.map_err(|e| anyhow!("{e:?}"))?;
    let body = json!({ "query": "mutation($c: String!) { redeemCouponCode(code: $c) { id } }", "variables": { "c": code } });
    let reqs = ids.iter().map(|u| Ok((token(env, *u)?, keyed(args, body.clone())))).collect::<Result<Vec<_>>>()?;
    let before = cpu_now(env);
    let (wall, hist, codes) = drive(env, reqs, concurrency).await?;
    let cpu = cpu_delta(before, cpu_now(env));
    let issued = check_invariant(&env.db, coupon, Some(quantity.min(users as i32))).await?;
    Ok(report(env, "flash-sale by code", users as u64, wall, hist, codes, cpu, Some(issued)))
}

/// 상점 운영 한 번: (코드 생성 초, CSV 초, CSV 동안 최대 RSS 증가 MB, 코드 선착순 req/s, id 선착순 req/s).
pub(crate) async fn shop_round(
    args: &Args,
    codes: i32,
    users: usize,
    quantity: i32,
    concurrency: usize,
    code_first: bool,
) -> Result<[f64; 5]> {
    let env = setup(args).await?;
    let coupon = make_coupon(&env.db, None).await?;
    let admin = admin_token(&env)?;
    let query = format!(r#"mutation {{ generateCouponCodes(couponId: "{coupon}", count: {codes}) {{ count }} }}"#);
    let started = Instant::now();
    let resp: Value = env.client.post(&env.url).bearer_auth(&admin).json(&json!({ "query": query })).send().await?.json().await?;
    let generate = started.elapsed();
    if resp["data"]["generateCouponCodes"]["count"].as_i64() != Some(i64::from(codes)) {
        bail!("generateCouponCodes failed: {resp}");
    }
    // CSV: 생성이 남긴 최대 RSS를 지우고(clear_refs 5) 지금의 RSS에서 다시 잰다.
    let pid = env.server.pid();
    let proc_kb = |key: &str| procfs::status_kb(pid, key).ok_or_else(|| anyhow!("{key} missing in /proc/{pid}/status"));
    procfs::reset_peak_rss(pid).context("reset the server's peak RSS")?;
    let rss_before = proc_kb("VmRSS")?;
    let csv_url = env.url.replace("/graphql", &format!("/admin/coupons/{coupon}/codes.csv"));
    let started = Instant::now();
    let mut resp = env.client.get(csv_url).bearer_auth(&admin).send().await?;
    let mut lines = 0usize;
    while let Some(chunk) = resp.chunk().await? {
        lines += chunk.iter().filter(|b| **b == b'\n').count();
    }
    let csv = started.elapsed();
    let growth_mb = proc_kb("VmHWM")?.saturating_sub(rss_before) as f64 / 1024.0;
    if lines != codes as usize + 1 {
        bail!("CSV had {lines} lines, expected {}", codes + 1);
    }
    println!(
        "# generateCouponCodes({codes}) {:.2} s, CSV {:.2} s, peak RSS growth {growth_mb:.1} MB",
        generate.as_secs_f64(),
        csv.as_secs_f64()
    );
    // 먼저 작은 판매로 데우고(풀 연결, 할당자), 코드 선착순과 id 선착순을 ABBA 순서로 두 번씩 돌려 평균한다
    // (기계가 시간에 따라 흔들리므로 나란히, 번갈아).
    flash_sale(args, &env, "warm-up", users / 5, quantity / 5, concurrency).await?;
    let rps = |r: &Report| r.requests as f64 / r.wall.as_secs_f64();
    let (mut by_code, mut by_id) = (0.0, 0.0);
    for code_now in if code_first { [true, false, false, true] } else { [false, true, true, false] } {
        if code_now {
            let r = code_sale(args, &env, users, quantity, concurrency).await?;
            r.print();
            by_code += rps(&r) / 2.0;
        } else {
            let r = flash_sale(args, &env, "flash-sale", users, quantity, concurrency).await?;
            r.print();
            by_id += rps(&r) / 2.0;
        }
    }
    Ok([generate.as_secs_f64(), csv.as_secs_f64(), growth_mb, by_code, by_id])
}

pub(crate) async fn shop(args: &Args, codes: i32, users: usize, quantity: i32, concurrency: usize, runs: usize) -> Result<()> {
    let mut rounds = Vec::new();
    for i in 0..runs.max(1) {
        rounds.push(shop_round(args, codes, users, quantity, concurrency, i % 2 == 0).await?);
    }
    let m = |k: usize| median(rounds.iter().map(|r| r[k]).collect());
    println!("| figure (median of {}) | value |", rounds.len());
    println!("|---|---|");
    println!("| generateCouponCodes({codes}) | {:.2} s |", m(0));
    println!("| CSV export of {codes} codes | {:.2} s, server peak RSS +{:.1} MB |", m(1), m(2));
    println!("| flash sale {users}/{quantity} at {concurrency} by chosen code (mean of 2 per run, ABBA) | {:.0} req/s |", m(3));
    println!("| the same by coupon id | {:.0} req/s (code/id {:.2}) |", m(4), m(3) / m(4));
    println!("{}", json!({ "scenario": "shop", "runs": rounds.len(), "rounds": rounds }));
    Ok(())
}
