//! 요청한 사람(뷰어)과 역할별 권한 규칙 (CONTRACT 3절의 표).
use uuid::Uuid;

use crate::error::{AppError, AppResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "USER",
            Role::Admin => "ADMIN",
        }
    }

    /// 토큰의 role 클레임은 정확히 "USER" 또는 "ADMIN"만 인정한다.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "USER" => Some(Role::User),
            "ADMIN" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// 검증된 토큰의 주인.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Viewer {
    pub user_id: Uuid,
    pub role: Role,
}

impl Viewer {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// 익명 요청은 UNAUTHENTICATED.
    pub fn require(viewer: Option<&Viewer>) -> AppResult<&Viewer> {
        viewer.ok_or(AppError::Unauthenticated)
    }

    /// 관리자만.
    pub fn require_admin(viewer: Option<&Viewer>) -> AppResult<&Viewer> {
        let v = Self::require(viewer)?;
        if v.is_admin() { Ok(v) } else { Err(AppError::Forbidden) }
    }

    /// 대상 사용자(기본값: 본인)에 대해 행동할 수 있는지: 본인 또는 관리자. 아니면 FORBIDDEN.
    pub fn act_for(viewer: Option<&Viewer>, target: Option<Uuid>) -> AppResult<Uuid> {
        let v = Self::require(viewer)?;
        match target {
            None => Ok(v.user_id),
            Some(t) if t == v.user_id || v.is_admin() => Ok(t),
            Some(_) => Err(AppError::Forbidden),
        }
    }

    /// 이 발급 내역을 다룰 수 있는지. 남의 것은 존재 자체를 드러내지 않는다.
    pub fn may_touch(&self, owner: Uuid) -> bool {
        self.is_admin() || self.user_id == owner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Uuid = Uuid::from_u128(1);
    const B: Uuid = Uuid::from_u128(2);

    #[test]
    fn users_act_for_themselves_and_admins_for_anyone() {
        let user = Viewer { user_id: A, role: Role::User };
        let admin = Viewer { user_id: A, role: Role::Admin };
        assert_eq!(Viewer::act_for(Some(&user), None).ok(), Some(A));
        assert_eq!(Viewer::act_for(Some(&user), Some(A)).ok(), Some(A));
        assert!(matches!(Viewer::act_for(Some(&user), Some(B)), Err(AppError::Forbidden)));
        assert_eq!(Viewer::act_for(Some(&admin), Some(B)).ok(), Some(B));
        assert!(matches!(Viewer::act_for(None, None), Err(AppError::Unauthenticated)));
    }

    #[test]
    fn roles_are_exact() {
        assert_eq!(Role::parse("ADMIN"), Some(Role::Admin));
        assert_eq!(Role::parse("admin"), None);
        assert_eq!(Role::parse(""), None);
    }
}
