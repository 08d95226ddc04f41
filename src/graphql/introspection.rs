//! 스키마 자체에 대해 인트로스펙션과 SDL(`schema.graphql`)이 같은 말을 하게 한다 (CONTRACT 4절, 이슈 19).
//! - 스키마 설명: async-graphql은 `__Schema.description`에 명세의 `__Schema` 타입 설명을 박아 답한다. 이 스키마의 설명이 아니므로 null.
//! - SDL: async-graphql의 SDL은 쓰이지 않는 내장 지시어(`@deprecated`, `@oneOf`)를 빼고 지시어 인자의 설명을 싣지 않으며,
//!   어느 필드도 쓰지 않는 내장 스칼라(`Float`)도 뺀다. graphql-js의 buildSchema는 빠진 지시어를 자기 정의(다른 위치)로 채우고
//!   `Float`는 모르므로, 서버가 인트로스펙션으로 알리는 그대로 선언해 둔다.
use std::collections::BTreeSet;
use std::fmt::Write;
use std::sync::Arc;

use async_graphql::connection::Connection;
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo};
use async_graphql::{ObjectType, SDLExportOptions, Schema, SchemaBuilder, ServerResult, SubscriptionType, Value};
use serde_json::Value as Json;

use super::code::CouponCode;
use super::coupon::Coupon;
use super::event::CouponEvent;
use super::user_coupon::UserCoupon;
use crate::error::{AppError, AppResult};

/// `__schema { description }`을 null로 (이 스키마에는 따로 둘 설명이 없다).
pub(super) struct NoSchemaDescription;

impl ExtensionFactory for NoSchemaDescription {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(NoSchemaDescription)
    }
}

#[async_trait::async_trait]
impl Extension for NoSchemaDescription {
    async fn resolve(&self, ctx: &ExtensionContext<'_>, info: ResolveInfo<'_>, next: NextResolve<'_>) -> ServerResult<Option<Value>> {
        if info.parent_type == "__Schema" && info.name == "description" {
            return Ok(Some(Value::Null));
        }
        next.run(ctx, info).await
    }
}

/// Relay 연결 타입의 설명 (async-graphql의 `Connection`은 설명을 받지 않는다).
pub(super) fn describe_connections<Q, M, S>(builder: SchemaBuilder<Q, M, S>) -> SchemaBuilder<Q, M, S> {
    builder
        .override_output_type_description::<Connection<String, Coupon>>("A page of coupons (a Relay connection).")
        .override_output_type_description::<Connection<String, CouponCode>>("A page of coupon codes (a Relay connection).")
        .override_output_type_description::<Connection<String, CouponEvent>>("A page of events (a Relay connection).")
        .override_output_type_description::<Connection<String, UserCoupon>>("A page of user coupons (a Relay connection).")
}

const BUILTIN_SCALARS: [&str; 5] = ["Int", "Float", "String", "Boolean", "ID"];

/// 내장 스칼라가 쓰이는지와 지시어의 정의를 서버 자신에게 묻는다.
const QUERY: &str = "{ __schema {
  types { name kind description
    fields(includeDeprecated: true) { type { ...T } args { type { ...T } } }
    inputFields(includeDeprecated: true) { type { ...T } } }
  directives { name description locations isRepeatable args { name description defaultValue type { ...T } } } } }
fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }";

/// `couponql schema`가 찍고 `schema.graphql`에 담기는 SDL: async-graphql의 타입 정의(`@specifiedBy` 포함)에,
/// 어느 필드·인자·입력 필드·지시어 인자도 쓰지 않는 내장 스칼라와 서버의 지시어 전부를 인트로스펙션이 답하는 그대로 더한다.
pub(super) async fn sdl<Q, M, S>(schema: &Schema<Q, M, S>) -> AppResult<String>
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    let full = schema.sdl_with_options(SDLExportOptions::new().include_specified_by());
    let internal = |what: &str| AppError::Internal(format!("SDL: {what}"));
    // async-graphql의 SDL은 타입들(빈 줄로 끝남), 지시어 정의, `schema { … }` 순이다.
    let root = full.rfind("schema {").ok_or_else(|| internal("schema 블록이 없음"))?;
    let types_end = match full[..root].find("\ndirective @") {
        Some(first) => full[..first].rfind("\n\n").map_or(0, |i| i + 2),
        None => root,
    };

    let resp = schema.execute(QUERY).await;
    if !resp.errors.is_empty() {
        return Err(internal(&format!("인트로스펙션 실패: {:?}", resp.errors)));
    }
    let data = resp.data.into_json().map_err(|e| internal(&e.to_string()))?;
    let s = &data["__schema"];

    let mut used = BTreeSet::new();
    for t in list(&s["types"]).filter(|t| !text(&t["name"]).starts_with("__")) {
        for f in list(&t["fields"]) {
            used.insert(named(&f["type"]));
            used.extend(list(&f["args"]).map(|a| named(&a["type"])));
        }
        used.extend(list(&t["inputFields"]).map(|f| named(&f["type"])));
    }
    used.extend(list(&s["directives"]).flat_map(|d| list(&d["args"])).map(|a| named(&a["type"])));

    let mut out = full[..types_end].to_owned();
    for t in list(&s["types"]) {
        let name = text(&t["name"]);
        if t["kind"] == "SCALAR" && BUILTIN_SCALARS.contains(&name) && !used.contains(name) {
            description(&mut out, 0, &t["description"]);
            let _ = writeln!(out, "scalar {name}\n");
        }
    }
    for d in list(&s["directives"]) {
        description(&mut out, 0, &d["description"]);
        let _ = write!(out, "directive @{}", text(&d["name"]));
        let args: Vec<_> = list(&d["args"]).collect();
        if !args.is_empty() {
            let multiline = args.iter().any(|a| a["description"].is_string());
            out.push('(');
            for (i, a) in args.iter().enumerate() {
                if multiline {
                    out.push('\n');
                    description(&mut out, 1, &a["description"]);
                    out.push('\t');
                } else if i > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "{}: {}", text(&a["name"]), type_ref(&a["type"]));
                if let Some(default) = a["defaultValue"].as_str() {
                    let _ = write!(out, " = {default}");
                }
            }
            out.push_str(if multiline { "\n)" } else { ")" });
        }
        if d["isRepeatable"] == true {
            out.push_str(" repeatable");
        }
        let locations: Vec<_> = list(&d["locations"]).map(text).collect();
        let _ = writeln!(out, " on {}\n", locations.join(" | "));
    }
    out.push_str(&full[root..]);
    Ok(out)
}

fn list(v: &Json) -> impl Iterator<Item = &Json> {
    v.as_array().into_iter().flatten()
}

fn text(v: &Json) -> &str {
    v.as_str().unwrap_or_default()
}

/// async-graphql과 같은 모양의 설명 블록 (탭 들여쓰기).
fn description(out: &mut String, level: usize, d: &Json) {
    if let Some(d) = d.as_str() {
        let tabs = "\t".repeat(level);
        let _ = writeln!(out, "{tabs}\"\"\"\n{tabs}{}\n{tabs}\"\"\"", d.replace('\n', &format!("\n{tabs}")));
    }
}

/// 인트로스펙션의 타입 참조를 SDL 표기로 (`[ID!]!`).
fn type_ref(t: &Json) -> String {
    match t["kind"].as_str() {
        Some("NON_NULL") => format!("{}!", type_ref(&t["ofType"])),
        Some("LIST") => format!("[{}]", type_ref(&t["ofType"])),
        _ => text(&t["name"]).to_owned(),
    }
}

/// 타입 참조가 가리키는 이름 있는 타입.
fn named(t: &Json) -> &str {
    match &t["ofType"] {
        Json::Null => text(&t["name"]),
        inner => named(inner),
    }
}
