//! 한 주문의 여러 쿠폰 (CONTRACT 12절)의 답: 주문의 쿠폰들과 가장 큰 할인의 묶음.
use async_graphql::Object;
use sea_orm::DatabaseConnection;

use super::errors::GqlResultExt;
use super::scalars::Decimal;
use super::user_coupon::UserCoupon;
use crate::domain::{OrderId, Viewer};
use crate::service::order_sets::{self, SetChange};

pub struct OrderCoupons(pub order_sets::OrderCoupons);

impl OrderCoupons {
    /// 이미 커밋된 키의 재시도: 다시 하지 않고 그 주문의 지금 모습으로 답한다.
    pub async fn replayed(
        db: &DatabaseConnection,
        viewer: Option<&Viewer>,
        order: &OrderId,
        change: SetChange,
    ) -> async_graphql::Result<Self> {
        let user = Viewer::require(viewer).gql()?.user_id;
        Ok(OrderCoupons(order_sets::replayed(db, user, order, change).await.gql()?))
    }
}

/// What one order holds or used.
#[Object]
impl OrderCoupons {
    /// The order.
    async fn order_id(&self) -> &str {
        &self.0.order_id
    }

    /// In the set's order; coupons held singly come after, in the order they were held.
    async fn user_coupons(&self) -> Vec<UserCoupon> {
        self.0.coupons.iter().cloned().map(UserCoupon::with_coupon).collect()
    }

    /// The order amount recorded last; "0.00" when nothing changed.
    async fn order_amount(&self) -> Decimal {
        Decimal::money(self.0.order_amount)
    }

    /// Sum of the coupons' discounts, never more than orderAmount.
    async fn discount_amount(&self) -> Decimal {
        Decimal::money(self.0.discount_amount)
    }
}

/// An allowed set of coupons and its discount.
pub struct CouponSet {
    pub coupons: Vec<(crate::domain::UserCoupon, crate::domain::Coupon)>,
    pub discount_amount: rust_decimal::Decimal,
}

/// An allowed set of coupons and its total discount.
#[Object]
impl CouponSet {
    /// Largest discount first, then by id.
    async fn user_coupons(&self) -> Vec<UserCoupon> {
        self.coupons.iter().cloned().map(UserCoupon::with_coupon).collect()
    }

    /// The set's discount, never more than the order amount.
    async fn discount_amount(&self) -> Decimal {
        Decimal::money(self.discount_amount)
    }
}
