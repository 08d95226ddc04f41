//! 사용자당 한도 (CONTRACT 11절, 6절):
//! - `coupons.per_user_limit` (1..100, 기존 쿠폰은 1).
//! - `user_coupons.slot`: 한 사용자가 한 쿠폰에서 받은 몇 번째인지 (1..한도). 유일 키 `(user_id, coupon_id)`가
//!   `(user_id, coupon_id, slot)`이 된다. 발급은 쿠폰 행 잠금 아래에서 "가진 수 + 1"을 자리로 쓰므로, 낡은 셈으로
//!   두 트랜잭션이 같은 자리를 쓰면 데이터베이스가 하나를 거절한다. 기존 행은 모두 1번 자리 (사용자당 하나였다).
//! - `user_coupons.code`: 코드로 받았으면 그 코드. `(code, user_id)` 유일 키: 고른 코드는 한도와 상관없이 사용자당 한 번.
//!
//! SQLite는 테이블 제약을 지울 수 없어서 `user_coupons`를 새 제약으로 다시 만들어 행을 옮긴다 (들어오는 외래 키는 없다).
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend, Statement};

use crate::columns::Types;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Coupons {
    Table,
    PerUserLimit,
}

#[derive(DeriveIden)]
enum UserCoupons {
    Table,
    UserId,
    Slot,
    Code,
}

/// user_coupons의 유일 키 하나: 이름과 열.
struct Unique {
    name: &'static str,
    cols: &'static [&'static str],
}

const OLD_UNIQUE: Unique = Unique { name: "uq_user_coupons_user_coupon", cols: &["user_id", "coupon_id"] };
const SLOT_UNIQUE: Unique = Unique { name: "uq_user_coupons_user_coupon_slot", cols: &["user_id", "coupon_id", "slot"] };
const CODE_UNIQUE: &str = "uq_user_coupons_code_user";

impl Unique {
    /// `CREATE TABLE` 안에 sea-query가 쓰는 모양 그대로의 제약 (SQLite는 이 글자를 찾아 바꾼다).
    fn table_clause(&self) -> String {
        let cols: Vec<String> = self.cols.iter().map(|c| format!("\"{c}\"")).collect();
        format!("CONSTRAINT \"{}\" UNIQUE ({})", self.name, cols.join(", "))
    }
}

/// `user_coupons`의 유일 키 `from`을 `to`로 바꾼다 (up과 down이 방향만 바꿔 부른다).
async fn swap_unique(manager: &SchemaManager<'_>, from: &Unique, to: &Unique) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let (old, new, cols) = (from.name, to.name, to.cols.join(", "));
    match manager.get_database_backend() {
        DatabaseBackend::MySql => {
            db.execute_unprepared(&format!("ALTER TABLE user_coupons DROP INDEX {old}, ADD UNIQUE INDEX {new} ({cols})")).await?;
        }
        DatabaseBackend::Postgres => {
            db.execute_unprepared(&format!("ALTER TABLE user_coupons DROP CONSTRAINT {old}")).await?;
            db.execute_unprepared(&format!("ALTER TABLE user_coupons ADD CONSTRAINT {new} UNIQUE ({cols})")).await?;
        }
        _ => sqlite_swap_unique(manager, &from.table_clause(), &to.table_clause()).await?,
    }
    Ok(())
}

/// SQLite: `user_coupons`를 `from` 제약 대신 `to` 제약으로 다시 만든다 (만든 SQL을 그대로 쓰고 제약 한 줄만 바꾼다).
async fn sqlite_swap_unique(manager: &SchemaManager<'_>, from: &str, to: &str) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let q = |sql: &str| Statement::from_string(DatabaseBackend::Sqlite, sql.to_owned());
    let table: String = db
        .query_one_raw(q("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'user_coupons'"))
        .await?
        .ok_or_else(|| DbErr::Migration("user_coupons가 없다".into()))?
        .try_get_by_index(0)?;
    if !table.contains(from) {
        return Err(DbErr::Migration(format!("user_coupons에 제약이 없다: {from}")));
    }
    let indexes: Vec<String> = db
        .query_all_raw(q("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'user_coupons' AND sql IS NOT NULL"))
        .await?
        .into_iter()
        .map(|r| r.try_get_by_index::<String>(0))
        .collect::<Result<_, _>>()?;
    let next = table.replacen("\"user_coupons\"", "\"user_coupons_next\"", 1).replacen(from, to, 1);
    db.execute_unprepared(&next).await?;
    db.execute_unprepared("INSERT INTO user_coupons_next SELECT * FROM user_coupons").await?;
    db.execute_unprepared("DROP TABLE user_coupons").await?;
    db.execute_unprepared("ALTER TABLE user_coupons_next RENAME TO user_coupons").await?;
    for sql in indexes {
        db.execute_unprepared(&sql).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let t = Types(manager.get_database_backend());
        manager
            .alter_table(
                Table::alter()
                    .table(Coupons::Table)
                    .add_column(ColumnDef::new(Coupons::PerUserLimit).integer().not_null().default(1))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(UserCoupons::Table)
                    .add_column(ColumnDef::new(UserCoupons::Slot).integer().not_null().default(1))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(Table::alter().table(UserCoupons::Table).add_column(t.exact_text(UserCoupons::Code, 32).null()).to_owned())
            .await?;
        swap_unique(manager, &OLD_UNIQUE, &SLOT_UNIQUE).await?;
        manager
            .create_index(
                Index::create()
                    .name(CODE_UNIQUE)
                    .table(UserCoupons::Table)
                    .col(UserCoupons::Code)
                    .col(UserCoupons::UserId)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // 한 사용자가 두 장 이상 가진 쿠폰이 있으면 옛 유일 키를 만들 수 없어 실패한다 (지우지 않는다).
        manager.drop_index(Index::drop().name(CODE_UNIQUE).table(UserCoupons::Table).to_owned()).await?;
        swap_unique(manager, &SLOT_UNIQUE, &OLD_UNIQUE).await?;
        manager.alter_table(Table::alter().table(UserCoupons::Table).drop_column(UserCoupons::Code).to_owned()).await?;
        manager.alter_table(Table::alter().table(UserCoupons::Table).drop_column(UserCoupons::Slot).to_owned()).await?;
        manager.alter_table(Table::alter().table(Coupons::Table).drop_column(Coupons::PerUserLimit).to_owned()).await
    }
}
