//! 데모 데이터(CONTRACT 6절)를 `seed/demo.json`에서 읽어 멱등하게 넣는다.
//! 쿠폰은 도메인 검증(`NewCoupon::parse`)을 그대로 거치고, 발급 수량은 발급 내역 수로 맞춰 불변식을 지킨다.
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, TransactionTrait};
use serde::Deserialize;
use uuid::Uuid;

use crate::domain::code;
use crate::domain::coupon::parse_datetime;
use crate::domain::{DiscountType, NewCoupon, NewCouponInput, User, UserCoupon};
use crate::error::{AppError, AppResult};
use crate::repo::code::NewCodes;
use crate::{repo, service};

const DEMO_JSON: &str = include_str!("../seed/demo.json");

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Demo {
    users: Vec<DemoUser>,
    coupons: Vec<DemoCoupon>,
    user_coupons: Vec<DemoUserCoupon>,
    chosen_codes: Vec<DemoChosenCode>,
    generated_codes: Vec<DemoGeneratedCodes>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DemoChosenCode {
    coupon_id: Uuid,
    code: String,
    max_redemptions: Option<i32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DemoGeneratedCodes {
    coupon_id: Uuid,
    count: i32,
}

#[derive(Deserialize)]
struct DemoUser {
    id: Uuid,
    email: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DemoCoupon {
    id: Uuid,
    name: String,
    discount_type: String,
    discount_value: String,
    min_purchase_amount: Option<String>,
    max_discount_amount: Option<String>,
    total_quantity: Option<i32>,
    valid_from: String,
    valid_until: String,
    created_at: DateTime<Utc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DemoUserCoupon {
    id: Uuid,
    user_id: Uuid,
    coupon_id: Uuid,
    used_at: Option<DateTime<Utc>>,
    issued_at: DateTime<Utc>,
}

/// 무엇을 새로 넣었는지 (두 번째 실행은 모두 0).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SeedReport {
    pub users: usize,
    pub coupons: usize,
    pub user_coupons: usize,
    /// 새로 넣은 코드 수 (지정 코드 + 생성 코드).
    pub codes: usize,
}

/// 데모 데이터를 넣는다. 이미 있는 행은 건드리지 않는다. 전부 한 트랜잭션.
pub async fn seed(db: &DatabaseConnection) -> AppResult<SeedReport> {
    let demo: Demo = serde_json::from_str(DEMO_JSON).map_err(|e| AppError::Internal(format!("seed/demo.json: {e}")))?;
    let txn = db.begin().await.map_err(repo::db_error)?;
    let mut report = SeedReport::default();
    let epoch = parse_datetime("createdAt", "2025-01-01T00:00:00Z")?;

    for u in &demo.users {
        if repo::user::find_by_id(&txn, u.id).await?.is_none() {
            let user = User { id: u.id, email: u.email.clone(), name: u.name.clone(), created_at: epoch, updated_at: epoch };
            repo::user::insert(&txn, &user).await?;
            report.users += 1;
        }
    }
    for c in &demo.coupons {
        if repo::coupon::find_by_id(&txn, c.id).await?.is_some() {
            continue;
        }
        let discount_type = DiscountType::parse(&c.discount_type)
            .ok_or_else(|| AppError::Internal(format!("seed: 알 수 없는 discountType {:?}", c.discount_type)))?;
        let new = NewCoupon::parse(NewCouponInput {
            name: c.name.clone(),
            discount_type,
            discount_value: c.discount_value.clone(),
            min_purchase_amount: c.min_purchase_amount.clone(),
            max_discount_amount: c.max_discount_amount.clone(),
            total_quantity: c.total_quantity,
            valid_from: c.valid_from.clone(),
            valid_until: c.valid_until.clone(),
            per_user_limit: Some(1),
            restricted: Some(false),
            waves: None,
            budget: None,
            stacking: Some(crate::domain::Stacking::Exclusive),
        })?;
        let issued = demo.user_coupons.iter().filter(|uc| uc.coupon_id == c.id).count() as i32;
        repo::coupon::insert_with_issued(&txn, c.id, &new, issued, c.created_at).await?;
        report.coupons += 1;
    }
    for uc in &demo.user_coupons {
        if repo::user_coupon::find_by_id(&txn, uc.id).await?.is_none() {
            let row = UserCoupon {
                is_used: uc.used_at.is_some(),
                used_at: uc.used_at,
                ..UserCoupon::issued(uc.id, uc.user_id, uc.coupon_id, 1, uc.issued_at)
            };
            repo::user_coupon::insert(&txn, &row).await?;
            report.user_coupons += 1;
        }
    }
    // 코드는 쿠폰별로 "아직 없을 때만": 생성 코드는 무작위라 두 번째 실행이 20개를 더 만들지 않게 개수로 판단한다.
    for c in &demo.chosen_codes {
        let code = code::parse_chosen(&c.code)?;
        if repo::code::find(&txn, &code).await?.is_none() {
            let new = NewCodes { coupon_id: c.coupon_id, max_redemptions: c.max_redemptions, generated: false, created_at: epoch };
            repo::code::insert_many(&txn, &[code], new).await?;
            report.codes += 1;
        }
    }
    for g in &demo.generated_codes {
        if repo::code::counts(&txn, g.coupon_id).await?.0 == 0 {
            let count = code::parse_count(g.count)?;
            service::codes::insert_generated(&txn, g.coupon_id, count, "", epoch).await?;
            report.codes += count;
        }
    }
    txn.commit().await.map_err(repo::db_error)?;
    Ok(report)
}
