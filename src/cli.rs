//! 명령행: serve(기본) / migrate / seed / schema / token. 시작 실패는 원인을 한 줄로 알리고 0이 아닌 코드로 끝낸다.
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use secrecy::ExposeSecret;
use uuid::Uuid;

use crate::auth::JwtKeys;
use crate::config::Settings;
use crate::domain::{Role, Viewer};
use crate::startup::{self, Application};
use crate::{db, graphql, seed};

#[derive(Parser, Debug)]
#[command(name = "couponql", version, about = "GraphQL API server for coupons, built for first-come-first-served drops")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub settings: Settings,
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
    Schema {
        /// Print the Apollo Federation v2 subgraph SDL (with its directives) for a gateway instead.
        #[arg(long)]
        federation: bool,
    },
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

/// 실행. 실패는 원인을 밝히는 한 줄이 된다 (`main`이 `{:#}`로 찍는다).
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = cli.settings;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Schema { federation: false } => {
            print!("{}", graphql::sdl().await?);
            Ok(())
        }
        Command::Schema { federation: true } => {
            print!("{}", graphql::federation_sdl());
            Ok(())
        }
        Command::Token { user, role, ttl_hours } => {
            let role = match role {
                RoleArg::User => Role::User,
                RoleArg::Admin => Role::Admin,
            };
            let token = JwtKeys::new(settings.jwt_secret().expose_secret())
                .sign(Viewer { user_id: user, role }, Duration::from_secs(ttl_hours.saturating_mul(3600)))
                .map_err(|e| anyhow::anyhow!("{e:?}"))
                .context("cannot sign token")?;
            println!("{token}");
            Ok(())
        }
        Command::Migrate => {
            let conn = startup::connect(&settings).await?;
            db::migrate(&conn).await.context("migration failed")?;
            tracing::info!("migrations applied");
            conn.close().await.ok();
            Ok(())
        }
        Command::Seed => {
            let conn = startup::connect(&settings).await?;
            db::migrate(&conn).await.context("migration failed")?;
            let report = seed::seed(&conn).await.map_err(|e| anyhow::anyhow!("{e:?}")).context("seeding failed")?;
            tracing::info!(?report, "demo data seeded");
            conn.close().await.ok();
            Ok(())
        }
        Command::Serve => serve(settings).await,
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    if settings.uses_dev_secret() {
        if settings.production() {
            anyhow::bail!("refusing to start: JWT_SECRET is the development secret and APP_ENV=production");
        }
        tracing::warn!(
            "!!! JWT_SECRET is not set: using the built-in DEVELOPMENT secret. Anyone can mint tokens. Never run like this in production. !!!"
        );
    }
    // 신호는 처음부터 듣는다: 시작 도중(연결·마이그레이션·시드)에 온 SIGTERM도 깨끗한 종료(0)가 된다.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let mut starting_rx = stop_rx.clone();
    let app = tokio::select! {
        app = Application::build(&settings) => app?,
        _ = starting_rx.wait_for(|stopped| *stopped) => {
            tracing::info!("stopped during startup");
            return Ok(());
        }
    };
    let port = app.port();
    let host = settings.bind_addr.rsplit_once(':').map(|(h, _)| h).unwrap_or("127.0.0.1");
    tracing::info!(
        "couponql listening on http://{host}:{port} — GraphiQL at http://{host}:{port}/graphql; get a token with `couponql token --user 11111111-1111-4111-8111-111111111111` and send it as `Authorization: Bearer <token>`"
    );
    let mut rx = stop_rx;
    app.run_until_stopped(async move {
        let _ = rx.wait_for(|stopped| *stopped).await;
    })
    .await?;
    tracing::info!("bye");
    Ok(())
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
