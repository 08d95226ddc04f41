//! 데이터 계층: 마이그레이션, 데모 데이터, 저장소 매핑, 발급·사용·취소 규칙을 모든 백엔드에서.
use std::str::FromStr;

use couponql::domain::{self, DiscountType, NewCoupon, NewCouponInput, Role, Viewer};
use couponql::error::AppError;
use couponql::{repo, seed, service};
use migration::{Migrator, MigratorTrait};
use rust_decimal::Decimal;
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::helpers::{TestDb, assert_invariant, migrate_down_through, new_coupon, new_coupon_with, new_user, new_users};
use crate::{on_all_backends, on_locking_backends};

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("숫자")
}

fn code<T: std::fmt::Debug>(r: Result<T, AppError>) -> &'static str {
    match r {
        Ok(v) => panic!("실패해야 하는데 성공함: {v:?}"),
        Err(e) => e.code(),
    }
}

const MINSU: Uuid = Uuid::from_u128(0x11111111_1111_4111_8111_111111111111);
const SEOYEON: Uuid = Uuid::from_u128(0x22222222_2222_4222_8222_222222222222);
const JIHOON: Uuid = Uuid::from_u128(0x33333333_3333_4333_8333_333333333333);

fn demo_coupon(n: u128) -> Uuid {
    Uuid::from_u128(0xc0000000_0000_4000_8000_000000000000 + n)
}

async fn migrations_go_down_and_up_again(db: TestDb) {
    new_user(&db.conn).await;
    Migrator::down(&db.conn, None).await.expect("down");
    assert!(db.conn.execute_unprepared("SELECT COUNT(*) FROM users").await.is_err(), "down 뒤에는 테이블이 없어야 함");
    Migrator::up(&db.conn, None).await.expect("up");
    Migrator::up(&db.conn, None).await.expect("두 번째 up은 아무것도 하지 않음");
    let u = new_user(&db.conn).await;
    assert!(repo::user::find_by_id(&db.conn, u.id).await.expect("조회").is_some());
}
on_all_backends!(migrations_go_down_and_up_again);

/// `ledger_head`로 번호를 매기던 원장이 제자리에서 옮겨진다 (이슈 20): 옛 이벤트는 sequence를 그대로 갖고,
/// 옮긴 뒤의 변경은 커밋 뒤 도장으로 그보다 큰 번호를 받으며, 피드는 옛것과 새것을 한 줄로 잇는다.
async fn an_existing_ledger_moves_in_place(db: TestDb) {
    let c = &db.conn;
    let coupon = new_coupon(c, None).await;
    let user = new_user(c).await;
    migrate_down_through(c, "m20261221_000008_event_stream").await;
    let at = if c.get_database_backend() == sea_orm::DbBackend::Sqlite { "2026-01-01T00:00:00+00:00" } else { "2026-01-01 00:00:00" };
    let (old1, old2) = (Uuid::new_v4(), Uuid::new_v4());
    for (id, seq, kind) in [(old1, 7, "COUPON_CREATED"), (old2, 9, "COUPON_UPDATED")] {
        c.execute_unprepared(&format!(
            "INSERT INTO events (id, sequence, type, coupon_id, occurred_at) VALUES ('{id}', {seq}, '{kind}', '{}', '{at}')",
            coupon.id
        ))
        .await
        .expect("옛 원장");
    }
    c.execute_unprepared("UPDATE ledger_head SET last_sequence = 9 WHERE id = 1").await.expect("옛 원장 머리");
    Migrator::up(c, None).await.expect("이동");
    assert!(c.execute_unprepared("SELECT last_sequence FROM ledger_head").await.is_err(), "ledger_head가 남아 있음");

    service::issuance::Issuer::new(c.clone(), service::issuance::IssueMode::PerRequest).issue(user.id, coupon.id).await.expect("발급");
    service::ledger::stamp_all(c).await.expect("도장");
    let feed = repo::ledger::page(c, Some(coupon.id), None, 100).await.expect("피드");
    let got: Vec<(i64, &str)> = feed.iter().map(|s| (s.sequence, s.event.kind.as_str())).collect();
    assert_eq!(&got[..2], &[(7, "COUPON_CREATED"), (9, "COUPON_UPDATED")]);
    assert_eq!(got.len(), 3);
    assert!(got[2].0 > 9 && got[2].1 == "COUPON_ISSUED", "{got:?}");
    assert_eq!((feed[0].event.id, feed[1].event.id), (old1, old2));
}
on_all_backends!(an_existing_ledger_moves_in_place);

async fn demo_data_matches_the_contract_and_seeding_twice_changes_nothing(db: TestDb) {
    let first = seed::seed(&db.conn).await.expect("seed");
    assert_eq!(first, seed::SeedReport { users: 3, coupons: 5, user_coupons: 4, codes: 21 });
    let second = seed::seed(&db.conn).await.expect("seed again");
    assert_eq!(second, seed::SeedReport::default());

    let users = repo::user::find_many(&db.conn, &[MINSU, SEOYEON, JIHOON]).await.expect("users");
    let name_of = |id| users.iter().find(|u| u.id == id).map(|u| (u.name.clone(), u.email.clone()));
    assert_eq!(name_of(MINSU), Some(("김민수".into(), "minsu@example.com".into())));
    assert_eq!(name_of(SEOYEON), Some(("이서연".into(), "seoyeon@example.com".into())));
    assert_eq!(name_of(JIHOON), Some(("박지훈".into(), "jihoon@example.com".into())));

    let c1 = repo::coupon::find_by_id(&db.conn, demo_coupon(1)).await.expect("c1").expect("있음");
    assert_eq!((c1.name.as_str(), c1.discount_type, c1.discount_value), ("5,000원 할인 쿠폰", DiscountType::Fixed, dec("5000.00")));
    assert_eq!((c1.min_purchase_amount, c1.total_quantity, c1.issued_quantity), (Some(dec("30000")), Some(100), 1));
    let c2 = repo::coupon::find_by_id(&db.conn, demo_coupon(2)).await.expect("c2").expect("있음");
    assert_eq!((c2.discount_type, c2.discount_value, c2.max_discount_amount), (DiscountType::Percentage, dec("10"), Some(dec("3000"))));
    let c3 = repo::coupon::find_by_id(&db.conn, demo_coupon(3)).await.expect("c3").expect("있음");
    assert_eq!(c3.total_quantity, None);
    let now = domain::now();
    let c4 = repo::coupon::find_by_id(&db.conn, demo_coupon(4)).await.expect("c4").expect("있음");
    assert!(matches!(c4.check_window(now), Err(AppError::CouponExpired)));
    let c5 = repo::coupon::find_by_id(&db.conn, demo_coupon(5)).await.expect("c5").expect("있음");
    assert!(c5.is_sold_out());
    for n in 1..=5 {
        assert_invariant(&db.conn, demo_coupon(n)).await;
    }

    let minsu = repo::user_coupon::list_by_user(&db.conn, MINSU, false).await.expect("민수");
    let mut held: Vec<(Uuid, bool)> = minsu
        .iter()
        .map(|(uc, c)| {
            assert_eq!(uc.coupon_id, c.id);
            (uc.coupon_id, uc.is_used)
        })
        .collect();
    held.sort();
    assert_eq!(held, vec![(demo_coupon(1), false), (demo_coupon(5), false)]);
    let seoyeon = repo::user_coupon::list_by_user(&db.conn, SEOYEON, false).await.expect("서연");
    let mut held: Vec<(Uuid, bool)> = seoyeon
        .iter()
        .map(|(uc, c)| {
            assert_eq!(uc.coupon_id, c.id);
            (uc.coupon_id, uc.is_used)
        })
        .collect();
    held.sort();
    assert_eq!(held, vec![(demo_coupon(2), true), (demo_coupon(5), false)]);
    assert!(repo::user_coupon::list_by_user(&db.conn, JIHOON, false).await.expect("지훈").is_empty());
}
on_all_backends!(demo_data_matches_the_contract_and_seeding_twice_changes_nothing);

async fn a_plain_insert_into_users_gets_database_timestamps(db: TestDb) {
    let id = Uuid::new_v4();
    db.conn
        .execute_unprepared(&format!("INSERT INTO users (id, email, name) VALUES ('{id}', 'plain@example.com', '평범한 🙂')"))
        .await
        .expect("plain insert");
    let u = repo::user::find_by_id(&db.conn, id).await.expect("조회").expect("있음");
    assert_eq!(u.name, "평범한 🙂");
    assert!((domain::now() - u.created_at).num_minutes().abs() < 5, "created_at은 데이터베이스 기본값(지금)");
}
on_all_backends!(a_plain_insert_into_users_gets_database_timestamps);

async fn a_coupon_round_trips_every_field_exactly(db: TestDb) {
    let input = NewCouponInput {
        name: "🎉 여름 세일 — \"특가\" <b>&".into(),
        discount_type: DiscountType::Percentage,
        discount_value: "12.50".into(),
        min_purchase_amount: Some("99999999.99".into()),
        max_discount_amount: Some("0.01".into()),
        total_quantity: Some(7),
        valid_from: "2025-03-01T12:34:56.789Z".into(),
        valid_until: "2099-12-31T23:59:59Z".into(),
        per_user_limit: Some(7),
        restricted: Some(true),
        waves: Some(vec![
            couponql::domain::ReleaseWaveInput { at: "2030-01-01T09:00:00.123456+09:00".into(), quantity: 3 },
            couponql::domain::ReleaseWaveInput { at: "2031-06-01T00:00:00Z".into(), quantity: 4 },
        ]),
        budget: Some("9999999999.99".into()),
        stacking: Some(couponql::domain::Stacking::Stackable),
    };
    let new = NewCoupon::parse(input).expect("유효");
    let id = Uuid::new_v4();
    let created = repo::coupon::insert(&db.conn, id, &new, domain::now()).await.expect("insert");
    let read = repo::coupon::find_by_id(&db.conn, id).await.expect("조회").expect("있음");
    assert_eq!(read, created);
    assert_eq!(read.name, "🎉 여름 세일 — \"특가\" <b>&");
    assert_eq!(read.discount_value.to_string(), "12.50");
    assert_eq!(read.min_purchase_amount.map(|d| d.to_string()), Some("99999999.99".into()));
    assert_eq!(read.remaining_quantity(), Some(7));
    assert_eq!((read.per_user_limit, read.restricted, read.stacking), (7, true, couponql::domain::Stacking::Stackable));
    // 예산은 DECIMAL(12,2)의 끝까지, 일정은 마이크로초까지 그대로.
    assert_eq!(read.budget.map(|d| d.to_string()), Some("9999999999.99".into()));
    assert_eq!(
        read.waves.iter().map(|w| (w.at.to_rfc3339(), w.quantity)).collect::<Vec<_>>(),
        vec![("2030-01-01T00:00:00.123456+00:00".to_owned(), 3), ("2031-06-01T00:00:00+00:00".to_owned(), 4)]
    );
    assert!(repo::coupon::find_by_id(&db.conn, Uuid::new_v4()).await.expect("조회").is_none());
}
on_all_backends!(a_coupon_round_trips_every_field_exactly);

async fn listing_is_newest_first_and_cursors_survive_new_inserts(db: TestDb) {
    let mut made = Vec::new();
    for _ in 0..5 {
        made.push(new_coupon(&db.conn, Some(10)).await.id);
    }
    made.reverse(); // 최신순
    let page1 = service::coupons::list(&db.conn, None, false, false, Some(2), None).await.expect("p1");
    assert_eq!(page1.items.iter().map(|c| c.id).collect::<Vec<_>>(), made[..2]);
    assert!(page1.has_next_page);
    let cursor = service::coupons::cursor(page1.items.last().expect("마지막"));
    // 새 쿠폰이 생겨도 커서 뒤의 순서는 그대로.
    new_coupon(&db.conn, Some(10)).await;
    let page2 = service::coupons::list(&db.conn, None, false, false, Some(2), Some(&cursor)).await.expect("p2");
    assert_eq!(page2.items.iter().map(|c| c.id).collect::<Vec<_>>(), made[2..4]);
    let cursor = service::coupons::cursor(page2.items.last().expect("마지막"));
    let page3 = service::coupons::list(&db.conn, None, false, false, Some(2), Some(&cursor)).await.expect("p3");
    assert_eq!(page3.items.iter().map(|c| c.id).collect::<Vec<_>>(), made[4..]);
    assert!(!page3.has_next_page);
    assert_eq!(code(service::coupons::list(&db.conn, None, false, false, Some(0), None).await.map(|p| p.items.len())), "BAD_USER_INPUT");
    assert_eq!(code(service::coupons::list(&db.conn, None, false, false, Some(101), None).await.map(|p| p.items.len())), "BAD_USER_INPUT");
    assert_eq!(
        code(service::coupons::list(&db.conn, None, false, false, None, Some("garbage")).await.map(|p| p.items.len())),
        "BAD_USER_INPUT"
    );
}
on_all_backends!(listing_is_newest_first_and_cursors_survive_new_inserts);

async fn available_coupons_are_inside_their_window_and_not_sold_out(db: TestDb) {
    let open = new_coupon(&db.conn, Some(5)).await;
    let unlimited = new_coupon(&db.conn, None).await;
    let future = new_coupon_with(&db.conn, Some(5), "2098-01-01T00:00:00Z", "2099-01-01T00:00:00Z").await;
    let past = new_coupon_with(&db.conn, Some(5), "2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z").await;
    let sold = new_coupon(&db.conn, Some(1)).await;
    let u = new_user(&db.conn).await;
    service::issuance::Issuer::new(db.conn.clone(), service::issuance::IssueMode::PerRequest)
        .issue(u.id, sold.id)
        .await
        .expect("마지막 한 장");

    let page = service::coupons::list(&db.conn, None, true, false, Some(100), None).await.expect("목록");
    let mut ids: Vec<Uuid> = page.items.iter().map(|c| c.id).collect();
    ids.sort();
    let mut want = vec![open.id, unlimited.id];
    want.sort();
    assert_eq!(ids, want);
    let all = service::coupons::list(&db.conn, None, false, false, Some(100), None).await.expect("전체");
    assert_eq!(all.items.len(), 5);
    assert!(all.items.iter().all(|c| c.is_available(domain::now()) == want.contains(&c.id)));
    let _ = (future, past);
}
on_all_backends!(available_coupons_are_inside_their_window_and_not_sold_out);

async fn issuing_writes_the_user_coupon_and_the_count_together(db: TestDb) {
    let coupon = new_coupon(&db.conn, Some(3)).await;
    let u = new_user(&db.conn).await;
    let uc = service::issuance::Issuer::new(db.conn.clone(), service::issuance::IssueMode::PerRequest)
        .issue(u.id, coupon.id)
        .await
        .expect("발급");
    assert_eq!((uc.user_id, uc.coupon_id, uc.is_used, uc.used_at), (u.id, coupon.id, false, None));
    assert_eq!(repo::user_coupon::find_by_id(&db.conn, uc.id).await.expect("조회"), Some(uc));
    assert_eq!(assert_invariant(&db.conn, coupon.id).await, 1);
}
on_all_backends!(issuing_writes_the_user_coupon_and_the_count_together);

/// Galera에서 잠금 읽기가 다른 노드의 커밋보다 늦게 보일 때 (CI에서 100장에 117장): 쿠폰 행은 읽은 버전에서만 바뀐다.
/// 읽은 뒤 누가 먼저 썼다면 (발급이든 관리자 수정이든) 아무것도 바꾸지 않고 트랜잭션째 다시 돌리게 한다.
async fn a_coupon_row_is_written_only_from_the_version_that_was_read(db: TestDb) {
    let read = new_coupon(&db.conn, Some(100)).await;
    let now = domain::now();
    assert!(repo::coupon::increment_issued(&db.conn, &read, 3, now).await.expect("읽은 버전에서 3"));
    // 같은 (이제 낡은) 읽기로 다시: 발급도, 총수량을 내리는 수정도 버려진다.
    assert!(!repo::coupon::increment_issued(&db.conn, &read, 5, now).await.expect("낡은 읽기로 발급"));
    let lowered = domain::Coupon { total_quantity: Some(2), status: domain::CouponStatus::Paused, ..read.clone() };
    assert!(!repo::coupon::update(&db.conn, &lowered).await.expect("낡은 읽기로 수정"));
    let fresh = repo::coupon::find_by_id(&db.conn, read.id).await.expect("조회").expect("쿠폰");
    assert_eq!((fresh.issued_quantity, fresh.total_quantity, fresh.status), (3, Some(100), domain::CouponStatus::Active));
    assert_eq!(fresh.version, read.version + 1);
    // 새로 읽은 버전에서는 된다.
    assert!(repo::coupon::increment_issued(&db.conn, &fresh, 2, now).await.expect("새 버전에서 2"));
    let after = repo::coupon::find_by_id(&db.conn, read.id).await.expect("조회").expect("쿠폰");
    assert_eq!((after.issued_quantity, after.version), (5, read.version + 2));
}
on_all_backends!(a_coupon_row_is_written_only_from_the_version_that_was_read);

async fn each_issuance_error_comes_in_contract_order_and_writes_nothing(db: TestDb) {
    let u = new_user(&db.conn).await;
    let open = new_coupon(&db.conn, Some(1)).await;
    let future = new_coupon_with(&db.conn, Some(5), "2098-01-01T00:00:00Z", "2099-01-01T00:00:00Z").await;
    let past = new_coupon_with(&db.conn, Some(5), "2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z").await;
    let issuer = service::issuance::Issuer::new(db.conn.clone(), service::issuance::IssueMode::PerRequest);
    let issue = |user: Uuid, coupon: Uuid| issuer.issue(user, coupon);

    assert_eq!(code(issue(u.id, Uuid::new_v4()).await), "COUPON_NOT_FOUND");
    // 쿠폰이 없으면 사용자 검사보다 먼저.
    assert_eq!(code(issue(Uuid::new_v4(), Uuid::new_v4()).await), "COUPON_NOT_FOUND");
    assert_eq!(code(issue(Uuid::new_v4(), open.id).await), "USER_NOT_FOUND");
    assert_eq!(code(issue(u.id, future.id).await), "COUPON_NOT_STARTED");
    assert_eq!(code(issue(u.id, past.id).await), "COUPON_EXPIRED");
    issue(u.id, open.id).await.expect("첫 발급");
    // 이미 가졌고 매진이기도 하면: ALREADY_ISSUED가 먼저.
    assert_eq!(code(issue(u.id, open.id).await), "COUPON_ALREADY_ISSUED");
    let other = new_user(&db.conn).await;
    assert_eq!(code(issue(other.id, open.id).await), "COUPON_SOLD_OUT");
    let roomy = new_coupon(&db.conn, Some(10)).await;
    issue(u.id, roomy.id).await.expect("발급");
    assert_eq!(code(issue(u.id, roomy.id).await), "COUPON_ALREADY_ISSUED");

    for c in [open.id, future.id, past.id, roomy.id] {
        assert_invariant(&db.conn, c).await;
    }
    assert_eq!(repo::user_coupon::list_by_user(&db.conn, other.id, false).await.expect("목록").len(), 0);
    assert_eq!(repo::coupon::find_by_id(&db.conn, roomy.id).await.expect("조회").map(|c| c.issued_quantity), Some(1));
}
on_all_backends!(each_issuance_error_comes_in_contract_order_and_writes_nothing);

async fn using_and_cancelling_follow_the_rules(db: TestDb) {
    let owner = new_user(&db.conn).await;
    let stranger = new_user(&db.conn).await;
    let me = Viewer { user_id: owner.id, role: Role::User };
    let them = Viewer { user_id: stranger.id, role: Role::User };
    let admin = Viewer { user_id: stranger.id, role: Role::Admin };
    let coupon = new_coupon(&db.conn, Some(10)).await; // 최소 주문 5000
    let uc = service::issuance::Issuer::new(db.conn.clone(), service::issuance::IssueMode::PerRequest)
        .issue(owner.id, coupon.id)
        .await
        .expect("발급");
    let uc_svc = service::user_coupons::use_coupon;

    assert_eq!(code(uc_svc(&db.conn, None, uc.id, None, None, None).await), "UNAUTHENTICATED");
    assert_eq!(code(uc_svc(&db.conn, Some(&them), uc.id, None, None, None).await), "USER_COUPON_NOT_FOUND");
    assert_eq!(code(uc_svc(&db.conn, Some(&me), Uuid::new_v4(), None, None, None).await), "USER_COUPON_NOT_FOUND");
    assert_eq!(code(uc_svc(&db.conn, Some(&me), uc.id, Some(dec("4999.99")), None, None).await), "MIN_PURCHASE_NOT_MET");
    assert_eq!(code(service::user_coupons::cancel_coupon(&db.conn, Some(&me), uc.id, None, None).await), "COUPON_NOT_USED");

    let used = uc_svc(&db.conn, Some(&me), uc.id, Some(dec("5000")), None, None).await.expect("사용");
    assert!(used.is_used && used.used_at.is_some());
    let stored = repo::user_coupon::find_by_id(&db.conn, uc.id).await.expect("조회").expect("있음");
    assert!(stored.is_used && stored.used_at.is_some());
    assert_eq!(code(uc_svc(&db.conn, Some(&me), uc.id, None, None, None).await), "COUPON_ALREADY_USED");
    assert_eq!(code(service::user_coupons::cancel_coupon(&db.conn, Some(&them), uc.id, None, None).await), "USER_COUPON_NOT_FOUND");

    let back = service::user_coupons::cancel_coupon(&db.conn, Some(&me), uc.id, None, None).await.expect("취소");
    assert!(!back.is_used && back.used_at.is_none());
    let stored = repo::user_coupon::find_by_id(&db.conn, uc.id).await.expect("조회").expect("있음");
    assert!(!stored.is_used && stored.used_at.is_none());
    // 관리자는 남의 쿠폰도 다룬다.
    uc_svc(&db.conn, Some(&admin), uc.id, None, None, None).await.expect("관리자 사용");
    // 취소해도 발급 수량은 그대로 (발급 취소가 아니라 사용 취소).
    assert_eq!(assert_invariant(&db.conn, coupon.id).await, 1);
}
on_all_backends!(using_and_cancelling_follow_the_rules);

async fn a_coupon_outside_its_window_cannot_be_used(db: TestDb) {
    let owner = new_user(&db.conn).await;
    let me = Viewer { user_id: owner.id, role: Role::User };
    let past = new_coupon_with(&db.conn, Some(5), "2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z").await;
    let future = new_coupon_with(&db.conn, Some(5), "2098-01-01T00:00:00Z", "2099-01-01T00:00:00Z").await;
    for (coupon, want) in [(past.id, "COUPON_EXPIRED"), (future.id, "COUPON_NOT_STARTED")] {
        // 기간 밖 쿠폰은 발급되지 않으므로 발급 내역을 직접 넣는다 (기간 중에 받은 쿠폰이 만료된 상황).
        let uc = domain::UserCoupon::issued(Uuid::new_v4(), owner.id, coupon, 1, domain::now());
        repo::user_coupon::insert(&db.conn, &uc).await.expect("삽입");
        assert_eq!(code(service::user_coupons::use_coupon(&db.conn, Some(&me), uc.id, None, None, None).await), want);
        assert!(!repo::user_coupon::find_by_id(&db.conn, uc.id).await.expect("조회").expect("있음").is_used);
    }
}
on_all_backends!(a_coupon_outside_its_window_cannot_be_used);

async fn user_coupons_are_listed_per_user_and_for_many_users_at_once(db: TestDb) {
    let users = new_users(&db.conn, 3).await;
    let coupons = [new_coupon(&db.conn, None).await, new_coupon(&db.conn, None).await];
    for u in &users[..2] {
        for c in &coupons {
            service::issuance::Issuer::new(db.conn.clone(), service::issuance::IssueMode::PerRequest)
                .issue(u.id, c.id)
                .await
                .expect("발급");
        }
    }
    let first: Vec<domain::UserCoupon> =
        repo::user_coupon::list_by_user(&db.conn, users[0].id, false).await.expect("목록").into_iter().map(|(uc, _)| uc).collect();
    assert_eq!(first.len(), 2);
    assert!(first[0].issued_at >= first[1].issued_at, "최신순");
    let me = Viewer { user_id: users[0].id, role: Role::User };
    service::user_coupons::use_coupon(&db.conn, Some(&me), first[0].id, None, None, None).await.expect("사용");
    let unused = repo::user_coupon::list_by_user(&db.conn, users[0].id, true).await.expect("미사용");
    assert_eq!(unused.iter().map(|(uc, _)| uc.id).collect::<Vec<_>>(), vec![first[1].id]);

    let ids: Vec<Uuid> = users.iter().map(|u| u.id).collect();
    let many = repo::user_coupon::list_by_users(&db.conn, &ids, false).await.expect("여럿");
    assert_eq!(many.len(), 4);
    assert_eq!(many.iter().filter(|(uc, _)| uc.user_id == users[2].id).count(), 0);
    assert!(many.iter().all(|(uc, c)| uc.coupon_id == c.id), "JOIN으로 온 쿠폰이 제 발급 내역의 것");
    let unused_many = repo::user_coupon::list_by_users(&db.conn, &ids, true).await.expect("여럿 미사용");
    assert_eq!(unused_many.len(), 3);
    // 관리자가 아니면 남의 목록은 FORBIDDEN.
    assert_eq!(code(service::user_coupons::list(&db.conn, Some(&me), Some(users[1].id), false).await), "FORBIDDEN");
}
on_all_backends!(user_coupons_are_listed_per_user_and_for_many_users_at_once);

/// 잠금을 오래 쥔 트랜잭션이 있으면 발급은 몇 초 안에 TRY_AGAIN으로 답하고 아무것도 쓰지 않는다.
async fn a_held_row_lock_turns_into_try_again_within_the_bound(db: TestDb) {
    use sea_orm::TransactionTrait;
    let settings = couponql::config::DbSettings { lock_timeout: std::time::Duration::from_secs(1), ..Default::default() };
    let short = crate::helpers::reconnect(&db, &settings).await;
    let coupon = new_coupon(&db.conn, Some(10)).await;
    let u = new_user(&db.conn).await;
    let holder = db.conn.begin().await.expect("begin");
    repo::coupon::find_for_update(&holder, coupon.id).await.expect("잠금");
    let started = std::time::Instant::now();
    let res = service::issuance::Issuer::new(short.clone(), service::issuance::IssueMode::PerRequest).issue(u.id, coupon.id).await;
    let waited = started.elapsed();
    holder.rollback().await.expect("rollback");
    assert_eq!(code(res), "TRY_AGAIN");
    assert!(waited < std::time::Duration::from_secs(5), "잠금 대기가 한도 안에서 끝나야 함: {waited:?}");
    assert_eq!(assert_invariant(&db.conn, coupon.id).await, 0);
}
on_locking_backends!(a_held_row_lock_turns_into_try_again_within_the_bound);

/// 풀에 빈 커넥션이 없으면 제때 TRY_AGAIN.
async fn an_exhausted_pool_answers_try_again(db: TestDb) {
    use sea_orm::TransactionTrait;
    let settings = couponql::config::DbSettings {
        max_connections: Some(1),
        acquire_timeout: std::time::Duration::from_millis(300),
        ..Default::default()
    };
    let tiny = crate::helpers::reconnect(&db, &settings).await;
    let coupon = new_coupon(&db.conn, Some(10)).await;
    let u = new_user(&db.conn).await;
    let hog = tiny.begin().await.expect("유일한 커넥션을 쥔다");
    let res = service::issuance::Issuer::new(tiny.clone(), service::issuance::IssueMode::PerRequest).issue(u.id, coupon.id).await;
    drop(hog);
    assert_eq!(code(res), "TRY_AGAIN");
    assert_eq!(assert_invariant(&db.conn, coupon.id).await, 0);
}
on_locking_backends!(an_exhausted_pool_answers_try_again);

/// 두 트랜잭션이 두 쿠폰을 반대 순서로 잠그면 데이터베이스가 교착 상태를 풀고, 그 오류는 INTERNAL이 아니라 TRY_AGAIN이 된다.
async fn a_deadlock_victim_is_classified_as_try_again(db: TestDb) {
    use couponql::entities::coupon::Entity as Coupons;
    use sea_orm::{EntityTrait, QuerySelect, TransactionTrait};
    let a = new_coupon(&db.conn, Some(1)).await.id.to_string();
    let b = new_coupon(&db.conn, Some(1)).await.id.to_string();
    let t1 = db.conn.begin().await.expect("t1");
    let t2 = db.conn.begin().await.expect("t2");
    Coupons::find_by_id(a.clone()).lock_exclusive().one(&t1).await.expect("t1: A");
    Coupons::find_by_id(b.clone()).lock_exclusive().one(&t2).await.expect("t2: B");
    let (r1, r2) = tokio::join!(Coupons::find_by_id(b.clone()).lock_exclusive().one(&t1), async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        Coupons::find_by_id(a.clone()).lock_exclusive().one(&t2).await
    });
    let errors: Vec<sea_orm::DbErr> = [r1.err(), r2.err()].into_iter().flatten().collect();
    assert!(errors.iter().any(|e| repo::classify(e) == repo::DbFailure::Deadlock), "교착 상태로 분류된 오류가 있어야 함: {errors:?}");
    for e in errors {
        assert_eq!(repo::db_error(e).code(), "TRY_AGAIN");
    }
    // 명시적으로 되돌려 잠금을 푼다 (희생자 쪽은 이미 되돌려졌을 수 있다).
    let _ = t1.rollback().await;
    let _ = t2.rollback().await;
}
on_locking_backends!(a_deadlock_victim_is_classified_as_try_again);
