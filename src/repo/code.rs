//! coupon_codes·code_failures·code_guards 저장소: 코드 배치 삽입, 조회, 사용 수 증가, 페이지 읽기, 추측 실패 기록과 그 잠금.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, OnConflict, Query, SelectStatement, SimpleExpr};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::{DbFailure, classify, db_error, id_str, parse_id, ts, utc};
use crate::domain::Coupon;
use crate::domain::code::{CouponCode, FailureWindow};
use crate::entities::code_failure::{self, Entity as Failures};
use crate::entities::code_guard::{self, Entity as Guards};
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

/// 한 주체(사용자 id 또는 주소 열)의 `since` 뒤 실패에 대한 스칼라 부분 질의 (수 또는 가장 오래된 시각).
/// (user_id, failed_at)·(addr, failed_at) 인덱스의 좁은 범위 읽기다.
fn failures_of(col: code_failure::Column, value: String, since: DateTime<Utc>, what: SimpleExpr) -> SimpleExpr {
    let q: SelectStatement = Query::select()
        .expr(what)
        .from(Failures)
        .and_where(col.eq(value))
        .and_where(code_failure::Column::FailedAt.gt(ts(since)))
        .to_owned();
    Expr::SubQuery(None, Box::new(q.into()))
}

fn count_of(col: code_failure::Column, value: String, since: DateTime<Utc>) -> SimpleExpr {
    failures_of(col, value, since, Func::count(Expr::col(code_failure::Column::Id)).into())
}

fn oldest_of(col: code_failure::Column, value: String, since: DateTime<Utc>) -> SimpleExpr {
    failures_of(col, value, since, Func::min(Expr::col(code_failure::Column::FailedAt)).into())
}

/// 사용자가 있는지와, 그 사용자와 주소의 `since` 뒤 추측 실패 수를 문장 하나로 (코드로 발급하는 요청의 첫 읽기).
/// 사용자가 없으면 `None`. 읽기만 한다: 성공하는 발급은 여러 사용자나 주소가 함께 쓰는 행을 건드리지 않는다.
pub async fn guesses(db: &impl ConnectionTrait, user_id: Uuid, addr: &str, since: DateTime<Utc>) -> AppResult<Option<(u64, u64)>> {
    let row: Option<(String, i64, i64)> = users::Entity::find()
        .select_only()
        .column(users::Column::Id)
        .expr_as(count_of(code_failure::Column::UserId, id_str(user_id), since), "user_failures")
        .expr_as(count_of(code_failure::Column::Addr, addr.to_owned(), since), "addr_failures")
        .filter(users::Column::Id.eq(id_str(user_id)))
        .into_tuple()
        .one(db)
        .await
        .map_err(db_error)?;
    Ok(row.map(|(_, u, a)| (u64::try_from(u).unwrap_or(0), u64::try_from(a).unwrap_or(0))))
}

/// 사용자와 주소의 `since` 뒤 실패: 수와 가장 오래된 시각, 문장 하나로. 잠금을 쥔 트랜잭션에서 세거나, 막힌 요청에 남은 시간을 알릴 때.
pub async fn windows(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    addr: &str,
    since: DateTime<Utc>,
) -> AppResult<(FailureWindow, FailureWindow)> {
    let (user, addr) = (id_str(user_id), addr.to_owned());
    let q = Query::select()
        .expr_as(count_of(code_failure::Column::UserId, user.clone(), since), Alias::new("user_failures"))
        .expr_as(oldest_of(code_failure::Column::UserId, user, since), Alias::new("user_oldest"))
        .expr_as(count_of(code_failure::Column::Addr, addr.clone(), since), Alias::new("addr_failures"))
        .expr_as(oldest_of(code_failure::Column::Addr, addr, since), Alias::new("addr_oldest"))
        .to_owned();
    let row = db.query_one(&q).await.map_err(db_error)?.ok_or_else(|| AppError::Internal("실패 창 읽기가 행을 돌려주지 않음".into()))?;
    let window = |count: usize, oldest: usize| -> AppResult<FailureWindow> {
        let n: i64 = row.try_get_by_index(count).map_err(db_error)?;
        let at: Option<sea_orm::prelude::DateTimeWithTimeZone> = row.try_get_by_index(oldest).map_err(db_error)?;
        Ok(FailureWindow { count: u64::try_from(n).unwrap_or(0), oldest: at.map(utc) })
    };
    Ok((window(0, 1)?, window(2, 3)?))
}

/// 실패를 세기 전에 주체들의 가드 행을 쓰고 잠근다 (없으면 만든다). 같은 주체의 실패를 세는 트랜잭션들이 여기서 한 줄로 선다.
/// 읽기 잠금(FOR UPDATE)이 아니라 쓰기인 까닭: Galera에서 행 잠금은 노드 안에서만 통하지만, 쓰기는 커밋 때 인증에서
/// 다른 노드의 같은 행 쓰기와 부딪혀 한쪽이 버려진다(1213, 다시 돈다). SQLite에서는 첫 문장이 쓰기라 바로 쓰기 잠금을 잡는다.
/// 주체는 정렬해서 한 문장에 넣는다: 모든 트랜잭션이 같은 순서(주소 → 사용자)로 잠가 서로 물고 늘어지지 않는다.
pub async fn lock_guards(db: &impl ConnectionTrait, user_id: Option<Uuid>, addr: &str, now: DateTime<Utc>) -> AppResult<()> {
    let mut subjects = vec![format!("a:{addr}")];
    subjects.extend(user_id.map(|u| format!("u:{}", id_str(u))));
    subjects.sort_unstable();
    let rows = subjects.into_iter().map(|s| code_guard::ActiveModel { subject: Set(s), touched_at: Set(ts(now)) });
    Guards::insert_many(rows)
        .on_conflict(OnConflict::column(code_guard::Column::Subject).update_column(code_guard::Column::TouchedAt).to_owned())
        .exec_without_returning(db)
        .await
        .map_err(db_error)?;
    Ok(())
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
    super::exactly_one(res, "코드 사용 수")
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
    super::newest_first(db, q, (Column::CreatedAt, Column::Code), after.map(|k| (k.created_at, k.code.clone())), limit, to_domain).await
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

/// 센 시도 하나를 남긴다: 모르는 코드, 또는 없는 사용자의 시도 (그때 `user_id`는 토큰의 id이고 주소 쪽으로만 센다).
pub async fn record_failure(db: &impl ConnectionTrait, user_id: Uuid, addr: &str, at: DateTime<Utc>) -> AppResult<()> {
    let row = code_failure::ActiveModel {
        id: Set(id_str(Uuid::new_v4())),
        user_id: Set(id_str(user_id)),
        addr: Set(addr.to_owned()),
        failed_at: Set(ts(at)),
    };
    Failures::insert(row).exec_without_returning(db).await.map_err(db_error)?;
    Ok(())
}

/// 창 밖으로 나간 실패 기록과, 그동안 실패가 없던 주체의 가드 행을 지운다 (주기 작업). 지운 실패 기록 수.
/// 가드 행을 쥔 트랜잭션이 있으면 그 행은 기다렸다가 새 시각을 보고 남긴다; 지워진 주체는 다음 실패 때 다시 만들어진다.
pub async fn purge_failures(db: &impl ConnectionTrait, before: DateTime<Utc>) -> AppResult<u64> {
    let res = Failures::delete_many().filter(code_failure::Column::FailedAt.lt(ts(before))).exec(db).await.map_err(db_error)?;
    Guards::delete_many().filter(code_guard::Column::TouchedAt.lt(ts(before))).exec(db).await.map_err(db_error)?;
    Ok(res.rows_affected)
}
