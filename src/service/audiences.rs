//! 대상 고객 바꾸기 (CONTRACT 11절 "Audiences"), 관리자만. 쿠폰 행을 잠그고 바꾼다: 같은 쿠폰의 발급은 잠금 아래에서
//! 회원을 다시 보므로 뺀 뒤에는 발급되지 않고, COUPON_AUDIENCE_CHANGED가 그 쿠폰의 커밋 순서에 선다 (9절).
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::domain::audience::{self, AudienceChange};
use crate::domain::{self, EventType, NewEvent, Viewer};
use crate::error::AppResult;
use crate::repo;
use crate::service::retry::{changed_since_read, retrying};

#[derive(Clone, Copy)]
enum Kind {
    Add,
    Remove,
}

/// `addAudienceMembers`: 있는 사용자 가운데 아직 회원이 아닌 사람을 넣는다. 없는 사용자는 세기만 한다.
pub async fn add_members(db: &DatabaseConnection, viewer: Option<&Viewer>, coupon_id: Uuid, raw: &[String]) -> AppResult<AudienceChange> {
    Viewer::require_admin(viewer)?;
    let ids = audience::parse_ids(raw)?;
    retrying("audience", || change(db, coupon_id, &ids, Kind::Add)).await
}

/// `removeAudienceMembers`: 회원을 뺀다. 이미 발급된 쿠폰은 그대로다.
pub async fn remove_members(
    db: &DatabaseConnection,
    viewer: Option<&Viewer>,
    coupon_id: Uuid,
    raw: &[String],
) -> AppResult<AudienceChange> {
    Viewer::require_admin(viewer)?;
    let ids = audience::parse_ids(raw)?;
    retrying("audience", || change(db, coupon_id, &ids, Kind::Remove)).await
}

/// `Coupon.audienceSize` (관리자만).
pub async fn size(db: &DatabaseConnection, viewer: Option<&Viewer>, coupon_id: Uuid) -> AppResult<u64> {
    Viewer::require_admin(viewer)?;
    repo::audience::size(db, coupon_id).await
}

async fn change(db: &DatabaseConnection, coupon_id: Uuid, ids: &[Uuid], kind: Kind) -> AppResult<AudienceChange> {
    let (txn, coupon) = super::coupons::lock(db, coupon_id).await?;
    coupon.check_changeable()?;
    let known = repo::user::existing(&txn, ids).await?;
    let (known, unknown): (Vec<Uuid>, Vec<Uuid>) = ids.iter().partition(|u| known.contains(u));
    let now = domain::now();
    let mut result = AudienceChange { coupon_id, ..AudienceChange::default() };
    match kind {
        Kind::Add => {
            let members = repo::audience::members_among(&txn, coupon_id, &known).await?;
            let fresh: Vec<Uuid> = known.into_iter().filter(|u| !members.contains(u)).collect();
            repo::audience::add(&txn, coupon_id, &fresh, now).await?;
            result.added = fresh.len() as u64;
        }
        Kind::Remove => result.removed = repo::audience::remove(&txn, coupon_id, &known).await?,
    }
    if result.changed() {
        // 클러스터에서 이 변경을 낡게 읽은 발급이 버전 검사에서 걸리도록 (한 서버에서는 잠금이 이미 줄 세운다).
        if !repo::coupon::bump_version(&txn, &coupon).await? {
            return Err(changed_since_read(&coupon));
        }
        repo::ledger::append(&txn, &[NewEvent::for_coupon(EventType::CouponAudienceChanged, coupon_id, now)]).await?;
    }
    result.audience_size = repo::audience::size(&txn, coupon_id).await?;
    txn.commit().await.map_err(repo::db_error)?;
    Ok(result.with_unknown(unknown))
}
