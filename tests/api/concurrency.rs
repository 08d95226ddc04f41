//! 동시성: 실제 트랜잭션을 동시에 돌리고, 끝나면 데이터베이스에서 불변식을 확인한다 (MySQL 계열, PostgreSQL).
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use couponql::config::DbSettings;
use couponql::domain::{Role, Viewer};
use couponql::service::issuance::{IssueMode, Issuer};
use couponql::{repo, service};
use tokio::sync::Barrier;
use uuid::Uuid;

use crate::helpers::{TestDb, assert_invariant, new_coupon, new_user, new_users, reconnect};
use crate::{on_locking_backends, on_locking_backends_both_modes};

/// 결과 코드 ("OK" 또는 에러 코드).
pub(crate) fn outcome<T>(r: Result<T, couponql::error::AppError>) -> &'static str {
    match r {
        Ok(_) => "OK",
        Err(e) => e.code(),
    }
}

/// 결과 코드별 개수.
pub(crate) fn tally(results: impl IntoIterator<Item = &'static str>) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for r in results {
        *m.entry(r).or_insert(0) += 1;
    }
    m
}

/// 작업 n개를 띄워 모두 장벽에서 기다렸다가 한꺼번에 출발시키고, 결과 코드를 모은다.
pub(crate) async fn all_at_once<F, Fut>(n: usize, job: F) -> Vec<&'static str>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Vec<&'static str>> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let barrier = barrier.clone();
            let work = job(i);
            tokio::spawn(async move {
                barrier.wait().await;
                work.await
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.extend(t.await.expect("작업"));
    }
    out
}

/// 사용자마다 동시에 한 번씩 발급을 요청한다.
async fn race(issuer: &Issuer, users: &[Uuid], coupon: Uuid) -> BTreeMap<&'static str, usize> {
    let codes = all_at_once(users.len(), |i| {
        let (issuer, user) = (issuer.clone(), users[i]);
        async move { vec![outcome(issuer.issue(user, coupon).await)] }
    })
    .await;
    tally(codes)
}

async fn a_hundred_users_racing_for_ten_coupons_get_exactly_ten(db: TestDb, mode: IssueMode) {
    let coupon = new_coupon(&db.conn, Some(10)).await;
    let users: Vec<Uuid> = new_users(&db.conn, 100).await.into_iter().map(|u| u.id).collect();
    let got = race(&Issuer::new(db.conn.clone(), mode), &users, coupon.id).await;
    assert_eq!(got, BTreeMap::from([("COUPON_SOLD_OUT", 90), ("OK", 10)]));
    assert_eq!(assert_invariant(&db.conn, coupon.id).await, 10);
}
on_locking_backends_both_modes!(a_hundred_users_racing_for_ten_coupons_get_exactly_ten);

async fn a_thousand_users_racing_for_a_hundred_through_a_small_pool_get_exactly_a_hundred(db: TestDb, mode: IssueMode) {
    let coupon = new_coupon(&db.conn, Some(100)).await;
    let users: Vec<Uuid> = new_users(&db.conn, 1000).await.into_iter().map(|u| u.id).collect();
    // 군중(1000)보다 훨씬 작은 풀(10): 기다림은 풀이 흡수하고, 아무도 TRY_AGAIN/INTERNAL을 받지 않는다.
    let settings = DbSettings { max_connections: Some(10), acquire_timeout: Duration::from_secs(30), ..Default::default() };
    let pool = reconnect(&db, &settings).await;
    let started = Instant::now();
    let got = race(&Issuer::new(pool, mode), &users, coupon.id).await;
    let wall = started.elapsed();
    println!("[{:?} {mode:?}] 1000 users / 100 coupons / pool 10: wall {:.0} ms", db.backend, wall.as_secs_f64() * 1000.0);
    assert_eq!(got, BTreeMap::from([("COUPON_SOLD_OUT", 900), ("OK", 100)]));
    assert_eq!(assert_invariant(&db.conn, coupon.id).await, 100);
    // 원장: 발급 100줄과 매진 정확히 한 줄, 매진은 마지막 발급과 같은 트랜잭션의 끝 (sequence가 가장 크다).
    service::ledger::stamp_all(&db.conn).await.expect("도장");
    let events: Vec<_> =
        repo::ledger::page(&db.conn, Some(coupon.id), None, 10_000).await.expect("원장").into_iter().map(|s| s.event).collect();
    assert_eq!(events.iter().filter(|e| e.kind == "COUPON_ISSUED").count(), 100);
    assert_eq!(events.iter().filter(|e| e.kind == "COUPON_SOLD_OUT").count(), 1);
    assert_eq!(events.last().map(|e| e.kind.as_str()), Some("COUPON_SOLD_OUT"));
}
on_locking_backends_both_modes!(a_thousand_users_racing_for_a_hundred_through_a_small_pool_get_exactly_a_hundred);

async fn one_user_asking_fifty_times_at_once_gets_exactly_one(db: TestDb, mode: IssueMode) {
    let coupon = new_coupon(&db.conn, Some(100)).await;
    let u = new_user(&db.conn).await;
    let got = race(&Issuer::new(db.conn.clone(), mode), &vec![u.id; 50], coupon.id).await;
    assert_eq!(got, BTreeMap::from([("COUPON_ALREADY_ISSUED", 49), ("OK", 1)]));
    assert_eq!(assert_invariant(&db.conn, coupon.id).await, 1);
}
on_locking_backends_both_modes!(one_user_asking_fifty_times_at_once_gets_exactly_one);

async fn twenty_concurrent_uses_of_one_user_coupon_let_exactly_one_through(db: TestDb) {
    let coupon = new_coupon(&db.conn, Some(10)).await;
    let u = new_user(&db.conn).await;
    let uc = service::issuance::Issuer::new(db.conn.clone(), service::issuance::IssueMode::PerRequest)
        .issue(u.id, coupon.id)
        .await
        .expect("발급");
    let viewer = Viewer { user_id: u.id, role: Role::User };
    let codes = all_at_once(20, |_| {
        let db = db.conn.clone();
        async move { vec![outcome(service::user_coupons::use_coupon(&db, Some(&viewer), uc.id, None, None, None).await)] }
    })
    .await;
    assert_eq!(tally(codes), BTreeMap::from([("COUPON_ALREADY_USED", 19), ("OK", 1)]));
    assert!(repo::user_coupon::find_by_id(&db.conn, uc.id).await.expect("조회").expect("있음").is_used);
}
on_locking_backends!(twenty_concurrent_uses_of_one_user_coupon_let_exactly_one_through);

async fn users_issuing_two_coupons_in_opposite_orders_never_see_internal(db: TestDb, mode: IssueMode) {
    let a = new_coupon(&db.conn, Some(1000)).await;
    let b = new_coupon(&db.conn, Some(1000)).await;
    let users: Vec<Uuid> = new_users(&db.conn, 60).await.into_iter().map(|u| u.id).collect();
    let issuer = Issuer::new(db.conn.clone(), mode);
    let codes = all_at_once(users.len(), |i| {
        let (issuer, user) = (issuer.clone(), users[i]);
        let order = if i % 2 == 0 { [a.id, b.id] } else { [b.id, a.id] };
        async move {
            let mut codes = Vec::new();
            for c in order {
                codes.push(outcome(issuer.issue(user, c).await));
            }
            codes
        }
    })
    .await;
    let got = tally(codes);
    assert_eq!(got.get("INTERNAL"), None, "교착 상태가 INTERNAL로 새어 나옴: {got:?}");
    assert!(got.keys().all(|k| *k == "OK" || *k == "TRY_AGAIN"), "{got:?}");
    let issued = assert_invariant(&db.conn, a.id).await + assert_invariant(&db.conn, b.id).await;
    assert_eq!(issued as usize, got.get("OK").copied().unwrap_or(0), "성공 응답 수 = 데이터베이스의 발급 수");
    println!("[{:?} {mode:?}] opposite orders: {got:?}", db.backend);
}
on_locking_backends_both_modes!(users_issuing_two_coupons_in_opposite_orders_never_see_internal);

/// 합쳐진 배치 안에서도 요청마다 제 답을 받는다: 이미 가진 사람, 같은 사람의 두 번째 요청, 새 사람이 섞여도.
async fn a_mixed_crowd_gets_one_answer_each(db: TestDb, mode: IssueMode) {
    let coupon = new_coupon(&db.conn, Some(40)).await;
    let holders: Vec<Uuid> = new_users(&db.conn, 30).await.into_iter().map(|u| u.id).collect();
    for u in &holders {
        service::issuance::Issuer::new(db.conn.clone(), service::issuance::IssueMode::PerRequest)
            .issue(*u, coupon.id)
            .await
            .expect("미리 발급");
    }
    let newcomers: Vec<Uuid> = new_users(&db.conn, 30).await.into_iter().map(|u| u.id).collect();
    // 새 사람은 두 번씩 요청한다. 남은 재고는 10장.
    let crowd: Vec<Uuid> = holders.iter().chain(newcomers.iter()).chain(newcomers.iter()).copied().collect();
    let got = race(&Issuer::new(db.conn.clone(), mode), &crowd, coupon.id).await;
    assert_eq!(got, BTreeMap::from([("COUPON_ALREADY_ISSUED", 40), ("COUPON_SOLD_OUT", 40), ("OK", 10)]));
    assert_eq!(assert_invariant(&db.conn, coupon.id).await, 40);
}
on_locking_backends_both_modes!(a_mixed_crowd_gets_one_answer_each);

/// 데이터베이스가 발급 트랜잭션을 교착 상태 희생자로 버리면(MySQL 1213, PostgreSQL 40P01) 서버가 트랜잭션째 다시 돌려
/// 발급한다: 사용자는 TRY_AGAIN이 아니라 쿠폰을 받고, 한 번만 발급된다.
/// 교착: 다른 트랜잭션(T1)이 사용자 행을 쥐고, 발급(T2)은 쿠폰 행을 쥔 채 발급 내역의 외래 키 확인에서 사용자 행을
/// 기다리고, T1이 쿠폰 행을 청한다.
/// T1은 행 200개를 써서 더 무겁다 (InnoDB는 가벼운 쪽을 버린다). PostgreSQL은 먼저 기다린 T2가 먼저 교착을 찾아 스스로 버려진다.
async fn an_issuance_chosen_as_deadlock_victim_is_retried_and_issued_once(db: TestDb) {
    use sea_orm::{ConnectionTrait, Statement, TransactionTrait};
    let user = new_user(&db.conn).await;
    let coupon = new_coupon(&db.conn, Some(10)).await;
    let backend = db.conn.get_database_backend();
    let t1 = db.conn.begin().await.expect("T1 시작");
    new_users(&t1, 200).await;
    // 행 하나를 `SELECT … FOR UPDATE`로 잠근다.
    let lock = |table: &str, id: Uuid| {
        let mark = if backend == sea_orm::DbBackend::Postgres { "$1" } else { "?" };
        Statement::from_sql_and_values(
            backend,
            format!("SELECT id FROM {table} WHERE id = {mark} FOR UPDATE"),
            [id.hyphenated().to_string().into()],
        )
    };
    t1.query_one_raw(lock("users", user.id)).await.expect("T1: 사용자 행 잠금");
    let conn = db.conn.clone();
    let issuing = tokio::spawn(async move {
        service::issuance::Issuer::new(conn.clone(), service::issuance::IssueMode::PerRequest).issue(user.id, coupon.id).await
    });
    // 발급이 쿠폰 행을 잡고 사용자 행에서 기다릴 때까지.
    tokio::time::sleep(Duration::from_millis(300)).await;
    t1.query_one_raw(lock("coupons", coupon.id)).await.expect("T1은 희생자가 아니어야 한다 (무거운 쪽)");
    t1.commit().await.expect("T1 커밋");
    let issued = issuing.await.expect("발급 작업");
    assert!(issued.is_ok(), "교착 희생자가 된 발급은 다시 돌아 성공해야 한다: {issued:?}");
    assert_eq!(assert_invariant(&db.conn, coupon.id).await, 1);
}
on_locking_backends!(an_issuance_chosen_as_deadlock_victim_is_retried_and_issued_once);
