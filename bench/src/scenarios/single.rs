//! 순차 발급의 지연.
use anyhow::Result;

use crate::env::{Env, check_invariant, make_coupon, make_users, token};
use crate::load::{drive, issue_body};
use crate::report::{Report, cpu_delta, cpu_now, report};

pub(crate) async fn single(env: &Env, requests: usize) -> Result<Report> {
    let ids = make_users(&env.db, requests).await?;
    let coupon = make_coupon(&env.db, None).await?;
    let reqs = ids.iter().map(|u| Ok((token(env, *u)?, issue_body(coupon)))).collect::<Result<Vec<_>>>()?;
    let before = cpu_now(env);
    let (wall, hist, codes) = drive(env, reqs, 1).await?;
    let cpu = cpu_delta(before, cpu_now(env));
    let issued = check_invariant(&env.db, coupon, Some(requests as i32)).await?;
    Ok(report(env, "single", requests as u64, wall, hist, codes, cpu, Some(issued)))
}
