//! 결제 흐름(CONTRACT 7절): 발급 내역의 주문 필드(보류·사용), 서비스 하나의 원장(이벤트), 멱등 키.
use sea_orm_migration::prelude::*;

use crate::columns::Types;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum UserCoupons {
    Table,
    OrderId,
    ReservedUntil,
    OrderAmount,
    DiscountAmount,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    Sequence,
    Type,
    CouponId,
    UserId,
    UserCouponId,
    OrderId,
    OrderAmount,
    DiscountAmount,
    OccurredAt,
}

#[derive(DeriveIden)]
enum LedgerHead {
    Table,
    Id,
    LastSequence,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    UserId,
    Key,
    RequestHash,
    UserCouponId,
    ResponseStatus,
    ResponseBody,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let t = Types(manager.get_database_backend());
        // 열 추가는 백엔드마다 한 문장에 하나씩 (SQLite는 ALTER TABLE 하나에 열 하나).
        for col in [
            ColumnDef::new(UserCoupons::OrderId).string_len(64).null().to_owned(),
            t.time(UserCoupons::ReservedUntil).null().to_owned(),
            t.order_money(UserCoupons::OrderAmount).null().to_owned(),
            t.order_money(UserCoupons::DiscountAmount).null().to_owned(),
        ] {
            manager.alter_table(Table::alter().table(UserCoupons::Table).add_column(col).to_owned()).await?;
        }

        // 원장: 모든 변경이 같은 트랜잭션에서 한 줄씩. sequence는 ledger_head 행 잠금 아래에서 매기므로 커밋 순서다.
        let mut events = Table::create();
        events
            .table(Events::Table)
            .col(t.id(Events::Id).primary_key())
            .col(ColumnDef::new(Events::Sequence).big_integer().not_null().unique_key())
            .col(ColumnDef::new(Events::Type).string_len(32).not_null())
            .col(t.id(Events::CouponId))
            .col(t.nullable_id(Events::UserId))
            .col(t.nullable_id(Events::UserCouponId))
            .col(ColumnDef::new(Events::OrderId).string_len(64).null())
            .col(t.order_money(Events::OrderAmount).null())
            .col(t.order_money(Events::DiscountAmount).null())
            .col(t.time(Events::OccurredAt).not_null());
        t.table(&mut events);
        manager.create_table(events).await?;
        for (name, col) in [("idx_events_user_coupon", Events::UserCouponId), ("idx_events_coupon", Events::CouponId)] {
            manager.create_index(Index::create().name(name).table(Events::Table).col(col).col(Events::Sequence).to_owned()).await?;
        }

        let mut head = Table::create();
        head.table(LedgerHead::Table)
            .col(ColumnDef::new(LedgerHead::Id).integer().not_null().primary_key())
            .col(ColumnDef::new(LedgerHead::LastSequence).big_integer().not_null().default(0));
        t.table(&mut head);
        manager.create_table(head).await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(LedgerHead::Table)
                    .columns([LedgerHead::Id, LedgerHead::LastSequence])
                    .values_panic([1.into(), 0.into()])
                    .to_owned(),
            )
            .await?;

        // 멱등 키: 토큰의 사용자별. 지정된 변경(발급·사용·취소·보류)은 변경과 같은 트랜잭션에서 기록된다.
        let mut keys = Table::create();
        keys.table(IdempotencyKeys::Table)
            .col(t.id(IdempotencyKeys::UserId))
            .col(t.exact_text(IdempotencyKeys::Key, 255).not_null())
            .col(ColumnDef::new(IdempotencyKeys::RequestHash).char_len(64).not_null())
            .col(t.nullable_id(IdempotencyKeys::UserCouponId))
            .col(ColumnDef::new(IdempotencyKeys::ResponseStatus).integer().null())
            .col(ColumnDef::new(IdempotencyKeys::ResponseBody).text().null())
            .col(t.time_default_now(IdempotencyKeys::CreatedAt))
            .primary_key(Index::create().col(IdempotencyKeys::UserId).col(IdempotencyKeys::Key));
        t.table(&mut keys);
        manager.create_table(keys).await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_idempotency_keys_created")
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::CreatedAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(IdempotencyKeys::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(LedgerHead::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Events::Table).to_owned()).await?;
        for col in [UserCoupons::DiscountAmount, UserCoupons::OrderAmount, UserCoupons::ReservedUntil, UserCoupons::OrderId] {
            manager.alter_table(Table::alter().table(UserCoupons::Table).drop_column(col).to_owned()).await?;
        }
        Ok(())
    }
}
