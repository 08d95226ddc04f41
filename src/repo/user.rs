//! users 저장소.
use std::collections::HashSet;

use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::{db_error, id_str, parse_id, ts, utc};
use crate::domain::{Coupon, User, UserCoupon};
use crate::entities::user::{self, Entity as Users};
use crate::entities::{coupon, user_coupon};
use crate::error::{AppError, AppResult};

fn to_domain(m: user::Model) -> AppResult<User> {
    Ok(User { id: parse_id(&m.id)?, email: m.email, name: m.name, created_at: utc(m.created_at), updated_at: utc(m.updated_at) })
}

pub async fn find_by_id(db: &impl ConnectionTrait, id: Uuid) -> AppResult<Option<User>> {
    Users::find_by_id(id_str(id)).one(db).await.map_err(db_error)?.map(to_domain).transpose()
}

/// 사용자와 그 발급 내역 전부를 쿠폰과 함께 문장 하나로 (users ⟕ user_coupons ⟕ coupons), 최신순.
/// `me { coupons }`의 읽기: 사용자 읽기와 내역 읽기, 두 번의 왕복을 하나로 줄인다. 없는 사용자는 None.
pub async fn find_with_coupons(db: &impl ConnectionTrait, id: Uuid) -> AppResult<Option<(User, Vec<(UserCoupon, Coupon)>)>> {
    let rows = Users::find_by_id(id_str(id))
        .find_also_related(user_coupon::Entity)
        .and_also_related(coupon::Entity)
        .order_by_desc(user_coupon::Column::IssuedAt)
        .order_by_desc(user_coupon::Column::Id)
        .all(db)
        .await
        .map_err(db_error)?;
    let Some((first, _, _)) = rows.first() else { return Ok(None) };
    let user = to_domain(first.clone())?;
    let mut list = Vec::with_capacity(rows.len());
    for (_, uc, c) in rows {
        match (uc, c) {
            (Some(uc), Some(c)) => list.push((super::user_coupon::to_domain(uc)?, super::coupon::to_domain(c)?)),
            (Some(uc), None) => return Err(AppError::Internal(format!("발급 내역 {}의 쿠폰이 없음", uc.id))),
            // 발급 내역이 없는 사용자: LEFT JOIN의 빈 행 하나.
            (None, _) => {}
        }
    }
    Ok(Some((user, list)))
}

/// 여러 사용자를 한 번에 (DataLoader·`users(ids)`용). 순서는 보장하지 않는다.
pub async fn find_many(db: &impl ConnectionTrait, ids: &[Uuid]) -> AppResult<Vec<User>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = ids.iter().copied().map(id_str).collect();
    Users::find().filter(user::Column::Id.is_in(ids)).all(db).await.map_err(db_error)?.into_iter().map(to_domain).collect()
}

/// 주어진 id 가운데 있는 사용자.
pub async fn existing(db: &impl ConnectionTrait, ids: &[Uuid]) -> AppResult<HashSet<Uuid>> {
    super::collect_ids(db, ids, |list| Users::find().select_only().column(user::Column::Id).filter(user::Column::Id.is_in(list))).await
}

pub async fn exists(db: &impl ConnectionTrait, id: Uuid) -> AppResult<bool> {
    let n = Users::find().filter(user::Column::Id.eq(id_str(id))).count(db).await.map_err(db_error)?;
    Ok(n > 0)
}

pub async fn insert(db: &impl ConnectionTrait, u: &User) -> AppResult<()> {
    let am = user::ActiveModel {
        id: Set(id_str(u.id)),
        email: Set(u.email.clone()),
        name: Set(u.name.clone()),
        created_at: Set(ts(u.created_at)),
        updated_at: Set(ts(u.updated_at)),
    };
    Users::insert(am).exec_without_returning(db).await.map_err(db_error)?;
    Ok(())
}
