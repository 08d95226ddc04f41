//! 요청별 DataLoader: 같은 요청 안의 쿠폰·발급 내역 조회를 키별로 모아 한 번의 질의로.
use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, Loader};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::domain::{Coupon, Event, User, UserCoupon, Viewer};
use crate::error::AppError;
use crate::{repo, service};

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

/// 사용자 (`_entities`의 `User`)와, 선택되었으면 그 발급 내역 목록(`unusedOnly` 값).
/// 발급 내역을 같은 로더가 함께 읽는다: 사용자를 받은 뒤 필드마다 따로 키를 넣으면 DataLoader의 1 ms 대기가 대표값을
/// 다 돌기 전에 끝나 배치가 쪼개진다 (`User::list`와 같은 이유).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UserKey {
    pub id: Uuid,
    pub coupons: Option<bool>,
}

pub struct UserLoader(DatabaseConnection);

impl Loader<UserKey> for UserLoader {
    type Value = (User, Option<Vec<(UserCoupon, Coupon)>>);
    type Error = AppError;

    async fn load(&self, keys: &[UserKey]) -> Result<HashMap<UserKey, Self::Value>, AppError> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.id).collect();
        let users: HashMap<Uuid, User> = repo::user::find_many(&self.0, &ids).await?.into_iter().map(|u| (u.id, u)).collect();
        // 발급 내역은 `UserCouponsLoader`의 읽기 그대로 (플래그별로 질의 한 번).
        let wanted: Vec<UserCouponsKey> = keys
            .iter()
            .filter(|k| users.contains_key(&k.id))
            .filter_map(|k| k.coupons.map(|unused_only| UserCouponsKey { user_id: k.id, unused_only }))
            .collect();
        let lists = if wanted.is_empty() { HashMap::new() } else { UserCouponsLoader(self.0.clone()).load(&wanted).await? };
        Ok(keys
            .iter()
            .filter_map(|k| {
                let user = users.get(&k.id)?.clone();
                let list =
                    k.coupons.map(|unused_only| lists.get(&UserCouponsKey { user_id: k.id, unused_only }).cloned().unwrap_or_default());
                Some((*k, (user, list)))
            })
            .collect())
    }
}

/// 발급 내역 하나와 그 쿠폰 (`_entities`의 `UserCoupon`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UserCouponKey(pub Uuid);

pub struct UserCouponLoader(DatabaseConnection);

impl Loader<UserCouponKey> for UserCouponLoader {
    type Value = (UserCoupon, Coupon);
    type Error = AppError;

    async fn load(&self, keys: &[UserCouponKey]) -> Result<HashMap<UserCouponKey, Self::Value>, AppError> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        Ok(repo::user_coupon::find_many_with_coupons(&self.0, &ids).await?.into_iter().map(|row| (UserCouponKey(row.0.id), row)).collect())
    }
}

/// 주문에 붙은 발급 내역 (`Order.coupons`): 요청의 뷰어가 볼 수 있는 것만.
pub struct OrderCouponsLoader {
    db: DatabaseConnection,
    viewer: Option<Viewer>,
}

impl Loader<String> for OrderCouponsLoader {
    type Value = Vec<(UserCoupon, Coupon)>;
    type Error = AppError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, AppError> {
        service::order_sets::attached_to_orders(&self.db, self.viewer.as_ref(), keys).await
    }
}

/// 한 요청이 쓰는 로더 묶음.
pub struct Loaders {
    pub coupons: DataLoader<CouponLoader>,
    pub user_coupons: DataLoader<UserCouponsLoader>,
    pub history: DataLoader<HistoryLoader>,
    pub users: DataLoader<UserLoader>,
    pub user_coupon: DataLoader<UserCouponLoader>,
    pub orders: DataLoader<OrderCouponsLoader>,
}

impl Loaders {
    /// 요청의 뷰어는 주문의 쿠폰을 거를 때 쓴다 (키에 넣지 않아도 한 요청의 뷰어는 하나다).
    pub fn new(db: DatabaseConnection, viewer: Option<Viewer>) -> Self {
        Self {
            coupons: DataLoader::new(CouponLoader(db.clone()), tokio::spawn),
            user_coupons: DataLoader::new(UserCouponsLoader(db.clone()), tokio::spawn),
            history: DataLoader::new(HistoryLoader(db.clone()), tokio::spawn),
            users: DataLoader::new(UserLoader(db.clone()), tokio::spawn),
            user_coupon: DataLoader::new(UserCouponLoader(db.clone()), tokio::spawn),
            orders: DataLoader::new(OrderCouponsLoader { db, viewer }, tokio::spawn),
        }
    }
}
