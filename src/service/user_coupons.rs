//! 발급 내역: 목록, 사용, 사용 취소.
use rust_decimal::Decimal;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::domain::{self, Coupon, UserCoupon, Viewer};
use crate::error::{AppError, AppResult};
use crate::repo;

/// `userCoupons`: 기본은 뷰어 본인, 남의 것은 관리자만. 쿠폰과 함께 돌려준다.
pub async fn list(
    db: &DatabaseConnection,
    viewer: Option<&Viewer>,
    user_id: Option<Uuid>,
    unused_only: bool,
) -> AppResult<Vec<(UserCoupon, Coupon)>> {
    let target = Viewer::act_for(viewer, user_id)?;
    repo::user_coupon::list_by_user(db, target, unused_only).await
}

/// 뷰어가 다룰 수 있는 발급 내역. 없거나 남의 것이면 똑같이 USER_COUPON_NOT_FOUND.
async fn owned(db: &DatabaseConnection, viewer: Option<&Viewer>, id: Uuid) -> AppResult<UserCoupon> {
    let viewer = Viewer::require(viewer)?;
    match repo::user_coupon::find_by_id(db, id).await? {
        Some(uc) if viewer.may_touch(uc.user_id) => Ok(uc),
        _ => Err(AppError::UserCouponNotFound),
    }
}

/// `useCoupon`: 소유자/관리자 → 미사용 → 유효기간 → 최소 주문 금액(주어졌을 때).
/// 동시에 여러 번 와도 조건부 UPDATE가 정확히 하나만 통과시킨다.
pub async fn use_coupon(
    db: &DatabaseConnection,
    viewer: Option<&Viewer>,
    id: Uuid,
    order_amount: Option<Decimal>,
) -> AppResult<UserCoupon> {
    let uc = owned(db, viewer, id).await?;
    if uc.is_used {
        return Err(AppError::CouponAlreadyUsed);
    }
    let coupon =
        repo::coupon::find_by_id(db, uc.coupon_id).await?.ok_or_else(|| AppError::Internal(format!("발급 내역 {id}의 쿠폰이 없음")))?;
    let now = domain::now();
    coupon.check_window(now)?;
    if let Some(amount) = order_amount
        && !coupon.meets_min_purchase(amount)
    {
        return Err(AppError::MinPurchaseNotMet);
    }
    if !repo::user_coupon::mark_used(db, id, now).await? {
        return Err(AppError::CouponAlreadyUsed);
    }
    Ok(UserCoupon { is_used: true, used_at: Some(now), ..uc })
}

/// `cancelCoupon`: 소유자/관리자 → 사용된 상태. 사용을 되돌린다.
pub async fn cancel_coupon(db: &DatabaseConnection, viewer: Option<&Viewer>, id: Uuid) -> AppResult<UserCoupon> {
    let uc = owned(db, viewer, id).await?;
    if !uc.is_used || !repo::user_coupon::mark_unused(db, id).await? {
        return Err(AppError::CouponNotUsed);
    }
    Ok(UserCoupon { is_used: false, used_at: None, ..uc })
}
