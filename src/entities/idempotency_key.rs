//! `idempotency_keys` 테이블: 사용자별 멱등 키와 처음 응답.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub request_hash: String,
    pub user_coupon_id: Option<String>,
    pub response_status: Option<i32>,
    pub response_body: Option<String>,
    pub created_at: DateTimeWithTimeZone,
    /// 키를 쓴 토큰의 역할 ("USER"/"ADMIN"). 역할을 담기 전의 행은 NULL.
    pub role: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
