//! 실행 계획 검사: 뜨거운 경로(발급, 사용·취소, 사용자별 목록과 DataLoader 배치, coupon(id), 쿠폰 목록)가 ORM이
//! 실제로 보낸 문장을 그대로 잡아 백엔드의 EXPLAIN에 넣고, 인덱스가 있어야 할 곳의 테이블 전체 읽기를 실패로 본다.
//! 문장을 손으로 베끼지 않으므로 코드가 바뀌면 검사도 따라간다.
use std::sync::{Arc, Mutex};

use async_graphql::Request;
use couponql::domain::{Role, Viewer};
use couponql::service::issuance::IssueMode;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, TransactionTrait};
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{Backend, TestDb};
use crate::on_all_backends;
use migration::MigratorTrait;

const TABLES: [&str; 6] = ["users", "coupons", "user_coupons", "coupon_codes", "code_failures", "events"];

/// 계획에서 찾은 테이블 전체 읽기 (테이블 이름과 계획의 그 줄).
fn full_scans(backend: Backend, plan: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for row in plan {
        match backend {
            // PostgreSQL: enable_seqscan=off 아래에서도 남는 Seq Scan은 쓸 인덱스가 없다는 뜻이다.
            Backend::Postgres => {
                let line = row["plan"].as_str().unwrap_or_default();
                if let Some(rest) = line.split("Seq Scan on ").nth(1) {
                    let table = rest.split_whitespace().next().unwrap_or_default();
                    if TABLES.contains(&table) {
                        out.push(line.trim().to_owned());
                    }
                }
            }
            // MySQL/MariaDB: type = ALL이 테이블 전체 읽기.
            Backend::MySql => {
                let table = row["table"].as_str().unwrap_or_default();
                if row["type"].as_str() == Some("ALL") && TABLES.contains(&table) {
                    out.push(row.to_string());
                }
            }
            // SQLite: 인덱스 없는 "SCAN <table>" (인덱스를 따라 읽는 "SCAN t USING INDEX"는 정렬된 목록 페이지의 정상 계획).
            Backend::Sqlite => {
                let detail = row["detail"].as_str().unwrap_or_default();
                if let Some(rest) = detail.strip_prefix("SCAN ") {
                    let table = rest.split_whitespace().next().unwrap_or_default();
                    if TABLES.contains(&table) && !detail.contains(" USING ") {
                        out.push(detail.to_owned());
                    }
                }
            }
        }
    }
    out
}

/// 문장 하나의 실행 계획을 행마다 JSON으로.
async fn explain(txn: &impl ConnectionTrait, backend: Backend, stmt: &Statement) -> Vec<Value> {
    let prefix = if backend == Backend::Sqlite { "EXPLAIN QUERY PLAN " } else { "EXPLAIN " };
    let explain = Statement { sql: format!("{prefix}{}", stmt.sql), values: stmt.values.clone(), db_backend: stmt.db_backend };
    let rows = txn.query_all_raw(explain).await.unwrap_or_else(|e| panic!("EXPLAIN 실패: {e}\n{}", stmt.sql));
    rows.iter()
        .map(|r| match backend {
            Backend::Postgres => serde_json::json!({ "plan": r.try_get_by_index::<String>(0).unwrap_or_default() }),
            Backend::MySql => serde_json::json!({
                "table": r.try_get::<Option<String>>("", "table").ok().flatten(),
                "type": r.try_get::<Option<String>>("", "type").ok().flatten(),
                "key": r.try_get::<Option<String>>("", "key").ok().flatten(),
            }),
            Backend::Sqlite => serde_json::json!({ "detail": r.try_get::<String>("", "detail").unwrap_or_default() }),
        })
        .collect()
}

/// 계획 검사가 쓰는 트랜잭션. PostgreSQL은 순차 읽기를 꺼서, 작은 테이블이라 고른 Seq Scan과
/// 인덱스를 못 써서 고른 Seq Scan을 구분한다.
async fn plan_txn(db: &DatabaseConnection, backend: Backend) -> sea_orm::DatabaseTransaction {
    let txn = db.begin().await.expect("트랜잭션");
    if backend == Backend::Postgres {
        txn.execute_unprepared("SET LOCAL enable_seqscan = off").await.expect("enable_seqscan");
    }
    txn
}

/// 실제 서비스 규모에 가까운 통계가 나오도록 사용자·쿠폰·발급 내역을 채운다 (여러 행 INSERT).
async fn fill(db: &DatabaseConnection, backend: Backend, users: usize, coupons: usize) -> (Vec<Uuid>, Vec<Uuid>) {
    let user_ids: Vec<Uuid> = (0..users).map(|_| Uuid::new_v4()).collect();
    let coupon_ids: Vec<Uuid> = (0..coupons).map(|_| Uuid::new_v4()).collect();
    for chunk in user_ids.chunks(500) {
        let values: Vec<String> = chunk.iter().map(|u| format!("('{u}', '{}@plan.example', '계획')", u.simple())).collect();
        db.execute_unprepared(&format!("INSERT INTO users (id, email, name) VALUES {}", values.join(","))).await.expect("users");
    }
    // SQLite는 시각을 문자열로 담으므로 앱이 읽는 RFC 3339 형식으로 넣는다.
    let (from, until) = match backend {
        Backend::Sqlite => ("2020-01-01T00:00:00+00:00", "2099-12-31T00:00:00+00:00"),
        _ => ("2020-01-01 00:00:00", "2099-12-31 00:00:00"),
    };
    let values: Vec<String> = coupon_ids
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!(
                "('{c}', '채움 {i}', 'FIXED', 1000, NULL, NULL, {}, {}, '{from}', '{until}', '{from}', '{from}')",
                if i == 0 { "NULL".to_owned() } else { "1000000".to_owned() },
                if i == 0 { users } else { 0 }
            )
        })
        .collect();
    db.execute_unprepared(&format!(
        "INSERT INTO coupons (id, name, discount_type, discount_value, min_purchase_amount, max_discount_amount, total_quantity, issued_quantity, valid_from, valid_until, created_at, updated_at) VALUES {}",
        values.join(",")
    ))
    .await
    .expect("coupons");
    // 사용자마다 첫 쿠폰 하나씩 (불변식도 지킨다).
    for chunk in user_ids.chunks(500) {
        let values: Vec<String> = chunk.iter().map(|u| format!("('{}', '{u}', '{}', {})", Uuid::new_v4(), coupon_ids[0], false)).collect();
        let values = values.join(",");
        let values = if backend == Backend::Sqlite { values.replace("false", "0") } else { values };
        db.execute_unprepared(&format!("INSERT INTO user_coupons (id, user_id, coupon_id, is_used) VALUES {values}"))
            .await
            .expect("user_coupons");
    }
    let analyze = match backend {
        Backend::MySql => "ANALYZE TABLE users, coupons, user_coupons",
        _ => "ANALYZE",
    };
    db.execute_unprepared(analyze).await.expect("ANALYZE");
    (user_ids, coupon_ids)
}

/// GraphQL 연산 하나를 실행하고, 그동안 이 풀이 보낸 문장들을 돌려준다.
async fn captured(
    schema: &couponql::graphql::AppSchema,
    db: &DatabaseConnection,
    log: &Arc<Mutex<Vec<Statement>>>,
    viewer: Viewer,
    query: &str,
) -> Vec<Statement> {
    log.lock().expect("log").clear();
    let resp = schema.execute(couponql::graphql::prepare_request(Request::new(query), db, Some(viewer))).await;
    assert!(resp.errors.is_empty(), "{query}: {:?}", resp.errors);
    std::mem::take(&mut *log.lock().expect("log"))
}

async fn every_hot_path_uses_an_index(mut db: TestDb) {
    let backend = db.backend;
    let (users, coupons) = fill(&db.conn, backend, 3000, 3000).await;
    let log: Arc<Mutex<Vec<Statement>>> = Arc::default();
    // 콜백은 이 핸들(과 이후의 복제본)에 붙는다. 풀은 그대로라 SQLite 메모리 DB도 같은 것을 본다.
    let sink = log.clone();
    db.conn.set_metric_callback(move |info| sink.lock().expect("log").push(info.statement.clone()));
    let conn = db.conn.clone();

    let admin = Viewer { user_id: users[0], role: Role::Admin };
    let me = |i: usize| Viewer { user_id: users[i], role: Role::User };
    let limited = coupons[1];
    let ids: Vec<String> = users[10..60].iter().map(|u| format!("\"{u}\"")).collect();
    let mut paths: Vec<(String, Vec<Statement>)> = Vec::new();

    // 발급: 요청별(검사·잠금·삽입·증가)과 합치기(이미 가진 사람 조회 포함), 매진 빠른 경로.
    let per_request = couponql::graphql::build_schema(Some(conn.clone()), IssueMode::PerRequest);
    let coalesced = couponql::graphql::build_schema(Some(conn.clone()), IssueMode::Coalesced);
    let issue = format!("mutation {{ issueCoupon(couponId: \"{limited}\") {{ id }} }}");
    paths.push(("issue (per request)".into(), captured(&per_request, &conn, &log, me(1), &issue).await));
    log.lock().expect("log").clear();
    let batch = futures::future::join_all((2..8).map(|i| {
        let schema = coalesced.clone();
        let conn = conn.clone();
        let q = issue.clone();
        async move { schema.execute(couponql::graphql::prepare_request(Request::new(q), &conn, Some(me(i)))).await }
    }))
    .await;
    assert!(batch.iter().all(|r| r.errors.is_empty()), "{batch:?}");
    paths.push(("issue (coalesced batch)".into(), std::mem::take(&mut *log.lock().expect("log"))));
    let sold_out = coupons[2];
    conn.execute_unprepared(&format!("UPDATE coupons SET total_quantity = 0 WHERE id = '{sold_out}'")).await.expect("sold out");
    log.lock().expect("log").clear();
    let resp = per_request
        .execute(couponql::graphql::prepare_request(
            Request::new(format!("mutation {{ issueCoupon(couponId: \"{sold_out}\") {{ id }} }}")),
            &conn,
            Some(me(1)),
        ))
        .await;
    assert_eq!(resp.errors.len(), 1, "매진이어야 함");
    paths.push(("issue (sold out)".into(), std::mem::take(&mut *log.lock().expect("log"))));

    // 사용과 취소.
    let held = captured(&per_request, &conn, &log, me(1), "{ me { coupons { id } } }").await;
    drop(held);
    let resp = per_request
        .execute(couponql::graphql::prepare_request(Request::new("{ me { coupons(unusedOnly: true) { id } } }"), &conn, Some(me(1))))
        .await;
    let uc = resp.data.into_json().expect("json")["me"]["coupons"][0]["id"].as_str().expect("발급 내역").to_owned();
    paths.push((
        "useCoupon".into(),
        captured(
            &per_request,
            &conn,
            &log,
            me(1),
            &format!("mutation {{ useCoupon(userCouponId: \"{uc}\", orderAmount: \"50000\") {{ id }} }}"),
        )
        .await,
    ));
    paths.push((
        "cancelCoupon".into(),
        captured(&per_request, &conn, &log, me(1), &format!("mutation {{ cancelCoupon(userCouponId: \"{uc}\") {{ id }} }}")).await,
    ));

    // 사용자별 목록, DataLoader 배치, 쿠폰 하나와 목록 페이지.
    for (name, query) in [
        ("me { coupons }", "{ me { id coupons { id coupon { id name } } } }".to_owned()),
        ("UserCoupon.history", "{ me { coupons { history { kind at } } } }".to_owned()),
        ("userCoupons(unusedOnly)", format!("{{ userCoupons(userId: \"{}\", unusedOnly: true) {{ id coupon {{ name }} }} }}", users[5])),
        ("users(ids) batch", format!("{{ users(ids: [{}]) {{ id coupons {{ id coupon {{ name }} }} }} }}", ids.join(","))),
        ("coupon(id)", format!("{{ coupon(id: \"{limited}\") {{ id name remainingQuantity }} }}")),
        ("coupons first page", "{ coupons(first: 20) { edges { cursor } } }".to_owned()),
        ("coupons available", "{ coupons(first: 20, availableOnly: true) { nodes { id } } }".to_owned()),
    ] {
        paths.push((name.into(), captured(&per_request, &conn, &log, admin, &query).await));
    }
    let resp = per_request
        .execute(couponql::graphql::prepare_request(Request::new("{ coupons(first: 20) { pageInfo { endCursor } } }"), &conn, None))
        .await;
    let cursor = resp.data.into_json().expect("json")["coupons"]["pageInfo"]["endCursor"].as_str().expect("커서").to_owned();
    paths.push((
        "coupons next page".into(),
        captured(&per_request, &conn, &log, admin, &format!("{{ coupons(first: 20, after: \"{cursor}\") {{ nodes {{ id }} }} }}")).await,
    ));

    // 상점 운영: 코드로 발급(사용자와 추측 실패 수, 코드와 쿠폰, 잠금 안의 코드 읽기와 증가), 모르는 코드, 집계, 보유자·코드·원장 페이지.
    let batch = couponql::service::codes::generate(&conn, Some(&admin), coupons[3], 50, None).await.expect("코드 생성");
    couponql::service::codes::add(&conn, Some(&admin), coupons[3], "PLANCHECK", None).await.expect("지정 코드");
    for (name, query) in [
        ("redeemCouponCode (chosen)", "mutation { redeemCouponCode(code: \"PLANCHECK\") { id } }".to_owned()),
        ("redeemCouponCode (generated)", format!("mutation {{ redeemCouponCode(code: \"{}\") {{ id }} }}", batch.sample[0])),
    ] {
        paths.push((name.into(), captured(&coalesced, &conn, &log, me(20), &query).await));
        conn.execute_unprepared(&format!("DELETE FROM user_coupons WHERE user_id = '{}' AND coupon_id = '{}'", users[20], coupons[3]))
            .await
            .expect("다음 발급을 위해 지움");
        conn.execute_unprepared(&format!("UPDATE coupons SET issued_quantity = issued_quantity - 1 WHERE id = '{}'", coupons[3]))
            .await
            .expect("불변식 맞춤");
    }
    log.lock().expect("log").clear();
    let resp = coalesced
        .execute(couponql::graphql::prepare_request(
            Request::new("mutation { redeemCouponCode(code: \"NOSUCHCODE\") { id } }"),
            &conn,
            Some(me(21)),
        ))
        .await;
    assert_eq!(resp.errors.len(), 1, "모르는 코드");
    paths.push(("redeemCouponCode (unknown)".into(), std::mem::take(&mut *log.lock().expect("log"))));
    let c3 = coupons[3];
    for (name, query) in [
        ("Coupon.stats", format!("{{ coupon(id: \"{c3}\") {{ stats {{ issued used reserved codesGenerated codesRedeemed }} }} }}")),
        ("couponHolders", format!("{{ couponHolders(couponId: \"{c3}\", first: 5) {{ nodes {{ id }} }} }}")),
        ("couponCodes redeemed", format!("{{ couponCodes(couponId: \"{c3}\", redeemed: true, first: 5) {{ nodes {{ code }} }} }}")),
        ("couponEvents of a coupon", format!("{{ couponEvents(couponId: \"{c3}\", first: 5) {{ nodes {{ sequence }} }} }}")),
    ] {
        paths.push((name.into(), captured(&per_request, &conn, &log, admin, &query).await));
    }
    log.lock().expect("log").clear();
    let page = couponql::service::codes::export(conn.clone(), Some(&admin), c3).await.expect("내보내기");
    let chunks: Vec<_> = futures::StreamExt::collect(page).await;
    assert!(chunks.iter().all(Result::is_ok));
    paths.push(("codes.csv page".into(), std::mem::take(&mut *log.lock().expect("log"))));
    // 원장의 도장: 위의 변경들이 남긴 이벤트를 찾고(잠그지 않는 읽기) 매긴다. 원장이 커져도 도장을 기다리는 것만 읽어야 한다.
    log.lock().expect("log").clear();
    couponql::service::ledger::stamp_all(&conn).await.expect("도장");
    paths.push(("ledger stamp".into(), std::mem::take(&mut *log.lock().expect("log"))));

    let txn = plan_txn(&conn, backend).await;
    let mut failures = Vec::new();
    for (name, statements) in &paths {
        let reads: Vec<&Statement> = statements.iter().filter(|s| !s.sql.trim_start().to_ascii_uppercase().starts_with("INSERT")).collect();
        assert!(!reads.is_empty(), "{name}: 잡힌 문장이 없음 (문장 수집이 고장 났다)");
        for stmt in reads {
            let plan = explain(&txn, backend, stmt).await;
            let scans = full_scans(backend, &plan);
            if !scans.is_empty() {
                failures.push(format!("{name}: {}\n  계획: {scans:?}", stmt.sql));
            }
        }
    }
    txn.rollback().await.ok();
    assert!(failures.is_empty(), "{backend:?}에서 테이블 전체 읽기:\n{}", failures.join("\n"));
}
on_all_backends!(every_hot_path_uses_an_index);

/// 검사기 자체가 전체 읽기를 잡아내는지: 인덱스 없는 열(name)로 찾는 문장은 반드시 걸려야 한다.
async fn the_plan_check_catches_a_full_scan(db: TestDb) {
    let backend = db.backend;
    fill(&db.conn, backend, 500, 5).await;
    let stmt = Statement::from_sql_and_values(
        db.conn.get_database_backend(),
        match backend {
            Backend::Postgres => "SELECT id FROM users WHERE name = $1",
            _ => "SELECT id FROM users WHERE name = ?",
        },
        ["없는 이름".into()],
    );
    let txn = plan_txn(&db.conn, backend).await;
    let plan = explain(&txn, backend, &stmt).await;
    txn.rollback().await.ok();
    assert!(!full_scans(backend, &plan).is_empty(), "인덱스 없는 검색이 전체 읽기로 잡히지 않음: {plan:?}");
}
on_all_backends!(the_plan_check_catches_a_full_scan);

/// 첫 마이그레이션만 적용된(CHAR(36) id) PostgreSQL 데이터베이스가 제자리에서 옮겨진다: 데이터·외래 키 유지, down으로 되돌림.
async fn an_existing_postgres_database_moves_to_indexable_ids_in_place(db: TestDb) {
    let conn = &db.conn;
    migration::Migrator::down(conn, None).await.expect("down");
    migration::Migrator::up(conn, Some(1)).await.expect("첫 마이그레이션만");
    let column_type = |table: &'static str| async move {
        let row = conn
            .query_one_raw(Statement::from_string(
                sea_orm::DbBackend::Postgres,
                format!("SELECT data_type FROM information_schema.columns WHERE table_name = '{table}' AND column_name = 'id'"),
            ))
            .await
            .expect("타입 조회")
            .expect("행");
        row.try_get::<String>("", "data_type").expect("data_type")
    };
    assert_eq!(column_type("users").await, "character");
    // 옛 스키마에 평범한 INSERT로 데이터를 넣는다 (지금의 코드는 새 컬럼을 알기 때문에 쓰지 않는다).
    let (u1, c1, c5) =
        ("11111111-1111-4111-8111-111111111111", "c0000000-0000-4000-8000-000000000001", "c0000000-0000-4000-8000-000000000005");
    conn.execute_unprepared(&format!(
        "INSERT INTO users (id, email, name) VALUES ('{u1}', 'minsu@example.com', '김민수');
         INSERT INTO coupons (id, name, discount_type, discount_value, total_quantity, issued_quantity, valid_from, valid_until)
           VALUES ('{c1}', 'a', 'FIXED', 5000, 100, 1, '2025-01-01', '2099-12-31'), ('{c5}', 'b', 'FIXED', 1000, 2, 1, '2025-01-01', '2099-12-31');
         INSERT INTO user_coupons (id, user_id, coupon_id) VALUES ('{}', '{u1}', '{c1}'), ('{}', '{u1}', '{c5}');",
        Uuid::new_v4(),
        Uuid::new_v4()
    ))
    .await
    .expect("옛 스키마에 데이터");

    migration::Migrator::up(conn, None).await.expect("이동");
    for table in ["users", "coupons", "user_coupons"] {
        assert_eq!(column_type(table).await, "character varying", "{table}");
    }
    let demo =
        couponql::repo::user_coupon::list_by_user(conn, Uuid::parse_str("11111111-1111-4111-8111-111111111111").expect("uuid"), false)
            .await
            .expect("목록");
    assert_eq!(demo.len(), 2, "데이터가 그대로");
    let orphan = format!(
        "INSERT INTO user_coupons (id, user_id, coupon_id) VALUES ('{}', '{}', 'c0000000-0000-4000-8000-000000000001')",
        Uuid::new_v4(),
        Uuid::new_v4()
    );
    assert!(conn.execute_unprepared(&orphan).await.is_err(), "외래 키가 다시 걸려 있어야 함");

    // 이 이동(과 그 뒤의 것)을 되돌리면 첫 마이그레이션의 CHAR(36)으로.
    let applied = migration::Migrator::get_applied_migrations(conn).await.expect("목록").len() as u32;
    migration::Migrator::down(conn, Some(applied - 1)).await.expect("되돌림");
    assert_eq!(column_type("user_coupons").await, "character");
    let row = conn
        .query_one_raw(Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!("SELECT COUNT(*) AS n FROM user_coupons WHERE coupon_id = '{c5}'"),
        ))
        .await
        .expect("count")
        .expect("행");
    assert_eq!(row.try_get::<i64>("", "n").expect("n"), 1, "되돌린 뒤에도 데이터가 그대로");
}
crate::backend_tests!(an_existing_postgres_database_moves_to_indexable_ids_in_place, crate::helpers::fresh_db, postgres => Postgres);
