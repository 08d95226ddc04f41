//! 쿠폰과 그 열거형(할인 종류, 발급 상태), 관리자용 집계.
use async_graphql::{Context, Enum, ID, Object, SimpleObject};

use super::context::{db, viewer};
use super::errors::GqlResultExt;
use super::scalars::{DateTime, Decimal};
use crate::domain::{self, money};
use crate::service;

/// How a coupon's discount is computed.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "DiscountType", remote = "crate::domain::DiscountType")]
pub enum DiscountTypeGql {
    /// An amount of money off, at most the order amount.
    Fixed,
    /// A percentage of the order amount, rounded down to 0.01 and capped by maxDiscountAmount.
    Percentage,
}

/// Whether a coupon combines with others on one order.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "StackingPolicy", remote = "crate::domain::Stacking")]
pub enum StackingPolicyGql {
    /// Alone on its order.
    Exclusive,
    /// Combines with other STACKABLE coupons, at most 5 on one order.
    Stackable,
}

/// Where a coupon is in its lifecycle: ACTIVE and PAUSED switch back and forth; ARCHIVED is final.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "CouponStatus", remote = "crate::domain::CouponStatus")]
pub enum CouponStatusGql {
    /// Issued as usual.
    Active,
    /// Not issued for now (COUPON_PAUSED); coupons already issued stay usable.
    Paused,
    /// Retired: never issued or changed again; left out of coupons unless includeArchived. Coupons already issued stay usable.
    Archived,
}

pub struct Coupon(pub domain::Coupon);

/// A discount that can be issued to users; each user holds it as a UserCoupon.
#[Object]
impl Coupon {
    /// The coupon's id (a UUID).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Display name, exactly as given.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// How the discount is computed.
    async fn discount_type(&self) -> DiscountTypeGql {
        self.0.discount_type.into()
    }

    /// FIXED: an amount of money. PERCENTAGE: a percentage in (0, 100].
    async fn discount_value(&self) -> Decimal {
        Decimal::money(self.0.discount_value)
    }

    /// Smallest order amount the coupon applies to; null: no minimum.
    async fn min_purchase_amount(&self) -> Option<Decimal> {
        self.0.min_purchase_amount.map(Decimal::money)
    }

    /// Cap on a PERCENTAGE discount.
    async fn max_discount_amount(&self) -> Option<Decimal> {
        self.0.max_discount_amount.map(Decimal::money)
    }

    /// null: unlimited.
    async fn total_quantity(&self) -> Option<i32> {
        self.0.total_quantity
    }

    /// How many have been issued.
    async fn issued_quantity(&self) -> i32 {
        self.0.issued_quantity
    }

    /// How many user coupons of this coupon one user may be issued in all (1..100).
    async fn per_user_limit(&self) -> i32 {
        self.0.per_user_limit
    }

    /// true: only the coupon's audience members may be issued it.
    async fn restricted(&self) -> bool {
        self.0.restricted
    }

    /// Whether it combines with other coupons on one order.
    async fn stacking(&self) -> StackingPolicyGql {
        self.0.stacking.into()
    }

    /// ADMIN only. Members of the audience.
    #[graphql(guard = "super::guards::AdminOnly")]
    async fn audience_size(&self, ctx: &Context<'_>) -> async_graphql::Result<i32> {
        let n = service::audiences::size(db(ctx)?, viewer(ctx), self.0.id).await.gql()?;
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }

    /// null: unlimited.
    async fn remaining_quantity(&self) -> Option<i32> {
        self.0.remaining_quantity()
    }

    /// The release schedule, earliest first; empty: everything at validFrom.
    async fn waves(&self) -> Vec<ReleaseWave> {
        self.0.waves.iter().map(|w| ReleaseWave { at: DateTime::utc(w.at), quantity: w.quantity }).collect()
    }

    /// Quantity released by now (cumulative); null: unlimited.
    async fn released_quantity(&self) -> Option<i32> {
        self.0.released_quantity(domain::now())
    }

    /// When the next wave opens; null when none is left.
    async fn next_release_at(&self) -> Option<DateTime> {
        self.0.next_release_at(domain::now()).map(DateTime::utc)
    }

    /// Total discount money this coupon may give (current uses plus unexpired holds); null: no cap.
    async fn budget(&self) -> Option<Decimal> {
        self.0.budget.map(Decimal::money)
    }

    /// ADMIN only. budget minus the discounts of current uses and unexpired holds; null without a budget.
    #[graphql(guard = "super::guards::AdminOnly")]
    async fn budget_remaining(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Decimal>> {
        Ok(service::coupons::budget_remaining(db(ctx)?, viewer(ctx), &self.0).await.gql()?.map(Decimal::money))
    }

    /// Start of the validity window.
    async fn valid_from(&self) -> DateTime {
        DateTime::utc(self.0.valid_from)
    }

    /// End of the validity window.
    async fn valid_until(&self) -> DateTime {
        DateTime::utc(self.0.valid_until)
    }

    /// ACTIVE, inside its validity window now, and released stock left (false between waves once a wave is sold out).
    async fn is_available(&self) -> bool {
        self.0.is_available(domain::now())
    }

    /// Where the coupon is in its lifecycle.
    async fn status(&self) -> CouponStatusGql {
        self.0.status.into()
    }

    /// ADMIN only.
    #[graphql(guard = "super::guards::AdminOnly")]
    async fn stats(&self, ctx: &Context<'_>) -> async_graphql::Result<CouponStats> {
        let s = service::coupons::stats(db(ctx)?, viewer(ctx), self.0.id).await.gql()?;
        let count = |n: i64| i32::try_from(n).unwrap_or(i32::MAX);
        Ok(CouponStats {
            issued: count(s.holders.issued),
            used: count(s.holders.used),
            reserved: count(s.holders.reserved),
            unused: count(s.holders.issued - s.holders.used),
            order_amount_total: Decimal::money(s.holders.order_amount_total),
            discount_total: Decimal::money(s.holders.discount_total),
            codes_generated: count(s.codes_generated),
            codes_redeemed: count(s.codes_redeemed),
            // 예산이 없으면 0.00 (CONTRACT 11절).
            budget_used: Decimal::money(if self.0.budget.is_some() { s.holders.discount_total } else { rust_decimal::Decimal::ZERO }),
            budget_held: Decimal::money(if self.0.budget.is_some() { s.holders.discount_held } else { rust_decimal::Decimal::ZERO }),
        })
    }

    /// The discount this coupon gives an order of this amount (0 below minPurchaseAmount).
    async fn discount_for(
        &self,
        #[graphql(desc = "The order amount: at least 0, below 10^8.")] order_amount: Decimal,
    ) -> async_graphql::Result<Decimal> {
        let amount = order_amount.raw("orderAmount").and_then(|raw| money::parse_order_amount("orderAmount", &raw)).gql()?;
        Ok(Decimal::money(self.0.discount_for(amount)))
    }

    /// When the coupon was created.
    async fn created_at(&self) -> DateTime {
        DateTime::utc(self.0.created_at)
    }

    /// When the coupon last changed.
    async fn updated_at(&self) -> DateTime {
        DateTime::utc(self.0.updated_at)
    }
}

// 쿠폰 하나의 집계 (관리자 전용).
/// Totals for one coupon.
#[derive(SimpleObject)]
pub struct CouponStats {
    /// User coupons issued.
    pub issued: i32,
    /// User coupons used now (cancelled uses excluded).
    pub used: i32,
    /// Unexpired holds.
    pub reserved: i32,
    /// issued − used.
    pub unused: i32,
    /// Over current uses (cancelled uses excluded).
    pub order_amount_total: Decimal,
    /// Discounts of current uses (cancelled uses excluded).
    pub discount_total: Decimal,
    /// Generated single-use codes (chosen codes not counted).
    pub codes_generated: i32,
    /// Redemptions of this coupon's codes, generated and chosen.
    pub codes_redeemed: i32,
    /// Discounts of current uses counted against the budget; "0.00" without a budget.
    pub budget_used: Decimal,
    /// Discounts of unexpired holds counted against the budget; "0.00" without a budget.
    pub budget_held: Decimal,
}

/// One opening of a coupon's release schedule.
#[derive(SimpleObject)]
pub struct ReleaseWave {
    /// When this wave opens.
    pub at: DateTime,
    /// How many coupons it releases (what it does not sell rolls over).
    pub quantity: i32,
}
