//! 상점 운영(CONTRACT 8절): 수정·중지·보관, 코드 생성·추가·사용, 추측 방어, 집계, 목록, CSV — 규칙 순서와 경쟁.
use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use couponql::domain::{CouponChangeInput, CouponStatus, Patch, Role, Viewer};
use couponql::error::AppError;
use couponql::service::issuance::{IssueMode, Issuer};
use couponql::service::{codes, coupons};
use couponql::{domain, repo};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::client::first_code;
use crate::concurrency::{all_at_once, outcome, tally};
use crate::helpers::{TestApp, TestDb, assert_invariant, new_coupon, new_coupon_with, new_user, new_users, token};
use crate::{e2e_on_all_backends, on_all_backends, on_locking_backends_both_modes};

/// 서비스를 직접 부르는 시험들의 클라이언트 주소.
const HERE: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn admin() -> Viewer {
    Viewer { user_id: Uuid::new_v4(), role: Role::Admin }
}

fn keep() -> CouponChangeInput {
    CouponChangeInput::default()
}

fn field<T: std::fmt::Debug>(r: Result<T, AppError>) -> String {
    match r {
        Err(AppError::BadUserInput { field, .. }) => field,
        other => panic!("BAD_USER_INPUT이어야 함: {other:?}"),
    }
}

async fn events_of(db: &TestDb, coupon: Uuid) -> Vec<String> {
    couponql::service::ledger::stamp_all(&db.conn).await.expect("도장");
    let page = coupons::events(&db.conn, Some(&admin()), Some(coupon), Some(100), None).await.expect("원장");
    page.items.into_iter().map(|e| e.event.kind).collect()
}

async fn update_pause_and_archive_follow_the_rules(db: TestDb) {
    let a = admin();
    let c = &db.conn;
    let coupon = new_coupon(c, Some(5)).await;
    let issuer = Issuer::new(c.clone(), IssueMode::PerRequest);
    let users = new_users(c, 3).await;
    for u in &users {
        issuer.issue(u.id, coupon.id).await.expect("발급");
    }
    // 권한이 먼저, 그다음 형식, 그다음 존재.
    let user = Viewer { user_id: users[0].id, role: Role::User };
    assert_eq!(outcome(coupons::update(c, Some(&user), coupon.id, keep()).await), "FORBIDDEN");
    assert_eq!(outcome(coupons::update(c, None, coupon.id, keep()).await), "UNAUTHENTICATED");
    assert_eq!(outcome(coupons::update(c, Some(&a), Uuid::new_v4(), keep()).await), "COUPON_NOT_FOUND");
    // 발급 수량 아래로는 못 줄이고, 할인 종류에 맞지 않는 필드와 기간 역전은 그 필드의 입력 오류. 아무것도 바뀌지 않는다.
    assert_eq!(
        field(coupons::update(c, Some(&a), coupon.id, CouponChangeInput { total_quantity: Patch::Set(2), ..keep() }).await),
        "totalQuantity"
    );
    assert_eq!(
        field(coupons::update(c, Some(&a), coupon.id, CouponChangeInput { max_discount_amount: Patch::Set("10".into()), ..keep() }).await),
        "maxDiscountAmount"
    );
    assert_eq!(
        field(
            coupons::update(c, Some(&a), coupon.id, CouponChangeInput { valid_until: Patch::Set("2019-01-01T00:00:00Z".into()), ..keep() })
                .await
        ),
        "validUntil"
    );
    assert_eq!(field(coupons::update(c, Some(&a), coupon.id, CouponChangeInput { name: Patch::Clear, ..keep() }).await), "name");
    let unchanged = repo::coupon::find_by_id(c, coupon.id).await.expect("조회").expect("있음");
    assert_eq!(
        unchanged,
        domain::Coupon { issued_quantity: 3, updated_at: unchanged.updated_at, version: unchanged.version, ..coupon.clone() }
    );
    // 있는 필드만 바뀌고 null은 비운다. 발급 수량과 같은 총수량은 된다.
    let change = CouponChangeInput {
        name: Patch::Set("이름 고침 🎉".into()),
        min_purchase_amount: Patch::Clear,
        total_quantity: Patch::Set(3),
        ..keep()
    };
    let next = coupons::update(c, Some(&a), coupon.id, change).await.expect("수정");
    assert_eq!((next.name.as_str(), next.min_purchase_amount, next.total_quantity), ("이름 고침 🎉", None, Some(3)));
    assert_eq!((next.discount_value, next.valid_until), (coupon.discount_value, coupon.valid_until));
    assert_eq!(outcome(issuer.issue(new_user(c).await.id, coupon.id).await), "COUPON_SOLD_OUT");
    // 늘리면 다시 발급된다 (총수량을 기억해 둔 곳이 없다).
    coupons::update(c, Some(&a), coupon.id, CouponChangeInput { total_quantity: Patch::Set(200), ..keep() }).await.expect("늘림");
    issuer.issue(new_user(c).await.id, coupon.id).await.expect("늘린 뒤 발급");

    // 중지: 발급은 COUPON_PAUSED(사용자 존재 다음, 기간보다 먼저), 이미 받은 쿠폰은 쓸 수 있다.
    let paused = coupons::set_status(c, Some(&a), coupon.id, CouponStatus::Paused).await.expect("중지");
    assert!(!paused.is_available(domain::now()));
    assert_eq!(outcome(issuer.issue(new_user(c).await.id, coupon.id).await), "COUPON_PAUSED");
    assert_eq!(outcome(issuer.issue(Uuid::new_v4(), coupon.id).await), "USER_NOT_FOUND");
    assert_eq!(outcome(issuer.issue(users[0].id, coupon.id).await), "COUPON_PAUSED");
    let held = repo::user_coupon::list_by_user(c, users[0].id, false).await.expect("목록");
    couponql::service::user_coupons::use_coupon(c, Some(&user), held[0].0.id, None, None, None).await.expect("중지돼도 사용");
    // 같은 상태로의 변경은 아무것도 남기지 않는다.
    coupons::set_status(c, Some(&a), coupon.id, CouponStatus::Paused).await.expect("다시 중지");
    let resumed = coupons::set_status(c, Some(&a), coupon.id, CouponStatus::Active).await.expect("재개");
    assert_eq!(resumed.status, CouponStatus::Active);
    issuer.issue(new_user(c).await.id, coupon.id).await.expect("재개 뒤 발급");

    // 보관은 최종: 이후 모든 변경은 COUPON_ARCHIVED, 발급은 COUPON_PAUSED, 목록에서는 includeArchived(관리자)일 때만.
    coupons::set_status(c, Some(&a), coupon.id, CouponStatus::Archived).await.expect("보관");
    for to in [CouponStatus::Active, CouponStatus::Paused, CouponStatus::Archived] {
        assert_eq!(outcome(coupons::set_status(c, Some(&a), coupon.id, to).await), "COUPON_ARCHIVED");
    }
    assert_eq!(outcome(coupons::update(c, Some(&a), coupon.id, keep()).await), "COUPON_ARCHIVED");
    assert_eq!(outcome(codes::generate(c, Some(&a), coupon.id, 1, None).await), "COUPON_ARCHIVED");
    assert_eq!(outcome(issuer.issue(new_user(c).await.id, coupon.id).await), "COUPON_PAUSED");
    let listed = |p: couponql::service::page::Page<domain::Coupon>| p.items.iter().any(|x| x.id == coupon.id);
    assert!(!listed(coupons::list(c, None, false, false, Some(100), None).await.expect("목록")));
    assert!(listed(coupons::list(c, Some(&a), false, true, Some(100), None).await.expect("보관 포함")));
    assert_eq!(outcome(coupons::list(c, Some(&user), false, true, Some(100), None).await), "FORBIDDEN");
    // 원장: 생성은 테스트 도우미가 저장소로 했으므로 없고, 나머지는 변경마다 한 줄 (같은 상태로의 변경은 없음).
    let kinds = events_of(&db, coupon.id).await;
    let admin_kinds: Vec<&str> =
        kinds.iter().map(String::as_str).filter(|k| !k.starts_with("COUPON_ISSUED") && *k != "COUPON_USED").collect();
    assert_eq!(admin_kinds, ["COUPON_UPDATED", "COUPON_UPDATED", "COUPON_PAUSED", "COUPON_RESUMED", "COUPON_ARCHIVED"]);
    assert_invariant(c, coupon.id).await;
}
on_all_backends!(update_pause_and_archive_follow_the_rules);

/// 다른 쿠폰의 코드 정리를 위해 지정 코드 이름을 테스트마다 다르게.
fn unique_code(stem: &str) -> String {
    format!("{stem}{}", &Uuid::new_v4().simple().to_string()[..8]).to_uppercase()
}

async fn codes_are_generated_added_and_redeemed_in_the_contract_order(db: TestDb) {
    let a = admin();
    let c = &db.conn;
    let issuer = Issuer::new(c.clone(), IssueMode::Coalesced);
    let coupon = new_coupon(c, Some(100)).await;
    // 생성: 개수와 접두어 검사, 표본 10개, 모두 모양이 맞고 서로 다르다.
    assert_eq!(field(codes::generate(c, Some(&a), coupon.id, 0, None).await), "count");
    assert_eq!(field(codes::generate(c, Some(&a), coupon.id, 100_001, None).await), "count");
    assert_eq!(field(codes::generate(c, Some(&a), coupon.id, 5, Some("TOO-LONG-PREFIX")).await), "prefix");
    assert_eq!(outcome(codes::generate(c, Some(&a), Uuid::new_v4(), 5, None).await), "COUPON_NOT_FOUND");
    let batch = codes::generate(c, Some(&a), coupon.id, 2_500, Some("spring")).await.expect("생성");
    assert_eq!((batch.count, batch.sample.len()), (2_500, 10));
    assert!(batch.sample.iter().all(|s| s.len() == 18 && s.starts_with("SPRING")));
    let all = codes::list(c, Some(&a), coupon.id, None, Some(100), None).await.expect("목록");
    assert!(all.has_next_page);
    // 추가: 모양, 개수, 중복은 그 필드의 입력 오류.
    let chosen = unique_code("WELCOME");
    assert_eq!(field(codes::add(c, Some(&a), coupon.id, "abc", None).await), "code");
    assert_eq!(field(codes::add(c, Some(&a), coupon.id, &chosen, Some(0)).await), "maxRedemptions");
    let added = codes::add(c, Some(&a), coupon.id, &chosen.to_lowercase(), Some(2)).await.expect("추가");
    assert_eq!((added.code.as_str(), added.max_redemptions), (chosen.as_str(), Some(2)));
    assert_eq!(field(codes::add(c, Some(&a), coupon.id, &chosen, None).await), "code");

    let users = new_users(c, 4).await;
    let me = |i: usize| Viewer { user_id: users[i].id, role: Role::User };
    // 생성 코드: 대소문자·공백·하이픈 무시, 두 번째 사용자는 CODE_ALREADY_REDEEMED, 모양이 틀리면 CODE_NOT_FOUND.
    let one = &batch.sample[0];
    let typed = format!("{}-{} ", one[..6].to_lowercase(), &one[6..]);
    let uc = codes::redeem(c, &issuer, Some(&me(0)), HERE, &typed, None).await.expect("코드로 발급");
    assert_eq!((uc.user_id, uc.coupon_id), (users[0].id, coupon.id));
    assert_eq!(outcome(codes::redeem(c, &issuer, Some(&me(1)), HERE, one, None).await), "CODE_ALREADY_REDEEMED");
    assert_eq!(outcome(codes::redeem(c, &issuer, Some(&me(1)), HERE, "no such code!", None).await), "CODE_NOT_FOUND");
    assert_eq!(outcome(codes::redeem(c, &issuer, Some(&me(1)), HERE, "ZZZZZZZZZZZZ", None).await), "CODE_NOT_FOUND");
    assert_eq!(outcome(codes::redeem(c, &issuer, None, HERE, one, None).await), "UNAUTHENTICATED");
    // 지정 코드: 사람마다 한 번(두 번째는 CODE_ALREADY_REDEEMED, 코드 자리는 쓰지 않는다), 모두 합쳐 maxRedemptions까지.
    // 그 코드를 안 쓴 사람이 한도까지 가졌으면 발급 검사의 ALREADY_ISSUED.
    codes::redeem(c, &issuer, Some(&me(1)), HERE, &chosen, None).await.expect("지정 코드");
    assert_eq!(outcome(codes::redeem(c, &issuer, Some(&me(1)), HERE, &chosen, None).await), "CODE_ALREADY_REDEEMED");
    assert_eq!(outcome(codes::redeem(c, &issuer, Some(&me(0)), HERE, &chosen, None).await), "COUPON_ALREADY_ISSUED");
    codes::redeem(c, &issuer, Some(&me(2)), HERE, &chosen, None).await.expect("두 번째 자리");
    assert_eq!(outcome(codes::redeem(c, &issuer, Some(&me(3)), HERE, &chosen, None).await), "CODE_ALREADY_REDEEMED");
    // 중지된 쿠폰의 코드: 코드 검사 다음에 COUPON_PAUSED.
    let other = new_coupon(c, None).await;
    let free = unique_code("FREE");
    codes::add(c, Some(&a), other.id, &free, None).await.expect("무제한 코드");
    coupons::set_status(c, Some(&a), other.id, CouponStatus::Paused).await.expect("중지");
    assert_eq!(outcome(codes::redeem(c, &issuer, Some(&me(3)), HERE, &free, None).await), "COUPON_PAUSED");
    // 기간 밖 쿠폰의 코드: 발급 검사의 기간.
    let later = new_coupon_with(c, None, "2098-01-01T00:00:00Z", "2099-01-01T00:00:00Z").await;
    let soon = unique_code("SOON");
    codes::add(c, Some(&a), later.id, &soon, None).await.expect("코드");
    assert_eq!(outcome(codes::redeem(c, &issuer, Some(&me(3)), HERE, &soon, None).await), "COUPON_NOT_STARTED");

    // 집계: 데이터베이스의 정확한 값.
    let stats = coupons::stats(c, Some(&a), coupon.id).await.expect("집계");
    assert_eq!((stats.holders.issued, stats.holders.used, stats.codes_generated, stats.codes_redeemed), (3, 0, 2_500, 3));
    let redeemed = codes::list(c, Some(&a), coupon.id, Some(true), Some(100), None).await.expect("쓰인 코드");
    let mut got: Vec<(String, i32)> = redeemed.items.iter().map(|x| (x.code.clone(), x.redemptions)).collect();
    got.sort();
    let mut want = vec![(one.clone(), 1), (chosen.clone(), 2)];
    want.sort();
    assert_eq!(got, want);
    assert_invariant(c, coupon.id).await;
}
on_all_backends!(codes_are_generated_added_and_redeemed_in_the_contract_order);

async fn ten_unknown_codes_in_a_minute_block_the_user_and_a_hit_resets_nothing(db: TestDb) {
    let a = admin();
    let c = &db.conn;
    let issuer = Issuer::new(c.clone(), IssueMode::PerRequest);
    let good = unique_code("GOOD");
    codes::add(c, Some(&a), new_coupon(c, None).await.id, &good, None).await.expect("코드");
    let spare = unique_code("SPARE");
    codes::add(c, Some(&a), new_coupon(c, None).await.id, &spare, None).await.expect("코드");
    let (u1, u2) = (new_user(c).await, new_user(c).await);
    let me = Viewer { user_id: u1.id, role: Role::User };
    for i in 0..9 {
        assert_eq!(outcome(codes::redeem(c, &issuer, Some(&me), HERE, &format!("GUESS{i:04}"), None).await), "CODE_NOT_FOUND");
    }
    // 아홉 번 틀린 뒤의 맞는 코드는 통하지만, 셈을 끊지 않는다: 열 번째 틀림에서 막힌다.
    codes::redeem(c, &issuer, Some(&me), HERE, &good, None).await.expect("맞는 코드");
    assert_eq!(outcome(codes::redeem(c, &issuer, Some(&me), HERE, "MISS0000", None).await), "CODE_NOT_FOUND");
    // 막히면 맞는 코드도 막힌다 (무엇이 맞는지 드러내지 않게). 다른 사용자는 상관없다.
    assert_eq!(outcome(codes::redeem(c, &issuer, Some(&me), HERE, &spare, None).await), "TOO_MANY_ATTEMPTS");
    assert_eq!(outcome(codes::redeem(c, &issuer, Some(&me), HERE, "MISS9999", None).await), "TOO_MANY_ATTEMPTS");
    let other = Viewer { user_id: u2.id, role: Role::User };
    codes::redeem(c, &issuer, Some(&other), HERE, &good, None).await.expect("다른 사용자");
    // 1분이 지나면 풀린다: 기록의 시각을 61초 전으로 옮겨 흉내 낸다 (기록은 데이터베이스에 있어 어느 프로세스든 같다).
    use sea_orm::ConnectionTrait;
    let past = chrono::Utc::now() - chrono::Duration::seconds(61);
    let sql = sea_orm::Statement::from_sql_and_values(
        c.get_database_backend(),
        match c.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => "UPDATE code_failures SET failed_at = $1",
            _ => "UPDATE code_failures SET failed_at = ?",
        },
        [past.fixed_offset().into()],
    );
    c.execute_raw(sql).await.expect("시각 옮기기");
    codes::redeem(c, &issuer, Some(&me), HERE, &spare, None).await.expect("1분 뒤에는 풀림");
    // 막힌 두 번은 세지 않았다: 기록은 틀린 열 번뿐.
    assert_eq!(codes::purge_failures(c, domain::now()).await.expect("정리"), 10);
}
on_all_backends!(ten_unknown_codes_in_a_minute_block_the_user_and_a_hit_resets_nothing);

async fn stats_holders_and_events_are_exact_and_paged(db: TestDb) {
    use couponql::domain::OrderId;
    use couponql::service::user_coupons as svc;
    let a = admin();
    let c = &db.conn;
    let issuer = Issuer::new(c.clone(), IssueMode::PerRequest);
    let coupon = new_coupon(c, Some(50)).await;
    let users = new_users(c, 5).await;
    let mut held = Vec::new();
    for u in &users {
        held.push((Viewer { user_id: u.id, role: Role::User }, issuer.issue(u.id, coupon.id).await.expect("발급").id));
    }
    let dec = |s: &str| -> rust_decimal::Decimal { s.parse().expect("decimal") };
    let order = |s: &str| OrderId::parse(s).expect("order");
    // 둘은 사용(금액 있음), 하나는 사용 후 취소, 하나는 보류.
    svc::use_coupon(c, Some(&held[0].0), held[0].1, Some(dec("10000")), Some(&order("O1")), None).await.expect("사용");
    svc::use_coupon(c, Some(&held[1].0), held[1].1, Some(dec("7000.50")), Some(&order("O2")), None).await.expect("사용");
    svc::use_coupon(c, Some(&held[2].0), held[2].1, Some(dec("9000")), Some(&order("O3")), None).await.expect("사용");
    svc::cancel_coupon(c, Some(&held[2].0), held[2].1, Some(&order("O3")), None).await.expect("취소");
    svc::reserve(c, Some(&held[3].0), held[3].1, &order("O4"), dec("8000"), chrono::Duration::seconds(600), None).await.expect("보류");
    let s = coupons::stats(c, Some(&a), coupon.id).await.expect("집계");
    assert_eq!((s.holders.issued, s.holders.used, s.holders.reserved), (5, 2, 1));
    assert_eq!((s.holders.order_amount_total, s.holders.discount_total), (dec("17000.50"), dec("2000.00")));
    assert_eq!(outcome(coupons::stats(c, Some(&held[0].0), coupon.id).await), "FORBIDDEN");

    // 보유자: 최신순으로 2개씩, 빠짐도 겹침도 없이.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let p = coupons::holders(c, Some(&a), coupon.id, Some(2), after.as_deref()).await.expect("보유자");
        seen.extend(p.items.iter().map(|uc| (uc.issued_at, uc.id)));
        after = p.items.last().map(coupons::holder_cursor);
        if !p.has_next_page {
            break;
        }
    }
    assert_eq!(seen.len(), 5);
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "최신순이 아님");
    assert_eq!(outcome(coupons::holders(c, Some(&a), Uuid::new_v4(), None, None).await), "COUPON_NOT_FOUND");
    assert_eq!(field(coupons::holders(c, Some(&a), coupon.id, Some(0), None).await), "first");

    // 원장: 오래된 것부터, sequence가 커서다.
    couponql::service::ledger::stamp_all(c).await.expect("도장");
    let p1 = coupons::events(c, Some(&a), Some(coupon.id), Some(4), None).await.expect("원장");
    let cursor = p1.items.last().map(|e| e.sequence.to_string());
    let p2 = coupons::events(c, Some(&a), Some(coupon.id), Some(100), cursor.as_deref()).await.expect("원장 2");
    let all: Vec<i64> = p1.items.iter().chain(&p2.items).map(|e| e.sequence).collect();
    assert!(all.windows(2).all(|w| w[0] < w[1]));
    // 발급 5 + 사용 3 + 취소 1 + 보류 1.
    assert_eq!(all.len(), 10);
    assert!(p1.has_next_page && !p2.has_next_page);
    assert_eq!(field(coupons::events(c, Some(&a), None, None, Some("not-a-sequence")).await), "after");
}
on_all_backends!(stats_holders_and_events_are_exact_and_paged);

// ---- 경쟁: 실제 트랜잭션을 동시에, 결과는 데이터베이스에서 센다 ----

/// 사용자마다 같은 코드를 동시에 한 번씩.
async fn redeem_race(db: &TestDb, mode: IssueMode, users: &[Uuid], code: &str) -> BTreeMap<&'static str, usize> {
    let issuer = Issuer::new(db.conn.clone(), mode);
    let results = all_at_once(users.len(), |i| {
        let (issuer, conn, user, code) = (issuer.clone(), db.conn.clone(), users[i], code.to_owned());
        async move {
            let me = Viewer { user_id: user, role: Role::User };
            vec![outcome(codes::redeem(&conn, &issuer, Some(&me), HERE, &code, None).await)]
        }
    })
    .await;
    tally(results)
}

async fn two_hundred_users_racing_for_one_generated_code_one_wins(db: TestDb, mode: IssueMode) {
    let coupon = new_coupon(&db.conn, Some(1000)).await;
    let batch = codes::generate(&db.conn, Some(&admin()), coupon.id, 5, None).await.expect("생성");
    let users: Vec<Uuid> = new_users(&db.conn, 200).await.into_iter().map(|u| u.id).collect();
    let got = redeem_race(&db, mode, &users, &batch.sample[0]).await;
    assert_eq!(got, BTreeMap::from([("CODE_ALREADY_REDEEMED", 199), ("OK", 1)]));
    assert_eq!(assert_invariant(&db.conn, coupon.id).await, 1);
    let code = repo::code::find(&db.conn, &batch.sample[0]).await.expect("조회").expect("있음");
    assert_eq!(code.redemptions, 1);
}
on_locking_backends_both_modes!(two_hundred_users_racing_for_one_generated_code_one_wins);

async fn a_hundred_users_racing_for_a_code_limited_to_ten_get_ten(db: TestDb, mode: IssueMode) {
    let coupon = new_coupon(&db.conn, None).await;
    let chosen = unique_code("TEN");
    codes::add(&db.conn, Some(&admin()), coupon.id, &chosen, Some(10)).await.expect("코드");
    let users: Vec<Uuid> = new_users(&db.conn, 100).await.into_iter().map(|u| u.id).collect();
    let got = redeem_race(&db, mode, &users, &chosen).await;
    assert_eq!(got, BTreeMap::from([("CODE_ALREADY_REDEEMED", 90), ("OK", 10)]));
    assert_eq!(assert_invariant(&db.conn, coupon.id).await, 10);
    assert_eq!(repo::code::find(&db.conn, &chosen).await.expect("조회").expect("있음").redemptions, 10);
}
on_locking_backends_both_modes!(a_hundred_users_racing_for_a_code_limited_to_ten_get_ten);

async fn a_thousand_users_redeeming_one_code_for_a_hundred_coupons_get_a_hundred(db: TestDb, mode: IssueMode) {
    let coupon = new_coupon(&db.conn, Some(100)).await;
    let chosen = unique_code("FLASH");
    codes::add(&db.conn, Some(&admin()), coupon.id, &chosen, None).await.expect("코드");
    let users: Vec<Uuid> = new_users(&db.conn, 1000).await.into_iter().map(|u| u.id).collect();
    let got = redeem_race(&db, mode, &users, &chosen).await;
    assert_eq!(got, BTreeMap::from([("COUPON_SOLD_OUT", 900), ("OK", 100)]));
    assert_eq!(assert_invariant(&db.conn, coupon.id).await, 100);
    assert_eq!(repo::code::find(&db.conn, &chosen).await.expect("조회").expect("있음").redemptions, 100);
    // 원장: 발급마다 한 줄, 마지막 한 장을 가져간 트랜잭션이 매진을 정확히 한 번.
    couponql::service::ledger::stamp_all(&db.conn).await.expect("도장");
    let events: Vec<_> =
        repo::ledger::page(&db.conn, Some(coupon.id), None, 10_000).await.expect("원장").into_iter().map(|s| s.event).collect();
    let kinds = tally(events.iter().map(|e| if e.kind == "COUPON_ISSUED" { "COUPON_ISSUED" } else { "OTHER" }));
    assert_eq!(kinds.get("COUPON_ISSUED"), Some(&100));
    assert_eq!(events.iter().filter(|e| e.kind == "COUPON_SOLD_OUT").count(), 1);
    assert_eq!(events.last().map(|e| e.kind.as_str()), Some("COUPON_SOLD_OUT"), "매진은 마지막 발급과 같은 트랜잭션의 끝");
}
on_locking_backends_both_modes!(a_thousand_users_redeeming_one_code_for_a_hundred_coupons_get_a_hundred);

/// 100명이 발급을 다투는 동안 관리자가 총수량을 계속 낮춘다: 어느 순간에도 총수량 ≥ 발급 수량 = 발급 내역 수.
async fn lowering_the_total_while_a_hundred_issue_keeps_the_invariant(db: TestDb, mode: IssueMode) {
    let coupon = new_coupon(&db.conn, Some(100)).await;
    let users: Vec<Uuid> = new_users(&db.conn, 100).await.into_iter().map(|u| u.id).collect();
    let issuer = Issuer::new(db.conn.clone(), mode);
    let (conn, id) = (db.conn.clone(), coupon.id);
    let results = all_at_once(users.len() + 1, |i| {
        let (issuer, conn, users) = (issuer.clone(), conn.clone(), users.clone());
        async move {
            if i == users.len() {
                // 관리자: 60에서 시작해 20까지 5씩 낮춘다. 발급 수량보다 낮추려는 것은 입력 오류로 거절된다.
                let a = admin();
                let mut out = Vec::new();
                for total in (20..=60).rev().step_by(5) {
                    let change = CouponChangeInput { total_quantity: Patch::Set(total), ..keep() };
                    out.push(match coupons::update(&conn, Some(&a), id, change).await {
                        Ok(_) => "UPDATED",
                        Err(e) => e.code(),
                    });
                }
                out
            } else {
                vec![outcome(issuer.issue(users[i], id).await)]
            }
        }
    })
    .await;
    let got = tally(results);
    let after = repo::coupon::find_by_id(&db.conn, id).await.expect("조회").expect("있음");
    let total = after.total_quantity.expect("유한");
    let issued = assert_invariant(&db.conn, id).await;
    assert!(issued <= total);
    // 모든 발급 요청은 성공 또는 매진, 모든 수정은 적용 또는 입력 오류. 다른 답은 없다.
    let ok = got.get("OK").copied().unwrap_or(0);
    assert_eq!(ok as i32, issued);
    assert_eq!(ok + got.get("COUPON_SOLD_OUT").copied().unwrap_or(0), 100, "{got:?}");
    assert_eq!(got.get("UPDATED").copied().unwrap_or(0) + got.get("BAD_USER_INPUT").copied().unwrap_or(0), 9, "{got:?}");
    if issued < total {
        // 매진이 아니면 누구도 매진 답을 받았을 리 없다.
        assert_eq!(got.get("COUPON_SOLD_OUT"), None, "{got:?}");
    }
}
on_locking_backends_both_modes!(lowering_the_total_while_a_hundred_issue_keeps_the_invariant);

/// 중지가 돌아온 뒤에는 어떤 발급도 커밋되지 않는다: 돌아온 순간의 수가 끝까지 그대로다.
async fn after_pause_returns_no_issuance_commits(db: TestDb, mode: IssueMode) {
    let coupon = new_coupon(&db.conn, None).await;
    let users: Vec<Uuid> = new_users(&db.conn, 300).await.into_iter().map(|u| u.id).collect();
    let issuer = Issuer::new(db.conn.clone(), mode);
    let (conn, id) = (db.conn.clone(), coupon.id);
    let results = all_at_once(users.len() + 1, |i| {
        let (issuer, conn, users) = (issuer.clone(), conn.clone(), users.clone());
        async move {
            if i == users.len() {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                coupons::set_status(&conn, Some(&admin()), id, CouponStatus::Paused).await.expect("중지");
                let at_pause = repo::user_coupon::count_for_coupon(&conn, id).await.expect("개수");
                vec![leak_count(at_pause)]
            } else {
                vec![outcome(issuer.issue(users[i], id).await)]
            }
        }
    })
    .await;
    let at_pause: u64 = results.iter().find_map(|r| r.strip_prefix("COUNT=")).and_then(|n| n.parse().ok()).expect("중지 때의 수");
    let got = tally(results.into_iter().filter(|r| !r.starts_with("COUNT=")));
    let issued = assert_invariant(&db.conn, id).await as u64;
    assert_eq!(issued, at_pause, "중지가 돌아온 뒤에 발급이 커밋됨: {got:?}");
    assert_eq!(got.get("OK").copied().unwrap_or(0) as u64, issued);
    assert_eq!(got.get("OK").copied().unwrap_or(0) + got.get("COUPON_PAUSED").copied().unwrap_or(0), 300, "{got:?}");
}
on_locking_backends_both_modes!(after_pause_returns_no_issuance_commits);

/// 결과 목록에 수를 싣는다 (`all_at_once`가 `&'static str`을 모으므로 한 번 새게 둔다: 테스트마다 한 줄).
fn leak_count(n: u64) -> &'static str {
    Box::leak(format!("COUNT={n}").into_boxed_str())
}

// ---- HTTP로: GraphQL 인자(없음과 null), 권한, CSV ----

async fn gql(app: &TestApp, token: Option<&str>, query: &str, variables: Value) -> Value {
    app.raw(token, json!({ "query": query, "variables": variables }).to_string()).await.1
}

async fn the_shop_works_over_graphql_and_csv(app: TestApp) {
    let admin_token = token(Uuid::new_v4(), Role::Admin);
    let user = new_user(&app.db.conn).await;
    let user_token = token(user.id, Role::User);
    let created = gql(
        &app,
        Some(&admin_token),
        r#"mutation { createCoupon(input: { name: "봄 세일", discountType: PERCENTAGE, discountValue: "10", minPurchaseAmount: "10000",
            maxDiscountAmount: "3000", totalQuantity: 10, validFrom: "2020-01-01T00:00:00Z", validUntil: "2099-01-01T00:00:00Z" }) { id status } }"#,
        json!({}),
    )
    .await;
    let id = created["data"]["createCoupon"]["id"].as_str().expect("id").to_owned();
    assert_eq!(created["data"]["createCoupon"]["status"], "ACTIVE");
    // 권한이 인자 해석보다 먼저: 사용자는 잘못된 id에도 FORBIDDEN, 익명은 UNAUTHENTICATED.
    let update = "mutation($id: ID!, $input: UpdateCouponInput!) { updateCoupon(id: $id, input: $input) { name minPurchaseAmount maxDiscountAmount totalQuantity } }";
    let v = gql(&app, Some(&user_token), update, json!({ "id": "nope", "input": { "name": "" } })).await;
    assert_eq!(first_code(&v), Some("FORBIDDEN"));
    let v = gql(&app, None, update, json!({ "id": "nope", "input": {} })).await;
    assert_eq!(first_code(&v), Some("UNAUTHENTICATED"));
    // 없는 필드는 그대로, 명시적 null은 비운다.
    let v = gql(&app, Some(&admin_token), update, json!({ "id": id, "input": { "maxDiscountAmount": null, "name": "봄 세일 2" } })).await;
    assert_eq!(
        v["data"]["updateCoupon"],
        json!({ "name": "봄 세일 2", "minPurchaseAmount": "10000.00", "maxDiscountAmount": null, "totalQuantity": 10 })
    );
    let v = gql(&app, Some(&admin_token), update, json!({ "id": id, "input": { "totalQuantity": 0 } })).await;
    assert_eq!((first_code(&v), v["errors"][0]["extensions"]["field"].as_str()), (Some("BAD_USER_INPUT"), Some("totalQuantity")));
    // 코드: 생성, 추가, 사용자의 사용, 통계(관리자만: 사용자가 고르면 FORBIDDEN과 null 전파).
    let v = gql(
        &app,
        Some(&admin_token),
        "mutation($id: ID!) { generateCouponCodes(couponId: $id, count: 30, prefix: \"VIP\") { couponId count sample } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(v["data"]["generateCouponCodes"]["count"], 30);
    let sample = v["data"]["generateCouponCodes"]["sample"].as_array().expect("표본").clone();
    assert_eq!(sample.len(), 10);
    let chosen = unique_code("HELLO");
    let v = gql(&app, Some(&admin_token), "mutation($id: ID!, $code: String!) { addCouponCode(couponId: $id, code: $code, maxRedemptions: 5) { code maxRedemptions redemptions } }", json!({ "id": id, "code": chosen })).await;
    assert_eq!(v["data"]["addCouponCode"], json!({ "code": chosen, "maxRedemptions": 5, "redemptions": 0 }));
    let redeem = "mutation($code: String!) { redeemCouponCode(code: $code) { userId coupon { id issuedQuantity } } }";
    let v = gql(&app, Some(&user_token), redeem, json!({ "code": sample[0] })).await;
    assert_eq!(v["data"]["redeemCouponCode"]["coupon"]["issuedQuantity"], 1, "{v}");
    let v = gql(&app, Some(&user_token), redeem, json!({ "code": "bad shape!" })).await;
    assert_eq!(first_code(&v), Some("CODE_NOT_FOUND"));
    let stats = "query($id: ID!) { coupon(id: $id) { id stats { issued used reserved unused orderAmountTotal discountTotal codesGenerated codesRedeemed } } }";
    let v = gql(&app, Some(&admin_token), stats, json!({ "id": id })).await;
    assert_eq!(
        v["data"]["coupon"]["stats"],
        json!({ "issued": 1, "used": 0, "reserved": 0, "unused": 1, "orderAmountTotal": "0.00", "discountTotal": "0.00", "codesGenerated": 30, "codesRedeemed": 1 })
    );
    let v = gql(&app, Some(&user_token), stats, json!({ "id": id })).await;
    assert_eq!((first_code(&v), &v["data"]["coupon"]), (Some("FORBIDDEN"), &Value::Null));
    // 연결: 코드(쓰인 것만), 보유자, 원장 (도장은 커밋 뒤 1초 안: 다 찍힐 때까지 기다린다).
    couponql::service::ledger::stamp_all(&app.db.conn).await.expect("도장");
    let v = gql(
        &app,
        Some(&admin_token),
        "query($id: ID!) { couponCodes(couponId: $id, redeemed: true) { nodes { code redemptions } pageInfo { hasNextPage } }
           couponHolders(couponId: $id) { edges { cursor node { userId } } }
           couponEvents(couponId: $id) { nodes { sequence type couponId userId } } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(v["data"]["couponCodes"]["nodes"], json!([{ "code": sample[0], "redemptions": 1 }]), "{v}");
    assert_eq!(v["data"]["couponHolders"]["edges"][0]["node"]["userId"], user.id.to_string());
    let types: Vec<&str> = v["data"]["couponEvents"]["nodes"].as_array().expect("원장").iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(types, ["COUPON_CREATED", "COUPON_UPDATED", "CODES_GENERATED", "COUPON_ISSUED"]);
    // 보관: 목록에서 빠지고 includeArchived는 관리자만.
    gql(&app, Some(&admin_token), "mutation($id: ID!) { archiveCoupon(id: $id) { status } }", json!({ "id": id })).await;
    let list = "query($all: Boolean!) { coupons(first: 100, includeArchived: $all) { nodes { id status isAvailable } } }";
    let v = gql(&app, None, list, json!({ "all": false })).await;
    assert!(v["data"]["coupons"]["nodes"].as_array().expect("목록").iter().all(|n| n["id"] != id.as_str()));
    let v = gql(&app, Some(&user_token), list, json!({ "all": true })).await;
    assert_eq!(first_code(&v), Some("FORBIDDEN"));
    let v = gql(&app, Some(&admin_token), list, json!({ "all": true })).await;
    let node = v["data"]["coupons"]["nodes"].as_array().expect("목록").iter().find(|n| n["id"] == id.as_str()).cloned();
    assert_eq!(node, Some(json!({ "id": id, "status": "ARCHIVED", "isAvailable": false })));

    // CSV: 익명 401, 사용자 403, 없는 쿠폰 404, 관리자는 머리줄 + 코드마다 한 줄.
    let csv = |t: Option<&str>, coupon: &str| {
        let mut req = app.http.get(format!("{}/admin/coupons/{coupon}/codes.csv", app.base));
        if let Some(t) = t {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    assert_eq!(csv(None, &id).await.expect("HTTP").status().as_u16(), 401);
    assert_eq!(csv(Some(&user_token), &id).await.expect("HTTP").status().as_u16(), 403);
    assert_eq!(csv(Some(&admin_token), &Uuid::new_v4().to_string()).await.expect("HTTP").status().as_u16(), 404);
    let resp = csv(Some(&admin_token), &id).await.expect("HTTP");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap_or_default().starts_with("text/csv"));
    let text = resp.text().await.expect("본문");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "code,max_redemptions,redemptions,created_at");
    assert_eq!(lines.len(), 1 + 31);
    assert!(lines.iter().any(|l| l.starts_with(&format!("{chosen},5,0,"))));
    assert!(lines.iter().any(|l| l.starts_with(&format!("{},1,1,", sample[0].as_str().unwrap_or_default()))));
    let codes: HashSet<&str> = lines[1..].iter().filter_map(|l| l.split(',').next()).collect();
    assert_eq!(codes.len(), 31);
}
e2e_on_all_backends!(the_shop_works_over_graphql_and_csv);

/// 실행 파일로 띄운 서버(SQLite 파일)에서 코드 100,000개를 CSV로 받는 동안 서버의 최대 RSS가 거의 늘지 않는다:
/// 파일 전체가 아니라 한 페이지(1,000행)씩만 메모리에 있다. 최대 RSS는 커널이 잰다(clear_refs로 0에서 다시 재기 시작).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporting_a_hundred_thousand_codes_keeps_the_server_memory_flat() {
    let dir = std::env::temp_dir().join(format!("couponql-csv-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("임시 디렉터리");
    let db_url = format!("sqlite://{}?mode=rwc", dir.join("csv.db").display());
    let server = crate::helpers::start_binary(&db_url).await;
    let result = csv_memory_run(server.base(), server.pid()).await;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    let (lines, growth_kb) = result;
    println!("CSV export of 100,000 codes: peak RSS growth {:.1} MB", growth_kb as f64 / 1024.0);
    assert_eq!(lines, 100_001);
    assert!(growth_kb < 20 * 1024, "CSV 내보내기 동안 최대 RSS가 {growth_kb} kB 늘었다");
}

fn proc_status_kb(pid: u32, key: &str) -> u64 {
    testkit::procfs::status_kb(pid, key).unwrap_or_else(|| panic!("/proc/{pid}/status에 {key} 없음"))
}

/// (받은 줄 수, CSV를 받는 동안 최대 RSS가 늘어난 kB).
async fn csv_memory_run(base: &str, pid: u32) -> (usize, u64) {
    use futures::StreamExt;
    let http = reqwest::Client::new();
    let admin = token(Uuid::new_v4(), Role::Admin);
    let post = |query: String| http.post(format!("{base}/graphql")).bearer_auth(&admin).json(&json!({ "query": query })).send();
    let created: Value = post(
        r#"mutation { createCoupon(input: { name: "CSV", discountType: FIXED, discountValue: "1000",
        validFrom: "2020-01-01T00:00:00Z", validUntil: "2099-01-01T00:00:00Z" }) { id } }"#
            .into(),
    )
    .await
    .expect("HTTP")
    .json()
    .await
    .expect("JSON");
    let id = created["data"]["createCoupon"]["id"].as_str().expect("쿠폰 id").to_owned();
    let generated: Value = post(format!(r#"mutation {{ generateCouponCodes(couponId: "{id}", count: 100000) {{ count }} }}"#))
        .await
        .expect("HTTP")
        .json()
        .await
        .expect("JSON");
    assert_eq!(generated["data"]["generateCouponCodes"]["count"], 100_000, "{generated}");
    // 생성이 남긴 최대치를 지우고, 지금의 RSS에서 다시 잰다.
    testkit::procfs::reset_peak_rss(pid).expect("clear_refs (최대 RSS 다시 재기)");
    let before = proc_status_kb(pid, "VmRSS");
    let resp = http.get(format!("{base}/admin/coupons/{id}/codes.csv")).bearer_auth(&admin).send().await.expect("CSV");
    assert_eq!(resp.status().as_u16(), 200);
    let mut body = resp.bytes_stream();
    let mut lines = 0;
    while let Some(chunk) = body.next().await {
        lines += chunk.expect("CSV 조각").iter().filter(|b| **b == b'\n').count();
    }
    let peak = proc_status_kb(pid, "VmHWM");
    (lines, peak.saturating_sub(before))
}
