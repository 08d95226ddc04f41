//! GraphQL 계층: 스키마 조립, 에러 코드 부여, 요청별 컨텍스트. 리졸버는 얇게 — 서비스 하나를 부르고 변환한다.
mod documents;
mod guards;
mod introspection;
pub mod limits;
mod loaders;
mod mutation;
mod nulls;
mod query;
mod scalars;
mod subscription;
mod types;
mod variables;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use async_graphql::extensions::apollo_persisted_queries::{ApolloPersistedQueries, LruCacheStorage};
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationDefinition, OperationType};
use async_graphql::{ErrorExtensions, Request, Schema, ServerError, ServerResult, ValidationResult, Variables};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::domain::Viewer;
use crate::error::AppError;
use crate::repo::idempotency::IdemKey;
use crate::service::issuance::{IssueMode, Issuer};
use crate::service::stock::StockHub;
pub use documents::DocumentCache;
pub use loaders::Loaders;
pub use mutation::MutationRoot;
pub use query::QueryRoot;
pub use subscription::{MAX_SUBSCRIPTIONS, SubscriptionRoot, SubscriptionSlots};

pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// 자동 persisted query로 기억하는 질의 수 (계약: 적어도 1,000개). 문서 하나가 수 KB라 수십 MB 안쪽.
pub const PERSISTED_QUERY_CACHE: usize = 4096;

/// 스키마를 만든다 (비용 한도는 기본값). 데이터베이스 풀과 발급기, 재고 허브는 스키마 데이터, 뷰어와 DataLoader는
/// 요청 데이터. `db`가 없으면 SDL 출력용.
pub fn build_schema(db: Option<DatabaseConnection>, mode: IssueMode) -> AppSchema {
    build_schema_with(db, mode, limits::DEFAULT_MAX_COST)
}

/// `build_schema`에 연산의 비용 한도(`MAX_QUERY_COST`)까지.
/// 깊이와 복잡도는 async-graphql의 한도 대신 `limits`가 검증 전에 센다 (조각을 펼칠 때마다 다시 걷지 않게).
pub fn build_schema_with(db: Option<DatabaseConnection>, mode: IssueMode, max_cost: u64) -> AppSchema {
    let builder = Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        // APQ가 먼저(바깥): 해시로 찾은 문서를 ErrorCodes의 prepare_request가 받는다.
        .extension(ApolloPersistedQueries::new(LruCacheStorage::new(PERSISTED_QUERY_CACHE)))
        .extension(ErrorCodes { max_cost })
        .extension(introspection::NoSchemaDescription);
    let mut builder = introspection::describe_connections(builder);
    if let Some(db) = db {
        let hub = StockHub::start(db.clone());
        builder = builder.data(Issuer::new(db.clone(), mode).with_stock(hub.clone())).data(hub).data(db);
    }
    builder.finish()
}

/// SDL (`couponql schema`와 `schema.graphql`).
pub async fn sdl() -> Result<String, AppError> {
    introspection::sdl(&build_schema(None, IssueMode::PerRequest)).await
}

/// 요청 하나를 스키마에 맞게 꾸민다: 뷰어와 요청별 DataLoader (요청 사이에 아무것도 새지 않게).
pub fn prepare_request(request: Request, db: &DatabaseConnection, viewer: Option<Viewer>) -> Request {
    let mut request = request.data(Loaders::new(db.clone()));
    if let Some(v) = viewer {
        request = request.data(v);
    }
    request
}

impl ErrorExtensions for AppError {
    /// 코드는 `extensions.code`로, 입력 오류는 `extensions.field`까지. INTERNAL의 상세는 로그에만.
    fn extend(&self) -> async_graphql::Error {
        if let AppError::Internal(detail) = self {
            tracing::error!(detail = %detail, "내부 오류");
        }
        async_graphql::Error::new(self.to_string()).extend_with(|_, e| {
            e.set("code", self.code());
            if let AppError::BadUserInput { field, .. } = self {
                e.set("field", field.as_str());
            }
            if let AppError::TooManyAttempts { retry_after_secs } = self {
                e.set("retryAfterSeconds", *retry_after_secs);
            }
        })
    }
}

/// 리졸버에서 `?` 대신 쓰는 변환: 코드를 잃지 않는다.
pub(crate) trait GqlResultExt<T> {
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T> GqlResultExt<T> for Result<T, AppError> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(|e| e.extend())
    }
}

/// ID 인자를 UUID로. 잘못된 형식은 그 인자를 지목하는 BAD_USER_INPUT.
pub(crate) fn parse_uuid(field: &str, raw: &str) -> async_graphql::Result<Uuid> {
    Uuid::parse_str(raw).map_err(|_| AppError::bad_input(field, format!("{field}: UUID 형식이 아닙니다")).extend())
}

/// 요청의 멱등 키 (HTTP 계층이 `Idempotency-Key`로 넣는다, CONTRACT 7절).
#[derive(Clone, Debug)]
pub enum KeyState {
    /// 처음 보는 키: 지정된 변경은 이 키를 변경과 같은 트랜잭션에 기록한다.
    Fresh(IdemKey),
    /// 이 키의 변경은 이미 커밋되었다(답하기 전에 프로세스가 죽었거나 아직 답하는 중): 다시 하지 않고 그 발급 내역으로 답한다.
    Replay(Uuid),
}

pub(crate) fn fresh_key<'a>(ctx: &async_graphql::Context<'a>) -> Option<&'a IdemKey> {
    match ctx.data_opt::<KeyState>() {
        Some(KeyState::Fresh(k)) => Some(k),
        _ => None,
    }
}

/// 이미 커밋된 키의 재시도면 그 발급 내역 (지정된 변경 넷이 맨 앞에서 부른다).
pub(crate) async fn replayed(ctx: &async_graphql::Context<'_>) -> Option<async_graphql::Result<types::UserCoupon>> {
    let Some(KeyState::Replay(id)) = ctx.data_opt::<KeyState>() else { return None };
    let db = match db(ctx) {
        Ok(db) => db,
        Err(e) => return Some(Err(e)),
    };
    Some(crate::service::user_coupons::replayed(db, viewer(ctx), *id).await.map(types::UserCoupon::alone).gql())
}

/// 뷰어 (없으면 익명).
pub(crate) fn viewer<'a>(ctx: &async_graphql::Context<'a>) -> Option<&'a Viewer> {
    ctx.data_opt::<Viewer>()
}

pub(crate) fn issuer<'a>(ctx: &async_graphql::Context<'a>) -> async_graphql::Result<&'a Issuer> {
    ctx.data::<Issuer>().map_err(|_| AppError::Internal("스키마에 발급기가 없음".into()).extend())
}

pub(crate) fn db<'a>(ctx: &async_graphql::Context<'a>) -> async_graphql::Result<&'a DatabaseConnection> {
    ctx.data::<DatabaseConnection>().map_err(|_| AppError::Internal("스키마에 데이터베이스가 없음".into()).extend())
}

/// 문서에서 요청이 고르는 연산 (GraphQL 명세의 GetOperation): 이름이 있으면 그 연산, 없으면 하나뿐인 연산.
pub fn selected_operation<'d>(doc: &'d ExecutableDocument, operation_name: Option<&str>) -> Option<&'d OperationDefinition> {
    match (&doc.operations, operation_name) {
        (DocumentOperations::Single(op), _) => Some(&op.node),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| &op.node),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next().map(|op| &op.node),
        _ => None,
    }
}

/// 멱등 키를 붙일 수 있는 요청인지: 고른 연산이 mutation이면 `Some`, 그 루트 필드가 하나면 그 이름(`Some(Some(이름))`).
/// 루트 필드가 여럿이면 키 하나가 여러 변경을 가리키게 되므로 `Some(None)`, mutation이 아니면 `None`.
pub fn single_mutation(doc: &ExecutableDocument, operation_name: Option<&str>) -> Option<Option<String>> {
    let op = selected_operation(doc, operation_name)?;
    if op.ty != OperationType::Mutation {
        return None;
    }
    Some(match op.selection_set.node.items.as_slice() {
        [one] => match &one.node {
            async_graphql::parser::types::Selection::Field(f) => Some(f.node.name.node.to_string()),
            _ => None,
        },
        _ => None,
    })
}

/// GET으로 온 mutation의 코드: HTTP 계층이 405와 `Allow: POST`로 답한다.
pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";

/// HTTP 계층과 확장이 주고받는 요청 하나의 사정: 어떤 메서드로 왔는지, 연산 종류, 실행 단계까지 갔는지.
/// 실행까지 못 갔으면(파싱·검증·변수·persisted query 실패) 요청 오류라 `data` 없이,
/// `application/graphql-response+json`이면 400으로 답한다 (GraphQL over HTTP).
#[derive(Clone)]
pub struct RequestInfo(Arc<InfoInner>);

struct InfoInner {
    via_get: bool,
    executed: AtomicBool,
    operation_type: OnceLock<OperationType>,
    /// 고른 연산의 루트 필드가 모두 캐시 힌트를 가질 때 그 가장 작은 값(초).
    cache_max_age: OnceLock<u32>,
}

impl RequestInfo {
    fn new(via_get: bool) -> Self {
        Self(Arc::new(InfoInner {
            via_get,
            executed: AtomicBool::new(false),
            operation_type: OnceLock::new(),
            cache_max_age: OnceLock::new(),
        }))
    }

    pub fn get() -> Self {
        Self::new(true)
    }

    pub fn post() -> Self {
        Self::new(false)
    }

    pub fn via_get(&self) -> bool {
        self.0.via_get
    }

    pub fn executed(&self) -> bool {
        self.0.executed.load(Ordering::Relaxed)
    }

    /// 공개 캐시에 둘 수 있는 시간 (CONTRACT 2절의 Caching): 루트 필드 가운데 힌트가 없는 것이 있으면 None.
    pub fn cache_max_age(&self) -> Option<u32> {
        self.0.cache_max_age.get().copied()
    }

    /// 지표와 로그의 `operation_type` (문서를 못 읽었으면 "unknown").
    pub fn operation_type(&self) -> &'static str {
        match self.0.operation_type.get() {
            Some(OperationType::Query) => "query",
            Some(OperationType::Mutation) => "mutation",
            Some(OperationType::Subscription) => "subscription",
            None => "unknown",
        }
    }

    /// 문서에서 고른 연산의 종류를 기록하고, 실행 전에 거절할 것을 거절한다 (아무것도 실행하지 않는다):
    /// HTTP로 온 구독은 BAD_REQUEST(구독은 웹소켓으로), GET으로 온 mutation은 405.
    fn classify(
        &self,
        registry: &async_graphql::registry::Registry,
        doc: &ExecutableDocument,
        operation_name: Option<&str>,
    ) -> ServerResult<()> {
        let selected = selected_operation(doc, operation_name);
        if let Some(op) = selected
            && op.ty == OperationType::Query
            && let Some(age) = cache_hint(registry, doc, &op.selection_set.node)
        {
            let _ = self.0.cache_max_age.set(age);
        }
        if let Some(ty) = selected.map(|op| op.ty) {
            let _ = self.0.operation_type.set(ty);
            if ty == OperationType::Subscription {
                let err = ServerError::new("구독은 /graphql/ws의 웹소켓(graphql-transport-ws)으로만 받습니다", None);
                return Err(with_code(err, "BAD_REQUEST"));
            }
            if self.0.via_get && ty != OperationType::Query {
                let err = ServerError::new("mutation은 POST로만 보낼 수 있습니다", None);
                return Err(with_code(err, METHOD_NOT_ALLOWED));
            }
        }
        Ok(())
    }
}

/// 조회의 캐시 힌트: async-graphql의 필드 힌트(`cache_control`)를 루트 필드마다 읽어 가장 작은 값.
/// async-graphql의 합치기는 힌트 없는 필드를 건너뛰지만, 계약은 힌트 없는 필드 하나가 응답 전체를 캐시할 수 없게 한다.
fn cache_hint(
    registry: &async_graphql::registry::Registry,
    doc: &ExecutableDocument,
    set: &async_graphql::parser::types::SelectionSet,
) -> Option<u32> {
    use async_graphql::parser::types::Selection;
    let query = registry.types.get(&registry.query_type)?;
    let mut min: Option<u32> = None;
    for item in &set.items {
        let age = match &item.node {
            Selection::Field(f) => {
                let age = query.field_by_name(f.node.name.node.as_str()).map(|m| m.cache_control.max_age).unwrap_or(0);
                if age <= 0 {
                    return None;
                }
                age as u32
            }
            Selection::InlineFragment(inline) => cache_hint(registry, doc, &inline.node.selection_set.node)?,
            // 조각은 문서 한도가 순환을 이미 거절했다.
            Selection::FragmentSpread(spread) => {
                cache_hint(registry, doc, &doc.fragments.get(&spread.node.fragment_name.node)?.node.selection_set.node)?
            }
        };
        min = Some(min.map_or(age, |m| m.min(age)));
    }
    min
}

/// 요청마다 붙는 확장: 문서의 한도와 변수를 검증 전후에 확인하고, 코드 없는 에러에 계약서의 코드를 붙이고,
/// 오류가 있는 응답에 명세의 null 전파를 적용한다.
struct ErrorCodes {
    max_cost: u64,
}

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodesExt {
            query: Mutex::new(None),
            operation_name: Mutex::new(None),
            max_cost: self.max_cost,
            bad_variable: Mutex::new(None),
            cost: Mutex::new(None),
        })
    }
}

/// null 전파에 쓸 문서: 보통은 질의 문자열(오류가 날 때만 다시 파싱), persisted query면 이미 파싱된 문서.
enum QuerySource {
    Text(String),
    Parsed(ExecutableDocument),
}

struct ErrorCodesExt {
    query: Mutex<Option<QuerySource>>,
    operation_name: Mutex<Option<String>>,
    max_cost: u64,
    /// 파싱 뒤에 찾은 변수 오류: 문서 검증이 통과하면 요청 오류로 답한다 (명세의 순서: 검증 → 변수 강제 변환).
    bad_variable: Mutex<Option<ServerError>>,
    /// 고른 연산의 정적 비용: 응답의 `extensions.cost` (CONTRACT 13절).
    cost: Mutex<Option<limits::Cost>>,
}

/// 요청 오류 응답의 크기 한도 (계약: 8 KiB): 오류는 이만큼만, 메시지는 이 길이까지.
const MAX_ERRORS: usize = 10;
const MAX_MESSAGE_CHARS: usize = 300;

/// 오류 목록을 짧게: 앞의 몇 개만, 긴 메시지는 잘라서 (사용하지 않은 변수 3,000개가 436 KB 응답을 만들었다).
fn brief(mut errors: Vec<ServerError>) -> Vec<ServerError> {
    let more = errors.len().saturating_sub(MAX_ERRORS);
    errors.truncate(MAX_ERRORS);
    for e in &mut errors {
        if e.message.chars().count() > MAX_MESSAGE_CHARS {
            e.message = e.message.chars().take(MAX_MESSAGE_CHARS).chain("…".chars()).collect();
        }
        e.locations.truncate(3);
    }
    if more > 0
        && let Some(last) = errors.last_mut()
    {
        last.message.push_str(&format!(" (그 밖에 오류 {more}개)"));
    }
    errors
}

/// 파싱 오류를 짧게: pest의 메시지는 문서의 줄을 통째로 인용하므로, 위치와 기대한 것만 남긴다.
fn brief_parse_error(mut err: ServerError) -> ServerError {
    let expected = err.message.lines().find_map(|l| l.trim().strip_prefix("= ")).map(|l| l.chars().take(120).collect::<String>());
    let at = err.locations.first().map(|p| format!(" ({}행 {}열)", p.line, p.column)).unwrap_or_default();
    err.message = match expected {
        Some(why) => format!("문서를 파싱할 수 없습니다{at}: {why}"),
        None => format!("문서를 파싱할 수 없습니다{at}"),
    };
    with_code(err, "GRAPHQL_PARSE_FAILED")
}

fn refused(message: String) -> ServerError {
    with_code(ServerError::new(message, None), "GRAPHQL_VALIDATION_FAILED")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // 잠금을 쥔 채 패닉하는 코드가 없으므로 오염된 잠금도 내용은 온전하다.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn with_code(mut err: ServerError, code: &str) -> ServerError {
    let has_code = err.extensions.as_ref().is_some_and(|e| e.get("code").is_some());
    if !has_code {
        err.extensions.get_or_insert_with(Default::default).set("code", code);
    }
    err
}

/// 실행 전 단계의 코드 없는 에러: APQ의 두 에러는 계약서의 코드로, 나머지는 검증 실패.
fn request_error_code(mut err: ServerError) -> ServerError {
    let code = match err.message.as_str() {
        "PersistedQueryNotFound" => "PERSISTED_QUERY_NOT_FOUND",
        "provided sha does not match query" => {
            err.message = "persisted query의 sha256Hash가 질의와 맞지 않습니다".into();
            err.extensions.get_or_insert_with(Default::default).set("field", "extensions.persistedQuery.sha256Hash");
            "BAD_USER_INPUT"
        }
        _ => "GRAPHQL_VALIDATION_FAILED",
    };
    with_code(err, code)
}

/// 실행 중의 코드 없는 에러: 입력 값 변환 실패는 BAD_USER_INPUT, 그 밖의 것은 우리 버그이므로 INTERNAL(상세는 로그).
fn execution_error_code(err: ServerError) -> ServerError {
    if err.extensions.as_ref().is_some_and(|e| e.get("code").is_some()) {
        return err;
    }
    let m = err.message.as_str();
    if m.starts_with("Failed to parse") || m.starts_with("Expected input type") || m.starts_with("Invalid value") {
        return with_code(err, "BAD_USER_INPUT");
    }
    tracing::error!(detail = %err.message, "코드 없는 실행 에러");
    let mut internal = ServerError::new(AppError::Internal(String::new()).to_string(), err.locations.first().copied());
    internal.path = err.path;
    with_code(internal, "INTERNAL")
}

impl ErrorCodesExt {
    /// 실행 전의 문서 검사: 연산 종류(HTTP의 구독, GET의 mutation), 깊이·비용·펼친 크기, 변수 강제 변환.
    /// 변수 오류는 문서 검증 뒤에 알리도록 담아 둔다.
    fn check_document(
        &self,
        ctx: &ExtensionContext<'_>,
        info: Option<&RequestInfo>,
        doc: &ExecutableDocument,
        operation_name: Option<&str>,
        variables: &Variables,
    ) -> ServerResult<()> {
        let registry = &ctx.schema_env.registry;
        // 한도가 먼저: 뒤의 검사들은 조각을 펼쳐 걷는다.
        let cost = limits::check(registry, doc, operation_name, variables, self.max_cost).map_err(|r| refused(r.message()))?;
        *lock(&self.cost) = Some(cost);
        if let Some(info) = info {
            info.classify(registry, doc, operation_name)?;
        }
        if let Some(op) = selected_operation(doc, operation_name)
            && let Err(bad) = variables::check(registry, doc, op, variables)
        {
            let mut err = ServerError::new(bad.message, None);
            let ext = err.extensions.get_or_insert_with(Default::default);
            ext.set("code", "BAD_USER_INPUT");
            ext.set("variable", bad.variable);
            ext.set("field", bad.field);
            *lock(&self.bad_variable) = Some(err);
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Extension for ErrorCodesExt {
    /// 단계 밖에서 생기는 요청 수준의 에러(없는 operationName, 이름 없이 여러 연산, APQ)도 코드를 갖게 한다.
    async fn request(&self, ctx: &ExtensionContext<'_>, next: async_graphql::extensions::NextRequest<'_>) -> async_graphql::Response {
        let mut resp = next.run(ctx).await;
        resp.errors = brief(resp.errors.into_iter().map(request_error_code).collect());
        if let Some(cost) = *lock(&self.cost) {
            let mut value = async_graphql::indexmap::IndexMap::new();
            value.insert(async_graphql::Name::new("requested"), async_graphql::Value::from(cost.requested));
            value.insert(async_graphql::Name::new("limit"), async_graphql::Value::from(cost.limit));
            resp.extensions.insert("cost".to_owned(), async_graphql::Value::Object(value));
        }
        resp
    }

    /// APQ가 문서를 채운 뒤에 불린다 (APQ 확장이 먼저 등록되어 바깥에서 돈다).
    /// 파싱과 문서 한도는 여기서, async-graphql의 준비보다 먼저 (APQ가 바깥에서 문서를 채운 뒤):
    /// async-graphql은 파싱 직후 재귀 깊이 검사(`check_recursive_depth`)에서도 조각을 펼칠 때마다 다시 걸으므로,
    /// 펼치면 커지는 문서는 그 전에 거절해야 한다. 파싱한 문서는 요청에 넣어 두어 다시 파싱하지 않는다.
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: async_graphql::extensions::NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let operation_name = request.operation_name.clone();
        *lock(&self.operation_name) = operation_name.clone();
        if !limits::nesting_fits(&request.query) {
            let err = ServerError::new(format!("문서가 너무 깊게 중첩되어 있습니다 (한도 {})", limits::MAX_NESTING), None);
            return Err(with_code(err, "GRAPHQL_PARSE_FAILED"));
        }
        // 질의 문자열이 비었으면 APQ가 해시로 찾은 문서를 넣어 두었다. HTTP는 캐시에서 꺼낸 문서를 넣어 둔다.
        let text = (!request.query.is_empty()).then(|| request.query.clone());
        let variables = std::mem::take(&mut request.variables);
        // 요청 데이터는 이 단계 뒤에야 컨텍스트에 붙으므로, HTTP 계층의 RequestInfo는 요청에서 직접 꺼낸다.
        let info = request.data.get(&std::any::TypeId::of::<RequestInfo>()).and_then(|d| d.downcast_ref::<RequestInfo>()).cloned();
        // null 전파에 쓸 문서: 보통은 질의 문자열(오류가 날 때만 다시 파싱), persisted query면 파싱된 문서의 사본
        // (사본은 그때만: 요청마다 문서를 복사하지 않는다).
        let checked = match request.parsed_query() {
            Ok(doc) => self.check_document(ctx, info.as_ref(), doc, operation_name.as_deref(), &variables).map(|()| match text {
                Some(text) => QuerySource::Text(text),
                None => QuerySource::Parsed(doc.clone()),
            }),
            Err(e) => Err(brief_parse_error(e)),
        };
        request.variables = variables;
        *lock(&self.query) = Some(checked?);
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables).await.map_err(brief_parse_error)
    }

    async fn validation(&self, ctx: &ExtensionContext<'_>, next: NextValidation<'_>) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await;
        // async-graphql의 검증은 변수 값까지 보고 코드 없는 "Invalid value" 오류를 낸다: 변수가 틀렸으면 그 대신
        // 계약의 변수 오류 하나로 답한다.
        if let Some(err) = lock(&self.bad_variable).take() {
            return Err(vec![err]);
        }
        result.map_err(|errs| errs.into_iter().map(|e| with_code(e, "GRAPHQL_VALIDATION_FAILED")).collect())
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: async_graphql::extensions::NextExecute<'_>,
    ) -> async_graphql::Response {
        if let Some(info) = ctx.data_opt::<RequestInfo>() {
            info.0.executed.store(true, Ordering::Relaxed);
        }
        let mut resp = next.run(ctx, operation_name).await;
        if resp.errors.is_empty() {
            return resp;
        }
        resp.errors = resp.errors.into_iter().map(execution_error_code).collect();
        let source = lock(&self.query).take();
        let doc = match source {
            Some(QuerySource::Parsed(doc)) => Some(doc),
            Some(QuerySource::Text(text)) => async_graphql::parser::parse_query(text).ok(),
            None => None,
        };
        if let Some(doc) = doc {
            nulls::complete(&ctx.schema_env.registry, &doc, operation_name, &mut resp.data);
        }
        resp
    }
}
