//! 시나리오마다 파일 하나. `main`이 인자에 따라 부른다.
pub(crate) mod audience_import;
pub(crate) mod best;
pub(crate) mod checkout;
pub(crate) mod cluster;
pub(crate) mod day;
pub(crate) mod flash_sale;
pub(crate) mod hot_row;
pub(crate) mod live;
pub(crate) mod read;
pub(crate) mod scale;
pub(crate) mod shop;
pub(crate) mod single;
pub(crate) mod suite;
pub(crate) mod wave;
