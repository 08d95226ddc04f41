//! 대상 고객 CSV 가져오기 (CONTRACT 11절 "Audiences"): `POST /admin/coupons/{id}/audience.csv`의 거절들, 머리 줄·CRLF·빈 줄,
//! 모르는 id, 잘못된 줄(`line`, 아무것도 넣지 않음), 두 번 가져오기, 가져온 뒤의 발급, 64 MiB 초과, 종료 때의 되돌림.
use std::time::{Duration, Instant};

use couponql::config::DbSettings;
use couponql::domain::{CouponStatus, Role, Viewer};
use couponql::service::coupons;
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::audience::events_of;
use crate::helpers::{TestApp, TestDb, new_restricted_coupon, new_user, new_users, reconnect, start_stoppable, token};
use crate::{e2e_on_all_backends, on_all_backends};

fn admin() -> String {
    token(Uuid::new_v4(), Role::Admin)
}

/// 가져오기 요청 하나: (상태, JSON 본문).
async fn import(
    http: &reqwest::Client,
    base: &str,
    coupon: &str,
    auth: Option<&str>,
    ct: Option<&str>,
    body: reqwest::Body,
) -> (u16, Value) {
    let mut req = http.post(format!("{base}/admin/coupons/{coupon}/audience.csv")).body(body);
    if let Some(t) = auth {
        req = req.bearer_auth(t);
    }
    if let Some(ct) = ct {
        req = req.header("content-type", ct);
    }
    let resp = req.send().await.expect("HTTP");
    let status = resp.status().as_u16();
    (status, serde_json::from_str(&resp.text().await.unwrap_or_default()).unwrap_or(Value::Null))
}

async fn size(conn: &DatabaseConnection, coupon: Uuid) -> u64 {
    couponql::repo::audience::size(conn, coupon).await.expect("회원 수")
}

async fn gql(app: &TestApp, token: &str, query: &str) -> Value {
    app.raw(Some(token), json!({ "query": query }).to_string()).await.1
}

async fn csv_import_refuses_imports_and_is_idempotent(app: TestApp) {
    let c = &app.db.conn;
    let coupon = new_restricted_coupon(c, Some(10)).await;
    let id = coupon.id.to_string();
    let (m1, m2, n) = (new_user(c).await, new_user(c).await, new_user(c).await);
    let admin = admin();
    let csv = Some("text/csv; charset=utf-8");
    let send = |auth: Option<String>, ct: Option<&'static str>, coupon: String, body: String| {
        let (http, base) = (app.http.clone(), app.base.clone());
        async move { import(&http, &base, &coupon, auth.as_deref(), ct, body.into()).await }
    };
    let one = format!("{}\n", m1.id);

    // 권한이 먼저 (미디어 타입이 틀려도), 그다음 미디어 타입, 그다음 쿠폰.
    let (s, v) = send(None, Some("text/plain"), id.clone(), one.clone()).await;
    assert_eq!((s, v["errors"][0]["extensions"]["code"].clone()), (401, json!("UNAUTHENTICATED")), "{v}");
    let (s, v) = send(Some(token(n.id, Role::User)), csv, id.clone(), one.clone()).await;
    assert_eq!((s, v["errors"][0]["extensions"]["code"].clone()), (403, json!("FORBIDDEN")), "{v}");
    assert_eq!(send(Some(admin.clone()), Some("text/plain"), id.clone(), one.clone()).await.0, 415);
    assert_eq!(send(Some(admin.clone()), None, id.clone(), one.clone()).await.0, 415);
    let (s, v) = send(Some(admin.clone()), csv, Uuid::new_v4().to_string(), one.clone()).await;
    assert_eq!((s, v["errors"][0]["extensions"]["code"].clone()), (404, json!("COUPON_NOT_FOUND")), "{v}");
    assert_eq!(send(Some(admin.clone()), csv, "nope".into(), one.clone()).await.0, 404);
    assert_eq!(size(c, coupon.id).await, 0, "거절된 요청이 회원을 넣었다");

    // 머리 줄, CRLF, 빈 줄, 모르는 id, 되풀이: 모르는 id는 세고 적기만 한다.
    let ghost = Uuid::new_v4();
    let body = format!("user_id\r\n{}\r\n\r\n{ghost}\r\n  \r\n{}\r\n{}\r\n", m1.id, m2.id, m1.id);
    let (s, v) = send(Some(admin.clone()), Some("text/csv"), id.clone(), body.clone()).await;
    assert_eq!(s, 200, "{v}");
    let want = |added: u64| json!({ "couponId": id, "added": added, "removed": 0, "unknownUserIds": [ghost.to_string()], "unknownCount": 1, "audienceSize": 2 });
    assert_eq!(v, want(2));
    // 같은 파일을 다시: 넣은 것이 없다.
    let (s, v) = send(Some(admin.clone()), csv, id.clone(), body).await;
    assert_eq!((s, v), (200, want(0)));

    // UUID가 아닌 줄: 400, 물리적 줄 번호(머리 줄 포함), 그 앞의 좋은 줄도 넣지 않는다.
    let (s, v) = send(Some(admin.clone()), csv, id.clone(), format!("user_id\n{}\n\nnot-a-uuid\n{}\n", n.id, n.id)).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["errors"][0]["extensions"], json!({ "code": "BAD_USER_INPUT", "line": 4 }), "{v}");
    assert!(v["errors"][0]["message"].is_string(), "{v}");
    assert!(!couponql::repo::audience::is_member(c, coupon.id, n.id).await.expect("조회"), "잘못된 파일이 회원을 넣었다");
    assert_eq!(size(c, coupon.id).await, 2);

    // 가져온 회원은 받고, 아닌 사람은 NOT_ELIGIBLE.
    let issue = format!(r#"mutation {{ issueCoupon(couponId: "{id}") {{ id }} }}"#);
    let v = gql(&app, &token(m2.id, Role::User), &issue).await;
    assert!(v["data"]["issueCoupon"]["id"].is_string(), "{v}");
    let v = gql(&app, &token(n.id, Role::User), &issue).await;
    assert_eq!(v["errors"][0]["extensions"]["code"], "NOT_ELIGIBLE", "{v}");

    // 이벤트: 무언가 바꾼 가져오기 하나에 하나.
    let kinds = events_of(&app.db, coupon.id).await;
    assert_eq!(kinds.iter().filter(|k| *k == "COUPON_AUDIENCE_CHANGED").count(), 1, "{kinds:?}");

    // 보관된 쿠폰: 409.
    let a = Viewer { user_id: Uuid::new_v4(), role: Role::Admin };
    coupons::set_status(c, Some(&a), coupon.id, CouponStatus::Archived).await.expect("보관");
    let (s, v) = send(Some(admin), csv, id, format!("{}\n", n.id)).await;
    assert_eq!((s, v["errors"][0]["extensions"]["code"].clone()), (409, json!("COUPON_ARCHIVED")), "{v}");
}
e2e_on_all_backends!(csv_import_refuses_imports_and_is_idempotent);

/// 여러 조각에 걸친 가져오기: 조각 사이의 되풀이도 한 번만 넣고, 모르는 id는 다 세되 1,000개까지만 적는다.
/// 본문은 줄 가운데서 잘린 작은 조각들로 흘려 보낸다.
async fn a_large_import_spans_chunks(app: TestApp) {
    let c = &app.db.conn;
    let coupon = new_restricted_coupon(c, None).await;
    let members: Vec<Uuid> = new_users(c, 700).await.into_iter().map(|u| u.id).collect();
    let ghosts: Vec<Uuid> = (0..1100).map(|_| Uuid::new_v4()).collect();
    let mut text = String::from("user_id\n");
    for (i, g) in ghosts.iter().enumerate() {
        text.push_str(&format!("{g}\n{}\n", members[i % members.len()]));
    }
    // 앞 조각들에서 이미 넣은 회원을 끝에서 다시.
    for m in &members[..300] {
        text.push_str(&format!("{m}\n"));
    }
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> = text.as_bytes().chunks(777).map(|p| Ok(p.to_vec())).collect();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(pieces));
    let (s, v) = import(&app.http, &app.base, &coupon.id.to_string(), Some(&admin()), Some("text/csv"), body).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!((v["added"].clone(), v["unknownCount"].clone(), v["audienceSize"].clone()), (json!(700), json!(1100), json!(700)), "{v}");
    let listed = v["unknownUserIds"].as_array().expect("목록");
    assert_eq!(listed.len(), 1000);
    assert_eq!(listed[0], json!(ghosts[0].to_string()), "앞의 것부터 적는다");
    assert_eq!(size(c, coupon.id).await, 700);
}
e2e_on_all_backends!(a_large_import_spans_chunks);

/// 64 MiB를 넘는 본문 (길이를 밝히지 않고 흘려 보낸다): 413이고, 그때까지 읽은 좋은 줄도 넣지 않는다.
async fn an_import_over_64_mib_is_refused(app: TestApp) {
    let c = &app.db.conn;
    let coupon = new_restricted_coupon(c, None).await;
    let m = new_user(c).await;
    // 한 줄 1 KiB 남짓 (id 뒤의 공백은 줄의 일부): 조각 처리가 적어 빠르다.
    let line = format!("{}{}\n", m.id, " ".repeat(900));
    let piece = line.repeat(64);
    let count = 64 * 1024 * 1024 / piece.len() + 2;
    let stream = futures::stream::iter((0..count).map(move |_| Ok::<_, std::io::Error>(piece.clone().into_bytes())));
    let body = reqwest::Body::wrap_stream(stream);
    let mut req = app.http.post(format!("{}/admin/coupons/{}/audience.csv", app.base, coupon.id)).body(body);
    req = req.bearer_auth(admin()).header("content-type", "text/csv");
    match req.send().await {
        Ok(resp) => assert_eq!(resp.status().as_u16(), 413),
        // 서버가 답하고 닫는 사이에 클라이언트가 아직 보내고 있으면 답을 못 읽을 수 있다: 그래도 아무것도 넣지 않았어야 한다.
        Err(e) => println!("413 not read by the client: {e}"),
    }
    assert!(!couponql::repo::audience::is_member(c, coupon.id, m.id).await.expect("조회"), "413인데 회원을 넣었다");
}
e2e_on_all_backends!(an_import_over_64_mib_is_refused);

/// 종료 신호 때 진행 중인 가져오기: 커밋하지 않고 버리며, 종료가 그 요청을 기다리지 않는다. 본문의 나머지는 종료가 시작된
/// 뒤에 오므로, 가져오기가 종료를 보지 않으면 끝까지 가서 커밋한다 (이 시험이 잡는다).
async fn an_import_in_flight_at_shutdown_is_rolled_back(db: TestDb) {
    // 서버의 풀은 종료 때 닫히므로 확인은 다른 풀로 (SQLite는 메모리가 아닌 파일로).
    let (server_conn, check, file) = match db.backend {
        couponql::db::Backend::Sqlite => {
            let path = std::env::temp_dir().join(format!("couponql-import-{}.db", Uuid::new_v4()));
            let url = format!("sqlite://{}?mode=rwc", path.display());
            let server = couponql::db::connect(&url, &DbSettings::default()).await.expect("연결");
            couponql::db::migrate(&server).await.expect("마이그레이션");
            let check = couponql::db::connect(&url, &DbSettings::default()).await.expect("연결");
            (server, check, Some(path))
        }
        _ => (reconnect(&db, &DbSettings::default()).await, db.conn.clone(), None),
    };
    let coupon = new_restricted_coupon(&check, None).await;
    let members: Vec<Uuid> = new_users(&check, 600).await.into_iter().map(|u| u.id).collect();
    let (base, stop, server) = start_stoppable(server_conn).await;

    // 본문은 시험이 보내는 대로: 첫 조각 599줄, 종료 신호 뒤에 마지막 줄과 끝.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|piece| (piece, rx)) });
    let request = tokio::spawn({
        let (base, coupon) = (base.clone(), coupon.id.to_string());
        async move {
            let body = reqwest::Body::wrap_stream(stream);
            let resp = reqwest::Client::new()
                .post(format!("{base}/admin/coupons/{coupon}/audience.csv"))
                .bearer_auth(admin())
                .header("content-type", "text/csv")
                .body(body)
                .send()
                .await;
            resp.map(|r| r.status().as_u16())
        }
    });
    let first: String = members[..599].iter().map(|m| format!("{m}\n")).collect();
    tx.send(Ok(first.into_bytes())).await.expect("첫 조각");
    // 서버가 첫 500줄을 트랜잭션 안에서 넣을 틈.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stopping = Instant::now();
    stop.send(()).expect("종료 신호");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = tx.send(Ok(format!("{}\n", members[599]).into_bytes())).await;
    drop(tx);
    let status = tokio::time::timeout(Duration::from_secs(10), request).await.expect("답이 늦다").expect("요청 작업");
    assert!(!matches!(status, Ok(200)), "종료 중의 가져오기가 성공으로 답했다");
    tokio::time::timeout(Duration::from_secs(10), server).await.expect("종료가 끝나지 않는다").expect("서버 작업");
    // 진행 중인 요청을 기다리는 한도(7초)보다 훨씬 빨리: 가져오기가 종료를 붙잡지 않았다.
    let took = stopping.elapsed();
    assert!(took < Duration::from_secs(5), "종료에 {took:?}");
    assert_eq!(size(&check, coupon.id).await, 0, "종료 중의 가져오기가 커밋됐다");
    println!("[{:?}] import at shutdown answered {status:?}; shutdown took {took:?}", db.backend);
    check.close().await.ok();
    if let Some(path) = file {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}
on_all_backends!(an_import_in_flight_at_shutdown_is_rolled_back);
