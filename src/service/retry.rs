//! 데이터베이스가 버린 트랜잭션을 서버 안에서 다시 돌린다 (CONTRACT 10절).
//!
//! Galera 클러스터에서 행 잠금은 노드 안에서만 통하므로, 다른 노드의 같은 행 쓰기와는 커밋 때 인증(certification)에서
//! 부딪혀 한쪽이 1213으로 버려진다. PostgreSQL의 교착 상태(40P01)·직렬화 실패(40001)도 같다. 선착순에서 이것을
//! 그대로 TRY_AGAIN으로 답하면 줄에서의 자리를 잃으므로, 잠금 예산(몇 초) 안에서 흔들린 간격을 두고 다시 돌린다.
//!
//! 왜 안전한가: 다시 돌리는 것은 언제나 트랜잭션 전체이고, 그 트랜잭션은 데이터베이스가 되돌렸으므로 커밋된 것이 없다.
//! 다음 시도는 잠금 아래에서 최신 행을 처음부터 다시 읽고 판정하므로, 두 번 발급하거나 두 번 쓸 수 없다.
//! 커밋됐는지 모르는 실패(연결 끊김)는 여기서 다시 돌리지 않는다: TRY_AGAIN과 멱등 키가 그 경우를 맡는다.
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{AppError, AppResult};

/// 다시 돌리는 데 쓰는 시간의 한도 (잠금 대기 한도와 같은 몇 초).
pub const BUDGET: Duration = Duration::from_secs(3);
/// 첫 재시도 전 대기의 상한. 시도마다 두 배로, `MAX_BACKOFF`까지.
const FIRST_BACKOFF: Duration = Duration::from_millis(2);
const MAX_BACKOFF: Duration = Duration::from_millis(100);

/// `attempt`를 돌리고, 버려진 트랜잭션(`AppError::Aborted`)이면 예산 안에서 다시 돌린다. 예산을 넘기면 TRY_AGAIN.
/// `operation`은 `/metrics`의 라벨.
pub async fn retrying<T, F, Fut>(operation: &'static str, mut attempt: F) -> AppResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = AppResult<T>>,
{
    let start = Instant::now();
    let mut retries: u32 = 0;
    loop {
        // 시도마다 트랜잭션 스팬 하나 (추적이 꺼져 있으면 빈 스팬).
        match crate::telemetry::transaction(operation, attempt()).await {
            Err(AppError::Aborted) => {
                let wait = backoff(retries);
                if start.elapsed() + wait > BUDGET {
                    crate::metrics::retries_exhausted(operation);
                    return Err(AppError::TryAgain);
                }
                retries += 1;
                crate::metrics::retry(operation);
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

/// `retries`번 다시 돈 뒤의 대기: 상한의 절반에서 상한 사이의 무작위 값. 여러 노드의 배치 작업자가 같은 박자로
/// 다시 부딪히지 않게 흔든다.
fn backoff(retries: u32) -> Duration {
    let cap = FIRST_BACKOFF.saturating_mul(1 << retries.min(16)).min(MAX_BACKOFF);
    let half = cap / 2;
    // 난수를 못 얻으면(있을 수 없는 일) 흔들기 없이 상한을 쓴다.
    let r = getrandom::u32().unwrap_or(u32::MAX);
    half + half.mul_f64(f64::from(r) / f64::from(u32::MAX))
}

/// 잠금 아래에서 읽은 쿠폰 행이 쓰는 순간 이미 바뀌어 있었다: 클러스터에서 다른 노드의 커밋이 늦게 보인 것이다
/// (한 서버에서는 일어나지 않는다). 트랜잭션째 다시 돌린다 (`Aborted`). 운영자가 빈도를 볼 수 있게 남긴다.
pub(crate) fn changed_since_read(read: &crate::domain::Coupon) -> AppError {
    tracing::warn!(coupon = %read.id, version = read.version, "the coupon row changed after its locked read (another node's commit); retrying");
    AppError::Aborted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_and_stays_jittered_within_it() {
        for retries in 0..40 {
            let cap = FIRST_BACKOFF.saturating_mul(1 << retries.min(16)).min(MAX_BACKOFF);
            let d = backoff(retries);
            assert!(d >= cap / 2 && d <= cap, "{retries}: {d:?} not in [{:?}, {cap:?}]", cap / 2);
        }
        assert_eq!(FIRST_BACKOFF.saturating_mul(1 << 16).min(MAX_BACKOFF), MAX_BACKOFF);
    }

    #[tokio::test(start_paused = true)]
    async fn an_aborted_transaction_is_retried_until_it_succeeds() {
        let mut calls = 0;
        let r = retrying("test", || {
            calls += 1;
            let n = calls;
            async move { if n < 4 { Err(AppError::Aborted) } else { Ok(n) } }
        })
        .await;
        assert_eq!(r.ok(), Some(4));
    }

    #[tokio::test(start_paused = true)]
    async fn other_errors_are_answered_at_once_and_an_endless_abort_ends_as_try_again_within_the_budget() {
        let mut calls = 0;
        let r: AppResult<()> = retrying("test", || {
            calls += 1;
            async { Err(AppError::CouponSoldOut) }
        })
        .await;
        assert!(matches!(r, Err(AppError::CouponSoldOut)));
        assert_eq!(calls, 1);

        let start = Instant::now();
        let r: AppResult<()> = retrying("test", || async { Err(AppError::Aborted) }).await;
        assert!(matches!(r, Err(AppError::TryAgain)));
        assert!(start.elapsed() <= BUDGET, "{:?}", start.elapsed());
        assert!(start.elapsed() >= BUDGET - MAX_BACKOFF, "{:?}", start.elapsed());
    }
}
