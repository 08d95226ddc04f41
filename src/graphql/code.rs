//! 쿠폰 코드와 코드 생성 결과.
use async_graphql::{ID, Object, SimpleObject};

use super::scalars::DateTime;
use crate::domain;

pub struct CouponCode(pub domain::code::CouponCode);

#[Object]
impl CouponCode {
    async fn code(&self) -> &str {
        &self.0.code
    }

    async fn coupon_id(&self) -> ID {
        ID(self.0.coupon_id.to_string())
    }

    /// null: unlimited (a chosen code); 1 for generated codes.
    async fn max_redemptions(&self) -> Option<i32> {
        self.0.max_redemptions
    }

    async fn redemptions(&self) -> i32 {
        self.0.redemptions
    }

    async fn created_at(&self) -> DateTime {
        DateTime::utc(self.0.created_at)
    }
}

#[derive(SimpleObject)]
pub struct CodeBatch {
    pub coupon_id: ID,
    pub count: i32,
    /// Up to 10 of the new codes.
    pub sample: Vec<String>,
}
