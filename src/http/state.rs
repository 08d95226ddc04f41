//! 라우터의 상태: 조립된 스키마와 풀, 토큰 키, 실행 줄, 멱등 키 일꾼, 떨어진 실행들. 조립은 `startup`이 한다.
use std::sync::Arc;

use axum::extract::FromRef;
use axum::http::{HeaderMap, header};
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::limits::MAX_IN_FLIGHT;
use super::ws::{Sockets, WsHub};
use crate::auth::JwtKeys;
use crate::domain::Viewer;
use crate::error::AppError;
use crate::graphql::{AppSchema, DocumentCache, TrustedDocuments};
use crate::metrics::Metrics;
use crate::net::TrustedProxies;
use crate::service::idempotency::KeyBook;

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
    documents: DocumentCache,
    /// `X-Forwarded-For`를 믿는 프록시들 (클라이언트 주소).
    trusted: TrustedProxies,
    /// 웹소켓 경로가 쓰는 것들 (스키마, 토큰 키, 지표, 소켓 수와 한도).
    sockets: Sockets,
    /// 종료 신호: 오래 걸리는 요청(CSV 가져오기)이 보고 커밋하지 않고 멈춘다. 종료가 그 요청을 기다리지 않게.
    stopping: CancellationToken,
}

impl AppState {
    /// 조립된 스키마와 멱등 키 일꾼, 신뢰 문서 목록을 받는다 (`startup`이 만든다).
    pub fn new(
        schema: AppSchema,
        db: DatabaseConnection,
        jwt: JwtKeys,
        metrics: Metrics,
        trusted: TrustedProxies,
        keys: KeyBook,
        documents: Option<Arc<TrustedDocuments>>,
    ) -> Self {
        let gate = tokio::sync::Semaphore::new(MAX_IN_FLIGHT);
        let sockets = Sockets::new(schema.clone(), jwt.clone(), metrics.clone(), documents.clone());
        let inner = Inner {
            schema,
            db,
            jwt,
            gate,
            metrics,
            tasks: TaskTracker::new(),
            keys,
            documents: DocumentCache::new(documents),
            trusted,
            sockets,
            stopping: CancellationToken::new(),
        };
        Self { inner: Arc::new(inner) }
    }

    pub(crate) fn schema(&self) -> &AppSchema {
        &self.inner.schema
    }

    pub(crate) fn db(&self) -> &DatabaseConnection {
        &self.inner.db
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub(crate) fn gate(&self) -> &tokio::sync::Semaphore {
        &self.inner.gate
    }

    pub(crate) fn tasks(&self) -> &TaskTracker {
        &self.inner.tasks
    }

    pub(crate) fn keys(&self) -> &KeyBook {
        &self.inner.keys
    }

    pub(crate) fn documents(&self) -> &DocumentCache {
        &self.inner.documents
    }

    pub(crate) fn trusted(&self) -> &TrustedProxies {
        &self.inner.trusted
    }

    /// 열린 웹소켓 수와 한도.
    pub fn ws(&self) -> &WsHub {
        self.inner.sockets.hub()
    }

    /// `Authorization: Bearer …`. 헤더가 없으면 익명, 있는데 유효하지 않으면 UNAUTHENTICATED.
    pub(crate) fn viewer(&self, headers: &HeaderMap) -> Result<Option<Viewer>, AppError> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Ok(None);
        };
        let token = value.to_str().ok().and_then(crate::auth::bearer_token).ok_or(AppError::Unauthenticated)?;
        self.inner.jwt.verify(token).map(Some)
    }

    /// 종료가 시작됐다고 알린다 (`startup`이 종료 신호를 받으면).
    pub fn begin_stopping(&self) {
        self.inner.stopping.cancel();
    }

    pub(crate) fn stopping(&self) -> &CancellationToken {
        &self.inner.stopping
    }

    /// 진행 중인 실행이 모두 끝나기를 기다린다 (종료 때).
    pub async fn wait_for_tasks(&self) {
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }
}

/// 웹소켓 경로는 `AppState` 전체가 아니라 자기 것만 받는다 (`ws`가 이 파일을 가져오지 않게).
impl FromRef<AppState> for Sockets {
    fn from_ref(state: &AppState) -> Self {
        state.inner.sockets.clone()
    }
}
