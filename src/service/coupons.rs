//! 쿠폰 조회·목록(커서 페이지네이션)·생성, 관리자의 수정·상태 변경·보고서 (CONTRACT 8절).
//!
//! 쿠폰을 바꾸는 모든 변경은 발급과 같은 행 잠금(`SELECT … FOR UPDATE`)을 잡는다: 발급 배치는 잠금 안에서 최신 행을 다시
//! 읽어 판단하므로, 수정·중지가 커밋된 뒤에 커밋되는 발급은 언제나 새 값으로 판단된다 (다른 프로세스의 발급도 같다).
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DatabaseTransaction, TransactionTrait};
use uuid::Uuid;

use super::page::{self, Page};
use crate::domain::{self, Coupon, CouponChange, CouponChangeInput, CouponStatus, EventType, NewCoupon, NewCouponInput, NewEvent, Viewer};
use crate::domain::{Stamped, UserCoupon};
use crate::error::{AppError, AppResult};
use crate::repo;
use crate::repo::user_coupon::HolderStats;
use crate::service::retry::retrying;

pub const DEFAULT_PAGE: i32 = 20;
pub const DEFAULT_EVENTS_PAGE: i32 = 50;

pub async fn get(db: &DatabaseConnection, id: Uuid) -> AppResult<Option<Coupon>> {
    repo::coupon::find_by_id(db, id).await
}

/// 최신순 목록. `after`는 이전 페이지의 커서. 보관된 쿠폰까지 보는 것은 관리자만 (인자 해석보다 먼저 검사).
pub async fn list(
    db: &DatabaseConnection,
    viewer: Option<&Viewer>,
    available_only: bool,
    include_archived: bool,
    first: Option<i32>,
    after: Option<&str>,
) -> AppResult<Page<Coupon>> {
    if include_archived {
        Viewer::require_admin(viewer)?;
    }
    let n = page::fetch_size(first, DEFAULT_PAGE)?;
    let after = after.map(page::decode_keyset).transpose()?;
    let available = available_only.then(|| repo::coupon::Available { now: domain::now(), viewer: viewer.map(|v| v.user_id) });
    Ok(Page::cut(repo::coupon::list(db, available, include_archived, after, n).await?, n))
}

/// 쿠폰 목록의 커서.
pub fn cursor(c: &Coupon) -> String {
    page::encode_cursor(c.created_at, &c.id.to_string())
}

/// `createCoupon`: 관리자 전용, 계약서의 검증을 통과해야 한다. 생성 이벤트와 한 트랜잭션.
pub async fn create(db: &DatabaseConnection, viewer: Option<&Viewer>, input: NewCouponInput) -> AppResult<Coupon> {
    Viewer::require_admin(viewer)?;
    let new = NewCoupon::parse(input)?;
    let now = domain::now();
    let written = async {
        let txn = db.begin().await.map_err(repo::db_error)?;
        let coupon = repo::coupon::insert(&txn, Uuid::new_v4(), &new, now).await?;
        repo::ledger::append(&txn, &[NewEvent::for_coupon(EventType::CouponCreated, coupon.id, now)]).await?;
        txn.commit().await.map_err(repo::db_error)?;
        Ok(coupon)
    };
    crate::telemetry::transaction("createCoupon", written).await
}

/// 쿠폰 행을 잠그고 읽는다. 없으면 COUPON_NOT_FOUND (트랜잭션은 버려진다).
pub(crate) async fn lock(db: &DatabaseConnection, id: Uuid) -> AppResult<(DatabaseTransaction, Coupon)> {
    let txn = db.begin().await.map_err(repo::db_error)?;
    let coupon = repo::coupon::find_for_update(&txn, id).await?.ok_or(AppError::CouponNotFound)?;
    Ok((txn, coupon))
}

/// 바뀐 쿠폰을 쓰고 이벤트를 남기고 커밋한다.
async fn save(txn: DatabaseTransaction, mut next: Coupon, kind: EventType, now: DateTime<Utc>) -> AppResult<Coupon> {
    next.updated_at = now;
    if !repo::coupon::update(&txn, &next).await? {
        return Err(super::retry::changed_since_read(&next));
    }
    next.version += 1;
    repo::ledger::append(&txn, &[NewEvent::for_coupon(kind, next.id, now)]).await?;
    txn.commit().await.map_err(repo::db_error)?;
    Ok(next)
}

/// `updateCoupon`: 형식 검사 → 잠금 → 존재 → 보관 여부 → 잠금 안의 최신 값과 맞춰 본 검사 → 쓰기.
/// 총수량을 줄이는 수정이 발급과 겹쳐도, 둘 다 이 행 잠금 아래에서 판단하므로 발급 수량을 넘는 총수량은 생기지 않는다.
pub async fn update(db: &DatabaseConnection, viewer: Option<&Viewer>, id: Uuid, input: CouponChangeInput) -> AppResult<Coupon> {
    Viewer::require_admin(viewer)?;
    let change = CouponChange::parse(input)?;
    retrying("update_coupon", || update_once(db, id, &change)).await
}

async fn update_once(db: &DatabaseConnection, id: Uuid, change: &CouponChange) -> AppResult<Coupon> {
    let (txn, coupon) = lock(db, id).await?;
    coupon.check_changeable()?;
    let now = domain::now();
    let mut next = coupon.apply(change, now)?;
    if change.is_empty() {
        return Ok(coupon);
    }
    // 예산은 이미 사용·보류된 것 밑으로 내릴 수 없다: 보류·사용이 같은 행 잠금 아래에서 가져가므로 여기서 센 합이 권위를 갖는다.
    // 예산을 새로 달면, 예산 없이 지낸 동안의 사용·보류로 나간 돈을 다시 센다 (만료된 보류는 먼저 돌려받아 센 합이 곧 몫의 합).
    if matches!(change.budget, Some(Some(_))) {
        if coupon.budget.is_none() {
            repo::user_coupon::reclaim_expired_holds(&txn, id, now, None).await?;
        }
        let spent = repo::user_coupon::budget_spent(&txn, id, now, None).await?;
        next.check_budget_covers(spent)?;
        if coupon.budget.is_none() {
            next.budget_spent = spent;
        }
    }
    save(txn, next, EventType::CouponUpdated, now).await
}

/// `pauseCoupon` / `resumeCoupon` / `archiveCoupon`. 이미 그 상태면 바꾸지 않고(이벤트도 없이) 그대로 답한다.
/// 이 함수가 돌아온 뒤에는 어떤 발급도 커밋되지 않는다: 발급은 같은 행 잠금 아래에서 상태를 다시 본다.
pub async fn set_status(db: &DatabaseConnection, viewer: Option<&Viewer>, id: Uuid, to: CouponStatus) -> AppResult<Coupon> {
    Viewer::require_admin(viewer)?;
    retrying("set_status", || set_status_once(db, id, to)).await
}

async fn set_status_once(db: &DatabaseConnection, id: Uuid, to: CouponStatus) -> AppResult<Coupon> {
    let (txn, coupon) = lock(db, id).await?;
    let Some(status) = coupon.transition(to)? else { return Ok(coupon) };
    let kind = match status {
        CouponStatus::Active => EventType::CouponResumed,
        CouponStatus::Paused => EventType::CouponPaused,
        CouponStatus::Archived => EventType::CouponArchived,
    };
    save(txn, Coupon { status, ..coupon }, kind, domain::now()).await
}

/// `Coupon.stats`: 데이터베이스에서 센 정확한 값.
#[derive(Debug)]
pub struct CouponStats {
    pub holders: HolderStats,
    pub codes_generated: i64,
    pub codes_redeemed: i64,
}

pub async fn stats(db: &DatabaseConnection, viewer: Option<&Viewer>, id: Uuid) -> AppResult<CouponStats> {
    Viewer::require_admin(viewer)?;
    let holders = repo::user_coupon::stats(db, id, domain::now()).await?;
    let (codes_generated, codes_redeemed) = repo::code::counts(db, id).await?;
    Ok(CouponStats { holders, codes_generated, codes_redeemed })
}

/// `Coupon.budgetRemaining`: 예산 − (현재 사용 + 만료 전 보류의 할인). 예산이 없으면 `None`. 관리자 전용.
pub async fn budget_remaining(
    db: &DatabaseConnection,
    viewer: Option<&Viewer>,
    coupon: &Coupon,
) -> AppResult<Option<rust_decimal::Decimal>> {
    Viewer::require_admin(viewer)?;
    let Some(budget) = coupon.budget else { return Ok(None) };
    let spent = repo::user_coupon::budget_spent(db, coupon.id, domain::now(), None).await?;
    Ok(Some(domain::money::money(budget - spent)))
}

/// 있어야 하는 쿠폰: 없으면 COUPON_NOT_FOUND (권한은 부른 쪽이 이미 확인했다).
pub(crate) async fn existing(db: &DatabaseConnection, id: Uuid) -> AppResult<Coupon> {
    repo::coupon::find_by_id(db, id).await?.ok_or(AppError::CouponNotFound)
}

/// `couponHolders`: 쿠폰의 보유자, 최신순.
pub async fn holders(
    db: &DatabaseConnection,
    viewer: Option<&Viewer>,
    coupon_id: Uuid,
    first: Option<i32>,
    after: Option<&str>,
) -> AppResult<Page<UserCoupon>> {
    Viewer::require_admin(viewer)?;
    let n = page::fetch_size(first, DEFAULT_PAGE)?;
    let after = after.map(page::decode_keyset).transpose()?;
    existing(db, coupon_id).await?;
    Ok(Page::cut(repo::user_coupon::page_by_coupon(db, coupon_id, after, n).await?, n))
}

/// 보유자 목록의 커서.
pub fn holder_cursor(uc: &UserCoupon) -> String {
    page::encode_cursor(uc.issued_at, &uc.id.to_string())
}

/// `couponEvents`: 스트림(도장 받은 이벤트), 오래된 것부터. `coupon_id`가 없으면 모든 쿠폰.
pub async fn events(
    db: &DatabaseConnection,
    viewer: Option<&Viewer>,
    coupon_id: Option<Uuid>,
    first: Option<i32>,
    after: Option<&str>,
) -> AppResult<Page<Stamped>> {
    Viewer::require_admin(viewer)?;
    let n = page::fetch_size(first, DEFAULT_EVENTS_PAGE)?;
    let after = after.map(page::decode_sequence).transpose()?;
    if let Some(id) = coupon_id {
        existing(db, id).await?;
    }
    Ok(Page::cut(repo::ledger::page(db, coupon_id, after, n).await?, n))
}
