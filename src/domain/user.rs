//! 사용자와 발급받은 쿠폰(발급 내역).
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserCoupon {
    pub id: Uuid,
    pub user_id: Uuid,
    pub coupon_id: Uuid,
    pub is_used: bool,
    pub used_at: Option<DateTime<Utc>>,
    pub issued_at: DateTime<Utc>,
    /// 보류 중(RESERVED)이거나 사용한(USED) 주문.
    pub order_id: Option<String>,
    pub reserved_until: Option<DateTime<Utc>>,
    /// 보류·사용 때 기록한 주문 금액과 할인.
    pub order_amount: Option<Decimal>,
    pub discount_amount: Option<Decimal>,
    /// 이 사용자가 이 쿠폰에서 받은 몇 번째인지 (1..사용자당 한도). `(user_id, coupon_id, slot)`이 유일하다.
    pub slot: i32,
    /// 코드로 받았으면 그 코드 (정규화된 것). 고른 코드는 사용자당 한 번: `(code, user_id)`가 유일하다.
    pub code: Option<String>,
    /// `reserveCoupons`로 만든 묶음 안의 순서 (0부터, CONTRACT 12절). 따로 보류·사용한 것은 None.
    pub set_position: Option<i32>,
    /// 지금의 주문에 붙은(보류·사용) 시각: 따로 보류한 쿠폰은 묶음 뒤에 이 순서로 온다.
    pub held_at: Option<DateTime<Utc>>,
}

impl UserCoupon {
    /// 예산에서 이 발급 내역이 차지하는 몫: 사용했거나 주문이 붙어 있으면(보류, 만료되어 아직 돌려받지 않은 것 포함) 그 할인.
    pub fn budget_share(&self) -> Decimal {
        if self.is_used || self.order_id.is_some() { self.discount_amount.unwrap_or_default() } else { Decimal::ZERO }
    }

    /// 막 발급된 내역.
    pub fn issued(id: Uuid, user_id: Uuid, coupon_id: Uuid, slot: i32, issued_at: DateTime<Utc>) -> Self {
        UserCoupon {
            id,
            user_id,
            coupon_id,
            is_used: false,
            used_at: None,
            issued_at,
            order_id: None,
            reserved_until: None,
            order_amount: None,
            discount_amount: None,
            slot,
            code: None,
            set_position: None,
            held_at: None,
        }
    }
}
