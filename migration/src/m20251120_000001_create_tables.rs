//! users, coupons, user_coupons 테이블과 설계서의 제약조건·인덱스.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

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

/// 백엔드별 컬럼 타입 차이를 한 곳에 모은다.
struct Types(DatabaseBackend);

impl Types {
    /// UUID는 모든 백엔드에서 CHAR(36) 문자열: 평범한 `INSERT ... VALUES ('uuid-문자열')`가 그대로 동작하게.
    fn id(&self, col: impl IntoIden) -> ColumnDef {
        ColumnDef::new(col).char_len(36).not_null().to_owned()
    }

    /// 시각은 UTC. MySQL TIMESTAMP는 2038년까지라 2099년 유효기간을 담지 못하므로 DATETIME(6)을 쓴다.
    fn time(&self, col: impl IntoIden) -> ColumnDef {
        let mut def = ColumnDef::new(col);
        match self.0 {
            DatabaseBackend::MySql => def.custom(Alias::new("DATETIME(6)")),
            _ => def.timestamp_with_time_zone(),
        };
        def
    }

    /// 데이터베이스 기본값이 있는 시각 컬럼 (users에 평범한 INSERT가 되도록).
    fn time_default_now(&self, col: impl IntoIden) -> ColumnDef {
        let mut def = self.time(col);
        def.not_null();
        match self.0 {
            DatabaseBackend::MySql => def.default(Expr::cust("CURRENT_TIMESTAMP(6)")),
            _ => def.default(Expr::current_timestamp()),
        };
        def
    }

    fn money(&self, col: impl IntoIden) -> ColumnDef {
        ColumnDef::new(col).decimal_len(10, 2).to_owned()
    }

    /// MySQL에서는 이모지까지 담도록 utf8mb4 + InnoDB(행 잠금)로 만든다.
    fn table(&self, stmt: &mut TableCreateStatement) {
        if self.0 == DatabaseBackend::MySql {
            stmt.engine("InnoDB")
                .character_set("utf8mb4")
                .collate("utf8mb4_unicode_ci");
        }
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let t = Types(manager.get_database_backend());

        let mut users = Table::create();
        users
            .table(Users::Table)
            .col(t.id(Users::Id).primary_key())
            .col(ColumnDef::new(Users::Email).string_len(255).not_null().unique_key())
            .col(ColumnDef::new(Users::Name).string_len(100).not_null())
            .col(t.time_default_now(Users::CreatedAt))
            .col(t.time_default_now(Users::UpdatedAt));
        t.table(&mut users);
        manager.create_table(users).await?;

        let mut coupons = Table::create();
        coupons
            .table(Coupons::Table)
            .col(t.id(Coupons::Id).primary_key())
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
            .col(t.id(UserCoupons::Id).primary_key())
            .col(t.id(UserCoupons::UserId))
            .col(t.id(UserCoupons::CouponId))
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
            .index(
                Index::create()
                    .name("uq_user_coupons_user_coupon")
                    .col(UserCoupons::UserId)
                    .col(UserCoupons::CouponId)
                    .unique(),
            );
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
