//! What operators watch and run beside the loads: the metrics registry, the HTTP surface
//! (`/metrics`, `/healthz`, `/status`), freshness against `[expect]`, and `check-config`'s
//! findings. They read what the daemon publishes; none of them loads, moves or reports a file.
pub mod console;
pub mod freshness;
pub mod http;
pub mod metrics;
pub mod pages;
pub mod preflight;
