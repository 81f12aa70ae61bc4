//! Shared helpers for tests on the real Envoy captures in `testdata/real/` (the heft crate's
//! tests, and `benches/tests`, which includes this file).

#![allow(dead_code)]

use serde_json::Value as J;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The project's root, from whichever of its crates the tests belong to.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| dir.join("crates/heft").is_dir())
        .expect("the crate lies inside the project")
        .to_path_buf()
}

/// Says that `test` skips for want of `what`, and skips; a failure instead when
/// `HEFT_REQUIRE_ENVOY` is set (the README's test command sets it: there, everything must run).
pub fn skip(test: &str, what: &str) {
    assert!(
        std::env::var_os("HEFT_REQUIRE_ENVOY").is_none(),
        "{test}: {what} (run scripts/setup.sh)"
    );
    eprintln!("{test}: skipped: {what} (run scripts/setup.sh)");
}

/// The Envoy binary of `version` that `scripts/setup.sh` installed, or `None` (said, see
/// [`skip`]) when it is missing.
pub fn envoy_of(test: &str, version: &str) -> Option<String> {
    envoy_path(test, Some(version))
}

/// The pinned Envoy binary (`scripts/envoy-path` with no version), or `None` (said).
pub fn pinned_envoy_of(test: &str) -> Option<String> {
    envoy_path(test, None)
}

fn envoy_path(test: &str, version: Option<&str>) -> Option<String> {
    let out = Command::new(repo().join("scripts/envoy-path"))
        .args(version)
        .output()
        .expect("scripts/envoy-path runs");
    if out.status.success() {
        return Some(String::from_utf8(out.stdout).unwrap().trim().to_string());
    }
    skip(test, &format!("no Envoy {}", version.unwrap_or("(pinned)")));
    None
}

/// The oracle virtualenv's Python, or `None` (said, see [`skip`]) when it is missing.
pub fn oracle_python_of(test: &str) -> Option<PathBuf> {
    let p = repo().join(".venv/oracle/bin/python");
    if p.exists() {
        return Some(p);
    }
    skip(test, &format!("no {}", p.display()));
    None
}

/// The measured points under `dir` (each a directory with a `point.json`), sorted.
pub fn point_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("point.json").exists())
        .collect();
    dirs.sort();
    dirs
}

/// A measured point's `point.json`.
pub fn point_json(dir: &Path) -> J {
    let path = dir.join("point.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Predictions against measurements, one Markdown table row each, and the rows off by more than
/// the tolerance.
#[derive(Debug, Default)]
pub struct Comparisons {
    pub rows: Vec<String>,
    pub failures: Vec<String>,
}

impl Comparisons {
    /// Records one comparison; `cells` are the row's leading cells (`1.40.0 | sidecar-500`).
    pub fn record(&mut self, cells: &str, predicted: f64, measured: f64, tolerance: f64) {
        let error = (predicted - measured) / measured;
        let row = format!(
            "| {cells} | {:.1} MB | {:.1} MB | {:+.1}% |",
            predicted / 1e6,
            measured / 1e6,
            error * 100.0
        );
        if error.abs() > tolerance {
            self.failures.push(row.clone());
        }
        self.rows.push(row);
    }
}

/// Where the real captures are: `testdata/real`, or `$HEFT_CAPTURE_DIR` (the test script points it
/// at captures made from a real Envoy during the same run).
pub fn capture_dir() -> PathBuf {
    match std::env::var_os("HEFT_CAPTURE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => repo().join("testdata/real"),
    }
}

/// One capture file of a scenario, plain or gzipped.
pub fn capture(scenario: &str, name: &str) -> PathBuf {
    let dir = capture_dir().join(scenario);
    let plain = dir.join(name);
    if plain.exists() {
        return plain;
    }
    let gz = dir.join(format!("{name}.gz"));
    assert!(gz.exists(), "no {name} capture in {}", dir.display());
    gz
}

/// Every capture file of the given names under the capture directory; fails when there are none.
pub fn captures(names: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let dir = capture_dir();
    for scenario in std::fs::read_dir(&dir).expect("testdata/real exists") {
        let scenario = scenario.unwrap().path();
        if !scenario.is_dir() {
            continue;
        }
        for name in names {
            for candidate in [name.to_string(), format!("{name}.gz")] {
                let p = scenario.join(candidate);
                if p.exists() {
                    out.push(p);
                }
            }
        }
    }
    out.sort();
    assert!(
        out.len() >= 2,
        "expected captures {names:?} under {}, found {out:?}",
        dir.display()
    );
    out
}

/// The decompressed bytes of a capture.
pub fn bytes(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap();
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&raw[..]), &mut out).unwrap();
        out
    } else {
        raw
    }
}

/// istioctl's own test fixtures, inputs beside the outputs istioctl expects
/// (`testdata/istioctl/README.md`).
pub fn fixtures() -> PathBuf {
    repo().join("testdata/istioctl")
}

/// Runs the independent Python oracle on a file and returns its JSON.
pub fn oracle_summary(path: &Path) -> serde_json::Value {
    let out = Command::new("python3")
        .arg(repo().join("tests/oracle/summary.py"))
        .arg(path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "oracle failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// How much of the original's order a form keeps.
#[derive(Clone, Copy, PartialEq)]
pub enum Order {
    /// Every list in the same order (the YAML of the original document).
    Exact,
    /// Lists Heft fills from proto maps may differ: protobuf keeps no order for map entries, and
    /// json_format prints them in its own.
    MapsUnordered,
    /// Also the resource lists: istioctl sorts a document's keys, so `dynamicActiveClusters`
    /// comes before `staticClusters` and the states' resources interleave differently.
    Any,
}

/// The model lists resources are kept in.
const RESOURCE_LISTS: [&str; 9] = [
    "clusters",
    "listeners",
    "route_configs",
    "endpoint_configs",
    "secrets",
    "rejected",
    "opaque",
    "cluster_statuses",
    "sections",
];

/// Clears what differs between encodings of one dump by nature (JSON, binary, camelCase, YAML):
/// where things sat and how many bytes they took in the input (`span`, `bytes`, `body_bytes`), and
/// how the input was encoded; sorts what `order` says carries no order. With `drop_meta`, clears
/// every `meta` (an array of bare resources, or a DiscoveryResponse's, carries no state or
/// version of its own).
pub fn normalise(v: &mut J, order: Order, drop_meta: bool) {
    match v {
        J::Object(map) => {
            for (k, v) in map.iter_mut() {
                match k.as_str() {
                    "span" => *v = J::Null,
                    "bytes" | "body_bytes" => *v = J::from(0),
                    "encoding" | "compression" => *v = J::Null,
                    "meta" if drop_meta => *v = J::Null,
                    _ => {
                        normalise(v, order, drop_meta);
                        let map_backed =
                            matches!(k.as_str(), "namespaces" | "criteria" | "extensions")
                                || (k == "metadata" && v.is_array());
                        let sort = (order != Order::Exact && map_backed)
                            || (order == Order::Any && RESOURCE_LISTS.contains(&k.as_str()));
                        if let (true, J::Array(items)) = (sort, &mut *v) {
                            items.sort_by_key(|x| x.to_string());
                        }
                    }
                }
            }
        }
        J::Array(items) => items
            .iter_mut()
            .for_each(|x| normalise(x, order, drop_meta)),
        _ => {}
    }
}

pub fn normalised(value: impl serde::Serialize, order: Order, drop_meta: bool) -> J {
    let mut v = serde_json::to_value(value).unwrap();
    normalise(&mut v, order, drop_meta);
    v
}

/// A reader that hands out at most `.1` bytes per read, as a slow pipe would, so that every
/// refill boundary of the stream readers falls everywhere.
pub struct Dribble<'a>(pub &'a [u8], pub usize);

impl std::io::Read for Dribble<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.1.min(self.0.len()).min(out.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

/// Collects every resource, decoded with the detail it is given.
pub struct CollectAt(pub heft::stream::Detail);

impl heft::stream::Fold for CollectAt {
    type Acc = Vec<heft::stream::Resource>;
    fn start(&self) -> Self::Acc {
        Vec::new()
    }
    fn add(&self, acc: &mut Self::Acc, resource: &heft::stream::Resource, _raw: &[u8]) {
        acc.push(resource.clone());
    }
    fn merge(&self, acc: &mut Self::Acc, mut later: Self::Acc) {
        acc.append(&mut later);
    }
    fn detail(&self) -> heft::stream::Detail {
        self.0
    }
}

/// Leaves of each TLS context (clusters' sockets and socket matches, listeners' filter chains)
/// only its side and SDS secret names, as every reader does under `Detail::Shape`; returns how
/// many had a detail (SNI or SAN rules) to lose.
pub fn blank_tls(r: &mut heft::stream::Resource) -> usize {
    use heft::stream::Resource;
    fn blank(socket: Option<&mut heft::model::TransportSocket>) -> usize {
        let Some(tls) = socket.and_then(|s| s.tls.as_mut()) else {
            return 0;
        };
        let detailed = tls.sni.is_some() || !tls.san_matchers.is_empty();
        *tls = heft::model::TlsContext {
            certificate_sds: std::mem::take(&mut tls.certificate_sds),
            validation_sds: tls.validation_sds.take(),
            ..heft::model::TlsContext::empty(tls.side)
        };
        usize::from(detailed)
    }
    let mut detailed = 0;
    match r {
        Resource::Cluster(c) => {
            detailed += blank(c.transport_socket.as_deref_mut());
            for m in &mut c.transport_socket_matches {
                detailed += blank(m.socket.as_mut());
            }
        }
        Resource::Listener(l) => {
            for fc in l
                .filter_chains
                .iter_mut()
                .chain(l.default_filter_chain.as_mut())
            {
                detailed += blank(fc.transport_socket.as_mut());
            }
        }
        _ => {}
    }
    detailed
}

/// What `Detail::Shape` promises to leave out of a fully decoded resource, left out by hand.
pub fn shape_of(mut r: heft::stream::Resource) -> heft::stream::Resource {
    use heft::stream::Resource;
    blank_tls(&mut r);
    let meta = match &mut r {
        Resource::Cluster(c) => Some(&mut c.meta),
        Resource::Listener(l) => Some(&mut l.meta),
        Resource::RouteConfig(rc) => Some(&mut rc.meta),
        Resource::LoadAssignment(la) => Some(&mut la.meta),
        Resource::Secret(s) => Some(&mut s.meta),
        Resource::Rejected(x) => Some(&mut x.meta),
        Resource::Opaque(o) => Some(&mut o.meta),
        _ => None,
    };
    if let Some(meta) = meta {
        meta.version_info = None;
        meta.last_updated = None;
    }
    fn endpoints(la: Option<&mut heft::model::LoadAssignment>) {
        for l in la.into_iter().flat_map(|la| &mut la.localities) {
            l.locality = Default::default();
            for e in &mut l.endpoints {
                e.address = None;
                e.additional_addresses.clear();
                e.hostname = None;
                e.health_check_port = None;
            }
        }
    }
    match &mut r {
        Resource::Cluster(c) => {
            c.metadata = Default::default();
            c.istio = None;
            for m in &mut c.transport_socket_matches {
                m.name = "".into();
                m.criteria.clear();
            }
            endpoints(c.load_assignment.as_deref_mut());
        }
        Resource::LoadAssignment(la) => endpoints(Some(la)),
        Resource::RouteConfig(rc) if rc.meta.state != heft::model::State::Static => {
            for v in &mut rc.virtual_hosts {
                v.name = "".into();
                v.domains.iter_mut().for_each(|d| *d = "".into());
                v.retry_policy = None;
                v.extensions.clear();
                for r in &mut v.routes {
                    blank_route(r);
                }
            }
        }
        _ => {}
    }
    r
}

/// What a shape-only read keeps of a route in a route configuration that is not static.
pub fn blank_route(r: &mut heft::model::Route) {
    use heft::model::{Action, PathMatch, RouteTarget, StringMatch};
    r.name = None;
    r.decorator = r.decorator.as_ref().map(|_| Box::default());
    r.istio_config = None;
    r.extensions.clear();
    let m = &mut r.route_match;
    match &mut m.path {
        PathMatch::Prefix(s)
        | PathMatch::Path(s)
        | PathMatch::SafeRegex(s)
        | PathMatch::PathSeparatedPrefix(s) => *s = "".into(),
        _ => {}
    }
    for h in &mut m.headers {
        (h.name, h.rule, h.invert) = ("".into(), StringMatch::Present(true), false);
        (h.treat_missing_header_as_empty, h.ignore_case) = (false, false);
    }
    for q in &mut m.query_parameters {
        (q.name, q.rule, q.ignore_case) = ("".into(), StringMatch::Present(true), false);
    }
    if let Action::Route(a) = &mut r.action {
        match &mut a.target {
            RouteTarget::Cluster(s) | RouteTarget::ClusterHeader(s) | RouteTarget::Plugin(s) => {
                *s = "".into()
            }
            RouteTarget::Weighted(ws) => {
                for w in ws {
                    (w.name, w.weight) = ("".into(), 0);
                }
            }
            _ => {}
        }
        (a.timeout, a.prefix_rewrite, a.host_rewrite) = (None, None, None);
        if let Some(retry) = &mut a.retry_policy {
            *retry = Default::default();
        }
    }
}
