//! 사용자와 그 발급 내역 목록.
use async_graphql::{Context, ErrorExtensions, ID, Object};

use super::checkout::ApplicableCoupon;
use super::context::db;
use super::errors::GqlResultExt;
use super::loaders::{Loaders, UserCouponsKey};
use super::order::CouponSet;
use super::scalars::Decimal;
use super::user_coupon::UserCoupon;
use crate::domain::{self, money};
use crate::error::AppError;
use crate::service;

/// 사용자. `users(ids)` 목록에서 온 것은 발급 내역을 DataLoader로 모아 읽고, `me`·`user(id)`처럼 혼자 온 것은
/// 바로 읽는다 (모을 것이 없는데 DataLoader의 1 ms 대기와 작업 생성을 치를 이유가 없다).
pub struct User {
    pub user: domain::User,
    pub batched: bool,
    /// `users(ids)`가 모든 사용자의 발급 내역을 한 번에 미리 읽어 둔 것: (unusedOnly 값, 내역).
    prefetched: Option<(bool, Vec<(domain::UserCoupon, domain::Coupon)>)>,
}

impl User {
    pub fn single(user: domain::User) -> Self {
        User { user, batched: false, prefetched: None }
    }

    /// 여럿 가운데 하나 (`_entities`): 발급 내역은 DataLoader로 모아 읽는다.
    pub fn batched(user: domain::User) -> Self {
        User { user, batched: true, prefetched: None }
    }

    /// `users(ids)`의 결과. 선택된 `coupons`의 `unusedOnly`(와 `applicableCoupons`가 쓰는 미사용 목록)가 한 가지뿐이면 모든 사용자의 키를
    /// DataLoader에 한 번에 넘겨 질의 한 번으로 읽어 둔다. 필드마다 따로 키를 넣으면 DataLoader의 1 ms 대기가
    /// 목록을 다 돌기 전에 끝나 배치가 둘로 쪼개질 수 있다 (사용자 수와 무관하게 늘 질의 한 번이어야 한다).
    pub async fn list(ctx: &Context<'_>, found: Vec<Option<domain::User>>) -> async_graphql::Result<Vec<Option<User>>> {
        let mut loaded = match Self::coupons_wanted(ctx) {
            Some(flag) => {
                let loaders = ctx.data::<Loaders>().map_err(|_| AppError::Internal("요청에 DataLoader가 없음".into()).extend())?;
                let keys = found.iter().flatten().map(|u| UserCouponsKey { user_id: u.id, unused_only: flag });
                Some((flag, loaders.user_coupons.load_many(keys).await.map_err(|e| e.extend())?))
            }
            None => None,
        };
        Ok(found
            .into_iter()
            .map(|u| {
                u.map(|user| {
                    let prefetched = loaded.as_mut().map(|(flag, map)| {
                        let key = UserCouponsKey { user_id: user.id, unused_only: *flag };
                        (*flag, map.remove(&key).unwrap_or_default())
                    });
                    User { user, batched: true, prefetched }
                })
            })
            .collect())
    }

    /// `me`가 발급 내역까지 문장 하나로 읽어 온 사용자.
    pub fn with_coupons(user: domain::User, unused_only: bool, list: Vec<(domain::UserCoupon, domain::Coupon)>) -> Self {
        User { user, batched: false, prefetched: Some((unused_only, list)) }
    }

    /// 이 필드 아래에서 선택된 발급 내역 목록이 한 가지(`coupons`의 `unusedOnly` 값, `applicableCoupons`는 미사용)뿐이면 그 값.
    /// 없거나 여러 가지면 None (미리 읽지 않는다).
    pub fn coupons_wanted(ctx: &Context<'_>) -> Option<bool> {
        let look = ctx.look_ahead();
        // applicableCoupons는 미사용 목록(unusedOnly = true)을 쓴다.
        let applicable = (look.field("applicableCoupons").exists() || look.field("bestCoupons").exists()).then_some(true);
        let flags: std::collections::HashSet<bool> = look
            .field("coupons")
            .selection_fields()
            .iter()
            .map(|f| {
                f.arguments()
                    .ok()
                    .and_then(|args| args.into_iter().find(|(n, _)| n.as_str() == "unusedOnly"))
                    .and_then(|(_, v)| match v {
                        async_graphql::Value::Boolean(b) => Some(b),
                        _ => None,
                    })
                    .unwrap_or(false)
            })
            .chain(applicable)
            .collect();
        match flags.iter().next() {
            Some(&flag) if flags.len() == 1 => Some(flag),
            _ => None,
        }
    }
}

/// A user who can hold coupons.
#[Object]
impl User {
    /// The user's id (a UUID).
    async fn id(&self) -> ID {
        ID(self.user.id.to_string())
    }

    /// The user's email address.
    async fn email(&self) -> &str {
        &self.user.email
    }

    /// The user's name, exactly as stored.
    async fn name(&self) -> &str {
        &self.user.name
    }

    /// Newest first.
    // users(ids)에서 온 사용자들은 발급 내역을 DataLoader로 모아 질의 한 번에 읽는다.
    async fn coupons(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false, desc = "true: leave out used coupons.")] unused_only: bool,
    ) -> async_graphql::Result<Vec<UserCoupon>> {
        Ok(self.coupon_list(ctx, unused_only).await?.into_iter().map(UserCoupon::with_coupon).collect())
    }

    /// Coupons this user can use now on an order of this amount: biggest discount first, then soonest validUntil.
    async fn applicable_coupons(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The order amount: at least 0, below 10^8.")] order_amount: Decimal,
    ) -> async_graphql::Result<Vec<ApplicableCoupon>> {
        let amount = order_amount.raw("orderAmount").and_then(|raw| money::parse_order_amount("orderAmount", &raw)).gql()?;
        let list = self.coupon_list(ctx, true).await?;
        Ok(service::user_coupons::applicable(list, amount, domain::now())
            .into_iter()
            .map(|(uc, c, d)| ApplicableCoupon { user_coupon: UserCoupon(uc, Some(c)), discount_amount: d })
            .collect())
    }

    /// The allowed set of this user's applicable coupons (section 7) with the largest total discount; ties: fewer coupons, then soonest validUntil.
    async fn best_coupons(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The order amount: at least 0, below 10^8.")] order_amount: Decimal,
    ) -> async_graphql::Result<CouponSet> {
        let amount = order_amount.raw("orderAmount").and_then(|raw| money::parse_order_amount("orderAmount", &raw)).gql()?;
        let list = self.coupon_list(ctx, true).await?;
        let (chosen, total) = service::order_sets::best(db(ctx)?, list, amount, domain::now()).await.gql()?;
        Ok(CouponSet { coupons: chosen.into_iter().map(|(uc, c, _)| (uc, c)).collect(), discount_amount: total })
    }
}

impl User {
    /// 발급 내역과 쿠폰: 미리 읽어 둔 것, DataLoader(목록에서 온 사용자), 또는 바로 읽기(혼자 온 사용자).
    async fn coupon_list(&self, ctx: &Context<'_>, unused_only: bool) -> async_graphql::Result<Vec<(domain::UserCoupon, domain::Coupon)>> {
        if let Some((_, list)) = self.prefetched.as_ref().filter(|(flag, _)| *flag == unused_only) {
            return Ok(list.clone());
        }
        if self.batched {
            let loaders = ctx.data::<Loaders>()?;
            let key = UserCouponsKey { user_id: self.user.id, unused_only };
            return Ok(loaders.user_coupons.load_one(key).await.map_err(|e| e.extend())?.unwrap_or_default());
        }
        service::user_coupons::of_user(db(ctx)?, self.user.id, unused_only).await.gql()
    }
}
