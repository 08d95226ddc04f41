//! 답의 모양: 응답 미디어 타입 협상(GraphQL over HTTP), GraphQL 형식의 JSON 답, 연산 하나의 기록(지표와 로그).
//! 오류가 고르는 HTTP 상태는 여기가 아니라 `AppError::http_status`의 표 하나에 있다.
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;

use crate::domain::idempotency::Outcome;
use crate::metrics::Metrics;

/// 응답 미디어 타입 (GraphQL over HTTP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaType {
    Json,
    GraphqlResponse,
}

impl MediaType {
    /// `Accept`에서 고른다: q 값이 가장 큰 것, 같으면 먼저 나온 것. `*/*`, `application/*`, 없음, 모르는 것뿐이면 JSON.
    pub fn negotiate(headers: &HeaderMap) -> Self {
        let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
            return MediaType::Json;
        };
        let mut best: Option<(f32, MediaType)> = None;
        for part in accept.split(',') {
            let mut params = part.split(';');
            let ty = params.next().unwrap_or_default().trim().to_ascii_lowercase();
            let q = params.filter_map(|p| p.trim().strip_prefix("q=")).find_map(|q| q.trim().parse::<f32>().ok()).unwrap_or(1.0);
            let media = match ty.as_str() {
                "application/graphql-response+json" => MediaType::GraphqlResponse,
                "application/json" | "application/*" | "*/*" => MediaType::Json,
                _ => continue,
            };
            if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, media));
            }
        }
        best.map(|(_, m)| m).unwrap_or(MediaType::Json)
    }

    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            MediaType::Json => "application/json; charset=utf-8",
            MediaType::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
        })
    }
}

/// GraphQL 실행 전의 거절: 상태 코드와 GraphQL 형식의 오류 하나 (`data` 없음).
pub fn reject(media: MediaType, status: StatusCode, code: &str, message: &str) -> axum::response::Response {
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    json_response(media, status, &body)
}

/// 없는 경로의 답 (라우터의 fallback, 없는 GraphiQL 파일).
pub fn not_found() -> axum::response::Response {
    reject(MediaType::Json, StatusCode::NOT_FOUND, "NOT_FOUND", "없는 경로입니다")
}

pub fn json_response(media: MediaType, status: StatusCode, body: &serde_json::Value) -> axum::response::Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = (status, Body::from(bytes)).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, media.content_type());
    resp
}

/// HTTP로 나갈 GraphQL 답 하나 (멱등 키에 보관할 수 있게 본문을 바이트로 든다).
pub struct Answer {
    pub media: MediaType,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// 어떻게 끝났는지: 키가 붙은 요청이면 보관할지와 상태를 가린다 (`keys::settle`).
    pub outcome: Outcome,
}

impl Answer {
    pub fn into_response(self) -> axum::response::Response {
        let mut resp = (self.status, Body::from(self.body)).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, self.media.content_type());
        for (name, value) in self.headers.iter() {
            resp.headers_mut().append(name, value.clone());
        }
        resp
    }
}

/// 연산 하나의 지표와 한 줄 로그 (HTTP와 웹소켓의 구독이 같이 쓴다). 연산 이름은 클라이언트가 고른 글이라 이스케이프한다.
pub fn record_operation(metrics: &Metrics, operation: Option<&str>, operation_type: &'static str, code: &str, elapsed: Duration) {
    metrics.graphql_request(operation_type, code, elapsed);
    let operation = operation.map(escaped).unwrap_or_else(|| "-".to_owned());
    tracing::info!(operation = %operation, operation_type, duration_ms = elapsed.as_secs_f64() * 1000.0, outcome = %code, "graphql");
}

/// 클라이언트가 고른 글자를 로그에 쓸 수 있게: 제어 문자(탭 말고 C0, DEL, C1)는 `\u{..}`로.
/// 줄바꿈이나 터미널 이스케이프가 가짜 로그 줄을 만들거나 터미널에 그대로 닿지 않는다.
pub fn escaped(text: &str) -> String {
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return text.to_owned();
    }
    text.chars().map(|c| if c.is_control() && c != '\t' { c.escape_unicode().to_string() } else { c.to_string() }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> MediaType {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).expect("header"));
        MediaType::negotiate(&h)
    }

    #[test]
    fn the_response_type_follows_accept() {
        assert_eq!(MediaType::negotiate(&HeaderMap::new()), MediaType::Json);
        assert_eq!(accept("*/*"), MediaType::Json);
        assert_eq!(accept("application/json"), MediaType::Json);
        assert_eq!(accept("application/graphql-response+json"), MediaType::GraphqlResponse);
        assert_eq!(accept("application/graphql-response+json, application/json;q=0.9"), MediaType::GraphqlResponse);
        assert_eq!(accept("application/json, application/graphql-response+json"), MediaType::Json);
        assert_eq!(accept("application/graphql-response+json;q=0.5, */*"), MediaType::Json);
        assert_eq!(accept("text/html"), MediaType::Json);
    }
}
