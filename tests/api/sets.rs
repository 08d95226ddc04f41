//! 한 주문의 여러 쿠폰 (CONTRACT 12절): 허용되는 묶음, 할인의 나눔, 모두 또는 아무것도의 보류·사용·취소·해제,
//! 주문의 쿠폰, 가장 큰 할인의 묶음, 예산과 멱등 키. 경쟁은 실제 트랜잭션을 동시에 돌린 뒤 데이터베이스에서 확인한다:
//! 한 쿠폰이 두 주문에 붙지 않고, 묶음의 일부만 붙은 주문이 없고, 기록된 몫의 합이 묶음의 할인이다.
use std::collections::{BTreeMap, HashMap, HashSet};

use couponql::domain::{self, OrderId, Role, Stacking, Viewer};
use couponql::service::issuance::{IssueMode, Issuer};
use couponql::service::order_sets::{self as sets, SetChange};
use couponql::service::{coupons, user_coupons as single};
use couponql::{error::AppError, repo};
use rust_decimal::Decimal;
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::concurrency::{all_at_once, outcome, tally};
use crate::helpers::{TestApp, TestDb, coupon_input, new_budget_coupon, new_user, token};
use crate::{e2e_on_all_backends, on_all_backends, on_locking_backends};

const TTL: chrono::Duration = chrono::Duration::seconds(900);

fn dec(s: &str) -> Decimal {
    s.parse().expect("decimal")
}

fn order(s: &str) -> OrderId {
    OrderId::parse(s).expect("order id")
}

fn admin() -> Viewer {
    Viewer { user_id: Uuid::new_v4(), role: Role::Admin }
}

/// 쿠폰 하나: `value`가 `%`로 끝나면 정률, 아니면 정액. 최소 금액 `min`.
async fn coupon(db: &DatabaseConnection, stacking: Stacking, value: &str, min: Option<&str>, per_user_limit: i32) -> domain::Coupon {
    let (kind, value) = match value.strip_suffix('%') {
        Some(p) => (domain::DiscountType::Percentage, p),
        None => (domain::DiscountType::Fixed, value),
    };
    let input = domain::NewCouponInput {
        discount_type: kind,
        discount_value: value.into(),
        min_purchase_amount: min.map(Into::into),
        per_user_limit: Some(per_user_limit),
        stacking: Some(stacking),
        ..coupon_input()
    };
    coupons::create(db, Some(&admin()), input).await.expect("쿠폰")
}

/// 사용자 하나에게 쿠폰마다 한 장씩: (사용자, 발급 내역 id들 — 쿠폰의 순서로).
async fn holder(db: &DatabaseConnection, coupons: &[&domain::Coupon]) -> (Viewer, Vec<Uuid>) {
    let user = new_user(db).await;
    let issuer = Issuer::new(db.clone(), IssueMode::PerRequest);
    let mut ids = Vec::new();
    for c in coupons {
        ids.push(issuer.issue(user.id, c.id).await.expect("발급").id);
    }
    (Viewer { user_id: user.id, role: Role::User }, ids)
}

fn refused_ids(r: Result<sets::OrderCoupons, AppError>) -> Vec<Uuid> {
    match r {
        Err(AppError::StackingNotAllowed { user_coupon_ids }) => user_coupon_ids,
        other => panic!("STACKING_NOT_ALLOWED이어야 한다: {other:?}"),
    }
}

fn failed_on(r: Result<sets::OrderCoupons, AppError>) -> (&'static str, Uuid) {
    match r {
        Err(AppError::InSet { user_coupon_id, error }) => (error.code(), user_coupon_id),
        other => panic!("한 쿠폰의 오류여야 한다: {other:?}"),
    }
}

/// 발급 내역 하나의 이벤트 종류, 일어난 순서로.
async fn kinds(db: &DatabaseConnection, id: Uuid) -> Vec<String> {
    let mut all = repo::ledger::history(db, &[id]).await.expect("이력");
    all.remove(&id).unwrap_or_default().into_iter().map(|e| e.kind).collect()
}

fn ids_of(set: &sets::OrderCoupons) -> Vec<Uuid> {
    set.coupons.iter().map(|(uc, _)| uc.id).collect()
}

/// 허용되지 않는 묶음은 어긋난 것을 지목해 거절되고, 아무것도 보류하지 않는다.
async fn sets_that_break_the_stacking_rules_hold_nothing(db: TestDb) {
    let c = &db.conn;
    let e1 = coupon(c, Stacking::Exclusive, "1000", None, 1).await;
    let e2 = coupon(c, Stacking::Exclusive, "1000", None, 1).await;
    let twice = coupon(c, Stacking::Stackable, "500", None, 2).await;
    let mut stack = Vec::new();
    for _ in 0..6 {
        stack.push(coupon(c, Stacking::Stackable, "100", None, 1).await);
    }
    let mut all: Vec<&domain::Coupon> = vec![&e1, &e2, &twice, &twice];
    all.extend(stack.iter());
    let (me, ids) = holder(c, &all).await;
    let (e1_uc, e2_uc, t1, t2, s) = (ids[0], ids[1], ids[2], ids[3], &ids[4..]);
    let o = order("SET-1");
    let reserve = |set: Vec<Uuid>| {
        let (c, o) = (c.clone(), o.clone());
        async move { sets::reserve_set(&c, Some(&me), &set, &o, dec("50000"), TTL, None).await }
    };
    // 입력의 모양: 비었거나 같은 id가 두 번이면 BAD_USER_INPUT.
    for bad in [vec![], vec![s[0], s[1], s[0]]] {
        let got = reserve(bad).await;
        assert!(matches!(got, Err(AppError::BadUserInput { ref field, .. }) if field == "userCouponIds"), "{got:?}");
    }
    // 남의 발급 내역은 없는 것과 같다 (규칙 검사보다 먼저).
    let (_, others) = holder(c, &[&stack[0]]).await;
    assert!(matches!(reserve(vec![e1_uc, others[0]]).await, Err(AppError::UserCouponNotFound)));
    assert!(matches!(reserve(vec![Uuid::new_v4()]).await, Err(AppError::UserCouponNotFound)));
    // 더 큰 묶음의 EXCLUSIVE는 그것들만 지목된다.
    assert_eq!(refused_ids(reserve(vec![s[0], e1_uc, s[1], e2_uc]).await), vec![e1_uc, e2_uc]);
    // 같은 쿠폰의 두 장.
    assert_eq!(refused_ids(reserve(vec![t1, s[0], t2]).await), vec![t1, t2]);
    // 여섯 장은 전부.
    assert_eq!(refused_ids(reserve(s.to_vec()).await), s.to_vec());
    assert!(sets::of_order(c, Some(&me), &o, None).await.expect("읽기").is_none(), "거절된 묶음은 아무것도 보류하지 않는다");
    // EXCLUSIVE 혼자, STACKABLE 다섯은 된다.
    assert_eq!(ids_of(&reserve(vec![e1_uc]).await.expect("혼자")), vec![e1_uc]);
    let five = reserve(s[..5].to_vec()).await.expect("다섯");
    assert_eq!(ids_of(&five), s[..5].to_vec());
    // 다시 보류하면 묶음이 바뀐다: e1은 풀렸다.
    let e1_now = repo::user_coupon::find_by_id(c, e1_uc).await.expect("읽기").expect("있음");
    assert_eq!(e1_now.order_id, None);
}
on_all_backends!(sets_that_break_the_stacking_rules_hold_nothing);

/// 할인은 각자 주문 금액 전체에 대해, 합은 주문 금액까지: 넘는 만큼은 마지막 쿠폰부터 내놓는다. 사용·취소도 묶음 전체.
async fn a_set_is_held_used_and_cancelled_as_one(db: TestDb) {
    let c = &db.conn;
    let a = coupon(c, Stacking::Stackable, "3000", None, 1).await;
    let b = coupon(c, Stacking::Stackable, "10%", None, 1).await;
    let d = coupon(c, Stacking::Stackable, "2000", Some("4000"), 1).await;
    let (me, ids) = holder(c, &[&a, &b, &d]).await;
    let o = order("ORD-7");
    // 3000 + 400.05 + 2000 = 5400.05 > 4000.50: 마지막(d)이 1399.55를 내놓는다.
    let held = sets::reserve_set(c, Some(&me), &ids, &o, dec("4000.50"), TTL, None).await.expect("보류");
    assert_eq!(ids_of(&held), ids);
    assert_eq!((held.order_amount, held.discount_amount), (dec("4000.50"), dec("4000.50")));
    let shares: Vec<Option<Decimal>> = held.coupons.iter().map(|(uc, _)| uc.discount_amount).collect();
    assert_eq!(shares, vec![Some(dec("3000")), Some(dec("400.05")), Some(dec("600.45"))]);
    for (id, want) in ids.iter().zip(["3000", "400.05", "600.45"]) {
        let row = repo::user_coupon::find_by_id(c, *id).await.expect("읽기").expect("있음");
        assert_eq!((row.order_id.as_deref(), row.discount_amount), (Some("ORD-7"), Some(dec(want))), "데이터베이스에 기록된 몫");
    }
    // 순서를 바꾸면 내놓는 쿠폰이 바뀐다.
    let reordered = vec![ids[2], ids[1], ids[0]];
    let held = sets::reserve_set(c, Some(&me), &reordered, &o, dec("4000.50"), TTL, None).await.expect("다시 보류");
    let shares: Vec<Decimal> = held.coupons.iter().map(|(uc, _)| uc.discount_amount.unwrap_or_default()).collect();
    assert_eq!(shares, vec![dec("2000"), dec("400.05"), dec("1600.45")]);
    // 한 쿠폰의 규칙이 어긋나면 그 쿠폰을 지목하고 아무것도 바꾸지 않는다: 같은 주문을 3999원으로 다시 보류하면
    // d(최소 금액 4000)가 걸리고, 주문의 묶음과 몫은 그대로다.
    let (code, on) = failed_on(sets::reserve_set(c, Some(&me), &ids, &o, dec("3999"), TTL, None).await);
    assert_eq!((code, on), ("MIN_PURCHASE_NOT_MET", ids[2]));
    let kept = sets::of_order(c, Some(&me), &o, None).await.expect("읽기").expect("있음");
    let shares: Vec<Decimal> = kept.coupons.iter().map(|(uc, _)| uc.discount_amount.unwrap_or_default()).collect();
    assert_eq!((ids_of(&kept), shares), (reordered.clone(), vec![dec("2000"), dec("400.05"), dec("1600.45")]));
    // 다른 주문이 보류한 쿠폰이 든 묶음은 그 쿠폰을 지목한다.
    let (code, on) = failed_on(sets::reserve_set(c, Some(&me), &[ids[1]], &order("ORD-9"), dec("9000"), TTL, None).await);
    assert_eq!((code, on), ("COUPON_RESERVED", ids[1]));
    assert!(sets::of_order(c, Some(&me), &order("ORD-9"), None).await.expect("읽기").is_none());
    // 사용: 새 금액 5000으로 다시 나눈다 (2000 + 500 + 3000 = 5500: 마지막 a가 500을 내놓는다).
    let used = sets::use_set(c, Some(&me), &o, Some(dec("5000")), None).await.expect("사용");
    assert_eq!(ids_of(&used), reordered);
    assert!(used.coupons.iter().all(|(uc, _)| uc.is_used));
    let shares: Vec<Decimal> = used.coupons.iter().map(|(uc, _)| uc.discount_amount.unwrap_or_default()).collect();
    assert_eq!(shares, vec![dec("2000"), dec("500"), dec("2500")]);
    assert_eq!((used.order_amount, used.discount_amount), (dec("5000"), dec("5000")));
    // 다시 보내면 같은 답, 바뀐 것 없이.
    let again = sets::use_set(c, Some(&me), &o, Some(dec("5000")), None).await.expect("재시도");
    assert_eq!((ids_of(&again), again.discount_amount), (reordered.clone(), dec("5000")));
    let seen = sets::of_order(c, Some(&me), &o, None).await.expect("읽기").expect("있음");
    assert_eq!((ids_of(&seen), seen.order_amount, seen.discount_amount), (reordered.clone(), dec("5000"), dec("5000")));
    // 취소: 모두 돌아오고, 기록되어 있던 금액으로 답한다. 두 번째는 빈 답.
    let back = sets::end_set(c, Some(&me), &o, SetChange::Cancel, None).await.expect("취소");
    assert_eq!((ids_of(&back), back.order_amount, back.discount_amount), (reordered.clone(), dec("5000"), dec("5000")));
    assert!(back.coupons.iter().all(|(uc, _)| !uc.is_used && uc.order_id.is_none()));
    let none = sets::end_set(c, Some(&me), &o, SetChange::Cancel, None).await.expect("다시 취소");
    assert_eq!((none.coupons.len(), none.order_amount), (0, Decimal::ZERO));
    assert!(sets::of_order(c, Some(&me), &o, None).await.expect("읽기").is_none());
    // 보류도 사용도 없는 주문의 사용은 찾을 수 없다. 해제는 빈 답.
    assert!(matches!(sets::use_set(c, Some(&me), &o, None, None).await, Err(AppError::UserCouponNotFound)));
    let none = sets::end_set(c, Some(&me), &o, SetChange::Release, None).await.expect("해제");
    assert!(none.coupons.is_empty());
    // 이벤트: 묶음의 변경마다 발급 내역마다 하나 (보류 둘, 사용, 취소).
    for id in &ids {
        let kinds: Vec<String> = kinds(c, *id).await.into_iter().filter(|k| k != "COUPON_ISSUED").collect();
        assert_eq!(kinds, ["COUPON_RESERVED", "COUPON_RESERVED", "COUPON_USED", "COUPON_CANCELLED"], "{id}");
    }
}
on_all_backends!(a_set_is_held_used_and_cancelled_as_one);

/// 다시 보류하면 빠진 것은 풀리고, 남는 것은 새 보류를 받는다. 따로 보류한 것(7절)은 묶음 뒤에 붙은 순서로 나온다.
/// 해제는 그 주문의 보류를 모두 푼다.
async fn reserving_again_replaces_the_set_and_singles_come_after(db: TestDb) {
    let c = &db.conn;
    let mut cs = Vec::new();
    for v in ["100", "200", "300", "400"] {
        cs.push(coupon(c, Stacking::Stackable, v, None, 1).await);
    }
    let solo = coupon(c, Stacking::Exclusive, "50", None, 1).await;
    let (me, ids) = holder(c, &[&cs[0], &cs[1], &cs[2], &cs[3], &solo]).await;
    let o = order("R-1");
    sets::reserve_set(c, Some(&me), &ids[..3], &o, dec("10000"), TTL, None).await.expect("첫 묶음");
    let second = sets::reserve_set(c, Some(&me), &[ids[3], ids[1]], &o, dec("20000"), TTL, None).await.expect("바꾼 묶음");
    assert_eq!(ids_of(&second), vec![ids[3], ids[1]]);
    for (id, holder) in [(ids[0], None), (ids[1], Some("R-1")), (ids[2], None), (ids[3], Some("R-1"))] {
        let row = repo::user_coupon::find_by_id(c, id).await.expect("읽기").expect("있음");
        assert_eq!(row.order_id.as_deref(), holder, "{id}");
    }
    // 7절로 따로: 묶음 규칙에 묶이지 않고(EXCLUSIVE인데도), 묶음 뒤에 온다.
    single::reserve(c, Some(&me), ids[4], &o, dec("20000"), TTL, None).await.expect("따로 보류");
    single::reserve(c, Some(&me), ids[0], &o, dec("20000"), TTL, None).await.expect("따로 보류");
    let seen = sets::of_order(c, Some(&me), &o, None).await.expect("읽기").expect("있음");
    assert_eq!(ids_of(&seen), vec![ids[3], ids[1], ids[4], ids[0]]);
    assert_eq!((seen.order_amount, seen.discount_amount), (dec("20000"), dec("750")));
    // 관리자는 userId로 남의 주문을 읽는다. 사용자는 남의 것을 읽을 수 없다.
    let by_admin = sets::of_order(c, Some(&admin()), &o, Some(me.user_id)).await.expect("관리자").expect("있음");
    assert_eq!(ids_of(&by_admin), ids_of(&seen));
    let stranger = Viewer { user_id: Uuid::new_v4(), role: Role::User };
    assert!(matches!(sets::of_order(c, Some(&stranger), &o, Some(me.user_id)).await, Err(AppError::Forbidden)));
    let released = sets::end_set(c, Some(&me), &o, SetChange::Release, None).await.expect("해제");
    assert_eq!(ids_of(&released), vec![ids[3], ids[1], ids[4], ids[0]]);
    assert_eq!(released.order_amount, dec("20000"));
    assert!(sets::of_order(c, Some(&me), &o, None).await.expect("읽기").is_none());
}
on_all_backends!(reserving_again_replaces_the_set_and_singles_come_after);

/// 예산(11절)은 묶음 안에서 쿠폰마다: 들지 않는 쿠폰이 있으면 묶음 전체를 거절하고 예산도 그대로다.
async fn a_member_over_its_budget_refuses_the_whole_set(db: TestDb) {
    let c = &db.conn;
    let budgeted = new_budget_coupon(c, "1000", "1500").await;
    let budgeted = coupons::update(
        c,
        Some(&admin()),
        budgeted.id,
        domain::CouponChangeInput { stacking: domain::Patch::Set(Stacking::Stackable), ..Default::default() },
    )
    .await
    .expect("STACKABLE로");
    let other = coupon(c, Stacking::Stackable, "700", None, 1).await;
    let (first, first_ids) = holder(c, &[&budgeted]).await;
    sets::reserve_set(c, Some(&first), &first_ids, &order("B-1"), dec("9000"), TTL, None).await.expect("예산 1000 보류");
    let (me, ids) = holder(c, &[&other, &budgeted]).await;
    // bestCoupons도 남은 예산(500원)이 할인(1000원)보다 작은 쿠폰은 빼고 고른다.
    let list = single::of_user(c, me.user_id, true).await.expect("목록");
    let (best, total) = sets::best(c, list, dec("9000"), domain::now()).await.expect("bestCoupons");
    assert_eq!((best.iter().map(|(uc, _, _)| uc.id).collect::<Vec<_>>(), total), (vec![ids[0]], dec("700")));
    let (code, on) = failed_on(sets::reserve_set(c, Some(&me), &ids, &order("B-2"), dec("9000"), TTL, None).await);
    assert_eq!((code, on), ("BUDGET_EXHAUSTED", ids[1]));
    assert!(sets::of_order(c, Some(&me), &order("B-2"), None).await.expect("읽기").is_none(), "700원 쿠폰도 보류되지 않았다");
    let spent = testkit::invariant::check_budget(c, budgeted.id, domain::now()).await.unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(spent, dec("1000.00"));
    // 주문 금액이 줄어 몫이 500원이면 든다 (1000 + 500 = 1500).
    sets::reserve_set(c, Some(&me), &ids, &order("B-2"), dec("1200"), TTL, None).await.expect("몫이 작으면 든다");
    let spent = testkit::invariant::check_budget(c, budgeted.id, domain::now()).await.unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(spent, dec("1500.00"));
}
on_all_backends!(a_member_over_its_budget_refuses_the_whole_set);

/// 한 사용자의 20개 주문이 겹치는 묶음을 동시에 보류한다: 끝나고 나면 모든 쿠폰이 많아야 한 주문에, 어느 주문도 묶음의
/// 일부만 갖지 않고, 주문마다 기록된 몫의 합이 그 묶음의 할인이다 (데이터베이스에서 센다).
async fn twenty_orders_racing_for_overlapping_sets_never_split_one(db: TestDb) {
    let c = &db.conn;
    let mut cs = Vec::new();
    for i in 0..8 {
        cs.push(coupon(c, Stacking::Stackable, &format!("{}", 1000 + 100 * i), None, 1).await);
    }
    let (me, ids) = holder(c, &cs.iter().collect::<Vec<_>>()).await;
    let want: Vec<Vec<Uuid>> = (0..20).map(|i| vec![ids[i % 8], ids[(i + 1) % 8], ids[(i + 3) % 8]]).collect();
    let got = all_at_once(20, |i| {
        let (c, set) = (c.clone(), want[i].clone());
        async move {
            let o = order(&format!("RACE-{i}"));
            // 이미 보류된 쿠폰은 COUPON_RESERVED로 거절된다. 돈 주문은 모두 또는 아무것도.
            vec![outcome(sets::reserve_set(&c, Some(&me), &set, &o, dec("2000"), TTL, None).await)]
        }
    })
    .await;
    let counts = tally(got.clone());
    assert!(counts.get("OK").is_some_and(|n| *n >= 1), "{counts:?}");
    assert!(counts.keys().all(|k| matches!(*k, "OK" | "COUPON_RESERVED")), "{counts:?}");
    let rows = repo::user_coupon::list_by_user(c, me.user_id, false).await.expect("읽기");
    let mut by_order: HashMap<String, Vec<&domain::UserCoupon>> = HashMap::new();
    for (uc, _) in &rows {
        if let Some(o) = &uc.order_id {
            by_order.entry(o.clone()).or_default().push(uc);
        }
    }
    let mut held_by = HashSet::new();
    for (i, code) in got.iter().enumerate() {
        let name = format!("RACE-{i}");
        let held: HashSet<Uuid> = by_order.get(&name).map(|v| v.iter().map(|uc| uc.id).collect()).unwrap_or_default();
        if *code == "OK" {
            assert_eq!(held, want[i].iter().copied().collect(), "{name}: 묶음 전체");
            let shares: Decimal = by_order[&name].iter().filter_map(|uc| uc.discount_amount).sum();
            assert_eq!(shares, dec("2000"), "{name}: 몫의 합 = 묶음의 할인 (주문 금액까지)");
        } else {
            assert!(held.is_empty(), "{name}: 거절된 주문은 아무것도 갖지 않는다");
        }
        for id in held {
            assert!(held_by.insert(id), "{id}가 두 주문에");
        }
    }
    assert_eq!(by_order.len(), counts.get("OK").copied().unwrap_or(0), "성공한 주문만 쿠폰을 갖는다");
}
on_locking_backends!(twenty_orders_racing_for_overlapping_sets_never_split_one);

/// 같은 주문을 바꾸는 요청 열 개가 동시에: 끝에 그 주문은 요청된 묶음 가운데 정확히 하나를 갖는다 (두 묶음이 섞이지 않는다).
async fn concurrent_replacements_of_one_order_leave_one_whole_set(db: TestDb) {
    let c = &db.conn;
    let mut cs = Vec::new();
    for _ in 0..10 {
        cs.push(coupon(c, Stacking::Stackable, "100", None, 1).await);
    }
    let (me, ids) = holder(c, &cs.iter().collect::<Vec<_>>()).await;
    let want: Vec<Vec<Uuid>> = (0..10).map(|i| vec![ids[i], ids[(i + 5) % 10]]).collect();
    let got = all_at_once(10, |i| {
        let (c, set) = (c.clone(), want[i].clone());
        async move { vec![outcome(sets::reserve_set(&c, Some(&me), &set, &order("SAME"), dec("1000"), TTL, None).await)] }
    })
    .await;
    assert_eq!(tally(got), BTreeMap::from([("OK", 10)]));
    let held: HashSet<Uuid> = repo::user_coupon::list_by_user(c, me.user_id, false)
        .await
        .expect("읽기")
        .into_iter()
        .filter(|(uc, _)| uc.order_id.as_deref() == Some("SAME"))
        .map(|(uc, _)| uc.id)
        .collect();
    assert!(want.iter().any(|set| set.iter().copied().collect::<HashSet<_>>() == held), "{held:?}");
}
on_locking_backends!(concurrent_replacements_of_one_order_leave_one_whole_set);

async fn gql(app: &TestApp, token: &str, query: &str) -> Value {
    app.raw(Some(token), json!({ "query": query }).to_string()).await.1
}

/// GraphQL: stacking 필드, 네 변경과 orderCoupons의 모양, 오류의 extensions, bestCoupons, 멱등 키.
async fn sets_over_graphql(app: TestApp) {
    let admin_t = token(Uuid::new_v4(), Role::Admin);
    let create = |value: &str, stacking: &str, until: &str| {
        format!(
            r#"mutation {{ createCoupon(input: {{ name: "묶음", discountType: FIXED, discountValue: "{value}",
                validFrom: "2020-01-01T00:00:00Z", validUntil: "{until}"{stacking} }}) {{ id stacking }} }}"#
        )
    };
    let v = gql(&app, &admin_t, &create("1000", "", "2099-01-01T00:00:00Z")).await;
    assert_eq!(v["data"]["createCoupon"]["stacking"], "EXCLUSIVE", "기본값: {v}");
    let exclusive = v["data"]["createCoupon"]["id"].as_str().expect("id").to_owned();
    let v = gql(&app, &admin_t, &create("1000", ", stacking: null", "2099-01-01T00:00:00Z")).await;
    assert_eq!(v["errors"][0]["extensions"]["field"], "stacking", "{v}");
    let mut stackable = Vec::new();
    for (value, until) in [("600", "2090-01-01T00:00:00Z"), ("500", "2080-01-01T00:00:00Z"), ("400", "2099-01-01T00:00:00Z")] {
        let v = gql(&app, &admin_t, &create(value, ", stacking: STACKABLE", until)).await;
        assert_eq!(v["data"]["createCoupon"]["stacking"], "STACKABLE", "{v}");
        stackable.push(v["data"]["createCoupon"]["id"].as_str().expect("id").to_owned());
    }
    let v = gql(&app, &admin_t, &format!(r#"mutation {{ updateCoupon(id: "{exclusive}", input: {{ stacking: null }}) {{ id }} }}"#)).await;
    assert_eq!(v["errors"][0]["extensions"]["field"], "stacking", "{v}");

    let user = new_user(&app.db.conn).await;
    let me = token(user.id, Role::User);
    let mut uc = HashMap::new();
    for id in std::iter::once(&exclusive).chain(&stackable) {
        let v = gql(&app, &me, &format!(r#"mutation {{ issueCoupon(couponId: "{id}") {{ id }} }}"#)).await;
        uc.insert(id.clone(), v["data"]["issueCoupon"]["id"].as_str().expect("발급").to_owned());
    }
    let (ex, s600, s500, s400) = (&uc[&exclusive], &uc[&stackable[0]], &uc[&stackable[1]], &uc[&stackable[2]]);
    // bestCoupons: 세 STACKABLE(1500)이 EXCLUSIVE(1000)를 이긴다. 1000원 주문이면 한 장(EXCLUSIVE)이 이긴다.
    let best = |amount: &str| format!(r#"{{ me {{ bestCoupons(orderAmount: "{amount}") {{ userCoupons {{ id }} discountAmount }} }} }}"#);
    let v = gql(&app, &me, &best("50000")).await;
    let picked: Vec<&str> =
        v["data"]["me"]["bestCoupons"]["userCoupons"].as_array().expect("목록").iter().filter_map(|u| u["id"].as_str()).collect();
    assert_eq!(
        (picked, &v["data"]["me"]["bestCoupons"]["discountAmount"]),
        (vec![s600.as_str(), s500.as_str(), s400.as_str()], &json!("1500.00"))
    );
    let v = gql(&app, &me, &best("1000")).await;
    assert_eq!(v["data"]["me"]["bestCoupons"]["userCoupons"][0]["id"].as_str(), Some(ex.as_str()), "{v}");
    assert_eq!(v["data"]["me"]["bestCoupons"]["discountAmount"], "1000.00");
    // 1100원이면 두 장으로 닿는다: 600 + 500 (validUntil이 가장 이른 500이 든 것).
    let v = gql(&app, &me, &best("1100")).await;
    let picked: Vec<&str> =
        v["data"]["me"]["bestCoupons"]["userCoupons"].as_array().expect("목록").iter().filter_map(|u| u["id"].as_str()).collect();
    assert_eq!(picked, vec![s600.as_str(), s500.as_str()], "{v}");
    let v = gql(&app, &me, &best("0")).await;
    assert_eq!(v["data"]["me"]["bestCoupons"], json!({ "userCoupons": [], "discountAmount": "0.00" }));

    let reserve = |ids: &[&String], o: &str| {
        let list = ids.iter().map(|i| format!("\"{i}\"")).collect::<Vec<_>>().join(", ");
        format!(
            r#"mutation {{ reserveCoupons(userCouponIds: [{list}], orderId: "{o}", orderAmount: "1200") {{
                orderId orderAmount discountAmount userCoupons {{ id status discountAmount }} }} }}"#
        )
    };
    let v = gql(&app, &me, &reserve(&[s400, ex], "G-1")).await;
    assert_eq!(v["errors"][0]["extensions"]["code"], "STACKING_NOT_ALLOWED", "{v}");
    assert_eq!(v["errors"][0]["message"], "함께 사용할 수 없는 쿠폰입니다");
    assert_eq!(v["errors"][0]["extensions"]["userCouponIds"], json!([ex]));
    let v = gql(&app, &me, &reserve(&[], "G-1")).await;
    assert_eq!(v["errors"][0]["extensions"]["field"], "userCouponIds", "{v}");
    // 키가 달린 보류: 같은 키로 다시 보내면 같은 답이 보관된 채로 오고, 보류 이벤트는 한 번.
    let body = json!({ "query": reserve(&[s600, s500, s400], "G-1") });
    let (status, replayed, first) = app.keyed_bytes(&me, "set-key-1", &body).await;
    assert_eq!((status, replayed), (200, None));
    let first: Value = serde_json::from_slice(&first).expect("JSON");
    let set = &first["data"]["reserveCoupons"];
    assert_eq!(
        (&set["orderId"], &set["orderAmount"], &set["discountAmount"]),
        (&json!("G-1"), &json!("1200.00"), &json!("1200.00")),
        "{first}"
    );
    let shares: Vec<&str> = set["userCoupons"].as_array().expect("목록").iter().filter_map(|u| u["discountAmount"].as_str()).collect();
    assert_eq!(shares, ["600.00", "500.00", "100.00"]);
    let (status, replayed, again) = app.keyed_bytes(&me, "set-key-1", &body).await;
    assert_eq!((status, replayed.as_deref()), (200, Some("true")));
    assert_eq!(serde_json::from_slice::<Value>(&again).expect("JSON"), first);
    let id: Uuid = s600.parse().expect("uuid");
    let reserved = kinds(&app.db.conn, id).await.iter().filter(|k| *k == "COUPON_RESERVED").count();
    assert_eq!(reserved, 1);
    // 다른 주문이 그 가운데 하나를 원하면 그 쿠폰을 지목한다.
    let v = gql(&app, &me, &reserve(&[s400], "G-2")).await;
    assert_eq!(
        (&v["errors"][0]["extensions"]["code"], &v["errors"][0]["extensions"]["userCouponId"]),
        (&json!("COUPON_RESERVED"), &json!(s400)),
        "{v}"
    );
    let v = gql(&app, &me, r#"{ orderCoupons(orderId: "G-1") { orderId orderAmount discountAmount userCoupons { id status } } }"#).await;
    assert_eq!(v["data"]["orderCoupons"]["userCoupons"][2]["status"], "RESERVED", "{v}");
    let v = gql(&app, &me, r#"{ orderCoupons(orderId: "NONE") { orderId } }"#).await;
    assert!(v["data"]["orderCoupons"].is_null(), "{v}");
    let v = gql(&app, &me, r#"mutation { useOrderCoupons(orderId: "G-1") { orderAmount discountAmount userCoupons { status } } }"#).await;
    assert_eq!(v["data"]["useOrderCoupons"]["discountAmount"], "1200.00", "{v}");
    assert!(v["data"]["useOrderCoupons"]["userCoupons"].as_array().expect("목록").iter().all(|u| u["status"] == "USED"));
    let v = gql(&app, &me, r#"mutation { cancelOrderCoupons(orderId: "G-1") { orderAmount userCoupons { status } } }"#).await;
    assert_eq!(v["data"]["cancelOrderCoupons"]["orderAmount"], "1200.00", "{v}");
    let v = gql(&app, &me, r#"mutation { releaseOrderCoupons(orderId: "G-1") { orderAmount userCoupons { id } } }"#).await;
    assert_eq!(v["data"]["releaseOrderCoupons"], json!({ "orderAmount": "0.00", "userCoupons": [] }), "{v}");
    let v = app.raw(None, json!({ "query": r#"{ orderCoupons(orderId: "G-1") { orderId } }"# }).to_string()).await.1;
    assert_eq!(v["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{v}");
}
e2e_on_all_backends!(sets_over_graphql);
