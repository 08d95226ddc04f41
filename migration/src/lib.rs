//! couponql 스키마 마이그레이션: 바이너리(`couponql migrate`)와 테스트가 같은 목록을 적용한다.
pub use sea_orm_migration::prelude::*;

pub mod columns;
mod m20251120_000001_create_tables;
mod m20261202_000002_postgres_varchar_ids;
mod m20261202_000003_checkout;
mod m20261202_000004_shop;
mod m20261202_000005_relay;
mod m20261220_000006_code_guessing;
mod m20261220_000007_idempotency_any_size;
mod m20261221_000008_event_stream;
mod m20261222_000009_coupon_version;
mod m20261222_000010_per_user_limit;
mod m20261222_000011_audiences;
mod m20261223_000012_waves_budgets;
mod m20261224_000013_stacking;
mod m20261224_000014_audience_lean;

/// 적용 순서대로 나열한 마이그레이션 목록.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20251120_000001_create_tables::Migration),
            Box::new(m20261202_000002_postgres_varchar_ids::Migration),
            Box::new(m20261202_000003_checkout::Migration),
            Box::new(m20261202_000004_shop::Migration),
            Box::new(m20261202_000005_relay::Migration),
            Box::new(m20261220_000006_code_guessing::Migration),
            Box::new(m20261220_000007_idempotency_any_size::Migration),
            Box::new(m20261221_000008_event_stream::Migration),
            Box::new(m20261222_000009_coupon_version::Migration),
            Box::new(m20261222_000010_per_user_limit::Migration),
            Box::new(m20261222_000011_audiences::Migration),
            Box::new(m20261223_000012_waves_budgets::Migration),
            Box::new(m20261224_000013_stacking::Migration),
            Box::new(m20261224_000014_audience_lean::Migration),
        ]
    }
}
