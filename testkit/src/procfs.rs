//! 리눅스 `/proc` 읽기: 메모리(VmRSS·VmHWM), CPU 시간, 최대 RSS 다시 재기.

/// `/proc/<pid>/status`의 `key` 값(kB). 예: `status_kb(pid, "VmHWM")` = 최대 RSS.
pub fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))?.split_whitespace().next()?.parse().ok()
}

/// 최대 RSS(VmHWM)를 지금의 RSS로 되돌린다 (`clear_refs`에 5): 그 뒤의 최대치만 재려고.
pub fn reset_peak_rss(pid: u32) -> std::io::Result<()> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
}

/// 프로세스가 쓴 CPU 시간(초): `/proc/<pid>/stat`의 utime+stime. `pid`는 숫자 또는 `self`. 못 읽으면 0.
pub fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // 둘째 칸(comm)에 공백이 있을 수 있어 마지막 ')' 뒤부터 센다.
    let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return 0.0;
    };
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // USER_HZ는 리눅스에서 100
    (tick(11) + tick(12)) / 100.0
}

/// 데이터베이스 서버 프로세스들(mariadbd, mysqld, postgres)의 CPU 시간 합.
pub fn database_cpu_seconds() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().to_string();
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            matches!(comm.trim(), "mariadbd" | "mysqld" | "postgres").then(|| cpu_seconds(&pid))
        })
        .sum()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_its_own_process() {
        let me = std::process::id();
        let rss = super::status_kb(me, "VmRSS").expect("VmRSS");
        assert!(rss > 0 && super::status_kb(me, "VmHWM").expect("VmHWM") >= rss);
        assert_eq!(super::status_kb(me, "VmNope"), None);
        assert!(super::cpu_seconds("self") >= 0.0);
    }
}
