//! `tests/`와 `bench/`가 같이 쓰는 도구: 불변식 검사, 서버 프로세스 지킴이, 새 데이터베이스, `/proc` 읽기.
//! 서버 크레이트에 기대지 않는다 (데이터베이스는 SQL로 직접 읽는다): 시험하는 쪽과 시험받는 쪽을 섞지 않으려고.
pub mod db;
pub mod invariant;
pub mod procfs;
pub mod server;

pub use server::Server;

/// 지금 비어 있는 로컬 포트 하나 (잠깐 열었다 닫는다).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Prometheus 텍스트에서 이름이 `prefix`로 시작하는 줄들의 값 합 (예: 라벨별 카운터를 모두 더할 때).
pub fn metric_sum(text: &str, prefix: &str) -> f64 {
    text.lines().filter(|l| l.starts_with(prefix)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}
