//! `GET /graphql/ws` (CONTRACT 2절, 3절, 9절): graphql-transport-ws(와 옛 subscriptions-transport-ws) 위의 구독.
//! async-graphql의 프로토콜 상태 기계(`async_graphql::http::WebSocket`)를 우리 루프가 몰고, 그 앞에서 한도를 지킨다:
//! 업그레이드 전의 연결 수(주소별·전체), `connection_init` 마감, 아무 답이 없는 소켓, 토큰 만료, 구독만·루트 필드 하나.
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_graphql::http::{ClientMessage, WebSocketProtocols, WsMessage};
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::limits::BODY_LIMIT;
use super::reply::{MediaType, record_operation, reject};
use crate::auth::JwtKeys;
use crate::graphql::{self, AppSchema, NotTrusted, TrustedDocuments};
use crate::metrics::Metrics;
use crate::net::ClientAddr;

/// 웹소켓 경로가 쓰는 것들: 스키마, 토큰 키, 지표, 열린 소켓 수. 라우터의 상태에서 꺼내 받는다 (`FromRef`).
#[derive(Clone)]
pub struct Sockets(Arc<SocketsInner>);

struct SocketsInner {
    schema: AppSchema,
    jwt: JwtKeys,
    metrics: Metrics,
    hub: WsHub,
    /// 신뢰 문서 목록 (`TRUSTED_DOCUMENTS`): 있으면 `subscribe`도 목록의 문서만.
    trusted: Option<Arc<TrustedDocuments>>,
}

impl Sockets {
    pub fn new(schema: AppSchema, jwt: JwtKeys, metrics: Metrics, trusted: Option<Arc<TrustedDocuments>>) -> Self {
        Self(Arc::new(SocketsInner { schema, jwt, metrics, hub: WsHub::default(), trusted }))
    }

    pub fn hub(&self) -> &WsHub {
        &self.0.hub
    }
}

/// 웹소켓의 한도 (계약의 기본값). 시험은 `Application::with_ws_limits`로 낮춘다.
#[derive(Clone, Copy, Debug)]
pub struct WsLimits {
    /// 클라이언트 주소 하나가 동시에 여는 소켓 수.
    pub per_address: usize,
    /// 프로세스 전체의 소켓 수.
    pub total: usize,
    /// 업그레이드부터 `connection_init`까지 (넘으면 4408).
    pub init_timeout: Duration,
    /// 서버가 ping을 보내는 간격.
    pub ping_every: Duration,
    /// 아무 프레임도 오지 않으면 닫는 한도 (ping에 답하지 않는 소켓, 3008).
    pub idle_timeout: Duration,
}

impl Default for WsLimits {
    fn default() -> Self {
        Self {
            per_address: 100,
            total: 10_000,
            init_timeout: Duration::from_secs(10),
            ping_every: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// 열린 소켓 수 (주소별·전체)와 한도. 업그레이드 때 한 번 잠그므로 요청 경로에는 닿지 않는다.
#[derive(Clone, Default)]
pub struct WsHub(Arc<Mutex<Book>>);

#[derive(Default)]
struct Book {
    limits: WsLimits,
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

impl WsHub {
    /// 한도를 바꾼다 (이미 열린 소켓은 그대로).
    pub fn set_limits(&self, limits: WsLimits) {
        self.book().limits = limits;
    }

    /// 지금 열린 소켓 수.
    pub fn open(&self) -> usize {
        self.book().total
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        // 잠금을 쥔 채 패닉하는 코드가 없으므로 오염된 잠금도 내용은 온전하다.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// 자리가 있으면 하나 잡는다: 돌려받은 표가 드롭되면(소켓이 끝나면) 자리를 돌려준다.
    fn admit(&self, addr: IpAddr) -> Option<(Ticket, WsLimits)> {
        let mut book = self.book();
        let limits = book.limits;
        let mine = book.per_address.get(&addr).copied().unwrap_or(0);
        if book.total >= limits.total || mine >= limits.per_address {
            return None;
        }
        book.total += 1;
        *book.per_address.entry(addr).or_default() += 1;
        Some((Ticket { hub: self.clone(), addr }, limits))
    }
}

/// 소켓 하나의 자리.
struct Ticket {
    hub: WsHub,
    addr: IpAddr,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut book = self.hub.book();
        book.total = book.total.saturating_sub(1);
        if let Entry::Occupied(mut e) = book.per_address.entry(self.addr) {
            *e.get_mut() = e.get().saturating_sub(1);
            if *e.get() == 0 {
                e.remove();
            }
        }
    }
}

/// 잘못된 토큰, 만료된 토큰 (graphql-ws의 Forbidden).
const CLOSE_FORBIDDEN: u16 = 4403;
/// `connection_init` 전에 온 구독 (graphql-ws의 Unauthorized).
const CLOSE_UNAUTHORIZED: u16 = 4401;
/// `connection_init`이 제때 오지 않았다 (graphql-ws의 ConnectionInitialisationTimeout).
const CLOSE_INIT_TIMEOUT: u16 = 4408;
/// 아무 프레임도 오지 않았다: IANA의 3008 Timeout (async-graphql의 keepalive 시간 초과와 같은 코드).
const CLOSE_IDLE: u16 = 3008;
/// async-graphql이 초기화 실패를 1002로 닫을 때 싣는 이유: 이것이면 4403으로 바꿔 닫는다.
const BAD_TOKEN: &str = "couponql: forbidden";
/// 받은 메시지를 상태 기계에 넘기는 대기열: 차면 소켓을 더 읽지 않는다 (상태 기계가 비울 때까지).
const FORWARD_QUEUE: usize = 8;
/// 노는 소켓 만 개가 메모리를 묶지 않게 읽기·쓰기 버퍼를 작게 (tungstenite 기본은 소켓마다 128 KiB를 미리 잡는다).
/// 큰 메시지는 버퍼가 그때 늘어난다.
const READ_BUFFER: usize = 4 * 1024;
const WRITE_BUFFER: usize = 8 * 1024;
/// 닫는 프레임을 보내는 데 쓰는 시간 (읽지 않는 상대를 기다리지 않는다).
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// `GET /graphql/ws`. 주소별·전체 한도를 넘는 업그레이드는 업그레이드하지 않고 503.
pub async fn graphql_ws(
    State(sockets): State<Sockets>,
    Extension(client): Extension<ClientAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    use std::str::FromStr;
    let protocol = headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|list| list.split(',').find_map(|p| WebSocketProtocols::from_str(p.trim()).ok()));
    let Some(protocol) = protocol else {
        return reject(
            MediaType::Json,
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "Sec-WebSocket-Protocol: graphql-transport-ws가 필요합니다",
        );
    };
    let Some((ticket, limits)) = sockets.hub().admit(client.0) else {
        let mut resp = reject(
            MediaType::Json,
            StatusCode::SERVICE_UNAVAILABLE,
            "TRY_AGAIN",
            "웹소켓 연결이 너무 많습니다. 잠시 후 다시 시도해 주세요",
        );
        resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        return resp;
    };
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(BODY_LIMIT)
        .max_frame_size(BODY_LIMIT)
        .on_upgrade(move |socket| async move {
            // 소켓이 끝날 때까지 자리를 쥔다 (업그레이드가 실패하면 클로저와 함께 드롭된다).
            let _ticket = ticket;
            serve(socket, sockets, protocol, limits).await;
        })
}

/// 루프가 소켓에 할 일.
enum WsOut {
    Send(Message),
    /// ws Ping 프레임과 (graphql-transport-ws면) `ping` 메시지.
    Ping,
    Close(u16, String),
    /// 상태 기계가 끝났다.
    End,
}

/// 연결 하나: 받은 메시지를 살펴 상태 기계에 넘기거나 직접 답하고, 나오는 메시지와 주기적인 ping을 보내고,
/// 마감(`connection_init`, 무응답, 토큰 만료)이 지나면 닫는다. 닫으면 상태 기계와 그 구독이 모두 드롭된다.
async fn serve(socket: WebSocket, sockets: Sockets, protocol: WebSocketProtocols, limits: WsLimits) {
    let (mut sink, mut inbound) = socket.split();
    let (tx, rx) = tokio::sync::mpsc::channel::<serde_json::Result<ClientMessage>>(FORWARD_QUEUE);
    let input = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    // 토큰이 유효한 마지막 시각 (유닉스 초, 0이면 익명): 초기화가 적고 루프가 읽는다.
    let valid_until = Arc::new(AtomicU64::new(0));
    let init = {
        let jwt = sockets.0.jwt.clone();
        let valid_until = valid_until.clone();
        move |payload: Value| async move {
            let mut data = async_graphql::Data::default();
            // 연결마다 새 구독 칸: 한 연결의 구독 수를 센다.
            data.insert(graphql::SubscriptionSlots::default());
            if let Some(auth) = payload.get("Authorization").or_else(|| payload.get("authorization")) {
                match auth.as_str().and_then(crate::auth::bearer_token).map(|t| jwt.verify_until(t)) {
                    Some(Ok((viewer, until))) => {
                        data.insert(viewer);
                        valid_until.store(until, Ordering::Relaxed);
                    }
                    _ => return Err(async_graphql::Error::new(BAD_TOKEN)),
                }
            }
            Ok(data)
        }
    };
    let messages = async_graphql::http::WebSocket::from_message_stream(sockets.0.schema.clone(), input, protocol).on_connection_init(init);
    futures_util::pin_mut!(messages);

    let mut conn = Conn::new(protocol, sockets.0.metrics.clone(), sockets.0.trusted.clone());
    let started = Instant::now();
    let init_deadline = tokio::time::sleep_until(started + limits.init_timeout);
    let idle = tokio::time::sleep_until(started + limits.idle_timeout);
    // 토큰 만료: `connection_ack`을 보낸 뒤 토큰이 있었으면 그 시각으로 맞춘다.
    let expiry = tokio::time::sleep_until(started);
    let mut expiry_armed = false;
    let mut identity_checked = false;
    let mut last_seen = started;
    let mut ping = tokio::time::interval_at(started + limits.ping_every, limits.ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    futures_util::pin_mut!(init_deadline, idle, expiry);

    loop {
        let step = tokio::select! {
            biased;
            () = &mut expiry, if expiry_armed => Some(WsOut::Close(CLOSE_FORBIDDEN, "Forbidden".into())),
            () = &mut init_deadline, if !conn.init_seen => {
                Some(WsOut::Close(CLOSE_INIT_TIMEOUT, "Connection initialisation timeout".into()))
            }
            () = &mut idle => {
                let due = last_seen + limits.idle_timeout;
                if due <= Instant::now() {
                    Some(WsOut::Close(CLOSE_IDLE, "Timeout".into()))
                } else {
                    idle.as_mut().reset(due);
                    None
                }
            }
            frame = inbound.next(), if tx.capacity() > 0 => {
                // 끊겼거나 읽을 수 없다(한도를 넘는 메시지 등): 연결을 끝낸다.
                let Some(Ok(frame)) = frame else { return };
                // 어떤 프레임이든(pong, ws Pong, 메시지) 살아 있다는 뜻이다.
                last_seen = Instant::now();
                let bytes = match &frame {
                    Message::Text(t) => Some(t.as_str().as_bytes()),
                    Message::Binary(b) => Some(&b[..]),
                    _ => None,
                };
                match bytes {
                    // 만료된 신원으로는 아무것도 넘기지 않는다 (타이머보다 메시지가 먼저 보였어도).
                    Some(_) if expiry_armed && expiry.deadline() <= last_seen => {
                        Some(WsOut::Close(CLOSE_FORBIDDEN, "Forbidden".into()))
                    }
                    Some(bytes) => match conn.inbound(bytes) {
                        Inbound::Forward(m) => {
                            if tx.try_send(m).is_err() {
                                return;
                            }
                            None
                        }
                        Inbound::Reply(m) => Some(WsOut::Send(m)),
                        Inbound::Close(code, reason) => Some(WsOut::Close(code, reason.into())),
                    },
                    None => None,
                }
            }
            m = messages.next() => Some(conn.outbound(m)),
            _ = ping.tick() => Some(WsOut::Ping),
        };
        if conn.acked && !identity_checked {
            identity_checked = true;
            let until = valid_until.load(Ordering::Relaxed);
            if until > 0 {
                expiry.as_mut().reset(instant_of(until));
                expiry_armed = true;
            }
        }
        // 이미 나와 있는 메시지는 모아서 한 번에 쓴다: 재고가 바뀌면 한 연결의 구독 20개가 함께 깨어나므로,
        // 메시지마다 소켓에 쓰는 대신 쓰기 한 번으로 보낸다.
        let mut next = step;
        let mut wrote = false;
        let mut open = true;
        while let Some(out) = next.take() {
            let message = match out {
                WsOut::Send(m) => m,
                WsOut::Ping => {
                    // ws Ping 프레임은 브라우저와 어느 클라이언트나 스스로 답한다 (옛 프로토콜에는 ping 메시지가 없다).
                    if protocol == WebSocketProtocols::GraphQLWS {
                        next = Some(WsOut::Send(Message::Text(r#"{"type":"ping"}"#.into())));
                    }
                    Message::Ping(Default::default())
                }
                WsOut::Close(code, reason) => {
                    let frame = CloseFrame { code, reason: reason.into() };
                    let _ = tokio::time::timeout(CLOSE_WAIT, sink.send(Message::Close(Some(frame)))).await;
                    return;
                }
                WsOut::End => {
                    open = false;
                    continue;
                }
            };
            // 읽지 않는 상대에게 쓰기가 막히면 무응답과 같이 본다.
            match tokio::time::timeout(limits.idle_timeout, sink.feed(message)).await {
                Ok(Ok(())) => wrote = true,
                _ => return,
            }
            if next.is_none() {
                next = messages.next().now_or_never().map(|m| conn.outbound(m));
            }
        }
        if wrote && !matches!(tokio::time::timeout(limits.idle_timeout, sink.flush()).await, Ok(Ok(()))) {
            return;
        }
        if !open {
            return;
        }
    }
}

/// 유닉스 초를 tokio의 시각으로.
fn instant_of(unix_secs: u64) -> Instant {
    let now_ms = chrono::Utc::now().timestamp_millis().max(0) as u64;
    let left = unix_secs.saturating_mul(1000).saturating_sub(now_ms);
    Instant::now() + Duration::from_millis(left)
}

/// 받은 메시지를 어떻게 할지. 메시지 하나마다 잠깐 있다가 옮겨지는 값이라 큰 변형(요청)을 상자에 넣지 않는다
/// (async-graphql의 `ClientMessage`도 같은 이유로 허용한다).
#[allow(clippy::large_enum_variant)]
enum Inbound {
    /// 상태 기계에 넘긴다.
    Forward(serde_json::Result<ClientMessage>),
    /// 우리가 답한다 (넘기지 않는다).
    Reply(Message),
    Close(u16, &'static str),
}

/// 연결 하나의 프로토콜 사정: 초기화, 아직 첫 메시지를 보내지 않은 구독들(지표).
struct Conn {
    protocol: WebSocketProtocols,
    metrics: Metrics,
    trusted: Option<Arc<TrustedDocuments>>,
    init_seen: bool,
    acked: bool,
    /// 첫 메시지를 기다리는 구독: id → (시작 시각, 연산 이름).
    pending: HashMap<String, (Instant, Option<String>)>,
}

impl Conn {
    fn new(protocol: WebSocketProtocols, metrics: Metrics, trusted: Option<Arc<TrustedDocuments>>) -> Self {
        Self { protocol, metrics, trusted, init_seen: false, acked: false, pending: HashMap::new() }
    }

    fn inbound(&mut self, bytes: &[u8]) -> Inbound {
        let message = match ClientMessage::from_bytes(bytes) {
            Ok(m) => m,
            // 읽을 수 없는 메시지: 상태 기계가 1002로 닫는다.
            Err(e) => return Inbound::Forward(Err(e)),
        };
        match message {
            ClientMessage::ConnectionInit { payload } => {
                self.init_seen = true;
                Inbound::Forward(Ok(ClientMessage::ConnectionInit { payload }))
            }
            ClientMessage::Start { id, mut payload } => {
                if !self.init_seen && self.protocol == WebSocketProtocols::GraphQLWS {
                    return Inbound::Close(CLOSE_UNAUTHORIZED, "Unauthorized");
                }
                let started = Instant::now();
                // 신뢰 모드: 문서는 목록에서 (`documentId`는 async-graphql의 요청에 없어 원문에서 읽는다).
                let admitted =
                    match &self.trusted {
                        Some(trusted) => trusted.admit(&mut payload, document_id(bytes).as_deref()).map(|_| ()).map_err(|NotTrusted| {
                            Refusal { operation_type: "subscription", code: NotTrusted::CODE, message: NotTrusted::MESSAGE }
                        }),
                        None => Ok(()),
                    };
                match admitted.and_then(|()| inspect(&mut payload)) {
                    Ok(()) => {
                        self.pending.insert(id.clone(), (started, payload.operation_name.clone()));
                        Inbound::Forward(Ok(ClientMessage::Start { id, payload }))
                    }
                    Err(refusal) => {
                        self.count(refusal.operation_type, refusal.code, started, payload.operation_name.as_deref());
                        Inbound::Reply(self.error(&id, refusal.code, refusal.message))
                    }
                }
            }
            other => Inbound::Forward(Ok(other)),
        }
    }

    /// 상태 기계가 내놓은 것. 첫 메시지를 기다리는 구독이 있으면 그 메시지로 시작을 센다.
    fn outbound(&mut self, m: Option<WsMessage>) -> WsOut {
        match m {
            Some(WsMessage::Text(text)) => {
                if !self.acked && text == r#"{"type":"connection_ack"}"# {
                    self.acked = true;
                }
                let text = if self.pending.is_empty() { text } else { self.observe(text) };
                WsOut::Send(Message::Text(text.into()))
            }
            Some(WsMessage::Close(code, reason)) => {
                let (code, reason) = if reason == BAD_TOKEN { (CLOSE_FORBIDDEN, "Forbidden".to_owned()) } else { (code, reason) };
                WsOut::Close(code, reason)
            }
            None => WsOut::End,
        }
    }

    /// 구독의 첫 메시지: `next`(오류 없음)나 `complete`면 OK, 아니면 첫 오류의 코드로 센다.
    /// 실행 전 단계의 오류(async-graphql은 스트림에 확장의 요청 훅을 돌리지 않는다)에 코드가 없으면 붙인다.
    fn observe(&mut self, text: String) -> String {
        let Ok(mut v) = serde_json::from_str::<Value>(&text) else { return text };
        let Some((started, operation)) = v.get("id").and_then(Value::as_str).and_then(|id| self.pending.remove(id)) else {
            return text;
        };
        let mut patched = false;
        let code = match v.get_mut("payload").and_then(|p| p.get_mut("errors")).and_then(Value::as_array_mut) {
            Some(errors) if !errors.is_empty() => {
                for e in errors.iter_mut() {
                    if e.pointer("/extensions/code").is_none() {
                        let code = if e.get("path").is_some() { "INTERNAL" } else { "GRAPHQL_VALIDATION_FAILED" };
                        if let Some(obj) = e.as_object_mut() {
                            let ext = obj.entry("extensions").or_insert_with(|| json!({}));
                            if let Some(ext) = ext.as_object_mut() {
                                ext.insert("code".into(), json!(code));
                                patched = true;
                            }
                        }
                    }
                }
                errors[0].pointer("/extensions/code").and_then(Value::as_str).unwrap_or("INTERNAL").to_owned()
            }
            _ => "OK".to_owned(),
        };
        self.count("subscription", &code, started, operation.as_deref());
        if patched { v.to_string() } else { text }
    }

    /// 지표 `couponql_graphql_requests_total`과 한 줄 로그 (시작할 때 한 번).
    fn count(&self, operation_type: &'static str, code: &str, started: Instant, operation: Option<&str>) {
        record_operation(&self.metrics, operation, operation_type, code, started.elapsed());
    }

    /// 구독 하나의 `error` 메시지 (graphql-transport-ws는 오류 목록, 옛 프로토콜은 오류 하나).
    fn error(&self, id: &str, code: &str, message: &str) -> Message {
        let error = json!({ "message": message, "extensions": { "code": code } });
        let payload = if self.protocol == WebSocketProtocols::GraphQLWS { json!([error]) } else { error };
        Message::Text(json!({ "id": id, "type": "error", "payload": payload }).to_string().into())
    }
}

/// `subscribe`의 `payload.documentId` (신뢰 문서의 이름).
fn document_id(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Message {
        payload: Option<Payload>,
    }
    #[derive(serde::Deserialize)]
    struct Payload {
        #[serde(rename = "documentId")]
        document_id: Option<String>,
    }
    serde_json::from_slice::<Message>(bytes).ok()?.payload?.document_id
}

/// 소켓에서 실행하지 않고 돌려보내는 것.
#[derive(Debug, PartialEq, Eq)]
struct Refusal {
    operation_type: &'static str,
    code: &'static str,
    message: &'static str,
}

/// `subscribe`(옛 `start`)를 상태 기계에 넘기기 전에: 소켓에서는 루트 필드가 하나인 구독만 실행한다.
/// 파싱한 문서는 요청에 넣어 두어 async-graphql이 다시 파싱하지 않게 한다. 파싱할 수 없거나 연산을 고를 수 없는
/// 문서는 그대로 넘긴다 (async-graphql이 코드를 붙인 오류로 답한다).
fn inspect(request: &mut async_graphql::Request) -> Result<(), Refusal> {
    if request.query.trim().is_empty() {
        // 해시만 보낸 persisted query: 연산 종류를 알 수 없으므로 실행하지 않는다.
        return Err(Refusal {
            operation_type: "subscription",
            code: "BAD_REQUEST",
            message: "웹소켓으로는 질의 문서(query)를 함께 보내야 합니다",
        });
    }
    if !graphql::limits::nesting_fits(&request.query) {
        return Ok(());
    }
    let Ok(doc) = async_graphql::parser::parse_query(&request.query) else { return Ok(()) };
    let verdict = match graphql::selected_operation(&doc, request.operation_name.as_deref()) {
        None => Ok(()),
        Some(op) => match op.ty {
            OperationType::Query => Err(Refusal { operation_type: "query", code: "BAD_REQUEST", message: NOT_A_SUBSCRIPTION }),
            OperationType::Mutation => Err(Refusal { operation_type: "mutation", code: "BAD_REQUEST", message: NOT_A_SUBSCRIPTION }),
            OperationType::Subscription if root_fields_exceed_one(&doc, &op.selection_set.node) => Err(Refusal {
                operation_type: "subscription",
                code: "GRAPHQL_VALIDATION_FAILED",
                message: "구독은 루트 필드를 하나만 가질 수 있습니다",
            }),
            OperationType::Subscription => Ok(()),
        },
    };
    if verdict.is_ok() {
        request.set_parsed_query(doc);
    }
    verdict
}

const NOT_A_SUBSCRIPTION: &str = "/graphql/ws에서는 구독만 실행합니다: query와 mutation은 POST /graphql로 보내세요";

/// 연산의 루트 응답 키(별칭이면 별칭)가 둘 이상인지. 조각 전개와 인라인 조각은 그 필드로 센다.
/// 조각은 한 번만 본다: 같은 조각을 다시 펼쳐도 새 키가 생기지 않으므로 문서 크기에 비례한다 (재귀 없이).
fn root_fields_exceed_one(doc: &ExecutableDocument, root: &SelectionSet) -> bool {
    let mut keys = HashSet::new();
    let mut seen = HashSet::new();
    let mut todo = vec![root];
    while let Some(set) = todo.pop() {
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    keys.insert(f.node.response_key().node.as_str());
                    if keys.len() > 1 {
                        return true;
                    }
                }
                Selection::FragmentSpread(s) => {
                    let name = s.node.fragment_name.node.as_str();
                    if seen.insert(name)
                        && let Some(fragment) = doc.fragments.get(&s.node.fragment_name.node)
                    {
                        todo.push(&fragment.node.selection_set.node);
                    }
                }
                Selection::InlineFragment(i) => todo.push(&i.node.selection_set.node),
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(query: &str) -> Result<(), Refusal> {
        inspect(&mut async_graphql::Request::new(query))
    }

    fn code(query: &str) -> Option<&'static str> {
        verdict(query).err().map(|r| r.code)
    }

    #[test]
    fn only_subscriptions_with_one_root_field_pass() {
        assert_eq!(verdict("subscription { couponStock(couponId: 1) { soldOut } }"), Ok(()));
        assert_eq!(code("{ __typename }"), Some("BAD_REQUEST"));
        assert_eq!(code("mutation { createCoupon { id } }"), Some("BAD_REQUEST"));
        assert_eq!(
            code("subscription { a: couponStock(couponId: 1) { soldOut } b: couponStock(couponId: 2) { soldOut } }"),
            Some("GRAPHQL_VALIDATION_FAILED")
        );
        // 별칭 없이 같은 필드 두 번은 응답 키 하나다 (명세의 "정확히 한 항목").
        assert_eq!(verdict("subscription { couponStock(couponId: 1) { soldOut } couponStock(couponId: 1) { status } }"), Ok(()));
        assert_eq!(
            code(
                "subscription { ...F } fragment F on Subscription { a: couponStock(couponId: 1) { soldOut } b: couponStock(couponId: 1) { soldOut } }"
            ),
            Some("GRAPHQL_VALIDATION_FAILED")
        );
        assert_eq!(
            code("subscription { couponStock(couponId: 1) { soldOut } ... on Subscription { __typename } }"),
            Some("GRAPHQL_VALIDATION_FAILED")
        );
        assert_eq!(verdict("subscription { ...F ...F } fragment F on Subscription { couponStock(couponId: 1) { soldOut } }"), Ok(()));
        // 해시만 온 persisted query는 실행하지 않는다. 파싱할 수 없는 문서는 async-graphql에게.
        assert_eq!(code(""), Some("BAD_REQUEST"));
        assert_eq!(verdict("subscription {"), Ok(()));
    }

    #[test]
    fn the_operation_name_picks_what_is_judged() {
        let doc = "query Q { __typename } subscription S { couponStock(couponId: 1) { soldOut } }";
        let mut sub = async_graphql::Request::new(doc).operation_name("S");
        assert_eq!(inspect(&mut sub), Ok(()));
        let mut query = async_graphql::Request::new(doc).operation_name("Q");
        assert_eq!(inspect(&mut query).err().map(|r| r.operation_type), Some("query"));
    }

    #[test]
    fn fragment_chains_are_walked_once_each() {
        // 조각마다 다음 조각을 두 번 펼치는 사슬 (펼치면 2^N): 한 번씩만 본다.
        let n = 40;
        let mut doc = String::from("subscription { ...F0 }\n");
        for i in 0..n {
            doc.push_str(&format!("fragment F{i} on Subscription {{ ...F{} ...F{} }}\n", i + 1, i + 1));
        }
        doc.push_str(&format!("fragment F{n} on Subscription {{ couponStock(couponId: 1) {{ soldOut }} }}\n"));
        let started = std::time::Instant::now();
        assert_eq!(verdict(&doc), Ok(()));
        assert!(started.elapsed() < Duration::from_millis(100), "{:?}", started.elapsed());
    }

    #[test]
    fn the_hub_counts_per_address_and_in_all_and_gives_back_on_drop() {
        let hub = WsHub::default();
        hub.set_limits(WsLimits { per_address: 2, total: 3, ..WsLimits::default() });
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let a1 = hub.admit(a).expect("a1");
        let _a2 = hub.admit(a).expect("a2");
        assert!(hub.admit(a).is_none(), "주소별 한도");
        let _b1 = hub.admit(b).expect("b1");
        assert!(hub.admit(b).is_none(), "전체 한도");
        drop(a1);
        assert_eq!(hub.open(), 2);
        assert!(hub.admit(b).is_some(), "돌려받은 자리");
    }
}
