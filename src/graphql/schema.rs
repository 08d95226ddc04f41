//! 스키마 조립: 루트 셋에 확장(APQ, ErrorCodes)과 스키마 데이터를 붙인다.
use async_graphql::extensions::apollo_persisted_queries::{ApolloPersistedQueries, LruCacheStorage};
use async_graphql::{SDLExportOptions, Schema};
use sea_orm::DatabaseConnection;

use super::extension::ErrorCodes;
use super::introspection;
use super::limits;
use super::mutation::MutationRoot;
use super::query::QueryRoot;
use super::subscription::SubscriptionRoot;
use crate::error::AppError;
use crate::service::issuance::{IssueMode, Issuer};
use crate::service::stock::StockHub;

pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// 자동 persisted query로 기억하는 질의 수 (계약: 적어도 1,000개). 문서 하나가 수 KB라 수십 MB 안쪽.
pub const PERSISTED_QUERY_CACHE: usize = 4096;

/// 스키마를 만든다 (비용 한도는 기본값). 데이터베이스 풀과 발급기, 재고 허브는 스키마 데이터, 뷰어와 DataLoader는
/// 요청 데이터. `db`가 없으면 SDL 출력용.
pub fn build_schema(db: Option<DatabaseConnection>, mode: IssueMode) -> AppSchema {
    build_schema_with(db, mode, limits::DEFAULT_MAX_COST, true)
}

/// `build_schema`에 연산의 비용 한도(`MAX_QUERY_COST`)와 자동 persisted query를 쓸지까지
/// (신뢰 문서 모드에서는 쓰지 않는다: 해시는 목록에서만 찾는다).
/// 깊이와 복잡도는 async-graphql의 한도 대신 `limits`가 검증 전에 센다 (조각을 펼칠 때마다 다시 걷지 않게).
pub fn build_schema_with(db: Option<DatabaseConnection>, mode: IssueMode, max_cost: u64, apq: bool) -> AppSchema {
    let mut builder = Schema::build(QueryRoot, MutationRoot, SubscriptionRoot);
    if apq {
        // APQ가 먼저(바깥): 해시로 찾은 문서를 ErrorCodes의 prepare_request가 받는다.
        builder = builder.extension(ApolloPersistedQueries::new(LruCacheStorage::new(PERSISTED_QUERY_CACHE)));
    }
    // 연합 그래프의 부분 그래프 (CONTRACT 13절): `_service`와 `_entities`.
    let builder = builder.enable_federation().extension(ErrorCodes { max_cost }).extension(introspection::NoSchemaDescription);
    let mut builder = introspection::describe_connections(builder);
    if let Some(db) = db {
        let hub = StockHub::start(db.clone());
        builder = builder.data(Issuer::new(db.clone(), mode).with_stock(hub.clone())).data(hub).data(db);
    }
    builder.finish()
}

/// 게이트웨이가 쓰는 부분 그래프의 SDL (`couponql schema --federation`): `_service { sdl }`이 답하는 것과 같다.
pub fn federation_sdl() -> String {
    build_schema(None, IssueMode::PerRequest).sdl_with_options(SDLExportOptions::new().federation().compose_directive())
}

/// SDL (`couponql schema`와 `schema.graphql`).
pub async fn sdl() -> Result<String, AppError> {
    introspection::sdl(&build_schema(None, IssueMode::PerRequest)).await
}
