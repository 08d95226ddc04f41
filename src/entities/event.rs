//! `events` 테이블: 서비스 하나의 원장 (추가만 한다). `pos`는 INSERT 때 데이터베이스가 매기는 증가 번호,
//! `sequence`는 커밋 뒤에 도장 찍는 쪽(service::ledger)이 매기는 스트림의 자리 (그 전에는 비어 있다).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub pos: i64,
    pub id: String,
    pub sequence: Option<i64>,
    #[sea_orm(column_name = "type")]
    pub kind: String,
    pub coupon_id: String,
    pub user_id: Option<String>,
    pub user_coupon_id: Option<String>,
    pub order_id: Option<String>,
    pub order_amount: Option<Decimal>,
    pub discount_amount: Option<Decimal>,
    pub occurred_at: DateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
