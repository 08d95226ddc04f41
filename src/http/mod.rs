//! HTTP 표면(CONTRACT 2절): 라우터와 CORS, /health, /ready, /metrics. 경로마다 파일 하나:
//! `graphql`(GraphQL over HTTP), `keys`(Idempotency-Key), `ws`(GraphQL over WebSocket), `admin`(CSV 내보내기·가져오기),
//! `graphiql`(내장 GraphiQL). 답의 모양은 `reply`, 상태는 `state`. 잘못된 요청은 모두 계약서의 코드로 답하고
//! 아무것도 실행하지 않는다.
mod admin;
mod graphiql;
mod graphql;
mod keys;
mod limits;
mod reply;
mod state;
pub mod ws;

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Router, middleware};
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use limits::{BODY_LIMIT, BODY_TIMEOUT, IMPORT_BODY_LIMIT, MAX_IN_FLIGHT};
pub use reply::MediaType;
pub use state::AppState;

/// 라우터. `cors`: 허용 출처(없으면 CORS 헤더를 전혀 붙이지 않는다). `metrics_here`: /metrics를 이 라우터에 둘지.
pub fn router(state: AppState, cors: Option<&[String]>, metrics_here: bool) -> Router {
    let mut app = Router::new()
        .route("/graphql", get(graphql::graphql_get).post(graphql::graphql_post))
        .route("/graphql/ws", get(ws::graphql_ws))
        .route("/graphiql/{file}", get(graphiql::graphiql_asset))
        .route("/admin/coupons/{id}/codes.csv", get(admin::codes_csv))
        // 이 경로만 64 MiB (안쪽 레이어가 바깥의 `BODY_LIMIT`을 덮는다). 빠르기 검사는 `admin::paced`.
        .route("/admin/coupons/{id}/audience.csv", post(admin::audience_csv).layer(DefaultBodyLimit::max(IMPORT_BODY_LIMIT)))
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(ready));
    if metrics_here {
        app = app.route("/metrics", get(metrics));
    }
    if crate::telemetry::enabled() {
        // 추적이 켜져 있을 때만: 꺼져 있으면 요청마다 아무것도 더하지 않는다.
        app = app.route_layer(middleware::from_fn(traced));
    }
    let trusted = state.trusted().clone();
    let mut app = app
        .fallback(|| async { reply::not_found() })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(trusted, crate::net::attach_client_addr))
        .with_state(state);
    if let Some(origins) = cors {
        app = app.layer(cors_layer(origins)).layer(middleware::map_response(preflight_no_content));
    }
    app
}

/// 요청 하나를 추적의 SERVER 스팬 안에서 돌린다: 들어온 `traceparent`를 잇고, 응답에 이 스팬의 것을 싣는다.
async fn traced(matched: MatchedPath, req: axum::extract::Request, next: middleware::Next) -> axum::response::Response {
    let scope = crate::telemetry::server_span(req.method(), matched.as_str(), req.headers());
    crate::telemetry::serve(scope, next.run(req)).await
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
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, keys::IDEMPOTENCY_KEY])
        // 브라우저 앱이 읽는 응답 헤더: 재생 여부, CSV 파일 이름, 재시도 시각, 추적 문맥.
        .expose_headers([
            keys::IDEMPOTENT_REPLAYED,
            header::CONTENT_DISPOSITION,
            header::RETRY_AFTER,
            HeaderName::from_static("traceparent"),
        ])
        .max_age(Duration::from_secs(600))
}

/// tower-http는 사전 요청(OPTIONS)에 200으로 답한다. 계약은 본문 없는 204.
async fn preflight_no_content(method: Method, mut resp: axum::response::Response) -> axum::response::Response {
    if method == Method::OPTIONS && resp.status() == StatusCode::OK {
        *resp.status_mut() = StatusCode::NO_CONTENT;
    }
    resp
}

/// 데이터베이스가 답하면 200, 아니면 503. 풀이 다시 연결하므로 저절로 회복한다.
async fn ready(State(state): State<AppState>) -> StatusCode {
    match tokio::time::timeout(Duration::from_secs(2), state.db().ping()).await {
        Ok(Ok(())) => StatusCode::OK,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let text = state.metrics().render(state.db());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
}
