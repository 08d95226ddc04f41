//! `user_coupons` 테이블 (발급 내역).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_coupons")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: String,
    pub coupon_id: String,
    pub is_used: bool,
    pub used_at: Option<DateTimeWithTimeZone>,
    pub issued_at: DateTimeWithTimeZone,
    pub order_id: Option<String>,
    pub reserved_until: Option<DateTimeWithTimeZone>,
    pub order_amount: Option<Decimal>,
    pub discount_amount: Option<Decimal>,
    pub slot: i32,
    pub code: Option<String>,
    pub set_position: Option<i32>,
    pub held_at: Option<DateTimeWithTimeZone>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(belongs_to = "super::coupon::Entity", from = "Column::CouponId", to = "super::coupon::Column::Id")]
    Coupon,
}

impl Related<super::coupon::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Coupon.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
