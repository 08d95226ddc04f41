//! 백엔드별 컬럼 타입 차이를 한 곳에 모은다. 새 테이블은 모두 이것으로 만든다.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

pub struct Types(pub DatabaseBackend);

impl Types {
    /// id 컬럼. 앱은 모든 백엔드에서 id를 하이픈 있는 36자 문자열(text)로 바인딩한다
    /// (sea-query-sqlx가 `Uuid` 값을 MySQL·SQLite에는 16바이트로 보내므로 문자열이 세 백엔드 공통의 유일한 방식).
    /// - MySQL/MariaDB, SQLite: CHAR(36). `text` 인자와 그대로 비교되어 인덱스를 탄다.
    /// - PostgreSQL: VARCHAR(36). `bpchar`는 `text` 인자와 비교될 때 컬럼 쪽이 `::text`로 변환되어(rtrim 함수)
    ///   인덱스를 못 쓰지만, `varchar`는 `text`와 이진 호환이라 같은 인덱스를 그대로 쓴다.
    ///
    /// 어느 쪽이든 평범한 `INSERT … VALUES ('<uuid 문자열>')`이 동작한다.
    pub fn id(&self, col: impl IntoIden) -> ColumnDef {
        let mut def = self.id_type(col);
        def.not_null();
        def
    }

    /// 비어 있을 수 있는 id 컬럼 (타입은 `id()`와 같다).
    pub fn nullable_id(&self, col: impl IntoIden) -> ColumnDef {
        let mut def = self.id_type(col);
        def.null();
        def
    }

    fn id_type(&self, col: impl IntoIden) -> ColumnDef {
        let mut def = ColumnDef::new(col);
        match self.0 {
            DatabaseBackend::Postgres => def.string_len(36),
            _ => def.char_len(36),
        };
        def
    }

    /// 첫 마이그레이션이 만든 그대로의 id 타입 (모든 백엔드에서 CHAR(36)). 이미 적용된 이력을 바꾸지 않으려고 남긴다;
    /// PostgreSQL에서는 m20261202_000002가 `id()`의 타입으로 옮긴다.
    pub fn char36_id(&self, col: impl IntoIden) -> ColumnDef {
        ColumnDef::new(col).char_len(36).not_null().to_owned()
    }

    /// 시각은 UTC. MySQL TIMESTAMP는 2038년까지라 2099년 유효기간을 담지 못하므로 DATETIME(6)을 쓴다.
    pub fn time(&self, col: impl IntoIden) -> ColumnDef {
        let mut def = ColumnDef::new(col);
        match self.0 {
            DatabaseBackend::MySql => def.custom(Alias::new("DATETIME(6)")),
            _ => def.timestamp_with_time_zone(),
        };
        def
    }

    /// 데이터베이스 기본값이 있는 시각 컬럼 (users에 평범한 INSERT가 되도록).
    pub fn time_default_now(&self, col: impl IntoIden) -> ColumnDef {
        let mut def = self.time(col);
        def.not_null();
        match self.0 {
            DatabaseBackend::MySql => def.default(Expr::cust("CURRENT_TIMESTAMP(6)")),
            _ => def.default(Expr::current_timestamp()),
        };
        def
    }

    pub fn money(&self, col: impl IntoIden) -> ColumnDef {
        ColumnDef::new(col).decimal_len(10, 2).to_owned()
    }

    /// 대소문자·끝 공백까지 그대로 비교하는 문자열 (멱등 키). MySQL의 기본 `utf8mb4_unicode_ci`는 `aB`와 `Ab`를 같게 본다.
    pub fn exact_text(&self, col: impl IntoIden, len: u32) -> ColumnDef {
        let mut def = ColumnDef::new(col);
        match self.0 {
            DatabaseBackend::MySql => def.custom(Alias::new(format!("VARCHAR({len}) CHARACTER SET ascii COLLATE ascii_bin"))),
            _ => def.string_len(len),
        };
        def
    }

    /// 주문 금액과 그 할인: 쿠폰 금액(10^8 미만)과 달리 주문은 10^15 미만까지 받으므로 더 넓게.
    pub fn order_money(&self, col: impl IntoIden) -> ColumnDef {
        ColumnDef::new(col).decimal_len(17, 2).to_owned()
    }

    /// MySQL에서는 이모지까지 담도록 utf8mb4 + InnoDB(행 잠금)로 만든다.
    pub fn table(&self, stmt: &mut TableCreateStatement) {
        if self.0 == DatabaseBackend::MySql {
            stmt.engine("InnoDB").character_set("utf8mb4").collate("utf8mb4_unicode_ci");
        }
    }
}
