//! 결제 흐름: 사용자마다 보류 → 사용 → 취소 → (새 주문으로) 사용, 모두 키를 달고.
use std::collections::HashMap;

use anyhow::{Result, anyhow, bail};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::env::{Env, make_coupon, make_users, token};
use crate::load::drive;
use crate::report::{Report, cpu_delta, cpu_now, report};

/// 결제 단계의 질의 (`day`도 쓴다): 변수 `$u`(발급 내역 id)와 `$o`(주문 id).
pub(crate) const RESERVE: &str =
    "mutation($u: ID!, $o: String!) { reserveCoupon(userCouponId: $u, orderId: $o, orderAmount: \"50000\") { id status } }";
pub(crate) const USE: &str = "mutation($u: ID!, $o: String!) { useCoupon(userCouponId: $u, orderId: $o) { id status } }";
pub(crate) const CANCEL: &str = "mutation($u: ID!, $o: String!) { cancelCoupon(userCouponId: $u, orderId: $o) { id status } }";

/// 이 쿠폰의 발급 내역: 사용자 → 발급 내역 id (데이터베이스에서).
async fn held_by(env: &Env, coupon: Uuid) -> Result<HashMap<Uuid, Uuid>> {
    use couponql::entities::user_coupon::{Column, Entity};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
    let rows: Vec<(String, String)> = Entity::find()
        .select_only()
        .column(Column::UserId)
        .column(Column::Id)
        .filter(Column::CouponId.eq(coupon.hyphenated().to_string()))
        .into_tuple()
        .all(&env.db)
        .await?;
    rows.into_iter().map(|(u, id)| Ok((Uuid::parse_str(&u)?, Uuid::parse_str(&id)?))).collect()
}

/// 결제 흐름: 사용자마다 보류 → 사용 → 취소 → (새 주문으로) 사용, 모두 키를 달고. 단계마다 한 줄.
/// `budget`: 쿠폰에 모두가 들어갈 만큼의 예산을 단다 (CONTRACT 11절: 같은 쿠폰의 결제가 쿠폰 행 하나에서 만난다).
pub(crate) async fn checkout(env: &Env, users: usize, concurrency: usize, budget: bool) -> Result<Vec<Report>> {
    let ids = make_users(&env.db, users).await?;
    let coupon = make_coupon(&env.db, None).await?;
    if budget {
        set_budget(env, coupon).await?;
    }
    let toks = ids.iter().map(|u| token(env, *u)).collect::<Result<Vec<String>>>()?;
    // 발급은 재지 않는 준비: 서버의 공개 API로 (벤치보다 오래된 서버도 제 원장 모양으로 쓴다).
    let issue = crate::load::ISSUE;
    let reqs = toks.iter().map(|t| (t.clone(), json!({ "query": issue, "variables": { "c": coupon.to_string() } }))).collect();
    let (_, _, codes) = drive(env, reqs, concurrency).await?;
    if codes.get("OK").copied().unwrap_or(0) != users as u64 {
        bail!("checkout setup: not every issuance succeeded: {codes:?}");
    }
    let held = held_by(env, coupon).await?;
    let ucs = ids.iter().map(|u| held.get(u).copied().ok_or_else(|| anyhow!("no user coupon for {u}"))).collect::<Result<Vec<Uuid>>>()?;
    let steps: [(&str, &str, &str); 4] = [
        ("checkout reserve", RESERVE, "A"),
        ("checkout use", USE, "A"),
        ("checkout cancel", CANCEL, "A"),
        (
            "checkout use again",
            "mutation($u: ID!, $o: String!) { useCoupon(userCouponId: $u, orderId: $o, orderAmount: \"60000\") { id status } }",
            "B",
        ),
    ];
    let mut out = Vec::new();
    for (name, query, order) in steps {
        let reqs: Vec<(String, Value)> = ucs
            .iter()
            .zip(&toks)
            .map(|(uc, t)| {
                let vars = json!({ "u": uc.to_string(), "o": format!("{order}-{uc}") });
                (t.clone(), json!({ "query": query, "variables": vars, "_key": format!("{name}-{uc}") }))
            })
            .collect();
        let before = cpu_now(env);
        let (wall, hist, codes) = drive(env, reqs, concurrency).await?;
        let cpu = cpu_delta(before, cpu_now(env));
        if codes.get("OK").copied().unwrap_or(0) != users as u64 {
            bail!("{name}: not every step succeeded: {codes:?}");
        }
        let name = if budget { format!("{name} (budget)") } else { name.to_owned() };
        out.push(report(env, &name, users as u64, wall, hist, codes, cpu, None));
    }
    Ok(out)
}

/// 묶음 결제 (CONTRACT 12절): 사용자마다 STACKABLE 쿠폰 `size`장을 받아 묶음으로 보류 → 사용 → 취소 → (새 주문으로)
/// 다시 보류, 모두 키를 달고. 단계마다 한 줄이고, 처리량은 쿠폰 수로 센다 (요청 하나가 쿠폰 `size`장).
pub(crate) async fn checkout_sets(env: &Env, users: usize, concurrency: usize, size: usize) -> Result<Vec<Report>> {
    let ids = make_users(&env.db, users).await?;
    let toks = ids.iter().map(|u| token(env, *u)).collect::<Result<Vec<String>>>()?;
    let issue = crate::load::ISSUE;
    let mut sets: Vec<Vec<Uuid>> = vec![Vec::with_capacity(size); users];
    for _ in 0..size {
        let coupon = make_coupon(&env.db, None).await?;
        set_stackable(env, coupon).await?;
        let reqs = toks.iter().map(|t| (t.clone(), json!({ "query": issue, "variables": { "c": coupon.to_string() } }))).collect();
        let (_, _, codes) = drive(env, reqs, concurrency).await?;
        if codes.get("OK").copied().unwrap_or(0) != users as u64 {
            bail!("set checkout setup: not every issuance succeeded: {codes:?}");
        }
        let held = held_by(env, coupon).await?;
        for (set, u) in sets.iter_mut().zip(&ids) {
            set.push(held.get(u).copied().ok_or_else(|| anyhow!("no user coupon for {u}"))?);
        }
    }
    let reserve =
        "mutation($s: [ID!]!, $o: String!) { reserveCoupons(userCouponIds: $s, orderId: $o, orderAmount: \"50000\") { discountAmount } }";
    let steps: [(&str, &str, &str); 4] = [
        ("set reserve", reserve, "A"),
        ("set use", "mutation($o: String!) { useOrderCoupons(orderId: $o) { discountAmount } }", "A"),
        ("set cancel", "mutation($o: String!) { cancelOrderCoupons(orderId: $o) { discountAmount } }", "A"),
        ("set reserve again", reserve, "B"),
    ];
    let mut out = Vec::new();
    for (name, query, order) in steps {
        let reqs: Vec<(String, Value)> = sets
            .iter()
            .zip(&toks)
            .enumerate()
            .map(|(i, (set, t))| {
                let ids: Vec<String> = set.iter().map(Uuid::to_string).collect();
                let vars = if query == reserve {
                    json!({ "s": ids, "o": format!("{order}-{i}") })
                } else {
                    json!({ "o": format!("{order}-{i}") })
                };
                (t.clone(), json!({ "query": query, "variables": vars, "_key": format!("{name}-{i}-{}", ids[0]) }))
            })
            .collect();
        let before = cpu_now(env);
        let (wall, hist, codes) = drive(env, reqs, concurrency).await?;
        let cpu = cpu_delta(before, cpu_now(env));
        if codes.get("OK").copied().unwrap_or(0) != users as u64 {
            bail!("{name}: not every step succeeded: {codes:?}");
        }
        // 요청 수 대신 쿠폰 수: 한 장짜리 결제와 같은 단위(쿠폰/초)로 비교한다.
        let name = format!("{name} ({size} coupons, coupons/s)");
        out.push(report(env, &name, (users * size) as u64, wall, hist, codes, cpu, None));
    }
    Ok(out)
}

/// 쿠폰을 STACKABLE로 (묶음 결제 준비).
async fn set_stackable(env: &Env, coupon: Uuid) -> Result<()> {
    use couponql::entities::coupon::{Column, Entity};
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    Entity::update_many()
        .col_expr(Column::Stacking, Expr::val("STACKABLE"))
        .filter(Column::Id.eq(coupon.hyphenated().to_string()))
        .exec(&env.db)
        .await?;
    Ok(())
}

/// 예산을 단다: 할인(10%, 최대 3,000원) × 사용자 수보다 넉넉히, 어느 단계도 예산에 걸리지 않게 (처리량만 잰다).
async fn set_budget(env: &Env, coupon: Uuid) -> Result<()> {
    use couponql::entities::coupon::{Column, Entity};
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    Entity::update_many()
        .col_expr(Column::Budget, Expr::val(Some(sea_orm::prelude::Decimal::from(1_000_000_000))))
        .filter(Column::Id.eq(coupon.hyphenated().to_string()))
        .exec(&env.db)
        .await?;
    Ok(())
}
