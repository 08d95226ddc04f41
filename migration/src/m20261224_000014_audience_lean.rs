//! 대상 고객 표를 가볍게 (CONTRACT 11절의 가져오기: 1,000,000명을 30초 안에).
//!
//! 회원 행은 늘 `INSERT … SELECT … FROM users`(`repo::audience::add_missing`)로만 들어오므로, 들어오는 사용자는 같은 문장이
//! 방금 `users`에서 찾은 사람이다. `users`를 가리키는 외래 키는 그 찾기를 행마다 한 번 더 하고, MySQL에서는 그 키 때문에
//! `(user_id, coupon_id)` 보조 인덱스도 행마다 무작위 자리에 써야 한다. 이 둘이 MariaDB에서 넣기 시간의 절반이었다
//! (BENCHMARKS.md Session 10). 사용자를 지우는 API는 없다. 읽기는 모두 기본 키 `(coupon_id, user_id)`를 쓴다.
//! SQLite는 표를 다시 만들지 않고는 제약을 뗄 수 없고 그 검사가 싸므로 외래 키를 두고 보조 인덱스만 뗀다.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CouponAudiences {
    Table,
    UserId,
    CouponId,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

const USER_FK: &str = "fk_coupon_audiences_user";
const USER_INDEX: &str = "idx_coupon_audiences_user";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Sqlite {
            manager.drop_foreign_key(ForeignKey::drop().name(USER_FK).table(CouponAudiences::Table).to_owned()).await?;
        }
        manager.drop_index(Index::drop().name(USER_INDEX).table(CouponAudiences::Table).to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(USER_INDEX)
                    .table(CouponAudiences::Table)
                    .col(CouponAudiences::UserId)
                    .col(CouponAudiences::CouponId)
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == DatabaseBackend::Sqlite {
            return Ok(());
        }
        manager
            .create_foreign_key(
                ForeignKey::create()
                    .name(USER_FK)
                    .from(CouponAudiences::Table, CouponAudiences::UserId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::Restrict)
                    .to_owned(),
            )
            .await
    }
}
