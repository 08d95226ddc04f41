//! 문서의 한도 (CONTRACT 2절, 13절의 비용): 깊이, 정적 비용, 펼친 크기를 async-graphql의 검증보다 먼저 센다.
//!
//! async-graphql 7.2의 깊이·복잡도 방문자는 조각을 펼칠 때마다 다시 걷는다: 다음 조각을 두 번 펼치는 조각이 N단이면
//! 2^N번 (1 KB 문서가 몇 초에서 몇 분의 CPU). 여기서는 조각마다 한 번만 세고(메모), 펼친 크기는 곱셈으로만 얻는다.
//! 그래서 문서 크기에 선형이고, 한도를 넘는 문서는 검증이 걷기 전에 거절된다. 한도 안의 문서는 펼친 크기가
//! 작으므로 뒤따르는 async-graphql의 방문도 짧다.
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Mutex;

use async_graphql::Variables;
use async_graphql::parser::types::{ExecutableDocument, Field, OperationDefinition, Selection, SelectionSet, VariableDefinition};
use async_graphql::registry::Registry;
use async_graphql::{Name, Positioned, Value};

/// 깊이 한도: 스키마에 순환이 없어 정상 질의는 6단을 넘지 않고, 도구들이 보내는 인트로스펙션 질의(≈15단)는 통과한다.
pub const MAX_DEPTH: u64 = 20;
/// 정적 비용 한도의 기본값 (`MAX_QUERY_COST`): 설정이 정한다.
pub use crate::config::DEFAULT_MAX_QUERY_COST as DEFAULT_MAX_COST;
/// 펼쳤을 때의 필드 수 한도: 검증 방문자가 걷는 양. 비용이 0인 인트로스펙션 아래도 센다.
pub const MAX_EXPANDED: u64 = 100_000;
/// 선택 집합마다 그 자리에서 펼친 필드 수의 합 한도: 필드 병합 검사(OverlappingFieldsCanBeMerged)가
/// 선택 집합마다 거기서 닿는 조각을 모두 걷기 때문에, 조각 사슬 하나로 문서 크기의 제곱이 되는 것을 막는다.
pub const MAX_SHALLOW_SUM: u64 = 100_000;
/// 파서에 넘기기 전의 괄호 중첩 한도: 재귀 하강 파서가 수만 단 중첩에서 스택을 다 쓰지 않게.
pub const MAX_NESTING: usize = 64;
/// 비용의 포화값 (2^31 − 1).
const SATURATE: u64 = (1 << 31) - 1;
/// 목록 필드의 기본 배수, 그리고 `first`의 상한.
const LIST_FACTOR: u64 = 100;

/// 문서를 거절하는 이유.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    TooDeep { depth: u64, limit: u64 },
    TooCostly { cost: u64, limit: u64 },
    TooLarge,
    FragmentCycle(String),
}

impl Refusal {
    pub fn message(&self) -> String {
        match self {
            Refusal::TooDeep { depth, limit } => format!("질의가 너무 깊습니다 (깊이 {depth}, 한도 {limit})"),
            Refusal::TooCostly { cost, limit } => format!("질의의 비용이 한도를 넘습니다 (비용 {cost}, 한도 {limit})"),
            Refusal::TooLarge => "펼친 질의가 너무 큽니다".to_owned(),
            Refusal::FragmentCycle(name) => format!("조각 \"{name}\"이(가) 자기 자신을 펼칩니다"),
        }
    }
}

/// 고른 연산의 정적 비용 (한도 안일 때).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cost {
    pub requested: u64,
    pub limit: u64,
}

/// 문서 하나의 셈 (CONTRACT 13절: 비용은 문서마다 한 번 센다). 파싱한 문서와 함께 캐시에 들어 있다.
/// 고른 연산의 이름이 같고 셈이 변수를 읽지 않았으면(변수로 준 `first`가 없으면) 다시 세지 않는다.
#[derive(Default)]
pub struct CostMemo(Mutex<Option<Counted>>);

/// 메모에 남는 셈: 고른 연산의 이름과 그 결과.
type Counted = (Option<String>, Result<Cost, Refusal>);

impl CostMemo {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Counted>> {
        // 잠금을 쥔 채 패닉하는 코드가 없으므로 오염된 잠금도 내용은 온전하다.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `count`에 메모를 더한 것: 같은 문서의 같은 연산이면 담아 둔 셈을 돌려준다.
pub fn check(
    registry: &Registry,
    doc: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &Variables,
    max_cost: u64,
    memo: Option<&CostMemo>,
) -> Result<Cost, Refusal> {
    if let Some(memo) = memo
        && let Some((name, result)) = &*memo.lock()
        && name.as_deref() == operation_name
    {
        return result.clone();
    }
    let (result, read_variables) = count(registry, doc, operation_name, variables, max_cost);
    if let Some(memo) = memo
        && !read_variables
    {
        *memo.lock() = Some((operation_name.map(str::to_owned), result.clone()));
    }
    result
}

/// 문서를 센다. 펼친 크기와 병합 검사의 양은 문서 전체(모든 연산과 조각), 깊이와 비용은 고른 연산(고를 수 없으면 전부).
/// 둘째 값: 셈이 변수의 값을 읽었는지 (읽었으면 다음 요청의 셈과 다를 수 있다).
fn count(
    registry: &Registry,
    doc: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &Variables,
    max_cost: u64,
) -> (Result<Cost, Refusal>, bool) {
    let mut counter = Counter {
        registry,
        doc,
        variables,
        read_variables: Cell::new(false),
        defs: &[],
        memo: HashMap::new(),
        visiting: Vec::new(),
        shallow: HashMap::new(),
    };
    let result = measure(&mut counter, doc, operation_name, max_cost);
    (result, counter.read_variables.get())
}

fn measure<'a>(
    counter: &mut Counter<'a>,
    doc: &'a ExecutableDocument,
    operation_name: Option<&str>,
    max_cost: u64,
) -> Result<Cost, Refusal> {
    // 병합 검사의 양: 모든 선택 집합의 얕은 펼침 합.
    let mut shallow_sum = 0u64;
    for (_, op) in doc.operations.iter() {
        shallow_sum = shallow_sum.saturating_add(counter.shallow_everywhere(&op.node.selection_set.node)?);
    }
    for fragment in doc.fragments.values() {
        shallow_sum = shallow_sum.saturating_add(counter.shallow_everywhere(&fragment.node.selection_set.node)?);
    }
    if shallow_sum > MAX_SHALLOW_SUM {
        return Err(Refusal::TooLarge);
    }
    let selected = super::operation::selected_operation(doc, operation_name);
    let mut expanded = 0u64;
    let mut chosen = Tally::default();
    for (name, op) in doc.operations.iter() {
        let tally = counter.operation(&op.node)?;
        expanded = expanded.saturating_add(tally.expanded);
        let is_selected = match selected {
            Some(s) => std::ptr::eq(s, &op.node),
            None => operation_name.is_none_or(|n| name.is_some_and(|m| m.as_str() == n)),
        };
        if is_selected {
            chosen = chosen.max(tally);
        }
    }
    if expanded > MAX_EXPANDED {
        return Err(Refusal::TooLarge);
    }
    if chosen.depth > MAX_DEPTH {
        return Err(Refusal::TooDeep { depth: chosen.depth, limit: MAX_DEPTH });
    }
    if chosen.cost > max_cost {
        return Err(Refusal::TooCostly { cost: chosen.cost, limit: max_cost });
    }
    Ok(Cost { requested: chosen.cost, limit: max_cost })
}

/// 문자열과 주석 밖의 `{[(` 중첩이 한도 안인지 (파싱 전에, 문서 길이에 선형).
pub fn nesting_fits(query: &str) -> bool {
    let bytes = query.as_bytes();
    let (mut depth, mut i) = (0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' => {
                // 블록 문자열 """…"""과 보통 문자열 "…" (역슬래시 이스케이프).
                if bytes[i..].starts_with(b"\"\"\"") {
                    i += 3;
                    while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                        i += if bytes[i..].starts_with(b"\\\"\"\"") { 4 } else { 1 };
                    }
                    i += 2;
                } else {
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return false;
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    true
}

/// 선택 집합 하나를 센 값.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Tally {
    /// 계약의 정적 비용 (포화).
    cost: u64,
    /// 펼친 필드 수 (배수 없이: 검증이 걷는 양).
    expanded: u64,
    /// 필드 깊이.
    depth: u64,
}

impl Tally {
    fn max(self, other: Tally) -> Tally {
        Tally { cost: self.cost.max(other.cost), expanded: self.expanded.max(other.expanded), depth: self.depth.max(other.depth) }
    }

    fn add(&mut self, other: Tally) {
        self.cost = self.cost.saturating_add(other.cost).min(SATURATE);
        self.expanded = self.expanded.saturating_add(other.expanded);
        self.depth = self.depth.max(other.depth);
    }
}

/// 조각 하나의 값은 (조각, 둘러싼 연결의 first, 비용 0 구역인지)마다 같다: 그 열쇠로 한 번만 센다.
type MemoKey = (Name, Option<u64>, bool);

struct Counter<'a> {
    registry: &'a Registry,
    doc: &'a ExecutableDocument,
    variables: &'a Variables,
    /// 변수의 값을 읽었는지 (그러면 셈을 메모하지 않는다).
    read_variables: Cell<bool>,
    defs: &'a [Positioned<VariableDefinition>],
    memo: HashMap<MemoKey, Tally>,
    /// 지금 펼치는 중인 조각들 (순환 감지).
    visiting: Vec<Name>,
    shallow: HashMap<Name, u64>,
}

impl<'a> Counter<'a> {
    fn operation(&mut self, op: &'a OperationDefinition) -> Result<Tally, Refusal> {
        self.defs = &op.variable_definitions;
        let root = match op.ty {
            async_graphql::parser::types::OperationType::Query => Some(self.registry.query_type.as_str()),
            async_graphql::parser::types::OperationType::Mutation => self.registry.mutation_type.as_deref(),
            async_graphql::parser::types::OperationType::Subscription => self.registry.subscription_type.as_deref(),
        };
        self.set(&op.selection_set.node, root, None, false)
    }

    /// 선택 집합: 필드마다 더한다. `parent`: 이 집합이 고르는 타입 (모르면 None: 배수 없이 센다).
    fn set(&mut self, set: &'a SelectionSet, parent: Option<&'a str>, first: Option<u64>, free: bool) -> Result<Tally, Refusal> {
        let mut total = Tally::default();
        for item in &set.items {
            let tally = match &item.node {
                Selection::Field(f) => self.field(&f.node, parent, first, free)?,
                Selection::InlineFragment(inline) => {
                    let on = inline.node.type_condition.as_ref().map(|c| c.node.on.node.as_str()).or(parent);
                    self.set(&inline.node.selection_set.node, on, first, free)?
                }
                Selection::FragmentSpread(spread) => self.spread(&spread.node.fragment_name.node, first, free)?,
            };
            total.add(tally);
        }
        Ok(total)
    }

    fn spread(&mut self, name: &'a Name, first: Option<u64>, free: bool) -> Result<Tally, Refusal> {
        let key = (name.clone(), first, free);
        if let Some(t) = self.memo.get(&key) {
            return Ok(*t);
        }
        // 없는 조각은 검증이 알린다: 여기서는 0.
        let Some(fragment) = self.doc.fragments.get(name) else { return Ok(Tally::default()) };
        if self.visiting.contains(name) {
            return Err(Refusal::FragmentCycle(name.to_string()));
        }
        self.visiting.push(name.clone());
        let on = fragment.node.type_condition.node.on.node.as_str();
        let result = self.set(&fragment.node.selection_set.node, Some(on), first, free);
        self.visiting.pop();
        let tally = result?;
        self.memo.insert(key, tally);
        Ok(tally)
    }

    fn field(&mut self, field: &'a Field, parent: Option<&'a str>, first: Option<u64>, free: bool) -> Result<Tally, Refusal> {
        let name = field.name.node.as_str();
        let meta = parent.and_then(|p| self.registry.types.get(p)).and_then(|t| t.field_by_name(name));
        let ty = meta.map(|m| m.ty.as_str());
        let base = ty.map(|t| t.trim_matches(|c| c == '[' || c == ']' || c == '!'));
        let is_list = ty.is_some_and(|t| t.trim_end_matches('!').starts_with('['));
        // 인트로스펙션 아래는 비용 0 (__schema, __type 자신은 1).
        let free_below = free || name == "__schema" || name == "__type";
        let base = match name {
            "__schema" => Some("__Schema"),
            "__type" => Some("__Type"),
            _ => base,
        };
        // 연결의 edges·nodes는 그 연결을 돌려준 필드의 first만큼, 그 밖의 목록은 100번.
        let parent_is_connection = parent.is_some_and(|p| p.ends_with("Connection"));
        let factor = if !is_list {
            1
        } else if parent_is_connection && (name == "edges" || name == "nodes") {
            first.unwrap_or(LIST_FACTOR)
        } else {
            LIST_FACTOR
        };
        // 이 필드가 first 인자를 받으면(연결을 돌려주는 필드) 그 값이 아래 edges·nodes의 배수가 된다.
        let child_first = meta.and_then(|m| m.args.get("first")).map(|arg| self.first_value(field, arg.default_value.as_deref()));
        let child = if field.selection_set.node.items.is_empty() {
            Tally::default()
        } else {
            self.set(&field.selection_set.node, base, child_first, free_below)?
        };
        let own = if free { 0 } else { 1 };
        let cost = if free { 0 } else { own + factor.saturating_mul(child.cost) };
        Ok(Tally { cost: cost.min(SATURATE), expanded: child.expanded.saturating_add(1), depth: child.depth.saturating_add(1) })
    }

    /// `first` 인자의 값: 리터럴, 변수(없으면 변수의 기본값), 생략이나 null이면 인자의 기본값. 0..100으로 자른다.
    fn first_value(&self, field: &Field, default: Option<&str>) -> u64 {
        let default = default.and_then(|d| d.trim().parse::<i64>().ok());
        let given = field.get_argument("first").map(|v| &v.node);
        let value = match given {
            Some(async_graphql_value::Value::Number(n)) => n.as_i64(),
            Some(async_graphql_value::Value::Variable(var)) => {
                self.read_variables.set(true);
                match self.variables.get(var) {
                    Some(Value::Number(n)) => n.as_i64(),
                    Some(_) => None,
                    None => self.defs.iter().find(|d| d.node.name.node == *var).and_then(|d| d.node.default_value.as_ref()).and_then(|v| {
                        match &v.node {
                            Value::Number(n) => n.as_i64(),
                            _ => None,
                        }
                    }),
                }
            }
            _ => None,
        };
        value.or(default).unwrap_or(LIST_FACTOR as i64).clamp(0, LIST_FACTOR as i64) as u64
    }

    /// 이 선택 집합과 그 안의 모든 선택 집합(조각 정의 밖에서)의 얕은 펼침 합.
    fn shallow_everywhere(&mut self, set: &'a SelectionSet) -> Result<u64, Refusal> {
        let mut sum = self.shallow_of(set, &mut Vec::new())?;
        for item in &set.items {
            let inner = match &item.node {
                Selection::Field(f) => &f.node.selection_set.node,
                Selection::InlineFragment(inline) => &inline.node.selection_set.node,
                Selection::FragmentSpread(_) => continue,
            };
            if !inner.items.is_empty() {
                sum = sum.saturating_add(self.shallow_everywhere(inner)?);
            }
        }
        Ok(sum)
    }

    /// 선택 집합 하나에서 조각과 인라인 조각을 펼친 항목 수 (하위 필드의 선택은 세지 않는다).
    fn shallow_of(&mut self, set: &'a SelectionSet, visiting: &mut Vec<&'a Name>) -> Result<u64, Refusal> {
        let mut n = 0u64;
        for item in &set.items {
            n = n.saturating_add(match &item.node {
                Selection::Field(_) => 1,
                Selection::InlineFragment(inline) => self.shallow_of(&inline.node.selection_set.node, visiting)?.saturating_add(1),
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    if let Some(v) = self.shallow.get(name) {
                        v.saturating_add(1)
                    } else if let Some(fragment) = self.doc.fragments.get(name) {
                        if visiting.contains(&name) {
                            return Err(Refusal::FragmentCycle(name.to_string()));
                        }
                        visiting.push(name);
                        let v = self.shallow_of(&fragment.node.selection_set.node, visiting);
                        visiting.pop();
                        let v = v?;
                        self.shallow.insert(name.clone(), v);
                        v.saturating_add(1)
                    } else {
                        1
                    }
                }
            });
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_counted_outside_strings_and_comments() {
        assert!(nesting_fits("{ a(b: [1, {c: \"{{{{\"}]) { d } } # {{{{"));
        assert!(!nesting_fits(&"{a".repeat(30_000)));
        assert!(nesting_fits(&format!("{{ a(s: \"{}\") }}", "{".repeat(1000))));
        assert!(nesting_fits(&format!("{{ a(s: \"\"\"{}\"\"\") }}", "[".repeat(1000))));
    }
}
