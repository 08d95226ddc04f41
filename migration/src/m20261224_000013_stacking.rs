//! 한 주문의 여러 쿠폰 (CONTRACT 12절).
//! - `coupons.stacking`: `EXCLUSIVE`(주문에 혼자) 또는 `STACKABLE`(다른 STACKABLE과 5장까지). 기존 쿠폰은 EXCLUSIVE.
//! - `user_coupons.set_position`: `reserveCoupons`로 만든 묶음 안의 순서 (0부터). 한도를 넘는 할인을 어느 쿠폰이 내놓는지와
//!   답의 순서가 이 순서를 따른다. 따로 보류(7절)한 것은 NULL.
//! - `user_coupons.held_at`: 이 주문에 붙은(보류·사용) 시각. 따로 보류한 쿠폰은 묶음 뒤에 이 순서로 온다.
//!
//! 주문의 쿠폰은 늘 그 사용자의 행 가운데서 찾으므로(`user_id`로 시작하는 유일 인덱스) `order_id` 인덱스는 두지 않는다:
//! 보류·사용·취소마다 `order_id`가 바뀌어 그 인덱스를 고쳐 써야 하고, 한 장짜리 보류가 그만큼 느려졌다 (BENCHMARKS.md Session 10).
use sea_orm_migration::prelude::*;

use crate::columns::Types;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Coupons {
    Table,
    Stacking,
}

#[derive(DeriveIden)]
enum UserCoupons {
    Table,
    SetPosition,
    HeldAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let t = Types(manager.get_database_backend());
        // SQLite는 ALTER TABLE 하나에 열 하나만 더할 수 있다.
        manager
            .alter_table(
                Table::alter()
                    .table(Coupons::Table)
                    .add_column(ColumnDef::new(Coupons::Stacking).string_len(16).not_null().default("EXCLUSIVE"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter().table(UserCoupons::Table).add_column(ColumnDef::new(UserCoupons::SetPosition).integer().null()).to_owned(),
            )
            .await?;
        let mut held_at = t.time(UserCoupons::HeldAt);
        held_at.null();
        manager.alter_table(Table::alter().table(UserCoupons::Table).add_column(held_at).to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(UserCoupons::Table).drop_column(UserCoupons::HeldAt).to_owned()).await?;
        manager.alter_table(Table::alter().table(UserCoupons::Table).drop_column(UserCoupons::SetPosition).to_owned()).await?;
        manager.alter_table(Table::alter().table(Coupons::Table).drop_column(Coupons::Stacking).to_owned()).await
    }
}
