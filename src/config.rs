//! 환경 변수에서 읽는 설정 (CONTRACT 1절).
use std::time::Duration;

/// 로컬 개발용 기본 서명 키. 운영(APP_ENV=production)에서는 이 키로 시작하지 않는다.
pub const DEV_JWT_SECRET: &str = "couponql-development-secret-do-not-use-in-production";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://couponql.db?mode=rwc";
pub const DEFAULT_BIND_ADDR: &str = "127.0.0.1:8000";

#[derive(Clone, Debug)]
pub struct Settings {
    pub database_url: String,
    /// DATABASE_URL을 주지 않아 내장 SQLite를 쓰는지 (첫 시작에 데모 데이터를 넣는다).
    pub embedded_default: bool,
    pub bind_addr: String,
    pub jwt_secret: String,
    pub production: bool,
    pub db: DbSettings,
    /// 같은 쿠폰의 동시 발급 요청을 한 트랜잭션으로 합칠지 (ISSUE_COALESCING=on|off, 기본 on).
    pub issue_coalescing: bool,
}

/// 커넥션 풀과 잠금 대기 한도.
#[derive(Clone, Debug)]
pub struct DbSettings {
    /// None이면 백엔드에 맞는 기본값.
    pub max_connections: Option<u32>,
    /// 풀에서 커넥션을 기다리는 한도: 넘으면 TRY_AGAIN.
    pub acquire_timeout: Duration,
    /// 행 잠금을 기다리는 한도 (InnoDB 기본 50초 대신): 넘으면 TRY_AGAIN.
    pub lock_timeout: Duration,
}

impl Default for DbSettings {
    fn default() -> Self {
        Self { max_connections: None, acquire_timeout: Duration::from_secs(5), lock_timeout: Duration::from_secs(3) }
    }
}

impl Settings {
    /// 환경에서 읽는다. 잘못된 값은 원인을 한 줄로 말하는 에러.
    pub fn from_env() -> Result<Self, String> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let database_url = var("DATABASE_URL");
        let max_connections = match var("DB_MAX_CONNECTIONS") {
            Some(v) => Some(
                v.parse::<u32>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| format!("DB_MAX_CONNECTIONS must be a positive integer, got {v:?}"))?,
            ),
            None => None,
        };
        let issue_coalescing = match var("ISSUE_COALESCING").as_deref() {
            None | Some("on") | Some("true") | Some("1") => true,
            Some("off") | Some("false") | Some("0") => false,
            Some(other) => {
                return Err(format!("ISSUE_COALESCING must be on or off, got {other:?}"));
            }
        };
        Ok(Self {
            issue_coalescing,
            embedded_default: database_url.is_none(),
            database_url: database_url.unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()),
            bind_addr: var("BIND_ADDR").unwrap_or_else(|| DEFAULT_BIND_ADDR.to_owned()),
            jwt_secret: var("JWT_SECRET").unwrap_or_else(|| DEV_JWT_SECRET.to_owned()),
            production: var("APP_ENV").is_some_and(|v| v.eq_ignore_ascii_case("production")),
            db: DbSettings { max_connections, ..DbSettings::default() },
        })
    }

    pub fn uses_dev_secret(&self) -> bool {
        self.jwt_secret == DEV_JWT_SECRET
    }
}
