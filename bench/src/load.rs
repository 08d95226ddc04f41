//! 부하 걸기: 요청 하나, 목록을 동시에 N개씩, 정해진 시간 동안 반복.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::Args;
use crate::env::Env;

/// 발급 요청의 문서.
pub(crate) const ISSUE: &str = "mutation($c: ID!) { issueCoupon(couponId: $c) { id } }";

/// `--trusted-documents`: 서버가 받는 목록에 넣을 문서들 (발급과 읽기의 것).
pub(crate) const TRUSTED: [&str; 3] = [ISSUE, crate::scenarios::read::ME, crate::scenarios::read::COUPON];

/// `--trusted-documents`이면 문서를 글 대신 `documentId`로 보낸다.
pub(crate) static BY_DOCUMENT_ID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// 신뢰 문서 목록 (client preset의 `persisted-documents.json` 모양)을 쓰고 그 경로를 돌려준다.
pub(crate) fn write_manifest() -> Result<std::path::PathBuf> {
    let map: serde_json::Map<String, Value> = TRUSTED.iter().map(|d| (format!("sha256:{}", document_id(d)), Value::from(*d))).collect();
    let path = std::env::temp_dir().join("couponql-bench-trusted-documents.json");
    std::fs::write(&path, Value::Object(map).to_string())?;
    Ok(path)
}

fn document_id(text: &str) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

/// 요청 하나: (걸린 시간 µs, 결과 코드). 본문에 `"_key"`가 있으면 그 값을 Idempotency-Key로 보낸다(본문에서는 뺀다).
pub(crate) async fn send(client: &reqwest::Client, url: &str, token: &str, body: &Value) -> (u64, String) {
    let started = Instant::now();
    let mut body = body.clone();
    let key = body.as_object_mut().and_then(|o| o.remove("_key")).and_then(|k| k.as_str().map(str::to_owned));
    if BY_DOCUMENT_ID.load(std::sync::atomic::Ordering::Relaxed)
        && let Some(o) = body.as_object_mut()
        && let Some(Value::String(text)) = o.remove("query")
    {
        o.insert("documentId".into(), Value::from(document_id(&text)));
    }
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

pub(crate) fn new_hist() -> Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 3_600_000_000, 3)?)
}

/// 요청 목록을 동시에 `concurrency`개까지 보낸다.
pub(crate) async fn drive(
    env: &Env,
    requests: Vec<(String, Value)>,
    concurrency: usize,
) -> Result<(Duration, Histogram<u64>, BTreeMap<String, u64>)> {
    drive_over(&env.client, std::slice::from_ref(&env.url), requests, concurrency).await
}

/// `drive`를 여러 서버에: 요청 i는 `urls[i % urls.len()]`로 (돌아가며).
pub(crate) async fn drive_over(
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
pub(crate) async fn drive_for(
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

pub(crate) fn issue_body(coupon: Uuid) -> Value {
    json!({ "query": ISSUE, "variables": { "c": coupon.to_string() } })
}

/// `--idempotency-keys`면 요청마다 다른 키를 단다.
pub(crate) fn keyed(args: &Args, mut body: Value) -> Value {
    if args.idempotency_keys
        && let Some(o) = body.as_object_mut()
    {
        o.insert("_key".into(), Value::String(Uuid::new_v4().to_string()));
    }
    body
}
