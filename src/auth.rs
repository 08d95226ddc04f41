//! HS256 JWT: 발급(`couponql token`)과 검증. 검증 실패는 모두 UNAUTHENTICATED 하나로.
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{Role, Viewer};
use crate::error::{AppError, AppResult};

/// 만료 검사에 허용하는 시계 오차 (계약: 최대 5초).
const LEEWAY_SECS: u64 = 5;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: String,
    exp: u64,
}

/// 서명 키. 검증 설정은 한 번만 만든다.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl JwtKeys {
    pub fn new(secret: &str) -> Self {
        // HS256 하나만 허용: alg=none이나 다른 알고리즘으로 서명된 토큰은 거부된다.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        // 계약은 sub·role·exp만 정한다: aud가 있다고 해서 거부하지 않는다.
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self { encoding: EncodingKey::from_secret(secret.as_bytes()), decoding: DecodingKey::from_secret(secret.as_bytes()), validation }
    }

    /// Bearer 토큰을 검증해 뷰어로. sub가 UUID가 아니거나 role이 정확하지 않아도 UNAUTHENTICATED.
    pub fn verify(&self, token: &str) -> AppResult<Viewer> {
        self.verify_until(token).map(|(viewer, _)| viewer)
    }

    /// `verify`에 그 신원이 유효한 마지막 시각(유닉스 초, `exp` + 허용 오차)까지: 오래 사는 웹소켓이
    /// 그 시각에 연결을 닫는다 (CONTRACT 3절).
    pub fn verify_until(&self, token: &str) -> AppResult<(Viewer, u64)> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation).map_err(|_| AppError::Unauthenticated)?;
        let user_id = Uuid::parse_str(&data.claims.sub).map_err(|_| AppError::Unauthenticated)?;
        let role = Role::parse(&data.claims.role).ok_or(AppError::Unauthenticated)?;
        Ok((Viewer { user_id, role }, data.claims.exp.saturating_add(LEEWAY_SECS)))
    }

    /// 로컬 개발용 토큰 발급.
    pub fn sign(&self, viewer: Viewer, ttl: std::time::Duration) -> AppResult<String> {
        let exp = (chrono::Utc::now().timestamp().max(0) as u64).saturating_add(ttl.as_secs());
        let claims = Claims { sub: viewer.user_id.to_string(), role: viewer.role.as_str().to_owned(), exp };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(|e| AppError::Internal(format!("토큰 서명 실패: {e}")))
    }
}

/// `Bearer <JWT>` 값에서 토큰을 꺼낸다 (HTTP `Authorization`과 웹소켓 `connection_init`이 같이 쓴다).
pub fn bearer_token(value: &str) -> Option<&str> {
    value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use std::time::Duration;

    const USER: Uuid = Uuid::from_u128(0x1111);

    fn keys() -> JwtKeys {
        JwtKeys::new("test-secret")
    }

    fn raw_token(header: &str, claims: &str, secret: &str) -> String {
        use jsonwebtoken::crypto::sign;
        let msg = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
        let sig = sign(msg.as_bytes(), &EncodingKey::from_secret(secret.as_bytes()), Algorithm::HS256).expect("서명");
        format!("{msg}.{sig}")
    }

    #[test]
    fn a_signed_token_round_trips() {
        let t = keys().sign(Viewer { user_id: USER, role: Role::Admin }, Duration::from_secs(60)).expect("서명");
        assert_eq!(keys().verify(&t).ok(), Some(Viewer { user_id: USER, role: Role::Admin }));
    }

    #[test]
    fn wrong_secret_alg_none_missing_exp_and_expired_tokens_are_rejected() {
        let far = chrono::Utc::now().timestamp() + 600;
        let past = chrono::Utc::now().timestamp() - 60;
        let hs = r#"{"alg":"HS256","typ":"JWT"}"#;
        let ok_claims = format!(r#"{{"sub":"{USER}","role":"USER","exp":{far}}}"#);
        assert!(keys().verify(&raw_token(hs, &ok_claims, "test-secret")).is_ok());
        assert!(keys().verify(&raw_token(hs, &ok_claims, "other-secret")).is_err());
        let none = format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#), URL_SAFE_NO_PAD.encode(&ok_claims));
        assert!(keys().verify(&none).is_err());
        let hs384 = raw_token(r#"{"alg":"HS384","typ":"JWT"}"#, &ok_claims, "test-secret");
        assert!(keys().verify(&hs384).is_err());
        let no_exp = format!(r#"{{"sub":"{USER}","role":"USER"}}"#);
        assert!(keys().verify(&raw_token(hs, &no_exp, "test-secret")).is_err());
        let with_aud = format!(r#"{{"sub":"{USER}","role":"USER","exp":{far},"aud":"shop"}}"#);
        assert!(keys().verify(&raw_token(hs, &with_aud, "test-secret")).is_ok(), "aud는 계약 밖이라 무시");
        let expired = format!(r#"{{"sub":"{USER}","role":"USER","exp":{past}}}"#);
        assert!(keys().verify(&raw_token(hs, &expired, "test-secret")).is_err());
    }

    #[test]
    fn verify_until_gives_exp_plus_the_leeway() {
        let exp = chrono::Utc::now().timestamp() + 600;
        let claims = format!(r#"{{"sub":"{USER}","role":"ADMIN","exp":{exp}}}"#);
        let (viewer, until) = keys().verify_until(&raw_token(r#"{"alg":"HS256","typ":"JWT"}"#, &claims, "test-secret")).expect("검증");
        assert_eq!(viewer, Viewer { user_id: USER, role: Role::Admin });
        assert_eq!(until, exp as u64 + LEEWAY_SECS);
    }

    #[test]
    fn sub_must_be_a_uuid_and_role_exact() {
        let far = chrono::Utc::now().timestamp() + 600;
        let hs = r#"{"alg":"HS256","typ":"JWT"}"#;
        let bad_sub = format!(r#"{{"sub":"alice","role":"USER","exp":{far}}}"#);
        assert!(keys().verify(&raw_token(hs, &bad_sub, "test-secret")).is_err());
        let bad_role = format!(r#"{{"sub":"{USER}","role":"user","exp":{far}}}"#);
        assert!(keys().verify(&raw_token(hs, &bad_role, "test-secret")).is_err());
    }
}
