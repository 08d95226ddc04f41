//! 요청마다 붙는 확장 `ErrorCodes`: 실행 전의 문서 한도와 변수 검사, 코드 없는 에러의 코드, 명세의 null 전파.
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, ServerError, ServerResult, ValidationResult, Variables};

use super::errors::{brief, brief_parse_error, execution_error_code, refused, request_error_code, with_code};
use super::operation::{RequestInfo, selected_operation};
use super::{limits, nulls, variables};

/// 요청마다 붙는 확장: 문서의 한도와 변수를 검증 전후에 확인하고, 코드 없는 에러에 계약서의 코드를 붙이고,
/// 오류가 있는 응답에 명세의 null 전파를 적용한다.
pub(super) struct ErrorCodes {
    pub(super) max_cost: u64,
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // 잠금을 쥔 채 패닉하는 코드가 없으므로 오염된 잠금도 내용은 온전하다.
    m.lock().unwrap_or_else(|p| p.into_inner())
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
        memo: Option<&limits::CostMemo>,
    ) -> ServerResult<()> {
        let registry = &ctx.schema_env.registry;
        // 한도가 먼저: 뒤의 검사들은 조각을 펼쳐 걷는다. 캐시의 문서면 그 메모로 (문서마다 한 번 센다).
        let cost = limits::check(registry, doc, operation_name, variables, self.max_cost, memo).map_err(|r| refused(r.message()))?;
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
        // HTTP 계층이 캐시에서 꺼낸 문서면 그 비용 메모도 함께 넣어 두었다.
        let memo = request
            .data
            .get(&std::any::TypeId::of::<Arc<limits::CostMemo>>())
            .and_then(|d| d.downcast_ref::<Arc<limits::CostMemo>>())
            .cloned();
        // null 전파에 쓸 문서: 보통은 질의 문자열(오류가 날 때만 다시 파싱), persisted query면 파싱된 문서의 사본
        // (사본은 그때만: 요청마다 문서를 복사하지 않는다).
        let checked = match request.parsed_query() {
            Ok(doc) => {
                self.check_document(ctx, info.as_ref(), doc, operation_name.as_deref(), &variables, memo.as_deref()).map(|()| match text {
                    Some(text) => QuerySource::Text(text),
                    None => QuerySource::Parsed(doc.clone()),
                })
            }
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
            info.mark_executed();
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
