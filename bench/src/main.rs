//! couponql 벤치마크 하네스: 서버를 띄우고(또는 주소를 받아), 사용자·쿠폰을 준비하고,
//! 동시 요청 수를 제한해 GraphQL over HTTP로 부하를 건다. 시나리오마다 표 한 줄과 JSON 한 줄을 출력하고,
//! 발급 시나리오는 끝에 데이터베이스 불변식을 확인해 어긋나면 실패로 끝난다.
mod env;
mod load;
mod nats;
mod report;
mod scenarios;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::env::setup;

const SECRET: &str = "couponql-bench-secret";
const BENCH_DB: &str = "couponql_bench";

#[derive(Parser, Debug, Clone)]
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
    /// Start the server with TRUSTED_DOCUMENTS (a manifest of the documents the harness sends) and send each
    /// document by its documentId instead of its text (CONTRACT 13).
    #[arg(long)]
    trusted_documents: bool,
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
        /// The coupon's perUserLimit; every user sends this many requests.
        #[arg(long, default_value_t = 1)]
        per_user_limit: i32,
        /// A restricted coupon whose audience is every user of the sale.
        #[arg(long)]
        restricted: bool,
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
        /// Give the coupon a budget that everyone fits in (CONTRACT 11): its checkouts meet on the coupon's row.
        #[arg(long)]
        budget: bool,
        /// Check out sets of this many STACKABLE coupons (CONTRACT 12) instead of one coupon: reserveCoupons → useOrderCoupons
        /// → cancelOrderCoupons → reserveCoupons (a new order). Rates are in coupons per second.
        #[arg(long)]
        set: Option<usize>,
    },
    /// bestCoupons (CONTRACT 12) for users holding `coupons` coupons each: client p50/p99 and the server's share within 1, 2.5 and
    /// 5 ms, at 1 and at 10 in flight.
    Best {
        #[arg(long, default_value_t = 50)]
        coupons: usize,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
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
    /// A normal shop day: `users` users and `coupons` coupons at once, every mutation keyed, run side by side (pipelined
    /// rounds, not phase by phase): issueCoupon spread over the coupons (one in 20 limited, so it sells out), reserve → use
    /// for half of what was issued, cancelCoupon for a fifth of those, and `me { coupons }` reads. A fixed amount of work, not
    /// a duration: `visits` visits (default 3 per user), each one issuance and one read, about 3.1 requests per visit. One
    /// report line per kind of request and a total; then the invariant of every coupon in the database.
    Day {
        #[arg(long, default_value_t = 3000)]
        users: usize,
        #[arg(long, default_value_t = 100)]
        coupons: usize,
        #[arg(long, default_value_t = 100)]
        concurrency: usize,
        /// Visits (the fixed amount of work); default 3 per user, at most users × coupons.
        #[arg(long)]
        visits: Option<usize>,
        /// Galera nodes' server URLs, comma-separated (`scripts/galera.sh up`): run once with one server on the first node
        /// and once with one server per node, and compare (TRY_AGAIN answers and the transactions the servers retried).
        #[arg(long, value_delimiter = ',')]
        nodes: Vec<String>,
        /// Start a private `nats-server -js`, run the server(s) with NATS_URL, and measure the relay lag of every event
        /// (receive time − occurredAt) and how many of the database's events arrived.
        #[arg(long)]
        nats: bool,
    },
    /// A release wave opening (CONTRACT 11) watched by `subscribers` couponStock subscriptions (20 per connection): the time
    /// from the wave's `at` to the last subscriber's message, with no request made. Median of `runs`.
    Wave {
        #[arg(long, default_value_t = 10_000)]
        subscribers: usize,
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Bulk audience import (CONTRACT 11): POST a streamed CSV of `ids` lines to /admin/coupons/{id}/audience.csv, then the same
    /// file again (adds nothing); elapsed time and the server's peak RSS growth. Users are inserted into the database directly;
    /// `unknown_percent` of the lines name no user.
    AudienceImport {
        #[arg(long, default_value_t = 1_000_000)]
        ids: usize,
        #[arg(long, default_value_t = 10)]
        unknown_percent: usize,
    },
    /// Every scenario with its defaults.
    All,
    /// A small, quick run of every scenario (CI): proves the harness works and the invariant holds.
    Smoke,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    load::BY_DOCUMENT_ID.store(args.trusted_documents, std::sync::atomic::Ordering::Relaxed);
    println!(
        "# couponql-bench on {} ({} cores), server {}",
        args.database,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        args.server_bin.display()
    );
    let mut reports = Vec::new();
    match args.scenario.clone() {
        Scenario::FlashSale { users, quantity, concurrency, per_user_limit, restricted } => {
            let sale = scenarios::flash_sale::Sale { users, quantity, concurrency, per_user_limit, restricted };
            reports.push(scenarios::flash_sale::limited_sale(&args, &setup(&args).await?, "flash-sale", sale).await?)
        }
        Scenario::HotRow { users, concurrency } => {
            reports.push(scenarios::hot_row::hot_row(&args, &setup(&args).await?, users, concurrency).await?)
        }
        Scenario::Single { requests } => reports.push(scenarios::single::single(&setup(&args).await?, requests).await?),
        Scenario::Read { seconds, concurrency } => reports.extend(scenarios::read::read(&setup(&args).await?, seconds, concurrency).await?),
        Scenario::Burst { clients, quantity } => {
            reports.push(scenarios::flash_sale::flash_sale(&args, &setup(&args).await?, "burst", clients, quantity, clients).await?)
        }
        Scenario::Scale { rows, runs, seconds } => scenarios::scale::scale(&args, &setup(&args).await?, rows, runs, seconds).await?,
        Scenario::Wave { subscribers, runs } => scenarios::wave::wave(&args, subscribers, runs).await?,
        Scenario::Checkout { users, concurrency, budget, set: None } => {
            reports.extend(scenarios::checkout::checkout(&setup(&args).await?, users, concurrency, budget).await?)
        }
        Scenario::Checkout { users, concurrency, set: Some(size), .. } => {
            reports.extend(scenarios::checkout::checkout_sets(&setup(&args).await?, users, concurrency, size).await?)
        }
        Scenario::Best { coupons, seconds } => reports.extend(scenarios::best::best(&setup(&args).await?, coupons, seconds).await?),
        Scenario::Shop { codes, users, quantity, concurrency, runs } => {
            scenarios::shop::shop(&args, codes, users, quantity, concurrency, runs).await?
        }
        Scenario::Live { subscribers, users, quantity, concurrency, runs } => {
            scenarios::live::live(&args, subscribers, users, quantity, concurrency, runs).await?
        }
        Scenario::Cluster { nodes, servers, users, quantity, concurrency, runs } => {
            scenarios::cluster::cluster(&args, &nodes, servers, users, quantity, concurrency, runs).await?
        }
        Scenario::Day { users, coupons, concurrency, visits, nodes, nats } => {
            let size = scenarios::day::DaySize { users, coupons, concurrency, visits, nats };
            scenarios::day::day(&args, &size, &nodes).await?
        }
        Scenario::AudienceImport { ids, unknown_percent } => {
            scenarios::audience_import::audience_import(&setup(&args).await?, ids, unknown_percent).await?
        }
        Scenario::All => scenarios::suite::all(&args, &mut reports).await?,
        Scenario::Smoke => scenarios::suite::smoke(&args, &mut reports).await?,
    }
    for r in &reports {
        r.print();
    }
    Ok(())
}
