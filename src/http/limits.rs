//! HTTP 요청의 한도 (계약의 값): 경로들이 같이 쓴다.
use std::time::Duration;

/// 요청 본문 한도 (계약: 64 KiB, 넘으면 413). 웹소켓 메시지 한도도 같다.
pub const BODY_LIMIT: usize = 64 * 1024;
/// 동시에 실행하는 GraphQL 연산 수. 실행 중인 연산은 큰 퓨처와 버퍼를 쥐므로, 수천 명이 한꺼번에 와도
/// 나머지는 요청 본문만 든 채 줄을 서게 해서 메모리를 묶어 둔다 (풀 크기보다 훨씬 커서 처리량은 그대로).
pub const MAX_IN_FLIGHT: usize = 256;
/// 헤더 다음 본문 전체를 받는 한도 (계약: 10초, 한 번의 마감). 넘으면 408로 답하고 연결을 닫는다.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// 대상 고객 CSV 가져오기만의 본문 한도 (계약: 64 MiB, 넘으면 413). 라우터가 이 경로에만 `BODY_LIMIT` 대신 건다.
pub const IMPORT_BODY_LIMIT: usize = 64 * 1024 * 1024;
/// 그 경로의 빠르기 하한 (계약: 1 MB/s). 한 번의 10초 마감 대신, `BODY_TIMEOUT`의 유예 뒤로는 본문을 기다린 시간 동안
/// 평균 이만큼은 와야 한다: 64 MiB를 제 속도로 보내는 클라이언트는 끝까지, 한 바이트씩 흘리는 연결은 10초 남짓에 끊긴다.
pub const IMPORT_MIN_BYTES_PER_SEC: f64 = 1_000_000.0;
