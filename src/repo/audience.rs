//! coupon_audiences 저장소: 제한된 쿠폰의 회원.
use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::{IN_LIST, collect_ids, db_error, id_str, ts};
use crate::entities::coupon_audience::{self, Column, Entity as Audiences};
use crate::error::AppResult;

/// 이 사용자가 이 쿠폰의 회원인지 (기본 키 조회 하나).
pub async fn is_member(db: &impl ConnectionTrait, coupon_id: Uuid, user_id: Uuid) -> AppResult<bool> {
    let n = Audiences::find()
        .filter(Column::CouponId.eq(id_str(coupon_id)))
        .filter(Column::UserId.eq(id_str(user_id)))
        .count(db)
        .await
        .map_err(db_error)?;
    Ok(n > 0)
}

/// 주어진 사용자 가운데 이 쿠폰의 회원.
pub async fn members_among(db: &impl ConnectionTrait, coupon_id: Uuid, users: &[Uuid]) -> AppResult<HashSet<Uuid>> {
    collect_ids(db, users, |ids| {
        Audiences::find()
            .select_only()
            .column(Column::UserId)
            .filter(Column::CouponId.eq(id_str(coupon_id)))
            .filter(Column::UserId.is_in(ids))
    })
    .await
}

/// 회원으로 넣는다. 아직 회원이 아닌 있는 사용자만 넘긴다 (쿠폰 행 잠금 아래에서 골랐다).
pub async fn add(db: &impl ConnectionTrait, coupon_id: Uuid, users: &[Uuid], now: DateTime<Utc>) -> AppResult<()> {
    for chunk in users.chunks(IN_LIST) {
        let rows = chunk.iter().map(|u| coupon_audience::ActiveModel {
            coupon_id: Set(id_str(coupon_id)),
            user_id: Set(id_str(*u)),
            added_at: Set(ts(now)),
        });
        Audiences::insert_many(rows).exec_without_returning(db).await.map_err(db_error)?;
    }
    Ok(())
}

/// 회원에서 뺀다. 뺀 수.
pub async fn remove(db: &impl ConnectionTrait, coupon_id: Uuid, users: &[Uuid]) -> AppResult<u64> {
    let mut removed = 0;
    for chunk in users.chunks(IN_LIST) {
        let ids: Vec<String> = chunk.iter().copied().map(id_str).collect();
        let res = Audiences::delete_many()
            .filter(Column::CouponId.eq(id_str(coupon_id)))
            .filter(Column::UserId.is_in(ids))
            .exec(db)
            .await
            .map_err(db_error)?;
        removed += res.rows_affected;
    }
    Ok(removed)
}

/// 회원 수.
pub async fn size(db: &impl ConnectionTrait, coupon_id: Uuid) -> AppResult<u64> {
    Audiences::find().filter(Column::CouponId.eq(id_str(coupon_id))).count(db).await.map_err(db_error)
}
