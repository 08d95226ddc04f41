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
}

/// 헤더 값과 요청에서 키를 만든다. 토큰이 있는 mutation에만 쓴다 (그 밖에는 키를 무시한다: 권한 검사가 먼저다).
/// `mutation`: 고른 연산이 mutation인지, 그렇다면 루트 필드가 하나인지 (`graphql::single_mutation`).
/// 잘못된 키(1..255자의 출력 가능한 ASCII가 아님)나 루트 필드가 여럿인 mutation의 키는 BAD_USER_INPUT.
pub fn key_for(raw: Option<&[u8]>, viewer: Option<&Viewer>, mutation: Option<bool>, request: &Request) -> AppResult<Option<IdemKey>> {
    let (Some(raw), Some(viewer), Some(single)) = (raw, viewer, mutation) else { return Ok(None) };
    let valid = (1..=255).contains(&raw.len()) && raw.iter().all(|b| (0x20..=0x7e).contains(b));
    if !valid {
        return Err(AppError::bad_input("Idempotency-Key", "Idempotency-Key: 1~255자의 출력 가능한 ASCII여야 합니다"));
    }
    if !single {
        return Err(AppError::bad_input("Idempotency-Key", "Idempotency-Key는 루트 필드가 하나인 mutation에만 붙일 수 있습니다"));
    }
    let key = String::from_utf8_lossy(raw).into_owned();
    Ok(Some(IdemKey { user_id: viewer.user_id, key, request_hash: request_hash(request) }))
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
    let Some(rec) = repo::idempotency::find(db, k.user_id, &k.key).await? else { return Ok(Lookup::Fresh) };
    repo::idempotency::check_same_request(k, &rec)?;
    Ok(match (rec.response, rec.user_coupon_id) {
        (Some((status, body)), _) => Lookup::Answered(status, body),
        (None, Some(id)) => Lookup::Committed(id),
        (None, None) => Lookup::Fresh,
    })
}

/// 처음 응답을 보관한다. `success`가 아니면(오류 답) 이미 커밋된 변경의 기록을 덮지 않는다: 같은 키의 먼저 온
/// 요청이 성공했다면 그 성공이 처음 응답이다.
pub async fn keep(db: &DatabaseConnection, k: &IdemKey, status: u16, body: &str, success: bool) -> AppResult<()> {
    repo::idempotency::store_response(db, k, status, body, success, crate::domain::now()).await
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
        let k = key_for(Some(b"abc"), Some(&v), Some(true), &m).expect("ok").expect("key");
        assert_eq!(k.key, "abc");
        let other = Request::new("mutation { issueCoupon(couponId: \"y\") { id } }");
        assert_ne!(k.request_hash, key_for(Some(b"abc"), Some(&v), Some(true), &other).expect("ok").expect("key").request_hash);
        // 익명이거나 mutation이 아니면 키는 무시된다 (잘못된 키여도: 권한 검사가 먼저다).
        assert!(key_for(Some(b""), None, Some(true), &m).expect("ok").is_none());
        assert!(key_for(Some(b""), Some(&v), None, &m).expect("ok").is_none());
        assert!(key_for(Some(b""), Some(&v), Some(true), &m).is_err());
        assert!(key_for(Some("키".as_bytes()), Some(&v), Some(true), &m).is_err());
        assert!(key_for(Some(&[b'a'; 256]), Some(&v), Some(true), &m).is_err());
        assert!(key_for(Some(b"abc"), Some(&v), Some(false), &m).is_err(), "루트 필드가 여럿인 mutation");
    }
}
