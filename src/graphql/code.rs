//! 쿠폰 코드와 코드 생성 결과.
use async_graphql::{ID, Object, SimpleObject};

use super::scalars::DateTime;
use crate::domain;

pub struct CouponCode(pub domain::code::CouponCode);

/// A code that issues its coupon to whoever redeems it.
#[Object]
impl CouponCode {
    /// The code (A-Z 0-9); matched ignoring case, spaces and hyphens.
    async fn code(&self) -> &str {
        &self.0.code
    }

    /// The coupon it issues.
    async fn coupon_id(&self) -> ID {
        ID(self.0.coupon_id.to_string())
    }

    /// null: unlimited (a chosen code); 1 for generated codes.
    async fn max_redemptions(&self) -> Option<i32> {
        self.0.max_redemptions
    }

    /// How many times it has been redeemed.
    async fn redemptions(&self) -> i32 {
        self.0.redemptions
    }

    /// When it was added.
    async fn created_at(&self) -> DateTime {
        DateTime::utc(self.0.created_at)
    }
}

/// The codes one generateCouponCodes call made.
#[derive(SimpleObject)]
pub struct CodeBatch {
    /// The coupon the codes issue.
    pub coupon_id: ID,
    /// How many codes were made.
    pub count: i32,
    /// Up to 10 of the new codes.
    pub sample: Vec<String>,
}
