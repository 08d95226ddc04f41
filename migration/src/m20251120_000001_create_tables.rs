//! users, coupons, user_coupons 테이블과 설계서의 제약조건·인덱스.
use sea_orm_migration::prelude::*;

use crate::columns::Types;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    Name,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Coupons {
    Table,
    Id,
    Name,
    DiscountType,
    DiscountValue,
    MinPurchaseAmount,
    MaxDiscountAmount,
    TotalQuantity,
    IssuedQuantity,
    ValidFrom,
    ValidUntil,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum UserCoupons {
    Table,
    Id,
    UserId,
    CouponId,
    IsUsed,
    UsedAt,
    IssuedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let t = Types(manager.get_database_backend());

        let mut users = Table::create();
        users
            .table(Users::Table)
            .col(t.char36_id(Users::Id).primary_key())
            .col(ColumnDef::new(Users::Email).string_len(255).not_null().unique_key())
            .col(ColumnDef::new(Users::Name).string_len(100).not_null())
            .col(t.time_default_now(Users::CreatedAt))
            .col(t.time_default_now(Users::UpdatedAt));
        t.table(&mut users);
        manager.create_table(users).await?;

        let mut coupons = Table::create();
        coupons
            .table(Coupons::Table)
            .col(t.char36_id(Coupons::Id).primary_key())
            .col(ColumnDef::new(Coupons::Name).string_len(100).not_null())
            .col(ColumnDef::new(Coupons::DiscountType).string_len(16).not_null())
            .col(t.money(Coupons::DiscountValue).not_null())
            .col(t.money(Coupons::MinPurchaseAmount).null())
            .col(t.money(Coupons::MaxDiscountAmount).null())
            // NULL = 무제한
            .col(ColumnDef::new(Coupons::TotalQuantity).integer().null())
            .col(ColumnDef::new(Coupons::IssuedQuantity).integer().not_null().default(0))
            .col(t.time(Coupons::ValidFrom).not_null())
            .col(t.time(Coupons::ValidUntil).not_null())
            .col(t.time_default_now(Coupons::CreatedAt))
            .col(t.time_default_now(Coupons::UpdatedAt));
        t.table(&mut coupons);
        manager.create_table(coupons).await?;

        let mut user_coupons = Table::create();
        user_coupons
            .table(UserCoupons::Table)
            .col(t.char36_id(UserCoupons::Id).primary_key())
            .col(t.char36_id(UserCoupons::UserId))
            .col(t.char36_id(UserCoupons::CouponId))
            .col(ColumnDef::new(UserCoupons::IsUsed).boolean().not_null().default(false))
            .col(t.time(UserCoupons::UsedAt).null())
            .col(t.time_default_now(UserCoupons::IssuedAt))
            .foreign_key(
                ForeignKey::create()
                    .name("fk_user_coupons_user")
                    .from(UserCoupons::Table, UserCoupons::UserId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::Restrict),
            )
            .foreign_key(
                ForeignKey::create()
                    .name("fk_user_coupons_coupon")
                    .from(UserCoupons::Table, UserCoupons::CouponId)
                    .to(Coupons::Table, Coupons::Id)
                    .on_delete(ForeignKeyAction::Restrict),
            )
            // 사용자당 쿠폰 1번만 발급: 동시성 제어가 뚫려도 마지막 방어선이 된다.
            .index(Index::create().name("uq_user_coupons_user_coupon").col(UserCoupons::UserId).col(UserCoupons::CouponId).unique());
        t.table(&mut user_coupons);
        manager.create_table(user_coupons).await?;

        for (name, table, cols) in [
            ("idx_coupons_validity", Coupons::Table.into_iden(), vec![Coupons::ValidFrom.into_iden(), Coupons::ValidUntil.into_iden()]),
            ("idx_coupons_created", Coupons::Table.into_iden(), vec![Coupons::CreatedAt.into_iden(), Coupons::Id.into_iden()]),
            ("idx_user_coupons_user", UserCoupons::Table.into_iden(), vec![UserCoupons::UserId.into_iden()]),
            ("idx_user_coupons_coupon", UserCoupons::Table.into_iden(), vec![UserCoupons::CouponId.into_iden()]),
            ("idx_user_coupons_is_used", UserCoupons::Table.into_iden(), vec![UserCoupons::IsUsed.into_iden()]),
        ] {
            let mut idx = Index::create();
            idx.name(name).table(table);
            for col in cols {
                idx.col(col);
            }
            manager.create_index(idx).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // 외래 키 때문에 자식 테이블부터 지운다.
        manager.drop_table(Table::drop().table(UserCoupons::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Coupons::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Users::Table).to_owned()).await?;
        Ok(())
    }
}
