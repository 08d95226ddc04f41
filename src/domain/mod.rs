//! 순수한 도메인 규칙(I/O 없음): 금액, 쿠폰의 유효기간·재고·할인 계산, 생성 입력 검증.
pub mod audience;
pub mod checkout;
pub mod code;
pub mod coupon;
pub mod event;
pub mod idempotency;
pub mod money;
pub mod stacking;
pub mod time;
pub mod user;
pub mod viewer;
pub mod wave;

pub use checkout::{OrderId, UserCouponStatus};
pub use coupon::{Coupon, CouponChange, CouponChangeInput, CouponStatus, DiscountType, NewCoupon, NewCouponInput, Patch, Stacking};
pub use event::{Event, EventType, NewEvent, Stamped};
pub use user::{User, UserCoupon};
pub use viewer::{Role, Viewer};
pub use wave::{ReleaseWave, ReleaseWaveInput};

use chrono::{DateTime, SubsecRound, Utc};

/// 현재 시각을 마이크로초로 자른다: 모든 백엔드가 같은 정밀도로 저장해서 커서가 왕복해도 같게.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
