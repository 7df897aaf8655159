//! What operators watch.
pub mod freshness;
pub mod http;
pub mod metrics;
pub mod preflight;
