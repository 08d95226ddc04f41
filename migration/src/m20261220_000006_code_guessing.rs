//! 코드 추측 방어(CONTRACT 8절, 이슈 18의 5): 주소별로도 세고, 실패 기록을 주체(사용자·주소)마다 원자적으로 센다.
//!
//! - `code_failures.addr`: 시도한 클라이언트 주소. 기존 행은 그대로 두고 빈 주소('')로 채운다: 1분 뒤면 창 밖이라
//!   사용자 쪽 셈은 그대로 이어지고, 어떤 클라이언트의 주소도 ''가 아니므로 주소 쪽 셈에는 끼지 않는다.
//!   열 추가만 하므로 세 백엔드 모두 제자리에서 바뀌고, 옮기는 동안 옛 프로세스의 삽입(주소 없음)도 그대로 통한다.
//! - `code_guards`: 주체마다 한 행. 실패를 셀 때 이 행을 먼저 써서(upsert) 잠근다: 같은 주체의 동시 실패가
//!   한 줄로 서서 하나씩 세어진다. 쓰기이므로 Galera에서도 노드 사이의 인증 충돌로 한쪽이 버려진다(읽기 잠금은 노드 밖으로 안 나간다).
use sea_orm_migration::prelude::*;

use crate::columns::Types;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CodeFailures {
    Table,
    Addr,
    FailedAt,
}

#[derive(DeriveIden)]
enum CodeGuards {
    Table,
    Subject,
    TouchedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let t = Types(manager.get_database_backend());
        // IPv6 주소의 글자 표기는 45자까지.
        manager
            .alter_table(
                Table::alter()
                    .table(CodeFailures::Table)
                    .add_column(t.exact_text(CodeFailures::Addr, 45).not_null().default(""))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_code_failures_addr_at")
                    .table(CodeFailures::Table)
                    .col(CodeFailures::Addr)
                    .col(CodeFailures::FailedAt)
                    .to_owned(),
            )
            .await?;
        // 주체: "u:<사용자 id>" 또는 "a:<주소>". 잠금 순서를 정하려고 문자열로 정렬할 수 있게 한 열에 둔다.
        let mut guards = Table::create();
        guards
            .table(CodeGuards::Table)
            .col(t.exact_text(CodeGuards::Subject, 64).not_null().primary_key())
            .col(t.time(CodeGuards::TouchedAt).not_null());
        t.table(&mut guards);
        manager.create_table(guards).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(CodeGuards::Table).to_owned()).await?;
        manager.drop_index(Index::drop().name("idx_code_failures_addr_at").table(CodeFailures::Table).to_owned()).await?;
        manager.alter_table(Table::alter().table(CodeFailures::Table).drop_column(CodeFailures::Addr).to_owned()).await?;
        Ok(())
    }
}
