//! 대상 고객 (CONTRACT 11절 "Audiences"): 회원을 바꾸는 호출의 입력 검사와 그 결과.
use uuid::Uuid;

use crate::error::{AppError, AppResult};

/// 호출 하나에 받는 id 수 (되풀이 포함).
pub const MAX_IDS: usize = 1000;
/// 결과에 적어 보내는 모르는 id 수 (나머지는 `unknown_count`로만 센다).
pub const MAX_UNKNOWN_LISTED: usize = 1000;

/// 호출의 id들: 1,000개 이하, 모두 UUID. 되풀이는 한 번으로 센다 (처음 나온 순서를 지킨다).
pub fn parse_ids(raw: &[String]) -> AppResult<Vec<Uuid>> {
    if raw.len() > MAX_IDS {
        return Err(AppError::bad_input("userIds", format!("userIds: 한 번에 {MAX_IDS}개까지입니다")));
    }
    let mut seen = std::collections::HashSet::with_capacity(raw.len());
    let mut ids = Vec::with_capacity(raw.len());
    for r in raw {
        let id = Uuid::parse_str(r.trim()).map_err(|_| AppError::bad_input("userIds", format!("userIds: UUID가 아닙니다: {r:.40}")))?;
        if seen.insert(id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// 회원을 바꾼 결과.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AudienceChange {
    pub coupon_id: Uuid,
    pub added: u64,
    pub removed: u64,
    /// 어떤 사용자도 가리키지 않는 id, 처음 1,000개까지.
    pub unknown_user_ids: Vec<Uuid>,
    pub unknown_count: u64,
    pub audience_size: u64,
}

impl AudienceChange {
    /// 모르는 id들을 적는다 (앞의 1,000개까지만 목록에).
    pub fn with_unknown(mut self, unknown: Vec<Uuid>) -> Self {
        self.unknown_count = unknown.len() as u64;
        self.unknown_user_ids = unknown.into_iter().take(MAX_UNKNOWN_LISTED).collect();
        self
    }

    /// 무언가 바뀌었는지: 바뀐 호출만 이벤트를 남긴다.
    pub fn changed(&self) -> bool {
        self.added > 0 || self.removed > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_counted_once_and_capped() {
        let a = Uuid::new_v4().to_string();
        let b = Uuid::new_v4().to_string();
        let ids = parse_ids(&[a.clone(), b.clone(), a.clone()]).expect("유효");
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[0].to_string(), a);
        let bad = parse_ids(&["not-a-uuid".into()]);
        assert!(matches!(bad, Err(AppError::BadUserInput { ref field, .. }) if field == "userIds"), "{bad:?}");
        // 되풀이를 포함해 1,000개까지: 같은 id 1,001번도 거절.
        assert!(parse_ids(&vec![a.clone(); 1000]).is_ok());
        let over = parse_ids(&vec![a; 1001]);
        assert!(matches!(over, Err(AppError::BadUserInput { ref field, .. }) if field == "userIds"), "{over:?}");
    }
}
