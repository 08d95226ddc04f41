//! 사용자와 발급받은 쿠폰(발급 내역).
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserCoupon {
    pub id: Uuid,
    pub user_id: Uuid,
    pub coupon_id: Uuid,
    pub is_used: bool,
    pub used_at: Option<DateTime<Utc>>,
    pub issued_at: DateTime<Utc>,
}
