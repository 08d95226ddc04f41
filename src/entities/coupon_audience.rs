//! `coupon_audiences` 테이블: 제한된 쿠폰(`coupons.restricted`)을 받을 수 있는 사용자.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "coupon_audiences")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub coupon_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    pub added_at: DateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
