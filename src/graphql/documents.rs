//! 파싱한 GraphQL 문서의 캐시: 같은 질의 문자열이 다시 오면 파싱(pest)을 건너뛴다.
//!
//! 앱이 보내는 질의는 몇 가지 모양이 반복되므로, 문자열을 키로 최근 것을 들고 있다. 검증(깊이, 복잡도, 규칙)은
//! 매번 그대로 돈다: 캐시는 파싱만 줄인다. 긴 질의는 담지 않아 메모리가 `CAPACITY × MAX_QUERY_LEN`을 넘지 않는다.
use std::num::NonZeroUsize;
use std::sync::Mutex;

use async_graphql::Request;
use async_graphql::parser::types::{ExecutableDocument, OperationType};
use lru::LruCache;

/// 들고 있는 문서 수.
const CAPACITY: usize = 512;
/// 이보다 긴 질의는 담지 않는다.
const MAX_QUERY_LEN: usize = 4096;

pub struct DocumentCache(Mutex<LruCache<String, ExecutableDocument>>);

impl Default for DocumentCache {
    fn default() -> Self {
        Self(Mutex::new(LruCache::new(NonZeroUsize::new(CAPACITY).unwrap_or(NonZeroUsize::MIN))))
    }
}

impl DocumentCache {
    /// 요청에 파싱한 문서를 미리 넣고(캐시에서, 없으면 파싱해서 담는다), 고른 연산이 mutation인지 돌려준다.
    /// 파싱할 수 없거나 연산을 고를 수 없으면 None: 실행이 그 오류를 그대로 답한다.
    pub fn prepare(&self, request: &mut Request) -> Option<bool> {
        if request.query.is_empty() {
            // persisted query의 해시만 온 요청: 질의는 실행 중에 채워진다.
            return None;
        }
        if !super::limits::nesting_fits(&request.query) {
            // 파서에 넘기지 않는다: 실행의 파싱 단계가 같은 검사로 거절한다.
            return None;
        }
        let cached = self.cache().get(&request.query).cloned();
        let doc = match cached {
            Some(doc) => doc,
            None => {
                let doc = async_graphql::parser::parse_query(&request.query).ok()?;
                if request.query.len() <= MAX_QUERY_LEN {
                    self.cache().put(request.query.clone(), doc.clone());
                }
                doc
            }
        };
        let ty = super::operation::selected_operation(&doc, request.operation_name.as_deref()).map(|op| op.ty);
        request.set_parsed_query(doc);
        Some(ty? == OperationType::Mutation)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, LruCache<String, ExecutableDocument>> {
        // 잠금을 쥔 채 패닉하는 코드가 없으므로 오염된 잠금도 내용은 온전하다.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_query_is_served_from_the_cache_and_its_operation_type_is_known() {
        let cache = DocumentCache::default();
        let mut q = Request::new("{ __typename }");
        assert_eq!(cache.prepare(&mut q), Some(false));
        assert_eq!(cache.cache().len(), 1);
        let mut again = Request::new("{ __typename }");
        assert_eq!(cache.prepare(&mut again), Some(false));
        assert_eq!(cache.cache().len(), 1);
        let mut m = Request::new("mutation { issueCoupon(couponId: \"x\") { id } }");
        assert_eq!(cache.prepare(&mut m), Some(true));
        let mut two = Request::new("query A { __typename } mutation B { __typename }").operation_name("B");
        assert_eq!(cache.prepare(&mut two), Some(true));
        let mut unnamed = Request::new("query A { __typename } mutation B { __typename }");
        assert_eq!(cache.prepare(&mut unnamed), None);
        let mut broken = Request::new("{ nope");
        assert_eq!(cache.prepare(&mut broken), None);
        let mut long = Request::new(format!("{{ __typename {} }}", " ".repeat(MAX_QUERY_LEN)));
        assert_eq!(cache.prepare(&mut long), Some(false));
        assert_eq!(cache.cache().len(), 3, "같은 문자열은 한 번, 긴 질의와 깨진 질의는 담지 않는다");
    }
}
