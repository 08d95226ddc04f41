//! 사용자 조회.
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::domain::{Coupon, User, UserCoupon, Viewer};
use crate::error::{AppError, AppResult};
use crate::repo;

/// `users(ids)`의 상한.
pub const MAX_IDS: usize = 100;

/// `me`: 토큰은 유효하지만 사용자가 없으면 USER_NOT_FOUND.
pub async fn me(db: &DatabaseConnection, viewer: Option<&Viewer>) -> AppResult<User> {
    let viewer = Viewer::require(viewer)?;
    repo::user::find_by_id(db, viewer.user_id).await?.ok_or(AppError::UserNotFound)
}

/// `me`와 그 발급 내역(쿠폰과 함께)을 한 번에. `unused_only`면 미사용만 남긴다 (순서는 최신순 그대로).
pub async fn me_with_coupons(
    db: &DatabaseConnection,
    viewer: Option<&Viewer>,
    unused_only: bool,
) -> AppResult<(User, Vec<(UserCoupon, Coupon)>)> {
    let viewer = Viewer::require(viewer)?;
    let (user, mut list) = repo::user::find_with_coupons(db, viewer.user_id).await?.ok_or(AppError::UserNotFound)?;
    if unused_only {
        list.retain(|(uc, _)| !uc.is_used);
    }
    Ok((user, list))
}

/// `user(id)`: 본인 또는 관리자. 없으면 None.
pub async fn get(db: &DatabaseConnection, viewer: Option<&Viewer>, id: Uuid) -> AppResult<Option<User>> {
    let id = Viewer::act_for(viewer, Some(id))?;
    repo::user::find_by_id(db, id).await
}

/// `users(ids)`: 관리자 전용. ids 순서대로, 없는 것은 None.
pub async fn get_many(db: &DatabaseConnection, viewer: Option<&Viewer>, ids: &[Uuid]) -> AppResult<Vec<Option<User>>> {
    Viewer::require_admin(viewer)?;
    if ids.len() > MAX_IDS {
        return Err(AppError::bad_input("ids", format!("ids: 최대 {MAX_IDS}개까지 조회할 수 있습니다")));
    }
    let found = repo::user::find_many(db, ids).await?;
    Ok(ids.iter().map(|id| found.iter().find(|u| u.id == *id).cloned()).collect())
}
