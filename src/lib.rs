//! couponql: 쿠폰 도메인의 GraphQL API 서버 (선착순 발급이 핵심).

/// HS256 JWT 발급·검증
pub mod auth;
/// 명령행: serve / migrate / seed / schema / token
pub mod cli;
/// 환경 변수 설정
pub mod config;
/// 커넥션 풀: 백엔드별 잠금 대기 한도와 SQLite 단일 작성자
pub mod db;
/// 순수 도메인 규칙
pub mod domain;
/// SeaORM 모델
pub mod entities;
/// 도메인 에러 ↔ 계약서 코드
pub mod error;
/// GraphQL 스키마, 리졸버, DataLoader
pub mod graphql;
/// axum 라우터와 경로들 (GraphQL over HTTP·WebSocket, 멱등 키, CSV, GraphiQL)
pub mod http;
/// Prometheus 지표
pub mod metrics;
/// 클라이언트 주소: TCP 상대 또는 믿는 프록시의 X-Forwarded-For
pub mod net;
/// SQL 저장소
pub mod repo;
/// 데모 데이터
pub mod seed;
/// hyper-util 위의 HTTP 서버: 시간 제한, 연결 수 한도, 우아한 종료
pub mod server;
/// 트랜잭션을 소유하는 유스케이스
pub mod service;
/// 애플리케이션 조립: serve와 테스트가 같은 배선을 쓴다
pub mod startup;
/// 로그 구독자와 OpenTelemetry 추적 (스팬, 내보내기, traceparent)
pub mod telemetry;
