//! 쿠폰 코드 (CONTRACT 8절): 대량 생성, 지정 코드 추가, 코드로 발급(추측 방어 포함), 목록과 스트리밍 CSV.
use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use futures_util::Stream;
use sea_orm::{DatabaseConnection, DatabaseTransaction, TransactionTrait};
use uuid::Uuid;

use super::issuance::Issuer;
use super::page::{self, Page};
use super::retry::retrying;
use crate::domain::code::{self, CouponCode};
use crate::domain::idempotency::IdemKey;
use crate::domain::{self, EventType, NewEvent, UserCoupon, Viewer};
use crate::error::{AppError, AppResult};
use crate::repo;
use crate::repo::code::NewCodes;

/// 다중 행 INSERT 하나의 행 수: 6열 × 1,000 = 바인딩 6,000개로 세 백엔드의 한도(≥ 32,766) 안쪽.
const INSERT_BATCH: usize = 1_000;
/// 한 배치가 기존 코드와 겹쳤을 때 새 코드로 다시 해 보는 횟수. 60비트에서 겹침은 드물어서, 이만큼 겹치면 난수 원천을 의심한다.
const MAX_COLLISION_RETRIES: usize = 5;
/// CSV 한 페이지의 행 수: 메모리에는 이만큼만 있다.
const CSV_PAGE: u64 = 1_000;
/// `generateCouponCodes`의 답에 싣는 코드 수.
const SAMPLE: usize = 10;

/// `generateCouponCodes`의 답.
#[derive(Debug)]
pub struct CodeBatch {
    pub coupon_id: Uuid,
    pub count: usize,
    pub sample: Vec<String>,
}

/// 일회용 코드 `count`개를 한 트랜잭션에서 만든다. 쿠폰 행은 커밋 직전에만 잠근다 (몇 초 동안 그 쿠폰의 발급을 막지 않으려고): 코드는 발급 때 쿠폰 행 잠금 아래에서 쓰인다.
pub async fn generate(
    db: &DatabaseConnection,
    viewer: Option<&Viewer>,
    coupon_id: Uuid,
    count: i32,
    prefix: Option<&str>,
) -> AppResult<CodeBatch> {
    Viewer::require_admin(viewer)?;
    let count = code::parse_count(count)?;
    let prefix = code::parse_prefix(prefix)?;
    let coupon = super::coupons::existing(db, coupon_id).await?;
    coupon.check_changeable()?;
    let now = domain::now();
    let written = async {
        let txn = db.begin().await.map_err(repo::db_error)?;
        let sample = insert_generated(&txn, coupon_id, count, &prefix, now).await?;
        // 이벤트 직전에야 쿠폰 행을 잠근다: 그 쿠폰의 다른 변경과 한 줄로 서서 원장에서 커밋 순서를 지키되(CONTRACT 9절),
        // 코드를 넣는 몇 초 동안 발급을 막지 않는다. 그 사이 보관된 쿠폰이면 되돌린다.
        repo::coupon::find_for_update(&txn, coupon_id).await?.ok_or(AppError::CouponNotFound)?.check_changeable()?;
        repo::ledger::append(&txn, &[NewEvent::for_coupon(EventType::CodesGenerated, coupon_id, now)]).await?;
        txn.commit().await.map_err(repo::db_error)?;
        Ok(CodeBatch { coupon_id, count, sample })
    };
    crate::telemetry::transaction("generateCouponCodes", written).await
}

/// 일회용 코드 `count`개를 주어진 트랜잭션에 넣고 앞의 몇 개를 돌려준다 (생성과 데모 데이터가 같이 쓴다).
/// 배치마다 세이브포인트: 기존 코드와 겹친 배치만 되돌리고 새 코드로 다시 넣는다.
pub(crate) async fn insert_generated(
    txn: &DatabaseTransaction,
    coupon_id: Uuid,
    count: usize,
    prefix: &str,
    now: DateTime<Utc>,
) -> AppResult<Vec<String>> {
    let new = NewCodes { coupon_id, max_redemptions: Some(1), generated: true, created_at: now };
    let mut sample = Vec::with_capacity(SAMPLE);
    let mut left = count;
    while left > 0 {
        let n = left.min(INSERT_BATCH);
        let mut tries = 0;
        let codes = loop {
            let codes = code::random_codes(prefix, n)?;
            let savepoint = txn.begin().await.map_err(repo::db_error)?;
            if repo::code::insert_many(&savepoint, &codes, new).await? {
                savepoint.commit().await.map_err(repo::db_error)?;
                break codes;
            }
            savepoint.rollback().await.map_err(repo::db_error)?;
            tries += 1;
            if tries > MAX_COLLISION_RETRIES {
                return Err(AppError::Internal(format!("코드 배치가 {tries}번 연달아 기존 코드와 겹침")));
            }
            crate::metrics::code_collision();
        };
        sample.extend(codes.into_iter().take(SAMPLE - sample.len()));
        left -= n;
    }
    Ok(sample)
}

/// `addCouponCode`: 지정 코드 (예: WELCOME2026). 이미 있는 코드는 그 필드의 입력 오류.
pub async fn add(
    db: &DatabaseConnection,
    viewer: Option<&Viewer>,
    coupon_id: Uuid,
    raw: &str,
    max_redemptions: Option<i32>,
) -> AppResult<CouponCode> {
    Viewer::require_admin(viewer)?;
    let code = code::parse_chosen(raw)?;
    let max_redemptions = code::parse_max_redemptions(max_redemptions)?;
    let coupon = super::coupons::existing(db, coupon_id).await?;
    coupon.check_changeable()?;
    let now = domain::now();
    let new = NewCodes { coupon_id, max_redemptions, generated: false, created_at: now };
    if !repo::code::insert_many(db, std::slice::from_ref(&code), new).await? {
        return Err(AppError::bad_input("code", "code: 이미 있는 코드입니다"));
    }
    Ok(CouponCode { code, coupon_id, max_redemptions, redemptions: 0, generated: false, created_at: now })
}

/// `redeemCouponCode`: 추측 한도(사용자 10, 주소 100) → 사용자 존재 → 코드 존재(모양이 틀려도 CODE_NOT_FOUND) → 코드의 남은 자리 → 발급 검사.
/// 코드의 사용 수와 발급은 쿠폰 행 잠금 아래 한 트랜잭션에서 함께 커밋된다 (합치기 배치도 같다).
///
/// 셈: 모르는 코드와 없는 사용자의 시도만 기록하고, 기록은 주체(주소·사용자)의 가드 행 잠금 아래에서 한도를 다시 본 뒤에 한다
/// (`count_failure`): 동시에 온 실패가 하나씩 세어져 한도를 넘는 답(CODE_NOT_FOUND, USER_NOT_FOUND)이 나가지 않는다.
/// 맞는 코드는 아무것도 쓰지 않는다: 같은 주소의 선착순 1,000명이 한 행에 줄 서지 않게, 막혔는지는 첫 읽기에 얹어 본다.
/// 맞는 코드가 셈을 지우지도 않는다 (공개 코드를 사이사이 대서 셈을 끊던 우회).
pub async fn redeem(
    db: &DatabaseConnection,
    issuer: &Issuer,
    viewer: Option<&Viewer>,
    addr: IpAddr,
    raw: &str,
    key: Option<IdemKey>,
) -> AppResult<UserCoupon> {
    let user_id = Viewer::require(viewer)?.user_id;
    let addr = addr.to_string();
    let since = window_start(domain::now());
    // 사용자 존재와 사용자·주소의 최근 실패 수를 한 번에, 코드와 그 쿠폰을 한 번에: `issueCoupon`(쿠폰, 사용자)과 같은 두 번의 읽기.
    let Some((user_failures, addr_failures)) = repo::code::guesses(db, user_id, &addr, since).await? else {
        // 없는 사용자: 코드를 보기 전에 답하고(어떤 코드가 있는지 드러내지 않게), 시도는 주소에 센다.
        return Err(count_failure(db, user_id, false, &addr, AppError::UserNotFound).await);
    };
    if code::is_blocked(user_failures, addr_failures) {
        // 막힌 시도는 세지 않는다: 남은 시간만 읽어서 알린다.
        let now = domain::now();
        let (user, address) = repo::code::windows(db, user_id, &addr, window_start(now)).await?;
        code::admit(Some(&user), &address, now)?;
        // 읽는 사이에 창에서 빠져 풀렸다: 막지 않고 그대로 진행한다.
    }
    let normalized = code::normalize(raw);
    let found = if code::has_code_shape(&normalized) { repo::code::find_with_coupon(db, &normalized).await? } else { None };
    let Some((found, coupon)) = found else {
        return Err(count_failure(db, user_id, true, &addr, AppError::CodeNotFound).await);
    };
    issuer.redeem(user_id, true, found, &coupon, key).await
}

fn window_start(now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::seconds(code::FAILURE_WINDOW_SECS)
}

/// 실패 하나를 센다: 가드 행 잠금 → 창 안의 수 → 한도 안이면 기록하고 `answer`, 아니면 기록 없이 TOO_MANY_ATTEMPTS.
/// `user_known`이 거짓이면(없는 사용자) 주소만 잠그고 주소 한도만 본다. 돌려주는 것은 언제나 클라이언트에게 줄 오류다.
async fn count_failure(db: &DatabaseConnection, user_id: Uuid, user_known: bool, addr: &str, answer: AppError) -> AppError {
    let counted = retrying("guess", || async {
        let txn = db.begin().await.map_err(repo::db_error)?;
        // 시각은 잠금을 얻은 뒤에: 줄에서 기다린 시간만큼 창이 밀린다.
        repo::code::lock_guards(&txn, user_known.then_some(user_id), addr, domain::now()).await?;
        let now = domain::now();
        let (user, address) = repo::code::windows(&txn, user_id, addr, window_start(now)).await?;
        if let Err(refused) = code::admit(user_known.then_some(&user), &address, now) {
            txn.rollback().await.map_err(repo::db_error)?;
            return Err(refused);
        }
        repo::code::record_failure(&txn, user_id, addr, now).await?;
        txn.commit().await.map_err(repo::db_error)
    })
    .await;
    counted.err().unwrap_or(answer)
}

/// 추측 방어의 창(1분) 밖으로 나간 실패 기록과 가드 행을 지운다.
pub async fn purge_failures(db: &DatabaseConnection, now: DateTime<Utc>) -> AppResult<u64> {
    repo::code::purge_failures(db, window_start(now)).await
}

/// `couponCodes`: 최신순. `redeemed`: 쓰인 것만/안 쓰인 것만.
pub async fn list(
    db: &DatabaseConnection,
    viewer: Option<&Viewer>,
    coupon_id: Uuid,
    redeemed: Option<bool>,
    first: Option<i32>,
    after: Option<&str>,
) -> AppResult<Page<CouponCode>> {
    Viewer::require_admin(viewer)?;
    let n = page::fetch_size(first, super::coupons::DEFAULT_PAGE)?;
    let after = after.map(page::decode_code_keyset).transpose()?;
    super::coupons::existing(db, coupon_id).await?;
    Ok(Page::cut(repo::code::page(db, coupon_id, redeemed, after.as_ref(), n).await?, n))
}

/// 코드 목록의 커서.
pub fn cursor(c: &CouponCode) -> String {
    page::encode_cursor(c.created_at, &c.code)
}

pub const CSV_HEADER: &str = "code,max_redemptions,redemptions,created_at\n";

/// CSV 내보내기: 권한과 쿠폰을 확인한 뒤, 데이터베이스에서 페이지씩 읽어 줄을 흘려보내는 스트림.
/// 전체 파일을 메모리에 두지 않는다: 한 번에 한 페이지(1,000행)만 있고, 받는 쪽이 느리면 다음 페이지를 읽지 않는다.
pub async fn export(
    db: DatabaseConnection,
    viewer: Option<&Viewer>,
    coupon_id: Uuid,
) -> AppResult<impl Stream<Item = AppResult<String>> + Send + 'static> {
    Viewer::require_admin(viewer)?;
    super::coupons::existing(&db, coupon_id).await?;
    enum Cursor {
        Header,
        After(Option<String>),
        Done,
    }
    Ok(futures_util::stream::unfold(Cursor::Header, move |state| {
        let db = db.clone();
        async move {
            let after = match state {
                Cursor::Header => return Some((Ok(CSV_HEADER.to_owned()), Cursor::After(None))),
                Cursor::After(after) => after,
                Cursor::Done => return None,
            };
            match repo::code::export_page(&db, coupon_id, after.as_deref(), CSV_PAGE).await {
                Ok(rows) if rows.is_empty() => None,
                Ok(rows) => {
                    let next = match rows.last() {
                        Some(last) if rows.len() == CSV_PAGE as usize => Cursor::After(Some(last.code.clone())),
                        _ => Cursor::Done,
                    };
                    let mut chunk = String::with_capacity(rows.len() * 64);
                    for r in &rows {
                        csv_line(&mut chunk, r);
                    }
                    Some((Ok(chunk), next))
                }
                // 이미 200과 앞부분을 보냈으므로 본문을 끊어서 알린다 (불완전한 파일을 완전한 것처럼 끝내지 않는다).
                Err(e) => Some((Err(e), Cursor::Done)),
            }
        }
    }))
}

/// CSV 한 줄. 코드는 A-Z 0-9뿐이라 따옴표가 필요 없다.
fn csv_line(out: &mut String, c: &CouponCode) {
    use std::fmt::Write;
    let max = c.max_redemptions.map(|m| m.to_string()).unwrap_or_default();
    let at = c.created_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let _ = writeln!(out, "{},{},{},{}", c.code, max, c.redemptions, at);
}
