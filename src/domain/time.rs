//! 입력 시각의 해석 (쿠폰의 유효기간, 발행 일정이 함께 쓴다).
use chrono::{DateTime, SubsecRound, Utc};

use crate::error::{AppError, AppResult};

/// RFC 3339 시각을 UTC로 해석한다. 저장 정밀도(마이크로초)로 잘라서 돌려준 값과 다시 읽은 값이 같게.
/// 연도는 1000..=9999 (MySQL DATETIME이 담을 수 있는 범위).
pub fn parse_datetime(field: &str, raw: &str) -> AppResult<DateTime<Utc>> {
    let t = DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc).trunc_subsecs(6))
        .map_err(|_| AppError::bad_input(field, format!("{field}: RFC 3339 시각이어야 합니다 (예: \"2025-01-01T00:00:00Z\")")))?;
    if !(1000..=9999).contains(&chrono::Datelike::year(&t)) {
        return Err(AppError::bad_input(field, format!("{field}: 연도는 1000년부터 9999년까지입니다")));
    }
    Ok(t)
}
