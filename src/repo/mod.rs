//! SQL은 여기에만 둔다: `&impl ConnectionTrait`를 받는 함수들 (풀에도 트랜잭션에도 쓰인다),
//! SeaORM 모델 ↔ 도메인 타입 변환, 데이터베이스 오류 → 도메인 오류 변환.
pub mod audience;
pub mod code;
pub mod coupon;
pub mod idempotency;
pub mod ledger;
pub mod user;
pub mod user_coupon;

use chrono::{DateTime, FixedOffset, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, RuntimeErr, Select, SqlErr,
    UpdateResult,
};
use uuid::Uuid;

use crate::error::{AppError, AppResult};

/// 데이터베이스 오류 분류. 클라이언트가 다시 시도하면 되는 것과 그렇지 않은 것을 가른다.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum DbFailure {
    /// 교착 상태 희생자 또는 직렬화 실패: 같은 트랜잭션을 바로 다시 돌려도 된다.
    Deadlock,
    /// 잠금 대기 시간 초과 또는 풀에서 커넥션을 제때 얻지 못함.
    Busy,
    /// 데이터베이스에 닿지 않음 (연결 끊김·거부, 클러스터에서 떨어진 Galera 노드): 커밋 여부를 모를 수 있어 다시 돌리지 않는다.
    Unavailable,
    /// 유일 제약 위반.
    Unique,
    Other,
}

/// 백엔드별 오류 번호/SQLSTATE를 한 곳에서 해석한다.
pub fn classify(err: &DbErr) -> DbFailure {
    if let DbErr::ConnectionAcquire(_) = err {
        return DbFailure::Busy;
    }
    if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
        return DbFailure::Unique;
    }
    let (DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) | DbErr::Conn(RuntimeErr::SqlxError(e))) = err
    else {
        return DbFailure::Other;
    };
    match &**e {
        sea_orm::sqlx::Error::PoolTimedOut => DbFailure::Busy,
        sea_orm::sqlx::Error::Io(_) | sea_orm::sqlx::Error::PoolClosed | sea_orm::sqlx::Error::WorkerCrashed => DbFailure::Unavailable,
        sea_orm::sqlx::Error::Database(db) => {
            if let Some(my) = db.try_downcast_ref::<sea_orm::sqlx::mysql::MySqlDatabaseError>() {
                return match my.number() {
                    // 1213: 교착 상태 희생자, 그리고 Galera의 인증 충돌·강제 중단 (ER_LOCK_DEADLOCK)
                    1213 => DbFailure::Deadlock,
                    1205 => DbFailure::Busy,
                    // 1047: 클러스터의 주 구성에서 떨어져 아직 받을 수 없는 Galera 노드 (WSREP has not yet prepared node)
                    1047 => DbFailure::Unavailable,
                    _ => DbFailure::Other,
                };
            }
            if db.try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>().is_some() {
                // SQLite 확장 코드의 아래 8비트가 기본 코드: BUSY(5), LOCKED(6)와 그 변형들.
                let primary = db.code().and_then(|c| c.parse::<i32>().ok()).map(|c| c & 0xff);
                return if matches!(primary, Some(5) | Some(6)) { DbFailure::Busy } else { DbFailure::Other };
            }
            match db.code().as_deref() {
                // 40P01 교착 상태, 40001 직렬화 실패 (PostgreSQL)
                Some("40P01") | Some("40001") => DbFailure::Deadlock,
                // 55P03 lock_not_available (lock_timeout)
                Some("55P03") => DbFailure::Busy,
                _ => DbFailure::Other,
            }
        }
        _ => DbFailure::Other,
    }
}

/// 분류된 데이터베이스 오류를 계약서의 코드로: 재시도 가능한 것은 TRY_AGAIN, 나머지는 INTERNAL(상세는 로그 전용).
pub fn db_error(err: DbErr) -> AppError {
    match classify(&err) {
        DbFailure::Deadlock => AppError::Aborted,
        DbFailure::Busy | DbFailure::Unavailable => AppError::TryAgain,
        DbFailure::Unique | DbFailure::Other => AppError::Internal(err.to_string()),
    }
}

/// 저장된 id 문자열을 UUID로. 잘못된 값은 데이터 손상이므로 INTERNAL.
pub(crate) fn parse_id(raw: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(raw).map_err(|e| AppError::Internal(format!("저장된 id가 UUID가 아님: {raw:?}: {e}")))
}

/// 한 INSERT·IN 목록에 싣는 행·값 수.
pub(crate) const IN_LIST: usize = 500;

/// `ids`를 `IN_LIST`개씩 나눠, 주어진 목록에서 id 열 하나를 고르는 `query`를 돌리고 나온 id를 모은다.
pub(crate) async fn collect_ids<E: EntityTrait>(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
    query: impl Fn(Vec<String>) -> Select<E>,
) -> AppResult<std::collections::HashSet<Uuid>> {
    let mut found = std::collections::HashSet::new();
    for chunk in ids.chunks(IN_LIST) {
        let rows: Vec<String> = query(chunk.iter().copied().map(id_str).collect()).into_tuple().all(db).await.map_err(db_error)?;
        for r in &rows {
            found.insert(parse_id(r)?);
        }
    }
    Ok(found)
}

/// 트랜잭션이 열린 동안 다른 커넥션으로 읽을 수 있는지. SQLite는 커넥션이 하나뿐이고 트랜잭션이 그것을 쥐고 있다.
pub fn reads_beside_transaction(db: &sea_orm::DatabaseConnection) -> bool {
    db.get_database_backend() != sea_orm::DbBackend::Sqlite
}

/// UUID를 저장 형식(하이픈 있는 소문자 36자)으로.
pub(crate) fn id_str(id: Uuid) -> String {
    id.hyphenated().to_string()
}

/// 시각을 저장용 값으로. MySQL 드라이버가 `DateTime<Utc>`를 TIMESTAMP(2038년까지)로 보내서
/// 2099년 같은 값이 NULL이 되므로, 모든 백엔드에서 오프셋 있는 시각으로 바인딩한다(MySQL은 UTC 문자열로 나간다).
pub(crate) fn ts(t: DateTime<Utc>) -> DateTime<FixedOffset> {
    t.fixed_offset()
}

/// 읽은 시각을 UTC로.
pub(crate) fn utc(t: DateTime<FixedOffset>) -> DateTime<Utc> {
    t.with_timezone(&Utc)
}

/// 최신순 키셋 페이지 (쿠폰 목록, 보유자, 코드 목록이 같이 쓴다): (시각, 키)가 `after`보다 앞선 행만,
/// 시각·키 내림차순으로 `limit`개를 도메인 값으로. 새 행이 끼어들어도 이미 받은 커서 뒤의 순서는 바뀌지 않는다.
pub(crate) async fn newest_first<E: EntityTrait, T>(
    db: &impl ConnectionTrait,
    q: Select<E>,
    (time, key): (E::Column, E::Column),
    after: Option<(DateTime<Utc>, String)>,
    limit: u64,
    to_domain: fn(E::Model) -> AppResult<T>,
) -> AppResult<Vec<T>> {
    let q = match after {
        Some((at, k)) => q.filter(Condition::any().add(time.lt(ts(at))).add(Condition::all().add(time.eq(ts(at))).add(key.lt(k)))),
        None => q,
    };
    q.order_by_desc(time).order_by_desc(key).limit(limit).all(db).await.map_err(db_error)?.into_iter().map(to_domain).collect()
}

/// 정확히 한 행을 바꿨어야 하는 갱신 (잠금을 쥔 트랜잭션 안의 갱신): 다른 수는 데이터가 어긋났다는 뜻이라 INTERNAL.
pub(crate) fn exactly_one(res: UpdateResult, what: &str) -> AppResult<()> {
    match res.rows_affected {
        1 => Ok(()),
        n => Err(AppError::Internal(format!("{what} 갱신 대상 행이 {n}개"))),
    }
}
