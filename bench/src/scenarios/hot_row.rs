//! 한 행에 계속되는 발급: N명 모두 성공한다.
use anyhow::Result;

use crate::Args;
use crate::env::{Env, check_invariant, make_coupon, make_users, token};
use crate::load::{drive, issue_body, keyed};
use crate::report::{Report, cpu_delta, cpu_now, report};

pub(crate) async fn hot_row(args: &Args, env: &Env, users: usize, concurrency: usize) -> Result<Report> {
    let ids = make_users(&env.db, users).await?;
    let coupon = make_coupon(&env.db, Some(users as i32)).await?;
    let reqs = ids.iter().map(|u| Ok((token(env, *u)?, keyed(args, issue_body(coupon))))).collect::<Result<Vec<_>>>()?;
    let before = cpu_now(env);
    let (wall, hist, codes) = drive(env, reqs, concurrency).await?;
    let cpu = cpu_delta(before, cpu_now(env));
    let issued = check_invariant(&env.db, coupon, Some(users as i32)).await?;
    Ok(report(env, "hot-row", users as u64, wall, hist, codes, cpu, Some(issued)))
}
