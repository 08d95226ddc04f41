//! HTTP 요청의 한도 (계약의 값): 경로들이 같이 쓴다.
use std::time::Duration;

/// 요청 본문 한도 (계약: 64 KiB, 넘으면 413). 웹소켓 메시지 한도도 같다.
pub const BODY_LIMIT: usize = 64 * 1024;
/// 동시에 실행하는 GraphQL 연산 수. 실행 중인 연산은 큰 퓨처와 버퍼를 쥐므로, 수천 명이 한꺼번에 와도
/// 나머지는 요청 본문만 든 채 줄을 서게 해서 메모리를 묶어 둔다 (풀 크기보다 훨씬 커서 처리량은 그대로).
pub const MAX_IN_FLIGHT: usize = 256;
/// 헤더 다음 본문 전체를 받는 한도 (계약: 10초, 한 번의 마감). 넘으면 408로 답하고 연결을 닫는다.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
