//! Relay 연결의 공통 부분: 페이지 크기 검사, 불투명 커서, "하나 더 읽어서 다음 페이지 알기".
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::repo::code::CodeKeyset;
use crate::repo::coupon::Keyset;

/// 한 페이지의 크기 한도 (계약: first 1..100).
pub const MAX_PAGE: i32 = 100;

/// 한 페이지와 다음 페이지가 있는지.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_next_page: bool,
}

/// `first`를 검사하고, 다음 페이지를 알려고 하나 더 읽을 개수를 돌려준다.
pub fn fetch_size(first: Option<i32>, default: i32) -> AppResult<u64> {
    let first = first.unwrap_or(default);
    if !(1..=MAX_PAGE).contains(&first) {
        return Err(AppError::bad_input("first", format!("first: 1 이상 {MAX_PAGE} 이하여야 합니다")));
    }
    Ok(first as u64 + 1)
}

impl<T> Page<T> {
    /// `fetch_size`만큼 읽은 결과를 한 페이지로 자른다.
    pub fn cut(mut items: Vec<T>, fetched: u64) -> Self {
        let first = (fetched - 1) as usize;
        let has_next_page = items.len() > first;
        items.truncate(first);
        Page { items, has_next_page }
    }
}

/// 불투명 커서: (시각 마이크로초, 키)를 base64url로. 새 행이 생겨도 같은 자리를 가리킨다.
pub fn encode_cursor(at: DateTime<Utc>, key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", at.timestamp_micros(), key))
}

fn bad_cursor() -> AppError {
    AppError::bad_input("after", "after: 올바른 커서가 아닙니다")
}

fn decode_cursor(raw: &str) -> AppResult<(DateTime<Utc>, String)> {
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad_cursor())?;
    let text = String::from_utf8(bytes).map_err(|_| bad_cursor())?;
    let (micros, key) = text.split_once(':').ok_or_else(bad_cursor)?;
    let micros: i64 = micros.parse().map_err(|_| bad_cursor())?;
    Ok((DateTime::from_timestamp_micros(micros).ok_or_else(bad_cursor)?, key.to_owned()))
}

/// (시각, UUID) 커서 (쿠폰 목록, 보유자 목록).
pub fn decode_keyset(raw: &str) -> AppResult<Keyset> {
    let (created_at, id) = decode_cursor(raw)?;
    Ok(Keyset { created_at, id: Uuid::parse_str(&id).map_err(|_| bad_cursor())? })
}

/// (시각, 코드) 커서 (코드 목록).
pub fn decode_code_keyset(raw: &str) -> AppResult<CodeKeyset> {
    let (created_at, code) = decode_cursor(raw)?;
    if !crate::domain::code::has_code_shape(&code) {
        return Err(bad_cursor());
    }
    Ok(CodeKeyset { created_at, code })
}

/// 원장 커서: 이벤트의 sequence 그대로 (CouponEvent.sequence에서 이어 읽을 수 있게).
pub fn decode_sequence(raw: &str) -> AppResult<i64> {
    raw.parse::<i64>().ok().filter(|s| *s >= 0).ok_or_else(bad_cursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_cursors_are_bad_input_on_after() {
        for raw in ["", "!!!", "bm9wZQ", &URL_SAFE_NO_PAD.encode("12:not-a-uuid")] {
            match decode_keyset(raw) {
                Err(AppError::BadUserInput { field, .. }) => assert_eq!(field, "after"),
                other => panic!("{raw:?}: {other:?}"),
            }
        }
        assert!(decode_code_keyset(&URL_SAFE_NO_PAD.encode("12:a b")).is_err());
        assert!(decode_sequence("-1").is_err() && decode_sequence("x").is_err());
        assert_eq!(decode_sequence("42").expect("sequence"), 42);
    }

    #[test]
    fn a_page_knows_whether_another_follows() {
        let n = fetch_size(Some(2), 20).expect("크기");
        let p = Page::cut(vec![1, 2, 3], n);
        assert_eq!((p.items, p.has_next_page), (vec![1, 2], true));
        let p = Page::cut(vec![1, 2], n);
        assert!(!p.has_next_page);
        assert!(fetch_size(Some(0), 20).is_err() && fetch_size(Some(101), 20).is_err());
    }
}
