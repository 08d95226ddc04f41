//! 쿠폰 조회·목록(커서 페이지네이션)·생성.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::DateTime;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::domain::{self, Coupon, NewCoupon, NewCouponInput, Viewer};
use crate::error::{AppError, AppResult};
use crate::repo;
use crate::repo::coupon::Keyset;

/// 한 페이지의 크기 한도 (계약: first 1..100).
pub const MAX_PAGE: i32 = 100;
pub const DEFAULT_PAGE: i32 = 20;

pub async fn get(db: &DatabaseConnection, id: Uuid) -> AppResult<Option<Coupon>> {
    repo::coupon::find_by_id(db, id).await
}

/// 한 페이지와 다음 페이지가 있는지.
pub struct Page {
    pub items: Vec<Coupon>,
    pub has_next_page: bool,
}

/// 최신순 목록. `after`는 이전 페이지의 커서.
pub async fn list(db: &DatabaseConnection, available_only: bool, first: Option<i32>, after: Option<&str>) -> AppResult<Page> {
    let first = first.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&first) {
        return Err(AppError::bad_input("first", format!("first: 1 이상 {MAX_PAGE} 이하여야 합니다")));
    }
    let after = after.map(decode_cursor).transpose()?;
    let available_at = available_only.then(domain::now);
    // 하나 더 읽어서 다음 페이지가 있는지 안다.
    let mut items = repo::coupon::list(db, available_at, after, first as u64 + 1).await?;
    let has_next_page = items.len() > first as usize;
    items.truncate(first as usize);
    Ok(Page { items, has_next_page })
}

/// 불투명 커서: (생성 시각 마이크로초, id)를 base64url로. 새 쿠폰이 생겨도 같은 자리를 가리킨다.
pub fn encode_cursor(c: &Coupon) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", c.created_at.timestamp_micros(), c.id))
}

fn decode_cursor(raw: &str) -> AppResult<Keyset> {
    let bad = || AppError::bad_input("after", "after: 올바른 커서가 아닙니다");
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (micros, id) = text.split_once(':').ok_or_else(bad)?;
    let micros: i64 = micros.parse().map_err(|_| bad())?;
    Ok(Keyset { created_at: DateTime::from_timestamp_micros(micros).ok_or_else(bad)?, id: Uuid::parse_str(id).map_err(|_| bad())? })
}

/// `createCoupon`: 관리자 전용, 계약서의 검증을 통과해야 한다.
pub async fn create(db: &DatabaseConnection, viewer: Option<&Viewer>, input: NewCouponInput) -> AppResult<Coupon> {
    Viewer::require_admin(viewer)?;
    let new = NewCoupon::parse(input)?;
    repo::coupon::insert(db, Uuid::new_v4(), &new, domain::now()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_cursors_are_bad_input_on_after() {
        for raw in ["", "!!!", "bm9wZQ", &URL_SAFE_NO_PAD.encode("12:not-a-uuid")] {
            match decode_cursor(raw) {
                Err(AppError::BadUserInput { field, .. }) => assert_eq!(field, "after"),
                other => panic!("{raw:?}: {other:?}"),
            }
        }
    }
}
