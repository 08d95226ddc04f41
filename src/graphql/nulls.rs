//! GraphQL 명세의 null 전파 (CONTRACT 4절): 오류 난 필드는 null이 되고, 그 필드가 non-null이면 가장 가까운
//! nullable 조상이 null이 된다 (`data`까지). 선택된 필드가 응답에서 조용히 빠지는 일은 없다.
//!
//! async-graphql 7은 오류 난 필드를 결과 객체에서 빼기만 하고(부모를 null로 만들지 않는다), 필드가 모두 실패한
//! 객체는 non-null 자리에서도 null로 둔다. 그래서 필드마다 따로 고치지 않고, 오류가 있는 응답 하나를 문서와
//! 스키마 레지스트리에 비추어 명세의 "값 완성" 규칙대로 한 번 다시 완성한다. 오류가 없는 응답은 건드리지 않는다.
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::registry::{MetaType, Registry};
use async_graphql::{Name, Value};

/// 응답 `data`를 명세대로 고친다. 고칠 수 없으면(문서에 연산이 없는 등) 그대로 둔다.
pub fn complete(registry: &Registry, doc: &ExecutableDocument, operation_name: Option<&str>, data: &mut Value) {
    let Some(operation) = super::operation::selected_operation(doc, operation_name) else { return };
    let root = match operation.ty {
        OperationType::Query => Some(registry.query_type.as_str()),
        OperationType::Mutation => registry.mutation_type.as_deref(),
        OperationType::Subscription => registry.subscription_type.as_deref(),
    };
    let Some(root) = root else { return };
    if matches!(data, Value::Null) {
        return;
    }
    let walker = Walker { registry, doc };
    if walker.object(data, &operation.selection_set.node, root) {
        *data = Value::Null;
    }
}

struct Walker<'a> {
    registry: &'a Registry,
    doc: &'a ExecutableDocument,
}

impl Walker<'_> {
    /// 객체 하나를 완성한다. 돌려주는 값: non-null 필드가 null이라 이 객체 자체가 null이 되어야 하는지.
    fn object(&self, value: &mut Value, selection_set: &SelectionSet, type_name: &str) -> bool {
        let Value::Object(map) = value else { return false };
        let Some(meta) = self.registry.types.get(type_name) else { return false };
        let mut fields = Vec::new();
        self.collect(selection_set, type_name, &mut fields);
        for (key, name, sub, conditional) in fields {
            if name.starts_with("__") {
                continue;
            }
            let Some(field) = meta.field_by_name(name) else { continue };
            if !map.contains_key(key) {
                // @skip/@include로 빠진 필드는 원래 없어야 한다.
                if conditional {
                    continue;
                }
                map.insert(key.clone(), Value::Null);
            }
            let Some(child) = map.get_mut(key) else { continue };
            if self.value(child, sub, &field.ty) {
                return true;
            }
        }
        false
    }

    /// 타입 문자열(`[UserCoupon!]!` 같은)의 값 하나를 완성한다. 돌려주는 값: 이 자리가 non-null인데 null이 되었는지.
    fn value(&self, value: &mut Value, sub: &SelectionSet, ty: &str) -> bool {
        let (inner, non_null) = match ty.strip_suffix('!') {
            Some(t) => (t, true),
            None => (ty, false),
        };
        let broke = match value {
            Value::Null => false,
            Value::List(items) => match inner.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
                Some(item_ty) => items.iter_mut().any(|item| self.value(item, sub, item_ty)),
                None => false,
            },
            Value::Object(_) => match self.registry.types.get(inner) {
                Some(MetaType::Object { .. }) => self.object(value, sub, inner),
                _ => false,
            },
            _ => false,
        };
        if broke {
            *value = Value::Null;
        }
        matches!(value, Value::Null) && non_null
    }

    /// 선택 집합을 평평하게: (응답 키, 필드 이름, 하위 선택, @skip/@include가 붙었는지). 조각은 타입 조건이 맞을 때만.
    fn collect<'d>(&'d self, set: &'d SelectionSet, type_name: &str, out: &mut Vec<(&'d Name, &'d str, &'d SelectionSet, bool)>) {
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    let key = f.node.alias.as_ref().map(|a| &a.node).unwrap_or(&f.node.name.node);
                    let conditional = !f.node.directives.is_empty();
                    if !out.iter().any(|(k, ..)| *k == key) {
                        out.push((key, f.node.name.node.as_str(), &f.node.selection_set.node, conditional));
                    } else if let Some(existing) = out.iter_mut().find(|(k, ..)| *k == key) {
                        existing.3 |= conditional;
                    }
                }
                Selection::FragmentSpread(spread) => {
                    if let Some(fragment) = self.doc.fragments.get(&spread.node.fragment_name.node)
                        && fragment.node.type_condition.node.on.node.as_str() == type_name
                    {
                        self.collect(&fragment.node.selection_set.node, type_name, out);
                    }
                }
                Selection::InlineFragment(inline) => {
                    let applies = inline.node.type_condition.as_ref().is_none_or(|c| c.node.on.node.as_str() == type_name);
                    if applies {
                        self.collect(&inline.node.selection_set.node, type_name, out);
                    }
                }
            }
        }
    }
}
