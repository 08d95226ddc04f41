//! 시나리오 묶음: `all`(모두 기본값으로)과 `smoke`(모두 작고 빠르게, CI: 하네스가 돌고 불변식이 지켜짐을 보인다).
//! 두 묶음은 크기만 다르므로 순서와 호출은 여기 한 곳에 둔다.
use anyhow::Result;

use super::{
    checkout::checkout,
    day::{DaySize, day},
    flash_sale::flash_sale,
    hot_row::hot_row,
    live::live,
    read::read,
    scale::scale,
    shop::shop,
    single::single,
};
use crate::Args;
use crate::env::setup;
use crate::report::Report;

/// 묶음 하나의 크기 (각 시나리오 함수의 인자 순서 그대로). `None`인 시나리오는 그 묶음에서 돌리지 않는다.
struct Sizes {
    /// users, quantity, concurrency
    flash_sale: (usize, i32, usize),
    /// users, concurrency
    hot_row: (usize, usize),
    /// requests
    single: usize,
    /// seconds, concurrency
    read: (u64, usize),
    /// clients, quantity (동시에 clients명)
    burst: (usize, i32),
    /// users, concurrency
    checkout: (usize, usize),
    /// rows, runs, seconds
    scale: Option<(usize, usize, u64)>,
    /// codes, users, quantity, concurrency (한 번)
    shop: (i32, usize, i32, usize),
    /// subscribers, users, quantity, concurrency (한 번)
    live: Option<(usize, usize, i32, usize)>,
    /// users, coupons, concurrency (서버 하나, NATS 없이)
    day: Option<(usize, usize, usize)>,
}

const ALL: Sizes = Sizes {
    flash_sale: (1000, 100, 200),
    hot_row: (5000, 100),
    single: 500,
    read: (10, 50),
    burst: (5000, 100),
    checkout: (1000, 100),
    scale: None,
    shop: (100_000, 1000, 100, 200),
    live: None,
    day: Some((3000, 100, 100)),
};

const SMOKE: Sizes = Sizes {
    flash_sale: (300, 30, 50),
    hot_row: (200, 20),
    single: 20,
    read: (1, 5),
    burst: (300, 10),
    checkout: (100, 20),
    scale: Some((2000, 1, 1)),
    shop: (2000, 100, 10, 20),
    live: Some((200, 100, 10, 20)),
    // CI는 day를 따로, --nats와 함께 돌린다 (.ci/run).
    day: None,
};

pub(crate) async fn all(args: &Args, reports: &mut Vec<Report>) -> Result<()> {
    run(args, &ALL, reports).await
}

pub(crate) async fn smoke(args: &Args, reports: &mut Vec<Report>) -> Result<()> {
    run(args, &SMOKE, reports).await
}

async fn run(args: &Args, s: &Sizes, reports: &mut Vec<Report>) -> Result<()> {
    let (users, quantity, concurrency) = s.flash_sale;
    reports.push(flash_sale(args, &setup(args).await?, "flash-sale", users, quantity, concurrency).await?);
    reports.push(hot_row(args, &setup(args).await?, s.hot_row.0, s.hot_row.1).await?);
    reports.push(single(&setup(args).await?, s.single).await?);
    reports.extend(read(&setup(args).await?, s.read.0, s.read.1).await?);
    let (clients, quantity) = s.burst;
    reports.push(flash_sale(args, &setup(args).await?, "burst", clients, quantity, clients).await?);
    reports.extend(checkout(&setup(args).await?, s.checkout.0, s.checkout.1, false).await?);
    if let Some((rows, runs, seconds)) = s.scale {
        scale(args, &setup(args).await?, rows, runs, seconds).await?;
    }
    let (codes, users, quantity, concurrency) = s.shop;
    shop(args, codes, users, quantity, concurrency, 1).await?;
    if let Some((subscribers, users, quantity, concurrency)) = s.live {
        live(args, subscribers, users, quantity, concurrency, 1).await?;
    }
    if let Some((users, coupons, concurrency)) = s.day {
        day(args, &DaySize { users, coupons, concurrency, visits: None, nats: false }, &[]).await?;
    }
    Ok(())
}
