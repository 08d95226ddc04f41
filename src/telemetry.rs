//! 로그와 OpenTelemetry 추적 (CONTRACT 13절).
//!
//! `OTEL_EXPORTER_OTLP_ENDPOINT`가 있으면 HTTP 요청마다 SERVER 스팬 하나(`<type> <operation name>`), 그 아래 데이터베이스
//! 트랜잭션마다(`db.system`)와 발급 배치마다 스팬을 만들어 OTLP/HTTP로 내보낸다. 스팬은 OpenTelemetry API로 바로
//! 만든다 (아래 "스팬"). 로그(`tracing`)와는 따로라서, 켜도 로그 구독자와 그 비용은 그대로다.
//!
//! 내보내기는 요청을 막지도 실패시키지도 않는다: 끝난 스팬은 크기가 정해진 줄에 `try_send`로만 넣고, 줄이 차 있으면
//! 버리고 센다(`couponql_trace_spans_dropped_total`). 줄은 tokio 작업 하나가 비우며 내보낸다. SDK의 BatchSpanProcessor는
//! 버린 수를 밖에 알려 주지 않아서 이 작은 처리기를 둔다. 내보내기가 실패하거나(수집기가 없음) 시간이 다 되면 그 묶음도
//! 버린 것으로 센다. 종료 때는 2초까지만 내보내고, 남은 것은 버린 것으로 센다.
//!
//! 꺼져 있으면(기본) 로그 구독자는 예전 그대로이고, 스팬을 만드는 곳은 `enabled()` 한 번만 보고 지나간다.
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::FutureExt as _;
use futures_util::future::Either;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{FutureExt as _, SpanBuilder, SpanContext, SpanKind, TraceContextExt, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, SpanData, SpanExporter as _, SpanProcessor};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// 종료 때 내보내기에 주는 시간 (계약: 2초).
const SHUTDOWN_BUDGET: Duration = Duration::from_secs(2);

static ENABLED: AtomicBool = AtomicBool::new(false);
static DB_SYSTEM: OnceLock<&'static str> = OnceLock::new();
static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// 추적을 내보내는 중인지 (스팬을 만드는 곳이 먼저 본다: 꺼져 있으면 아무것도 만들지 않는다).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// 이 프로세스의 데이터베이스 종류 (`db.system`의 값: mysql, postgresql, sqlite). 시작할 때 한 번.
pub fn set_db_system(system: &'static str) {
    let _ = DB_SYSTEM.set(system);
}

/// 로그 구독자를 설치하고, 끝점이 있으면 추적 내보내기를 켠다. 끝점이 잘못되었으면 시작하지 않는다.
/// 로그 구독자는 추적이 켜져 있든 꺼져 있든 같다: 스팬은 tracing을 거치지 않는다.
pub fn init(format: LogFormat, endpoint: Option<&str>) -> anyhow::Result<Telemetry> {
    let export = match endpoint.map(str::trim).filter(|e| !e.is_empty()) {
        Some(endpoint) => Some(Export::start(endpoint)?),
        None => None,
    };
    // 로그는 stderr로: `couponql schema`와 `token`의 stdout을 더럽히지 않는다.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // 색 코드는 터미널에만: 파일이나 파이프로 가는 로그에 이스케이프 문자가 섞이지 않게.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour);
    match format {
        LogFormat::Json => logs.json().flatten_event(true).init(),
        LogFormat::Text => logs.init(),
    }
    let Some((provider, export)) = export else { return Ok(Telemetry { export: None }) };
    let _ = TRACER.set(provider.tracer("couponql"));
    ENABLED.store(true, Ordering::Relaxed);
    tracing::info!(endpoint, "exporting traces over OTLP/HTTP");
    Ok(Telemetry { export: Some((provider, export)) })
}

/// 켜진 추적의 손잡이: 종료 때 `shutdown`.
pub struct Telemetry {
    export: Option<(SdkTracerProvider, Export)>,
}

impl Telemetry {
    /// 남은 스팬을 2초까지 내보내고, 못 보낸 것은 버린 것으로 센다.
    pub async fn shutdown(self) {
        let Some((provider, export)) = self.export else { return };
        ENABLED.store(false, Ordering::Relaxed);
        export.stop.cancel();
        if tokio::time::timeout(SHUTDOWN_BUDGET, export.worker).await.is_err() {
            let left = export.pending.swap(0, Ordering::Relaxed);
            dropped(left);
            tracing::warn!(spans = left, "trace export did not finish within 2 s at shutdown; the rest is dropped");
        }
        // 처리기의 종료는 할 일이 없다 (줄은 위에서 비웠다): 공급자를 닫아 새 스팬을 받지 않게 한다.
        let _ = provider.shutdown();
    }
}

fn dropped(n: u64) {
    if n > 0 {
        crate::metrics::trace_spans_dropped(n);
    }
}

/// 표준 환경 변수(`OTEL_BSP_*`)의 숫자, 없거나 읽을 수 없으면 기본값.
fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).filter(|n| *n > 0).unwrap_or(default)
}

/// 내보내기 작업: 줄, 아직 내보내지 못한 스팬 수, 멈춤 신호.
struct Export {
    worker: tokio::task::JoinHandle<()>,
    pending: Arc<AtomicU64>,
    stop: CancellationToken,
}

impl Export {
    fn start(endpoint: &str) -> anyhow::Result<(SdkTracerProvider, Export)> {
        use opentelemetry_otlp::WithExportConfig;
        let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(url)
            .build()
            .map_err(|e| anyhow::anyhow!("OTEL_EXPORTER_OTLP_ENDPOINT: {e}"))?;
        let capacity = env_number("OTEL_BSP_MAX_QUEUE_SIZE", 2048) as usize;
        let batch = env_number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512) as usize;
        let delay = Duration::from_millis(env_number("OTEL_BSP_SCHEDULE_DELAY", 1000));
        let (tx, rx) = mpsc::channel(capacity);
        let pending = Arc::new(AtomicU64::new(0));
        let stop = CancellationToken::new();
        let worker = tokio::spawn(drain(rx, exporter, pending.clone(), stop.clone(), batch.max(1), delay));
        let service = std::env::var("OTEL_SERVICE_NAME").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "couponql".into());
        let provider = SdkTracerProvider::builder()
            .with_span_processor(Queue { tx, pending: pending.clone() })
            .with_resource(Resource::builder().with_service_name(service).build())
            .build();
        crate::metrics::trace_spans_dropped(0);
        Ok((provider, Export { worker, pending, stop }))
    }
}

/// 끝난 스팬을 줄에 넣기만 하는 처리기 (요청의 스레드에서 불린다: 막지 않는다).
#[derive(Debug)]
struct Queue {
    tx: mpsc::Sender<SpanData>,
    pending: Arc<AtomicU64>,
}

impl SpanProcessor for Queue {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        self.pending.fetch_add(1, Ordering::Relaxed);
        if self.tx.try_send(span).is_err() {
            // 줄이 찼거나(수집기가 느리거나 없음) 닫혔다(종료 중).
            self.pending.fetch_sub(1, Ordering::Relaxed);
            dropped(1);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// 줄을 비우며 묶음으로 내보낸다: 묶음이 차거나 `delay`가 지나면. 멈춤 신호를 받으면 남은 것을 내보내고 끝난다.
async fn drain(
    mut rx: mpsc::Receiver<SpanData>,
    exporter: opentelemetry_otlp::SpanExporter,
    pending: Arc<AtomicU64>,
    stop: CancellationToken,
    max_batch: usize,
    delay: Duration,
) {
    let mut batch = Vec::with_capacity(max_batch);
    loop {
        let stopping = tokio::select! {
            biased;
            () = stop.cancelled() => true,
            n = rx.recv_many(&mut batch, max_batch) => {
                if n == 0 {
                    return;
                }
                // 첫 스팬이 온 뒤로 묶음이 찰 때까지, 길어야 `delay`만 더 모은다.
                let deadline = tokio::time::sleep(delay);
                tokio::pin!(deadline);
                while batch.len() < max_batch {
                    let room = max_batch - batch.len();
                    tokio::select! {
                        biased;
                        () = stop.cancelled() => break,
                        () = &mut deadline => break,
                        n = rx.recv_many(&mut batch, room) => if n == 0 { break },
                    }
                }
                false
            }
        };
        if stopping {
            // 새 스팬은 받지 않고, 줄에 있는 것을 모두 내보낸다 (부르는 쪽이 2초로 자른다).
            rx.close();
            while rx.recv_many(&mut batch, max_batch).await > 0 {
                send(&exporter, &mut batch, &pending).await;
            }
            send(&exporter, &mut batch, &pending).await;
            return;
        }
        send(&exporter, &mut batch, &pending).await;
    }
}

async fn send(exporter: &opentelemetry_otlp::SpanExporter, batch: &mut Vec<SpanData>, pending: &AtomicU64) {
    if batch.is_empty() {
        return;
    }
    let spans: Vec<SpanData> = std::mem::take(batch);
    let n = spans.len() as u64;
    let result = exporter.export(spans).await;
    pending.fetch_sub(n, Ordering::Relaxed);
    if let Err(e) = result {
        dropped(n);
        tracing::debug!(error = %e, spans = n, "trace export failed; spans dropped");
    }
}

// ---------------------------------------------------------------------------------------------
// 스팬
//
// 스팬은 OpenTelemetry API로 바로 만들고, 부모는 OpenTelemetry 문맥(`Context`)으로 넘긴다: 요청의 퓨처가 폴링될 때마다
// 그 문맥을 스레드에 건다(`FutureExt::with_context`). tracing 스팬을 거쳐 옮기면(tracing-opentelemetry) 스팬마다
// 레지스트리 항목·확장 맵·빌더 변환이 붙고, 폴링마다 레이어가 잠금을 잡고 시각을 읽는다: 선착순에서 요청당 CPU가
// 그만큼 늘었다 (BENCHMARKS 13회차).

/// 들어온 요청의 W3C `traceparent`를 읽고 응답에 싣는다 (전역 전파기를 두지 않는다: 이 형식 하나뿐이고, 상태가 없다).
fn propagator() -> TraceContextPropagator {
    TraceContextPropagator::new()
}

/// 켜져 있으면 스팬을 만드는 트레이서.
fn tracer() -> Option<&'static SdkTracer> {
    if !enabled() {
        return None;
    }
    TRACER.get()
}

/// 스팬 하나와 그 부모들의 문맥: 이 안에서 도는 퓨처가 만드는 스팬은 이 스팬의 자식이 된다. 꺼져 있으면 비어 있다.
#[derive(Clone, Default)]
pub struct Scope(Option<Context>);

impl Scope {
    fn start(parent: &Context, builder: SpanBuilder) -> Self {
        match tracer() {
            Some(tracer) => {
                let span = builder.start_with_context(tracer, parent);
                Scope(Some(parent.with_span(span)))
            }
            None => Scope(None),
        }
    }

    /// 이 스팬의 W3C 문맥 (링크와 `traceparent`에 쓴다).
    fn span_context(&self) -> Option<SpanContext> {
        let sc = self.0.as_ref()?.span().span_context().clone();
        sc.is_valid().then_some(sc)
    }
}

/// `fut`를 스팬 `scope` 안에서 돌리고, 끝나면 스팬을 닫는다 (퓨처가 도중에 버려지면 스팬도 그때 닫힌다).
/// async 블록이 아니라 바로 짓는 퓨처다: async 블록은 받은 퓨처와 기다리는 퓨처를 따로 담아 크기가 두 배가 되고,
/// 요청의 큰 퓨처는 옮길 때마다 그만큼 복사된다 (BENCHMARKS 13회차의 callgrind).
pub fn within<F: Future>(scope: Scope, fut: F) -> impl Future<Output = F::Output> {
    match scope.0 {
        None => Either::Left(fut),
        Some(cx) => Either::Right(fut.with_context(cx.clone()).map(move |out| {
            cx.span().end();
            out
        })),
    }
}

/// 떨어진 작업(`spawn`)이 지금 스팬 안에서 돌게 한다: 문맥은 부르는 자리에서 잡는다 (꺼져 있으면 그 퓨처 그대로).
pub fn in_current<F: Future>(fut: F) -> impl Future<Output = F::Output> {
    match enabled().then(Context::current) {
        None => Either::Left(fut),
        Some(cx) => Either::Right(fut.with_context(cx)),
    }
}

/// HTTP 요청 하나의 SERVER 스팬. 들어온 W3C `traceparent`를 잇는다.
/// 이름은 우선 `<METHOD> <route>`, GraphQL 연산이면 실행 뒤에 `<type> <operation name>`으로 바뀐다 (`name_operation`).
pub fn server_span(method: &axum::http::Method, route: &str, headers: &axum::http::HeaderMap) -> Scope {
    if !enabled() {
        return Scope(None);
    }
    // 유효한 `traceparent`가 없으면 빈 문맥: 새 트레이스의 뿌리가 된다.
    let parent = propagator().extract_with_context(&Context::new(), &HeaderExtractor(headers));
    let builder = SpanBuilder::from_name(format!("{method} {route}"))
        .with_kind(SpanKind::Server)
        .with_attributes([KeyValue::new("http.request.method", method.as_str().to_owned()), KeyValue::new("http.route", route.to_owned())]);
    Scope::start(&parent, builder)
}

/// `fut`(요청 처리)를 SERVER 스팬 안에서 돌리고, 상태 코드를 적고, 응답에 이 스팬의 `traceparent`를 싣는다.
/// 스팬을 닫는 것은 `within`: 응답을 적는 일은 그 안에서(스팬이 닫히기 전에, 스팬이 지금 문맥일 때) 한다.
pub fn serve<F>(scope: Scope, fut: F) -> impl Future<Output = axum::response::Response>
where
    F: Future<Output = axum::response::Response>,
{
    within(
        scope,
        fut.map(|mut resp| {
            Context::map_current(|cx| {
                cx.span().set_attribute(KeyValue::new("http.response.status_code", i64::from(resp.status().as_u16())));
                propagator().inject_context(cx, &mut HeaderInjector(resp.headers_mut()));
            });
            resp
        }),
    )
}

/// 지금 스팬(요청의 SERVER 스팬)의 이름을 GraphQL 연산으로: `mutation IssueCoupon`, 이름이 없으면 `query`.
pub fn name_operation(operation_type: &str, operation: Option<&str>) {
    // 연산을 고르기 전에 끝난 요청(파싱 실패, 신뢰 목록 밖)은 `<METHOD> <route>` 그대로.
    if !enabled() || operation_type == "unknown" {
        return;
    }
    let name = match operation {
        Some(op) => format!("{operation_type} {op}"),
        None => operation_type.to_owned(),
    };
    Context::map_current(|cx| cx.span().update_name(name));
}

/// 데이터베이스 트랜잭션 하나(`fut`)를 그 스팬 안에서 돌린다 (`transaction <operation>`, `db.system`).
/// 부모는 부르는 자리의 스팬이다 (부른 자리에서 바로 기다린다).
pub fn transaction<F: Future>(operation: &'static str, fut: F) -> impl Future<Output = F::Output> {
    if !enabled() {
        return within(Scope(None), fut);
    }
    let builder = SpanBuilder::from_name(format!("transaction {operation}")).with_kind(SpanKind::Client).with_attributes([
        KeyValue::new("db.system", DB_SYSTEM.get().copied().unwrap_or("other_sql")),
        KeyValue::new("db.operation.name", operation),
    ]);
    let scope = Context::map_current(|parent| Scope::start(parent, builder));
    within(scope, fut)
}

/// 배치가 부모로 삼을 문맥 (첫 요청의 스팬). 꺼져 있으면 비어 있다.
#[derive(Clone, Default)]
pub struct Parent(Option<Context>);

/// 기다리던 요청이 잇는 배치 스팬. 꺼져 있으면 비어 있다.
#[derive(Clone, Default)]
pub struct Link(Option<SpanContext>);

/// 합쳐진 발급 줄에 선 요청: 그 요청의 SERVER 스팬(지금 스팬)이 처리한 배치에 링크로 잇는다.
/// 기다림마다 스팬을 따로 만들지 않는다: 요청의 SERVER 스팬으로 충분하고, 요청마다 스팬 하나(내보내기까지)를 아낀다.
pub struct Waiting(Option<Context>);

impl Waiting {
    /// 꺼져 있으면 비어 있다.
    pub fn start() -> Self {
        Self(enabled().then(Context::current))
    }

    pub fn parent(&self) -> Parent {
        Parent(self.0.clone())
    }

    /// 이 요청을 처리한 배치에 잇는다.
    pub fn link(&self, batch: Link) {
        if let (Some(cx), Some(sc)) = (&self.0, batch.0) {
            cx.span().add_link(sc, Vec::new());
        }
    }
}

/// 발급 배치 하나의 스팬 (`issuance batch`): 첫 요청의 스팬 아래에 두고, 다른 요청들은 링크로 잇는다.
/// 배치의 트랜잭션 스팬이 그 아래에 생긴다 (`within`으로 돌린다). 돌려주는 `Link`는 기다리던 요청들에게 보낸다.
pub fn batch(parent: &Parent, size: usize) -> (Scope, Link) {
    if !enabled() {
        return (Scope(None), Link(None));
    }
    let builder = SpanBuilder::from_name("issuance batch").with_attributes([KeyValue::new("batch.size", size as i64)]);
    let scope = Scope::start(parent.0.as_ref().unwrap_or(&Context::new()), builder);
    let link = Link(scope.span_context());
    (scope, link)
}
