//! 실시간 재고 (CONTRACT 9절): 구독자가 보는 쿠폰의 재고를 프로세스마다 하나의 폴러가 읽어 쿠폰별 watch 채널로 알린다.
//!
//! 왜 폴링인가: 여러 프로세스가 한 데이터베이스를 쓰므로 다른 프로세스의 발급도 보여야 하고, 세 백엔드 모두에서
//! 추가 서비스 없이 돌아야 한다. 지켜보는 쿠폰이 있을 때만, 그 쿠폰들 전부를 질의 하나로 200 ms마다 읽는다
//! (구독자 수와 무관하게 프로세스당 초당 5문장). 이 프로세스의 발급은 커밋 직후 `poke`로 폴러를 바로 깨운다.
//!
//! 발행 일정: 웨이브가 열리는 것은 요청 없이 시계로 일어나므로, 폴러가 지켜보는 쿠폰들의 다음 웨이브 시각을 알고 있다가
//! 그 시각에 맞춰 깨어 읽는다 (CONTRACT 11절: 1초 안에).
//!
//! 느린 구독자: watch 채널은 마지막 값 하나만 들고 있어서, 늦게 읽는 쪽은 중간 값을 건너뛰고 최신 상태를 받는다
//! (변경마다 쌓이는 큐가 없다). 구독 하나는 초당 10번까지만 보내고, 마지막 상태는 언제나 보낸다.
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::Stream;
use sea_orm::DatabaseConnection;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use uuid::Uuid;

use crate::domain::{self, Coupon, CouponStatus};
use crate::error::AppResult;
use crate::repo;

/// 폴러가 지켜보는 쿠폰들을 읽는 주기.
pub const POLL_EVERY: Duration = Duration::from_millis(200);
/// 구독 하나가 보내는 메시지 사이의 최소 간격 (초당 10개).
pub const MIN_GAP: Duration = Duration::from_millis(100);

/// 구독자가 받는 재고.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stock {
    pub coupon_id: Uuid,
    pub issued_quantity: i32,
    pub total_quantity: Option<i32>,
    pub status: CouponStatus,
    /// `now`까지 풀린 수량 (웨이브).
    pub released_quantity: Option<i32>,
    pub next_release_at: Option<DateTime<Utc>>,
}

impl Stock {
    pub fn of(c: &Coupon, now: DateTime<Utc>) -> Self {
        Stock {
            coupon_id: c.id,
            issued_quantity: c.issued_quantity,
            total_quantity: c.total_quantity,
            status: c.status,
            released_quantity: c.released_quantity(now),
            next_release_at: c.next_release_at(now),
        }
    }

    pub fn remaining_quantity(&self) -> Option<i32> {
        self.total_quantity.map(|t| (t - self.issued_quantity).max(0))
    }

    pub fn sold_out(&self) -> bool {
        self.remaining_quantity() == Some(0)
    }
}

/// 프로세스에 하나: 지켜보는 쿠폰마다 watch 채널과 구독자 수.
pub struct StockHub {
    db: DatabaseConnection,
    watched: Mutex<HashMap<Uuid, Watched>>,
    wake: Notify,
    /// 지켜보는 쿠폰들 가운데 가장 이른 다음 웨이브 (마지막 읽기 기준): 폴러가 그 시각에 깨어난다.
    next_wave: Mutex<Option<DateTime<Utc>>>,
}

struct Watched {
    tx: watch::Sender<Stock>,
    watchers: usize,
}

impl StockHub {
    /// 허브와 그 폴러를 띄운다.
    pub fn start(db: DatabaseConnection) -> Arc<Self> {
        let hub = Arc::new(StockHub { db, watched: Mutex::new(HashMap::new()), wake: Notify::new(), next_wave: Mutex::new(None) });
        tokio::spawn(poll(hub.clone()));
        hub
    }

    fn watched(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Watched>> {
        // 잠금을 쥔 채 패닉하는 코드가 없으므로 오염된 잠금도 내용은 온전하다.
        self.watched.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// 이 프로세스가 쿠폰을 바꿨다: 폴러를 기다리지 않고 바로 읽게 한다 (지켜보는 쿠폰일 때만 의미가 있다).
    pub fn poke(&self, coupon_id: Uuid) {
        if self.watched().contains_key(&coupon_id) {
            self.wake.notify_one();
        }
    }

    /// 쿠폰 하나를 지켜본다. 없는 쿠폰은 COUPON_NOT_FOUND. 돌려받은 것이 드롭되면 지켜보기를 그만둔다.
    pub async fn watch(self: &Arc<Self>, coupon_id: Uuid) -> AppResult<StockWatch> {
        // 이미 지켜보는 쿠폰이면 읽지 않고 그 채널에 붙는다: 쿠폰은 지워지지 않고, 채널의 값은 길어야 한 주기 전의 것이다
        // (구독자 수천 명이 한꺼번에 와도 데이터베이스 읽기는 쿠폰마다 한 번).
        if let Some(w) = self.watched().get_mut(&coupon_id) {
            w.watchers += 1;
            let rx = w.tx.subscribe();
            crate::metrics::subscriptions(1.0);
            return Ok(StockWatch { hub: self.clone(), coupon_id, rx });
        }
        let coupon = super::coupons::existing(&self.db, coupon_id).await?;
        let now = Stock::of(&coupon, domain::now());
        let rx = match self.watched().entry(coupon_id) {
            Entry::Occupied(mut e) => {
                let w = e.get_mut();
                w.watchers += 1;
                // 방금 읽은 값이 더 새로울 수 있다 (발급 수량은 줄지 않는다).
                w.tx.send_if_modified(|cur| newer(cur, &now));
                w.tx.subscribe()
            }
            Entry::Vacant(e) => {
                let (tx, rx) = watch::channel(now);
                e.insert(Watched { tx, watchers: 1 });
                rx
            }
        };
        crate::metrics::subscriptions(1.0);
        self.wake.notify_one();
        Ok(StockWatch { hub: self.clone(), coupon_id, rx })
    }

    /// 지켜보는 쿠폰들을 한 번에 읽어 바뀐 것만 알린다.
    async fn refresh(&self) -> AppResult<()> {
        let ids: Vec<Uuid> = self.watched().keys().copied().collect();
        if ids.is_empty() {
            return Ok(());
        }
        let coupons = repo::coupon::find_many(&self.db, &ids).await?;
        let now = domain::now();
        *self.next_wave.lock().unwrap_or_else(|p| p.into_inner()) = coupons.iter().filter_map(|c| c.next_release_at(now)).min();
        let watched = self.watched();
        for c in &coupons {
            if let Some(w) = watched.get(&c.id) {
                let fresh = Stock::of(c, now);
                w.tx.send_if_modified(|cur| newer(cur, &fresh));
            }
        }
        Ok(())
    }

    /// 다음 읽기까지 기다릴 시간: 보통은 한 주기, 그 전에 웨이브가 열리면 그 시각까지.
    fn until_next_read(&self) -> Duration {
        let wave = *self.next_wave.lock().unwrap_or_else(|p| p.into_inner());
        let regular = POLL_EVERY - MIN_GAP;
        match wave.map(|at| (at - Utc::now()).to_std().unwrap_or(Duration::ZERO)) {
            Some(d) if d < regular => d,
            _ => regular,
        }
    }
}

/// `cur`를 `fresh`로 바꿔야 하면 바꾸고 true.
fn newer(cur: &mut Stock, fresh: &Stock) -> bool {
    if cur == fresh {
        return false;
    }
    *cur = fresh.clone();
    true
}

/// 지켜보는 쿠폰이 있는 동안 `POLL_EVERY`마다(또는 `poke`로 곧바로) 읽는다. 없으면 깨울 때까지 잔다.
async fn poll(hub: Arc<StockHub>) {
    loop {
        if hub.watched().is_empty() {
            hub.wake.notified().await;
            continue;
        }
        if let Err(e) = hub.refresh().await {
            tracing::warn!(error = ?e, "재고 읽기 실패: 다음 주기에 다시 읽는다");
        }
        // 읽기 사이는 적어도 `MIN_GAP`: 발급 배치가 초당 수십 번 커밋돼도 읽기(와 구독자 전부를 깨우기)는 초당 10번까지다.
        // 그사이의 `poke`는 Notify의 허가로 남아 있다가 곧바로 다음 읽기를 부른다.
        tokio::time::sleep(MIN_GAP).await;
        tokio::select! {
            () = tokio::time::sleep(hub.until_next_read()) => {}
            () = hub.wake.notified() => {}
        }
    }
}

/// 쿠폰 하나를 지켜보는 구독 하나. 드롭되면 구독자 수를 줄이고, 마지막이면 그 쿠폰을 폴러에서 뺀다.
pub struct StockWatch {
    hub: Arc<StockHub>,
    coupon_id: Uuid,
    rx: watch::Receiver<Stock>,
}

impl Drop for StockWatch {
    fn drop(&mut self) {
        crate::metrics::subscriptions(-1.0);
        let mut watched = self.hub.watched();
        if let Entry::Occupied(mut e) = watched.entry(self.coupon_id) {
            e.get_mut().watchers -= 1;
            if e.get().watchers == 0 {
                e.remove();
            }
        }
    }
}

impl StockWatch {
    /// 지금의 재고, 그다음 바뀔 때마다 최신 재고. 메시지 사이는 `MIN_GAP` 이상이고, 기다리는 동안 쌓인 변경은
    /// 가장 마지막 것 하나로 합쳐진다 (마지막 상태는 건너뛰지 않는다).
    pub fn into_stream(self) -> impl Stream<Item = Stock> + Send + 'static {
        futures_util::stream::unfold((self, None::<Instant>), |(mut w, last)| async move {
            if let Some(at) = last {
                w.rx.changed().await.ok()?;
                tokio::time::sleep_until(at + MIN_GAP).await;
            }
            let stock = w.rx.borrow_and_update().clone();
            Some((stock, (w, Some(Instant::now()))))
        })
    }
}
