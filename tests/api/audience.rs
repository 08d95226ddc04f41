//! 대상 고객 (CONTRACT 11절 "Audiences"): 제한된 쿠폰은 회원에게만 발급된다. 회원 바꾸기의 셈, 검사 순서, 목록에서
//! 숨기기, 동시에 몰린 발급을 모든 백엔드에서 (경쟁은 행 잠금 백엔드에서, 끝나면 데이터베이스에서 센다).
use std::collections::BTreeMap;

use couponql::domain::{CouponChangeInput, CouponStatus, Patch, Role, Viewer};
use couponql::error::AppError;
use couponql::service::issuance::{IssueMode, Issuer};
use couponql::service::{audiences, coupons};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::concurrency::{all_at_once, outcome, tally};
use crate::helpers::{TestApp, TestDb, assert_invariant, new_coupon, new_restricted_coupon, new_user, new_users, token};
use crate::{e2e_on_all_backends, on_all_backends, on_locking_backends_both_modes};

fn admin() -> Viewer {
    Viewer { user_id: Uuid::new_v4(), role: Role::Admin }
}

fn ids(users: &[Uuid]) -> Vec<String> {
    users.iter().map(Uuid::to_string).collect()
}

pub(crate) async fn events_of(db: &TestDb, coupon: Uuid) -> Vec<String> {
    couponql::service::ledger::stamp_all(&db.conn).await.expect("도장");
    let page = coupons::events(&db.conn, Some(&admin()), Some(coupon), Some(100), None).await.expect("원장");
    page.items.into_iter().map(|e| e.event.kind).collect()
}

async fn members_are_counted_and_only_they_are_issued(db: TestDb) {
    let c = &db.conn;
    let a = admin();
    let coupon = new_restricted_coupon(c, Some(10)).await;
    let (m, n) = (new_user(c).await, new_user(c).await);
    let issuer = Issuer::new(c.clone(), IssueMode::PerRequest);
    // 검사 순서: 사용자 존재가 먼저, 그다음 대상 여부.
    assert_eq!(outcome(issuer.issue(Uuid::new_v4(), coupon.id).await), "USER_NOT_FOUND");
    assert_eq!(outcome(issuer.issue(m.id, coupon.id).await), "NOT_ELIGIBLE");

    // 넣기: 되풀이는 한 번, 없는 사용자는 모르는 id로만 센다.
    let ghost = Uuid::new_v4();
    let change = audiences::add_members(c, Some(&a), coupon.id, &ids(&[m.id, m.id, ghost])).await.expect("넣기");
    assert_eq!((change.added, change.unknown_count, change.audience_size), (1, 1, 1));
    assert_eq!(change.unknown_user_ids, vec![ghost]);
    // 이미 회원이면 넣은 것도 모르는 것도 아니다: 아무것도 바뀌지 않고 이벤트도 없다.
    let again = audiences::add_members(c, Some(&a), coupon.id, &ids(&[m.id])).await.expect("다시 넣기");
    assert_eq!((again.added, again.unknown_count, again.audience_size), (0, 0, 1));

    let uc = issuer.issue(m.id, coupon.id).await.expect("회원은 받는다");
    assert_eq!(outcome(issuer.issue(n.id, coupon.id).await), "NOT_ELIGIBLE");

    // 빼기: 회원이 아닌 사람은 뺀 것도 모르는 것도 아니다. 이미 받은 쿠폰은 그대로다.
    let out = audiences::remove_members(c, Some(&a), coupon.id, &ids(&[m.id, n.id])).await.expect("빼기");
    assert_eq!((out.removed, out.unknown_count, out.audience_size), (1, 0, 0));
    assert!(couponql::repo::user_coupon::find_by_id(c, uc.id).await.expect("조회").is_some(), "받은 쿠폰이 사라졌다");
    let later = couponql::repo::coupon::find_by_id(c, coupon.id).await.expect("조회").expect("쿠폰");
    assert_eq!(later.issued_quantity, 1);

    // 대상 여부는 중지보다 앞선다.
    coupons::set_status(c, Some(&a), coupon.id, CouponStatus::Paused).await.expect("중지");
    assert_eq!(outcome(issuer.issue(n.id, coupon.id).await), "NOT_ELIGIBLE");
    // 이벤트: 바꾼 호출마다 하나 (넣기 1, 빼기 1), 아무것도 바꾸지 않은 호출에는 없다.
    let kinds = events_of(&db, coupon.id).await;
    assert_eq!(kinds.iter().filter(|k| *k == "COUPON_AUDIENCE_CHANGED").count(), 2, "{kinds:?}");
    assert_eq!(assert_invariant(c, coupon.id).await, 1);
}
on_all_backends!(members_are_counted_and_only_they_are_issued);

async fn audience_changes_are_checked(db: TestDb) {
    let c = &db.conn;
    let a = admin();
    let coupon = new_restricted_coupon(c, None).await;
    let u = new_user(c).await;
    let user = Viewer { user_id: u.id, role: Role::User };
    assert_eq!(outcome(audiences::add_members(c, Some(&user), coupon.id, &ids(&[u.id])).await), "FORBIDDEN");
    assert_eq!(outcome(audiences::add_members(c, None, coupon.id, &ids(&[u.id])).await), "UNAUTHENTICATED");
    assert_eq!(outcome(audiences::add_members(c, Some(&a), Uuid::new_v4(), &ids(&[u.id])).await), "COUPON_NOT_FOUND");
    let over: Vec<String> = (0..1001).map(|_| u.id.to_string()).collect();
    match audiences::add_members(c, Some(&a), coupon.id, &over).await {
        Err(AppError::BadUserInput { field, .. }) => assert_eq!(field, "userIds"),
        other => panic!("1,001개는 거절: {other:?}"),
    }
    match audiences::remove_members(c, Some(&a), coupon.id, &["nope".to_owned()]).await {
        Err(AppError::BadUserInput { field, .. }) => assert_eq!(field, "userIds"),
        other => panic!("UUID가 아닌 id는 거절: {other:?}"),
    }
    assert_eq!(audiences::size(c, Some(&a), coupon.id).await.expect("크기"), 0);
    coupons::set_status(c, Some(&a), coupon.id, CouponStatus::Archived).await.expect("보관");
    assert_eq!(outcome(audiences::add_members(c, Some(&a), coupon.id, &ids(&[u.id])).await), "COUPON_ARCHIVED");
    // 제한을 풀면 누구나, 다시 걸면 회원만.
    let open = new_restricted_coupon(c, None).await;
    let lift = CouponChangeInput { restricted: Patch::Set(false), ..CouponChangeInput::default() };
    assert!(!coupons::update(c, Some(&a), open.id, lift).await.expect("풀기").restricted);
    let issuer = Issuer::new(c.clone(), IssueMode::PerRequest);
    issuer.issue(u.id, open.id).await.expect("제한 없는 쿠폰");
    let clear = CouponChangeInput { restricted: Patch::Clear, ..CouponChangeInput::default() };
    match coupons::update(c, Some(&a), open.id, clear).await {
        Err(AppError::BadUserInput { field, .. }) => assert_eq!(field, "restricted"),
        other => panic!("null은 거절: {other:?}"),
    }
}
on_all_backends!(audience_changes_are_checked);

/// `coupons(availableOnly: true)`: 제한된 쿠폰은 회원에게만 보인다 (익명에게도, 회원이 아닌 관리자에게도 안 보인다).
async fn available_coupons_hide_restricted_ones_from_non_members(db: TestDb) {
    let c = &db.conn;
    let a = admin();
    let open = new_coupon(c, None).await;
    let restricted = new_restricted_coupon(c, None).await;
    let (m, n) = (new_user(c).await, new_user(c).await);
    audiences::add_members(c, Some(&a), restricted.id, &ids(&[m.id])).await.expect("넣기");
    let seen = |viewer: Option<Viewer>| {
        let c = c.clone();
        async move {
            let page = coupons::list(&c, viewer.as_ref(), true, false, Some(100), None).await.expect("목록");
            let got: Vec<Uuid> = page.items.iter().map(|x| x.id).collect();
            (got.contains(&open.id), got.contains(&restricted.id))
        }
    };
    assert_eq!(seen(Some(Viewer { user_id: m.id, role: Role::User })).await, (true, true));
    assert_eq!(seen(Some(Viewer { user_id: n.id, role: Role::User })).await, (true, false));
    assert_eq!(seen(None).await, (true, false));
    assert_eq!(seen(Some(a)).await, (true, false));
    // availableOnly가 아니면 그대로 보인다.
    let all = coupons::list(c, None, false, false, Some(100), None).await.expect("목록");
    assert!(all.items.iter().any(|x| x.id == restricted.id));
}
on_all_backends!(available_coupons_hide_restricted_ones_from_non_members);

/// 100명 가운데 회원 50명이 30장짜리 제한 쿠폰에 동시에: 정확히 30장이 모두 회원에게, 회원이 아닌 50명은 NOT_ELIGIBLE.
async fn a_crowd_racing_for_a_restricted_coupon_leaves_non_members_out(db: TestDb, mode: IssueMode) {
    let c = &db.conn;
    let coupon = new_restricted_coupon(c, Some(30)).await;
    let users: Vec<Uuid> = new_users(c, 100).await.into_iter().map(|u| u.id).collect();
    audiences::add_members(c, Some(&admin()), coupon.id, &ids(&users[..50])).await.expect("넣기");
    let issuer = Issuer::new(c.clone(), mode);
    let got = tally(
        all_at_once(100, |i| {
            let (issuer, user, coupon) = (issuer.clone(), users[i], coupon.id);
            async move { vec![outcome(issuer.issue(user, coupon).await)] }
        })
        .await,
    );
    assert_eq!(got, BTreeMap::from([("COUPON_SOLD_OUT", 20), ("NOT_ELIGIBLE", 50), ("OK", 30)]));
    assert_eq!(assert_invariant(c, coupon.id).await, 30);
    let holders = couponql::repo::audience::members_among(c, coupon.id, &users[..50]).await.expect("회원");
    assert_eq!(holders.len(), 50);
    let outside = couponql::repo::user_coupon::held_counts(c, coupon.id, &users[50..]).await.expect("회원 밖");
    assert!(outside.is_empty(), "회원이 아닌 사람이 받았다: {outside:?}");
}
on_locking_backends_both_modes!(a_crowd_racing_for_a_restricted_coupon_leaves_non_members_out);

async fn gql(app: &TestApp, token: &str, query: &str) -> Value {
    app.raw(Some(token), json!({ "query": query }).to_string()).await.1
}

/// GraphQL: restricted의 기본값과 null, 회원 바꾸기의 답 모양, audienceSize는 관리자만.
async fn audiences_work_over_graphql(app: TestApp) {
    let admin = token(Uuid::new_v4(), Role::Admin);
    let u = new_user(&app.db.conn).await;
    let user = token(u.id, Role::User);
    let create = |extra: &str| {
        format!(
            r#"mutation {{ createCoupon(input: {{ name: "회원 전용", discountType: FIXED, discountValue: "1000", totalQuantity: 10,
                validFrom: "2020-01-01T00:00:00Z", validUntil: "2099-01-01T00:00:00Z" {extra} }}) {{ id restricted }} }}"#
        )
    };
    let v = gql(&app, &admin, &create("")).await;
    assert_eq!(v["data"]["createCoupon"]["restricted"], false, "{v}");
    let v = gql(&app, &admin, &create(", restricted: null")).await;
    assert_eq!(v["errors"][0]["extensions"]["field"], "restricted", "{v}");
    let v = gql(&app, &admin, &create(", restricted: true")).await;
    let id = v["data"]["createCoupon"]["id"].as_str().expect("id").to_owned();
    let ghost = Uuid::new_v4();
    let add = format!(
        r#"mutation {{ addAudienceMembers(couponId: "{id}", userIds: ["{}", "{ghost}"]) {{ couponId added removed unknownUserIds unknownCount audienceSize }} }}"#,
        u.id
    );
    let v = gql(&app, &admin, &add).await;
    assert_eq!(
        v["data"]["addAudienceMembers"],
        json!({ "couponId": id, "added": 1, "removed": 0, "unknownUserIds": [ghost.to_string()], "unknownCount": 1, "audienceSize": 1 }),
        "{v}"
    );
    let v = gql(&app, &user, &add).await;
    assert_eq!(v["errors"][0]["extensions"]["code"], "FORBIDDEN", "{v}");
    let size = format!(r#"query {{ coupon(id: "{id}") {{ restricted audienceSize }} }}"#);
    let v = gql(&app, &admin, &size).await;
    assert_eq!(v["data"]["coupon"], json!({ "restricted": true, "audienceSize": 1 }), "{v}");
    let v = gql(&app, &user, &size).await;
    assert_eq!(v["errors"][0]["extensions"]["code"], "FORBIDDEN", "{v}");
    let issue = format!(r#"mutation {{ issueCoupon(couponId: "{id}") {{ id }} }}"#);
    assert!(gql(&app, &user, &issue).await["data"]["issueCoupon"]["id"].is_string());
    let other = token(new_user(&app.db.conn).await.id, Role::User);
    let v = gql(&app, &other, &issue).await;
    assert_eq!(v["errors"][0]["extensions"]["code"], "NOT_ELIGIBLE", "{v}");
    assert_eq!(v["errors"][0]["message"], "발급 대상이 아닙니다", "{v}");
}
e2e_on_all_backends!(audiences_work_over_graphql);
