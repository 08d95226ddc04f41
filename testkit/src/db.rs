//! 데이터베이스 서버 위의 새 데이터베이스: 주소 고쳐 쓰기, 만들기, 지우기, 드롭될 때 지우는 지킴이.
use anyhow::{Context, Result, bail};
use sea_orm::{ConnectionTrait, Database};

/// 주소가 가리키는 데이터베이스 종류.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    MySql,
    Postgres,
    Sqlite,
}

impl Kind {
    pub fn of_url(url: &str) -> Option<Kind> {
        let scheme = url.split_once(':')?.0;
        match scheme {
            "mysql" | "mariadb" => Some(Kind::MySql),
            "postgres" | "postgresql" => Some(Kind::Postgres),
            "sqlite" => Some(Kind::Sqlite),
            _ => None,
        }
    }
}

/// 같은 서버, 다른 데이터베이스: `mysql://root@h:3306/test` → `mysql://root@h:3306/<name>` (쿼리 문자열은 그대로).
/// `name`이 비면 데이터베이스 없이 서버만 가리킨다.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
    let mut out = base[..host_end].to_owned();
    if !name.is_empty() {
        out.push('/');
        out.push_str(name);
    }
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// CREATE·DROP을 보낼 관리용 주소: PostgreSQL은 `postgres` 데이터베이스, MySQL은 데이터베이스 없이.
fn admin_url(server: &str, kind: Kind) -> String {
    with_database(server, if kind == Kind::Postgres { "postgres" } else { "" })
}

fn server_kind(server: &str) -> Result<Kind> {
    match Kind::of_url(server) {
        Some(k @ (Kind::MySql | Kind::Postgres)) => Ok(k),
        _ => bail!("MySQL·PostgreSQL 서버 주소가 아님: {server}"),
    }
}

fn drop_sql(kind: Kind, name: &str) -> String {
    match kind {
        Kind::Postgres => format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        _ => format!("DROP DATABASE IF EXISTS `{name}`"),
    }
}

/// `server`(MySQL·PostgreSQL 서버 주소)에 데이터베이스 `name`을 만들고 그 주소를 돌려준다.
/// `replace`면 같은 이름을 먼저 지운다 (벤치처럼 고정된 이름을 다시 쓸 때).
pub async fn create(server: &str, name: &str, replace: bool) -> Result<String> {
    let kind = server_kind(server)?;
    let admin = Database::connect(admin_url(server, kind)).await.with_context(|| format!("cannot reach {server}"))?;
    if replace {
        admin.execute_unprepared(&drop_sql(kind, name)).await.with_context(|| format!("DROP DATABASE {name}"))?;
    }
    let create = match kind {
        // 테이블마다 utf8mb4를 지정하지만, 데이터베이스 기본값도 같게 둔다.
        Kind::MySql => format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"),
        _ => format!("CREATE DATABASE \"{name}\""),
    };
    admin.execute_unprepared(&create).await.with_context(|| format!("CREATE DATABASE {name}"))?;
    admin.close().await.ok();
    Ok(with_database(server, name))
}

/// 데이터베이스 `name`을 지운다 (없으면 아무 일 없음).
pub async fn drop(server: &str, name: &str) -> Result<()> {
    let kind = server_kind(server)?;
    let admin = Database::connect(admin_url(server, kind)).await.with_context(|| format!("cannot reach {server}"))?;
    admin.execute_unprepared(&drop_sql(kind, name)).await?;
    admin.close().await.ok();
    Ok(())
}

/// 시험 하나만 쓰는 새 데이터베이스 (`cq_test_<uuid>`). 드롭되면 지운다.
pub struct Scratch {
    pub url: String,
    server: String,
    name: String,
}

impl Scratch {
    pub async fn create(server: &str) -> Result<Scratch> {
        let name = format!("cq_test_{}", uuid::Uuid::new_v4().simple());
        let url = create(server, &name, false).await?;
        Ok(Scratch { url, server: server.to_owned(), name })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let (server, name) = (std::mem::take(&mut self.server), std::mem::take(&mut self.name));
        // 비동기 런타임 안에서 드롭될 수 있으므로 별도 스레드의 런타임에서 지운다.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            let _ = rt.block_on(drop(&server, &name));
        })
        .join();
    }
}

#[cfg(test)]
mod tests {
    use super::{Kind, with_database};

    #[test]
    fn rewrites_only_the_database_name() {
        assert_eq!(with_database("mysql://root@127.0.0.1:3306/test", "x"), "mysql://root@127.0.0.1:3306/x");
        assert_eq!(with_database("mysql://root@127.0.0.1:3306", "x"), "mysql://root@127.0.0.1:3306/x");
        assert_eq!(with_database("mysql://root@127.0.0.1:3306/test", ""), "mysql://root@127.0.0.1:3306");
        assert_eq!(with_database("postgres://u:p@h:5432/db?sslmode=disable", "y"), "postgres://u:p@h:5432/y?sslmode=disable");
        assert_eq!(Kind::of_url("postgresql://h/db"), Some(Kind::Postgres));
        assert_eq!(Kind::of_url("sqlite::memory:"), Some(Kind::Sqlite));
        assert_eq!(Kind::of_url("nope"), None);
    }
}
