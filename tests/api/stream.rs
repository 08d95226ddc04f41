//! 전역 잠금 없는 원장 (이슈 20, CONTRACT 9절 "Order without a global lock", 10절):
//! - 쿠폰 A에 열린 트랜잭션(이 테스트의 연결)이 있는 동안, 다른 쿠폰과 다른 발급 내역의 변경은 기다리지 않고 커밋된다;
//! - 쓰기가 도는 동안 피드(`couponEvents`)를 커서로 넘기면 이벤트를 건너뛰지도 두 번 보이지도 않는다;
//! - 한 발급 내역의 이벤트, 한 쿠폰의 변경은 커밋 순서로 보인다.
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use couponql::domain::checkout::{OrderId, hold_ttl};
use couponql::domain::{self, CouponStatus, EventType, NewEvent, Role, Viewer};
use couponql::error::AppError;
use couponql::service::issuance::{IssueMode, Issuer};
use couponql::service::{self, coupons, user_coupons};
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, Statement, TransactionTrait};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, assert_invariant, new_coupon, new_users, token};
use crate::{backend_tests, e2e_on_all_backends};

/// 키를 붙인 변경 하나를 HTTP로 보내고, 오류 없이 끝났는지 확인한다.
async fn mutate(app: &TestApp, tok: &str, query: &str, vars: Value) -> Value {
    let key = Uuid::new_v4().to_string();
    let (status, _, body) = app.keyed_bytes(tok, &key, &json!({ "query": query, "variables": vars })).await;
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    assert!(status == 200 && v.get("errors").is_none(), "{query}: HTTP {status} {v}");
    v
}

/// 한 행을 바꾸지 않고 쓴다 (행 잠금을 커밋까지 쥐려고).
async fn touch(txn: &impl ConnectionTrait, table: &str, column: &str, id: Uuid) {
    let backend = txn.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => format!("UPDATE {table} SET {column} = {column} WHERE id = $1"),
        _ => format!("UPDATE {table} SET {column} = {column} WHERE id = ?"),
    };
    let res = txn.execute_raw(Statement::from_sql_and_values(backend, sql, [id.hyphenated().to_string().into()])).await.expect("행 잠금");
    assert_eq!(res.rows_affected(), 1, "{table} {id}");
}

/// 쿠폰 A와 그 발급 내역 하나를 바꾸는 트랜잭션이 (이벤트까지 쓰고) 열려 있는 동안, 쿠폰 B의 발급·보류·사용·취소·수정·
/// 중지·재개·코드 생성·코드 교환과 새 쿠폰 만들기가 모두 그 트랜잭션을 기다리지 않고 커밋된다.
/// 전에는 모든 변경이 마지막에 원장 머리 행 하나를 잠갔으므로, 여기서 잠금 대기 끝에 TRY_AGAIN이 났다.
async fn writes_elsewhere_do_not_wait_for_an_open_transaction_on_one_coupon(app: TestApp) {
    let c = &app.db.conn;
    let a = new_coupon(c, Some(100)).await;
    let b = new_coupon(c, Some(100)).await;
    let users = new_users(c, 4).await;
    let admin_viewer = Viewer { user_id: users[0].id, role: Role::Admin };
    let admin = token(users[0].id, Role::Admin);
    let issuer = Issuer::new(c.clone(), IssueMode::PerRequest);
    let uc_a = issuer.issue(users[1].id, a.id).await.expect("A 발급").id;
    let uc_b = issuer.issue(users[2].id, b.id).await.expect("B 발급").id;
    let codes = service::codes::generate(c, Some(&admin_viewer), b.id, 3, None).await.expect("코드").sample;

    // 이 테스트의 연결: 쿠폰 A의 행과 A의 발급 내역 행을 쓰고 이벤트를 남긴 채 커밋하지 않는다 (진행 중인 변경과 같은 잠금).
    let blocker = c.begin().await.expect("트랜잭션");
    touch(&blocker, "coupons", "issued_quantity", a.id).await;
    touch(&blocker, "user_coupons", "order_id", uc_a).await;
    couponql::repo::ledger::append(&blocker, &[NewEvent::for_coupon(EventType::CouponUpdated, a.id, domain::now())]).await.expect("이벤트");

    let (u2, u3) = (token(users[2].id, Role::User), token(users[3].id, Role::User));
    let u1 = token(users[1].id, Role::User);
    let (b_id, uc) = (b.id.to_string(), uc_b.to_string());
    let elsewhere = async {
        mutate(&app, &u3, "mutation($c: ID!) { issueCoupon(couponId: $c) { id } }", json!({ "c": b_id })).await;
        let order = json!({ "u": uc, "o": "order-b-1" });
        mutate(
            &app,
            &u2,
            "mutation($u: ID!, $o: String!) { reserveCoupon(userCouponId: $u, orderId: $o, orderAmount: \"50000\") { id } }",
            order.clone(),
        )
        .await;
        mutate(&app, &u2, "mutation($u: ID!, $o: String!) { useCoupon(userCouponId: $u, orderId: $o) { id } }", order.clone()).await;
        mutate(&app, &u2, "mutation($u: ID!, $o: String!) { cancelCoupon(userCouponId: $u, orderId: $o) { id } }", order).await;
        mutate(&app, &admin, "mutation($c: ID!) { updateCoupon(id: $c, input: { name: \"바뀐 이름\" }) { id } }", json!({ "c": b_id }))
            .await;
        mutate(&app, &admin, "mutation($c: ID!) { pauseCoupon(id: $c) { id } }", json!({ "c": b_id })).await;
        mutate(&app, &admin, "mutation($c: ID!) { resumeCoupon(id: $c) { id } }", json!({ "c": b_id })).await;
        mutate(&app, &admin, "mutation($c: ID!) { generateCouponCodes(couponId: $c, count: 5) { count } }", json!({ "c": b_id })).await;
        mutate(&app, &u1, "mutation($code: String!) { redeemCouponCode(code: $code) { id } }", json!({ "code": codes[0] })).await;
        mutate(
            &app,
            &admin,
            "mutation { createCoupon(input: { name: \"새 쿠폰\", discountType: FIXED, discountValue: \"1000\", validFrom: \"2025-01-01T00:00:00Z\", validUntil: \"2099-01-01T00:00:00Z\" }) { id } }",
            json!({}),
        )
        .await;
    };
    // 잠금 대기 한도(몇 초)보다 훨씬 짧게: 기다렸다면 여기서 끝나지 못한다.
    let finished = tokio::time::timeout(Duration::from_secs(3), elsewhere).await;
    blocker.rollback().await.expect("되돌림");
    assert!(finished.is_ok(), "쿠폰 A의 열린 트랜잭션을 다른 쿠폰·발급 내역의 변경이 기다렸다");
    // 데이터베이스에서: B는 세 장(users 2, 3, 그리고 코드로 user 1), A는 그대로 한 장.
    assert_eq!(assert_invariant(c, b.id).await, 3);
    assert_eq!(assert_invariant(c, a.id).await, 1);
}
backend_tests!(writes_elsewhere_do_not_wait_for_an_open_transaction_on_one_coupon, crate::helpers::spawn_app,
    mysql => MySql; postgres => Postgres);

/// 피드에서 본 이벤트 하나: (sequence, id, 종류, 쿠폰, 발급 내역).
type Seen = (i64, Uuid, String, Uuid, Option<Uuid>);

/// 피드를 커서로 끝까지 넘긴다. 새 페이지의 sequence는 언제나 앞에서 본 것보다 커야 한다.
async fn page_through(app: &TestApp, admin: &Viewer, cursor: &mut Option<String>, seen: &mut Vec<Seen>) {
    loop {
        let page = coupons::events(&app.db.conn, Some(admin), None, Some(100), cursor.as_deref()).await.expect("피드");
        for s in &page.items {
            if let Some(last) = seen.last() {
                assert!(s.sequence > last.0, "sequence가 뒤로 갔다: {} 뒤에 {}", last.0, s.sequence);
            }
            let e = &s.event;
            seen.push((s.sequence, e.id, e.kind.clone(), e.coupon_id, e.user_coupon_id));
        }
        if let Some(s) = page.items.last() {
            *cursor = Some(s.sequence.to_string());
        }
        if !page.has_next_page {
            return;
        }
    }
}

/// 사용자 하나의 흐름: 쿠폰마다 발급 → 보류 → 사용 → 취소를 차례로 (중지된 쿠폰이면 조금 뒤 다시). 끝까지 간 발급 내역들.
async fn one_users_day(db: sea_orm::DatabaseConnection, issuer: Issuer, user: Uuid, coupons: Vec<Uuid>) -> Vec<Uuid> {
    let me = Viewer { user_id: user, role: Role::User };
    let mut done = Vec::new();
    for coupon in coupons {
        let uc = loop {
            match issuer.issue(user, coupon).await {
                Ok(uc) => break Some(uc.id),
                Err(AppError::CouponPaused) => tokio::time::sleep(Duration::from_millis(5)).await,
                Err(AppError::CouponSoldOut) => break None,
                Err(e) => panic!("발급: {e:?}"),
            }
        };
        let Some(uc) = uc else { continue };
        let order = OrderId::parse(&format!("o-{uc}")).expect("주문");
        let ttl = hold_ttl(600).expect("보류 시간");
        user_coupons::reserve(&db, Some(&me), uc, &order, Decimal::from(50_000), ttl, None).await.expect("보류");
        user_coupons::use_coupon(&db, Some(&me), uc, None, Some(&order), None).await.expect("사용");
        user_coupons::cancel_coupon(&db, Some(&me), uc, Some(&order), None).await.expect("취소");
        done.push(uc);
    }
    done
}

/// 쓰기(사용자 30명의 발급 → 보류 → 사용 → 취소, 쿠폰 하나의 중지·재개 되풀이)가 도는 동안 피드를 계속 넘긴다.
/// 다 끝나고 도장이 다 찍힌 뒤: 본 이벤트는 원장의 이벤트 전부이고 하나도 두 번 보이지 않았다. 발급 내역마다 순서는
/// 발급 → 보류 → 사용 → 취소, 중지된 쿠폰은 중지와 재개 사이에 발급이 없고, 매진은 그 쿠폰의 마지막 발급 뒤다.
async fn the_feed_neither_skips_nor_repeats_and_keeps_each_subjects_order(app: TestApp) {
    let c = app.db.conn.clone();
    let ample = [new_coupon(&c, None).await.id, new_coupon(&c, Some(1000)).await.id];
    let paused = new_coupon(&c, Some(25)).await.id;
    let users = new_users(&c, 30).await;
    let admin = Viewer { user_id: users[0].id, role: Role::Admin };
    let issuer = Issuer::new(c.clone(), IssueMode::Coalesced);

    let writers: Vec<_> =
        users.iter().map(|u| tokio::spawn(one_users_day(c.clone(), issuer.clone(), u.id, vec![ample[0], paused, ample[1]]))).collect();
    let toggling = {
        let c = c.clone();
        tokio::spawn(async move {
            for _ in 0..6 {
                coupons::set_status(&c, Some(&admin), paused, CouponStatus::Paused).await.expect("중지");
                tokio::time::sleep(Duration::from_millis(15)).await;
                coupons::set_status(&c, Some(&admin), paused, CouponStatus::Active).await.expect("재개");
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        })
    };
    let writing = AtomicBool::new(true);
    let (mut cursor, mut seen) = (None, Vec::new());
    let reader = async {
        while writing.load(Ordering::SeqCst) {
            page_through(&app, &admin, &mut cursor, &mut seen).await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let writes = async {
        let mut lifecycles = Vec::new();
        for w in writers {
            lifecycles.extend(w.await.expect("사용자 작업"));
        }
        toggling.await.expect("중지·재개 작업");
        writing.store(false, Ordering::SeqCst);
        lifecycles
    };
    let (lifecycles, ()) = tokio::join!(writes, reader);
    // 커밋된 것이 모두 도장을 받은 뒤 마지막으로 넘긴다 (서버의 도장 일꾼을 기다린다).
    service::ledger::stamp_all(&c).await.expect("도장");
    page_through(&app, &admin, &mut cursor, &mut seen).await;

    // 건너뛰지도, 두 번 보이지도 않았다: 본 것 = 원장 전부.
    let ids: HashSet<Uuid> = seen.iter().map(|s| s.1).collect();
    assert_eq!(ids.len(), seen.len(), "같은 이벤트가 두 번 보였다");
    let rows = c.query_all_raw(Statement::from_string(c.get_database_backend(), "SELECT id FROM events")).await.expect("원장");
    let all: HashSet<Uuid> = rows.iter().map(|r| Uuid::parse_str(&r.try_get::<String>("", "id").expect("id")).expect("uuid")).collect();
    assert_eq!(ids, all, "피드가 건너뛴 이벤트가 있다");
    assert!(lifecycles.len() >= 60, "흐름이 너무 적다: {}", lifecycles.len());

    // 발급 내역마다: 커밋 순서 그대로.
    let mut by_uc: HashMap<Uuid, Vec<&str>> = HashMap::new();
    for (_, _, kind, _, uc) in &seen {
        if let Some(uc) = uc {
            by_uc.entry(*uc).or_default().push(kind);
        }
    }
    for uc in &lifecycles {
        assert_eq!(
            by_uc.get(uc).map(Vec::as_slice),
            Some(&["COUPON_ISSUED", "COUPON_RESERVED", "COUPON_USED", "COUPON_CANCELLED"][..]),
            "{uc}"
        );
    }
    // 중지된 쿠폰: 중지와 재개 사이에 발급이 없고, 매진(있다면)은 마지막 발급 뒤.
    let own: Vec<&str> = seen
        .iter()
        .filter(|s| s.3 == paused && matches!(s.2.as_str(), "COUPON_ISSUED" | "COUPON_PAUSED" | "COUPON_RESUMED" | "COUPON_SOLD_OUT"))
        .map(|s| s.2.as_str())
        .collect();
    assert_eq!(own.iter().filter(|k| **k == "COUPON_PAUSED").count(), 6);
    let mut is_paused = false;
    for kind in &own {
        match *kind {
            "COUPON_PAUSED" => is_paused = true,
            "COUPON_RESUMED" => is_paused = false,
            "COUPON_ISSUED" => assert!(!is_paused, "중지와 재개 사이에 발급: {own:?}"),
            _ => {}
        }
    }
    if let Some(sold) = own.iter().position(|k| *k == "COUPON_SOLD_OUT") {
        assert!(!own[sold..].contains(&"COUPON_ISSUED"), "매진 뒤에 발급: {own:?}");
    }
    assert_eq!(assert_invariant(&c, paused).await, 25);
}
e2e_on_all_backends!(the_feed_neither_skips_nor_repeats_and_keeps_each_subjects_order);
