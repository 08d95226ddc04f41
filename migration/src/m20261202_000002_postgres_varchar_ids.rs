//! PostgreSQL의 id 컬럼을 CHAR(36)에서 VARCHAR(36)으로 (데이터와 제약은 그대로, 제자리에서).
//!
//! 드라이버는 id를 `text`로 바인딩하는데, `bpchar` 컬럼과 `text` 인자를 비교하면 PostgreSQL이 컬럼을 `::text`로
//! 바꿔(rtrim) 비교하므로 기본 키도 인덱스도 못 쓰고 테이블 전체를 읽는다. `varchar`는 `text`와 이진 호환이라
//! 같은 비교가 인덱스를 탄다. 값은 모두 정확히 36자라 변환에서 잃는 것이 없다. MySQL·SQLite는 바꿀 것이 없다.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// 외래 키를 잠시 떼고(양쪽 타입이 같아야 다시 걸 수 있다) 모든 id 컬럼의 타입을 바꾼 뒤 다시 건다. 한 트랜잭션.
fn convert(to: &str) -> String {
    format!(
        "ALTER TABLE user_coupons DROP CONSTRAINT fk_user_coupons_user, DROP CONSTRAINT fk_user_coupons_coupon;
         ALTER TABLE users ALTER COLUMN id TYPE {to};
         ALTER TABLE coupons ALTER COLUMN id TYPE {to};
         ALTER TABLE user_coupons ALTER COLUMN id TYPE {to}, ALTER COLUMN user_id TYPE {to}, ALTER COLUMN coupon_id TYPE {to};
         ALTER TABLE user_coupons
           ADD CONSTRAINT fk_user_coupons_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE RESTRICT,
           ADD CONSTRAINT fk_user_coupons_coupon FOREIGN KEY (coupon_id) REFERENCES coupons (id) ON DELETE RESTRICT;"
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            manager.get_connection().execute_unprepared(&convert("VARCHAR(36)")).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            manager.get_connection().execute_unprepared(&convert("CHAR(36)")).await?;
        }
        Ok(())
    }
}
