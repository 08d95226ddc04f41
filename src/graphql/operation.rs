//! 요청이 고른 연산: 연산 고르기(GetOperation), 멱등 키를 붙일 mutation, 요청 하나의 사정(`RequestInfo`), 캐시 힌트.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationDefinition, OperationType};
use async_graphql::{ServerError, ServerResult};

use super::errors::with_code;

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
    /// 고른 연산의 이름 (문서에 적힌 것: `operationName` 없이 온 이름 있는 연산도). 추적 스팬의 이름.
    operation_name: OnceLock<async_graphql::Name>,
    /// 고른 연산의 루트 필드가 모두 캐시 힌트를 가질 때 그 가장 작은 값(초).
    cache_max_age: OnceLock<u32>,
}

impl RequestInfo {
    fn new(via_get: bool) -> Self {
        Self(Arc::new(InfoInner {
            via_get,
            executed: AtomicBool::new(false),
            operation_type: OnceLock::new(),
            operation_name: OnceLock::new(),
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

    /// 실행 단계에 들어섰다 (확장이 실행 직전에 부른다).
    pub(super) fn mark_executed(&self) {
        self.0.executed.store(true, Ordering::Relaxed);
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

    /// 고른 연산의 이름 (이름 없는 연산이거나 문서를 못 읽었으면 None).
    pub fn operation_name(&self) -> Option<&str> {
        self.0.operation_name.get().map(|n| n.as_str())
    }

    /// 문서에서 고른 연산의 종류를 기록하고, 실행 전에 거절할 것을 거절한다 (아무것도 실행하지 않는다):
    /// HTTP로 온 구독은 BAD_REQUEST(구독은 웹소켓으로), GET으로 온 mutation은 405.
    pub(super) fn classify(
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
        if let Some(name) = selected.and_then(|s| doc.operations.iter().find(|(_, op)| std::ptr::eq(&op.node, s))).and_then(|(n, _)| n) {
            // 이름은 Arc라 복사가 싸다 (추적이 꺼져 있어도 요청마다 한 번).
            let _ = self.0.operation_name.set(name.clone());
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
