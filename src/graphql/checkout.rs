//! 주문에 쿠폰을 쓰는 일의 답: 사용 검증(dry run)과 주문에 쓸 수 있는 쿠폰.
use async_graphql::{Object, SimpleObject};

use super::scalars::Decimal;
use super::user_coupon::UserCoupon;

// `validateCoupon`의 답: useCoupon이 지금 할 대답. 스키마 설명에 싣지 않으려고 문서 주석이 아니다.
#[derive(SimpleObject)]
pub struct CouponValidation {
    pub valid: bool,
    /// The error code useCoupon would answer now; null when valid.
    pub code: Option<String>,
    pub message: Option<String>,
    /// The discount this order would get; 0 when not valid.
    pub discount_amount: Decimal,
}

pub struct ApplicableCoupon {
    pub user_coupon: UserCoupon,
    pub discount_amount: rust_decimal::Decimal,
}

#[Object]
impl ApplicableCoupon {
    async fn user_coupon(&self) -> &UserCoupon {
        &self.user_coupon
    }

    async fn discount_amount(&self) -> Decimal {
        Decimal::money(self.discount_amount)
    }
}
