//! Idempotency-Key의 빈틈(이슈 18의 6번, CONTRACT 7절·3절): 64 KB가 넘는 답, 보내자마자 끊는 클라이언트,
//! 루트 필드가 둘인 본문에 다시 쓴 키, 다른 역할의 토큰. 모두 실제 서버에 HTTP로 보내고 데이터베이스를 센다.
use std::time::Duration;

use couponql::domain::Role;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use crate::client::first_code;
use crate::helpers::{TestApp, assert_invariant, new_coupon, new_user, token};
use crate::{backend_tests, e2e_on_all_backends};

/// 키를 붙여 보낸다: (상태, `Idempotent-Replayed`, 본문 바이트).
async fn keyed(app: &TestApp, token: &str, key: &str, body: &Value) -> (u16, Option<String>, Vec<u8>) {
    app.keyed_bytes(token, key, body).await
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

/// 이름으로 센 쿠폰 수 (데이터베이스에서 직접).
async fn coupons_named(app: &TestApp, name: &str) -> u64 {
    use couponql::entities::coupon::{Column, Entity};
    Entity::find().filter(Column::Name.eq(name)).count(&app.db.conn).await.expect("개수")
}

/// 고유한 쿠폰 이름 (100자, 한 글자 3바이트): 답을 크게 만들고, 데이터베이스에서 이 요청이 만든 쿠폰만 센다.
fn unique_name() -> String {
    let tag = Uuid::new_v4().simple().to_string();
    let mut name: String = tag.chars().take(12).collect();
    name.extend(std::iter::repeat_n('쿠', 100 - 12));
    name
}

/// `createCoupon` 하나, 그 답의 `name`을 `aliases`번 (별칭) 고른다.
fn create_body(name: &str, aliases: usize) -> Value {
    let picks: String = (0..aliases).map(|i| format!("n{i}: name ")).collect();
    json!({
        "query": format!(
            r#"mutation($name: String!) {{ createCoupon(input: {{ name: $name, discountType: FIXED, discountValue: "1000", validFrom: "2025-01-01T00:00:00Z", validUntil: "2099-01-01T00:00:00Z" }}) {{ id {picks} }} }}"#
        ),
        "variables": { "name": name },
    })
}

/// 답이 64 KB를 넘는 키 있는 변경: 재시도는 같은 바이트를 `Idempotent-Replayed: true`로 받고, 변경은 한 번.
/// (고치기 전 MariaDB: TEXT 열이 답을 담지 못해 재시도가 409, 60초 뒤에는 쿠폰이 하나 더 만들어졌다.)
async fn an_answer_over_64_kb_is_kept_and_replayed_byte_for_byte(app: TestApp) {
    let admin = token(new_user(&app.db.conn).await.id, Role::Admin);
    let name = unique_name();
    let body = create_body(&name, 400);
    let (s1, r1, first) = keyed(&app, &admin, "big-1", &body).await;
    assert_eq!((s1, r1), (200, None), "{}", String::from_utf8_lossy(&first[..first.len().min(300)]));
    assert!(first.len() > 100 * 1024, "답이 64 KB를 넉넉히 넘어야 한다: {} 바이트", first.len());
    assert_eq!(json_of(&first)["data"]["createCoupon"]["n399"], name.as_str());
    for _ in 0..2 {
        let (s, r, again) = keyed(&app, &admin, "big-1", &body).await;
        assert_eq!((s, r.as_deref()), (200, Some("true")), "{}", String::from_utf8_lossy(&again[..again.len().min(300)]));
        assert!(again == first, "같은 바이트 ({} / {} 바이트)", again.len(), first.len());
    }
    assert_eq!(coupons_named(&app, &name).await, 1, "변경은 한 번");
}
e2e_on_all_backends!(an_answer_over_64_kb_is_kept_and_replayed_byte_for_byte);

/// 원시 TCP로 키 있는 요청을 쓰고 답을 읽지 않고 바로 닫는다.
async fn send_and_hang_up(app: &TestApp, token: &str, key: &str, body: &Value) {
    let body = body.to_string();
    let mut s = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://")).await.expect("연결");
    let req = format!(
        "POST /graphql HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nAuthorization: Bearer {token}\r\nIdempotency-Key: {key}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("쓰기");
    s.shutdown().await.expect("닫기");
    drop(s);
}

/// 데이터베이스를 `check`가 참이 될 때까지 (5초까지) 본다. 재시도는 보내지 않는다: 끊긴 요청 스스로 실행되어야 한다.
async fn eventually(mut check: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..100 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// 요청을 보내자마자 끊는 클라이언트: 키 있는 변경은 그래도 한 번 실행되고, 그 키의 재시도는 보관된 답을 받는다.
/// 자리를 잡는 변경(`createCoupon`)과 변경과 같은 트랜잭션에 키를 기록하는 변경(`issueCoupon`) 둘 다.
/// (고치기 전: 키 조회가 작업을 띄우기 전에 기다려서 hyper가 핸들러를 버렸고, 아무것도 실행되지 않았다.)
async fn a_keyed_mutation_whose_client_hangs_up_at_once_still_runs_once(app: TestApp) {
    let admin_user = new_user(&app.db.conn).await;
    let admin = token(admin_user.id, Role::Admin);
    let name = unique_name();
    let create = create_body(&name, 1);
    let user = new_user(&app.db.conn).await;
    let t = token(user.id, Role::User);
    let coupon = new_coupon(&app.db.conn, Some(10)).await;
    let issue = json!({ "query": "mutation($c: ID!) { issueCoupon(couponId: $c) { id } }", "variables": { "c": coupon.id.to_string() } });
    send_and_hang_up(&app, &admin, "gone-1", &create).await;
    send_and_hang_up(&app, &t, "gone-2", &issue).await;
    assert!(eventually(async || coupons_named(&app, &name).await == 1).await, "끊긴 createCoupon이 실행되지 않았다");
    let db = &app.db.conn;
    assert!(
        eventually(async || couponql::repo::coupon::find_by_id(db, coupon.id).await.ok().flatten().is_some_and(|c| c.issued_quantity == 1))
            .await,
        "끊긴 issueCoupon이 실행되지 않았다"
    );
    // 재시도는 끊긴 요청의 결과를 받는다 (그 답이 아직 보관되는 중이면 409: 잠시 뒤 다시).
    let mut replays = Vec::new();
    for (tok, key, body) in [(&admin, "gone-1", &create), (&t, "gone-2", &issue)] {
        let mut got = None;
        for _ in 0..50 {
            let (status, r, v) = keyed(&app, tok, key, body).await;
            if status == 200 {
                got = Some((r, json_of(&v)));
                break;
            }
            assert_eq!(status, 409, "{}", String::from_utf8_lossy(&v));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        replays.push(got.unwrap_or_else(|| panic!("{key}의 재시도가 답을 받지 못함")));
    }
    assert_eq!(replays[0].0.as_deref(), Some("true"), "{}", replays[0].1);
    assert_eq!(replays[0].1["data"]["createCoupon"]["n0"], name.as_str());
    assert_eq!(replays[1].0.as_deref(), Some("true"), "{}", replays[1].1);
    let rows = couponql::repo::user_coupon::list_by_user(db, user.id, false).await.expect("목록");
    assert_eq!(rows.len(), 1);
    assert_eq!(replays[1].1["data"]["issueCoupon"]["id"], rows[0].0.id.to_string(), "재시도의 답이 끊긴 요청이 만든 발급 내역");
    assert_eq!(coupons_named(&app, &name).await, 1, "재시도는 다시 만들지 않는다");
    assert_eq!(assert_invariant(db, coupon.id).await, 1);
}
backend_tests!(a_keyed_mutation_whose_client_hangs_up_at_once_still_runs_once, crate::helpers::spawn_app, mysql => MySql; postgres => Postgres; sqlite => Sqlite);

/// 이미 쓴 키를 루트 필드가 둘인 다른 본문에 다시 쓰면 422 IDEMPOTENCY_KEY_REUSED이고 아무것도 실행되지 않는다
/// (키 조회가 루트 필드 하나 규칙보다 먼저). 처음 보는 키의 두 루트 필드는 여전히 400 BAD_USER_INPUT.
async fn a_used_key_on_a_two_root_body_is_reused_not_bad_input(app: TestApp) {
    let user = new_user(&app.db.conn).await;
    let t = token(user.id, Role::User);
    let first = new_coupon(&app.db.conn, Some(5)).await;
    let (b, c) = (new_coupon(&app.db.conn, Some(5)).await, new_coupon(&app.db.conn, Some(5)).await);
    let issue = json!({ "query": format!(r#"mutation {{ issueCoupon(couponId: "{}") {{ id }} }}"#, first.id) });
    let (s, _, v) = keyed(&app, &t, "used", &issue).await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&v));
    let two = json!({ "query": format!(r#"mutation {{ a: issueCoupon(couponId: "{}") {{ id }} b: issueCoupon(couponId: "{}") {{ id }} }}"#, b.id, c.id) });
    let (s, r, v) = keyed(&app, &t, "used", &two).await;
    let v = json_of(&v);
    assert_eq!((s, first_code(&v), r), (422, Some("IDEMPOTENCY_KEY_REUSED"), None), "{v}");
    let (s, _, v) = keyed(&app, &t, "never-used", &two).await;
    let v = json_of(&v);
    assert_eq!((s, first_code(&v)), (400, Some("BAD_USER_INPUT")), "{v}");
    assert_eq!(assert_invariant(&app.db.conn, b.id).await, 0, "아무것도 실행되지 않았다");
    assert_eq!(assert_invariant(&app.db.conn, c.id).await, 0, "아무것도 실행되지 않았다");
    assert_eq!(assert_invariant(&app.db.conn, first.id).await, 1);
    // 첫 요청의 답은 그대로 남아 있다.
    let (s, r, _) = keyed(&app, &t, "used", &issue).await;
    assert_eq!((s, r.as_deref()), (200, Some("true")));
}
e2e_on_all_backends!(a_used_key_on_a_two_root_body_is_reused_not_bad_input);

/// ADMIN 토큰으로 보관된 답은 같은 사용자의 USER 토큰에 돌려주지 않는다: 같은 키와 본문이어도 FORBIDDEN이고
/// 아무것도 실행되지 않는다. 답이 보관된 변경(`createCoupon`)도, 변경과 같은 트랜잭션에 기록된 변경
/// (ADMIN이 다른 사용자에게 한 `issueCoupon`)도. USER 토큰으로 보관된 답은 ADMIN 토큰에 돌려준다.
async fn an_admin_answer_is_not_replayed_to_the_same_users_user_token(app: TestApp) {
    let me = new_user(&app.db.conn).await;
    let (admin, user) = (token(me.id, Role::Admin), token(me.id, Role::User));
    let name = unique_name();
    let create = create_body(&name, 1);
    let (s, _, kept) = keyed(&app, &admin, "role-1", &create).await;
    assert_eq!(json_of(&kept)["data"]["createCoupon"]["n0"], name.as_str(), "{s}");
    let (s, r, v) = keyed(&app, &user, "role-1", &create).await;
    let v = json_of(&v);
    assert_eq!((s, r, first_code(&v)), (200, None, Some("FORBIDDEN")), "{v}");
    assert!(v["data"].is_null() && !v.to_string().contains(&name), "보관된 답이 새지 않는다: {v}");
    // 거절은 아무것도 보관하지 않았다: ADMIN의 재시도는 여전히 처음 답.
    let (s, r, again) = keyed(&app, &admin, "role-1", &create).await;
    assert_eq!((s, r.as_deref()), (200, Some("true")));
    assert!(again == kept);
    assert_eq!(coupons_named(&app, &name).await, 1);

    // 변경과 같은 트랜잭션에 기록된 키: ADMIN이 다른 사용자에게 발급.
    let other = new_user(&app.db.conn).await;
    let coupon = new_coupon(&app.db.conn, Some(5)).await;
    let issue = json!({
        "query": "mutation($c: ID!, $u: ID!) { issueCoupon(couponId: $c, userId: $u) { id userId } }",
        "variables": { "c": coupon.id.to_string(), "u": other.id.to_string() },
    });
    let (s, _, v) = keyed(&app, &admin, "role-2", &issue).await;
    let issued = json_of(&v);
    assert_eq!((s, issued["data"]["issueCoupon"]["userId"].as_str()), (200, Some(other.id.to_string().as_str())), "{issued}");
    let (s, r, v) = keyed(&app, &user, "role-2", &issue).await;
    let v = json_of(&v);
    assert_eq!((s, r, first_code(&v)), (200, None, Some("FORBIDDEN")), "{v}");
    assert!(v["data"].is_null(), "{v}");
    assert_eq!(assert_invariant(&app.db.conn, coupon.id).await, 1);

    // 거꾸로: USER 토큰으로 보관된 답은 ADMIN 토큰이 같은 키로 받는다 (ADMIN은 USER가 하는 일을 모두 할 수 있다).
    let mine = new_coupon(&app.db.conn, Some(5)).await;
    let own = json!({ "query": format!(r#"mutation {{ issueCoupon(couponId: "{}") {{ id }} }}"#, mine.id) });
    let (_, _, first) = keyed(&app, &user, "role-3", &own).await;
    let (s, r, again) = keyed(&app, &admin, "role-3", &own).await;
    assert_eq!((s, r.as_deref()), (200, Some("true")), "{}", String::from_utf8_lossy(&again));
    assert_eq!(json_of(&first), json_of(&again));
    assert_eq!(assert_invariant(&app.db.conn, mine.id).await, 1);
}
e2e_on_all_backends!(an_admin_answer_is_not_replayed_to_the_same_users_user_token);
