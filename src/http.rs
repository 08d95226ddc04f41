//! HTTP 표면(CONTRACT 2절): /graphql(POST 실행, GET 플레이그라운드), /health, /ready.
//! 잘못된 요청은 모두 오류로 답하고 서버는 계속 동작한다.
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::http::GraphiQLSource;
use async_graphql::parser::types::OperationType;
use async_graphql::{BatchRequest, Request, Response, ServerError};
use async_graphql_axum::GraphQLResponse;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use sea_orm::DatabaseConnection;

use crate::auth::JwtKeys;
use crate::domain::Viewer;
use crate::error::AppError;
use crate::graphql::{self, AppSchema};

/// 요청 본문 한도 (계약: 64 KiB, 넘으면 413).
pub const BODY_LIMIT: usize = 64 * 1024;
/// 동시에 실행하는 GraphQL 연산 수. 실행 중인 연산은 큰 퓨처와 버퍼를 쥐므로, 수천 명이 한꺼번에 와도
/// 나머지는 요청 본문만 든 채 줄을 서게 해서 메모리를 묶어 둔다 (풀 크기보다 훨씬 커서 처리량은 그대로).
pub const MAX_IN_FLIGHT: usize = 256;

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    schema: AppSchema,
    db: DatabaseConnection,
    jwt: JwtKeys,
    gate: tokio::sync::Semaphore,
}

impl AppState {
    /// `issue_coalescing`: 같은 쿠폰의 동시 발급을 한 트랜잭션으로 합친다 (설정 ISSUE_COALESCING).
    pub fn new(db: DatabaseConnection, jwt: JwtKeys, issue_coalescing: bool) -> Self {
        let schema = graphql::build_schema(Some(db.clone()), issue_coalescing);
        Self { inner: Arc::new(Inner { schema, db, jwt, gate: tokio::sync::Semaphore::new(MAX_IN_FLIGHT) }) }
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(ready))
        .fallback(|| async { reject(StatusCode::NOT_FOUND, "NOT_FOUND", "없는 경로입니다") })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// 본문 파싱 오류 등 GraphQL 실행 전의 거절: 상태 코드와 GraphQL 형식의 오류 하나.
fn reject(status: StatusCode, code: &str, message: &str) -> axum::response::Response {
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (status, Json(body)).into_response()
}

/// `Authorization: Bearer …`. 헤더가 없으면 익명, 있는데 유효하지 않으면 UNAUTHENTICATED.
fn viewer_from(headers: &HeaderMap, jwt: &JwtKeys) -> Result<Option<Viewer>, AppError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or(AppError::Unauthenticated)?;
    jwt.verify(token).map(Some)
}

async fn graphql_post(State(state): State<AppState>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> axum::response::Response {
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return reject(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", "요청 본문이 64 KiB를 넘습니다");
        }
        Err(_) => {
            return reject(StatusCode::BAD_REQUEST, "BAD_REQUEST", "요청 본문을 읽을 수 없습니다");
        }
    };
    let request = match serde_json::from_slice::<BatchRequest>(&body) {
        Ok(BatchRequest::Single(r)) => r,
        // 배치는 꺼 두었다: 요청 하나에 연산 하나.
        Ok(BatchRequest::Batch(_)) => {
            return reject(StatusCode::BAD_REQUEST, "BAD_REQUEST", "배치 요청은 지원하지 않습니다");
        }
        Err(_) => {
            return reject(StatusCode::BAD_REQUEST, "BAD_REQUEST", "요청 본문이 올바른 JSON GraphQL 요청이 아닙니다");
        }
    };
    execute(&state, &headers, request).await.into_response()
}

/// GET: `?query=`가 있으면 조회만 실행하고(mutation은 거부), 없으면 GraphiQL.
async fn graphql_get(State(state): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> axum::response::Response {
    let query = query.unwrap_or_default();
    if query.is_empty() {
        return Html(GraphiQLSource::build().endpoint("/graphql").title("couponql").finish()).into_response();
    }
    let request = match async_graphql::http::parse_query_string(&query) {
        Ok(r) => r,
        Err(_) => {
            return reject(StatusCode::BAD_REQUEST, "BAD_REQUEST", "쿼리 문자열이 올바른 GraphQL 요청이 아닙니다");
        }
    };
    if is_mutation(&request) {
        return reject(StatusCode::METHOD_NOT_ALLOWED, "BAD_REQUEST", "mutation은 POST로만 보낼 수 있습니다");
    }
    execute(&state, &headers, request).await.into_response()
}

/// 요청이 고르는 연산이 mutation인지. 파싱이 안 되면 실행 단계가 GRAPHQL_PARSE_FAILED로 답한다.
fn is_mutation(request: &Request) -> bool {
    let Ok(doc) = async_graphql::parser::parse_query(&request.query) else {
        return false;
    };
    doc.operations.iter().any(|(name, op)| {
        let chosen = match (&request.operation_name, name) {
            (Some(wanted), Some(n)) => wanted.as_str() == n.as_str(),
            (Some(_), None) => false,
            (None, _) => true,
        };
        chosen && op.node.ty == OperationType::Mutation
    })
}

/// 실행하고 한 줄 로그를 남긴다 (연산 이름, 걸린 시간, 결과).
async fn execute(state: &AppState, headers: &HeaderMap, request: Request) -> GraphQLResponse {
    let started = Instant::now();
    let operation = request.operation_name.clone().unwrap_or_else(|| "-".into());
    let response = match viewer_from(headers, &state.inner.jwt) {
        Ok(viewer) => match state.inner.gate.acquire().await {
            Ok(_permit) => {
                let request = graphql::prepare_request(request, &state.inner.db, viewer);
                state.inner.schema.execute(request).await
            }
            // 세마포어는 닫지 않으므로 여기 오지 않는다.
            Err(_) => Response::from_errors(vec![server_error(&AppError::TryAgain)]),
        },
        Err(e) => Response::from_errors(vec![server_error(&e)]),
    };
    let outcome = if response.errors.is_empty() {
        "ok".to_owned()
    } else {
        response
            .errors
            .iter()
            .filter_map(|e| e.extensions.as_ref().and_then(|x| x.get("code")).map(|c| c.to_string()))
            .collect::<Vec<_>>()
            .join(",")
    };
    tracing::info!(operation = %operation, duration_ms = started.elapsed().as_secs_f64() * 1000.0, outcome = %outcome, "graphql");
    response.into()
}

fn server_error(e: &AppError) -> ServerError {
    let mut err = ServerError::new(e.to_string(), None);
    err.extensions.get_or_insert_with(Default::default).set("code", e.code());
    err
}

/// 데이터베이스가 답하면 200, 아니면 503. 풀이 다시 연결하므로 저절로 회복한다.
async fn ready(State(state): State<AppState>) -> StatusCode {
    match tokio::time::timeout(Duration::from_secs(2), state.inner.db.ping()).await {
        Ok(Ok(())) => StatusCode::OK,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}
