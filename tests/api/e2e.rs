//! 끝에서 끝까지: 임의 포트의 실제 서버에 스키마 기반 클라이언트로 GraphQL over HTTP.
use couponql::domain::Role;
use couponql::seed;
use uuid::Uuid;

use crate::client::*;
use crate::e2e_on_all_backends;
use crate::helpers::{TestApp, token};

const MINSU: &str = "11111111-1111-4111-8111-111111111111";
const SEOYEON: &str = "22222222-2222-4222-8222-222222222222";
const JIHOON: &str = "33333333-3333-4333-8333-333333333333";
const C1: &str = "c0000000-0000-4000-8000-000000000001";
const C2: &str = "c0000000-0000-4000-8000-000000000002";
const C3: &str = "c0000000-0000-4000-8000-000000000003";
const C4: &str = "c0000000-0000-4000-8000-000000000004";
const C5: &str = "c0000000-0000-4000-8000-000000000005";

fn tok(user: &str, role: Role) -> String {
    token(Uuid::parse_str(user).expect("uuid"), role)
}

async fn issue_as(app: &TestApp, t: Option<&str>, coupon: &str, user: Option<&str>) -> Answer<issue_coupon::ResponseData> {
    app.call::<IssueCoupon>(t, issue_coupon::Variables { coupon_id: coupon.into(), user_id: user.map(str::to_owned) }).await
}

async fn use_as(app: &TestApp, t: Option<&str>, id: &str) -> Answer<use_coupon::ResponseData> {
    app.call::<UseCoupon>(t, use_coupon::Variables { user_coupon_id: id.into(), order_amount: None }).await
}

async fn cancel_as(app: &TestApp, t: Option<&str>, id: &str) -> Answer<cancel_coupon::ResponseData> {
    app.call::<CancelCoupon>(t, cancel_coupon::Variables { user_coupon_id: id.into() }).await
}

async fn seeded(app: &TestApp) {
    seed::seed(&app.db.conn).await.expect("seed");
}

fn coupon_input(name: &str, from: &str, until: &str, total: Option<i64>) -> create_coupon::CreateCouponInput {
    create_coupon::CreateCouponInput {
        name: name.into(),
        discount_type: create_coupon::DiscountType::FIXED,
        discount_value: "1000".into(),
        min_purchase_amount: None,
        max_discount_amount: None,
        total_quantity: total,
        valid_from: from.into(),
        valid_until: until.into(),
        // 생성된 클라이언트는 None을 null로 보내고, 명시한 null은 입력 오류다 (CONTRACT 11절): 기본값을 그대로 보낸다.
        per_user_limit: Some(1),
        restricted: Some(false),
        // null은 "일정 없음", "예산 없음"이다.
        waves: None,
        budget: None,
        stacking: Some(create_coupon::StackingPolicy::EXCLUSIVE),
    }
}

async fn demo_data_reads_back_through_the_api(app: TestApp) {
    seeded(&app).await;
    let c1 = app.call::<Coupon>(None, coupon::Variables { id: C1.into() }).await.ok().coupon.expect("쿠폰 1");
    assert_eq!(c1.name, "5,000원 할인 쿠폰");
    assert_eq!(c1.discount_type, coupon::DiscountType::FIXED);
    assert_eq!((c1.discount_value.as_str(), c1.min_purchase_amount.as_deref()), ("5000.00", Some("30000.00")));
    assert_eq!((c1.total_quantity, c1.issued_quantity, c1.remaining_quantity), (Some(100), 1, Some(99)));
    assert_eq!(c1.valid_from, "2025-01-01T00:00:00Z");
    assert!(c1.is_available);
    assert_eq!(c1.discount_for, "5000.00");
    let c2 = app.call::<Coupon>(None, coupon::Variables { id: C2.into() }).await.ok().coupon.expect("쿠폰 2");
    assert_eq!(
        (c2.discount_type, c2.max_discount_amount.as_deref(), c2.discount_for.as_str()),
        (coupon::DiscountType::PERCENTAGE, Some("3000.00"), "3000.00")
    );
    let c3 = app.call::<Coupon>(None, coupon::Variables { id: C3.into() }).await.ok().coupon.expect("쿠폰 3");
    assert_eq!((c3.total_quantity, c3.remaining_quantity), (None, None));
    let c4 = app.call::<Coupon>(None, coupon::Variables { id: C4.into() }).await.ok().coupon.expect("쿠폰 4");
    assert!(!c4.is_available);
    let c5 = app.call::<Coupon>(None, coupon::Variables { id: C5.into() }).await.ok().coupon.expect("쿠폰 5");
    assert_eq!((c5.remaining_quantity, c5.is_available), (Some(0), false));
    assert!(app.call::<Coupon>(None, coupon::Variables { id: Uuid::new_v4().to_string() }).await.ok().coupon.is_none());

    let all = app.call::<Coupons>(None, coupons::Variables { first: Some(10), after: None, available_only: false }).await.ok();
    let ids: Vec<String> = all.coupons.edges.iter().map(|e| e.node.id.clone()).collect();
    assert_eq!(ids, vec![C5, C4, C3, C2, C1], "최신순");
    let avail = app.call::<Coupons>(None, coupons::Variables { first: None, after: None, available_only: true }).await.ok();
    let ids: Vec<String> = avail.coupons.edges.iter().map(|e| e.node.id.clone()).collect();
    assert_eq!(ids, vec![C3, C2, C1]);

    let me = app.call::<Me>(Some(&tok(SEOYEON, Role::User)), me::Variables { unused_only: false }).await.ok().me;
    assert_eq!((me.name.as_str(), me.email.as_str()), ("이서연", "seoyeon@example.com"));
    let mut held: Vec<(String, bool)> = me.coupons.iter().map(|uc| (uc.coupon.id.clone(), uc.is_used)).collect();
    held.sort();
    assert_eq!(held, vec![(C2.to_owned(), true), (C5.to_owned(), false)]);
    let jihoon = app.call::<Me>(Some(&tok(JIHOON, Role::User)), me::Variables { unused_only: false }).await.ok().me;
    assert!(jihoon.coupons.is_empty());
}
e2e_on_all_backends!(demo_data_reads_back_through_the_api);

async fn the_authorisation_table_holds_row_by_row(app: TestApp) {
    seeded(&app).await;
    let user = tok(JIHOON, Role::User);
    let admin = tok(MINSU, Role::Admin);
    let (u, a) = (Some(user.as_str()), Some(admin.as_str()));

    // coupon, coupons: 누구나
    for t in [None, u, a] {
        assert!(app.call::<Coupon>(t, coupon::Variables { id: C1.into() }).await.ok().coupon.is_some());
        app.call::<Coupons>(t, coupons::Variables { first: None, after: None, available_only: false }).await.ok();
    }
    // me, userCoupons(본인)
    assert_eq!(app.call::<Me>(None, me::Variables { unused_only: false }).await.code(), "UNAUTHENTICATED");
    app.call::<Me>(u, me::Variables { unused_only: false }).await.ok();
    app.call::<Me>(a, me::Variables { unused_only: false }).await.ok();
    assert_eq!(
        app.call::<UserCoupons>(None, user_coupons::Variables { user_id: None, unused_only: false }).await.code(),
        "UNAUTHENTICATED"
    );
    app.call::<UserCoupons>(u, user_coupons::Variables { user_id: None, unused_only: false }).await.ok();
    // 남의 것: USER는 FORBIDDEN, ADMIN은 가능
    let other = Some(SEOYEON.to_owned());
    assert_eq!(
        app.call::<UserCoupons>(None, user_coupons::Variables { user_id: other.clone(), unused_only: false }).await.code(),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        app.call::<UserCoupons>(u, user_coupons::Variables { user_id: other.clone(), unused_only: false }).await.code(),
        "FORBIDDEN"
    );
    assert_eq!(
        app.call::<UserCoupons>(a, user_coupons::Variables { user_id: other.clone(), unused_only: false }).await.ok().user_coupons.len(),
        2
    );
    assert_eq!(app.call::<User>(None, user::Variables { id: SEOYEON.into() }).await.code(), "UNAUTHENTICATED");
    assert_eq!(app.call::<User>(u, user::Variables { id: SEOYEON.into() }).await.code(), "FORBIDDEN");
    assert_eq!(app.call::<User>(a, user::Variables { id: SEOYEON.into() }).await.ok().user.map(|x| x.name), Some("이서연".into()));
    let ids = vec![SEOYEON.to_owned(), Uuid::new_v4().to_string(), MINSU.to_owned()];
    assert_eq!(app.call::<UsersWithCoupons>(None, users_with_coupons::Variables { ids: ids.clone() }).await.code(), "UNAUTHENTICATED");
    assert_eq!(app.call::<UsersWithCoupons>(u, users_with_coupons::Variables { ids: ids.clone() }).await.code(), "FORBIDDEN");
    let users = app.call::<UsersWithCoupons>(a, users_with_coupons::Variables { ids }).await.ok().users;
    let names: Vec<Option<String>> = users.into_iter().map(|x| x.map(|x| x.name)).collect();
    assert_eq!(names, vec![Some("이서연".into()), None, Some("김민수".into())], "ids 순서대로, 없는 것은 null");

    // issueCoupon
    assert_eq!(issue_as(&app, None, C3, None).await.code(), "UNAUTHENTICATED");
    let mine = issue_as(&app, u, C3, None).await.ok().issue_coupon;
    assert_eq!(mine.user_id, JIHOON);
    assert_eq!(issue_as(&app, u, C3, Some(SEOYEON)).await.code(), "FORBIDDEN");
    let for_her = issue_as(&app, a, C3, Some(SEOYEON)).await.ok().issue_coupon;
    assert_eq!(for_her.user_id, SEOYEON);

    // useCoupon / cancelCoupon: 본인 것은 가능, 남의 것은 존재를 숨긴다, 관리자는 가능
    assert_eq!(use_as(&app, None, &mine.id).await.code(), "UNAUTHENTICATED");
    assert_eq!(use_as(&app, u, &for_her.id).await.code(), "USER_COUPON_NOT_FOUND");
    assert_eq!(use_as(&app, u, &Uuid::new_v4().to_string()).await.code(), "USER_COUPON_NOT_FOUND");
    assert!(use_as(&app, u, &mine.id).await.ok().use_coupon.is_used);
    assert_eq!(cancel_as(&app, None, &mine.id).await.code(), "UNAUTHENTICATED");
    assert!(!cancel_as(&app, u, &mine.id).await.ok().cancel_coupon.is_used);
    assert!(use_as(&app, a, &for_her.id).await.ok().use_coupon.is_used);
    assert_eq!(cancel_as(&app, u, &for_her.id).await.code(), "USER_COUPON_NOT_FOUND");
    assert!(!cancel_as(&app, a, &for_her.id).await.ok().cancel_coupon.is_used);

    // createCoupon: 관리자만
    let input =
        || create_coupon::Variables { input: coupon_input("관리자 쿠폰", "2025-01-01T00:00:00Z", "2099-01-01T00:00:00Z", Some(5)) };
    assert_eq!(app.call::<CreateCoupon>(None, input()).await.code(), "UNAUTHENTICATED");
    assert_eq!(app.call::<CreateCoupon>(u, input()).await.code(), "FORBIDDEN");
    assert_eq!(app.call::<CreateCoupon>(a, input()).await.ok().create_coupon.remaining_quantity, Some(5));
}
e2e_on_all_backends!(the_authorisation_table_holds_row_by_row);

async fn bad_tokens_fail_the_operation_and_unknown_users_are_not_found(app: TestApp) {
    seeded(&app).await;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    let far = chrono::Utc::now().timestamp() + 600;
    let claims = format!(r#"{{"sub":"{MINSU}","role":"USER","exp":{far}}}"#);
    let none = format!("{}.{}.", B64.encode(r#"{"alg":"none","typ":"JWT"}"#), B64.encode(&claims));
    let wrong_secret = couponql::auth::JwtKeys::new("another-secret")
        .sign(
            couponql::domain::Viewer { user_id: Uuid::parse_str(MINSU).expect("uuid"), role: Role::User },
            std::time::Duration::from_secs(60),
        )
        .expect("서명");
    for bad in ["garbage", none.as_str(), wrong_secret.as_str()] {
        // 익명에게 열린 연산이라도 잘못된 토큰이면 실패한다.
        let ans = app.call::<Coupon>(Some(bad), coupon::Variables { id: C1.into() }).await;
        assert_eq!(ans.code(), "UNAUTHENTICATED", "{bad}");
        assert_eq!(ans.message(), "인증이 필요합니다");
    }
    let ghost = tok(&Uuid::new_v4().to_string(), Role::User);
    assert_eq!(app.call::<Me>(Some(&ghost), me::Variables { unused_only: false }).await.code(), "USER_NOT_FOUND");
    assert_eq!(
        app.call::<IssueCoupon>(Some(&ghost), issue_coupon::Variables { coupon_id: C3.into(), user_id: None }).await.code(),
        "USER_NOT_FOUND"
    );
}
e2e_on_all_backends!(bad_tokens_fail_the_operation_and_unknown_users_are_not_found);

async fn every_rule_error_code_is_reachable_with_its_korean_message(app: TestApp) {
    seeded(&app).await;
    let jihoon = tok(JIHOON, Role::User);
    let minsu = tok(MINSU, Role::User);
    let admin = tok(MINSU, Role::Admin);
    let future = app
        .call::<CreateCoupon>(
            Some(&admin),
            create_coupon::Variables { input: coupon_input("미래 쿠폰", "2098-01-01T00:00:00Z", "2099-01-01T00:00:00Z", None) },
        )
        .await
        .ok()
        .create_coupon;

    for (ans, code, msg) in [
        (issue_as(&app, Some(&jihoon), &Uuid::new_v4().to_string(), None).await, "COUPON_NOT_FOUND", "쿠폰을 찾을 수 없습니다"),
        (issue_as(&app, Some(&jihoon), &future.id, None).await, "COUPON_NOT_STARTED", "쿠폰 사용 기간이 아닙니다"),
        (issue_as(&app, Some(&jihoon), C4, None).await, "COUPON_EXPIRED", "만료된 쿠폰입니다"),
        (issue_as(&app, Some(&minsu), C1, None).await, "COUPON_ALREADY_ISSUED", "이미 발급받은 쿠폰입니다"),
        (issue_as(&app, Some(&jihoon), C5, None).await, "COUPON_SOLD_OUT", "쿠폰이 모두 소진되었습니다"),
    ] {
        assert_eq!((ans.code(), ans.message()), (code.to_owned(), msg.to_owned()));
    }

    let mine = issue_as(&app, Some(&jihoon), C1, None).await.ok().issue_coupon; // 최소 주문 30000
    let ans = app
        .call::<UseCoupon>(
            Some(&jihoon),
            use_coupon::Variables { user_coupon_id: mine.id.clone(), order_amount: Some("29999.99".to_owned()) },
        )
        .await;
    assert_eq!((ans.code(), ans.message()), ("MIN_PURCHASE_NOT_MET".to_owned(), "최소 주문 금액을 충족하지 않습니다".to_owned()));
    let ans = app.call::<CancelCoupon>(Some(&jihoon), cancel_coupon::Variables { user_coupon_id: mine.id.clone() }).await;
    assert_eq!((ans.code(), ans.message()), ("COUPON_NOT_USED".to_owned(), "사용되지 않은 쿠폰입니다".to_owned()));
    assert!(
        app.call::<UseCoupon>(
            Some(&jihoon),
            use_coupon::Variables { user_coupon_id: mine.id.clone(), order_amount: Some("30000".to_owned()) }
        )
        .await
        .ok()
        .use_coupon
        .used_at
        .is_some()
    );
    let ans = app
        .call::<UseCoupon>(Some(&jihoon), use_coupon::Variables { user_coupon_id: mine.id.clone(), order_amount: None.map(str::to_owned) })
        .await;
    assert_eq!((ans.code(), ans.message()), ("COUPON_ALREADY_USED".to_owned(), "이미 사용된 쿠폰입니다".to_owned()));
    let ans = app.call::<UserCoupons>(Some(&jihoon), user_coupons::Variables { user_id: Some(MINSU.into()), unused_only: false }).await;
    assert_eq!((ans.code(), ans.message()), ("FORBIDDEN".to_owned(), "권한이 없습니다".to_owned()));
}
e2e_on_all_backends!(every_rule_error_code_is_reachable_with_its_korean_message);

async fn bad_input_is_refused_naming_the_field_and_changes_nothing(app: TestApp) {
    seeded(&app).await;
    let admin = tok(MINSU, Role::Admin);
    let jihoon = tok(JIHOON, Role::User);
    let ans = app.call::<Coupon>(None, coupon::Variables { id: "not-a-uuid".into() }).await;
    assert_eq!((ans.code(), ans.field()), ("BAD_USER_INPUT".to_owned(), Some("id".to_owned())));
    let ans = app.call::<IssueCoupon>(Some(&jihoon), issue_coupon::Variables { coupon_id: "123".into(), user_id: None }).await;
    assert_eq!((ans.code(), ans.field()), ("BAD_USER_INPUT".to_owned(), Some("couponId".to_owned())));
    for amount in ["-1", "1e5", "abc", " 10"] {
        let ans = app.call::<DiscountFor>(None, discount_for::Variables { id: C1.into(), order_amount: amount.into() }).await;
        assert_eq!((ans.code(), ans.field()), ("BAD_USER_INPUT".to_owned(), Some("orderAmount".to_owned())), "{amount}");
    }
    let ok = app.call::<DiscountFor>(None, discount_for::Variables { id: C2.into(), order_amount: "12345.67".into() }).await.ok();
    assert_eq!(ok.coupon.map(|c| c.discount_for), Some("1234.56".into()));

    let cases: Vec<(create_coupon::CreateCouponInput, &str)> = vec![
        (
            create_coupon::CreateCouponInput {
                name: String::new(),
                ..coupon_input("x", "2025-01-01T00:00:00Z", "2099-01-01T00:00:00Z", None)
            },
            "name",
        ),
        (
            create_coupon::CreateCouponInput {
                discount_value: "0".into(),
                ..coupon_input("x", "2025-01-01T00:00:00Z", "2099-01-01T00:00:00Z", None)
            },
            "discountValue",
        ),
        (
            create_coupon::CreateCouponInput {
                discount_type: create_coupon::DiscountType::PERCENTAGE,
                discount_value: "101".into(),
                ..coupon_input("x", "2025-01-01T00:00:00Z", "2099-01-01T00:00:00Z", None)
            },
            "discountValue",
        ),
        (
            create_coupon::CreateCouponInput {
                max_discount_amount: Some("10".into()),
                ..coupon_input("x", "2025-01-01T00:00:00Z", "2099-01-01T00:00:00Z", None)
            },
            "maxDiscountAmount",
        ),
        (
            create_coupon::CreateCouponInput {
                min_purchase_amount: Some("100000000".into()),
                ..coupon_input("x", "2025-01-01T00:00:00Z", "2099-01-01T00:00:00Z", None)
            },
            "minPurchaseAmount",
        ),
        (coupon_input("x", "2025-01-01T00:00:00Z", "2099-01-01T00:00:00Z", Some(0)), "totalQuantity"),
        (coupon_input("x", "2099-01-01T00:00:00Z", "2025-01-01T00:00:00Z", None), "validUntil"),
        (coupon_input("x", "tomorrow", "2099-01-01T00:00:00Z", None), "validFrom"),
    ];
    for (input, field) in cases {
        let ans = app.call::<CreateCoupon>(Some(&admin), create_coupon::Variables { input }).await;
        assert_eq!((ans.code(), ans.field()), ("BAD_USER_INPUT".to_owned(), Some(field.to_owned())));
    }
    let listed = app.call::<Coupons>(None, coupons::Variables { first: Some(100), after: None, available_only: false }).await.ok();
    assert_eq!(listed.coupons.edges.len(), 5, "거부된 입력은 아무것도 만들지 않는다");
    for first in [0, 101] {
        let ans = app.call::<Coupons>(None, coupons::Variables { first: Some(first), after: None, available_only: false }).await;
        assert_eq!((ans.code(), ans.field()), ("BAD_USER_INPUT".to_owned(), Some("first".to_owned())));
    }
    // 이모지 이름은 그대로 저장되고 그대로 돌아온다.
    let name = "🎁 감사 쿠폰 <script>&amp;";
    let made = app
        .call::<CreateCoupon>(
            Some(&admin),
            create_coupon::Variables { input: coupon_input(name, "2025-01-01T09:00:00+09:00", "2099-01-01T00:00:00Z", None) },
        )
        .await
        .ok()
        .create_coupon;
    assert_eq!((made.name.as_str(), made.valid_from.as_str()), (name, "2025-01-01T00:00:00Z"));
}
e2e_on_all_backends!(bad_input_is_refused_naming_the_field_and_changes_nothing);

async fn paging_through_45_coupons_is_complete_and_stable_under_inserts(app: TestApp) {
    let admin = tok(MINSU, Role::Admin);
    let mut made = Vec::new();
    for i in 0..45 {
        let input = coupon_input(&format!("쿠폰 {i}"), "2025-01-01T00:00:00Z", "2099-01-01T00:00:00Z", Some(10));
        made.push(app.call::<CreateCoupon>(Some(&admin), create_coupon::Variables { input }).await.ok().create_coupon.id);
    }
    made.reverse();
    let mut seen = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = app
            .call::<Coupons>(None, coupons::Variables { first: Some(20), after: after.clone(), available_only: false })
            .await
            .ok()
            .coupons;
        pages += 1;
        seen.extend(page.edges.iter().map(|e| e.node.id.clone()));
        if pages == 1 {
            // 첫 페이지를 받은 뒤 새 쿠폰이 생겨도 나머지 페이지는 흔들리지 않는다.
            let input = coupon_input("끼어든 쿠폰", "2025-01-01T00:00:00Z", "2099-01-01T00:00:00Z", None);
            app.call::<CreateCoupon>(Some(&admin), create_coupon::Variables { input }).await.ok();
        }
        if !page.page_info.has_next_page {
            break;
        }
        after = page.page_info.end_cursor;
        assert!(after.is_some());
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, made, "빠짐도 중복도 없이 최신순");
}
e2e_on_all_backends!(paging_through_45_coupons_is_complete_and_stable_under_inserts);
