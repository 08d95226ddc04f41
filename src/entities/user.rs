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
    // 발급 내역 쪽에서 사용자를 거꾸로 가리키지 않도록(두 파일이 서로를 부르지 않게) 조인 조건을 이쪽에만 적는다.
    #[sea_orm(belongs_to = "super::user_coupon::Entity", from = "Column::Id", to = "super::user_coupon::Column::UserId")]
    UserCoupons,
}

impl Related<super::user_coupon::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::UserCoupons.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
