//! 발행 일정 (CONTRACT 11절 "Release waves"): 풀린 수량은 시계로 계산되고, 웨이브가 열리는 순간 몰린 요청은 그 웨이브의
//! 수량(과 넘어온 수량)만큼만 받는다. 이번 웨이브가 다 나가면 다음 오픈 시각을 실은 COUPON_WAVE_SOLD_OUT.
use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use couponql::domain::{self, NewCouponInput, ReleaseWaveInput, Role, Viewer};
use couponql::error::AppError;
use couponql::service::coupons;
use couponql::service::issuance::{IssueMode, Issuer};
use couponql::service::stock::StockHub;
use futures::StreamExt;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::concurrency::{all_at_once, outcome, tally};
use crate::helpers::{TestApp, TestDb, assert_invariant, new_user, new_users, token};
use crate::{e2e_on_all_backends, on_all_backends, on_locking_backends_both_modes};

fn admin() -> Viewer {
    Viewer { user_id: Uuid::new_v4(), role: Role::Admin }
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// 지금부터 `offsets`(밀리초) 뒤마다 `quantity`장씩 푸는 쿠폰. 유효기간은 한 시간 전부터.
async fn wave_coupon(db: &sea_orm::DatabaseConnection, waves: &[(i64, i32)]) -> (domain::Coupon, Vec<DateTime<Utc>>) {
    let now = domain::now();
    let ats: Vec<DateTime<Utc>> = waves.iter().map(|(ms, _)| now + chrono::Duration::milliseconds(*ms)).collect();
    let input = NewCouponInput {
        name: "웨이브".into(),
        total_quantity: Some(waves.iter().map(|(_, q)| q).sum()),
        valid_from: rfc(now - chrono::Duration::hours(1)),
        valid_until: rfc(now + chrono::Duration::days(1)),
        waves: Some(ats.iter().zip(waves).map(|(at, (_, q))| ReleaseWaveInput { at: rfc(*at), quantity: *q }).collect()),
        ..crate::helpers::coupon_input()
    };
    (coupons::create(db, Some(&admin()), input).await.expect("웨이브 쿠폰"), ats)
}

async fn sleep_until(t: DateTime<Utc>) {
    if let Ok(d) = (t - Utc::now()).to_std() {
        tokio::time::sleep(d).await;
    }
}

/// 웨이브 셋 (지난 것 10, 곧 20, 한 시간 뒤 30). 첫 웨이브에서 5장만 나간 뒤 둘째가 열리는 순간 1,000명이 몰리면 정확히
/// 20 + 넘어온 5 = 25장. 셋째 웨이브의 것은 한 장도 나가지 않고, 나머지는 셋째의 시각을 실은 WAVE_SOLD_OUT.
async fn a_crowd_at_a_wave_opening_gets_exactly_that_wave_and_the_rollover(db: TestDb, mode: IssueMode) {
    let c = &db.conn;
    let (coupon, ats) = wave_coupon(c, &[(-60_000, 10), (4_000, 20), (3_600_000, 30)]).await;
    let users: Vec<Uuid> = new_users(c, 1005).await.into_iter().map(|u| u.id).collect();
    let issuer = Issuer::new(c.clone(), mode);
    for u in &users[..5] {
        issuer.issue(*u, coupon.id).await.expect("첫 웨이브");
    }
    sleep_until(ats[1]).await;
    let rest = &users[5..];
    let answers: Vec<Result<(), AppError>> = {
        let results = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        all_at_once(rest.len(), |i| {
            let (issuer, user, coupon, results) = (issuer.clone(), rest[i], coupon.id, results.clone());
            async move {
                let r = issuer.issue(user, coupon).await.map(|_| ());
                let code = outcome(r.clone());
                results.lock().expect("결과").push(r);
                vec![code]
            }
        })
        .await;
        results.lock().expect("결과").clone()
    };
    let got = tally(answers.iter().map(|r| outcome(r.clone())));
    assert_eq!(got, BTreeMap::from([("COUPON_WAVE_SOLD_OUT", 975), ("OK", 25)]), "{got:?}");
    for r in &answers {
        if let Err(AppError::CouponWaveSoldOut { next_release_at }) = r {
            assert_eq!(*next_release_at, ats[2], "다음 오픈은 셋째 웨이브");
        }
    }
    assert_eq!(assert_invariant(c, coupon.id).await, 30);
}
on_locking_backends_both_modes!(a_crowd_at_a_wave_opening_gets_exactly_that_wave_and_the_rollover);

/// 한 백엔드씩 순서대로: 풀린 수량·다음 오픈, 웨이브 사이의 isAvailable·목록·매진 여부, 마지막 웨이브 뒤의 SOLD_OUT,
/// 한도가 WAVE_SOLD_OUT보다 먼저.
async fn the_schedule_follows_the_clock_and_sold_out_is_final_only_after_the_last_wave(db: TestDb) {
    let c = &db.conn;
    let (coupon, ats) = wave_coupon(c, &[(-60_000, 1), (1_500, 1)]).await;
    let now = domain::now();
    assert_eq!((coupon.released_quantity(now), coupon.next_release_at(now)), (Some(1), Some(ats[1])));
    let issuer = Issuer::new(c.clone(), IssueMode::PerRequest);
    let (a, b, d) = (new_user(c).await, new_user(c).await, new_user(c).await);
    issuer.issue(a.id, coupon.id).await.expect("첫 웨이브");
    match issuer.issue(b.id, coupon.id).await {
        Err(AppError::CouponWaveSoldOut { next_release_at }) => assert_eq!(next_release_at, ats[1]),
        other => panic!("WAVE_SOLD_OUT이어야 함: {other:?}"),
    }
    // 한도까지 가진 사람에게는 ALREADY_ISSUED가 먼저.
    assert_eq!(outcome(issuer.issue(a.id, coupon.id).await), "COUPON_ALREADY_ISSUED");
    let read = coupons::get(c, coupon.id).await.expect("조회").expect("쿠폰");
    assert!(!read.is_available(domain::now()), "웨이브 사이에 풀린 재고가 다 나갔으면 발급 가능이 아니다");
    assert!(!read.is_sold_out(), "다음 웨이브가 남았으면 매진이 아니다");
    let listed = coupons::list(c, None, true, false, Some(100), None).await.expect("목록");
    assert!(listed.items.iter().all(|x| x.id != coupon.id), "availableOnly 목록에서 빠져야 함");
    sleep_until(ats[1]).await;
    let listed = coupons::list(c, None, true, false, Some(100), None).await.expect("목록");
    assert!(listed.items.iter().any(|x| x.id == coupon.id), "둘째 웨이브가 열리면 목록에 나온다");
    issuer.issue(b.id, coupon.id).await.expect("둘째 웨이브");
    assert_eq!(outcome(issuer.issue(d.id, coupon.id).await), "COUPON_SOLD_OUT");
    let read = coupons::get(c, coupon.id).await.expect("조회").expect("쿠폰");
    let now = domain::now();
    assert_eq!((read.released_quantity(now), read.next_release_at(now), read.is_sold_out()), (Some(2), None, true));
    assert_eq!(assert_invariant(c, coupon.id).await, 2);
}
on_all_backends!(the_schedule_follows_the_clock_and_sold_out_is_final_only_after_the_last_wave);

/// 웨이브가 열리면 요청 없이도 1초 안에 재고 구독자에게 새 재고가 간다.
async fn a_wave_opening_reaches_stock_subscribers_within_a_second(db: TestDb) {
    let (coupon, ats) = wave_coupon(&db.conn, &[(-60_000, 3), (1_500, 4)]).await;
    let hub = StockHub::start(db.conn.clone());
    let mut stream = Box::pin(hub.watch(coupon.id).await.expect("지켜보기").into_stream());
    let first = stream.next().await.expect("첫 메시지");
    assert_eq!((first.released_quantity, first.next_release_at), (Some(3), Some(ats[1])));
    let opened = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.expect("웨이브가 와야 함").expect("메시지");
    let late = Utc::now() - ats[1];
    assert_eq!((opened.released_quantity, opened.next_release_at, opened.sold_out()), (Some(7), None, false));
    assert!(late < chrono::Duration::seconds(1), "웨이브 오픈이 {late}만에 왔다");
    println!("wave opening reached the subscriber {} ms after its at", late.num_milliseconds());
}
on_all_backends!(a_wave_opening_reaches_stock_subscribers_within_a_second);

async fn gql(app: &TestApp, token: &str, query: &str) -> Value {
    app.raw(Some(token), json!({ "query": query }).to_string()).await.1
}

fn field_of(v: &Value) -> (&str, &str) {
    (v["errors"][0]["extensions"]["code"].as_str().unwrap_or("-"), v["errors"][0]["extensions"]["field"].as_str().unwrap_or("-"))
}

/// GraphQL: 만들기의 검사(합, 기간, 순서, 개수), 필드, 수정의 규칙(열린 웨이브는 그대로, 나머지는 미래, 총수량·기간만
/// 바꿔도 다시 맞춰 봄, null·[]은 일정을 없앰), WAVE_SOLD_OUT의 `extensions.nextReleaseAt`.
async fn waves_are_validated_and_shown_over_graphql(app: TestApp) {
    let admin = token(Uuid::new_v4(), Role::Admin);
    let now = Utc::now();
    let at = |mins: i64| rfc(now + chrono::Duration::minutes(mins));
    let from = at(-60);
    let create = |total: i32, waves: &str| {
        format!(
            r#"mutation {{ createCoupon(input: {{ name: "웨이브", discountType: FIXED, discountValue: "1000", totalQuantity: {total},
                validFrom: "{from}", validUntil: "2099-01-01T00:00:00Z", waves: {waves} }})
                {{ id totalQuantity releasedQuantity nextReleaseAt isAvailable waves {{ at quantity }} }} }}"#
        )
    };
    let two = format!(r#"[{{ at: "{}", quantity: 1 }}, {{ at: "{}", quantity: 2 }}]"#, at(-30), at(30));
    for (total, waves) in [
        (4, two.clone()),
        (3, format!(r#"[{{ at: "{}", quantity: 1 }}, {{ at: "{}", quantity: 2 }}]"#, at(30), at(-30))),
        (3, format!(r#"[{{ at: "{}", quantity: 3 }}]"#, at(-120))),
        (3, format!(r#"[{{ at: "{}", quantity: 0 }}, {{ at: "{}", quantity: 3 }}]"#, at(-30), at(30))),
        (51, format!("[{}]", (0..51).map(|i| format!(r#"{{ at: "{}", quantity: 1 }}"#, at(i + 1))).collect::<Vec<_>>().join(","))),
        (3, r#"[{ at: "tomorrow", quantity: 3 }]"#.to_owned()),
    ] {
        let v = gql(&app, &admin, &create(total, &waves)).await;
        assert_eq!(field_of(&v), ("BAD_USER_INPUT", "waves"), "{waves}: {v}");
    }
    let v = gql(&app, &admin, &create(3, &two)).await;
    let made = &v["data"]["createCoupon"];
    assert_eq!((made["releasedQuantity"].as_i64(), made["nextReleaseAt"].as_str()), (Some(1), Some(at(30).as_str())), "{v}");
    assert_eq!(made["waves"].as_array().map(Vec::len), Some(2), "{v}");
    let id = made["id"].as_str().expect("id").to_owned();
    let plain = gql(&app, &admin, &create(3, "[]")).await;
    let p = &plain["data"]["createCoupon"];
    assert_eq!(
        (p["releasedQuantity"].as_i64(), p["nextReleaseAt"].is_null(), p["waves"].as_array().map(Vec::len)),
        (Some(3), true, Some(0))
    );

    // 발급: 첫 웨이브 1장, 그다음은 nextReleaseAt을 실은 WAVE_SOLD_OUT.
    let issue = format!(r#"mutation {{ issueCoupon(couponId: "{id}") {{ id }} }}"#);
    let first = gql(&app, &token(new_user(&app.db.conn).await.id, Role::User), &issue).await;
    assert!(first["data"]["issueCoupon"]["id"].is_string(), "{first}");
    let second = gql(&app, &token(new_user(&app.db.conn).await.id, Role::User), &issue).await;
    assert_eq!(second["errors"][0]["extensions"]["code"], "COUPON_WAVE_SOLD_OUT", "{second}");
    assert_eq!(second["errors"][0]["extensions"]["nextReleaseAt"], at(30), "{second}");
    assert_eq!(second["errors"][0]["message"], "이번 수량이 모두 소진되었습니다. 다음 오픈을 기다려 주세요");

    let update = |input: &str| {
        format!(
            r#"mutation {{ updateCoupon(id: "{id}", input: {{ {input} }}) {{ totalQuantity releasedQuantity waves {{ at quantity }} }} }}"#
        )
    };
    for bad in [
        // 열린 웨이브를 바꿈 / 빠뜨림
        format!(r#"waves: [{{ at: "{}", quantity: 2 }}, {{ at: "{}", quantity: 1 }}]"#, at(-30), at(30)),
        format!(r#"waves: [{{ at: "{}", quantity: 3 }}]"#, at(30)),
        // 새 웨이브가 과거
        format!(r#"waves: [{{ at: "{}", quantity: 1 }}, {{ at: "{}", quantity: 2 }}]"#, at(-30), at(-10)),
        // 총수량만 바꿔 합이 어긋남, 기간만 바꿔 웨이브가 밖으로
        "totalQuantity: 5".to_owned(),
        format!(r#"validUntil: "{}""#, at(20)),
    ] {
        let v = gql(&app, &admin, &update(&bad)).await;
        assert_eq!(field_of(&v), ("BAD_USER_INPUT", "waves"), "{bad}: {v}");
    }
    let v = gql(
        &app,
        &admin,
        &update(&format!(r#"totalQuantity: 6, waves: [{{ at: "{}", quantity: 1 }}, {{ at: "{}", quantity: 5 }}]"#, at(-30), at(40))),
    )
    .await;
    assert_eq!(v["data"]["updateCoupon"]["totalQuantity"], 6, "{v}");
    let v = gql(&app, &admin, &update("waves: null")).await;
    assert_eq!(
        (v["data"]["updateCoupon"]["releasedQuantity"].as_i64(), v["data"]["updateCoupon"]["waves"].as_array().map(Vec::len)),
        (Some(6), Some(0)),
        "{v}"
    );
    let v = gql(&app, &admin, &update("restricted: null")).await;
    assert_eq!(field_of(&v), ("BAD_USER_INPUT", "restricted"), "{v}");
}
e2e_on_all_backends!(waves_are_validated_and_shown_over_graphql);
