//! 진입점: 명령행을 읽고, 로그를 켜고, 명령을 실행한다.
use std::process::ExitCode;

use clap::Parser;
use couponql::config::LogFormat;

/// 서버의 할당기 (Cargo.toml의 이유 참고): 요청마다의 짧은 할당이 스레드별 힙에서 끝난다.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = couponql::cli::Cli::parse();
    let format = cli.settings.log_format;
    // 추적은 서버만 내보낸다 (`schema`, `token` 같은 명령은 로그만).
    let serving = matches!(cli.command, None | Some(couponql::cli::Command::Serve));
    let endpoint = cli.settings.otel_exporter_otlp_endpoint.clone().filter(|_| serving);
    let telemetry = match couponql::telemetry::init(format, endpoint.as_deref()) {
        Ok(t) => t,
        Err(e) => return failed(format, &e),
    };
    let result = couponql::cli::run(cli).await;
    // 남은 스팬은 2초까지 내보낸다 (실패로 끝나도).
    telemetry.shutdown().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => failed(format, &e),
    }
}

/// 원인 사슬을 한 줄로 ("cannot connect …: 원인"). JSON 로그면 그 한 줄도 JSON 객체 하나.
fn failed(format: LogFormat, e: &anyhow::Error) -> ExitCode {
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
