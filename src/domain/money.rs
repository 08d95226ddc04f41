//! 금액: `"5000.00"` 같은 평범한 십진 문자열만 받는다 (지수 표기·공백·부호 `+` 거부).
use rust_decimal::Decimal;
use std::str::FromStr;

use crate::error::{AppError, AppResult};

/// 저장 가능한 금액의 상한(DECIMAL(10,2)): 10^8 미만.
const MONEY_LIMIT: i64 = 100_000_000;

/// 평범한 십진 문자열을 해석한다. 형식이 틀리면 `field`를 지목하는 입력 오류.
pub fn parse_decimal(field: &str, raw: &str) -> AppResult<Decimal> {
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    let (int_part, frac_part) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let well_formed = !int_part.is_empty()
        && int_part.bytes().all(|b| b.is_ascii_digit())
        && frac_part.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()));
    if !well_formed {
        return Err(AppError::bad_input(field, format!("{field}: 십진수 문자열이어야 합니다 (예: \"5000.00\")")));
    }
    Decimal::from_str(raw).map_err(|_| AppError::bad_input(field, format!("{field}: 표현할 수 없는 숫자입니다")))
}

/// 주문 금액의 상한 (10^15): 할인 계산(금액 × 비율)이 넘치지 않게 한다.
const ORDER_LIMIT: i64 = 1_000_000_000_000_000;

/// 주문 금액: 0 이상, 10^15 미만.
pub fn parse_order_amount(field: &str, raw: &str) -> AppResult<Decimal> {
    let value = parse_decimal(field, raw)?;
    if value.is_sign_negative() && !value.is_zero() {
        return Err(AppError::bad_input(field, format!("{field}: 0 이상이어야 합니다")));
    }
    // 저장은 소수 둘째 자리로 반올림하므로, 반올림한 값으로 한도를 본다 (DECIMAL(17,2)에 들어가야 한다).
    if value.round_dp(2) >= Decimal::from(ORDER_LIMIT) {
        return Err(AppError::bad_input(field, format!("{field}: 1000000000000000 미만이어야 합니다")));
    }
    Ok(value)
}

/// 저장할 금액: 0 이상, 소수점 아래 2자리까지, 10^8 미만.
pub fn check_storable(field: &str, value: Decimal) -> AppResult<Decimal> {
    if value.is_sign_negative() && !value.is_zero() {
        return Err(AppError::bad_input(field, format!("{field}: 0 이상이어야 합니다")));
    }
    if value.normalize().scale() > 2 {
        return Err(AppError::bad_input(field, format!("{field}: 소수점 아래 2자리까지 입력할 수 있습니다")));
    }
    if value >= Decimal::from(MONEY_LIMIT) {
        return Err(AppError::bad_input(field, format!("{field}: 100000000 미만이어야 합니다")));
    }
    Ok(money(value))
}

/// 예산의 상한 (DECIMAL(12,2)): 10^10 미만.
const BUDGET_LIMIT: i64 = 10_000_000_000;

/// 예산: 평범한 십진 문자열이고, 0보다 크고, 소수점 아래 2자리까지, 10^10 미만 (CONTRACT 11절).
pub fn parse_budget(field: &str, raw: &str) -> AppResult<Decimal> {
    let value = parse_decimal(field, raw)?;
    if value <= Decimal::ZERO {
        return Err(AppError::bad_input(field, format!("{field}: 0보다 커야 합니다")));
    }
    if value.normalize().scale() > 2 {
        return Err(AppError::bad_input(field, format!("{field}: 소수점 아래 2자리까지 입력할 수 있습니다")));
    }
    if value >= Decimal::from(BUDGET_LIMIT) {
        return Err(AppError::bad_input(field, format!("{field}: 10000000000 미만이어야 합니다")));
    }
    Ok(money(value))
}

/// 금액 표기를 소수점 아래 2자리로 맞춘다 (SQLite는 REAL로 돌려주므로 반올림으로 정규화).
pub fn money(value: Decimal) -> Decimal {
    let mut v = value.round_dp(2);
    v.rescale(2);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).expect("테스트 값")
    }

    #[test]
    fn plain_decimal_strings_are_accepted() {
        assert_eq!(parse_decimal("x", "5000.00").ok(), Some(dec("5000.00")));
        assert_eq!(parse_decimal("x", "12").ok(), Some(dec("12")));
        assert_eq!(parse_decimal("x", "-3.5").ok(), Some(dec("-3.5")));
    }

    #[test]
    fn exponents_signs_and_junk_are_rejected_naming_the_field() {
        for raw in ["1e5", "+1", " 1", "1.", ".5", "", "abc", "1,000", "NaN", "--1", "1.2.3"] {
            match parse_decimal("orderAmount", raw) {
                Err(AppError::BadUserInput { field, .. }) => {
                    assert_eq!(field, "orderAmount", "{raw}")
                }
                other => panic!("{raw:?} 는 거부되어야 함: {other:?}"),
            }
        }
    }

    #[test]
    fn a_negative_order_amount_is_bad_input() {
        assert!(parse_order_amount("orderAmount", "-0.01").is_err());
        assert!(parse_order_amount("orderAmount", "0").is_ok());
    }

    #[test]
    fn an_order_amount_too_large_to_compute_with_is_bad_input() {
        assert!(parse_order_amount("orderAmount", "8000000000000000000000000000").is_err());
        assert!(parse_order_amount("orderAmount", "999999999999999.99").is_ok());
    }

    #[test]
    fn storable_amounts_have_two_decimals_and_stay_below_ten_to_the_eighth() {
        assert_eq!(check_storable("a", dec("99999999.99")).ok(), Some(dec("99999999.99")));
        assert!(check_storable("a", dec("100000000")).is_err());
        assert!(check_storable("a", dec("1.005")).is_err());
        assert!(check_storable("a", dec("-1")).is_err());
        assert_eq!(check_storable("a", dec("1.50")).map(|v| v.to_string()).ok(), Some("1.50".into()));
    }
}
