//! Mutation 루트.
use async_graphql::{Context, ID, InputObject, Object};

use super::guards::{AdminOnly, Authenticated};
use super::scalars::{DateTime, Decimal};
use super::types::{Coupon, DiscountTypeGql, UserCoupon};
use super::{GqlResultExt, db, fresh_key, issuer, parse_uuid, replayed, viewer};
use crate::domain::checkout::{self, OrderId};
use crate::domain::{NewCouponInput, money};
use crate::service;

pub struct MutationRoot;

#[derive(InputObject)]
pub struct CreateCouponInput {
    name: String,
    discount_type: DiscountTypeGql,
    discount_value: Decimal,
    min_purchase_amount: Option<Decimal>,
    max_discount_amount: Option<Decimal>,
    total_quantity: Option<i32>,
    valid_from: DateTime,
    valid_until: DateTime,
}

#[Object(name = "Mutation")]
impl MutationRoot {
    /// Issues one coupon to a user (default: the viewer). Row-locked: never over-issues, never twice per user.
    #[graphql(guard = "Authenticated", complexity = "super::FETCH_COST + child_complexity")]
    async fn issue_coupon(&self, ctx: &Context<'_>, coupon_id: ID, user_id: Option<ID>) -> async_graphql::Result<UserCoupon> {
        let coupon_id = parse_uuid("couponId", &coupon_id)?;
        let user_id = user_id.map(|id| parse_uuid("userId", &id)).transpose()?;
        if let Some(done) = replayed(ctx).await {
            return done;
        }
        let uc = issuer(ctx)?.issue_for(viewer(ctx), coupon_id, user_id, fresh_key(ctx).cloned()).await.gql()?;
        Ok(UserCoupon::alone(uc))
    }

    /// Holds a user coupon for one order until used, released or expired. ttlSeconds: 60..3600.
    #[graphql(guard = "Authenticated", complexity = "super::FETCH_COST + child_complexity")]
    async fn reserve_coupon(
        &self,
        ctx: &Context<'_>,
        user_coupon_id: ID,
        order_id: String,
        order_amount: Decimal,
        #[graphql(default = 900)] ttl_seconds: i32,
    ) -> async_graphql::Result<UserCoupon> {
        let id = parse_uuid("userCouponId", &user_coupon_id)?;
        let order = OrderId::parse(&order_id).gql()?;
        let amount = order_amount.raw("orderAmount").and_then(|raw| money::parse_order_amount("orderAmount", &raw)).gql()?;
        let ttl = checkout::hold_ttl(ttl_seconds).gql()?;
        if let Some(done) = replayed(ctx).await {
            return done;
        }
        let uc = service::user_coupons::reserve(db(ctx)?, viewer(ctx), id, &order, amount, ttl, fresh_key(ctx)).await.gql()?;
        Ok(UserCoupon::alone(uc))
    }

    /// Ends this order's hold; when the order holds nothing, changes nothing.
    #[graphql(guard = "Authenticated", complexity = "super::FETCH_COST + child_complexity")]
    async fn release_coupon(&self, ctx: &Context<'_>, user_coupon_id: ID, order_id: String) -> async_graphql::Result<UserCoupon> {
        let id = parse_uuid("userCouponId", &user_coupon_id)?;
        let order = OrderId::parse(&order_id).gql()?;
        let uc = service::user_coupons::release(db(ctx)?, viewer(ctx), id, &order).await.gql()?;
        Ok(UserCoupon::alone(uc))
    }

    /// Marks a user coupon used. With orderAmount, also checks minPurchaseAmount.
    #[graphql(guard = "Authenticated", complexity = "super::FETCH_COST + child_complexity")]
    async fn use_coupon(
        &self,
        ctx: &Context<'_>,
        user_coupon_id: ID,
        order_amount: Option<Decimal>,
        order_id: Option<String>,
    ) -> async_graphql::Result<UserCoupon> {
        let id = parse_uuid("userCouponId", &user_coupon_id)?;
        let amount =
            order_amount.map(|a| a.raw("orderAmount").and_then(|raw| money::parse_order_amount("orderAmount", &raw))).transpose().gql()?;
        let order = order_id.as_deref().map(OrderId::parse).transpose().gql()?;
        if let Some(done) = replayed(ctx).await {
            return done;
        }
        let uc = service::user_coupons::use_coupon(db(ctx)?, viewer(ctx), id, amount, order.as_ref(), fresh_key(ctx)).await.gql()?;
        Ok(UserCoupon::alone(uc))
    }

    /// Reverts a use (the order was cancelled).
    #[graphql(guard = "Authenticated", complexity = "super::FETCH_COST + child_complexity")]
    async fn cancel_coupon(&self, ctx: &Context<'_>, user_coupon_id: ID, order_id: Option<String>) -> async_graphql::Result<UserCoupon> {
        let id = parse_uuid("userCouponId", &user_coupon_id)?;
        let order = order_id.as_deref().map(OrderId::parse).transpose().gql()?;
        if let Some(done) = replayed(ctx).await {
            return done;
        }
        let uc = service::user_coupons::cancel_coupon(db(ctx)?, viewer(ctx), id, order.as_ref(), fresh_key(ctx)).await.gql()?;
        Ok(UserCoupon::alone(uc))
    }

    #[graphql(guard = "AdminOnly", complexity = "super::FETCH_COST + child_complexity")]
    async fn create_coupon(&self, ctx: &Context<'_>, input: CreateCouponInput) -> async_graphql::Result<Coupon> {
        let input = NewCouponInput {
            name: input.name,
            discount_type: input.discount_type.into(),
            discount_value: input.discount_value.raw("discountValue").gql()?,
            min_purchase_amount: input.min_purchase_amount.map(|d| d.raw("minPurchaseAmount")).transpose().gql()?,
            max_discount_amount: input.max_discount_amount.map(|d| d.raw("maxDiscountAmount")).transpose().gql()?,
            total_quantity: input.total_quantity,
            valid_from: input.valid_from.raw("validFrom").gql()?,
            valid_until: input.valid_until.raw("validUntil").gql()?,
        };
        Ok(Coupon(service::coupons::create(db(ctx)?, viewer(ctx), input).await.gql()?))
    }
}
