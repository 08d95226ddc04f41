//! 원장 → NATS JetStream 중계(CONTRACT 9절)의 상태: 마지막으로 확인(ack)받은 sequence와 중계자 임대(lease).
use sea_orm_migration::prelude::*;

use crate::columns::Types;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RelayState {
    Table,
    Id,
    LastSequence,
    Leader,
    LeaseUntil,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let t = Types(manager.get_database_backend());
        let mut state = Table::create();
        state
            .table(RelayState::Table)
            .col(ColumnDef::new(RelayState::Id).integer().not_null().primary_key())
            .col(ColumnDef::new(RelayState::LastSequence).big_integer().not_null().default(0))
            .col(ColumnDef::new(RelayState::Leader).string_len(64).null())
            .col(t.time(RelayState::LeaseUntil).null());
        t.table(&mut state);
        manager.create_table(state).await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(RelayState::Table)
                    .columns([RelayState::Id, RelayState::LastSequence])
                    .values_panic([1.into(), 0.into()])
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(RelayState::Table).to_owned()).await
    }
}
