//! 상점 운영(CONTRACT 8절): 쿠폰 상태, 쿠폰 코드, 코드 추측 실패 기록, 쿠폰별 보유자 목록의 인덱스.
use sea_orm_migration::prelude::*;

use crate::columns::Types;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Coupons {
    Table,
    Status,
}

#[derive(DeriveIden)]
enum UserCoupons {
    Table,
    CouponId,
    IssuedAt,
    Id,
}

#[derive(DeriveIden)]
enum CouponCodes {
    Table,
    Code,
    CouponId,
    MaxRedemptions,
    Redemptions,
    IsGenerated,
    CreatedAt,
}

#[derive(DeriveIden)]
enum CodeFailures {
    Table,
    Id,
    UserId,
    FailedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let t = Types(manager.get_database_backend());
        // 기존 쿠폰은 모두 ACTIVE. 상태는 쿠폰 행에 있어서 발급과 같은 행 잠금 아래에서 읽힌다.
        manager
            .alter_table(
                Table::alter()
                    .table(Coupons::Table)
                    .add_column(ColumnDef::new(Coupons::Status).string_len(16).not_null().default("ACTIVE"))
                    .to_owned(),
            )
            .await?;
        // 쿠폰별 보유자 목록(최신순 키셋)을 정렬 없이 읽는다.
        manager
            .create_index(
                Index::create()
                    .name("idx_user_coupons_coupon_issued")
                    .table(UserCoupons::Table)
                    .col(UserCoupons::CouponId)
                    .col(UserCoupons::IssuedAt)
                    .col(UserCoupons::Id)
                    .to_owned(),
            )
            .await?;

        // 코드는 정규화된 대문자·숫자만 저장하므로 대소문자를 가리는 ASCII 비교로 충분하고 빠르다.
        // 기본 키가 곧 서비스 전체의 유일 인덱스다.
        let mut codes = Table::create();
        codes
            .table(CouponCodes::Table)
            .col(t.exact_text(CouponCodes::Code, 32).not_null().primary_key())
            .col(t.id(CouponCodes::CouponId))
            .col(ColumnDef::new(CouponCodes::MaxRedemptions).integer().null())
            .col(ColumnDef::new(CouponCodes::Redemptions).integer().not_null().default(0))
            .col(ColumnDef::new(CouponCodes::IsGenerated).boolean().not_null())
            .col(t.time(CouponCodes::CreatedAt).not_null());
        t.table(&mut codes);
        manager.create_table(codes).await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_coupon_codes_coupon_created")
                    .table(CouponCodes::Table)
                    .col(CouponCodes::CouponId)
                    .col(CouponCodes::CreatedAt)
                    .col(CouponCodes::Code)
                    .to_owned(),
            )
            .await?;

        // 내보내기(CSV)는 코드 순서의 범위 읽기로 페이지를 넘긴다.
        manager
            .create_index(
                Index::create()
                    .name("idx_coupon_codes_coupon_code")
                    .table(CouponCodes::Table)
                    .col(CouponCodes::CouponId)
                    .col(CouponCodes::Code)
                    .to_owned(),
            )
            .await?;

        // 모르는 코드를 댄 시도: 사용자별 최근 1분만 센다 (프로세스 메모리가 아니라 데이터베이스에 두어 여러 프로세스에서 맞다).
        let mut failures = Table::create();
        failures
            .table(CodeFailures::Table)
            .col(t.id(CodeFailures::Id).primary_key())
            .col(t.id(CodeFailures::UserId))
            .col(t.time(CodeFailures::FailedAt).not_null());
        t.table(&mut failures);
        manager.create_table(failures).await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_code_failures_user_at")
                    .table(CodeFailures::Table)
                    .col(CodeFailures::UserId)
                    .col(CodeFailures::FailedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(Index::create().name("idx_code_failures_at").table(CodeFailures::Table).col(CodeFailures::FailedAt).to_owned())
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(CodeFailures::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(CouponCodes::Table).to_owned()).await?;
        manager.drop_index(Index::drop().name("idx_user_coupons_coupon_issued").table(UserCoupons::Table).to_owned()).await?;
        manager.alter_table(Table::alter().table(Coupons::Table).drop_column(Coupons::Status).to_owned()).await?;
        Ok(())
    }
}
