//! `coupons` 테이블.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "coupons")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    pub discount_type: String,
    pub discount_value: Decimal,
    pub min_purchase_amount: Option<Decimal>,
    pub max_discount_amount: Option<Decimal>,
    pub total_quantity: Option<i32>,
    pub issued_quantity: i32,
    pub valid_from: DateTimeWithTimeZone,
    pub valid_until: DateTimeWithTimeZone,
    pub created_at: DateTimeWithTimeZone,
    pub updated_at: DateTimeWithTimeZone,
    pub status: String,
    pub version: i64,
    pub per_user_limit: i32,
    pub restricted: bool,
    /// 발행 일정 JSON (`domain::ReleaseWave`의 배열). NULL이면 일정 없음.
    pub waves: Option<String>,
    pub budget: Option<Decimal>,
    pub budget_spent: Decimal,
    pub stacking: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
