//! `relay_state` 테이블: 원장의 뒤에서 도는 일꾼의 커서와 임대. id = 1: NATS 중계 (확인받은 마지막 sequence),
//! id = 2: 도장 (마지막으로 매긴 sequence).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "relay_state")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    pub last_sequence: i64,
    pub leader: Option<String>,
    pub lease_until: Option<DateTimeWithTimeZone>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
