//! coupon_audiences 저장소: 제한된 쿠폰의 회원.
use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{OnConflict, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::{IN_LIST, collect_ids, db_error, id_str, ts};
use crate::entities::coupon_audience::{Column, Entity as Audiences};
use crate::error::{AppError, AppResult};

/// 이 사용자가 이 쿠폰의 회원인지 (기본 키 조회 하나).
pub async fn is_member(db: &impl ConnectionTrait, coupon_id: Uuid, user_id: Uuid) -> AppResult<bool> {
    let n = Audiences::find()
        .filter(Column::CouponId.eq(id_str(coupon_id)))
        .filter(Column::UserId.eq(id_str(user_id)))
        .count(db)
        .await
        .map_err(db_error)?;
    Ok(n > 0)
}

/// 주어진 사용자 가운데 이 쿠폰의 회원.
pub async fn members_among(db: &impl ConnectionTrait, coupon_id: Uuid, users: &[Uuid]) -> AppResult<HashSet<Uuid>> {
    collect_ids(db, users, |ids| {
        Audiences::find()
            .select_only()
            .column(Column::UserId)
            .filter(Column::CouponId.eq(id_str(coupon_id)))
            .filter(Column::UserId.is_in(ids))
    })
    .await
}

/// 회원 넣기 한 문장의 행 수. 500행씩 넣으면 SQLite 가져오기에서 서버 메모리의 최고치가 약 6 MB 더 컸다 (문장마다 값 1,500개를
/// 만들고 SQLite 작업 스레드가 버린다); 100행이면 MariaDB의 시간도 그대로다 (BENCHMARKS.md Session 11).
const INSERT_ROWS: usize = 100;

/// 있는 사용자로 확인된 id를 넣고 새로 넣은 수를 돌려준다. 조각마다 여러 행 `INSERT` 하나, 이미 회원인 행은 건너뛴다
/// (MySQL `INSERT IGNORE`, PostgreSQL·SQLite `ON CONFLICT DO NOTHING`): 세 백엔드 모두 건너뛴 행은 넣은 수(rows_affected)에
/// 들지 않는다. `ON DUPLICATE KEY UPDATE`는 MySQL 드라이버의 FOUND_ROWS 때문에 건너뛴 행도 세므로 쓰지 않는다.
/// 같은 문장에서 사용자 표를 다시 찾지 않는다 (찾기는 부르는 쪽이 이미 했고, 사용자는 지워지지 않는다): 가져오기의 조각마다
/// 500번의 기본 키 조회가 준다. 쿠폰 행 잠금 아래에서만 부른다.
pub async fn add_known(db: &impl ConnectionTrait, coupon_id: Uuid, users: &[Uuid], now: DateTime<Utc>) -> AppResult<u64> {
    let mut added = 0;
    let backend = db.get_database_backend();
    let coupon = id_str(coupon_id);
    for chunk in users.chunks(INSERT_ROWS) {
        let mut insert = Query::insert();
        insert.into_table(Audiences).columns([Column::CouponId, Column::UserId, Column::AddedAt]);
        for u in chunk {
            insert
                .values([coupon.clone().into(), id_str(*u).into(), ts(now).into()])
                .map_err(|e| AppError::Internal(format!("회원 넣기 문장: {e}")))?;
        }
        let statement = if backend == DbBackend::MySql {
            // sea-query는 MySQL의 DO NOTHING을 `ON DUPLICATE KEY IGNORE`(문법 오류)로 쓰므로 `INSERT IGNORE`를 직접 쓴다.
            let mut statement = backend.build(&insert);
            statement.sql = statement.sql.replacen("INSERT ", "INSERT IGNORE ", 1);
            statement
        } else {
            backend.build(insert.on_conflict(OnConflict::columns([Column::CouponId, Column::UserId]).do_nothing().to_owned()))
        };
        added += db.execute_raw(statement).await.map_err(db_error)?.rows_affected();
    }
    Ok(added)
}

/// 회원에서 뺀다. 뺀 수.
pub async fn remove(db: &impl ConnectionTrait, coupon_id: Uuid, users: &[Uuid]) -> AppResult<u64> {
    let mut removed = 0;
    for chunk in users.chunks(IN_LIST) {
        let ids: Vec<String> = chunk.iter().copied().map(id_str).collect();
        let res = Audiences::delete_many()
            .filter(Column::CouponId.eq(id_str(coupon_id)))
            .filter(Column::UserId.is_in(ids))
            .exec(db)
            .await
            .map_err(db_error)?;
        removed += res.rows_affected;
    }
    Ok(removed)
}

/// 회원 수.
pub async fn size(db: &impl ConnectionTrait, coupon_id: Uuid) -> AppResult<u64> {
    Audiences::find().filter(Column::CouponId.eq(id_str(coupon_id))).count(db).await.map_err(db_error)
}
