//! 멱등 키(CONTRACT 7절)의 두 문: 실행 전의 `admit`(키를 찾고 판단하고, 필요하면 "진행 중" 자리를 잡는다)과
//! 실행 뒤의 `settle`(처음 응답을 보관하거나 자리를 치운다). 규칙은 `domain::idempotency`, SQL은 `repo::idempotency`.
//! 지정된 변경(발급·사용·취소·보류)은 키를 변경과 같은 트랜잭션에 기록한다 (issuance.rs, user_coupons.rs).
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::domain::idempotency::{self as rule, IdemKey, Keep, Keyed, Lookup, Outcome};
use crate::error::{AppError, AppResult};
use crate::repo;

/// 실행 전 키 판단의 결과.
#[derive(Clone, Debug)]
pub enum Admission {
    /// 처음 보는 키: 실행한다 (지정된 변경은 키를 같은 트랜잭션에 기록한다).
    Fresh,
    /// 이 키의 변경은 이미 커밋되었다 (답하기 전에 죽었거나 아직 답하는 중): 다시 하지 않고 그 발급 내역으로 답한다.
    Replay(Uuid),
    /// 보관된 처음 응답 (상태, 본문): 그대로 돌려준다.
    Answered(u16, String),
    /// 실행하지 않고 거절한다: 진행 중인 같은 키(TRY_AGAIN), 다른 요청에 쓴 키(IDEMPOTENCY_KEY_REUSED),
    /// 다른 역할의 키(FORBIDDEN), 처음 보는 키의 루트 필드 여럿(BAD_USER_INPUT), 키를 찾지 못함.
    Refused(AppError),
}

/// 키 조회와 오류 답 보관을 모아서 하는 일꾼. 키가 달린 요청마다 데이터베이스를 두 번 더 오가는 대신,
/// 앞선 왕복이 도는 동안 쌓인 요청들을 질의 하나(`IN` 조회, 여러 행 INSERT)로 처리한다 (발급을 합치는 것과 같은 방식:
/// 기다리는 시간을 따로 두지 않고, 부하가 클수록 배치가 커진다). 성공 답의 보관은 자기 행을 고치는 UPDATE라 따로 한다.
#[derive(Clone)]
pub struct KeyBook {
    tx: tokio::sync::mpsc::UnboundedSender<Op>,
    db: DatabaseConnection,
}

enum Op {
    Lookup(IdemKey, tokio::sync::oneshot::Sender<AppResult<Lookup>>),
    KeepError(IdemKey, u16, String, tokio::sync::oneshot::Sender<AppResult<()>>),
}

/// 한 번에 처리하는 최대 요청 수 (IN 목록과 여러 행 INSERT의 크기).
const BOOK_BATCH: usize = 256;

impl KeyBook {
    /// 일꾼을 띄운다. 핸들이 모두 사라지면 일꾼도 끝난다.
    pub fn start(db: DatabaseConnection) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Op>();
        let worker_db = db.clone();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut ops = vec![first];
                while ops.len() < BOOK_BATCH {
                    match rx.try_recv() {
                        Ok(op) => ops.push(op),
                        Err(_) => break,
                    }
                }
                run_batch(&worker_db, ops).await;
            }
        });
        Self { tx, db }
    }

    /// 실행 전에 키를 판단한다. 이미 쓴 키면 권한(역할), 같은 요청인지, 보관된 답·진행 중 순서로
    /// (`domain::idempotency::classify`). 처음 보는 키에만 루트 필드 하나 규칙을 적용하고, 트랜잭션에서 기록되지
    /// 않는 변경은 "진행 중" 자리를 잡는다.
    pub async fn admit(&self, keyed: &Keyed) -> Admission {
        match self.open(keyed).await {
            Ok(Lookup::Fresh) => Admission::Fresh,
            Ok(Lookup::Committed(id)) => Admission::Replay(id),
            Ok(Lookup::Answered(status, body)) => Admission::Answered(status, body),
            Ok(Lookup::InFlight) => Admission::Refused(AppError::TryAgain),
            Err(e) => Admission::Refused(e),
        }
    }

    /// 실행한 답을 처음 응답으로 보관하거나(`domain::idempotency::keeping`), 잡아 둔 자리를 치운다.
    /// 실패는 로그로만: 답은 이미 정해졌고, 보관하지 못한 키는 다시 시도하면 다시 실행된다.
    pub async fn settle(&self, k: &IdemKey, outcome: &Outcome, status: u16, body: &[u8]) {
        match rule::keeping(k, outcome) {
            Keep::Nothing => {}
            Keep::Release => {
                if let Err(e) = repo::idempotency::drop_placeholder(&self.db, k, None).await {
                    tracing::warn!(error = ?e, "멱등 키 자리를 치우지 못함");
                }
            }
            Keep::Store { own_row } => {
                let body = String::from_utf8_lossy(body);
                if let Err(e) = self.keep(k, status, &body, own_row).await {
                    tracing::warn!(error = ?e, "멱등 키의 응답을 보관하지 못함");
                }
            }
        }
    }

    async fn open(&self, keyed: &Keyed) -> AppResult<Lookup> {
        let k = &keyed.key;
        let found = self.lookup(k).await?;
        if found != Lookup::Fresh {
            return Ok(found);
        }
        rule::require_single_root(keyed)?;
        if k.in_transaction { Ok(Lookup::Fresh) } else { claim(&self.db, k).await }
    }

    /// 키를 찾는다 (일꾼이 모아서). 같은 키로 다른 요청이면 IDEMPOTENCY_KEY_REUSED.
    async fn lookup(&self, k: &IdemKey) -> AppResult<Lookup> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.tx.send(Op::Lookup(k.clone(), reply)).map_err(|_| AppError::Internal("키 일꾼이 멈춤".into()))?;
        answer.await.unwrap_or_else(|_| Err(AppError::Internal("키 일꾼이 답 없이 끝남".into())))
    }

    /// 처음 응답을 보관한다. `own_row`가 아니면(오류 답) 이미 커밋된 변경의 기록을 덮지 않는다: 같은 키의 먼저 온
    /// 요청이 성공했다면 그 성공이 처음 응답이다. 그런 답은 일꾼이 모아서 INSERT한다.
    async fn keep(&self, k: &IdemKey, status: u16, body: &str, own_row: bool) -> AppResult<()> {
        if own_row {
            return repo::idempotency::store_response(&self.db, k, status, body, true, crate::domain::now()).await;
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.tx.send(Op::KeepError(k.clone(), status, body.to_owned(), reply)).map_err(|_| AppError::Internal("키 일꾼이 멈춤".into()))?;
        answer.await.unwrap_or_else(|_| Err(AppError::Internal("키 일꾼이 답 없이 끝남".into())))
    }
}

/// 모인 요청들: 조회는 질의 하나로, 오류 답 보관은 INSERT 하나로.
async fn run_batch(db: &DatabaseConnection, ops: Vec<Op>) {
    let mut lookups = Vec::new();
    let mut keeps = Vec::new();
    for op in ops {
        match op {
            Op::Lookup(k, reply) => lookups.push((k, reply)),
            Op::KeepError(k, status, body, reply) => keeps.push((k, status, body, reply)),
        }
    }
    if !lookups.is_empty() {
        let keys: Vec<&IdemKey> = lookups.iter().map(|(k, _)| k).collect();
        match repo::idempotency::find_many(db, &keys).await {
            Ok(found) => {
                let now = crate::domain::now();
                for (k, reply) in lookups {
                    let rec = found.iter().find(|(u, key, _)| *u == k.user_id && *key == k.key).map(|(_, _, r)| r.clone());
                    let _ = reply.send(rule::classify(&k, rec, now));
                }
            }
            Err(e) => {
                for (_, reply) in lookups {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
    if !keeps.is_empty() {
        let items: Vec<(&IdemKey, u16, &str)> = keeps.iter().map(|(k, s, b, _)| (k, *s, b.as_str())).collect();
        let result = repo::idempotency::insert_responses(db, &items, crate::domain::now()).await;
        for (_, _, _, reply) in keeps {
            let _ = reply.send(result.clone());
        }
    }
}

/// 트랜잭션에서 기록되지 않는 변경: 실행 전에 "진행 중" 자리를 잡는다. 같은 키가 먼저 잡혔으면 그 사정
/// (보관된 답, 진행 중)을 돌려준다. 죽은 프로세스가 남긴 오래된 자리는 치우고 다시 잡는다.
async fn claim(db: &DatabaseConnection, k: &IdemKey) -> AppResult<Lookup> {
    let now = crate::domain::now();
    repo::idempotency::drop_placeholder(db, k, Some(now - rule::ABANDONED_AFTER)).await?;
    if repo::idempotency::claim_placeholder(db, k, now).await? {
        return Ok(Lookup::Fresh);
    }
    let rec = repo::idempotency::find(db, k.user_id, &k.key).await?;
    match rule::classify(k, rec, crate::domain::now())? {
        Lookup::Fresh => Ok(Lookup::InFlight),
        other => Ok(other),
    }
}

/// 보관 기간이 지난 키를 지운다.
pub async fn purge(db: &DatabaseConnection, now: DateTime<Utc>) -> AppResult<u64> {
    repo::idempotency::purge(db, now - rule::RETENTION).await
}
