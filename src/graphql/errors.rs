//! 에러의 모양: AppError의 `extensions.code`, 리졸버의 `.gql()`, 코드 없는 에러에 붙일 코드, 요청 오류의 크기 한도.
use async_graphql::{ErrorExtensions, ServerError};

use crate::error::AppError;

impl ErrorExtensions for AppError {
    /// 코드는 `extensions.code`로, 입력 오류는 `extensions.field`까지. INTERNAL의 상세는 로그에만.
    fn extend(&self) -> async_graphql::Error {
        if let AppError::Internal(detail) = self {
            tracing::error!(detail = %detail, "내부 오류");
        }
        async_graphql::Error::new(self.to_string()).extend_with(|_, e| {
            e.set("code", self.code());
            set_details(self, e);
        })
    }
}

/// 코드 말고 오류마다 더 알려 주는 것. 묶음의 한 쿠폰이 낸 오류는 그 오류의 것에 더해 그 쿠폰을.
fn set_details(err: &AppError, e: &mut async_graphql::ErrorExtensionValues) {
    match err {
        AppError::BadUserInput { field, .. } => e.set("field", field.as_str()),
        AppError::TooManyAttempts { retry_after_secs } => e.set("retryAfterSeconds", *retry_after_secs),
        AppError::CouponWaveSoldOut { next_release_at } => {
            e.set("nextReleaseAt", next_release_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        }
        AppError::StackingNotAllowed { user_coupon_ids } => {
            e.set("userCouponIds", user_coupon_ids.iter().map(|id| async_graphql::Value::String(id.to_string())).collect::<Vec<_>>())
        }
        AppError::InSet { user_coupon_id, error } => {
            set_details(error, e);
            e.set("userCouponId", user_coupon_id.to_string());
        }
        _ => {}
    }
}

/// 리졸버에서 `?` 대신 쓰는 변환: 코드를 잃지 않는다.
pub(crate) trait GqlResultExt<T> {
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T> GqlResultExt<T> for Result<T, AppError> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(|e| e.extend())
    }
}

/// 요청 오류 응답의 크기 한도 (계약: 8 KiB): 오류는 이만큼만, 메시지는 이 길이까지.
const MAX_ERRORS: usize = 10;
const MAX_MESSAGE_CHARS: usize = 300;

/// 오류 목록을 짧게: 앞의 몇 개만, 긴 메시지는 잘라서 (사용하지 않은 변수 3,000개가 436 KB 응답을 만들었다).
pub(super) fn brief(mut errors: Vec<ServerError>) -> Vec<ServerError> {
    let more = errors.len().saturating_sub(MAX_ERRORS);
    errors.truncate(MAX_ERRORS);
    for e in &mut errors {
        if e.message.chars().count() > MAX_MESSAGE_CHARS {
            e.message = e.message.chars().take(MAX_MESSAGE_CHARS).chain("…".chars()).collect();
        }
        e.locations.truncate(3);
    }
    if more > 0
        && let Some(last) = errors.last_mut()
    {
        last.message.push_str(&format!(" (그 밖에 오류 {more}개)"));
    }
    errors
}

/// 파싱 오류를 짧게: pest의 메시지는 문서의 줄을 통째로 인용하므로, 위치와 기대한 것만 남긴다.
pub(super) fn brief_parse_error(mut err: ServerError) -> ServerError {
    let expected = err.message.lines().find_map(|l| l.trim().strip_prefix("= ")).map(|l| l.chars().take(120).collect::<String>());
    let at = err.locations.first().map(|p| format!(" ({}행 {}열)", p.line, p.column)).unwrap_or_default();
    err.message = match expected {
        Some(why) => format!("문서를 파싱할 수 없습니다{at}: {why}"),
        None => format!("문서를 파싱할 수 없습니다{at}"),
    };
    with_code(err, "GRAPHQL_PARSE_FAILED")
}

pub(super) fn refused(message: String) -> ServerError {
    with_code(ServerError::new(message, None), "GRAPHQL_VALIDATION_FAILED")
}

pub(super) fn with_code(mut err: ServerError, code: &str) -> ServerError {
    let has_code = err.extensions.as_ref().is_some_and(|e| e.get("code").is_some());
    if !has_code {
        err.extensions.get_or_insert_with(Default::default).set("code", code);
    }
    err
}

/// 실행 전 단계의 코드 없는 에러: APQ의 두 에러는 계약서의 코드로, 나머지는 검증 실패.
pub(super) fn request_error_code(mut err: ServerError) -> ServerError {
    let code = match err.message.as_str() {
        "PersistedQueryNotFound" => "PERSISTED_QUERY_NOT_FOUND",
        "provided sha does not match query" => {
            err.message = "persisted query의 sha256Hash가 질의와 맞지 않습니다".into();
            err.extensions.get_or_insert_with(Default::default).set("field", "extensions.persistedQuery.sha256Hash");
            "BAD_USER_INPUT"
        }
        _ => "GRAPHQL_VALIDATION_FAILED",
    };
    with_code(err, code)
}

/// 실행 중의 코드 없는 에러: 입력 값 변환 실패는 BAD_USER_INPUT, 그 밖의 것은 우리 버그이므로 INTERNAL(상세는 로그).
pub(super) fn execution_error_code(err: ServerError) -> ServerError {
    if err.extensions.as_ref().is_some_and(|e| e.get("code").is_some()) {
        return err;
    }
    let m = err.message.as_str();
    if m.starts_with("Failed to parse") || m.starts_with("Expected input type") || m.starts_with("Invalid value") {
        return with_code(err, "BAD_USER_INPUT");
    }
    tracing::error!(detail = %err.message, "코드 없는 실행 에러");
    let mut internal = ServerError::new(AppError::Internal(String::new()).to_string(), err.locations.first().copied());
    internal.path = err.path;
    with_code(internal, "INTERNAL")
}
