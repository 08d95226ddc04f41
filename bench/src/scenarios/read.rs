//! 읽기: `coupon(id)`와 `me { coupons { coupon } }`를 정해진 시간 동안.
use anyhow::{Result, anyhow};
use serde_json::json;

use crate::env::{Env, make_coupon, make_users, token};
use crate::load::drive_for;
use crate::report::{Report, cpu_delta, cpu_now, report};

/// 내 쿠폰 목록 읽기 (`day`도 쓴다).
pub(crate) const ME: &str = "{ me { id name coupons { id isUsed coupon { id name discountValue remainingQuantity } } } }";
/// 쿠폰 하나 읽기.
pub(crate) const COUPON: &str = "query($id: ID!) { coupon(id: $id) { id name discountType discountValue remainingQuantity isAvailable } }";

pub(crate) async fn read(env: &Env, seconds: u64, concurrency: usize) -> Result<Vec<Report>> {
    let ids = make_users(&env.db, concurrency).await?;
    let coupons = [make_coupon(&env.db, None).await?, make_coupon(&env.db, None).await?, make_coupon(&env.db, Some(100_000)).await?];
    for u in &ids {
        for c in &coupons {
            couponql::service::issuance::Issuer::new(env.db.clone(), couponql::service::issuance::IssueMode::PerRequest)
                .issue(*u, *c)
                .await
                .map_err(|e| anyhow!("{e:?}"))?;
        }
    }
    let mut out = Vec::new();
    let one = json!({ "query": COUPON, "variables": { "id": coupons[0].to_string() } });
    let before = cpu_now(env);
    let (n, wall, hist, codes) = drive_for(env, seconds, concurrency, |_| (String::new(), one.clone())).await?;
    out.push(report(env, "read coupon(id)", n, wall, hist, codes, cpu_delta(before, cpu_now(env)), None));
    let me = json!({ "query": ME });
    let toks = ids.iter().map(|u| token(env, *u)).collect::<Result<Vec<String>>>()?;
    let before = cpu_now(env);
    let (n, wall, hist, codes) = drive_for(env, seconds, concurrency, |w| (toks[w % toks.len()].clone(), me.clone())).await?;
    out.push(report(env, "read me{coupons}", n, wall, hist, codes, cpu_delta(before, cpu_now(env)), None));
    Ok(out)
}
