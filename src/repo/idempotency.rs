//! 멱등 키 저장소: 키 조회, 변경과 같은 트랜잭션에서의 기록(claim), 첫 응답 보관, 만료된 키 정리.
use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::{DbFailure, classify, db_error, id_str, parse_id, ts};
use crate::domain::Role;
use crate::domain::idempotency::{IdemKey, KeyRecord};
use crate::entities::idempotency_key::{self, Column, Entity as Keys};
use crate::error::AppResult;

fn to_record(m: idempotency_key::Model) -> AppResult<KeyRecord> {
    let response = match (m.response_status, m.response_body) {
        (Some(status), Some(body)) => Some((u16::try_from(status).unwrap_or(200), body)),
        _ => None,
    };
    Ok(KeyRecord {
        request_hash: m.request_hash,
        user_coupon_id: m.user_coupon_id.as_deref().map(parse_id).transpose()?,
        response,
        created_at: super::utc(m.created_at),
        role: m.role.as_deref().and_then(Role::parse),
    })
}

pub async fn find(db: &impl ConnectionTrait, user_id: Uuid, key: &str) -> AppResult<Option<KeyRecord>> {
    Keys::find_by_id((id_str(user_id), key.to_owned())).one(db).await.map_err(db_error)?.map(to_record).transpose()
}

/// 여러 사용자의 키를 한 번에 (합친 발급 배치용). 돌려주는 값: (사용자, 키) → 기록.
pub async fn find_many(db: &impl ConnectionTrait, keys: &[&IdemKey]) -> AppResult<Vec<(Uuid, String, KeyRecord)>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let users: Vec<String> = keys.iter().map(|k| id_str(k.user_id)).collect();
    let names: Vec<String> = keys.iter().map(|k| k.key.clone()).collect();
    let rows = Keys::find().filter(Column::UserId.is_in(users)).filter(Column::Key.is_in(names)).all(db).await.map_err(db_error)?;
    let mut out = Vec::new();
    for m in rows {
        let (user, key) = (parse_id(&m.user_id)?, m.key.clone());
        if keys.iter().any(|k| k.user_id == user && k.key == key) {
            out.push((user, key, to_record(m)?));
        }
    }
    Ok(out)
}

/// 변경과 같은 트랜잭션에서 키들을 기록한다 (발급 내역을 가리키며). 같은 키가 이미 있으면(다른 요청이 먼저
/// 커밋함) 기록하지 않고, 기록한 수를 돌려준다. 충돌은 `ON CONFLICT DO NOTHING`으로 받으므로 트랜잭션은 살아 있다.
/// 같은 키가 아직 커밋되지 않은 트랜잭션에 있으면 그 끝을 기다린다(잠금 대기 한도 안에서).
pub async fn record(db: &impl ConnectionTrait, keys: &[(&IdemKey, Uuid)], now: DateTime<Utc>) -> AppResult<usize> {
    if keys.is_empty() {
        return Ok(0);
    }
    let rows = keys.iter().map(|(k, uc)| idempotency_key::ActiveModel {
        user_id: Set(id_str(k.user_id)),
        key: Set(k.key.clone()),
        request_hash: Set(k.request_hash.clone()),
        user_coupon_id: Set(Some(id_str(*uc))),
        response_status: Set(None),
        response_body: Set(None),
        created_at: Set(ts(now)),
        role: Set(Some(k.role.as_str().to_owned())),
    });
    // PostgreSQL은 실패한 문장이 트랜잭션 전체를 망가뜨리므로 `ON CONFLICT DO NOTHING`으로 받고 넣은 수를 센다.
    // MySQL(FOUND_ROWS 때문에 충돌해도 1행으로 센다)과 SQLite는 문장 하나만 되돌리므로 유일 제약 위반을 받는다.
    let insert = Keys::insert_many(rows);
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        let inserted = insert
            .on_conflict(OnConflict::columns([Column::UserId, Column::Key]).do_nothing().to_owned())
            .exec_without_returning(db)
            .await
            .map_err(db_error)?;
        return Ok(inserted as usize);
    }
    match insert.exec_without_returning(db).await {
        Ok(n) => Ok(n as usize),
        Err(e) if classify(&e) == DbFailure::Unique => Ok(0),
        Err(e) => Err(db_error(e)),
    }
}

/// 처음 응답을 보관한다. 트랜잭션에서 기록된 행이면 응답만 채우고, 없으면 새로 넣는다. 이미 응답이 있으면 그대로 둔다.
pub async fn store_response(
    db: &impl ConnectionTrait,
    k: &IdemKey,
    status: u16,
    body: &str,
    success: bool,
    now: DateTime<Utc>,
) -> AppResult<()> {
    if !success {
        return insert_response(db, k, status, body, now).await;
    }
    let updated = Keys::update_many()
        .col_expr(Column::ResponseStatus, sea_orm::sea_query::Expr::val(i32::from(status)))
        .col_expr(Column::ResponseBody, sea_orm::sea_query::Expr::val(body.to_owned()))
        .filter(Column::UserId.eq(id_str(k.user_id)))
        .filter(Column::Key.eq(k.key.clone()))
        .filter(Column::RequestHash.eq(k.request_hash.clone()))
        .filter(Column::ResponseBody.is_null())
        .exec(db)
        .await
        .map_err(db_error)?;
    if updated.rows_affected > 0 {
        return Ok(());
    }
    insert_response(db, k, status, body, now).await
}

/// 응답만 있는 새 기록. 같은 키가 이미 있으면(먼저 보관되었거나 변경과 함께 기록됨) 그것을 그대로 둔다.
async fn insert_response(db: &impl ConnectionTrait, k: &IdemKey, status: u16, body: &str, now: DateTime<Utc>) -> AppResult<()> {
    let row = idempotency_key::ActiveModel {
        user_id: Set(id_str(k.user_id)),
        key: Set(k.key.clone()),
        request_hash: Set(k.request_hash.clone()),
        user_coupon_id: Set(None),
        response_status: Set(Some(i32::from(status))),
        response_body: Set(Some(body.to_owned())),
        created_at: Set(ts(now)),
        role: Set(Some(k.role.as_str().to_owned())),
    };
    // 같은 키가 방금 먼저 보관되었으면 그 처음 응답이 남는다.
    match Keys::insert(row).exec_without_returning(db).await {
        Ok(_) => Ok(()),
        Err(e) if classify(&e) == DbFailure::Unique => Ok(()),
        Err(e) => Err(db_error(e)),
    }
}

/// 오류 답 여럿을 처음 응답으로 한 번에 (여러 행 INSERT). 이미 있는 키는 그대로 둔다.
pub async fn insert_responses(db: &impl ConnectionTrait, items: &[(&IdemKey, u16, &str)], now: DateTime<Utc>) -> AppResult<()> {
    if items.is_empty() {
        return Ok(());
    }
    let rows = items.iter().map(|(k, status, body)| idempotency_key::ActiveModel {
        user_id: Set(id_str(k.user_id)),
        key: Set(k.key.clone()),
        request_hash: Set(k.request_hash.clone()),
        user_coupon_id: Set(None),
        response_status: Set(Some(i32::from(*status))),
        response_body: Set(Some((*body).to_owned())),
        created_at: Set(ts(now)),
        role: Set(Some(k.role.as_str().to_owned())),
    });
    // 충돌하는 행만 건너뛴다 (MySQL: `ON DUPLICATE KEY UPDATE user_id = user_id`, 그 밖: `ON CONFLICT DO NOTHING`).
    // 넣은 수는 쓰지 않으므로 MySQL의 FOUND_ROWS 계산과 상관없다.
    Keys::insert_many(rows)
        .on_conflict(OnConflict::columns([Column::UserId, Column::Key]).do_nothing_on([Column::UserId]).to_owned())
        .exec_without_returning(db)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// 트랜잭션에서 기록되지 않는 변경의 "진행 중" 자리 (응답 없는 행). 이미 있으면 false.
pub async fn claim_placeholder(db: &impl ConnectionTrait, k: &IdemKey, now: DateTime<Utc>) -> AppResult<bool> {
    let row = idempotency_key::ActiveModel {
        user_id: Set(id_str(k.user_id)),
        key: Set(k.key.clone()),
        request_hash: Set(k.request_hash.clone()),
        user_coupon_id: Set(None),
        response_status: Set(None),
        response_body: Set(None),
        created_at: Set(ts(now)),
        role: Set(Some(k.role.as_str().to_owned())),
    };
    match Keys::insert(row).exec_without_returning(db).await {
        Ok(_) => Ok(true),
        Err(e) if classify(&e) == DbFailure::Unique => Ok(false),
        Err(e) => Err(db_error(e)),
    }
}

/// 응답 없는 자리를 지운다 (그 요청이 TRY_AGAIN·INTERNAL로 끝났거나, 오래전에 죽은 프로세스가 남긴 것).
/// `older_than`이 있으면 그보다 오래된 자리만.
pub async fn drop_placeholder(db: &impl ConnectionTrait, k: &IdemKey, older_than: Option<DateTime<Utc>>) -> AppResult<()> {
    let mut q = Keys::delete_many()
        .filter(Column::UserId.eq(id_str(k.user_id)))
        .filter(Column::Key.eq(k.key.clone()))
        .filter(Column::ResponseBody.is_null())
        .filter(Column::UserCouponId.is_null());
    if let Some(t) = older_than {
        q = q.filter(Column::CreatedAt.lt(ts(t)));
    }
    q.exec(db).await.map_err(db_error)?;
    Ok(())
}

/// 보관 기간이 지난 키를 지운다. 지운 수.
pub async fn purge(db: &impl ConnectionTrait, older_than: DateTime<Utc>) -> AppResult<u64> {
    let res = Keys::delete_many().filter(Column::CreatedAt.lt(ts(older_than))).exec(db).await.map_err(db_error)?;
    Ok(res.rows_affected)
}
