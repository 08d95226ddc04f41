//! 선착순: 사용자 N명이 Q장을 두고 다툰다 (burst도 이것: 동시에 N명). 사용자당 한도가 L이면 사람마다 L번 요청한다.
use anyhow::Result;

use crate::Args;
use crate::env::{Env, check_invariant, make_coupon_limited, make_users, restrict_to, token};
use crate::load::{drive, issue_body, keyed};
use crate::report::{Report, cpu_delta, cpu_now, report};

/// 선착순 하나의 모양.
pub(crate) struct Sale {
    pub users: usize,
    pub quantity: i32,
    pub concurrency: usize,
    /// 쿠폰의 사용자당 한도이자 사람마다 보내는 요청 수.
    pub per_user_limit: i32,
    /// 제한된 쿠폰이고, 판매의 모든 사용자가 그 대상 고객이다.
    pub restricted: bool,
}

pub(crate) async fn flash_sale(args: &Args, env: &Env, name: &str, users: usize, quantity: i32, concurrency: usize) -> Result<Report> {
    limited_sale(args, env, name, Sale { users, quantity, concurrency, per_user_limit: 1, restricted: false }).await
}

pub(crate) async fn limited_sale(args: &Args, env: &Env, name: &str, sale: Sale) -> Result<Report> {
    let ids = make_users(&env.db, sale.users).await?;
    let coupon = make_coupon_limited(&env.db, Some(sale.quantity), sale.per_user_limit).await?;
    if sale.restricted {
        restrict_to(&env.db, coupon, &ids).await?;
    }
    let per_user = sale.per_user_limit.max(1) as usize;
    // 한 사람의 L번은 줄에 나란히 선다: 동시에 날아가 같은 배치에 한 사람이 여러 번 들어가고, 한도가 실제로 쓰인다.
    let mut reqs = Vec::with_capacity(ids.len() * per_user);
    for u in &ids {
        for _ in 0..per_user {
            reqs.push((token(env, *u)?, keyed(args, issue_body(coupon))));
        }
    }
    let sent = reqs.len() as u64;
    let before = cpu_now(env);
    let (wall, hist, codes) = drive(env, reqs, sale.concurrency).await?;
    let cpu = cpu_delta(before, cpu_now(env));
    let want = (sale.quantity as i64).min(sent as i64) as i32;
    let issued = check_invariant(&env.db, coupon, Some(want)).await?;
    Ok(report(env, name, sent, wall, hist, codes, cpu, Some(issued)))
}
