//! 주문에 쿠폰을 쓰는 일의 답: 사용 검증(dry run)과 주문에 쓸 수 있는 쿠폰.
use async_graphql::{Object, SimpleObject};

use super::scalars::Decimal;
use super::user_coupon::UserCoupon;

// `validateCoupon`의 답: useCoupon이 지금 할 대답.
/// What useCoupon would answer now (validateCoupon).
#[derive(SimpleObject)]
pub struct CouponValidation {
    /// Whether useCoupon would succeed now.
    pub valid: bool,
    /// The error code useCoupon would answer now; null when valid.
    pub code: Option<String>,
    /// The message useCoupon would answer now; null when valid.
    pub message: Option<String>,
    /// The discount this order would get; 0 when not valid.
    pub discount_amount: Decimal,
}

pub struct ApplicableCoupon {
    pub user_coupon: UserCoupon,
    pub discount_amount: rust_decimal::Decimal,
}

/// A coupon the user can use on this order, with its discount.
#[Object]
impl ApplicableCoupon {
    /// The user coupon.
    async fn user_coupon(&self) -> &UserCoupon {
        &self.user_coupon
    }

    /// The discount it would give this order.
    async fn discount_amount(&self) -> Decimal {
        Decimal::money(self.discount_amount)
    }
}
