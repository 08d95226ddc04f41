//! 요청별 컨텍스트: 뷰어, 데이터베이스, 발급기, 멱등 키, ID 인자. 리졸버가 `ctx`에서 꺼내 쓰는 것들.
use async_graphql::{ErrorExtensions, Request};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::errors::GqlResultExt;
use super::loaders::Loaders;
use crate::domain::idempotency::IdemKey;
use crate::domain::{self, Viewer};
use crate::error::AppError;
use crate::service::issuance::Issuer;

/// 요청 하나를 스키마에 맞게 꾸민다: 뷰어와 요청별 DataLoader (요청 사이에 아무것도 새지 않게).
pub fn prepare_request(request: Request, db: &DatabaseConnection, viewer: Option<Viewer>) -> Request {
    let mut request = request.data(Loaders::new(db.clone(), viewer));
    if let Some(v) = viewer {
        request = request.data(v);
    }
    request
}

/// ID 인자를 UUID로. 잘못된 형식은 그 인자를 지목하는 BAD_USER_INPUT.
pub(crate) fn parse_uuid(field: &str, raw: &str) -> async_graphql::Result<Uuid> {
    Uuid::parse_str(raw).map_err(|_| AppError::bad_input(field, format!("{field}: UUID 형식이 아닙니다")).extend())
}

/// 요청의 멱등 키 (HTTP 계층이 `Idempotency-Key`로 넣는다, CONTRACT 7절).
#[derive(Clone, Debug)]
pub enum KeyState {
    /// 처음 보는 키: 지정된 변경은 이 키를 변경과 같은 트랜잭션에 기록한다.
    Fresh(IdemKey),
    /// 이 키의 변경은 이미 커밋되었다(답하기 전에 프로세스가 죽었거나 아직 답하는 중): 다시 하지 않고 그 발급 내역으로 답한다.
    Replay(Uuid),
}

pub(crate) fn fresh_key<'a>(ctx: &async_graphql::Context<'a>) -> Option<&'a IdemKey> {
    match ctx.data_opt::<KeyState>() {
        Some(KeyState::Fresh(k)) => Some(k),
        _ => None,
    }
}

/// 이미 커밋된 키의 재시도면 그 발급 내역 (지정된 변경 넷이 맨 앞에서 부른다).
pub(crate) async fn replayed(ctx: &async_graphql::Context<'_>) -> Option<async_graphql::Result<domain::UserCoupon>> {
    let Some(KeyState::Replay(id)) = ctx.data_opt::<KeyState>() else { return None };
    let db = match db(ctx) {
        Ok(db) => db,
        Err(e) => return Some(Err(e)),
    };
    Some(crate::service::user_coupons::replayed(db, viewer(ctx), *id).await.gql())
}

/// 이미 커밋된 키의 재시도인지 (묶음 변경은 그 주문의 지금 모습으로 답한다).
pub(crate) fn is_replay(ctx: &async_graphql::Context<'_>) -> bool {
    matches!(ctx.data_opt::<KeyState>(), Some(KeyState::Replay(_)))
}

/// 뷰어 (없으면 익명).
pub(crate) fn viewer<'a>(ctx: &async_graphql::Context<'a>) -> Option<&'a Viewer> {
    ctx.data_opt::<Viewer>()
}

pub(crate) fn issuer<'a>(ctx: &async_graphql::Context<'a>) -> async_graphql::Result<&'a Issuer> {
    ctx.data::<Issuer>().map_err(|_| AppError::Internal("스키마에 발급기가 없음".into()).extend())
}

pub(crate) fn db<'a>(ctx: &async_graphql::Context<'a>) -> async_graphql::Result<&'a DatabaseConnection> {
    ctx.data::<DatabaseConnection>().map_err(|_| AppError::Internal("스키마에 데이터베이스가 없음".into()).extend())
}
