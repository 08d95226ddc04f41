//! 발급의 불변식 (CONTRACT 5절, 11절): 쿠폰마다 issued_quantity = 발급 내역 수 ≤ total_quantity(수량이 있을 때),
//! 그리고 한 사용자는 한 쿠폰을 한 장까지 (perUserLimit이 생기기 전의 한도 1). 데이터베이스를 SQL로 직접 읽는다.
use anyhow::{Result, bail};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use uuid::Uuid;

/// 쿠폰 하나를 한 문장으로 센 값 (한 스냅숏에서 읽어 서로 어긋나지 않는다).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub issued: i64,
    pub total: Option<i64>,
    /// 그 쿠폰의 발급 내역 수
    pub rows: i64,
    /// 그 쿠폰을 가진 서로 다른 사용자 수
    pub holders: i64,
}

/// 쿠폰 하나의 값들을 센다. 쿠폰이 없으면 오류.
pub async fn counts(db: &impl ConnectionTrait, coupon: Uuid) -> Result<Counts> {
    let backend = db.get_database_backend();
    let param = if backend == DbBackend::Postgres { "$1" } else { "?" };
    let sql = format!(
        "SELECT c.issued_quantity, c.total_quantity, \
         (SELECT COUNT(*) FROM user_coupons u WHERE u.coupon_id = c.id), \
         (SELECT COUNT(DISTINCT u.user_id) FROM user_coupons u WHERE u.coupon_id = c.id) \
         FROM coupons c WHERE c.id = {param}"
    );
    let stmt = Statement::from_sql_and_values(backend, sql, [coupon.hyphenated().to_string().into()]);
    let Some(row) = db.query_one_raw(stmt).await? else {
        bail!("쿠폰 {coupon}이 없음");
    };
    Ok(Counts {
        issued: i64::from(row.try_get_by_index::<i32>(0)?),
        total: row.try_get_by_index::<Option<i32>>(1)?.map(i64::from),
        rows: row.try_get_by_index(2)?,
        holders: row.try_get_by_index(3)?,
    })
}

/// 불변식을 확인하고 발급 수를 돌려준다. `exactly`가 있으면 발급 수가 정확히 그만큼이어야 한다.
pub async fn check(db: &impl ConnectionTrait, coupon: Uuid, exactly: Option<i64>) -> Result<i64> {
    let c = counts(db, coupon).await?;
    if c.issued != c.rows {
        bail!("INVARIANT BROKEN: issued_quantity {} but {} user coupons ({coupon})", c.issued, c.rows);
    }
    if let Some(total) = c.total
        && c.issued > total
    {
        bail!("INVARIANT BROKEN: over-issued {} > {total} ({coupon})", c.issued);
    }
    if c.holders != c.rows {
        bail!("INVARIANT BROKEN: {} user coupons but {} distinct users: a user holds it twice ({coupon})", c.rows, c.holders);
    }
    if let Some(want) = exactly
        && c.issued != want
    {
        bail!("INVARIANT BROKEN: expected exactly {want} issued, found {} ({coupon})", c.issued);
    }
    Ok(c.issued)
}
