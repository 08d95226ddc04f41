//! `POST /graphql`와 `GET /graphql` (CONTRACT 2절): 본문을 받고(미디어 타입, 크기, 마감), 요청을 만들고, 실행하고,
//! GraphQL 응답을 HTTP 답으로 (요청 오류는 `data` 없이). 키가 붙은 변경은 `keys`를 거친다.
use std::time::Instant;

use async_graphql::{Request, Response, ServerError};
use axum::body::{Body, Bytes};
use axum::extract::{Extension, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};

use super::keys;
use super::limits::{BODY_LIMIT, BODY_TIMEOUT};
use super::reply::{Answer, MediaType, record_operation, reject};
use super::state::AppState;
use crate::domain::Viewer;
use crate::domain::idempotency::Outcome;
use crate::error::AppError;
use crate::graphql::{self, KeyState, NotTrusted, RequestInfo};
use crate::net::ClientAddr;

/// POST의 `Content-Type`은 `application/json`(charset은 utf-8만)이어야 한다: 브라우저가 다른 사이트에서
/// 사전 요청 없이 보낼 수 있는 "단순" 요청(form, text/plain)으로는 아무것도 실행되지 않는다.
fn is_json_content(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mut parts = ct.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
        && parts.all(|p| match p.trim().split_once('=') {
            Some((k, v)) if k.trim().eq_ignore_ascii_case("charset") => v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8"),
            _ => true,
        })
}

/// 본문 읽기의 실패.
enum BodyError {
    TooLarge,
    /// 마감 안에 다 오지 않았거나 중간에 끊겼다.
    Late,
}

/// 본문 전체를 한 번의 마감 안에서 모은다. tower-http의 `RequestBodyTimeoutLayer`는 프레임마다 타이머를 다시
/// 거므로, 몇 초마다 한 바이트씩 흘리는 클라이언트가 연결을 영영 붙잡았다.
async fn read_body(body: Body) -> Result<Bytes, BodyError> {
    use http_body_util::BodyExt;
    let limited = http_body_util::Limited::new(body, BODY_LIMIT);
    match tokio::time::timeout(BODY_TIMEOUT, limited.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(BodyError::TooLarge),
        Ok(Err(_)) | Err(_) => Err(BodyError::Late),
    }
}

pub async fn graphql_post(
    State(state): State<AppState>,
    Extension(client): Extension<ClientAddr>,
    headers: HeaderMap,
    body: Body,
) -> axum::response::Response {
    let media = MediaType::negotiate(&headers);
    if !is_json_content(&headers) {
        return reject(
            media,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "Content-Type: application/json 요청만 받습니다",
        );
    }
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            let mut resp = reject(media, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", "요청 본문이 64 KiB를 넘습니다");
            // 읽지 않은 나머지 본문 때문에 연결을 다시 쓸 수 없다.
            resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            return resp;
        }
        Err(BodyError::Late) => {
            // 본문이 제때 오지 않았거나 끊겼다: 이 연결은 닫는다.
            let mut resp = reject(media, StatusCode::REQUEST_TIMEOUT, "BAD_REQUEST", "요청 본문을 제때 받지 못했습니다");
            resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            return resp;
        }
    };
    // 배열은 배치다 (빈 배열도): serde는 `[]`를 모든 필드가 기본값인 요청 하나로도 읽어 버린다.
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return reject(media, StatusCode::BAD_REQUEST, "BAD_REQUEST", "배치 요청은 지원하지 않습니다");
    }
    let Ok(wire) = serde_json::from_slice::<WireRequest>(&body) else {
        return reject(media, StatusCode::BAD_REQUEST, "BAD_REQUEST", "요청 본문이 올바른 JSON GraphQL 요청이 아닙니다");
    };
    let (mut request, document_id) = wire.into_request();
    // 파싱은 한 번: 캐시(또는 신뢰 목록)에서 꺼내거나 파싱한 문서를 요청에 넣어 두고, 키 판단과 실행이 그것을 쓴다.
    let is_mutation = match state.documents().prepare(&mut request, document_id.as_deref()) {
        Ok(m) => m,
        Err(NotTrusted) => return not_trusted(media),
    };
    let viewer = state.viewer(&headers);
    let keyed = match keys::keyed(&headers, viewer.as_ref().ok().and_then(Option::as_ref), &mut request) {
        Ok(k) => k,
        Err(e) => return keys::refused(media, &e).into_response(),
    };
    // 조회는 요청 안에서 바로 실행한다: 끊긴 클라이언트의 조회는 바꾸는 것이 없어 떨어진 작업이 필요 없다.
    if is_mutation == Some(false) && keyed.is_none() {
        return execute(&state, viewer, client, media, request, RequestInfo::post(), None).await.into_response();
    }
    // 실행은 요청과 떨어진 작업으로: 클라이언트가 끊어도 변경은 끝까지 가고 그 답이 보관된다. 종료는 이 작업들을 기다린다.
    // 키 조회도 이 작업 안에서 한다: 작업을 띄우기 전에 기다리면(첫 await) 그사이 연결이 끊길 때 hyper가 핸들러를
    // 거기서 버려 변경이 실행되지 않는다. (EOF만으로 버리지 않게 하는 것은 server.rs의 half_close.)
    // 떨어진 작업도 이 요청의 추적 스팬 안에서 (꺼져 있으면 그대로).
    let task = state.tasks().spawn(crate::telemetry::in_current({
        let state = state.clone();
        async move {
            let key_state = match &keyed {
                None => None,
                Some(k) => match keys::admit(state.keys(), k, media).await {
                    Ok(key_state) => Some(key_state),
                    Err(answer) => return answer,
                },
            };
            let replay = matches!(key_state, Some(KeyState::Replay(_)));
            let mut answer = execute(&state, viewer, client, media, request, RequestInfo::post(), key_state).await;
            if let Some(k) = &keyed {
                keys::settle(state.keys(), k, replay, &mut answer).await;
            }
            answer
        }
    }));
    match task.await {
        Ok(answer) => answer.into_response(),
        Err(_) => reject(media, StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "일시적인 오류가 발생했습니다"),
    }
}

/// GET: `?query=`(또는 persisted query의 해시)가 있으면 조회만 실행하고(mutation은 405), 없으면 GraphiQL.
pub async fn graphql_get(
    State(state): State<AppState>,
    Extension(client): Extension<ClientAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> axum::response::Response {
    let query = query.unwrap_or_default();
    if query.is_empty() {
        return super::graphiql::index();
    }
    let media = MediaType::negotiate(&headers);
    let Some((mut request, document_id)) = get_request(&query) else {
        return reject(media, StatusCode::BAD_REQUEST, "BAD_REQUEST", "쿼리 문자열이 올바른 GraphQL 요청이 아닙니다");
    };
    if state.documents().prepare(&mut request, document_id.as_deref()).is_err() {
        return not_trusted(media);
    }
    let viewer = state.viewer(&headers);
    execute(&state, viewer, client, media, request, RequestInfo::get(), None).await.into_response()
}

/// POST 본문: async-graphql의 `Request`에 신뢰 문서의 `documentId`를 더한 것 (`Request`는 모르는 필드를 버린다).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireRequest {
    #[serde(default)]
    query: String,
    #[serde(default)]
    operation_name: Option<String>,
    #[serde(default)]
    variables: async_graphql::Variables,
    #[serde(default)]
    extensions: async_graphql::Extensions,
    #[serde(default)]
    document_id: Option<String>,
}

impl WireRequest {
    fn into_request(self) -> (Request, Option<String>) {
        let mut request = Request::new(self.query).variables(self.variables);
        request.operation_name = self.operation_name;
        request.extensions = self.extensions;
        (request, self.document_id)
    }
}

/// 신뢰 목록 밖의 요청: 실행 전의 요청 오류 (graphql-response+json이면 400).
fn not_trusted(media: MediaType) -> axum::response::Response {
    let status = if media == MediaType::GraphqlResponse { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let mut resp = reject(media, status, NotTrusted::CODE, NotTrusted::MESSAGE);
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    resp
}

/// GET의 쿼리 문자열을 요청과 `documentId`로 (GraphQL over HTTP의 매개변수 이름: `operationName`).
/// async-graphql의 `parse_query_string`은 `operation_name`을 찾아서, 명세대로 보낸 `operationName`을 버렸다.
fn get_request(raw: &str) -> Option<(Request, Option<String>)> {
    #[derive(serde::Deserialize)]
    struct Params {
        #[serde(default)]
        query: String,
        #[serde(rename = "operationName")]
        operation_name: Option<String>,
        variables: Option<String>,
        extensions: Option<String>,
        #[serde(rename = "documentId")]
        document_id: Option<String>,
    }
    let params: Params = serde_urlencoded::from_str(raw).ok()?;
    let mut request = Request::new(params.query);
    request.operation_name = params.operation_name.filter(|n| !n.is_empty());
    if let Some(v) = params.variables.filter(|v| !v.is_empty()) {
        request.variables = serde_json::from_str(&v).ok()?;
    }
    if let Some(e) = params.extensions.filter(|e| !e.is_empty()) {
        request.extensions = serde_json::from_str(&e).ok()?;
    }
    Some((request, params.document_id.filter(|d| !d.is_empty())))
}

/// 실행하고, 지표와 한 줄 로그를 남기고, 미디어 타입에 맞춘 답을 만든다.
async fn execute(
    state: &AppState,
    viewer: Result<Option<Viewer>, AppError>,
    client: ClientAddr,
    media: MediaType,
    request: Request,
    info: RequestInfo,
    key: Option<KeyState>,
) -> Answer {
    let started = Instant::now();
    let operation = request.operation_name.clone();
    let anonymous = matches!(viewer, Ok(None));
    let response = match viewer {
        Ok(viewer) => match state.gate().acquire().await {
            Ok(_permit) => {
                let mut request = graphql::prepare_request(request, state.db(), viewer).data(info.clone()).data(client);
                if let Some(k) = key {
                    request = request.data(k);
                }
                state.schema().execute(request).await
            }
            // 세마포어는 닫지 않으므로 여기 오지 않는다.
            Err(_) => Response::from_errors(vec![server_error(&AppError::TryAgain)]),
        },
        Err(e) => Response::from_errors(vec![server_error(&e)]),
    };
    let code = response
        .errors
        .first()
        .and_then(|e| e.extensions.as_ref())
        .and_then(|x| x.get("code"))
        .and_then(|c| match c {
            async_graphql::Value::String(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_else(|| if response.errors.is_empty() { "OK".into() } else { "INTERNAL".into() });
    record_operation(state.metrics(), operation.as_deref(), info.operation_type(), &code, started.elapsed());
    crate::telemetry::name_operation(info.operation_type(), info.operation_name());
    respond(media, response, &info, &code, anonymous)
}

/// GraphQL 응답을 HTTP로. 실행 전에 끝난 요청(요청 오류)은 `data` 없이, graphql-response+json이면 400.
/// GET으로 온 mutation은 405와 `Allow: POST`.
fn respond(media: MediaType, response: Response, info: &RequestInfo, code: &str, anonymous: bool) -> Answer {
    let executed = info.executed();
    let mut headers = response.http_headers.clone();
    // 익명의 GET 조회만 공개 캐시에 (가장 작은 필드 힌트만큼). 오류가 있거나, 토큰이 있거나, POST면 저장하지 않는다.
    let cache = match info.cache_max_age() {
        Some(age) if anonymous && info.via_get() && executed && response.errors.is_empty() => format!("public, max-age={age}"),
        _ => "private, no-store".to_owned(),
    };
    if let Ok(v) = HeaderValue::from_str(&cache) {
        headers.insert(header::CACHE_CONTROL, v);
    }
    // TOO_MANY_ATTEMPTS의 대기 시간을 HTTP의 Retry-After로도 (브라우저 앱이 CORS로 읽는다).
    let retry_after =
        response.errors.first().and_then(|e| e.extensions.as_ref()).and_then(|x| x.get("retryAfterSeconds")).and_then(|v| match v {
            async_graphql::Value::Number(n) => n.as_u64(),
            _ => None,
        });
    if let Some(secs) = retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    // 키에 보관할지 가릴 결과: 계약의 오류면 그 오류로 (응답에는 코드만 실려 온다).
    let outcome =
        if response.errors.is_empty() { Outcome::Success } else { AppError::from_code(code).map_or(Outcome::Rejected, Outcome::Failed) };
    let mut body = match serde_json::to_value(&response) {
        Ok(v) => v,
        Err(_) => serde_json::json!({ "errors": [{ "message": "일시적인 오류가 발생했습니다", "extensions": { "code": "INTERNAL" } }] }),
    };
    if !executed && let Some(obj) = body.as_object_mut() {
        obj.remove("data");
    }
    let status = if code == graphql::METHOD_NOT_ALLOWED {
        headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
        StatusCode::METHOD_NOT_ALLOWED
    } else if !executed && code == "BAD_REQUEST" {
        // HTTP로 온 구독: 미디어 타입과 상관없이 400.
        StatusCode::BAD_REQUEST
    } else if !executed && media == MediaType::GraphqlResponse {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Answer { media, status, headers, body: serde_json::to_vec(&body).unwrap_or_default(), outcome }
}

fn server_error(e: &AppError) -> ServerError {
    let mut err = ServerError::new(e.to_string(), None);
    err.extensions.get_or_insert_with(Default::default).set("code", e.code());
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_json_bodies_are_accepted() {
        let ct = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(v).expect("header"));
            is_json_content(&h)
        };
        assert!(ct("application/json"));
        assert!(ct("Application/JSON; charset=UTF-8"));
        assert!(!ct("application/json; charset=latin1"));
        assert!(!ct("text/plain"));
        assert!(!ct("application/x-www-form-urlencoded"));
        assert!(!is_json_content(&HeaderMap::new()));
    }
}
