//! 선착순 발급: 쿠폰 행 잠금 아래에서 검사·삽입·수량 증가를 한 트랜잭션으로.
//!
//! 두 가지 방식이 같은 핵심(`issue_batch`)을 쓴다.
//! - 요청별: 요청 하나가 트랜잭션 하나 (잠금을 요청 수만큼 잡는다).
//! - 합치기(coalesced): 같은 쿠폰에 동시에 온 요청을 모아 트랜잭션 하나로 처리한다. 행 잠금을 한 번 잡고,
//!   중복 여부를 한 번에 조회하고, 당첨자를 한 번에 넣고, 수량을 한 번 올린다. 한 행의 잠금이
//!   초당 처리량의 천장이 되는 선착순 상황에서 그 천장을 넘는 방법이다. 여러 프로세스가 떠 있어도
//!   배치끼리는 행 잠금으로 직렬화되므로 정확성은 그대로다.
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::domain::code::CouponCode;
use crate::domain::idempotency::{IdemKey, check_same_request};
use crate::domain::{self, Coupon, EventType, NewEvent, UserCoupon, Viewer};
use crate::error::{AppError, AppResult};
use crate::repo;
use crate::service::retry::{changed_since_read, retrying};
use crate::service::stock::StockHub;
use crate::telemetry;

/// 배치 하나의 최대 요청 수: 다중 행 INSERT와 IN 목록을 적당한 크기로 묶는다.
const MAX_BATCH: usize = 256;

/// 발급 방식은 설정의 것 (config가 service를 가져오면 config → issuance → metrics → db → config의 고리가 생긴다).
pub use crate::config::IssueMode;

/// 발급기. 서버는 하나를 만들어 요청들이 나눠 쓴다.
#[derive(Clone)]
pub struct Issuer {
    db: DatabaseConnection,
    coalescer: Option<Arc<Coalescer>>,
    /// 발급이 커밋되면 이 프로세스의 재고 구독자에게 바로 알린다 (없으면 폴러가 200 ms 안에 본다).
    stock: Option<Arc<StockHub>>,
}

impl Issuer {
    pub fn new(db: DatabaseConnection, mode: IssueMode) -> Self {
        let coalescer = (mode == IssueMode::Coalesced).then(|| Arc::new(Coalescer { db: db.clone(), queues: Mutex::new(HashMap::new()) }));
        Self { db, coalescer, stock: None }
    }

    /// 재고 허브를 단다: 발급이 커밋되면 폴러를 바로 깨운다.
    pub fn with_stock(self, hub: Arc<StockHub>) -> Self {
        Self { stock: Some(hub), ..self }
    }

    /// `issueCoupon`: 뷰어 본인(또는 관리자가 지정한 사용자)에게 발급한다. `key`: 멱등 키(있으면 발급과 같은 트랜잭션에 기록).
    pub async fn issue_for(
        &self,
        viewer: Option<&Viewer>,
        coupon_id: Uuid,
        user_id: Option<Uuid>,
        key: Option<IdemKey>,
    ) -> AppResult<UserCoupon> {
        let target = Viewer::act_for(viewer, user_id)?;
        self.issue_keyed(target, coupon_id, key).await
    }

    /// 권한 검사를 마친 발급.
    pub async fn issue(&self, user_id: Uuid, coupon_id: Uuid) -> AppResult<UserCoupon> {
        self.issue_keyed(user_id, coupon_id, None).await
    }

    async fn issue_keyed(&self, user_id: Uuid, coupon_id: Uuid, key: Option<IdemKey>) -> AppResult<UserCoupon> {
        self.submit(IssueRequest { user_id, key, code: None }, coupon_id, precheck(&self.db, user_id, coupon_id).await).await
    }

    /// `redeemCouponCode`의 발급 (코드와 쿠폰, 사용자 존재는 이미 읽었다). 코드의 남은 자리가 발급 검사보다 먼저이고,
    /// 코드의 사용 수는 발급과 같은 트랜잭션·같은 행 잠금 아래에서 오른다. 같은 쿠폰의 `issueCoupon`과 한 줄에 서서 함께 합쳐진다.
    pub async fn redeem(
        &self,
        user_id: Uuid,
        user_exists: bool,
        code: CouponCode,
        coupon: &Coupon,
        key: Option<IdemKey>,
    ) -> AppResult<UserCoupon> {
        // 사용 수는 줄지 않으므로 잠금 밖에서 읽은 "자리 없음"은 잠금 안에서도 같다.
        let pre = match code.check_room(0) {
            Ok(()) => judge(&self.db, user_id, coupon, user_exists).await,
            Err(e) => Err(e),
        };
        // 발급 검사에서 걸렸으면(매진 등) 그보다 앞선 코드 검사를 마저 한다: 이 사용자가 이미 쓴 코드면 그 답이 먼저.
        // 통과한 요청은 잠금 안에서 같은 것을 본다 (여기서 왕복을 더하지 않는다).
        let pre = match pre {
            Err(e) if user_exists && !matches!(e, AppError::CodeAlreadyRedeemed | AppError::CodeNotFound) => {
                let used = repo::user_coupon::redeemed(&self.db, &[(user_id, code.code.as_str())]).await?;
                if used.is_empty() { Err(e) } else { Err(AppError::CodeAlreadyRedeemed) }
            }
            other => other,
        };
        self.submit(IssueRequest { user_id, key, code: Some(code.code) }, coupon.id, pre).await
    }

    /// 미리 걸러지지 않았으면 줄에 서거나(합치기) 바로 발급한다.
    async fn submit(&self, req: IssueRequest, coupon_id: Uuid, pre: AppResult<()>) -> AppResult<UserCoupon> {
        let result = match pre {
            Ok(()) => match &self.coalescer {
                Some(c) => c.submit(req, coupon_id).await,
                None => issue_one(&self.db, req, coupon_id).await,
            },
            // 같은 키의 먼저 온 요청이 이미 발급했다면 그 결과가 답이다 (매진·중복·코드 소진보다 먼저).
            Err(
                e @ (AppError::CouponSoldOut
                | AppError::CouponWaveSoldOut { .. }
                | AppError::CouponAlreadyIssued
                | AppError::CodeAlreadyRedeemed),
            ) => match &req.key {
                Some(k) => replay_of(&self.db, k).await?.ok_or(e),
                None => Err(e),
            },
            Err(e) => Err(e),
        };
        crate::metrics::issuance(result.as_ref().map_or_else(AppError::code, |_| "OK"));
        if let (Ok(uc), Some(hub)) = (&result, &self.stock) {
            hub.poke(uc.coupon_id);
        }
        result
    }
}

/// 발급 요청 하나: 누구에게, 어떤 멱등 키로, 어떤 코드로(있으면).
#[derive(Clone, Debug)]
pub struct IssueRequest {
    pub user_id: Uuid,
    pub key: Option<IdemKey>,
    /// 정규화된 쿠폰 코드 (`redeemCouponCode`).
    pub code: Option<String>,
}

/// 이 키로 이미 끝난 발급이 있으면 그 발급 내역 (본문이 다르면 IDEMPOTENCY_KEY_REUSED).
async fn replay_of(db: &DatabaseConnection, k: &IdemKey) -> AppResult<Option<UserCoupon>> {
    let Some(rec) = repo::idempotency::find(db, k.user_id, &k.key).await? else { return Ok(None) };
    check_same_request(k, &rec)?;
    match rec.user_coupon_id {
        Some(id) => repo::user_coupon::find_by_id(db, id).await,
        None => Ok(None),
    }
}

/// 잠금 밖의 평범한 읽기로 걸러낼 수 있는 것은 먼저 걸러낸다. 이 읽기는 요청이 도는 동안의 한 시점에 커밋된 값이라,
/// 여기서 내린 거절(중지, 기간 밖, 매진)은 그 시점에 참이었던 답이다. 수정·중지가 그 뒤에 바뀌어도 잘못 발급하는 일은 없다:
/// 발급은 언제나 잠금 안에서 최신 행으로 다시 판단한다. 이 프로세스든 다른 프로세스든 쿠폰을 기억해 두는 곳은 없다.
async fn precheck(db: &DatabaseConnection, user_id: Uuid, coupon_id: Uuid) -> AppResult<()> {
    let coupon = super::coupons::existing(db, coupon_id).await?;
    let user_exists = repo::user::exists(db, user_id).await?;
    judge(db, user_id, &coupon, user_exists).await
}

/// 읽어 둔 쿠폰과 사용자 존재로 계약서 순서의 검사: 사용자 존재 → 대상 고객 → 발급 중 → 유효기간
/// → (풀린 재고가 없으면) 사용자당 한도 → 이번 웨이브 매진·매진.
async fn judge(db: &DatabaseConnection, user_id: Uuid, coupon: &Coupon, user_exists: bool) -> AppResult<()> {
    if !user_exists {
        return Err(AppError::UserNotFound);
    }
    // 대상 고객: 제한된 쿠폰에만 색인 조회 하나 (잠금 안에서 배치로 다시 본다).
    if coupon.restricted && !repo::audience::is_member(db, coupon.id, user_id).await? {
        return Err(AppError::NotEligible);
    }
    let now = domain::now();
    coupon.check_issuable()?;
    coupon.check_window(now)?;
    if let Err(out) = coupon.check_stock(now) {
        // 매진 빠른 경로: 패자는 잠금 대기열에 서지 않고 바로 답을 받는다. 다음 웨이브가 남았으면 WAVE_SOLD_OUT이고,
        // 그 웨이브가 열린 뒤의 요청은 이 읽기에서 새 재고를 본다 (읽기는 요청마다 새로 한다).
        return Err(sold_out_or_held(db, user_id, coupon, out).await);
    }
    Ok(())
}

/// 풀린 재고가 없을 때(`out`): 한도까지 받은 사용자에게는 ALREADY_ISSUED가 먼저다.
async fn sold_out_or_held(db: &impl ConnectionTrait, user_id: Uuid, coupon: &Coupon, out: AppError) -> AppError {
    match repo::user_coupon::count_held(db, user_id, coupon.id).await {
        Ok(held) => coupon.next_slot(held).err().unwrap_or(out),
        Err(e) => e,
    }
}

async fn issue_one(db: &DatabaseConnection, req: IssueRequest, coupon_id: Uuid) -> AppResult<UserCoupon> {
    let reqs = [req];
    let mut results = retrying(operation(&reqs), || issue_batch(db, coupon_id, &reqs)).await?;
    results.pop().unwrap_or_else(|| Err(AppError::Internal("빈 배치 결과".into())))
}

/// `/metrics`의 재시도 라벨: 코드로 온 요청이 섞였으면 redeem.
fn operation(reqs: &[IssueRequest]) -> &'static str {
    if reqs.iter().any(|r| r.code.is_some()) { "redeem" } else { "issue" }
}

/// 배치 안에서 요청 하나가 받을 답: 새 발급·이미 끝난 발급(멱등 키)·앞선 같은 키 요청과 같은 답·오류.
enum Outcome {
    Won(UserCoupon),
    Replay(Uuid),
    SameAs(usize),
    Failed(AppError),
}

/// 한 트랜잭션: FOR UPDATE → 멱등 키 조회(키가 있을 때 한 번) → 이미 가진 사용자 조회(한 번) → 순서대로 당첨/매진 판정
/// → 다중 행 삽입 → 수량 증가 → 당첨자의 키 기록 → 원장 → 커밋.
/// 돌려주는 값은 요청 순서대로의 개별 결과. 트랜잭션 자체가 실패하면 전체 에러이고, 커밋 전이므로 아무것도 남지 않는다.
/// 교착 상태 희생자·인증 충돌은 `Aborted`(부르는 쪽이 트랜잭션째 다시 돌린다), 잠금 대기 초과는 TRY_AGAIN
/// (이미 몇 초를 기다렸다).
async fn issue_batch(db: &DatabaseConnection, coupon_id: Uuid, reqs: &[IssueRequest]) -> AppResult<Vec<AppResult<UserCoupon>>> {
    crate::metrics::issuance_batch(reqs.len());
    let txn = db.begin().await.map_err(repo::db_error)?;
    let coupon = repo::coupon::find_for_update(&txn, coupon_id).await?.ok_or(AppError::CouponNotFound)?;
    let now = domain::now();
    // 잠금이나 배치를 기다리는 사이에 중지되었거나 유효기간이 끝났을 수 있다. 코드로 온 요청에는 코드 검사가 먼저라 요청마다 답한다.
    let closed = coupon.check_issuable().and_then(|()| coupon.check_window(now)).err();
    // 지금 풀린 재고만 (웨이브): 잠금 뒤의 시각으로 정하므로 다음 웨이브의 것은 그 시각 전에 한 장도 나가지 않는다.
    let mut remaining = coupon.stock_left(now);
    // 코드의 사용 수: 코드를 바꾸는 곳은 모두 이 쿠폰 행 잠금 아래에 있으므로 여기서 읽은 값이 권위를 갖는다.
    let mut code_names: Vec<&str> = reqs.iter().filter_map(|r| r.code.as_deref()).collect();
    code_names.sort_unstable();
    code_names.dedup();
    let codes = repo::code::find_many(&txn, &code_names).await?;
    let mut code_used: HashMap<&str, i32> = HashMap::new();
    let keyed: Vec<&IdemKey> = reqs.iter().filter_map(|r| r.key.as_ref()).collect();
    let existing = repo::idempotency::find_many(&txn, &keyed).await?;
    let users: Vec<Uuid> = reqs.iter().map(|r| r.user_id).collect();
    // 한도 1인 쿠폰에 코드 없이 한 명뿐이고 재고가 있으면 보유 조회를 건너뛰고 유일 제약에 맡긴다 (잠금 안의 왕복 하나를
    // 줄인다: 이미 가졌으면 1번 자리가 겹쳐 INSERT가 ALREADY_ISSUED로 실패하고 트랜잭션째 버려진다). 매진이면
    // ALREADY_ISSUED가 먼저이므로 조회한다.
    let lone = reqs.len() == 1 && remaining != Some(0) && existing.is_empty() && code_names.is_empty();
    let held =
        if lone && coupon.per_user_limit == 1 { HashMap::new() } else { repo::user_coupon::held_counts(&txn, coupon_id, &users).await? };
    // 대상 고객: 제한된 쿠폰이면 배치의 사용자 가운데 회원을 한 번에 (잠금 아래라 그사이 빠진 사람은 받지 못한다).
    let members = if coupon.restricted { repo::audience::members_among(&txn, coupon_id, &users).await? } else { HashSet::new() };
    // 고른 코드는 사용자당 한 번: 이 배치의 (사용자, 코드) 가운데 이미 받은 것.
    let pairs: Vec<(Uuid, &str)> = reqs.iter().filter_map(|r| r.code.as_deref().map(|c| (r.user_id, c))).collect();
    let mut redeemed = repo::user_coupon::redeemed(&txn, &pairs).await?;
    let mut winners: Vec<UserCoupon> = Vec::new();
    let mut winner_keys: Vec<(&IdemKey, Uuid)> = Vec::new();
    let mut won: HashMap<Uuid, i32> = HashMap::new();
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(reqs.len());
    for (i, req) in reqs.iter().enumerate() {
        if let Some(k) = &req.key {
            if let Some((_, _, rec)) = existing.iter().find(|(u, key, _)| *u == k.user_id && *key == k.key) {
                outcomes.push(match (check_same_request(k, rec), rec.user_coupon_id) {
                    (Err(e), _) => Outcome::Failed(e),
                    (Ok(()), Some(id)) => Outcome::Replay(id),
                    // 응답만 보관된 키: 그 응답을 HTTP 계층이 돌려준다. 여기서는 다시 시도하게 한다.
                    (Ok(()), None) => Outcome::Failed(AppError::TryAgain),
                });
                continue;
            }
            // 같은 배치 안의 같은 키(동시 재시도): 앞선 요청과 같은 답.
            if let Some(j) = reqs[..i].iter().position(|r| r.key.as_ref().is_some_and(|p| p.user_id == k.user_id && p.key == k.key)) {
                let same = reqs[j].key.as_ref().is_some_and(|p| p.request_hash == k.request_hash);
                outcomes.push(if same { Outcome::SameAs(j) } else { Outcome::Failed(AppError::IdempotencyKeyReused) });
                continue;
            }
        }
        if let Some(name) = req.code.as_deref() {
            let room = match codes.get(name) {
                Some(_) if redeemed.contains(&(req.user_id, name.to_owned())) => Err(AppError::CodeAlreadyRedeemed),
                Some(c) => c.check_room(code_used.get(name).copied().unwrap_or(0)),
                None => Err(AppError::CodeNotFound),
            };
            if let Err(e) = room {
                outcomes.push(Outcome::Failed(e));
                continue;
            }
        }
        if coupon.restricted && !members.contains(&req.user_id) {
            outcomes.push(Outcome::Failed(AppError::NotEligible));
            continue;
        }
        if let Some(e) = &closed {
            outcomes.push(Outcome::Failed(e.clone()));
            continue;
        }
        let user_id = req.user_id;
        let have = held.get(&user_id).copied().unwrap_or(0) + won.get(&user_id).copied().unwrap_or(0);
        let slot = match coupon.next_slot(have) {
            Ok(slot) => slot,
            Err(e) => {
                outcomes.push(Outcome::Failed(e));
                continue;
            }
        };
        if remaining == Some(0) {
            outcomes.push(Outcome::Failed(coupon.out_of_stock(now)));
            continue;
        }
        remaining = remaining.map(|r| r - 1);
        *won.entry(user_id).or_default() += 1;
        if let Some(name) = req.code.as_deref() {
            *code_used.entry(name).or_default() += 1;
            redeemed.insert((user_id, name.to_owned()));
        }
        let uc = UserCoupon { code: req.code.clone(), ..UserCoupon::issued(Uuid::new_v4(), user_id, coupon_id, slot, now) };
        if let Some(k) = &req.key {
            winner_keys.push((k, uc.id));
        }
        winners.push(uc.clone());
        outcomes.push(Outcome::Won(uc));
    }
    if !winners.is_empty() {
        // 수량부터: 읽은 재고가 그대로인지 확인하는 쓰기라, 어긋나면 아무것도 쓰기 전에 버린다.
        if !repo::coupon::increment_issued(&txn, &coupon, winners.len() as i32, now).await? {
            return Err(changed_since_read(&coupon));
        }
        repo::user_coupon::insert_many(&txn, &winners).await?;
        for (name, n) in &code_used {
            repo::code::add_redemptions(&txn, name, *n).await?;
        }
        // 다른 경로(다른 변경 종류)가 같은 키를 먼저 썼다면 이 배치는 답할 수 없다: 통째로 되돌리고 다시 시도하게 한다.
        if repo::idempotency::record(&txn, &winner_keys, now).await? != winner_keys.len() {
            // 한 사용자의 같은 키가 다른 변경에 동시에 쓰였다. 배치 전체가 아니라 그 요청만 답하지 못하게:
            // 여럿이면 요청별로 다시 돌리도록(Internal) 알리고, 하나면 다시 시도하게 한다.
            return Err(if reqs.len() > 1 {
                AppError::Internal("배치의 멱등 키 기록이 겹침".into())
            } else {
                AppError::TryAgain
            });
        }
        let mut events: Vec<NewEvent> = winners.iter().map(|uc| NewEvent::for_user_coupon(EventType::CouponIssued, uc, now)).collect();
        // 마지막 한 장을 가져간 트랜잭션이 매진을 남긴다: 잠금 아래에서 재고가 있던 상태에서 0이 되는 것은 이 트랜잭션 하나뿐이다.
        // 웨이브 하나가 다 나간 것은 매진이 아니다 (다음 웨이브가 온다).
        if coupon.total_quantity == Some(coupon.issued_quantity + winners.len() as i32) {
            events.push(NewEvent::for_coupon(EventType::CouponSoldOut, coupon_id, now));
        }
        repo::ledger::append(&txn, &events).await?;
    }
    txn.commit().await.map_err(repo::db_error)?;
    let mut results: Vec<AppResult<UserCoupon>> = Vec::with_capacity(outcomes.len());
    for outcome in outcomes {
        let r = match outcome {
            Outcome::Won(uc) => Ok(uc),
            Outcome::Failed(e) => Err(e),
            Outcome::Replay(id) => repo::user_coupon::find_by_id(db, id).await.and_then(|uc| uc.ok_or(AppError::TryAgain)),
            Outcome::SameAs(j) => results.get(j).cloned().unwrap_or(Err(AppError::TryAgain)),
        };
        results.push(r);
    }
    Ok(results)
}

/// 같은 쿠폰에 대한 대기 요청들. 큐가 있다는 것은 그 쿠폰의 배치 작업자가 돌고 있다는 뜻이다.
struct Coalescer {
    db: DatabaseConnection,
    queues: Mutex<HashMap<Uuid, Vec<Waiter>>>,
}

struct Waiter {
    req: IssueRequest,
    /// 답과, 그 답을 만든 배치의 추적 스팬 (기다린 요청이 링크로 잇는다).
    reply: oneshot::Sender<(AppResult<UserCoupon>, telemetry::Link)>,
    /// 배치 스팬의 부모가 될 수 있는 이 요청의 스팬.
    parent: telemetry::Parent,
}

impl Coalescer {
    fn queues(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Vec<Waiter>>> {
        // 잠금을 쥔 채 패닉하는 코드가 없으므로 오염된 잠금도 내용은 온전하다.
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// 줄에 서고 결과를 기다린다. 줄이 없었다면 이 요청이 그 쿠폰의 작업자를 띄운다.
    async fn submit(self: &Arc<Self>, req: IssueRequest, coupon_id: Uuid) -> AppResult<UserCoupon> {
        let waiting = telemetry::Waiting::start();
        let (reply, answer) = oneshot::channel();
        let waiter = Waiter { req, reply, parent: waiting.parent() };
        let lead = match self.queues().entry(coupon_id) {
            Entry::Occupied(mut e) => {
                e.get_mut().push(waiter);
                false
            }
            Entry::Vacant(e) => {
                e.insert(vec![waiter]);
                true
            }
        };
        if lead {
            let me = self.clone();
            tokio::spawn(async move { me.drain(coupon_id).await });
        }
        let (result, batch) =
            answer.await.unwrap_or_else(|_| (Err(AppError::Internal("발급 작업자가 답 없이 끝남".into())), telemetry::Link::default()));
        waiting.link(batch);
        result
    }

    /// 줄이 빌 때까지 배치를 처리한다. 배치가 도는 동안 도착한 요청이 다음 배치가 된다.
    async fn drain(&self, coupon_id: Uuid) {
        let _guard = DrainGuard { coalescer: self, coupon_id };
        loop {
            let batch: Vec<Waiter> = {
                let mut queues = self.queues();
                let Some(queue) = queues.get_mut(&coupon_id) else {
                    return;
                };
                if queue.is_empty() {
                    queues.remove(&coupon_id);
                    return;
                }
                let n = queue.len().min(MAX_BATCH);
                queue.drain(..n).collect()
            };
            // 응답을 기다리는 쪽이 이미 사라졌으면(연결이 끊김) 발급하지 않는다: 답하지 못할 발급은 남기지 않는다.
            let batch: Vec<Waiter> = batch.into_iter().filter(|w| !w.reply.is_closed()).collect();
            if batch.is_empty() {
                continue;
            }
            let parent = batch.first().map(|w| w.parent.clone()).unwrap_or_default();
            let (scope, link) = telemetry::batch(&parent, batch.len());
            telemetry::within(scope, self.serve(coupon_id, batch, link)).await;
        }
    }

    /// 배치 하나를 한 트랜잭션으로 발급하고 기다리던 요청마다 답한다.
    async fn serve(&self, coupon_id: Uuid, batch: Vec<Waiter>, link: telemetry::Link) {
        let reqs: Vec<IssueRequest> = batch.iter().map(|w| w.req.clone()).collect();
        // 데이터베이스가 버린 배치(교착·Galera 인증 충돌)는 배치째 다시 돈다: 줄에 선 요청들이 자리를 잃지 않는다.
        match retrying(operation(&reqs), || issue_batch(&self.db, coupon_id, &reqs)).await {
            Ok(results) => {
                for (w, r) in batch.into_iter().zip(results) {
                    let _ = w.reply.send((r, link.clone()));
                }
            }
            // 예상 못 한 실패(또는 잠금 밖에서 끼어든 중복 삽입)가 한 요청 때문일 수 있으니,
            // 다른 요청까지 실패시키지 않도록 하나씩 다시 돌린다.
            Err(e @ (AppError::Internal(_) | AppError::CouponAlreadyIssued | AppError::CodeAlreadyRedeemed)) if batch.len() > 1 => {
                tracing::warn!(%coupon_id, error = ?e, size = batch.len(), "배치 발급 실패: 요청별로 다시 처리");
                for w in batch.into_iter().filter(|w| !w.reply.is_closed()) {
                    let r = issue_one(&self.db, w.req.clone(), coupon_id).await;
                    let _ = w.reply.send((r, link.clone()));
                }
            }
            // TRY_AGAIN 등: 아무것도 쓰이지 않았고, 모두에게 같은 사정이다.
            Err(e) => {
                for w in batch {
                    let _ = w.reply.send((Err(e.clone()), link.clone()));
                }
            }
        }
    }
}

/// 작업자가 패닉으로 끝나면 큐를 치워서, 남은 요청이 답(INTERNAL)을 받고 다음 요청이 새 작업자를 띄우게 한다.
struct DrainGuard<'a> {
    coalescer: &'a Coalescer,
    coupon_id: Uuid,
}

impl Drop for DrainGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.coalescer.queues().remove(&self.coupon_id);
        }
    }
}
