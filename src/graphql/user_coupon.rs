//! 발급 내역과 그 상태.
use async_graphql::{Context, Enum, ErrorExtensions, ID, Object};

use super::coupon::Coupon;
use super::event::UserCouponEvent;
use super::loaders::{CouponKey, HistoryKey, Loaders};
use super::scalars::{DateTime, Decimal};
use crate::domain;
use crate::error::AppError;

/// 발급 내역. 목록에서 온 것은 쿠폰을 이미 들고 있고(JOIN), 변경 결과처럼 혼자 온 것은 쿠폰 DataLoader로 읽는다.
pub struct UserCoupon(pub domain::UserCoupon, pub Option<domain::Coupon>);

impl UserCoupon {
    /// 만료된 보류는 풀린 것으로 보여 준다 (CONTRACT 7절).
    pub fn alone(uc: domain::UserCoupon) -> Self {
        UserCoupon(uc.as_seen(domain::now()), None)
    }

    pub fn with_coupon((uc, c): (domain::UserCoupon, domain::Coupon)) -> Self {
        UserCoupon(uc.as_seen(domain::now()), Some(c))
    }
}

/// Where a user coupon stands now.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "UserCouponStatus", remote = "crate::domain::UserCouponStatus")]
pub enum UserCouponStatusGql {
    /// Can be reserved or used (a hold past reservedUntil counts as released).
    Available,
    /// Held for one order until reservedUntil.
    Reserved,
    /// Used on an order.
    Used,
}

/// One coupon issued to one user.
#[Object]
impl UserCoupon {
    /// The user coupon's id (a UUID).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// The user it was issued to.
    async fn user_id(&self) -> ID {
        ID(self.0.user_id.to_string())
    }

    /// The coupon issued.
    // 목록에서 온 발급 내역은 쿠폰을 이미 들고 있다(JOIN). 아니면 같은 요청의 쿠폰 조회를 DataLoader로 모은다.
    async fn coupon(&self, ctx: &Context<'_>) -> async_graphql::Result<Coupon> {
        if let Some(c) = &self.1 {
            return Ok(Coupon(c.clone()));
        }
        let loaders = ctx.data::<Loaders>()?;
        let found = loaders.coupons.load_one(CouponKey(self.0.coupon_id)).await.map_err(|e| e.extend())?;
        found.map(Coupon).ok_or_else(|| AppError::Internal(format!("발급 내역 {}의 쿠폰이 없음", self.0.id)).extend())
    }

    /// Whether it is used (status USED).
    async fn is_used(&self) -> bool {
        self.0.is_used
    }

    /// When it was used; null unless used.
    async fn used_at(&self) -> Option<DateTime> {
        self.0.used_at.map(DateTime::utc)
    }

    /// When it was issued.
    async fn issued_at(&self) -> DateTime {
        DateTime::utc(self.0.issued_at)
    }

    /// Where it stands now.
    async fn status(&self) -> UserCouponStatusGql {
        self.0.status(domain::now()).into()
    }

    /// The order that holds (RESERVED) or used (USED) it.
    async fn order_id(&self) -> Option<&str> {
        self.0.order_id.as_deref()
    }

    /// When the hold ends; null unless RESERVED.
    async fn reserved_until(&self) -> Option<DateTime> {
        self.0.reserved_until.map(DateTime::utc)
    }

    /// Recorded at reservation and at use; null when no amount was given.
    async fn order_amount(&self) -> Option<Decimal> {
        self.0.order_amount.map(Decimal::money)
    }

    /// The discount recorded with orderAmount; null when no amount was given.
    async fn discount_amount(&self) -> Option<Decimal> {
        self.0.discount_amount.map(Decimal::money)
    }

    /// Every change of this user coupon, oldest first.
    async fn history(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<UserCouponEvent>> {
        let loaders = ctx.data::<Loaders>()?;
        let events = loaders.history.load_one(HistoryKey(self.0.id)).await.map_err(|e| e.extend())?.unwrap_or_default();
        Ok(events.into_iter().map(UserCouponEvent).collect())
    }
}
