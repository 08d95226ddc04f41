//! 변수 강제 변환 (CONTRACT 2절): 요청의 일부이지 실행의 일부가 아니다.
//!
//! async-graphql은 변수 값을 필드를 풀 때에야 해석해서, 빠진 필수 변수나 타입이 틀린 변수가 코드 없는 실행 에러
//! (INTERNAL, ERROR 로그 한 줄)가 되었다. 실행 전에 고른 연산의 변수 정의를 스키마 레지스트리에 비추어 모두 확인하고,
//! 틀리면 요청 오류(BAD_USER_INPUT, `extensions.variable`과 `extensions.field`)로 답한다.
use async_graphql::Variables;
use async_graphql::parser::types::{BaseType, ExecutableDocument, OperationDefinition, Selection, SelectionSet, Type};
use async_graphql::registry::{MetaType, Registry};
use async_graphql::{Name, Value};

/// 변수 하나의 거절.
#[derive(Debug, PartialEq, Eq)]
pub struct Rejected {
    /// 변수 이름 (`$` 없이).
    pub variable: String,
    /// 거절된 가장 안쪽의 인자나 입력 필드.
    pub field: String,
    pub message: String,
}

/// 고른 연산의 변수들을 확인한다. 첫 번째로 틀린 변수를 알린다.
pub fn check(
    registry: &Registry,
    doc: &ExecutableDocument,
    operation: &OperationDefinition,
    variables: &Variables,
) -> Result<(), Rejected> {
    for def in &operation.variable_definitions {
        let name = &def.node.name.node;
        let ty = &def.node.var_type.node;
        let value = variables.get(name);
        let fail = |field: Option<&str>, why: String| Rejected {
            variable: name.to_string(),
            field: field.map(str::to_owned).unwrap_or_else(|| used_as(doc, operation, name).unwrap_or_else(|| name.to_string())),
            message: format!("변수 ${name}: {why}"),
        };
        match value {
            None if def.node.default_value.is_some() || ty.nullable => {}
            None => return Err(fail(None, "필수 변수가 없습니다".to_owned())),
            Some(v) => {
                if let Err((field, why)) = value_fits(registry, v, ty, None) {
                    return Err(fail(field.as_deref(), why));
                }
            }
        }
    }
    Ok(())
}

/// 값이 타입에 맞는지. 틀리면 (가장 안쪽 입력 필드 이름, 이유).
fn value_fits(registry: &Registry, value: &Value, ty: &Type, field: Option<&str>) -> Result<(), (Option<String>, String)> {
    if matches!(value, Value::Null) {
        return if ty.nullable { Ok(()) } else { Err((field.map(str::to_owned), "null일 수 없습니다".to_owned())) };
    }
    match &ty.base {
        BaseType::List(item) => match value {
            Value::List(items) => items.iter().try_for_each(|v| value_fits(registry, v, item, field)),
            // 목록 자리의 값 하나는 길이 1의 목록으로 본다 (명세의 입력 강제 변환).
            other => value_fits(registry, other, item, field),
        },
        BaseType::Named(name) => named_fits(registry, value, name, field),
    }
}

fn named_fits(registry: &Registry, value: &Value, name: &Name, field: Option<&str>) -> Result<(), (Option<String>, String)> {
    let bad = |why: &str| Err((field.map(str::to_owned), why.to_owned()));
    match name.as_str() {
        "Int" => match value {
            Value::Number(n) if n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()) => Ok(()),
            _ => bad("32비트 정수여야 합니다"),
        },
        "Float" => match value {
            Value::Number(_) => Ok(()),
            _ => bad("수여야 합니다"),
        },
        "String" => match value {
            Value::String(_) => Ok(()),
            _ => bad("문자열이어야 합니다"),
        },
        "Boolean" => match value {
            Value::Boolean(_) => Ok(()),
            _ => bad("true 또는 false여야 합니다"),
        },
        "ID" => match value {
            Value::String(_) => Ok(()),
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(()),
            _ => bad("ID 문자열이어야 합니다"),
        },
        // 우리 스칼라: 리졸버와 같은 해석기로.
        "Decimal" => match value {
            Value::String(s) if crate::domain::money::parse_decimal("value", s).is_ok() => Ok(()),
            _ => bad("\"5000.00\" 같은 십진수 문자열이어야 합니다"),
        },
        "DateTime" => match value {
            Value::String(s) if crate::domain::coupon::parse_datetime("value", s).is_ok() => Ok(()),
            _ => bad("RFC 3339 시각 문자열이어야 합니다 (예: \"2025-01-01T00:00:00Z\")"),
        },
        other => match registry.types.get(other) {
            Some(MetaType::Enum { enum_values, .. }) => match value {
                Value::String(s) if enum_values.contains_key(s.as_str()) => Ok(()),
                Value::Enum(e) if enum_values.contains_key(e.as_str()) => Ok(()),
                _ => bad(&format!("{other}의 값이 아닙니다")),
            },
            Some(MetaType::InputObject { input_fields, .. }) => {
                let Value::Object(map) = value else { return bad("입력 객체여야 합니다") };
                if let Some(unknown) = map.keys().find(|k| !input_fields.contains_key(k.as_str())) {
                    return Err((Some(unknown.to_string()), format!("{other}에 없는 필드 {unknown}")));
                }
                for (key, meta) in input_fields {
                    let Some(ty) = Type::new(&meta.ty) else { continue };
                    match map.get(key.as_str()) {
                        None if ty.nullable || meta.default_value.is_some() => {}
                        None => return Err((Some(key.clone()), format!("필수 필드 {key}가 없습니다"))),
                        Some(v) => value_fits(registry, v, &ty, Some(key))?,
                    }
                }
                Ok(())
            }
            Some(MetaType::Scalar { is_valid, .. }) => match is_valid {
                Some(valid) if !valid(value) => bad(&format!("{other}로 읽을 수 없습니다")),
                _ => Ok(()),
            },
            // 모르는 타입은 검증이 알린다.
            _ => Ok(()),
        },
    }
}

/// 변수가 처음 쓰인 인자의 이름 (연산과 조각에서): 맨 바깥 값이 틀렸을 때 `extensions.field`.
fn used_as(doc: &ExecutableDocument, operation: &OperationDefinition, variable: &Name) -> Option<String> {
    fn in_set(doc: &ExecutableDocument, set: &SelectionSet, variable: &Name, seen: &mut Vec<Name>) -> Option<String> {
        for item in &set.items {
            let found = match &item.node {
                Selection::Field(f) => f
                    .node
                    .arguments
                    .iter()
                    .find(|(_, v)| mentions(&v.node, variable))
                    .map(|(n, _)| n.node.to_string())
                    .or_else(|| in_set(doc, &f.node.selection_set.node, variable, seen)),
                Selection::InlineFragment(inline) => in_set(doc, &inline.node.selection_set.node, variable, seen),
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    if seen.contains(name) {
                        None
                    } else {
                        seen.push(name.clone());
                        doc.fragments.get(name).and_then(|f| in_set(doc, &f.node.selection_set.node, variable, seen))
                    }
                }
            };
            if found.is_some() {
                return found;
            }
        }
        None
    }
    in_set(doc, &operation.selection_set.node, variable, &mut Vec::new())
}

/// 인자 값(입력 객체·목록 안 포함)이 이 변수를 쓰는지.
fn mentions(value: &async_graphql_value::Value, variable: &Name) -> bool {
    use async_graphql_value::Value as Raw;
    match value {
        Raw::Variable(v) => v == variable,
        Raw::List(items) => items.iter().any(|v| mentions(v, variable)),
        Raw::Object(map) => map.values().any(|v| mentions(v, variable)),
        _ => false,
    }
}
