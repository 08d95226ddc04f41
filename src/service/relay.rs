//! 원장 → NATS JetStream 중계 (CONTRACT 9절). 트랜잭션 아웃박스: 이벤트는 변경과 같은 트랜잭션으로 원장에 이미 있고,
//! 커밋 뒤에 도장(service::ledger)이 sequence를 매기면, 중계자 하나가 그것을 sequence 순서로 `COUPONQL_EVENTS`에 보내
//! 확인(ack)을 받은 만큼 커서를 데이터베이스에 적는다.
//!
//! - 적어도 한 번: 커서는 확인을 받은 뒤에만 나아간다. 죽었다 살아난 중계자는 커서 다음부터 다시 보낸다.
//! - 정확히 한 번(스트림 안에서): `Nats-Msg-Id` = 이벤트 id라서 다시 보낸 것은 JetStream의 중복 창이 버린다.
//! - 순서: 한 연결로 sequence 순서대로 보내고 확인도 순서대로 기다린다. 여러 프로세스 중 한 곳만 보내도록
//!   `relay_state`의 중계 행(id = 1) 임대(10초, 도는 동안 계속 늘린다)를 잡은 프로세스만 보낸다. 그 프로세스가 죽으면 임대가
//!   만료되고 다른 프로세스가 이어받는다.
//! - NATS가 멈춰도 변경은 영향을 받지 않는다: 중계는 변경과 떨어진 작업이고, 이벤트는 데이터베이스에서 기다린다.
use std::time::Duration;

use async_nats::jetstream;
use sea_orm::DatabaseConnection;
use serde_json::json;
use tokio::sync::watch;
use uuid::Uuid;

use crate::domain::{self, Stamped};
use crate::repo::{self, ledger::Worker};

pub const STREAM: &str = "COUPONQL_EVENTS";
pub const SUBJECT_PREFIX: &str = "couponql.events";
/// 임대 기간: 중계자가 죽으면 길어야 이만큼 뒤에 다른 프로세스가 이어받는다.
const LEASE: chrono::Duration = chrono::Duration::seconds(10);
/// 한 번에 읽어 보내는 이벤트 수.
const BATCH: u64 = 500;
/// 보낼 것이 없을 때 다시 보는 간격.
const IDLE: Duration = Duration::from_millis(100);
/// NATS나 데이터베이스가 실패했을 때 다시 해 보는 간격.
const RETRY: Duration = Duration::from_secs(1);

/// 이벤트 하나의 JSON (GraphQL `CouponEvent`와 같은 모양).
pub fn event_json(s: &Stamped) -> serde_json::Value {
    let e = &s.event;
    json!({
        "id": e.id.to_string(),
        "sequence": s.sequence.to_string(),
        "type": e.kind,
        "couponId": e.coupon_id.to_string(),
        "userId": e.user_id.map(|u| u.to_string()),
        "userCouponId": e.user_coupon_id.map(|u| u.to_string()),
        "orderId": e.order_id,
        "occurredAt": e.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    })
}

/// `stop`이 참이 될 때까지 중계한다. 끝날 때 임대를 놓아 다른 프로세스가 곧바로 이어받게 한다.
pub async fn run(db: DatabaseConnection, url: String, mut stop: watch::Receiver<bool>) {
    let me = Uuid::new_v4().to_string();
    let mut js: Option<jetstream::Context> = None;
    tracing::info!(relay = %me, "event relay to NATS JetStream started");
    while !*stop.borrow() {
        let pause = match step(&db, &url, &me, &mut js).await {
            Ok(true) => Duration::ZERO,
            Ok(false) => IDLE,
            Err(e) => {
                tracing::warn!(error = %e, "event relay: will retry");
                // 연결을 새로 맺는다 (스트림 확인도 다시).
                js = None;
                RETRY
            }
        };
        if !super::ledger::nap(pause, &mut stop).await {
            break;
        }
    }
    if let Err(e) = repo::ledger::release_lease(&db, Worker::Relay, &me).await {
        tracing::warn!(error = ?e, "event relay: could not release the lease");
    }
}

/// 한 차례: 임대 → 커서 다음 이벤트들 → 순서대로 보내고 확인 → 커서. 더 보낼 것이 남았으면 true.
async fn step(db: &DatabaseConnection, url: &str, me: &str, js: &mut Option<jetstream::Context>) -> anyhow::Result<bool> {
    let lease = repo::ledger::lease(db, Worker::Relay, me, domain::now(), LEASE).await.map_err(|e| anyhow::anyhow!("lease: {e:?}"))?;
    let Some(last) = lease else { return Ok(false) };
    let events = repo::ledger::after(db, last, BATCH).await.map_err(|e| anyhow::anyhow!("read events: {e:?}"))?;
    if events.is_empty() {
        return Ok(false);
    }
    let ctx = match js {
        Some(c) => c.clone(),
        None => {
            let client = async_nats::connect(url).await?;
            let c = jetstream::new(client);
            c.get_or_create_stream(jetstream::stream::Config {
                name: STREAM.to_owned(),
                subjects: vec![format!("{SUBJECT_PREFIX}.>")],
                ..Default::default()
            })
            .await?;
            *js = Some(c.clone());
            c
        }
    };
    // 한 연결로 보낸 순서가 스트림에 들어가는 순서다. 확인은 보낸 순서대로 기다리고, 실패하면 거기까지만 적는다.
    let mut acks = Vec::with_capacity(events.len());
    for e in &events {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, e.event.id.to_string().as_str());
        let payload = serde_json::to_vec(&event_json(e))?;
        let ack = ctx.publish_with_headers(format!("{SUBJECT_PREFIX}.{}", e.event.kind), headers, payload.into()).await?;
        acks.push((e.sequence, ack));
    }
    let mut done = last;
    let mut failure = None;
    for (sequence, ack) in acks {
        match ack.await {
            Ok(_) => done = sequence,
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    if done > last && !repo::ledger::advance(db, Worker::Relay, me, done).await.map_err(|e| anyhow::anyhow!("advance: {e:?}"))? {
        return Ok(false);
    }
    crate::metrics::relayed((done - last) as u64);
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(events.len() as u64 == BATCH),
    }
}
