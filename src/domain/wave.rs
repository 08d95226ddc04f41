//! 발행 일정 (CONTRACT 11절 "Release waves"): 정해진 시각마다 수량을 나눠 푼다.
//!
//! 풀린 수량은 시계로 계산한다 (작업 없이): `at`이 지난 웨이브 수량의 합. 안 팔린 수량은 다음 웨이브로 넘어간다
//! (누적이므로 저절로). 일정은 쿠폰 행에 함께 있어서, 발급이 잠금 아래에서 읽은 행 하나로 판단한다.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::time::parse_datetime;
use crate::error::{AppError, AppResult};

/// 웨이브는 50개까지.
pub const MAX_WAVES: usize = 50;

/// 발행 한 번: `at`에 `quantity`장이 풀린다.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseWave {
    pub at: DateTime<Utc>,
    pub quantity: i32,
}

/// 가공 전 입력 (GraphQL 계층이 그대로 넘긴다).
#[derive(Clone, Debug)]
pub struct ReleaseWaveInput {
    pub at: String,
    pub quantity: i32,
}

fn bad(message: impl std::fmt::Display) -> AppError {
    AppError::bad_input("waves", format!("waves: {message}"))
}

/// 형식 검사: 개수, 시각, 수량 ≥ 1, `at`이 엄격히 증가. 쿠폰과 맞춰 보는 검사는 `check_fits`.
pub fn parse(input: Vec<ReleaseWaveInput>) -> AppResult<Vec<ReleaseWave>> {
    if input.len() > MAX_WAVES {
        return Err(bad(format_args!("{MAX_WAVES}개까지입니다")));
    }
    let mut waves: Vec<ReleaseWave> = Vec::with_capacity(input.len());
    for w in input {
        let at = parse_datetime("waves", &w.at)?;
        if w.quantity < 1 {
            return Err(bad("quantity는 1 이상이어야 합니다"));
        }
        if waves.last().is_some_and(|prev| prev.at >= at) {
            return Err(bad("at은 앞의 웨이브보다 뒤여야 합니다"));
        }
        waves.push(ReleaseWave { at, quantity: w.quantity });
    }
    Ok(waves)
}

/// 쿠폰의 총수량·유효기간과 맞는지: 모든 `at`이 [validFrom, validUntil) 안이고, 수량의 합이 총수량과 같다.
/// 일정이 비었으면 언제나 맞다.
pub fn check_fits(waves: &[ReleaseWave], total: Option<i32>, from: DateTime<Utc>, until: DateTime<Utc>) -> AppResult<()> {
    if waves.is_empty() {
        return Ok(());
    }
    if waves.iter().any(|w| w.at < from || w.at >= until) {
        return Err(bad("모든 at이 [validFrom, validUntil) 안에 있어야 합니다"));
    }
    let sum: i64 = waves.iter().map(|w| i64::from(w.quantity)).sum();
    if total.map(i64::from) != Some(sum) {
        return Err(bad(format_args!("수량의 합({sum})이 totalQuantity와 같아야 합니다")));
    }
    Ok(())
}

/// `updateCoupon`의 새 일정: 이미 열린 웨이브는 그대로 다시 보내야 하고, 나머지는 모두 미래여야 한다.
pub fn check_reschedule(old: &[ReleaseWave], new: &[ReleaseWave], now: DateTime<Utc>) -> AppResult<()> {
    let opened: Vec<&ReleaseWave> = old.iter().filter(|w| w.at <= now).collect();
    if new.len() < opened.len() || opened.iter().zip(new).any(|(o, n)| *o != n) {
        return Err(bad("이미 열린 웨이브는 바꾸지 않고 그대로 보내야 합니다"));
    }
    if new[opened.len()..].iter().any(|w| w.at <= now) {
        return Err(bad("새로 정하는 웨이브는 미래여야 합니다"));
    }
    Ok(())
}

/// 지금까지 풀린 수량(누적). 일정이 없으면 `None` (총수량 전부).
pub fn released(waves: &[ReleaseWave], now: DateTime<Utc>) -> Option<i32> {
    (!waves.is_empty()).then(|| waves.iter().filter(|w| w.at <= now).map(|w| w.quantity).sum())
}

/// 다음 웨이브가 열리는 시각. 남은 웨이브가 없으면 `None`.
pub fn next_at(waves: &[ReleaseWave], now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    waves.iter().find(|w| w.at > now).map(|w| w.at)
}

/// 저장 형식 (JSON 배열). 일정이 없으면 NULL.
pub fn to_stored(waves: &[ReleaseWave]) -> Option<String> {
    (!waves.is_empty()).then(|| serde_json::to_string(waves).unwrap_or_default())
}

/// 저장된 일정을 읽는다. 읽을 수 없으면 내부 오류 (쓰는 곳은 `to_stored` 하나뿐).
pub fn from_stored(raw: Option<&str>) -> AppResult<Vec<ReleaseWave>> {
    match raw {
        None => Ok(Vec::new()),
        Some(s) => serde_json::from_str(s).map_err(|e| AppError::Internal(format!("저장된 발행 일정을 읽지 못함: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, 1, h, 0, 0).single().expect("유효한 시각")
    }

    fn w(h: u32, q: i32) -> ReleaseWaveInput {
        ReleaseWaveInput { at: t(h).to_rfc3339(), quantity: q }
    }

    fn field(r: AppResult<impl std::fmt::Debug>) -> String {
        match r {
            Err(AppError::BadUserInput { field, .. }) => field,
            other => panic!("거부되어야 함: {other:?}"),
        }
    }

    #[test]
    fn waves_are_checked_for_shape_and_against_the_coupon() {
        let ok = parse(vec![w(1, 10), w(2, 20)]).expect("유효");
        assert_eq!(ok.len(), 2);
        assert_eq!(field(parse(vec![w(2, 10), w(1, 20)])), "waves");
        assert_eq!(field(parse(vec![w(1, 10), w(1, 20)])), "waves");
        assert_eq!(field(parse(vec![w(1, 0)])), "waves");
        assert_eq!(field(parse(vec![ReleaseWaveInput { at: "noon".into(), quantity: 1 }])), "waves");
        assert_eq!(
            field(parse((0..51).map(|h| ReleaseWaveInput { at: (t(0) + chrono::Duration::hours(h)).to_rfc3339(), quantity: 1 }).collect())),
            "waves"
        );
        assert!(check_fits(&ok, Some(30), t(1), t(3)).is_ok());
        assert_eq!(field(check_fits(&ok, Some(31), t(1), t(3))), "waves");
        assert_eq!(field(check_fits(&ok, None, t(1), t(3))), "waves");
        // validFrom은 안, validUntil은 밖.
        assert_eq!(field(check_fits(&ok, Some(30), t(1), t(2))), "waves");
        assert_eq!(field(check_fits(&ok, Some(30), t(2), t(5))), "waves");
        assert!(check_fits(&[], None, t(1), t(2)).is_ok());
    }

    #[test]
    fn released_stock_follows_the_clock_and_rolls_over() {
        let waves = parse(vec![w(1, 10), w(2, 20), w(3, 5)]).expect("유효");
        assert_eq!(released(&waves, t(0)), Some(0));
        assert_eq!(released(&waves, t(1)), Some(10));
        assert_eq!(released(&waves, t(2)), Some(30));
        assert_eq!(released(&waves, t(4)), Some(35));
        assert_eq!(next_at(&waves, t(1)), Some(t(2)));
        assert_eq!(next_at(&waves, t(3)), None);
        assert_eq!(released(&[], t(1)), None);
    }

    #[test]
    fn a_new_schedule_keeps_the_opened_waves() {
        let old = parse(vec![w(1, 10), w(3, 20)]).expect("유효");
        let now = t(2);
        assert!(check_reschedule(&old, &parse(vec![w(1, 10), w(4, 5), w(5, 15)]).expect("유효"), now).is_ok());
        assert_eq!(field(check_reschedule(&old, &parse(vec![w(1, 11), w(4, 19)]).expect("유효"), now)), "waves");
        assert_eq!(field(check_reschedule(&old, &parse(vec![w(4, 30)]).expect("유효"), now)), "waves");
        assert_eq!(field(check_reschedule(&old, &parse(vec![w(1, 10), w(2, 20)]).expect("유효"), now)), "waves");
        assert!(check_reschedule(&old, &[], t(0)).is_ok());
    }

    #[test]
    fn the_stored_form_round_trips() {
        let waves = parse(vec![w(1, 10), w(2, 20)]).expect("유효");
        assert_eq!(from_stored(to_stored(&waves).as_deref()).expect("읽기"), waves);
        assert_eq!(to_stored(&[]), None);
        assert!(from_stored(Some("x")).is_err());
    }
}
