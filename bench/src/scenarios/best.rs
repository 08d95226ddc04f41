//! `bestCoupons` (CONTRACT 12절): 쿠폰 `coupons`장을 가진 사용자들이 가장 큰 할인의 묶음을 묻는다. 클라이언트가 잰 p50·p99와,
//! 서버가 잰 것(`couponql_graphql_request_duration_seconds`의 조회 버킷에서 1·2.5·5 ms 안에 끝난 비율)을 함께 낸다.
use anyhow::{Result, anyhow};
use serde_json::json;

use crate::env::{Env, make_coupon, make_users, token};
use crate::load::drive_for;
use crate::report::{Report, cpu_delta, cpu_now, report};

const USERS: usize = 20;
const BEST: &str = "{ me { bestCoupons(orderAmount: \"50000\") { discountAmount userCoupons { id } } } }";

pub(crate) async fn best(env: &Env, coupons: usize, seconds: u64) -> Result<Vec<Report>> {
    use couponql::entities::coupon::{Column, Entity};
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let users = make_users(&env.db, USERS).await?;
    let issuer = couponql::service::issuance::Issuer::new(env.db.clone(), couponql::service::issuance::IssueMode::PerRequest);
    for i in 0..coupons {
        let c = make_coupon(&env.db, None).await?;
        // 반은 STACKABLE, 할인은 쿠폰마다 다르게 (정률 1..25%, 최대 3,000원): 상위 다섯이 한 장을 이기는 경우와 비기는 경우가 섞인다.
        Entity::update_many()
            .col_expr(Column::Stacking, Expr::val(if i % 2 == 0 { "STACKABLE" } else { "EXCLUSIVE" }))
            .col_expr(Column::DiscountValue, Expr::val(sea_orm::prelude::Decimal::from(1 + i % 25)))
            .filter(Column::Id.eq(c.hyphenated().to_string()))
            .exec(&env.db)
            .await?;
        for u in &users {
            issuer.issue(*u, c).await.map_err(|e| anyhow!("{e:?}"))?;
        }
    }
    let toks = users.iter().map(|u| token(env, *u)).collect::<Result<Vec<String>>>()?;
    let body = json!({ "query": BEST });
    let mut out = Vec::new();
    for concurrency in [1, 10] {
        let before_metrics = server_buckets(env).await?;
        let before = cpu_now(env);
        let (n, wall, hist, codes) = drive_for(env, seconds, concurrency, |w| (toks[w % toks.len()].clone(), body.clone())).await?;
        let cpu = cpu_delta(before, cpu_now(env));
        let after_metrics = server_buckets(env).await?;
        let total = after_metrics[3] - before_metrics[3];
        let share = |i: usize| if total > 0.0 { 100.0 * (after_metrics[i] - before_metrics[i]) / total } else { 0.0 };
        println!(
            "# bestCoupons, {coupons} coupons per user, {concurrency} in flight: server side {:.1}% within 1 ms, {:.1}% within 2.5 ms, {:.1}% within 5 ms ({total} queries)",
            share(0),
            share(1),
            share(2)
        );
        out.push(report(env, &format!("bestCoupons {coupons} coupons, {concurrency} in flight"), n, wall, hist, codes, cpu, None));
    }
    Ok(out)
}

/// 서버의 조회 시간 버킷: [≤1 ms, ≤2.5 ms, ≤5 ms, 전체].
async fn server_buckets(env: &Env) -> Result<[f64; 4]> {
    let base = env.url.trim_end_matches("/graphql");
    let text = env.client.get(format!("{base}/metrics")).send().await?.text().await?;
    let bucket = |le: &str| {
        testkit::metric_sum(&text, &format!("couponql_graphql_request_duration_seconds_bucket{{operation_type=\"query\",le=\"{le}\"}}"))
    };
    let count = testkit::metric_sum(&text, "couponql_graphql_request_duration_seconds_count{operation_type=\"query\"}");
    Ok([bucket("0.001"), bucket("0.0025"), bucket("0.005"), count])
}
