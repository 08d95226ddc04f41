//! user_coupons 저장소: 발급 내역 조회, 발급(삽입), 사용/취소의 조건부 갱신.
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr,
};
use uuid::Uuid;

use super::{DbFailure, classify, db_error, id_str, parse_id, ts, utc};
use crate::domain::checkout::{Amounts, Place};
use crate::domain::money::money;
use crate::domain::{Coupon, UserCoupon};
use crate::entities::coupon;
use crate::entities::user_coupon::{self, Column, Entity as UserCoupons};
use crate::error::{AppError, AppResult};

pub(crate) fn to_domain(m: user_coupon::Model) -> AppResult<UserCoupon> {
    Ok(UserCoupon {
        id: parse_id(&m.id)?,
        user_id: parse_id(&m.user_id)?,
        coupon_id: parse_id(&m.coupon_id)?,
        is_used: m.is_used,
        used_at: m.used_at.map(utc),
        issued_at: utc(m.issued_at),
        order_id: m.order_id,
        reserved_until: m.reserved_until.map(utc),
        order_amount: m.order_amount.map(money),
        discount_amount: m.discount_amount.map(money),
        slot: m.slot,
        code: m.code,
        set_position: m.set_position,
        held_at: m.held_at.map(utc),
    })
}

pub async fn find_by_id(db: &impl ConnectionTrait, id: Uuid) -> AppResult<Option<UserCoupon>> {
    UserCoupons::find_by_id(id_str(id)).one(db).await.map_err(db_error)?.map(to_domain).transpose()
}

/// `SELECT … FOR UPDATE`: 트랜잭션 안에서, 이 발급 내역을 바꾸기 전에 지금 값을 잠그고 읽는다.
pub async fn find_for_update(db: &impl ConnectionTrait, id: Uuid) -> AppResult<Option<UserCoupon>> {
    UserCoupons::find_by_id(id_str(id)).lock_exclusive().one(db).await.map_err(db_error)?.map(to_domain).transpose()
}

/// 이 사용자가 이 쿠폰을 몇 장 받았는지 (사용·취소한 것도 센다: 한도는 받은 수에 건다).
pub async fn count_held(db: &impl ConnectionTrait, user_id: Uuid, coupon_id: Uuid) -> AppResult<i32> {
    let n = UserCoupons::find()
        .filter(Column::UserId.eq(id_str(user_id)))
        .filter(Column::CouponId.eq(id_str(coupon_id)))
        .count(db)
        .await
        .map_err(db_error)?;
    Ok(i32::try_from(n).unwrap_or(i32::MAX))
}

/// 쿠폰 하나의 발급 내역 수 (불변식 검사용).
pub async fn count_for_coupon(db: &impl ConnectionTrait, coupon_id: Uuid) -> AppResult<u64> {
    UserCoupons::find().filter(Column::CouponId.eq(id_str(coupon_id))).count(db).await.map_err(db_error)
}

fn to_active(uc: &UserCoupon) -> user_coupon::ActiveModel {
    user_coupon::ActiveModel {
        id: Set(id_str(uc.id)),
        user_id: Set(id_str(uc.user_id)),
        coupon_id: Set(id_str(uc.coupon_id)),
        is_used: Set(uc.is_used),
        used_at: Set(uc.used_at.map(ts)),
        issued_at: Set(ts(uc.issued_at)),
        order_id: Set(uc.order_id.clone()),
        reserved_until: Set(uc.reserved_until.map(ts)),
        order_amount: Set(uc.order_amount),
        discount_amount: Set(uc.discount_amount),
        slot: Set(uc.slot),
        code: Set(uc.code.clone()),
        set_position: Set(uc.set_position),
        held_at: Set(uc.held_at.map(ts)),
    }
}

/// 발급 내역 삽입. 유일 제약 위반은 `insert_many`와 같이 바꾼다.
pub async fn insert(db: &impl ConnectionTrait, uc: &UserCoupon) -> AppResult<()> {
    insert_many(db, std::slice::from_ref(uc)).await
}

/// 여러 행을 INSERT 한 번으로 (배치 발급). 유일 제약 위반은 어느 키인지에 따라: `(code, user_id)`면
/// CODE_ALREADY_REDEEMED, `(user_id, coupon_id, slot)`이면 ALREADY_ISSUED. 둘 다 잠금 아래의 검사가 먼저 거르므로,
/// 여기까지 오는 것은 낡은 읽기(클러스터)나 잠금 밖의 삽입뿐이다.
pub async fn insert_many(db: &impl ConnectionTrait, rows: &[UserCoupon]) -> AppResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    match UserCoupons::insert_many(rows.iter().map(to_active)).exec_without_returning(db).await {
        Ok(_) => Ok(()),
        Err(e) if classify(&e) == DbFailure::Unique => {
            // 제약 이름(MySQL·PostgreSQL: uq_user_coupons_code_user) 또는 열 이름(SQLite: user_coupons.code)에 "code"가 있다.
            let on_code = matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(m)) if m.contains("code"));
            Err(if on_code { AppError::CodeAlreadyRedeemed } else { AppError::CouponAlreadyIssued })
        }
        Err(e) => Err(db_error(e)),
    }
}

/// 주어진 사용자들이 이 쿠폰을 각각 몇 장 받았는지 (배치의 한도 검사를 질의 한 번으로). 없는 사용자는 빠진다.
pub async fn held_counts(db: &impl ConnectionTrait, coupon_id: Uuid, users: &[Uuid]) -> AppResult<HashMap<Uuid, i32>> {
    if users.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<String> = users.iter().copied().map(id_str).collect();
    let rows: Vec<String> = UserCoupons::find()
        .select_only()
        .column(Column::UserId)
        .filter(Column::CouponId.eq(id_str(coupon_id)))
        .filter(Column::UserId.is_in(ids))
        .into_tuple()
        .all(db)
        .await
        .map_err(db_error)?;
    let mut counts = HashMap::new();
    for r in &rows {
        *counts.entry(parse_id(r)?).or_insert(0) += 1;
    }
    Ok(counts)
}

/// 주어진 (사용자, 코드) 가운데 이미 그 코드로 받은 것 (고른 코드는 사용자당 한 번).
pub async fn redeemed(db: &impl ConnectionTrait, pairs: &[(Uuid, &str)]) -> AppResult<HashSet<(Uuid, String)>> {
    if pairs.is_empty() {
        return Ok(HashSet::new());
    }
    let users: Vec<String> = pairs.iter().map(|(u, _)| id_str(*u)).collect();
    let codes: Vec<&str> = pairs.iter().map(|(_, c)| *c).collect();
    let rows: Vec<(String, Option<String>)> = UserCoupons::find()
        .select_only()
        .column(Column::UserId)
        .column(Column::Code)
        .filter(Column::Code.is_in(codes))
        .filter(Column::UserId.is_in(users))
        .into_tuple()
        .all(db)
        .await
        .map_err(db_error)?;
    let mut found = HashSet::new();
    for (user, code) in rows {
        if let Some(code) = code {
            found.insert((parse_id(&user)?, code));
        }
    }
    Ok(found)
}

/// 한 사용자의 발급 내역과 그 쿠폰, 최신순.
pub async fn list_by_user(db: &impl ConnectionTrait, user_id: Uuid, unused_only: bool) -> AppResult<Vec<(UserCoupon, Coupon)>> {
    list_by_users(db, &[user_id], unused_only).await
}

/// 여러 사용자의 발급 내역을 쿠폰과 함께(JOIN) 질의 한 번에, 최신순 (DataLoader용: 쿠폰을 따로 읽지 않는다).
pub async fn list_by_users(db: &impl ConnectionTrait, user_ids: &[Uuid], unused_only: bool) -> AppResult<Vec<(UserCoupon, Coupon)>> {
    if user_ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = user_ids.iter().copied().map(id_str).collect();
    let mut q = UserCoupons::find().filter(Column::UserId.is_in(ids));
    if unused_only {
        q = q.filter(Column::IsUsed.eq(false));
    }
    with_coupons(
        q.find_also_related(coupon::Entity).order_by_desc(Column::IssuedAt).order_by_desc(Column::Id).all(db).await.map_err(db_error)?,
    )
}

/// JOIN으로 읽은 (발급 내역, 쿠폰) 행들을 도메인 값으로. 쿠폰이 없는 행은 데이터가 어긋난 것이다.
fn with_coupons(rows: Vec<(user_coupon::Model, Option<coupon::Model>)>) -> AppResult<Vec<(UserCoupon, Coupon)>> {
    rows.into_iter()
        .map(|(uc, c)| {
            let c = c.ok_or_else(|| AppError::Internal(format!("발급 내역 {}의 쿠폰이 없음", uc.id)))?;
            Ok((to_domain(uc)?, super::coupon::to_domain(c)?))
        })
        .collect()
}

/// 한 사용자의 발급 내역을 모두 id 순으로 잠그고 읽는다 (`… WHERE user_id = ? ORDER BY id FOR UPDATE`, READ COMMITTED라
/// 갭 잠금 없이 행만). 묶음의 변경은 이것으로 그 사용자 안에서 차례로 일어난다: 같은 주문을 두 요청이 동시에 바꾸거나,
/// 겹치는 두 묶음이 서로 기다리며 멈추는 일이 없다. 다른 사용자의 행과 쿠폰 행은 잠그지 않는다.
pub async fn lock_user(db: &impl ConnectionTrait, user_id: Uuid) -> AppResult<Vec<UserCoupon>> {
    UserCoupons::find()
        .filter(Column::UserId.eq(id_str(user_id)))
        .order_by_asc(Column::Id)
        .lock_exclusive()
        .all(db)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(to_domain)
        .collect()
}

/// 이 사용자의 이 주문에 붙은 발급 내역과 그 쿠폰 (JOIN 한 번). 순서는 호출한 쪽이 정한다 (`domain::stacking`).
pub async fn of_order(db: &impl ConnectionTrait, user_id: Uuid, order: &str) -> AppResult<Vec<(UserCoupon, Coupon)>> {
    with_coupons(
        UserCoupons::find()
            .filter(Column::UserId.eq(id_str(user_id)))
            .filter(Column::OrderId.eq(order))
            .find_also_related(coupon::Entity)
            .all(db)
            .await
            .map_err(db_error)?,
    )
}

/// 여러 발급 내역을 그 쿠폰과 함께(JOIN) 질의 한 번에 (DataLoader·`_entities`용). 순서는 보장하지 않는다.
pub async fn find_many_with_coupons(db: &impl ConnectionTrait, ids: &[Uuid]) -> AppResult<Vec<(UserCoupon, Coupon)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = ids.iter().copied().map(id_str).collect();
    with_coupons(UserCoupons::find().filter(Column::Id.is_in(ids)).find_also_related(coupon::Entity).all(db).await.map_err(db_error)?)
}

/// 여러 주문에 붙은 발급 내역과 그 쿠폰 (JOIN 한 번): `user`가 있으면 그 사용자의 것만, 없으면 모든 사용자의 것.
pub async fn of_orders(db: &impl ConnectionTrait, user: Option<Uuid>, orders: &[String]) -> AppResult<Vec<(UserCoupon, Coupon)>> {
    if orders.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = UserCoupons::find().filter(Column::OrderId.is_in(orders.iter().cloned()));
    if let Some(user) = user {
        q = q.filter(Column::UserId.eq(id_str(user)));
    }
    with_coupons(q.find_also_related(coupon::Entity).all(db).await.map_err(db_error)?)
}

/// 보류가 비어 있거나(없음·만료) `same_order`의 것인 행만 고르는 조건. 사용·보류의 경쟁은 이 조건을 단
/// UPDATE 하나로 데이터베이스가 가른다: 동시에 몇 건이 와도 정확히 하나만 1행을 바꾼다.
fn hold_is_free(now: DateTime<Utc>, same_order: Option<&str>) -> Condition {
    let mut free =
        Condition::any().add(Column::OrderId.is_null()).add(Column::ReservedUntil.is_null()).add(Column::ReservedUntil.lte(ts(now)));
    if let Some(order) = same_order {
        free = free.add(Column::OrderId.eq(order));
    }
    free
}

/// 주문 필드를 한꺼번에 정한다 (None은 비운다).
fn set_order(
    q: sea_orm::UpdateMany<UserCoupons>,
    order: Option<&str>,
    until: Option<DateTime<Utc>>,
    amounts: Option<Amounts>,
) -> sea_orm::UpdateMany<UserCoupons> {
    let q = q
        .col_expr(Column::OrderId, Expr::val(order.map(str::to_owned)))
        .col_expr(Column::ReservedUntil, Expr::val(until.map(ts)))
        .col_expr(Column::OrderAmount, Expr::val(amounts.map(|a| a.order_amount)))
        .col_expr(Column::DiscountAmount, Expr::val(amounts.map(|a| a.discount_amount)));
    if order.is_none() {
        // 주문에서 떨어지면 묶음의 자리도 없다.
        return q
            .col_expr(Column::SetPosition, Expr::val(Option::<i32>::None))
            .col_expr(Column::HeldAt, Expr::val(Option::<chrono::DateTime<chrono::FixedOffset>>::None));
    }
    q
}

fn set_place(q: sea_orm::UpdateMany<UserCoupons>, place: Place) -> sea_orm::UpdateMany<UserCoupons> {
    q.col_expr(Column::SetPosition, Expr::val(place.set_position)).col_expr(Column::HeldAt, Expr::val(Some(ts(place.held_at))))
}

/// 보류(또는 같은 주문의 보류 갱신). 미사용이고 보류가 비었거나 같은 주문의 것일 때만.
pub async fn reserve(
    db: &impl ConnectionTrait,
    id: Uuid,
    order: &str,
    until: DateTime<Utc>,
    amounts: Amounts,
    place: Place,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let res = set_place(set_order(UserCoupons::update_many(), Some(order), Some(until), Some(amounts)), place)
        .filter(Column::Id.eq(id_str(id)))
        .filter(Column::IsUsed.eq(false))
        .filter(hold_is_free(now, Some(order)))
        .exec(db)
        .await
        .map_err(db_error)?;
    Ok(res.rows_affected == 1)
}

/// 이 주문의 (만료되지 않은) 보류를 푼다.
pub async fn release(db: &impl ConnectionTrait, id: Uuid, order: &str, now: DateTime<Utc>) -> AppResult<bool> {
    let res = set_order(UserCoupons::update_many(), None, None, None)
        .filter(Column::Id.eq(id_str(id)))
        .filter(Column::IsUsed.eq(false))
        .filter(Column::OrderId.eq(order))
        .filter(Column::ReservedUntil.gt(ts(now)))
        .exec(db)
        .await
        .map_err(db_error)?;
    Ok(res.rows_affected == 1)
}

/// 미사용 → 사용 (주문과 금액을 기록). 보류가 비었거나 이 주문의 것일 때만.
/// 돌려주는 값: 이 호출이 바꿨는지.
pub async fn mark_used(
    db: &impl ConnectionTrait,
    id: Uuid,
    now: DateTime<Utc>,
    order: Option<&str>,
    amounts: Option<Amounts>,
    place: Place,
) -> AppResult<bool> {
    let mut q = set_order(UserCoupons::update_many(), order, None, amounts);
    if order.is_some() {
        q = set_place(q, place);
    }
    let res = q
        .col_expr(Column::IsUsed, Expr::val(true))
        .col_expr(Column::UsedAt, Expr::val(Some(ts(now))))
        .filter(Column::Id.eq(id_str(id)))
        .filter(Column::IsUsed.eq(false))
        .filter(hold_is_free(now, order))
        .exec(db)
        .await
        .map_err(db_error)?;
    Ok(res.rows_affected == 1)
}

/// 사용 → 미사용 (주문 취소). 주문이 주어지면 그 주문이 쓴 것만. 주문 필드는 비운다.
pub async fn mark_unused(db: &impl ConnectionTrait, id: Uuid, order: Option<&str>) -> AppResult<bool> {
    let mut q = set_order(UserCoupons::update_many(), None, None, None)
        .col_expr(Column::IsUsed, Expr::val(false))
        .col_expr(Column::UsedAt, Expr::val(Option::<chrono::DateTime<chrono::FixedOffset>>::None))
        .filter(Column::Id.eq(id_str(id)))
        .filter(Column::IsUsed.eq(true));
    if let Some(order) = order {
        q = q.filter(Column::OrderId.eq(order));
    }
    let res = q.exec(db).await.map_err(db_error)?;
    Ok(res.rows_affected == 1)
}

/// 쿠폰 하나의 보유자 한 페이지, 최신순. 키셋: (발급 시각, id).
pub async fn page_by_coupon(
    db: &impl ConnectionTrait,
    coupon_id: Uuid,
    after: Option<super::coupon::Keyset>,
    limit: u64,
) -> AppResult<Vec<UserCoupon>> {
    let q = UserCoupons::find().filter(Column::CouponId.eq(id_str(coupon_id)));
    super::newest_first(db, q, (Column::IssuedAt, Column::Id), after.map(|k| (k.created_at, id_str(k.id))), limit, to_domain).await
}

/// 만료 전 보류: 미사용이고 주문이 있고 보류 시한이 지나지 않은 것 (시한이 지난 보류는 읽을 때 풀린 것이다).
fn live_hold(now: DateTime<Utc>) -> Condition {
    Condition::all().add(Column::IsUsed.eq(false)).add(Column::OrderId.is_not_null()).add(Column::ReservedUntil.gt(ts(now)))
}

/// 예산에서 나간 돈: 쿠폰 하나의 현재 사용과 만료 전 보류의 할인 합계, `except`(지금 바꾸려는 발급 내역)는 빼고.
/// 만료는 읽는 시각으로 정하므로 청소 작업 없이 만료된 보류의 몫이 돌아온다. 쿠폰 행 잠금 아래에서 부른다
/// (READ COMMITTED라 잠금 뒤의 읽기가 그 전의 커밋을 모두 본다).
pub async fn budget_spent(db: &impl ConnectionTrait, coupon_id: Uuid, now: DateTime<Utc>, except: Option<Uuid>) -> AppResult<Decimal> {
    let mut q = UserCoupons::find()
        .select_only()
        .expr_as(Func::sum(Expr::col(Column::DiscountAmount)), "spent")
        .filter(Column::CouponId.eq(id_str(coupon_id)))
        .filter(Condition::any().add(Column::IsUsed.eq(true)).add(live_hold(now)));
    if let Some(id) = except {
        q = q.filter(Column::Id.ne(id_str(id)));
    }
    let spent: Option<Option<Decimal>> = q.into_tuple().one(db).await.map_err(db_error)?;
    Ok(money(spent.flatten().unwrap_or_default()))
}

/// 만료된 보류의 몫을 예산에 돌려준다: 쿠폰 하나의 시한이 지난 보류(`except` 빼고)의 할인 합계를 세고, 그 보류들을
/// 풀린 모양(주문 필드를 비움)으로 바꾼다. 만료된 보류는 읽을 때 이미 풀린 것이므로 보이는 것은 바뀌지 않는다.
/// 쿠폰 행 잠금 아래에서만 부른다 (예산 있는 쿠폰의 보류를 바꾸는 곳은 모두 그 잠금을 잡는다).
pub async fn reclaim_expired_holds(
    db: &impl ConnectionTrait,
    coupon_id: Uuid,
    now: DateTime<Utc>,
    except: Option<Uuid>,
) -> AppResult<Decimal> {
    let expired = || {
        let c = Condition::all()
            .add(Column::CouponId.eq(id_str(coupon_id)))
            .add(Column::IsUsed.eq(false))
            .add(Column::OrderId.is_not_null())
            .add(Column::ReservedUntil.lte(ts(now)));
        match except {
            Some(id) => c.add(Column::Id.ne(id_str(id))),
            None => c,
        }
    };
    let sum: Option<Option<Decimal>> = UserCoupons::find()
        .select_only()
        .expr_as(Func::sum(Expr::col(Column::DiscountAmount)), "expired")
        .filter(expired())
        .into_tuple()
        .one(db)
        .await
        .map_err(db_error)?;
    set_order(UserCoupons::update_many(), None, None, None).filter(expired()).exec(db).await.map_err(db_error)?;
    Ok(money(sum.flatten().unwrap_or_default()))
}

/// 쿠폰 하나의 발급 내역 집계 (CouponStats의 발급 쪽).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HolderStats {
    pub issued: i64,
    pub used: i64,
    pub reserved: i64,
    pub order_amount_total: rust_decimal::Decimal,
    pub discount_total: rust_decimal::Decimal,
    /// 만료 전 보류의 할인 합계.
    pub discount_held: rust_decimal::Decimal,
}

/// 질의 한 번으로 센다. 금액 합은 지금 사용 중인 것만 (취소하면 주문 필드가 비워지므로 빠진다).
pub async fn stats(db: &impl ConnectionTrait, coupon_id: Uuid, now: DateTime<Utc>) -> AppResult<HolderStats> {
    type Row = (i64, i64, i64, Option<rust_decimal::Decimal>, Option<rust_decimal::Decimal>, Option<rust_decimal::Decimal>);
    // CASE에 ELSE가 없으면 NULL이라 COUNT·SUM이 건너뛴다: 조건별 집계를 한 번의 훑기로.
    let used = || Expr::case(Column::IsUsed.eq(true), Expr::val(1));
    let held = live_hold;
    let row: Option<Row> = UserCoupons::find()
        .select_only()
        .expr_as(Func::count(Expr::col(Column::Id)), "issued")
        .expr_as(Func::count(used()), "used")
        .expr_as(Func::count(Expr::case(held(now), Expr::val(1))), "reserved")
        .expr_as(Func::sum(Expr::case(Column::IsUsed.eq(true), Expr::col(Column::OrderAmount))), "order_total")
        .expr_as(Func::sum(Expr::case(Column::IsUsed.eq(true), Expr::col(Column::DiscountAmount))), "discount_total")
        .expr_as(Func::sum(Expr::case(held(now), Expr::col(Column::DiscountAmount))), "discount_held")
        .filter(Column::CouponId.eq(id_str(coupon_id)))
        .into_tuple()
        .one(db)
        .await
        .map_err(db_error)?;
    let (issued, used, reserved, order, discount, discount_held) = row.unwrap_or((0, 0, 0, None, None, None));
    Ok(HolderStats {
        issued,
        used,
        reserved,
        order_amount_total: money(order.unwrap_or_default()),
        discount_total: money(discount.unwrap_or_default()),
        discount_held: money(discount_held.unwrap_or_default()),
    })
}
