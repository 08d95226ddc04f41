//! 권한 규칙(CONTRACT 3절)을 선언적으로: 규칙마다 가드 하나. 가드는 리졸버가 인자를 해석하기 전에 돈다
//! (GraphQL은 인자의 타입만 먼저 맞춘다), 그래서 권한 없는 호출은 인자가 잘못되어도 UNAUTHENTICATED / FORBIDDEN이다.
//! 데이터에 달린 규칙(남의 발급 내역인지)은 서비스가 판단한다.
use async_graphql::{Context, ErrorExtensions, Guard};

use crate::domain::Viewer;

/// 토큰이 있어야 한다.
pub struct Authenticated;

impl Guard for Authenticated {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        Viewer::require(ctx.data_opt::<Viewer>()).map(|_| ()).map_err(|e| e.extend())
    }
}

/// ADMIN 역할이어야 한다.
pub struct AdminOnly;

impl Guard for AdminOnly {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        Viewer::require_admin(ctx.data_opt::<Viewer>()).map(|_| ()).map_err(|e| e.extend())
    }
}
