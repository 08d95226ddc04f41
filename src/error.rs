//! 도메인 에러: 각 변형이 계약서(CONTRACT 5절)의 코드와 한국어 메시지 하나에 대응한다.
//!
//! 에러 정책: 클라이언트가 보는 것은 `code()`와 `Display`(한국어 메시지)뿐이다.
//! 데이터베이스·내부 오류의 상세는 `Internal`에 담아 로그로만 남기고, 응답에는 싣지 않는다.

/// 유스케이스가 돌려주는 모든 실패.
#[derive(Clone, Debug, thiserror::Error)]
pub enum AppError {
    /// 토큰이 필요한데 없거나 유효하지 않다.
    #[error("인증이 필요합니다")]
    Unauthenticated,
    /// 역할이 허용하지 않는다.
    #[error("권한이 없습니다")]
    Forbidden,
    /// 잘못된 입력. `field`는 `extensions.field`로 나간다.
    #[error("{message}")]
    BadUserInput { field: String, message: String },
    #[error("사용자를 찾을 수 없습니다")]
    UserNotFound,
    #[error("쿠폰을 찾을 수 없습니다")]
    CouponNotFound,
    /// 없거나 남의 것: 존재 여부를 드러내지 않으려고 둘을 구분하지 않는다.
    #[error("발급받은 쿠폰을 찾을 수 없습니다")]
    UserCouponNotFound,
    #[error("쿠폰 사용 기간이 아닙니다")]
    CouponNotStarted,
    #[error("만료된 쿠폰입니다")]
    CouponExpired,
    #[error("이미 발급받은 쿠폰입니다")]
    CouponAlreadyIssued,
    #[error("쿠폰이 모두 소진되었습니다")]
    CouponSoldOut,
    /// 이번 발행분이 다 나갔고 다음 발행이 남았다 (CONTRACT 11절). `next_release_at`은 `extensions.nextReleaseAt`으로 나간다.
    #[error("이번 수량이 모두 소진되었습니다. 다음 오픈을 기다려 주세요")]
    CouponWaveSoldOut { next_release_at: chrono::DateTime<chrono::Utc> },
    /// 할인액이 남은 예산에 들어가지 않는다 (CONTRACT 11절).
    #[error("프로모션 예산이 소진되었습니다")]
    BudgetExhausted,
    #[error("이미 사용된 쿠폰입니다")]
    CouponAlreadyUsed,
    #[error("사용되지 않은 쿠폰입니다")]
    CouponNotUsed,
    #[error("최소 주문 금액을 충족하지 않습니다")]
    MinPurchaseNotMet,
    /// 잠금 대기 시간 초과, 교착 상태 희생, 커넥션 풀 고갈: 아무것도 쓰이지 않았다.
    #[error("잠시 후 다시 시도해 주세요")]
    TryAgain,
    /// 데이터베이스가 트랜잭션을 버렸다 (교착 상태 희생자, Galera 인증 충돌, 직렬화 실패): 커밋된 것이 없으므로
    /// 서버가 `service::retry`로 트랜잭션째 다시 돌린다. 밖으로 나가면 TRY_AGAIN.
    #[error("잠시 후 다시 시도해 주세요")]
    Aborted,
    /// 다른 주문이 보류 중이다.
    #[error("다른 주문에 사용 예정인 쿠폰입니다")]
    CouponReserved,
    #[error("해당 주문에 사용된 쿠폰이 아닙니다")]
    OrderMismatch,
    /// 같은 멱등 키로 다른 요청 (HTTP 422).
    #[error("같은 멱등 키로 다른 요청을 보냈습니다")]
    IdempotencyKeyReused,
    /// 일시 중지되었거나 보관된 쿠폰의 발급 (코드로도).
    #[error("발급이 중지된 쿠폰입니다")]
    CouponPaused,
    /// 보관된 쿠폰은 더 바꿀 수 없다.
    #[error("보관 처리된 쿠폰입니다")]
    CouponArchived,
    /// 없는 코드, 또는 코드 모양이 아닌 입력 (모양 검사로 아무것도 드러내지 않으려고 같게 답한다).
    #[error("쿠폰 코드를 찾을 수 없습니다")]
    CodeNotFound,
    #[error("이미 사용된 쿠폰 코드입니다")]
    CodeAlreadyRedeemed,
    /// 제한된 쿠폰(`restricted`)을 대상 고객이 아닌 사용자에게 (CONTRACT 11절).
    #[error("발급 대상이 아닙니다")]
    NotEligible,
    /// 1분 안에 모르는 코드를 사용자가 10번, 또는 주소가 100번. `retry_after_secs`(1..60)는 `extensions.retryAfterSeconds`로 나간다.
    #[error("시도 횟수를 초과했습니다. 잠시 후 다시 시도해 주세요")]
    TooManyAttempts { retry_after_secs: u32 },
    /// 웹소켓 연결 하나에 구독이 20개를 넘었다.
    #[error("구독은 연결 하나에 20개까지입니다")]
    TooManySubscriptions,
    /// 그 밖의 모든 것. 상세는 로그 전용.
    #[error("함께 사용할 수 없는 쿠폰입니다")]
    StackingNotAllowed { user_coupon_ids: Vec<uuid::Uuid> },
    /// 묶음(CONTRACT 12절)의 한 쿠폰이 낸 오류: 코드와 메시지는 그 오류의 것이고, `extensions.userCouponId`가 그 쿠폰을 가리킨다.
    #[error("{error}")]
    InSet { user_coupon_id: uuid::Uuid, error: Box<AppError> },
    #[error("일시적인 오류가 발생했습니다")]
    Internal(String),
}

impl AppError {
    /// 계약서의 `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthenticated => "UNAUTHENTICATED",
            AppError::Forbidden => "FORBIDDEN",
            AppError::BadUserInput { .. } => "BAD_USER_INPUT",
            AppError::UserNotFound => "USER_NOT_FOUND",
            AppError::CouponNotFound => "COUPON_NOT_FOUND",
            AppError::UserCouponNotFound => "USER_COUPON_NOT_FOUND",
            AppError::CouponNotStarted => "COUPON_NOT_STARTED",
            AppError::CouponExpired => "COUPON_EXPIRED",
            AppError::CouponAlreadyIssued => "COUPON_ALREADY_ISSUED",
            AppError::CouponSoldOut => "COUPON_SOLD_OUT",
            AppError::CouponWaveSoldOut { .. } => "COUPON_WAVE_SOLD_OUT",
            AppError::BudgetExhausted => "BUDGET_EXHAUSTED",
            AppError::CouponAlreadyUsed => "COUPON_ALREADY_USED",
            AppError::CouponNotUsed => "COUPON_NOT_USED",
            AppError::MinPurchaseNotMet => "MIN_PURCHASE_NOT_MET",
            AppError::TryAgain | AppError::Aborted => "TRY_AGAIN",
            AppError::CouponReserved => "COUPON_RESERVED",
            AppError::OrderMismatch => "ORDER_MISMATCH",
            AppError::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            AppError::CouponPaused => "COUPON_PAUSED",
            AppError::CouponArchived => "COUPON_ARCHIVED",
            AppError::CodeNotFound => "CODE_NOT_FOUND",
            AppError::CodeAlreadyRedeemed => "CODE_ALREADY_REDEEMED",
            AppError::NotEligible => "NOT_ELIGIBLE",
            AppError::TooManyAttempts { .. } => "TOO_MANY_ATTEMPTS",
            AppError::TooManySubscriptions => "TOO_MANY_SUBSCRIPTIONS",
            AppError::StackingNotAllowed { .. } => "STACKING_NOT_ALLOWED",
            AppError::InSet { error, .. } => error.code(),
            AppError::Internal(_) => "INTERNAL",
        }
    }

    /// 응답에 실린 코드에서 오류를 되찾는다 (`code`의 역). 계약의 오류 코드가 아니면(GraphQL 단계의 코드) None.
    /// 같은 코드의 변형 가운데 앞의 것(TRY_AGAIN은 `TryAgain`), 실린 값은 비어 있다.
    pub fn from_code(code: &str) -> Option<AppError> {
        use AppError::*;
        let none = String::new;
        [
            Unauthenticated,
            Forbidden,
            BadUserInput { field: none(), message: none() },
            UserNotFound,
            CouponNotFound,
            UserCouponNotFound,
            CouponNotStarted,
            CouponExpired,
            CouponAlreadyIssued,
            CouponSoldOut,
            CouponWaveSoldOut { next_release_at: chrono::DateTime::<chrono::Utc>::MIN_UTC },
            BudgetExhausted,
            CouponAlreadyUsed,
            CouponNotUsed,
            MinPurchaseNotMet,
            TryAgain,
            CouponReserved,
            OrderMismatch,
            IdempotencyKeyReused,
            CouponPaused,
            CouponArchived,
            CodeNotFound,
            CodeAlreadyRedeemed,
            NotEligible,
            TooManyAttempts { retry_after_secs: 0 },
            TooManySubscriptions,
            StackingNotAllowed { user_coupon_ids: Vec::new() },
            Internal(none()),
        ]
        .into_iter()
        .find(|e| e.code() == code)
    }

    /// 오류 → HTTP 상태의 단 하나의 표 (CONTRACT 2·5·7·8절). 같은 오류도 답이 되는 자리마다 상태가 다르다.
    /// `None`: 이 오류는 상태를 정하지 않는다 (GraphQL 응답의 상태 그대로).
    pub fn http_status(&self, at: Surface) -> Option<u16> {
        use AppError::*;
        if let InSet { error, .. } = self {
            return error.http_status(at);
        }
        Some(match (at, self) {
            // 멱등 키: 같은 키가 진행 중이면 409, 다른 요청에 쓴 키면 422 (실행 전이든 실행한 답이든).
            (Surface::KeyRefusal, TryAgain) | (Surface::KeyedAnswer, TryAgain | Aborted) => 409,
            (Surface::KeyRefusal | Surface::KeyedAnswer, IdempotencyKeyReused) => 422,
            (Surface::KeyedAnswer, _) => return None,
            // 실행 전의 키 판단: 다른 역할의 키는 새 요청의 권한 거절과 같은 모양(200, `data: null`),
            // 잘못된 키·루트 필드 여럿은 400, 키를 찾지 못함(저장소)은 503.
            (Surface::KeyRefusal, Forbidden) => 200,
            (Surface::KeyRefusal, BadUserInput { .. }) => 400,
            (Surface::KeyRefusal, _) => 503,
            // GraphQL 밖의 자원 (CSV): 익명 401, 권한 403, 없는 쿠폰 404, 보관된 쿠폰 409, 잘못된 줄 400, 데이터베이스가 바쁨 503.
            (Surface::Resource, Unauthenticated) => 401,
            (Surface::Resource, Forbidden) => 403,
            (Surface::Resource, BadUserInput { .. }) => 400,
            (Surface::Resource, CouponNotFound) => 404,
            (Surface::Resource, CouponArchived) => 409,
            (Surface::Resource, TryAgain | Aborted) => 503,
            (Surface::Resource, _) => 500,
        })
    }

    /// 입력 오류를 만드는 지름길.
    /// 묶음의 이 쿠폰이 낸 오류로 (이미 다른 쿠폰을 가리키는 오류와 재시도할 오류는 그대로).
    pub fn in_set(self, user_coupon_id: uuid::Uuid) -> Self {
        match self {
            e @ (AppError::InSet { .. } | AppError::TryAgain | AppError::Aborted | AppError::Internal(_)) => e,
            e => AppError::InSet { user_coupon_id, error: Box::new(e) },
        }
    }

    pub fn bad_input(field: &str, message: impl Into<String>) -> Self {
        AppError::BadUserInput { field: field.to_owned(), message: message.into() }
    }
}

/// 오류가 HTTP 답이 되는 자리 (`AppError::http_status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    /// 멱등 키 판단이 실행 전에 거절한 GraphQL 요청 (아무것도 실행하지 않았다).
    KeyRefusal,
    /// 멱등 키가 붙은 GraphQL 요청의 실행한 답.
    KeyedAnswer,
    /// GraphQL 밖의 HTTP 자원 (관리자 CSV 내보내기). 오류 본문은 GraphQL 오류 형식.
    Resource,
}

pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_lead_back_to_their_errors() {
        for e in
            [AppError::TryAgain, AppError::Aborted, AppError::CouponSoldOut, AppError::Internal("x".into()), AppError::bad_input("f", "m")]
        {
            assert_eq!(AppError::from_code(e.code()).map(|back| back.code()), Some(e.code()));
        }
        assert!(AppError::from_code("GRAPHQL_VALIDATION_FAILED").is_none());
        assert!(AppError::from_code("OK").is_none());
    }

    #[test]
    fn one_table_gives_the_status() {
        assert_eq!(AppError::TryAgain.http_status(Surface::KeyRefusal), Some(409));
        assert_eq!(AppError::Aborted.http_status(Surface::KeyRefusal), Some(503));
        assert_eq!(AppError::Aborted.http_status(Surface::KeyedAnswer), Some(409));
        assert_eq!(AppError::IdempotencyKeyReused.http_status(Surface::KeyedAnswer), Some(422));
        assert_eq!(AppError::Forbidden.http_status(Surface::KeyRefusal), Some(200));
        assert_eq!(AppError::Forbidden.http_status(Surface::KeyedAnswer), None);
        assert_eq!(AppError::Forbidden.http_status(Surface::Resource), Some(403));
        assert_eq!(AppError::Unauthenticated.http_status(Surface::Resource), Some(401));
        assert_eq!(AppError::CouponNotFound.http_status(Surface::Resource), Some(404));
        assert_eq!(AppError::CouponArchived.http_status(Surface::Resource), Some(409));
        assert_eq!(AppError::bad_input("line", "m").http_status(Surface::Resource), Some(400));
        assert_eq!(AppError::TryAgain.http_status(Surface::Resource), Some(503));
        assert_eq!(AppError::Internal(String::new()).http_status(Surface::Resource), Some(500));
    }
}
