//! `code_guards` 테이블: 추측 실패를 세는 주체(사용자·주소)마다 한 행. 실패를 셀 때 이 행을 써서 잠근다.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "code_guards")]
pub struct Model {
    /// "u:<사용자 id>" 또는 "a:<주소>".
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject: String,
    pub touched_at: DateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
