//! 원장의 도장 (CONTRACT 9절 "Order without a global lock"): 변경은 이벤트를 자리(`sequence`) 없이 넣고, 이 일꾼이
//! 커밋된 이벤트에 커밋 뒤 자리를 매긴다. 그래서 변경들은 서로 다른 쿠폰·발급 내역이면 어떤 행도 함께 쓰지 않는다.
//!
//! - 한 곳만 매긴다: `relay_state`의 도장 행(id = 2)의 임대를 쥔 프로세스 하나. 매기는 트랜잭션은 그 행을 먼저 써서
//!   잠그고(임대 확인을 겸한다), 마지막으로 매긴 번호를 같은 트랜잭션에서 적는다. 임대가 겹쳐도 두 일꾼의 도장은
//!   그 행에서 한 줄로 서고(Galera에서는 인증에서 하나가 버려진다), 이미 보인 번호보다 작은 번호는 나오지 않는다.
//! - 순서: 서로 기다린 변경의 이벤트는 pos도 커밋 순서이고 앞의 것이 먼저 보이므로(`repo::ledger` 참고), pos 순서로
//!   매기면 한 쿠폰의 변경, 한 발급 내역의 변경은 커밋 순서대로 번호를 받는다. 서로 무관한 이벤트는 어느 쪽이 먼저여도 된다.
//! - 번호: 묶음의 sequence = pos + (마지막 번호 + 1 − 묶음의 가장 작은 pos). 한 문장으로 매기고, 번호는 언제나 이미
//!   매긴 것보다 크다 (빈 자리는 있을 수 있다: 되돌린 트랜잭션의 pos).
//! - 늦음: 할 일이 없으면 `IDLE`마다 잠그지 않는 읽기 한 번. 커밋에서 번호까지 보통 `IDLE` 안쪽이다 (계약: 1초).
use std::time::Duration;

use sea_orm::{DatabaseConnection, TransactionTrait};
use tokio::sync::watch;
use uuid::Uuid;

use crate::domain;
use crate::error::{AppError, AppResult};
use crate::repo::{self, ledger::Worker};

/// 임대 기간: 도장 찍던 프로세스가 죽으면 길어야 이만큼 뒤에 다른 프로세스가 이어받는다.
const LEASE: chrono::Duration = chrono::Duration::seconds(3);
/// 한 트랜잭션에서 매기는 이벤트 수.
const BATCH: u64 = 1000;
/// 매길 것이 없을 때 다시 보는 간격.
const IDLE: Duration = Duration::from_millis(50);
/// 데이터베이스가 실패했을 때 다시 해 보는 간격.
const RETRY: Duration = Duration::from_millis(500);

/// 한 차례: 매길 것이 있으면 임대를 잡고 한 묶음을 매긴다. 매긴 수 (임대를 다른 프로세스가 쥐고 있으면 None).
pub async fn stamp_once(db: &DatabaseConnection, me: &str) -> AppResult<Option<usize>> {
    // 할 일이 없으면 아무것도 쓰지 않는다 (잠그지 않는 읽기 한 번).
    if repo::ledger::pending(db, 1).await?.is_empty() {
        return Ok(Some(0));
    }
    let txn = db.begin().await.map_err(repo::db_error)?;
    let Some(last) = repo::ledger::lease(&txn, Worker::Stamper, me, domain::now(), LEASE).await? else {
        txn.rollback().await.map_err(repo::db_error)?;
        return Ok(None);
    };
    // 임대 행을 잠근 뒤에 읽으므로, 앞선 일꾼이 커밋한 도장은 모두 보인다.
    let positions = repo::ledger::pending(&txn, BATCH).await?;
    let (Some(&first), Some(&newest)) = (positions.first(), positions.last()) else {
        txn.commit().await.map_err(repo::db_error)?;
        return Ok(Some(0));
    };
    let offset = last + 1 - first;
    let stamped = repo::ledger::stamp(&txn, &positions, offset).await?;
    // 다른 일꾼이 그 사이 일부를 매겼다 (임대가 겹침): 이 묶음은 버린다. 다음 차례가 남은 것을 매긴다.
    if stamped != positions.len() as u64 || !repo::ledger::advance(&txn, Worker::Stamper, me, newest + offset).await? {
        txn.rollback().await.map_err(repo::db_error)?;
        return Err(AppError::Aborted);
    }
    txn.commit().await.map_err(repo::db_error)?;
    crate::metrics::stamped(positions.len() as u64);
    Ok(Some(positions.len()))
}

/// 지금까지 커밋된 이벤트를 모두 매긴다 (시드와 테스트: 서버가 돌지 않을 때). 다른 프로세스가 임대를 쥐고 있으면
/// 그 프로세스가 매길 때까지 기다린다 (길어야 임대 기간).
pub async fn stamp_all(db: &DatabaseConnection) -> AppResult<()> {
    let me = Uuid::new_v4().to_string();
    let deadline = tokio::time::Instant::now() + LEASE.to_std().unwrap_or(Duration::from_secs(3)) * 2;
    let result = loop {
        match stamp_once(db, &me).await {
            Ok(Some(0)) => break Ok(()),
            Ok(Some(_)) => {}
            Ok(None) | Err(AppError::Aborted) if tokio::time::Instant::now() < deadline => tokio::time::sleep(IDLE).await,
            Ok(None) | Err(AppError::Aborted) => break Err(AppError::TryAgain),
            Err(e) => break Err(e),
        }
    };
    repo::ledger::release_lease(db, Worker::Stamper, &me).await?;
    result
}

/// `stop`이 참이 될 때까지 매긴다. 끝날 때 임대를 놓아 다른 프로세스가 곧바로 이어받게 한다.
pub async fn run(db: DatabaseConnection, mut stop: watch::Receiver<bool>) {
    let me = Uuid::new_v4().to_string();
    while !*stop.borrow() {
        let pause = match stamp_once(&db, &me).await {
            Ok(Some(n)) if n as u64 == BATCH => Duration::ZERO,
            Ok(_) => IDLE,
            Err(AppError::Aborted) => Duration::ZERO,
            Err(e) => {
                tracing::warn!(error = ?e, "event stamper: will retry");
                RETRY
            }
        };
        if !nap(pause, &mut stop).await {
            break;
        }
    }
    if let Err(e) = repo::ledger::release_lease(&db, Worker::Stamper, &me).await {
        tracing::warn!(error = ?e, "event stamper: could not release the lease");
    }
}

/// 원장 뒤의 일꾼(도장, NATS 중계)이 쉬는 자리: `pause`만큼 자거나 종료 신호에 깬다. 신호를 보내는 쪽이 사라졌으면 false.
pub(crate) async fn nap(pause: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(pause) => true,
        changed = stop.changed() => changed.is_ok(),
    }
}
