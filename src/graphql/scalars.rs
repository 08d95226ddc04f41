//! 스칼라: `Decimal`(평범한 십진 문자열), `DateTime`(UTC RFC 3339).
//! 입력은 문자열 그대로 받아 리졸버에서 해석한다: 그래야 잘못된 값이 필드를 지목하는 BAD_USER_INPUT이 된다.
use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::{DateTime as ChronoDateTime, SecondsFormat, Utc};
use rust_decimal::Decimal as RustDecimal;

use crate::domain::money::money;

/// A decimal number as a plain string such as "5000.00" (no exponent).
pub struct Decimal(pub String);

impl Decimal {
    /// 금액 출력은 소수점 아래 2자리.
    pub fn money(v: RustDecimal) -> Self {
        Decimal(money(v).to_string())
    }
}

#[Scalar(name = "Decimal")]
impl ScalarType for Decimal {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(s) => Ok(Decimal(s)),
            _ => Err(InputValueError::custom("Decimal은 \"5000.00\" 같은 문자열이어야 합니다")),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

/// A point in time, RFC 3339 in UTC, e.g. "2025-01-01T00:00:00Z".
pub struct DateTime(pub String);

impl DateTime {
    pub fn utc(t: ChronoDateTime<Utc>) -> Self {
        DateTime(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

#[Scalar(name = "DateTime")]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(s) => Ok(DateTime(s)),
            _ => Err(InputValueError::custom("DateTime은 RFC 3339 문자열이어야 합니다")),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}
