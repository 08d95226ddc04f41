//! 결과 출력: 시나리오마다 표 한 줄과 JSON 한 줄, CPU 시간(서버/데이터베이스/벤치)과 서버의 최대 RSS.
use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::json;
use testkit::procfs;

use crate::env::Env;

/// 한 시나리오의 결과.
pub(crate) struct Report {
    pub(crate) scenario: String,
    pub(crate) requests: u64,
    pub(crate) wall: Duration,
    pub(crate) hist: Histogram<u64>,
    pub(crate) codes: BTreeMap<String, u64>,
    pub(crate) server_peak_rss_kb: Option<u64>,
    pub(crate) cpu: CpuSplit,
    /// 발급 시나리오: 데이터베이스에서 센 발급 수
    pub(crate) issued: Option<i32>,
}

#[derive(Default, Clone, Copy)]
pub(crate) struct CpuSplit {
    pub(crate) server: f64,
    pub(crate) database: f64,
    pub(crate) bench: f64,
}

impl Report {
    pub(crate) fn print(&self) {
        let ms = |v: u64| v as f64 / 1000.0;
        let rps = self.requests as f64 / self.wall.as_secs_f64();
        println!(
            "{:<22} {:>7} req {:>9.0} req/s  p50 {:>7.2} ms  p95 {:>7.2} ms  p99 {:>7.2} ms  max {:>8.2} ms  rss {:>6} MB  cpu s/d/b {:.1}/{:.1}/{:.1} s  {:?}",
            self.scenario,
            self.requests,
            rps,
            ms(self.hist.value_at_quantile(0.50)),
            ms(self.hist.value_at_quantile(0.95)),
            ms(self.hist.value_at_quantile(0.99)),
            ms(self.hist.max()),
            self.server_peak_rss_kb.map(|k| format!("{:.1}", k as f64 / 1024.0)).unwrap_or_else(|| "-".into()),
            self.cpu.server,
            self.cpu.database,
            self.cpu.bench,
            self.codes,
        );
        let line = json!({
            "scenario": self.scenario,
            "requests": self.requests,
            "wall_ms": self.wall.as_secs_f64() * 1000.0,
            "rps": rps,
            "p50_ms": ms(self.hist.value_at_quantile(0.50)),
            "p95_ms": ms(self.hist.value_at_quantile(0.95)),
            "p99_ms": ms(self.hist.value_at_quantile(0.99)),
            "max_ms": ms(self.hist.max()),
            "codes": self.codes,
            "issued": self.issued,
            "server_peak_rss_mb": self.server_peak_rss_kb.map(|k| k as f64 / 1024.0),
            "cpu_seconds": { "server": self.cpu.server, "database": self.cpu.database, "bench": self.cpu.bench },
        });
        println!("{line}");
    }
}

pub(crate) fn cpu_now(env: &Env) -> CpuSplit {
    cpu_of(&[&env.server])
}

/// 지금까지의 CPU 시간: 서버가 여럿이면(클러스터) 서버 몫은 그 합.
pub(crate) fn cpu_of(servers: &[&testkit::Server]) -> CpuSplit {
    CpuSplit {
        server: servers.iter().map(|s| procfs::cpu_seconds(&s.pid().to_string())).sum(),
        database: procfs::database_cpu_seconds(),
        bench: procfs::cpu_seconds("self"),
    }
}

pub(crate) fn cpu_delta(a: CpuSplit, b: CpuSplit) -> CpuSplit {
    CpuSplit { server: b.server - a.server, database: b.database - a.database, bench: b.bench - a.bench }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn report(
    env: &Env,
    name: &str,
    requests: u64,
    wall: Duration,
    hist: Histogram<u64>,
    codes: BTreeMap<String, u64>,
    cpu: CpuSplit,
    issued: Option<i32>,
) -> Report {
    Report { scenario: name.into(), requests, wall, hist, codes, server_peak_rss_kb: peak_rss_kb(&env.server), cpu, issued }
}

/// 서버의 최대 RSS (kB): /proc/<pid>/status의 VmHWM.
pub(crate) fn peak_rss_kb(server: &testkit::Server) -> Option<u64> {
    procfs::status_kb(server.pid(), "VmHWM")
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}
