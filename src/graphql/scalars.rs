//! 스칼라: `Decimal`(평범한 십진 문자열), `DateTime`(UTC RFC 3339).
//! 입력은 무엇이든 받아 두고 리졸버에서 해석한다: 그래야 잘못된 값(숫자, 지수 표기 등)이
//! 검증 단계의 코드 없는 에러가 아니라 필드를 지목하는 BAD_USER_INPUT이 된다.
use async_graphql::{InputValueResult, Scalar, ScalarType, Value};
use chrono::{DateTime as ChronoDateTime, SecondsFormat, Utc};
use rust_decimal::Decimal as RustDecimal;

use crate::domain::money::money;
use crate::error::{AppError, AppResult};

/// A decimal number as a plain string such as "5000.00" (no exponent).
/// 입력이 문자열이 아니었으면 `None`.
pub struct Decimal(Option<String>);

impl Decimal {
    /// 금액 출력은 소수점 아래 2자리.
    pub fn money(v: RustDecimal) -> Self {
        Decimal(Some(money(v).to_string()))
    }

    /// 입력 문자열. 문자열이 아니었으면 그 필드를 지목하는 입력 오류.
    pub fn raw(&self, field: &str) -> AppResult<String> {
        self.0.clone().ok_or_else(|| AppError::bad_input(field, format!("{field}: \"5000.00\" 같은 십진수 문자열이어야 합니다")))
    }
}

/// A decimal number, sent and returned as a JSON string: a plain decimal string such as "5000.00" (no exponent; anything else is an input error). Amounts come back with two digits after the point.
#[Scalar(name = "Decimal", specified_by_url = "https://www.w3.org/TR/xmlschema11-2/#decimal")]
impl ScalarType for Decimal {
    fn parse(value: Value) -> InputValueResult<Self> {
        Ok(Decimal(match value {
            Value::String(s) => Some(s),
            _ => None,
        }))
    }

    fn to_value(&self) -> Value {
        self.0.clone().map(Value::String).unwrap_or(Value::Null)
    }
}

/// A point in time, RFC 3339 in UTC, e.g. "2025-01-01T00:00:00Z".
/// 입력이 문자열이 아니었으면 `None`.
pub struct DateTime(Option<String>);

impl DateTime {
    pub fn utc(t: ChronoDateTime<Utc>) -> Self {
        DateTime(Some(t.to_rfc3339_opts(SecondsFormat::AutoSi, true)))
    }

    /// 입력 문자열. 문자열이 아니었으면 그 필드를 지목하는 입력 오류.
    pub fn raw(&self, field: &str) -> AppResult<String> {
        self.0.clone().ok_or_else(|| AppError::bad_input(field, format!("{field}: RFC 3339 시각 문자열이어야 합니다")))
    }
}

/// A point in time, sent and returned as a JSON string: RFC 3339 in UTC, such as "2025-01-01T00:00:00Z".
#[Scalar(name = "DateTime", specified_by_url = "https://scalars.graphql.org/andimarek/date-time")]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        Ok(DateTime(match value {
            Value::String(s) => Some(s),
            _ => None,
        }))
    }

    fn to_value(&self) -> Value {
        self.0.clone().map(Value::String).unwrap_or(Value::Null)
    }
}
