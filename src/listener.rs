//! 연결 수를 묶는 리스너: 동시에 붙잡는 연결은 `MAX_CONNECTIONS`개까지, 나머지는 커널의 대기열(backlog)에서
//! 기다린다. 연결마다 읽기·쓰기 버퍼를 쥐므로, 수천 명이 한 순간에 몰려도 프로세스 메모리가 연결 수에 비례해
//! 불어나지 않게 한다. 대기열에 선 연결은 TCP 핸드셰이크가 끝난 상태라 끊기지 않고 곧 받아들여진다.
//! 유지(keep-alive)된 연결이 자리를 붙잡고 대기열의 새 손님을 굶기지 않도록, 자리가 다 찼을 때는
//! 응답에 `Connection: close`를 붙이고, 응답을 다 쓴 뒤 1초 넘게 놀고 있는 연결을 닫는다
//! (자리가 남을 때는 60초까지 기다린다). 요청을 처리 중인 연결은 건드리지 않는다.
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use std::future::Future;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// 동시에 열어 두는 연결 수.
pub const MAX_CONNECTIONS: usize = 1024;
/// 커널 대기열 길이 (리눅스는 net.core.somaxconn으로 다시 자른다).
const BACKLOG: u32 = 4096;
/// 자리가 다 찼을 때, 응답을 마치고 노는 연결을 닫기까지의 시간 (검사 주기이기도 하다).
const IDLE_WHEN_FULL: Duration = Duration::from_secs(1);
/// 자리가 남을 때 노는 연결을 닫기까지의 시간.
const IDLE_MAX: Duration = Duration::from_secs(60);

pub struct BoundedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
    /// 받아들이는 쪽이 빈자리를 기다리는 중인지 = 자리가 다 찼다.
    full: Arc<AtomicBool>,
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
    Ok(BoundedListener { inner, permits: Arc::new(Semaphore::new(max_connections.max(1))), full: Arc::new(AtomicBool::new(false)) })
}

impl BoundedListener {
    /// 라우터에 "자리가 다 찼으면 응답 후 연결을 닫는다" 규칙을 붙인다.
    pub fn shed_when_full(&self, router: axum::Router) -> axum::Router {
        let full_flag = self.full.clone();
        router.layer(axum::middleware::map_response(move |mut resp: axum::response::Response| {
            let full = full_flag.load(Ordering::Relaxed);
            async move {
                if full {
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
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                self.full.store(true, Ordering::Relaxed);
                let p = loop {
                    if let Ok(p) = self.permits.clone().acquire_owned().await {
                        break p;
                    }
                };
                self.full.store(false, Ordering::Relaxed);
                p
            }
        };
        loop {
            match self.inner.accept().await {
                Ok((io, addr)) => {
                    let _ = io.set_nodelay(true);
                    let now = Instant::now();
                    let limited = Limited {
                        io,
                        full: self.full.clone(),
                        last_read: now,
                        last_write: now,
                        check: Box::pin(tokio::time::sleep(IDLE_WHEN_FULL)),
                        _permit: permit,
                    };
                    return (limited, addr);
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
    full: Arc<AtomicBool>,
    /// 마지막으로 요청 바이트를 읽은 때와 응답 바이트를 쓴 때: 쓴 것이 더 나중이면 처리 중인 요청이 없다.
    last_read: Instant,
    last_write: Instant,
    check: Pin<Box<Sleep>>,
    _permit: OwnedSemaphorePermit,
}

impl Limited {
    /// 응답을 다 쓰고 놀고 있는 연결을 닫을 때인지.
    fn should_close_idle(&self, now: Instant) -> bool {
        if self.last_write < self.last_read {
            return false; // 요청 처리 중
        }
        let idle = now.saturating_duration_since(self.last_write);
        idle >= IDLE_MAX || (idle >= IDLE_WHEN_FULL && self.full.load(Ordering::Relaxed))
    }
}

impl AsyncRead for Limited {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    this.last_read = Instant::now();
                }
                Poll::Ready(r)
            }
            Poll::Pending => loop {
                match this.check.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(()) => {
                        let now = Instant::now();
                        if this.should_close_idle(now) {
                            // 읽기 끝(EOF)으로 알리면 hyper가 연결을 닫는다.
                            return Poll::Ready(Ok(()));
                        }
                        this.check.as_mut().reset(now + IDLE_WHEN_FULL);
                    }
                }
            },
        }
    }
}

impl AsyncWrite for Limited {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.last_write = Instant::now();
        }
        r
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.last_write = Instant::now();
        }
        r
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
