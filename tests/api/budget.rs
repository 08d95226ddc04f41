//! 예산 (CONTRACT 11절 "Budgets"): 현재 사용과 만료 전 보류의 할인 합계는 예산을 넘지 않는다. 보류·사용이 가져가고,
//! 해제·만료·취소가 돌려주고, 같은 주문의 보류를 쓰면 옮겨질 뿐 두 번 가져가지 않는다. 경쟁은 실제 트랜잭션을 동시에
//! 돌린 뒤 데이터베이스에서 합을 센다 (`testkit::invariant::check_budget`).
use std::collections::BTreeMap;

use couponql::domain::{self, CouponChangeInput, OrderId, Patch, Role, Viewer};
use couponql::service::issuance::{IssueMode, Issuer};
use couponql::service::{coupons, user_coupons as svc};
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::concurrency::{all_at_once, outcome, tally};
use crate::helpers::{TestApp, TestDb, new_budget_coupon, new_users, token};
use crate::{e2e_on_all_backends, on_all_backends, on_locking_backends};

const TTL: chrono::Duration = chrono::Duration::seconds(900);

fn admin() -> Viewer {
    Viewer { user_id: Uuid::new_v4(), role: Role::Admin }
}

fn dec(s: &str) -> Decimal {
    s.parse().expect("decimal")
}

fn order(s: &str) -> OrderId {
    OrderId::parse(s).expect("order id")
}

/// 사용자 n명에게 한 장씩: (그 사용자, 발급 내역 id).
async fn holders(db: &DatabaseConnection, coupon: Uuid, n: usize) -> Vec<(Viewer, Uuid)> {
    let issuer = Issuer::new(db.clone(), IssueMode::Coalesced);
    let mut out = Vec::with_capacity(n);
    for u in new_users(db, n).await {
        let uc = issuer.issue(u.id, coupon).await.expect("발급");
        out.push((Viewer { user_id: u.id, role: Role::User }, uc.id));
    }
    out
}

async fn spent(db: &DatabaseConnection, coupon: Uuid) -> Decimal {
    testkit::invariant::check_budget(db, coupon, domain::now()).await.unwrap_or_else(|e| panic!("{e:#}"))
}

/// 1,000원 쿠폰, 예산 100,000원에 300명이 동시에 사용: 정확히 100명.
async fn three_hundred_concurrent_uses_fit_exactly_one_hundred(db: TestDb) {
    let c = &db.conn;
    let coupon = new_budget_coupon(c, "1000", "100000").await;
    let hs = holders(c, coupon.id, 300).await;
    let got = tally(
        all_at_once(hs.len(), |i| {
            let (db, (viewer, uc)) = (c.clone(), hs[i]);
            async move {
                let o = order(&format!("O-{i}"));
                vec![outcome(svc::use_coupon(&db, Some(&viewer), uc, Some(dec("50000")), Some(&o), None).await)]
            }
        })
        .await,
    );
    assert_eq!(got, BTreeMap::from([("BUDGET_EXHAUSTED", 200), ("OK", 100)]), "{got:?}");
    assert_eq!(spent(c, coupon.id).await, dec("100000.00"));
    let used = c
        .query_one_raw(sea_orm::Statement::from_string(
            c.get_database_backend(),
            format!(
                "SELECT COUNT(*) FROM user_coupons WHERE coupon_id = '{}' AND is_used = {}",
                coupon.id,
                if c.get_database_backend() == sea_orm::DbBackend::Postgres { "true" } else { "1" }
            ),
        ))
        .await
        .expect("세기")
        .and_then(|r| r.try_get_by_index::<i64>(0).ok());
    assert_eq!(used, Some(100));
}
on_locking_backends!(three_hundred_concurrent_uses_fit_exactly_one_hundred);

/// 보류와 사용이 섞인 경쟁: 150명이 동시에 보류하면 100명. 그 100명이 같은 주문으로 쓰는 동안 나머지 50명이 다시 보류해도
/// 하나도 들어가지 못한다 (보류의 몫이 사용으로 옮겨질 뿐 늘지 않는다). 하나를 풀면 하나가 들어간다.
async fn holds_and_uses_racing_never_pass_the_budget(db: TestDb) {
    let c = &db.conn;
    let coupon = new_budget_coupon(c, "1000", "100000").await;
    let hs = holders(c, coupon.id, 150).await;
    let results = all_at_once(hs.len(), |i| {
        let (db, (viewer, uc)) = (c.clone(), hs[i]);
        async move { vec![outcome(svc::reserve(&db, Some(&viewer), uc, &order(&format!("O-{i}")), dec("30000"), TTL, None).await)] }
    })
    .await;
    assert_eq!(tally(results.iter().copied()), BTreeMap::from([("BUDGET_EXHAUSTED", 50), ("OK", 100)]));
    assert_eq!(spent(c, coupon.id).await, dec("100000.00"));
    let held: Vec<usize> = (0..hs.len()).filter(|&i| results[i] == "OK").collect();
    let waiting: Vec<usize> = (0..hs.len()).filter(|&i| results[i] != "OK").collect();
    let got = tally(
        all_at_once(hs.len(), |k| {
            let db = c.clone();
            let (i, using) = if k < held.len() { (held[k], true) } else { (waiting[k - held.len()], false) };
            let (viewer, uc) = hs[i];
            async move {
                let o = order(&format!("O-{i}"));
                let r = if using {
                    svc::use_coupon(&db, Some(&viewer), uc, None, Some(&o), None).await.map(|_| ())
                } else {
                    svc::reserve(&db, Some(&viewer), uc, &o, dec("30000"), TTL, None).await.map(|_| ())
                };
                vec![if using { if r.is_ok() { "USED" } else { outcome(r) } } else { outcome(r) }]
            }
        })
        .await,
    );
    assert_eq!(got, BTreeMap::from([("BUDGET_EXHAUSTED", 50), ("USED", 100)]), "{got:?}");
    assert_eq!(spent(c, coupon.id).await, dec("100000.00"));
    // 사용 하나를 취소하면 그 몫이 돌아와 기다리던 하나가 들어간다.
    let (v, uc) = hs[held[0]];
    svc::cancel_coupon(c, Some(&v), uc, Some(&order(&format!("O-{}", held[0]))), None).await.expect("취소");
    let (w, wuc) = hs[waiting[0]];
    svc::reserve(c, Some(&w), wuc, &order("LATE"), dec("30000"), TTL, None).await.expect("돌아온 몫으로 보류");
    assert_eq!(spent(c, coupon.id).await, dec("100000.00"));
}
on_locking_backends!(holds_and_uses_racing_never_pass_the_budget);

/// 규칙 하나하나 (모든 백엔드): 보류가 가져가고 같은 주문의 사용은 옮기고, 해제·만료·취소가 돌려주고, 예산 있는 쿠폰은
/// 금액이 있어야 쓴다 (7절 규칙 다음), dry run도 예산을 본다, 수정은 쓰인 것 밑으로 내릴 수 없다.
async fn holds_take_uses_move_and_releases_expiry_and_cancels_give_back(db: TestDb) {
    let c = &db.conn;
    let a = admin();
    let coupon = new_budget_coupon(c, "1000", "1500").await;
    let hs = holders(c, coupon.id, 3).await;
    let ((v1, u1), (v2, u2), (v3, u3)) = (hs[0], hs[1], hs[2]);
    let remaining = async || coupons::budget_remaining(c, Some(&a), &coupon).await.expect("남은 예산");
    svc::reserve(c, Some(&v1), u1, &order("A"), dec("9000"), TTL, None).await.expect("보류");
    assert_eq!(remaining().await, Some(dec("500.00")));
    assert_eq!(outcome(svc::reserve(c, Some(&v2), u2, &order("B"), dec("9000"), TTL, None).await), "BUDGET_EXHAUSTED");
    // 7절의 규칙이 먼저: 다른 주문이 보류한 쿠폰은 예산과 무관하게 COUPON_RESERVED.
    assert_eq!(outcome(svc::use_coupon(c, Some(&v1), u1, Some(dec("9000")), Some(&order("Z")), None).await), "COUPON_RESERVED");
    // 금액 없이: 주문 없는 사용은 BAD_USER_INPUT(orderAmount), 이 주문의 보류가 있으면 그 금액으로.
    match svc::use_coupon(c, Some(&v2), u2, None, None, None).await {
        Err(couponql::error::AppError::BadUserInput { field, .. }) => assert_eq!(field, "orderAmount"),
        other => panic!("금액이 필요함: {other:?}"),
    }
    let val = svc::validate(c, Some(&v2), u2, dec("9000"), None).await.expect("dry run");
    assert_eq!(val.error.map(|e| e.code()), Some("BUDGET_EXHAUSTED"));
    // 같은 주문의 다시 보류와 사용은 자기 몫을 옮긴다 (두 번 가져가지 않는다).
    svc::reserve(c, Some(&v1), u1, &order("A"), dec("9500"), TTL, None).await.expect("같은 주문의 다시 보류");
    let used = svc::use_coupon(c, Some(&v1), u1, None, Some(&order("A")), None).await.expect("보류한 주문의 사용");
    assert_eq!(used.discount_amount, Some(dec("1000.00")));
    assert_eq!(remaining().await, Some(dec("500.00")));
    let stats = coupons::stats(c, Some(&a), coupon.id).await.expect("집계");
    assert_eq!((stats.holders.discount_total, stats.holders.discount_held), (dec("1000.00"), dec("0.00")));
    // 취소가 돌려준다.
    svc::cancel_coupon(c, Some(&v1), u1, Some(&order("A")), None).await.expect("취소");
    assert_eq!(remaining().await, Some(dec("1500.00")));
    svc::reserve(c, Some(&v2), u2, &order("B"), dec("9000"), TTL, None).await.expect("보류");
    svc::reserve(c, Some(&v3), u3, &order("C"), dec("9000"), TTL, None).await.expect_err("500원 남음");
    // 해제가 돌려준다.
    svc::release(c, Some(&v2), u2, &order("B")).await.expect("해제");
    svc::reserve(c, Some(&v3), u3, &order("C"), dec("9000"), TTL, None).await.expect("해제된 몫으로 보류");
    // 만료가 돌려준다 (청소 작업 없이): 시한을 지난 것으로 옮긴다.
    c.execute_unprepared(&format!("UPDATE user_coupons SET reserved_until = {} WHERE id = '{u3}'", past(c))).await.expect("만료");
    assert_eq!(remaining().await, Some(dec("1500.00")));
    svc::reserve(c, Some(&v2), u2, &order("B"), dec("9000"), TTL, None).await.expect("만료된 몫으로 보류");
    assert_eq!(spent(c, coupon.id).await, dec("1000.00"));

    // 수정: 쓰인 것(1000) 밑으로는 못 내리고, 올리거나 그만큼까지는 된다. null은 예산을 없앤다.
    let set = |b: Patch<String>| CouponChangeInput { budget: b, ..CouponChangeInput::default() };
    match coupons::update(c, Some(&a), coupon.id, set(Patch::Set("999.99".into()))).await {
        Err(couponql::error::AppError::BadUserInput { field, .. }) => assert_eq!(field, "budget"),
        other => panic!("쓰인 것 밑으로: {other:?}"),
    }
    assert_eq!(
        coupons::update(c, Some(&a), coupon.id, set(Patch::Set("1000".into()))).await.expect("딱 맞게").budget,
        Some(dec("1000.00"))
    );
    for bad in ["0", "-1", "0.001", "10000000000", "1e3"] {
        assert_eq!(outcome(coupons::update(c, Some(&a), coupon.id, set(Patch::Set(bad.into()))).await), "BAD_USER_INPUT", "{bad}");
    }
    assert_eq!(coupons::update(c, Some(&a), coupon.id, set(Patch::Clear)).await.expect("없애기").budget, None);
    svc::reserve(c, Some(&v1), u1, &order("A"), dec("9000"), TTL, None).await.expect("예산 없는 쿠폰");
    // 예산을 다시 달면 예산 없이 지낸 동안의 보류도 센다: A(1000)와 B(1000)가 보류 중이라 1999는 안 되고 2000은 되며,
    // 그다음 보류는 들어가지 못한다.
    assert_eq!(outcome(coupons::update(c, Some(&a), coupon.id, set(Patch::Set("1999".into()))).await), "BAD_USER_INPUT");
    coupons::update(c, Some(&a), coupon.id, set(Patch::Set("2000".into()))).await.expect("다시 달기");
    assert_eq!(outcome(svc::reserve(c, Some(&v3), u3, &order("C"), dec("9000"), TTL, None).await), "BUDGET_EXHAUSTED");
    svc::release(c, Some(&v1), u1, &order("A")).await.expect("해제");
    svc::reserve(c, Some(&v3), u3, &order("C"), dec("9000"), TTL, None).await.expect("해제된 몫으로");
    assert_eq!(spent(c, coupon.id).await, dec("2000.00"));
}
on_all_backends!(holds_take_uses_move_and_releases_expiry_and_cancels_give_back);

/// 백엔드마다 "한 시간 전"의 SQL.
fn past(c: &DatabaseConnection) -> &'static str {
    match c.get_database_backend() {
        sea_orm::DbBackend::MySql => "NOW(6) - INTERVAL 1 HOUR",
        sea_orm::DbBackend::Postgres => "NOW() - INTERVAL '1 hour'",
        _ => "'2020-01-01T00:00:00+00:00'",
    }
}

async fn gql(app: &TestApp, token: &str, query: &str) -> Value {
    app.raw(Some(token), json!({ "query": query }).to_string()).await.1
}

/// GraphQL: budget의 검사, budgetRemaining과 stats의 budgetUsed·budgetHeld(관리자 전용, 예산 없으면 0.00), BUDGET_EXHAUSTED.
async fn budgets_are_set_and_reported_over_graphql(app: TestApp) {
    let admin = token(Uuid::new_v4(), Role::Admin);
    let create = |budget: &str| {
        format!(
            r#"mutation {{ createCoupon(input: {{ name: "예산", discountType: FIXED, discountValue: "1000",
                validFrom: "2020-01-01T00:00:00Z", validUntil: "2099-01-01T00:00:00Z", budget: {budget} }}) {{ id budget budgetRemaining }} }}"#
        )
    };
    for bad in [r#""0""#, r#""0.001""#, r#""10000000000""#, r#""-5""#] {
        let v = gql(&app, &admin, &create(bad)).await;
        assert_eq!(v["errors"][0]["extensions"]["field"], "budget", "{bad}: {v}");
    }
    let v = gql(&app, &admin, &create(r#""1500""#)).await;
    assert_eq!(
        (v["data"]["createCoupon"]["budget"].as_str(), v["data"]["createCoupon"]["budgetRemaining"].as_str()),
        (Some("1500.00"), Some("1500.00")),
        "{v}"
    );
    let id = v["data"]["createCoupon"]["id"].as_str().expect("id").to_owned();
    let plain = gql(&app, &admin, &create("null")).await;
    assert!(plain["data"]["createCoupon"]["budgetRemaining"].is_null(), "{plain}");
    let plain_id = plain["data"]["createCoupon"]["id"].as_str().expect("id").to_owned();

    let users = new_users(&app.db.conn, 2).await;
    let mut ucs = Vec::new();
    for u in &users {
        let t = token(u.id, Role::User);
        let v = gql(&app, &t, &format!(r#"mutation {{ issueCoupon(couponId: "{id}") {{ id }} }}"#)).await;
        ucs.push((t, v["data"]["issueCoupon"]["id"].as_str().expect("발급").to_owned()));
    }
    let reserve = |uc: &str, o: &str| {
        format!(r#"mutation {{ reserveCoupon(userCouponId: "{uc}", orderId: "{o}", orderAmount: "9000") {{ status discountAmount }} }}"#)
    };
    let v = gql(&app, &ucs[0].0, &reserve(&ucs[0].1, "A")).await;
    assert_eq!(v["data"]["reserveCoupon"]["status"], "RESERVED", "{v}");
    let v = gql(&app, &ucs[1].0, &reserve(&ucs[1].1, "B")).await;
    assert_eq!(v["errors"][0]["extensions"]["code"], "BUDGET_EXHAUSTED", "{v}");
    assert_eq!(v["errors"][0]["message"], "프로모션 예산이 소진되었습니다");
    let v = gql(&app, &ucs[0].0, &format!(r#"mutation {{ useCoupon(userCouponId: "{}", orderId: "A") {{ status }} }}"#, ucs[0].1)).await;
    assert_eq!(v["data"]["useCoupon"]["status"], "USED", "{v}");
    let report = |c: &str| format!(r#"{{ coupon(id: "{c}") {{ budgetRemaining stats {{ budgetUsed budgetHeld discountTotal }} }} }}"#);
    let v = gql(&app, &admin, &report(&id)).await;
    assert_eq!(
        v["data"]["coupon"],
        json!({ "budgetRemaining": "500.00", "stats": { "budgetUsed": "1000.00", "budgetHeld": "0.00", "discountTotal": "1000.00" } }),
        "{v}"
    );
    let v = gql(&app, &admin, &report(&plain_id)).await;
    assert_eq!(v["data"]["coupon"]["stats"]["budgetUsed"], "0.00", "{v}");
    // 관리자 전용.
    let v = gql(&app, &ucs[0].0, &format!(r#"{{ coupon(id: "{id}") {{ budget budgetRemaining }} }}"#)).await;
    assert_eq!(v["errors"][0]["extensions"]["code"], "FORBIDDEN", "{v}");
}
e2e_on_all_backends!(budgets_are_set_and_reported_over_graphql);
