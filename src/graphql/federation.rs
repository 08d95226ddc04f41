//! Apollo Federation v2 (CONTRACT 13절): `_entities`가 푸는 엔터티와, 주문 서비스가 가진 `Order`에 더하는 `coupons`.
//!
//! 대표값(representation)마다 같은 요청의 DataLoader에 키를 넣으므로 100개가 와도 타입마다 질의 한 번이다.
//! 대표값 하나의 오류(권한, 잘못된 id)는 그 항목만 null과 오류로: async-graphql은 항목 하나의 Err로 `_entities`
//! 전체를 버리므로(try_join_all) 여기서 오류를 응답에 옮겨 적고 None을 돌려준다.
use async_graphql::{Context, ErrorExtensions, ID, Object};

use super::context::{parse_uuid, viewer};
use super::coupon::Coupon;
use super::errors::GqlResultExt;
use super::guards::Authenticated;
use super::loaders::{CouponKey, Loaders, UserCouponKey, UserKey};
use super::user::User;
use super::user_coupon::UserCoupon;
use crate::domain::Viewer;
use crate::error::AppError;

/// 주문 서비스의 주문: couponql은 그 주문의 쿠폰만 더한다. id는 주문 서비스의 것이라 형식을 보지 않는다.
pub struct Order {
    id: String,
    /// `_entities`가 대표값을 받자마자 읽어 둔 쿠폰 (필드를 풀 때 키를 넣으면 배치가 쪼개진다: `UserKey` 참고).
    prefetched: Option<Vec<(crate::domain::UserCoupon, crate::domain::Coupon)>>,
}

/// An order owned by the order service; couponql adds the coupons it holds or used.
#[Object]
impl Order {
    /// The order's id (any string; the order service's).
    async fn id(&self) -> ID {
        ID(self.id.clone())
    }

    /// The caller's user coupons held by (RESERVED) or used on (USED) this order, in the set's order; an ADMIN sees every user's.
    #[graphql(guard = "Authenticated")]
    async fn coupons(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<UserCoupon>> {
        let rows = match &self.prefetched {
            Some(rows) => rows.clone(),
            None => loaders(ctx)?.orders.load_one(self.id.clone()).await.map_err(|e| e.extend())?.unwrap_or_default(),
        };
        Ok(rows.into_iter().map(UserCoupon::with_coupon).collect())
    }
}

fn loaders<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Loaders> {
    ctx.data::<Loaders>().map_err(|_| AppError::Internal("요청에 DataLoader가 없음".into()).extend())
}

/// 항목 하나의 오류는 그 항목만: 오류를 응답에 적고 null.
fn per_item<T>(ctx: &Context<'_>, found: async_graphql::Result<Option<T>>) -> Option<T> {
    found.unwrap_or_else(|e| {
        ctx.add_error(e.into_server_error(ctx.item.pos));
        None
    })
}

/// `coupon(id)`처럼: 없으면 null.
pub async fn coupon(ctx: &Context<'_>, id: &ID) -> Option<Coupon> {
    let found = async {
        let id = parse_uuid("id", id)?;
        Ok(loaders(ctx)?.coupons.load_one(CouponKey(id)).await.map_err(|e| e.extend())?.map(Coupon))
    };
    per_item(ctx, found.await)
}

/// `user(id)`처럼: 토큰이 있어야 하고, USER는 자기 id만. 없으면 null.
pub async fn user(ctx: &Context<'_>, id: &ID) -> Option<User> {
    let found = async {
        Viewer::require(viewer(ctx)).gql()?;
        let id = parse_uuid("id", id)?;
        let id = Viewer::act_for(viewer(ctx), Some(id)).gql()?;
        // 선택된 발급 내역 목록도 같은 배치로 (선택은 `_entities` 전체에서 본다: 다른 타입의 `coupons`도 센다).
        let key = UserKey { id, coupons: User::coupons_wanted(ctx) };
        let found = loaders(ctx)?.users.load_one(key).await.map_err(|e| e.extend())?;
        Ok(found.map(|(user, list)| match (key.coupons, list) {
            (Some(flag), Some(list)) => User::with_coupons(user, flag, list),
            _ => User::batched(user),
        }))
    };
    per_item(ctx, found.await)
}

/// 발급 내역: 토큰이 있어야 하고, 없거나 남의 것(관리자가 아니면)은 null과 USER_COUPON_NOT_FOUND.
pub async fn user_coupon(ctx: &Context<'_>, id: &ID) -> Option<UserCoupon> {
    let found = async {
        let viewer = Viewer::require(viewer(ctx)).gql()?;
        let id = parse_uuid("id", id)?;
        let row = loaders(ctx)?.user_coupon.load_one(UserCouponKey(id)).await.map_err(|e| e.extend())?;
        match row {
            Some(row) if viewer.is_admin() || row.0.user_id == viewer.user_id => Ok(Some(UserCoupon::with_coupon(row))),
            _ => Err(AppError::UserCouponNotFound.extend()),
        }
    };
    per_item(ctx, found.await)
}

/// 주문은 어느 id로든 있다 (쿠폰이 없으면 빈 목록). 토큰이 있고 `coupons`가 선택되었으면 쿠폰을 같은 배치로 읽어 둔다
/// (토큰이 없으면 필드의 가드가 UNAUTHENTICATED로 답한다).
pub async fn order(ctx: &Context<'_>, id: ID) -> Option<Order> {
    if viewer(ctx).is_none() || !ctx.look_ahead().field("coupons").exists() {
        return Some(Order { id: id.0, prefetched: None });
    }
    let found = async { Ok(loaders(ctx)?.orders.load_one(id.0.clone()).await.map_err(|e| e.extend())?.unwrap_or_default()) };
    per_item(ctx, found.await.map(Some)).map(|rows| Order { id: id.0, prefetched: Some(rows) })
}
