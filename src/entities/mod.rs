//! SeaORM 모델만 둔다: 로직도 GraphQL derive도 없다 (도메인 변환은 repo에서).
pub mod code_failure;
pub mod code_guard;
pub mod coupon;
pub mod coupon_audience;
pub mod coupon_code;
pub mod event;
pub mod idempotency_key;
pub mod relay_state;
pub mod user;
pub mod user_coupon;
