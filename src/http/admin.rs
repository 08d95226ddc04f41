//! `GET /admin/coupons/{id}/codes.csv` (CONTRACT 8절): 관리자 전용 CSV, 데이터베이스에서 페이지씩 읽어 흘려보낸다.
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;

use super::reply::{MediaType, reject};
use super::state::AppState;
use crate::domain::Viewer;
use crate::error::{AppError, Surface};

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
        tracing::error!(detail = %detail, "CSV 내보내기 실패");
    }
    let status = e.http_status(Surface::Resource).and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    reject(MediaType::Json, status, e.code(), &e.to_string())
}
