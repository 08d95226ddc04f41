//! 출력 타입: 도메인 타입을 감싸서 계약서(4절)의 필드 이름으로 내보낸다.
use async_graphql::{Context, Enum, ErrorExtensions, ID, Object, SimpleObject};

use super::loaders::{CouponKey, HistoryKey, Loaders, UserCouponsKey};
use super::scalars::{DateTime, Decimal};
use super::{GqlResultExt, db};
use crate::domain::{self, money};
use crate::error::AppError;
use crate::{repo, service};

/// How a coupon's discount is computed.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "DiscountType")]
pub enum DiscountTypeGql {
    /// An amount of money off, at most the order amount.
    Fixed,
    /// A percentage of the order amount, rounded down to 0.01 and capped by maxDiscountAmount.
    Percentage,
}

impl From<domain::DiscountType> for DiscountTypeGql {
    fn from(t: domain::DiscountType) -> Self {
        match t {
            domain::DiscountType::Fixed => DiscountTypeGql::Fixed,
            domain::DiscountType::Percentage => DiscountTypeGql::Percentage,
        }
    }
}

impl From<DiscountTypeGql> for domain::DiscountType {
    fn from(t: DiscountTypeGql) -> Self {
        match t {
            DiscountTypeGql::Fixed => domain::DiscountType::Fixed,
            DiscountTypeGql::Percentage => domain::DiscountType::Percentage,
        }
    }
}

/// Where a coupon is in its lifecycle: ACTIVE and PAUSED switch back and forth; ARCHIVED is final.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "CouponStatus")]
pub enum CouponStatusGql {
    /// Issued as usual.
    Active,
    /// Not issued for now (COUPON_PAUSED); coupons already issued stay usable.
    Paused,
    /// Retired: never issued or changed again; left out of coupons unless includeArchived. Coupons already issued stay usable.
    Archived,
}

impl From<domain::CouponStatus> for CouponStatusGql {
    fn from(s: domain::CouponStatus) -> Self {
        match s {
            domain::CouponStatus::Active => CouponStatusGql::Active,
            domain::CouponStatus::Paused => CouponStatusGql::Paused,
            domain::CouponStatus::Archived => CouponStatusGql::Archived,
        }
    }
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

    /// null: unlimited.
    async fn remaining_quantity(&self) -> Option<i32> {
        self.0.remaining_quantity()
    }

    /// Start of the validity window.
    async fn valid_from(&self) -> DateTime {
        DateTime::utc(self.0.valid_from)
    }

    /// End of the validity window.
    async fn valid_until(&self) -> DateTime {
        DateTime::utc(self.0.valid_until)
    }

    /// Inside its validity window now and not sold out.
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
        let s = service::coupons::stats(db(ctx)?, super::viewer(ctx), self.0.id).await.gql()?;
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
#[graphql(name = "UserCouponStatus")]
pub enum UserCouponStatusGql {
    /// Can be reserved or used (a hold past reservedUntil counts as released).
    Available,
    /// Held for one order until reservedUntil.
    Reserved,
    /// Used on an order.
    Used,
}

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
}

pub struct CouponCode(pub domain::code::CouponCode);

/// A code that issues its coupon to whoever redeems it.
#[Object]
impl CouponCode {
    /// The code (A-Z 0-9); matched ignoring case, spaces and hyphens.
    async fn code(&self) -> &str {
        &self.0.code
    }

    /// The coupon it issues.
    async fn coupon_id(&self) -> ID {
        ID(self.0.coupon_id.to_string())
    }

    /// null: unlimited (a chosen code); 1 for generated codes.
    async fn max_redemptions(&self) -> Option<i32> {
        self.0.max_redemptions
    }

    /// How many times it has been redeemed.
    async fn redemptions(&self) -> i32 {
        self.0.redemptions
    }

    /// When it was added.
    async fn created_at(&self) -> DateTime {
        DateTime::utc(self.0.created_at)
    }
}

/// The codes one generateCouponCodes call made.
#[derive(SimpleObject)]
pub struct CodeBatch {
    /// The coupon the codes issue.
    pub coupon_id: ID,
    /// How many codes were made.
    pub count: i32,
    /// Up to 10 of the new codes.
    pub sample: Vec<String>,
}

/// 원장의 한 줄 (CONTRACT 9절).
pub struct CouponEvent(pub domain::Event);

/// One change, as written to the event stream in the transaction that made it.
#[Object]
impl CouponEvent {
    /// The event's id (a UUID).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Position in the event stream: increasing; see 'Order' below.
    async fn sequence(&self) -> String {
        self.0.sequence.to_string()
    }

    /// What happened: COUPON_CREATED, COUPON_UPDATED, COUPON_PAUSED, COUPON_RESUMED, COUPON_ARCHIVED, CODES_GENERATED, COUPON_ISSUED, COUPON_SOLD_OUT, COUPON_RESERVED, COUPON_RELEASED, COUPON_USED or COUPON_CANCELLED.
    #[graphql(name = "type")]
    async fn kind(&self) -> &str {
        &self.0.kind
    }

    /// The coupon it concerns.
    async fn coupon_id(&self) -> ID {
        ID(self.0.coupon_id.to_string())
    }

    /// The user it concerns; null when none.
    async fn user_id(&self) -> Option<ID> {
        self.0.user_id.map(|id| ID(id.to_string()))
    }

    /// The user coupon it concerns; null when none.
    async fn user_coupon_id(&self) -> Option<ID> {
        self.0.user_coupon_id.map(|id| ID(id.to_string()))
    }

    /// The order it concerns; null when none.
    async fn order_id(&self) -> Option<&str> {
        self.0.order_id.as_deref()
    }

    /// When the change committed.
    async fn occurred_at(&self) -> DateTime {
        DateTime::utc(self.0.occurred_at)
    }
}

// `validateCoupon`의 답: useCoupon이 지금 할 대답.
/// What useCoupon would answer now (validateCoupon).
#[derive(SimpleObject)]
pub struct CouponValidation {
    /// Whether useCoupon would succeed now.
    pub valid: bool,
    /// The error code useCoupon would answer now; null when valid.
    pub code: Option<String>,
    /// The message useCoupon would answer now; null when valid.
    pub message: Option<String>,
    /// The discount this order would get; 0 when not valid.
    pub discount_amount: Decimal,
}

pub struct ApplicableCoupon {
    pub user_coupon: UserCoupon,
    pub discount_amount: rust_decimal::Decimal,
}

/// A coupon the user can use on this order, with its discount.
#[Object]
impl ApplicableCoupon {
    /// The user coupon.
    async fn user_coupon(&self) -> &UserCoupon {
        &self.user_coupon
    }

    /// The discount it would give this order.
    async fn discount_amount(&self) -> Decimal {
        Decimal::money(self.discount_amount)
    }
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
        match self.0.status(domain::now()) {
            domain::UserCouponStatus::Available => UserCouponStatusGql::Available,
            domain::UserCouponStatus::Reserved => UserCouponStatusGql::Reserved,
            domain::UserCouponStatus::Used => UserCouponStatusGql::Used,
        }
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
        let applicable = look.field("applicableCoupons").exists().then_some(true);
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
        repo::user_coupon::list_by_user(db(ctx)?, self.user.id, unused_only).await.gql()
    }
}
