//! 클라이언트 주소 (CONTRACT 2절, 8절): TCP 상대, 또는 믿는 프록시(`TRUSTED_PROXIES`) 뒤에서는
//! `X-Forwarded-For`의 첫 주소. 주소별 한도(코드 추측, 웹소켓 수)가 모두 이 하나를 쓴다.
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;

/// `X-Forwarded-For`를 믿는 프록시 주소들.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Arc<Vec<IpAddr>>);

impl TrustedProxies {
    /// 쉼표로 나눈 IPv4·IPv6 주소 목록. 주소가 아닌 항목이 있으면 그 항목을 알리는 오류 (시작이 멈춘다).
    pub fn parse(raw: Option<&str>) -> Result<Self, String> {
        let mut list = Vec::new();
        for part in raw.unwrap_or_default().split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let ip: IpAddr = part.parse().map_err(|_| format!("TRUSTED_PROXIES: {part:?} is not an IP address"))?;
            list.push(canonical(ip));
        }
        Ok(Self(Arc::new(list)))
    }

    fn trusts(&self, peer: IpAddr) -> bool {
        self.0.contains(&canonical(peer))
    }

    /// 요청의 클라이언트 주소. 믿는 프록시가 쓸 만한 `X-Forwarded-For`를 보내지 않으면 프록시 자신.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return canonical(peer);
        }
        headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|first| first.trim().parse::<IpAddr>().ok())
            .map(canonical)
            .unwrap_or_else(|| canonical(peer))
    }
}

/// IPv4에 대응한 IPv6 주소(::ffff:a.b.c.d)는 IPv4로: 같은 클라이언트가 두 주소로 세어지지 않게.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// 요청 하나의 클라이언트 주소 (요청 확장에 든다).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub IpAddr);

/// 모든 요청에 `ClientAddr`를 붙이는 미들웨어. 연결 정보가 없으면(라우터를 직접 부르는 경우) 0.0.0.0.
pub async fn attach_client_addr(State(trusted): State<TrustedProxies>, mut request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let client = trusted.client(peer, request.headers());
    request.extensions_mut().insert(ClientAddr(client));
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_str(v).expect("header"));
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.1".parse().expect("ip");
        let other: IpAddr = "10.0.0.2".parse().expect("ip");
        let trusted = TrustedProxies::parse(Some(" 10.0.0.1 , ::1")).expect("list");
        assert_eq!(trusted.client(proxy, &xff("203.0.113.7, 10.0.0.9")), "203.0.113.7".parse::<IpAddr>().expect("ip"));
        assert_eq!(trusted.client(other, &xff("203.0.113.7")), other, "믿지 않는 상대의 헤더는 무시");
        assert_eq!(trusted.client(proxy, &xff("garbage")), proxy, "쓸 수 없는 헤더: 프록시 자신");
        assert_eq!(trusted.client(proxy, &HeaderMap::new()), proxy);
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("ip");
        assert_eq!(trusted.client(mapped, &xff("203.0.113.8")), "203.0.113.8".parse::<IpAddr>().expect("ip"));
        assert!(TrustedProxies::parse(Some("10.0.0.1,nope")).is_err());
        assert!(TrustedProxies::parse(None).expect("empty").0.is_empty());
    }
}
