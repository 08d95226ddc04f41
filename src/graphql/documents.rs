//! 질의 문서: 파싱한 문서의 캐시와 신뢰 문서 목록 (CONTRACT 13절).
//!
//! 앱이 보내는 질의는 몇 가지 모양이 반복되므로, 문자열을 키로 최근 것을 들고 있다. 문서마다 정적 비용의 메모를
//! 함께 들어 같은 문서의 비용을 다시 세지 않는다. 검증(규칙, 변수)은 매번 그대로 돈다. 긴 질의는 담지 않아 메모리가
//! `CAPACITY × MAX_QUERY_LEN`을 넘지 않는다.
//!
//! `TRUSTED_DOCUMENTS`가 있으면 목록의 문서만 실행한다: 요청은 `documentId`나 APQ 해시로 문서를 고르고, 질의 글은
//! 파싱하기 전에 거절한다 (목록의 글과 같아도: 글을 받는 순간 공격자가 파서와 검증을 쓸 수 있다).
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_graphql::Request;
use async_graphql::parser::types::{ExecutableDocument, OperationType};
use lru::LruCache;
use sha2::{Digest, Sha256};

use super::limits::{self, CostMemo};

/// 들고 있는 문서 수.
const CAPACITY: usize = 512;
/// 이보다 긴 질의는 담지 않는다.
const MAX_QUERY_LEN: usize = 4096;

/// 파싱한 문서와 그 비용의 메모.
struct Parsed {
    doc: ExecutableDocument,
    cost: Arc<CostMemo>,
}

impl Parsed {
    fn new(doc: ExecutableDocument) -> Arc<Self> {
        Arc::new(Self { doc, cost: Arc::default() })
    }

    /// 요청에 문서와 비용 메모를 넣고, 고른 연산이 mutation인지 돌려준다 (고를 수 없으면 None).
    fn fill(&self, request: &mut Request) -> Option<bool> {
        let ty = super::operation::selected_operation(&self.doc, request.operation_name.as_deref()).map(|op| op.ty);
        request.set_parsed_query(self.doc.clone());
        request.data.insert(self.cost.clone());
        Some(ty? == OperationType::Mutation)
    }
}

/// 신뢰 목록 밖의 요청 (질의 글, APQ 등록, 모르는 id): `PERSISTED_QUERY_NOT_FOUND`.
#[derive(Debug, PartialEq, Eq)]
pub struct NotTrusted;

impl NotTrusted {
    pub const CODE: &'static str = "PERSISTED_QUERY_NOT_FOUND";
    pub const MESSAGE: &'static str = "신뢰 문서 목록에 없는 요청입니다: 목록의 documentId(또는 sha256Hash)만 실행합니다";
}

pub struct DocumentCache {
    recent: Mutex<LruCache<String, Arc<Parsed>>>,
    trusted: Option<Arc<TrustedDocuments>>,
}

impl Default for DocumentCache {
    fn default() -> Self {
        Self::new(None)
    }
}

impl DocumentCache {
    pub fn new(trusted: Option<Arc<TrustedDocuments>>) -> Self {
        let capacity = NonZeroUsize::new(CAPACITY).unwrap_or(NonZeroUsize::MIN);
        Self { recent: Mutex::new(LruCache::new(capacity)), trusted }
    }

    /// 신뢰 목록 (웹소켓도 같은 목록을 쓴다).
    pub fn trusted(&self) -> Option<&Arc<TrustedDocuments>> {
        self.trusted.as_ref()
    }

    /// 요청에 파싱한 문서를 미리 넣고(캐시에서, 없으면 파싱해서 담는다), 고른 연산이 mutation인지 돌려준다.
    /// 신뢰 목록이 있으면 목록에서 고르고, 목록 밖의 요청은 거절한다.
    /// 파싱할 수 없거나 연산을 고를 수 없으면 Ok(None): 실행이 그 오류를 그대로 답한다.
    pub fn prepare(&self, request: &mut Request, document_id: Option<&str>) -> Result<Option<bool>, NotTrusted> {
        if let Some(trusted) = &self.trusted {
            return trusted.admit(request, document_id);
        }
        if request.query.is_empty() {
            // persisted query의 해시만 온 요청: 질의는 실행 중에 채워진다.
            return Ok(None);
        }
        if !limits::nesting_fits(&request.query) {
            // 파서에 넘기지 않는다: 실행의 파싱 단계가 같은 검사로 거절한다.
            return Ok(None);
        }
        let cached = self.cache().get(&request.query).cloned();
        let parsed = match cached {
            Some(parsed) => parsed,
            None => {
                let Ok(doc) = async_graphql::parser::parse_query(&request.query) else { return Ok(None) };
                let parsed = Parsed::new(doc);
                if request.query.len() <= MAX_QUERY_LEN {
                    self.cache().put(request.query.clone(), parsed.clone());
                }
                parsed
            }
        };
        Ok(parsed.fill(request))
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, LruCache<String, Arc<Parsed>>> {
        // 잠금을 쥔 채 패닉하는 코드가 없으므로 오염된 잠금도 내용은 온전하다.
        self.recent.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// 신뢰 문서 목록: GraphQL Code Generator의 client preset이 쓰는 `persisted-documents.json`
/// (`sha256:<hex>` 또는 맨 hex → 문서 글). 시작할 때 한 번 읽고 모두 파싱해 둔다.
pub struct TrustedDocuments {
    /// 소문자 hex → (글, 파싱한 문서).
    by_hash: HashMap<String, (String, Arc<Parsed>)>,
}

impl TrustedDocuments {
    /// 목록을 읽는다. 어긋난 것이 있으면 그 까닭 한 줄 (시작을 멈춘다).
    pub fn load(path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn parse(bytes: &[u8]) -> Result<Self, String> {
        let manifest: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON ({e})"))?;
        let serde_json::Value::Object(entries) = manifest else {
            return Err("not a JSON object mapping document hashes to document texts".into());
        };
        let mut by_hash = HashMap::with_capacity(entries.len());
        for (key, value) in entries {
            let serde_json::Value::String(text) = value else {
                return Err(format!("the value of \"{key}\" is not a string"));
            };
            let hex = key.strip_prefix("sha256:").unwrap_or(&key);
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("the key \"{key}\" is neither sha256:<hex> nor a 64-digit hex SHA-256"));
            }
            let actual = format!("{:x}", Sha256::digest(text.as_bytes()));
            if !hex.eq_ignore_ascii_case(&actual) {
                return Err(format!("the key \"{key}\" is not the SHA-256 of its document (that is {actual})"));
            }
            if !limits::nesting_fits(&text) {
                return Err(format!("the document \"{key}\" is nested deeper than {}", limits::MAX_NESTING));
            }
            let doc = async_graphql::parser::parse_query(&text)
                .map_err(|e| format!("the document \"{key}\" does not parse: {}", e.to_string().replace('\n', " ")))?;
            by_hash.insert(actual, (text, Parsed::new(doc)));
        }
        Ok(Self { by_hash })
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// 요청의 문서를 목록에서 고른다: `documentId`(`sha256:<hex>`와 맨 `<hex>`는 같은 문서), 없으면 APQ의 해시.
    /// 질의 글이 있으면(APQ 등록도) 읽지 않고 거절한다. 고른 문서는 글과 파싱한 문서를 요청에 넣는다.
    pub fn admit(&self, request: &mut Request, document_id: Option<&str>) -> Result<Option<bool>, NotTrusted> {
        // 신뢰 모드에서는 APQ를 쓰지 않으므로 그 확장은 여기서 읽고 없앤다.
        let apq = request.extensions.remove("persistedQuery");
        if !request.query.is_empty() {
            return Err(NotTrusted);
        }
        let apq_hash = match &apq {
            Some(async_graphql::Value::Object(pq)) => match pq.get("sha256Hash") {
                Some(async_graphql::Value::String(h)) => Some(h.as_str()),
                _ => None,
            },
            _ => None,
        };
        let id = document_id.or(apq_hash).ok_or(NotTrusted)?;
        let hex = id.strip_prefix("sha256:").unwrap_or(id);
        let (text, parsed) = self.by_hash.get(hex).or_else(|| self.by_hash.get(&hex.to_ascii_lowercase())).ok_or(NotTrusted)?;
        request.query = text.clone();
        Ok(parsed.fill(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(text: &str) -> String {
        format!("{:x}", Sha256::digest(text.as_bytes()))
    }

    #[test]
    fn a_repeated_query_is_served_from_the_cache_and_its_operation_type_is_known() {
        let cache = DocumentCache::default();
        let mut q = Request::new("{ __typename }");
        assert_eq!(cache.prepare(&mut q, None), Ok(Some(false)));
        assert_eq!(cache.cache().len(), 1);
        let mut again = Request::new("{ __typename }");
        assert_eq!(cache.prepare(&mut again, None), Ok(Some(false)));
        assert_eq!(cache.cache().len(), 1);
        let mut m = Request::new("mutation { issueCoupon(couponId: \"x\") { id } }");
        assert_eq!(cache.prepare(&mut m, None), Ok(Some(true)));
        let mut two = Request::new("query A { __typename } mutation B { __typename }").operation_name("B");
        assert_eq!(cache.prepare(&mut two, None), Ok(Some(true)));
        let mut unnamed = Request::new("query A { __typename } mutation B { __typename }");
        assert_eq!(cache.prepare(&mut unnamed, None), Ok(None));
        let mut broken = Request::new("{ nope");
        assert_eq!(cache.prepare(&mut broken, None), Ok(None));
        let mut long = Request::new(format!("{{ __typename {} }}", " ".repeat(MAX_QUERY_LEN)));
        assert_eq!(cache.prepare(&mut long, None), Ok(Some(false)));
        assert_eq!(cache.cache().len(), 3, "같은 문자열은 한 번, 긴 질의와 깨진 질의는 담지 않는다");
    }

    #[test]
    fn a_manifest_is_refused_with_the_reason_for_each_kind_of_defect() {
        let ok = "{ __typename }";
        let good = serde_json::json!({ format!("sha256:{}", sha(ok)): ok }).to_string();
        assert_eq!(TrustedDocuments::parse(good.as_bytes()).map(|t| t.len()), Ok(1));
        let bare = serde_json::json!({ sha(ok).to_uppercase(): ok }).to_string();
        assert_eq!(TrustedDocuments::parse(bare.as_bytes()).map(|t| t.len()), Ok(1));
        let fails = |json: String, says: &str| {
            let err = TrustedDocuments::parse(json.as_bytes()).err().unwrap_or_default();
            assert!(err.contains(says), "{json}: {err}");
            assert!(!err.contains('\n'), "한 줄: {err}");
        };
        fails("{".into(), "not valid JSON");
        fails("[]".into(), "not a JSON object");
        fails(serde_json::json!({ sha(ok): 5 }).to_string(), "is not a string");
        fails(serde_json::json!({ "abc": ok }).to_string(), "neither sha256:<hex>");
        fails(serde_json::json!({ sha("{ other }"): ok }).to_string(), "is not the SHA-256");
        let broken = "{ nope";
        fails(serde_json::json!({ sha(broken): broken }).to_string(), "does not parse");
    }

    #[test]
    fn only_documents_named_by_id_or_hash_run_and_text_is_refused() {
        let text = "query Q { __typename }";
        let hex = sha(text);
        let json = serde_json::json!({ format!("sha256:{hex}"): text }).to_string();
        let cache = DocumentCache::new(Some(Arc::new(TrustedDocuments::parse(json.as_bytes()).expect("manifest"))));
        for id in [format!("sha256:{hex}"), hex.clone(), hex.to_uppercase()] {
            let mut r = Request::new("");
            assert_eq!(cache.prepare(&mut r, Some(&id)), Ok(Some(false)), "{id}");
            assert_eq!(r.query, text);
        }
        let mut by_hash = Request::new("");
        by_hash.extensions.insert(
            "persistedQuery".into(),
            async_graphql::Value::from_json(serde_json::json!({ "version": 1, "sha256Hash": hex })).expect("value"),
        );
        assert_eq!(cache.prepare(&mut by_hash, None), Ok(Some(false)));
        assert!(by_hash.extensions.get("persistedQuery").is_none(), "APQ 확장은 실행에 넘기지 않는다");
        // 목록의 글과 같은 질의 글, APQ 등록(글과 해시), 모르는 id, 아무것도 없음: 모두 거절.
        assert_eq!(cache.prepare(&mut Request::new(text), None), Err(NotTrusted));
        assert_eq!(cache.prepare(&mut Request::new(text), Some(&hex)), Err(NotTrusted));
        let mut register = Request::new(text);
        register.extensions.insert(
            "persistedQuery".into(),
            async_graphql::Value::from_json(serde_json::json!({ "version": 1, "sha256Hash": hex })).expect("value"),
        );
        assert_eq!(cache.prepare(&mut register, None), Err(NotTrusted));
        assert_eq!(cache.prepare(&mut Request::new(""), Some(&sha("{ x }"))), Err(NotTrusted));
        assert_eq!(cache.prepare(&mut Request::new(""), None), Err(NotTrusted));
        assert_eq!(cache.cache().len(), 0, "신뢰 모드는 글을 파싱하지 않는다");
    }
}
