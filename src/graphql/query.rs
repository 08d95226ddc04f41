//! Query 루트.
use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, ID, Object};

use super::guards::{AdminOnly, Authenticated};
use super::scalars::Decimal;
use super::types::{Coupon, CouponValidation, User, UserCoupon};
use super::{GqlResultExt, db, parse_uuid, viewer};
use crate::domain::OrderId;
use crate::domain::money;
use crate::service;

pub struct QueryRoot;

#[Object(name = "Query")]
impl QueryRoot {
    /// null when absent.
    #[graphql(complexity = "super::FETCH_COST + child_complexity")]
    async fn coupon(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Coupon>> {
        let id = parse_uuid("id", &id)?;
        Ok(service::coupons::get(db(ctx)?, id).await.gql()?.map(Coupon))
    }

    /// Newest first. first: 1..100.
    #[graphql(complexity = "super::FETCH_COST + first.unwrap_or(20).clamp(1, 100) as usize * child_complexity")]
    async fn coupons(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false)] available_only: bool,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Coupon>> {
        let page = service::coupons::list(db(ctx)?, available_only, first, after.as_deref()).await.gql()?;
        let mut conn = Connection::new(after.is_some(), page.has_next_page);
        conn.edges.extend(page.items.into_iter().map(|c| Edge::new(service::coupons::encode_cursor(&c), Coupon(c))));
        Ok(conn)
    }

    /// Defaults to the viewer. Newest first.
    #[graphql(guard = "Authenticated", complexity = "super::FETCH_COST + child_complexity")]
    async fn user_coupons(
        &self,
        ctx: &Context<'_>,
        user_id: Option<ID>,
        #[graphql(default = false)] unused_only: bool,
    ) -> async_graphql::Result<Vec<UserCoupon>> {
        let user_id = user_id.map(|id| parse_uuid("userId", &id)).transpose()?;
        let list = service::user_coupons::list(db(ctx)?, viewer(ctx), user_id, unused_only).await.gql()?;
        Ok(list.into_iter().map(UserCoupon::with_coupon).collect())
    }

    #[graphql(guard = "Authenticated", complexity = "super::FETCH_COST + child_complexity")]
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        Ok(User::single(service::users::me(db(ctx)?, viewer(ctx)).await.gql()?))
    }

    /// null when absent.
    #[graphql(guard = "Authenticated", complexity = "super::FETCH_COST + child_complexity")]
    async fn user(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<User>> {
        let id = parse_uuid("id", &id)?;
        Ok(service::users::get(db(ctx)?, viewer(ctx), id).await.gql()?.map(User::single))
    }

    /// At most 100 ids; result in the order of ids, null for unknown ones.
    #[graphql(guard = "AdminOnly", complexity = "super::FETCH_COST + child_complexity")]
    async fn users(&self, ctx: &Context<'_>, ids: Vec<ID>) -> async_graphql::Result<Vec<Option<User>>> {
        let ids = ids.iter().map(|id| parse_uuid("ids", id)).collect::<Result<Vec<_>, _>>()?;
        let found = service::users::get_many(db(ctx)?, viewer(ctx), &ids).await.gql()?;
        User::list(ctx, found).await
    }

    /// A dry run of useCoupon: what it would answer now. Writes nothing.
    #[graphql(guard = "Authenticated", complexity = "super::FETCH_COST + child_complexity")]
    async fn validate_coupon(
        &self,
        ctx: &Context<'_>,
        user_coupon_id: ID,
        order_amount: Decimal,
        order_id: Option<String>,
    ) -> async_graphql::Result<CouponValidation> {
        let id = parse_uuid("userCouponId", &user_coupon_id)?;
        let amount = order_amount.raw("orderAmount").and_then(|raw| money::parse_order_amount("orderAmount", &raw)).gql()?;
        let order = order_id.as_deref().map(OrderId::parse).transpose().gql()?;
        let v = service::user_coupons::validate(db(ctx)?, viewer(ctx), id, amount, order.as_ref()).await.gql()?;
        Ok(CouponValidation {
            valid: v.error.is_none(),
            code: v.error.as_ref().map(|e| e.code().to_owned()),
            message: v.error.as_ref().map(|e| e.to_string()),
            discount_amount: Decimal::money(v.discount_amount),
        })
    }
}
