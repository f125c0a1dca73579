//! Metrics in the Prometheus text format (`GET /metrics`).
//!
//! Two kinds are kept in memory, keyed by name and labels: counters and
//! histograms (fixed buckets, seconds). Gauges that describe stored state
//! (instances by workflow and status, pending timers, open tasks) are not
//! kept here: the API reads them from the store's indexes at scrape time, so
//! they are right after a restart too.
//!
//! Label values are escaped; names are fixed strings in the code. Personal
//! data never goes into a label (no addresses, no inputs).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Bucket bounds in seconds: 1 ms to 5 min.
const BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

type Key = (&'static str, Vec<(&'static str, String)>);

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

/// The daemon's metrics registry.
#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<Key, u64>>,
    histograms: Mutex<BTreeMap<Key, Histogram>>,
    help: Mutex<BTreeMap<&'static str, (&'static str, &'static str)>>,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `by` to a counter (`name` should end in `_total`).
    pub fn add(&self, name: &'static str, labels: &[(&'static str, &str)], by: u64) {
        let key = (name, own(labels));
        *self
            .counters
            .lock()
            .expect("metrics lock")
            .entry(key)
            .or_insert(0) += by;
    }

    /// Adds one to a counter.
    pub fn inc(&self, name: &'static str, labels: &[(&'static str, &str)]) {
        self.add(name, labels, 1);
    }

    /// Records one observation, in seconds.
    pub fn observe(&self, name: &'static str, labels: &[(&'static str, &str)], seconds: f64) {
        let key = (name, own(labels));
        let mut h = self.histograms.lock().expect("metrics lock");
        let h = h.entry(key).or_insert_with(|| Histogram {
            counts: vec![0; BUCKETS.len()],
            ..Default::default()
        });
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }

    /// Declares a metric's help text and type (shown even before a value).
    pub fn describe(&self, name: &'static str, kind: &'static str, help: &'static str) {
        self.help
            .lock()
            .expect("metrics lock")
            .insert(name, (kind, help));
    }

    /// Renders every counter and histogram.
    pub fn render(&self, out: &mut String) {
        let help = self.help.lock().expect("metrics lock").clone();
        let mut seen = std::collections::BTreeSet::new();
        let mut header = |out: &mut String, name: &'static str, kind: &str| {
            if seen.insert(name) {
                let text = help.get(name).map(|h| h.1).unwrap_or("");
                let _ = writeln!(out, "# HELP {name} {text}");
                let _ = writeln!(out, "# TYPE {name} {kind}");
            }
        };
        for ((name, labels), v) in self.counters.lock().expect("metrics lock").iter() {
            header(out, name, "counter");
            let _ = writeln!(out, "{name}{} {v}", fmt_labels(labels, None));
        }
        for ((name, labels), h) in self.histograms.lock().expect("metrics lock").iter() {
            header(out, name, "histogram");
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{name}_bucket{} {}",
                    fmt_labels(labels, Some(&b.to_string())),
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "{name}_bucket{} {}",
                fmt_labels(labels, Some("+Inf")),
                h.count
            );
            let _ = writeln!(out, "{name}_sum{} {}", fmt_labels(labels, None), h.sum);
            let _ = writeln!(out, "{name}_count{} {}", fmt_labels(labels, None), h.count);
        }
        let declared: Vec<(&'static str, &'static str)> =
            help.iter().map(|(n, (k, _))| (*n, *k)).collect();
        for (name, kind) in declared {
            if kind != "gauge" {
                header(out, name, kind);
            }
        }
    }
}

/// Transitions feed the step, instance, task and clock metrics.
impl crate::runtime::Observer for Metrics {
    fn transition(
        &self,
        workflow: &str,
        entered: &[(u32, crate::engine::Ts)],
        records: &[crate::engine::Record],
        now: crate::engine::Ts,
    ) {
        use crate::engine::Record;
        let mut since: Vec<(u32, crate::engine::Ts)> = entered.to_vec();
        for r in records {
            match r {
                Record::Started { .. } => {
                    self.inc("vakt_instances_started_total", &[("workflow", workflow)])
                }
                Record::StepEntered { thread, .. } => {
                    since.retain(|(t, _)| t != thread);
                    since.push((*thread, now));
                }
                Record::StepCompleted { thread, step, .. }
                | Record::StepFailed { thread, step, .. } => {
                    let result = if matches!(r, Record::StepCompleted { .. }) {
                        "completed"
                    } else {
                        "failed"
                    };
                    if let Some((_, at)) = since.iter().find(|(t, _)| t == thread) {
                        let secs = (now - at).max(0) as f64 / 1000.0;
                        self.observe(
                            "vakt_step_duration_seconds",
                            &[("workflow", workflow), ("step", step), ("result", result)],
                            secs,
                        );
                    }
                }
                Record::TaskOpened { .. } => {
                    self.inc("vakt_tasks_opened_total", &[("workflow", workflow)])
                }
                Record::ClockBreached { clock } => self.inc(
                    "vakt_clock_breaches_total",
                    &[("workflow", workflow), ("clock", clock)],
                ),
                Record::Completed { .. } | Record::Failed { .. } | Record::Cancelled { .. } => {
                    let status = match r {
                        Record::Completed { .. } => "completed",
                        Record::Failed { .. } => "failed",
                        _ => "cancelled",
                    };
                    self.inc(
                        "vakt_instances_finished_total",
                        &[("workflow", workflow), ("status", status)],
                    )
                }
                _ => {}
            }
        }
    }
}

/// Declares the daemon's metrics, so a scrape shows them before any value.
pub fn describe_all(m: &Metrics) {
    m.describe(
        "vakt_instances_started_total",
        "counter",
        "Instances started, by workflow.",
    );
    m.describe(
        "vakt_instances_finished_total",
        "counter",
        "Instances that reached a final status, by workflow and status.",
    );
    m.describe(
        "vakt_step_duration_seconds",
        "histogram",
        "Time from entering a step to its completion or failure.",
    );
    m.describe(
        "vakt_tasks_opened_total",
        "counter",
        "Approval tasks opened, by workflow.",
    );
    m.describe(
        "vakt_clock_breaches_total",
        "counter",
        "Statutory clocks that ran out before they were met, by workflow and clock.",
    );
    m.describe(
        "vakt_mail_sent_total",
        "counter",
        "Task notification mails handed to the mail connector, by reason.",
    );
    m.describe(
        "vakt_mail_failed_total",
        "counter",
        "Task notification mails the mail connector refused, by reason.",
    );
    m.describe(
        "vakt_link_decisions_total",
        "counter",
        "Signed-link POSTs, by result (decided, used, expired, tampered, …).",
    );
    m.describe(
        "vakt_http_requests_total",
        "counter",
        "API requests by route and status code.",
    );
}

fn own(labels: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

/// Renders a gauge line (for values read from the store at scrape time).
pub fn gauge(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    let labels: Vec<(&str, String)> = labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    let _ = writeln!(out, "{name}{} {value}", fmt_labels(&labels, None));
}

/// Renders a gauge's header.
pub fn gauge_header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
}

fn fmt_labels(labels: &[(&str, String)], le: Option<&str>) -> String {
    if labels.is_empty() && le.is_none() {
        return String::new();
    }
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    format!("{{{}}}", parts.join(","))
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::new();
        m.describe("vakt_x_total", "counter", "Things.");
        m.inc("vakt_x_total", &[("kind", "a\"b")]);
        m.add("vakt_x_total", &[("kind", "a\"b")], 2);
        m.observe("vakt_lat_seconds", &[("role", "mail")], 0.02);
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains("# TYPE vakt_x_total counter"), "{out}");
        assert!(out.contains("vakt_x_total{kind=\"a\\\"b\"} 3"), "{out}");
        assert!(
            out.contains("vakt_lat_seconds_bucket{role=\"mail\",le=\"0.01\"} 0"),
            "{out}"
        );
        assert!(
            out.contains("vakt_lat_seconds_bucket{role=\"mail\",le=\"0.025\"} 1"),
            "{out}"
        );
        assert!(
            out.contains("vakt_lat_seconds_count{role=\"mail\"} 1"),
            "{out}"
        );
    }
}
