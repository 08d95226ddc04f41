//! 관리자 전용 CSV. `GET /admin/coupons/{id}/codes.csv` (CONTRACT 8절): 데이터베이스에서 페이지씩 읽어 흘려보낸다.
//! `POST /admin/coupons/{id}/audience.csv` (11절): 본문을 흘려 받으며 대상 고객으로 가져온다.
use std::time::Duration;

use axum::RequestExt;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use futures_util::{Stream, StreamExt};

use super::limits::{BODY_TIMEOUT, IMPORT_BODY_LIMIT, IMPORT_MIN_BYTES_PER_SEC};
use super::reply::{MediaType, json_response, reject};
use super::state::AppState;
use crate::domain::Viewer;
use crate::error::{AppError, Surface};
use crate::service::audiences::ImportError;

/// 익명 401, 관리자가 아니면 403, 없는 쿠폰(또는 UUID가 아닌 id) 404 (상태는 `AppError::http_status`의 표).
/// 오류 본문은 GraphQL 오류 형식의 JSON.
pub async fn codes_csv(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> axum::response::Response {
    let viewer = match state.viewer(&headers) {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    // 권한이 먼저: 잘못된 id도 권한 없는 호출에는 401/403이다.
    if let Err(e) = Viewer::require_admin(viewer.as_ref()) {
        return fail(e);
    }
    let Ok(coupon_id) = uuid::Uuid::parse_str(&id) else { return fail(AppError::CouponNotFound) };
    match crate::service::codes::export(state.db().clone(), viewer.as_ref(), coupon_id).await {
        Ok(rows) => {
            let body = Body::from_stream(futures_util::StreamExt::map(rows, |chunk| {
                chunk.map(Bytes::from).map_err(|e| {
                    tracing::error!(error = ?e, "CSV 내보내기가 도중에 끊김");
                    std::io::Error::other(e.code())
                })
            }));
            let mut resp = (StatusCode::OK, body).into_response();
            resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
            let disposition = format!("attachment; filename=\"coupon-{coupon_id}-codes.csv\"");
            if let Ok(v) = HeaderValue::from_str(&disposition) {
                resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            resp
        }
        Err(e) => fail(e),
    }
}

fn fail(e: AppError) -> axum::response::Response {
    if let AppError::Internal(detail) = &e {
        tracing::error!(detail = %detail, "관리자 CSV 실패");
    }
    let status = e.http_status(Surface::Resource).and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    reject(MediaType::Json, status, e.code(), &e.to_string())
}

/// 가져오기 본문을 읽다 생긴 일.
#[derive(Debug)]
pub enum BodyFault {
    /// 64 MiB를 넘었다.
    TooLarge,
    /// 빠르기 하한(`IMPORT_MIN_BYTES_PER_SEC`)에 못 미쳤다.
    TooSlow,
    /// 중간에 끊겼다.
    Broken,
}

/// 익명 401, 관리자가 아니면 403, `text/csv`가 아니면 415, 없는 쿠폰 404, 보관된 쿠폰 409, UUID가 아닌 줄 400(`line`),
/// 64 MiB 초과 413, 너무 느리면 408. 성공하면 `AudienceChange`를 JSON으로.
pub async fn audience_csv(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> axum::response::Response {
    let viewer = match state.viewer(req.headers()) {
        Ok(v) => v,
        Err(e) => return closing(fail(e)),
    };
    // 권한이 먼저: 미디어 타입이나 id가 잘못돼도 권한 없는 호출에는 401/403이다.
    if let Err(e) = Viewer::require_admin(viewer.as_ref()) {
        return closing(fail(e));
    }
    if !is_csv(req.headers()) {
        return closing(reject(
            MediaType::Json,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "Content-Type: text/csv 요청만 받습니다",
        ));
    }
    // 길이를 밝힌 본문은 읽기 전에 거절한다 (밝히지 않은 본문은 읽으면서 `DefaultBodyLimit`이 자른다).
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > IMPORT_BODY_LIMIT as u64) {
        return body_fault(BodyFault::TooLarge);
    }
    let Ok(coupon_id) = uuid::Uuid::parse_str(&id) else { return closing(fail(AppError::CouponNotFound)) };
    let body = paced(req.into_limited_body());
    let import = crate::service::audiences::import(state.db(), viewer.as_ref(), coupon_id, body, state.stopping());
    match crate::telemetry::transaction("importAudience", import).await {
        Ok(c) => {
            let json = serde_json::json!({
                "couponId": c.coupon_id.to_string(),
                "added": c.added,
                "removed": c.removed,
                "unknownUserIds": c.unknown_user_ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "unknownCount": c.unknown_count,
                "audienceSize": c.audience_size,
            });
            json_response(MediaType::Json, StatusCode::OK, &json)
        }
        Err(ImportError::App(e)) => closing(fail(e)),
        Err(ImportError::BadLine(bad)) => {
            let json = serde_json::json!({ "errors": [{ "message": bad.message(), "extensions": { "code": "BAD_USER_INPUT", "line": bad.line } }] });
            closing(json_response(MediaType::Json, StatusCode::BAD_REQUEST, &json))
        }
        Err(ImportError::Body(fault)) => body_fault(fault),
        Err(ImportError::Stopped) => closing(reject(
            MediaType::Json,
            StatusCode::SERVICE_UNAVAILABLE,
            "TRY_AGAIN",
            "서버가 멈추는 중입니다. 잠시 후 다시 시도해 주세요",
        )),
    }
}

/// `text/csv` (charset 등의 매개변수는 무엇이든).
fn is_csv(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/csv"))
}

/// 본문을 조각씩 넘기며 빠르기를 잰다. 10초 마감 하나 대신: 기다려도 되는 시간 = 유예 10초 + 받은 바이트 / 1 MB/s.
/// 서버가 데이터베이스 일을 하느라 읽지 않은 시간은 세지 않는다 (클라이언트 탓이 아니다). 크기 초과는 axum의
/// `DefaultBodyLimit`(라우터가 이 경로에 64 MiB로 건다)이 알린다.
fn paced(body: Body) -> impl Stream<Item = Result<Bytes, BodyFault>> {
    futures_util::stream::unfold(Some((body.into_data_stream(), 0u64, Duration::ZERO)), |state| async move {
        let (mut data, received, waited) = state?;
        let allowed = (BODY_TIMEOUT + Duration::from_secs_f64(received as f64 / IMPORT_MIN_BYTES_PER_SEC)).saturating_sub(waited);
        let started = tokio::time::Instant::now();
        match tokio::time::timeout(allowed, data.next()).await {
            Ok(None) => None,
            Ok(Some(Ok(bytes))) => {
                let received = received + bytes.len() as u64;
                Some((Ok(bytes), Some((data, received, waited + started.elapsed()))))
            }
            Ok(Some(Err(e))) => {
                let fault = if e.into_inner().downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                    BodyFault::TooLarge
                } else {
                    BodyFault::Broken
                };
                Some((Err(fault), None))
            }
            Err(_) => Some((Err(BodyFault::TooSlow), None)),
        }
    })
}

/// 본문을 다 받지 못한 답: 읽지 않은 나머지 때문에 연결을 다시 쓸 수 없다.
fn body_fault(fault: BodyFault) -> axum::response::Response {
    closing(match fault {
        BodyFault::TooLarge => reject(MediaType::Json, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", "요청 본문이 64 MiB를 넘습니다"),
        BodyFault::TooSlow => reject(MediaType::Json, StatusCode::REQUEST_TIMEOUT, "BAD_REQUEST", "요청 본문을 제때 받지 못했습니다"),
        BodyFault::Broken => reject(MediaType::Json, StatusCode::BAD_REQUEST, "BAD_REQUEST", "요청 본문을 끝까지 받지 못했습니다"),
    })
}

/// 본문을 다 읽지 않고 답할 수 있으므로 연결을 닫는다.
fn closing(mut resp: axum::response::Response) -> axum::response::Response {
    resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}
