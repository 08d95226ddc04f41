//! 평범한 하루 ("a normal shop day"): 사용자 수천 명과 쿠폰 100장이 한꺼번에, 모든 변경에 Idempotency-Key를 달고,
//! 발급 · 보류 → 사용 · 취소 · 내 쿠폰 읽기가 단계별이 아니라 나란히 돈다.
//!
//! 일의 양은 시간이 아니라 정해진 수다 (같은 명령이 같은 요청들을 보내게): 방문 `visits`번(기본 사용자당 3번).
//! 방문 v는 사용자 v % users가 아직 받지 않은 쿠폰 하나를 `issueCoupon`하고 `me { coupons }`를 한 번 읽는다.
//! 쿠폰은 사용자마다 무작위로 정한 자리부터 차례로 고르므로 모든 쿠폰에 고르게 퍼진다. 쿠폰 20장에 1장은 수량이 적어
//! (방문 수 / 쿠폰 수 / 3) 매진되고, 나머지는 사용자 수만큼이라 매진되지 않는다. 발급된 것의 절반은 보류 → 사용,
//! 그중 5분의 1은 사용 뒤 취소된다. 요청 수는 대략 방문당 3.1개.
//!
//! 보류는 발급 내역 id가 있어야 하므로 하루를 라운드(방문 4 × concurrency번씩)로 나눠 파이프라인으로 돌린다:
//! 라운드 r에는 r번째 방문들의 발급과 읽기, r−1 라운드에 발급된 것의 보류, r−2의 사용, r−3의 취소가 함께 간다
//! (`load::drive_over`를 종류마다 하나씩, 요청 수에 비례해 나눈 동시 수로, 동시에). 발급 내역 id와 앞 단계가 되었는지는
//! 라운드가 끝난 뒤 데이터베이스에서 읽는다 (보류된 것만 사용, 사용된 것만 취소). 종류별 req/s는 그 종류의 요청 수를 하루 전체의 시간으로 나눈 것이다 (모두 하루 내내 돈다).
//!
//! 끝나면 모든 쿠폰의 불변식을 데이터베이스에서 본다. 발급이 모두 OK나 매진이었으면 쿠폰마다 발급 수가 정확히
//! min(수량, 그 쿠폰을 고른 방문 수)여야 한다.
//!
//! `--nodes`(Galera 노드들): 한 노드에 서버 하나로 한 번, 노드마다 서버 하나씩으로 한 번 돌려 나란히 보인다
//! (CONTRACT 10절: 여러 쿠폰에 퍼진 쓰기는 서버 셋이 하나보다 느리지 않고, 다시 돈 트랜잭션은 성공 100건에 5건 미만).
//! 라운드가 끝날 때마다 모든 노드에 인과적 읽기를 하나씩 해서, 다음 라운드의 요청이 어느 노드로 가도 앞 단계를 본다.
//!
//! `--nats`: 벤치만의 nats-server를 띄우고 서버(들)에 `NATS_URL`을 준다. `couponql.events.>`를 구독해 이벤트마다
//! 받은 시각 − `occurredAt`을 재고, 끝에 받은 수를 `events` 테이블의 행 수와 맞춘다 (꼬리를 5초까지 기다린다).
//! 행을 센다: `sequence`는 커밋 뒤에 찍힐 수 있으므로 그것에 기대지 않는다.
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use couponql::auth::JwtKeys;
use couponql::entities::user_coupon;
use hdrhistogram::Histogram;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

use super::checkout::{CANCEL, RESERVE, USE};
use super::cluster::{causal, cluster_env, retries};
use super::read::ME;
use crate::env::{check_invariant, make_coupon, make_users, setup, sign};
use crate::load::{drive_over, issue_body, new_hist};
use crate::nats::{Lag, Listener, Nats};
use crate::report::{CpuSplit, Report, cpu_delta, cpu_of, peak_rss_kb};
use crate::{Args, SECRET};

/// 명령줄의 크기들.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DaySize {
    pub(crate) users: usize,
    pub(crate) coupons: usize,
    pub(crate) concurrency: usize,
    /// 없으면 사용자당 3번
    pub(crate) visits: Option<usize>,
    pub(crate) nats: bool,
}

/// 요청의 종류 (보고 줄의 순서).
const OPS: [&str; 5] = ["issue", "read", "reserve", "use", "cancel"];
/// 발급이 답해도 되는 코드. 나머지 종류는 OK와 TRY_AGAIN만 (TRY_AGAIN은 세어 보인다).
const ISSUE_CODES: [&str; 3] = ["OK", "COUPON_SOLD_OUT", "TRY_AGAIN"];
const OTHER_CODES: [&str; 2] = ["OK", "TRY_AGAIN"];
/// 하루가 끝난 뒤 마지막 이벤트들이 NATS로 올 때까지 기다리는 시간.
const TAIL: Duration = Duration::from_secs(5);
/// 중계 지연 목표 (CONTRACT 9절: 커밋 뒤 1초 안에 NATS에).
const LAG_TARGET_MS: f64 = 1000.0;

struct Visit {
    user: usize,
    coupon: usize,
    /// 발급되면 보류 → 사용까지 간다
    checkout: bool,
    /// 사용한 뒤 취소한다
    cancel: bool,
}

/// 하루치 준비: 사용자, 토큰, 쿠폰(수량), 방문 목록.
struct Plan {
    users: Vec<Uuid>,
    tokens: Vec<String>,
    coupons: Vec<Uuid>,
    totals: Vec<i32>,
    visits: Vec<Visit>,
    /// 라운드 하나의 방문 수
    round: usize,
}

/// 재현되는 난수 (splitmix64): 같은 크기면 같은 하루.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

async fn plan(db: &DatabaseConnection, size: &DaySize) -> Result<Plan> {
    let (n_users, n_coupons) = (size.users.max(1), size.coupons.max(1));
    let n_visits = size.visits.unwrap_or(n_users * 3);
    if n_visits > n_users * n_coupons {
        bail!("--visits {n_visits} > users × coupons: a user would ask for the same coupon twice");
    }
    let users = make_users(db, n_users).await?;
    let keys = JwtKeys::new(SECRET);
    let tokens = users.iter().map(|u| sign(&keys, *u)).collect::<Result<Vec<_>>>()?;
    // 쿠폰 20장에 1장은 한정 수량(고르는 방문의 약 3분의 1만큼)이라 매진된다. 나머지는 사용자 수만큼: 매진되지 않는다.
    let limited = n_coupons / 20;
    let scarce = i32::try_from((n_visits / n_coupons / 3).max(1))?;
    let ample = i32::try_from(n_users)?;
    let totals: Vec<i32> = (0..n_coupons).map(|c| if c < limited { scarce } else { ample }).collect();
    let mut coupons = Vec::with_capacity(n_coupons);
    for total in &totals {
        coupons.push(make_coupon(db, Some(*total)).await?);
    }
    let mut rng = Rng(0x5eed_da7e);
    let start: Vec<usize> = (0..n_users).map(|_| rng.below(n_coupons)).collect();
    let visits = (0..n_visits)
        .map(|v| {
            let user = v % n_users;
            // 사용자의 k번째 방문은 자기 자리에서 k칸 뒤의 쿠폰: k < 쿠폰 수라서 같은 쿠폰을 두 번 고르지 않는다.
            let coupon = (start[user] + v / n_users) % n_coupons;
            Visit { user, coupon, checkout: rng.below(2) == 0, cancel: rng.below(5) == 0 }
        })
        .collect();
    Ok(Plan { users, tokens, coupons, totals, visits, round: (4 * size.concurrency).max(1) })
}

/// 하루를 돌릴 곳.
struct Site<'a> {
    /// 발급 내역 id 읽기, 불변식, 이벤트 수 (클러스터: 첫 노드)
    db: &'a DatabaseConnection,
    client: &'a reqwest::Client,
    servers: Vec<&'a testkit::Server>,
    /// 클러스터: 노드마다 인과적 읽기 연결 (라운드 사이의 따라잡기, 끝의 불변식). 서버 하나면 비어 있다.
    nodes: &'a [DatabaseConnection],
}

/// 한 종류의 요청들의 결과 (라운드마다 더한다).
struct OpStats {
    requests: u64,
    hist: Histogram<u64>,
    codes: BTreeMap<String, u64>,
}

impl OpStats {
    fn new() -> Result<OpStats> {
        Ok(OpStats { requests: 0, hist: new_hist()?, codes: BTreeMap::new() })
    }

    fn add(&mut self, hist: &Histogram<u64>, codes: &BTreeMap<String, u64>) -> Result<()> {
        self.hist.add(hist)?;
        for (k, v) in codes {
            self.requests += v;
            *self.codes.entry(k.clone()).or_insert(0) += v;
        }
        Ok(())
    }

    fn ok(&self) -> u64 {
        self.codes.get("OK").copied().unwrap_or(0)
    }
}

/// 하루 한 번의 결과.
struct Outcome {
    label: String,
    ops: Vec<OpStats>,
    wall: Duration,
    cpu: CpuSplit,
    rss_kb: Option<u64>,
    /// 데이터베이스에서 센 발급 수 (모든 쿠폰)
    issued: i64,
    /// 서버들이 다시 돌린 트랜잭션 수 (/metrics)
    retried: f64,
    /// 중계 지연과 그때 `events` 테이블의 행 수
    relay: Option<(Lag, u64)>,
    /// 허용되지 않은 코드, 빠진 이벤트: 출력한 뒤 실패로 끝낸다
    problems: Vec<String>,
}

fn visit_body(plan: &Plan, v: usize) -> (String, Value) {
    let visit = &plan.visits[v];
    let (user, coupon) = (plan.users[visit.user], plan.coupons[visit.coupon]);
    let mut body = issue_body(coupon);
    body["_key"] = json!(format!("day-issue-{user}-{coupon}"));
    (plan.tokens[visit.user].clone(), body)
}

/// 발급 내역 하나의 주문 (보류, 사용, 취소가 같은 주문으로).
fn order_of(uc: Uuid) -> String {
    format!("day-{uc}")
}

fn checkout_body(plan: &Plan, op: &str, query: &str, v: usize, uc: Uuid) -> (String, Value) {
    let vars = json!({ "u": uc.to_string(), "o": order_of(uc) });
    (plan.tokens[plan.visits[v].user].clone(), json!({ "query": query, "variables": vars, "_key": format!("day-{op}-{uc}") }))
}

/// 다음 단계를 기다리는 발급 내역들: (방문 번호, 발급 내역 id)
type Pending = Vec<(usize, Uuid)>;

/// 클러스터: 모든 노드가 이미 커밋된 쓰기(이 라운드의 것)를 적용할 때까지 기다린다 (노드마다 인과적 읽기 하나).
/// 그래야 다음 라운드의 요청이 어느 노드로 가도 그것을 본다. 서버 하나면 할 일이 없다.
async fn catch_up(site: &Site<'_>) -> Result<()> {
    for node in site.nodes {
        node.query_one_raw(Statement::from_string(node.get_database_backend(), "SELECT 1 FROM coupons LIMIT 1")).await?;
    }
    Ok(())
}

/// 이 라운드에 보류하거나 사용한 발급 내역들의 지금 상태: id → (사용됨, 주문 id).
async fn states(db: &DatabaseConnection, ucs: impl Iterator<Item = Uuid>) -> Result<HashMap<Uuid, (bool, Option<String>)>> {
    let ids: Vec<String> = ucs.map(|u| u.to_string()).collect();
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        for m in user_coupon::Entity::find().filter(user_coupon::Column::Id.is_in(chunk.iter().cloned())).all(db).await? {
            out.insert(Uuid::parse_str(&m.id)?, (m.is_used, m.order_id));
        }
    }
    Ok(out)
}

/// 방문들 중 보류까지 갈 것의 발급 내역 id (발급되지 않은 것은 빠진다).
async fn issued_in(site: &Site<'_>, plan: &Plan, visits: std::ops::Range<usize>) -> Result<Pending> {
    let want: Vec<usize> = visits.filter(|v| plan.visits[*v].checkout).collect();
    if want.is_empty() {
        return Ok(Vec::new());
    }
    let mut users: Vec<String> = want.iter().map(|v| plan.users[plan.visits[*v].user].to_string()).collect();
    users.sort();
    users.dedup();
    let mut found = HashMap::new();
    for chunk in users.chunks(500) {
        let rows = user_coupon::Entity::find().filter(user_coupon::Column::UserId.is_in(chunk.iter().cloned())).all(site.db).await?;
        for m in rows {
            found.insert((m.user_id, m.coupon_id), m.id);
        }
    }
    let mut out = Vec::with_capacity(want.len());
    for v in want {
        let visit = &plan.visits[v];
        if let Some(id) = found.get(&(plan.users[visit.user].to_string(), plan.coupons[visit.coupon].to_string())) {
            out.push((v, Uuid::parse_str(id)?));
        }
    }
    Ok(out)
}

/// 라운드들을 파이프라인으로 돌린다. (종류별 결과, 하루의 시간)
async fn drive_day(site: &Site<'_>, plan: &Plan, concurrency: usize) -> Result<(Vec<OpStats>, Duration)> {
    let urls: Vec<String> = site.servers.iter().map(|s| format!("{}/graphql", s.base())).collect();
    let mut ops = OPS.iter().map(|_| OpStats::new()).collect::<Result<Vec<_>>>()?;
    // 다음 라운드에 보류할 것, 사용할 것, 취소할 것
    let (mut to_reserve, mut to_use, mut to_cancel): (Pending, Pending, Pending) = Default::default();
    let n = plan.visits.len();
    let started = Instant::now();
    let mut first = 0;
    loop {
        let visits = first.min(n)..(first + plan.round).min(n);
        first += plan.round;
        if visits.is_empty() && to_reserve.is_empty() && to_use.is_empty() && to_cancel.is_empty() {
            break;
        }
        let lanes: [Vec<(String, Value)>; 5] = [
            visits.clone().map(|v| visit_body(plan, v)).collect(),
            visits.clone().map(|v| (plan.tokens[plan.visits[v].user].clone(), json!({ "query": ME }))).collect(),
            to_reserve.iter().map(|(v, uc)| checkout_body(plan, "reserve", RESERVE, *v, *uc)).collect(),
            to_use.iter().map(|(v, uc)| checkout_body(plan, "use", USE, *v, *uc)).collect(),
            to_cancel.iter().map(|(v, uc)| checkout_body(plan, "cancel", CANCEL, *v, *uc)).collect(),
        ];
        // 동시 수는 요청 수에 비례해 나눈다: 종류들이 라운드 안에서 대략 함께 끝난다.
        let total = lanes.iter().map(Vec::len).sum::<usize>().max(1);
        let results = futures::future::try_join_all(lanes.into_iter().map(|reqs| {
            let share = (concurrency * reqs.len()).div_ceil(total).max(1);
            drive_over(site.client, &urls, reqs, share)
        }))
        .await?;
        for (op, (_, hist, codes)) in ops.iter_mut().zip(&results) {
            op.add(hist, codes)?;
        }
        // 다음 단계는 앞 단계가 실제로 된 것에만 (데이터베이스에서 다시 읽는다): TRY_AGAIN 하나가 다음 라운드의
        // COUPON_NOT_USED 같은 뒤따른 오류로 번지지 않게.
        catch_up(site).await?;
        let now = states(site.db, to_reserve.iter().chain(&to_use).map(|(_, uc)| *uc)).await?;
        to_cancel = to_use.into_iter().filter(|(v, uc)| plan.visits[*v].cancel && now.get(uc).is_some_and(|(used, _)| *used)).collect();
        to_use = std::mem::take(&mut to_reserve)
            .into_iter()
            .filter(|(_, uc)| now.get(uc).is_some_and(|(used, order)| !used && order.as_deref() == Some(order_of(*uc).as_str())))
            .collect();
        to_reserve = issued_in(site, plan, visits).await?;
    }
    Ok((ops, started.elapsed()))
}

/// 하루 한 번: 돌리고, 불변식을 보고, (`listener`가 있으면) 꼬리 이벤트까지 받는다.
async fn one_day(label: &str, site: &Site<'_>, plan: &Plan, concurrency: usize, listener: Option<Listener>) -> Result<Outcome> {
    let before = cpu_of(&site.servers);
    let (ops, wall) = drive_day(site, plan, concurrency).await?;
    let cpu = cpu_delta(before, cpu_of(&site.servers));
    let bases: Vec<String> = site.servers.iter().map(|s| s.base().to_owned()).collect();
    let retried = retries(site.client, &bases).await?;
    let mut problems = Vec::new();
    for (op, stats) in OPS.iter().zip(&ops) {
        let allowed: &[&str] = if *op == "issue" { &ISSUE_CODES } else { &OTHER_CODES };
        let odd: BTreeMap<_, _> = stats.codes.iter().filter(|(k, _)| !allowed.contains(&k.as_str())).collect();
        if !odd.is_empty() {
            problems.push(format!("{label} {op}: unexpected answers {odd:?}"));
        }
    }
    // 불변식: 모든 쿠폰, 클러스터면 모든 노드에서 (인과적 읽기). 발급이 OK나 매진뿐이었으면 쿠폰마다 정확히.
    let issue = &ops[0];
    let exact = issue.codes.keys().all(|k| k == "OK" || k == "COUPON_SOLD_OUT");
    let mut asked = vec![0i32; plan.coupons.len()];
    for v in &plan.visits {
        asked[v.coupon] += 1;
    }
    let checkers: Vec<&DatabaseConnection> = if site.nodes.is_empty() { vec![site.db] } else { site.nodes.iter().collect() };
    let mut issued = 0;
    for (i, conn) in checkers.iter().enumerate() {
        let mut sum = 0;
        for (c, coupon) in plan.coupons.iter().enumerate() {
            let want = exact.then(|| plan.totals[c].min(asked[c]));
            sum += i64::from(check_invariant(conn, *coupon, want).await.with_context(|| format!("{label}: coupon {c}, node {}", i + 1))?);
        }
        if exact && sum != issue.ok() as i64 {
            bail!("{label}: {} issuances answered OK but the database holds {sum} (node {})", issue.ok(), i + 1);
        }
        issued = sum;
    }
    let relay = match listener {
        Some(listener) => {
            let db = site.nodes.first().unwrap_or(site.db);
            let deadline = Instant::now() + TAIL;
            let rows = loop {
                // 행 수만 센다 (열을 고르지 않는다: 원장 모양이 다른 옛 서버의 데이터베이스에서도).
                let count = Statement::from_string(db.get_database_backend(), "SELECT COUNT(*) FROM events");
                let rows: i64 = db.query_one_raw(count).await?.map(|r| r.try_get_by_index(0)).transpose()?.unwrap_or(0);
                let rows = u64::try_from(rows).unwrap_or(0);
                if listener.received() >= rows || Instant::now() >= deadline {
                    break rows;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            let lag = listener.finish().await?;
            if lag.received != rows {
                problems.push(format!(
                    "{label}: {} events in the database, {} received on NATS within {} s of the end",
                    rows,
                    lag.received,
                    TAIL.as_secs()
                ));
            }
            Some((lag, rows))
        }
        None => None,
    };
    let rss_kb = site.servers.iter().filter_map(|s| peak_rss_kb(s)).max();
    Ok(Outcome { label: label.to_owned(), ops, wall, cpu, rss_kb, issued, retried, relay, problems })
}

impl Outcome {
    fn total(&self) -> Result<OpStats> {
        let mut t = OpStats::new()?;
        for op in &self.ops {
            t.add(&op.hist, &op.codes)?;
        }
        Ok(t)
    }

    fn try_again(&self) -> u64 {
        self.ops.iter().map(|o| o.codes.get("TRY_AGAIN").copied().unwrap_or(0)).sum()
    }

    /// 성공한 변경 수 (읽기를 뺀 OK)
    fn ok_mutations(&self) -> u64 {
        OPS.iter().zip(&self.ops).filter(|(op, _)| **op != "read").map(|(_, s)| s.ok()).sum()
    }

    fn p99_ms(hist: &Histogram<u64>) -> f64 {
        hist.value_at_quantile(0.99) as f64 / 1000.0
    }

    /// 종류마다 한 줄, 합계 한 줄 (`report`의 형식; CPU는 하루 전체라서 합계 줄에만), 다시 돈 트랜잭션, 중계 지연.
    fn print(&self) -> Result<()> {
        let issued = i32::try_from(self.issued).ok();
        let line = |name: &str, s: OpStats, cpu: CpuSplit, issued: Option<i32>| Report {
            scenario: format!("{} {name}", self.label),
            requests: s.requests,
            wall: self.wall,
            hist: s.hist,
            codes: s.codes,
            server_peak_rss_kb: self.rss_kb,
            cpu,
            issued,
        };
        for (name, op) in OPS.iter().zip(&self.ops) {
            let copy = OpStats { requests: op.requests, hist: op.hist.clone(), codes: op.codes.clone() };
            line(name, copy, CpuSplit::default(), (*name == "issue").then_some(issued).flatten()).print();
        }
        line("total", self.total()?, self.cpu, issued).print();
        let ok = self.ok_mutations();
        println!(
            "# {}: {} TRY_AGAIN answers; the servers retried {} transactions ({:.2} per 100 successful mutations, {ok} of them)",
            self.label,
            self.try_again(),
            self.retried,
            if ok > 0 { self.retried / ok as f64 * 100.0 } else { 0.0 }
        );
        if let Some((lag, rows)) = &self.relay {
            let ms = |q: f64| lag.hist.value_at_quantile(q) as f64 / 1000.0;
            let p99 = ms(0.99);
            println!(
                "{:<22} {} of {rows} events in the database received ({} duplicates)  p50 {:.1} ms  p99 {p99:.1} ms  max {:.1} ms  target p99 < 1 s: {}",
                format!("{} relay lag", self.label),
                lag.received,
                lag.duplicates,
                ms(0.5),
                lag.hist.max() as f64 / 1000.0,
                if p99 < LAG_TARGET_MS { "met" } else { "NOT met" }
            );
            println!(
                "{}",
                json!({ "scenario": format!("{} relay lag", self.label), "events": rows, "received": lag.received, "duplicates": lag.duplicates,
                        "p50_ms": ms(0.5), "p99_ms": p99, "max_ms": lag.hist.max() as f64 / 1000.0 })
            );
        }
        Ok(())
    }

    fn rps(&self, s: &OpStats) -> f64 {
        s.requests as f64 / self.wall.as_secs_f64()
    }
}

/// `--nats`면 벤치만의 nats-server와 그 구독을 열고, 서버들에 줄 인자에 `NATS_URL`을 더한다.
/// nats-server는 서버들보다 오래 살아야 한다 (먼저 죽으면 서버의 중계자가 경고를 낸다): 부르는 쪽이 서버보다 먼저 선언한다.
async fn relay(args: &Args, on: bool) -> Result<(Args, Option<Nats>, Option<Listener>)> {
    let mut args = args.clone();
    if !on {
        return Ok((args, None, None));
    }
    let nats = Nats::start().await?;
    let listener = Listener::start(&nats.url()).await?;
    args.server_env.push(format!("NATS_URL={}", nats.url()));
    Ok((args, Some(nats), Some(listener)))
}

pub(crate) async fn day(args: &Args, size: &DaySize, nodes: &[String]) -> Result<()> {
    if nodes.is_empty() { single(args, size).await } else { cluster(args, size, nodes).await }
}

/// 서버 하나, 데이터베이스 하나 (`--database`, 다른 시나리오처럼 새로 만든다).
async fn single(args: &Args, size: &DaySize) -> Result<()> {
    let (args, _nats, listener) = relay(args, size.nats).await?;
    let env = setup(&args).await?;
    let plan = plan(&env.db, size).await?;
    let site = Site { db: &env.db, client: &env.client, servers: vec![&env.server], nodes: &[] };
    let out = one_day("day", &site, &plan, size.concurrency, listener).await?;
    out.print()?;
    if !out.problems.is_empty() {
        bail!("{}", out.problems.join("; "));
    }
    Ok(())
}

/// Galera: 첫 노드에 서버 하나로 한 번, 노드마다 서버 하나로 한 번 (매번 새 데이터베이스), 그리고 둘을 나란히.
async fn cluster(args: &Args, size: &DaySize, nodes: &[String]) -> Result<()> {
    let mut counts = vec![1];
    if nodes.len() > 1 {
        counts.push(nodes.len());
    }
    let mut outs = Vec::new();
    for servers in counts {
        let (args, _nats, listener) = relay(args, size.nats).await?;
        let (db, procs, client) = cluster_env(&args, nodes, servers).await?;
        let plan = plan(&db, size).await?;
        let mut conns = Vec::with_capacity(nodes.len());
        for node in nodes {
            conns.push(causal(node).await?);
        }
        // 하루는 쿠폰과 사용자가 모든 노드에 적용된 뒤에 연다 (cluster 시나리오와 같이).
        for (node, conn) in nodes.iter().zip(&conns) {
            for coupon in &plan.coupons {
                check_invariant(conn, *coupon, Some(0)).await.with_context(|| format!("before the day on {node}"))?;
            }
        }
        let label = format!("day {servers}srv");
        let site = Site { db: &db, client: &client, servers: procs.iter().collect(), nodes: &conns };
        let out = one_day(&label, &site, &plan, size.concurrency, listener).await?;
        out.print()?;
        outs.push((servers, out));
    }
    let (users, coupons) = (size.users, size.coupons);
    let visits = size.visits.unwrap_or(users * 3);
    print!("| day on {} Galera nodes: {users} users, {coupons} coupons, {visits} visits, {} in flight |", nodes.len(), size.concurrency);
    for (servers, _) in &outs {
        print!(" {servers} server(s) |");
    }
    println!("\n|---|{}", "---|".repeat(outs.len()));
    let row = |name: &str, f: &dyn Fn(&Outcome) -> Result<String>| -> Result<()> {
        let cells = outs.iter().map(|(_, o)| f(o)).collect::<Result<Vec<_>>>()?;
        println!("| {name} | {} |", cells.join(" | "));
        Ok(())
    };
    row("total", &|o| {
        let t = o.total()?;
        Ok(format!("{:.0} req/s, p99 {:.1} ms", o.rps(&t), Outcome::p99_ms(&t.hist)))
    })?;
    for (i, name) in OPS.iter().enumerate() {
        row(name, &|o| Ok(format!("{:.0} req/s, p99 {:.1} ms", o.rps(&o.ops[i]), Outcome::p99_ms(&o.ops[i].hist))))?;
    }
    row("TRY_AGAIN answers", &|o| Ok(o.try_again().to_string()))?;
    row("transactions retried (per 100 successful mutations)", &|o| {
        let ok = o.ok_mutations().max(1) as f64;
        Ok(format!("{} ({:.2})", o.retried, o.retried / ok * 100.0))
    })?;
    if size.nats {
        row("relay lag p50 / p99 / max", &|o| {
            Ok(o.relay.as_ref().map_or("-".into(), |(lag, rows)| {
                format!(
                    "{:.1} / {:.1} / {:.1} ms ({} of {rows} events)",
                    lag.hist.value_at_quantile(0.5) as f64 / 1000.0,
                    lag.hist.value_at_quantile(0.99) as f64 / 1000.0,
                    lag.hist.max() as f64 / 1000.0,
                    lag.received
                )
            }))
        })?;
    }
    let problems: Vec<String> = outs.iter().flat_map(|(_, o)| o.problems.clone()).collect();
    if !problems.is_empty() {
        bail!("{}", problems.join("; "));
    }
    Ok(())
}
