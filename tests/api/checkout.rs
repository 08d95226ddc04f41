//! 결제 흐름(CONTRACT 7절): 보류·해제·주문에 묶인 사용과 취소, 이력, dry run, 멱등 키 — 규칙 순서, 경쟁, 크래시, 끊김.
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use couponql::domain::{self, OrderId, Role, Viewer};
use couponql::error::AppError;
use couponql::service::user_coupons as svc;
use rust_decimal::Decimal;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use crate::concurrency::{all_at_once, outcome, tally};
use crate::helpers::{TestApp, TestDb, assert_invariant, new_coupon, new_user, start_binary, token};
use crate::{e2e_on_all_backends, on_all_backends, on_locking_backends};

fn dec(s: &str) -> Decimal {
    s.parse().expect("decimal")
}

fn order(s: &str) -> OrderId {
    OrderId::parse(s).expect("order id")
}

fn code<T>(r: Result<T, AppError>) -> &'static str {
    outcome(r)
}

/// 사용자 하나와 그가 가진 쿠폰 하나(정액 1000, 최소 5000).
async fn holder(db: &TestDb) -> (Viewer, Uuid) {
    let user = new_user(&db.conn).await;
    let coupon = new_coupon(&db.conn, Some(10)).await;
    let uc = couponql::service::issuance::Issuer::new(db.conn.clone(), couponql::service::issuance::IssueMode::PerRequest)
        .issue(user.id, coupon.id)
        .await
        .expect("발급");
    (Viewer { user_id: user.id, role: Role::User }, uc.id)
}

const TTL: chrono::Duration = chrono::Duration::seconds(900);

async fn holds_uses_and_cancels_follow_the_rules_in_order(db: TestDb) {
    let (me, uc) = holder(&db).await;
    let (other, _) = holder(&db).await;
    let c = &db.conn;
    // 소유자가 아니면 존재를 드러내지 않는다.
    assert_eq!(code(svc::reserve(c, Some(&other), uc, &order("A"), dec("9000"), TTL, None).await), "USER_COUPON_NOT_FOUND");
    assert_eq!(code(svc::reserve(c, Some(&me), uc, &order("A"), dec("4999"), TTL, None).await), "MIN_PURCHASE_NOT_MET");
    let held = svc::reserve(c, Some(&me), uc, &order("A"), dec("9000"), TTL, None).await.expect("보류");
    assert_eq!(held.status(domain::now()), domain::UserCouponStatus::Reserved);
    assert_eq!((held.order_amount, held.discount_amount), (Some(dec("9000")), Some(dec("1000"))));
    // 다른 주문은 보류·사용 못 하고, 주문 번호 없는 옛 호출도 못 한다.
    assert_eq!(code(svc::reserve(c, Some(&me), uc, &order("B"), dec("9000"), TTL, None).await), "COUPON_RESERVED");
    assert_eq!(code(svc::use_coupon(c, Some(&me), uc, None, Some(&order("B")), None).await), "COUPON_RESERVED");
    assert_eq!(code(svc::use_coupon(c, Some(&me), uc, None, None, None).await), "COUPON_RESERVED");
    // 같은 주문은 보류를 새로 고친다.
    let again = svc::reserve(c, Some(&me), uc, &order("A"), dec("20000"), TTL, None).await.expect("갱신");
    assert_eq!(again.order_amount, Some(dec("20000")));
    // 다른 주문의 해제는 아무것도 바꾸지 않는다.
    let same = svc::release(c, Some(&me), uc, &order("B")).await.expect("해제 아님");
    assert_eq!(same.order_id.as_deref(), Some("A"));
    // 보류한 주문의 사용: 보류 때의 금액으로 기록.
    let used = svc::use_coupon(c, Some(&me), uc, None, Some(&order("A")), None).await.expect("사용");
    assert!(used.is_used);
    assert_eq!((used.order_id.as_deref(), used.order_amount, used.discount_amount), (Some("A"), Some(dec("20000")), Some(dec("1000"))));
    // 같은 주문의 재시도는 그대로, 다른 주문은 ALREADY_USED, 사용된 것의 보류도 ALREADY_USED.
    let retry = svc::use_coupon(c, Some(&me), uc, None, Some(&order("A")), None).await.expect("재시도");
    assert_eq!(retry.used_at, used.used_at);
    assert_eq!(code(svc::use_coupon(c, Some(&me), uc, None, Some(&order("B")), None).await), "COUPON_ALREADY_USED");
    assert_eq!(code(svc::reserve(c, Some(&me), uc, &order("B"), dec("9000"), TTL, None).await), "COUPON_ALREADY_USED");
    // 취소: 다른 주문은 ORDER_MISMATCH, 그 주문은 되돌리고, 재시도는 그대로, 다른 주문의 늦은 취소는 COUPON_NOT_USED.
    assert_eq!(code(svc::cancel_coupon(c, Some(&me), uc, Some(&order("B")), None).await), "ORDER_MISMATCH");
    let back = svc::cancel_coupon(c, Some(&me), uc, Some(&order("A")), None).await.expect("취소");
    assert!(!back.is_used && back.order_id.is_none());
    svc::cancel_coupon(c, Some(&me), uc, Some(&order("A")), None).await.expect("취소 재시도는 그대로");
    assert_eq!(code(svc::cancel_coupon(c, Some(&me), uc, Some(&order("B")), None).await), "COUPON_NOT_USED");
    // 새 주문이 쓰는 중이면 옛 주문의 늦은 취소가 되돌리지 못한다.
    svc::use_coupon(c, Some(&me), uc, Some(dec("7000")), Some(&order("C")), None).await.expect("새 주문");
    assert_eq!(code(svc::cancel_coupon(c, Some(&me), uc, Some(&order("A")), None).await), "ORDER_MISMATCH");
    let now = couponql::repo::user_coupon::find_by_id(c, uc).await.expect("조회").expect("있음");
    assert_eq!((now.is_used, now.order_id.as_deref()), (true, Some("C")));
    // 이력: 변경마다 한 줄, 오래된 것부터 (재시도는 줄을 남기지 않는다).
    let history = couponql::repo::ledger::history(c, &[uc]).await.expect("이력").remove(&uc).unwrap_or_default();
    let kinds: Vec<&str> = history.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["COUPON_ISSUED", "COUPON_RESERVED", "COUPON_RESERVED", "COUPON_USED", "COUPON_CANCELLED", "COUPON_USED"],
        "{history:?}"
    );
    // 입력 오류.
    assert!(matches!(OrderId::parse("bad order"), Err(AppError::BadUserInput { .. })));
    assert!(matches!(domain::checkout::hold_ttl(30), Err(AppError::BadUserInput { .. })));
}
on_all_backends!(holds_uses_and_cancels_follow_the_rules_in_order);

async fn an_expired_hold_is_no_hold_without_any_sweeper(db: TestDb) {
    let (me, uc) = holder(&db).await;
    let c = &db.conn;
    svc::reserve(c, Some(&me), uc, &order("A"), dec("9000"), TTL, None).await.expect("보류");
    // 보류 시간을 과거로 돌린다 (60초를 기다리는 대신).
    c.execute_unprepared(&format!("UPDATE user_coupons SET reserved_until = {} WHERE id = '{uc}'", past(db.backend))).await.expect("만료");
    let seen = couponql::service::user_coupons::list(c, Some(&me), None, false).await.expect("목록");
    assert_eq!(seen[0].0.status(domain::now()), domain::UserCouponStatus::Available);
    svc::use_coupon(c, Some(&me), uc, None, Some(&order("B")), None).await.expect("다른 주문이 쓸 수 있다");
}
on_all_backends!(an_expired_hold_is_no_hold_without_any_sweeper);

fn past(backend: crate::helpers::Backend) -> &'static str {
    match backend {
        crate::helpers::Backend::Sqlite => "'2020-01-01T00:00:00+00:00'",
        _ => "'2020-01-01 00:00:00'",
    }
}

async fn twenty_orders_racing_to_use_one_coupon_leave_exactly_one_winner(db: TestDb) {
    let (me, uc) = holder(&db).await;
    let conn = db.conn.clone();
    let codes = all_at_once(20, |i| {
        let conn = conn.clone();
        async move { vec![outcome(svc::use_coupon(&conn, Some(&me), uc, Some(dec("9000")), Some(&order(&format!("O{i}"))), None).await)] }
    })
    .await;
    assert_eq!(tally(codes).get("OK"), Some(&1));
    let row = couponql::repo::user_coupon::find_by_id(&db.conn, uc).await.expect("조회").expect("있음");
    assert!(row.is_used && row.order_id.is_some());
    let history = couponql::repo::ledger::history(&db.conn, &[uc]).await.expect("이력").remove(&uc).unwrap_or_default();
    assert_eq!(history.iter().filter(|e| e.kind == "COUPON_USED").count(), 1, "사용 이벤트는 하나");
}
on_locking_backends!(twenty_orders_racing_to_use_one_coupon_leave_exactly_one_winner);

async fn twenty_orders_racing_to_hold_one_coupon_leave_exactly_one_holder(db: TestDb) {
    let (me, uc) = holder(&db).await;
    let conn = db.conn.clone();
    let codes = all_at_once(20, |i| {
        let conn = conn.clone();
        async move { vec![outcome(svc::reserve(&conn, Some(&me), uc, &order(&format!("O{i}")), dec("9000"), TTL, None).await)] }
    })
    .await;
    let t = tally(codes);
    assert_eq!(t.get("OK"), Some(&1), "{t:?}");
    assert_eq!(t.get("COUPON_RESERVED"), Some(&19), "{t:?}");
    let row = couponql::repo::user_coupon::find_by_id(&db.conn, uc).await.expect("조회").expect("있음");
    assert!(row.held_by(domain::now()).is_some());
}
on_locking_backends!(twenty_orders_racing_to_hold_one_coupon_leave_exactly_one_holder);

/// 보류가 끝나는 순간에 그 주문의 사용과 다른 주문의 보류가 겹쳐도, 둘 다 이기는 일은 없다.
async fn a_hold_racing_its_own_expiry_never_lets_two_orders_win(db: TestDb) {
    let mut both = 0;
    let mut seen: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for round in 0..12 {
        let (me, uc) = holder(&db).await;
        svc::reserve(&db.conn, Some(&me), uc, &order("A"), dec("9000"), TTL, None).await.expect("보류");
        // 곧 끝나는 보류: 지금부터 round ms 뒤.
        let until = domain::now() + chrono::Duration::milliseconds(round * 3);
        let lit = match db.backend {
            crate::helpers::Backend::Sqlite => format!("'{}'", until.to_rfc3339()),
            _ => format!("'{}'", until.format("%Y-%m-%d %H:%M:%S%.6f")),
        };
        db.conn.execute_unprepared(&format!("UPDATE user_coupons SET reserved_until = {lit} WHERE id = '{uc}'")).await.expect("만료 시각");
        let (oa, ob) = (order("A"), order("B"));
        let (a, b) = tokio::join!(
            svc::use_coupon(&db.conn, Some(&me), uc, None, Some(&oa), None),
            svc::reserve(&db.conn, Some(&me), uc, &ob, dec("9000"), TTL, None)
        );
        let (a, b) = (outcome(a), outcome(b));
        if a == "OK" && b == "OK" {
            both += 1;
        }
        *seen.entry((a, b)).or_default() += 1;
        let row = couponql::repo::user_coupon::find_by_id(&db.conn, uc).await.expect("조회").expect("있음");
        if a == "OK" {
            assert!(row.is_used && row.order_id.as_deref() == Some("A"));
        } else if b == "OK" {
            assert!(!row.is_used && row.order_id.as_deref() == Some("B"));
        }
    }
    println!("[{:?}] hold vs expiry: {seen:?}", db.backend);
    assert_eq!(both, 0, "보류가 끝나는 순간 두 주문이 모두 이김: {seen:?}");
}
on_locking_backends!(a_hold_racing_its_own_expiry_never_lets_two_orders_win);

/// GraphQL로: 상태·이력·dry run·쿠폰 고르기.
async fn the_checkout_page_sees_status_history_validation_and_applicable_coupons(app: TestApp) {
    couponql::seed::seed(&app.db.conn).await.expect("seed");
    let minsu = token(Uuid::parse_str("11111111-1111-4111-8111-111111111111").expect("uuid"), Role::User);
    let q = r#"{ me { applicableCoupons(orderAmount: "40000") { discountAmount userCoupon { id status coupon { name } } } } }"#;
    let (_, v) = app.raw(Some(&minsu), json!({ "query": q }).to_string()).await;
    let list = v["data"]["me"]["applicableCoupons"].as_array().cloned().unwrap_or_default();
    // 김민수: 쿠폰 1(5,000원, 최소 30,000)과 쿠폰 5(1,000원). 큰 할인 먼저.
    assert_eq!(list.len(), 2, "{v}");
    assert_eq!(list[0]["discountAmount"], "5000.00", "{v}");
    assert_eq!(list[1]["discountAmount"], "1000.00", "{v}");
    let uc = list[0]["userCoupon"]["id"].as_str().expect("id").to_owned();
    let (_, v) = app
        .raw(Some(&minsu), json!({ "query": r#"{ me { applicableCoupons(orderAmount: "20000") { discountAmount } } }"# }).to_string())
        .await;
    assert_eq!(v["data"]["me"]["applicableCoupons"].as_array().map(Vec::len), Some(1), "최소 금액 미달은 빠진다: {v}");

    let validate = |amount: &str, order: &str| {
        json!({ "query": format!(r#"{{ validateCoupon(userCouponId: "{uc}", orderAmount: "{amount}", orderId: "{order}") {{ valid code message discountAmount }} }}"#) }).to_string()
    };
    let (_, v) = app.raw(Some(&minsu), validate("40000", "ORD-1")).await;
    assert_eq!(v["data"]["validateCoupon"], json!({ "valid": true, "code": null, "message": null, "discountAmount": "5000.00" }), "{v}");
    let (_, v) = app.raw(Some(&minsu), validate("100", "ORD-1")).await;
    assert_eq!(v["data"]["validateCoupon"]["code"], "MIN_PURCHASE_NOT_MET", "{v}");
    let seoyeon = token(Uuid::parse_str("22222222-2222-4222-8222-222222222222").expect("uuid"), Role::User);
    let (_, v) = app.raw(Some(&seoyeon), validate("40000", "ORD-1")).await;
    assert_eq!(v["data"]["validateCoupon"]["code"], "USER_COUPON_NOT_FOUND", "남의 것은 답으로: {v}");
    let (_, v) = app.raw(None, validate("40000", "ORD-1")).await;
    assert_eq!(crate::client::first_code(&v), Some("UNAUTHENTICATED"), "{v}");
    let (_, v) = app.raw(Some(&minsu), validate("40000", "bad id")).await;
    assert_eq!(crate::client::first_code(&v), Some("BAD_USER_INPUT"), "{v}");

    let m = format!(
        r#"mutation {{ reserveCoupon(userCouponId: "{uc}", orderId: "ORD-1", orderAmount: "40000") {{ status orderId reservedUntil orderAmount discountAmount }} }}"#
    );
    let (_, v) = app.raw(Some(&minsu), json!({ "query": m }).to_string()).await;
    let r = &v["data"]["reserveCoupon"];
    assert_eq!(
        (r["status"].as_str(), r["orderId"].as_str(), r["discountAmount"].as_str()),
        (Some("RESERVED"), Some("ORD-1"), Some("5000.00")),
        "{v}"
    );
    let m = format!(
        r#"mutation {{ useCoupon(userCouponId: "{uc}", orderId: "ORD-1") {{ status history {{ kind orderId orderAmount discountAmount at }} }} }}"#
    );
    let (_, v) = app.raw(Some(&minsu), json!({ "query": m }).to_string()).await;
    let kinds: Vec<&str> = v["data"]["useCoupon"]["history"].as_array().into_iter().flatten().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds, ["RESERVED", "USED"], "{v}");
    assert_eq!(v["data"]["useCoupon"]["status"], "USED");
}
e2e_on_all_backends!(the_checkout_page_sees_status_history_validation_and_applicable_coupons);

async fn keyed(app: &TestApp, token: &str, key: &str, body: &Value) -> (u16, Option<String>, Value) {
    let (status, replayed, bytes) = app.keyed_bytes(token, key, body).await;
    (status, replayed, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn issue_body(coupon: Uuid) -> Value {
    json!({ "query": "mutation($c: ID!) { issueCoupon(couponId: $c) { id userId } }", "variables": { "c": coupon.to_string() } })
}

async fn idempotency_keys_replay_refuse_other_bodies_and_keep_error_answers(app: TestApp) {
    let user = new_user(&app.db.conn).await;
    let t = token(user.id, Role::User);
    let coupon = new_coupon(&app.db.conn, Some(5)).await;
    let (s1, r1, v1) = keyed(&app, &t, "k-1", &issue_body(coupon.id)).await;
    assert_eq!((s1, r1), (200, None), "{v1}");
    let (s2, r2, v2) = keyed(&app, &t, "k-1", &issue_body(coupon.id)).await;
    assert_eq!((s2, r2.as_deref()), (200, Some("true")));
    assert_eq!(v1, v2, "같은 답");
    let other = new_coupon(&app.db.conn, Some(5)).await;
    let (s3, _, v3) = keyed(&app, &t, "k-1", &issue_body(other.id)).await;
    assert_eq!((s3, crate::client::first_code(&v3)), (422, Some("IDEMPOTENCY_KEY_REUSED")), "{v3}");
    assert_eq!(assert_invariant(&app.db.conn, other.id).await, 0, "422는 아무것도 실행하지 않는다");
    // 다른 사용자의 같은 키는 다른 키다.
    let someone = new_user(&app.db.conn).await;
    let (s4, r4, v4) = keyed(&app, &token(someone.id, Role::User), "k-1", &issue_body(coupon.id)).await;
    assert_eq!((s4, r4), (200, None), "{v4}");
    // 키 없이 다시 발급하면 예전처럼 ALREADY_ISSUED.
    let (_, v) = app.raw(Some(&t), issue_body(coupon.id).to_string()).await;
    assert_eq!(crate::client::first_code(&v), Some("COUPON_ALREADY_ISSUED"));
    // 오류 답도 처음 응답으로 보관된다.
    let sold = new_coupon(&app.db.conn, Some(1)).await;
    couponql::service::issuance::Issuer::new(app.db.conn.clone(), couponql::service::issuance::IssueMode::PerRequest)
        .issue(someone.id, sold.id)
        .await
        .expect("마지막 한 장");
    let (_, _, e1) = keyed(&app, &t, "k-2", &issue_body(sold.id)).await;
    assert_eq!(crate::client::first_code(&e1), Some("COUPON_SOLD_OUT"));
    let (_, r, e2) = keyed(&app, &t, "k-2", &issue_body(sold.id)).await;
    assert_eq!((r.as_deref(), e1), (Some("true"), e2));
    // 잘못된 키.
    let resp = app
        .http
        .post(format!("{}/graphql", app.base))
        .bearer_auth(&t)
        .header("idempotency-key", "")
        .json(&issue_body(coupon.id))
        .send()
        .await
        .expect("HTTP");
    assert_eq!(resp.status().as_u16(), 400);
    // 권한 검사가 먼저: 토큰 없이 잘못된 키를 보내면 UNAUTHENTICATED.
    let resp = app
        .http
        .post(format!("{}/graphql", app.base))
        .header("idempotency-key", "")
        .json(&issue_body(coupon.id))
        .send()
        .await
        .expect("HTTP");
    let v: Value = resp.json().await.expect("json");
    assert_eq!(crate::client::first_code(&v), Some("UNAUTHENTICATED"), "{v}");
    // 이름 있는 연산 하나(operationName 없이)도 키가 걸린다.
    let named = new_coupon(&app.db.conn, Some(5)).await;
    let body =
        json!({ "query": "mutation Issue($c: ID!) { issueCoupon(couponId: $c) { id } }", "variables": { "c": named.id.to_string() } });
    let (_, _, n1) = keyed(&app, &t, "k-named", &body).await;
    let (_, r, n2) = keyed(&app, &t, "k-named", &body).await;
    assert_eq!((r.as_deref(), &n1), (Some("true"), &n2), "{n1}");
    assert!(n1["data"]["issueCoupon"]["id"].is_string(), "{n1}");
    // 루트 필드가 여럿인 mutation에는 키 하나를 붙일 수 없다.
    let two = json!({ "query": format!(r#"mutation {{ a: issueCoupon(couponId: "{0}") {{ id }} b: issueCoupon(couponId: "{0}") {{ id }} }}"#, other.id) });
    let (status, _, v) = keyed(&app, &t, "k-two", &two).await;
    assert_eq!((status, crate::client::first_code(&v)), (400, Some("BAD_USER_INPUT")), "{v}");
}
e2e_on_all_backends!(idempotency_keys_replay_refuse_other_bodies_and_keep_error_answers);

/// 같은 키로 50번 동시에 재시도: 발급 내역은 하나, 답은 모두 같은 성공.
async fn fifty_concurrent_retries_of_one_keyed_issue_get_one_coupon_and_the_same_answer(app: TestApp) {
    let user = new_user(&app.db.conn).await;
    let t = token(user.id, Role::User);
    let coupon = new_coupon(&app.db.conn, Some(100)).await;
    let app = std::sync::Arc::new(app);
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (app, t, barrier) = (app.clone(), t.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                keyed(&app, &t, "retry-me", &issue_body(coupon.id)).await
            })
        })
        .collect();
    let mut ids = HashSet::new();
    let mut statuses = BTreeMap::new();
    for task in tasks {
        let (status, _, v) = task.await.expect("작업");
        *statuses.entry(status).or_insert(0) += 1;
        if let Some(id) = v["data"]["issueCoupon"]["id"].as_str() {
            ids.insert(id.to_owned());
        } else {
            panic!("성공이 아닌 답: {status} {v}");
        }
    }
    assert_eq!(statuses, BTreeMap::from([(200, 50)]));
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(assert_invariant(&app.db.conn, coupon.id).await, 1);
}
crate::backend_tests!(fifty_concurrent_retries_of_one_keyed_issue_get_one_coupon_and_the_same_answer, crate::helpers::spawn_app, mysql => MySql; postgres => Postgres);

/// 답을 받기 전에 연결을 끊어도 변경은 끝까지 가고, 키로 다시 물으면 그 결과를 받는다.
async fn a_keyed_mutation_whose_client_disconnects_still_completes(app: TestApp) {
    let user = new_user(&app.db.conn).await;
    let t = token(user.id, Role::User);
    let coupon = new_coupon(&app.db.conn, Some(10)).await;
    let body = issue_body(coupon.id).to_string();
    let mut s = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://")).await.expect("연결");
    let req = format!(
        "POST /graphql HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nAuthorization: Bearer {t}\r\nIdempotency-Key: bye\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("쓰기");
    drop(s);
    // 끊긴 요청이 끝날 시간을 준 뒤 다시 묻는다 (그 전이면 409 TRY_AGAIN이거나 같은 답).
    let mut answer = Value::Null;
    for _ in 0..50 {
        let (status, _, v) = keyed(&app, &t, "bye", &issue_body(coupon.id)).await;
        if status == 200 {
            answer = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let id = answer["data"]["issueCoupon"]["id"].as_str().unwrap_or_else(|| panic!("성공이 아님: {answer}")).to_owned();
    let rows = couponql::repo::user_coupon::list_by_user(&app.db.conn, user.id, false).await.expect("목록");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0.id.to_string(), id, "다시 물은 답이 끊긴 요청이 만든 발급 내역");
}
crate::backend_tests!(a_keyed_mutation_whose_client_disconnects_still_completes, crate::helpers::spawn_app, mysql => MySql; postgres => Postgres);

/// 키 있는 발급 200건을 보내는 도중에 프로세스를 SIGKILL로 죽이고 다시 띄운 뒤 모두 키로 재시도:
/// 모두 성공이고 각자의 발급 내역 하나를 받으며, 불변식이 지켜진다.
async fn keyed_issuances_survive_a_killed_server(db: TestDb) {
    let coupon = new_coupon(&db.conn, Some(1000)).await;
    let users = crate::helpers::new_users(&db.conn, 200).await;
    let mut server = start_binary(&db.url).await;
    let base = server.base().to_owned();
    let http = reqwest::Client::new();
    let send = |base: String, user: Uuid| {
        let http = http.clone();
        async move {
            let resp = http
                .post(format!("{base}/graphql"))
                .bearer_auth(token(user, Role::User))
                .header("idempotency-key", format!("crash-{user}"))
                .json(&issue_body(coupon.id))
                .send()
                .await
                .ok()?;
            let status = resp.status().as_u16();
            let v: Value = resp.json().await.ok()?;
            Some((status, v))
        }
    };
    let first: Vec<_> = users.iter().map(|u| tokio::spawn(send(base.clone(), u.id))).collect();
    // 일부가 커밋된 순간에 죽인다 (한가운데).
    for _ in 0..2000 {
        let issued = couponql::repo::coupon::find_by_id(&db.conn, coupon.id).await.expect("조회").map_or(0, |c| c.issued_quantity);
        if issued >= 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    server.kill().expect("SIGKILL");
    let mut answered_before = 0;
    for t in first {
        if let Ok(Some((200, v))) = t.await
            && v["data"]["issueCoupon"]["id"].is_string()
        {
            answered_before += 1;
        }
    }
    let in_db = assert_invariant(&db.conn, coupon.id).await;
    println!("[{:?}] killed mid-flight: {answered_before} answered, {in_db} committed", db.backend);

    let server = start_binary(&db.url).await;
    let base = server.base().to_owned();
    for u in &users {
        let mut got = None;
        for _ in 0..50 {
            match send(base.clone(), u.id).await {
                Some((200, v)) => {
                    got = Some(v);
                    break;
                }
                // 409 TRY_AGAIN 등: 다시 시도하라는 답.
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let v = got.unwrap_or_else(|| panic!("{}의 재시도가 성공하지 못함", u.id));
        let id = v["data"]["issueCoupon"]["id"].as_str().unwrap_or_else(|| panic!("성공이 아님: {v}")).to_owned();
        let rows = couponql::repo::user_coupon::list_by_user(&db.conn, u.id, false).await.expect("목록");
        assert_eq!(rows.len(), 1, "사용자마다 발급 내역 하나");
        assert_eq!(rows[0].0.id.to_string(), id, "재시도의 답이 그 사용자의 발급 내역");
    }
    drop(server);
    assert_eq!(assert_invariant(&db.conn, coupon.id).await, 200);
}
on_locking_backends!(keyed_issuances_survive_a_killed_server);

/// 쿠폰 고르기도 `users(ids)`로 여럿을 읽을 때 묶인다: 50명이 5명과 같은 문장 수.
async fn applicable_coupons_for_many_users_cost_the_same_statements_as_for_a_few(app: TestApp) {
    use std::sync::atomic::Ordering;
    let users = crate::helpers::new_users(&app.db.conn, 50).await;
    let coupon = new_coupon(&app.db.conn, None).await;
    for u in &users {
        couponql::service::issuance::Issuer::new(app.db.conn.clone(), couponql::service::issuance::IssueMode::PerRequest)
            .issue(u.id, coupon.id)
            .await
            .expect("발급");
    }
    let admin = token(users[0].id, Role::Admin);
    let cost = |n: usize| {
        let ids: Vec<String> = users[..n].iter().map(|u| format!("\"{}\"", u.id)).collect();
        let q = format!(
            // 계약의 비용으로 40,201 (한도 50,000 안): users와 applicableCoupons가 각각 100배.
            r#"{{ users(ids: [{}]) {{ id applicableCoupons(orderAmount: "50000") {{ discountAmount userCoupon {{ coupon {{ name }} }} }} }} }}"#,
            ids.join(",")
        );
        let (app, admin) = (&app, &admin);
        async move {
            let before = app.statements.load(Ordering::SeqCst);
            let (_, v) = app.raw(Some(admin), json!({ "query": q }).to_string()).await;
            let after = app.statements.load(Ordering::SeqCst);
            let lists = v["data"]["users"].as_array().cloned().unwrap_or_default();
            assert_eq!(lists.len(), n, "{v}");
            assert!(lists.iter().all(|u| u["applicableCoupons"][0]["discountAmount"] == "1000.00"), "{v}");
            after - before
        }
    };
    let (five, fifty) = (cost(5).await, cost(50).await);
    assert_eq!(five, fifty, "묶이지 않음: 5명 {five}개, 50명 {fifty}개");
    assert!(fifty <= 2, "{fifty}");
}
e2e_on_all_backends!(applicable_coupons_for_many_users_cost_the_same_statements_as_for_a_few);

/// 트랜잭션에 키를 기록하지 않는 변경(createCoupon)도 같은 키의 동시 요청이 두 번 실행되지 않는다:
/// 먼저 온 것이 끝나기 전에는 409 TRY_AGAIN, 끝난 뒤에는 그 답.
async fn concurrent_keyed_create_coupon_runs_once(app: TestApp) {
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let admin = new_user(&app.db.conn).await;
    let t = token(admin.id, Role::Admin);
    let name = format!("키 쿠폰 {}", Uuid::new_v4().simple());
    let body = json!({ "query": format!(r#"mutation {{ createCoupon(input: {{ name: "{name}", discountType: FIXED, discountValue: "1000", validFrom: "2025-01-01T00:00:00Z", validUntil: "2099-01-01T00:00:00Z" }}) {{ id }} }}"#) });
    let app = std::sync::Arc::new(app);
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (app, t, body) = (app.clone(), t.clone(), body.clone());
            tokio::spawn(async move { keyed(&app, &t, "create-once", &body).await })
        })
        .collect();
    let mut ids = HashSet::new();
    let mut statuses = BTreeMap::new();
    for task in tasks {
        let (status, _, v) = task.await.expect("작업");
        *statuses.entry(status).or_insert(0) += 1;
        if let Some(id) = v["data"]["createCoupon"]["id"].as_str() {
            ids.insert(id.to_owned());
        }
    }
    assert!(statuses.keys().all(|s| *s == 200 || *s == 409), "{statuses:?}");
    assert_eq!(ids.len(), 1, "{ids:?} {statuses:?}");
    let made = couponql::entities::coupon::Entity::find()
        .filter(couponql::entities::coupon::Column::Name.eq(name))
        .count(&app.db.conn)
        .await
        .expect("count");
    assert_eq!(made, 1, "쿠폰이 한 번만 만들어져야 함");
    // 끝난 뒤의 재시도는 그 답을 그대로.
    let (status, replayed, v) = keyed(&app, &t, "create-once", &body).await;
    assert_eq!((status, replayed.as_deref()), (200, Some("true")), "{v}");
    assert!(ids.contains(v["data"]["createCoupon"]["id"].as_str().unwrap_or_default()));
}
e2e_on_all_backends!(concurrent_keyed_create_coupon_runs_once);
