//! 원장의 이벤트: 쿠폰 이벤트(9절)와 발급 내역 하나의 이력.
use async_graphql::{Enum, ErrorExtensions, ID, Object};

use super::scalars::{DateTime, Decimal};
use crate::domain;
use crate::error::AppError;

/// What happened to a user coupon.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "UserCouponEventKind")]
pub enum UserCouponEventKindGql {
    /// Issued to the user.
    Issued,
    /// Held for an order.
    Reserved,
    /// The order's hold ended (an expired hold writes no event).
    Released,
    /// Used on an order.
    Used,
    /// A use reverted (the order was cancelled).
    Cancelled,
}

/// 발급 내역 하나의 변경 (원장의 한 줄).
pub struct UserCouponEvent(pub domain::Event);

/// One change of a user coupon.
#[Object]
impl UserCouponEvent {
    /// What happened.
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

    /// The order involved; null when none.
    async fn order_id(&self) -> Option<&str> {
        self.0.order_id.as_deref()
    }

    /// The order amount recorded with the change; null when none.
    async fn order_amount(&self) -> Option<Decimal> {
        self.0.order_amount.map(Decimal::money)
    }

    /// The discount recorded with the change; null when none.
    async fn discount_amount(&self) -> Option<Decimal> {
        self.0.discount_amount.map(Decimal::money)
    }

    /// When it happened.
    async fn at(&self) -> DateTime {
        DateTime::utc(self.0.occurred_at)
    }
}

/// 원장의 한 줄 (CONTRACT 9절).
pub struct CouponEvent(pub domain::Stamped);

/// One change, as written to the event stream in the transaction that made it.
#[Object]
impl CouponEvent {
    /// The event's id (a UUID).
    async fn id(&self) -> ID {
        ID(self.0.event.id.to_string())
    }

    /// Position in the event stream: increasing; see 'Order' below.
    async fn sequence(&self) -> String {
        self.0.sequence.to_string()
    }

    /// What happened: COUPON_CREATED, COUPON_UPDATED, COUPON_PAUSED, COUPON_RESUMED, COUPON_ARCHIVED, CODES_GENERATED, COUPON_ISSUED, COUPON_SOLD_OUT, COUPON_RESERVED, COUPON_RELEASED, COUPON_USED, COUPON_CANCELLED or COUPON_AUDIENCE_CHANGED.
    #[graphql(name = "type")]
    async fn kind(&self) -> &str {
        &self.0.event.kind
    }

    /// The coupon it concerns.
    async fn coupon_id(&self) -> ID {
        ID(self.0.event.coupon_id.to_string())
    }

    /// The user it concerns; null when none.
    async fn user_id(&self) -> Option<ID> {
        self.0.event.user_id.map(|id| ID(id.to_string()))
    }

    /// The user coupon it concerns; null when none.
    async fn user_coupon_id(&self) -> Option<ID> {
        self.0.event.user_coupon_id.map(|id| ID(id.to_string()))
    }

    /// The order it concerns; null when none.
    async fn order_id(&self) -> Option<&str> {
        self.0.event.order_id.as_deref()
    }

    /// When the change committed.
    async fn occurred_at(&self) -> DateTime {
        DateTime::utc(self.0.event.occurred_at)
    }
}
