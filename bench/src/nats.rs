//! 벤치만의 nats-server (`-js`, 자기 포트와 저장 디렉터리): 기계에 도는 NATS를 건드리지 않으려고. 드롭되면 죽이고 디렉터리를 지운다.
//! 그 위에서 `couponql.events.>`를 구독해 이벤트마다 중계 지연(받은 시각 − `occurredAt`)을 잰다.
use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;
use hdrhistogram::Histogram;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::load::new_hist;

/// Debian의 nats-server 패키지 (.ci/run이 설치한다).
pub(crate) const NATS_BIN: &str = "/usr/sbin/nats-server";

pub(crate) struct Nats {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Nats {
    /// 빈 포트에 `nats-server -js`를 띄우고 포트가 열릴 때까지(최대 10초) 기다린다.
    pub(crate) async fn start() -> Result<Nats> {
        let port = testkit::free_port()?;
        let dir = std::env::temp_dir().join(format!("couponql-bench-nats-{}", uuid::Uuid::new_v4().simple()));
        let child = Command::new(NATS_BIN)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {NATS_BIN} (Debian package nats-server)"))?;
        // 여기서부터 지킴이가 쥔다: 아래에서 실패해도 드롭이 죽인다.
        let nats = Nats { child, port, dir };
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if started.elapsed() > Duration::from_secs(10) {
                bail!("nats-server did not listen on {port} within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(nats)
    }

    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// 받은 이벤트들의 중계 지연.
pub(crate) struct Lag {
    /// 받은 시각 − `occurredAt` (µs)
    pub(crate) hist: Histogram<u64>,
    /// 서로 다른 이벤트 id 수
    pub(crate) received: u64,
    /// 같은 id를 또 받은 수 (중계는 적어도 한 번이므로 있을 수 있다)
    pub(crate) duplicates: u64,
}

/// `couponql.events.>`의 코어 구독 (스트림을 만들거나 바꾸지 않는다: 서버의 중계자가 만든 그대로 둔다).
/// 서버를 띄우기 전에 열어야 처음 이벤트부터 받는다.
pub(crate) struct Listener {
    received: Arc<AtomicU64>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<Lag>>,
}

impl Listener {
    pub(crate) async fn start(url: &str) -> Result<Listener> {
        // 기본 용량(65,536)을 넘게 밀리면 클라이언트가 메시지를 버린다: 하루치 이벤트가 다 들어갈 만큼.
        let client = async_nats::ConnectOptions::new().subscription_capacity(1 << 20).connect(url).await?;
        let sub = client.subscribe(format!("{}.>", couponql::service::relay::SUBJECT_PREFIX)).await?;
        // 구독이 서버에 등록된 뒤에 돌아간다.
        client.flush().await?;
        let received = Arc::new(AtomicU64::new(0));
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(listen(client, sub, received.clone(), stopped));
        Ok(Listener { received, stop, task })
    }

    /// 지금까지 받은 서로 다른 이벤트 수.
    pub(crate) fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    pub(crate) async fn finish(self) -> Result<Lag> {
        let _ = self.stop.send(());
        self.task.await?
    }
}

async fn listen(
    _client: async_nats::Client,
    mut sub: async_nats::Subscriber,
    received: Arc<AtomicU64>,
    mut stop: oneshot::Receiver<()>,
) -> Result<Lag> {
    let mut hist = new_hist()?;
    let mut seen = HashSet::new();
    let mut duplicates = 0;
    loop {
        let msg = tokio::select! {
            _ = &mut stop => break,
            m = sub.next() => match m {
                Some(m) => m,
                None => break,
            },
        };
        let at = chrono::Utc::now();
        let v: Value = serde_json::from_slice(&msg.payload).context("an event that is not JSON")?;
        let id = v["id"].as_str().ok_or_else(|| anyhow!("an event without id: {v}"))?.to_owned();
        if !seen.insert(id) {
            duplicates += 1;
            continue;
        }
        let occurred = v["occurredAt"].as_str().ok_or_else(|| anyhow!("an event without occurredAt: {v}"))?;
        let occurred = chrono::DateTime::parse_from_rfc3339(occurred).with_context(|| format!("occurredAt {occurred:?}"))?;
        let lag_us = (at - occurred.to_utc()).num_microseconds().unwrap_or(i64::MAX);
        hist.saturating_record(u64::try_from(lag_us).unwrap_or(0).max(1));
        received.fetch_add(1, Ordering::Relaxed);
    }
    Ok(Lag { hist, received: seen.len() as u64, duplicates })
}
