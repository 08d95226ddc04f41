//! 발급의 불변식 (CONTRACT 5절, 11절): 쿠폰마다 issued_quantity = 발급 내역 수 ≤ total_quantity(수량이 있을 때),
//! 그리고 어느 사용자도 한 쿠폰을 per_user_limit장보다 많이 갖지 않는다. 데이터베이스를 SQL로 직접 읽는다.
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
    /// 한 사용자가 가진 가장 많은 장 수 (발급 내역이 없으면 0)
    pub most_by_one_user: i64,
    /// 사용자당 한도 (이 열이 없는 옛 스키마에서는 1: 벤치가 옛 서버를 돌릴 때)
    pub per_user_limit: i64,
}

/// 쿠폰 하나의 값들을 센다. 쿠폰이 없으면 오류.
pub async fn counts(db: &impl ConnectionTrait, coupon: Uuid) -> Result<Counts> {
    let backend = db.get_database_backend();
    let param = if backend == DbBackend::Postgres { "$1" } else { "?" };
    let query = |limit: &str| {
        let sql = format!(
            "SELECT c.issued_quantity, c.total_quantity, \
             (SELECT COUNT(*) FROM user_coupons u WHERE u.coupon_id = c.id), \
             COALESCE((SELECT COUNT(*) FROM user_coupons u WHERE u.coupon_id = c.id GROUP BY u.user_id ORDER BY COUNT(*) DESC LIMIT 1), 0), \
             {limit} \
             FROM coupons c WHERE c.id = {param}"
        );
        Statement::from_sql_and_values(backend, sql, [coupon.hyphenated().to_string().into()])
    };
    let row = match db.query_one_raw(query("c.per_user_limit")).await {
        Ok(row) => row,
        // per_user_limit 열이 없는 옛 스키마 (마이그레이션 m20261222_000010 전): 한도는 1이었다.
        Err(_) => db.query_one_raw(query("1")).await?,
    };
    let Some(row) = row else {
        bail!("쿠폰 {coupon}이 없음");
    };
    Ok(Counts {
        issued: i64::from(row.try_get_by_index::<i32>(0)?),
        total: row.try_get_by_index::<Option<i32>>(1)?.map(i64::from),
        rows: row.try_get_by_index(2)?,
        most_by_one_user: row.try_get_by_index(3)?,
        // 열은 INTEGER, 옛 스키마의 상수 1은 백엔드에 따라 BIGINT.
        per_user_limit: row.try_get_by_index::<i64>(4).or_else(|_| row.try_get_by_index::<i32>(4).map(i64::from))?,
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
    if c.most_by_one_user > c.per_user_limit {
        bail!("INVARIANT BROKEN: a user holds {} of it, over the per-user limit {} ({coupon})", c.most_by_one_user, c.per_user_limit);
    }
    if let Some(want) = exactly
        && c.issued != want
    {
        bail!("INVARIANT BROKEN: expected exactly {want} issued, found {} ({coupon})", c.issued);
    }
    Ok(c.issued)
}

/// 예산의 불변식 (CONTRACT 11절): 현재 사용과 `now`에 만료 전인 보류의 할인 합계 ≤ budget. 합계를 돌려준다.
/// 예산이 없는 쿠폰이면 오류 (이 검사를 부른 쪽이 잘못 골랐다).
pub async fn check_budget(
    db: &impl ConnectionTrait,
    coupon: Uuid,
    now: sea_orm::prelude::ChronoDateTimeUtc,
) -> Result<sea_orm::prelude::Decimal> {
    use sea_orm::prelude::Decimal;
    let backend = db.get_database_backend();
    // 자리표시자는 나오는 순서대로: 시각, 쿠폰.
    let (p_at, p_coupon) = if backend == DbBackend::Postgres { ("$1", "$2") } else { ("?", "?") };
    let sql = format!(
        "SELECT c.budget, (SELECT SUM(u.discount_amount) FROM user_coupons u WHERE u.coupon_id = c.id \
         AND (u.is_used = {t} OR (u.order_id IS NOT NULL AND u.reserved_until > {p_at}))) FROM coupons c WHERE c.id = {p_coupon}",
        t = if backend == DbBackend::Postgres { "true" } else { "1" }
    );
    // 앱이 쓰는 것과 같은 모양으로 (UTC 오프셋이 붙은 시각): SQLite에서는 문자열 비교가 된다.
    let at: sea_orm::Value = now.fixed_offset().into();
    let stmt = Statement::from_sql_and_values(backend, sql, [at, coupon.hyphenated().to_string().into()]);
    let Some(row) = db.query_one_raw(stmt).await? else {
        bail!("쿠폰 {coupon}이 없음");
    };
    // SQLite는 DECIMAL을 REAL로 돌려준다.
    let dec = |i: usize| -> Result<Option<Decimal>> {
        match row.try_get_by_index::<Option<Decimal>>(i) {
            Ok(v) => Ok(v),
            Err(_) => Ok(row.try_get_by_index::<Option<f64>>(i)?.and_then(|f| Decimal::try_from(f).ok()).map(|d| d.round_dp(2))),
        }
    };
    let Some(budget) = dec(0)? else {
        bail!("쿠폰 {coupon}에 예산이 없음");
    };
    let spent = dec(1)?.unwrap_or_default();
    if spent > budget {
        bail!("INVARIANT BROKEN: discounts of uses and holds {spent} > budget {budget} ({coupon})");
    }
    Ok(spent)
}
