//! 멱등 키(CONTRACT 7절)의 규칙: 키와 요청의 지문, 같은 요청인지, 키를 찾은 결과가 뜻하는 것. I/O 없음.
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::viewer::{Role, Viewer};
use crate::error::{AppError, AppResult};

/// 키를 보관하는 기간 (계약: 적어도 24시간).
pub const RETENTION: chrono::Duration = chrono::Duration::hours(24);

/// 응답 없는 "진행 중" 자리가 이보다 오래되면 죽은 프로세스가 남긴 것으로 본다 (실행은 잠금 한도 몇 초 안에 끝난다).
pub const ABANDONED_AFTER: chrono::Duration = chrono::Duration::seconds(60);

/// 변경과 같은 트랜잭션에 키를 기록하는 변경들 (CONTRACT 7절).
pub const IN_TRANSACTION: [&str; 8] = [
    "issueCoupon",
    "useCoupon",
    "cancelCoupon",
    "reserveCoupon",
    "redeemCouponCode",
    "reserveCoupons",
    "useOrderCoupons",
    "cancelOrderCoupons",
];

/// 사용자 하나의 키 하나와 그 요청의 지문.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdemKey {
    pub user_id: Uuid,
    pub key: String,
    /// 요청 본문(query, variables, operationName)의 SHA-256 (`fingerprint`).
    pub request_hash: String,
    /// 변경과 같은 트랜잭션에서 기록되는 변경(발급·사용·취소·보류)인지. 아니면 실행 전에 "진행 중" 자리를 잡는다.
    pub in_transaction: bool,
    /// 토큰의 역할: 보관된 답을 누구에게 돌려줄지 가린다 (`check_same_request`).
    pub role: Role,
}

/// 저장된 키.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    pub request_hash: String,
    /// 같은 트랜잭션에서 기록된 변경의 결과 (발급 내역).
    pub user_coupon_id: Option<Uuid>,
    pub response: Option<(u16, String)>,
    pub created_at: DateTime<Utc>,
    /// 키를 쓴 토큰의 역할 (역할을 담기 전의 행은 None).
    pub role: Option<Role>,
}

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

/// 키가 달린 요청: 키와 고른 mutation의 루트 필드 (여럿이면 None).
#[derive(Clone, Debug)]
pub struct Keyed {
    pub key: IdemKey,
    /// 루트 필드가 여럿인 mutation에는 키 하나를 붙일 수 없다. 다만 이미 쓴 키인지가 먼저다
    /// (`service::idempotency::KeyBook::admit`): 다른 요청에 쓴 키면 그 본문이 무엇이든 IDEMPOTENCY_KEY_REUSED.
    pub root: Option<String>,
}

/// 요청 본문(query, variables, operationName)의 지문: 같은 키로 다른 요청을 보냈는지 가린다.
/// 저장된 키와 비교하므로 모양(키 이름, JSON 직렬화)을 바꾸면 보관 중인 키가 모두 "다른 요청"이 된다.
pub fn fingerprint(query: &str, operation_name: Option<&str>, variables: &serde_json::Value) -> String {
    let canonical = serde_json::json!({
        "query": query,
        "variables": variables,
        "operationName": operation_name,
    });
    format!("{:x}", Sha256::digest(canonical.to_string().as_bytes()))
}

/// 헤더 값과 요청에서 키를 만든다. 토큰이 있는 mutation에만 쓴다 (그 밖에는 키를 무시한다: 권한 검사가 먼저다).
/// `mutation`: 고른 연산이 mutation인지, 그렇다면 루트 필드가 하나인지. `fingerprint`는 키를 쓸 때만 계산한다.
/// 잘못된 키(1..255자의 출력 가능한 ASCII가 아님)는 BAD_USER_INPUT: 그런 키는 찾아볼 수도 없다.
pub fn key_for(
    raw: Option<&[u8]>,
    viewer: Option<&Viewer>,
    mutation: Option<Option<String>>,
    fingerprint: impl FnOnce() -> String,
) -> AppResult<Option<Keyed>> {
    let (Some(raw), Some(viewer), Some(root)) = (raw, viewer, mutation) else { return Ok(None) };
    let valid = (1..=255).contains(&raw.len()) && raw.iter().all(|b| (0x20..=0x7e).contains(b));
    if !valid {
        return Err(AppError::bad_input("Idempotency-Key", "Idempotency-Key: 1~255자의 출력 가능한 ASCII여야 합니다"));
    }
    let key = String::from_utf8_lossy(raw).into_owned();
    let in_transaction = root.as_deref().is_some_and(|r| IN_TRANSACTION.contains(&r));
    let key = IdemKey { user_id: viewer.user_id, key, request_hash: fingerprint(), in_transaction, role: viewer.role };
    Ok(Some(Keyed { key, root }))
}

/// 처음 보는 키에만 적용하는 규칙: 루트 필드가 여럿인 mutation에는 키를 붙일 수 없다.
pub fn require_single_root(keyed: &Keyed) -> AppResult<()> {
    match keyed.root {
        Some(_) => Ok(()),
        None => Err(AppError::bad_input("Idempotency-Key", "Idempotency-Key는 루트 필드가 하나인 mutation에만 붙일 수 있습니다")),
    }
}

/// 키 기록을 이 요청에 돌려줘도 되는지. 권한이 먼저다(CONTRACT 3절): ADMIN 토큰으로 쓴 키의 기록은 ADMIN 토큰에만
/// (그 답에는 ADMIN만 읽는 것 — 통계, 남의 발급 내역 — 이 들어 있을 수 있다). 같은 사용자의 USER 토큰이 그 요청을
/// 지금 실행해도 되는지는 다시 실행해 보지 않고는 알 수 없고, 다시 실행하면 변경이 두 번 일어나므로 FORBIDDEN으로
/// 거절하고 아무것도 실행하지 않는다 (한 키의 재시도 사이에 역할이 바뀌는 드문 경우: 새 키로 보내면 된다).
/// USER 토큰으로 쓴 키의 기록은 ADMIN 토큰에도 돌려준다: ADMIN은 USER가 하는 일을 모두 할 수 있고, 그 답에는 USER가
/// 읽을 수 있는 것만 있다. 역할을 담기 전의 행(None)은 전과 같이 다룬다 (보관 기간 24시간 안에 사라진다).
/// 그다음: 같은 키, 다른 본문이면 IDEMPOTENCY_KEY_REUSED.
pub fn check_same_request(k: &IdemKey, rec: &KeyRecord) -> AppResult<()> {
    if rec.role == Some(Role::Admin) && k.role != Role::Admin {
        return Err(AppError::Forbidden);
    }
    if k.request_hash == rec.request_hash { Ok(()) } else { Err(AppError::IdempotencyKeyReused) }
}

/// 찾은 기록이 이 요청에 뜻하는 것: 권한과 같은 요청인지가 먼저, 그다음 보관된 답, 커밋된 변경, 진행 중 순서.
/// 오래된 "진행 중" 자리는 죽은 프로세스가 남긴 것이라 처음 보는 키와 같다.
pub fn classify(k: &IdemKey, rec: Option<KeyRecord>, now: DateTime<Utc>) -> AppResult<Lookup> {
    let Some(rec) = rec else { return Ok(Lookup::Fresh) };
    check_same_request(k, &rec)?;
    Ok(match (rec.response, rec.user_coupon_id) {
        (Some((status, body)), _) => Lookup::Answered(status, body),
        (None, Some(id)) => Lookup::Committed(id),
        (None, None) if now - rec.created_at < ABANDONED_AFTER => Lookup::InFlight,
        (None, None) => Lookup::Fresh,
    })
}

/// 실행한 답의 결과: 키에 처음 응답으로 남길지 가린다 (`keeping`).
#[derive(Clone, Debug)]
pub enum Outcome {
    Success,
    /// 계약의 오류로 끝났다.
    Failed(AppError),
    /// GraphQL 단계의 요청 오류(문서, 검증, persisted query): 계약의 `AppError`가 아니다.
    Rejected,
}

/// 실행한 답을 키에 어떻게 남기는가.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// 보관하지 않고, 잡아 둔 "진행 중" 자리도 치운다: 같은 키로 다시 시도할 수 있게.
    Release,
    /// 아무것도 남기지 않는다: 그 키의 처음 응답은 다른 요청의 것이다.
    Nothing,
    /// 처음 응답으로 보관한다. `own_row`: 자리를 잡은 행을 채운다(UPDATE). 아니면 새 행으로만 넣어,
    /// 먼저 커밋된 같은 키의 성공을 덮지 않는다.
    Store { own_row: bool },
}

/// 계약: TRY_AGAIN·INTERNAL 답은 보관하지 않는다. 다른 요청에 쓴 키의 거절도 남기지 않는다.
/// 자리를 잡은 변경은 오류 답도 자기 자리에 채우고, 트랜잭션에서 기록되는 변경의 오류 답은 새 행으로만.
pub fn keeping(k: &IdemKey, outcome: &Outcome) -> Keep {
    match outcome {
        Outcome::Failed(AppError::TryAgain | AppError::Aborted | AppError::Internal(_)) => {
            if k.in_transaction {
                Keep::Nothing
            } else {
                Keep::Release
            }
        }
        Outcome::Failed(AppError::IdempotencyKeyReused) => Keep::Nothing,
        Outcome::Success => Keep::Store { own_row: true },
        Outcome::Failed(_) | Outcome::Rejected => Keep::Store { own_row: !k.in_transaction },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer(role: Role) -> Viewer {
        Viewer { user_id: Uuid::from_u128(1), role }
    }

    fn key(role: Role, hash: &str, in_transaction: bool) -> IdemKey {
        IdemKey { user_id: Uuid::from_u128(1), key: "k".into(), request_hash: hash.into(), in_transaction, role }
    }

    fn record(role: Option<Role>, hash: &str, response: Option<(u16, String)>, id: Option<Uuid>, age: i64) -> KeyRecord {
        let created_at = crate::domain::now() - chrono::Duration::seconds(age);
        KeyRecord { request_hash: hash.into(), user_coupon_id: id, response, created_at, role }
    }

    #[test]
    fn keys_apply_to_mutations_with_a_token_and_fingerprint_the_body() {
        let v = viewer(Role::User);
        let issue = || Some(Some("issueCoupon".to_owned()));
        let print = |q: &str| fingerprint(q, None, &serde_json::json!({}));
        let m = "mutation { issueCoupon(couponId: \"x\") { id } }";
        let k = key_for(Some(b"abc"), Some(&v), issue(), || print(m)).expect("ok").expect("key").key;
        assert_eq!(k.key, "abc");
        assert_eq!(k.role, Role::User);
        assert!(k.in_transaction);
        let other = "mutation { issueCoupon(couponId: \"y\") { id } }";
        assert_ne!(k.request_hash, key_for(Some(b"abc"), Some(&v), issue(), || print(other)).expect("ok").expect("key").key.request_hash);
        let create = key_for(Some(b"abc"), Some(&v), Some(Some("createCoupon".into())), || print(m)).expect("ok").expect("key");
        assert!(!create.key.in_transaction);
        // 익명이거나 mutation이 아니면 키는 무시된다 (잘못된 키여도: 권한 검사가 먼저다).
        assert!(key_for(Some(b""), None, issue(), || print(m)).expect("ok").is_none());
        assert!(key_for(Some(b""), Some(&v), None, || print(m)).expect("ok").is_none());
        assert!(key_for(Some(b""), Some(&v), issue(), || print(m)).is_err());
        assert!(key_for(Some("키".as_bytes()), Some(&v), issue(), || print(m)).is_err());
        assert!(key_for(Some(&[b'a'; 256]), Some(&v), issue(), || print(m)).is_err());
        // 루트 필드가 여럿인 mutation의 키도 만들어진다: 이미 쓴 키인지를 먼저 보고, 처음 보는 키면 거절한다.
        let two = key_for(Some(b"abc"), Some(&v), Some(None), || print(m)).expect("ok").expect("key");
        assert_eq!((two.root.clone(), two.key.in_transaction), (None, false));
        assert!(require_single_root(&two).is_err());
    }

    #[test]
    fn the_fingerprint_covers_query_operation_and_variables() {
        let vars = serde_json::json!({ "id": "x" });
        let base = fingerprint("q", Some("Op"), &vars);
        assert_eq!(base.len(), 64);
        assert_eq!(base, fingerprint("q", Some("Op"), &vars));
        assert_ne!(base, fingerprint("q", None, &vars));
        assert_ne!(base, fingerprint("q", Some("Op"), &serde_json::json!({ "id": "y" })));
        assert_ne!(base, fingerprint("q2", Some("Op"), &vars));
    }

    #[test]
    fn authorisation_comes_before_replay_and_then_the_body() {
        let admin_row = record(Some(Role::Admin), "h", Some((200, "{}".into())), None, 0);
        assert!(matches!(
            classify(&key(Role::User, "other", false), Some(admin_row.clone()), crate::domain::now()),
            Err(AppError::Forbidden)
        ));
        assert_eq!(
            classify(&key(Role::Admin, "h", false), Some(admin_row), crate::domain::now()).expect("ok"),
            Lookup::Answered(200, "{}".into())
        );
        let user_row = record(Some(Role::User), "h", None, Some(Uuid::from_u128(7)), 0);
        assert!(matches!(
            classify(&key(Role::User, "other", true), Some(user_row.clone()), crate::domain::now()),
            Err(AppError::IdempotencyKeyReused)
        ));
        assert_eq!(
            classify(&key(Role::Admin, "h", true), Some(user_row), crate::domain::now()).expect("ok"),
            Lookup::Committed(Uuid::from_u128(7))
        );
    }

    #[test]
    fn a_placeholder_is_in_flight_until_it_is_abandoned() {
        let k = key(Role::User, "h", false);
        let now = crate::domain::now();
        assert_eq!(classify(&k, None, now).expect("ok"), Lookup::Fresh);
        assert_eq!(classify(&k, Some(record(Some(Role::User), "h", None, None, 5)), now).expect("ok"), Lookup::InFlight);
        assert_eq!(classify(&k, Some(record(Some(Role::User), "h", None, None, 120)), now).expect("ok"), Lookup::Fresh);
    }

    #[test]
    fn try_again_and_internal_answers_are_not_kept() {
        let claimed = key(Role::User, "h", false);
        let recorded = key(Role::User, "h", true);
        assert_eq!(keeping(&claimed, &Outcome::Failed(AppError::TryAgain)), Keep::Release);
        assert_eq!(keeping(&claimed, &Outcome::Failed(AppError::Internal(String::new()))), Keep::Release);
        assert_eq!(keeping(&recorded, &Outcome::Failed(AppError::TryAgain)), Keep::Nothing);
        assert_eq!(keeping(&claimed, &Outcome::Failed(AppError::IdempotencyKeyReused)), Keep::Nothing);
        assert_eq!(keeping(&recorded, &Outcome::Success), Keep::Store { own_row: true });
        assert_eq!(keeping(&recorded, &Outcome::Failed(AppError::CouponSoldOut)), Keep::Store { own_row: false });
        assert_eq!(keeping(&claimed, &Outcome::Rejected), Keep::Store { own_row: true });
    }
}
