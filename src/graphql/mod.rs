//! GraphQL 계층: 스키마 조립, 에러 코드 부여, 요청별 컨텍스트. 리졸버는 얇게 — 서비스 하나를 부르고 변환한다.
//! 이 파일은 모듈을 늘어놓고 다른 계층이 쓰는 이름을 다시 내보내기만 한다: 자식은 형제를 직접 가져다 쓴다.
mod audience;
mod checkout;
mod code;
mod context;
mod coupon;
mod documents;
mod errors;
mod event;
mod extension;
mod federation;
mod guards;
mod introspection;
pub mod limits;
mod loaders;
mod mutation;
mod nulls;
mod operation;
mod order;
mod query;
mod scalars;
mod schema;
mod subscription;
mod user;
mod user_coupon;
mod variables;

pub use context::{KeyState, prepare_request};
pub use documents::{DocumentCache, NotTrusted, TrustedDocuments};
pub use loaders::Loaders;
pub use mutation::MutationRoot;
pub use operation::{METHOD_NOT_ALLOWED, RequestInfo, selected_operation, single_mutation};
pub use query::QueryRoot;
pub use schema::{AppSchema, PERSISTED_QUERY_CACHE, build_schema, build_schema_with, federation_sdl, sdl};
pub use subscription::{MAX_SUBSCRIPTIONS, SubscriptionRoot, SubscriptionSlots};

#[cfg(test)]
mod tests;
