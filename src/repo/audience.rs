//! coupon_audiences 저장소: 제한된 쿠폰의 회원.
use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, JoinType, Query};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::{IN_LIST, collect_ids, db_error, id_str, ts};
use crate::entities::coupon_audience::{Column, Entity as Audiences};
use crate::entities::user::{self, Entity as Users};
use crate::error::{AppError, AppResult};

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

/// 주어진 id 가운데 있는 사용자이면서 아직 회원이 아닌 사람을 넣고 넣은 수를 돌려준다. 조각마다 문장 하나:
/// `INSERT … SELECT id FROM users LEFT JOIN (회원) WHERE id IN (…) AND 회원 IS NULL`. 충돌을 무시하는 INSERT가 아니라 충돌할 행을
/// 고르지 않는 INSERT이므로, 넣은 수(rows_affected)가 모든 백엔드에서 같은 뜻이다 (MySQL의 FOUND_ROWS와 상관없다).
/// 쿠폰 행 잠금 아래에서만 부른다: 고른 뒤 넣기 전에 끼어드는 회원이 없다.
pub async fn add_missing(db: &impl ConnectionTrait, coupon_id: Uuid, users: &[Uuid], now: DateTime<Utc>) -> AppResult<u64> {
    let mut added = 0;
    for chunk in users.chunks(IN_LIST) {
        let ids: Vec<String> = chunk.iter().copied().map(id_str).collect();
        // 회원이 아닌 사람: LEFT JOIN으로 (쿠폰, 사용자) 기본 키를 한 번씩 찾는다. `NOT EXISTS`는 MariaDB가 그 쿠폰의
        // 회원 전부를 구체화(materialize)해 조각마다 되풀이하므로 (가져오기가 클수록 조각마다 느려진다) 쓰지 않는다.
        let member = Alias::new("m");
        let pick = Query::select()
            .expr(Expr::val(id_str(coupon_id)))
            .column((Users, user::Column::Id))
            .expr(Expr::val(ts(now)))
            .from(Users)
            .join_as(
                JoinType::LeftJoin,
                Audiences,
                member.clone(),
                Condition::all()
                    .add(Expr::col((member.clone(), Column::CouponId)).eq(id_str(coupon_id)))
                    .add(Expr::col((member.clone(), Column::UserId)).equals((Users, user::Column::Id))),
            )
            .and_where(Expr::col((Users, user::Column::Id)).is_in(ids))
            .and_where(Expr::col((member, Column::UserId)).is_null())
            .to_owned();
        let insert = Query::insert()
            .into_table(Audiences)
            .columns([Column::CouponId, Column::UserId, Column::AddedAt])
            .select_from(pick)
            .map_err(|e| AppError::Internal(format!("회원 넣기 문장: {e}")))?
            .to_owned();
        added += db.execute(&insert).await.map_err(db_error)?.rows_affected();
    }
    Ok(added)
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
