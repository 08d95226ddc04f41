//! `users` 테이블.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub email: String,
    pub name: String,
    pub created_at: DateTimeWithTimeZone,
    pub updated_at: DateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::user_coupon::Entity")]
    UserCoupons,
}

impl Related<super::user_coupon::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::UserCoupons.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
