//! HTTP 표면(CONTRACT 2절): GraphQL over HTTP(미디어 타입 협상, 요청 오류는 `data` 없이), 오프라인 GraphiQL,
//! CORS, /health, /ready, /metrics. 잘못된 요청은 모두 계약서의 코드로 답하고 아무것도 실행하지 않는다.
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::{BatchRequest, Request, Response, ServerError};
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Router, middleware};
use sea_orm::DatabaseConnection;
use tokio_util::task::TaskTracker;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::JwtKeys;
use crate::domain::Viewer;
use crate::error::AppError;
use crate::graphql::{self, AppSchema, KeyState, RequestInfo};
use crate::metrics::Metrics;
use crate::net::{ClientAddr, TrustedProxies};
use crate::service::idempotency::{self, IdemKey, KeyBook, Lookup};
use crate::service::issuance::IssueMode;

/// 요청 본문 한도 (계약: 64 KiB, 넘으면 413).
pub const BODY_LIMIT: usize = 64 * 1024;
/// 동시에 실행하는 GraphQL 연산 수. 실행 중인 연산은 큰 퓨처와 버퍼를 쥐므로, 수천 명이 한꺼번에 와도
/// 나머지는 요청 본문만 든 채 줄을 서게 해서 메모리를 묶어 둔다 (풀 크기보다 훨씬 커서 처리량은 그대로).
pub const MAX_IN_FLIGHT: usize = 256;
/// 헤더 다음 본문 전체를 받는 한도 (계약: 10초, 한 번의 마감). 넘으면 408로 답하고 연결을 닫는다.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    schema: AppSchema,
    db: DatabaseConnection,
    jwt: JwtKeys,
    gate: tokio::sync::Semaphore,
    metrics: Metrics,
    /// 요청과 떨어져 도는 실행들: 종료가 기다린다.
    tasks: TaskTracker,
    /// 멱등 키 조회·보관을 모아서 하는 일꾼.
    keys: KeyBook,
    /// 파싱한 질의 문서 (같은 질의의 파싱을 건너뛴다).
    documents: graphql::DocumentCache,
    /// `X-Forwarded-For`를 믿는 프록시들 (클라이언트 주소).
    trusted: TrustedProxies,
    /// 웹소켓 수와 시간 한도.
    ws: crate::ws::WsHub,
}

impl AppState {
    pub fn new(db: DatabaseConnection, jwt: JwtKeys, mode: IssueMode, metrics: Metrics, trusted: TrustedProxies, max_cost: u64) -> Self {
        let schema = graphql::build_schema_with(Some(db.clone()), mode, max_cost);
        let gate = tokio::sync::Semaphore::new(MAX_IN_FLIGHT);
        let keys = KeyBook::start(db.clone());
        let documents = Default::default();
        let ws = Default::default();
        Self { inner: Arc::new(Inner { schema, db, jwt, gate, metrics, tasks: TaskTracker::new(), keys, documents, trusted, ws }) }
    }

    /// 웹소켓(`crate::ws`)이 쓰는 것들.
    pub(crate) fn schema(&self) -> &AppSchema {
        &self.inner.schema
    }

    pub(crate) fn jwt(&self) -> &JwtKeys {
        &self.inner.jwt
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn ws(&self) -> &crate::ws::WsHub {
        &self.inner.ws
    }

    /// 진행 중인 실행이 모두 끝나기를 기다린다 (종료 때).
    pub async fn wait_for_tasks(&self) {
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }
}

/// 라우터. `cors`: 허용 출처(없으면 CORS 헤더를 전혀 붙이지 않는다). `metrics_here`: /metrics를 이 라우터에 둘지.
pub fn router(state: AppState, cors: Option<&[String]>, metrics_here: bool) -> Router {
    let mut app = Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/graphql/ws", get(crate::ws::graphql_ws))
        .route("/graphiql/{file}", get(graphiql_asset))
        .route("/admin/coupons/{id}/codes.csv", get(codes_csv))
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(ready));
    if metrics_here {
        app = app.route("/metrics", get(metrics));
    }
    let mut app = app
        .fallback(|| async { reject(MediaType::Json, StatusCode::NOT_FOUND, "NOT_FOUND", "없는 경로입니다") })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.inner.trusted.clone(), crate::net::attach_client_addr))
        .with_state(state);
    if let Some(origins) = cors {
        app = app.layer(cors_layer(origins)).layer(middleware::map_response(preflight_no_content));
    }
    app
}

/// /metrics만 따로 (METRICS_BIND_ADDR).
pub fn metrics_router(state: AppState) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(state)
}

/// 허용 출처의 브라우저 요청: GET·POST, 인증·본문·멱등 키 헤더. 허용되지 않은 출처는 ACAO를 받지 못한다.
fn cors_layer(origins: &[String]) -> CorsLayer {
    let allow = if origins.iter().any(|o| o == "*") {
        // "*"도 그 출처를 그대로 돌려준다 (계약: 허용된 출처에는 그 출처).
        AllowOrigin::mirror_request()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, HeaderName::from_static("idempotency-key")])
        // 브라우저 앱이 읽는 응답 헤더: 재생 여부, CSV 파일 이름, 재시도 시각, 추적 문맥.
        .expose_headers([IDEMPOTENT_REPLAYED, header::CONTENT_DISPOSITION, header::RETRY_AFTER, HeaderName::from_static("traceparent")])
        .max_age(Duration::from_secs(600))
}

/// tower-http는 사전 요청(OPTIONS)에 200으로 답한다. 계약은 본문 없는 204.
async fn preflight_no_content(method: Method, mut resp: axum::response::Response) -> axum::response::Response {
    if method == Method::OPTIONS && resp.status() == StatusCode::OK {
        *resp.status_mut() = StatusCode::NO_CONTENT;
    }
    resp
}

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
pub(crate) fn reject(media: MediaType, status: StatusCode, code: &str, message: &str) -> axum::response::Response {
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    json_response(media, status, &body)
}

fn json_response(media: MediaType, status: StatusCode, body: &serde_json::Value) -> axum::response::Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = (status, Body::from(bytes)).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, media.content_type());
    resp
}

/// `Authorization: Bearer …`. 헤더가 없으면 익명, 있는데 유효하지 않으면 UNAUTHENTICATED.
fn viewer_from(headers: &HeaderMap, jwt: &JwtKeys) -> Result<Option<Viewer>, AppError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    bearer(value.to_str().ok(), jwt).map(Some)
}

/// `Bearer <JWT>` 값 하나를 검증한다.
fn bearer(value: Option<&str>, jwt: &JwtKeys) -> Result<Viewer, AppError> {
    let token = value.and_then(crate::auth::bearer_token).ok_or(AppError::Unauthenticated)?;
    jwt.verify(token)
}

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

async fn graphql_post(
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
    let mut request = match serde_json::from_slice::<BatchRequest>(&body) {
        Ok(BatchRequest::Single(r)) => r,
        // 배치는 꺼 두었다: 요청 하나에 연산 하나.
        Ok(BatchRequest::Batch(_)) => return reject(media, StatusCode::BAD_REQUEST, "BAD_REQUEST", "배치 요청은 지원하지 않습니다"),
        Err(_) => return reject(media, StatusCode::BAD_REQUEST, "BAD_REQUEST", "요청 본문이 올바른 JSON GraphQL 요청이 아닙니다"),
    };
    // 파싱은 한 번: 캐시에서 꺼내거나 파싱한 문서를 요청에 넣어 두고, 키 판단과 실행이 그것을 쓴다.
    let is_mutation = state.inner.documents.prepare(&mut request);
    let viewer = viewer_from(&headers, &state.inner.jwt);
    let raw_key = headers.get("idempotency-key").map(HeaderValue::as_bytes);
    let mutation = match raw_key {
        Some(_) => {
            let operation_name = request.operation_name.clone();
            request.parsed_query().ok().and_then(|doc| graphql::single_mutation(doc, operation_name.as_deref()))
        }
        None => None,
    };
    let keyed = match idempotency::key_for(raw_key, viewer.as_ref().ok().and_then(Option::as_ref), mutation, &request) {
        Ok(k) => k,
        Err(e) => return reject(media, StatusCode::BAD_REQUEST, e.code(), &e.to_string()),
    };
    // 조회는 요청 안에서 바로 실행한다: 끊긴 클라이언트의 조회는 바꾸는 것이 없어 떨어진 작업이 필요 없다.
    if is_mutation == Some(false) && keyed.is_none() {
        return execute(&state, viewer, client, media, request, RequestInfo::post(), None).await.into_response();
    }
    // 실행은 요청과 떨어진 작업으로: 클라이언트가 끊어도 변경은 끝까지 가고 그 답이 보관된다. 종료는 이 작업들을 기다린다.
    // 키 조회도 이 작업 안에서 한다: 작업을 띄우기 전에 기다리면(첫 await) 그사이 연결이 끊길 때 hyper가 핸들러를
    // 거기서 버려 변경이 실행되지 않는다. (EOF만으로 버리지 않게 하는 것은 server.rs의 half_close.)
    let task = state.inner.tasks.spawn({
        let state = state.clone();
        async move {
            let key_state = match &keyed {
                None => None,
                Some(k) => match state.inner.keys.open(&state.inner.db, k).await {
                    Ok(Lookup::Fresh) => Some(KeyState::Fresh(k.key.clone())),
                    Ok(Lookup::Committed(id)) => Some(KeyState::Replay(id)),
                    Ok(Lookup::Answered(status, body)) => return Answer::replayed(media, status, body),
                    Ok(Lookup::InFlight) => return Answer::refused(media, &AppError::TryAgain),
                    Err(e) => return Answer::refused(media, &e),
                },
            };
            let replay = matches!(key_state, Some(KeyState::Replay(_)));
            let mut answer = execute(&state, viewer, client, media, request, RequestInfo::post(), key_state).await;
            if let Some(k) = &keyed {
                answer.keep(&state.inner.keys, &state.inner.db, &k.key).await;
                if replay {
                    answer.headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
                }
            }
            answer
        }
    });
    match task.await {
        Ok(answer) => answer.into_response(),
        Err(_) => reject(media, StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "일시적인 오류가 발생했습니다"),
    }
}

/// GET: `?query=`(또는 persisted query의 해시)가 있으면 조회만 실행하고(mutation은 405), 없으면 GraphiQL.
async fn graphql_get(
    State(state): State<AppState>,
    Extension(client): Extension<ClientAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> axum::response::Response {
    let query = query.unwrap_or_default();
    if query.is_empty() {
        return asset("index.html").into_response();
    }
    let media = MediaType::negotiate(&headers);
    let Some(mut request) = get_request(&query) else {
        return reject(media, StatusCode::BAD_REQUEST, "BAD_REQUEST", "쿼리 문자열이 올바른 GraphQL 요청이 아닙니다");
    };
    let viewer = viewer_from(&headers, &state.inner.jwt);
    state.inner.documents.prepare(&mut request);
    execute(&state, viewer, client, media, request, RequestInfo::get(), None).await.into_response()
}

/// GET의 쿼리 문자열을 요청으로 (GraphQL over HTTP의 매개변수 이름: `operationName`).
/// async-graphql의 `parse_query_string`은 `operation_name`을 찾아서, 명세대로 보낸 `operationName`을 버렸다.
fn get_request(raw: &str) -> Option<Request> {
    #[derive(serde::Deserialize)]
    struct Params {
        #[serde(default)]
        query: String,
        #[serde(rename = "operationName")]
        operation_name: Option<String>,
        variables: Option<String>,
        extensions: Option<String>,
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
    Some(request)
}

const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// HTTP로 나갈 답 하나 (멱등 키에 보관할 수 있게 본문을 바이트로 든다).
struct Answer {
    media: MediaType,
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
    code: String,
}

impl Answer {
    /// 보관된 처음 응답을 그대로.
    fn replayed(media: MediaType, status: u16, body: String) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
        Answer {
            media,
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            headers,
            body: body.into_bytes(),
            code: String::new(),
        }
    }

    /// 키 판단이 실행 전에 거절한 답 (아무것도 실행하지 않았다). 다른 역할의 키(FORBIDDEN)는 새 요청의 권한 거절과
    /// 같은 모양(HTTP 200, `data: null`), 진행 중인 같은 키는 409, 다른 요청에 쓴 키는 422, 루트 필드가 여럿이면 400.
    fn refused(media: MediaType, e: &AppError) -> Self {
        let error = serde_json::json!({ "message": e.to_string(), "extensions": { "code": e.code() } });
        let (status, body) = match e {
            AppError::Forbidden => (StatusCode::OK, serde_json::json!({ "data": null, "errors": [error] })),
            AppError::TryAgain => (StatusCode::CONFLICT, serde_json::json!({ "errors": [error] })),
            AppError::IdempotencyKeyReused => (StatusCode::UNPROCESSABLE_ENTITY, serde_json::json!({ "errors": [error] })),
            AppError::BadUserInput { .. } => (StatusCode::BAD_REQUEST, serde_json::json!({ "errors": [error] })),
            _ => (StatusCode::SERVICE_UNAVAILABLE, serde_json::json!({ "errors": [error] })),
        };
        let body = serde_json::to_vec(&body).unwrap_or_default();
        Answer { media, status, headers: HeaderMap::new(), body, code: e.code().to_owned() }
    }

    /// 키가 있는 변경의 처음 응답을 보관한다. TRY_AGAIN·INTERNAL은 보관하지 않는다 (키로 다시 시도할 수 있게).
    /// 진행 중인 같은 키(잠금 대기 한도를 넘김)는 409, 다른 요청에 쓴 키는 422.
    async fn keep(&mut self, keys: &KeyBook, db: &DatabaseConnection, k: &IdemKey) {
        match self.code.as_str() {
            code @ ("TRY_AGAIN" | "INTERNAL") => {
                if code == "TRY_AGAIN" {
                    self.status = StatusCode::CONFLICT;
                }
                // 보관하지 않는다: 잡아 둔 "진행 중" 자리도 치워 같은 키로 다시 시도할 수 있게.
                if !k.in_transaction
                    && let Err(e) = idempotency::release(db, k).await
                {
                    tracing::warn!(error = ?e, "멱등 키 자리를 치우지 못함");
                }
            }
            "IDEMPOTENCY_KEY_REUSED" => self.status = StatusCode::UNPROCESSABLE_ENTITY,
            code => {
                let body = String::from_utf8_lossy(&self.body);
                // 자리를 잡은 변경은 오류 답도 자기 자리에 채운다 (UPDATE). 트랜잭션에서 기록되는 변경의 오류 답은
                // 먼저 커밋된 같은 키의 성공을 덮지 않도록 새 행으로만 넣는다.
                let fills_own_row = code == "OK" || !k.in_transaction;
                if let Err(e) = keys.keep(db, k, self.status.as_u16(), &body, fills_own_row).await {
                    tracing::warn!(error = ?e, "멱등 키의 응답을 보관하지 못함");
                }
            }
        }
    }

    fn into_response(self) -> axum::response::Response {
        let mut resp = (self.status, Body::from(self.body)).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, self.media.content_type());
        for (name, value) in self.headers.iter() {
            resp.headers_mut().append(name, value.clone());
        }
        resp
    }
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
        Ok(viewer) => match state.inner.gate.acquire().await {
            Ok(_permit) => {
                let mut request = graphql::prepare_request(request, &state.inner.db, viewer).data(info.clone()).data(client);
                if let Some(k) = key {
                    request = request.data(k);
                }
                state.inner.schema.execute(request).await
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
    record_operation(&state.inner.metrics, operation.as_deref(), info.operation_type(), &code, started.elapsed());
    respond(media, response, &info, code, anonymous)
}

/// 연산 하나의 지표와 한 줄 로그 (HTTP와 웹소켓의 구독이 같이 쓴다). 연산 이름은 클라이언트가 고른 글이라 이스케이프한다.
pub(crate) fn record_operation(metrics: &Metrics, operation: Option<&str>, operation_type: &'static str, code: &str, elapsed: Duration) {
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

/// GraphQL 응답을 HTTP로. 실행 전에 끝난 요청(요청 오류)은 `data` 없이, graphql-response+json이면 400.
/// GET으로 온 mutation은 405와 `Allow: POST`.
fn respond(media: MediaType, response: Response, info: &RequestInfo, code: String, anonymous: bool) -> Answer {
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
    Answer { media, status, headers, body: serde_json::to_vec(&body).unwrap_or_default(), code }
}

fn server_error(e: &AppError) -> ServerError {
    let mut err = ServerError::new(e.to_string(), None);
    err.extensions.get_or_insert_with(Default::default).set("code", e.code());
    err
}

/// `GET /admin/coupons/{id}/codes.csv`: 관리자 전용 CSV, 데이터베이스에서 페이지씩 읽어 흘려보낸다 (CONTRACT 8절).
/// 익명 401, 관리자가 아니면 403, 없는 쿠폰(또는 UUID가 아닌 id) 404. 오류 본문은 GraphQL 오류 형식의 JSON.
async fn codes_csv(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> axum::response::Response {
    let fail = |e: AppError| {
        let status = match e {
            AppError::Unauthenticated => StatusCode::UNAUTHORIZED,
            AppError::Forbidden => StatusCode::FORBIDDEN,
            AppError::CouponNotFound => StatusCode::NOT_FOUND,
            AppError::TryAgain | AppError::Aborted => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if let AppError::Internal(detail) = &e {
            tracing::error!(detail = %detail, "CSV 내보내기 실패");
        }
        reject(MediaType::Json, status, e.code(), &e.to_string())
    };
    let viewer = match viewer_from(&headers, &state.inner.jwt) {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    // 권한이 먼저: 잘못된 id도 권한 없는 호출에는 401/403이다.
    if let Err(e) = Viewer::require_admin(viewer.as_ref()) {
        return fail(e);
    }
    let Ok(coupon_id) = uuid::Uuid::parse_str(&id) else { return fail(AppError::CouponNotFound) };
    match crate::service::codes::export(state.inner.db.clone(), viewer.as_ref(), coupon_id).await {
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

/// 데이터베이스가 답하면 200, 아니면 503. 풀이 다시 연결하므로 저절로 회복한다.
async fn ready(State(state): State<AppState>) -> StatusCode {
    match tokio::time::timeout(Duration::from_secs(2), state.inner.db.ping()).await {
        Ok(Ok(())) => StatusCode::OK,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let text = state.inner.metrics.render(&state.inner.db);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
}

/// 바이너리에 담은 GraphiQL (npm 빌드를 `assets/graphiql/`에 둔 것). CDN도 외부 주소도 쓰지 않는다.
fn asset(file: &str) -> axum::response::Response {
    const JS: &str = "text/javascript; charset=utf-8";
    let (body, ty): (&'static [u8], &str) = match file {
        "index.html" => (include_bytes!("../assets/graphiql/index.html"), "text/html; charset=utf-8"),
        "init.js" => (include_bytes!("../assets/graphiql/init.js"), JS),
        "graphiql.min.js" => (include_bytes!("../assets/graphiql/graphiql.min.js"), JS),
        "react.production.min.js" => (include_bytes!("../assets/graphiql/react.production.min.js"), JS),
        "react-dom.production.min.js" => (include_bytes!("../assets/graphiql/react-dom.production.min.js"), JS),
        "graphiql.min.css" => (include_bytes!("../assets/graphiql/graphiql.min.css"), "text/css; charset=utf-8"),
        _ => return reject(MediaType::Json, StatusCode::NOT_FOUND, "NOT_FOUND", "없는 경로입니다"),
    };
    ([(header::CONTENT_TYPE, ty), (header::CACHE_CONTROL, "public, max-age=3600")], body).into_response()
}

async fn graphiql_asset(Path(file): Path<String>) -> axum::response::Response {
    if file == "index.html" {
        return reject(MediaType::Json, StatusCode::NOT_FOUND, "NOT_FOUND", "없는 경로입니다");
    }
    asset(&file)
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
