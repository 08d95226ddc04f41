//! 발급 내역: 목록, 결제 흐름(보류·해제·사용·취소), 사용 검증(dry run), 주문에 쓸 수 있는 쿠폰.
//!
//! 변경마다 트랜잭션 하나: (멱등 키 기록) → 조건부 UPDATE → 원장 → 커밋. 경쟁은 조건부 UPDATE를 데이터베이스가 가르고,
//! 0행이면 되돌린 뒤 다시 읽어 규칙 순서대로 답한다 (읽고 나서 쓰는 판단을 애플리케이션이 하지 않는다).
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sea_orm::{DatabaseConnection, DatabaseTransaction, TransactionTrait};
use uuid::Uuid;

use crate::domain::checkout::{self, CancelDecision, OrderId, UseDecision};
use crate::domain::idempotency::{IdemKey, check_same_request};
use crate::domain::{self, Coupon, EventType, NewEvent, UserCoupon, Viewer};
use crate::error::{AppError, AppResult};
use crate::repo;
use crate::service::retry::retrying;

/// `userCoupons`: 기본은 뷰어 본인, 남의 것은 관리자만. 쿠폰과 함께 돌려준다.
pub async fn list(
    db: &DatabaseConnection,
    viewer: Option<&Viewer>,
    user_id: Option<Uuid>,
    unused_only: bool,
) -> AppResult<Vec<(UserCoupon, Coupon)>> {
    let target = Viewer::act_for(viewer, user_id)?;
    of_user(db, target, unused_only).await
}

/// 한 사용자의 발급 내역과 쿠폰, 최신순. 권한은 묻지 않는다: 그 사용자를 읽을 때(`me`, `user(id)`) 이미 확인했다.
pub async fn of_user(db: &DatabaseConnection, user_id: Uuid, unused_only: bool) -> AppResult<Vec<(UserCoupon, Coupon)>> {
    repo::user_coupon::list_by_user(db, user_id, unused_only).await
}

/// 뷰어가 다룰 수 있는 발급 내역과 그 쿠폰. 없거나 남의 것이면 똑같이 USER_COUPON_NOT_FOUND.
async fn owned(db: &impl sea_orm::ConnectionTrait, viewer: Option<&Viewer>, id: Uuid) -> AppResult<(UserCoupon, Coupon)> {
    let viewer = Viewer::require(viewer)?;
    let uc = match repo::user_coupon::find_by_id(db, id).await? {
        Some(uc) if viewer.may_touch(uc.user_id) => uc,
        _ => return Err(AppError::UserCouponNotFound),
    };
    let coupon =
        repo::coupon::find_by_id(db, uc.coupon_id).await?.ok_or_else(|| AppError::Internal(format!("발급 내역 {id}의 쿠폰이 없음")))?;
    Ok((uc, coupon))
}

/// 열린 변경: 이미 끝난 같은 키의 결과, 또는 트랜잭션과 그 안에서 읽은 발급 내역과 판정.
enum Opened<T> {
    Replayed(UserCoupon),
    Open(DatabaseTransaction, UserCoupon, T),
}

/// 변경 트랜잭션을 열고, 그 안에서 발급 내역을 읽어 `decide`로 규칙을 판정한다.
/// 멱등 키가 있으면 읽기 전에 먼저 기록한다: 같은 키의 다른 요청이 진행 중이면 그 커밋을 기다리고,
/// 이미 끝났으면 그 결과(`Replayed`)를 돌려준다 (재시도는 바뀐 것 없이 같은 답).
/// 판정이 오류면 되돌린다: 키 기록도 함께 사라져 같은 키로 다시 시도할 수 있다.
async fn open<T>(
    db: &DatabaseConnection,
    viewer: Option<&Viewer>,
    id: Uuid,
    key: Option<&IdemKey>,
    now: DateTime<Utc>,
    decide: impl AsyncFnOnce(&DatabaseTransaction, &UserCoupon, &Coupon) -> AppResult<T>,
) -> AppResult<Opened<T>> {
    let txn = db.begin().await.map_err(repo::db_error)?;
    if let Some(k) = key
        && repo::idempotency::record(&txn, &[(k, id)], now).await? == 0
    {
        txn.rollback().await.map_err(repo::db_error)?;
        let rec = repo::idempotency::find(db, k.user_id, &k.key).await?.ok_or(AppError::TryAgain)?;
        check_same_request(k, &rec)?;
        let uc = match rec.user_coupon_id {
            Some(prev) => repo::user_coupon::find_by_id(db, prev).await?.ok_or(AppError::TryAgain)?,
            None => return Err(AppError::TryAgain),
        };
        return Ok(Opened::Replayed(uc.as_seen(now)));
    }
    let decided = async {
        let (uc, coupon) = owned(&txn, viewer, id).await?;
        let d = decide(&txn, &uc, &coupon).await?;
        Ok((uc, d))
    }
    .await;
    match decided {
        Ok((uc, d)) => Ok(Opened::Open(txn, uc, d)),
        Err(e) => {
            txn.rollback().await.map_err(repo::db_error)?;
            Err(e)
        }
    }
}

/// 원장에 이벤트를 남기고 커밋한 뒤, 바뀐 발급 내역을 돌려준다.
async fn commit(txn: DatabaseTransaction, kind: EventType, uc: UserCoupon, now: DateTime<Utc>) -> AppResult<UserCoupon> {
    repo::ledger::append(&txn, &[NewEvent::for_user_coupon(kind, &uc, now)]).await?;
    txn.commit().await.map_err(repo::db_error)?;
    Ok(uc.as_seen(now))
}

/// 키로 기록만 하고 바뀐 것이 없는 답 (같은 주문의 재시도): 키 기록은 남기고 커밋한다.
async fn commit_unchanged(txn: DatabaseTransaction, uc: UserCoupon, now: DateTime<Utc>) -> AppResult<UserCoupon> {
    txn.commit().await.map_err(repo::db_error)?;
    Ok(uc.as_seen(now))
}

/// `reserveCoupon`: 소유자/관리자 → 미사용 → 다른 주문의 보류가 아님 → 유효기간 → 최소 주문 금액.
/// 멱등 키를 먼저 기록하고 나서 읽는다: 같은 키의 먼저 온 요청이 진행 중이면 그 끝을 기다려 그 답을 받는다.
pub async fn reserve(
    db: &DatabaseConnection,
    viewer: Option<&Viewer>,
    id: Uuid,
    order: &OrderId,
    amount: Decimal,
    ttl: chrono::Duration,
    key: Option<&IdemKey>,
) -> AppResult<UserCoupon> {
    retrying("reserve", || reserve_once(db, viewer, id, order, amount, ttl, key)).await
}

async fn reserve_once(
    db: &DatabaseConnection,
    viewer: Option<&Viewer>,
    id: Uuid,
    order: &OrderId,
    amount: Decimal,
    ttl: chrono::Duration,
    key: Option<&IdemKey>,
) -> AppResult<UserCoupon> {
    let now = domain::now();
    let decide = async |txn: &DatabaseTransaction, uc: &UserCoupon, c: &Coupon| {
        let amounts = checkout::check_reserve(uc, c, now, order, amount)?;
        Ok((amounts, budget_share_before(txn, c, uc.id).await?))
    };
    let (txn, uc, (amounts, before)) = match open(db, viewer, id, key, now, decide).await? {
        Opened::Replayed(uc) => return Ok(uc),
        Opened::Open(txn, uc, decided) => (txn, uc, decided),
    };
    let until = now + ttl;
    if !repo::user_coupon::reserve(&txn, id, order.as_str(), until, amounts, uc.single_place(Some(order), now), now).await? {
        // 읽은 뒤에 다른 주문이 보류했거나 사용했다: 지금 상태로 다시 판정한다. 그새 다시 풀렸으면 다시 시도하게 한다.
        txn.rollback().await.map_err(repo::db_error)?;
        let (uc, coupon) = owned(db, viewer, id).await?;
        checkout::check_reserve(&uc, &coupon, now, order, amount)?;
        return Err(AppError::TryAgain);
    }
    settle_budget(&txn, uc.coupon_id, id, before, amounts.discount_amount, now).await?;
    let held = UserCoupon {
        order_id: Some(order.as_str().to_owned()),
        reserved_until: Some(until),
        order_amount: Some(amounts.order_amount),
        discount_amount: Some(amounts.discount_amount),
        ..uc
    };
    commit(txn, EventType::CouponReserved, held, now).await
}

/// `releaseCoupon`: 이 주문의 보류면 풀고, 아니면 그대로 답한다.
pub async fn release(db: &DatabaseConnection, viewer: Option<&Viewer>, id: Uuid, order: &OrderId) -> AppResult<UserCoupon> {
    retrying("release", || release_once(db, viewer, id, order)).await
}

async fn release_once(db: &DatabaseConnection, viewer: Option<&Viewer>, id: Uuid, order: &OrderId) -> AppResult<UserCoupon> {
    let now = domain::now();
    let (uc, coupon) = owned(db, viewer, id).await?;
    if uc.held_by(now) != Some(order.as_str()) {
        return Ok(uc.as_seen(now));
    }
    let txn = db.begin().await.map_err(repo::db_error)?;
    let before = budget_share_before(&txn, &coupon, id).await?;
    if !repo::user_coupon::release(&txn, id, order.as_str(), now).await? {
        txn.rollback().await.map_err(repo::db_error)?;
        let (uc, _) = owned(db, viewer, id).await?;
        return Ok(uc.as_seen(now));
    }
    settle_budget(&txn, coupon.id, id, before, Decimal::ZERO, now).await?;
    let event = NewEvent::for_user_coupon(EventType::CouponReleased, &uc, now);
    repo::ledger::append(&txn, &[event]).await?;
    txn.commit().await.map_err(repo::db_error)?;
    Ok(uc.without_order())
}

/// `useCoupon`: 소유자/관리자 → 사용됨(같은 주문이면 재시도) → 보류 → 유효기간 → 최소 주문 금액.
/// 동시에 여러 주문이 와도 조건부 UPDATE가 정확히 하나만 통과시킨다.
pub async fn use_coupon(
    db: &DatabaseConnection,
    viewer: Option<&Viewer>,
    id: Uuid,
    amount: Option<Decimal>,
    order: Option<&OrderId>,
    key: Option<&IdemKey>,
) -> AppResult<UserCoupon> {
    retrying("use", || use_once(db, viewer, id, amount, order, key)).await
}

async fn use_once(
    db: &DatabaseConnection,
    viewer: Option<&Viewer>,
    id: Uuid,
    amount: Option<Decimal>,
    order: Option<&OrderId>,
    key: Option<&IdemKey>,
) -> AppResult<UserCoupon> {
    let now = domain::now();
    let decide = async |txn: &DatabaseTransaction, uc: &UserCoupon, c: &Coupon| {
        let decision = checkout::check_use(uc, c, now, order, amount)?;
        let before = if matches!(decision, UseDecision::Apply(_)) { budget_share_before(txn, c, uc.id).await? } else { None };
        Ok((decision, before))
    };
    let (txn, uc, (decision, before)) = match open(db, viewer, id, key, now, decide).await? {
        Opened::Replayed(uc) => return Ok(uc),
        Opened::Open(txn, uc, decided) => (txn, uc, decided),
    };
    let UseDecision::Apply(amounts) = decision else {
        return commit_unchanged(txn, uc, now).await;
    };
    if !repo::user_coupon::mark_used(&txn, id, now, order.map(OrderId::as_str), amounts, uc.single_place(order, now)).await? {
        txn.rollback().await.map_err(repo::db_error)?;
        let (uc, coupon) = owned(db, viewer, id).await?;
        return match checkout::check_use(&uc, &coupon, now, order, amount)? {
            UseDecision::AlreadyDone => Ok(uc.as_seen(now)),
            // 다른 주문의 보류가 그새 풀렸다: 규칙상 쓸 수 있으니 다시 시도하게 한다 (보관되지 않는 답).
            UseDecision::Apply(_) => Err(AppError::TryAgain),
        };
    }
    settle_budget(&txn, uc.coupon_id, id, before, amounts.map(|a| a.discount_amount).unwrap_or_default(), now).await?;
    let used = UserCoupon {
        is_used: true,
        used_at: Some(now),
        order_id: order.map(|o| o.as_str().to_owned()),
        reserved_until: None,
        order_amount: amounts.map(|a| a.order_amount),
        discount_amount: amounts.map(|a| a.discount_amount),
        ..uc
    };
    commit(txn, EventType::CouponUsed, used, now).await
}

/// `cancelCoupon`: 소유자/관리자 → (주문이 있으면) 그 주문이 쓴 것 → 되돌린다. 이미 이 주문으로 취소된 것은 그대로 답한다.
pub async fn cancel_coupon(
    db: &DatabaseConnection,
    viewer: Option<&Viewer>,
    id: Uuid,
    order: Option<&OrderId>,
    key: Option<&IdemKey>,
) -> AppResult<UserCoupon> {
    retrying("cancel", || cancel_once(db, viewer, id, order, key)).await
}

async fn cancel_once(
    db: &DatabaseConnection,
    viewer: Option<&Viewer>,
    id: Uuid,
    order: Option<&OrderId>,
    key: Option<&IdemKey>,
) -> AppResult<UserCoupon> {
    let now = domain::now();
    let decide = async |txn: &DatabaseTransaction, uc: &UserCoupon, c: &Coupon| {
        let last_cancel = last_cancelled_by(txn, uc, order).await?;
        let decision = checkout::check_cancel(uc, order, last_cancel.as_ref().map(|o| o.as_deref()))?;
        let before = if decision == CancelDecision::Apply { budget_share_before(txn, c, uc.id).await? } else { None };
        Ok((decision, before))
    };
    let (txn, uc, (decision, before)) = match open(db, viewer, id, key, now, decide).await? {
        Opened::Replayed(uc) => return Ok(uc),
        Opened::Open(txn, uc, decided) => (txn, uc, decided),
    };
    if decision == CancelDecision::AlreadyDone {
        return commit_unchanged(txn, uc, now).await;
    }
    if !repo::user_coupon::mark_unused(&txn, id, order.map(OrderId::as_str)).await? {
        txn.rollback().await.map_err(repo::db_error)?;
        let (uc, _) = owned(db, viewer, id).await?;
        let last_cancel = last_cancelled_by(db, &uc, order).await?;
        return match checkout::check_cancel(&uc, order, last_cancel.as_ref().map(|o| o.as_deref()))? {
            CancelDecision::AlreadyDone => Ok(uc.as_seen(now)),
            CancelDecision::Apply => Err(AppError::TryAgain),
        };
    }
    settle_budget(&txn, uc.coupon_id, id, before, Decimal::ZERO, now).await?;
    // 이벤트는 되돌린 주문을 남긴다 (다음 취소 재시도가 알아보도록).
    let event = NewEvent::for_user_coupon(EventType::CouponCancelled, &uc, now);
    repo::ledger::append(&txn, &[event]).await?;
    txn.commit().await.map_err(repo::db_error)?;
    Ok(UserCoupon { is_used: false, used_at: None, ..uc.without_order() })
}

/// 예산이 있는 쿠폰이면 발급 내역 행을 잠그고 지금 차지한 몫(`UserCoupon::budget_share`)을 읽는다. 예산이 없으면 `None`.
/// 잠근 행은 이 트랜잭션이 바꾸므로, 커밋 전에 몫이 바뀌는 일이 없다 (같은 주문의 동시 재시도도 여기서 줄을 선다).
async fn budget_share_before(txn: &DatabaseTransaction, coupon: &Coupon, uc_id: Uuid) -> AppResult<Option<Decimal>> {
    if coupon.budget.is_none() {
        return Ok(None);
    }
    Ok(Some(repo::user_coupon::find_for_update(txn, uc_id).await?.ok_or(AppError::UserCouponNotFound)?.budget_share()))
}

/// 예산이 있는 쿠폰의 보류·사용·반납(해제·취소)은 쿠폰 행의 `budget_spent` 하나에서 만난다 (CONTRACT 11절 "Budgets"):
/// 발급 내역을 바꾼 뒤 커밋 직전에, 몫이 `before`에서 `share`로 바뀐 만큼을 조건부 UPDATE 하나로 옮긴다 (늘어날 때는 예산
/// 안에 들 때만). 들지 않으면 쿠폰 행을 잠그고 만료된 보류의 몫을 돌려받아(청소 작업 없이, 필요할 때만) 한 번 더 보고,
/// 그래도 들지 않으면 BUDGET_EXHAUSTED (7절의 규칙을 모두 통과한 다음의 답). 같은 쿠폰의 변경은 그 행에서 차례로 일어나므로
/// 합이 예산을 넘지 않는다. 같은 주문의 보류를 쓰거나 다시 보류하면 그 보류의 몫이 바뀔 뿐 두 번 가져가지 않는다.
pub(super) async fn settle_budget(
    txn: &DatabaseTransaction,
    coupon_id: Uuid,
    uc_id: Uuid,
    before: Option<Decimal>,
    share: Decimal,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let Some(before) = before else { return Ok(()) };
    let delta = share - before;
    if repo::coupon::move_budget(txn, coupon_id, Decimal::ZERO, delta).await? {
        return Ok(());
    }
    let locked = repo::coupon::find_for_update(txn, coupon_id).await?.ok_or(AppError::CouponNotFound)?;
    if locked.budget.is_none() {
        return Ok(());
    }
    let back = repo::user_coupon::reclaim_expired_holds(txn, coupon_id, now, Some(uc_id)).await?;
    if back > Decimal::ZERO && repo::coupon::move_budget(txn, coupon_id, back, delta).await? {
        return Ok(());
    }
    Err(AppError::BudgetExhausted)
}

/// 미사용이고 주문이 주어졌을 때만 원장을 읽는다: 마지막 이벤트가 취소라면 그 주문.
async fn last_cancelled_by(
    db: &impl sea_orm::ConnectionTrait,
    uc: &UserCoupon,
    order: Option<&OrderId>,
) -> AppResult<Option<Option<String>>> {
    if uc.is_used || order.is_none() {
        return Ok(None);
    }
    Ok(repo::ledger::last_for(db, uc.id).await?.filter(|e| e.kind == EventType::CouponCancelled.as_str()).map(|e| e.order_id))
}

/// `validateCoupon`의 답.
#[derive(Clone, Debug)]
pub struct Validation {
    pub error: Option<AppError>,
    pub discount_amount: Decimal,
}

/// `validateCoupon`: `useCoupon`의 검사를 그대로, 아무것도 쓰지 않고. 인증 실패만 오류이고 나머지는 답이다.
pub async fn validate(
    db: &DatabaseConnection,
    viewer: Option<&Viewer>,
    id: Uuid,
    amount: Decimal,
    order: Option<&OrderId>,
) -> AppResult<Validation> {
    Viewer::require(viewer)?;
    let now = domain::now();
    let outcome = async {
        let (uc, coupon) = owned(db, viewer, id).await?;
        match checkout::check_use(&uc, &coupon, now, order, Some(amount))? {
            UseDecision::Apply(a) => {
                let discount = a.map(|a| a.discount_amount).unwrap_or_default();
                // 예산: 지금 남은 것에 들어가는지 (잠그지 않는 읽기, 쓰는 것 없음).
                if coupon.budget.is_some() {
                    coupon.check_budget(repo::user_coupon::budget_spent(db, coupon.id, now, Some(uc.id)).await? + discount)?;
                }
                Ok(discount)
            }
            UseDecision::AlreadyDone => Ok(uc.discount_amount.unwrap_or_default()),
        }
    }
    .await;
    match outcome {
        Ok(discount) => Ok(Validation { error: None, discount_amount: discount }),
        Err(e @ (AppError::Internal(_) | AppError::TryAgain | AppError::Aborted | AppError::Unauthenticated)) => Err(e),
        Err(e) => Ok(Validation { error: Some(e), discount_amount: Decimal::ZERO }),
    }
}

/// `applicableCoupons`: 지금 이 금액의 주문에 쓸 수 있는 쿠폰 (AVAILABLE, 기간 안, 최소 금액 충족)과 그 할인.
/// 큰 할인 먼저, 같으면 빨리 끝나는 것 먼저. 목록은 호출한 쪽이 (DataLoader로) 읽어 준다.
pub fn applicable(list: Vec<(UserCoupon, Coupon)>, amount: Decimal, now: DateTime<Utc>) -> Vec<(UserCoupon, Coupon, Decimal)> {
    let mut out: Vec<(UserCoupon, Coupon, Decimal)> = list
        .into_iter()
        .filter(|(uc, c)| {
            uc.status(now) == domain::UserCouponStatus::Available && c.check_window(now).is_ok() && c.meets_min_purchase(amount)
        })
        .map(|(uc, c)| {
            let d = c.discount_for(amount);
            (uc.as_seen(now), c, d)
        })
        .collect();
    out.sort_by(|a, b| b.2.cmp(&a.2).then(a.1.valid_until.cmp(&b.1.valid_until)));
    out
}

/// 멱등 키가 가리키는 이미 끝난 변경의 결과 (프로세스가 답하기 전에 죽었던 요청의 재시도).
pub async fn replayed(db: &DatabaseConnection, viewer: Option<&Viewer>, id: Uuid) -> AppResult<UserCoupon> {
    let (uc, _) = owned(db, viewer, id).await?;
    Ok(uc.as_seen(domain::now()))
}
