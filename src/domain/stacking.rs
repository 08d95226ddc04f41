//! 한 주문의 여러 쿠폰 (CONTRACT 12절): 허용되는 묶음, 한도를 넘는 할인을 누가 내놓는지, 가장 큰 할인의 묶음. I/O 없음.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::coupon::Stacking;
use super::user::UserCoupon;
use crate::error::{AppError, AppResult};

/// STACKABLE 쿠폰을 한 주문에 몇 장까지.
pub const MAX_STACK: usize = 5;
/// `userCouponIds`에 담을 수 있는 id 수.
pub const MAX_SET_IDS: usize = 100;

/// `userCouponIds`의 모양: 1..100개, 같은 id 없이.
pub fn check_ids(ids: &[Uuid]) -> AppResult<()> {
    let bad = |m: &str| Err(AppError::bad_input("userCouponIds", format!("userCouponIds: {m}")));
    if ids.is_empty() {
        return bad("하나 이상이어야 합니다");
    }
    if ids.len() > MAX_SET_IDS {
        return bad("100개까지입니다");
    }
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    if ids.iter().any(|id| !seen.insert(*id)) {
        return bad("같은 id가 두 번 있습니다");
    }
    Ok(())
}

/// 묶음의 한 쿠폰.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    pub user_coupon_id: Uuid,
    pub coupon_id: Uuid,
    pub stacking: Stacking,
}

/// 허용되는 묶음: EXCLUSIVE 하나만, 또는 서로 다른 쿠폰의 STACKABLE 1..5장. 아니면 STACKING_NOT_ALLOWED가 어긋난 것을
/// 지목한다: 더 큰 묶음 안의 EXCLUSIVE, 같은 쿠폰이 둘 이상인 발급 내역, 5장을 넘으면 전부 (이 순서로 먼저 걸리는 것).
pub fn check_set(members: &[Member]) -> AppResult<()> {
    let refuse = |ids: Vec<Uuid>| Err(AppError::StackingNotAllowed { user_coupon_ids: ids });
    if members.len() > 1 {
        let exclusive: Vec<Uuid> = members.iter().filter(|m| m.stacking == Stacking::Exclusive).map(|m| m.user_coupon_id).collect();
        if !exclusive.is_empty() {
            return refuse(exclusive);
        }
    }
    let mut per_coupon: HashMap<Uuid, usize> = HashMap::new();
    for m in members {
        *per_coupon.entry(m.coupon_id).or_default() += 1;
    }
    let repeated: Vec<Uuid> = members.iter().filter(|m| per_coupon[&m.coupon_id] > 1).map(|m| m.user_coupon_id).collect();
    if !repeated.is_empty() {
        return refuse(repeated);
    }
    if members.len() > MAX_STACK {
        return refuse(members.iter().map(|m| m.user_coupon_id).collect());
    }
    Ok(())
}

/// 각 쿠폰의 몫: 할인(각자 주문 금액 전체에 대한 5절의 할인)의 합이 주문 금액을 넘으면, 넘는 만큼을 마지막 쿠폰부터
/// 앞으로 가며 덜어 낸다. 몫의 합 = min(할인의 합, 주문 금액).
pub fn shares(discounts: &[Decimal], order_amount: Decimal) -> Vec<Decimal> {
    let total: Decimal = discounts.iter().sum();
    let mut excess = (total - order_amount).max(Decimal::ZERO);
    let mut out = discounts.to_vec();
    for share in out.iter_mut().rev() {
        if excess.is_zero() {
            break;
        }
        let take = excess.min(*share);
        *share -= take;
        excess -= take;
    }
    out
}

/// 주문의 쿠폰 순서: 묶음의 순서, 그다음 따로 붙은 것(7절)이 붙은 순서로.
pub fn order_key(uc: &UserCoupon) -> (bool, i32, Option<DateTime<Utc>>, Uuid) {
    (uc.set_position.is_none(), uc.set_position.unwrap_or(0), uc.held_at.or(uc.used_at), uc.id)
}

/// 주문에 기록된 금액(가장 나중에 붙은 것의 금액)과 기록된 할인의 합(그 금액까지). 붙은 것이 없으면 0과 0.
pub fn recorded_totals<'a>(ucs: impl IntoIterator<Item = &'a UserCoupon> + Clone) -> (Decimal, Decimal) {
    let latest = ucs.clone().into_iter().filter(|uc| uc.order_amount.is_some()).max_by_key(|uc| (uc.held_at.or(uc.used_at), uc.id));
    let amount = latest.and_then(|uc| uc.order_amount).unwrap_or(Decimal::ZERO);
    let discount: Decimal = ucs.into_iter().filter_map(|uc| uc.discount_amount).sum();
    (amount, discount.min(amount))
}

/// `bestCoupons`의 후보: 지금 이 주문에 쓸 수 있는 발급 내역과 그 할인.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub user_coupon_id: Uuid,
    pub coupon_id: Uuid,
    pub stacking: Stacking,
    pub discount: Decimal,
    pub valid_until: DateTime<Utc>,
}

/// 가장 큰 할인의 허용되는 묶음과 그 할인 (CONTRACT 12절): 할인(주문 금액까지)이 가장 크고, 같으면 적은 장수, 그다음
/// 가장 이른 validUntil이 가장 이른 것, 그다음 정렬한 id가 앞서는 것. 답은 할인이 큰 것부터, 같으면 id 순.
///
/// 모든 부분집합을 보지 않는다 (50장에서 5장이면 2백만 가지). 최대 할인 M과 그 최소 장수 k는 할인 순 상위 합으로 바로
/// 나오고, 그다음 두 기준은 "이 쿠폰을 넣고도 k장으로 M에 닿는가"를 상위 합으로 확인하며 하나씩 정한다.
pub fn best_set(candidates: Vec<Candidate>, order_amount: Decimal) -> (Vec<Candidate>, Decimal) {
    // 쿠폰마다 하나: 할인과 validUntil은 쿠폰의 것이라, 같은 쿠폰의 여러 장 가운데서는 id가 앞서는 것이 이긴다.
    let mut per_coupon: HashMap<Uuid, Candidate> = HashMap::new();
    for c in candidates.into_iter().filter(|c| c.discount > Decimal::ZERO) {
        match per_coupon.get(&c.coupon_id) {
            Some(kept) if kept.user_coupon_id <= c.user_coupon_id => {}
            _ => {
                per_coupon.insert(c.coupon_id, c);
            }
        }
    }
    let mut all: Vec<Candidate> = per_coupon.into_values().collect();
    if all.is_empty() || order_amount <= Decimal::ZERO {
        return (Vec::new(), Decimal::ZERO);
    }
    all.sort_by(|a, b| b.discount.cmp(&a.discount).then(a.user_coupon_id.cmp(&b.user_coupon_id)));
    let stackable: Vec<Candidate> = all.iter().filter(|c| c.stacking == Stacking::Stackable).cloned().collect();
    let capped = |d: Decimal| d.min(order_amount);
    let single = capped(all[0].discount);
    let top = |k: usize| -> Decimal { stackable.iter().take(k).map(|c| c.discount).sum() };
    let most = capped(top(MAX_STACK.min(stackable.len()))).max(single);
    // 최소 장수: 한 장으로 되면 (어느 쪽이든) 한 장, 아니면 STACKABLE 상위 k장이 닿는 가장 작은 k.
    let (k, pool) = if single >= most {
        (1, all)
    } else {
        let k = (2..=MAX_STACK.min(stackable.len())).find(|&k| capped(top(k)) >= most).unwrap_or(stackable.len());
        (k, stackable)
    };
    let chosen = pick(&pool, k, most);
    let total = capped(chosen.iter().map(|c| c.discount).sum());
    let mut chosen = chosen;
    chosen.sort_by(|a, b| b.discount.cmp(&a.discount).then(a.user_coupon_id.cmp(&b.user_coupon_id)));
    (chosen, total)
}

/// `pool`(할인 큰 순)에서 합이 `need` 이상인 `k`장 가운데: 가장 이른 validUntil이 가장 이른 것, 그다음 정렬한 id가 앞서는 것.
fn pick(pool: &[Candidate], k: usize, need: Decimal) -> Vec<Candidate> {
    // `allowed` 안에서 할인 상위 `r`장의 합 (모자라면 None).
    let top_sum = |allowed: &dyn Fn(&Candidate) -> bool, r: usize| -> Option<Decimal> {
        let picked: Vec<Decimal> = pool.iter().filter(|c| allowed(c)).take(r).map(|c| c.discount).collect();
        (picked.len() == r).then(|| picked.iter().sum())
    };
    // 가장 이른 validUntil: 그 쿠폰을 넣고 k장으로 닿는 것 가운데 가장 이른 것.
    let mut by_time: Vec<&Candidate> = pool.iter().collect();
    by_time.sort_by(|a, b| a.valid_until.cmp(&b.valid_until).then(a.user_coupon_id.cmp(&b.user_coupon_id)));
    let Some(soonest) = by_time
        .iter()
        .find(|c| top_sum(&|o| o.user_coupon_id != c.user_coupon_id, k - 1).is_some_and(|rest| c.discount + rest >= need))
        .map(|c| c.valid_until)
    else {
        return Vec::new();
    };
    // id 순으로 한 자리씩: 뒤를 (더 큰 id로) 채워 닿을 수 있는 가장 작은 id를 고른다. 묶음에는 `soonest`인 쿠폰이 있어야 한다.
    let mut by_id: Vec<&Candidate> = pool.iter().collect();
    by_id.sort_by_key(|c| c.user_coupon_id);
    let mut chosen: Vec<Candidate> = Vec::with_capacity(k);
    let mut sum = Decimal::ZERO;
    for pos in 0..k {
        let r = k - pos - 1;
        let last = chosen.last().map(|c| c.user_coupon_id);
        let next = by_id.iter().filter(|c| last.is_none_or(|l| c.user_coupon_id > l)).find(|c| {
            let sum = sum + c.discount;
            let has_soonest = c.valid_until == soonest || chosen.iter().any(|o| o.valid_until == soonest);
            let after = |o: &Candidate| o.user_coupon_id > c.user_coupon_id;
            if has_soonest {
                return top_sum(&after, r).is_some_and(|rest| sum + rest >= need);
            }
            r > 0
                && pool.iter().filter(|v| after(v) && v.valid_until == soonest).any(|v| {
                    let others = |o: &Candidate| after(o) && o.user_coupon_id != v.user_coupon_id;
                    top_sum(&others, r - 1).is_some_and(|rest| sum + v.discount + rest >= need)
                })
        });
        match next {
            Some(c) => {
                sum += c.discount;
                chosen.push((*c).clone());
            }
            None => return Vec::new(),
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).expect("숫자")
    }

    fn member(n: u128, coupon: u128, stacking: Stacking) -> Member {
        Member { user_coupon_id: Uuid::from_u128(n), coupon_id: Uuid::from_u128(1000 + coupon), stacking }
    }

    fn refused(members: &[Member]) -> Vec<u128> {
        match check_set(members) {
            Err(AppError::StackingNotAllowed { user_coupon_ids }) => user_coupon_ids.iter().map(|id| id.as_u128()).collect(),
            other => panic!("거절이어야 한다: {other:?}"),
        }
    }

    #[test]
    fn ids_are_one_to_a_hundred_without_repeats() {
        let ids: Vec<Uuid> = (1..=101).map(Uuid::from_u128).collect();
        assert!(check_ids(&ids[..100]).is_ok());
        for bad in [&ids[..0], &ids[..], &[ids[0], ids[1], ids[0]][..]] {
            assert!(matches!(check_ids(bad), Err(AppError::BadUserInput { ref field, .. }) if field == "userCouponIds"));
        }
    }

    #[test]
    fn allowed_sets_and_what_a_refusal_names() {
        use Stacking::*;
        assert!(check_set(&[member(1, 1, Exclusive)]).is_ok());
        assert!(check_set(&[member(1, 1, Stackable)]).is_ok());
        assert!(check_set(&(1..=5).map(|n| member(n, n, Stackable)).collect::<Vec<_>>()).is_ok());
        // EXCLUSIVE가 더 큰 묶음에 있으면 그것(들)만.
        assert_eq!(refused(&[member(1, 1, Stackable), member(2, 2, Exclusive), member(3, 3, Exclusive)]), vec![2, 3]);
        // 같은 쿠폰의 두 장은 그 둘.
        assert_eq!(refused(&[member(1, 1, Stackable), member(2, 2, Stackable), member(3, 1, Stackable)]), vec![1, 3]);
        // 여섯 장이면 전부.
        assert_eq!(refused(&(1..=6).map(|n| member(n, n, Stackable)).collect::<Vec<_>>()), vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn the_cap_takes_from_the_last_first() {
        let d = |v: &[&str]| v.iter().map(|s| dec(s)).collect::<Vec<_>>();
        assert_eq!(shares(&d(&["3000", "2000"]), dec("10000")), d(&["3000", "2000"]));
        assert_eq!(shares(&d(&["3000", "2000", "1500"]), dec("4000.50")), d(&["3000", "1000.50", "0"]));
        assert_eq!(shares(&d(&["0.01", "0.02"]), dec("0.02")), d(&["0.01", "0.01"]));
        assert_eq!(shares(&d(&["5000"]), dec("0")), d(&["0"]));
        let s = shares(&d(&["1234.56", "999.99", "0.45"]), dec("2000"));
        assert_eq!(s.iter().sum::<Decimal>(), dec("2000"));
        assert_eq!(s, d(&["1234.56", "765.44", "0"]));
    }

    fn cand(n: u128, stacking: Stacking, discount: &str, until_day: u32) -> Candidate {
        Candidate {
            user_coupon_id: Uuid::from_u128(n),
            coupon_id: Uuid::from_u128(1000 + n),
            stacking,
            discount: dec(discount),
            valid_until: Utc.with_ymd_and_hms(2030, 1, until_day, 0, 0, 0).single().expect("시각"),
        }
    }

    fn ids(set: &(Vec<Candidate>, Decimal)) -> Vec<u128> {
        set.0.iter().map(|c| c.user_coupon_id.as_u128()).collect()
    }

    #[test]
    fn the_best_set_has_the_largest_capped_discount_then_fewer_coupons() {
        use Stacking::*;
        // 상위 다섯 STACKABLE(5000)이 EXCLUSIVE 하나(4000)를 이긴다.
        let c = vec![
            cand(1, Exclusive, "4000", 1),
            cand(2, Stackable, "1000", 1),
            cand(3, Stackable, "1000", 1),
            cand(4, Stackable, "1000", 1),
            cand(5, Stackable, "1000", 1),
            cand(6, Stackable, "1000", 1),
            cand(7, Stackable, "500", 1),
        ];
        let best = best_set(c.clone(), dec("100000"));
        assert_eq!((ids(&best), best.1), (vec![2, 3, 4, 5, 6], dec("5000")));
        // 주문 금액이 4000이면 한 장으로 닿는 EXCLUSIVE가 적은 장수로 이긴다.
        let best = best_set(c.clone(), dec("4000"));
        assert_eq!((ids(&best), best.1), (vec![1], dec("4000")));
        // 2500이면 한 장(4000 → 2500)으로 닿는다.
        assert_eq!(ids(&best_set(c, dec("2500"))), vec![1]);
        // 한 장으로는 모자라고 두 장이면 닿는다: 닿는 두 장 가운데 validUntil이 가장 이른 쿠폰이 든 것.
        let c = vec![
            cand(1, Stackable, "3000", 20),
            cand(2, Stackable, "2000", 20),
            cand(3, Stackable, "1000", 5),
            cand(4, Stackable, "1000", 25),
        ];
        let best = best_set(c, dec("4000"));
        assert_eq!((ids(&best), best.1), (vec![1, 3], dec("4000")));
    }

    #[test]
    fn ties_go_to_the_soonest_valid_until_then_the_first_sorted_ids() {
        use Stacking::*;
        let c = vec![cand(9, Exclusive, "1000", 3), cand(4, Exclusive, "1000", 3), cand(1, Exclusive, "1000", 9)];
        assert_eq!(ids(&best_set(c, dec("50000"))), vec![4]);
        // 같은 쿠폰의 여러 장: id가 앞서는 것.
        let mut twin = cand(7, Exclusive, "1000", 1);
        twin.coupon_id = Uuid::from_u128(1008);
        let best = best_set(vec![cand(8, Exclusive, "1000", 1), twin], dec("50000"));
        assert_eq!(ids(&best), vec![7]);
        // 50장이 모두 같으면 id가 가장 작은 다섯 장 (모든 부분집합을 돌지 않는다).
        let c: Vec<Candidate> = (1..=50).rev().map(|n| cand(n, Stackable, "100", 1)).collect();
        assert_eq!(ids(&best_set(c, dec("50000"))), vec![1, 2, 3, 4, 5]);
        // 0원 주문, 쓸 것이 없음.
        assert_eq!(best_set(vec![cand(1, Stackable, "0", 1)], dec("100")).1, Decimal::ZERO);
        assert!(best_set(Vec::new(), dec("100")).0.is_empty());
    }

    /// 작은 경우는 모든 부분집합을 세어 본 답과 같다.
    #[test]
    fn the_shortcut_agrees_with_counting_every_subset() {
        use Stacking::*;
        let mut seed = 7u64;
        let mut next = move |m: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % m
        };
        for _ in 0..300 {
            let n = 1 + next(9) as usize;
            let c: Vec<Candidate> = (0..n)
                .map(|i| {
                    let stacking = if next(3) == 0 { Exclusive } else { Stackable };
                    cand(i as u128 + 1, stacking, &(100 * (1 + next(5))).to_string(), 1 + next(3) as u32)
                })
                .collect();
            let amount = Decimal::from(100 * (1 + next(20)));
            let got = best_set(c.clone(), amount);
            let want = brute(&c, amount);
            assert_eq!(ids(&got), want, "{c:?} {amount}");
        }
    }

    fn brute(c: &[Candidate], amount: Decimal) -> Vec<u128> {
        let mut best: Option<(Decimal, usize, DateTime<Utc>, Vec<u128>)> = None;
        for mask in 1u32..(1 << c.len()) {
            let set: Vec<&Candidate> = (0..c.len()).filter(|i| mask & (1 << i) != 0).map(|i| &c[i]).collect();
            let members: Vec<Member> =
                set.iter().map(|x| Member { user_coupon_id: x.user_coupon_id, coupon_id: x.coupon_id, stacking: x.stacking }).collect();
            if check_set(&members).is_err() {
                continue;
            }
            let value = set.iter().map(|x| x.discount).sum::<Decimal>().min(amount);
            let soonest = set.iter().map(|x| x.valid_until).min().expect("비지 않음");
            let mut sorted: Vec<u128> = set.iter().map(|x| x.user_coupon_id.as_u128()).collect();
            sorted.sort();
            let better = match &best {
                None => true,
                Some((v, k, s, ids)) => {
                    (value, std::cmp::Reverse(set.len()), std::cmp::Reverse(soonest), std::cmp::Reverse(sorted.clone()))
                        > (*v, std::cmp::Reverse(*k), std::cmp::Reverse(*s), std::cmp::Reverse(ids.clone()))
                }
            };
            if better {
                best = Some((value, set.len(), soonest, sorted));
            }
        }
        let Some((_, _, _, ids)) = best else { return Vec::new() };
        // 답의 순서: 할인 큰 것부터, 같으면 id.
        let mut out: Vec<&Candidate> = c.iter().filter(|x| ids.contains(&x.user_coupon_id.as_u128())).collect();
        out.sort_by(|a, b| b.discount.cmp(&a.discount).then(a.user_coupon_id.cmp(&b.user_coupon_id)));
        out.iter().map(|x| x.user_coupon_id.as_u128()).collect()
    }
}
