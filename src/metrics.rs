//! Prometheus 지표 (CONTRACT 2절의 이름들). `metrics` 파사드에 기록하고 `metrics-exporter-prometheus`가 텍스트로 낸다.
//! 기록기는 프로세스 전역이라 한 번만 설치하고(테스트처럼 앱을 여럿 띄워도) 핸들을 나눠 쓴다.
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sea_orm::DatabaseConnection;

use crate::db::Backend;

const DURATION_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// 지표 핸들과 이 서버의 열린 연결 수.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
    open_connections: Arc<AtomicUsize>,
}

fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full("couponql_graphql_request_duration_seconds".into()), DURATION_BUCKETS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full("couponql_issuance_batch_size".into()), BATCH_BUCKETS));
            let recorder = match builder {
                Ok(b) => b.build_recorder(),
                // 버킷이 비어 있을 때만 실패한다 (상수라 일어나지 않는다): 기본 요약으로라도 낸다.
                Err(_) => PrometheusBuilder::new().build_recorder(),
            };
            let handle = recorder.handle();
            // 이미 다른 기록기가 있으면(라이브러리로 쓰일 때) 그쪽을 존중하고 우리 것은 빈 채로 둔다.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

fn describe() {
    metrics::describe_counter!("couponql_graphql_requests_total", "GraphQL requests by operation type and outcome code");
    metrics::describe_histogram!("couponql_graphql_request_duration_seconds", metrics::Unit::Seconds, "GraphQL request duration");
    metrics::describe_counter!("couponql_issuance_total", "Issuance answers by outcome code");
    metrics::describe_histogram!("couponql_issuance_batch_size", "Requests served by one issuance transaction");
    metrics::describe_counter!("couponql_events_relayed_total", "Ledger events published to NATS JetStream and acknowledged");
    metrics::describe_counter!("couponql_events_stamped_total", "Ledger events given their stream sequence after commit by this process");
    metrics::describe_counter!(
        "couponql_transaction_retries_total",
        "Transactions retried after the database aborted them (deadlock, Galera certification conflict, serialization failure)"
    );
    metrics::describe_counter!(
        "couponql_transaction_retries_exhausted_total",
        "Aborted transactions answered TRY_AGAIN after the retry budget ran out"
    );
    metrics::describe_counter!("couponql_code_batch_collisions_total", "Generated code batches retried because a code already existed");
    metrics::describe_counter!(
        "couponql_trace_spans_dropped_total",
        "Trace spans not exported: the export queue was full, the collector failed or timed out, or shutdown's 2 s ran out"
    );
    metrics::describe_gauge!("couponql_db_pool_connections", "Database pool connections by state");
    metrics::describe_gauge!("couponql_http_open_connections", "Open HTTP connections");
    metrics::describe_gauge!("couponql_subscriptions_active", "Active GraphQL subscriptions");
    // 처음 긁을 때부터 표의 모든 지표가 `# TYPE` 줄을 갖게 등록해 둔다 (값 0): 레이블 없는 것은 0 표본,
    // 레이블 있는 것은 실제로 생길 수 있는 레이블 하나로.
    counter!("couponql_graphql_requests_total", "operation_type" => "query", "code" => "OK").absolute(0);
    let _ = histogram!("couponql_graphql_request_duration_seconds", "operation_type" => "query");
    counter!("couponql_issuance_total", "outcome" => "OK").absolute(0);
    let _ = histogram!("couponql_issuance_batch_size");
    gauge!("couponql_http_open_connections").set(0.0);
    gauge!("couponql_subscriptions_active").set(0.0);
}

impl Metrics {
    pub fn new() -> Self {
        Self { handle: handle(), open_connections: Arc::new(AtomicUsize::new(0)) }
    }

    /// 리스너가 연결을 열고 닫을 때 움직이는 계수기.
    pub fn open_connections(&self) -> Arc<AtomicUsize> {
        self.open_connections.clone()
    }

    pub fn graphql_request(&self, operation_type: &'static str, code: &str, elapsed: Duration) {
        counter!("couponql_graphql_requests_total", "operation_type" => operation_type, "code" => code.to_owned()).increment(1);
        histogram!("couponql_graphql_request_duration_seconds", "operation_type" => operation_type).record(elapsed.as_secs_f64());
    }

    /// 수집 시점의 게이지를 채우고 텍스트로 낸다.
    pub fn render(&self, db: &DatabaseConnection) -> String {
        let (size, idle) = pool_stats(db);
        gauge!("couponql_db_pool_connections", "state" => "idle").set(idle as f64);
        gauge!("couponql_db_pool_connections", "state" => "in_use").set(size.saturating_sub(idle) as f64);
        gauge!("couponql_http_open_connections").set(self.open_connections.load(Ordering::Relaxed) as f64);
        // 구독이 한 번도 없었어도 0으로 나오게 (값은 구독이 시작·끝날 때 `subscriptions`가 바꾼다).
        gauge!("couponql_subscriptions_active").increment(0.0);
        self.handle.run_upkeep();
        self.handle.render()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// 발급 응답 하나 (`OK` 또는 오류 코드).
pub fn issuance(outcome: &'static str) {
    counter!("couponql_issuance_total", "outcome" => outcome).increment(1);
}

/// NATS JetStream으로 보내고 확인받은 이벤트 수.
pub fn relayed(n: u64) {
    counter!("couponql_events_relayed_total").increment(n);
}

/// 커밋 뒤에 이 프로세스가 sequence를 매긴 이벤트 수.
pub fn stamped(n: u64) {
    counter!("couponql_events_stamped_total").increment(n);
}

/// 열린 재고 구독 수를 `delta`만큼 (+1 시작, -1 끝).
pub fn subscriptions(delta: f64) {
    gauge!("couponql_subscriptions_active").increment(delta);
}

/// 버려진 트랜잭션을 서버 안에서 다시 돌린 횟수 (`operation`: issue, redeem, reserve …).
pub fn retry(operation: &'static str) {
    counter!("couponql_transaction_retries_total", "operation" => operation).increment(1);
}

/// 예산 안에 성공하지 못해 TRY_AGAIN으로 답한 재시도.
pub fn retries_exhausted(operation: &'static str) {
    counter!("couponql_transaction_retries_exhausted_total", "operation" => operation).increment(1);
}

/// 생성한 코드 배치가 기존 코드와 겹쳐 다시 한 횟수.
pub fn code_collision() {
    counter!("couponql_code_batch_collisions_total").increment(1);
}

/// 발급 트랜잭션 하나가 처리한 요청 수.
pub fn issuance_batch(size: usize) {
    histogram!("couponql_issuance_batch_size").record(size as f64);
}

/// (열린 커넥션 수, 그중 노는 것).
fn pool_stats(db: &DatabaseConnection) -> (usize, usize) {
    match backend_of(db) {
        Backend::MySql => {
            let p = db.get_mysql_connection_pool();
            (p.size() as usize, p.num_idle())
        }
        Backend::Postgres => {
            let p = db.get_postgres_connection_pool();
            (p.size() as usize, p.num_idle())
        }
        Backend::Sqlite => {
            let p = db.get_sqlite_connection_pool();
            (p.size() as usize, p.num_idle())
        }
    }
}

fn backend_of(db: &DatabaseConnection) -> Backend {
    match sea_orm::ConnectionTrait::get_database_backend(db) {
        sea_orm::DbBackend::MySql => Backend::MySql,
        sea_orm::DbBackend::Postgres => Backend::Postgres,
        _ => Backend::Sqlite,
    }
}

/// 내보내지 못한 추적 스팬 (CONTRACT 13절). 0이면 지표를 등록만 한다.
pub fn trace_spans_dropped(n: u64) {
    counter!("couponql_trace_spans_dropped_total").increment(n);
}
