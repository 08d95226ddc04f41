//! `Idempotency-Key` (CONTRACT 7절)의 HTTP 쪽: 헤더를 읽어 키를 만들고, 키 판단(`KeyBook::admit`)을 실행이나 답으로,
//! 실행한 답을 표의 상태로 고쳐 보관한다(`KeyBook::settle`). 규칙은 `domain::idempotency`에 있다.
use async_graphql::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use super::reply::{Answer, MediaType};
use crate::domain::Viewer;
use crate::domain::idempotency::{self, Keyed, Outcome};
use crate::error::{AppError, AppResult, Surface};
use crate::graphql::{self, KeyState};
use crate::service::idempotency::{Admission, KeyBook};

/// 요청 헤더 (CORS가 허용한다).
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// 보관된 처음 응답을 다시 돌려준 답의 헤더 (CORS가 드러낸다).
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// 헤더와 요청에서 키를 만든다 (토큰이 있는 mutation에만). 잘못된 키는 BAD_USER_INPUT: 실행 없이 `refused`로 답한다.
pub fn keyed(headers: &HeaderMap, viewer: Option<&Viewer>, request: &mut Request) -> AppResult<Option<Keyed>> {
    let raw = headers.get(IDEMPOTENCY_KEY).map(HeaderValue::as_bytes);
    let mutation = match raw {
        Some(_) => {
            let operation_name = request.operation_name.clone();
            request.parsed_query().ok().and_then(|doc| graphql::single_mutation(doc, operation_name.as_deref()))
        }
        None => None,
    };
    idempotency::key_for(raw, viewer, mutation, || fingerprint(request))
}

/// 요청 본문(query, operationName, variables)의 지문.
fn fingerprint(request: &Request) -> String {
    let variables = serde_json::to_value(&request.variables).unwrap_or_default();
    idempotency::fingerprint(&request.query, request.operation_name.as_deref(), &variables)
}

/// 실행 전: 키 판단을 실행에 넘길 `KeyState`로, 또는 실행하지 않고 돌려줄 답으로.
pub async fn admit(keys: &KeyBook, keyed: &Keyed, media: MediaType) -> Result<KeyState, Answer> {
    match keys.admit(keyed).await {
        Admission::Fresh => Ok(KeyState::Fresh(keyed.key.clone())),
        Admission::Replay(id) => Ok(KeyState::Replay(id)),
        Admission::Answered(status, body) => Err(replayed(media, status, body)),
        Admission::Refused(e) => Err(refused(media, &e)),
    }
}

/// 실행 뒤: 오류가 정하는 상태로 고치고(표), 처음 응답을 보관하고, 다시 실행하지 않고 답했으면(`replay`) 그렇다고 알린다.
pub async fn settle(keys: &KeyBook, keyed: &Keyed, replay: bool, answer: &mut Answer) {
    if let Outcome::Failed(e) = &answer.outcome
        && let Some(status) = e.http_status(Surface::KeyedAnswer).and_then(|s| StatusCode::from_u16(s).ok())
    {
        answer.status = status;
    }
    keys.settle(&keyed.key, &answer.outcome, answer.status.as_u16(), &answer.body).await;
    if replay {
        answer.headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
}

/// 보관된 처음 응답을 그대로.
fn replayed(media: MediaType, status: u16, body: String) -> Answer {
    let mut headers = HeaderMap::new();
    headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    Answer { media, status, headers, body: body.into_bytes(), outcome: Outcome::Success }
}

/// 키 판단이 실행 전에 거절한 답 (아무것도 실행하지 않았다): 잘못된 키, 진행 중, 다른 요청, 다른 역할 등. 상태는 표(`Surface::KeyRefusal`)가 정한다.
/// 다른 역할의 키(FORBIDDEN)는 새 요청의 권한 거절과 같은 모양이라 `data: null`까지.
pub fn refused(media: MediaType, e: &AppError) -> Answer {
    let error = serde_json::json!({ "message": e.to_string(), "extensions": { "code": e.code() } });
    let body = match e {
        AppError::Forbidden => serde_json::json!({ "data": null, "errors": [error] }),
        _ => serde_json::json!({ "errors": [error] }),
    };
    let status = e.http_status(Surface::KeyRefusal).and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let body = serde_json::to_vec(&body).unwrap_or_default();
    Answer { media, status, headers: HeaderMap::new(), body, outcome: Outcome::Failed(e.clone()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    /// 지문은 예전처럼 async-graphql의 요청을 그대로 직렬화한 것과 같다: 보관 중인 키가 계속 맞는다.
    #[test]
    fn the_fingerprint_matches_the_request_as_it_was_hashed_before() {
        let mut request = Request::new("mutation M($id: ID!) { issueCoupon(couponId: $id) { id } }").operation_name("M");
        request.variables = async_graphql::Variables::from_json(serde_json::json!({ "id": "x", "n": [1, 2.5, null], "o": { "b": true } }));
        let before = serde_json::json!({
            "query": request.query,
            "variables": request.variables,
            "operationName": request.operation_name,
        });
        assert_eq!(fingerprint(&request), format!("{:x}", Sha256::digest(before.to_string().as_bytes())));
    }
}
