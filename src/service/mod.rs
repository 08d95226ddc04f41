//! 유스케이스: 트랜잭션을 소유하고, 권한·도메인 규칙을 계약서의 순서대로 적용한다.
//! GraphQL 계층은 여기 함수 하나를 부르고 결과를 변환할 뿐이다.
pub mod audiences;
pub mod codes;
pub mod coupons;
pub mod idempotency;
pub mod issuance;
pub mod ledger;
pub mod order_sets;
pub mod page;
pub mod relay;
pub mod retry;
pub mod stock;
pub mod user_coupons;
pub mod users;
