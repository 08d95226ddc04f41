//! 발행 일정(waves)과 예산(budget) (CONTRACT 11절).
//! - `coupons.waves`: 일정 전체를 JSON 배열 하나로 (`[{"at": RFC 3339, "quantity": n}]`, 빠른 것부터). 발급은 이미 쿠폰 행을
//!   잠그고 읽으므로, 일정이 같은 행에 있으면 "지금까지 풀린 수량"이 추가 조회 없이 그 읽기에서 나온다. 없으면(NULL) 일정 없음.
//! - `coupons.budget`: 할인으로 줄 수 있는 돈의 상한, `DECIMAL(12,2)`. 없으면(NULL) 상한 없음.
//! - `coupons.budget_spent`: 예산에서 나간 돈 (현재 사용과 아직 돌려받지 않은 보류의 할인 합계). 같은 쿠폰의 보류·사용이
//!   잠근 행 하나에서 더하고 빼므로, 결제마다 그 쿠폰의 발급 내역을 모두 더하지 않는다.
//!
//! 기존 쿠폰은 일정도 예산도 없는 것으로 옮겨진다 (동작이 그대로다).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Coupons {
    Table,
    Waves,
    Budget,
    BudgetSpent,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite는 ALTER TABLE 하나에 열 하나만 더할 수 있다.
        manager
            .alter_table(Table::alter().table(Coupons::Table).add_column(ColumnDef::new(Coupons::Waves).text().null()).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter().table(Coupons::Table).add_column(ColumnDef::new(Coupons::Budget).decimal_len(12, 2).null()).to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Coupons::Table)
                    .add_column(ColumnDef::new(Coupons::BudgetSpent).decimal_len(12, 2).not_null().default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(Coupons::Table).drop_column(Coupons::BudgetSpent).to_owned()).await?;
        manager.alter_table(Table::alter().table(Coupons::Table).drop_column(Coupons::Budget).to_owned()).await?;
        manager.alter_table(Table::alter().table(Coupons::Table).drop_column(Coupons::Waves).to_owned()).await
    }
}
