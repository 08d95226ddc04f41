//! couponql 벤치마크 하네스: 서버를 띄우고(또는 주소를 받아), 사용자·쿠폰을 준비하고,
//! 동시 요청 수를 제한해 GraphQL over HTTP로 부하를 건다. 시나리오마다 표 한 줄과 JSON 한 줄을 출력하고,
//! 발급 시나리오는 끝에 데이터베이스 불변식을 확인해 어긋나면 실패로 끝난다.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand};
use couponql::auth::JwtKeys;
use couponql::config::DbSettings;
use couponql::db::Backend;
use couponql::domain::{self, Role, Viewer};
use hdrhistogram::Histogram;
use sea_orm::{ActiveValue::Set, ConnectionTrait, Database, DatabaseConnection, EntityTrait};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use uuid::Uuid;

const SECRET: &str = "couponql-bench-secret";
const BENCH_DB: &str = "couponql_bench";

#[derive(Parser, Debug)]
#[command(about = "Flash-sale benchmark for couponql")]
struct Args {
    /// Database server to benchmark on; the harness (re)creates the database `couponql_bench` there
    /// (`sqlite` for the file /tmp/couponql_bench.db).
    #[arg(long, default_value = "mysql://root@127.0.0.1:3306")]
    database: String,
    /// The couponql binary to start (build it first: `cargo build --release`).
    #[arg(long, default_value = "target/release/couponql")]
    server_bin: PathBuf,
    /// DB_MAX_CONNECTIONS for the server.
    #[arg(long)]
    db_max_connections: Option<u32>,
    /// Send an Idempotency-Key (unique per request) with every issuance (flash-sale, hot-row, single, burst).
    #[arg(long)]
    idempotency_keys: bool,
    /// Extra KEY=VALUE environment for the server (e.g. ISSUE_COALESCING=off).
    #[arg(long = "server-env")]
    server_env: Vec<String>,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand, Debug, Clone)]
enum Scenario {
    /// N users race for Q coupons.
    FlashSale {
        #[arg(long, default_value_t = 1000)]
        users: usize,
        #[arg(long, default_value_t = 100)]
        quantity: i32,
        #[arg(long, default_value_t = 200)]
        concurrency: usize,
    },
    /// N users, N coupons of one row: everyone succeeds (sustained issuance on one row).
    HotRow {
        #[arg(long, default_value_t = 5000)]
        users: usize,
        #[arg(long, default_value_t = 100)]
        concurrency: usize,
    },
    /// Sequential issuance latency.
    Single {
        #[arg(long, default_value_t = 500)]
        requests: usize,
    },
    /// `coupon(id)` and `me { coupons { coupon } }` for a fixed duration each.
    Read {
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 50)]
        concurrency: usize,
    },
    /// Many clients at once, for memory.
    Burst {
        #[arg(long, default_value_t = 5000)]
        clients: usize,
        #[arg(long, default_value_t = 100)]
        quantity: i32,
    },
    /// Cost against table size: single issuance, both reads and a flash sale on a near-empty database,
    /// then again after filling `rows` users and `rows` user coupons. Each figure is the median of `runs`.
    Scale {
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// Checkout: N users each reserve → use → cancel → use again (a new order), every request keyed.
    Checkout {
        #[arg(long, default_value_t = 1000)]
        users: usize,
        #[arg(long, default_value_t = 100)]
        concurrency: usize,
    },
    /// The shop (CONTRACT 8): generateCouponCodes(codes), the streamed CSV of those codes (time, server peak RSS growth),
    /// and a flash sale by one chosen code against the same sale by coupon id (alternating). Medians of `runs`.
    Shop {
        #[arg(long, default_value_t = 100_000)]
        codes: i32,
        #[arg(long, default_value_t = 1000)]
        users: usize,
        #[arg(long, default_value_t = 100)]
        quantity: i32,
        #[arg(long, default_value_t = 200)]
        concurrency: usize,
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Live stock (CONTRACT 9): `subscribers` couponStock subscriptions (20 per WebSocket connection) on one coupon during a
    /// flash sale of `users` for `quantity`; the sale is also run without subscribers before and after, on the same server.
    Live {
        #[arg(long, default_value_t = 10_000)]
        subscribers: usize,
        #[arg(long, default_value_t = 1000)]
        users: usize,
        #[arg(long, default_value_t = 100)]
        quantity: i32,
        #[arg(long, default_value_t = 200)]
        concurrency: usize,
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Galera cluster (CONTRACT 10): a flash sale of `users` for `quantity`, round-robin over `servers` couponql processes,
    /// one per node of `--nodes` (the first `servers` of them); throughput, p99, TRY_AGAIN share and the transactions the
    /// servers retried per success (from /metrics). Every node must show the exact count. Medians of `runs`.
    Cluster {
        /// The nodes' server URLs, comma-separated (`scripts/galera.sh up` prints them).
        #[arg(long, value_delimiter = ',', required = true)]
        nodes: Vec<String>,
        #[arg(long, default_value_t = 3)]
        servers: usize,
        #[arg(long, default_value_t = 1000)]
        users: usize,
        #[arg(long, default_value_t = 100)]
        quantity: i32,
        #[arg(long, default_value_t = 60)]
        concurrency: usize,
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Every scenario with its defaults.
    All,
    /// A small, quick run of every scenario (CI): proves the harness works and the invariant holds.
    Smoke,
}

/// 한 시나리오의 결과.
struct Report {
    scenario: String,
    requests: u64,
    wall: Duration,
    hist: Histogram<u64>,
    codes: BTreeMap<String, u64>,
    server_peak_rss_kb: Option<u64>,
    cpu: CpuSplit,
    /// 발급 시나리오: 데이터베이스에서 센 발급 수
    issued: Option<i32>,
}

#[derive(Default, Clone, Copy)]
struct CpuSplit {
    server: f64,
    database: f64,
    bench: f64,
}

impl Report {
    fn print(&self) {
        let ms = |v: u64| v as f64 / 1000.0;
        let rps = self.requests as f64 / self.wall.as_secs_f64();
        println!(
            "{:<22} {:>7} req {:>9.0} req/s  p50 {:>7.2} ms  p95 {:>7.2} ms  p99 {:>7.2} ms  max {:>8.2} ms  rss {:>6} MB  cpu s/d/b {:.1}/{:.1}/{:.1} s  {:?}",
            self.scenario,
            self.requests,
            rps,
            ms(self.hist.value_at_quantile(0.50)),
            ms(self.hist.value_at_quantile(0.95)),
            ms(self.hist.value_at_quantile(0.99)),
            ms(self.hist.max()),
            self.server_peak_rss_kb.map(|k| format!("{:.1}", k as f64 / 1024.0)).unwrap_or_else(|| "-".into()),
            self.cpu.server,
            self.cpu.database,
            self.cpu.bench,
            self.codes,
        );
        let line = json!({
            "scenario": self.scenario,
            "requests": self.requests,
            "wall_ms": self.wall.as_secs_f64() * 1000.0,
            "rps": rps,
            "p50_ms": ms(self.hist.value_at_quantile(0.50)),
            "p95_ms": ms(self.hist.value_at_quantile(0.95)),
            "p99_ms": ms(self.hist.value_at_quantile(0.99)),
            "max_ms": ms(self.hist.max()),
            "codes": self.codes,
            "issued": self.issued,
            "server_peak_rss_mb": self.server_peak_rss_kb.map(|k| k as f64 / 1024.0),
            "cpu_seconds": { "server": self.cpu.server, "database": self.cpu.database, "bench": self.cpu.bench },
        });
        println!("{line}");
    }
}

/// 준비된 데이터베이스와 그 위에서 도는 서버 한 벌. 드롭되면 서버를 끝낸다 (실패로 빠져나갈 때도).
struct Env {
    db: DatabaseConnection,
    server: Child,
    url: String,
    client: reqwest::Client,
    keys: JwtKeys,
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

const SQLITE_FILE: &str = "/tmp/couponql_bench.db";

/// 벤치용 데이터베이스를 새로 만들고 그 주소를 돌려준다.
async fn create_database(server: &str) -> Result<String> {
    if server == "sqlite" || server.starts_with("sqlite:") {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(format!("{SQLITE_FILE}{suffix}"));
        }
        return Ok(format!("sqlite://{SQLITE_FILE}?mode=rwc"));
    }
    let postgres = Backend::of_url(server) == Some(Backend::Postgres);
    let admin_url = couponql::db::with_database(server, if postgres { "postgres" } else { "" });
    let admin = Database::connect(admin_url.trim_end_matches('/')).await.with_context(|| format!("cannot reach {server}"))?;
    let (drop_sql, create_sql) = if postgres {
        (format!("DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)"), format!("CREATE DATABASE {BENCH_DB}"))
    } else {
        (format!("DROP DATABASE IF EXISTS {BENCH_DB}"), format!("CREATE DATABASE {BENCH_DB} CHARACTER SET utf8mb4"))
    };
    admin.execute_unprepared(&drop_sql).await?;
    admin.execute_unprepared(&create_sql).await?;
    admin.close().await.ok();
    Ok(couponql::db::with_database(server, BENCH_DB))
}

/// 데이터베이스를 새로 만들고 마이그레이션한 뒤, 그 위에 서버를 띄운다.
async fn setup(args: &Args) -> Result<Env> {
    let url = create_database(&args.database).await?;
    let db = couponql::db::connect(&url, &DbSettings::default()).await.context("connect")?;
    couponql::db::migrate(&db).await.context("migrate")?;

    let client = reqwest::Client::builder().pool_max_idle_per_host(10_000).build()?;
    let (server, base) = spawn_server(args, &url, &client).await?;
    Ok(Env { db, server, url: format!("{base}/graphql"), client, keys: JwtKeys::new(SECRET) })
}

/// `url`의 데이터베이스 위에 서버 하나를 띄우고 준비될 때까지 기다린다. (프로세스, 기본 주소)
async fn spawn_server(args: &Args, url: &str, client: &reqwest::Client) -> Result<(Child, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut cmd = Command::new(&args.server_bin);
    cmd.arg("serve")
        .env("DATABASE_URL", url)
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("JWT_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(n) = args.db_max_connections {
        cmd.env("DB_MAX_CONNECTIONS", n.to_string());
    }
    for kv in &args.server_env {
        let (k, v) = kv.split_once('=').ok_or_else(|| anyhow!("--server-env wants KEY=VALUE, got {kv:?}"))?;
        cmd.env(k, v);
    }
    let mut server = cmd.spawn().with_context(|| format!("cannot start {}", args.server_bin.display()))?;
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..300 {
        if let Ok(r) = client.get(format!("{base}/ready")).send().await
            && r.status().is_success()
        {
            return Ok((server, base));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = server.kill();
    bail!("the server on {url} did not become ready in 30 s")
}

/// 사용자 n명을 여러 행 INSERT로 빠르게 만든다.
async fn make_users(db: &DatabaseConnection, n: usize) -> Result<Vec<Uuid>> {
    use couponql::entities::user;
    let now = domain::now().fixed_offset();
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
    for chunk in ids.chunks(500) {
        let rows = chunk.iter().map(|id| user::ActiveModel {
            id: Set(id.to_string()),
            email: Set(format!("{}@bench.example", id.simple())),
            name: Set("벤치 사용자".into()),
            created_at: Set(now),
            updated_at: Set(now),
        });
        user::Entity::insert_many(rows).exec_without_returning(db).await?;
    }
    Ok(ids)
}

async fn make_coupon(db: &DatabaseConnection, total: Option<i32>) -> Result<Uuid> {
    let new = domain::NewCoupon::parse(domain::NewCouponInput {
        name: "벤치 쿠폰".into(),
        discount_type: domain::DiscountType::Percentage,
        discount_value: "10".into(),
        min_purchase_amount: Some("10000".into()),
        max_discount_amount: Some("3000".into()),
        total_quantity: total,
        valid_from: "2025-01-01T00:00:00Z".into(),
        valid_until: "2099-12-31T23:59:59Z".into(),
    })
    .map_err(|e| anyhow!("{e:?}"))?;
    let id = Uuid::new_v4();
    couponql::repo::coupon::insert(db, id, &new, domain::now()).await.map_err(|e| anyhow!("{e:?}"))?;
    Ok(id)
}

/// 큰 테이블: 사용자 `rows`명과 그들이 하나씩 가진 발급 내역 `rows`개를, 문장당 2,000행의 INSERT로 채운다.
/// 채움용 쿠폰의 issued_quantity도 맞춰 불변식을 지킨다. 끝에 통계를 갱신한다.
async fn fill(db: &DatabaseConnection, rows: usize) -> Result<Duration> {
    let started = Instant::now();
    let coupon = make_coupon(db, None).await?;
    let backend = db.get_database_backend();
    let falsy = if backend == sea_orm::DbBackend::Sqlite { "0" } else { "false" };
    const CHUNK: usize = 2000;
    let mut done = 0;
    while done < rows {
        let n = CHUNK.min(rows - done);
        let ids: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
        let users: Vec<String> = ids.iter().map(|u| format!("('{u}','{}@fill.example','채움')", u.simple())).collect();
        let ucs: Vec<String> = ids.iter().map(|u| format!("('{}','{u}','{coupon}',{falsy})", Uuid::new_v4())).collect();
        let txn = sea_orm::TransactionTrait::begin(db).await?;
        txn.execute_unprepared(&format!("INSERT INTO users (id, email, name) VALUES {}", users.join(","))).await?;
        txn.execute_unprepared(&format!("INSERT INTO user_coupons (id, user_id, coupon_id, is_used) VALUES {}", ucs.join(","))).await?;
        txn.execute_unprepared(&format!("UPDATE coupons SET issued_quantity = issued_quantity + {n} WHERE id = '{coupon}'")).await?;
        txn.commit().await?;
        done += n;
        if done % 100_000 == 0 {
            eprintln!("# filled {done} / {rows} ({:.0} s)", started.elapsed().as_secs_f64());
        }
    }
    let analyze = match backend {
        sea_orm::DbBackend::MySql => "ANALYZE TABLE users, coupons, user_coupons",
        _ => "ANALYZE",
    };
    db.execute_unprepared(analyze).await?;
    Ok(started.elapsed())
}

fn token(env: &Env, user: Uuid) -> Result<String> {
    sign(&env.keys, user)
}

fn sign(keys: &JwtKeys, user: Uuid) -> Result<String> {
    keys.sign(Viewer { user_id: user, role: Role::User }, Duration::from_secs(3600)).map_err(|e| anyhow!("{e:?}"))
}

/// 요청 하나: (걸린 시간 µs, 결과 코드). 본문에 `"_key"`가 있으면 그 값을 Idempotency-Key로 보낸다(본문에서는 뺀다).
async fn send(client: &reqwest::Client, url: &str, token: &str, body: &Value) -> (u64, String) {
    let started = Instant::now();
    let (body, key) = match body.get("_key").and_then(Value::as_str) {
        Some(k) => {
            let mut b = body.clone();
            if let Some(o) = b.as_object_mut() {
                o.remove("_key");
            }
            (b, Some(k.to_owned()))
        }
        None => (body.clone(), None),
    };
    let mut req = client.post(url).json(&body);
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    if !token.is_empty() {
        req = req.bearer_auth(token);
    }
    let code = match req.send().await {
        Ok(resp) => match resp.json::<Value>().await {
            Ok(v) => v["errors"][0]["extensions"]["code"].as_str().map(str::to_owned).unwrap_or_else(|| "OK".into()),
            Err(_) => "BAD_RESPONSE".into(),
        },
        Err(e) if e.is_connect() => "CONNECT_ERROR".into(),
        Err(_) => "HTTP_ERROR".into(),
    };
    (started.elapsed().as_micros() as u64, code)
}

fn new_hist() -> Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 3_600_000_000, 3)?)
}

/// 요청 목록을 동시에 `concurrency`개까지 보낸다.
async fn drive(env: &Env, requests: Vec<(String, Value)>, concurrency: usize) -> Result<(Duration, Histogram<u64>, BTreeMap<String, u64>)> {
    drive_over(&env.client, std::slice::from_ref(&env.url), requests, concurrency).await
}

/// `drive`를 여러 서버에: 요청 i는 `urls[i % urls.len()]`로 (돌아가며).
async fn drive_over(
    client: &reqwest::Client,
    urls: &[String],
    requests: Vec<(String, Value)>,
    concurrency: usize,
) -> Result<(Duration, Histogram<u64>, BTreeMap<String, u64>)> {
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(requests.len());
    for (i, (tok, body)) in requests.into_iter().enumerate() {
        let permit = sem.clone().acquire_owned().await?;
        let client = client.clone();
        let url = urls[i % urls.len()].clone();
        tasks.push(tokio::spawn(async move {
            let r = send(&client, &url, &tok, &body).await;
            drop(permit);
            r
        }));
    }
    let mut hist = new_hist()?;
    let mut codes = BTreeMap::new();
    for t in tasks {
        let (us, code) = t.await?;
        hist.saturating_record(us.max(1));
        *codes.entry(code).or_insert(0) += 1;
    }
    Ok((started.elapsed(), hist, codes))
}

/// 정해진 시간 동안 `concurrency`개의 작업자가 요청을 반복한다.
async fn drive_for(
    env: &Env,
    seconds: u64,
    concurrency: usize,
    make: impl Fn(usize) -> (String, Value),
) -> Result<(u64, Duration, Histogram<u64>, BTreeMap<String, u64>)> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let (tok, body) = make(w);
        let client = env.client.clone();
        let url = env.url.clone();
        let mut hist = new_hist()?;
        tasks.push(tokio::spawn(async move {
            let mut codes: BTreeMap<String, u64> = BTreeMap::new();
            while Instant::now() < deadline {
                let (us, code) = send(&client, &url, &tok, &body).await;
                hist.saturating_record(us.max(1));
                *codes.entry(code).or_insert(0) += 1;
            }
            (hist, codes)
        }));
    }
    let mut hist = new_hist()?;
    let mut codes = BTreeMap::new();
    for t in tasks {
        let (h, c) = t.await?;
        hist.add(h)?;
        for (k, v) in c {
            *codes.entry(k).or_insert(0) += v;
        }
    }
    Ok((hist.len(), started.elapsed(), hist, codes))
}

fn issue_body(coupon: Uuid) -> Value {
    json!({ "query": "mutation($c: ID!) { issueCoupon(couponId: $c) { id } }", "variables": { "c": coupon.to_string() } })
}

/// `--idempotency-keys`면 요청마다 다른 키를 단다.
fn keyed(args: &Args, mut body: Value) -> Value {
    if args.idempotency_keys
        && let Some(o) = body.as_object_mut()
    {
        o.insert("_key".into(), Value::String(Uuid::new_v4().to_string()));
    }
    body
}

/// 결제 흐름: 사용자마다 보류 → 사용 → 취소 → (새 주문으로) 사용, 모두 키를 달고. 단계마다 한 줄.
async fn checkout(env: &Env, users: usize, concurrency: usize) -> Result<Vec<Report>> {
    let ids = make_users(&env.db, users).await?;
    let coupon = make_coupon(&env.db, None).await?;
    let mut ucs = Vec::with_capacity(users);
    for u in &ids {
        ucs.push(couponql::service::issuance::issue(&env.db, *u, coupon).await.map_err(|e| anyhow!("{e:?}"))?.id);
    }
    let toks = ids.iter().map(|u| token(env, *u)).collect::<Result<Vec<String>>>()?;
    let steps: [(&str, &str, &str); 4] = [
        (
            "checkout reserve",
            "mutation($u: ID!, $o: String!) { reserveCoupon(userCouponId: $u, orderId: $o, orderAmount: \"50000\") { id status } }",
            "A",
        ),
        ("checkout use", "mutation($u: ID!, $o: String!) { useCoupon(userCouponId: $u, orderId: $o) { id status } }", "A"),
        ("checkout cancel", "mutation($u: ID!, $o: String!) { cancelCoupon(userCouponId: $u, orderId: $o) { id status } }", "A"),
        (
            "checkout use again",
            "mutation($u: ID!, $o: String!) { useCoupon(userCouponId: $u, orderId: $o, orderAmount: \"60000\") { id status } }",
            "B",
        ),
    ];
    let mut out = Vec::new();
    for (name, query, order) in steps {
        let reqs: Vec<(String, Value)> = ucs
            .iter()
            .zip(&toks)
            .map(|(uc, t)| {
                let vars = json!({ "u": uc.to_string(), "o": format!("{order}-{uc}") });
                (t.clone(), json!({ "query": query, "variables": vars, "_key": format!("{name}-{uc}") }))
            })
            .collect();
        let before = cpu_now(env);
        let (wall, hist, codes) = drive(env, reqs, concurrency).await?;
        let cpu = cpu_delta(before, cpu_now(env));
        if codes.get("OK").copied().unwrap_or(0) != users as u64 {
            bail!("{name}: not every step succeeded: {codes:?}");
        }
        out.push(report(env, name, users as u64, wall, hist, codes, cpu, None));
    }
    Ok(out)
}

/// 불변식: issued_quantity = 발급 내역 수 ≤ total. 어긋나면 실패로 끝난다.
async fn check_invariant(db: &DatabaseConnection, coupon: Uuid, expect_issued: Option<i32>) -> Result<i32> {
    let c =
        couponql::repo::coupon::find_by_id(db, coupon).await.map_err(|e| anyhow!("{e:?}"))?.ok_or_else(|| anyhow!("coupon vanished"))?;
    let rows = couponql::repo::user_coupon::count_for_coupon(db, coupon).await.map_err(|e| anyhow!("{e:?}"))?;
    if c.issued_quantity as u64 != rows {
        bail!("INVARIANT BROKEN: issued_quantity {} but {rows} user coupons", c.issued_quantity);
    }
    if let Some(total) = c.total_quantity
        && c.issued_quantity > total
    {
        bail!("INVARIANT BROKEN: over-issued {} > {total}", c.issued_quantity);
    }
    if let Some(want) = expect_issued
        && c.issued_quantity != want
    {
        bail!("INVARIANT BROKEN: expected exactly {want} issued, found {}", c.issued_quantity);
    }
    Ok(c.issued_quantity)
}

/// 프로세스의 최대 RSS (kB): /proc/<pid>/status의 VmHWM.
fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// 프로세스가 쓴 CPU 시간(초): /proc/<pid>/stat의 utime+stime.
fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return 0.0;
    };
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 =
        f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// 데이터베이스 서버 프로세스들(mariadbd, mysqld, postgres)의 CPU 시간 합.
fn database_cpu_seconds() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(std::result::Result::ok)
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().to_string();
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            matches!(comm.trim(), "mariadbd" | "mysqld" | "postgres").then(|| cpu_seconds(&pid))
        })
        .sum()
}

fn cpu_now(env: &Env) -> CpuSplit {
    CpuSplit { server: cpu_seconds(&env.server.id().to_string()), database: database_cpu_seconds(), bench: cpu_seconds("self") }
}

fn cpu_delta(a: CpuSplit, b: CpuSplit) -> CpuSplit {
    CpuSplit { server: b.server - a.server, database: b.database - a.database, bench: b.bench - a.bench }
}

#[allow(clippy::too_many_arguments)]
fn report(
    env: &Env,
    name: &str,
    requests: u64,
    wall: Duration,
    hist: Histogram<u64>,
    codes: BTreeMap<String, u64>,
    cpu: CpuSplit,
    issued: Option<i32>,
) -> Report {
    Report { scenario: name.into(), requests, wall, hist, codes, server_peak_rss_kb: peak_rss_kb(env.server.id()), cpu, issued }
}

async fn flash_sale(args: &Args, env: &Env, name: &str, users: usize, quantity: i32, concurrency: usize) -> Result<Report> {
    let ids = make_users(&env.db, users).await?;
    let coupon = make_coupon(&env.db, Some(quantity)).await?;
    let reqs = ids.iter().map(|u| Ok((token(env, *u)?, keyed(args, issue_body(coupon))))).collect::<Result<Vec<_>>>()?;
    let before = cpu_now(env);
    let (wall, hist, codes) = drive(env, reqs, concurrency).await?;
    let cpu = cpu_delta(before, cpu_now(env));
    let issued = check_invariant(&env.db, coupon, Some(quantity.min(users as i32))).await?;
    Ok(report(env, name, users as u64, wall, hist, codes, cpu, Some(issued)))
}

async fn hot_row(args: &Args, env: &Env, users: usize, concurrency: usize) -> Result<Report> {
    let ids = make_users(&env.db, users).await?;
    let coupon = make_coupon(&env.db, Some(users as i32)).await?;
    let reqs = ids.iter().map(|u| Ok((token(env, *u)?, keyed(args, issue_body(coupon))))).collect::<Result<Vec<_>>>()?;
    let before = cpu_now(env);
    let (wall, hist, codes) = drive(env, reqs, concurrency).await?;
    let cpu = cpu_delta(before, cpu_now(env));
    let issued = check_invariant(&env.db, coupon, Some(users as i32)).await?;
    Ok(report(env, "hot-row", users as u64, wall, hist, codes, cpu, Some(issued)))
}

async fn single(env: &Env, requests: usize) -> Result<Report> {
    let ids = make_users(&env.db, requests).await?;
    let coupon = make_coupon(&env.db, None).await?;
    let reqs = ids.iter().map(|u| Ok((token(env, *u)?, issue_body(coupon)))).collect::<Result<Vec<_>>>()?;
    let before = cpu_now(env);
    let (wall, hist, codes) = drive(env, reqs, 1).await?;
    let cpu = cpu_delta(before, cpu_now(env));
    let issued = check_invariant(&env.db, coupon, Some(requests as i32)).await?;
    Ok(report(env, "single", requests as u64, wall, hist, codes, cpu, Some(issued)))
}

async fn read(env: &Env, seconds: u64, concurrency: usize) -> Result<Vec<Report>> {
    let ids = make_users(&env.db, concurrency).await?;
    let coupons = [make_coupon(&env.db, None).await?, make_coupon(&env.db, None).await?, make_coupon(&env.db, Some(100_000)).await?];
    for u in &ids {
        for c in &coupons {
            couponql::service::issuance::issue(&env.db, *u, *c).await.map_err(|e| anyhow!("{e:?}"))?;
        }
    }
    let mut out = Vec::new();
    let one = json!({ "query": "query($id: ID!) { coupon(id: $id) { id name discountType discountValue remainingQuantity isAvailable } }", "variables": { "id": coupons[0].to_string() } });
    let before = cpu_now(env);
    let (n, wall, hist, codes) = drive_for(env, seconds, concurrency, |_| (String::new(), one.clone())).await?;
    out.push(report(env, "read coupon(id)", n, wall, hist, codes, cpu_delta(before, cpu_now(env)), None));
    let me = json!({ "query": "{ me { id name coupons { id isUsed coupon { id name discountValue remainingQuantity } } } }" });
    let toks = ids.iter().map(|u| token(env, *u)).collect::<Result<Vec<String>>>()?;
    let before = cpu_now(env);
    let (n, wall, hist, codes) = drive_for(env, seconds, concurrency, |w| (toks[w % toks.len()].clone(), me.clone())).await?;
    out.push(report(env, "read me{coupons}", n, wall, hist, codes, cpu_delta(before, cpu_now(env)), None));
    Ok(out)
}

fn admin_token(env: &Env) -> Result<String> {
    env.keys.sign(Viewer { user_id: Uuid::new_v4(), role: Role::Admin }, Duration::from_secs(3600)).map_err(|e| anyhow!("{e:?}"))
}

/// 지정 코드 하나로 하는 선착순: `users`명이 같은 코드를 `redeemCouponCode`로.
async fn code_sale(args: &Args, env: &Env, users: usize, quantity: i32, concurrency: usize) -> Result<Report> {
    let ids = make_users(&env.db, users).await?;
    let coupon = make_coupon(&env.db, Some(quantity)).await?;
    let code = format!("FLASH{}", &Uuid::new_v4().simple().to_string()[..8]).to_uppercase();
    let admin = Viewer { user_id: Uuid::new_v4(), role: Role::Admin };
    couponql::service::codes::add(&env.db, Some(&admin), coupon, &code, None).await.map_err(|e| anyhow!("{e:?}"))?;
    let body = json!({ "query": "mutation($c: String!) { redeemCouponCode(code: $c) { id } }", "variables": { "c": code } });
    let reqs = ids.iter().map(|u| Ok((token(env, *u)?, keyed(args, body.clone())))).collect::<Result<Vec<_>>>()?;
    let before = cpu_now(env);
    let (wall, hist, codes) = drive(env, reqs, concurrency).await?;
    let cpu = cpu_delta(before, cpu_now(env));
    let issued = check_invariant(&env.db, coupon, Some(quantity.min(users as i32))).await?;
    Ok(report(env, "flash-sale by code", users as u64, wall, hist, codes, cpu, Some(issued)))
}

fn proc_kb(pid: u32, key: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("{key} missing in /proc/{pid}/status"))
}

/// 상점 운영 한 번: (코드 생성 초, CSV 초, CSV 동안 최대 RSS 증가 MB, 코드 선착순 req/s, id 선착순 req/s).
async fn shop_round(args: &Args, codes: i32, users: usize, quantity: i32, concurrency: usize, code_first: bool) -> Result<[f64; 5]> {
    let env = setup(args).await?;
    let coupon = make_coupon(&env.db, None).await?;
    let admin = admin_token(&env)?;
    let query = format!(r#"mutation {{ generateCouponCodes(couponId: "{coupon}", count: {codes}) {{ count }} }}"#);
    let started = Instant::now();
    let resp: Value = env.client.post(&env.url).bearer_auth(&admin).json(&json!({ "query": query })).send().await?.json().await?;
    let generate = started.elapsed();
    if resp["data"]["generateCouponCodes"]["count"].as_i64() != Some(i64::from(codes)) {
        bail!("generateCouponCodes failed: {resp}");
    }
    // CSV: 생성이 남긴 최대 RSS를 지우고(clear_refs 5) 지금의 RSS에서 다시 잰다.
    let pid = env.server.id();
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").context("reset the server's peak RSS")?;
    let rss_before = proc_kb(pid, "VmRSS:")?;
    let csv_url = env.url.replace("/graphql", &format!("/admin/coupons/{coupon}/codes.csv"));
    let started = Instant::now();
    let mut resp = env.client.get(csv_url).bearer_auth(&admin).send().await?;
    let mut lines = 0usize;
    while let Some(chunk) = resp.chunk().await? {
        lines += chunk.iter().filter(|b| **b == b'\n').count();
    }
    let csv = started.elapsed();
    let growth_mb = proc_kb(pid, "VmHWM:")?.saturating_sub(rss_before) as f64 / 1024.0;
    if lines != codes as usize + 1 {
        bail!("CSV had {lines} lines, expected {}", codes + 1);
    }
    println!(
        "# generateCouponCodes({codes}) {:.2} s, CSV {:.2} s, peak RSS growth {growth_mb:.1} MB",
        generate.as_secs_f64(),
        csv.as_secs_f64()
    );
    // 먼저 작은 판매로 데우고(풀 연결, 할당자), 코드 선착순과 id 선착순을 ABBA 순서로 두 번씩 돌려 평균한다
    // (기계가 시간에 따라 흔들리므로 나란히, 번갈아).
    flash_sale(args, &env, "warm-up", users / 5, quantity / 5, concurrency).await?;
    let rps = |r: &Report| r.requests as f64 / r.wall.as_secs_f64();
    let (mut by_code, mut by_id) = (0.0, 0.0);
    for code_now in if code_first { [true, false, false, true] } else { [false, true, true, false] } {
        if code_now {
            let r = code_sale(args, &env, users, quantity, concurrency).await?;
            r.print();
            by_code += rps(&r) / 2.0;
        } else {
            let r = flash_sale(args, &env, "flash-sale", users, quantity, concurrency).await?;
            r.print();
            by_id += rps(&r) / 2.0;
        }
    }
    Ok([generate.as_secs_f64(), csv.as_secs_f64(), growth_mb, by_code, by_id])
}

async fn shop(args: &Args, codes: i32, users: usize, quantity: i32, concurrency: usize, runs: usize) -> Result<()> {
    let mut rounds = Vec::new();
    for i in 0..runs.max(1) {
        rounds.push(shop_round(args, codes, users, quantity, concurrency, i % 2 == 0).await?);
    }
    let m = |k: usize| median(rounds.iter().map(|r| r[k]).collect());
    println!("| figure (median of {}) | value |", rounds.len());
    println!("|---|---|");
    println!("| generateCouponCodes({codes}) | {:.2} s |", m(0));
    println!("| CSV export of {codes} codes | {:.2} s, server peak RSS +{:.1} MB |", m(1), m(2));
    println!("| flash sale {users}/{quantity} at {concurrency} by chosen code (mean of 2 per run, ABBA) | {:.0} req/s |", m(3));
    println!("| the same by coupon id | {:.0} req/s (code/id {:.2}) |", m(4), m(3) / m(4));
    println!("{}", json!({ "scenario": "shop", "runs": rounds.len(), "rounds": rounds }));
    Ok(())
}

/// 발급 요청들을 보내고 마지막 성공 응답을 받은 시각을 돌려준다 (구독자 쪽 매진 도착과 비교하려고).
async fn sale_with_last_ok(env: &Env, users: usize, quantity: i32, concurrency: usize) -> Result<(f64, Instant, Uuid)> {
    let ids = make_users(&env.db, users).await?;
    let coupon = make_coupon(&env.db, Some(quantity)).await?;
    sale_on(env, &ids, coupon, concurrency).await.map(|(rps, last)| (rps, last, coupon))
}

async fn sale_on(env: &Env, ids: &[Uuid], coupon: Uuid, concurrency: usize) -> Result<(f64, Instant)> {
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(ids.len());
    for u in ids {
        let permit = sem.clone().acquire_owned().await?;
        let (client, url, tok, body) = (env.client.clone(), env.url.clone(), token(env, *u)?, issue_body(coupon));
        tasks.push(tokio::spawn(async move {
            let (_, code) = send(&client, &url, &tok, &body).await;
            drop(permit);
            (Instant::now(), code)
        }));
    }
    let mut last_ok = started;
    let mut ok = 0;
    for t in tasks {
        let (at, code) = t.await?;
        if code == "OK" {
            ok += 1;
            last_ok = last_ok.max(at);
        }
    }
    let rps = ids.len() as f64 / started.elapsed().as_secs_f64();
    check_invariant(&env.db, coupon, None).await?;
    if ok == 0 {
        bail!("no issuance succeeded");
    }
    Ok((rps, last_ok))
}

/// 웹소켓 연결 하나에 구독 `subs`개. 구독마다 첫 메시지와 매진 메시지를 받은 시각을 알린다.
async fn subscriber_connection(
    ws_url: String,
    coupon: Uuid,
    subs: usize,
    ready: tokio::sync::mpsc::Sender<()>,
    sold_out: tokio::sync::mpsc::Sender<Instant>,
) -> Result<()> {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = ws_url.into_client_request()?;
    req.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
    ws.send(Message::Text(json!({ "type": "connection_init", "payload": {} }).to_string().into())).await?;
    let query = "subscription($c: ID!) { couponStock(couponId: $c) { issuedQuantity soldOut } }";
    let mut firsts = std::collections::HashSet::new();
    let mut done = std::collections::HashSet::new();
    while let Some(m) = ws.next().await {
        let Message::Text(text) = m? else { continue };
        let v: Value = serde_json::from_str(&text)?;
        match v["type"].as_str() {
            Some("connection_ack") => {
                for i in 0..subs {
                    let sub = json!({ "id": i.to_string(), "type": "subscribe", "payload": { "query": query, "variables": { "c": coupon.to_string() } } });
                    ws.send(Message::Text(sub.to_string().into())).await?;
                }
            }
            Some("ping") => ws.send(Message::Text(json!({ "type": "pong" }).to_string().into())).await?,
            Some("next") => {
                let id = v["id"].as_str().unwrap_or_default().to_owned();
                if firsts.insert(id.clone()) {
                    ready.send(()).await.ok();
                }
                if v["payload"]["data"]["couponStock"]["soldOut"] == true && done.insert(id) {
                    sold_out.send(Instant::now()).await.ok();
                    if done.len() == subs {
                        return Ok(());
                    }
                }
            }
            _ => {}
        }
    }
    bail!("subscriber connection closed early")
}

/// 한 번: 구독자 없이 판매 → 구독자 `subscribers`명이 지켜보는 쿠폰의 판매 → 다시 구독자 없이.
/// (구독 있는 판매 req/s, 없는 판매 두 번의 평균 req/s, 마지막 발급 → 마지막 구독자의 매진 ms, 서버 최대 RSS MB)
async fn live_round(args: &Args, subscribers: usize, users: usize, quantity: i32, concurrency: usize) -> Result<[f64; 4]> {
    let env = setup(args).await?;
    let (before, _, _) = sale_with_last_ok(&env, users, quantity, concurrency).await?;
    let ids = make_users(&env.db, users).await?;
    let coupon = make_coupon(&env.db, Some(quantity)).await?;
    let ws_url = env.url.replace("http://", "ws://") + "/ws";
    let per_conn = 20;
    let conns = subscribers.div_ceil(per_conn);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(subscribers.max(1));
    let (sold_tx, mut sold_rx) = tokio::sync::mpsc::channel(subscribers.max(1));
    let mut tasks = Vec::with_capacity(conns);
    for c in 0..conns {
        let subs = per_conn.min(subscribers - c * per_conn);
        tasks.push(tokio::spawn(subscriber_connection(ws_url.clone(), coupon, subs, ready_tx.clone(), sold_tx.clone())));
    }
    drop((ready_tx, sold_tx));
    let opened = Instant::now();
    for _ in 0..subscribers {
        tokio::time::timeout(Duration::from_secs(60), ready_rx.recv()).await?.ok_or_else(|| anyhow!("a subscriber failed to start"))?;
    }
    eprintln!("# {subscribers} subscriptions on {conns} connections ready in {:.1} s", opened.elapsed().as_secs_f64());
    let (with, last_ok) = sale_on(&env, &ids, coupon, concurrency).await?;
    let mut last_seen = last_ok;
    for _ in 0..subscribers {
        let at =
            tokio::time::timeout(Duration::from_secs(30), sold_rx.recv()).await?.ok_or_else(|| anyhow!("a subscriber missed sold out"))?;
        last_seen = last_seen.max(at);
    }
    for t in tasks {
        t.await??;
    }
    let rss = peak_rss_kb(env.server.id()).map_or(f64::NAN, |k| k as f64 / 1024.0);
    let (after, _, _) = sale_with_last_ok(&env, users, quantity, concurrency).await?;
    let lag_ms = last_seen.duration_since(last_ok).as_secs_f64() * 1000.0;
    println!(
        "# without {before:.0} req/s, with {subscribers} subscribers {with:.0} req/s, without again {after:.0} req/s; last issuance → last sold-out message {lag_ms:.0} ms; server peak RSS {rss:.1} MB"
    );
    Ok([with, (before + after) / 2.0, lag_ms, rss])
}

async fn live(args: &Args, subscribers: usize, users: usize, quantity: i32, concurrency: usize, runs: usize) -> Result<()> {
    let mut rounds = Vec::new();
    for _ in 0..runs.max(1) {
        rounds.push(live_round(args, subscribers, users, quantity, concurrency).await?);
    }
    let m = |k: usize| median(rounds.iter().map(|r| r[k]).collect());
    println!("| figure (median of {}) | value |", rounds.len());
    println!("|---|---|");
    println!("| flash sale {users}/{quantity} at {concurrency} without subscribers | {:.0} req/s |", m(1));
    println!("| the same with {subscribers} subscribers on the coupon | {:.0} req/s ({:.0}% kept) |", m(0), m(0) / m(1) * 100.0);
    println!("| last issuance → last subscriber's sold-out message | {:.0} ms |", m(2));
    println!("| server peak RSS | {:.1} MB |", m(3));
    println!("{}", json!({ "scenario": "live", "runs": rounds.len(), "rounds": rounds }));
    Ok(())
}

/// 한 번의 측정: 순차 발급 지연, 두 읽기의 처리량, 선착순 처리량.
async fn scale_round(args: &Args, env: &Env, seconds: u64) -> Result<Vec<Report>> {
    let mut out = vec![single(env, 200).await?];
    out.extend(read(env, seconds, 50).await?);
    out.push(flash_sale(args, env, "flash-sale", 1000, 100, 200).await?);
    Ok(out)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// 클러스터 선착순 한 번의 결과.
struct ClusterRound {
    rps: f64,
    p99_ms: f64,
    try_again: f64,
    retries_per_success: f64,
    codes: BTreeMap<String, u64>,
}

/// 서버들의 `/metrics`에서 서버 안에서 다시 돌린 트랜잭션 수의 합.
async fn retries(client: &reqwest::Client, bases: &[String]) -> Result<f64> {
    let mut sum = 0.0;
    for b in bases {
        let text = client.get(format!("{b}/metrics")).send().await?.text().await?;
        sum += text
            .lines()
            .filter(|l| l.starts_with("couponql_transaction_retries_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
    }
    Ok(sum)
}

/// 노드의 벤치 데이터베이스에 인과적 읽기(wsrep_sync_wait = 1)로 붙는다: 읽기 전에 그 노드가 클러스터에서 이미 커밋된
/// 쓰기를 모두 적용한다. 커넥션 하나라서 세션 변수가 검사 질의와 같은 커넥션에 걸린다.
async fn causal(node: &str) -> Result<DatabaseConnection> {
    let one = DbSettings { max_connections: Some(1), ..DbSettings::default() };
    let conn = couponql::db::connect(&couponql::db::with_database(node, BENCH_DB), &one).await?;
    conn.execute_unprepared("SET SESSION wsrep_sync_wait = 1").await?;
    Ok(conn)
}

/// 클러스터 선착순 (CONTRACT 10절): 첫 노드에 새 데이터베이스(모든 노드로 복제된다), 노드마다 서버 하나(`servers`개),
/// 사용자들의 요청을 서버들에 돌아가며 보낸다. 끝나면 모든 노드에서 정확히 `quantity`(= 발급 내역 수)인지 본다.
async fn cluster(
    args: &Args,
    nodes: &[String],
    servers: usize,
    users: usize,
    quantity: i32,
    concurrency: usize,
    runs: usize,
) -> Result<()> {
    if servers == 0 || servers > nodes.len() {
        bail!("--servers must be between 1 and the number of --nodes ({})", nodes.len());
    }
    let mut rounds = Vec::new();
    for run in 0..runs.max(1) {
        let url = create_database(&nodes[0]).await?;
        let db = couponql::db::connect(&url, &DbSettings::default()).await.context("connect")?;
        couponql::db::migrate(&db).await.context("migrate")?;
        let client = reqwest::Client::builder().pool_max_idle_per_host(10_000).build()?;
        let mut procs = Vec::new();
        for node in &nodes[..servers] {
            let (child, base) = spawn_server(args, &couponql::db::with_database(node, BENCH_DB), &client).await?;
            procs.push((child, base));
        }
        let bases: Vec<String> = procs.iter().map(|(_, b)| b.clone()).collect();
        let ids = make_users(&db, users).await?;
        let coupon = make_coupon(&db, Some(quantity)).await?;
        // 판매는 쿠폰과 사용자가 모든 노드에 적용된 뒤에 연다 (Galera의 읽기는 기본으로 인과적이지 않다: 방금 다른 노드에 쓴
        // 쿠폰을 읽으면 COUPON_NOT_FOUND일 수 있다. README의 "Running as a cluster").
        for node in &nodes[..servers] {
            let conn = causal(node).await?;
            check_invariant(&conn, coupon, Some(0)).await.with_context(|| format!("before the sale on {node}"))?;
        }
        let keys = JwtKeys::new(SECRET);
        let reqs = ids.iter().map(|u| Ok((sign(&keys, *u)?, issue_body(coupon)))).collect::<Result<Vec<_>>>()?;
        let urls: Vec<String> = bases.iter().map(|b| format!("{b}/graphql")).collect();
        let (wall, hist, codes) = drive_over(&client, &urls, reqs, concurrency).await?;
        let retried = retries(&client, &bases).await?;
        // 모든 노드가 같은 정확한 수를 본다 (인과적 읽기: 그 노드에 도착한 쓰기를 다 적용한 뒤).
        for node in nodes {
            let conn = causal(node).await?;
            check_invariant(&conn, coupon, Some(quantity.min(users as i32))).await.with_context(|| format!("on {node}"))?;
        }
        for (mut child, _) in procs {
            let _ = child.kill();
            let _ = child.wait();
        }
        let ok = codes.get("OK").copied().unwrap_or(0) as f64;
        let round = ClusterRound {
            rps: users as f64 / wall.as_secs_f64(),
            p99_ms: hist.value_at_quantile(0.99) as f64 / 1000.0,
            try_again: codes.get("TRY_AGAIN").copied().unwrap_or(0) as f64 / users as f64,
            retries_per_success: if ok > 0.0 { retried / ok } else { 0.0 },
            codes,
        };
        eprintln!(
            "# run {}: {:.0} req/s, p99 {:.1} ms, TRY_AGAIN {:.1}%, retries/success {:.2}, {:?}",
            run + 1,
            round.rps,
            round.p99_ms,
            round.try_again * 100.0,
            round.retries_per_success,
            round.codes
        );
        rounds.push(round);
    }
    let pick = |f: &dyn Fn(&ClusterRound) -> f64| median(rounds.iter().map(f).collect());
    let (rps, p99, ta, rps_retry) = (pick(&|r| r.rps), pick(&|r| r.p99_ms), pick(&|r| r.try_again), pick(&|r| r.retries_per_success));
    println!(
        "| cluster: {users} users / {quantity}, {servers} server(s) on {} node(s), {concurrency} in flight (median of {runs}) | value |",
        nodes.len()
    );
    println!("|---|---|");
    println!("| throughput | {rps:.0} req/s |");
    println!("| p99 | {p99:.1} ms |");
    println!("| TRY_AGAIN | {:.2}% |", ta * 100.0);
    println!("| transactions retried per success | {rps_retry:.2} |");
    println!(
        "{}",
        json!({ "scenario": "cluster", "servers": servers, "users": users, "quantity": quantity, "rps": rps, "p99_ms": p99, "try_again": ta, "retries_per_success": rps_retry })
    );
    Ok(())
}

/// 작은 테이블과 큰 테이블에서 같은 측정을 `runs`번씩 하고 중앙값과 비율을 표로 낸다.
async fn scale(args: &Args, env: &Env, rows: usize, runs: usize, seconds: u64) -> Result<()> {
    let measure = |label: &'static str| async move {
        let mut rounds = Vec::new();
        for i in 0..runs.max(1) {
            let r = scale_round(args, env, seconds).await?;
            eprintln!("# {label} run {}:", i + 1);
            for x in &r {
                x.print();
            }
            rounds.push(r);
        }
        // 지표: single p50 (ms), coupon(id) req/s, me req/s, flash-sale req/s
        let pick = |k: usize, f: &dyn Fn(&Report) -> f64| median(rounds.iter().map(|r| f(&r[k])).collect());
        let rps = |r: &Report| r.requests as f64 / r.wall.as_secs_f64();
        let p50 = |r: &Report| r.hist.value_at_quantile(0.5) as f64 / 1000.0;
        anyhow::Ok([pick(0, &p50), pick(1, &rps), pick(2, &rps), pick(3, &rps)])
    };
    let small = measure("small").await?;
    let took = fill(&env.db, rows).await?;
    eprintln!("# filled {rows} users + {rows} user coupons in {:.0} s", took.as_secs_f64());
    let large = measure("large").await?;
    let names = ["single issuance p50 (ms)", "coupon(id) req/s", "me{coupons} req/s", "flash-sale 1000/100 req/s"];
    println!("| figure (median of {runs}) | small tables | + {rows} rows | cost ratio |");
    println!("|---|---|---|---|");
    for (i, name) in names.iter().enumerate() {
        // 비용 비율: 지연은 큰/작은, 처리량은 작은/큰 (1.0 = 차이 없음, 클수록 큰 테이블에서 비싸다).
        let ratio = if i == 0 { large[i] / small[i] } else { small[i] / large[i] };
        println!("| {name} | {:.2} | {:.2} | {ratio:.2}× |", small[i], large[i]);
    }
    println!("{}", json!({ "scenario": "scale", "rows": rows, "runs": runs, "small": small, "large": large }));
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    println!(
        "# couponql-bench on {} ({} cores), server {}",
        args.database,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        args.server_bin.display()
    );
    let mut reports = Vec::new();
    match args.scenario.clone() {
        Scenario::FlashSale { users, quantity, concurrency } => {
            reports.push(flash_sale(&args, &setup(&args).await?, "flash-sale", users, quantity, concurrency).await?)
        }
        Scenario::HotRow { users, concurrency } => reports.push(hot_row(&args, &setup(&args).await?, users, concurrency).await?),
        Scenario::Single { requests } => reports.push(single(&setup(&args).await?, requests).await?),
        Scenario::Read { seconds, concurrency } => reports.extend(read(&setup(&args).await?, seconds, concurrency).await?),
        Scenario::Burst { clients, quantity } => {
            reports.push(flash_sale(&args, &setup(&args).await?, "burst", clients, quantity, clients).await?)
        }
        Scenario::Scale { rows, runs, seconds } => scale(&args, &setup(&args).await?, rows, runs, seconds).await?,
        Scenario::Checkout { users, concurrency } => reports.extend(checkout(&setup(&args).await?, users, concurrency).await?),
        Scenario::Shop { codes, users, quantity, concurrency, runs } => shop(&args, codes, users, quantity, concurrency, runs).await?,
        Scenario::Live { subscribers, users, quantity, concurrency, runs } => {
            live(&args, subscribers, users, quantity, concurrency, runs).await?
        }
        Scenario::Cluster { nodes, servers, users, quantity, concurrency, runs } => {
            cluster(&args, &nodes, servers, users, quantity, concurrency, runs).await?
        }
        Scenario::All => {
            reports.push(flash_sale(&args, &setup(&args).await?, "flash-sale", 1000, 100, 200).await?);
            reports.push(hot_row(&args, &setup(&args).await?, 5000, 100).await?);
            reports.push(single(&setup(&args).await?, 500).await?);
            reports.extend(read(&setup(&args).await?, 10, 50).await?);
            reports.push(flash_sale(&args, &setup(&args).await?, "burst", 5000, 100, 5000).await?);
            reports.extend(checkout(&setup(&args).await?, 1000, 100).await?);
            shop(&args, 100_000, 1000, 100, 200, 1).await?;
        }
        Scenario::Smoke => {
            reports.push(flash_sale(&args, &setup(&args).await?, "flash-sale", 300, 30, 50).await?);
            reports.push(hot_row(&args, &setup(&args).await?, 200, 20).await?);
            reports.push(single(&setup(&args).await?, 20).await?);
            reports.extend(read(&setup(&args).await?, 1, 5).await?);
            reports.push(flash_sale(&args, &setup(&args).await?, "burst", 300, 10, 300).await?);
            reports.extend(checkout(&setup(&args).await?, 100, 20).await?);
            scale(&args, &setup(&args).await?, 2000, 1, 1).await?;
            shop(&args, 2000, 100, 10, 20, 1).await?;
            live(&args, 200, 100, 10, 20, 1).await?;
        }
    }
    for r in &reports {
        r.print();
    }
    Ok(())
}
