//! 요청별 DataLoader: 같은 요청 안의 쿠폰·발급 내역 조회를 키별로 모아 한 번의 질의로.
use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, Loader};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::domain::{Coupon, Event, UserCoupon};
use crate::error::AppError;
use crate::repo;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CouponKey(pub Uuid);

/// 사용자별 발급 내역 (미사용만 / 전체).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UserCouponsKey {
    pub user_id: Uuid,
    pub unused_only: bool,
}

pub struct CouponLoader(DatabaseConnection);

impl Loader<CouponKey> for CouponLoader {
    type Value = Coupon;
    type Error = AppError;

    async fn load(&self, keys: &[CouponKey]) -> Result<HashMap<CouponKey, Coupon>, AppError> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let found = repo::coupon::find_many(&self.0, &ids).await?;
        Ok(found.into_iter().map(|c| (CouponKey(c.id), c)).collect())
    }
}

pub struct UserCouponsLoader(DatabaseConnection);

impl Loader<UserCouponsKey> for UserCouponsLoader {
    type Value = Vec<(UserCoupon, Coupon)>;
    type Error = AppError;

    async fn load(&self, keys: &[UserCouponsKey]) -> Result<HashMap<UserCouponsKey, Self::Value>, AppError> {
        let mut out: HashMap<UserCouponsKey, Self::Value> = keys.iter().map(|k| (*k, Vec::new())).collect();
        // 플래그별로 한 번씩: 보통은 한 종류뿐이라 질의 한 번.
        for unused_only in [false, true] {
            let users: Vec<Uuid> = keys.iter().filter(|k| k.unused_only == unused_only).map(|k| k.user_id).collect();
            if users.is_empty() {
                continue;
            }
            // 저장소가 최신순으로, 쿠폰까지 JOIN해서 주므로 사용자별로 나눠 담아도 순서가 유지되고 쿠폰 질의가 따로 없다.
            for (uc, c) in repo::user_coupon::list_by_users(&self.0, &users, unused_only).await? {
                out.entry(UserCouponsKey { user_id: uc.user_id, unused_only }).or_default().push((uc, c));
            }
        }
        Ok(out)
    }
}

/// 발급 내역별 이력 (원장).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HistoryKey(pub Uuid);

pub struct HistoryLoader(DatabaseConnection);

impl Loader<HistoryKey> for HistoryLoader {
    type Value = Vec<Event>;
    type Error = AppError;

    async fn load(&self, keys: &[HistoryKey]) -> Result<HashMap<HistoryKey, Vec<Event>>, AppError> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        Ok(repo::ledger::history(&self.0, &ids).await?.into_iter().map(|(id, events)| (HistoryKey(id), events)).collect())
    }
}

/// 한 요청이 쓰는 로더 묶음.
pub struct Loaders {
    pub coupons: DataLoader<CouponLoader>,
    pub user_coupons: DataLoader<UserCouponsLoader>,
    pub history: DataLoader<HistoryLoader>,
}

impl Loaders {
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            coupons: DataLoader::new(CouponLoader(db.clone()), tokio::spawn),
            user_coupons: DataLoader::new(UserCouponsLoader(db.clone()), tokio::spawn),
            history: DataLoader::new(HistoryLoader(db), tokio::spawn),
        }
    }
}
