//! 대상 고객 CSV 가져오기 (CONTRACT 11절): `ids`줄의 CSV를 흘려 보내고 걸린 시간과 서버 RSS의 증가를 잰다.
//! 사용자는 데이터베이스에 직접 넣는다 (`unknown_percent`%의 줄은 없는 사용자의 id). 같은 파일을 한 번 더 가져와
//! 멱등(넣는 것 없음)과 그 시간도 잰다.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;
use serde_json::Value;
use testkit::procfs;
use uuid::Uuid;

use crate::env::{Env, admin_token, make_coupon, make_users};

/// 한 번에 흘려 보내는 줄 수 (약 64 KB).
const LINES_PER_PIECE: usize = 1700;

pub(crate) async fn audience_import(env: &Env, ids: usize, unknown_percent: usize) -> Result<()> {
    let unknown_every = if unknown_percent == 0 { usize::MAX } else { (100 / unknown_percent.min(100)).max(1) };
    let unknown = if unknown_every == usize::MAX { 0 } else { ids / unknown_every };
    let made = Instant::now();
    let known = make_users(&env.db, ids - unknown).await?;
    println!("# {} users inserted in {:.1} s", known.len(), made.elapsed().as_secs_f64());
    // 방금 한꺼번에 넣은 표의 통계를 새로 한다 (InnoDB는 뒤에서 천천히 다시 세므로, 그 전의 계획은 작은 표의 것이다).
    if env.db.get_database_backend() == sea_orm::DbBackend::MySql {
        use sea_orm::ConnectionTrait;
        env.db.execute_unprepared("ANALYZE TABLE users").await?;
    }
    let coupon = make_coupon(&env.db, None).await?;
    // 줄 i: `unknown_every`번째마다 없는 사용자, 나머지는 있는 사용자를 차례로. 두 번 다 같은 파일이 되게 미리 고른다.
    let mut lines: Vec<Uuid> = Vec::with_capacity(ids);
    let mut next_known = known.iter();
    for i in 0..ids {
        match (i % unknown_every == unknown_every - 1).then(Uuid::new_v4).or_else(|| next_known.next().copied()) {
            Some(id) => lines.push(id),
            None => lines.push(Uuid::new_v4()),
        }
    }
    let lines = Arc::new(lines);
    let url = env.url.replace("/graphql", &format!("/admin/coupons/{coupon}/audience.csv"));
    let admin = admin_token(env)?;
    for round in ["first", "again"] {
        let (elapsed, growth_hwm, growth_sampled, v) = one_import(env, &url, &admin, lines.clone()).await?;
        println!(
            "# audience-import {round}: {ids} lines ({} MB) in {:.2} s, server peak RSS growth {growth_hwm:.1} MB (VmHWM), {growth_sampled:.1} MB (VmRSS sampled every 20 ms); added {}, unknownCount {}, audienceSize {}",
            ids * 37 / 1_000_000,
            elapsed.as_secs_f64(),
            v["added"],
            v["unknownCount"],
            v["audienceSize"]
        );
        let want_added = if round == "first" { known.len() } else { 0 };
        if v["added"].as_u64() != Some(want_added as u64) || v["audienceSize"].as_u64() != Some(known.len() as u64) {
            bail!("unexpected answer: {v}");
        }
        if v["unknownCount"].as_u64() != Some(unknown as u64) {
            bail!("unknownCount {} but {unknown} unknown lines", v["unknownCount"]);
        }
    }
    Ok(())
}

/// 가져오기 한 번: (걸린 시간, VmHWM − 시작 RSS, 표본 VmRSS 최대 − 시작 RSS, 답).
async fn one_import(env: &Env, url: &str, admin: &str, lines: Arc<Vec<Uuid>>) -> Result<(Duration, f64, f64, Value)> {
    let pid = env.server.pid();
    let proc_kb = move |key: &str| procfs::status_kb(pid, key).ok_or_else(|| anyhow!("{key} missing in /proc/{pid}/status"));
    procfs::reset_peak_rss(pid).context("reset the server's peak RSS")?;
    let before = proc_kb("VmRSS")?;
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn({
        let (peak, done) = (peak.clone(), done.clone());
        async move {
            while !done.load(Ordering::Relaxed) {
                if let Some(kb) = procfs::status_kb(pid, "VmRSS") {
                    peak.fetch_max(kb, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    let n = lines.len();
    let pieces = futures::stream::iter((0..n).step_by(LINES_PER_PIECE)).map(move |start| {
        let mut piece = Vec::with_capacity(LINES_PER_PIECE * 37 + 8);
        if start == 0 {
            piece.extend_from_slice(b"user_id\r\n");
        }
        for id in &lines[start..(start + LINES_PER_PIECE).min(n)] {
            piece.extend_from_slice(id.hyphenated().encode_lower(&mut Uuid::encode_buffer()).as_bytes());
            piece.extend_from_slice(b"\r\n");
        }
        Ok::<_, std::io::Error>(piece)
    });
    let started = Instant::now();
    let resp =
        env.client.post(url).bearer_auth(admin).header("content-type", "text/csv").body(reqwest::Body::wrap_stream(pieces)).send().await?;
    let status = resp.status();
    let v: Value = resp.json().await?;
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    if !status.is_success() {
        bail!("import answered {status}: {v}");
    }
    let hwm = proc_kb("VmHWM")?.saturating_sub(before) as f64 / 1024.0;
    let sampled = peak.load(Ordering::Relaxed).saturating_sub(before) as f64 / 1024.0;
    Ok((elapsed, hwm, sampled, v))
}
