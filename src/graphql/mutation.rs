//! Mutation 루트.
use std::net::{IpAddr, Ipv4Addr};

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object};

use super::audience::AudienceChange;
use super::code::{CodeBatch, CouponCode};
use super::context::{db, fresh_key, is_replay, issuer, parse_uuid, replayed, viewer};
use super::coupon::{Coupon, DiscountTypeGql, StackingPolicyGql};
use super::errors::GqlResultExt;
use super::guards::{AdminOnly, Authenticated};
use super::order::OrderCoupons;
use super::scalars::{DateTime, Decimal};
use super::user_coupon::UserCoupon;
use crate::domain::checkout::{self, OrderId};
use crate::domain::{self, CouponChangeInput, CouponStatus, NewCouponInput, Patch, money};
use crate::error::AppError;
use crate::net::ClientAddr;
use crate::service;
use crate::service::order_sets::SetChange;

pub struct MutationRoot;

/// A new coupon.
#[derive(InputObject)]
pub struct CreateCouponInput {
    /// Display name: any Unicode, stored exactly as sent.
    name: String,
    /// How the discount is computed.
    discount_type: DiscountTypeGql,
    /// FIXED: an amount of money. PERCENTAGE: a percentage in (0, 100].
    discount_value: Decimal,
    /// Smallest order amount the coupon applies to; null: no minimum.
    min_purchase_amount: Option<Decimal>,
    /// Cap on a PERCENTAGE discount.
    max_discount_amount: Option<Decimal>,
    /// null: unlimited.
    total_quantity: Option<i32>,
    /// Start of the validity window.
    valid_from: DateTime,
    /// End of the validity window; after validFrom.
    valid_until: DateTime,
    /// How many user coupons of this coupon one user may be issued in all (1..100).
    #[graphql(default_with = "Some(1)")]
    per_user_limit: Option<i32>,
    /// true: only the coupon's audience members may be issued it.
    #[graphql(default_with = "Some(false)")]
    restricted: Option<bool>,
    /// The release schedule (0..50 waves, at strictly increasing inside [validFrom, validUntil), quantities summing to totalQuantity); empty or absent: everything at validFrom.
    waves: Option<Vec<ReleaseWaveInput>>,
    /// Total discount money this coupon may give (current uses plus unexpired holds): > 0, at most 2 decimals, below 10^10; absent: no cap.
    budget: Option<Decimal>,
    /// Whether it combines with other coupons on one order.
    #[graphql(default_with = "Some(StackingPolicyGql::Exclusive)")]
    stacking: Option<StackingPolicyGql>,
}

/// One opening of a release schedule.
#[derive(InputObject)]
pub struct ReleaseWaveInput {
    /// When this wave opens.
    at: DateTime,
    /// How many coupons it releases (at least 1).
    quantity: i32,
}

/// GraphQL의 웨이브 입력을 도메인의 가공 전 입력으로 (시각의 형식 오류는 `waves`의 입력 오류).
fn waves_input(waves: Vec<ReleaseWaveInput>) -> Result<Vec<domain::ReleaseWaveInput>, AppError> {
    waves.into_iter().map(|w| Ok(domain::ReleaseWaveInput { at: w.at.raw("waves")?, quantity: w.quantity })).collect()
}

/// Changes to a coupon: only the fields present change; an explicit null clears a nullable field.
#[derive(InputObject)]
pub struct UpdateCouponInput {
    /// New display name.
    name: MaybeUndefined<String>,
    /// New smallest order amount; null: no minimum.
    min_purchase_amount: MaybeUndefined<Decimal>,
    /// New cap on a PERCENTAGE discount; null: no cap.
    max_discount_amount: MaybeUndefined<Decimal>,
    /// null: unlimited. Never below issuedQuantity.
    total_quantity: MaybeUndefined<i32>,
    /// New start of the validity window.
    valid_from: MaybeUndefined<DateTime>,
    /// New end of the validity window.
    valid_until: MaybeUndefined<DateTime>,
    /// A higher per-user limit (1..100); it can never be lowered, and null is refused.
    per_user_limit: MaybeUndefined<i32>,
    /// true: only the audience may be issued it; null is refused.
    restricted: MaybeUndefined<bool>,
    /// The whole new schedule: waves already opened are sent again unchanged, the others lie in the future; null or []: no schedule.
    waves: MaybeUndefined<Vec<ReleaseWaveInput>>,
    /// A new budget, never below what is used and held now; null: no cap.
    budget: MaybeUndefined<Decimal>,
    /// Whether it combines with other coupons on one order; null is refused.
    stacking: MaybeUndefined<StackingPolicyGql>,
}

/// `MaybeUndefined`(없음·null·값)를 도메인의 `Patch`로. 값은 `raw`로 꺼낸다(스칼라의 형식 오류는 그 필드의 입력 오류).
fn patch<T, U>(v: MaybeUndefined<T>, raw: impl FnOnce(T) -> Result<U, AppError>) -> Result<Patch<U>, AppError> {
    match v {
        MaybeUndefined::Undefined => Ok(Patch::Keep),
        MaybeUndefined::Null => Ok(Patch::Clear),
        MaybeUndefined::Value(v) => raw(v).map(Patch::Set),
    }
}

impl UpdateCouponInput {
    fn into_domain(self) -> Result<CouponChangeInput, AppError> {
        Ok(CouponChangeInput {
            name: patch(self.name, Ok)?,
            min_purchase_amount: patch(self.min_purchase_amount, |d| d.raw("minPurchaseAmount"))?,
            max_discount_amount: patch(self.max_discount_amount, |d| d.raw("maxDiscountAmount"))?,
            total_quantity: patch(self.total_quantity, Ok)?,
            valid_from: patch(self.valid_from, |d| d.raw("validFrom"))?,
            valid_until: patch(self.valid_until, |d| d.raw("validUntil"))?,
            per_user_limit: patch(self.per_user_limit, Ok)?,
            restricted: patch(self.restricted, Ok)?,
            waves: patch(self.waves, waves_input)?,
            budget: patch(self.budget, |d| d.raw("budget"))?,
            stacking: patch(self.stacking, |s| Ok(s.into()))?,
        })
    }
}

/// Issuing, holding, using and managing coupons.
#[Object(name = "Mutation")]
impl MutationRoot {
    /// Issues one coupon to a user (default: the viewer). Row-locked: never over-issues, never more than perUserLimit per user.
    #[graphql(guard = "Authenticated")]
    async fn issue_coupon(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The coupon to issue.")] coupon_id: ID,
        #[graphql(desc = "Who gets it (another user: ADMIN only); null: the viewer.")] user_id: Option<ID>,
    ) -> async_graphql::Result<UserCoupon> {
        let coupon_id = parse_uuid("couponId", &coupon_id)?;
        let user_id = user_id.map(|id| parse_uuid("userId", &id)).transpose()?;
        if let Some(done) = replayed(ctx).await {
            return done.map(UserCoupon::alone);
        }
        let uc = issuer(ctx)?.issue_for(viewer(ctx), coupon_id, user_id, fresh_key(ctx).cloned()).await.gql()?;
        Ok(UserCoupon::alone(uc))
    }

    /// Holds a user coupon for one order until used, released or expired. ttlSeconds: 60..3600.
    #[graphql(guard = "Authenticated")]
    async fn reserve_coupon(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user coupon to hold.")] user_coupon_id: ID,
        #[graphql(desc = "The order: 1..64 characters of A-Z a-z 0-9 . _ : -")] order_id: String,
        #[graphql(desc = "The order amount: at least 0, below 10^8. Checked against minPurchaseAmount and recorded.")]
        order_amount: Decimal,
        #[graphql(default = 900, desc = "How long the hold lasts, in seconds: 60..3600.")] ttl_seconds: i32,
    ) -> async_graphql::Result<UserCoupon> {
        let id = parse_uuid("userCouponId", &user_coupon_id)?;
        let order = OrderId::parse(&order_id).gql()?;
        let amount = order_amount.raw("orderAmount").and_then(|raw| money::parse_order_amount("orderAmount", &raw)).gql()?;
        let ttl = checkout::hold_ttl(ttl_seconds).gql()?;
        if let Some(done) = replayed(ctx).await {
            return done.map(UserCoupon::alone);
        }
        let uc = service::user_coupons::reserve(db(ctx)?, viewer(ctx), id, &order, amount, ttl, fresh_key(ctx)).await.gql()?;
        Ok(UserCoupon::alone(uc))
    }

    /// Ends this order's hold; when the order holds nothing, changes nothing.
    #[graphql(guard = "Authenticated")]
    async fn release_coupon(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user coupon held.")] user_coupon_id: ID,
        #[graphql(desc = "The order whose hold ends.")] order_id: String,
    ) -> async_graphql::Result<UserCoupon> {
        let id = parse_uuid("userCouponId", &user_coupon_id)?;
        let order = OrderId::parse(&order_id).gql()?;
        let uc = service::user_coupons::release(db(ctx)?, viewer(ctx), id, &order).await.gql()?;
        Ok(UserCoupon::alone(uc))
    }

    /// Marks a user coupon used. With orderAmount, also checks minPurchaseAmount.
    #[graphql(guard = "Authenticated")]
    async fn use_coupon(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user coupon to use.")] user_coupon_id: ID,
        #[graphql(desc = "The order amount: at least 0, below 10^8. null: the amount of the hold, if any.")] order_amount: Option<Decimal>,
        #[graphql(desc = "The order using it: 1..64 characters of A-Z a-z 0-9 . _ : -; needed when the coupon is held.")] order_id: Option<
            String,
        >,
    ) -> async_graphql::Result<UserCoupon> {
        let id = parse_uuid("userCouponId", &user_coupon_id)?;
        let amount =
            order_amount.map(|a| a.raw("orderAmount").and_then(|raw| money::parse_order_amount("orderAmount", &raw))).transpose().gql()?;
        let order = order_id.as_deref().map(OrderId::parse).transpose().gql()?;
        if let Some(done) = replayed(ctx).await {
            return done.map(UserCoupon::alone);
        }
        let uc = service::user_coupons::use_coupon(db(ctx)?, viewer(ctx), id, amount, order.as_ref(), fresh_key(ctx)).await.gql()?;
        Ok(UserCoupon::alone(uc))
    }

    /// Reverts a use (the order was cancelled).
    #[graphql(guard = "Authenticated")]
    async fn cancel_coupon(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The used user coupon.")] user_coupon_id: ID,
        #[graphql(desc = "The order that used it (another order: ORDER_MISMATCH); null: whichever.")] order_id: Option<String>,
    ) -> async_graphql::Result<UserCoupon> {
        let id = parse_uuid("userCouponId", &user_coupon_id)?;
        let order = order_id.as_deref().map(OrderId::parse).transpose().gql()?;
        if let Some(done) = replayed(ctx).await {
            return done.map(UserCoupon::alone);
        }
        let uc = service::user_coupons::cancel_coupon(db(ctx)?, viewer(ctx), id, order.as_ref(), fresh_key(ctx)).await.gql()?;
        Ok(UserCoupon::alone(uc))
    }

    /// Holds all of these user coupons for one order, or none of them. ttlSeconds: 60..3600.
    #[graphql(guard = "Authenticated")]
    async fn reserve_coupons(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The viewer's user coupons, in the order the set keeps (1..100, no repeats).")] user_coupon_ids: Vec<ID>,
        #[graphql(desc = "The order: 1..64 characters of A-Z a-z 0-9 . _ : -")] order_id: String,
        #[graphql(desc = "The order amount: at least 0, below 10^8. Each coupon's discount is on this whole amount.")]
        order_amount: Decimal,
        #[graphql(default = 900, desc = "How long the holds last, in seconds: 60..3600.")] ttl_seconds: i32,
    ) -> async_graphql::Result<OrderCoupons> {
        let ids = user_coupon_ids.iter().map(|id| parse_uuid("userCouponIds", id)).collect::<async_graphql::Result<Vec<_>>>()?;
        let order = OrderId::parse(&order_id).gql()?;
        let amount = order_amount.raw("orderAmount").and_then(|raw| money::parse_order_amount("orderAmount", &raw)).gql()?;
        let ttl = checkout::hold_ttl(ttl_seconds).gql()?;
        let (db, viewer) = (db(ctx)?, viewer(ctx));
        if is_replay(ctx) {
            return OrderCoupons::replayed(db, viewer, &order, SetChange::Reserve).await;
        }
        let set = service::order_sets::reserve_set(db, viewer, &ids, &order, amount, ttl, fresh_key(ctx)).await.gql()?;
        Ok(OrderCoupons(set))
    }

    /// Uses every coupon this order holds, or none.
    #[graphql(guard = "Authenticated")]
    async fn use_order_coupons(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The order whose holds are used.")] order_id: String,
        #[graphql(desc = "The order amount: at least 0, below 10^8. null: the amount recorded with the holds.")] order_amount: Option<
            Decimal,
        >,
    ) -> async_graphql::Result<OrderCoupons> {
        let order = OrderId::parse(&order_id).gql()?;
        let amount =
            order_amount.map(|a| a.raw("orderAmount").and_then(|raw| money::parse_order_amount("orderAmount", &raw))).transpose().gql()?;
        let (db, viewer) = (db(ctx)?, viewer(ctx));
        if is_replay(ctx) {
            return OrderCoupons::replayed(db, viewer, &order, SetChange::Use).await;
        }
        Ok(OrderCoupons(service::order_sets::use_set(db, viewer, &order, amount, fresh_key(ctx)).await.gql()?))
    }

    /// Gives back every coupon this order used (the order was cancelled).
    #[graphql(guard = "Authenticated")]
    async fn cancel_order_coupons(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The cancelled order.")] order_id: String,
    ) -> async_graphql::Result<OrderCoupons> {
        let order = OrderId::parse(&order_id).gql()?;
        let (db, viewer) = (db(ctx)?, viewer(ctx));
        if is_replay(ctx) {
            return OrderCoupons::replayed(db, viewer, &order, SetChange::Cancel).await;
        }
        Ok(OrderCoupons(service::order_sets::end_set(db, viewer, &order, SetChange::Cancel, fresh_key(ctx)).await.gql()?))
    }

    /// Ends every hold of this order.
    #[graphql(guard = "Authenticated")]
    async fn release_order_coupons(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The order whose holds end.")] order_id: String,
    ) -> async_graphql::Result<OrderCoupons> {
        let order = OrderId::parse(&order_id).gql()?;
        Ok(OrderCoupons(service::order_sets::end_set(db(ctx)?, viewer(ctx), &order, SetChange::Release, None).await.gql()?))
    }

    /// Creates a coupon.
    #[graphql(guard = "AdminOnly")]
    async fn create_coupon(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new coupon.")] input: CreateCouponInput,
    ) -> async_graphql::Result<Coupon> {
        let input = NewCouponInput {
            name: input.name,
            discount_type: input.discount_type.into(),
            discount_value: input.discount_value.raw("discountValue").gql()?,
            min_purchase_amount: input.min_purchase_amount.map(|d| d.raw("minPurchaseAmount")).transpose().gql()?,
            max_discount_amount: input.max_discount_amount.map(|d| d.raw("maxDiscountAmount")).transpose().gql()?,
            total_quantity: input.total_quantity,
            valid_from: input.valid_from.raw("validFrom").gql()?,
            valid_until: input.valid_until.raw("validUntil").gql()?,
            per_user_limit: input.per_user_limit,
            restricted: input.restricted,
            waves: input.waves.map(waves_input).transpose().gql()?,
            budget: input.budget.map(|d| d.raw("budget")).transpose().gql()?,
            stacking: input.stacking.map(Into::into),
        };
        Ok(Coupon(service::coupons::create(db(ctx)?, viewer(ctx), input).await.gql()?))
    }

    /// Only the fields present change; an explicit null clears a nullable field.
    #[graphql(guard = "AdminOnly")]
    async fn update_coupon(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The coupon to change.")] id: ID,
        #[graphql(desc = "The fields to change.")] input: UpdateCouponInput,
    ) -> async_graphql::Result<Coupon> {
        let id = parse_uuid("id", &id)?;
        let input = input.into_domain().gql()?;
        Ok(Coupon(service::coupons::update(db(ctx)?, viewer(ctx), id, input).await.gql()?))
    }

    /// ACTIVE → PAUSED: no more issuing for now; coupons already issued stay usable.
    #[graphql(guard = "AdminOnly")]
    async fn pause_coupon(&self, ctx: &Context<'_>, #[graphql(desc = "The coupon.")] id: ID) -> async_graphql::Result<Coupon> {
        set_status(ctx, id, CouponStatus::Paused).await
    }

    /// PAUSED → ACTIVE.
    #[graphql(guard = "AdminOnly")]
    async fn resume_coupon(&self, ctx: &Context<'_>, #[graphql(desc = "The coupon.")] id: ID) -> async_graphql::Result<Coupon> {
        set_status(ctx, id, CouponStatus::Active).await
    }

    /// ACTIVE or PAUSED → ARCHIVED, which is final.
    #[graphql(guard = "AdminOnly")]
    async fn archive_coupon(&self, ctx: &Context<'_>, #[graphql(desc = "The coupon.")] id: ID) -> async_graphql::Result<Coupon> {
        set_status(ctx, id, CouponStatus::Archived).await
    }

    /// count: 1..100000 single-use codes.
    #[graphql(guard = "AdminOnly")]
    async fn generate_coupon_codes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The coupon the codes issue.")] coupon_id: ID,
        #[graphql(desc = "How many: 1..100000.")] count: i32,
        #[graphql(desc = "0..12 of A-Z 0-9, put before each code's 12 random characters; null: none.")] prefix: Option<String>,
    ) -> async_graphql::Result<CodeBatch> {
        let coupon_id = parse_uuid("couponId", &coupon_id)?;
        let batch = service::codes::generate(db(ctx)?, viewer(ctx), coupon_id, count, prefix.as_deref()).await.gql()?;
        Ok(CodeBatch { coupon_id: ID(batch.coupon_id.to_string()), count: batch.count as i32, sample: batch.sample })
    }

    /// Adds users to a coupon's audience. At most 1,000 ids per call (entries, repeats included); a repeated id counts once; members already present count as neither added nor unknown.
    #[graphql(guard = "AdminOnly")]
    async fn add_audience_members(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The restricted coupon.")] coupon_id: ID,
        #[graphql(desc = "The users to add: 1,000 at most.")] user_ids: Vec<ID>,
    ) -> async_graphql::Result<AudienceChange> {
        let coupon_id = parse_uuid("couponId", &coupon_id)?;
        let ids: Vec<String> = user_ids.into_iter().map(|id| id.0).collect();
        Ok(service::audiences::add_members(db(ctx)?, viewer(ctx), coupon_id, &ids).await.gql()?.into())
    }

    /// Removes users from a coupon's audience; coupons already issued stay. At most 1,000 ids per call.
    #[graphql(guard = "AdminOnly")]
    async fn remove_audience_members(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The restricted coupon.")] coupon_id: ID,
        #[graphql(desc = "The users to remove: 1,000 at most.")] user_ids: Vec<ID>,
    ) -> async_graphql::Result<AudienceChange> {
        let coupon_id = parse_uuid("couponId", &coupon_id)?;
        let ids: Vec<String> = user_ids.into_iter().map(|id| id.0).collect();
        Ok(service::audiences::remove_members(db(ctx)?, viewer(ctx), coupon_id, &ids).await.gql()?.into())
    }

    /// A chosen code (e.g. WELCOME2026): each user may redeem it once, up to maxRedemptions in all.
    #[graphql(guard = "AdminOnly")]
    async fn add_coupon_code(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The coupon the code issues.")] coupon_id: ID,
        #[graphql(desc = "4..32 of A-Z 0-9.")] code: String,
        #[graphql(desc = "Redemptions allowed in all; null: unlimited.")] max_redemptions: Option<i32>,
    ) -> async_graphql::Result<CouponCode> {
        let coupon_id = parse_uuid("couponId", &coupon_id)?;
        Ok(CouponCode(service::codes::add(db(ctx)?, viewer(ctx), coupon_id, &code, max_redemptions).await.gql()?))
    }

    /// Issues the code's coupon to the viewer.
    #[graphql(guard = "Authenticated")]
    async fn redeem_coupon_code(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The code; case, spaces and hyphens do not matter.")] code: String,
    ) -> async_graphql::Result<UserCoupon> {
        if let Some(done) = replayed(ctx).await {
            return done.map(UserCoupon::alone);
        }
        let uc =
            service::codes::redeem(db(ctx)?, issuer(ctx)?, viewer(ctx), client_addr(ctx), &code, fresh_key(ctx).cloned()).await.gql()?;
        Ok(UserCoupon::alone(uc))
    }
}

/// 요청의 클라이언트 주소 (HTTP 계층이 넣는다). 없으면(스키마를 직접 부르는 경우) 0.0.0.0: 그런 요청끼리 한 주소로 센다.
fn client_addr(ctx: &Context<'_>) -> IpAddr {
    ctx.data_opt::<ClientAddr>().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0)
}

/// 상태 변경 셋의 공통 몸통.
async fn set_status(ctx: &Context<'_>, id: ID, to: CouponStatus) -> async_graphql::Result<Coupon> {
    let id = parse_uuid("id", &id)?;
    Ok(Coupon(service::coupons::set_status(db(ctx)?, viewer(ctx), id, to).await.gql()?))
}
