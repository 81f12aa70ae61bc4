//! Which upstream services a workload actually used, from its proxy's stats.
//!
//! Reads Envoy's `/stats?format=json` or the Prometheus text of `/stats/prometheus` (detected from
//! the content) and marks as used:
//! - every cluster whose `upstream_rq_total` or `upstream_cx_total` is above 0 (stat names
//!   `cluster.<name>.upstream_rq_total`, or Prometheus `envoy_cluster_upstream_rq_total` with a
//!   `cluster_name` label, or with the cluster name folded into the metric name when no tag was
//!   extracted);
//! - every service Istio's standard metrics show this proxy calling as a client
//!   (`istio_requests_total` and `istio_tcp_connections_opened_total` with `reporter="source"`,
//!   by `destination_service`), which is the evidence left when Istio's default stats inclusion
//!   list drops the cluster stats.
//!
//! Stats are read as a stream: a 10,000-cluster proxy's stats JSON is hundreds of megabytes and
//! only the counters above are kept.
//!
//! ```
//! let stats = br#"{"stats": [
//!   {"name": "cluster.outbound|9080||reviews.default.svc.cluster.local.upstream_rq_total", "value": 12},
//!   {"name": "cluster.outbound|9080||ratings.default.svc.cluster.local.upstream_rq_total", "value": 0}]}"#;
//! let usage = heft::usage::Usage::from_stats(stats).unwrap();
//! let reviews = &usage.clusters["outbound|9080||reviews.default.svc.cluster.local"];
//! assert_eq!(reviews.value, 12);
//! assert!(!usage.cluster_used("outbound|9080||ratings.default.svc.cluster.local"));
//! ```

use crate::error::{Error, ErrorKind, Result};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// What the stats show the workload used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Clusters with requests or connections (by cluster name), each with the counter that shows
    /// it.
    pub clusters: BTreeMap<String, Counter>,
    /// Services Istio's metrics show called, by host (`destination_service`), each with the
    /// counter that shows it.
    pub services: BTreeMap<String, Counter>,
    /// Cluster names folded into Prometheus metric names (no `cluster_name` tag), to be matched
    /// against the dump's clusters: `_`-for-punctuation forms.
    pub folded_clusters: BTreeMap<String, Counter>,
    /// The window the counters cover: the server's uptime (`server.uptime`) when the stats say.
    pub uptime_seconds: Option<u64>,
    /// `json` or `prometheus`.
    pub format: &'static str,
    /// Counters read that could show use (whatever their value).
    pub counters_seen: usize,
    /// Of those, the ones that could show a call to a service: counters of outbound clusters and
    /// Istio's request metrics. None under Istio's stats inclusion list without Istio's stats
    /// filter: then the stats cannot show calls at all.
    pub service_counters_seen: usize,
}

/// The counter that shows a cluster or service used: the largest one read for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Counter {
    /// The stat as the stats name it (Envoy's name, or the Prometheus metric with its labels).
    pub name: String,
    /// Its value.
    pub value: u64,
}

/// Keeps the stat `name` of `value` as `key`'s counter unless a larger one is already kept.
pub(crate) fn keep(
    map: &mut BTreeMap<String, Counter>,
    key: &str,
    name: impl Into<String>,
    value: u64,
) {
    match map.get_mut(key) {
        Some(c) if c.value >= value => {}
        Some(c) => {
            *c = Counter {
                name: name.into(),
                value,
            }
        }
        None => {
            map.insert(
                key.to_string(),
                Counter {
                    name: name.into(),
                    value,
                },
            );
        }
    }
}

/// The counters that show a cluster was used.
const USE_COUNTERS: [&str; 2] = ["upstream_rq_total", "upstream_cx_total"];
/// Istio's standard metrics that show a service was called.
const ISTIO_METRICS: [&str; 2] = ["istio_requests_total", "istio_tcp_connections_opened_total"];

impl Usage {
    /// Reads `/stats?format=json` or `/stats/prometheus` text, plain, gzip or zstd.
    pub fn from_stats(bytes: &[u8]) -> Result<Usage> {
        use std::io::Read;
        let mut plain = Vec::new();
        let unpacked = if bytes.starts_with(&[0x1f, 0x8b]) {
            flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut plain)
        } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            zstd::stream::read::Decoder::new(bytes).and_then(|mut d| d.read_to_end(&mut plain))
        } else {
            return Usage::from_plain(bytes);
        };
        unpacked.map_err(|e| Error::io("decompressing the stats", e))?;
        Usage::from_plain(&plain)
    }

    fn from_plain(bytes: &[u8]) -> Result<Usage> {
        let start = bytes
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(bytes.len());
        if bytes.get(start) == Some(&b'{') {
            from_json(bytes)
        } else {
            from_prometheus(bytes)
        }
    }

    /// Whether a cluster (by name) was used. Folded names (Prometheus without tags) compare with
    /// punctuation replaced by `_`, as Envoy writes them.
    pub fn cluster_used(&self, name: &str) -> bool {
        self.cluster_counter(name).is_some()
    }

    /// The counter that shows the cluster `name` used, if any.
    pub fn cluster_counter(&self, name: &str) -> Option<&Counter> {
        self.clusters.get(name).or_else(|| {
            if self.folded_clusters.is_empty() {
                None
            } else {
                self.folded_clusters.get(&fold(name))
            }
        })
    }

    fn add_stat(&mut self, name: &str, value: f64) {
        if name == "server.uptime" {
            self.uptime_seconds = Some(value as u64);
            return;
        }
        for counter in USE_COUNTERS {
            if let Some(cluster) = name
                .strip_prefix("cluster.")
                .and_then(|n| n.strip_suffix(counter))
                .and_then(|n| n.strip_suffix('.'))
            {
                self.counters_seen += 1;
                self.service_counters_seen += usize::from(cluster.starts_with("outbound|"));
                if value > 0.0 {
                    keep(&mut self.clusters, cluster, name, value as u64);
                }
                return;
            }
        }
        // Istio's metrics in Envoy's own stat names carry their tags inline:
        // `reporter=.=source;.;…;.;destination_service=.=reviews.default.svc.cluster.local;.;istio_requests_total`.
        if ISTIO_METRICS.iter().any(|m| name.ends_with(m)) {
            self.counters_seen += 1;
            self.service_counters_seen += 1;
            let tag = |key: &str| -> Option<&str> {
                let at = name.find(&format!("{key}=.="))?;
                let rest = &name[at + key.len() + 3..];
                Some(rest.split(";.;").next().unwrap_or(rest))
            };
            if value > 0.0 && tag("reporter") == Some("source") {
                if let Some(service) = tag("destination_service").filter(|s| is_service(s)) {
                    keep(&mut self.services, service, name, value as u64);
                }
            }
        }
    }
}

fn is_service(s: &str) -> bool {
    !s.is_empty() && s != "unknown"
}

/// A name as Envoy folds it into a Prometheus metric name: every byte but `[a-zA-Z0-9_]` is `_`.
pub(crate) fn fold(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn from_json(bytes: &[u8]) -> Result<Usage> {
    let mut usage = Usage {
        format: "json",
        ..Usage::default()
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    de.deserialize_map(Document(&mut usage)).map_err(|e| {
        Error::new(
            ErrorKind::Syntax,
            format!(
                "not Envoy /stats?format=json output (line {}, column {}): {e}",
                e.line(),
                e.column()
            ),
        )
    })?;
    de.end()
        .map_err(|e| Error::new(ErrorKind::Syntax, format!("after the stats document: {e}")))?;
    if usage.counters_seen == 0 && usage.clusters.is_empty() {
        return Err(Error::new(
            ErrorKind::WrongDocument,
            "the stats hold no cluster or Istio request counters: is this /stats?format=json?",
        ));
    }
    Ok(usage)
}

/// `{"stats": [...]}`: everything but the stats array is skipped.
struct Document<'u>(&'u mut Usage);

impl<'de> Visitor<'de> for Document<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with a stats array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        let mut found = false;
        while let Some(key) = map.next_key::<std::borrow::Cow<str>>()? {
            if key == "stats" {
                found = true;
                map.next_value_seed(Entries(self.0))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        if !found {
            return Err(serde::de::Error::custom("no \"stats\" array"));
        }
        Ok(())
    }
}

struct Entries<'u>(&'u mut Usage);

impl<'de> DeserializeSeed<'de> for Entries<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Entries<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of stats")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        while let Some(entry) = seq.next_element::<Entry>()? {
            if let (Some(name), Some(value)) = (entry.name, entry.value) {
                self.0.add_stat(&name, value);
            }
        }
        Ok(())
    }
}

/// One element of the stats array: a counter or gauge (`name`, `value`); histogram elements
/// have neither and are skipped.
#[derive(serde::Deserialize)]
struct Entry {
    name: Option<String>,
    #[serde(default, deserialize_with = "number_or_string")]
    value: Option<f64>,
}

fn number_or_string<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<f64>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    })
}

use serde::Deserialize as _;

fn from_prometheus(bytes: &[u8]) -> Result<Usage> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Error::at(
            ErrorKind::Utf8,
            e.valid_up_to() as u64,
            "stats are not UTF-8 text",
        )
    })?;
    let mut usage = Usage {
        format: "prometheus",
        ..Usage::default()
    };
    let mut samples = 0usize;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, labels, value) = sample(line).ok_or_else(|| {
            Error::new(
                ErrorKind::Syntax,
                format!("line {}: not a Prometheus sample: {:.80}", n + 1, line),
            )
        })?;
        samples += 1;
        if name == "envoy_server_uptime" {
            usage.uptime_seconds = Some(value as u64);
            continue;
        }
        let label = |key: &str| {
            labels
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        if let Some(counter) = USE_COUNTERS.iter().find(|c| {
            name.strip_prefix("envoy_cluster_")
                .is_some_and(|r| r.ends_with(*c))
        }) {
            usage.counters_seen += 1;
            usage.service_counters_seen += usize::from(
                label("cluster_name").map_or(name.starts_with("envoy_cluster_outbound_"), |c| {
                    c.starts_with("outbound|")
                }),
            );
            if value > 0.0 {
                let shown = sample_name(line);
                match label("cluster_name") {
                    Some(cluster) => keep(&mut usage.clusters, cluster, shown, value as u64),
                    None => {
                        let folded = &name["envoy_cluster_".len()..name.len() - counter.len()];
                        if let Some(folded) = folded.strip_suffix('_').filter(|f| !f.is_empty()) {
                            keep(&mut usage.folded_clusters, folded, shown, value as u64);
                        }
                    }
                }
            }
        } else if ISTIO_METRICS.contains(&name.as_str()) {
            usage.counters_seen += 1;
            usage.service_counters_seen += 1;
            if value > 0.0 && label("reporter") == Some("source") {
                if let Some(service) = label("destination_service").filter(|s| is_service(s)) {
                    keep(
                        &mut usage.services,
                        service,
                        sample_name(line),
                        value as u64,
                    );
                }
            }
        }
    }
    if samples == 0 {
        return Err(Error::new(
            ErrorKind::WrongDocument,
            "not Envoy stats: neither /stats?format=json nor Prometheus text",
        ));
    }
    if usage.counters_seen == 0 {
        return Err(Error::new(
            ErrorKind::WrongDocument,
            "the stats hold no cluster or Istio request counters",
        ));
    }
    Ok(usage)
}

/// A sample line without its value and timestamp: the metric and its labels, as printed.
fn sample_name(line: &str) -> &str {
    let end = line
        .rfind('}')
        .map_or_else(|| line.find(' ').unwrap_or(line.len()), |close| close + 1);
    &line[..end]
}

/// A Prometheus sample's labels, in order.
type Labels = Vec<(String, String)>;

/// `name{k="v",…} value [timestamp]`.
fn sample(line: &str) -> Option<(String, Labels, f64)> {
    let name_end = line.find(['{', ' ']).unwrap_or(line.len());
    let name = line[..name_end].to_string();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        let mut end = None;
        loop {
            while chars.peek().is_some_and(|(_, c)| *c == ',' || *c == ' ') {
                chars.next();
            }
            match chars.peek() {
                Some((i, '}')) => {
                    end = Some(*i);
                    break;
                }
                None => break,
                _ => {}
            }
            let key_start = chars.peek()?.0;
            let mut key_end = key_start;
            while let Some(&(i, c)) = chars.peek() {
                if c == '=' {
                    key_end = i;
                    break;
                }
                chars.next();
            }
            chars.next(); // '='
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                let (_, c) = chars.next()?;
                match c {
                    '"' => break,
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    c => value.push(c),
                }
            }
            labels.push((body[key_start..key_end].to_string(), value));
        }
        rest = &body[end? + 1..];
    }
    let value: f64 = rest.split_whitespace().next()?.parse().ok()?;
    Some((name, labels, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_counters_with_and_without_cluster_tags() {
        let text = "# TYPE envoy_cluster_upstream_rq_total counter\n\
            envoy_cluster_upstream_rq_total{cluster_name=\"outbound|9080||reviews.default.svc.cluster.local\"} 7\n\
            envoy_cluster_upstream_rq_total{cluster_name=\"outbound|9080||ratings.default.svc.cluster.local\"} 0\n\
            envoy_cluster_outbound_80__web_shop_svc_cluster_local_upstream_cx_total 3 1700000000\n";
        let u = Usage::from_stats(text.as_bytes()).unwrap();
        assert_eq!(u.format, "prometheus");
        assert!(u.cluster_used("outbound|9080||reviews.default.svc.cluster.local"));
        assert!(!u.cluster_used("outbound|9080||ratings.default.svc.cluster.local"));
        assert!(u.cluster_used("outbound|80||web.shop.svc.cluster.local"));
    }

    /// Istio's standard metrics as istio-proxy's Prometheus endpoint prints them (the label set
    /// documented in Istio's "Istio Standard Metrics" reference, shortened).
    #[test]
    fn istio_client_metrics_mark_services() {
        let text = "istio_requests_total{reporter=\"source\",destination_service=\"reviews.default.svc.cluster.local\",response_code=\"200\"} 41\n\
            istio_requests_total{reporter=\"destination\",destination_service=\"productpage.default.svc.cluster.local\"} 9\n\
            istio_tcp_connections_opened_total{reporter=\"source\",destination_service=\"mongodb.shop.svc.cluster.local\"} 2\n\
            istio_requests_total{reporter=\"source\",destination_service=\"unknown\"} 5\n";
        let u = Usage::from_stats(text.as_bytes()).unwrap();
        let services: Vec<&str> = u.services.keys().map(String::as_str).collect();
        assert_eq!(
            services,
            [
                "mongodb.shop.svc.cluster.local",
                "reviews.default.svc.cluster.local"
            ]
        );
        let json = br#"{"stats":[{"name":"reporter=.=source;.;destination_service=.=ratings.default.svc.cluster.local;.;response_code=.=200;.;istio_requests_total","value":3},{"histograms":{}}]}"#;
        let u = Usage::from_stats(json).unwrap();
        assert_eq!(
            u.services["ratings.default.svc.cluster.local"].value, 3,
            "the counter that shows the call is kept"
        );
    }

    #[test]
    fn other_documents_are_refused_with_the_reason() {
        let e = Usage::from_stats(br#"{"configs": []}"#).unwrap_err();
        assert!(e.to_string().contains("stats"), "{e}");
        let e = Usage::from_stats(b"apiVersion: v1\nkind: Pod\n").unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        let e = Usage::from_stats(br#"{"stats": [{"name": "server.uptime", "value": 5}]}"#)
            .unwrap_err();
        assert!(e.to_string().contains("no cluster"), "{e}");
    }
}
