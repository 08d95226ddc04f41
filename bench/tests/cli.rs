//! 벤치 하네스의 명령줄: CI가 쓰는 시나리오가 도움말에 있고, 모르는 시나리오는 서버를 띄우기 전에 거절한다.
//! (이 통합 테스트가 있어서 `cargo test --workspace`가 `couponql-bench` 실행 파일도 테스트와 같은 기능 조합으로
//! 만든다: CI는 그것을 그대로 쓰고 따로 다시 빌드하지 않는다.)
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_couponql-bench");

#[test]
fn help_lists_the_scenarios_ci_runs() {
    let out = Command::new(BIN).arg("--help").output().expect("couponql-bench --help");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for scenario in ["smoke", "day", "flash-sale", "checkout", "audience-import", "best"] {
        assert!(text.contains(scenario), "{scenario} missing from --help:\n{text}");
    }
}

#[test]
fn an_unknown_scenario_is_refused_before_anything_starts() {
    let out = Command::new(BIN).arg("no-such-scenario").output().expect("couponql-bench no-such-scenario");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-scenario"), "{out:?}");
}
