//! 대상 고객 바꾸기 (CONTRACT 11절 "Audiences"), 관리자만. 쿠폰 행을 잠그고 바꾼다: 같은 쿠폰의 발급은 잠금 아래에서
//! 회원을 다시 보므로 뺀 뒤에는 발급되지 않고, COUPON_AUDIENCE_CHANGED가 그 쿠폰의 커밋 순서에 선다 (9절).
use std::collections::HashSet;

use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};
use sea_orm::{DatabaseConnection, DatabaseTransaction};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::domain::audience::{self, AudienceChange, BadLine, CsvIds};
use crate::domain::{self, EventType, NewEvent, Viewer};
use crate::error::{AppError, AppResult};
use crate::repo;
use crate::service::retry::{changed_since_read, retrying};

#[derive(Clone, Copy)]
enum Kind {
    Add,
    Remove,
}

/// `addAudienceMembers`: 있는 사용자 가운데 아직 회원이 아닌 사람을 넣는다. 없는 사용자는 세기만 한다.
pub async fn add_members(db: &DatabaseConnection, viewer: Option<&Viewer>, coupon_id: Uuid, raw: &[String]) -> AppResult<AudienceChange> {
    Viewer::require_admin(viewer)?;
    let ids = audience::parse_ids(raw)?;
    retrying("audience", || change(db, coupon_id, &ids, Kind::Add)).await
}

/// `removeAudienceMembers`: 회원을 뺀다. 이미 발급된 쿠폰은 그대로다.
pub async fn remove_members(
    db: &DatabaseConnection,
    viewer: Option<&Viewer>,
    coupon_id: Uuid,
    raw: &[String],
) -> AppResult<AudienceChange> {
    Viewer::require_admin(viewer)?;
    let ids = audience::parse_ids(raw)?;
    retrying("audience", || change(db, coupon_id, &ids, Kind::Remove)).await
}

/// `Coupon.audienceSize` (관리자만).
pub async fn size(db: &DatabaseConnection, viewer: Option<&Viewer>, coupon_id: Uuid) -> AppResult<u64> {
    Viewer::require_admin(viewer)?;
    repo::audience::size(db, coupon_id).await
}

async fn change(db: &DatabaseConnection, coupon_id: Uuid, ids: &[Uuid], kind: Kind) -> AppResult<AudienceChange> {
    let (txn, coupon) = super::coupons::lock(db, coupon_id).await?;
    coupon.check_changeable()?;
    let known = repo::user::existing(&txn, ids).await?;
    let (known, unknown): (Vec<Uuid>, Vec<Uuid>) = ids.iter().partition(|u| known.contains(u));
    let now = domain::now();
    let mut result = AudienceChange { coupon_id, ..AudienceChange::default() };
    match kind {
        Kind::Add => result.added = repo::audience::add_known(&txn, coupon_id, &known, now).await?,
        Kind::Remove => result.removed = repo::audience::remove(&txn, coupon_id, &known).await?,
    }
    if result.changed() {
        // 클러스터에서 이 변경을 낡게 읽은 발급이 버전 검사에서 걸리도록 (한 서버에서는 잠금이 이미 줄 세운다).
        if !repo::coupon::bump_version(&txn, &coupon).await? {
            return Err(changed_since_read(&coupon));
        }
        repo::ledger::append(&txn, &[NewEvent::for_coupon(EventType::CouponAudienceChanged, coupon_id, now)]).await?;
    }
    result.audience_size = repo::audience::size(&txn, coupon_id).await?;
    txn.commit().await.map_err(repo::db_error)?;
    Ok(result.with_unknown(unknown))
}

/// CSV 가져오기가 끝나지 못한 까닭. 어느 경우든 트랜잭션은 커밋되지 않았다 (아무것도 넣지 않았다).
#[derive(Debug)]
pub enum ImportError<E> {
    /// 권한, 없는 쿠폰, 보관된 쿠폰, 데이터베이스.
    App(AppError),
    /// UUID가 아닌 줄.
    BadLine(BadLine),
    /// 본문을 읽다가 (크기, 빠르기, 끊김): 읽는 쪽(HTTP)의 오류를 그대로 돌려준다.
    Body(E),
    /// 서버가 멈추는 중이다.
    Stopped,
}

impl<E> From<AppError> for ImportError<E> {
    fn from(e: AppError) -> Self {
        ImportError::App(e)
    }
}

/// `POST /admin/coupons/{id}/audience.csv` (CONTRACT 11절): 본문을 흘려 받으며 `IN_LIST`개씩 넣는다, 트랜잭션 하나로.
/// 쿠폰 행을 처음부터 잠가서 `addAudienceMembers`와 같은 순서에 서고, 본문 전체를 모으지 않으므로 메모리는 조각 몇 개뿐이다.
/// 같은 파일을 두 번 가져와도 이미 회원인 사람은 넣지 않는다. `stop`이 켜지면 (서버 종료) 커밋하지 않고 버린다:
/// 트랜잭션을 떨어뜨리면 되돌려진다. 본문은 다시 읽을 수 없으므로 버려진 트랜잭션을 다시 돌리지 않는다 (TRY_AGAIN).
pub async fn import<S, B, E>(
    db: &DatabaseConnection,
    viewer: Option<&Viewer>,
    coupon_id: Uuid,
    body: S,
    stop: &CancellationToken,
) -> Result<AudienceChange, ImportError<E>>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
{
    Viewer::require_admin(viewer)?;
    let (txn, coupon) = super::coupons::lock(db, coupon_id).await?;
    coupon.check_changeable()?;
    let now = domain::now();
    let mut steps = Steps { db, txn: &txn, beside: repo::reads_beside_transaction(db), looked: None, now };
    let mut result = AudienceChange { coupon_id, ..AudienceChange::default() };
    let mut lines = CsvIds::default();
    let mut pending: Vec<Uuid> = Vec::new();
    let mut body = std::pin::pin!(body);
    loop {
        let next = tokio::select! {
            biased;
            () = stop.cancelled() => return Err(ImportError::Stopped),
            next = body.next() => next,
        };
        match next {
            None => break,
            Some(Err(e)) => return Err(ImportError::Body(e)),
            Some(Ok(chunk)) => lines.feed(chunk.as_ref(), &mut pending).map_err(ImportError::BadLine)?,
        }
        let full = pending.len() / repo::IN_LIST * repo::IN_LIST;
        for batch in pending[..full].chunks(repo::IN_LIST) {
            steps.step(&mut result, Some(batch)).await.map_err(no_retry)?;
        }
        pending.drain(..full);
    }
    lines.finish(&mut pending).map_err(ImportError::BadLine)?;
    for batch in pending.chunks(repo::IN_LIST) {
        steps.step(&mut result, Some(batch)).await.map_err(no_retry)?;
    }
    steps.step(&mut result, None).await.map_err(no_retry)?;
    if result.changed() {
        if !repo::coupon::bump_version(&txn, &coupon).await.map_err(no_retry)? {
            return Err(ImportError::App(no_retry(changed_since_read(&coupon))));
        }
        repo::ledger::append(&txn, &[NewEvent::for_coupon(EventType::CouponAudienceChanged, coupon_id, now)]).await.map_err(no_retry)?;
    }
    result.audience_size = repo::audience::size(&txn, coupon_id).await.map_err(no_retry)?;
    // 마지막 조각을 처리하는 사이에 종료가 왔어도 커밋하지 않는다.
    if stop.is_cancelled() {
        return Err(ImportError::Stopped);
    }
    txn.commit().await.map_err(repo::db_error).map_err(no_retry)?;
    Ok(result)
}

/// 가져오기는 다시 돌릴 수 없다: 버려진 트랜잭션도 TRY_AGAIN으로 답한다.
fn no_retry(e: AppError) -> AppError {
    if matches!(e, AppError::Aborted) { AppError::TryAgain } else { e }
}

/// 가져오기의 조각들. 조각마다 있는 사용자를 찾고 (모르는 id는 세기만) 그 가운데 회원이 아닌 사람을 넣는다.
/// 다른 커넥션을 쓸 수 있으면 (SQLite가 아니면) 다음 조각의 찾기를 트랜잭션 밖에서 이번 조각의 넣기와 함께 돌린다:
/// 데이터베이스가 한 커넥션에 코어 하나만 쓰므로, 두 일을 겹치면 두 코어가 함께 일한다. 사용자는 지워지지 않으므로
/// 트랜잭션 밖에서 있다고 본 사용자는 넣을 때에도 있다.
struct Steps<'a> {
    db: &'a DatabaseConnection,
    txn: &'a DatabaseTransaction,
    beside: bool,
    /// 찾기를 마치고 넣기를 기다리는 조각: (되풀이를 뺀 id, 있는 사용자).
    looked: Option<(Vec<Uuid>, HashSet<Uuid>)>,
    now: DateTime<Utc>,
}

impl Steps<'_> {
    /// 조각 하나를 찾고 앞 조각을 넣는다. `None`은 끝: 남은 조각을 넣는다.
    async fn step(&mut self, result: &mut AudienceChange, batch: Option<&[Uuid]>) -> AppResult<()> {
        let ids: Vec<Uuid> = batch.map(audience::first_occurrences).unwrap_or_default();
        let (db, txn, beside, now, coupon_id) = (self.db, self.txn, self.beside, self.now, result.coupon_id);
        let lookup = async {
            match (ids.is_empty(), beside) {
                (true, _) => Ok(HashSet::new()),
                (false, true) => repo::user::existing(db, &ids).await,
                (false, false) => repo::user::existing(txn, &ids).await,
            }
        };
        let insert = async {
            match self.looked.take() {
                Some((ids, known)) => {
                    // 키 순서로 넣는다: 저장 형식(소문자 16진수)의 순서가 바이트 순서와 같아서, 기본 키 B-트리의 이웃한 자리에 차례로 들어간다.
                    let mut known: Vec<Uuid> = ids.into_iter().filter(|u| known.contains(u)).collect();
                    known.sort_unstable();
                    repo::audience::add_known(txn, coupon_id, &known, now).await
                }
                None => Ok(0),
            }
        };
        let (known, added) = tokio::try_join!(lookup, insert)?;
        result.added += added;
        for id in ids.iter().filter(|u| !known.contains(u)) {
            result.note_unknown(*id);
        }
        self.looked = (!ids.is_empty()).then_some((ids, known));
        Ok(())
    }
}
