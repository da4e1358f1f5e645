//! `/metrics` answers for every landql process: the registry's series and the process's
//! own (`process_*`), in the format the scraper asked for.
//!
//! `prometheus-client` writes OpenMetrics, which Prometheus asks for by name in its Accept
//! header. Other readers — `curl`, `promtool check metrics`, older scrapers — read the
//! classic text format (0.0.4), where a counter's HELP and TYPE name the `_total` series and
//! there is no `# EOF` or `# UNIT`; [`classic`] rewrites the one into the other, as
//! Prometheus's own client libraries negotiate.

use std::fmt::Write as _;

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::registry::Registry;

use crate::process::ProcessCollector;

/// The content type of an OpenMetrics answer.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of a classic text answer.
pub const CLASSIC: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every series a process serves at `/metrics`: `registry`'s and the process collector's.
#[derive(Debug)]
pub struct Exposition {
    process: Registry,
}

impl Default for Exposition {
    fn default() -> Self {
        let mut process = Registry::default();
        process.register_collector(Box::new(ProcessCollector));
        Exposition { process }
    }
}

impl Exposition {
    /// The answer to a scrape whose Accept header is `accept`: (content type, body).
    pub fn render(&self, registry: &Registry, accept: Option<&str>) -> (&'static str, String) {
        let mut out = String::new();
        let encoded = encode_registry(&mut out, registry)
            .and_then(|()| encode_registry(&mut out, &self.process))
            .and_then(|()| encode_eof(&mut out));
        if let Err(e) = encoded {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        if wants_openmetrics(accept) {
            (OPENMETRICS, out)
        } else {
            (CLASSIC, classic(&out))
        }
    }
}

/// Whether an Accept header names OpenMetrics (Prometheus's scrapes do).
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',').any(|part| {
            let mut params = part.split(';');
            let media = params.next().unwrap_or("").trim();
            let refused = params.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    == Some(0.0)
            });
            media.eq_ignore_ascii_case("application/openmetrics-text") && !refused
        })
    })
}

/// OpenMetrics text as the classic Prometheus text format (see the module docs). Only
/// what `prometheus-client` writes needs handling: HELP, TYPE and UNIT lines, samples,
/// and the EOF marker.
pub fn classic(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // A family's HELP line waits for its TYPE line, which says whether it is a counter
    // (`prometheus-client` writes HELP first, both naming the family).
    let mut help: Option<&str> = None;
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest.split_once(' ').map_or("", |(_, text)| text));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (name, ty) = match ty {
                "counter" => (format!("{name}_total"), "counter"),
                "gauge" | "histogram" | "summary" => (name.to_string(), ty),
                // info, stateset, gaugehistogram, unknown: untyped in the classic format.
                _ => (name.to_string(), "untyped"),
            };
            if let Some(text) = help.take() {
                let _ = writeln!(out, "# HELP {name} {text}");
            }
            let _ = writeln!(out, "# TYPE {name} {ty}");
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::gauge::Gauge;

    #[test]
    fn counters_are_named_with_total_in_the_classic_format() {
        let mut r = Registry::with_prefix("landql_test");
        let c = Counter::<u64>::default();
        c.inc();
        r.register("requests", "Requests answered", c);
        r.register("open", "Open things", Gauge::<i64>::default());
        let (ty, text) = Exposition::default().render(&r, None);
        assert_eq!(ty, CLASSIC);
        assert!(
            text.contains("# HELP landql_test_requests_total Requests answered.\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "# TYPE landql_test_requests_total counter\nlandql_test_requests_total 1\n"
            ),
            "{text}"
        );
        assert!(text.contains("# TYPE landql_test_open gauge\n"), "{text}");
        assert!(text.contains("process_cpu_seconds_total"), "{text}");
        assert!(!text.contains("# EOF"), "{text}");
        let (ty, text) = Exposition::default().render(
            &r,
            Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
        );
        assert_eq!(ty, OPENMETRICS);
        assert!(
            text.contains("# TYPE landql_test_requests counter\n"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn classic_text_of_a_counter_and_a_histogram() {
        let om = "# HELP a_requests Requests.\n# TYPE a_requests counter\na_requests_total{x=\"1\"} 2\n\
                  # HELP a_seconds Time.\n# TYPE a_seconds histogram\n# UNIT a_seconds seconds\na_seconds_count 0\n# EOF\n";
        assert_eq!(
            classic(om),
            "# HELP a_requests_total Requests.\n# TYPE a_requests_total counter\na_requests_total{x=\"1\"} 2\n\
             # HELP a_seconds Time.\n# TYPE a_seconds histogram\na_seconds_count 0\n"
        );
    }

    #[test]
    fn accept_headers() {
        assert!(!wants_openmetrics(None));
        assert!(!wants_openmetrics(Some("*/*")));
        assert!(!wants_openmetrics(Some("text/plain")));
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text; version=1.0.0"
        )));
        assert!(!wants_openmetrics(Some(
            "application/openmetrics-text;q=0, text/plain"
        )));
    }
}
