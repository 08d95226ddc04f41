//! 원장의 이벤트 (CONTRACT 7·9절): 모든 변경이 같은 트랜잭션에서 남기는 한 줄. 추가만 한다.
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

/// 이벤트 종류 (9절의 이름으로 저장한다).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    CouponCreated,
    CouponUpdated,
    CouponPaused,
    CouponResumed,
    CouponArchived,
    CodesGenerated,
    CouponIssued,
    CouponSoldOut,
    CouponReserved,
    CouponReleased,
    CouponUsed,
    CouponCancelled,
    /// 대상 고객이 바뀌었다 (호출·가져오기 하나에 하나, 회원마다가 아니다).
    CouponAudienceChanged,
}

impl EventType {
    pub const ALL: [EventType; 13] = [
        EventType::CouponCreated,
        EventType::CouponUpdated,
        EventType::CouponPaused,
        EventType::CouponResumed,
        EventType::CouponArchived,
        EventType::CodesGenerated,
        EventType::CouponIssued,
        EventType::CouponSoldOut,
        EventType::CouponReserved,
        EventType::CouponReleased,
        EventType::CouponUsed,
        EventType::CouponCancelled,
        EventType::CouponAudienceChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::CouponCreated => "COUPON_CREATED",
            EventType::CouponUpdated => "COUPON_UPDATED",
            EventType::CouponPaused => "COUPON_PAUSED",
            EventType::CouponResumed => "COUPON_RESUMED",
            EventType::CouponArchived => "COUPON_ARCHIVED",
            EventType::CodesGenerated => "CODES_GENERATED",
            EventType::CouponIssued => "COUPON_ISSUED",
            EventType::CouponSoldOut => "COUPON_SOLD_OUT",
            EventType::CouponReserved => "COUPON_RESERVED",
            EventType::CouponReleased => "COUPON_RELEASED",
            EventType::CouponUsed => "COUPON_USED",
            EventType::CouponCancelled => "COUPON_CANCELLED",
            EventType::CouponAudienceChanged => "COUPON_AUDIENCE_CHANGED",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
    }
}

/// 쓰기 전의 이벤트 (id는 원장이 매기고, sequence는 커밋 뒤에 도장으로 받는다).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    pub kind: EventType,
    pub coupon_id: Uuid,
    pub user_id: Option<Uuid>,
    pub user_coupon_id: Option<Uuid>,
    pub order_id: Option<String>,
    pub order_amount: Option<Decimal>,
    pub discount_amount: Option<Decimal>,
    pub occurred_at: DateTime<Utc>,
}

impl NewEvent {
    /// 쿠폰 자체의 변경 (관리자의 생성·수정·상태 변경·코드 생성).
    pub fn for_coupon(kind: EventType, coupon_id: Uuid, at: DateTime<Utc>) -> Self {
        NewEvent {
            kind,
            coupon_id,
            user_id: None,
            user_coupon_id: None,
            order_id: None,
            order_amount: None,
            discount_amount: None,
            occurred_at: at,
        }
    }

    /// 발급 내역 하나의 변경.
    pub fn for_user_coupon(kind: EventType, uc: &super::UserCoupon, at: DateTime<Utc>) -> Self {
        NewEvent {
            kind,
            coupon_id: uc.coupon_id,
            user_id: Some(uc.user_id),
            user_coupon_id: Some(uc.id),
            order_id: uc.order_id.clone(),
            order_amount: uc.order_amount,
            discount_amount: uc.discount_amount,
            occurred_at: at,
        }
    }
}

/// 원장에 쓰인 이벤트 (스트림의 자리는 아직 없을 수 있다: `Stamped`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub id: Uuid,
    /// 저장된 종류 이름 (이 버전이 모르는 이름도 그대로 읽는다).
    pub kind: String,
    pub coupon_id: Uuid,
    pub user_id: Option<Uuid>,
    pub user_coupon_id: Option<Uuid>,
    pub order_id: Option<String>,
    pub order_amount: Option<Decimal>,
    pub discount_amount: Option<Decimal>,
    pub occurred_at: DateTime<Utc>,
}

/// 스트림의 자리(`sequence`)를 받은 이벤트: 피드(`couponEvents`)와 NATS 중계는 이것만 읽는다.
/// 자리는 커밋 뒤에 한 곳에서 매기므로, 이미 보인 자리보다 작은 자리가 나중에 생기지 않는다.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamped {
    pub sequence: i64,
    pub event: Event,
}
