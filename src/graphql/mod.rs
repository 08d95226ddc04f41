//! GraphQL 계층: 스키마 조립, 에러 코드 부여, 요청별 컨텍스트. 리졸버는 얇게 — 서비스 하나를 부르고 변환한다.
mod loaders;
mod mutation;
mod query;
mod scalars;
mod types;

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{EmptySubscription, ErrorExtensions, Request, Schema, ServerError, ServerResult, ValidationResult, Variables};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::domain::Viewer;
use crate::error::AppError;
use crate::service::issuance::Issuer;
pub use loaders::Loaders;
pub use mutation::MutationRoot;
pub use query::QueryRoot;

pub type AppSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// 깊이 한도: 스키마에 순환이 없어 정상 질의는 6단을 넘지 않고, 도구들이 보내는 인트로스펙션 질의(≈15단)는 통과한다.
pub const MAX_DEPTH: usize = 20;
/// 복잡도 한도: `coupons(first: 100)`로 모든 필드를 읽는 질의(≈3,800)는 통과, 수천 개 별칭 남용은 거부.
pub const MAX_COMPLEXITY: usize = 5_000;
/// 데이터베이스를 한 번 오가는 루트 필드의 비용: 같은 필드를 별칭으로 수백 번 부르는 남용을 막는다.
pub const FETCH_COST: usize = 10;

/// 스키마를 만든다. 데이터베이스 풀과 발급기는 스키마 데이터, 뷰어와 DataLoader는 요청 데이터.
/// `db`가 없으면 SDL 출력용.
pub fn build_schema(db: Option<DatabaseConnection>, issue_coalescing: bool) -> AppSchema {
    let mut builder = Schema::build(QueryRoot, MutationRoot, EmptySubscription)
        .register_output_type::<types::RoleGql>()
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .extension(ErrorCodes);
    if let Some(db) = db {
        builder = builder.data(Issuer::new(db.clone(), issue_coalescing)).data(db);
    }
    builder.finish()
}

/// SDL (`couponql schema`와 `schema.graphql`).
pub fn sdl() -> String {
    build_schema(None, false).sdl()
}

/// 요청 하나를 스키마에 맞게 꾸민다: 뷰어와 요청별 DataLoader (요청 사이에 아무것도 새지 않게).
pub fn prepare_request(request: Request, db: &DatabaseConnection, viewer: Option<Viewer>) -> Request {
    let mut request = request.data(Loaders::new(db.clone()));
    if let Some(v) = viewer {
        request = request.data(v);
    }
    request
}

impl ErrorExtensions for AppError {
    /// 코드는 `extensions.code`로, 입력 오류는 `extensions.field`까지. INTERNAL의 상세는 로그에만.
    fn extend(&self) -> async_graphql::Error {
        if let AppError::Internal(detail) = self {
            tracing::error!(detail = %detail, "내부 오류");
        }
        async_graphql::Error::new(self.to_string()).extend_with(|_, e| {
            e.set("code", self.code());
            if let AppError::BadUserInput { field, .. } = self {
                e.set("field", field.as_str());
            }
        })
    }
}

/// 리졸버에서 `?` 대신 쓰는 변환: 코드를 잃지 않는다.
pub(crate) trait GqlResultExt<T> {
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T> GqlResultExt<T> for Result<T, AppError> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(|e| e.extend())
    }
}

/// ID 인자를 UUID로. 잘못된 형식은 그 인자를 지목하는 BAD_USER_INPUT.
pub(crate) fn parse_uuid(field: &str, raw: &str) -> async_graphql::Result<Uuid> {
    Uuid::parse_str(raw).map_err(|_| AppError::bad_input(field, format!("{field}: UUID 형식이 아닙니다")).extend())
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

/// 코드 없는 에러에 계약서의 코드를 붙이는 확장: 파싱 실패, 검증 실패(깊이·복잡도 포함),
/// 그리고 실행 중 변수 값 변환 실패(BAD_USER_INPUT).
struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodesExt)
    }
}

struct ErrorCodesExt;

fn with_code(mut err: ServerError, code: &str) -> ServerError {
    let has_code = err.extensions.as_ref().is_some_and(|e| e.get("code").is_some());
    if !has_code {
        err.extensions.get_or_insert_with(Default::default).set("code", code);
    }
    err
}

#[async_trait::async_trait]
impl Extension for ErrorCodesExt {
    /// 단계 밖에서 생기는 요청 수준의 에러(없는 operationName, 이름 없이 여러 연산)도 코드를 갖게 한다.
    async fn request(&self, ctx: &ExtensionContext<'_>, next: async_graphql::extensions::NextRequest<'_>) -> async_graphql::Response {
        let mut resp = next.run(ctx).await;
        resp.errors = resp.errors.into_iter().map(|e| with_code(e, "GRAPHQL_VALIDATION_FAILED")).collect();
        resp
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables).await.map_err(|e| with_code(e, "GRAPHQL_PARSE_FAILED"))
    }

    async fn validation(&self, ctx: &ExtensionContext<'_>, next: NextValidation<'_>) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|errs| errs.into_iter().map(|e| with_code(e, "GRAPHQL_VALIDATION_FAILED")).collect())
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: async_graphql::extensions::NextExecute<'_>,
    ) -> async_graphql::Response {
        let mut resp = next.run(ctx, operation_name).await;
        // 우리 리졸버의 에러는 모두 코드를 가진다. 코드 없는 실행 에러는 인자 값 변환 실패뿐이다.
        resp.errors = resp.errors.into_iter().map(|e| with_code(e, "BAD_USER_INPUT")).collect();
        resp
    }
}
