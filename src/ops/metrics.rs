//! The daemon's measurements, in a Prometheus registry (`prometheus-client`), and the small
//! document `/status` serves. Updated by the daemon loop; read by the HTTP surface.

use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::model::FileOutcome;

/// Labels of the per-status counter.
type StatusLabel = Vec<(String, String)>;

pub struct Metrics {
    registry: Registry,
    files: Family<StatusLabel, Counter>,
    rows_inserted: Family<StatusLabel, Counter>,
    rows_updated: Family<StatusLabel, Counter>,
    rejected: Family<StatusLabel, Counter>,
    file_seconds: Histogram,
    batch_seconds: Histogram,
    drop_to_commit_seconds: Histogram,
    warehouse_wait_seconds: Counter<f64, AtomicU64>,
    waiting_files: Gauge,
    outbox_depth: Gauge,
    last_success: Gauge<f64, AtomicU64>,
    supplier_late: Gauge,
    /// What `/status` shows, as JSON.
    status: Mutex<serde_json::Value>,
    /// The last failed delivery of a report (its error and when), until one succeeds.
    delivery_error: Mutex<Option<(String, chrono::DateTime<chrono::Utc>)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("votewatch");
        let files = Family::<StatusLabel, Counter>::default();
        registry.register(
            "files",
            "Files handled, by ledger status and dataset",
            files.clone(),
        );
        let rows_inserted = Family::<StatusLabel, Counter>::default();
        registry.register(
            "rows_inserted",
            "Rows inserted (votes, new posts), by dataset",
            rows_inserted.clone(),
        );
        let rows_updated = Family::<StatusLabel, Counter>::default();
        registry.register(
            "rows_updated",
            "Rows whose current version was replaced (posts), by dataset",
            rows_updated.clone(),
        );
        let rejected = Family::<StatusLabel, Counter>::default();
        registry.register(
            "rejected_records",
            "Records rejected, by dataset",
            rejected.clone(),
        );
        let file_seconds = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        registry.register(
            "file_load_seconds",
            "Time from the start of a file's load to its commit",
            file_seconds.clone(),
        );
        let batch_seconds = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        registry.register(
            "batch_seconds",
            "Time of a batch: warehouse open, loads, view, report",
            batch_seconds.clone(),
        );
        let drop_to_commit_seconds = Histogram::new(exponential_buckets(0.05, 2.0, 14));
        registry.register(
            "drop_to_commit_seconds",
            "Time from a file's first sight in landing/ to its commit",
            drop_to_commit_seconds.clone(),
        );
        let warehouse_wait_seconds = Counter::<f64, AtomicU64>::default();
        registry.register(
            "warehouse_busy_wait_seconds",
            "Time spent waiting for a warehouse held by another process",
            warehouse_wait_seconds.clone(),
        );
        let waiting_files = Gauge::default();
        registry.register(
            "waiting_files",
            "Files seen in landing/ and not taken yet",
            waiting_files.clone(),
        );
        let outbox_depth = Gauge::default();
        registry.register(
            "outbox_reports",
            "Reports waiting in the outbox",
            outbox_depth.clone(),
        );
        let last_success = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "last_successful_load_timestamp_seconds",
            "When a file was last loaded (Unix time)",
            last_success.clone(),
        );
        let supplier_late = Gauge::default();
        registry.register(
            "supplier_late",
            "1 while the supplier does not send what [expect] says, else 0",
            supplier_late.clone(),
        );
        Metrics {
            registry,
            files,
            rows_inserted,
            rows_updated,
            rejected,
            file_seconds,
            batch_seconds,
            drop_to_commit_seconds,
            warehouse_wait_seconds,
            waiting_files,
            outbox_depth,
            last_success,
            supplier_late,
            status: Mutex::new(serde_json::json!({})),
            delivery_error: Mutex::new(None),
        }
    }

    /// Counts one committed file.
    pub fn file_done(&self, o: &FileOutcome) {
        let dataset = ("dataset".to_string(), o.dataset.name().to_string());
        self.files
            .get_or_create(&vec![
                ("status".to_string(), o.status.as_str().to_string()),
                dataset.clone(),
            ])
            .inc();
        let by_dataset = vec![dataset];
        self.rows_inserted
            .get_or_create(&by_dataset)
            .inc_by(o.counts.inserted);
        self.rows_updated
            .get_or_create(&by_dataset)
            .inc_by(o.counts.updated);
        self.rejected
            .get_or_create(&by_dataset)
            .inc_by(o.counts.rejected);
        self.file_seconds.observe(o.elapsed.as_secs_f64());
        if o.status.is_handled() {
            self.last_success
                .set(chrono::Utc::now().timestamp_micros() as f64 / 1e6);
        }
    }

    pub fn dropped_to_committed(&self, seconds: f64) {
        self.drop_to_commit_seconds.observe(seconds);
    }

    pub fn set_supplier_late(&self, late: bool) {
        self.supplier_late.set(i64::from(late));
    }

    pub fn batch_done(&self, seconds: f64) {
        self.batch_seconds.observe(seconds);
    }

    pub fn waited_for_warehouse(&self, seconds: f64) {
        self.warehouse_wait_seconds.inc_by(seconds);
    }

    /// The gauges and the `/status` document, refreshed by the loop.
    pub fn set_state(&self, waiting: usize, outbox: usize, status: serde_json::Value) {
        self.waiting_files.set(waiting as i64);
        self.outbox_depth.set(outbox as i64);
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = status;
    }

    /// The registry in the OpenMetrics text format, which Prometheus scrapes.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }

    pub fn status(&self) -> serde_json::Value {
        let mut doc = self
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let error = self
            .delivery_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(doc) = doc.as_object_mut() {
            doc.insert(
                "last_delivery_error".into(),
                match error {
                    Some((e, at)) => serde_json::json!({ "error": e, "at": at.to_rfc3339() }),
                    None => serde_json::Value::Null,
                },
            );
        }
        doc
    }

    /// A report's delivery failed with `error`; `None`: one was delivered since.
    pub fn delivery_failed(&self, error: Option<String>) {
        *self
            .delivery_error
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = error.map(|e| (e, chrono::Utc::now()));
    }
}
