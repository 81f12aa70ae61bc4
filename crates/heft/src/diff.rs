//! `diff`: what changed between two dumps, matched by identity, and what it costs.
//!
//! [`Diff::of`] matches resources by kind and identity, never by position: clusters, listeners,
//! route configurations and secrets by name (a draining listener apart from the active one),
//! endpoint configurations by cluster; inside a route configuration, virtual hosts by name and
//! routes by name (by position where unnamed, and a named route that moved says so); inside an
//! endpoint configuration, endpoints by address. Both sides are compared as the model holds them,
//! so the same content in any input form (JSON, lowerCamelCase, YAML, protobuf) compares equal.
//! Lists Envoy treats as sets (domains, SANs, server names, ALPN) compare as sets.
//!
//! What the model keeps only by type and size (extension payloads such as per-filter configs)
//! compares by type: a change inside one is not seen.
//!
//! Changes only to bookkeeping (`version_info`, `last_updated`, a certificate renewed with the
//! same subject) are counted apart and listed only when asked ([`Options::all`]).
//!
//! ```
//! let old = heft::Dump::from_slice(br#"[{"name": "a", "type": "EDS"}, {"name": "b", "type": "EDS"}]"#)?;
//! let new = heft::Dump::from_slice(br#"[{"name": "b", "type": "STRICT_DNS"}, {"name": "c", "type": "EDS"}]"#)?;
//! let model = &heft::cost::CostModel::envoy_1_40();
//! let d = heft::diff::Diff::of(&old, &new, model, model, &Default::default(), &Default::default());
//! assert_eq!(d.added[0].name, "c");
//! assert_eq!(d.removed[0].name, "a");
//! assert_eq!(d.changed[0].fields[0].path, "discovery");
//! # Ok::<(), heft::Error>(())
//! ```

use crate::cost::{CostModel, Estimate, ModelUsed, Object, Settings};
use crate::model::{Dump, State};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// What [`Diff::of`] reports.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// List bookkeeping-only changes too (`version_info`, `last_updated`, renewed certificates).
    pub all: bool,
}

/// A resource on one side only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resource {
    /// `bootstrap`, `cluster`, `listener`, `route_config`, `endpoint_config` or `secret`.
    pub kind: &'static str,
    /// Its identity.
    pub name: String,
    /// Its predicted bytes on the side it is on.
    pub bytes: u64,
}

/// One changed field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Field {
    /// Where, as a path into the resource: `circuit_breakers[0].max_connections`,
    /// `virtual_hosts[reviews:9080].routes[default].route_match.path`.
    pub path: String,
    /// The value before (null: absent).
    pub old: Value,
    /// The value after (null: absent).
    pub new: Value,
}

/// A resource on both sides that differs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Changed {
    /// Its kind.
    pub kind: &'static str,
    /// Its identity.
    pub name: String,
    /// The changed fields (bookkeeping left out unless asked).
    pub fields: Vec<Field>,
    /// Predicted bytes before.
    pub before_bytes: u64,
    /// Predicted bytes after.
    pub after_bytes: u64,
}

/// Predicted bytes of one kind (or namespace) on both sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delta {
    /// The kind or namespace.
    pub key: String,
    /// Bytes before.
    pub before_bytes: u64,
    /// Bytes after.
    pub after_bytes: u64,
}

/// What changed.
#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    /// On the new side only, heaviest first.
    pub added: Vec<Resource>,
    /// On the old side only, heaviest first.
    pub removed: Vec<Resource>,
    /// On both, changed, largest cost change first.
    pub changed: Vec<Changed>,
    /// Resources whose only changes are bookkeeping (not in `changed` unless asked).
    pub bookkeeping_only: usize,
    /// Resources equal on both sides.
    pub unchanged: usize,
    /// Predicted heap before.
    pub before_bytes: u64,
    /// Predicted heap after.
    pub after_bytes: u64,
    /// Predicted heap by kind, both sides.
    pub by_kind: Vec<Delta>,
    /// Predicted heap by destination namespace, both sides.
    pub by_namespace: Vec<Delta>,
    /// The model that priced the old side.
    pub before_model: ModelUsed,
    /// The model that priced the new side.
    pub after_model: ModelUsed,
}

/// Fields whose lists Envoy treats as sets, or that Heft fills from a proto map (whose order no
/// printer keeps: metadata namespaces, node metadata pairs).
const SETS: [&str; 7] = [
    "domains",
    "server_names",
    "sans",
    "application_protocols",
    "alpn",
    "namespaces",
    "metadata",
];
/// Bookkeeping: what changes on every push without changing what Envoy does.
const BOOKKEEPING: [&str; 2] = ["version_info", "last_updated"];

/// One resource of a side, borrowed from its dump: turned into a value only to be compared, one
/// pair at a time, so a diff holds the two models and not a tree of each.
#[derive(Clone, Copy)]
enum Held<'d> {
    Bootstrap(&'d crate::model::Bootstrap),
    Cluster(&'d crate::model::Cluster),
    Listener(&'d crate::model::Listener),
    RouteConfig(&'d crate::model::RouteConfig),
    Endpoints(&'d crate::model::LoadAssignment),
    Secret(&'d crate::model::Secret),
}

impl Held<'_> {
    fn value(self) -> Value {
        normalise(match self {
            Held::Bootstrap(b) => to_value(b),
            Held::Cluster(c) => to_value(c),
            Held::Listener(l) => to_value(l),
            Held::RouteConfig(rc) => to_value(rc),
            Held::Endpoints(la) => to_value(la),
            Held::Secret(s) => to_value(s),
        })
    }
}

/// One side's resources by identity: (kind, name) → (the resource, its bytes).
type Side<'d> = BTreeMap<(&'static str, String), (Held<'d>, u64)>;

fn side<'d>(dump: &'d Dump, estimate: &Estimate<'_>) -> Side<'d> {
    let mut bytes: BTreeMap<(&'static str, String), u64> = BTreeMap::new();
    for o in &estimate.objects {
        let key = match o.object {
            Object::RouteConfig(rc) => ("route_config", route_config_name(rc)),
            Object::Cluster(c, _) => ("cluster", c.name.to_string()),
            Object::Endpoints(la) => ("endpoint_config", la.cluster_name.to_string()),
            Object::Listener(l) => ("listener", listener_name(l)),
            Object::Secret(s) => ("secret", s.name.to_string()),
        };
        *bytes.entry(key).or_default() += o.bytes();
    }
    let mut out = Side::new();
    let mut put = |kind: &'static str, name: String, held: Held<'d>| {
        let b = bytes.get(&(kind, name.clone())).copied().unwrap_or(0);
        out.insert((kind, name), (held, b));
    };
    if let Some(b) = &dump.bootstrap {
        put("bootstrap", "bootstrap".into(), Held::Bootstrap(b));
    }
    for c in &dump.clusters {
        put("cluster", c.name.to_string(), Held::Cluster(c));
    }
    for l in &dump.listeners {
        put("listener", listener_name(l), Held::Listener(l));
    }
    for rc in &dump.route_configs {
        put("route_config", route_config_name(rc), Held::RouteConfig(rc));
    }
    for la in &dump.endpoint_configs {
        put(
            "endpoint_config",
            la.cluster_name.to_string(),
            Held::Endpoints(la),
        );
    }
    for s in &dump.secrets {
        put("secret", s.name.to_string(), Held::Secret(s));
    }
    out
}

/// A route configuration's identity: its name, or for the bootstrap's unnamed inline ones (whose
/// order Envoy does not keep from one run to the next) a digest of their content, so equal ones
/// match and a changed one reads as removed and added.
fn route_config_name(rc: &crate::model::RouteConfig) -> String {
    if !rc.name.is_empty() {
        return rc.name.to_string();
    }
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let mut v = normalise(to_value(rc));
    if let Value::Object(m) = &mut v {
        m.remove("meta");
    }
    v.to_string().hash(&mut h);
    format!("(unnamed {:016x})", h.finish())
}

fn listener_name(l: &crate::model::Listener) -> String {
    if l.meta.state == State::Draining {
        format!("{} (draining)", l.name)
    } else {
        l.name.to_string()
    }
}

fn to_value(v: impl Serialize) -> Value {
    serde_json::to_value(v).expect("the model serializes")
}

/// The value as compared: input positions dropped; virtual hosts keyed by name, routes by name
/// (or `#N`), endpoints by address; set-like lists sorted.
fn normalise(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                // Input positions, and the input size of what the model keeps opaque (metadata,
                // extension payloads): both depend on the form, not on what Envoy was given.
                if k == "span" || k == "bytes" {
                    continue;
                }
                let v = match (k.as_str(), v) {
                    ("virtual_hosts", Value::Array(a)) => {
                        keyed(a, |e, _| e["name"].as_str().map(String::from))
                    }
                    ("routes", Value::Array(a)) => {
                        let named = a.iter().filter_map(|r| r["name"].as_str()).count();
                        let mut seen = std::collections::HashSet::new();
                        let unique = a
                            .iter()
                            .filter_map(|r| r["name"].as_str())
                            .all(|n| seen.insert(n.to_string()));
                        let by_name = named == a.len() && unique;
                        keyed_with_position(a, by_name)
                    }
                    ("localities", Value::Array(a)) => {
                        // Endpoints by address, with the locality they sit in as a field.
                        let mut endpoints = Map::new();
                        for loc in a {
                            let where_ = loc.get("locality").cloned().unwrap_or(Value::Null);
                            let priority = loc.get("priority").cloned().unwrap_or(Value::Null);
                            if let Some(Value::Array(es)) = loc.get("endpoints") {
                                for (i, e) in es.iter().enumerate() {
                                    let key =
                                        address_key(e).unwrap_or_else(|| format!("#{}", i + 1));
                                    let mut e = normalise(e.clone());
                                    if let Value::Object(m) = &mut e {
                                        m.insert("locality".into(), where_.clone());
                                        m.insert("priority".into(), priority.clone());
                                    }
                                    endpoints.insert(key, e);
                                }
                            }
                        }
                        out.insert("endpoints".into(), Value::Object(endpoints));
                        continue;
                    }
                    (k, Value::Array(a)) if SETS.contains(&k) => {
                        let mut a: Vec<Value> = a.into_iter().map(normalise).collect();
                        a.sort_by_key(|x| x.to_string());
                        a.dedup();
                        Value::Array(a)
                    }
                    (_, v) => normalise(v),
                };
                out.insert(k, v);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(normalise).collect()),
        other => other,
    }
}

fn address_key(e: &Value) -> Option<String> {
    let a = e.get("address")?;
    let s = a.get("socket").or(Some(a))?;
    match (s.get("address"), s.get("port")) {
        (Some(Value::String(ip)), Some(port)) => Some(format!("{ip}:{port}")),
        _ => Some(a.to_string()),
    }
}

fn keyed(a: Vec<Value>, key: impl Fn(&Value, usize) -> Option<String>) -> Value {
    let mut m = Map::new();
    for (i, e) in a.into_iter().enumerate() {
        let k = key(&e, i).unwrap_or_else(|| format!("#{}", i + 1));
        m.insert(k, normalise(e));
    }
    Value::Object(m)
}

/// Routes keyed by name (when every route has a distinct one), with their position as a field
/// so a move shows; else by position.
fn keyed_with_position(a: Vec<Value>, by_name: bool) -> Value {
    let mut m = Map::new();
    for (i, e) in a.into_iter().enumerate() {
        if by_name {
            let k = e["name"].as_str().unwrap_or_default().to_string();
            let mut e = normalise(e);
            if let Value::Object(o) = &mut e {
                o.insert("position".into(), Value::from(i + 1));
            }
            m.insert(k, e);
        } else {
            m.insert(format!("#{}", i + 1), normalise(e));
        }
    }
    Value::Object(m)
}

/// Every differing leaf between `old` and `new`, as paths.
fn fields(path: &str, old: &Value, new: &Value, out: &mut Vec<Field>) {
    if old == new {
        return;
    }
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else if k.starts_with('[') {
            format!("{path}{k}")
        } else {
            format!("{path}.{k}")
        }
    };
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            // Keyed collections (virtual hosts, routes, endpoints) read as `name[key]`.
            let collection = matches!(path.rsplit('.').next(), Some(last) if ["virtual_hosts", "routes", "endpoints"].iter().any(|c| last.ends_with(c)));
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if collection {
                    format!("{path}[{k}]")
                } else {
                    join(k)
                };
                fields(
                    &p,
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                fields(&join(&format!("[{i}]")), x, y, out);
            }
        }
        _ => out.push(Field {
            path: path.to_string(),
            old: old.clone(),
            new: new.clone(),
        }),
    }
}

/// Whether a change is bookkeeping: an update's version and time, or a certificate renewed
/// (its serial and validity) with the same subject.
fn is_bookkeeping(kind: &str, f: &Field) -> bool {
    let last = f.path.rsplit('.').next().unwrap_or_default();
    if f.path.starts_with("meta.") && BOOKKEEPING.contains(&last) {
        return true;
    }
    kind == "secret"
        && f.path.starts_with("certificates[")
        && matches!(
            last,
            "serial" | "not_before" | "not_after" | "not_before_unix" | "not_after_unix"
        )
}

fn deltas(old: Vec<crate::cost::Rollup>, new: Vec<crate::cost::Rollup>) -> Vec<Delta> {
    let mut m: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for r in old {
        m.entry(r.key).or_default().0 += r.bytes;
    }
    for r in new {
        m.entry(r.key).or_default().1 += r.bytes;
    }
    let mut out: Vec<Delta> = m
        .into_iter()
        .map(|(key, (before_bytes, after_bytes))| Delta {
            key,
            before_bytes,
            after_bytes,
        })
        .collect();
    out.sort_by_key(|d| std::cmp::Reverse(d.after_bytes.abs_diff(d.before_bytes)));
    out
}

impl Diff {
    /// Compares `old` (priced with `old_model`) with `new` (priced with `new_model`: the two may
    /// be different Envoy versions).
    pub fn of(
        old: &Dump,
        new: &Dump,
        old_model: &CostModel,
        new_model: &CostModel,
        settings: &Settings,
        options: &Options,
    ) -> Diff {
        let before = Estimate::of(old, old_model, settings);
        let after = Estimate::of(new, new_model, settings);
        let a = side(old, &before);
        let b = side(new, &after);
        let mut added = Vec::new();
        let mut removed = Vec::new();
        let mut changed = Vec::new();
        let (mut bookkeeping_only, mut unchanged) = (0, 0);
        for ((kind, name), (held, bytes)) in &a {
            match b.get(&(*kind, name.clone())) {
                None => removed.push(Resource {
                    kind,
                    name: name.clone(),
                    bytes: *bytes,
                }),
                Some((new_held, new_bytes)) => {
                    let mut fs = Vec::new();
                    fields("", &held.value(), &new_held.value(), &mut fs);
                    if fs.is_empty() {
                        unchanged += 1;
                        continue;
                    }
                    let real = fs.iter().any(|f| !is_bookkeeping(kind, f));
                    if !real {
                        bookkeeping_only += 1;
                        if !options.all {
                            continue;
                        }
                    }
                    if !options.all {
                        fs.retain(|f| !is_bookkeeping(kind, f));
                    }
                    changed.push(Changed {
                        kind,
                        name: name.clone(),
                        fields: fs,
                        before_bytes: *bytes,
                        after_bytes: *new_bytes,
                    });
                }
            }
        }
        for ((kind, name), (_, bytes)) in &b {
            if !a.contains_key(&(*kind, name.clone())) {
                added.push(Resource {
                    kind,
                    name: name.clone(),
                    bytes: *bytes,
                });
            }
        }
        added.sort_by_key(|r| std::cmp::Reverse(r.bytes));
        removed.sort_by_key(|r| std::cmp::Reverse(r.bytes));
        changed.sort_by_key(|c| std::cmp::Reverse(c.after_bytes.abs_diff(c.before_bytes)));
        Diff {
            added,
            removed,
            changed,
            bookkeeping_only,
            unchanged,
            before_bytes: before.total(),
            after_bytes: after.total(),
            by_kind: deltas(
                before.rollup(crate::cost::RollupBy::Kind),
                after.rollup(crate::cost::RollupBy::Kind),
            ),
            by_namespace: deltas(
                before.rollup(crate::cost::RollupBy::Namespace),
                after.rollup(crate::cost::RollupBy::Namespace),
            ),
            before_model: before.model_used.clone(),
            after_model: after.model_used.clone(),
        }
    }
}
