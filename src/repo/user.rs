//! users 저장소.
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};
use uuid::Uuid;

use super::{db_error, id_str, parse_id, ts, utc};
use crate::domain::User;
use crate::entities::user::{self, Entity as Users};
use crate::error::AppResult;

fn to_domain(m: user::Model) -> AppResult<User> {
    Ok(User { id: parse_id(&m.id)?, email: m.email, name: m.name, created_at: utc(m.created_at), updated_at: utc(m.updated_at) })
}

pub async fn find_by_id(db: &impl ConnectionTrait, id: Uuid) -> AppResult<Option<User>> {
    Users::find_by_id(id_str(id)).one(db).await.map_err(db_error)?.map(to_domain).transpose()
}

/// 여러 사용자를 한 번에 (DataLoader·`users(ids)`용). 순서는 보장하지 않는다.
pub async fn find_many(db: &impl ConnectionTrait, ids: &[Uuid]) -> AppResult<Vec<User>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = ids.iter().copied().map(id_str).collect();
    Users::find().filter(user::Column::Id.is_in(ids)).all(db).await.map_err(db_error)?.into_iter().map(to_domain).collect()
}

pub async fn exists(db: &impl ConnectionTrait, id: Uuid) -> AppResult<bool> {
    let n = Users::find().filter(user::Column::Id.eq(id_str(id))).count(db).await.map_err(db_error)?;
    Ok(n > 0)
}

pub async fn insert(db: &impl ConnectionTrait, u: &User) -> AppResult<()> {
    let am = user::ActiveModel {
        id: Set(id_str(u.id)),
        email: Set(u.email.clone()),
        name: Set(u.name.clone()),
        created_at: Set(ts(u.created_at)),
        updated_at: Set(ts(u.updated_at)),
    };
    Users::insert(am).exec_without_returning(db).await.map_err(db_error)?;
    Ok(())
}
