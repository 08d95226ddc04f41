//! 실시간 재고 (CONTRACT 9절): 구독자 수천 명이 지켜보는 쿠폰의 선착순.
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::Args;
use crate::env::{Env, check_invariant, make_coupon, make_users, setup, token};
use crate::load::{issue_body, send};
use crate::report::{median, peak_rss_kb};

/// 발급 요청들을 보내고 마지막 성공 응답을 받은 시각을 돌려준다 (구독자 쪽 매진 도착과 비교하려고).
pub(crate) async fn sale_with_last_ok(env: &Env, users: usize, quantity: i32, concurrency: usize) -> Result<(f64, Instant, Uuid)> {
    let ids = make_users(&env.db, users).await?;
    let coupon = make_coupon(&env.db, Some(quantity)).await?;
    sale_on(env, &ids, coupon, concurrency).await.map(|(rps, last)| (rps, last, coupon))
}

pub(crate) async fn sale_on(env: &Env, ids: &[Uuid], coupon: Uuid, concurrency: usize) -> Result<(f64, Instant)> {
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(ids.len());
    for u in ids {
        let permit = sem.clone().acquire_owned().await?;
        let (client, url, tok, body) = (env.client.clone(), env.url.clone(), token(env, *u)?, issue_body(coupon));
        tasks.push(tokio::spawn(async move {
            let (_, code) = send(&client, &url, &tok, &body).await;
            drop(permit);
            (Instant::now(), code)
        }));
    }
    let mut last_ok = started;
    let mut ok = 0;
    for t in tasks {
        let (at, code) = t.await?;
        if code == "OK" {
            ok += 1;
            last_ok = last_ok.max(at);
        }
    }
    let rps = ids.len() as f64 / started.elapsed().as_secs_f64();
    check_invariant(&env.db, coupon, None).await?;
    if ok == 0 {
        bail!("no issuance succeeded");
    }
    Ok((rps, last_ok))
}

/// 웹소켓 연결 하나에 구독 `subs`개. 구독마다 첫 메시지와 매진 메시지를 받은 시각을 알린다.
pub(crate) async fn subscriber_connection(
    ws_url: String,
    coupon: Uuid,
    subs: usize,
    ready: tokio::sync::mpsc::Sender<()>,
    sold_out: tokio::sync::mpsc::Sender<Instant>,
) -> Result<()> {
    watch_until(ws_url, coupon, subs, ready, sold_out, |stock| stock["soldOut"] == true).await
}

/// 다음 연결의 차례 (보내는 주소를 고른다).
static NEXT_SOURCE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// 웹소켓 연결 하나에 구독 `subs`개. 구독마다 첫 메시지에 `ready`, `done`이 참인 첫 재고에 그 시각을 `seen`으로 알린다.
pub(crate) async fn watch_until(
    ws_url: String,
    coupon: Uuid,
    subs: usize,
    ready: tokio::sync::mpsc::Sender<()>,
    seen: tokio::sync::mpsc::Sender<Instant>,
    done_when: fn(&Value) -> bool,
) -> Result<()> {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = ws_url.into_client_request()?;
    req.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    // 서버는 주소 하나에 소켓 100개까지다 (CONTRACT 2절): 연결마다 다른 루프백 주소(127.0.x.y)에서 90개씩 나눠 연다.
    let host = req.uri().host().unwrap_or("127.0.0.1").to_owned();
    let port = req.uri().port_u16().unwrap_or(80);
    let server: std::net::SocketAddr = format!("{host}:{port}").parse()?;
    let n = NEXT_SOURCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed) / 90;
    let source = std::net::Ipv4Addr::new(127, 0, (n / 250 % 250) as u8, (1 + n % 250) as u8);
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(std::net::SocketAddr::new(source.into(), 0))?;
    let stream = socket.connect(server).await?;
    let (mut ws, _) = tokio_tungstenite::client_async(req, stream).await?;
    ws.send(Message::Text(json!({ "type": "connection_init", "payload": {} }).to_string().into())).await?;
    let query = "subscription($c: ID!) { couponStock(couponId: $c) { issuedQuantity soldOut releasedQuantity } }";
    let mut firsts = std::collections::HashSet::new();
    let mut done = std::collections::HashSet::new();
    while let Some(m) = ws.next().await {
        let Message::Text(text) = m? else { continue };
        let v: Value = serde_json::from_str(&text)?;
        match v["type"].as_str() {
            Some("connection_ack") => {
                for i in 0..subs {
                    let sub = json!({ "id": i.to_string(), "type": "subscribe", "payload": { "query": query, "variables": { "c": coupon.to_string() } } });
                    ws.send(Message::Text(sub.to_string().into())).await?;
                }
            }
            Some("ping") => ws.send(Message::Text(json!({ "type": "pong" }).to_string().into())).await?,
            Some("next") => {
                let id = v["id"].as_str().unwrap_or_default().to_owned();
                if firsts.insert(id.clone()) {
                    ready.send(()).await.ok();
                }
                if done_when(&v["payload"]["data"]["couponStock"]) && done.insert(id) {
                    seen.send(Instant::now()).await.ok();
                    if done.len() == subs {
                        return Ok(());
                    }
                }
            }
            _ => {}
        }
    }
    bail!("subscriber connection closed early")
}

/// 한 번: 구독자 없이 판매 → 구독자 `subscribers`명이 지켜보는 쿠폰의 판매 → 다시 구독자 없이.
/// (구독 있는 판매 req/s, 없는 판매 두 번의 평균 req/s, 마지막 발급 → 마지막 구독자의 매진 ms, 서버 최대 RSS MB)
pub(crate) async fn live_round(args: &Args, subscribers: usize, users: usize, quantity: i32, concurrency: usize) -> Result<[f64; 4]> {
    let env = setup(args).await?;
    let (before, _, _) = sale_with_last_ok(&env, users, quantity, concurrency).await?;
    let ids = make_users(&env.db, users).await?;
    let coupon = make_coupon(&env.db, Some(quantity)).await?;
    let ws_url = env.url.replace("http://", "ws://") + "/ws";
    let per_conn = 20;
    let conns = subscribers.div_ceil(per_conn);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(subscribers.max(1));
    let (sold_tx, mut sold_rx) = tokio::sync::mpsc::channel(subscribers.max(1));
    let mut tasks = Vec::with_capacity(conns);
    for c in 0..conns {
        let subs = per_conn.min(subscribers - c * per_conn);
        tasks.push(tokio::spawn(subscriber_connection(ws_url.clone(), coupon, subs, ready_tx.clone(), sold_tx.clone())));
    }
    drop((ready_tx, sold_tx));
    let opened = Instant::now();
    for _ in 0..subscribers {
        tokio::time::timeout(Duration::from_secs(60), ready_rx.recv()).await?.ok_or_else(|| anyhow!("a subscriber failed to start"))?;
    }
    eprintln!("# {subscribers} subscriptions on {conns} connections ready in {:.1} s", opened.elapsed().as_secs_f64());
    let (with, last_ok) = sale_on(&env, &ids, coupon, concurrency).await?;
    let mut last_seen = last_ok;
    for _ in 0..subscribers {
        let at =
            tokio::time::timeout(Duration::from_secs(30), sold_rx.recv()).await?.ok_or_else(|| anyhow!("a subscriber missed sold out"))?;
        last_seen = last_seen.max(at);
    }
    for t in tasks {
        t.await??;
    }
    let rss = peak_rss_kb(&env.server).map_or(f64::NAN, |k| k as f64 / 1024.0);
    let (after, _, _) = sale_with_last_ok(&env, users, quantity, concurrency).await?;
    let lag_ms = last_seen.duration_since(last_ok).as_secs_f64() * 1000.0;
    println!(
        "# without {before:.0} req/s, with {subscribers} subscribers {with:.0} req/s, without again {after:.0} req/s; last issuance → last sold-out message {lag_ms:.0} ms; server peak RSS {rss:.1} MB"
    );
    Ok([with, (before + after) / 2.0, lag_ms, rss])
}

pub(crate) async fn live(args: &Args, subscribers: usize, users: usize, quantity: i32, concurrency: usize, runs: usize) -> Result<()> {
    let mut rounds = Vec::new();
    for _ in 0..runs.max(1) {
        rounds.push(live_round(args, subscribers, users, quantity, concurrency).await?);
    }
    let m = |k: usize| median(rounds.iter().map(|r| r[k]).collect());
    println!("| figure (median of {}) | value |", rounds.len());
    println!("|---|---|");
    println!("| flash sale {users}/{quantity} at {concurrency} without subscribers | {:.0} req/s |", m(1));
    println!("| the same with {subscribers} subscribers on the coupon | {:.0} req/s ({:.0}% kept) |", m(0), m(0) / m(1) * 100.0);
    println!("| last issuance → last subscriber's sold-out message | {:.0} ms |", m(2));
    println!("| server peak RSS | {:.1} MB |", m(3));
    println!("{}", json!({ "scenario": "live", "runs": rounds.len(), "rounds": rounds }));
    Ok(())
}
