//! 쿠폰 코드 규칙 (CONTRACT 8절): 정규화, 모양, 생성 코드의 무작위 부분, 추측 방어의 한도.
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{AppError, AppResult};

/// 크록포드 base32: 헷갈리는 I, L, O, U를 뺀 32자. 32가 2의 거듭제곱이라 5비트씩 잘라 쓰면 치우침이 없다.
pub const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// 생성 코드의 무작위 부분 길이: 60비트.
pub const RANDOM_LEN: usize = 12;
pub const MAX_PREFIX: usize = 12;
/// 지정 코드 길이 (생성 코드도 접두어 12 + 12 = 24자로 이 안에 든다).
pub const MIN_CODE: usize = 4;
pub const MAX_CODE: usize = 32;
/// 한 번에 만들 수 있는 코드 수.
pub const MAX_GENERATE: i32 = 100_000;
/// 추측 방어: 최근 `FAILURE_WINDOW_SECS`초 동안 모르는 코드가 사용자마다 이만큼이면 막는다.
pub const MAX_FAILURES: u64 = 10;
/// 주소마다의 한도: 한 주소의 많은 토큰이 한 사용자보다 빨리 추측하지 못하게.
pub const MAX_ADDRESS_FAILURES: u64 = 100;
pub const FAILURE_WINDOW_SECS: i64 = 60;

/// 한 주체(사용자나 주소)의 최근 1분 실패: 수와 가장 오래된 시각.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FailureWindow {
    pub count: u64,
    pub oldest: Option<DateTime<Utc>>,
}

/// 막힌 주체가 있으면 TOO_MANY_ATTEMPTS. `user`가 `None`이면(없는 사용자) 주소만 본다.
/// 둘 다 막혔으면 둘 다 풀릴 때까지 기다려야 하므로 더 긴 쪽을 알린다.
pub fn admit(user: Option<&FailureWindow>, addr: &FailureWindow, now: DateTime<Utc>) -> AppResult<()> {
    let waits = [(user, MAX_FAILURES), (Some(addr), MAX_ADDRESS_FAILURES)]
        .into_iter()
        .filter_map(|(w, max)| w.filter(|w| w.count >= max).map(|w| retry_after(w, now)));
    match waits.max() {
        Some(retry_after_secs) => Err(AppError::TooManyAttempts { retry_after_secs }),
        None => Ok(()),
    }
}

/// 수만 보고 막혔는지 (성공 경로의 읽기는 수만 가져온다; 막혔을 때만 시각을 더 읽는다).
pub fn is_blocked(user_failures: u64, addr_failures: u64) -> bool {
    user_failures >= MAX_FAILURES || addr_failures >= MAX_ADDRESS_FAILURES
}

/// 가장 오래된 실패가 1분이 될 때까지의 초, 올림해서 1..60. 실패는 한도를 넘게 기록되지 않으므로(잠금 아래에서 센다)
/// 창 안의 가장 오래된 것이 빠지면 한도 밑으로 내려간다.
fn retry_after(w: &FailureWindow, now: DateTime<Utc>) -> u32 {
    let Some(oldest) = w.oldest else { return FAILURE_WINDOW_SECS as u32 };
    let ms = (oldest + chrono::Duration::seconds(FAILURE_WINDOW_SECS) - now).num_milliseconds();
    ms.div_euclid(1000).saturating_add(i64::from(ms.rem_euclid(1000) > 0)).clamp(1, FAILURE_WINDOW_SECS) as u32
}

/// 저장된 쿠폰 코드.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CouponCode {
    pub code: String,
    pub coupon_id: Uuid,
    /// `None` = 무제한 (지정 코드). 생성 코드는 1.
    pub max_redemptions: Option<i32>,
    pub redemptions: i32,
    pub generated: bool,
    pub created_at: DateTime<Utc>,
}

impl CouponCode {
    /// 한 번 더 쓸 자리가 있는지 (`used`: 같은 배치에서 이미 쓴 수).
    pub fn check_room(&self, used: i32) -> AppResult<()> {
        match self.max_redemptions {
            Some(max) if self.redemptions + used >= max => Err(AppError::CodeAlreadyRedeemed),
            _ => Ok(()),
        }
    }
}

/// 대소문자·공백·하이픈을 무시하고 비교하므로, 저장과 조회 모두 이 모양으로 바꾼다.
pub fn normalize(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_whitespace() && *c != '-').map(|c| c.to_ascii_uppercase()).collect()
}

fn is_alnum_upper(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// 코드가 될 수 있는 모양인지 (정규화 뒤). 아니면 조회할 것도 없이 CODE_NOT_FOUND다.
pub fn has_code_shape(code: &str) -> bool {
    (MIN_CODE..=MAX_CODE).contains(&code.len()) && is_alnum_upper(code)
}

/// `addCouponCode`의 코드: 정규화 뒤 4..32자의 A-Z 0-9.
pub fn parse_chosen(raw: &str) -> AppResult<String> {
    let code = normalize(raw);
    if has_code_shape(&code) {
        Ok(code)
    } else {
        Err(AppError::bad_input("code", format!("code: {MIN_CODE}~{MAX_CODE}자의 영문 대문자와 숫자여야 합니다")))
    }
}

/// `addCouponCode`의 maxRedemptions: null(무제한) 또는 1 이상.
pub fn parse_max_redemptions(max: Option<i32>) -> AppResult<Option<i32>> {
    match max {
        Some(n) if n < 1 => Err(AppError::bad_input("maxRedemptions", "maxRedemptions: 1 이상이거나 null(무제한)이어야 합니다")),
        other => Ok(other),
    }
}

/// `generateCouponCodes`의 접두어: 정규화 뒤 0..12자의 A-Z 0-9.
pub fn parse_prefix(raw: Option<&str>) -> AppResult<String> {
    let prefix = raw.map(normalize).unwrap_or_default();
    if prefix.len() <= MAX_PREFIX && is_alnum_upper(&prefix) {
        Ok(prefix)
    } else {
        Err(AppError::bad_input("prefix", format!("prefix: {MAX_PREFIX}자 이하의 영문 대문자와 숫자여야 합니다")))
    }
}

/// `generateCouponCodes`의 개수: 1..100,000.
pub fn parse_count(count: i32) -> AppResult<usize> {
    if (1..=MAX_GENERATE).contains(&count) {
        Ok(count as usize)
    } else {
        Err(AppError::bad_input("count", format!("count: 1 이상 {MAX_GENERATE} 이하여야 합니다")))
    }
}

/// 운영체제의 암호학적 난수로 코드 `n`개를 만든다 (코드 하나에 8바이트 중 60비트).
pub fn random_codes(prefix: &str, n: usize) -> AppResult<Vec<String>> {
    let mut bytes = vec![0u8; n * 8];
    getrandom::fill(&mut bytes).map_err(|e| AppError::Internal(format!("난수 원천 실패: {e}")))?;
    Ok(bytes
        .chunks_exact(8)
        .map(|chunk| {
            let mut bits = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
            let mut code = String::with_capacity(prefix.len() + RANDOM_LEN);
            code.push_str(prefix);
            for _ in 0..RANDOM_LEN {
                code.push(CROCKFORD[(bits & 31) as usize] as char);
                bits >>= 5;
            }
            code
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_match_ignoring_case_spaces_and_hyphens() {
        assert_eq!(normalize(" welcome-2026 "), "WELCOME2026");
        assert_eq!(normalize("ab cd\t-ef"), "ABCDEF");
    }

    #[test]
    fn generated_codes_are_prefix_plus_twelve_crockford_characters() {
        let codes = random_codes("SPRING", 1000).expect("난수");
        assert_eq!(codes.len(), 1000);
        for c in &codes {
            assert_eq!(c.len(), 18);
            assert!(c.starts_with("SPRING"));
            assert!(c[6..].bytes().all(|b| CROCKFORD.contains(&b)), "{c}");
            assert!(!c[6..].contains(['I', 'L', 'O', 'U']));
            assert!(has_code_shape(c));
        }
        // 60비트 중 1,000개가 겹칠 확률은 10^-12 정도: 겹치면 난수 원천이 고장 난 것이다.
        assert_eq!(codes.iter().collect::<HashSet<_>>().len(), 1000);
    }

    #[test]
    fn retry_after_counts_whole_seconds_until_the_oldest_failure_is_a_minute_old() {
        let now = crate::domain::now();
        let at = |ms: i64| Some(now - chrono::Duration::milliseconds(ms));
        let user = |count, oldest| FailureWindow { count, oldest };
        let wait = |r: AppResult<()>| match r {
            Err(AppError::TooManyAttempts { retry_after_secs }) => retry_after_secs,
            other => panic!("막혀야 함: {other:?}"),
        };
        assert!(admit(Some(&user(9, at(0))), &user(99, at(0)), now).is_ok());
        assert_eq!(wait(admit(Some(&user(10, at(0))), &user(0, None), now)), 60);
        assert_eq!(wait(admit(Some(&user(10, at(500))), &user(0, None), now)), 60, "59.5초는 60으로 올림");
        assert_eq!(wait(admit(Some(&user(10, at(59_999))), &user(0, None), now)), 1);
        assert_eq!(wait(admit(Some(&user(10, at(70_000))), &user(0, None), now)), 1, "시계가 어긋나도 1 이상");
        assert_eq!(wait(admit(Some(&user(10, at(30_000))), &user(100, at(10_000)), now)), 50, "둘 다 막히면 긴 쪽");
        assert_eq!(wait(admit(None, &user(100, at(20_000)), now)), 40);
        assert!(admit(None, &user(99, at(0)), now).is_ok(), "없는 사용자는 주소만 센다");
        assert!(is_blocked(10, 0) && is_blocked(0, 100) && !is_blocked(9, 99));
    }

    #[test]
    fn bad_shapes_are_named() {
        let field = |r: AppResult<String>| match r {
            Err(AppError::BadUserInput { field, .. }) => field,
            other => panic!("거부되어야 함: {other:?}"),
        };
        assert_eq!(field(parse_chosen("abc")), "code");
        assert_eq!(field(parse_chosen(&"A".repeat(33))), "code");
        assert_eq!(field(parse_chosen("WELCOME!")), "code");
        assert_eq!(field(parse_chosen("쿠폰코드입니다")), "code");
        assert_eq!(parse_chosen("welcome-2026").expect("정규화 뒤 유효"), "WELCOME2026");
        assert_eq!(field(parse_prefix(Some("TOOLONGPREFIX1"))), "prefix");
        assert_eq!(field(parse_prefix(Some("A_B"))), "prefix");
        assert_eq!(parse_prefix(None).expect("없으면 빈 접두어"), "");
        assert!(parse_count(0).is_err() && parse_count(100_001).is_err() && parse_count(100_000).is_ok());
        assert!(parse_max_redemptions(Some(0)).is_err() && parse_max_redemptions(None).is_ok());
        assert!(!has_code_shape("ABC") && !has_code_shape("AB-CD"));
    }
}
