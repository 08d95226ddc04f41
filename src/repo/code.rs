//! coupon_codes·code_failures 저장소: 코드 배치 삽입, 조회, 사용 수 증가, 페이지 읽기, 추측 실패 기록.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Query;
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::{DbFailure, classify, db_error, id_str, parse_id, ts, utc};
use crate::domain::Coupon;
use crate::domain::code::CouponCode;
use crate::entities::code_failure::{self, Entity as Failures};
use crate::entities::coupon_code::{self, Column, Entity as Codes};
use crate::entities::{coupon as coupons, user as users};
use crate::error::{AppError, AppResult};

fn to_domain(m: coupon_code::Model) -> AppResult<CouponCode> {
    Ok(CouponCode {
        code: m.code,
        coupon_id: parse_id(&m.coupon_id)?,
        max_redemptions: m.max_redemptions,
        redemptions: m.redemptions,
        generated: m.is_generated,
        created_at: utc(m.created_at),
    })
}

/// 새 코드들의 공통 속성.
#[derive(Clone, Copy, Debug)]
pub struct NewCodes {
    pub coupon_id: Uuid,
    pub max_redemptions: Option<i32>,
    pub generated: bool,
    pub created_at: DateTime<Utc>,
}

/// 다중 행 INSERT 하나. 이미 있는 코드와 겹치면 `Ok(false)`: 부른 쪽이 세이브포인트를 되돌리고 새 코드로 다시 한다
/// (PostgreSQL은 실패한 문장 뒤의 트랜잭션을 쓸 수 없으므로 되돌림이 필요하다).
pub async fn insert_many(db: &impl ConnectionTrait, codes: &[String], new: NewCodes) -> AppResult<bool> {
    if codes.is_empty() {
        return Ok(true);
    }
    let rows = codes.iter().map(|code| coupon_code::ActiveModel {
        code: Set(code.clone()),
        coupon_id: Set(id_str(new.coupon_id)),
        max_redemptions: Set(new.max_redemptions),
        redemptions: Set(0),
        is_generated: Set(new.generated),
        created_at: Set(ts(new.created_at)),
    });
    match Codes::insert_many(rows).exec_without_returning(db).await {
        Ok(_) => Ok(true),
        Err(e) if classify(&e) == DbFailure::Unique => Ok(false),
        Err(e) => Err(db_error(e)),
    }
}

pub async fn find(db: &impl ConnectionTrait, code: &str) -> AppResult<Option<CouponCode>> {
    Codes::find_by_id(code.to_owned()).one(db).await.map_err(db_error)?.map(to_domain).transpose()
}

/// 코드와 그 쿠폰을 문장 하나로 (코드로 발급하는 요청의 첫 읽기).
pub async fn find_with_coupon(db: &impl ConnectionTrait, code: &str) -> AppResult<Option<(CouponCode, Coupon)>> {
    let Some((c, coupon)) = Codes::find_by_id(code.to_owned()).find_also_related(coupons::Entity).one(db).await.map_err(db_error)? else {
        return Ok(None);
    };
    let coupon = coupon.ok_or_else(|| AppError::Internal(format!("코드 {}의 쿠폰이 없음", c.code)))?;
    Ok(Some((to_domain(c)?, super::coupon::to_domain(coupon)?)))
}

/// 사용자가 있는지와 `since` 뒤의 추측 실패 수를 문장 하나로. 사용자가 없으면 `None`.
pub async fn user_failures(db: &impl ConnectionTrait, user_id: Uuid, since: DateTime<Utc>) -> AppResult<Option<u64>> {
    let failures = Query::select()
        .expr(Func::count(Expr::col(code_failure::Column::Id)))
        .from(Failures)
        .and_where(code_failure::Column::UserId.eq(id_str(user_id)))
        .and_where(code_failure::Column::FailedAt.gt(ts(since)))
        .to_owned();
    let row: Option<(String, i64)> = users::Entity::find()
        .select_only()
        .column(users::Column::Id)
        .expr_as(Expr::SubQuery(None, Box::new(failures.into())), "failures")
        .filter(users::Column::Id.eq(id_str(user_id)))
        .into_tuple()
        .one(db)
        .await
        .map_err(db_error)?;
    Ok(row.map(|(_, n)| u64::try_from(n).unwrap_or(0)))
}

/// 여러 코드를 한 번에 (배치 발급이 잠금 안에서 사용 수를 읽는다).
pub async fn find_many(db: &impl ConnectionTrait, codes: &[&str]) -> AppResult<HashMap<String, CouponCode>> {
    if codes.is_empty() {
        return Ok(HashMap::new());
    }
    let list: Vec<String> = codes.iter().map(|c| (*c).to_owned()).collect();
    Codes::find()
        .filter(Column::Code.is_in(list))
        .all(db)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(|m| to_domain(m).map(|c| (c.code.clone(), c)))
        .collect()
}

/// 사용 수를 `by`만큼 올린다. 코드의 쿠폰 행 잠금을 쥔 트랜잭션 안에서만 부른다 (그 잠금이 코드의 사용도 직렬화한다).
pub async fn add_redemptions(db: &impl ConnectionTrait, code: &str, by: i32) -> AppResult<()> {
    let res = Codes::update_many()
        .col_expr(Column::Redemptions, Expr::col(Column::Redemptions).add(by))
        .filter(Column::Code.eq(code))
        .exec(db)
        .await
        .map_err(db_error)?;
    if res.rows_affected != 1 {
        return Err(AppError::Internal(format!("코드 사용 수 갱신 대상 행이 {}개", res.rows_affected)));
    }
    Ok(())
}

/// 코드 키셋: (생성 시각, 코드).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeKeyset {
    pub created_at: DateTime<Utc>,
    pub code: String,
}

/// 쿠폰의 코드 한 페이지, 최신순 (GraphQL 목록). `redeemed`: Some(true)는 한 번이라도 쓰인 것, Some(false)는 안 쓰인 것만.
pub async fn page(
    db: &impl ConnectionTrait,
    coupon_id: Uuid,
    redeemed: Option<bool>,
    after: Option<&CodeKeyset>,
    limit: u64,
) -> AppResult<Vec<CouponCode>> {
    let mut q = Codes::find().filter(Column::CouponId.eq(id_str(coupon_id)));
    match redeemed {
        Some(true) => q = q.filter(Column::Redemptions.gt(0)),
        Some(false) => q = q.filter(Column::Redemptions.eq(0)),
        None => {}
    }
    super::newest_first(q, Column::CreatedAt, Column::Code, after.map(|k| (k.created_at, k.code.clone())), limit)
        .all(db)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(to_domain)
        .collect()
}

/// 내보내기용 한 페이지: 코드 순서, `after` 코드 다음부터. (coupon_id, code) 인덱스의 범위 읽기 하나라서
/// 한 배치(같은 생성 시각)의 코드가 10만 개여도 페이지마다 앞에서부터 다시 훑지 않는다.
pub async fn export_page(db: &impl ConnectionTrait, coupon_id: Uuid, after: Option<&str>, limit: u64) -> AppResult<Vec<CouponCode>> {
    let mut q = Codes::find().filter(Column::CouponId.eq(id_str(coupon_id)));
    if let Some(code) = after {
        q = q.filter(Column::Code.gt(code));
    }
    q.order_by_asc(Column::Code).limit(limit).all(db).await.map_err(db_error)?.into_iter().map(to_domain).collect()
}

/// 쿠폰의 코드 통계: (생성된 코드 수, 코드로 발급한 총 횟수).
pub async fn counts(db: &impl ConnectionTrait, coupon_id: Uuid) -> AppResult<(i64, i64)> {
    // 정수 합의 타입이 백엔드마다 달라서(MySQL은 DECIMAL) BIGINT로 맞춘다.
    let bigint = if db.get_database_backend() == DatabaseBackend::MySql { "SIGNED" } else { "BIGINT" };
    let row: Option<(i64, i64)> = Codes::find()
        .select_only()
        .expr_as(Func::count(Expr::case(Column::IsGenerated.eq(true), Expr::val(1))), "generated")
        .expr_as(Expr::cust(format!("CAST(COALESCE(SUM(redemptions), 0) AS {bigint})")), "redeemed")
        .filter(Column::CouponId.eq(id_str(coupon_id)))
        .into_tuple()
        .one(db)
        .await
        .map_err(db_error)?;
    Ok(row.unwrap_or((0, 0)))
}

/// 모르는 코드를 댄 시도 하나를 남긴다.
pub async fn record_failure(db: &impl ConnectionTrait, user_id: Uuid, at: DateTime<Utc>) -> AppResult<()> {
    let row = code_failure::ActiveModel { id: Set(id_str(Uuid::new_v4())), user_id: Set(id_str(user_id)), failed_at: Set(ts(at)) };
    Failures::insert(row).exec_without_returning(db).await.map_err(db_error)?;
    Ok(())
}

/// 성공한 시도는 연속 실패를 끊는다 ("마지막 10번이 모두 모르는 코드"일 때만 막는다).
pub async fn clear_failures(db: &impl ConnectionTrait, user_id: Uuid) -> AppResult<()> {
    Failures::delete_many().filter(code_failure::Column::UserId.eq(id_str(user_id))).exec(db).await.map_err(db_error)?;
    Ok(())
}

/// 창 밖으로 나간 실패 기록을 지운다 (주기 작업).
pub async fn purge_failures(db: &impl ConnectionTrait, before: DateTime<Utc>) -> AppResult<u64> {
    let res = Failures::delete_many().filter(code_failure::Column::FailedAt.lt(ts(before))).exec(db).await.map_err(db_error)?;
    Ok(res.rows_affected)
}
