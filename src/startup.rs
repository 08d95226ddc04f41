//! 애플리케이션 조립 (zero-to-production의 `startup.rs`): `serve`와 모든 테스트가 같은 배선을 쓴다.
use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use sea_orm::DatabaseConnection;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use crate::auth::JwtKeys;
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::service::idempotency::KeyBook;
use crate::{db, graphql, http, seed, server};

pub struct Application {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    state: http::AppState,
    db: DatabaseConnection,
    metrics: Metrics,
    cors: Option<Vec<String>>,
    max_connections: usize,
    nats_url: Option<String>,
}

impl Application {
    /// 설정대로: 포트를 잡고, 데이터베이스에 연결해 마이그레이션하고, 내장 SQLite면 데모 데이터를 넣는다.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        // 신뢰 문서 목록이 먼저: 어긋난 목록은 데이터베이스에 닿기 전에 시작을 멈춘다.
        let documents = trusted_documents(settings)?;
        let (listener, metrics_listener) = bind_all(settings).await?;
        let db = connect(settings).await?;
        db::migrate(&db).await.context("migration failed")?;
        if settings.embedded_default() {
            let report = seed::seed(&db).await.map_err(|e| anyhow::anyhow!("{e:?}")).context("seeding failed")?;
            tracing::info!(?report, "embedded SQLite ready with demo data");
        }
        Self::assemble(settings, listener, metrics_listener, db, documents)
    }

    /// 이미 연결·마이그레이션된 데이터베이스로 (테스트: 새로 만든 데이터베이스, SQL 문 계수기가 붙은 연결).
    pub async fn build_with_db(settings: &Settings, db: DatabaseConnection) -> anyhow::Result<Self> {
        let documents = trusted_documents(settings)?;
        let (listener, metrics_listener) = bind_all(settings).await?;
        Self::assemble(settings, listener, metrics_listener, db, documents)
    }

    fn assemble(
        settings: &Settings,
        listener: TcpListener,
        metrics_listener: Option<TcpListener>,
        db: DatabaseConnection,
        documents: Option<std::sync::Arc<graphql::TrustedDocuments>>,
    ) -> anyhow::Result<Self> {
        let metrics = Metrics::new();
        // 트랜잭션 스팬의 `db.system` (OpenTelemetry의 이름).
        crate::telemetry::set_db_system(match sea_orm::ConnectionTrait::get_database_backend(&db) {
            sea_orm::DatabaseBackend::MySql => "mysql",
            sea_orm::DatabaseBackend::Postgres => "postgresql",
            sea_orm::DatabaseBackend::Sqlite => "sqlite",
            _ => "other_sql",
        });
        let jwt = JwtKeys::new(settings.jwt_secret().expose_secret());
        let trusted = settings.trusted_proxies().map_err(anyhow::Error::msg)?;
        let schema = graphql::build_schema_with(Some(db.clone()), settings.issue_mode(), settings.max_query_cost, documents.is_none());
        let keys = KeyBook::start(db.clone());
        let state = http::AppState::new(schema, db.clone(), jwt, metrics.clone(), trusted, keys, documents);
        Ok(Self {
            listener,
            metrics_listener,
            state,
            db,
            metrics,
            cors: settings.cors_origins(),
            max_connections: server::connection_capacity(),
            nats_url: settings.nats_url.clone().filter(|u| !u.trim().is_empty()),
        })
    }

    /// 연결 수 한도를 바꾼다 (시험용으로 작게).
    pub fn with_max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// 웹소켓 한도를 바꾼다 (시험용으로 작게, 짧게).
    pub fn with_ws_limits(self, limits: http::ws::WsLimits) -> Self {
        self.state.ws().set_limits(limits);
        self
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// `shutdown`이 끝날 때까지 서비스하고, 진행 중인 요청을 마친 뒤 풀을 닫는다.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let open = self.metrics.open_connections();
        let router = http::router(self.state.clone(), self.cors.as_deref(), self.metrics_listener.is_none());
        let router = server::shed_when_crowded(router, open.clone(), self.max_connections);
        // 종료 신호 하나를 본 서버와 지표 서버가 함께 듣는다.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let state = self.state.clone();
        tokio::spawn(async move {
            shutdown.await;
            // 진행 중인 CSV 가져오기가 커밋하지 않고 먼저 끝나도록: 서버는 그 요청을 마저 기다리지 않는다.
            state.begin_stopping();
            let _ = stop_tx.send(true);
        });
        let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        };
        if let Some(l) = self.metrics_listener {
            let metrics_router = http::metrics_router(self.state.clone());
            tokio::spawn(server::serve(l, metrics_router, Default::default(), 64, wait(stop_rx.clone())));
        }
        // 보관 기간이 지난 멱등 키와 창 밖의 코드 추측 실패 기록을 정리한다 (시작 때 한 번, 그 뒤 10분마다).
        let purge = tokio::spawn({
            let db = self.db.clone();
            async move {
                let mut every = tokio::time::interval(Duration::from_secs(600));
                loop {
                    every.tick().await;
                    match crate::service::idempotency::purge(&db, crate::domain::now()).await {
                        Ok(n) if n > 0 => tracing::info!(purged = n, "expired idempotency keys purged"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = ?e, "idempotency key purge failed"),
                    }
                    if let Err(e) = crate::service::codes::purge_failures(&db, crate::domain::now()).await {
                        tracing::warn!(error = ?e, "code failure purge failed");
                    }
                }
            }
        });
        // 원장의 도장 (커밋된 이벤트에 sequence를 매긴다): 모든 프로세스가 돌리고, 임대를 쥔 하나만 매긴다.
        let stamper = tokio::spawn(crate::service::ledger::run(self.db.clone(), stop_rx.clone()));
        // 원장 중계 (NATS_URL이 있을 때): 종료 신호를 같이 듣고, 끝날 때 임대를 놓는다.
        let relay = self.nats_url.map(|url| tokio::spawn(crate::service::relay::run(self.db.clone(), url, stop_rx.clone())));
        server::serve(self.listener, router, open, self.max_connections, wait(stop_rx)).await;
        purge.abort();
        if tokio::time::timeout(Duration::from_secs(2), stamper).await.is_err() {
            tracing::warn!("the event stamper did not stop in time");
        }
        if let Some(relay) = relay
            && tokio::time::timeout(Duration::from_secs(2), relay).await.is_err()
        {
            tracing::warn!("the event relay did not stop in time");
        }
        // 클라이언트가 끊은 변경도 끝까지 가게 했으므로, 그 실행들을 (한도 안에서) 기다린 뒤 풀을 닫는다.
        if tokio::time::timeout(Duration::from_secs(2), self.state.wait_for_tasks()).await.is_err() {
            tracing::warn!("detached executions did not finish in time");
        }
        if tokio::time::timeout(Duration::from_secs(1), self.db.close()).await.is_err() {
            tracing::warn!("the connection pool did not close in time");
        }
        Ok(())
    }
}

async fn bind_all(settings: &Settings) -> anyhow::Result<(TcpListener, Option<TcpListener>)> {
    let listener = server::bind(&settings.bind_addr).await.with_context(|| format!("cannot listen on {}", settings.bind_addr))?;
    let metrics_listener = match &settings.metrics_bind_addr {
        Some(addr) => Some(server::bind(addr).await.with_context(|| format!("cannot listen on METRICS_BIND_ADDR {addr}"))?),
        None => None,
    };
    Ok((listener, metrics_listener))
}

/// 데이터베이스에 연결한다. 닿지 않으면 30초 안에 포기한다 (주소의 비밀번호는 메시지에 싣지 않는다).
pub async fn connect(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    let url = settings.database_url();
    let shown = redact(url.expose_secret());
    match tokio::time::timeout(Duration::from_secs(25), db::connect(url.expose_secret(), &settings.db())).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(anyhow::anyhow!("cannot connect to the database at {shown}: {e}")),
        Err(_) => Err(anyhow::anyhow!("cannot connect to the database at {shown}: timed out")),
    }
}

/// 로그에 비밀번호가 새지 않도록 URL의 사용자 정보를 지운다.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}{}", &url[..s + 3], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// `TRUSTED_DOCUMENTS`의 목록: 읽을 수 없거나 어긋난 것이 있으면 시작하지 않는다 (까닭 한 줄).
fn trusted_documents(settings: &Settings) -> anyhow::Result<Option<std::sync::Arc<graphql::TrustedDocuments>>> {
    let Some(path) = &settings.trusted_documents else { return Ok(None) };
    let documents = graphql::TrustedDocuments::load(path).map_err(|e| anyhow::anyhow!("TRUSTED_DOCUMENTS: {e}"))?;
    tracing::info!(documents = documents.len(), "trusted documents: only these operations run");
    Ok(Some(std::sync::Arc::new(documents)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_cut_from_urls() {
        assert_eq!(super::redact("postgres://u:secret@h:5432/db"), "postgres://h:5432/db");
        assert_eq!(super::redact("sqlite://couponql.db?mode=rwc"), "sqlite://couponql.db?mode=rwc");
    }
}
