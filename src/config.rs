//! 환경 변수에서 읽는 설정 (CONTRACT 1절). clap의 `env`로 읽으므로 같은 값을 `--옵션`으로도 줄 수 있다.
//! 비밀(서명 키, 비밀번호가 든 데이터베이스 주소)은 `SecretString`에 담아 `Debug` 출력으로 새지 않게 한다.
use std::time::Duration;

use clap::{Args, ValueEnum};
use secrecy::{ExposeSecret, SecretString};

/// 발급 방식 (ISSUE_COALESCING=on|off).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssueMode {
    /// 요청 하나가 트랜잭션 하나.
    PerRequest,
    /// 같은 쿠폰의 동시 요청을 한 트랜잭션으로 합친다 (기본).
    Coalesced,
}

/// 로컬 개발용 기본 서명 키. 운영(APP_ENV=production)에서는 이 키로 시작하지 않는다.
pub const DEV_JWT_SECRET: &str = "couponql-development-secret-do-not-use-in-production";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://couponql.db?mode=rwc";
pub const DEFAULT_BIND_ADDR: &str = "127.0.0.1:8000";
/// 연산 하나의 정적 비용 한도 기본값 (CONTRACT 13절의 `MAX_QUERY_COST`).
pub const DEFAULT_MAX_QUERY_COST: u64 = 50_000;

fn secret(raw: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(raw.to_owned()))
}

/// 프로세스 설정. 빈 환경 변수는 없는 것으로 본다.
#[derive(Args, Clone, Debug)]
pub struct Settings {
    /// mysql://…, postgres://… or sqlite://… (default: the embedded sqlite://couponql.db?mode=rwc, seeded).
    #[arg(long, env = "DATABASE_URL", global = true, value_parser = secret, hide_env_values = true)]
    pub database_url: Option<SecretString>,
    /// Listen address.
    #[arg(long, env = "BIND_ADDR", global = true, default_value = DEFAULT_BIND_ADDR)]
    pub bind_addr: String,
    /// HS256 key for bearer tokens (default: a development secret, refused with APP_ENV=production).
    #[arg(long, env = "JWT_SECRET", global = true, value_parser = secret, hide_env_values = true)]
    pub jwt_secret: Option<SecretString>,
    /// `production` refuses the development JWT secret.
    #[arg(long, env = "APP_ENV", global = true)]
    pub app_env: Option<String>,
    /// Pool size (default 10 for MySQL/PostgreSQL; SQLite always uses one connection).
    #[arg(long, env = "DB_MAX_CONNECTIONS", global = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub db_max_connections: Option<u32>,
    /// Serve concurrent issuance requests for one coupon in one transaction (on) or one each (off).
    #[arg(long, env = "ISSUE_COALESCING", global = true, default_value = "on", value_parser = parse_switch)]
    pub issue_coalescing: bool,
    /// Log lines as text or as one JSON object each.
    #[arg(long, env = "LOG_FORMAT", global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Comma-separated origins allowed to call from a browser, or `*`.
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", global = true)]
    pub cors_allowed_origins: Option<String>,
    /// Serve /metrics on this address instead of the main one.
    #[arg(long, env = "METRICS_BIND_ADDR", global = true)]
    pub metrics_bind_addr: Option<String>,
    /// Publish the event ledger to this NATS server's JetStream (stream COUPONQL_EVENTS).
    #[arg(long, env = "NATS_URL", global = true)]
    pub nats_url: Option<String>,
    /// Comma-separated addresses of reverse proxies whose X-Forwarded-For is believed.
    #[arg(long, env = "TRUSTED_PROXIES", global = true)]
    pub trusted_proxies: Option<String>,
    /// The static cost an operation may have (CONTRACT 13).
    #[arg(long, env = "MAX_QUERY_COST", global = true, default_value_t = DEFAULT_MAX_QUERY_COST)]
    pub max_query_cost: u64,
    /// Path of a trusted-documents manifest (GraphQL Code Generator's persisted-documents.json): only its operations run.
    #[arg(long, env = "TRUSTED_DOCUMENTS", global = true)]
    pub trusted_documents: Option<std::path::PathBuf>,
    /// Export traces over OTLP/HTTP to this collector (e.g. http://127.0.0.1:4318).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", global = true)]
    pub otel_exporter_otlp_endpoint: Option<String>,
}

fn parse_switch(raw: &str) -> Result<bool, String> {
    match raw {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        other => Err(format!("expected on or off, got {other:?}")),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
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
    /// 임의 포트(127.0.0.1:0)에 주어진 서명 키로: 테스트와 도구가 `Application`을 띄울 때 쓴다.
    pub fn local(jwt_secret: &str) -> Self {
        Self {
            database_url: None,
            bind_addr: "127.0.0.1:0".into(),
            jwt_secret: Some(SecretString::from(jwt_secret.to_owned())),
            app_env: None,
            db_max_connections: None,
            issue_coalescing: true,
            log_format: LogFormat::Text,
            cors_allowed_origins: None,
            metrics_bind_addr: None,
            nats_url: None,
            trusted_proxies: None,
            max_query_cost: DEFAULT_MAX_QUERY_COST,
            trusted_documents: None,
            otel_exporter_otlp_endpoint: None,
        }
    }

    /// 데이터베이스 주소 (주지 않으면 내장 SQLite).
    pub fn database_url(&self) -> SecretString {
        self.database_url.clone().unwrap_or_else(|| SecretString::from(DEFAULT_DATABASE_URL.to_owned()))
    }

    /// DATABASE_URL을 주지 않아 내장 SQLite를 쓰는지 (첫 시작에 데모 데이터를 넣는다).
    pub fn embedded_default(&self) -> bool {
        self.database_url.is_none()
    }

    pub fn jwt_secret(&self) -> SecretString {
        self.jwt_secret.clone().unwrap_or_else(|| SecretString::from(DEV_JWT_SECRET.to_owned()))
    }

    pub fn uses_dev_secret(&self) -> bool {
        self.jwt_secret().expose_secret() == DEV_JWT_SECRET
    }

    pub fn production(&self) -> bool {
        self.app_env.as_deref().is_some_and(|v| v.eq_ignore_ascii_case("production"))
    }

    pub fn issue_mode(&self) -> IssueMode {
        if self.issue_coalescing { IssueMode::Coalesced } else { IssueMode::PerRequest }
    }

    pub fn db(&self) -> DbSettings {
        DbSettings { max_connections: self.db_max_connections, ..DbSettings::default() }
    }

    /// `X-Forwarded-For`를 믿는 프록시들. 주소가 아닌 항목이 있으면 시작하지 않는다.
    pub fn trusted_proxies(&self) -> Result<crate::net::TrustedProxies, String> {
        crate::net::TrustedProxies::parse(self.trusted_proxies.as_deref())
    }

    /// 허용 출처 목록. `*`는 모든 출처.
    pub fn cors_origins(&self) -> Option<Vec<String>> {
        let raw = self.cors_allowed_origins.as_deref()?;
        let list: Vec<String> = raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
        (!list.is_empty()).then_some(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let s = Settings {
            database_url: Some(SecretString::from("postgres://u:hunter2@h/db".to_owned())),
            cors_allowed_origins: Some(" https://a.example , https://b.example,".into()),
            ..Settings::local("top-secret-key")
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("top-secret-key"), "{shown}");
        assert_eq!(s.cors_origins(), Some(vec!["https://a.example".to_owned(), "https://b.example".to_owned()]));
        assert!(!s.uses_dev_secret());
    }

    #[test]
    fn switches_accept_on_and_off_only() {
        assert_eq!(parse_switch("on"), Ok(true));
        assert_eq!(parse_switch("0"), Ok(false));
        assert!(parse_switch("maybe").is_err());
    }
}
