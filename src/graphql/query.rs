//! Query 루트.
use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, ID, Object};

use super::checkout::CouponValidation;
use super::code::CouponCode;
use super::context::{db, parse_uuid, viewer};
use super::coupon::Coupon;
use super::errors::GqlResultExt;
use super::event::CouponEvent;
use super::federation::{self, Order};
use super::guards::{AdminOnly, Authenticated};
use super::order::OrderCoupons;
use super::scalars::Decimal;
use super::user::User;
use super::user_coupon::UserCoupon;
use crate::domain::OrderId;
use crate::domain::money;
use crate::service;
use crate::service::page::Page;

/// 서비스의 한 페이지를 Relay 연결로: 항목마다 커서와 GraphQL 타입.
fn connection<T, N: async_graphql::OutputType>(
    has_previous_page: bool,
    page: Page<T>,
    cursor: impl Fn(&T) -> String,
    node: impl Fn(T) -> N,
) -> Connection<String, N> {
    let mut conn = Connection::new(has_previous_page, page.has_next_page);
    conn.edges.extend(page.items.into_iter().map(|item| Edge::new(cursor(&item), node(item))));
    conn
}

pub struct QueryRoot;

/// Reading coupons, user coupons, users and events.
#[Object(name = "Query")]
impl QueryRoot {
    /// null when absent.
    #[graphql(cache_control(max_age = 5))]
    async fn coupon(&self, ctx: &Context<'_>, #[graphql(desc = "The coupon's id.")] id: ID) -> async_graphql::Result<Option<Coupon>> {
        let id = parse_uuid("id", &id)?;
        Ok(service::coupons::get(db(ctx)?, id).await.gql()?.map(Coupon))
    }

    /// Newest first. first: 1..100.
    #[graphql(cache_control(max_age = 5))]
    async fn coupons(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false, desc = "true: only coupons with isAvailable.")] available_only: bool,
        #[graphql(default = false, desc = "true: ARCHIVED coupons too.")] include_archived: bool,
        #[graphql(default = 20, desc = "How many to return: 1..100.")] first: Option<i32>,
        #[graphql(desc = "Continue after this cursor (pageInfo.endCursor); null: from the start.")] after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Coupon>> {
        let page = service::coupons::list(db(ctx)?, viewer(ctx), available_only, include_archived, first, after.as_deref()).await.gql()?;
        Ok(connection(after.is_some(), page, service::coupons::cursor, Coupon))
    }

    /// Newest first.
    #[graphql(guard = "AdminOnly")]
    async fn coupon_codes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The coupon whose codes to list.")] coupon_id: ID,
        #[graphql(desc = "true: only codes redeemed at least once; false: only codes never redeemed; null: all.")] redeemed: Option<bool>,
        #[graphql(default = 20, desc = "How many to return: 1..100.")] first: Option<i32>,
        #[graphql(desc = "Continue after this cursor (pageInfo.endCursor); null: from the start.")] after: Option<String>,
    ) -> async_graphql::Result<Connection<String, CouponCode>> {
        let coupon_id = parse_uuid("couponId", &coupon_id)?;
        let page = service::codes::list(db(ctx)?, viewer(ctx), coupon_id, redeemed, first, after.as_deref()).await.gql()?;
        Ok(connection(after.is_some(), page, service::codes::cursor, CouponCode))
    }

    /// Holders of a coupon, newest first.
    #[graphql(guard = "AdminOnly")]
    async fn coupon_holders(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The coupon whose holders to list.")] coupon_id: ID,
        #[graphql(default = 20, desc = "How many to return: 1..100.")] first: Option<i32>,
        #[graphql(desc = "Continue after this cursor (pageInfo.endCursor); null: from the start.")] after: Option<String>,
    ) -> async_graphql::Result<Connection<String, UserCoupon>> {
        let coupon_id = parse_uuid("couponId", &coupon_id)?;
        let page = service::coupons::holders(db(ctx)?, viewer(ctx), coupon_id, first, after.as_deref()).await.gql()?;
        Ok(connection(after.is_some(), page, service::coupons::holder_cursor, UserCoupon::alone))
    }

    /// Events (section 9), oldest first; couponId null: all coupons.
    #[graphql(guard = "AdminOnly")]
    async fn coupon_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only this coupon's events; null: all coupons.")] coupon_id: Option<ID>,
        #[graphql(default = 50, desc = "How many to return: 1..100.")] first: Option<i32>,
        #[graphql(desc = "Continue after this cursor (pageInfo.endCursor); null: from the start.")] after: Option<String>,
    ) -> async_graphql::Result<Connection<String, CouponEvent>> {
        let coupon_id = coupon_id.map(|id| parse_uuid("couponId", &id)).transpose()?;
        let page = service::coupons::events(db(ctx)?, viewer(ctx), coupon_id, first, after.as_deref()).await.gql()?;
        Ok(connection(after.is_some(), page, |e| e.sequence.to_string(), CouponEvent))
    }

    /// Defaults to the viewer. Newest first.
    #[graphql(guard = "Authenticated")]
    async fn user_coupons(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Whose coupons (another user's: ADMIN only); null: the viewer.")] user_id: Option<ID>,
        #[graphql(default = false, desc = "true: leave out used coupons.")] unused_only: bool,
    ) -> async_graphql::Result<Vec<UserCoupon>> {
        let user_id = user_id.map(|id| parse_uuid("userId", &id)).transpose()?;
        let list = service::user_coupons::list(db(ctx)?, viewer(ctx), user_id, unused_only).await.gql()?;
        Ok(list.into_iter().map(UserCoupon::with_coupon).collect())
    }

    /// The viewer (the token's user).
    #[graphql(guard = "Authenticated")]
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        // 발급 내역을 함께 묻는 흔한 모양(me { coupons { coupon } })은 사용자와 내역과 쿠폰을 문장 하나로 읽는다.
        match User::coupons_wanted(ctx) {
            Some(unused_only) => {
                let (user, list) = service::users::me_with_coupons(db(ctx)?, viewer(ctx), unused_only).await.gql()?;
                Ok(User::with_coupons(user, unused_only, list))
            }
            None => Ok(User::single(service::users::me(db(ctx)?, viewer(ctx)).await.gql()?)),
        }
    }

    /// null when absent.
    #[graphql(guard = "Authenticated")]
    async fn user(&self, ctx: &Context<'_>, #[graphql(desc = "The user's id.")] id: ID) -> async_graphql::Result<Option<User>> {
        let id = parse_uuid("id", &id)?;
        Ok(service::users::get(db(ctx)?, viewer(ctx), id).await.gql()?.map(User::single))
    }

    /// At most 100 ids; result in the order of ids, null for unknown ones.
    #[graphql(guard = "AdminOnly")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "User ids, at most 100.")] ids: Vec<ID>,
    ) -> async_graphql::Result<Vec<Option<User>>> {
        let ids = ids.iter().map(|id| parse_uuid("ids", id)).collect::<Result<Vec<_>, _>>()?;
        let found = service::users::get_many(db(ctx)?, viewer(ctx), &ids).await.gql()?;
        User::list(ctx, found).await
    }

    /// What is held for or used by this order (viewer's own; ADMIN: anyone's, with userId).
    #[graphql(guard = "Authenticated")]
    async fn order_coupons(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The order.")] order_id: String,
        #[graphql(desc = "Whose order (another user: ADMIN only); null: the viewer.")] user_id: Option<ID>,
    ) -> async_graphql::Result<Option<OrderCoupons>> {
        let order = OrderId::parse(&order_id).gql()?;
        let user_id = user_id.map(|id| parse_uuid("userId", &id)).transpose()?;
        Ok(service::order_sets::of_order(db(ctx)?, viewer(ctx), &order, user_id).await.gql()?.map(OrderCoupons))
    }

    // 연합 그래프의 엔터티 (CONTRACT 13절): `_entities`만 부른다 (스키마의 필드가 아니다).
    #[graphql(entity)]
    async fn find_coupon_by_id(&self, ctx: &Context<'_>, id: ID) -> Option<Coupon> {
        federation::coupon(ctx, &id).await
    }

    #[graphql(entity)]
    async fn find_user_by_id(&self, ctx: &Context<'_>, id: ID) -> Option<User> {
        federation::user(ctx, &id).await
    }

    #[graphql(entity)]
    async fn find_user_coupon_by_id(&self, ctx: &Context<'_>, id: ID) -> Option<UserCoupon> {
        federation::user_coupon(ctx, &id).await
    }

    #[graphql(entity)]
    async fn find_order_by_id(&self, ctx: &Context<'_>, id: ID) -> Option<Order> {
        federation::order(ctx, id).await
    }

    /// A dry run of useCoupon: what it would answer now. Writes nothing.
    #[graphql(guard = "Authenticated")]
    async fn validate_coupon(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user coupon to check.")] user_coupon_id: ID,
        #[graphql(desc = "The order amount: at least 0, below 10^8.")] order_amount: Decimal,
        #[graphql(desc = "The order useCoupon would get; null: none.")] order_id: Option<String>,
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
