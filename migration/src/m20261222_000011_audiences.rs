//! 대상 고객 (CONTRACT 11절 "Audiences"): `coupons.restricted`와 쿠폰마다의 회원 `coupon_audiences`.
//! - 기본 키 (coupon_id, user_id): 발급 때의 회원 확인이 색인 조회 하나이고, 같은 사람을 두 번 넣지 못한다.
//! - (user_id, coupon_id) 색인: `coupons(availableOnly: true)`가 보는 사람의 회원 쿠폰을 한 번에 고른다 (N+1 없이).
//!
//! 기존 쿠폰은 제한 없음(false)으로 옮겨진다.
use sea_orm_migration::prelude::*;

use crate::columns::Types;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Coupons {
    Table,
    Id,
    Restricted,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum CouponAudiences {
    Table,
    CouponId,
    UserId,
    AddedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let t = Types(manager.get_database_backend());
        manager
            .alter_table(
                Table::alter()
                    .table(Coupons::Table)
                    .add_column(ColumnDef::new(Coupons::Restricted).boolean().not_null().default(false))
                    .to_owned(),
            )
            .await?;
        let mut audiences = Table::create();
        audiences
            .table(CouponAudiences::Table)
            .col(t.id(CouponAudiences::CouponId))
            .col(t.id(CouponAudiences::UserId))
            .col(t.time(CouponAudiences::AddedAt).not_null())
            .primary_key(Index::create().col(CouponAudiences::CouponId).col(CouponAudiences::UserId))
            .foreign_key(
                ForeignKey::create()
                    .name("fk_coupon_audiences_coupon")
                    .from(CouponAudiences::Table, CouponAudiences::CouponId)
                    .to(Coupons::Table, Coupons::Id)
                    .on_delete(ForeignKeyAction::Restrict),
            )
            .foreign_key(
                ForeignKey::create()
                    .name("fk_coupon_audiences_user")
                    .from(CouponAudiences::Table, CouponAudiences::UserId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::Restrict),
            );
        t.table(&mut audiences);
        manager.create_table(audiences).await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_coupon_audiences_user")
                    .table(CouponAudiences::Table)
                    .col(CouponAudiences::UserId)
                    .col(CouponAudiences::CouponId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(CouponAudiences::Table).to_owned()).await?;
        manager.alter_table(Table::alter().table(Coupons::Table).drop_column(Coupons::Restricted).to_owned()).await
    }
}
