//! 멱등 키(CONTRACT 7절): `Idempotency-Key`를 해석하고, 처음 응답을 찾고 보관하고, 보관 기간이 지난 키를 지운다.
//! 지정된 변경(발급·사용·취소·보류)은 키를 변경과 같은 트랜잭션에 기록한다 (issuance.rs, user_coupons.rs).
use async_graphql::Request;
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::Viewer;
use crate::error::{AppError, AppResult};
use crate::repo;
pub use crate::repo::idempotency::IdemKey;

/// 키를 보관하는 기간 (계약: 적어도 24시간).
pub const RETENTION: chrono::Duration = chrono::Duration::hours(24);

/// 키가 가리키는 것.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// 처음 보는 키.
    Fresh,
    /// 변경은 커밋되었지만 답이 보관되지 않았다 (답하기 전에 죽었거나 아직 답하는 중): 그 발급 내역으로 답한다.
    Committed(Uuid),
    /// 보관된 처음 응답 (상태, 본문).
    Answered(u16, String),
    /// 같은 키의 먼저 온 요청이 아직 실행 중이다 (HTTP 409 TRY_AGAIN).
    InFlight,
}

/// 변경과 같은 트랜잭션에 키를 기록하는 변경들 (CONTRACT 7절의 다섯 중 여기 있는 넷).
pub const IN_TRANSACTION: [&str; 5] = ["issueCoupon", "useCoupon", "cancelCoupon", "reserveCoupon", "redeemCouponCode"];

/// 응답 없는 "진행 중" 자리가 이보다 오래되면 죽은 프로세스가 남긴 것으로 본다 (실행은 잠금 한도 몇 초 안에 끝난다).
pub const ABANDONED_AFTER: chrono::Duration = chrono::Duration::seconds(60);

/// 키가 달린 요청: 키와 고른 mutation의 루트 필드 (여럿이면 None).
#[derive(Clone, Debug)]
pub struct Keyed {
    pub key: IdemKey,
    /// 루트 필드가 여럿인 mutation에는 키 하나를 붙일 수 없다. 다만 이미 쓴 키인지가 먼저다 (`KeyBook::open`):
    /// 다른 요청에 쓴 키면 그 본문이 무엇이든 IDEMPOTENCY_KEY_REUSED.
    pub root: Option<String>,
}

/// 헤더 값과 요청에서 키를 만든다. 토큰이 있는 mutation에만 쓴다 (그 밖에는 키를 무시한다: 권한 검사가 먼저다).
/// `mutation`: 고른 연산이 mutation인지, 그렇다면 루트 필드가 하나인지 (`graphql::single_mutation`).
/// 잘못된 키(1..255자의 출력 가능한 ASCII가 아님)는 BAD_USER_INPUT: 그런 키는 찾아볼 수도 없다.
pub fn key_for(
    raw: Option<&[u8]>,
    viewer: Option<&Viewer>,
    mutation: Option<Option<String>>,
    request: &Request,
) -> AppResult<Option<Keyed>> {
    let (Some(raw), Some(viewer), Some(root)) = (raw, viewer, mutation) else { return Ok(None) };
    let valid = (1..=255).contains(&raw.len()) && raw.iter().all(|b| (0x20..=0x7e).contains(b));
    if !valid {
        return Err(AppError::bad_input("Idempotency-Key", "Idempotency-Key: 1~255자의 출력 가능한 ASCII여야 합니다"));
    }
    let key = String::from_utf8_lossy(raw).into_owned();
    let in_transaction = root.as_deref().is_some_and(|r| IN_TRANSACTION.contains(&r));
    let key = IdemKey { user_id: viewer.user_id, key, request_hash: request_hash(request), in_transaction, role: viewer.role };
    Ok(Some(Keyed { key, root }))
}

/// 요청 본문(query, variables, operationName)의 지문: 같은 키로 다른 요청을 보냈는지 가린다.
fn request_hash(request: &Request) -> String {
    let canonical = serde_json::json!({
        "query": request.query,
        "variables": request.variables,
        "operationName": request.operation_name,
    });
    format!("{:x}", Sha256::digest(canonical.to_string().as_bytes()))
}

/// 키를 찾는다. 같은 키로 다른 요청이면 IDEMPOTENCY_KEY_REUSED.
pub async fn lookup(db: &DatabaseConnection, k: &IdemKey) -> AppResult<Lookup> {
    classify(k, repo::idempotency::find(db, k.user_id, &k.key).await?)
}

/// 처음 응답을 보관한다. `success`가 아니면(오류 답) 이미 커밋된 변경의 기록을 덮지 않는다: 같은 키의 먼저 온
/// 요청이 성공했다면 그 성공이 처음 응답이다.
pub async fn keep(db: &DatabaseConnection, k: &IdemKey, status: u16, body: &str, success: bool) -> AppResult<()> {
    repo::idempotency::store_response(db, k, status, body, success, crate::domain::now()).await
}

/// 키 조회와 오류 답 보관을 모아서 하는 일꾼. 키가 달린 요청마다 데이터베이스를 두 번 더 오가는 대신,
/// 앞선 왕복이 도는 동안 쌓인 요청들을 질의 하나(`IN` 조회, 여러 행 INSERT)로 처리한다 (발급을 합치는 것과 같은 방식:
/// 기다리는 시간을 따로 두지 않고, 부하가 클수록 배치가 커진다). 성공 답의 보관은 자기 행을 고치는 UPDATE라 따로 한다.
#[derive(Clone)]
pub struct KeyBook {
    tx: tokio::sync::mpsc::UnboundedSender<Op>,
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
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut ops = vec![first];
                while ops.len() < BOOK_BATCH {
                    match rx.try_recv() {
                        Ok(op) => ops.push(op),
                        Err(_) => break,
                    }
                }
                run_batch(&db, ops).await;
            }
        });
        Self { tx }
    }

    /// 키를 찾는다. 같은 키로 다른 요청이면 IDEMPOTENCY_KEY_REUSED.
    pub async fn lookup(&self, k: &IdemKey) -> AppResult<Lookup> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.tx.send(Op::Lookup(k.clone(), reply)).map_err(|_| AppError::Internal("키 일꾼이 멈춤".into()))?;
        answer.await.unwrap_or_else(|_| Err(AppError::Internal("키 일꾼이 답 없이 끝남".into())))
    }

    /// 실행 전에 키를 판단한다. 이미 쓴 키면 권한(역할), 같은 요청인지, 보관된 답·진행 중 순서로 (`classify`).
    /// 처음 보는 키에만 루트 필드 하나 규칙을 적용하고, 트랜잭션에서 기록되지 않는 변경은 "진행 중" 자리를 잡는다.
    pub async fn open(&self, db: &DatabaseConnection, keyed: &Keyed) -> AppResult<Lookup> {
        let k = &keyed.key;
        let found = self.lookup(k).await?;
        if found != Lookup::Fresh {
            return Ok(found);
        }
        if keyed.root.is_none() {
            return Err(AppError::bad_input("Idempotency-Key", "Idempotency-Key는 루트 필드가 하나인 mutation에만 붙일 수 있습니다"));
        }
        if k.in_transaction { Ok(Lookup::Fresh) } else { claim(db, k).await }
    }

    /// 처음 응답을 보관한다 (`success`의 뜻은 `keep`과 같다).
    pub async fn keep(&self, db: &DatabaseConnection, k: &IdemKey, status: u16, body: &str, success: bool) -> AppResult<()> {
        if success {
            return keep(db, k, status, body, true).await;
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
                for (k, reply) in lookups {
                    let rec = found.iter().find(|(u, key, _)| *u == k.user_id && *key == k.key).map(|(_, _, r)| r.clone());
                    let _ = reply.send(classify(&k, rec));
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

fn classify(k: &IdemKey, rec: Option<repo::idempotency::KeyRecord>) -> AppResult<Lookup> {
    let Some(rec) = rec else { return Ok(Lookup::Fresh) };
    repo::idempotency::check_same_request(k, &rec)?;
    Ok(match (rec.response, rec.user_coupon_id) {
        (Some((status, body)), _) => Lookup::Answered(status, body),
        (None, Some(id)) => Lookup::Committed(id),
        (None, None) if crate::domain::now() - rec.created_at < ABANDONED_AFTER => Lookup::InFlight,
        (None, None) => Lookup::Fresh,
    })
}

/// 트랜잭션에서 기록되지 않는 변경: 실행 전에 "진행 중" 자리를 잡는다. 같은 키가 먼저 잡혔으면 그 사정
/// (보관된 답, 진행 중)을 돌려준다. 죽은 프로세스가 남긴 오래된 자리는 치우고 다시 잡는다.
pub async fn claim(db: &DatabaseConnection, k: &IdemKey) -> AppResult<Lookup> {
    let now = crate::domain::now();
    repo::idempotency::drop_placeholder(db, k, Some(now - ABANDONED_AFTER)).await?;
    if repo::idempotency::claim_placeholder(db, k, now).await? {
        return Ok(Lookup::Fresh);
    }
    match lookup(db, k).await? {
        Lookup::Fresh => Ok(Lookup::InFlight),
        other => Ok(other),
    }
}

/// 자리를 잡은 변경이 TRY_AGAIN·INTERNAL로 끝났다: 자리를 치워 같은 키로 다시 시도할 수 있게 한다.
pub async fn release(db: &DatabaseConnection, k: &IdemKey) -> AppResult<()> {
    repo::idempotency::drop_placeholder(db, k, None).await
}

/// 보관 기간이 지난 키를 지운다.
pub async fn purge(db: &DatabaseConnection, now: DateTime<Utc>) -> AppResult<u64> {
    repo::idempotency::purge(db, now - RETENTION).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;

    #[test]
    fn keys_apply_to_mutations_with_a_token_and_fingerprint_the_body() {
        let v = Viewer { user_id: Uuid::from_u128(1), role: Role::User };
        let m = Request::new("mutation { issueCoupon(couponId: \"x\") { id } }");
        let issue = || Some(Some("issueCoupon".to_owned()));
        let k = key_for(Some(b"abc"), Some(&v), issue(), &m).expect("ok").expect("key").key;
        assert_eq!(k.key, "abc");
        assert_eq!(k.role, Role::User);
        assert!(k.in_transaction);
        let other = Request::new("mutation { issueCoupon(couponId: \"y\") { id } }");
        assert_ne!(k.request_hash, key_for(Some(b"abc"), Some(&v), issue(), &other).expect("ok").expect("key").key.request_hash);
        let create = key_for(Some(b"abc"), Some(&v), Some(Some("createCoupon".into())), &m).expect("ok").expect("key");
        assert!(!create.key.in_transaction);
        // 익명이거나 mutation이 아니면 키는 무시된다 (잘못된 키여도: 권한 검사가 먼저다).
        assert!(key_for(Some(b""), None, issue(), &m).expect("ok").is_none());
        assert!(key_for(Some(b""), Some(&v), None, &m).expect("ok").is_none());
        assert!(key_for(Some(b""), Some(&v), issue(), &m).is_err());
        assert!(key_for(Some("키".as_bytes()), Some(&v), issue(), &m).is_err());
        assert!(key_for(Some(&[b'a'; 256]), Some(&v), issue(), &m).is_err());
        // 루트 필드가 여럿인 mutation의 키도 만들어진다: 이미 쓴 키인지를 먼저 보고, 처음 보는 키면 `open`이 거절한다.
        let two = key_for(Some(b"abc"), Some(&v), Some(None), &m).expect("ok").expect("key");
        assert_eq!((two.root, two.key.in_transaction), (None, false));
    }
}
