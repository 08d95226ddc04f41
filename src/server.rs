//! HTTP 서버: hyper-util의 연결 빌더로 라우터를 돌린다 (axum의 serve-with-hyper 예제와 같은 짜임).
//!
//! - 헤더는 10초 안에 다 와야 한다 (hyper의 `header_read_timeout`). 이 타이머는 연결이 다음 요청을 기다리는 동안에도
//!   돌므로, 노는 keep-alive 연결도 10초면 닫힌다 (계약의 60초보다 이르다).
//! - 본문은 헤더 뒤 10초 안에, 전체로 (`http::graphql::read_body`: 한 바이트씩 흘려도 10초에 끊는다).
//! - 동시에 붙잡는 연결은 디스크립터 한도가 허락하는 만큼(`connection_capacity`), 나머지는 커널 대기열에서 기다린다.
//!   느린 연결 수천 개와 노는 웹소켓 만 개가 와도 자리가 남도록 넉넉히 두고, 3/4 이상 차면 응답마다
//!   `Connection: close`를 붙여 자리를 돌린다.
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, header};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Semaphore;

/// 동시에 열어 두는 연결 수의 상한 (디스크립터 한도가 더 낮으면 그쪽, `connection_capacity`).
pub const MAX_CONNECTIONS: usize = 60_000;
/// 연결 말고 프로세스가 쓰는 디스크립터 몫 (풀, 리스너, 파일, NATS).
const RESERVED_FDS: u64 = 512;
/// 요청 헤더를 다 받는 한도 (계약: 10초).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// 종료 신호 뒤 진행 중인 요청을 기다리는 한도 (풀 닫기까지 10초 안).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(7);
/// 커널 대기열 길이 (리눅스는 net.core.somaxconn으로 다시 자른다).
const BACKLOG: u32 = 4096;

/// 이 프로세스가 붙잡을 수 있는 연결 수: 디스크립터 한도(소프트)를 하드 한도까지 올리고, 예비 몫을 뺀다.
/// 연결이 디스크립터를 다 쓰면 accept도 데이터베이스 연결도 실패하므로, 그 전에 accept를 멈춘다.
pub fn connection_capacity() -> usize {
    let soft = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let usable = soft.saturating_sub(RESERVED_FDS).max(64);
    usize::try_from(usable).unwrap_or(MAX_CONNECTIONS).min(MAX_CONNECTIONS)
}

/// 주소에 묶는다. 대기열을 길게 잡아 순간적인 폭주도 거절하지 않는다.
pub async fn bind(addr: &str) -> io::Result<TcpListener> {
    let addr: SocketAddr = tokio::net::lookup_host(addr)
        .await?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "address resolves to nothing"))?;
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// 자리가 3/4 이상 찼으면 응답 뒤 연결을 닫게 한다: 노는 keep-alive 연결이 대기열의 새 손님을 굶기지 않는다.
pub fn shed_when_crowded(router: Router, open: Arc<AtomicUsize>, max: usize) -> Router {
    router.layer(axum::middleware::map_response(move |mut resp: axum::response::Response| {
        let crowded = open.load(Ordering::Relaxed) * 4 >= max * 3;
        async move {
            if crowded {
                resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            resp
        }
    }))
}

/// `shutdown`이 끝날 때까지 받는다. 그 뒤로는 새 연결을 받지 않고, 진행 중인 요청을 `DRAIN_TIMEOUT`까지 마친다.
pub async fn serve(listener: TcpListener, router: Router, open: Arc<AtomicUsize>, max: usize, shutdown: impl Future<Output = ()>) {
    let permits = Arc::new(Semaphore::new(max.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // half_close: 요청을 다 보내고 바로 끊은 클라이언트(EOF)에도 연결을 곧바로 닫지 않는다. 닫으면 hyper가 핸들러를
    // 한 번도 돌리지 않고 버려서, 그런 클라이언트의 키 있는 변경이 실행되지 않았다 (CONTRACT 7절: 끊겨도 끝까지).
    builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT).keep_alive(true).half_close(true);
    let builder = builder.http1_only();
    tokio::pin!(shutdown);
    loop {
        // 자리가 날 때까지 accept하지 않는다. 세마포어는 닫지 않으므로 실패하지 않는다.
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(accepted) => accepted,
                // 파일 디스크립터 부족 등: 잠시 쉬고 다시.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        open.fetch_add(1, Ordering::Relaxed);
        // 상대 주소를 요청마다 확장으로 (axum의 `ConnectInfo`): 주소별 한도가 쓴다.
        let service = tower::Layer::layer(&axum::Extension(ConnectInfo(peer)), router.clone());
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service));
        let conn = graceful.watch(conn.into_owned());
        let open = open.clone();
        tokio::spawn(async move {
            // 느린 헤더, 끊긴 연결 등은 연결 하나의 일이다: 로그만 남기지 않는다(공격이면 로그가 넘친다).
            let _ = conn.await;
            open.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!("shutting down: finishing in-flight requests");
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("in-flight requests did not finish in time; closing anyway");
    }
}
