//! 사용자당 한도 (CONTRACT 11절): 한 사용자는 한 쿠폰을 perUserLimit장까지 받는다 (사용·취소로 돌아오지 않는다).
//! 동시에 몰려도 정확한지는 실제 트랜잭션을 동시에 돌린 뒤 데이터베이스에서 센다 (`testkit::invariant`: 발급 수 = 내역 수
//! ≤ 총수량, 아무도 한도를 넘지 않음).
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use couponql::domain::{CouponChangeInput, Patch, Role, Viewer};
use couponql::service::issuance::{IssueMode, Issuer};
use couponql::service::{codes, coupons};
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::concurrency::{all_at_once, outcome, tally};
use crate::helpers::{TestApp, TestDb, assert_invariant, migrate_down_through, new_coupon, new_coupon_limited, new_user, new_users, token};
use crate::{e2e_on_all_backends, on_all_backends, on_locking_backends_both_modes};

const HERE: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn admin() -> Viewer {
    Viewer { user_id: Uuid::new_v4(), role: Role::Admin }
}

/// 정수 하나를 돌려주는 검사 질의.
async fn number(db: &TestDb, sql: String) -> i64 {
    let row = db.conn.query_one_raw(Statement::from_string(db.conn.get_database_backend(), sql)).await.expect("질의").expect("행");
    row.try_get_by_index::<i64>(0).or_else(|_| row.try_get_by_index::<i32>(0).map(i64::from)).expect("정수")
}

/// 한 사용자가 한 쿠폰에서 받은 자리들, 작은 것부터.
async fn slots(db: &TestDb, coupon: Uuid, user: Uuid) -> Vec<i32> {
    let sql = format!("SELECT slot FROM user_coupons WHERE coupon_id = '{coupon}' AND user_id = '{user}' ORDER BY slot");
    let rows = db.conn.query_all_raw(Statement::from_string(db.conn.get_database_backend(), sql)).await.expect("자리");
    rows.iter().map(|r| r.try_get_by_index::<i32>(0).expect("자리")).collect()
}

async fn one_user_asking_twenty_times_at_once_gets_exactly_the_limit(db: TestDb, mode: IssueMode) {
    let coupon = new_coupon_limited(&db.conn, Some(100), 3).await;
    let u = new_user(&db.conn).await;
    let issuer = Issuer::new(db.conn.clone(), mode);
    let got = tally(
        all_at_once(20, |_| {
            let (issuer, user, coupon) = (issuer.clone(), u.id, coupon.id);
            async move { vec![outcome(issuer.issue(user, coupon).await)] }
        })
        .await,
    );
    assert_eq!(got, BTreeMap::from([("COUPON_ALREADY_ISSUED", 17), ("OK", 3)]));
    assert_eq!(assert_invariant(&db.conn, coupon.id).await, 3);
    assert_eq!(slots(&db, coupon.id, u.id).await, vec![1, 2, 3]);
}
on_locking_backends_both_modes!(one_user_asking_twenty_times_at_once_gets_exactly_the_limit);

async fn two_hundred_users_asking_five_times_each_share_exactly_the_quantity(db: TestDb, mode: IssueMode) {
    let coupon = new_coupon_limited(&db.conn, Some(150), 2).await;
    let users: Vec<Uuid> = new_users(&db.conn, 200).await.into_iter().map(|u| u.id).collect();
    let issuer = Issuer::new(db.conn.clone(), mode);
    let got = tally(
        all_at_once(1000, |i| {
            let (issuer, user, coupon) = (issuer.clone(), users[i % users.len()], coupon.id);
            async move { vec![outcome(issuer.issue(user, coupon).await)] }
        })
        .await,
    );
    assert_eq!(got.get("OK"), Some(&150), "{got:?}");
    assert!(got.keys().all(|k| matches!(*k, "OK" | "COUPON_SOLD_OUT" | "COUPON_ALREADY_ISSUED")), "{got:?}");
    // 불변식이 "아무도 2장을 넘지 않음"까지 센다.
    assert_eq!(assert_invariant(&db.conn, coupon.id).await, 150);
    let most = number(
        &db,
        format!("SELECT COUNT(*) FROM user_coupons WHERE coupon_id = '{}' GROUP BY user_id ORDER BY COUNT(*) DESC LIMIT 1", coupon.id),
    )
    .await;
    assert!(most <= 2, "한 사용자가 {most}장");
}
on_locking_backends_both_modes!(two_hundred_users_asking_five_times_each_share_exactly_the_quantity);

/// 코드로도 한도를 따른다. 한도 2인 쿠폰의 지정 코드 넷을 30명이 모두, 첫 코드는 한 번 더, 동시에 쓴다: 사람마다 정확히
/// 2장, 같은 사람이 같은 코드로 두 장 받는 일은 없고, 코드의 사용 수 합은 발급 수와 같다.
async fn codes_follow_the_limit_and_a_chosen_code_stays_once_per_user(db: TestDb, mode: IssueMode) {
    let c = &db.conn;
    let coupon = new_coupon_limited(c, None, 2).await;
    let a = admin();
    let names: Vec<String> = (0..4).map(|i| format!("PU{i}{}", &Uuid::new_v4().simple().to_string()[..10]).to_uppercase()).collect();
    for n in &names {
        codes::add(c, Some(&a), coupon.id, n, Some(1000)).await.expect("지정 코드");
    }
    let users: Vec<Uuid> = new_users(c, 30).await.into_iter().map(|u| u.id).collect();
    let issuer = Issuer::new(c.clone(), mode);
    let got = tally(
        all_at_once(150, |i| {
            let (db, issuer) = (c.clone(), issuer.clone());
            let viewer = Viewer { user_id: users[i % 30], role: Role::User };
            let code = names[(i / 30) % 4].clone();
            async move { vec![outcome(codes::redeem(&db, &issuer, Some(&viewer), HERE, &code, None).await)] }
        })
        .await,
    );
    assert_eq!(got.get("OK"), Some(&60), "{got:?}");
    assert!(got.keys().all(|k| matches!(*k, "OK" | "COUPON_ALREADY_ISSUED" | "CODE_ALREADY_REDEEMED")), "{got:?}");
    assert_eq!(assert_invariant(c, coupon.id).await, 60);
    let pairs =
        number(&db, format!("SELECT COUNT(*) FROM (SELECT DISTINCT user_id, code FROM user_coupons WHERE coupon_id = '{}') p", coupon.id))
            .await;
    assert_eq!(pairs, 60, "같은 사람이 같은 코드로 두 번 받았다");
    let mut redemptions = 0;
    for n in &names {
        redemptions += couponql::repo::code::find(c, n).await.expect("코드").expect("있는 코드").redemptions;
    }
    assert_eq!(redemptions, 60, "코드의 사용 수 합");
    // 한도에 닿은 사람이 이미 쓴 코드를 다시 대면: 코드 검사가 먼저다.
    let first = Viewer { user_id: users[0], role: Role::User };
    let again = codes::redeem(c, &issuer, Some(&first), HERE, &names[0], None).await;
    let answer = outcome(again);
    let used_first =
        number(&db, format!("SELECT COUNT(*) FROM user_coupons WHERE user_id = '{}' AND code = '{}'", users[0], names[0])).await;
    assert_eq!(answer, if used_first == 1 { "CODE_ALREADY_REDEEMED" } else { "COUPON_ALREADY_ISSUED" });
}
on_locking_backends_both_modes!(codes_follow_the_limit_and_a_chosen_code_stays_once_per_user);

/// 한도는 받은 모든 장을 센다. 올릴 수만 있고, 매진된 쿠폰에서도 한도까지 가진 사람에게는 ALREADY_ISSUED가 먼저다.
async fn the_limit_counts_every_coupon_received_and_can_only_be_raised(db: TestDb) {
    let c = &db.conn;
    let issuer = Issuer::new(c.clone(), IssueMode::PerRequest);
    let coupon = new_coupon_limited(c, None, 2).await;
    let u = new_user(c).await;
    issuer.issue(u.id, coupon.id).await.expect("1장");
    issuer.issue(u.id, coupon.id).await.expect("2장");
    assert_eq!(outcome(issuer.issue(u.id, coupon.id).await), "COUPON_ALREADY_ISSUED");
    let a = admin();
    let lower = CouponChangeInput { per_user_limit: Patch::Set(1), ..CouponChangeInput::default() };
    match coupons::update(c, Some(&a), coupon.id, lower).await {
        Err(couponql::error::AppError::BadUserInput { field, .. }) => assert_eq!(field, "perUserLimit"),
        other => panic!("낮추기는 거절되어야 함: {other:?}"),
    }
    let clear = CouponChangeInput { per_user_limit: Patch::Clear, ..CouponChangeInput::default() };
    assert_eq!(outcome(coupons::update(c, Some(&a), coupon.id, clear).await), "BAD_USER_INPUT");
    let raise = CouponChangeInput { per_user_limit: Patch::Set(3), ..CouponChangeInput::default() };
    assert_eq!(coupons::update(c, Some(&a), coupon.id, raise).await.expect("올리기").per_user_limit, 3);
    issuer.issue(u.id, coupon.id).await.expect("올린 한도의 3장째");
    assert_eq!(slots(&db, coupon.id, u.id).await, vec![1, 2, 3]);
    assert_eq!(assert_invariant(c, coupon.id).await, 3);

    // 매진: 한도까지 가진 사람은 ALREADY_ISSUED, 한도 밑인 사람과 없는 사람은 SOLD_OUT.
    let one = new_coupon_limited(c, Some(2), 2).await;
    let (v, w) = (new_user(c).await, new_user(c).await);
    issuer.issue(v.id, one.id).await.expect("1장");
    issuer.issue(v.id, one.id).await.expect("2장");
    assert_eq!(outcome(issuer.issue(v.id, one.id).await), "COUPON_ALREADY_ISSUED");
    assert_eq!(outcome(issuer.issue(w.id, one.id).await), "COUPON_SOLD_OUT");
    let single = new_coupon_limited(c, Some(2), 3).await;
    issuer.issue(w.id, single.id).await.expect("1장");
    issuer.issue(v.id, single.id).await.expect("1장");
    assert_eq!(outcome(issuer.issue(w.id, single.id).await), "COUPON_SOLD_OUT");
}
on_all_backends!(the_limit_counts_every_coupon_received_and_can_only_be_raised);

/// 한도가 생기기 전의 데이터가 제자리에서 옮겨진다: 기존 내역은 1번 자리, 기존 쿠폰의 한도는 1이고, 데이터베이스의
/// 유일 키는 평범한 INSERT로 같은 사람에게 두 번째 1번 자리를 넣는 것을 여전히 막는다.
async fn existing_holdings_move_in_place_and_keep_a_limit_of_one(db: TestDb) {
    let c = &db.conn;
    let coupon = new_coupon(c, Some(10)).await;
    let u = new_user(c).await;
    migrate_down_through(c, "m20261222_000010_per_user_limit").await;
    let at = if c.get_database_backend() == sea_orm::DbBackend::Sqlite { "2026-01-01T00:00:00+00:00" } else { "2026-01-01 00:00:00" };
    let old = Uuid::new_v4();
    c.execute_unprepared(&format!(
        "INSERT INTO user_coupons (id, user_id, coupon_id, is_used, issued_at) VALUES ('{old}', '{}', '{}', false, '{at}')",
        u.id, coupon.id
    ))
    .await
    .expect("옛 내역");
    c.execute_unprepared(&format!("UPDATE coupons SET issued_quantity = 1 WHERE id = '{}'", coupon.id)).await.expect("수량");
    Migrator::up(c, None).await.expect("옮기기");
    assert_eq!(slots(&db, coupon.id, u.id).await, vec![1]);
    let moved = couponql::repo::coupon::find_by_id(c, coupon.id).await.expect("조회").expect("쿠폰");
    assert_eq!(moved.per_user_limit, 1);
    let issuer = Issuer::new(c.clone(), IssueMode::PerRequest);
    assert_eq!(outcome(issuer.issue(u.id, coupon.id).await), "COUPON_ALREADY_ISSUED");
    let dup = c
        .execute_unprepared(&format!(
            "INSERT INTO user_coupons (id, user_id, coupon_id, is_used, issued_at) VALUES ('{}', '{}', '{}', false, '{at}')",
            Uuid::new_v4(),
            u.id,
            coupon.id
        ))
        .await;
    assert!(dup.is_err(), "같은 사람의 두 번째 1번 자리가 들어갔다");
    assert_eq!(assert_invariant(c, coupon.id).await, 1);
}
on_all_backends!(existing_holdings_move_in_place_and_keep_a_limit_of_one);

async fn gql(app: &TestApp, token: &str, query: &str) -> Value {
    app.raw(Some(token), json!({ "query": query }).to_string()).await.1
}

/// GraphQL: `perUserLimit`은 기본 1, 1..100, 명시한 null은 그 필드의 입력 오류, 수정은 올리기만.
async fn the_limit_is_set_and_raised_over_graphql(app: TestApp) {
    let admin = token(Uuid::new_v4(), Role::Admin);
    let create = |extra: &str| {
        format!(
            r#"mutation {{ createCoupon(input: {{ name: "한도", discountType: FIXED, discountValue: "1000", totalQuantity: 10,
                validFrom: "2020-01-01T00:00:00Z", validUntil: "2099-01-01T00:00:00Z" {extra} }}) {{ id perUserLimit }} }}"#
        )
    };
    let v = gql(&app, &admin, &create("")).await;
    assert_eq!(v["data"]["createCoupon"]["perUserLimit"], 1, "{v}");
    let v = gql(&app, &admin, &create(", perUserLimit: 3")).await;
    assert_eq!(v["data"]["createCoupon"]["perUserLimit"], 3, "{v}");
    let id = v["data"]["createCoupon"]["id"].as_str().expect("id").to_owned();
    for bad in [", perUserLimit: null", ", perUserLimit: 0", ", perUserLimit: 101"] {
        let v = gql(&app, &admin, &create(bad)).await;
        assert_eq!(v["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{bad}: {v}");
        assert_eq!(v["errors"][0]["extensions"]["field"], "perUserLimit", "{bad}: {v}");
    }
    let update = |arg: &str| format!(r#"mutation {{ updateCoupon(id: "{id}", input: {{ perUserLimit: {arg} }}) {{ perUserLimit }} }}"#);
    for bad in ["2", "null"] {
        let v = gql(&app, &admin, &update(bad)).await;
        assert_eq!(v["errors"][0]["extensions"]["field"], "perUserLimit", "{bad}: {v}");
    }
    let v = gql(&app, &admin, &update("5")).await;
    assert_eq!(v["data"]["updateCoupon"]["perUserLimit"], 5, "{v}");
}
e2e_on_all_backends!(the_limit_is_set_and_raised_over_graphql);

/// 키마다 다른 요청이고 같은 키는 다시 보여 준다 (CONTRACT 11절): 한도 2인 쿠폰에 키 셋을 동시에 보내면 둘이 발급되고
/// 하나는 ALREADY_ISSUED. 같은 키를 다시 보내면 처음 답 그대로 (새 발급도, 한도 오류도 아니다).
async fn each_key_is_its_own_request_and_a_repeated_key_replays(app: TestApp) {
    let coupon = new_coupon_limited(&app.db.conn, Some(10), 2).await;
    let u = new_user(&app.db.conn).await;
    let t = token(u.id, Role::User);
    let body = json!({ "query": format!(r#"mutation {{ issueCoupon(couponId: "{}") {{ id }} }}"#, coupon.id) });
    let keys: Vec<String> = (0..3).map(|_| Uuid::new_v4().to_string()).collect();
    let first = futures::future::join_all(keys.iter().map(|k| app.keyed_bytes(&t, k, &body))).await;
    let parsed: Vec<Value> = first.iter().map(|(_, _, b)| serde_json::from_slice(b).unwrap_or(Value::Null)).collect();
    let ok: Vec<usize> = (0..3).filter(|&i| parsed[i]["data"]["issueCoupon"]["id"].is_string()).collect();
    assert_eq!(ok.len(), 2, "{parsed:?}");
    let refused = (0..3).find(|i| !ok.contains(i)).expect("거절된 키");
    assert_eq!(parsed[refused]["errors"][0]["extensions"]["code"], "COUPON_ALREADY_ISSUED", "{parsed:?}");
    for &i in &ok {
        let (status, replayed, bytes) = app.keyed_bytes(&t, &keys[i], &body).await;
        let again: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert_eq!((status, replayed.as_deref()), (200, Some("true")), "{again}");
        assert_eq!(again["data"]["issueCoupon"]["id"], parsed[i]["data"]["issueCoupon"]["id"]);
    }
    assert_eq!(assert_invariant(&app.db.conn, coupon.id).await, 2);
}
e2e_on_all_backends!(each_key_is_its_own_request_and_a_repeated_key_replays);
