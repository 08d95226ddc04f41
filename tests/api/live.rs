//! 실시간 재고(CONTRACT 9절): 다른 프로세스의 발급이 1초 안에 보이고, 초당 10개를 넘지 않으며 마지막 상태(매진)는 늘 온다.
//! 웹소켓(graphql-transport-ws): 첫 메시지, 변경, 매진, 없는 쿠폰, 잘못된 토큰(4403), 21번째 구독 거절.
use std::time::{Duration, Instant};

use couponql::domain::Role;
use couponql::service::issuance::{IssueMode, Issuer};
use couponql::service::stock::StockHub;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use uuid::Uuid;

use crate::helpers::{TestApp, TestDb, new_coupon, new_users, token};
use crate::{e2e_on_all_backends, on_all_backends};

/// 허브를 모르는 발급기(= 다른 프로세스)가 발급한 것이 폴러로 보이고, 메시지 사이는 100 ms 이상, 마지막은 매진.
async fn changes_from_another_process_arrive_throttled_and_the_sold_out_state_always_arrives(db: TestDb) {
    let coupon = new_coupon(&db.conn, Some(30)).await;
    let users = new_users(&db.conn, 30).await;
    let hub = StockHub::start(db.conn.clone());
    let mut stream = Box::pin(hub.watch(coupon.id).await.expect("지켜보기").into_stream());
    let first = stream.next().await.expect("첫 메시지");
    assert_eq!((first.issued_quantity, first.sold_out()), (0, false));

    // 다른 프로세스: 허브에 알리지 않는 발급기. 한 장 발급이 1초 안에 보인다.
    let other = Issuer::new(db.conn.clone(), IssueMode::PerRequest);
    let started = Instant::now();
    other.issue(users[0].id, coupon.id).await.expect("발급");
    let seen = tokio::time::timeout(Duration::from_secs(1), stream.next()).await.expect("1초 안에 보여야 함").expect("메시지");
    assert_eq!(seen.issued_quantity, 1);
    println!("another process's issuance seen after {:?}", started.elapsed());

    // 나머지 29장을 빠르게: 받는 메시지는 100 ms 이상 간격이고, 마지막 것은 매진이다.
    let issuing = tokio::spawn(async move {
        for u in &users[1..] {
            other.issue(u.id, coupon.id).await.expect("발급");
        }
    });
    let mut times = vec![Instant::now()];
    let mut last = seen;
    while !last.sold_out() {
        last = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.expect("매진이 와야 함").expect("메시지");
        times.push(Instant::now());
    }
    issuing.await.expect("발급 작업");
    assert_eq!(last.issued_quantity, 30);
    for w in times.windows(2).skip(1) {
        assert!(w[1] - w[0] >= Duration::from_millis(95), "초당 10개를 넘음: {:?}", w[1] - w[0]);
    }
    // 구독을 놓으면 허브가 그 쿠폰을 지켜보지 않는다 (다시 지켜보면 새 값부터).
    drop(stream);
    let again = hub.watch(coupon.id).await.expect("다시").into_stream();
    let now = Box::pin(again).next().await.expect("첫 메시지");
    assert!(now.sold_out());
    assert_eq!(hub.watch(Uuid::new_v4()).await.err().map(|e| e.code()), Some("COUPON_NOT_FOUND"));
}
on_all_backends!(changes_from_another_process_arrive_throttled_and_the_sold_out_state_always_arrives);

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(app: &TestApp) -> Ws {
    let url = format!("{}/graphql/ws", app.base.replace("http://", "ws://"));
    let mut req = url.into_client_request().expect("요청");
    req.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().expect("헤더"));
    let (ws, resp) = tokio_tungstenite::connect_async(req).await.expect("웹소켓 연결");
    assert_eq!(resp.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok()), Some("graphql-transport-ws"));
    ws
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.expect("보내기");
}

/// 다음 JSON 메시지 (서버의 ping은 pong으로 답하고 건너뛴다). 닫히면 Err(닫는 코드).
async fn recv(ws: &mut Ws) -> Result<Value, u16> {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("5초 안에 메시지").expect("스트림");
        match m.expect("메시지") {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(&t).expect("JSON");
                if v["type"] == "ping" {
                    send(ws, json!({ "type": "pong" })).await;
                    continue;
                }
                return Ok(v);
            }
            Message::Close(frame) => return Err(frame.map(|f| u16::from(f.code)).unwrap_or(0)),
            _ => continue,
        }
    }
}

async fn init(ws: &mut Ws, payload: Value) -> Result<Value, u16> {
    send(ws, json!({ "type": "connection_init", "payload": payload })).await;
    recv(ws).await
}

fn subscribe(id: &str, coupon: &str) -> Value {
    json!({ "id": id, "type": "subscribe", "payload": {
        "query": "subscription($c: ID!) { couponStock(couponId: $c) { couponId issuedQuantity totalQuantity remainingQuantity soldOut status } }",
        "variables": { "c": coupon } } })
}

async fn the_graphql_transport_ws_protocol_serves_coupon_stock(app: TestApp) {
    let coupon = new_coupon(&app.db.conn, Some(2)).await;
    let users = new_users(&app.db.conn, 2).await;
    // 잘못된 토큰: 4403으로 닫힌다.
    let mut bad = connect(&app).await;
    assert_eq!(init(&mut bad, json!({ "Authorization": "Bearer not-a-token" })).await.err(), Some(4403));

    // 익명도 된다. 첫 메시지는 지금의 재고.
    let mut ws = connect(&app).await;
    assert_eq!(init(&mut ws, json!({})).await.expect("ack")["type"], "connection_ack");
    send(&mut ws, subscribe("s1", &coupon.id.to_string())).await;
    let first = recv(&mut ws).await.expect("next");
    assert_eq!((first["type"].as_str(), first["id"].as_str()), (Some("next"), Some("s1")));
    assert_eq!(
        first["payload"]["data"]["couponStock"],
        json!({ "couponId": coupon.id.to_string(), "issuedQuantity": 0, "totalQuantity": 2, "remainingQuantity": 2, "soldOut": false, "status": "ACTIVE" })
    );
    // HTTP로 발급하면(이 서버) 변경이 오고, 마지막 한 장이면 매진이 온다.
    for u in &users {
        let (status, body) = app
            .raw(
                Some(&token(u.id, Role::User)),
                json!({ "query": format!("mutation {{ issueCoupon(couponId: \"{}\") {{ id }} }}", coupon.id) }).to_string(),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let mut last = first;
    while last["payload"]["data"]["couponStock"]["soldOut"] != true {
        last = recv(&mut ws).await.expect("변경");
    }
    assert_eq!(last["payload"]["data"]["couponStock"]["remainingQuantity"], 0);

    // 없는 쿠폰: COUPON_NOT_FOUND 오류, 그다음 complete.
    send(&mut ws, subscribe("nope", &Uuid::new_v4().to_string())).await;
    let err = recv(&mut ws).await.expect("오류");
    assert_eq!(err["payload"]["errors"][0]["extensions"]["code"], "COUPON_NOT_FOUND", "{err}");
    let done = recv(&mut ws).await.expect("complete");
    assert_eq!((done["type"].as_str(), done["id"].as_str()), (Some("complete"), Some("nope")));

    // 한 연결에 20개까지: 19개를 더 열면 20개, 21번째는 거절된다.
    for i in 2..=20 {
        send(&mut ws, subscribe(&format!("s{i}"), &coupon.id.to_string())).await;
        let m = recv(&mut ws).await.expect("next");
        assert_eq!(m["type"], "next", "{m}");
    }
    send(&mut ws, subscribe("s21", &coupon.id.to_string())).await;
    let refused = recv(&mut ws).await.expect("거절");
    assert_eq!(refused["payload"]["errors"][0]["extensions"]["code"], "TOO_MANY_SUBSCRIPTIONS", "{refused}");
    // 하나를 끝내면 자리가 난다.
    send(&mut ws, json!({ "id": "s20", "type": "complete" })).await;
    let mut completed = std::collections::HashSet::new();
    while !(completed.contains("s20") && completed.contains("s21")) {
        let m = recv(&mut ws).await.expect("메시지");
        if m["type"] == "complete" {
            completed.insert(m["id"].as_str().unwrap_or_default().to_owned());
        }
    }
    send(&mut ws, subscribe("s22", &coupon.id.to_string())).await;
    let m = recv(&mut ws).await.expect("자리가 났으면 next");
    assert_eq!((m["type"].as_str(), m["id"].as_str()), (Some("next"), Some("s22")), "{m}");
}
e2e_on_all_backends!(the_graphql_transport_ws_protocol_serves_coupon_stock);
