//! 웹소켓의 한도 (CONTRACT 2절, 3절, 9절; 이슈 18의 3·4번): 노는 소켓 공격(주소별·전체 한도는 업그레이드 전 503),
//! `connection_init` 마감(4408), ping에 답하지 않는 소켓, 토큰 만료(4403), 소켓에서는 루트 필드 하나인 구독만, 구독 지표.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use couponql::domain::Role;
use couponql::http::ws::WsLimits;
use futures::{SinkExt, StreamExt};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use uuid::Uuid;

use crate::helpers::{TEST_SECRET, TestApp, TestDb, new_coupon, new_users, start_app, token};
use crate::{backend_tests, e2e_on_all_backends};

/// 데이터베이스와 상관없는 시험: SQLite 하나로.
macro_rules! on_sqlite {
    ($name:ident) => {
        backend_tests!($name, $crate::helpers::fresh_db, sqlite => Sqlite);
    };
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// 이 한도로 서버를 띄운다. 127.0.0.1을 프록시로 믿으므로 `X-Forwarded-For`가 클라이언트 주소가 된다.
async fn serve(db: &TestDb, limits: WsLimits) -> String {
    start_app(db.conn.clone(), |s| s.trusted_proxies = Some("127.0.0.1".into()), move |app| app.with_ws_limits(limits)).await
}

/// 업그레이드를 시도한다: 소켓, 또는 업그레이드되지 않은 답의 (상태, `Connection` 헤더).
async fn open(base: &str, forwarded_for: Option<&str>) -> Result<Ws, (u16, String)> {
    let url = format!("{}/graphql/ws", base.replace("http://", "ws://"));
    let mut req = url.into_client_request().expect("요청");
    req.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().expect("헤더"));
    if let Some(ip) = forwarded_for {
        req.headers_mut().insert("x-forwarded-for", ip.parse().expect("헤더"));
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let connection = resp.headers().get("connection").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            Err((resp.status().as_u16(), connection))
        }
        Err(e) => panic!("웹소켓 연결 실패: {e}"),
    }
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.expect("보내기");
}

/// 다음 JSON 메시지 (서버의 `ping`은 `pong`으로 답하고 건너뛴다). 닫히면 Err(닫는 코드).
async fn recv(ws: &mut Ws) -> Result<Value, u16> {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("5초 안에 메시지");
        match m {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).expect("JSON");
                if v["type"] == "ping" {
                    send(ws, json!({ "type": "pong" })).await;
                    continue;
                }
                return Ok(v);
            }
            Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| u16::from(f.code)).unwrap_or(0)),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Err(0),
        }
    }
}

/// 닫힐 때까지 읽는다 (그동안 `ping`에 답한다): (닫는 코드, 닫힌 시각).
async fn closed(ws: &mut Ws, within: Duration) -> (u16, Instant) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let m = tokio::time::timeout_at(deadline, ws.next()).await.expect("제때 닫혀야 함");
        match m {
            // 닫는 중인 소켓에 쓰기는 실패할 수 있다.
            Some(Ok(Message::Text(t))) if t.contains(r#""type":"ping""#) => {
                let _ = ws.send(Message::Text(json!({ "type": "pong" }).to_string().into())).await;
            }
            Some(Ok(Message::Close(frame))) => return (frame.map(|f| u16::from(f.code)).unwrap_or(0), Instant::now()),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return (0, Instant::now()),
        }
    }
}

/// 이 id의 다음 메시지 (다른 구독의 것은 건너뛴다).
async fn recv_for(ws: &mut Ws, id: &str) -> Value {
    loop {
        let m = recv(ws).await.expect("메시지");
        if m["id"] == id {
            return m;
        }
    }
}

async fn init(ws: &mut Ws, payload: Value) -> Result<Value, u16> {
    send(ws, json!({ "type": "connection_init", "payload": payload })).await;
    recv(ws).await
}

fn stock(id: &str, coupon: Uuid) -> Value {
    json!({ "id": id, "type": "subscribe", "payload": {
        "query": "subscription($c: ID!) { couponStock(couponId: $c) { issuedQuantity soldOut } }", "variables": { "c": coupon } } })
}

fn subscribe(id: &str, query: &str) -> Value {
    json!({ "id": id, "type": "subscribe", "payload": { "query": query } })
}

fn error_code(m: &Value) -> &str {
    m["payload"][0]["extensions"]["code"].as_str().unwrap_or_default()
}

async fn coupons(db: &TestDb) -> i64 {
    let sql = "SELECT COUNT(*) AS n FROM coupons";
    let row = db.conn.query_one_raw(sea_orm::Statement::from_string(db.conn.get_database_backend(), sql)).await.expect("세기").expect("행");
    row.try_get("", "n").expect("n")
}

/// 노는 소켓 공격: 한 주소에서 150개, 주소 100개에서 4개씩 400개를 한꺼번에 연다. 주소별 100개와 전체 300개
/// (시험용으로 낮춘 한도)를 넘는 업그레이드는 업그레이드되지 않고 503(`Connection: close`)이고, 그동안 HTTP 탐침은
/// 모두 1초 안에 답을 받는다. 소켓을 닫으면 자리가 돌아온다.
async fn idle_sockets_beyond_the_caps_are_refused_with_503_before_the_upgrade_and_http_stays_prompt(db: TestDb) {
    // connection_init 마감이 공격 도중에 소켓을 닫지 않도록 길게.
    let limits = WsLimits { total: 300, init_timeout: Duration::from_secs(60), ..WsLimits::default() };
    let base = serve(&db, limits).await;
    let stop = Arc::new(AtomicBool::new(false));
    let probes = tokio::spawn({
        let (base, stop) = (base.clone(), stop.clone());
        async move {
            let http = reqwest::Client::new();
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let r = http
                    .post(format!("{base}/graphql"))
                    .header("content-type", "application/json")
                    .body(r#"{"query":"{ __typename }"}"#)
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await;
                let ok = matches!(&r, Ok(resp) if resp.status() == 200);
                seen.push((ok, t.elapsed()));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            seen
        }
    });

    let started = Instant::now();
    let one = futures::future::join_all((0..150).map(|_| open(&base, None))).await;
    let many = futures::future::join_all((0..400).map(|i| {
        let ip = format!("10.1.{}.{}", i / 4 / 200, i / 4 % 200 + 1);
        let base = base.clone();
        async move { open(&base, Some(&ip)).await }
    }))
    .await;
    let opened_in = started.elapsed();
    let (held_one, refused_one): (Vec<_>, Vec<_>) = one.into_iter().partition(Result::is_ok);
    let (held_many, refused_many): (Vec<_>, Vec<_>) = many.into_iter().partition(Result::is_ok);
    assert_eq!(held_one.len(), 100, "한 주소에서 100개까지");
    assert_eq!(held_many.len(), 200, "전체 300개까지");
    for r in refused_one.iter().chain(&refused_many) {
        assert_eq!(r.as_ref().err(), Some(&(503, "close".to_owned())), "업그레이드 전에 503과 Connection: close");
    }
    // 한도까지 찬 채로 2초 동안 탐침을 계속 보낸다.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let seen = probes.await.expect("탐침");
    let answered = seen.iter().filter(|(ok, at)| *ok && *at < Duration::from_secs(1)).count();
    let slowest = seen.iter().map(|(_, at)| *at).max().unwrap_or_default();
    println!(
        "550 upgrades in {opened_in:?}: {} held, {} refused with 503; HTTP probes answered within 1 s: {answered}/{}, slowest {slowest:?}",
        held_one.len() + held_many.len(),
        refused_one.len() + refused_many.len(),
        seen.len()
    );
    assert!(seen.len() >= 10, "탐침이 너무 적음: {}", seen.len());
    assert_eq!(answered, seen.len(), "탐침은 모두 1초 안에 200: 가장 느린 것 {slowest:?}");

    // 닫으면 자리가 돌아온다 (서버가 소켓의 끝을 보면 세는 수를 줄인다).
    drop(held_one);
    drop(held_many);
    let deadline = Instant::now() + Duration::from_secs(5);
    let again = loop {
        match open(&base, None).await {
            Ok(ws) => break ws,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("닫은 소켓의 자리가 돌아오지 않음: {e:?}"),
        }
    };
    drop(again);
}
on_sqlite!(idle_sockets_beyond_the_caps_are_refused_with_503_before_the_upgrade_and_http_stays_prompt);

/// `connection_init`을 보내지 않는 소켓은 10초에 4408로 닫힌다 (3초 전에는 닫히지 않는다). 1초 뒤에 보낸 소켓은 남는다.
async fn a_socket_that_sends_no_connection_init_is_closed_with_4408_after_10_s(db: TestDb) {
    let base = serve(&db, WsLimits::default()).await;
    let started = Instant::now();
    let mut silent = open(&base, None).await.expect("소켓");
    let mut polite = open(&base, None).await.expect("소켓");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(init(&mut polite, json!({})).await.expect("ack")["type"], "connection_ack");

    let (code, at) = closed(&mut silent, Duration::from_secs(12)).await;
    let after = at - started;
    println!("a socket without connection_init was closed with {code} after {after:?}");
    assert_eq!(code, 4408);
    assert!(after >= Duration::from_secs(3), "3초 전에 닫힘: {after:?}");
    assert!(after >= Duration::from_millis(9_500) && after <= Duration::from_millis(11_500), "10초에 닫혀야 함: {after:?}");
    // 초기화한 소켓은 그대로: ping에 pong으로 답한다.
    send(&mut polite, json!({ "type": "ping" })).await;
    assert_eq!(recv(&mut polite).await.expect("pong")["type"], "pong");
}
on_sqlite!(a_socket_that_sends_no_connection_init_is_closed_with_4408_after_10_s);

/// 업그레이드하고 `connection_init`만 보낸 뒤 아무것도 쓰지 않는 날것의 TCP 클라이언트 (tungstenite는 읽을 때
/// ws Ping에 스스로 답하므로 "답하지 않는" 클라이언트가 될 수 없다). 프레임을 읽기만 하다가, 닫는 프레임의
/// 코드와 그것이 온 시각을 돌려준다.
async fn deaf_socket_close(base: &str, within: Duration) -> (u16, Instant, usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("TCP");
    let upgrade = format!(
        "GET /graphql/ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
    );
    tcp.write_all(upgrade.as_bytes()).await.expect("업그레이드 요청");
    // 클라이언트 프레임은 가려야 한다: 가림 키 0은 본문을 그대로 둔다.
    let init = br#"{"type":"connection_init"}"#;
    let mut frame = vec![0x81, 0x80 | init.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(init);
    tcp.write_all(&frame).await.expect("connection_init");
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut pings = 0;
    // 다음 프레임이 시작하는 곳 (응답 헤더를 다 받기 전에는 없음).
    let mut next: Option<usize> = None;
    loop {
        let n = tokio::time::timeout_at(deadline, tcp.read(&mut chunk)).await.expect("제때 닫혀야 함").expect("읽기");
        assert!(n > 0, "닫는 프레임 없이 끊김");
        buf.extend_from_slice(&chunk[..n]);
        // 응답 헤더를 건너뛰고, 그다음은 서버의 프레임들 (가리지 않음).
        if next.is_none() {
            let Some(head) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
            assert!(buf.starts_with(b"HTTP/1.1 101"), "업그레이드되지 않음");
            next = Some(head + 4);
        }
        let Some(at) = next.as_mut() else { continue };
        while *at + 2 <= buf.len() {
            let (opcode, short) = (buf[*at] & 0x0f, (buf[*at + 1] & 0x7f) as usize);
            let (len, body) = match short {
                126 if *at + 4 <= buf.len() => (u16::from_be_bytes([buf[*at + 2], buf[*at + 3]]) as usize, *at + 4),
                126 | 127 => break,
                n => (n, *at + 2),
            };
            if body + len > buf.len() {
                break;
            }
            match opcode {
                0x8 => return (u16::from_be_bytes([buf[body], buf[body + 1]]), Instant::now(), pings),
                0x9 => pings += 1,
                _ => {}
            }
            *at = body + len;
        }
    }
}

/// ping에 아무것도 답하지 않는 소켓은 무응답 한도(시험용 1초)에 3008로 닫히고, 답하는 소켓은 남는다.
async fn a_socket_that_answers_no_ping_is_closed_and_one_that_answers_stays(db: TestDb) {
    let limits = WsLimits { ping_every: Duration::from_millis(200), idle_timeout: Duration::from_secs(1), ..WsLimits::default() };
    let base = serve(&db, limits).await;
    let mut lively = open(&base, None).await.expect("소켓");
    assert_eq!(init(&mut lively, json!({})).await.expect("ack")["type"], "connection_ack");

    // 2.5초 동안: 하나는 아무것도 쓰지 않고, 하나는 ping마다 답한다.
    let started = Instant::now();
    let keep = async {
        let until = tokio::time::Instant::now() + Duration::from_millis(2500);
        let mut pings = 0;
        while let Ok(Some(Ok(m))) = tokio::time::timeout_at(until, lively.next()).await {
            if let Message::Text(t) = m
                && t.contains(r#""type":"ping""#)
            {
                pings += 1;
                send(&mut lively, json!({ "type": "pong" })).await;
            }
        }
        pings
    };
    let ((code, at, deaf_pings), pings) = tokio::join!(deaf_socket_close(&base, Duration::from_secs(3)), keep);
    let after = at - started;
    println!("the deaf socket got {deaf_pings} ws pings and was closed with {code} after {after:?}; the lively one answered {pings} pings");
    assert_eq!(code, 3008, "답하지 않는 소켓은 닫힌다");
    assert!(after >= Duration::from_millis(900) && after <= Duration::from_millis(1800), "무응답 1초에 닫혀야 함: {after:?}");
    assert!(deaf_pings >= 3, "서버는 ws Ping 프레임도 보낸다: {deaf_pings}");
    assert!(pings >= 5, "서버가 200 ms마다 ping을 보내야 함: {pings}");
    send(&mut lively, json!({ "type": "ping" })).await;
    assert_eq!(recv(&mut lively).await.expect("답하는 소켓은 남는다")["type"], "pong");
}
on_sqlite!(a_socket_that_answers_no_ping_is_closed_and_one_that_answers_stays);

/// HS256으로 서명한 토큰, `exp`를 고른다.
fn token_expiring_at(user: Uuid, role: &str, exp: i64) -> String {
    let claims = json!({ "sub": user.to_string(), "role": role, "exp": exp });
    let key = jsonwebtoken::EncodingKey::from_secret(TEST_SECRET.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), &claims, &key).expect("서명")
}

/// 2초 뒤에 만료되는 ADMIN 토큰으로 연 소켓은 `exp` + 5초(허용 오차)에 4403으로 닫히고(그 전에는 아니다), 그 뒤의
/// 시도는 아무것도 실행하지 않는다. 같은 토큰으로 다시 열면 초기화에서 4403이다.
async fn a_socket_is_closed_with_4403_when_its_token_expires_and_nothing_runs_after(db: TestDb) {
    let base = serve(&db, WsLimits::default()).await;
    let coupon = new_coupon(&db.conn, Some(5)).await;
    let admin = new_users(&db.conn, 1).await.remove(0);
    let exp = chrono::Utc::now().timestamp() + 2;
    let expiring = token_expiring_at(admin.id, "ADMIN", exp);
    let mut ws = open(&base, None).await.expect("소켓");
    assert_eq!(init(&mut ws, json!({ "Authorization": format!("Bearer {expiring}") })).await.expect("ack")["type"], "connection_ack");
    send(&mut ws, stock("s", coupon.id)).await;
    assert_eq!(recv(&mut ws).await.expect("next")["type"], "next");
    let before = coupons(&db).await;

    let (code, _) = closed(&mut ws, Duration::from_secs(10)).await;
    let closed_at_ms = chrono::Utc::now().timestamp_millis();
    let until_ms = (exp + 5) * 1000;
    println!("the socket was closed with {code} {} ms after exp + 5 s", closed_at_ms - until_ms);
    assert_eq!(code, 4403);
    assert!(closed_at_ms >= until_ms - 50, "허용 오차 전에 닫힘: {} ms 일찍", until_ms - closed_at_ms);
    assert!(closed_at_ms <= until_ms + 1500, "만료 뒤 1.5초 넘게 열려 있었음: {} ms", closed_at_ms - until_ms);

    // 닫힌 소켓으로 보내는 것은 아무것도 실행하지 않는다.
    let create = r#"mutation { createCoupon(input: { name: "만료 뒤", discountType: FIXED, discountValue: "1000", validFrom: "2025-01-01T00:00:00Z", validUntil: "2099-01-01T00:00:00Z" }) { id } }"#;
    let _ = ws.send(Message::Text(subscribe("late", create).to_string().into())).await;
    // 만료된 토큰으로는 새 소켓도 초기화되지 않는다 (jsonwebtoken은 초 단위로 비교하므로 그다음 초까지 기다린다).
    let wait_ms = ((exp + 6) * 1000 - chrono::Utc::now().timestamp_millis()).max(0) as u64;
    tokio::time::sleep(Duration::from_millis(wait_ms)).await;
    let mut again = open(&base, None).await.expect("소켓");
    assert_eq!(init(&mut again, json!({ "Authorization": format!("Bearer {expiring}") })).await.err(), Some(4403));
    assert_eq!(coupons(&db).await, before, "만료 뒤에 쿠폰이 만들어짐");
}
on_sqlite!(a_socket_is_closed_with_4403_when_its_token_expires_and_nothing_runs_after);

/// 소켓으로 온 query와 mutation(ADMIN의 createCoupon)은 그 id에 BAD_REQUEST `error` 하나를 받고 아무것도 실행되지
/// 않으며(쿠폰 수 그대로), 소켓은 열린 채 구독을 받는다.
async fn queries_and_mutations_over_the_socket_get_bad_request_and_run_nothing(app: TestApp) {
    let coupon = new_coupon(&app.db.conn, Some(5)).await;
    let admin = new_users(&app.db.conn, 1).await.remove(0);
    let before = coupons(&app.db).await;
    let mut ws = open(&app.base, None).await.expect("소켓");
    assert_eq!(
        init(&mut ws, json!({ "Authorization": format!("Bearer {}", token(admin.id, Role::Admin)) })).await.expect("ack")["type"],
        "connection_ack"
    );

    let create = r#"mutation { createCoupon(input: { name: "소켓으로", discountType: FIXED, discountValue: "1000", validFrom: "2025-01-01T00:00:00Z", validUntil: "2099-01-01T00:00:00Z" }) { id } }"#;
    send(&mut ws, subscribe("m", create)).await;
    let m = recv(&mut ws).await.expect("오류");
    assert_eq!((m["type"].as_str(), m["id"].as_str(), error_code(&m)), (Some("error"), Some("m"), "BAD_REQUEST"), "{m}");
    // 이름으로 고른 연산이 판단된다: 같은 문서라도 query를 고르면 거절.
    let doc = "query Q { coupons { id } } subscription S { couponStock(couponId: \"x\") { soldOut } }";
    send(&mut ws, json!({ "id": "q", "type": "subscribe", "payload": { "query": doc, "operationName": "Q" } })).await;
    let q = recv(&mut ws).await.expect("오류");
    assert_eq!((q["type"].as_str(), q["id"].as_str(), error_code(&q)), (Some("error"), Some("q"), "BAD_REQUEST"), "{q}");

    send(&mut ws, stock("s", coupon.id)).await;
    let s = recv(&mut ws).await.expect("소켓은 열려 있고 구독은 된다");
    assert_eq!((s["type"].as_str(), s["id"].as_str()), (Some("next"), Some("s")), "{s}");
    assert_eq!(coupons(&app.db).await, before, "소켓으로 보낸 mutation이 실행됨");
}
e2e_on_all_backends!(queries_and_mutations_over_the_socket_get_bad_request_and_run_nothing);

/// 루트 필드가 둘인 구독(별칭 둘, 조각으로 둘, 별칭 1,000개)은 GRAPHQL_VALIDATION_FAILED `error` 하나를 받고
/// 스트림은 시작되지 않는다: 그다음 메시지는 뒤에 보낸 올바른 구독의 것이다.
async fn a_subscription_with_more_than_one_root_field_is_refused_and_starts_no_stream(db: TestDb) {
    let base = serve(&db, WsLimits::default()).await;
    let coupon = new_coupon(&db.conn, Some(5)).await;
    let c = coupon.id;
    let mut ws = open(&base, None).await.expect("소켓");
    assert_eq!(init(&mut ws, json!({})).await.expect("ack")["type"], "connection_ack");

    let two = format!(r#"subscription {{ a: couponStock(couponId: "{c}") {{ soldOut }} b: couponStock(couponId: "{c}") {{ soldOut }} }}"#);
    let spread = format!(
        r#"subscription {{ ...F }} fragment F on Subscription {{ a: couponStock(couponId: "{c}") {{ soldOut }} b: couponStock(couponId: "{c}") {{ soldOut }} }}"#
    );
    let aliases: String = (0..1000).map(|i| format!("a{i}: couponStock(couponId: $c) {{ soldOut }} ")).collect();
    let thousand = format!("subscription($c: ID!) {{ {aliases} }}");
    assert!(thousand.len() < 60 * 1024, "{}", thousand.len());
    for (id, query) in [("two", &two), ("spread", &spread), ("thousand", &thousand)] {
        let started = Instant::now();
        send(&mut ws, json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": { "c": c } } })).await;
        let m = recv(&mut ws).await.expect("오류");
        println!("{id}: {} after {:?}", error_code(&m), started.elapsed());
        assert_eq!((m["type"].as_str(), m["id"].as_str(), error_code(&m)), (Some("error"), Some(id), "GRAPHQL_VALIDATION_FAILED"), "{m}");
    }
    send(&mut ws, stock("one", c)).await;
    let next = recv(&mut ws).await.expect("next");
    assert_eq!((next["type"].as_str(), next["id"].as_str()), (Some("next"), Some("one")), "거절된 구독에서 온 메시지: {next}");
}
on_sqlite!(a_subscription_with_more_than_one_root_field_is_refused_and_starts_no_stream);

/// `couponql_graphql_requests_total`에서 이 라벨들의 값 (없으면 0).
async fn requests_total(base: &str, operation_type: &str, code: &str) -> f64 {
    let text = reqwest::get(format!("{base}/metrics")).await.expect("지표").text().await.expect("본문");
    let (ty, code) = (format!(r#"operation_type="{operation_type}""#), format!(r#"code="{code}""#));
    text.lines()
        .filter(|l| l.starts_with("couponql_graphql_requests_total{") && l.contains(&ty) && l.contains(&code))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// 구독은 시작할 때 한 번 센다: 첫 메시지가 `next`면 OK(뒤따르는 변경은 세지 않는다), 아니면 첫 오류의 코드
/// (리졸버의 BAD_USER_INPUT, 우리가 보낸 GRAPHQL_VALIDATION_FAILED). 소켓으로 온 query는 query의 BAD_REQUEST.
async fn subscriptions_are_counted_once_when_they_start(app: TestApp) {
    let coupon = new_coupon(&app.db.conn, Some(5)).await;
    let users = new_users(&app.db.conn, 2).await;
    let base = &app.base;
    let ok = requests_total(base, "subscription", "OK").await;
    let bad_input = requests_total(base, "subscription", "BAD_USER_INPUT").await;
    let invalid = requests_total(base, "subscription", "GRAPHQL_VALIDATION_FAILED").await;
    let query = requests_total(base, "query", "BAD_REQUEST").await;

    let mut ws = open(base, None).await.expect("소켓");
    assert_eq!(init(&mut ws, json!({})).await.expect("ack")["type"], "connection_ack");
    send(&mut ws, stock("ok", coupon.id)).await;
    assert_eq!(recv(&mut ws).await.expect("next")["type"], "next");
    // 변경 두 번: 메시지는 더 오지만 시작은 한 번이다.
    for u in &users {
        let body = json!({ "query": format!("mutation {{ issueCoupon(couponId: \"{}\") {{ id }} }}", coupon.id) });
        assert_eq!(app.raw(Some(&token(u.id, Role::User)), body.to_string()).await.0, 200);
        assert_eq!(recv(&mut ws).await.expect("변경")["type"], "next");
    }
    send(&mut ws, subscribe("bad", r#"subscription { couponStock(couponId: "not-a-uuid") { soldOut } }"#)).await;
    let m = recv_for(&mut ws, "bad").await;
    assert_eq!(m["payload"]["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{m}");
    let two = format!(
        r#"subscription {{ a: couponStock(couponId: "{0}") {{ soldOut }} b: couponStock(couponId: "{0}") {{ soldOut }} }}"#,
        coupon.id
    );
    send(&mut ws, subscribe("two", &two)).await;
    assert_eq!(error_code(&recv_for(&mut ws, "two").await), "GRAPHQL_VALIDATION_FAILED");
    send(&mut ws, subscribe("q", "{ __typename }")).await;
    assert_eq!(error_code(&recv_for(&mut ws, "q").await), "BAD_REQUEST");

    // 지표는 프로세스 전체의 것이라 함께 도는 다른 시험도 더한다: 적어도 하나씩.
    assert!(requests_total(base, "subscription", "OK").await >= ok + 1.0, "OK로 시작한 구독이 세어지지 않음");
    assert!(requests_total(base, "subscription", "BAD_USER_INPUT").await >= bad_input + 1.0);
    assert!(requests_total(base, "subscription", "GRAPHQL_VALIDATION_FAILED").await >= invalid + 1.0);
    assert!(requests_total(base, "query", "BAD_REQUEST").await >= query + 1.0);
}
crate::backend_tests!(subscriptions_are_counted_once_when_they_start, crate::helpers::spawn_app, sqlite => Sqlite);
