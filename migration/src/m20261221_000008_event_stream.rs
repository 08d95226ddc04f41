//! 전역 잠금 없는 원장 (CONTRACT 9절 "Order without a global lock"): `ledger_head` 행 하나를 모든 쓰기가 차례로 잠그던
//! 것을 없앤다. 제자리에서 옮긴다:
//! - `events`를 새 모양으로 다시 만든다: `pos`(데이터베이스가 INSERT 때 매기는 증가 번호, 기본 키)와 비어 있을 수 있는
//!   `sequence`(커밋 뒤에 도장 찍는 쪽이 매긴다). 기존 행은 sequence 순서대로 옮기고 sequence를 그대로 둔다.
//!   SQLite는 열의 자동 증가를 ALTER로 붙일 수 없으므로 세 백엔드 모두 같은 방법(새 테이블 → 복사 → 교체)을 쓴다.
//! - 도장 찍는 쪽의 상태는 `relay_state`의 두 번째 행(id = 2): 마지막으로 매긴 sequence와 임대.
//!   `ledger_head`의 마지막 값으로 시작해서, 새 번호는 모두 지금까지 보인 번호보다 크다.
//! - `ledger_head`를 지운다.
use sea_orm_migration::prelude::*;

use crate::columns::Types;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Events {
    Table,
    Pos,
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
enum EventsNext {
    Table,
}

#[derive(DeriveIden)]
enum LedgerHead {
    Table,
    Id,
    LastSequence,
}

#[derive(DeriveIden, Clone, Copy)]
enum RelayState {
    Table,
    Id,
    LastSequence,
}

/// 새 `events`의 열들 (pos 뒤의 순서는 옛 테이블과 같다).
const COPIED: [Events; 10] = [
    Events::Id,
    Events::Sequence,
    Events::Type,
    Events::CouponId,
    Events::UserId,
    Events::UserCouponId,
    Events::OrderId,
    Events::OrderAmount,
    Events::DiscountAmount,
    Events::OccurredAt,
];

/// `events`를 새 모양(`later` = 도장을 나중에 찍는 모양: pos 기본 키, sequence는 비어 있을 수 있음) 또는 옛 모양(id 기본 키,
/// sequence 필수)으로 다시 만든다. 행은 sequence 순서대로 옮긴다.
async fn rebuild(manager: &SchemaManager<'_>, later: bool) -> Result<(), DbErr> {
    let t = Types(manager.get_database_backend());
    let mut next = Table::create();
    next.table(EventsNext::Table);
    if later {
        // 같은 행(쿠폰, 발급 내역)을 잠그는 트랜잭션들은 잠금을 잡은 뒤 마지막 문장에서 이벤트를 넣으므로,
        // 서로 기다린 변경의 이벤트는 pos도 커밋 순서다. 도장은 이 순서로 찍는다.
        next.col(ColumnDef::new(Events::Pos).big_integer().not_null().auto_increment().primary_key())
            .col(t.id(Events::Id).unique_key())
            .col(ColumnDef::new(Events::Sequence).big_integer().null().unique_key());
    } else {
        next.col(t.id(Events::Id).primary_key()).col(ColumnDef::new(Events::Sequence).big_integer().not_null().unique_key());
    }
    next.col(ColumnDef::new(Events::Type).string_len(32).not_null())
        .col(t.id(Events::CouponId))
        .col(t.nullable_id(Events::UserId))
        .col(t.nullable_id(Events::UserCouponId))
        .col(ColumnDef::new(Events::OrderId).string_len(64).null())
        .col(t.order_money(Events::OrderAmount).null())
        .col(t.order_money(Events::DiscountAmount).null())
        .col(t.time(Events::OccurredAt).not_null());
    t.table(&mut next);
    manager.create_table(next).await?;
    let copy = Query::insert()
        .into_table(EventsNext::Table)
        .columns(COPIED)
        .select_from(Query::select().columns(COPIED).from(Events::Table).order_by(Events::Sequence, Order::Asc).to_owned())
        .map_err(|e| DbErr::Migration(e.to_string()))?
        .to_owned();
    manager.exec_stmt(copy).await?;
    manager.drop_table(Table::drop().table(Events::Table).to_owned()).await?;
    manager.rename_table(Table::rename().table(EventsNext::Table, Events::Table).to_owned()).await?;
    // 쿠폰별 피드는 sequence 순서로, 발급 내역별 이력은 (새 모양에서) pos 순서로 읽는다: 도장이 아직 없는 이벤트도 보인다.
    let history = if later { Events::Pos } else { Events::Sequence };
    for (name, col, order) in
        [("idx_events_coupon", Events::CouponId, Events::Sequence), ("idx_events_user_coupon", Events::UserCouponId, history)]
    {
        manager.create_index(Index::create().name(name).table(Events::Table).col(col).col(order).to_owned()).await?;
    }
    Ok(())
}

/// 지금까지 매긴 가장 큰 sequence (없으면 0).
async fn max_sequence(manager: &SchemaManager<'_>) -> Result<i64, DbErr> {
    let max = Query::select().expr(Expr::col(Events::Sequence).max()).from(Events::Table).to_owned();
    match manager.get_connection().query_one(&max).await? {
        Some(row) => Ok(row.try_get_by_index::<Option<i64>>(0)?.unwrap_or(0)),
        None => Ok(0),
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rebuild(manager, true).await?;
        // 도장 찍는 쪽의 행: ledger_head의 마지막 번호에서 시작한다.
        let head = Query::select()
            .expr(Expr::val(2))
            .expr(Expr::col(LedgerHead::LastSequence))
            .from(LedgerHead::Table)
            .and_where(Expr::col(LedgerHead::Id).eq(1))
            .to_owned();
        let insert = Query::insert()
            .into_table(RelayState::Table)
            .columns([RelayState::Id, RelayState::LastSequence])
            .select_from(head)
            .map_err(|e| DbErr::Migration(e.to_string()))?
            .to_owned();
        manager.exec_stmt(insert).await?;
        manager.drop_table(Table::drop().table(LedgerHead::Table).to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // 도장이 아직 없는 이벤트에 pos 순서로 마지막 번호 뒤의 번호를 매긴 뒤 옛 모양으로 되돌린다.
        let backend = manager.get_database_backend();
        let stamp = Query::update()
            .table(Events::Table)
            .value(Events::Sequence, Expr::col(Events::Pos).add(max_sequence(manager).await?))
            .and_where(Expr::col(Events::Sequence).is_null())
            .to_owned();
        manager.exec_stmt(stamp).await?;
        let last = max_sequence(manager).await?;
        rebuild(manager, false).await?;
        let mut head = Table::create();
        head.table(LedgerHead::Table)
            .col(ColumnDef::new(LedgerHead::Id).integer().not_null().primary_key())
            .col(ColumnDef::new(LedgerHead::LastSequence).big_integer().not_null().default(0));
        Types(backend).table(&mut head);
        manager.create_table(head).await?;
        // 열 순서를 첫 마이그레이션의 INSERT와 다르게 둔다: 같은 SQL이면 sqlx가 그때(정수 두 개) 준비한 문장을 다시 써서
        // PostgreSQL이 64비트 값을 거절한다.
        let row = Query::insert()
            .into_table(LedgerHead::Table)
            .columns([LedgerHead::LastSequence, LedgerHead::Id])
            .values([last.into(), 1.into()])
            .map_err(|e| DbErr::Migration(e.to_string()))?
            .to_owned();
        manager.exec_stmt(row).await?;
        manager.exec_stmt(Query::delete().from_table(RelayState::Table).and_where(Expr::col(RelayState::Id).eq(2)).to_owned()).await
    }
}
