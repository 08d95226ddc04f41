//! 원장(events): 변경과 같은 트랜잭션에서 이벤트를 덧붙이고, 발급 내역별 이력과 스트림(도장 받은 이벤트)을 읽고,
//! 뒤에서 도는 일꾼(도장, NATS 중계)의 커서와 임대를 적는다.
//!
//! 전역 잠금이 없다 (CONTRACT 9절): 변경은 이벤트를 `sequence` 없이 넣을 뿐 모든 쓰기가 함께 쓰는 행이 없다.
//! INSERT 때 데이터베이스가 매기는 `pos`는 서로 기다린 변경(같은 쿠폰 행, 같은 발급 내역 행을 잠근 트랜잭션)끼리는
//! 커밋 순서다: 앞 트랜잭션이 커밋한 뒤에야 뒤 트랜잭션이 잠금을 얻고 마지막 문장에서 이벤트를 넣기 때문이다.
//! 커밋 뒤에 도장 찍는 일꾼 하나가 보이는 이벤트들에 pos 순서로 sequence를 매긴다 (`pending`, `stamp`).
use std::collections::HashMap;

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveValue::NotSet, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::{db_error, id_str, parse_id, ts, utc};
use crate::domain::money::money;
use crate::domain::{Event, NewEvent, Stamped};
use crate::entities::event::{self, Column, Entity as Events};
use crate::entities::relay_state::{Column as R, Entity as Relay};
use crate::error::{AppError, AppResult};

/// 이벤트들을 원장에 덧붙인다: 트랜잭션 안에서, 잠글 행을 모두 잠근 뒤 마지막 문장으로 (그래야 pos가 커밋 순서다).
pub async fn append(db: &impl ConnectionTrait, events: &[NewEvent]) -> AppResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let rows = events.iter().map(|e| event::ActiveModel {
        pos: NotSet,
        id: Set(id_str(Uuid::new_v4())),
        sequence: Set(None),
        kind: Set(e.kind.as_str().to_owned()),
        coupon_id: Set(id_str(e.coupon_id)),
        user_id: Set(e.user_id.map(id_str)),
        user_coupon_id: Set(e.user_coupon_id.map(id_str)),
        order_id: Set(e.order_id.clone()),
        order_amount: Set(e.order_amount),
        discount_amount: Set(e.discount_amount),
        occurred_at: Set(ts(e.occurred_at)),
    });
    Events::insert_many(rows).exec_without_returning(db).await.map_err(db_error)?;
    Ok(())
}

fn to_domain(m: event::Model) -> AppResult<Event> {
    Ok(Event {
        id: parse_id(&m.id)?,
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

/// 도장 받은 이벤트로 (피드와 중계는 `sequence`가 있는 행만 읽는다).
fn to_stamped(m: event::Model) -> AppResult<Stamped> {
    let sequence = m.sequence.ok_or_else(|| AppError::Internal("도장 없는 이벤트를 스트림으로 읽음".into()))?;
    Ok(Stamped { sequence, event: to_domain(m)? })
}

/// 여러 발급 내역의 이력을 한 번에, 오래된 것부터 (DataLoader용). 도장을 아직 받지 못한 이벤트도 pos 순서로 보인다.
pub async fn history(db: &impl ConnectionTrait, user_coupon_ids: &[Uuid]) -> AppResult<HashMap<Uuid, Vec<Event>>> {
    if user_coupon_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<String> = user_coupon_ids.iter().copied().map(id_str).collect();
    let mut out: HashMap<Uuid, Vec<Event>> = HashMap::new();
    for m in Events::find().filter(Column::UserCouponId.is_in(ids)).order_by_asc(Column::Pos).all(db).await.map_err(db_error)? {
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
        .order_by_desc(Column::Pos)
        .limit(1)
        .one(db)
        .await
        .map_err(db_error)?
        .map(to_domain)
        .transpose()
}

/// 스트림 한 페이지, 오래된 것부터 (도장 받은 이벤트만). `coupon_id`가 없으면 모든 쿠폰. `after`: 이전 페이지 마지막 sequence.
pub async fn page(db: &impl ConnectionTrait, coupon_id: Option<Uuid>, after: Option<i64>, limit: u64) -> AppResult<Vec<Stamped>> {
    let mut q = Events::find().filter(Column::Sequence.is_not_null());
    if let Some(c) = coupon_id {
        q = q.filter(Column::CouponId.eq(id_str(c)));
    }
    if let Some(seq) = after {
        q = q.filter(Column::Sequence.gt(seq));
    }
    q.order_by_asc(Column::Sequence).limit(limit).all(db).await.map_err(db_error)?.into_iter().map(to_stamped).collect()
}

/// 중계할 다음 이벤트들: `after`보다 큰 sequence부터 `limit`개, sequence 순서로.
/// 도장은 한 곳에서 커밋 순서대로 찍히고 새 번호는 언제나 이미 찍은 번호보다 크므로, 여기서 읽은 번호 앞에 늦게 나타날 이벤트는 없다.
pub async fn after(db: &impl ConnectionTrait, after: i64, limit: u64) -> AppResult<Vec<Stamped>> {
    page(db, None, Some(after), limit).await
}

/// 도장을 기다리는 이벤트들의 pos, 작은 것부터 `limit`개 (잠그지 않는 읽기: 진행 중인 변경을 기다리지 않는다).
/// 서로 기다린 변경끼리는 앞의 것이 먼저 커밋했으므로, 뒤의 것이 보이면 앞의 것도 보인다 (같은 묶음이거나 이미 찍혔다).
pub async fn pending(db: &impl ConnectionTrait, limit: u64) -> AppResult<Vec<i64>> {
    Events::find()
        .select_only()
        .column(Column::Pos)
        .filter(Column::Sequence.is_null())
        .order_by_asc(Column::Pos)
        .limit(limit)
        .into_tuple()
        .all(db)
        .await
        .map_err(db_error)
}

/// 도장: `positions`의 이벤트에 sequence = pos + `offset`을 매긴다 (아직 없는 것만). 매긴 행 수를 돌려준다.
/// pos로 고르므로 커밋된 그 행들만 잠근다: 진행 중인 변경의 행이나 그 사이를 잠그지 않는다.
pub async fn stamp(db: &impl ConnectionTrait, positions: &[i64], offset: i64) -> AppResult<u64> {
    if positions.is_empty() {
        return Ok(0);
    }
    let res = Events::update_many()
        .col_expr(Column::Sequence, Expr::col(Column::Pos).add(offset))
        .filter(Column::Pos.is_in(positions.iter().copied()))
        .filter(Column::Sequence.is_null())
        .exec(db)
        .await
        .map_err(db_error)?;
    Ok(res.rows_affected)
}

/// 원장 뒤에서 도는 일꾼: `relay_state`의 행 하나씩 (커서와 임대).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Worker {
    /// NATS 중계: 커서는 확인(ack)받은 마지막 sequence.
    Relay,
    /// 도장: 커서는 마지막으로 매긴 sequence.
    Stamper,
}

impl Worker {
    fn row(self) -> i32 {
        match self {
            Worker::Relay => 1,
            Worker::Stamper => 2,
        }
    }
}

/// 일꾼의 임대를 잡거나 늘린다: 비었거나, 내 것이거나, 만료된 것이면. 잡았으면 그 커서를 돌려준다.
pub async fn lease(
    db: &impl ConnectionTrait,
    worker: Worker,
    me: &str,
    now: chrono::DateTime<chrono::Utc>,
    ttl: chrono::Duration,
) -> AppResult<Option<i64>> {
    let res = Relay::update_many()
        .col_expr(R::Leader, Expr::val(me))
        .col_expr(R::LeaseUntil, Expr::val(ts(now + ttl)))
        .filter(R::Id.eq(worker.row()))
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
    let last: Option<i64> =
        Relay::find_by_id(worker.row()).select_only().column(R::LastSequence).into_tuple().one(db).await.map_err(db_error)?;
    Ok(last)
}

/// 일꾼의 커서를 적는다. 임대가 아직 내 것일 때만 (잃었으면 false: 새 일꾼이 이어 간다).
pub async fn advance(db: &impl ConnectionTrait, worker: Worker, me: &str, last: i64) -> AppResult<bool> {
    let res = Relay::update_many()
        .col_expr(R::LastSequence, Expr::val(last))
        .filter(R::Id.eq(worker.row()))
        .filter(R::Leader.eq(me))
        .exec(db)
        .await
        .map_err(db_error)?;
    Ok(res.rows_affected == 1)
}

/// 임대를 놓는다 (종료 때: 다음 일꾼이 만료를 기다리지 않게).
pub async fn release_lease(db: &impl ConnectionTrait, worker: Worker, me: &str) -> AppResult<()> {
    Relay::update_many()
        .col_expr(R::Leader, Expr::val(Option::<String>::None))
        .col_expr(R::LeaseUntil, Expr::val(Option::<chrono::DateTime<chrono::FixedOffset>>::None))
        .filter(R::Id.eq(worker.row()))
        .filter(R::Leader.eq(me))
        .exec(db)
        .await
        .map_err(db_error)?;
    Ok(())
}
