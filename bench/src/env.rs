//! 벤치 한 번의 준비: 새 데이터베이스, 그 위의 서버, 사용자·쿠폰, 토큰, 불변식 검사.
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use couponql::auth::JwtKeys;
use couponql::config::DbSettings;
use couponql::domain::{self, Role, Viewer};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    DatabaseConnection, EntityTrait,
};
use uuid::Uuid;

use crate::{Args, BENCH_DB, SECRET};

/// 준비된 데이터베이스와 그 위에서 도는 서버 한 벌. 드롭되면 서버를 끝낸다 (실패로 빠져나갈 때도: `testkit::Server`).
pub(crate) struct Env {
    pub(crate) db: DatabaseConnection,
    pub(crate) server: testkit::Server,
    pub(crate) url: String,
    pub(crate) client: reqwest::Client,
    pub(crate) keys: JwtKeys,
}

pub(crate) const SQLITE_FILE: &str = "/tmp/couponql_bench.db";

/// 벤치용 데이터베이스를 새로 만들고 그 주소를 돌려준다.
pub(crate) async fn create_database(server: &str) -> Result<String> {
    if server == "sqlite" || server.starts_with("sqlite:") {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(format!("{SQLITE_FILE}{suffix}"));
        }
        return Ok(format!("sqlite://{SQLITE_FILE}?mode=rwc"));
    }
    testkit::db::create(server, BENCH_DB, true).await
}

/// 데이터베이스를 새로 만들고 마이그레이션한 뒤, 그 위에 서버를 띄운다.
pub(crate) async fn setup(args: &Args) -> Result<Env> {
    let url = create_database(&args.database).await?;
    migrate(args, &url).await?;
    let db = couponql::db::connect(&url, &DbSettings::default()).await.context("connect")?;

    let client = http_client()?;
    let server = spawn_server(args, &url).await?;
    let url = format!("{}/graphql", server.base());
    Ok(Env { db, server, url, client, keys: JwtKeys::new(SECRET) })
}

/// 서버 실행 파일 자신의 `migrate`로 스키마를 만든다: 벤치보다 오래된 서버(비교 기준의 커밋)도 제 스키마 위에서 돈다.
pub(crate) async fn migrate(args: &Args, url: &str) -> Result<()> {
    let mut cmd = testkit::server::command(&args.server_bin, url, SECRET);
    cmd.arg("migrate");
    let status = tokio::task::spawn_blocking(move || cmd.status()).await?.context("couponql migrate")?;
    if !status.success() {
        bail!("couponql migrate on {url}: {status}");
    }
    Ok(())
}

/// 벤치의 HTTP 클라이언트. 노는 연결은 5초면 버린다: 서버가 노는 keep-alive 연결을 10초에 닫으므로
/// (`couponql::server::HEADER_TIMEOUT`), 더 오래 들고 있으면 서버가 닫는 순간에 그 연결로 보낸 요청이 HTTP 오류가 된다.
pub(crate) fn http_client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder().pool_max_idle_per_host(10_000).pool_idle_timeout(Duration::from_secs(5)).build()?)
}

/// `url`의 데이터베이스 위에 서버 하나를 띄우고 준비될 때까지 기다린다. 드롭되면 죽는다.
pub(crate) async fn spawn_server(args: &Args, url: &str) -> Result<testkit::Server> {
    let mut cmd = testkit::server::command(&args.server_bin, url, SECRET);
    if let Some(n) = args.db_max_connections {
        cmd.env("DB_MAX_CONNECTIONS", n.to_string());
    }
    for kv in &args.server_env {
        let (k, v) = kv.split_once('=').ok_or_else(|| anyhow!("--server-env wants KEY=VALUE, got {kv:?}"))?;
        cmd.env(k, v);
    }
    if args.trusted_documents {
        cmd.env("TRUSTED_DOCUMENTS", crate::load::write_manifest()?);
    }
    testkit::Server::start(cmd).await.with_context(|| format!("the server on {url}"))
}

/// 사용자 n명을 여러 행 INSERT로 빠르게 만든다.
pub(crate) async fn make_users(db: &DatabaseConnection, n: usize) -> Result<Vec<Uuid>> {
    use couponql::entities::user;
    let now = domain::now().fixed_offset();
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
    for chunk in ids.chunks(500) {
        let rows = chunk.iter().map(|id| user::ActiveModel {
            id: Set(id.to_string()),
            email: Set(format!("{}@bench.example", id.simple())),
            name: Set("벤치 사용자".into()),
            created_at: Set(now),
            updated_at: Set(now),
        });
        user::Entity::insert_many(rows).exec_without_returning(db).await?;
    }
    Ok(ids)
}

pub(crate) async fn make_coupon(db: &DatabaseConnection, total: Option<i32>) -> Result<Uuid> {
    make_coupon_limited(db, total, 1).await
}

/// 사용자당 한도가 `per_user_limit`인 쿠폰. 옛 서버(bcc4ff5)의 스키마에도 들어가도록 그때부터 있던 열만 쓰고,
/// 나중에 생긴 열(version, per_user_limit)은 한도가 1이 아닐 때만 쓴다 (나머지는 데이터베이스 기본값).
pub(crate) async fn make_coupon_limited(db: &DatabaseConnection, total: Option<i32>, per_user_limit: i32) -> Result<Uuid> {
    use couponql::entities::coupon;
    use sea_orm::prelude::Decimal;
    let now = domain::now().fixed_offset();
    let at = |raw: &str| domain::coupon::parse_datetime("at", raw).map(|t| t.fixed_offset()).map_err(|e| anyhow!("{e:?}"));
    let id = Uuid::new_v4();
    let row = coupon::ActiveModel {
        id: Set(id.to_string()),
        name: Set("벤치 쿠폰".into()),
        discount_type: Set("PERCENTAGE".into()),
        discount_value: Set(Decimal::from(10)),
        min_purchase_amount: Set(Some(Decimal::from(10_000))),
        max_discount_amount: Set(Some(Decimal::from(3_000))),
        total_quantity: Set(total),
        issued_quantity: Set(0),
        valid_from: Set(at("2025-01-01T00:00:00Z")?),
        valid_until: Set(at("2099-12-31T23:59:59Z")?),
        created_at: Set(now),
        updated_at: Set(now),
        status: Set("ACTIVE".into()),
        per_user_limit: if per_user_limit == 1 { NotSet } else { Set(per_user_limit) },
        version: NotSet,
        restricted: NotSet,
        waves: NotSet,
        budget: NotSet,
        budget_spent: NotSet,
        stacking: NotSet,
    };
    coupon::Entity::insert(row).exec_without_returning(db).await?;
    Ok(id)
}

/// 쿠폰을 제한하고 `users`를 모두 그 대상 고객으로 넣는다 (이 열과 표가 있는 서버에서만).
pub(crate) async fn restrict_to(db: &DatabaseConnection, coupon: Uuid, users: &[Uuid]) -> Result<()> {
    use couponql::entities::{coupon as c, coupon_audience as a};
    let now = domain::now().fixed_offset();
    for chunk in users.chunks(500) {
        let rows =
            chunk.iter().map(|u| a::ActiveModel { coupon_id: Set(coupon.to_string()), user_id: Set(u.to_string()), added_at: Set(now) });
        a::Entity::insert_many(rows).exec_without_returning(db).await?;
    }
    let row = c::ActiveModel { id: Set(coupon.to_string()), restricted: Set(true), ..Default::default() };
    c::Entity::update(row).exec(db).await?;
    Ok(())
}

pub(crate) fn token(env: &Env, user: Uuid) -> Result<String> {
    sign(&env.keys, user)
}

pub(crate) fn sign(keys: &JwtKeys, user: Uuid) -> Result<String> {
    keys.sign(Viewer { user_id: user, role: Role::User }, Duration::from_secs(3600)).map_err(|e| anyhow!("{e:?}"))
}

pub(crate) fn admin_token(env: &Env) -> Result<String> {
    env.keys.sign(Viewer { user_id: Uuid::new_v4(), role: Role::Admin }, Duration::from_secs(3600)).map_err(|e| anyhow!("{e:?}"))
}

/// 불변식(`testkit::invariant`): 어긋나면 실패로 끝난다. `expect_issued`면 발급 수가 정확히 그만큼이어야 한다.
pub(crate) async fn check_invariant(db: &DatabaseConnection, coupon: Uuid, expect_issued: Option<i32>) -> Result<i32> {
    let issued = testkit::invariant::check(db, coupon, expect_issued.map(i64::from)).await?;
    Ok(i32::try_from(issued)?)
}
