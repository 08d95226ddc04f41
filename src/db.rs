//! 커넥션 풀. 백엔드마다 잠금 대기 한도와 격리 수준을 커넥션을 열 때 한 번 설정해
//! 발급 경로에 왕복을 더하지 않는다.
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

use crate::config::DbSettings;

/// URL의 백엔드 종류.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    MySql,
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            Some(Backend::MySql)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else {
            None
        }
    }
}

/// 서버 주소의 데이터베이스 부분을 `name`으로 바꾼다 (쿼리 문자열은 그대로). 테스트와 벤치가 새 데이터베이스를 만들 때 쓴다.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..].find('/').map(|i| scheme_end + i).unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// 풀을 연다. SQLite는 행 잠금이 없으므로 커넥션 하나(단일 작성자)로 모든 쓰기를 직렬화한다.
pub async fn connect(url: &str, settings: &DbSettings) -> Result<DatabaseConnection, DbErr> {
    let backend =
        Backend::of_url(url).ok_or_else(|| DbErr::Custom("DATABASE_URL must start with mysql://, postgres:// or sqlite:".into()))?;
    let mut opt = ConnectOptions::new(url.to_owned());
    opt.acquire_timeout(settings.acquire_timeout)
        .connect_timeout(std::time::Duration::from_secs(10))
        // 문장 로그는 끈다: 발급 경로를 느리게 하고, 값이 로그로 새어 나갈 수 있다.
        .sqlx_logging(false);
    if backend != Backend::Sqlite {
        // 풀은 기본으로 커넥션을 내줄 때마다 ping을 한다: 문장마다 왕복이 하나 더 붙는다 (me { coupons }는 왕복 넷 중 둘이 ping).
        // 한동안 놀던 커넥션만 확인한다: 끊긴 커넥션은 대개 오래 논 것이고, 쓰던 중에 끊기면 그 문장이 TRY_AGAIN으로 답한다.
        opt.test_before_acquire_if_idle_for(std::time::Duration::from_secs(10));
    }
    let lock_secs = settings.lock_timeout.as_secs().max(1);
    match backend {
        Backend::MySql => {
            opt.max_connections(settings.max_connections.unwrap_or(10));
            opt.map_sqlx_mysql_pool_opts(move |pool| {
                pool.after_connect(move |conn, _meta| {
                    Box::pin(async move {
                        use sea_orm::sqlx::Executor;
                        // InnoDB 기본 50초 대신 몇 초만 기다린다. READ COMMITTED: 잠금 후 읽기가 최신 커밋을 보고, 갭 잠금이 줄어든다.
                        let lock_sql = format!("SET SESSION innodb_lock_wait_timeout = {lock_secs}");
                        conn.execute(sea_orm::sqlx::AssertSqlSafe(lock_sql)).await?;
                        conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED").await?;
                        Ok(())
                    })
                })
            });
        }
        Backend::Postgres => {
            opt.max_connections(settings.max_connections.unwrap_or(10));
            let lock_timeout = format!("{}ms", settings.lock_timeout.as_millis().max(1));
            opt.map_sqlx_postgres_opts(move |o| o.options([("lock_timeout", lock_timeout.as_str())]));
        }
        Backend::Sqlite => {
            opt.max_connections(1).min_connections(1);
            // 메모리 DB는 커넥션이 닫히면 사라지므로 풀이 커넥션을 버리지 않게 한다.
            opt.map_sqlx_sqlite_pool_opts(|pool| pool.idle_timeout(None).max_lifetime(None));
        }
    }
    Database::connect(opt).await
}

/// 밀린 마이그레이션을 적용한다 (멱등).
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_part_is_replaced_and_the_query_kept() {
        assert_eq!(with_database("mysql://root@127.0.0.1:3306/test", "x"), "mysql://root@127.0.0.1:3306/x");
        assert_eq!(with_database("mysql://root@127.0.0.1:3306", "x"), "mysql://root@127.0.0.1:3306/x");
        assert_eq!(with_database("postgres://u:p@h:5432/db?sslmode=disable", "y"), "postgres://u:p@h:5432/y?sslmode=disable");
    }
}
