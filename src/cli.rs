//! 명령행: serve(기본) / migrate / seed / schema / token. 시작 실패는 원인을 한 줄로 알리고 0이 아닌 코드로 끝낸다.
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use uuid::Uuid;

use crate::auth::JwtKeys;
use crate::config::Settings;
use crate::domain::{Role, Viewer};
use axum::serve::Listener;

use crate::{db, graphql, http, seed};

#[derive(Parser, Debug)]
#[command(name = "couponql", version, about = "GraphQL API server for coupons, built for first-come-first-served drops")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run pending migrations, then serve HTTP (the default).
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
    /// Insert the demo data (idempotent).
    Seed,
    /// Print the GraphQL SDL.
    Schema,
    /// Print a signed JWT for local use.
    Token {
        /// The user's UUID (the `sub` claim).
        #[arg(long)]
        user: Uuid,
        #[arg(long, value_enum, default_value = "USER")]
        role: RoleArg,
        /// Lifetime in hours.
        #[arg(long, default_value_t = 24)]
        ttl_hours: u64,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum RoleArg {
    User,
    Admin,
}

/// 실행. 실패는 사람이 읽을 한 줄.
pub async fn run(cli: Cli) -> Result<(), String> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Schema => {
            print!("{}", graphql::sdl());
            Ok(())
        }
        Command::Token { user, role, ttl_hours } => {
            let settings = Settings::from_env()?;
            let role = match role {
                RoleArg::User => Role::User,
                RoleArg::Admin => Role::Admin,
            };
            let token = JwtKeys::new(&settings.jwt_secret)
                .sign(Viewer { user_id: user, role }, Duration::from_secs(ttl_hours.saturating_mul(3600)))
                .map_err(|e| format!("cannot sign token: {e:?}"))?;
            println!("{token}");
            Ok(())
        }
        Command::Migrate => {
            let settings = Settings::from_env()?;
            let conn = connect(&settings).await?;
            db::migrate(&conn).await.map_err(|e| format!("migration failed: {e}"))?;
            tracing::info!("migrations applied");
            conn.close().await.ok();
            Ok(())
        }
        Command::Seed => {
            let settings = Settings::from_env()?;
            let conn = connect(&settings).await?;
            db::migrate(&conn).await.map_err(|e| format!("migration failed: {e}"))?;
            let report = seed::seed(&conn).await.map_err(|e| format!("seeding failed: {e:?}"))?;
            tracing::info!(?report, "demo data seeded");
            conn.close().await.ok();
            Ok(())
        }
        Command::Serve => serve(Settings::from_env()?).await,
    }
}

async fn connect(settings: &Settings) -> Result<sea_orm::DatabaseConnection, String> {
    // 도달할 수 없는 데이터베이스에서 30초 안에 포기한다.
    match tokio::time::timeout(Duration::from_secs(25), db::connect(&settings.database_url, &settings.db)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(format!("cannot connect to the database at {}: {e}", redact(&settings.database_url))),
        Err(_) => Err(format!("cannot connect to the database at {}: timed out", redact(&settings.database_url))),
    }
}

/// 로그에 비밀번호가 새지 않도록 URL의 사용자 정보를 지운다.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}{}", &url[..s + 3], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

async fn serve(settings: Settings) -> Result<(), String> {
    if settings.uses_dev_secret() {
        if settings.production {
            return Err("refusing to start: JWT_SECRET is the development secret and APP_ENV=production".into());
        }
        tracing::warn!(
            "!!! JWT_SECRET is not set: using the built-in DEVELOPMENT secret. Anyone can mint tokens. Never run like this in production. !!!"
        );
    }
    // 신호는 처음부터 듣는다: 시작 도중(연결·마이그레이션·시드)에 온 SIGTERM도 깨끗한 종료(0)가 된다.
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let mut starting_rx = stop_rx.clone();
    let started = tokio::select! {
        r = start(&settings) => Some(r?),
        _ = starting_rx.wait_for(|stopped| *stopped) => None,
    };
    let Some((listener, conn)) = started else {
        tracing::info!("stopped during startup");
        return Ok(());
    };
    let addr = listener.local_addr().map_err(|e| format!("cannot read the bound address: {e}"))?;
    tracing::info!(
        "couponql listening on http://{addr} — GraphiQL at http://{addr}/graphql; get a token with `couponql token --user 11111111-1111-4111-8111-111111111111` and send it as `Authorization: Bearer <token>`"
    );

    let state = http::AppState::new(conn.clone(), JwtKeys::new(&settings.jwt_secret), settings.issue_coalescing);
    let app = listener.shed_when_full(http::router(state));
    let mut graceful_rx = stop_rx.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = graceful_rx.wait_for(|stopped| *stopped).await;
        tracing::info!("shutting down: finishing in-flight requests");
    });
    // 진행 중인 요청은 마치되, 10초 안에는 반드시 끝낸다 (8초 + 풀 닫기 1초).
    let deadline = async move {
        let _ = stop_rx.wait_for(|stopped| *stopped).await;
        tokio::time::sleep(Duration::from_secs(8)).await;
    };
    tokio::select! {
        res = server => res.map_err(|e| format!("server error: {e}"))?,
        _ = deadline => tracing::warn!("in-flight requests did not finish in time; closing anyway"),
    }
    if tokio::time::timeout(Duration::from_secs(1), conn.close()).await.is_err() {
        tracing::warn!("the connection pool did not close in time");
    }
    tracing::info!("bye");
    Ok(())
}

/// 포트를 잡고, 데이터베이스에 연결해 마이그레이션하고, 내장 SQLite면 데모 데이터를 넣는다.
async fn start(settings: &Settings) -> Result<(crate::listener::BoundedListener, sea_orm::DatabaseConnection), String> {
    let listener = crate::listener::bind(&settings.bind_addr).await.map_err(|e| format!("cannot listen on {}: {e}", settings.bind_addr))?;
    let conn = connect(settings).await?;
    db::migrate(&conn).await.map_err(|e| format!("migration failed: {e}"))?;
    if settings.embedded_default {
        let report = seed::seed(&conn).await.map_err(|e| format!("seeding failed: {e:?}"))?;
        tracing::info!(?report, database = %settings.database_url, "embedded SQLite ready with demo data");
    }
    Ok((listener, conn))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
