//! Subscription 루트 (CONTRACT 9절): 쿠폰 재고. 리졸버는 얇다: 연결의 구독 수 한도, 허브에 지켜보기, 변환.
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_graphql::{Context, ErrorExtensions, ID, SimpleObject, Subscription};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use super::context::parse_uuid;
use super::coupon::CouponStatusGql;
use super::errors::GqlResultExt;
use super::scalars::DateTime;
use crate::error::AppError;
use crate::service::stock::{Stock, StockHub};

/// 연결 하나가 동시에 가질 수 있는 구독 수.
pub const MAX_SUBSCRIPTIONS: usize = 20;

pub struct SubscriptionRoot;

/// A coupon's stock at one moment.
#[derive(SimpleObject)]
pub struct CouponStock {
    /// The coupon.
    coupon_id: ID,
    /// How many have been issued.
    issued_quantity: i32,
    /// null: unlimited.
    total_quantity: Option<i32>,
    /// null: unlimited.
    remaining_quantity: Option<i32>,
    /// Whether none is left to issue, now or in a later wave.
    sold_out: bool,
    /// Where the coupon is in its lifecycle.
    status: CouponStatusGql,
    /// Quantity released by now (cumulative); null: unlimited.
    released_quantity: Option<i32>,
    /// When the next wave opens; null when none is left.
    next_release_at: Option<DateTime>,
}

impl From<Stock> for CouponStock {
    fn from(s: Stock) -> Self {
        CouponStock {
            coupon_id: ID(s.coupon_id.to_string()),
            issued_quantity: s.issued_quantity,
            total_quantity: s.total_quantity,
            remaining_quantity: s.remaining_quantity(),
            sold_out: s.sold_out(),
            status: s.status.into(),
            released_quantity: s.released_quantity,
            next_release_at: s.next_release_at.map(DateTime::utc),
        }
    }
}

/// 웹소켓 연결 하나의 구독 수 (연결 데이터: 연결마다 새로 만든다).
#[derive(Clone, Default)]
pub struct SubscriptionSlots(Arc<AtomicUsize>);

/// 구독 하나가 차지한 자리. 구독 스트림이 끝나면(드롭) 돌려준다.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl SubscriptionSlots {
    fn take(&self) -> Result<Slot, AppError> {
        if self.0.fetch_add(1, Ordering::AcqRel) >= MAX_SUBSCRIPTIONS {
            self.0.fetch_sub(1, Ordering::AcqRel);
            return Err(AppError::TooManySubscriptions);
        }
        Ok(Slot(self.0.clone()))
    }
}

/// Live updates, over graphql-transport-ws at /graphql/ws.
#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// The coupon's stock now, then every change: at most 10 messages a second; the last state is never skipped.
    async fn coupon_stock(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The coupon to watch.")] coupon_id: ID,
    ) -> async_graphql::Result<BoxStream<'static, CouponStock>> {
        let slot = ctx.data_opt::<SubscriptionSlots>().map(SubscriptionSlots::take).transpose().gql()?;
        let id = parse_uuid("couponId", &coupon_id)?;
        let hub = ctx.data::<Arc<StockHub>>().map_err(|_| AppError::Internal("스키마에 재고 허브가 없음".into()).extend())?;
        let watch = hub.watch(id).await.gql()?;
        Ok(watch
            .into_stream()
            .map(move |s| {
                // 스트림이 살아 있는 동안 자리를 쥔다.
                let _held = &slot;
                CouponStock::from(s)
            })
            .boxed())
    }
}
