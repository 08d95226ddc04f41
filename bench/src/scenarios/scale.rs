//! 테이블 크기에 따른 비용: 거의 빈 데이터베이스와 큰 테이블에서 같은 측정.
use std::time::{Duration, Instant};

use anyhow::Result;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::json;
use uuid::Uuid;

use super::{flash_sale::flash_sale, read::read, single::single};
use crate::Args;
use crate::env::{Env, make_coupon};
use crate::report::{Report, median};

/// 큰 테이블: 사용자 `rows`명과 그들이 하나씩 가진 발급 내역 `rows`개를, 문장당 2,000행의 INSERT로 채운다.
/// 채움용 쿠폰의 issued_quantity도 맞춰 불변식을 지킨다. 끝에 통계를 갱신한다.
pub(crate) async fn fill(db: &DatabaseConnection, rows: usize) -> Result<Duration> {
    let started = Instant::now();
    let coupon = make_coupon(db, None).await?;
    let backend = db.get_database_backend();
    let falsy = if backend == sea_orm::DbBackend::Sqlite { "0" } else { "false" };
    const CHUNK: usize = 2000;
    let mut done = 0;
    while done < rows {
        let n = CHUNK.min(rows - done);
        let ids: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
        let users: Vec<String> = ids.iter().map(|u| format!("('{u}','{}@fill.example','채움')", u.simple())).collect();
        let ucs: Vec<String> = ids.iter().map(|u| format!("('{}','{u}','{coupon}',{falsy})", Uuid::new_v4())).collect();
        let txn = sea_orm::TransactionTrait::begin(db).await?;
        txn.execute_unprepared(&format!("INSERT INTO users (id, email, name) VALUES {}", users.join(","))).await?;
        txn.execute_unprepared(&format!("INSERT INTO user_coupons (id, user_id, coupon_id, is_used) VALUES {}", ucs.join(","))).await?;
        txn.execute_unprepared(&format!("UPDATE coupons SET issued_quantity = issued_quantity + {n} WHERE id = '{coupon}'")).await?;
        txn.commit().await?;
        done += n;
        if done % 100_000 == 0 {
            eprintln!("# filled {done} / {rows} ({:.0} s)", started.elapsed().as_secs_f64());
        }
    }
    let analyze = match backend {
        sea_orm::DbBackend::MySql => "ANALYZE TABLE users, coupons, user_coupons",
        _ => "ANALYZE",
    };
    db.execute_unprepared(analyze).await?;
    Ok(started.elapsed())
}

/// 한 번의 측정: 순차 발급 지연, 두 읽기의 처리량, 선착순 처리량.
pub(crate) async fn scale_round(args: &Args, env: &Env, seconds: u64) -> Result<Vec<Report>> {
    let mut out = vec![single(env, 200).await?];
    out.extend(read(env, seconds, 50).await?);
    out.push(flash_sale(args, env, "flash-sale", 1000, 100, 200).await?);
    Ok(out)
}

/// 작은 테이블과 큰 테이블에서 같은 측정을 `runs`번씩 하고 중앙값과 비율을 표로 낸다.
pub(crate) async fn scale(args: &Args, env: &Env, rows: usize, runs: usize, seconds: u64) -> Result<()> {
    let measure = |label: &'static str| async move {
        let mut rounds = Vec::new();
        for i in 0..runs.max(1) {
            let r = scale_round(args, env, seconds).await?;
            eprintln!("# {label} run {}:", i + 1);
            for x in &r {
                x.print();
            }
            rounds.push(r);
        }
        // 지표: single p50 (ms), coupon(id) req/s, me req/s, flash-sale req/s
        let pick = |k: usize, f: &dyn Fn(&Report) -> f64| median(rounds.iter().map(|r| f(&r[k])).collect());
        let rps = |r: &Report| r.requests as f64 / r.wall.as_secs_f64();
        let p50 = |r: &Report| r.hist.value_at_quantile(0.5) as f64 / 1000.0;
        anyhow::Ok([pick(0, &p50), pick(1, &rps), pick(2, &rps), pick(3, &rps)])
    };
    let small = measure("small").await?;
    let took = fill(&env.db, rows).await?;
    eprintln!("# filled {rows} users + {rows} user coupons in {:.0} s", took.as_secs_f64());
    let large = measure("large").await?;
    let names = ["single issuance p50 (ms)", "coupon(id) req/s", "me{coupons} req/s", "flash-sale 1000/100 req/s"];
    println!("| figure (median of {runs}) | small tables | + {rows} rows | cost ratio |");
    println!("|---|---|---|---|");
    for (i, name) in names.iter().enumerate() {
        // 비용 비율: 지연은 큰/작은, 처리량은 작은/큰 (1.0 = 차이 없음, 클수록 큰 테이블에서 비싸다).
        let ratio = if i == 0 { large[i] / small[i] } else { small[i] / large[i] };
        println!("| {name} | {:.2} | {:.2} | {ratio:.2}× |", small[i], large[i]);
    }
    println!("{}", json!({ "scenario": "scale", "rows": rows, "runs": runs, "small": small, "large": large }));
    Ok(())
}
