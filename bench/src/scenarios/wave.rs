//! 웨이브 오픈 (CONTRACT 11절): 구독자 `subscribers`명이 지켜보는 쿠폰의 둘째 웨이브가 열릴 때, `at`부터 마지막 구독자가
//! 새 재고(releasedQuantity)를 받기까지. 요청은 하나도 보내지 않는다 (서버의 재고 폴러가 일정을 알고 깨어난다).
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use chrono::Utc;
use couponql::domain::{self, ReleaseWave};
use serde_json::json;

use crate::Args;
use crate::env::{make_coupon, setup};
use crate::report::median;
use crate::scenarios::live::watch_until;

/// 한 번: 구독을 모두 세운 뒤 2초 뒤에 열리는 웨이브를 붙이고, `at` → 마지막 구독자의 메시지 (ms).
async fn wave_round(args: &Args, subscribers: usize) -> Result<f64> {
    let env = setup(args).await?;
    let coupon = make_coupon(&env.db, Some(20)).await?;
    let ws_url = env.url.replace("http://", "ws://") + "/ws";
    let per_conn = 20;
    let conns = subscribers.div_ceil(per_conn);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(subscribers.max(1));
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::channel(subscribers.max(1));
    // 일정: 지난 웨이브 10장, 2초 뒤 10장 (처음엔 일정이 없어 20장 모두 풀려 있다).
    let opened = |stock: &serde_json::Value| stock["releasedQuantity"] == 20 && stock["issuedQuantity"] == 0;
    let started = Instant::now();
    let now = domain::now();
    let first = ReleaseWave { at: now - chrono::Duration::hours(1), quantity: 10 };
    let far = ReleaseWave { at: now + chrono::Duration::days(1), quantity: 10 };
    set_waves(&env.db, coupon, &[first, far]).await?;
    let mut tasks = Vec::with_capacity(conns);
    for c in 0..conns {
        let subs = per_conn.min(subscribers - c * per_conn);
        tasks.push(tokio::spawn(watch_until(ws_url.clone(), coupon, subs, ready_tx.clone(), seen_tx.clone(), opened)));
    }
    drop((ready_tx, seen_tx));
    for _ in 0..subscribers {
        tokio::time::timeout(Duration::from_secs(60), ready_rx.recv()).await?.ok_or_else(|| anyhow!("a subscriber failed to start"))?;
    }
    eprintln!("# {subscribers} subscriptions on {conns} connections ready in {:.1} s", started.elapsed().as_secs_f64());
    let at = domain::now() + chrono::Duration::seconds(2);
    set_waves(&env.db, coupon, &[first, ReleaseWave { at, quantity: 10 }]).await?;
    let mut last = Utc::now();
    for _ in 0..subscribers {
        tokio::time::timeout(Duration::from_secs(30), seen_rx.recv()).await?.ok_or_else(|| anyhow!("a subscriber missed the opening"))?;
        last = Utc::now();
    }
    for t in tasks {
        t.await??;
    }
    let lag = (last - at).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0;
    println!("# wave opening with {subscribers} subscribers: at → last subscriber's message {lag:.0} ms");
    Ok(lag)
}

/// 일정을 직접 쓴다 (벤치 쿠폰은 API를 거치지 않고 만든다).
async fn set_waves(db: &sea_orm::DatabaseConnection, coupon: uuid::Uuid, waves: &[ReleaseWave]) -> Result<()> {
    use couponql::entities::coupon::{Column, Entity};
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    Entity::update_many()
        .col_expr(Column::Waves, Expr::val(domain::wave::to_stored(waves)))
        .filter(Column::Id.eq(coupon.hyphenated().to_string()))
        .exec(db)
        .await?;
    Ok(())
}

pub(crate) async fn wave(args: &Args, subscribers: usize, runs: usize) -> Result<()> {
    let mut rounds = Vec::new();
    for _ in 0..runs.max(1) {
        rounds.push(wave_round(args, subscribers).await?);
    }
    println!("| figure (median of {}) | value |", rounds.len());
    println!("|---|---|");
    println!("| wave `at` → last of {subscribers} subscribers' message | {:.0} ms |", median(rounds.clone()));
    println!("{}", json!({ "scenario": "wave", "runs": rounds.len(), "rounds": rounds }));
    Ok(())
}
