//! 대상 고객을 바꾼 결과 (CONTRACT 11절).
use async_graphql::{ID, SimpleObject};

use crate::domain::audience;

/// What an audience change did.
#[derive(SimpleObject)]
pub struct AudienceChange {
    /// The coupon whose audience changed.
    coupon_id: ID,
    /// Members added (already members count as neither added nor unknown).
    added: i32,
    /// Members removed (non-members count as neither removed nor unknown).
    removed: i32,
    /// Ids that name no user (at most the first 1,000).
    unknown_user_ids: Vec<ID>,
    /// How many ids named no user, all of them.
    unknown_count: i32,
    /// Members after the change.
    audience_size: i32,
}

impl From<audience::AudienceChange> for AudienceChange {
    fn from(c: audience::AudienceChange) -> Self {
        let count = |n: u64| i32::try_from(n).unwrap_or(i32::MAX);
        AudienceChange {
            coupon_id: ID(c.coupon_id.to_string()),
            added: count(c.added),
            removed: count(c.removed),
            unknown_user_ids: c.unknown_user_ids.into_iter().map(|u| ID(u.to_string())).collect(),
            unknown_count: count(c.unknown_count),
            audience_size: count(c.audience_size),
        }
    }
}
