//! Content negotiation for the telemetry path: which exposition format
//! (`Accept`) and whether to gzip (`Accept-Encoding`). Pure functions on
//! header text, so every rule is unit-tested.

/// The exposition formats served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4, the default.
    PrometheusText,
    /// OpenMetrics text 1.0.0.
    OpenMetrics,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::PrometheusText => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// One element of a comma-separated header: the value and its `q` weight.
fn elements(header: &str) -> impl Iterator<Item = (&str, Vec<(&str, &str)>, f32)> {
    header.split(',').filter_map(|element| {
        let mut parts = element.split(';').map(str::trim);
        let value = parts.next().filter(|v| !v.is_empty())?;
        let mut q = 1.0;
        let mut params = Vec::new();
        for param in parts {
            let (name, v) = param.split_once('=').unwrap_or((param, ""));
            let (name, v) = (name.trim(), v.trim().trim_matches('"'));
            if name.eq_ignore_ascii_case("q") {
                q = v.parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q)).unwrap_or(0.0);
            } else {
                params.push((name, v));
            }
        }
        Some((value, params, q))
    })
}

/// OpenMetrics when the client weighs `application/openmetrics-text` (of a
/// version we write, or of no stated version) at least as high as the
/// Prometheus text format; Prometheus text otherwise.
pub fn format(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::PrometheusText;
    };
    let (mut openmetrics, mut text) = (0.0f32, 0.0f32);
    for (media, params, q) in elements(accept) {
        let version = params.iter().find(|(n, _)| n.eq_ignore_ascii_case("version")).map(|(_, v)| *v);
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            if matches!(version, None | Some("1.0.0") | Some("0.0.1")) {
                openmetrics = openmetrics.max(q);
            }
        } else if media.eq_ignore_ascii_case("text/plain") || media.eq_ignore_ascii_case("text/*") || media == "*/*" {
            text = text.max(q);
        }
    }
    if openmetrics > 0.0 && openmetrics >= text {
        Format::OpenMetrics
    } else {
        Format::PrometheusText
    }
}

/// Whether `Accept-Encoding` accepts gzip (`gzip`, `x-gzip` or `*` with a
/// non-zero weight, and gzip not refused explicitly).
pub fn gzip(accept_encoding: Option<&str>) -> bool {
    let Some(header) = accept_encoding else {
        return false;
    };
    let (mut named, mut star) = (None, None);
    for (coding, _, q) in elements(header) {
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            named = Some(named.map_or(q, |n: f32| n.max(q)));
        } else if coding == "*" {
            star = Some(q);
        }
    }
    named.or(star).is_some_and(|q| q > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        // What Prometheus 2.42+ sends by default.
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(format(Some(prometheus)), Format::OpenMetrics);
        // Prometheus with scrape_protocols: [PrometheusText0.0.4].
        assert_eq!(format(Some("text/plain;version=0.0.4;q=1,*/*;q=0.1")), Format::PrometheusText);
        assert_eq!(format(Some("application/openmetrics-text")), Format::OpenMetrics);
        assert_eq!(format(Some("application/openmetrics-text; version=0.0.1; q=0.3")), Format::OpenMetrics);
        assert_eq!(format(Some("application/openmetrics-text;version=2.0.0")), Format::PrometheusText);
        assert_eq!(format(Some("application/openmetrics-text;q=0")), Format::PrometheusText);
        assert_eq!(format(Some("text/plain, application/openmetrics-text;q=0.5")), Format::PrometheusText);
        assert_eq!(format(Some("*/*")), Format::PrometheusText);
        assert_eq!(format(Some("")), Format::PrometheusText);
        assert_eq!(format(None), Format::PrometheusText);
    }

    #[test]
    fn gzip_acceptance() {
        assert!(gzip(Some("gzip")));
        assert!(gzip(Some("deflate, gzip;q=1.0, *;q=0.5")));
        assert!(gzip(Some("br, x-gzip")));
        assert!(gzip(Some("*")));
        assert!(!gzip(Some("gzip;q=0")));
        assert!(!gzip(Some("*;q=0.5, gzip;q=0")));
        assert!(!gzip(Some("identity")));
        assert!(!gzip(Some("")));
        assert!(!gzip(None));
    }
}
