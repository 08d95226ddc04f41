//! 한 주문의 여러 쿠폰 (CONTRACT 12절): 묶음의 보류·사용·취소·해제, 주문의 쿠폰, 가장 큰 할인의 묶음.
//!
//! 묶음의 변경은 트랜잭션 하나에 모두 또는 아무것도: 먼저 그 사용자의 발급 내역을 모두 id 순으로 잠그고
//! (`repo::user_coupon::lock_user`), 잠근 행으로 판정한 뒤 행마다 조건부 UPDATE와 이벤트를 쓴다. 한 사용자의 묶음 변경은
//! 그 잠금에서 차례로 일어나므로 한 쿠폰이 두 주문에 붙거나 묶음의 일부만 붙는 일이 없고, 늘 같은 순서로 잠그므로
//! 겹치는 두 묶음이 서로를 기다리며 멈추지 않는다. 데이터베이스가 그래도 한쪽을 버리면 10절의 재시도가 맡는다.
//! 예산(11절)은 쿠폰마다 7절의 한 장짜리와 같은 `settle_budget`으로 옮긴다.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sea_orm::{DatabaseConnection, DatabaseTransaction, TransactionTrait};
use uuid::Uuid;

use super::user_coupons::settle_budget;
use crate::domain::checkout::{self, Amounts, OrderId, Place, UseDecision};
use crate::domain::idempotency::{IdemKey, check_same_request};
use crate::domain::stacking::{self, Candidate, Member};
use crate::domain::{self, Coupon, EventType, NewEvent, UserCoupon, Viewer};
use crate::error::{AppError, AppResult};
use crate::repo;
use crate::service::retry::retrying;

/// 한 주문의 쿠폰들과 그 금액 (`OrderCoupons`).
#[derive(Clone, Debug)]
pub struct OrderCoupons {
    pub order_id: String,
    /// 묶음의 순서 (따로 붙은 것은 그 뒤에 붙은 순서로).
    pub coupons: Vec<(UserCoupon, Coupon)>,
    pub order_amount: Decimal,
    pub discount_amount: Decimal,
}

impl OrderCoupons {
    /// 기록된 금액과 할인으로 (`recorded`: 바뀌기 전의 행, `shown`: 답에 보일 모습 — 같은 순서).
    fn of(order: &OrderId, recorded: &[UserCoupon], shown: Vec<(UserCoupon, Coupon)>) -> Self {
        let (order_amount, discount_amount) = stacking::recorded_totals(recorded.iter());
        let now = domain::now();
        let coupons = shown.into_iter().map(|(uc, c)| (uc.as_seen(now), c)).collect();
        OrderCoupons { order_id: order.as_str().to_owned(), coupons, order_amount, discount_amount }
    }

    /// 지금 이 주문에 붙은 행 가운데 `keep`에 맞는 것으로, 묶음의 순서로 (기록된 금액이 곧 그 행들의 것).
    async fn attached_now(db: &DatabaseConnection, user: Uuid, order: &OrderId, keep: impl Fn(&UserCoupon) -> bool) -> AppResult<Self> {
        let mut rows = repo::user_coupon::of_order(db, user, order.as_str()).await?;
        rows.retain(|(uc, _)| keep(uc));
        rows.sort_by_key(|(uc, _)| stacking::order_key(uc));
        let recorded: Vec<UserCoupon> = rows.iter().map(|(uc, _)| uc.clone()).collect();
        Ok(Self::of(order, &recorded, rows))
    }
}

/// 묶음 변경의 종류 (재시도의 답을 다시 만들 때 무엇을 보여 줄지).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetChange {
    Reserve,
    Use,
    Cancel,
    Release,
}

/// 잠근 사용자: 트랜잭션과 그 사용자의 모든 발급 내역 (id 순, 잠김), 그 쿠폰들.
struct Locked {
    txn: DatabaseTransaction,
    rows: Vec<UserCoupon>,
    coupons: HashMap<Uuid, Coupon>,
}

impl Locked {
    async fn open(db: &DatabaseConnection, user: Uuid) -> AppResult<Self> {
        let txn = db.begin().await.map_err(repo::db_error)?;
        let rows = match repo::user_coupon::lock_user(&txn, user).await {
            Ok(rows) => rows,
            Err(e) => {
                txn.rollback().await.map_err(repo::db_error)?;
                return Err(e);
            }
        };
        Ok(Locked { txn, rows, coupons: HashMap::new() })
    }

    /// 이 발급 내역들의 쿠폰을 한 번에 읽어 둔다.
    async fn load_coupons(&mut self, ucs: &[&UserCoupon]) -> AppResult<()> {
        let mut ids: Vec<Uuid> = ucs.iter().map(|uc| uc.coupon_id).filter(|id| !self.coupons.contains_key(id)).collect();
        ids.sort();
        ids.dedup();
        for c in repo::coupon::find_many(&self.txn, &ids).await? {
            self.coupons.insert(c.id, c);
        }
        Ok(())
    }

    fn coupon(&self, uc: &UserCoupon) -> AppResult<&Coupon> {
        self.coupons.get(&uc.coupon_id).ok_or_else(|| AppError::Internal(format!("발급 내역 {}의 쿠폰이 없음", uc.id)))
    }

    /// 이 주문에 붙은 행, 묶음의 순서로: 조건(`keep`)에 맞는 것만.
    fn attached(&self, order: &OrderId, keep: impl Fn(&UserCoupon) -> bool) -> Vec<UserCoupon> {
        let mut out: Vec<UserCoupon> =
            self.rows.iter().filter(|uc| uc.order_id.as_deref() == Some(order.as_str()) && keep(uc)).cloned().collect();
        out.sort_by_key(stacking::order_key);
        out
    }

    /// 멱등 키를 이 트랜잭션에 기록한다. 같은 키가 이미 커밋되었으면 되돌리고 None (재시도: 부르는 쪽이 기록대로 답한다).
    async fn record_key(self, key: Option<&IdemKey>, first: Uuid, now: DateTime<Utc>) -> AppResult<Option<Self>> {
        let Some(k) = key else { return Ok(Some(self)) };
        if repo::idempotency::record(&self.txn, &[(k, first)], now).await? > 0 {
            return Ok(Some(self));
        }
        self.txn.rollback().await.map_err(repo::db_error)?;
        Ok(None)
    }
}

/// 트랜잭션 안의 일을 돌리고, 오류면 되돌린다.
async fn finish<T>(txn: DatabaseTransaction, work: AppResult<(Vec<NewEvent>, T)>) -> AppResult<T> {
    match work {
        Ok((events, answer)) => {
            let written = async {
                repo::ledger::append(&txn, &events).await?;
                txn.commit().await.map_err(repo::db_error)
            }
            .await;
            written.map(|_| answer)
        }
        Err(e) => {
            txn.rollback().await.map_err(repo::db_error)?;
            Err(e)
        }
    }
}

/// 같은 키가 이미 커밋된 요청의 재시도: 같은 요청인지 확인하고, 그 주문의 지금 모습으로 답한다.
async fn replay(db: &DatabaseConnection, key: &IdemKey, user: Uuid, order: &OrderId, change: SetChange) -> AppResult<OrderCoupons> {
    let rec = repo::idempotency::find(db, key.user_id, &key.key).await?.ok_or(AppError::TryAgain)?;
    check_same_request(key, &rec)?;
    replayed(db, user, order, change).await
}

/// 이미 커밋된 묶음 변경의 답을 지금 상태에서 다시 만든다: 보류면 이 주문의 보류, 사용이면 이 주문이 쓴 것,
/// 취소·해제면 이 주문에서 마지막으로 떨어진 것 (원장의 마지막 이벤트가 이 주문의 취소·해제인 것).
pub async fn replayed(db: &DatabaseConnection, user: Uuid, order: &OrderId, change: SetChange) -> AppResult<OrderCoupons> {
    let now = domain::now();
    match change {
        SetChange::Reserve => return OrderCoupons::attached_now(db, user, order, |uc| uc.held_by(now).is_some()).await,
        SetChange::Use => return OrderCoupons::attached_now(db, user, order, |uc| uc.is_used).await,
        SetChange::Cancel | SetChange::Release => {}
    }
    let kind = if change == SetChange::Cancel { EventType::CouponCancelled } else { EventType::CouponReleased };
    let mut recorded = Vec::new();
    let mut shown = Vec::new();
    for (uc, c) in repo::user_coupon::list_by_user(db, user, false).await? {
        if uc.order_id.is_some() {
            continue;
        }
        if let Some(e) = repo::ledger::last_for(db, uc.id).await?
            && e.kind == kind.as_str()
            && e.order_id.as_deref() == Some(order.as_str())
        {
            recorded.push(UserCoupon {
                order_id: e.order_id,
                order_amount: e.order_amount,
                discount_amount: e.discount_amount,
                ..uc.clone()
            });
            shown.push((uc, c));
        }
    }
    Ok(OrderCoupons::of(order, &recorded, shown))
}

/// `reserveCoupons`: 뷰어의 발급 내역들을 한 주문에 모두 보류하거나, 아무것도 하지 않는다.
/// 검사 순서: 모두 뷰어의 것 → 허용되는 묶음 → 주어진 순서대로 쿠폰마다 7절의 규칙 → 예산.
/// 같은 주문으로 다시 보류하면 묶음을 바꾼다: 빠진 것은 풀리고, 남는 것은 새 보류를 받는다.
#[allow(clippy::too_many_arguments)]
pub async fn reserve_set(
    db: &DatabaseConnection,
    viewer: Option<&Viewer>,
    ids: &[Uuid],
    order: &OrderId,
    amount: Decimal,
    ttl: chrono::Duration,
    key: Option<&IdemKey>,
) -> AppResult<OrderCoupons> {
    let user = Viewer::require(viewer)?.user_id;
    stacking::check_ids(ids)?;
    retrying("reserveCoupons", || reserve_set_once(db, user, ids, order, amount, ttl, key)).await
}

async fn reserve_set_once(
    db: &DatabaseConnection,
    user: Uuid,
    ids: &[Uuid],
    order: &OrderId,
    amount: Decimal,
    ttl: chrono::Duration,
    key: Option<&IdemKey>,
) -> AppResult<OrderCoupons> {
    let now = domain::now();
    let Some(mut locked) = Locked::open(db, user).await?.record_key(key, ids[0], now).await? else {
        return replay(db, key.ok_or(AppError::TryAgain)?, user, order, SetChange::Reserve).await;
    };
    let work = async {
        let by_id: HashMap<Uuid, &UserCoupon> = locked.rows.iter().map(|uc| (uc.id, uc)).collect();
        let set: Vec<UserCoupon> =
            ids.iter().map(|id| by_id.get(id).map(|uc| (*uc).clone()).ok_or(AppError::UserCouponNotFound)).collect::<AppResult<_>>()?;
        let leaving = locked.attached(order, |uc| uc.held_by(now).is_some() && !ids.contains(&uc.id));
        locked.load_coupons(&set.iter().chain(&leaving).collect::<Vec<_>>()).await?;
        let members: Vec<Member> = set
            .iter()
            .map(|uc| Ok(Member { user_coupon_id: uc.id, coupon_id: uc.coupon_id, stacking: locked.coupon(uc)?.stacking }))
            .collect::<AppResult<_>>()?;
        stacking::check_set(&members)?;
        let mut full = Vec::with_capacity(set.len());
        for uc in &set {
            full.push(checkout::check_reserve(uc, locked.coupon(uc)?, now, order, amount).map_err(|e| e.in_set(uc.id))?);
        }
        let order_amount = full.first().map(|a| a.order_amount).unwrap_or_default();
        let shares = stacking::shares(&full.iter().map(|a| a.discount_amount).collect::<Vec<_>>(), order_amount);
        let until = now + ttl;
        let mut events = Vec::new();
        let mut held = Vec::with_capacity(set.len());
        for (pos, (uc, share)) in set.iter().zip(&shares).enumerate() {
            let coupon = locked.coupon(uc)?;
            let amounts = Amounts { order_amount, discount_amount: *share };
            let place = Place { set_position: i32::try_from(pos).ok(), held_at: now };
            if !repo::user_coupon::reserve(&locked.txn, uc.id, order.as_str(), until, amounts, place, now).await? {
                return Err(AppError::Internal(format!("잠근 발급 내역 {}의 보류가 0행", uc.id)));
            }
            let before = coupon.budget.map(|_| uc.budget_share());
            settle_budget(&locked.txn, coupon.id, uc.id, before, *share, now).await.map_err(|e| e.in_set(uc.id))?;
            let now_held = UserCoupon {
                order_id: Some(order.as_str().to_owned()),
                reserved_until: Some(until),
                order_amount: Some(order_amount),
                discount_amount: Some(*share),
                set_position: place.set_position,
                held_at: Some(now),
                ..uc.clone()
            };
            events.push(NewEvent::for_user_coupon(EventType::CouponReserved, &now_held, now));
            held.push((now_held, coupon.clone()));
        }
        for uc in &leaving {
            events.push(detach(&locked.txn, uc, locked.coupon(uc)?, order, SetChange::Release, now).await?);
        }
        let recorded: Vec<UserCoupon> = held.iter().map(|(uc, _)| uc.clone()).collect();
        Ok((events, OrderCoupons::of(order, &recorded, held)))
    }
    .await;
    finish(locked.txn, work).await
}

/// `useOrderCoupons`: 이 주문이 보류한 것을 모두 쓰거나 아무것도. 금액이 주어지면 그 금액으로 할인을 다시 나눈다.
/// 다시 보내면(이미 이 주문이 썼으면) 같은 답. 보류도 사용도 없으면 USER_COUPON_NOT_FOUND.
pub async fn use_set(
    db: &DatabaseConnection,
    viewer: Option<&Viewer>,
    order: &OrderId,
    amount: Option<Decimal>,
    key: Option<&IdemKey>,
) -> AppResult<OrderCoupons> {
    let user = Viewer::require(viewer)?.user_id;
    retrying("useOrderCoupons", || use_set_once(db, user, order, amount, key)).await
}

async fn use_set_once(
    db: &DatabaseConnection,
    user: Uuid,
    order: &OrderId,
    amount: Option<Decimal>,
    key: Option<&IdemKey>,
) -> AppResult<OrderCoupons> {
    let now = domain::now();
    let locked = Locked::open(db, user).await?;
    let held = locked.attached(order, |uc| uc.held_by(now).is_some());
    let Some(first) = held.first().map(|uc| uc.id) else {
        // 보류가 없다: 이미 이 주문이 쓴 것이 있으면 그대로 답하고(재시도), 없으면 찾을 수 없다.
        let mut locked = locked;
        let used = locked.attached(order, |uc| uc.is_used);
        let work = async {
            if used.is_empty() {
                return Err(AppError::UserCouponNotFound);
            }
            locked.load_coupons(&used.iter().collect::<Vec<_>>()).await?;
            let shown = used.iter().map(|uc| Ok((uc.clone(), locked.coupon(uc)?.clone()))).collect::<AppResult<Vec<_>>>()?;
            Ok((Vec::new(), OrderCoupons::of(order, &used, shown)))
        }
        .await;
        return finish(locked.txn, work).await;
    };
    let Some(mut locked) = locked.record_key(key, first, now).await? else {
        return replay(db, key.ok_or(AppError::TryAgain)?, user, order, SetChange::Use).await;
    };
    let work = async {
        let earlier = locked.attached(order, |uc| uc.is_used);
        locked.load_coupons(&held.iter().chain(&earlier).collect::<Vec<_>>()).await?;
        // 금액: 주어진 것, 없으면 보류 때 기록한 것 (묶음의 보류는 모두 같은 금액을 기록한다).
        let amount = amount.or_else(|| stacking::recorded_totals(held.iter()).0.into());
        let mut full = Vec::with_capacity(held.len());
        for uc in &held {
            match checkout::check_use(uc, locked.coupon(uc)?, now, Some(order), amount).map_err(|e| e.in_set(uc.id))? {
                UseDecision::Apply(Some(a)) => full.push(a),
                // 보류는 늘 금액을 기록하므로 금액 없는 사용이나 이미 쓴 것은 여기 오지 않는다.
                _ => return Err(AppError::Internal(format!("보류 {}의 사용 판정이 어긋남", uc.id))),
            }
        }
        let order_amount = full.first().map(|a| a.order_amount).unwrap_or_default();
        let shares = stacking::shares(&full.iter().map(|a| a.discount_amount).collect::<Vec<_>>(), order_amount);
        let mut events = Vec::new();
        let mut used = Vec::new();
        for (uc, share) in held.iter().zip(&shares) {
            let coupon = locked.coupon(uc)?;
            let amounts = Amounts { order_amount, discount_amount: *share };
            let place = Place { set_position: uc.set_position, held_at: uc.held_at.unwrap_or(now) };
            if !repo::user_coupon::mark_used(&locked.txn, uc.id, now, Some(order.as_str()), Some(amounts), place).await? {
                return Err(AppError::Internal(format!("잠근 보류 {}의 사용이 0행", uc.id)));
            }
            settle_budget(&locked.txn, coupon.id, uc.id, coupon.budget.map(|_| uc.budget_share()), *share, now)
                .await
                .map_err(|e| e.in_set(uc.id))?;
            let now_used = UserCoupon {
                is_used: true,
                used_at: Some(now),
                reserved_until: None,
                order_amount: Some(order_amount),
                discount_amount: Some(*share),
                ..uc.clone()
            };
            events.push(NewEvent::for_user_coupon(EventType::CouponUsed, &now_used, now));
            used.push(now_used);
        }
        let mut all: Vec<UserCoupon> = used.into_iter().chain(earlier).collect();
        all.sort_by_key(stacking::order_key);
        let shown = all.iter().map(|uc| Ok((uc.clone(), locked.coupon(uc)?.clone()))).collect::<AppResult<Vec<_>>>()?;
        Ok((events, OrderCoupons::of(order, &all, shown)))
    }
    .await;
    finish(locked.txn, work).await
}

/// `cancelOrderCoupons`와 `releaseOrderCoupons`: 이 주문이 쓴 것을 모두 되돌리거나, 이 주문의 보류를 모두 푼다.
/// 바꾼 것과 기록되어 있던 금액으로 답하고, 바꿀 것이 없으면 아무것도 바꾸지 않고 빈 답.
pub async fn end_set(
    db: &DatabaseConnection,
    viewer: Option<&Viewer>,
    order: &OrderId,
    change: SetChange,
    key: Option<&IdemKey>,
) -> AppResult<OrderCoupons> {
    let user = Viewer::require(viewer)?.user_id;
    let name = if change == SetChange::Cancel { "cancelOrderCoupons" } else { "releaseOrderCoupons" };
    retrying(name, || end_set_once(db, user, order, change, key)).await
}

async fn end_set_once(
    db: &DatabaseConnection,
    user: Uuid,
    order: &OrderId,
    change: SetChange,
    key: Option<&IdemKey>,
) -> AppResult<OrderCoupons> {
    let now = domain::now();
    let cancel = change == SetChange::Cancel;
    let locked = Locked::open(db, user).await?;
    let targets = locked.attached(order, |uc| if cancel { uc.is_used } else { uc.held_by(now).is_some() });
    let Some(first) = targets.first().map(|uc| uc.id) else {
        return finish(locked.txn, Ok((Vec::new(), OrderCoupons::of(order, &[], Vec::new())))).await;
    };
    let Some(mut locked) = locked.record_key(key, first, now).await? else {
        return replay(db, key.ok_or(AppError::TryAgain)?, user, order, change).await;
    };
    let work = async {
        locked.load_coupons(&targets.iter().collect::<Vec<_>>()).await?;
        let mut events = Vec::new();
        let mut shown = Vec::new();
        for uc in &targets {
            let coupon = locked.coupon(uc)?;
            events.push(detach(&locked.txn, uc, coupon, order, change, now).await?);
            shown.push((UserCoupon { is_used: false, used_at: None, ..uc.clone().without_order() }, coupon.clone()));
        }
        Ok((events, OrderCoupons::of(order, &targets, shown)))
    }
    .await;
    finish(locked.txn, work).await
}

/// 잠근 발급 내역 하나를 주문에서 뗀다: 취소(사용 → 미사용) 또는 해제(보류를 푼다). 예산의 몫을 돌려주고 그 이벤트를
/// 돌려준다 (이벤트는 떨어진 주문을 남긴다: 취소의 재시도가 알아보도록).
async fn detach(
    txn: &DatabaseTransaction,
    uc: &UserCoupon,
    coupon: &Coupon,
    order: &OrderId,
    change: SetChange,
    now: DateTime<Utc>,
) -> AppResult<NewEvent> {
    let (changed, kind) = if change == SetChange::Cancel {
        (repo::user_coupon::mark_unused(txn, uc.id, Some(order.as_str())).await?, EventType::CouponCancelled)
    } else {
        (repo::user_coupon::release(txn, uc.id, order.as_str(), now).await?, EventType::CouponReleased)
    };
    if !changed {
        return Err(AppError::Internal(format!("잠근 발급 내역 {}의 변경이 0행", uc.id)));
    }
    settle_budget(txn, coupon.id, uc.id, coupon.budget.map(|_| uc.budget_share()), Decimal::ZERO, now).await?;
    Ok(NewEvent::for_user_coupon(kind, uc, now))
}

/// `orderCoupons`: 이 주문이 보류했거나 쓴 것 (본인의 것, 관리자는 `user_id`로 누구의 것이든). 없으면 None.
pub async fn of_order(
    db: &DatabaseConnection,
    viewer: Option<&Viewer>,
    order: &OrderId,
    user_id: Option<Uuid>,
) -> AppResult<Option<OrderCoupons>> {
    let user = Viewer::act_for(viewer, user_id)?;
    let now = domain::now();
    let found = OrderCoupons::attached_now(db, user, order, |uc| uc.attached_now(now)).await?;
    Ok((!found.coupons.is_empty()).then_some(found))
}

/// `bestCoupons`: 지금 이 금액의 주문에 쓸 수 있는 쿠폰(`applicableCoupons`와 같은 목록) 가운데 허용되는 묶음으로 할인이
/// 가장 큰 것. 남은 예산이 할인보다 작은 쿠폰은 뺀다: 쿠폰 행의 카운터로 보고, 모자라 보일 때만 (카운터에는 아직 돌려받지
/// 않은 만료된 보류가 남아 있을 수 있으므로) `budgetRemaining`과 같은 합계를 읽는다. 아무것도 쓰지 않는다.
/// 답: (할인이 큰 순의 쿠폰과 각 할인, 묶음의 할인).
pub async fn best(
    db: &DatabaseConnection,
    list: Vec<(UserCoupon, Coupon)>,
    amount: Decimal,
    now: DateTime<Utc>,
) -> AppResult<(Vec<(UserCoupon, Coupon, Decimal)>, Decimal)> {
    let applicable = super::user_coupons::applicable(list, amount, now);
    let mut candidates = Vec::with_capacity(applicable.len());
    for (uc, c, d) in &applicable {
        if let Some(budget) = c.budget
            && budget - c.budget_spent < *d
            && budget - repo::user_coupon::budget_spent(db, c.id, now, None).await? < *d
        {
            continue;
        }
        candidates.push(Candidate {
            user_coupon_id: uc.id,
            coupon_id: c.id,
            stacking: c.stacking,
            discount: *d,
            valid_until: c.valid_until,
        });
    }
    let (chosen, total) = stacking::best_set(candidates, amount.round_dp(2));
    let mut by_id: HashMap<Uuid, (UserCoupon, Coupon, Decimal)> = applicable.into_iter().map(|t| (t.0.id, t)).collect();
    Ok((chosen.iter().filter_map(|c| by_id.remove(&c.user_coupon_id)).collect(), total))
}

/// 연합 그래프의 `Order.coupons` (CONTRACT 13절): 주문마다 지금 붙은(보류 중이거나 사용된) 발급 내역, 묶음의 순서로.
/// 보는 사람의 것만, 관리자면 모든 사용자의 것. 주문이 몇 개든 질의 한 번 (`_entities`의 DataLoader가 모아 부른다).
pub async fn attached_to_orders(
    db: &DatabaseConnection,
    viewer: Option<&Viewer>,
    orders: &[String],
) -> AppResult<HashMap<String, Vec<(UserCoupon, Coupon)>>> {
    let viewer = Viewer::require(viewer)?;
    let user = (!viewer.is_admin()).then_some(viewer.user_id);
    let now = domain::now();
    let mut out: HashMap<String, Vec<(UserCoupon, Coupon)>> = HashMap::new();
    for (uc, c) in repo::user_coupon::of_orders(db, user, orders).await? {
        if uc.attached_now(now)
            && let Some(order) = uc.order_id.clone()
        {
            out.entry(order).or_default().push((uc, c));
        }
    }
    for rows in out.values_mut() {
        rows.sort_by_key(|(uc, _)| stacking::order_key(uc));
    }
    Ok(out)
}
