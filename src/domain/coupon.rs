//! 쿠폰 규칙: 유효기간, 재고, 할인 계산, 생성 입력 검증 (CONTRACT 5절을 한 곳에).
use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use uuid::Uuid;

use super::money::{check_storable, money, parse_budget, parse_decimal};
pub use super::time::parse_datetime;
use super::wave::{self, ReleaseWave, ReleaseWaveInput};
use crate::error::{AppError, AppResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscountType {
    /// 정액 할인
    Fixed,
    /// 정률 할인
    Percentage,
}

impl DiscountType {
    /// 데이터베이스에 저장되는 표기.
    pub fn as_str(self) -> &'static str {
        match self {
            DiscountType::Fixed => "FIXED",
            DiscountType::Percentage => "PERCENTAGE",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "FIXED" => Some(DiscountType::Fixed),
            "PERCENTAGE" => Some(DiscountType::Percentage),
            _ => None,
        }
    }
}

/// 한 주문에서 다른 쿠폰과 함께 쓸 수 있는지 (CONTRACT 12절).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stacking {
    /// 주문에 혼자.
    Exclusive,
    /// 다른 STACKABLE 쿠폰과 한 주문에 5장까지.
    Stackable,
}

impl Stacking {
    pub fn as_str(self) -> &'static str {
        match self {
            Stacking::Exclusive => "EXCLUSIVE",
            Stacking::Stackable => "STACKABLE",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Stacking::Exclusive, Stacking::Stackable].into_iter().find(|s| s.as_str() == raw)
    }
}

/// 발급 상태 (CONTRACT 8절): ACTIVE ⇄ PAUSED, 둘 다 → ARCHIVED(최종).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CouponStatus {
    Active,
    Paused,
    Archived,
}

impl CouponStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CouponStatus::Active => "ACTIVE",
            CouponStatus::Paused => "PAUSED",
            CouponStatus::Archived => "ARCHIVED",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [CouponStatus::Active, CouponStatus::Paused, CouponStatus::Archived].into_iter().find(|s| s.as_str() == raw)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coupon {
    pub id: Uuid,
    pub name: String,
    pub discount_type: DiscountType,
    pub discount_value: Decimal,
    pub min_purchase_amount: Option<Decimal>,
    pub max_discount_amount: Option<Decimal>,
    /// `None` = 무제한
    pub total_quantity: Option<i32>,
    pub issued_quantity: i32,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub status: CouponStatus,
    /// 행 버전: 쿠폰 행을 쓸 때마다 하나씩 오른다. 잠금 아래에서 읽은 값이 쓰는 순간에도 그대로인지 확인하는 데 쓴다
    /// (Galera의 낡은 잠금 읽기, `repo::coupon::increment_issued`).
    pub version: i64,
    /// 한 사용자가 이 쿠폰을 모두 몇 장까지 받을 수 있는지 (1..100, CONTRACT 11절). 사용·취소로 돌아오지 않는다.
    pub per_user_limit: i32,
    /// 참이면 대상 고객(audience)에게만 발급한다 (CONTRACT 11절).
    pub restricted: bool,
    /// 발행 일정, 빠른 것부터. 비었으면 유효기간 시작에 전부 풀린다.
    pub waves: Vec<ReleaseWave>,
    /// 현재 사용과 만료 전 보류의 할인 합계의 상한. `None` = 상한 없음.
    pub budget: Option<Decimal>,
    /// 예산에서 나간 돈: 현재 사용과 아직 돌려받지 않은 보류(만료되었어도)의 몫(`UserCoupon::budget_share`) 합계.
    /// 예산이 있는 동안만 맞춰 둔다 (예산을 새로 달 때 다시 센다).
    pub budget_spent: Decimal,
    /// 한 주문에서 함께 쓸 수 있는지 (CONTRACT 12절).
    pub stacking: Stacking,
}

impl Coupon {
    /// 사용자당 한도: 이미 `held`장을 받은 사용자가 한 장 더 받을 수 있는지. 받을 수 있으면 새 장의 자리(1부터).
    pub fn next_slot(&self, held: i32) -> AppResult<i32> {
        if held < self.per_user_limit { Ok(held + 1) } else { Err(AppError::CouponAlreadyIssued) }
    }

    /// 발급 가능한 상태인지: PAUSED·ARCHIVED는 발급(코드로도)을 받지 않는다. 이미 발급된 쿠폰의 사용과는 무관하다.
    pub fn check_issuable(&self) -> AppResult<()> {
        if self.status == CouponStatus::Active { Ok(()) } else { Err(AppError::CouponPaused) }
    }

    /// 보관된 쿠폰은 더 바꿀 수 없다 (수정·상태 변경·코드 추가).
    pub fn check_changeable(&self) -> AppResult<()> {
        if self.status == CouponStatus::Archived { Err(AppError::CouponArchived) } else { Ok(()) }
    }

    /// 상태 전이. 바꿀 것이 없으면(이미 그 상태) `None`.
    pub fn transition(&self, to: CouponStatus) -> AppResult<Option<CouponStatus>> {
        self.check_changeable()?;
        Ok((self.status != to).then_some(to))
    }

    /// 부분 수정을 적용한 모습. 잠금 안에서 최신 행에 대고 부른다: 발급 수량과 비교하는 검사가 권위를 갖는다.
    /// 검사 순서: 정률 전용 필드 → 유효기간 순서 → 총수량 ≥ 발급 수량.
    pub fn apply(&self, change: &CouponChange, now: DateTime<Utc>) -> AppResult<Coupon> {
        let mut next = self.clone();
        if let Some(name) = &change.name {
            next.name = name.clone();
        }
        if let Some(v) = change.min_purchase_amount {
            next.min_purchase_amount = v;
        }
        if let Some(v) = change.max_discount_amount {
            if v.is_some() && self.discount_type != DiscountType::Percentage {
                return Err(AppError::bad_input("maxDiscountAmount", "maxDiscountAmount: 정률 할인에만 지정할 수 있습니다"));
            }
            next.max_discount_amount = v;
        }
        if let Some(v) = change.total_quantity {
            next.total_quantity = v;
        }
        if let Some(v) = change.restricted {
            next.restricted = v;
        }
        if let Some(v) = change.stacking {
            next.stacking = v;
        }
        if let Some(v) = change.per_user_limit {
            // 이미 받은 사람이 한도를 넘게 되지 않도록 올리기만 한다.
            if v < self.per_user_limit {
                return Err(AppError::bad_input(
                    "perUserLimit",
                    format!("perUserLimit: 지금 한도({})보다 낮출 수 없습니다", self.per_user_limit),
                ));
            }
            next.per_user_limit = v;
        }
        if let Some(v) = change.valid_from {
            next.valid_from = v;
        }
        if let Some(v) = change.valid_until {
            next.valid_until = v;
        }
        if next.valid_from >= next.valid_until {
            let field = if change.valid_until.is_some() { "validUntil" } else { "validFrom" };
            return Err(AppError::bad_input(field, format!("{field}: validFrom이 validUntil보다 앞서야 합니다")));
        }
        if next.total_quantity.is_some_and(|total| total < self.issued_quantity) {
            return Err(AppError::bad_input(
                "totalQuantity",
                format!("totalQuantity: 이미 발급된 수량({})보다 작을 수 없습니다", self.issued_quantity),
            ));
        }
        if let Some(budget) = change.budget {
            next.budget = budget;
        }
        // 새 일정은 일정 전체다. 비우면(null, []) 일정이 없어진다. 일정을 안 보냈어도 총수량·기간이 바뀌면 다시 맞춰 본다.
        if let Some(waves) = &change.waves {
            if !waves.is_empty() {
                wave::check_reschedule(&self.waves, waves, now)?;
            }
            next.waves = waves.clone();
        }
        wave::check_fits(&next.waves, next.total_quantity, next.valid_from, next.valid_until)?;
        Ok(next)
    }

    /// 유효기간 검사: 시작 전이면 NOT_STARTED, 종료 후면 EXPIRED.
    pub fn check_window(&self, now: DateTime<Utc>) -> AppResult<()> {
        if now < self.valid_from {
            Err(AppError::CouponNotStarted)
        } else if now > self.valid_until {
            Err(AppError::CouponExpired)
        } else {
            Ok(())
        }
    }

    pub fn remaining_quantity(&self) -> Option<i32> {
        self.total_quantity.map(|total| (total - self.issued_quantity).max(0))
    }

    /// 마지막 웨이브까지 다 나갔는지 (`CouponStock.soldOut`): 다시 풀릴 것이 없다.
    pub fn is_sold_out(&self) -> bool {
        self.remaining_quantity() == Some(0)
    }

    /// 지금까지 풀린 수량(누적). 일정이 없으면 총수량, 무제한이면 `None`.
    pub fn released_quantity(&self, now: DateTime<Utc>) -> Option<i32> {
        self.total_quantity.map(|total| wave::released(&self.waves, now).unwrap_or(total))
    }

    /// 다음 웨이브가 열리는 시각.
    pub fn next_release_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        wave::next_at(&self.waves, now)
    }

    /// 지금 발급할 수 있는 수량 (풀린 것 − 발급된 것). 무제한이면 `None`.
    pub fn stock_left(&self, now: DateTime<Utc>) -> Option<i32> {
        self.released_quantity(now).map(|released| (released - self.issued_quantity).max(0))
    }

    /// 지금 발급할 재고가 없을 때의 답: 다음 웨이브가 남았으면 WAVE_SOLD_OUT, 아니면 SOLD_OUT (최종).
    pub fn out_of_stock(&self, now: DateTime<Utc>) -> AppError {
        match self.next_release_at(now) {
            Some(next_release_at) if !self.is_sold_out() => AppError::CouponWaveSoldOut { next_release_at },
            _ => AppError::CouponSoldOut,
        }
    }

    /// 풀린 재고가 남았는지.
    pub fn check_stock(&self, now: DateTime<Utc>) -> AppResult<()> {
        if self.stock_left(now) == Some(0) { Err(self.out_of_stock(now)) } else { Ok(()) }
    }

    /// 발급 중(ACTIVE)이고 지금 유효기간 안이고 풀린 재고가 남았는지.
    pub fn is_available(&self, now: DateTime<Utc>) -> bool {
        self.status == CouponStatus::Active && self.check_window(now).is_ok() && self.check_stock(now).is_ok()
    }

    /// 예산을 `spent`(현재 사용과 만료 전 보류의 할인 합계)보다 낮출 수 없다 (`updateCoupon`).
    pub fn check_budget_covers(&self, spent: Decimal) -> AppResult<()> {
        match self.budget {
            Some(budget) if budget < spent => {
                Err(AppError::bad_input("budget", format!("budget: 이미 사용·보류된 할인 합계({})보다 낮출 수 없습니다", money(spent))))
            }
            _ => Ok(()),
        }
    }

    /// 예산에서 나간 돈이 `spent`가 되어도 되는지 (예산이 없으면 언제나).
    pub fn check_budget(&self, spent: Decimal) -> AppResult<()> {
        match self.budget {
            Some(budget) if spent > budget => Err(AppError::BudgetExhausted),
            _ => Ok(()),
        }
    }

    /// 최소 주문 금액 충족 여부 (기준이 없으면 항상 충족).
    pub fn meets_min_purchase(&self, order_amount: Decimal) -> bool {
        self.min_purchase_amount.is_none_or(|min| order_amount >= min)
    }

    /// 주문 금액에 대한 할인액. 최소 주문 금액 미만이면 0.
    pub fn discount_for(&self, order_amount: Decimal) -> Decimal {
        if !self.meets_min_purchase(order_amount) {
            return money(Decimal::ZERO);
        }
        let discount = match self.discount_type {
            DiscountType::Fixed => self.discount_value.min(order_amount),
            DiscountType::Percentage => {
                // 원 단위 아래 2자리에서 버림: 고객에게 약속한 비율을 넘지 않게.
                let raw = (order_amount * self.discount_value / Decimal::ONE_HUNDRED).round_dp_with_strategy(2, RoundingStrategy::ToZero);
                match self.max_discount_amount {
                    Some(cap) => raw.min(cap),
                    None => raw,
                }
            }
        };
        money(discount.max(Decimal::ZERO))
    }
}

/// `createCoupon`의 가공 전 입력 (GraphQL 계층이 그대로 넘긴다).
#[derive(Clone, Debug)]
pub struct NewCouponInput {
    pub name: String,
    pub discount_type: DiscountType,
    pub discount_value: String,
    pub min_purchase_amount: Option<String>,
    pub max_discount_amount: Option<String>,
    pub total_quantity: Option<i32>,
    pub valid_from: String,
    pub valid_until: String,
    /// 없으면(GraphQL 기본값) 1. 명시한 null은 입력 오류.
    pub per_user_limit: Option<i32>,
    /// 없으면(GraphQL 기본값) false. 명시한 null은 입력 오류.
    pub restricted: Option<bool>,
    /// 없거나 비었으면 일정 없음.
    pub waves: Option<Vec<ReleaseWaveInput>>,
    pub budget: Option<String>,
    /// 없으면(GraphQL 기본값) EXCLUSIVE. 명시한 null은 입력 오류.
    pub stacking: Option<Stacking>,
}

/// 검증을 통과한 새 쿠폰.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCoupon {
    pub name: String,
    pub discount_type: DiscountType,
    pub discount_value: Decimal,
    pub min_purchase_amount: Option<Decimal>,
    pub max_discount_amount: Option<Decimal>,
    pub total_quantity: Option<i32>,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
    pub per_user_limit: i32,
    pub restricted: bool,
    pub waves: Vec<ReleaseWave>,
    pub budget: Option<Decimal>,
    pub stacking: Stacking,
}

/// 부분 수정의 필드 하나: 없음(그대로), null(비움), 값.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Patch<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

/// `updateCoupon`의 가공 전 입력 (GraphQL 계층이 `MaybeUndefined`를 `Patch`로 옮겨 넘긴다). 기본값은 "아무것도 바꾸지 않음".
#[derive(Clone, Debug, Default)]
pub struct CouponChangeInput {
    pub name: Patch<String>,
    pub min_purchase_amount: Patch<String>,
    pub max_discount_amount: Patch<String>,
    pub total_quantity: Patch<i32>,
    pub valid_from: Patch<String>,
    pub valid_until: Patch<String>,
    pub per_user_limit: Patch<i32>,
    pub restricted: Patch<bool>,
    /// 일정 전체. null은 일정을 없앤다.
    pub waves: Patch<Vec<ReleaseWaveInput>>,
    /// null은 예산을 없앤다.
    pub budget: Patch<String>,
    pub stacking: Patch<Stacking>,
}

/// 형식 검증을 통과한 부분 수정. `None`은 그대로, `Some(None)`은 비움.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CouponChange {
    pub name: Option<String>,
    pub min_purchase_amount: Option<Option<Decimal>>,
    pub max_discount_amount: Option<Option<Decimal>>,
    pub total_quantity: Option<Option<i32>>,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    pub per_user_limit: Option<i32>,
    pub restricted: Option<bool>,
    /// 새 일정 전체 (빈 것은 일정 없음).
    pub waves: Option<Vec<ReleaseWave>>,
    pub budget: Option<Option<Decimal>>,
    pub stacking: Option<Stacking>,
}

impl CouponChange {
    /// 있는 필드만 `createCoupon`과 같은 규칙으로 검사한다. null을 받을 수 없는 필드의 null도 입력 오류.
    pub fn parse(input: CouponChangeInput) -> AppResult<Self> {
        fn required<T>(field: &str, p: Patch<T>) -> AppResult<Option<T>> {
            match p {
                Patch::Keep => Ok(None),
                Patch::Clear => Err(AppError::bad_input(field, format!("{field}: null로 비울 수 없습니다"))),
                Patch::Set(v) => Ok(Some(v)),
            }
        }
        fn nullable<T, U>(p: Patch<T>, f: impl FnOnce(T) -> AppResult<U>) -> AppResult<Option<Option<U>>> {
            match p {
                Patch::Keep => Ok(None),
                Patch::Clear => Ok(Some(None)),
                Patch::Set(v) => f(v).map(|u| Some(Some(u))),
            }
        }
        let name = required("name", input.name)?;
        if let Some(name) = &name {
            check_name(name)?;
        }
        let storable = |field: &'static str| move |raw: String| parse_decimal(field, &raw).and_then(|v| check_storable(field, v));
        let min_purchase_amount = nullable(input.min_purchase_amount, storable("minPurchaseAmount"))?;
        let max_discount_amount = nullable(input.max_discount_amount, storable("maxDiscountAmount"))?;
        let total_quantity = nullable(input.total_quantity, |q| check_total(Some(q)).map(|_| q))?;
        let valid_from = required("validFrom", input.valid_from)?.map(|raw| parse_datetime("validFrom", &raw)).transpose()?;
        let valid_until = required("validUntil", input.valid_until)?.map(|raw| parse_datetime("validUntil", &raw)).transpose()?;
        let per_user_limit = required("perUserLimit", input.per_user_limit)?.map(check_per_user_limit).transpose()?;
        let restricted = required("restricted", input.restricted)?;
        let waves = match input.waves {
            Patch::Keep => None,
            Patch::Clear => Some(Vec::new()),
            Patch::Set(w) => Some(wave::parse(w)?),
        };
        let budget = nullable(input.budget, |raw| parse_budget("budget", &raw))?;
        let stacking = required("stacking", input.stacking)?;
        Ok(CouponChange {
            name,
            min_purchase_amount,
            max_discount_amount,
            total_quantity,
            valid_from,
            valid_until,
            per_user_limit,
            restricted,
            waves,
            budget,
            stacking,
        })
    }

    /// 바꿀 필드가 하나도 없는지.
    pub fn is_empty(&self) -> bool {
        *self == CouponChange::default()
    }
}

fn check_name(name: &str) -> AppResult<()> {
    if (1..=100).contains(&name.chars().count()) {
        Ok(())
    } else {
        Err(AppError::bad_input("name", "name: 1자 이상 100자 이하여야 합니다"))
    }
}

/// 사용자당 한도: 1..100. null(명시)은 `None`으로 와서 입력 오류.
fn check_per_user_limit(limit: i32) -> AppResult<i32> {
    if (1..=100).contains(&limit) {
        Ok(limit)
    } else {
        Err(AppError::bad_input("perUserLimit", "perUserLimit: 1 이상 100 이하여야 합니다"))
    }
}

fn check_total(total: Option<i32>) -> AppResult<()> {
    if total.is_some_and(|q| q < 1) {
        Err(AppError::bad_input("totalQuantity", "totalQuantity: 1 이상이거나 null(무제한)이어야 합니다"))
    } else {
        Ok(())
    }
}

impl NewCoupon {
    /// 계약서의 createCoupon 검증. 첫 번째로 어긋난 필드를 지목한다.
    pub fn parse(input: NewCouponInput) -> AppResult<Self> {
        check_name(&input.name)?;
        let storable = |field: &str, raw: &str| parse_decimal(field, raw).and_then(|v| check_storable(field, v));
        let discount_value = storable("discountValue", &input.discount_value)?;
        if discount_value.is_zero() {
            return Err(AppError::bad_input("discountValue", "discountValue: 0보다 커야 합니다"));
        }
        if input.discount_type == DiscountType::Percentage && discount_value > Decimal::ONE_HUNDRED {
            return Err(AppError::bad_input("discountValue", "discountValue: 정률 할인은 100 이하여야 합니다"));
        }
        let min_purchase_amount = input.min_purchase_amount.as_deref().map(|raw| storable("minPurchaseAmount", raw)).transpose()?;
        let max_discount_amount = input.max_discount_amount.as_deref().map(|raw| storable("maxDiscountAmount", raw)).transpose()?;
        if max_discount_amount.is_some() && input.discount_type != DiscountType::Percentage {
            return Err(AppError::bad_input("maxDiscountAmount", "maxDiscountAmount: 정률 할인에만 지정할 수 있습니다"));
        }
        check_total(input.total_quantity)?;
        let valid_from = parse_datetime("validFrom", &input.valid_from)?;
        let valid_until = parse_datetime("validUntil", &input.valid_until)?;
        if valid_from >= valid_until {
            return Err(AppError::bad_input("validUntil", "validUntil: validFrom보다 뒤여야 합니다"));
        }
        let per_user_limit = match input.per_user_limit {
            Some(limit) => check_per_user_limit(limit)?,
            None => return Err(AppError::bad_input("perUserLimit", "perUserLimit: null일 수 없습니다 (기본값 1)")),
        };
        let Some(restricted) = input.restricted else {
            return Err(AppError::bad_input("restricted", "restricted: null일 수 없습니다 (기본값 false)"));
        };
        let waves = wave::parse(input.waves.unwrap_or_default())?;
        wave::check_fits(&waves, input.total_quantity, valid_from, valid_until)?;
        let budget = input.budget.as_deref().map(|raw| parse_budget("budget", raw)).transpose()?;
        let Some(stacking) = input.stacking else {
            return Err(AppError::bad_input("stacking", "stacking: null일 수 없습니다 (기본값 EXCLUSIVE)"));
        };
        Ok(NewCoupon {
            name: input.name,
            discount_type: input.discount_type,
            discount_value,
            min_purchase_amount,
            max_discount_amount,
            total_quantity: input.total_quantity,
            valid_from,
            valid_until,
            per_user_limit,
            restricted,
            waves,
            budget,
            stacking,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).expect("테스트 값")
    }

    fn at(y: i32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, 1, 1, 0, 0, 0).single().expect("유효한 시각")
    }

    fn coupon(kind: DiscountType, value: &str, min: Option<&str>, max: Option<&str>) -> Coupon {
        Coupon {
            id: Uuid::nil(),
            name: "t".into(),
            discount_type: kind,
            discount_value: dec(value),
            min_purchase_amount: min.map(dec),
            max_discount_amount: max.map(dec),
            total_quantity: Some(10),
            issued_quantity: 0,
            valid_from: at(2025),
            valid_until: at(2030),
            created_at: at(2025),
            updated_at: at(2025),
            status: CouponStatus::Active,
            version: 0,
            per_user_limit: 1,
            restricted: false,
            waves: Vec::new(),
            budget: None,
            budget_spent: Decimal::ZERO,
            stacking: Stacking::Exclusive,
        }
    }

    #[test]
    fn fixed_discount_never_exceeds_the_order() {
        let c = coupon(DiscountType::Fixed, "5000", None, None);
        assert_eq!(c.discount_for(dec("30000")), dec("5000.00"));
        assert_eq!(c.discount_for(dec("3000")), dec("3000.00"));
    }

    #[test]
    fn percentage_discount_rounds_down_to_two_decimals_and_respects_the_cap() {
        let c = coupon(DiscountType::Percentage, "10", None, Some("3000"));
        assert_eq!(c.discount_for(dec("12345.67")), dec("1234.56"));
        assert_eq!(c.discount_for(dec("50000")), dec("3000.00"));
        let odd = coupon(DiscountType::Percentage, "33.33", None, None);
        assert_eq!(odd.discount_for(dec("0.99")), dec("0.32"));
    }

    #[test]
    fn below_the_minimum_purchase_the_discount_is_zero() {
        let c = coupon(DiscountType::Fixed, "5000", Some("30000"), None);
        assert_eq!(c.discount_for(dec("29999.99")), dec("0.00"));
        assert_eq!(c.discount_for(dec("30000")), dec("5000.00"));
    }

    #[test]
    fn the_window_tells_not_started_from_expired() {
        let c = coupon(DiscountType::Fixed, "1", None, None);
        assert!(matches!(c.check_window(at(2024)), Err(AppError::CouponNotStarted)));
        assert!(matches!(c.check_window(at(2031)), Err(AppError::CouponExpired)));
        assert!(c.check_window(at(2026)).is_ok());
    }

    #[test]
    fn stock_is_unlimited_without_a_total() {
        let mut c = coupon(DiscountType::Fixed, "1", None, None);
        c.issued_quantity = 10;
        assert!(c.is_sold_out());
        assert!(!c.is_available(at(2026)));
        c.total_quantity = None;
        assert_eq!(c.remaining_quantity(), None);
        assert!(c.is_available(at(2026)));
    }

    fn input() -> NewCouponInput {
        NewCouponInput {
            name: "할인 🎉".into(),
            discount_type: DiscountType::Percentage,
            discount_value: "10".into(),
            min_purchase_amount: Some("10000".into()),
            max_discount_amount: Some("3000.50".into()),
            total_quantity: Some(5),
            valid_from: "2025-01-01T09:00:00+09:00".into(),
            valid_until: "2099-12-31T23:59:59Z".into(),
            per_user_limit: Some(1),
            restricted: Some(false),
            waves: None,
            budget: None,
            stacking: Some(Stacking::Exclusive),
        }
    }

    fn rejected_field(input: NewCouponInput) -> String {
        match NewCoupon::parse(input) {
            Err(AppError::BadUserInput { field, .. }) => field,
            other => panic!("거부되어야 함: {other:?}"),
        }
    }

    #[test]
    fn a_valid_input_is_accepted_and_times_become_utc() {
        let c = NewCoupon::parse(input()).expect("유효한 입력");
        assert_eq!(c.valid_from, at(2025));
        assert_eq!(c.max_discount_amount, Some(dec("3000.50")));
    }

    #[test]
    fn each_invalid_field_is_named() {
        assert_eq!(rejected_field(NewCouponInput { name: String::new(), ..input() }), "name");
        assert_eq!(rejected_field(NewCouponInput { name: "가".repeat(101), ..input() }), "name");
        assert_eq!(rejected_field(NewCouponInput { discount_value: "0".into(), ..input() }), "discountValue");
        assert_eq!(rejected_field(NewCouponInput { discount_value: "100.01".into(), ..input() }), "discountValue");
        assert_eq!(rejected_field(NewCouponInput { discount_value: "1e3".into(), ..input() }), "discountValue");
        assert_eq!(rejected_field(NewCouponInput { min_purchase_amount: Some("-1".into()), ..input() }), "minPurchaseAmount");
        assert_eq!(rejected_field(NewCouponInput { max_discount_amount: Some("0.001".into()), ..input() }), "maxDiscountAmount");
        assert_eq!(
            rejected_field(NewCouponInput { discount_type: DiscountType::Fixed, discount_value: "100".into(), ..input() }),
            "maxDiscountAmount"
        );
        assert_eq!(rejected_field(NewCouponInput { total_quantity: Some(0), ..input() }), "totalQuantity");
        assert_eq!(rejected_field(NewCouponInput { valid_from: "yesterday".into(), ..input() }), "validFrom");
        assert_eq!(rejected_field(NewCouponInput { valid_from: "0999-12-31T23:59:59Z".into(), ..input() }), "validFrom");
        assert_eq!(rejected_field(NewCouponInput { valid_until: "2025-01-01T00:00:00Z".into(), ..input() }), "validUntil");
        for limit in [None, Some(0), Some(101)] {
            assert_eq!(rejected_field(NewCouponInput { per_user_limit: limit, ..input() }), "perUserLimit", "{limit:?}");
        }
        assert_eq!(NewCoupon::parse(NewCouponInput { per_user_limit: Some(100), ..input() }).map(|c| c.per_user_limit).ok(), Some(100));
    }

    #[test]
    fn a_name_of_exactly_100_characters_is_fine() {
        assert!(NewCoupon::parse(NewCouponInput { name: "가".repeat(100), ..input() }).is_ok());
    }

    fn change() -> CouponChangeInput {
        CouponChangeInput::default()
    }

    fn change_field(input: CouponChangeInput, c: &Coupon) -> String {
        match CouponChange::parse(input).and_then(|ch| c.apply(&ch, at(2026))) {
            Err(AppError::BadUserInput { field, .. }) => field,
            other => panic!("거부되어야 함: {other:?}"),
        }
    }

    #[test]
    fn an_update_changes_only_what_is_present_and_null_clears() {
        let c = coupon(DiscountType::Percentage, "10", Some("10000"), Some("3000"));
        let ch =
            CouponChange::parse(CouponChangeInput { name: Patch::Set("새 이름".into()), max_discount_amount: Patch::Clear, ..change() })
                .expect("유효한 수정");
        let next = c.apply(&ch, at(2026)).expect("적용");
        assert_eq!(next.name, "새 이름");
        assert_eq!(next.max_discount_amount, None);
        assert_eq!(next.min_purchase_amount, Some(dec("10000")));
        assert_eq!(next.total_quantity, Some(10));
        assert!(CouponChange::parse(change()).expect("빈 수정").is_empty());
    }

    #[test]
    fn an_update_is_checked_like_create_and_against_the_issued_quantity() {
        let mut c = coupon(DiscountType::Fixed, "1000", None, None);
        c.issued_quantity = 7;
        assert_eq!(change_field(CouponChangeInput { name: Patch::Clear, ..change() }, &c), "name");
        assert_eq!(change_field(CouponChangeInput { name: Patch::Set(String::new()), ..change() }, &c), "name");
        assert_eq!(change_field(CouponChangeInput { total_quantity: Patch::Set(0), ..change() }, &c), "totalQuantity");
        assert_eq!(change_field(CouponChangeInput { total_quantity: Patch::Set(6), ..change() }, &c), "totalQuantity");
        assert_eq!(change_field(CouponChangeInput { max_discount_amount: Patch::Set("5".into()), ..change() }, &c), "maxDiscountAmount");
        assert_eq!(change_field(CouponChangeInput { valid_from: Patch::Clear, ..change() }, &c), "validFrom");
        // 사용자당 한도는 올리기만: null, 범위 밖, 지금보다 낮은 값은 거절.
        let mut three = c.clone();
        three.per_user_limit = 3;
        for p in [Patch::Clear, Patch::Set(0), Patch::Set(101), Patch::Set(2)] {
            assert_eq!(change_field(CouponChangeInput { per_user_limit: p.clone(), ..change() }, &three), "perUserLimit", "{p:?}");
        }
        let raised = CouponChange::parse(CouponChangeInput { per_user_limit: Patch::Set(5), ..change() }).expect("형식");
        assert_eq!(three.apply(&raised, at(2026)).expect("올리기").per_user_limit, 5);
        assert_eq!(change_field(CouponChangeInput { valid_from: Patch::Set("2031-01-01T00:00:00Z".into()), ..change() }, &c), "validFrom");
        assert_eq!(
            change_field(CouponChangeInput { valid_until: Patch::Set("2024-01-01T00:00:00Z".into()), ..change() }, &c),
            "validUntil"
        );
        let ok = CouponChange::parse(CouponChangeInput { total_quantity: Patch::Set(7), ..change() }).expect("형식");
        assert_eq!(c.apply(&ok, at(2026)).expect("발급 수량과 같으면 된다").total_quantity, Some(7));
        let unlimited = CouponChange::parse(CouponChangeInput { total_quantity: Patch::Clear, ..change() }).expect("형식");
        assert_eq!(c.apply(&unlimited, at(2026)).expect("무제한").total_quantity, None);
    }

    #[test]
    fn archived_is_final_and_only_active_issues() {
        let mut c = coupon(DiscountType::Fixed, "1", None, None);
        assert_eq!(c.transition(CouponStatus::Active).expect("같은 상태"), None);
        assert_eq!(c.transition(CouponStatus::Paused).expect("중지"), Some(CouponStatus::Paused));
        c.status = CouponStatus::Paused;
        assert!(matches!(c.check_issuable(), Err(AppError::CouponPaused)));
        assert!(!c.is_available(at(2026)));
        c.status = CouponStatus::Archived;
        assert!(matches!(c.check_issuable(), Err(AppError::CouponPaused)));
        for to in [CouponStatus::Active, CouponStatus::Paused, CouponStatus::Archived] {
            assert!(matches!(c.transition(to), Err(AppError::CouponArchived)));
        }
    }
}
