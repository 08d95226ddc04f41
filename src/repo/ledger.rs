//! 원장(events): 변경과 같은 트랜잭션에서 이벤트를 덧붙이고, 발급 내역별 이력을 읽는다.
//!
//! sequence는 `ledger_head` 행 하나를 올려서 매긴다. 그 행의 잠금은 커밋까지 쥐므로 sequence가 큰 이벤트는
//! 항상 나중에 커밋된다 (커밋 순서). 잠금을 쥐는 시간을 줄이려고 트랜잭션의 마지막 문장으로 부른다.
use std::collections::HashMap;

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::{DbFailure, classify, db_error, id_str, parse_id, ts, utc};
use crate::domain::money::money;
use crate::domain::{Event, NewEvent};
use crate::entities::event::{self, Column, Entity as Events};
use crate::entities::ledger_head::{self, Entity as Head};
use crate::error::{AppError, AppResult};

/// 이벤트들을 원장에 덧붙인다 (트랜잭션 안에서, 마지막에).
pub async fn append(db: &impl ConnectionTrait, events: &[NewEvent]) -> AppResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let n = events.len() as i64;
    Head::update_many()
        .col_expr(ledger_head::Column::LastSequence, Expr::col(ledger_head::Column::LastSequence).add(n))
        .filter(ledger_head::Column::Id.eq(1))
        .exec(db)
        .await
        .map_err(db_error)?;
    let last: i64 = Head::find_by_id(1)
        .select_only()
        .column(ledger_head::Column::LastSequence)
        .into_tuple()
        .one(db)
        .await
        .map_err(db_error)?
        .ok_or_else(|| AppError::Internal("ledger_head 행이 없음".into()))?;
    let first = last - n + 1;
    let rows = events.iter().enumerate().map(|(i, e)| event::ActiveModel {
        id: Set(id_str(Uuid::new_v4())),
        sequence: Set(first + i as i64),
        kind: Set(e.kind.as_str().to_owned()),
        coupon_id: Set(id_str(e.coupon_id)),
        user_id: Set(e.user_id.map(id_str)),
        user_coupon_id: Set(e.user_coupon_id.map(id_str)),
        order_id: Set(e.order_id.clone()),
        order_amount: Set(e.order_amount),
        discount_amount: Set(e.discount_amount),
        occurred_at: Set(ts(e.occurred_at)),
    });
    // 한 서버에서는 ledger_head 행 잠금 때문에 같은 번호가 두 번 나올 수 없다. Galera에서는 다른 노드가 같은 번호를 먼저
    // 커밋했고 그 쓰기가 이 노드에 적용되는 중일 때, 이 트랜잭션이 인증 충돌(1213)로 버려지기 직전에 1062를 먼저 볼 수 있다:
    // 버려진 트랜잭션과 같으므로 트랜잭션째 다시 돌리게 한다.
    match Events::insert_many(rows).exec_without_returning(db).await {
        Ok(_) => Ok(()),
        Err(e) if classify(&e) == DbFailure::Unique => Err(AppError::Aborted),
        Err(e) => Err(db_error(e)),
    }
}

fn to_domain(m: event::Model) -> AppResult<Event> {
    Ok(Event {
        id: parse_id(&m.id)?,
        sequence: m.sequence,
        kind: m.kind,
        coupon_id: parse_id(&m.coupon_id)?,
        user_id: m.user_id.as_deref().map(parse_id).transpose()?,
        user_coupon_id: m.user_coupon_id.as_deref().map(parse_id).transpose()?,
        order_id: m.order_id,
        order_amount: m.order_amount.map(money),
        discount_amount: m.discount_amount.map(money),
        occurred_at: utc(m.occurred_at),
    })
}

/// 여러 발급 내역의 이력을 한 번에, 오래된 것부터 (DataLoader용).
pub async fn history(db: &impl ConnectionTrait, user_coupon_ids: &[Uuid]) -> AppResult<HashMap<Uuid, Vec<Event>>> {
    if user_coupon_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<String> = user_coupon_ids.iter().copied().map(id_str).collect();
    let mut out: HashMap<Uuid, Vec<Event>> = HashMap::new();
    for m in Events::find().filter(Column::UserCouponId.is_in(ids)).order_by_asc(Column::Sequence).all(db).await.map_err(db_error)? {
        let e = to_domain(m)?;
        if let Some(uc) = e.user_coupon_id {
            out.entry(uc).or_default().push(e);
        }
    }
    Ok(out)
}

/// 발급 내역의 마지막 이벤트 (취소 재시도를 알아보려고).
pub async fn last_for(db: &impl ConnectionTrait, user_coupon_id: Uuid) -> AppResult<Option<Event>> {
    Events::find()
        .filter(Column::UserCouponId.eq(id_str(user_coupon_id)))
        .order_by_desc(Column::Sequence)
        .limit(1)
        .one(db)
        .await
        .map_err(db_error)?
        .map(to_domain)
        .transpose()
}

/// 원장 한 페이지, 오래된 것부터. `coupon_id`가 없으면 모든 쿠폰. `after`: 이전 페이지 마지막 sequence.
pub async fn page(db: &impl ConnectionTrait, coupon_id: Option<Uuid>, after: Option<i64>, limit: u64) -> AppResult<Vec<Event>> {
    let mut q = Events::find();
    if let Some(c) = coupon_id {
        q = q.filter(Column::CouponId.eq(id_str(c)));
    }
    if let Some(seq) = after {
        q = q.filter(Column::Sequence.gt(seq));
    }
    q.order_by_asc(Column::Sequence).limit(limit).all(db).await.map_err(db_error)?.into_iter().map(to_domain).collect()
}

/// 중계할 다음 이벤트들: `after`보다 큰 sequence부터 `limit`개, sequence 순서로.
/// sequence는 커밋 순서이고 되돌린 트랜잭션은 번호도 되돌리므로, 여기서 읽은 다음 번호 앞에 늦게 커밋될 이벤트는 없다.
pub async fn after(db: &impl ConnectionTrait, after: i64, limit: u64) -> AppResult<Vec<Event>> {
    page(db, None, Some(after), limit).await
}

/// 중계 임대를 잡거나 늘린다: 비었거나, 내 것이거나, 만료된 것이면. 돌려주는 값은 (잡았는지, 확인받은 마지막 sequence).
pub async fn lease(
    db: &impl ConnectionTrait,
    me: &str,
    now: chrono::DateTime<chrono::Utc>,
    ttl: chrono::Duration,
) -> AppResult<Option<i64>> {
    use crate::entities::relay_state::{Column as R, Entity as Relay};
    let res = Relay::update_many()
        .col_expr(R::Leader, Expr::val(me))
        .col_expr(R::LeaseUntil, Expr::val(ts(now + ttl)))
        .filter(R::Id.eq(1))
        .filter(
            sea_orm::Condition::any()
                .add(R::Leader.is_null())
                .add(R::Leader.eq(me))
                .add(R::LeaseUntil.is_null())
                .add(R::LeaseUntil.lt(ts(now))),
        )
        .exec(db)
        .await
        .map_err(db_error)?;
    if res.rows_affected != 1 {
        return Ok(None);
    }
    let last: Option<i64> = Relay::find_by_id(1).select_only().column(R::LastSequence).into_tuple().one(db).await.map_err(db_error)?;
    Ok(last)
}

/// 확인받은 마지막 sequence를 적는다. 임대가 아직 내 것일 때만 (잃었으면 false: 새 중계자가 이어 간다).
pub async fn advance(db: &impl ConnectionTrait, me: &str, last: i64) -> AppResult<bool> {
    use crate::entities::relay_state::{Column as R, Entity as Relay};
    let res = Relay::update_many()
        .col_expr(R::LastSequence, Expr::val(last))
        .filter(R::Id.eq(1))
        .filter(R::Leader.eq(me))
        .exec(db)
        .await
        .map_err(db_error)?;
    Ok(res.rows_affected == 1)
}

/// 임대를 놓는다 (종료 때: 다음 중계자가 만료를 기다리지 않게).
pub async fn release_lease(db: &impl ConnectionTrait, me: &str) -> AppResult<()> {
    use crate::entities::relay_state::{Column as R, Entity as Relay};
    Relay::update_many()
        .col_expr(R::Leader, Expr::val(Option::<String>::None))
        .col_expr(R::LeaseUntil, Expr::val(Option::<chrono::DateTime<chrono::FixedOffset>>::None))
        .filter(R::Id.eq(1))
        .filter(R::Leader.eq(me))
        .exec(db)
        .await
        .map_err(db_error)?;
    Ok(())
}
