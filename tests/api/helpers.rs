//! 테스트 하네스: 백엔드마다 새로 만든 데이터베이스(마이그레이션 적용), 임의 포트에 띄운 서버.
//!
//! 데이터베이스 주소: `TEST_MYSQL_URL`, `TEST_POSTGRES_URL` (서버 주소; 테스트마다 새 데이터베이스를 만들고 끝나면 지운다).
//! 주소가 없고 Docker가 있으면 testcontainers로 MySQL 8 / PostgreSQL 16을 띄운다. 둘 다 없으면 건너뛰었다고 출력한다.
//! 주소가 주어졌는데 닿지 않으면 실패한다.
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use couponql::auth::JwtKeys;
use couponql::config::{DbSettings, Settings};
use couponql::domain::{self, Role, User, Viewer};
use couponql::startup::Application;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use uuid::Uuid;

pub use couponql::db::Backend;

/// 테스트 하나가 쓰는 데이터베이스. 드롭될 때 서버의 데이터베이스를 지운다 (`testkit::db::Scratch`).
pub struct TestDb {
    pub conn: DatabaseConnection,
    pub url: String,
    pub backend: Backend,
    _scratch: Option<testkit::db::Scratch>,
}

/// 주어진 서버 주소, 또는 Docker로 띄운 컨테이너 주소. 둘 다 없으면 None.
fn server_url(backend: Backend) -> Option<String> {
    static MYSQL: OnceLock<Option<String>> = OnceLock::new();
    static POSTGRES: OnceLock<Option<String>> = OnceLock::new();
    let (cell, var) = match backend {
        Backend::MySql => (&MYSQL, "TEST_MYSQL_URL"),
        Backend::Postgres => (&POSTGRES, "TEST_POSTGRES_URL"),
        Backend::Sqlite => return Some("sqlite::memory:".into()),
    };
    cell.get_or_init(|| {
        if let Ok(url) = std::env::var(var)
            && !url.trim().is_empty()
        {
            return Some(url);
        }
        if docker_available() {
            return Some(start_container(backend));
        }
        None
    })
    .clone()
}

fn docker_available() -> bool {
    std::env::var_os("DOCKER_HOST").is_some() || std::path::Path::new("/var/run/docker.sock").exists()
}

/// 프로세스 동안 살아 있는 컨테이너 하나 (테스트마다 그 안에 새 데이터베이스를 만든다).
fn start_container(backend: Backend) -> String {
    use testcontainers::ImageExt;
    use testcontainers::runners::SyncRunner;
    // 컨테이너 시작은 블로킹 API라 별도 스레드에서 한다 (테스트 런타임 안에서 불릴 수 있다).
    std::thread::spawn(move || match backend {
        Backend::MySql => {
            let c = testcontainers_modules::mysql::Mysql::default()
                .with_tag("8.0")
                .start()
                .unwrap_or_else(|e| panic!("Docker가 있지만 MySQL 컨테이너를 띄우지 못함: {e}"));
            let port = c.get_host_port_ipv4(3306).unwrap_or_else(|e| panic!("MySQL 포트: {e}"));
            Box::leak(Box::new(c));
            format!("mysql://root@127.0.0.1:{port}/test")
        }
        _ => {
            let c = testcontainers_modules::postgres::Postgres::default()
                .with_tag("16-alpine")
                .start()
                .unwrap_or_else(|e| panic!("Docker가 있지만 PostgreSQL 컨테이너를 띄우지 못함: {e}"));
            let port = c.get_host_port_ipv4(5432).unwrap_or_else(|e| panic!("PostgreSQL 포트: {e}"));
            Box::leak(Box::new(c));
            format!("postgres://postgres:postgres@127.0.0.1:{port}/postgres")
        }
    })
    .join()
    .unwrap_or_else(|_| panic!("컨테이너 시작 스레드가 실패함"))
}

/// 기본 풀 설정으로 새 데이터베이스.
pub async fn fresh_db(backend: Backend) -> Option<TestDb> {
    fresh_db_with(backend, &DbSettings::default()).await
}

/// 새 데이터베이스를 만들고 마이그레이션까지. 건너뛸 때는 그 사실을 출력하고 None.
pub async fn fresh_db_with(backend: Backend, settings: &DbSettings) -> Option<TestDb> {
    let Some(server) = server_url(backend) else {
        if std::env::var_os("COUPONQL_REQUIRE_DATABASES").is_some() {
            panic!("COUPONQL_REQUIRE_DATABASES is set but no {backend:?} database was given");
        }
        println!(
            "SKIPPED {backend:?}: no TEST_{}_URL given and no Docker available",
            match backend {
                Backend::MySql => "MYSQL",
                _ => "POSTGRES",
            }
        );
        return None;
    };
    let (url, scratch) = if backend == Backend::Sqlite {
        (server, None)
    } else {
        let scratch = testkit::db::Scratch::create(&server).await.unwrap_or_else(|e| panic!("{backend:?} 테스트 서버({server}): {e:#}"));
        (scratch.url.clone(), Some(scratch))
    };
    let conn = couponql::db::connect(&url, settings).await.unwrap_or_else(|e| panic!("{backend:?} 연결 실패: {e}"));
    couponql::db::migrate(&conn).await.unwrap_or_else(|e| panic!("{backend:?} 마이그레이션 실패: {e}"));
    Some(TestDb { conn, url, backend, _scratch: scratch })
}

/// 같은 데이터베이스에 다른 풀 설정으로 한 번 더 연결 (예: 군중보다 작은 풀).
pub async fn reconnect(db: &TestDb, settings: &DbSettings) -> DatabaseConnection {
    couponql::db::connect(&db.url, settings).await.unwrap_or_else(|e| panic!("재연결 실패: {e}"))
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// 테스트용 사용자.
pub async fn new_user(db: &impl ConnectionTrait) -> User {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let id = Uuid::new_v4();
    let now = domain::now();
    let user =
        User { id, email: format!("u{n}-{}@test.example", id.simple()), name: format!("사용자{n}"), created_at: now, updated_at: now };
    couponql::repo::user::insert(db, &user).await.expect("사용자 삽입");
    user
}

/// 여러 사용자를 한 번에.
pub async fn new_users(db: &impl ConnectionTrait, n: usize) -> Vec<User> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(new_user(db).await);
    }
    out
}

/// 지금 유효한 정액 쿠폰 (수량 지정, None = 무제한).
pub async fn new_coupon(db: &impl ConnectionTrait, total: Option<i32>) -> domain::Coupon {
    new_coupon_with(db, total, "2020-01-01T00:00:00Z", "2099-12-31T23:59:59Z").await
}

pub async fn new_coupon_with(db: &impl ConnectionTrait, total: Option<i32>, from: &str, until: &str) -> domain::Coupon {
    coupon_row(db, total, from, until, 1, false).await
}

/// 사용자당 한도가 `per_user_limit`인 쿠폰 (CONTRACT 11절).
pub async fn new_coupon_limited(db: &impl ConnectionTrait, total: Option<i32>, per_user_limit: i32) -> domain::Coupon {
    coupon_row(db, total, "2020-01-01T00:00:00Z", "2099-12-31T23:59:59Z", per_user_limit, false).await
}

/// 대상 고객에게만 발급하는 쿠폰 (CONTRACT 11절).
pub async fn new_restricted_coupon(db: &impl ConnectionTrait, total: Option<i32>) -> domain::Coupon {
    coupon_row(db, total, "2020-01-01T00:00:00Z", "2099-12-31T23:59:59Z", 1, true).await
}

/// 테스트 쿠폰 입력의 기본값: 정액 1000원, 최소 금액 없음, 무제한, 2020~2099년, 한도 1, 제한·일정·예산 없음, EXCLUSIVE.
pub fn coupon_input() -> domain::NewCouponInput {
    domain::NewCouponInput {
        name: "테스트 쿠폰".into(),
        discount_type: domain::DiscountType::Fixed,
        discount_value: "1000".into(),
        min_purchase_amount: None,
        max_discount_amount: None,
        total_quantity: None,
        valid_from: "2020-01-01T00:00:00Z".into(),
        valid_until: "2099-12-31T23:59:59Z".into(),
        per_user_limit: Some(1),
        restricted: Some(false),
        waves: None,
        budget: None,
        stacking: Some(domain::Stacking::Exclusive),
    }
}

async fn coupon_row(
    db: &impl ConnectionTrait,
    total: Option<i32>,
    from: &str,
    until: &str,
    per_user_limit: i32,
    restricted: bool,
) -> domain::Coupon {
    let input = domain::NewCouponInput {
        min_purchase_amount: Some("5000".into()),
        total_quantity: total,
        valid_from: from.into(),
        valid_until: until.into(),
        per_user_limit: Some(per_user_limit),
        restricted: Some(restricted),
        ..coupon_input()
    };
    let new = domain::NewCoupon::parse(input).expect("유효한 쿠폰");
    couponql::repo::coupon::insert(db, Uuid::new_v4(), &new, domain::now()).await.expect("쿠폰 삽입")
}

/// 정액 `discount`원, 예산 `budget`원, 무제한 수량의 쿠폰.
pub async fn new_budget_coupon(db: &DatabaseConnection, discount: &str, budget: &str) -> domain::Coupon {
    let input =
        domain::NewCouponInput {
            name: "예산 쿠폰".into(), discount_value: discount.into(), budget: Some(budget.into()), ..coupon_input()
        };
    couponql::service::coupons::create(db, Some(&Viewer { user_id: Uuid::new_v4(), role: Role::Admin }), input).await.expect("예산 쿠폰")
}

/// 이름이 `name`인 마이그레이션과 그 뒤의 것들을 되돌린다 (옮기기 시험이 그 마이그레이션 직전의 모양에서 시작하게).
pub async fn migrate_down_through(db: &DatabaseConnection, name: &str) {
    use migration::MigratorTrait;
    let all = migration::Migrator::migrations();
    let from_end = all.iter().rev().position(|m| m.name() == name).unwrap_or_else(|| panic!("마이그레이션 {name}이 없음"));
    migration::Migrator::down(db, Some(from_end as u32 + 1)).await.unwrap_or_else(|e| panic!("{name}까지 되돌리기: {e}"));
}

/// 불변식(`testkit::invariant`)을 확인하고 발급 수를 돌려준다. 데이터베이스에서 직접 센다.
pub async fn assert_invariant(db: &DatabaseConnection, coupon_id: Uuid) -> i32 {
    let issued = testkit::invariant::check(db, coupon_id, None).await.unwrap_or_else(|e| panic!("{e:#}"));
    i32::try_from(issued).expect("발급 수")
}

/// 테스트 서버의 서명 키.
pub const TEST_SECRET: &str = "integration-test-secret";

pub fn token(user_id: Uuid, role: Role) -> String {
    JwtKeys::new(TEST_SECRET).sign(Viewer { user_id, role }, std::time::Duration::from_secs(3600)).expect("토큰")
}

/// 이 데이터베이스 위의 `couponql` 실행 파일 명령 (하위 명령은 부르는 쪽이 붙인다).
pub fn binary(db_url: &str) -> std::process::Command {
    testkit::server::command(env!("CARGO_BIN_EXE_couponql"), db_url, TEST_SECRET)
}

/// 진짜 실행 파일로 서버를 띄우고 준비될 때까지 기다린다. 드롭되면 죽는다.
pub async fn start_binary(db_url: &str) -> testkit::Server {
    testkit::Server::start(binary(db_url)).await.unwrap_or_else(|e| panic!("{e:#}"))
}

/// 임의 포트에 실제 서버(axum)를 띄운다. 테스트 런타임이 끝나면 같이 끝난다.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub db: TestDb,
    /// 지금까지 이 서버의 풀이 실행한 SQL 문 수.
    pub statements: Arc<AtomicUsize>,
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    let mut db = fresh_db(backend).await?;
    let statements = Arc::new(AtomicUsize::new(0));
    let counter = statements.clone();
    db.conn.set_metric_callback(move |m| {
        // 요청이 실행한 문장만 센다: 서버의 원장 도장 일꾼이 뒤에서 도는 문장(도장 기다리는 이벤트 찾기, 임대)은 빼고.
        if !background(&m.statement.sql) {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let base = start(db.conn.clone(), |_| {}).await;
    Some(TestApp { base, http: reqwest::Client::new(), db, statements })
}

/// 원장 도장 일꾼의 문장인가: 도장을 기다리는 이벤트(`sequence IS NULL`)를 찾거나 매기는 문장, 일꾼 행(`relay_state`)의 문장.
fn background(sql: &str) -> bool {
    sql.contains("relay_state") || sql.contains("sequence\" IS NULL") || sql.contains("sequence` IS NULL")
}

/// 이 데이터베이스 위에 서버를 띄우고 주소를 돌려준다. `serve`와 같은 `Application` 배선이다.
pub async fn start(conn: DatabaseConnection, tweak: impl FnOnce(&mut Settings)) -> String {
    start_app(conn, tweak, |app| app).await
}

/// `start`에 `Application`을 고치는 단계까지 (예: 연결 한도를 작게).
pub async fn start_app(
    conn: DatabaseConnection,
    tweak: impl FnOnce(&mut Settings),
    shape: impl FnOnce(Application) -> Application,
) -> String {
    let mut settings = Settings::local(TEST_SECRET);
    tweak(&mut settings);
    let app = shape(Application::build_with_db(&settings, conn).await.expect("앱"));
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    base
}

/// `start`와 같되 멈출 수 있게: 보내면 종료 신호 (SIGTERM이 `serve`에 주는 것과 같은 미래), 핸들은 종료가 끝나면 끝난다.
pub async fn start_stoppable(conn: DatabaseConnection) -> (String, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let settings = Settings::local(TEST_SECRET);
    let app = Application::build_with_db(&settings, conn).await.expect("앱");
    let base = format!("http://127.0.0.1:{}", app.port());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        let stopped = app.run_until_stopped(async {
            let _ = rx.await;
        });
        stopped.await.expect("종료");
    });
    (base, tx, handle)
}

/// 백엔드마다 테스트를 만든다: `이름::변형`마다 준비 함수(`fresh_db`, `spawn_app`)가 준 값과
/// 추가 인자로 같은 이름의 async fn을 부른다. 준비 함수가 None이면(건너뜀) 아무것도 하지 않는다.
#[macro_export]
macro_rules! backend_tests {
    ($name:ident, $setup:path, $( $variant:ident => $backend:ident $(, $arg:expr)? );+ $(;)?) => {
        mod $name {
            use $crate::helpers::Backend;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $variant() {
                    if let Some(x) = $setup(Backend::$backend).await {
                        super::$name(x $(, $arg)?).await
                    }
                }
            )+
        }
    };
}

/// 모든 백엔드에서: `이름::mysql`, `::postgres`, `::sqlite`.
#[macro_export]
macro_rules! on_all_backends {
    ($name:ident) => {
        $crate::backend_tests!($name, $crate::helpers::fresh_db, mysql => MySql; postgres => Postgres; sqlite => Sqlite);
    };
}

/// 행 잠금이 있는 백엔드(MySQL 계열, PostgreSQL)에서만: 동시성 테스트.
#[macro_export]
macro_rules! on_locking_backends {
    ($name:ident) => {
        $crate::backend_tests!($name, $crate::helpers::fresh_db, mysql => MySql; postgres => Postgres);
    };
}

/// 동시성 테스트를 행 잠금 백엔드 × 발급 방식(요청별, 합치기)마다.
#[macro_export]
macro_rules! on_locking_backends_both_modes {
    ($name:ident) => {
        $crate::backend_tests!($name, $crate::helpers::fresh_db,
            mysql_per_request => MySql, couponql::service::issuance::IssueMode::PerRequest; mysql_coalesced => MySql, couponql::service::issuance::IssueMode::Coalesced;
            postgres_per_request => Postgres, couponql::service::issuance::IssueMode::PerRequest; postgres_coalesced => Postgres, couponql::service::issuance::IssueMode::Coalesced);
    };
}

/// 서버를 띄워 모든 백엔드에서: E2E 테스트.
#[macro_export]
macro_rules! e2e_on_all_backends {
    ($name:ident) => {
        $crate::backend_tests!($name, $crate::helpers::spawn_app, mysql => MySql; postgres => Postgres; sqlite => Sqlite);
    };
}
