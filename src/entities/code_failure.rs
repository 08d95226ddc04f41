//! `code_failures` 테이블: 모르는 코드를 댄 시도와 없는 사용자의 시도 (추측 방어, 최근 1분만 의미가 있다).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "code_failures")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: String,
    /// 시도한 클라이언트 주소 (마이그레이션 전의 행은 '').
    pub addr: String,
    pub failed_at: DateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
