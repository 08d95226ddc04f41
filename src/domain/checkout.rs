//! 결제 흐름의 규칙(CONTRACT 7절): 주문 번호, 보류 시간, 보류·사용·취소의 판정 순서. I/O 없음.
//!
//! 판정은 읽은 상태에 대해 내린다. 실제 변경은 저장소의 조건부 UPDATE가 데이터베이스에서 다시 확인하므로,
//! 읽은 뒤 끼어든 경쟁은 UPDATE가 0행을 바꾸는 것으로 드러나고, 서비스가 다시 읽어 같은 판정을 내린다.
use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;

use super::{Coupon, UserCoupon};
use crate::error::{AppError, AppResult};

/// 주문 번호: 1..64자의 `A-Z a-z 0-9 . _ : -`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderId(String);

impl OrderId {
    pub fn parse(raw: &str) -> AppResult<Self> {
        let ok = (1..=64).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        if ok {
            Ok(OrderId(raw.to_owned()))
        } else {
            Err(AppError::bad_input("orderId", "orderId: 1~64자의 A-Z a-z 0-9 . _ : - 여야 합니다"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 보류 시간: 60..3600초.
pub fn hold_ttl(seconds: i32) -> AppResult<Duration> {
    if (60..=3600).contains(&seconds) {
        Ok(Duration::seconds(i64::from(seconds)))
    } else {
        Err(AppError::bad_input("ttlSeconds", "ttlSeconds: 60~3600이어야 합니다"))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserCouponStatus {
    Available,
    Reserved,
    Used,
}

impl UserCoupon {
    /// 지금 유효한 보류의 주문 (만료된 보류는 보류가 아니다: 정리 작업 없이 읽을 때 판단한다).
    pub fn held_by(&self, now: DateTime<Utc>) -> Option<&str> {
        match (&self.order_id, self.reserved_until) {
            (Some(order), Some(until)) if !self.is_used && until > now => Some(order.as_str()),
            _ => None,
        }
    }

    /// 지금 주문에 붙어 있는지: 그 주문에 쓰였거나, 유효한 보류로 잡혀 있다 (`orderCoupons`와 `Order.coupons`).
    pub fn attached_now(&self, now: DateTime<Utc>) -> bool {
        self.is_used || self.held_by(now).is_some()
    }

    pub fn status(&self, now: DateTime<Utc>) -> UserCouponStatus {
        if self.is_used {
            UserCouponStatus::Used
        } else if self.held_by(now).is_some() {
            UserCouponStatus::Reserved
        } else {
            UserCouponStatus::Available
        }
    }

    /// 클라이언트에게 보여 줄 모습: 만료된 보류는 풀린 것과 같다 (주문 필드 없음).
    pub fn as_seen(self, now: DateTime<Utc>) -> Self {
        if !self.is_used && self.held_by(now).is_none() { self.without_order() } else { self }
    }

    /// 주문 필드(주문, 보류 시각, 금액)를 비운 모습: 보류가 풀렸거나 사용이 취소되었을 때.
    pub fn without_order(self) -> Self {
        UserCoupon {
            order_id: None,
            reserved_until: None,
            order_amount: None,
            discount_amount: None,
            set_position: None,
            held_at: None,
            ..self
        }
    }
}

/// 주문에 붙는 자리: 묶음 안의 순서(따로 보류·사용하면 None)와 붙은 시각 (CONTRACT 12절의 답 순서).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    pub set_position: Option<i32>,
    pub held_at: DateTime<Utc>,
}

impl UserCoupon {
    /// 7절의 쿠폰 하나짜리 보류·사용이 붙이는 자리: 이 주문이 이미 보류한 것이면 그 자리 그대로, 아니면 묶음 밖의 새 자리.
    pub fn single_place(&self, order: Option<&OrderId>, now: DateTime<Utc>) -> Place {
        match (order, self.held_by(now)) {
            (Some(o), Some(holder)) if o.as_str() == holder => {
                Place { set_position: self.set_position, held_at: self.held_at.unwrap_or(now) }
            }
            _ => Place { set_position: None, held_at: now },
        }
    }
}

/// 기록할 금액과 그 할인 (소수 둘째 자리까지).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Amounts {
    pub order_amount: Decimal,
    pub discount_amount: Decimal,
}

impl Amounts {
    fn of(coupon: &Coupon, amount: Decimal) -> Self {
        Amounts { order_amount: amount.round_dp(2), discount_amount: coupon.discount_for(amount) }
    }
}

/// `reserveCoupon`: 미사용 → 다른 주문의 보류가 아님 → 유효기간 → 최소 주문 금액.
pub fn check_reserve(uc: &UserCoupon, coupon: &Coupon, now: DateTime<Utc>, order: &OrderId, amount: Decimal) -> AppResult<Amounts> {
    if uc.is_used {
        return Err(AppError::CouponAlreadyUsed);
    }
    if uc.held_by(now).is_some_and(|o| o != order.as_str()) {
        return Err(AppError::CouponReserved);
    }
    coupon.check_window(now)?;
    if !coupon.meets_min_purchase(amount) {
        return Err(AppError::MinPurchaseNotMet);
    }
    Ok(Amounts::of(coupon, amount))
}

/// `useCoupon`의 판정.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UseDecision {
    /// 같은 주문이 이미 썼다: 바뀐 것 없이 그대로 답한다 (재시도).
    AlreadyDone,
    /// 사용으로 바꾼다. 금액이 없으면(주문 번호 없는 옛 호출) 기록하지 않는다.
    Apply(Option<Amounts>),
}

/// `useCoupon`: 사용됨(같은 주문이면 재시도) → 다른 주문의 보류(또는 주문 번호 없이 보류 중) → 유효기간 → 최소 주문 금액
/// (주어진 금액, 없으면 보류 때의 금액).
pub fn check_use(
    uc: &UserCoupon,
    coupon: &Coupon,
    now: DateTime<Utc>,
    order: Option<&OrderId>,
    amount: Option<Decimal>,
) -> AppResult<UseDecision> {
    if uc.is_used {
        return match (order, uc.order_id.as_deref()) {
            (Some(o), Some(used_by)) if o.as_str() == used_by => Ok(UseDecision::AlreadyDone),
            _ => Err(AppError::CouponAlreadyUsed),
        };
    }
    if let Some(holder) = uc.held_by(now)
        && order.is_none_or(|o| o.as_str() != holder)
    {
        return Err(AppError::CouponReserved);
    }
    coupon.check_window(now)?;
    let held_amount = uc.held_by(now).and(uc.order_amount);
    let amount = amount.or(held_amount);
    if let Some(a) = amount
        && !coupon.meets_min_purchase(a)
    {
        return Err(AppError::MinPurchaseNotMet);
    }
    // 예산이 있는 쿠폰은 예산에서 뺄 할인액을 알아야 한다 (CONTRACT 11절: 7절의 규칙 다음, 예산 앞).
    if coupon.budget.is_some() && amount.is_none() {
        return Err(AppError::bad_input("orderAmount", "orderAmount: 예산이 있는 쿠폰은 주문 금액(또는 이 주문의 보류)이 있어야 합니다"));
    }
    Ok(UseDecision::Apply(amount.map(|a| Amounts::of(coupon, a))))
}

/// `cancelCoupon`의 판정.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelDecision {
    AlreadyDone,
    Apply,
}

/// `cancelCoupon`: 주문 번호가 있으면 그 주문이 쓴 것만 되돌린다. 이미 이 주문으로 취소된 것(마지막 이벤트가
/// 이 주문의 CANCELLED)은 재시도로 보고 그대로 답한다. `last_cancelled_by`: 마지막 이벤트가 취소라면 그 주문.
pub fn check_cancel(uc: &UserCoupon, order: Option<&OrderId>, last_cancelled_by: Option<Option<&str>>) -> AppResult<CancelDecision> {
    let Some(order) = order else {
        return if uc.is_used { Ok(CancelDecision::Apply) } else { Err(AppError::CouponNotUsed) };
    };
    if uc.is_used {
        return if uc.order_id.as_deref() == Some(order.as_str()) { Ok(CancelDecision::Apply) } else { Err(AppError::OrderMismatch) };
    }
    if last_cancelled_by == Some(Some(order.as_str())) { Ok(CancelDecision::AlreadyDone) } else { Err(AppError::CouponNotUsed) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DiscountType;
    use uuid::Uuid;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc)
    }

    fn coupon() -> Coupon {
        Coupon {
            id: Uuid::from_u128(1),
            name: "c".into(),
            discount_type: DiscountType::Percentage,
            discount_value: Decimal::from(10),
            min_purchase_amount: Some(Decimal::from(10_000)),
            max_discount_amount: Some(Decimal::from(3_000)),
            total_quantity: None,
            issued_quantity: 1,
            valid_from: t("2025-01-01T00:00:00Z"),
            valid_until: t("2099-01-01T00:00:00Z"),
            created_at: t("2025-01-01T00:00:00Z"),
            updated_at: t("2025-01-01T00:00:00Z"),
            status: crate::domain::CouponStatus::Active,
            version: 0,
            per_user_limit: 1,
            restricted: false,
            waves: Vec::new(),
            budget: None,
            budget_spent: Decimal::ZERO,
            stacking: crate::domain::Stacking::Exclusive,
        }
    }

    fn uc() -> UserCoupon {
        UserCoupon {
            id: Uuid::from_u128(2),
            user_id: Uuid::from_u128(3),
            coupon_id: Uuid::from_u128(1),
            is_used: false,
            used_at: None,
            issued_at: t("2025-01-02T00:00:00Z"),
            order_id: None,
            reserved_until: None,
            order_amount: None,
            discount_amount: None,
            slot: 1,
            code: None,
            set_position: None,
            held_at: None,
        }
    }

    fn order(s: &str) -> OrderId {
        OrderId::parse(s).expect("order id")
    }

    const NOW: &str = "2026-06-01T12:00:00Z";

    #[test]
    fn order_ids_and_ttls_are_checked() {
        assert!(OrderId::parse("ORD-2026:12_01.a").is_ok());
        for bad in ["", "with space", "한글", &"x".repeat(65)] {
            assert!(matches!(OrderId::parse(bad), Err(AppError::BadUserInput { ref field, .. }) if field == "orderId"), "{bad}");
        }
        assert!(hold_ttl(60).is_ok() && hold_ttl(3600).is_ok());
        assert!(hold_ttl(59).is_err() && hold_ttl(3601).is_err());
    }

    #[test]
    fn an_expired_hold_is_no_hold() {
        let mut held = uc();
        held.order_id = Some("A".into());
        held.reserved_until = Some(t("2026-06-01T12:00:01Z"));
        assert_eq!(held.status(t(NOW)), UserCouponStatus::Reserved);
        assert_eq!(held.status(t("2026-06-01T12:00:01Z")), UserCouponStatus::Available);
        let seen = held.as_seen(t("2026-06-01T13:00:00Z"));
        assert_eq!((seen.order_id, seen.reserved_until), (None, None));
    }

    #[test]
    fn reserve_checks_in_contract_order() {
        let c = coupon();
        let now = t(NOW);
        let mut used = uc();
        used.is_used = true;
        assert!(matches!(check_reserve(&used, &c, now, &order("A"), Decimal::ONE), Err(AppError::CouponAlreadyUsed)));
        let mut held = uc();
        held.order_id = Some("B".into());
        held.reserved_until = Some(t("2026-06-01T12:10:00Z"));
        assert!(matches!(check_reserve(&held, &c, now, &order("A"), Decimal::from(50_000)), Err(AppError::CouponReserved)));
        // 같은 주문은 보류를 새로 고친다.
        let a = check_reserve(&held, &c, now, &order("B"), Decimal::from(50_000)).expect("refresh");
        assert_eq!(a.discount_amount, Decimal::from(3_000));
        assert!(matches!(check_reserve(&uc(), &c, now, &order("A"), Decimal::from(9_999)), Err(AppError::MinPurchaseNotMet)));
        assert!(matches!(
            check_reserve(&uc(), &c, t("2100-01-01T00:00:00Z"), &order("A"), Decimal::from(50_000)),
            Err(AppError::CouponExpired)
        ));
    }

    #[test]
    fn use_is_tied_to_its_order() {
        let c = coupon();
        let now = t(NOW);
        let mut used = uc();
        used.is_used = true;
        used.order_id = Some("A".into());
        assert_eq!(check_use(&used, &c, now, Some(&order("A")), None).ok(), Some(UseDecision::AlreadyDone));
        assert!(matches!(check_use(&used, &c, now, Some(&order("B")), None), Err(AppError::CouponAlreadyUsed)));
        assert!(matches!(check_use(&used, &c, now, None, None), Err(AppError::CouponAlreadyUsed)));
        let mut held = uc();
        held.order_id = Some("A".into());
        held.reserved_until = Some(t("2026-06-01T12:10:00Z"));
        held.order_amount = Some(Decimal::from(20_000));
        assert!(matches!(check_use(&held, &c, now, None, None), Err(AppError::CouponReserved)));
        assert!(matches!(check_use(&held, &c, now, Some(&order("B")), None), Err(AppError::CouponReserved)));
        // 보류한 주문은 보류 때의 금액으로 쓴다.
        let d = check_use(&held, &c, now, Some(&order("A")), None).expect("use");
        assert_eq!(d, UseDecision::Apply(Some(Amounts { order_amount: Decimal::from(20_000), discount_amount: Decimal::from(2_000) })));
        // 옛 호출(주문 번호·금액 없음)은 5절 그대로.
        assert_eq!(check_use(&uc(), &c, now, None, None).ok(), Some(UseDecision::Apply(None)));
    }

    #[test]
    fn cancel_is_tied_to_its_order_and_retries_are_recognised() {
        let mut used = uc();
        used.is_used = true;
        used.order_id = Some("A".into());
        assert_eq!(check_cancel(&used, Some(&order("A")), None).ok(), Some(CancelDecision::Apply));
        assert!(matches!(check_cancel(&used, Some(&order("B")), None), Err(AppError::OrderMismatch)));
        assert_eq!(check_cancel(&uc(), Some(&order("A")), Some(Some("A"))).ok(), Some(CancelDecision::AlreadyDone));
        assert!(matches!(check_cancel(&uc(), Some(&order("B")), Some(Some("A"))), Err(AppError::CouponNotUsed)));
        assert!(matches!(check_cancel(&uc(), None, None), Err(AppError::CouponNotUsed)));
        assert_eq!(check_cancel(&used, None, None).ok(), Some(CancelDecision::Apply));
    }
}
