//! 스키마 기반 클라이언트: `schema.graphql`과 `tests/api/graphql/*.graphql`에서 graphql_client가 타입을 만든다.
//! 이 파일이 컴파일된다는 것 자체가 체크인된 스키마로 클라이언트 코드 생성이 된다는 증거다.
#![allow(clippy::upper_case_acronyms)]
use graphql_client::{GraphQLQuery, Response};
use serde_json::Value;

use crate::helpers::TestApp;

pub type Decimal = String;
pub type DateTime = String;

macro_rules! operation {
    ($name:ident, $file:literal) => {
        #[derive(GraphQLQuery)]
        #[graphql(schema_path = "schema.graphql", query_path = $file, response_derives = "Debug, Clone, PartialEq")]
        pub struct $name;
    };
}

operation!(Coupon, "tests/api/graphql/coupons.graphql");
operation!(Coupons, "tests/api/graphql/coupons.graphql");
operation!(DiscountFor, "tests/api/graphql/coupons.graphql");
operation!(CreateCoupon, "tests/api/graphql/coupons.graphql");
operation!(IssueCoupon, "tests/api/graphql/user_coupons.graphql");
operation!(UseCoupon, "tests/api/graphql/user_coupons.graphql");
operation!(CancelCoupon, "tests/api/graphql/user_coupons.graphql");
operation!(UserCoupons, "tests/api/graphql/user_coupons.graphql");
operation!(Me, "tests/api/graphql/users.graphql");
operation!(User, "tests/api/graphql/users.graphql");
operation!(UsersWithCoupons, "tests/api/graphql/users.graphql");

/// 한 번의 호출 결과: 데이터 또는 첫 에러의 코드.
pub struct Answer<T> {
    pub data: Option<T>,
    pub errors: Vec<graphql_client::Error>,
}

impl<T: std::fmt::Debug> Answer<T> {
    /// 성공한 데이터. 에러가 있으면 실패.
    pub fn ok(self) -> T {
        assert!(self.errors.is_empty(), "에러 없이 성공해야 함: {:?}", self.errors);
        self.data.expect("data")
    }

    /// 첫 에러의 `extensions.code`.
    pub fn code(&self) -> String {
        let e = self.errors.first().unwrap_or_else(|| panic!("에러가 나야 함: {:?}", self.data));
        e.extensions.as_ref().and_then(|x| x.get("code")).and_then(Value::as_str).unwrap_or("<no code>").to_owned()
    }

    /// 첫 에러의 `extensions.field`.
    pub fn field(&self) -> Option<String> {
        self.errors.first()?.extensions.as_ref()?.get("field")?.as_str().map(str::to_owned)
    }

    pub fn message(&self) -> String {
        self.errors.first().map(|e| e.message.clone()).unwrap_or_default()
    }
}

impl TestApp {
    /// 연산 하나를 HTTP로 보낸다 (토큰이 있으면 Bearer로).
    pub async fn call<Q: GraphQLQuery>(&self, token: Option<&str>, vars: Q::Variables) -> Answer<Q::ResponseData> {
        let body = Q::build_query(vars);
        let mut req = self.http.post(format!("{}/graphql", self.base)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("HTTP");
        assert!(resp.status().is_success(), "HTTP {}", resp.status());
        let parsed: Response<Q::ResponseData> = resp.json().await.expect("GraphQL 응답 JSON");
        Answer { data: parsed.data, errors: parsed.errors.unwrap_or_default() }
    }

    /// 타입 없이 보낸다 (남용·형식 오류 시험용): (상태 코드, 본문 JSON 또는 Null).
    pub async fn raw(&self, token: Option<&str>, body: String) -> (u16, Value) {
        let mut req = self.http.post(format!("{}/graphql", self.base)).header("content-type", "application/json").body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("HTTP");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `Idempotency-Key`를 붙여 보낸다: (상태, `Idempotent-Replayed`, 본문 바이트).
    pub async fn keyed_bytes(&self, token: &str, key: &str, body: &Value) -> (u16, Option<String>, Vec<u8>) {
        let resp = self
            .http
            .post(format!("{}/graphql", self.base))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await
            .expect("HTTP");
        let status = resp.status().as_u16();
        let replayed = resp.headers().get("idempotent-replayed").and_then(|v| v.to_str().ok()).map(str::to_owned);
        (status, replayed, resp.bytes().await.expect("본문").to_vec())
    }

    pub async fn get(&self, path: &str) -> u16 {
        self.http.get(format!("{}{path}", self.base)).send().await.expect("HTTP").status().as_u16()
    }
}

/// 응답 JSON의 첫 에러 코드.
pub fn first_code(v: &Value) -> Option<&str> {
    v.get("errors")?.get(0)?.get("extensions")?.get("code")?.as_str()
}
