//! 진입점: 명령행을 읽고, 로그를 켜고, 명령을 실행한다.
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = couponql::cli::Cli::parse();
    // 로그는 stderr로: `couponql schema`와 `token`의 stdout을 더럽히지 않는다.
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    match couponql::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(line) => {
            eprintln!("couponql: {line}");
            ExitCode::FAILURE
        }
    }
}
