//! 진입점: 명령행을 읽고, 로그를 켜고, 명령을 실행한다.
use std::process::ExitCode;

use clap::Parser;
use couponql::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// 서버의 할당기 (Cargo.toml의 이유 참고): 요청마다의 짧은 할당이 스레드별 힙에서 끝난다.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = couponql::cli::Cli::parse();
    // 로그는 stderr로: `couponql schema`와 `token`의 stdout을 더럽히지 않는다.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // 색 코드는 터미널에만: 파일이나 파이프로 가는 로그에 이스케이프 문자가 섞이지 않게.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour);
    let format = cli.settings.log_format;
    match format {
        LogFormat::Json => logs.json().flatten_event(true).init(),
        LogFormat::Text => logs.init(),
    }
    match couponql::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // 원인 사슬을 한 줄로 ("cannot connect …: 원인"). JSON 로그면 그 한 줄도 JSON 객체 하나.
            match format {
                // 로그 필터(RUST_LOG=off 등)와 상관없이 늘 남도록 tracing을 거치지 않고 직접 쓴다.
                LogFormat::Json => eprintln!(
                    "{}",
                    serde_json::json!({
                        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                        "level": "ERROR",
                        "target": "couponql",
                        "message": format!("couponql: {e:#}"),
                    })
                ),
                LogFormat::Text => eprintln!("couponql: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}
