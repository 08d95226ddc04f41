//! 스키마 전체를 데이터베이스 없이 실행해 보는 단위 테스트: 가드, 문서 한도, 변수 검사.
//! 각 모듈 안에 두면 그 테스트가 스키마를 부르고 스키마가 (확장·루트를 거쳐) 그 모듈을 불러 파일 사이에 고리가 생긴다.

mod guards {
    use async_graphql::Request;
    use uuid::Uuid;

    use crate::domain::{Role, Viewer};

    /// 데이터베이스 없이 스키마만으로: 가드가 인자 해석과 데이터베이스보다 먼저 답한다.
    async fn code(query: &str, viewer: Option<Viewer>) -> Option<String> {
        let schema = crate::graphql::schema::build_schema(None, crate::service::issuance::IssueMode::PerRequest);
        let mut request = Request::new(query);
        if let Some(v) = viewer {
            request = request.data(v);
        }
        let resp = schema.execute(request).await;
        resp.errors
            .first()
            .and_then(|e| e.extensions.as_ref())
            .and_then(|x| x.get("code"))
            .map(|c| c.to_string().trim_matches('"').to_owned())
    }

    const MALFORMED: &str = r#"mutation { createCoupon(input: { name: "", discountType: FIXED, discountValue: "-1", validFrom: "x", validUntil: "y" }) { id } }"#;

    #[tokio::test]
    async fn create_coupon_checks_the_caller_before_its_malformed_input() {
        let user = Viewer { user_id: Uuid::from_u128(1), role: Role::User };
        assert_eq!(code(MALFORMED, None).await.as_deref(), Some("UNAUTHENTICATED"));
        assert_eq!(code(MALFORMED, Some(user)).await.as_deref(), Some("FORBIDDEN"));
    }

    #[tokio::test]
    async fn admin_reads_and_own_mutations_need_a_token() {
        let user = Viewer { user_id: Uuid::from_u128(1), role: Role::User };
        assert_eq!(code(r#"{ users(ids: ["nope"]) { id } }"#, None).await.as_deref(), Some("UNAUTHENTICATED"));
        assert_eq!(code(r#"{ users(ids: ["nope"]) { id } }"#, Some(user)).await.as_deref(), Some("FORBIDDEN"));
        assert_eq!(code(r#"mutation { useCoupon(userCouponId: "nope") { id } }"#, None).await.as_deref(), Some("UNAUTHENTICATED"));
        assert_eq!(code(r#"{ userCoupons { id } }"#, None).await.as_deref(), Some("UNAUTHENTICATED"));
    }
}

mod limits {
    use async_graphql::Value;

    use crate::service::issuance::IssueMode;

    /// 스키마로 실행해 본다 (데이터베이스 없이: 한도 검사는 실행 전이다). 통과하면 `extensions.cost.requested`,
    /// 거절되면 (코드, 메시지).
    pub(crate) async fn cost_of(query: &str) -> Result<u64, (String, String)> {
        let schema = super::super::schema::build_schema(None, IssueMode::PerRequest);
        let started = std::time::Instant::now();
        let resp = schema.execute(query).await;
        // 시간 목표는 벤치마크가 잰다: 여기서는 지수로 터지지 않는지만 (디버그 빌드에서도 넉넉한 한도).
        assert!(started.elapsed() < std::time::Duration::from_secs(1), "{:?}", started.elapsed());
        let refused = resp.errors.iter().find_map(|e| {
            let code = e.extensions.as_ref().and_then(|x| x.get("code")).map(|c| c.to_string().trim_matches('"').to_owned())?;
            (code == "GRAPHQL_VALIDATION_FAILED" || code == "GRAPHQL_PARSE_FAILED").then(|| (code, e.message.clone()))
        });
        if let Some(r) = refused {
            return Err(r);
        }
        let cost = resp.extensions.get("cost").and_then(|c| match c {
            Value::Object(o) => o.get("requested").and_then(|r| match r {
                Value::Number(n) => n.as_u64(),
                _ => None,
            }),
            _ => None,
        });
        cost.ok_or_else(|| ("NO_COST".to_owned(), format!("{:?}", resp.errors)))
    }

    /// 조각 N개가 각각 다음 조각을 두 번 펼친다 (펼치면 2^N).
    pub(crate) fn fan_out(n: usize) -> String {
        let mut q = String::from("query { ...F0 }\n");
        for i in 0..n {
            q.push_str(&format!("fragment F{i} on Query {{ a: __typename ...F{} ...F{} }}\n", i + 1, i + 1));
        }
        q.push_str(&format!("fragment F{n} on Query {{ __typename }}\n"));
        q
    }

    /// 비용은 문서마다 한 번: 캐시가 문서와 함께 주는 메모에 셈이 남아 같은 문서의 다음 요청은 다시 세지 않는다.
    /// (메모는 그 문서의 것이라 믿으므로, 다른 문서를 같은 메모로 보내면 앞 문서의 셈이 나온다: 재사용의 증거.)
    /// 변수로 준 `first`를 읽은 셈은 다음 요청의 변수와 다를 수 있어 남기지 않는다.
    #[tokio::test]
    async fn a_document_is_costed_once_unless_its_cost_reads_variables() {
        use std::sync::Arc;

        use crate::graphql::limits::CostMemo;
        let schema = super::super::schema::build_schema(None, IssueMode::PerRequest);
        let cost = |query: &'static str, memo: Arc<CostMemo>| {
            let schema = schema.clone();
            async move {
                let mut request =
                    async_graphql::Request::new(query).variables(async_graphql::Variables::from_json(serde_json::json!({ "n": 3 })));
                request.data.insert(memo);
                let resp = schema.execute(request).await;
                resp.extensions.get("cost").map(|c| c.to_string())
            }
        };
        let fixed = Arc::new(CostMemo::default());
        assert_eq!(cost("{ coupons(first: 5) { nodes { id } } }", fixed.clone()).await.as_deref(), Some("{requested: 7, limit: 50000}"));
        assert_eq!(cost("{ __typename }", fixed).await.as_deref(), Some("{requested: 7, limit: 50000}"), "메모의 셈");
        let variable = Arc::new(CostMemo::default());
        let q = "query($n: Int) { coupons(first: $n) { nodes { id } } }";
        assert_eq!(cost(q, variable.clone()).await.as_deref(), Some("{requested: 5, limit: 50000}"));
        assert_eq!(cost("{ __typename }", variable).await.as_deref(), Some("{requested: 1, limit: 50000}"), "남기지 않았다");
    }

    #[tokio::test]
    async fn the_contract_example_costs_30201() {
        assert_eq!(cost_of("{ users(ids: []) { id coupons { id coupon { name } } } }").await, Ok(30_201));
    }

    #[tokio::test]
    async fn a_connection_counts_its_edges_first_times_and_typename_costs_one() {
        let c = cost_of("{ coupons(first: 5) { edges { node { id name } } pageInfo { hasNextPage } } __typename }").await;
        // coupons 1 + edges(1 + 5 × (node 1 + 2)) + pageInfo(1 + 1) + __typename 1
        assert_eq!(c, Ok(1 + (1 + 5 * 3) + 2 + 1));
        assert_eq!(cost_of("{ coupons { nodes { id } } }").await, Ok(1 + 1 + 20), "first를 주지 않으면 기본값 20");
        let over = format!(
            "{{ {} }}",
            (0..30).map(|i| format!("u{i}: users(ids: []) {{ id coupons {{ id coupon {{ name }} }} }}")).collect::<String>()
        );
        assert!(cost_of(&over).await.is_err_and(|(code, _)| code == "GRAPHQL_VALIDATION_FAILED"));
    }

    #[tokio::test]
    async fn fragment_fan_out_is_refused_without_expanding_it() {
        for n in [20, 25, 30, 60] {
            let r = cost_of(&fan_out(n)).await;
            assert!(r.is_err_and(|(code, _)| code == "GRAPHQL_VALIDATION_FAILED"), "N = {n}");
        }
        assert!(cost_of(&fan_out(5)).await.is_ok(), "작은 펼침은 통과");
    }

    #[tokio::test]
    async fn a_fragment_chain_that_would_make_field_merging_quadratic_is_refused() {
        let mut q = String::from("query { ...F0 }\n");
        let n = 1400;
        for i in 0..n {
            q.push_str(&format!("fragment F{i} on Query {{ __typename ...F{} }}\n", i + 1));
        }
        q.push_str(&format!("fragment F{n} on Query {{ __typename }}\n"));
        assert!(q.len() <= 64 * 1024, "{}", q.len());
        assert!(cost_of(&q).await.is_err_and(|(code, _)| code == "GRAPHQL_VALIDATION_FAILED"));
    }

    #[tokio::test]
    async fn cycles_are_refused_and_introspection_is_free() {
        let cycle = cost_of("query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }").await;
        assert!(cycle.is_err_and(|(code, _)| code == "GRAPHQL_VALIDATION_FAILED"));
        let introspection = include_str!("../../tests/api/introspection.graphql");
        let c = cost_of(introspection).await.expect("인트로스펙션은 한도 안");
        assert!(c < 10, "{c}");
    }

    #[tokio::test]
    async fn depth_is_counted_through_fragments_and_deep_nesting_never_reaches_the_parser() {
        let nested =
            |levels: usize| format!("{{ __type(name: \"Coupon\") {{ {} name {} }} }}", "ofType { ".repeat(levels), "}".repeat(levels));
        assert!(cost_of(&nested(15)).await.is_ok());
        assert!(cost_of(&nested(25)).await.is_err_and(|(code, _)| code == "GRAPHQL_VALIDATION_FAILED"));
        let fragment = format!(
            "{{ __type(name: \"Coupon\") {{ ...T }} }} fragment T on __Type {{ {} name {} }}",
            "ofType { ".repeat(20),
            "}".repeat(20)
        );
        assert!(cost_of(&fragment).await.is_err_and(|(code, _)| code == "GRAPHQL_VALIDATION_FAILED"));
        let deep = format!("{{{}", "a{".repeat(30_000));
        assert!(cost_of(&deep).await.is_err_and(|(code, _)| code == "GRAPHQL_PARSE_FAILED"));
    }
}

mod variables {
    use crate::service::issuance::IssueMode;

    /// 실행해 보고 변수 오류면 (변수, 필드). 데이터베이스 없는 스키마라 통과한 요청은 실행에서 다른 오류가 난다.
    async fn run(query: &str, vars: serde_json::Value) -> Result<(), (String, String)> {
        let schema = super::super::schema::build_schema(None, IssueMode::PerRequest);
        let resp = schema.execute(async_graphql::Request::new(query).variables(async_graphql::Variables::from_json(vars))).await;
        for e in &resp.errors {
            let ext = e.extensions.as_ref();
            let get = |k: &str| ext.and_then(|x| x.get(k)).map(|v| v.to_string().trim_matches('"').to_owned());
            if get("variable").is_some() {
                assert_eq!(get("code").as_deref(), Some("BAD_USER_INPUT"));
                assert!(resp.data == async_graphql::Value::Null, "요청 오류: 실행하지 않는다");
                return Err((get("variable").unwrap_or_default(), get("field").unwrap_or_default()));
            }
        }
        Ok(())
    }

    const USE: &str = "mutation($id: ID!, $amount: Decimal) { useCoupon(userCouponId: $id, orderAmount: $amount) { id } }";
    const CREATE: &str = "mutation($input: CreateCouponInput!) { createCoupon(input: $input) { id } }";

    fn input(over: serde_json::Value) -> serde_json::Value {
        let mut base = serde_json::json!({"name": "a", "discountType": "FIXED", "discountValue": "1", "validFrom": "2025-01-01T00:00:00Z", "validUntil": "2026-01-01T00:00:00Z"});
        if let (Some(b), Some(o)) = (base.as_object_mut(), over.as_object()) {
            b.extend(o.clone());
        }
        serde_json::json!({ "input": base })
    }

    #[tokio::test]
    async fn missing_wrong_and_unparsable_variables_are_request_errors_that_name_them() {
        let named = |v: &str, f: &str| Err((v.to_owned(), f.to_owned()));
        assert_eq!(run(USE, serde_json::json!({})).await, named("id", "userCouponId"));
        assert_eq!(run(USE, serde_json::json!({"id": true})).await, named("id", "userCouponId"));
        assert_eq!(run(USE, serde_json::json!({"id": "x", "amount": "1e5"})).await, named("amount", "orderAmount"));
        assert_eq!(run(USE, serde_json::json!({"id": "x", "amount": "100.50"})).await, Ok(()));
        assert_eq!(run(USE, serde_json::json!({"id": "x", "amount": null})).await, Ok(()));
        assert_eq!(run(CREATE, input(serde_json::json!({"validUntil": "nope"}))).await, named("input", "validUntil"));
        assert_eq!(run(CREATE, input(serde_json::json!({"discountType": "HALF"}))).await, named("input", "discountType"));
        assert_eq!(run(CREATE, input(serde_json::json!({"totalQuantity": 3_000_000_000u64}))).await, named("input", "totalQuantity"));
        assert_eq!(run(CREATE, input(serde_json::json!({"bogus": 1}))).await, named("input", "bogus"));
        assert_eq!(run(CREATE, input(serde_json::json!({}))).await, Ok(()));
    }
}
