//! 통합 테스트 바이너리 하나: 하네스, 그다음 영역별 파일.
mod helpers;

mod audience;
mod audience_csv;
mod budget;
mod checkout;
mod client;
mod cluster;
mod concurrency;
mod data_layer;
mod e2e;
mod e2e_ops;
mod edges;
mod guessing;
mod hardening;
mod idempotency;
mod live;
mod per_user;
mod plans;
mod relay;
mod sets;
mod shop;
mod stream;
mod surface;
mod traces;
mod waves;
mod ws_limits;
