//! 선착순 발급: 쿠폰 행 잠금 아래에서 검사·삽입·수량 증가를 한 트랜잭션으로.
use sea_orm::{DatabaseConnection, TransactionTrait};
use uuid::Uuid;

use crate::domain::{self, Coupon, UserCoupon, Viewer};
use crate::error::{AppError, AppResult};
use crate::repo;

/// `issueCoupon`: 뷰어 본인(또는 관리자가 지정한 사용자)에게 발급한다.
pub async fn issue_for(
    db: &DatabaseConnection,
    viewer: Option<&Viewer>,
    coupon_id: Uuid,
    user_id: Option<Uuid>,
) -> AppResult<UserCoupon> {
    let target = Viewer::act_for(viewer, user_id)?;
    issue(db, target, coupon_id).await
}

/// 권한 검사를 마친 발급. 검사 순서(계약): 쿠폰 존재 → 사용자 존재 → 유효기간 → 중복 → 재고.
pub async fn issue(db: &DatabaseConnection, user_id: Uuid, coupon_id: Uuid) -> AppResult<UserCoupon> {
    // 잠금 밖의 평범한 읽기로 걸러낼 수 있는 것은 먼저 걸러낸다. 쿠폰·사용자는 지워지지 않고,
    // 유효기간은 바뀌지 않으며, 발급 수량은 줄지 않으므로 여기서 내린 거절은 잠금 안에서도 같다.
    let coupon = repo::coupon::find_by_id(db, coupon_id).await?.ok_or(AppError::CouponNotFound)?;
    if !repo::user::exists(db, user_id).await? {
        return Err(AppError::UserNotFound);
    }
    let now = domain::now();
    coupon.check_window(now)?;
    if coupon.is_sold_out() {
        // 매진 빠른 경로: 패자는 잠금 대기열에 서지 않고 바로 답을 받는다.
        return Err(sold_out_or_held(db, user_id, coupon_id).await);
    }

    issue_locked(db, user_id, coupon_id).await
}

/// 매진일 때: 이미 가진 사용자에게는 ALREADY_ISSUED가 먼저다.
async fn sold_out_or_held(db: &impl sea_orm::ConnectionTrait, user_id: Uuid, coupon_id: Uuid) -> AppError {
    match repo::user_coupon::exists(db, user_id, coupon_id).await {
        Ok(true) => AppError::CouponAlreadyIssued,
        Ok(false) => AppError::CouponSoldOut,
        Err(e) => e,
    }
}

/// 한 트랜잭션: FOR UPDATE → 재고 재확인 → 삽입 → 수량 증가 → 커밋.
/// 어떤 실패든 커밋 전에 돌아가면 트랜잭션이 버려지며(drop = rollback) 아무것도 남지 않는다.
/// 교착 상태 희생자·잠금 대기 초과는 TRY_AGAIN으로 돌아간다 (재시도는 클라이언트 몫: 이미 몇 초를 기다렸다).
async fn issue_locked(db: &DatabaseConnection, user_id: Uuid, coupon_id: Uuid) -> AppResult<UserCoupon> {
    let txn = db.begin().await.map_err(repo::db_error)?;
    let coupon: Coupon = repo::coupon::find_for_update(&txn, coupon_id).await?.ok_or(AppError::CouponNotFound)?;
    if coupon.is_sold_out() {
        return Err(sold_out_or_held(&txn, user_id, coupon_id).await);
    }
    let now = domain::now();
    let uc = UserCoupon { id: Uuid::new_v4(), user_id, coupon_id, is_used: false, used_at: None, issued_at: now };
    // 중복 발급은 유일 제약이 잡는다 (같은 쿠폰의 발급은 잠금으로 직렬화되어 있으므로 별도 조회가 필요 없다).
    repo::user_coupon::insert(&txn, &uc).await?;
    repo::coupon::increment_issued(&txn, coupon_id, 1, now).await?;
    txn.commit().await.map_err(repo::db_error)?;
    Ok(uc)
}
