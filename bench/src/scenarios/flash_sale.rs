//! 선착순: 사용자 N명이 Q장을 두고 다툰다 (burst도 이것: 동시에 N명).
use anyhow::Result;

use crate::Args;
use crate::env::{Env, check_invariant, make_coupon, make_users, token};
use crate::load::{drive, issue_body, keyed};
use crate::report::{Report, cpu_delta, cpu_now, report};

pub(crate) async fn flash_sale(args: &Args, env: &Env, name: &str, users: usize, quantity: i32, concurrency: usize) -> Result<Report> {
    let ids = make_users(&env.db, users).await?;
    let coupon = make_coupon(&env.db, Some(quantity)).await?;
    let reqs = ids.iter().map(|u| Ok((token(env, *u)?, keyed(args, issue_body(coupon))))).collect::<Result<Vec<_>>>()?;
    let before = cpu_now(env);
    let (wall, hist, codes) = drive(env, reqs, concurrency).await?;
    let cpu = cpu_delta(before, cpu_now(env));
    let issued = check_invariant(&env.db, coupon, Some(quantity.min(users as i32))).await?;
    Ok(report(env, name, users as u64, wall, hist, codes, cpu, Some(issued)))
}
