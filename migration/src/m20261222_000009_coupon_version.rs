//! 쿠폰 행의 버전(`coupons.version`): 쿠폰 행을 쓰는 문장은 모두 잠금 아래에서 읽은 버전일 때만 쓰고 버전을 하나 올린다.
//!
//! 왜: Galera에서는 잠금 읽기(`FOR UPDATE`)가 다른 노드에서 이미 커밋된 쓰기를 못 본 채 돌아올 수 있고, 그 뒤의
//! `UPDATE`는 최신 값을 본다 (세 노드 선착순에서 판매마다 몇 번, CI에서 100장에 117장). 버전 비교가 그 어긋남을
//! 쓰기 전에 알아채 트랜잭션째 다시 돌리게 한다. 한 서버에서는 행 잠금 때문에 언제나 맞는다.
//! 열 추가만 하므로 세 백엔드 모두 제자리에서 바뀌고, 기존 행은 0에서 시작한다.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Coupons {
    Table,
    Version,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Coupons::Table)
                    .add_column(ColumnDef::new(Coupons::Version).big_integer().not_null().default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(Coupons::Table).drop_column(Coupons::Version).to_owned()).await
    }
}
