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

#[cfg(test)]
mod tests {
    use async_graphql::Request;
    use uuid::Uuid;

    use crate::domain::{Role, Viewer};

    /// 데이터베이스 없이 스키마만으로: 가드가 인자 해석과 데이터베이스보다 먼저 답한다.
    async fn code(query: &str, viewer: Option<Viewer>) -> Option<String> {
        let schema = crate::graphql::schema::build_schema(None, crate::service::issuance::IssueMode::PerRequest);
        let mut request = Request::new(query);
        if let Some(v) = viewer {
            request = request.data(v);
        }
        let resp = schema.execute(request).await;
        resp.errors
            .first()
            .and_then(|e| e.extensions.as_ref())
            .and_then(|x| x.get("code"))
            .map(|c| c.to_string().trim_matches('"').to_owned())
    }

    const MALFORMED: &str = r#"mutation { createCoupon(input: { name: "", discountType: FIXED, discountValue: "-1", validFrom: "x", validUntil: "y" }) { id } }"#;

    #[tokio::test]
    async fn create_coupon_checks_the_caller_before_its_malformed_input() {
        let user = Viewer { user_id: Uuid::from_u128(1), role: Role::User };
        assert_eq!(code(MALFORMED, None).await.as_deref(), Some("UNAUTHENTICATED"));
        assert_eq!(code(MALFORMED, Some(user)).await.as_deref(), Some("FORBIDDEN"));
    }

    #[tokio::test]
    async fn admin_reads_and_own_mutations_need_a_token() {
        let user = Viewer { user_id: Uuid::from_u128(1), role: Role::User };
        assert_eq!(code(r#"{ users(ids: ["nope"]) { id } }"#, None).await.as_deref(), Some("UNAUTHENTICATED"));
        assert_eq!(code(r#"{ users(ids: ["nope"]) { id } }"#, Some(user)).await.as_deref(), Some("FORBIDDEN"));
        assert_eq!(code(r#"mutation { useCoupon(userCouponId: "nope") { id } }"#, None).await.as_deref(), Some("UNAUTHENTICATED"));
        assert_eq!(code(r#"{ userCoupons { id } }"#, None).await.as_deref(), Some("UNAUTHENTICATED"));
    }
}
