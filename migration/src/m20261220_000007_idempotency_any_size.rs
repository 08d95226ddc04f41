//! 멱등 키(CONTRACT 7절, 3절) 두 가지를 제자리에서 고친다:
//! - MySQL/MariaDB의 `TEXT`는 64 KB까지라 큰 첫 응답을 보관하지 못했다(재시도가 409, 60초 뒤에는 변경이 다시 실행됨).
//!   `LONGTEXT`로 넓힌다. PostgreSQL과 SQLite의 `TEXT`는 이미 길이 제한이 없다.
//! - 키를 쓴 토큰의 역할(`role`): 보관된 답을 다른 역할의 토큰에 돌려주지 않으려고 (ADMIN의 답을 USER에게).
//!   이전 행은 NULL(역할을 모름)로 남는다.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    ResponseBody,
    Role,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DatabaseBackend::MySql {
            manager
                .alter_table(
                    Table::alter()
                        .table(IdempotencyKeys::Table)
                        .modify_column(ColumnDef::new(IdempotencyKeys::ResponseBody).custom(Alias::new("LONGTEXT")).null())
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(IdempotencyKeys::Table)
                    .add_column(ColumnDef::new(IdempotencyKeys::Role).string_len(16).null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(IdempotencyKeys::Table).drop_column(IdempotencyKeys::Role).to_owned()).await?;
        if manager.get_database_backend() == DatabaseBackend::MySql {
            manager
                .alter_table(
                    Table::alter()
                        .table(IdempotencyKeys::Table)
                        .modify_column(ColumnDef::new(IdempotencyKeys::ResponseBody).text().null())
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
