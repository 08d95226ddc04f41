//! `couponql` 실행 파일로 띄운 서버 하나. 드롭되면 죽이고 기다린다: `?`로 빠져나가는 길에서도 서버가 남지 않는다.
use std::ffi::OsStr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// 실행 파일 `bin`을 이 데이터베이스와 서명 키로 부르는 명령 (로그는 경고만, 표준 출력은 버린다).
/// 하위 명령(`serve`, `migrate`)은 부르는 쪽이 붙인다; `Server::start`는 `serve`를 붙인다.
pub fn command(bin: impl AsRef<OsStr>, db_url: &str, jwt_secret: &str) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env("DATABASE_URL", db_url).env("JWT_SECRET", jwt_secret).env("RUST_LOG", "warn").stdout(Stdio::null());
    cmd
}

pub struct Server {
    child: Child,
    base: String,
}

impl Server {
    /// `cmd serve`를 빈 포트에 띄우고 `/ready`가 200일 때까지(최대 30초) 기다린다.
    /// 먼저 끝나 버리거나 준비되지 않으면 죽이고 오류.
    pub async fn start(mut cmd: Command) -> Result<Server> {
        let port = crate::free_port()?;
        cmd.arg("serve").env("BIND_ADDR", format!("127.0.0.1:{port}"));
        let child = cmd.spawn().with_context(|| format!("cannot start {}", cmd.get_program().to_string_lossy()))?;
        // 여기서부터 지킴이가 프로세스를 쥔다: 아래의 어떤 오류에도 드롭이 죽인다.
        let mut server = Server { child, base: format!("http://127.0.0.1:{port}") };
        let http = reqwest::Client::new();
        for _ in 0..300 {
            if http.get(format!("{}/ready", server.base)).send().await.is_ok_and(|r| r.status().is_success()) {
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                bail!("{} exited before it was ready: {status}", cmd.get_program().to_string_lossy());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("the server {} did not become ready in 30 s", server.base)
    }

    /// `http://127.0.0.1:<port>`
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// 끝났으면 그 상태 (SIGTERM을 보낸 뒤 기다릴 때).
    pub fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    /// SIGKILL을 보내고 끝날 때까지 기다린다 (죽는 서버를 흉내 낼 때).
    pub fn kill(&mut self) -> std::io::Result<ExitStatus> {
        self.child.kill()?;
        self.child.wait()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
