//! coupons 저장소: 조회, 키셋 페이지네이션, 생성, 행 잠금, 발급 수량 증가.
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::{db_error, id_str, parse_id, ts, utc};
use crate::domain::money::money;
use crate::domain::{Coupon, CouponStatus, DiscountType, NewCoupon, Stacking, wave};
use crate::entities::coupon::{self, Column, Entity as Coupons};
use crate::entities::coupon_audience;
use crate::error::{AppError, AppResult};

pub(crate) fn to_domain(m: coupon::Model) -> AppResult<Coupon> {
    let discount_type = DiscountType::parse(&m.discount_type)
        .ok_or_else(|| AppError::Internal(format!("알 수 없는 discount_type: {:?}", m.discount_type)))?;
    let status = CouponStatus::parse(&m.status).ok_or_else(|| AppError::Internal(format!("알 수 없는 status: {:?}", m.status)))?;
    Ok(Coupon {
        id: parse_id(&m.id)?,
        name: m.name,
        discount_type,
        discount_value: money(m.discount_value),
        min_purchase_amount: m.min_purchase_amount.map(money),
        max_discount_amount: m.max_discount_amount.map(money),
        total_quantity: m.total_quantity,
        issued_quantity: m.issued_quantity,
        valid_from: utc(m.valid_from),
        valid_until: utc(m.valid_until),
        created_at: utc(m.created_at),
        updated_at: utc(m.updated_at),
        status,
        version: m.version,
        per_user_limit: m.per_user_limit,
        restricted: m.restricted,
        waves: wave::from_stored(m.waves.as_deref())?,
        budget: m.budget.map(money),
        budget_spent: money(m.budget_spent),
        stacking: Stacking::parse(&m.stacking).ok_or_else(|| AppError::Internal(format!("쿠폰 {}의 stacking 값: {}", m.id, m.stacking)))?,
    })
}

pub async fn find_by_id(db: &impl ConnectionTrait, id: Uuid) -> AppResult<Option<Coupon>> {
    Coupons::find_by_id(id_str(id)).one(db).await.map_err(db_error)?.map(to_domain).transpose()
}

/// `SELECT … FOR UPDATE`: 트랜잭션 안에서만 부른다. 같은 쿠폰의 발급을 직렬화하는 지점.
/// (SQLite에는 행 잠금이 없어 잠금절이 빠지지만, 풀이 커넥션 1개라 쓰기가 이미 직렬화된다.)
pub async fn find_for_update(db: &impl ConnectionTrait, id: Uuid) -> AppResult<Option<Coupon>> {
    Coupons::find_by_id(id_str(id)).lock_exclusive().one(db).await.map_err(db_error)?.map(to_domain).transpose()
}

pub async fn find_many(db: &impl ConnectionTrait, ids: &[Uuid]) -> AppResult<Vec<Coupon>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = ids.iter().copied().map(id_str).collect();
    Coupons::find().filter(Column::Id.is_in(ids)).all(db).await.map_err(db_error)?.into_iter().map(to_domain).collect()
}

/// 키셋 커서: 정렬 키 (created_at, id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keyset {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

/// 최신순 목록. `after` 다음부터 `limit`개. `available_at`이 있으면 그 시각에 발급 가능한 것만,
/// `include_archived`가 아니면 보관된 것은 뺀다.
/// 정렬 키가 생성 시각과 id라서 새 쿠폰이 끼어들어도 이미 받은 커서 뒤의 순서는 바뀌지 않는다.
/// `availableOnly`의 조건: 지금 시각과 보는 사람 (제한된 쿠폰은 그 대상 고객에게만 보인다; 익명에게는 안 보인다).
#[derive(Clone, Copy, Debug)]
pub struct Available {
    pub now: DateTime<Utc>,
    pub viewer: Option<Uuid>,
}

pub async fn list(
    db: &impl ConnectionTrait,
    available: Option<Available>,
    include_archived: bool,
    after: Option<Keyset>,
    limit: u64,
) -> AppResult<Vec<Coupon>> {
    let mut q = Coupons::find();
    let Some(a) = available else {
        if !include_archived {
            q = q.filter(Column::Status.ne(CouponStatus::Archived.as_str()));
        }
        return super::newest_first(db, q, (Column::CreatedAt, Column::Id), after.map(|k| (k.created_at, id_str(k.id))), limit, to_domain)
            .await;
    };
    q = q.filter(available_condition(a.now)).filter(visible_to(a.viewer));
    // 웨이브 사이에 풀린 재고가 다 나간 쿠폰은 SQL이 모른다 (일정은 JSON): 읽은 뒤 걸러내고, 모자라면 다음 쪽을 더 읽는다.
    // 그런 쿠폰은 드물어서 대개 질의 하나로 끝난다.
    let mut found = Vec::new();
    let mut from = after.map(|k| (k.created_at, id_str(k.id)));
    loop {
        let rows = super::newest_first(db, q.clone(), (Column::CreatedAt, Column::Id), from, limit, to_domain).await?;
        let exhausted = (rows.len() as u64) < limit;
        from = rows.last().map(|c| (c.created_at, id_str(c.id)));
        found.extend(rows.into_iter().filter(|c| c.is_available(a.now)));
        if exhausted || found.len() as u64 >= limit || from.is_none() {
            found.truncate(limit as usize);
            return Ok(found);
        }
    }
}

/// 제한 없는 쿠폰, 또는 보는 사람이 회원인 쿠폰. 회원 쿠폰은 (user_id, coupon_id) 색인의 하위 질의 하나로 고른다 (N+1 없이).
fn visible_to(viewer: Option<Uuid>) -> Condition {
    let open = Condition::any().add(Column::Restricted.eq(false));
    match viewer {
        None => open,
        Some(user) => open.add(
            Column::Id.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(coupon_audience::Column::CouponId)
                    .from(coupon_audience::Entity)
                    .and_where(coupon_audience::Column::UserId.eq(id_str(user)))
                    .to_owned(),
            ),
        ),
    }
}

/// 발급 중이고 지금 유효기간 안이고 소진되지 않은 쿠폰 (설계서의 "발급 가능 쿠폰 조회").
fn available_condition(now: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(Column::Status.eq(CouponStatus::Active.as_str()))
        .add(Column::ValidFrom.lte(ts(now)))
        .add(Column::ValidUntil.gte(ts(now)))
        .add(
            Condition::any()
                .add(Column::TotalQuantity.is_null())
                .add(Expr::col(Column::IssuedQuantity).lt(Expr::col(Column::TotalQuantity))),
        )
}

pub async fn insert(db: &impl ConnectionTrait, id: Uuid, c: &NewCoupon, now: DateTime<Utc>) -> AppResult<Coupon> {
    insert_with_issued(db, id, c, 0, now).await
}

/// 발급 수량을 지정해 넣는다 (데모 데이터처럼 발급 내역과 함께 넣을 때).
pub async fn insert_with_issued(
    db: &impl ConnectionTrait,
    id: Uuid,
    c: &NewCoupon,
    issued_quantity: i32,
    now: DateTime<Utc>,
) -> AppResult<Coupon> {
    let am = coupon::ActiveModel {
        id: Set(id_str(id)),
        name: Set(c.name.clone()),
        discount_type: Set(c.discount_type.as_str().to_owned()),
        discount_value: Set(c.discount_value),
        min_purchase_amount: Set(c.min_purchase_amount),
        max_discount_amount: Set(c.max_discount_amount),
        total_quantity: Set(c.total_quantity),
        issued_quantity: Set(issued_quantity),
        valid_from: Set(ts(c.valid_from)),
        valid_until: Set(ts(c.valid_until)),
        created_at: Set(ts(now)),
        updated_at: Set(ts(now)),
        status: Set(CouponStatus::Active.as_str().to_owned()),
        version: Set(0),
        per_user_limit: Set(c.per_user_limit),
        restricted: Set(c.restricted),
        waves: Set(wave::to_stored(&c.waves)),
        budget: Set(c.budget),
        budget_spent: Set(rust_decimal::Decimal::ZERO),
        stacking: Set(c.stacking.as_str().to_owned()),
    };
    Coupons::insert(am).exec_without_returning(db).await.map_err(db_error)?;
    Ok(Coupon {
        id,
        name: c.name.clone(),
        discount_type: c.discount_type,
        discount_value: money(c.discount_value),
        min_purchase_amount: c.min_purchase_amount.map(money),
        max_discount_amount: c.max_discount_amount.map(money),
        total_quantity: c.total_quantity,
        issued_quantity,
        valid_from: c.valid_from,
        valid_until: c.valid_until,
        created_at: now,
        updated_at: now,
        status: CouponStatus::Active,
        version: 0,
        per_user_limit: c.per_user_limit,
        restricted: c.restricted,
        waves: c.waves.clone(),
        budget: c.budget.map(money),
        budget_spent: money(rust_decimal::Decimal::ZERO),
        stacking: c.stacking,
    })
}

/// 발급 수량을 `by`만큼 올린다. 잠금 아래에서 `read`를 읽은 트랜잭션 안에서만 부른다.
/// 그 뒤 행이 바뀌었으면(버전이 다르면) 아무것도 쓰지 않고 false: 한 서버에서는 잠금 때문에 일어나지 않지만,
/// Galera에서는 다른 노드의 커밋이 잠금 읽기 뒤에야 보일 수 있다 (CI에서 100장에 117장). 읽은 재고·상태로 당첨을
/// 정했으니, 그것이 그대로일 때만 쓴다.
pub async fn increment_issued(db: &impl ConnectionTrait, read: &Coupon, by: i32, now: DateTime<Utc>) -> AppResult<bool> {
    let res = Coupons::update_many()
        .col_expr(Column::IssuedQuantity, Expr::col(Column::IssuedQuantity).add(by))
        .col_expr(Column::UpdatedAt, Expr::val(ts(now)))
        .col_expr(Column::Version, Expr::col(Column::Version).add(1))
        .filter(Column::Id.eq(id_str(read.id)))
        .filter(Column::Version.eq(read.version))
        .exec(db)
        .await
        .map_err(db_error)?;
    unchanged_since_read(res, "발급 수량")
}

/// 수정할 수 있는 필드를 `next`의 값으로 쓴다. `next`는 잠금 아래에서 읽은 행에서 만든 것이고 (`next.version`이 읽은
/// 버전), 그 뒤 행이 바뀌었으면 쓰지 않고 false: 낡은 읽기로 총수량을 발급 수량 밑으로 내리거나 다른 변경을 덮지 않게.
pub async fn update(db: &impl ConnectionTrait, next: &Coupon) -> AppResult<bool> {
    let res = Coupons::update_many()
        .col_expr(Column::Name, Expr::val(next.name.clone()))
        .col_expr(Column::MinPurchaseAmount, Expr::val(next.min_purchase_amount))
        .col_expr(Column::MaxDiscountAmount, Expr::val(next.max_discount_amount))
        .col_expr(Column::TotalQuantity, Expr::val(next.total_quantity))
        .col_expr(Column::ValidFrom, Expr::val(ts(next.valid_from)))
        .col_expr(Column::ValidUntil, Expr::val(ts(next.valid_until)))
        .col_expr(Column::Status, Expr::val(next.status.as_str()))
        .col_expr(Column::PerUserLimit, Expr::val(next.per_user_limit))
        .col_expr(Column::Restricted, Expr::val(next.restricted))
        .col_expr(Column::Stacking, Expr::val(next.stacking.as_str()))
        .col_expr(Column::Waves, Expr::val(wave::to_stored(&next.waves)))
        .col_expr(Column::Budget, Expr::val(next.budget))
        .col_expr(Column::BudgetSpent, Expr::val(next.budget_spent))
        .col_expr(Column::UpdatedAt, Expr::val(ts(next.updated_at)))
        .col_expr(Column::Version, Expr::col(Column::Version).add(1))
        .filter(Column::Id.eq(id_str(next.id)))
        .filter(Column::Version.eq(next.version))
        .exec(db)
        .await
        .map_err(db_error)?;
    unchanged_since_read(res, "쿠폰")
}

/// 행의 다른 값은 그대로 두고 버전만 올린다 (읽은 버전일 때만): 쿠폰 행 밖의 발급 조건(대상 고객)을 바꾸는 쓰기가,
/// 그 조건을 낡게 읽은 다른 노드의 발급과 부딪히게 한다 (발급의 `increment_issued`가 버전을 본다).
pub async fn bump_version(db: &impl ConnectionTrait, read: &Coupon) -> AppResult<bool> {
    let res = Coupons::update_many()
        .col_expr(Column::Version, Expr::col(Column::Version).add(1))
        .filter(Column::Id.eq(id_str(read.id)))
        .filter(Column::Version.eq(read.version))
        .exec(db)
        .await
        .map_err(db_error)?;
    unchanged_since_read(res, "쿠폰 버전")
}

/// 예산에서 나간 돈을 `back`만큼 돌려받고 `delta`만큼 옮긴다, 예산 안에 들 때만 (늘어날 때), 문장 하나로: 판단과 쓰기가
/// 같은 행 버전 위에서 일어나므로 먼저 읽을 것이 없고, 행 잠금은 이 문장부터 커밋까지만 잡힌다. 예산이 없거나 들지 않으면
/// 아무것도 쓰지 않고 false. 버전도 올린다 (쿠폰 행의 모든 쓰기처럼).
pub async fn move_budget(
    db: &impl ConnectionTrait,
    coupon_id: Uuid,
    back: rust_decimal::Decimal,
    delta: rust_decimal::Decimal,
) -> AppResult<bool> {
    let next = Expr::col(Column::BudgetSpent).sub(back).add(delta);
    let mut q = Coupons::update_many()
        .col_expr(Column::BudgetSpent, next.clone())
        .col_expr(Column::Version, Expr::col(Column::Version).add(1))
        .filter(Column::Id.eq(id_str(coupon_id)))
        .filter(Column::Budget.is_not_null());
    if delta > back {
        q = q.filter(next.lte(Expr::col(Column::Budget)));
    }
    let res = q.exec(db).await.map_err(db_error)?;
    Ok(res.rows_affected == 1)
}

/// 버전을 조건으로 건 쓰기의 결과: 1행이면 그대로였고(true), 0행이면 읽은 뒤 바뀌었다(false).
fn unchanged_since_read(res: sea_orm::UpdateResult, what: &str) -> AppResult<bool> {
    match res.rows_affected {
        1 => Ok(true),
        0 => Ok(false),
        n => Err(AppError::Internal(format!("{what} 갱신 대상 행이 {n}개"))),
    }
}
