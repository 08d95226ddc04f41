//! 연결 수를 묶는 리스너: 동시에 붙잡는 연결은 `MAX_CONNECTIONS`개까지, 나머지는 커널의 대기열(backlog)에서
//! 기다린다. 연결마다 읽기·쓰기 버퍼를 쥐므로, 수천 명이 한 순간에 몰려도 프로세스 메모리가 연결 수에 비례해
//! 불어나지 않게 한다. 대기열에 선 연결은 TCP 핸드셰이크가 끝난 상태라 끊기지 않고 곧 받아들여진다.
//!
//! 유지(keep-alive)된 연결이 자리를 다 붙잡아 대기열의 새 손님을 굶기지 않도록, 자리의 3/4 이상이 차 있을 때는
//! 응답에 `Connection: close`를 붙인다. 그러면 놀고 있는 keep-alive 연결은 많아야 3/4까지만 쌓이고, 나머지
//! 자리는 응답 하나마다 비워져 돌아간다. 진행 중인 요청을 끊는 일은 없다 (응답을 다 보낸 뒤에 닫는다).
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// 동시에 열어 두는 연결 수.
pub const MAX_CONNECTIONS: usize = 1024;
/// 커널 대기열 길이 (리눅스는 net.core.somaxconn으로 다시 자른다).
const BACKLOG: u32 = 4096;

pub struct BoundedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
    slots: Arc<Slots>,
}

/// 열린 연결 수와 한도.
struct Slots {
    in_use: AtomicUsize,
    max: usize,
}

impl Slots {
    /// 자리의 3/4 이상이 찼는지: 이때부터는 응답마다 연결을 닫아 자리를 돌린다.
    fn crowded(&self) -> bool {
        self.in_use.load(Ordering::Relaxed) * 4 >= self.max * 3
    }
}

/// 주소에 묶는다. 대기열을 길게 잡아 순간적인 폭주도 거절하지 않는다.
pub async fn bind(addr: &str) -> io::Result<BoundedListener> {
    bind_with_limit(addr, MAX_CONNECTIONS).await
}

/// 연결 수 한도를 지정해 묶는다 (시험용으로 작게).
pub async fn bind_with_limit(addr: &str, max_connections: usize) -> io::Result<BoundedListener> {
    let addr: SocketAddr = tokio::net::lookup_host(addr)
        .await?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "address resolves to nothing"))?;
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let inner = socket.listen(BACKLOG)?;
    let max = max_connections.max(1);
    Ok(BoundedListener { inner, permits: Arc::new(Semaphore::new(max)), slots: Arc::new(Slots { in_use: AtomicUsize::new(0), max }) })
}

impl BoundedListener {
    /// 라우터에 "자리가 3/4 이상 찼으면 응답 후 연결을 닫는다" 규칙을 붙인다.
    pub fn shed_when_full(&self, router: axum::Router) -> axum::Router {
        let slots = self.slots.clone();
        router.layer(axum::middleware::map_response(move |mut resp: axum::response::Response| {
            let crowded = slots.crowded();
            async move {
                if crowded {
                    resp.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
                }
                resp
            }
        }))
    }
}

impl axum::serve::Listener for BoundedListener {
    type Io = Limited;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // 자리가 날 때까지 accept하지 않는다. 세마포어는 닫지 않으므로 실패하지 않는다.
        let permit = loop {
            if let Ok(p) = self.permits.clone().acquire_owned().await {
                break p;
            }
        };
        loop {
            match self.inner.accept().await {
                Ok((io, addr)) => {
                    let _ = io.set_nodelay(true);
                    self.slots.in_use.fetch_add(1, Ordering::Relaxed);
                    return (Limited { io, slots: self.slots.clone(), _permit: permit }, addr);
                }
                // 파일 디스크립터 부족 등: 잠시 쉬고 다시 (axum 기본 리스너와 같은 처리).
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// 연결과 그 자리(허가). 연결이 닫히면 자리가 돌아간다.
pub struct Limited {
    io: TcpStream,
    slots: Arc<Slots>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Limited {
    fn drop(&mut self) {
        self.slots.in_use.fetch_sub(1, Ordering::Relaxed);
    }
}

impl AsyncRead for Limited {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Limited {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
