//! 원장의 이벤트: 쿠폰 이벤트(9절)와 발급 내역 하나의 이력.
use async_graphql::{Enum, ErrorExtensions, ID, Object};

use super::scalars::{DateTime, Decimal};
use crate::domain;
use crate::error::AppError;

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "UserCouponEventKind")]
pub enum UserCouponEventKindGql {
    Issued,
    Reserved,
    Released,
    Used,
    Cancelled,
}

/// 발급 내역 하나의 변경 (원장의 한 줄).
pub struct UserCouponEvent(pub domain::Event);

#[Object]
impl UserCouponEvent {
    async fn kind(&self) -> async_graphql::Result<UserCouponEventKindGql> {
        Ok(match domain::EventType::parse(&self.0.kind) {
            Some(domain::EventType::CouponIssued) => UserCouponEventKindGql::Issued,
            Some(domain::EventType::CouponReserved) => UserCouponEventKindGql::Reserved,
            Some(domain::EventType::CouponReleased) => UserCouponEventKindGql::Released,
            Some(domain::EventType::CouponUsed) => UserCouponEventKindGql::Used,
            Some(domain::EventType::CouponCancelled) => UserCouponEventKindGql::Cancelled,
            _ => return Err(AppError::Internal(format!("발급 내역 이벤트가 아님: {}", self.0.kind)).extend()),
        })
    }

    async fn order_id(&self) -> Option<&str> {
        self.0.order_id.as_deref()
    }

    async fn order_amount(&self) -> Option<Decimal> {
        self.0.order_amount.map(Decimal::money)
    }

    async fn discount_amount(&self) -> Option<Decimal> {
        self.0.discount_amount.map(Decimal::money)
    }

    async fn at(&self) -> DateTime {
        DateTime::utc(self.0.occurred_at)
    }
}

/// 원장의 한 줄 (CONTRACT 9절).
pub struct CouponEvent(pub domain::Event);

#[Object]
impl CouponEvent {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Increasing, in commit order.
    async fn sequence(&self) -> String {
        self.0.sequence.to_string()
    }

    #[graphql(name = "type")]
    async fn kind(&self) -> &str {
        &self.0.kind
    }

    async fn coupon_id(&self) -> ID {
        ID(self.0.coupon_id.to_string())
    }

    async fn user_id(&self) -> Option<ID> {
        self.0.user_id.map(|id| ID(id.to_string()))
    }

    async fn user_coupon_id(&self) -> Option<ID> {
        self.0.user_coupon_id.map(|id| ID(id.to_string()))
    }

    async fn order_id(&self) -> Option<&str> {
        self.0.order_id.as_deref()
    }

    async fn occurred_at(&self) -> DateTime {
        DateTime::utc(self.0.occurred_at)
    }
}
