//! Istio-shaped config dumps of any size, grown from a real Envoy capture.
//!
//! The real sidecar capture (`testdata/real/sidecar/config_dump.json.gz`, made by Envoy 1.40)
//! is kept whole and supplies the templates: an EDS cluster with Istio's mTLS transport socket
//! matches, its DestinationRule subset clusters, its endpoint configuration, virtual hosts, the
//! HTTP listener of a port and a TCP proxy listener. The mesh grows Knative-style: each function
//! has three services (`fn-N`, its revision `fn-N-00001` and the revision's `-private` service)
//! with one to six ports each. Every service port gets an outbound cluster (and subset clusters for
//! some), an endpoint configuration, and either a virtual host in that port's route configuration
//! (HTTP ports) or a TCP proxy listener on the service's address (port 443).
//!
//! A dump is a JSON value in which some arrays hold *streams*: placeholders for long runs of
//! generated elements, produced in parallel chunks while the dump is written. The same value is
//! written three ways: as Envoy prints it (proto field names, one-space indentation), as proto3
//! JSON with lowerCamelCase names, and as a binary `envoy.admin.v3.ConfigDump`. The last two use
//! the official Envoy protos (a descriptor set written by `benches/descriptors.py` from
//! xds-protos), so they are what Envoy or istioctl would print, not Heft's own trimmed protos.

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, Kind, MessageDescriptor};
use rayon::prelude::*;
use serde_json::{Map, Value};
use std::io::{self, Read, Write};
use std::path::Path;

/// How big a mesh to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mesh {
    /// Knative functions (three services each).
    pub functions: usize,
    /// Endpoints per cluster (subset clusters get half, at least one).
    pub endpoints: usize,
    /// Namespaces the functions are spread over.
    pub namespaces: usize,
}

impl Mesh {
    /// A mesh of `functions` with the defaults: 3 endpoints per cluster, 40 namespaces.
    pub fn new(functions: usize) -> Mesh {
        Mesh {
            functions,
            endpoints: 3,
            namespaces: 40,
        }
    }
}

/// How to write the dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// As Envoy's admin prints `/config_dump`: proto field names, one-space indentation.
    Json,
    /// Proto3 JSON with lowerCamelCase field names, in the same layout.
    CamelJson,
    /// A binary `envoy.admin.v3.ConfigDump`.
    Binary,
}

const HTTP_PORTS: [u16; 5] = [80, 8012, 8022, 9090, 9091];
const TCP_PORT: u16 = 443;
/// Functions generated per parallel chunk of a stream.
const CHUNK: usize = 32;

/// One generated service.
struct Service {
    name: String,
    ns: String,
    ports: &'static [u16],
    /// DestinationRule subsets on its HTTP ports (its TCP port always has v1 and v2).
    subsets: bool,
    /// Its address, for TCP listeners.
    vip: String,
}

fn services(f: usize, mesh: &Mesh) -> [Service; 3] {
    let ns = format!("ns-{}", f % mesh.namespaces.max(1));
    let vip = |k: usize| {
        let i = f * 3 + k;
        format!("172.{}.{}.{}", 16 + (i >> 16) % 16, (i >> 8) & 255, i & 255)
    };
    [
        Service {
            name: format!("fn-{f}"),
            ns: ns.clone(),
            ports: &[80],
            subsets: false,
            vip: vip(0),
        },
        Service {
            name: format!("fn-{f}-00001"),
            ns: ns.clone(),
            ports: &[80, 443],
            subsets: f.is_multiple_of(4),
            vip: vip(1),
        },
        Service {
            name: format!("fn-{f}-00001-private"),
            ns,
            ports: &[80, 443, 8012, 8022, 9090, 9091],
            subsets: false,
            vip: vip(2),
        },
    ]
}

impl Service {
    fn host(&self) -> String {
        format!("{}.{}.svc.cluster.local", self.name, self.ns)
    }

    fn subsets(&self, port: u16) -> &'static [&'static str] {
        if port == TCP_PORT || self.subsets {
            &["v1", "v2"]
        } else {
            &[]
        }
    }
}

/// A template: a value from the capture and the identity (service, namespace, port) it names.
#[derive(Clone)]
struct Template {
    value: Value,
    name: &'static str,
    ns: &'static str,
    port: &'static str,
}

/// Replaces the template's identity everywhere in `v`: in strings, in `namespace` values, in
/// `port_value`s.
fn retarget(v: &mut Value, t: &Template, name: &str, ns: &str, port: &str, extra: &[(&str, &str)]) {
    let from_host = format!("{}.{}", t.name, t.ns);
    let to_host = format!("{name}.{ns}");
    let from_ns = format!("/ns/{}/", t.ns);
    let to_ns = format!("/ns/{ns}/");
    let from_wl = format!(";{};", t.ns);
    let to_wl = format!(";{ns};");
    let port_num: u64 = port.parse().unwrap_or(0);
    let template_port: u64 = t.port.parse().unwrap_or(0);
    fn walk(v: &mut Value, key: &str, f: &dyn Fn(&str, &mut Value)) {
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    walk(x, k, f);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, key, f)),
            _ => f(key, v),
        }
    }
    walk(v, "", &|key, x| match x {
        Value::String(s) => {
            if key == "namespace" && s == t.ns {
                *s = ns.to_string();
                return;
            }
            let mut out = s
                .replace(&from_host, &to_host)
                .replace(&from_ns, &to_ns)
                .replace(&from_wl, &to_wl)
                .replace(t.name, name)
                .replace(t.port, port);
            for (a, b) in extra {
                out = out.replace(a, b);
            }
            *s = out;
        }
        Value::Number(n) if key == "port_value" && n.as_u64() == Some(template_port) => {
            *x = Value::from(port_num);
        }
        _ => {}
    });
}

/// The templates taken from the real capture.
struct Templates {
    capture: Value,
    cluster: Template,
    subset: Template,
    endpoints: Template,
    plain_vhost: Template,
    subset_vhost: Template,
    route_config: Template,
    http_listener: Template,
    tcp_listener: Template,
}

fn entry<'v>(
    section: &'v Value,
    list: &str,
    pick: impl Fn(&Value) -> bool,
) -> io::Result<&'v Value> {
    section[list]
        .as_array()
        .and_then(|a| a.iter().find(|e| pick(e)))
        .ok_or_else(|| io::Error::other(format!("no template in {list} of the capture")))
}

fn named(v: &Value, field: &str, name: &str) -> bool {
    v[field]["name"].as_str() == Some(name) || v[field]["cluster_name"].as_str() == Some(name)
}

impl Templates {
    fn load(capture: &Path) -> io::Result<Templates> {
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(capture)?).read_to_end(&mut text)?;
        let capture: Value = serde_json::from_slice(&text)?;
        let section = |kind: &str| -> io::Result<&Value> {
            capture["configs"]
                .as_array()
                .and_then(|c| {
                    c.iter()
                        .find(|s| s["@type"].as_str().is_some_and(|t| t.ends_with(kind)))
                })
                .ok_or_else(|| io::Error::other(format!("no {kind} in the capture")))
        };
        let t = |value: &Value, name, ns, port| Template {
            value: value.clone(),
            name,
            ns,
            port,
        };
        let clusters = section(".ClustersConfigDump")?;
        let reviews = "outbound|9080||reviews.default.svc.cluster.local";
        let cluster = entry(clusters, "dynamic_active_clusters", |e| {
            named(e, "cluster", reviews)
        })?;
        let subset = entry(clusters, "dynamic_active_clusters", |e| {
            named(
                e,
                "cluster",
                "outbound|9080|v1|reviews.default.svc.cluster.local",
            )
        })?;
        let endpoints = entry(
            section(".EndpointsConfigDump")?,
            "dynamic_endpoint_configs",
            |e| named(e, "endpoint_config", reviews),
        )?;
        let rc = entry(
            section(".RoutesConfigDump")?,
            "dynamic_route_configs",
            |e| named(e, "route_config", "9080"),
        )?;
        let vhost = |host: &str| -> io::Result<Value> {
            rc["route_config"]["virtual_hosts"]
                .as_array()
                .and_then(|v| {
                    v.iter()
                        .find(|v| v["name"].as_str() == Some(&format!("{host}:9080")))
                })
                .cloned()
                .ok_or_else(|| io::Error::other(format!("no virtual host {host} in the capture")))
        };
        let listeners = section(".ListenersConfigDump")?;
        let http = entry(listeners, "dynamic_listeners", |e| {
            e["name"].as_str() == Some("0.0.0.0_9080")
        })?;
        let mut tcp = entry(listeners, "dynamic_listeners", |e| {
            e["name"].as_str() == Some("0.0.0.0_27017")
        })?
        .clone();
        // Only the active state: the capture's draining state is a one-off.
        if let Some(m) = tcp.as_object_mut() {
            m.remove("draining_state");
        }
        Ok(Templates {
            cluster: t(cluster, "reviews", "default", "9080"),
            subset: t(subset, "reviews", "default", "9080"),
            endpoints: t(endpoints, "reviews", "default", "9080"),
            plain_vhost: t(
                &vhost("productpage.default.svc.cluster.local")?,
                "productpage",
                "default",
                "9080",
            ),
            subset_vhost: t(
                &vhost("reviews.default.svc.cluster.local")?,
                "reviews",
                "default",
                "9080",
            ),
            route_config: t(rc, "reviews", "default", "9080"),
            http_listener: t(http, "reviews", "default", "9080"),
            tcp_listener: t(&tcp, "mongodb", "shop", "27017"),
            capture,
        })
    }

    fn cluster(&self, s: &Service, port: u16, subset: Option<&str>) -> Value {
        let port = port.to_string();
        match subset {
            None => {
                let mut v = self.cluster.value.clone();
                retarget(&mut v, &self.cluster, &s.name, &s.ns, &port, &[]);
                v
            }
            Some(k) => {
                let mut v = self.subset.value.clone();
                let pipes = format!("|{k}|");
                let sni = format!("_.{k}_.");
                let extra = [("|v1|", pipes.as_str()), ("_.v1_.", sni.as_str())];
                retarget(&mut v, &self.subset, &s.name, &s.ns, &port, &extra);
                if let Some(m) =
                    v["cluster"]["metadata"]["filter_metadata"]["istio"].as_object_mut()
                {
                    m.insert("subset".into(), Value::from(k));
                }
                v
            }
        }
    }

    fn endpoints(
        &self,
        s: &Service,
        port: u16,
        subset: Option<&str>,
        n: usize,
        ip: &mut u32,
    ) -> Value {
        let mut v = self.endpoints.value.clone();
        let port_s = port.to_string();
        retarget(&mut v, &self.endpoints, &s.name, &s.ns, &port_s, &[]);
        let name = match subset {
            Some(k) => format!("outbound|{port}|{k}|{}", s.host()),
            None => format!("outbound|{port}||{}", s.host()),
        };
        let cla = &mut v["endpoint_config"];
        cla["cluster_name"] = Value::from(name);
        let localities = cla["endpoints"].as_array().cloned().unwrap_or_default();
        let n = if subset.is_some() { (n / 2).max(1) } else { n };
        let mut out: Vec<Value> = Vec::new();
        for (li, loc) in localities.iter().enumerate() {
            let Some(lb) = loc["lb_endpoints"].get(0) else {
                continue;
            };
            let mut lbs = Vec::new();
            for _ in (li..n).step_by(localities.len().max(1)) {
                let mut e = lb.clone();
                *ip += 1;
                let a = format!(
                    "10.{}.{}.{}",
                    (*ip >> 16) & 255,
                    (*ip >> 8) & 255,
                    *ip & 255
                );
                e["endpoint"]["address"]["socket_address"]["address"] = Value::from(a);
                lbs.push(e);
            }
            if !lbs.is_empty() {
                let mut l = loc.clone();
                l["lb_endpoints"] = Value::Array(lbs);
                out.push(l);
            }
        }
        cla["endpoints"] = Value::Array(out);
        v
    }

    fn vhost(&self, s: &Service, port: u16) -> Value {
        let t = if s.subsets {
            &self.subset_vhost
        } else {
            &self.plain_vhost
        };
        let mut v = t.value.clone();
        retarget(&mut v, t, &s.name, &s.ns, &port.to_string(), &[]);
        v
    }

    fn tcp_listener(&self, s: &Service) -> Value {
        let t = &self.tcp_listener;
        let mut v = t.value.clone();
        let host = s.host();
        let name = format!("{}_{TCP_PORT}", s.vip);
        let v1 = format!("outbound|{TCP_PORT}|v1|{host}");
        let v2 = format!("outbound|{TCP_PORT}|v2|{host}");
        let extra = [
            ("0.0.0.0_443", name.as_str()),
            (&*format!("outbound|{TCP_PORT}|primary|{host}"), v1.as_str()),
            (&*format!("outbound|{TCP_PORT}|replica|{host}"), v2.as_str()),
        ];
        retarget(&mut v, t, &s.name, &s.ns, &TCP_PORT.to_string(), &extra);
        v["active_state"]["listener"]["address"]["socket_address"]["address"] =
            Value::from(s.vip.clone());
        v
    }
}

/// Where the elements of a stream come from: chunks of generated values, made in parallel.
pub trait Source: Sync {
    /// How many chunks.
    fn chunks(&self) -> usize;
    /// The elements of chunk `i`, in order.
    fn chunk(&self, i: usize) -> Vec<Value>;
}

const STREAM: &str = "@@heft-gen-stream:";

fn placeholder(id: usize) -> Value {
    Value::from(format!("{STREAM}{id}"))
}

fn stream_id(v: &Value) -> Option<usize> {
    v.as_str()?.strip_prefix(STREAM)?.parse().ok()
}

fn has_stream(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.values().any(has_stream),
        Value::Array(a) => a.iter().any(has_stream),
        Value::String(_) => stream_id(v).is_some(),
        _ => false,
    }
}

/// A dump to write: the capture with streams in its growing arrays.
pub struct Dump {
    root: Value,
    sources: Vec<Box<dyn Source>>,
}

struct PerFunction<F: Fn(usize) -> Vec<Value> + Sync> {
    functions: usize,
    make: F,
}

impl<F: Fn(usize) -> Vec<Value> + Sync> Source for PerFunction<F> {
    fn chunks(&self) -> usize {
        self.functions.div_ceil(CHUNK)
    }
    fn chunk(&self, i: usize) -> Vec<Value> {
        (i * CHUNK..((i + 1) * CHUNK).min(self.functions))
            .flat_map(&self.make)
            .collect()
    }
}

/// Appends a stream to the array `key` of the section whose `@type` ends with `kind`.
fn append_stream(root: &mut Value, kind: &str, key: &str, id: usize) {
    for section in root["configs"].as_array_mut().into_iter().flatten() {
        if section["@type"].as_str().is_some_and(|t| t.ends_with(kind)) {
            if let Some(a) = section[key].as_array_mut() {
                a.push(placeholder(id));
            }
        }
    }
}

fn append_fixed(root: &mut Value, kind: &str, key: &str, items: Vec<Value>) {
    for section in root["configs"].as_array_mut().into_iter().flatten() {
        if section["@type"].as_str().is_some_and(|t| t.ends_with(kind)) {
            if let Some(a) = section[key].as_array_mut() {
                a.extend(items);
                return;
            }
        }
    }
}

impl Dump {
    /// The dump of `mesh`, grown from the capture at `capture`.
    pub fn new(capture: &Path, mesh: Mesh) -> io::Result<Dump> {
        let t = std::sync::Arc::new(Templates::load(capture)?);
        let mut root = t.capture.clone();
        let mut sources: Vec<Box<dyn Source>> = Vec::new();
        let n = mesh.functions;
        if n == 0 {
            return Ok(Dump { root, sources });
        }
        let tc = t.clone();
        sources.push(Box::new(PerFunction {
            functions: n,
            make: move |f| {
                let mut out = Vec::new();
                for s in services(f, &mesh) {
                    for &port in s.ports {
                        out.push(tc.cluster(&s, port, None));
                        for k in s.subsets(port) {
                            out.push(tc.cluster(&s, port, Some(k)));
                        }
                    }
                }
                out
            },
        }));
        append_stream(
            &mut root,
            ".ClustersConfigDump",
            "dynamic_active_clusters",
            0,
        );
        let te = t.clone();
        sources.push(Box::new(PerFunction {
            functions: n,
            make: move |f| {
                let mut out = Vec::new();
                let mut ip = (f as u32) * 64;
                for s in services(f, &mesh) {
                    for &port in s.ports {
                        out.push(te.endpoints(&s, port, None, mesh.endpoints, &mut ip));
                        for k in s.subsets(port) {
                            out.push(te.endpoints(&s, port, Some(k), mesh.endpoints, &mut ip));
                        }
                    }
                }
                out
            },
        }));
        append_stream(
            &mut root,
            ".EndpointsConfigDump",
            "dynamic_endpoint_configs",
            1,
        );
        let tl = t.clone();
        sources.push(Box::new(PerFunction {
            functions: n,
            make: move |f| {
                services(f, &mesh)
                    .iter()
                    .filter(|s| s.ports.contains(&TCP_PORT))
                    .map(|s| tl.tcp_listener(s))
                    .collect()
            },
        }));
        let mut http_listeners = Vec::new();
        let mut route_configs = Vec::new();
        for port in HTTP_PORTS {
            let p = port.to_string();
            let mut l = t.http_listener.value.clone();
            retarget(&mut l, &t.http_listener, "reviews", "default", &p, &[]);
            http_listeners.push(l);
            let mut rc = t.route_config.value.clone();
            rc["route_config"]["name"] = Value::from(p.clone());
            let first = services(0, &mesh)
                .into_iter()
                .find(|s| s.ports.contains(&port))
                .map(|s| t.vhost(&s, port));
            let id = sources.len();
            let tv = t.clone();
            sources.push(Box::new(PerFunction {
                functions: n,
                make: move |f| {
                    let mut out: Vec<Value> = services(f, &mesh)
                        .iter()
                        .filter(|s| s.ports.contains(&port))
                        .map(|s| tv.vhost(s, port))
                        .collect();
                    if f == 0 {
                        // The first one is fixed (below).
                        out.remove(0);
                    }
                    out
                },
            }));
            // The capture's catch-all virtual host stays last.
            let allow_any = rc["route_config"]["virtual_hosts"]
                .as_array()
                .and_then(|v| v.iter().find(|v| v["name"] == "allow_any").cloned());
            let mut vhosts: Vec<Value> = first.into_iter().collect();
            vhosts.push(placeholder(id));
            vhosts.extend(allow_any);
            rc["route_config"]["virtual_hosts"] = Value::Array(vhosts);
            route_configs.push(rc);
        }
        append_fixed(
            &mut root,
            ".ListenersConfigDump",
            "dynamic_listeners",
            http_listeners,
        );
        append_stream(&mut root, ".ListenersConfigDump", "dynamic_listeners", 2);
        append_fixed(
            &mut root,
            ".RoutesConfigDump",
            "dynamic_route_configs",
            route_configs,
        );
        Ok(Dump { root, sources })
    }

    /// Writes the dump in `form`; `pool` (the Envoy descriptors) is needed for the camelCase
    /// and binary forms.
    pub fn write(
        &self,
        form: Form,
        pool: Option<&DescriptorPool>,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        match form {
            Form::Json => {
                let mut w = JsonWriter {
                    dump: self,
                    camel: None,
                    out,
                };
                w.value(&self.root, 0, None)?;
                w.out.write_all(b"\n")
            }
            Form::CamelJson => {
                let pool =
                    pool.ok_or_else(|| io::Error::other("camelCase needs the descriptors"))?;
                let root_desc = message(pool, "envoy.admin.v3.ConfigDump")?;
                let root = camel(pool, &root_desc, &self.root)?;
                let mut w = JsonWriter {
                    dump: self,
                    camel: Some(pool),
                    out,
                };
                w.value(&root, 0, Some(&root_desc))?;
                w.out.write_all(b"\n")
            }
            Form::Binary => {
                let pool = pool.ok_or_else(|| io::Error::other("binary needs the descriptors"))?;
                let root_desc = message(pool, "envoy.admin.v3.ConfigDump")?;
                let bytes = encode(self, pool, &root_desc, &self.root)?;
                out.write_all(&bytes)
            }
        }
    }
}

fn message(pool: &DescriptorPool, name: &str) -> io::Result<MessageDescriptor> {
    pool.get_message_by_name(name)
        .ok_or_else(|| io::Error::other(format!("{name} is not in the descriptors")))
}

/// The Envoy protos, from the descriptor set `benches/descriptors.py` writes.
pub fn load_descriptors(path: &Path) -> io::Result<DescriptorPool> {
    let bytes = std::fs::read(path)?;
    DescriptorPool::decode(&bytes[..])
        .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))
}

/// Writes JSON as Envoy prints it: one-space indentation, `"key": value`.
struct JsonWriter<'d, 'o> {
    dump: &'d Dump,
    /// With descriptors: stream elements are converted to camelCase proto3 JSON as they go.
    camel: Option<&'d DescriptorPool>,
    out: &'o mut dyn Write,
}

fn indent(out: &mut Vec<u8>, depth: usize) {
    out.push(b'\n');
    out.extend(std::iter::repeat_n(b' ', depth));
}

/// Prints a value with no streams inside.
fn print(out: &mut Vec<u8>, v: &Value, depth: usize) {
    match v {
        Value::Object(m) if m.is_empty() => out.extend_from_slice(b"{}"),
        Value::Array(a) if a.is_empty() => out.extend_from_slice(b"[]"),
        Value::Object(m) => {
            out.push(b'{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                indent(out, depth + 1);
                serde_json::to_writer(&mut *out, k).expect("a string serializes");
                out.extend_from_slice(b": ");
                print(out, x, depth + 1);
            }
            indent(out, depth);
            out.push(b'}');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                indent(out, depth + 1);
                print(out, x, depth + 1);
            }
            indent(out, depth);
            out.push(b']');
        }
        _ => serde_json::to_writer(&mut *out, v).expect("a scalar serializes"),
    }
}

/// The element type of a repeated message field `key` of `desc` (by proto or JSON name).
fn element(desc: Option<&MessageDescriptor>, key: &str) -> Option<MessageDescriptor> {
    let desc = desc?;
    let field = desc
        .get_field_by_name(key)
        .or_else(|| desc.get_field_by_json_name(key))?;
    match field.kind() {
        Kind::Message(m) => Some(m),
        _ => None,
    }
}

impl JsonWriter<'_, '_> {
    fn value(
        &mut self,
        v: &Value,
        depth: usize,
        desc: Option<&MessageDescriptor>,
    ) -> io::Result<()> {
        if !has_stream(v) {
            let mut buf = Vec::new();
            print(&mut buf, v, depth);
            return self.out.write_all(&buf);
        }
        match v {
            Value::Object(m) => {
                self.out.write_all(b"{")?;
                for (i, (k, x)) in m.iter().enumerate() {
                    let mut head = Vec::new();
                    if i > 0 {
                        head.push(b',');
                    }
                    indent(&mut head, depth + 1);
                    serde_json::to_writer(&mut head, k)?;
                    head.extend_from_slice(b": ");
                    self.out.write_all(&head)?;
                    let inner = self.inner_desc(desc, k, x);
                    self.value(x, depth + 1, inner.as_ref())?;
                }
                let mut tail = Vec::new();
                indent(&mut tail, depth);
                tail.push(b'}');
                self.out.write_all(&tail)
            }
            Value::Array(a) => {
                self.out.write_all(b"[")?;
                let mut first = true;
                for x in a {
                    match stream_id(x) {
                        Some(id) => self.stream(id, depth + 1, desc, &mut first)?,
                        None => {
                            self.separator(depth + 1, &mut first)?;
                            self.value(x, depth + 1, desc)?;
                        }
                    }
                }
                let mut tail = Vec::new();
                indent(&mut tail, depth);
                tail.push(b']');
                self.out.write_all(&tail)
            }
            _ => unreachable!("only containers hold streams"),
        }
    }

    /// The message type of member `k` (for arrays: of their elements), following `Any`s.
    fn inner_desc(
        &self,
        desc: Option<&MessageDescriptor>,
        k: &str,
        x: &Value,
    ) -> Option<MessageDescriptor> {
        let pool = self.camel?;
        let inner = element(desc, k)?;
        if inner.full_name() == "google.protobuf.Any" {
            let url = x.get("@type")?.as_str()?;
            return pool.get_message_by_name(url.rsplit('/').next()?);
        }
        Some(inner)
    }

    fn separator(&mut self, depth: usize, first: &mut bool) -> io::Result<()> {
        let mut head = Vec::new();
        if !*first {
            head.push(b',');
        }
        *first = false;
        indent(&mut head, depth);
        self.out.write_all(&head)
    }

    /// Writes a stream's elements, made and printed in parallel, written in order.
    fn stream(
        &mut self,
        id: usize,
        depth: usize,
        desc: Option<&MessageDescriptor>,
        first: &mut bool,
    ) -> io::Result<()> {
        let source = &self.dump.sources[id];
        let camel_pool = self.camel;
        let dump = self.dump;
        // Bounded groups of chunks, so memory does not grow with the stream.
        let group = rayon::current_num_threads() * 4;
        for start in (0..source.chunks()).step_by(group) {
            let end = (start + group).min(source.chunks());
            let texts: Vec<io::Result<Vec<u8>>> = (start..end)
                .into_par_iter()
                .map(|c| {
                    let mut buf = Vec::new();
                    for (i, item) in source.chunk(c).into_iter().enumerate() {
                        let item = match (camel_pool, desc) {
                            (Some(pool), Some(d)) => camel(pool, d, &item)?,
                            _ => item,
                        };
                        if i > 0 {
                            buf.push(b',');
                        }
                        indent(&mut buf, depth);
                        let mut w = JsonWriter {
                            dump,
                            camel: camel_pool,
                            out: &mut buf,
                        };
                        w.value(&item, depth, desc)?;
                    }
                    Ok(buf)
                })
                .collect();
            for text in texts {
                let text = text?;
                if text.is_empty() {
                    continue;
                }
                // Each chunk starts with its own newline and indentation.
                if !*first {
                    self.out.write_all(b",")?;
                }
                *first = false;
                self.out.write_all(&text)?;
            }
        }
        Ok(())
    }
}

fn bad(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// Proto3 JSON with lowerCamelCase names, field order of the descriptor; streams are kept (their
/// elements are converted as they are written).
fn camel(pool: &DescriptorPool, desc: &MessageDescriptor, v: &Value) -> io::Result<Value> {
    if !has_stream(v) {
        let msg = DynamicMessage::deserialize(desc.clone(), v)
            .map_err(|e| bad(format!("{}: {e}", desc.full_name())))?;
        return serde_json::to_value(&msg).map_err(bad);
    }
    let Value::Object(m) = v else {
        return Err(bad("a stream outside a message"));
    };
    let mut out: Vec<(u32, String, Value)> = Vec::new();
    let mut plain = Map::new();
    let mut special = Vec::new();
    for (k, x) in m {
        if has_stream(x) {
            special.push((k, x));
        } else {
            plain.insert(k.clone(), x.clone());
        }
    }
    let mut type_url = None;
    let target = if desc.full_name() == "google.protobuf.Any" {
        let url = plain
            .remove("@type")
            .and_then(|u| u.as_str().map(str::to_string))
            .ok_or_else(|| bad("an Any without @type"))?;
        let name = url.rsplit('/').next().unwrap_or("").to_string();
        type_url = Some(url);
        message(pool, &name)?
    } else {
        desc.clone()
    };
    if let Value::Object(conv) = camel(pool, &target, &Value::Object(plain))? {
        for (k, x) in conv {
            let n = target.get_field_by_json_name(&k).map_or(0, |f| f.number());
            out.push((n, k, x));
        }
    }
    for (k, x) in special {
        let field = target
            .get_field_by_name(k)
            .ok_or_else(|| bad(format!("{} has no field {k}", target.full_name())))?;
        let Kind::Message(inner) = field.kind() else {
            return Err(bad("a stream in a scalar field"));
        };
        let converted = match x {
            Value::Array(a) => Value::Array(
                a.iter()
                    .map(|e| {
                        if stream_id(e).is_some() {
                            Ok(e.clone())
                        } else {
                            camel(pool, &inner, e)
                        }
                    })
                    .collect::<io::Result<_>>()?,
            ),
            _ => camel(pool, &inner, x)?,
        };
        out.push((field.number(), field.json_name().to_string(), converted));
    }
    out.sort_by_key(|(n, ..)| *n);
    let mut map = Map::new();
    if let Some(url) = type_url {
        map.insert("@type".into(), Value::from(url));
    }
    for (_, k, x) in out {
        map.insert(k, x);
    }
    Ok(Value::Object(map))
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn len_field(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    varint(out, (u64::from(number) << 3) | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Encodes `v` as a `desc` message; streams become repeated fields in place.
fn encode(
    dump: &Dump,
    pool: &DescriptorPool,
    desc: &MessageDescriptor,
    v: &Value,
) -> io::Result<Vec<u8>> {
    if !has_stream(v) {
        let msg = DynamicMessage::deserialize(desc.clone(), v)
            .map_err(|e| bad(format!("{}: {e}", desc.full_name())))?;
        return Ok(msg.encode_to_vec());
    }
    let Value::Object(m) = v else {
        return Err(bad("a stream outside a message"));
    };
    if desc.full_name() == "google.protobuf.Any" {
        let url = m["@type"]
            .as_str()
            .ok_or_else(|| bad("an Any without @type"))?;
        let inner = message(pool, url.rsplit('/').next().unwrap_or(""))?;
        let mut rest = m.clone();
        rest.remove("@type");
        let value = encode(dump, pool, &inner, &Value::Object(rest))?;
        let mut out = Vec::new();
        len_field(&mut out, 1, url.as_bytes());
        len_field(&mut out, 2, &value);
        return Ok(out);
    }
    // Fields in number order, as protobuf libraries write them: each field on its own (the
    // encodings of disjoint fields concatenate to the message's).
    let mut fields: Vec<(u32, Vec<u8>)> = Vec::new();
    for (k, x) in m {
        let field = desc
            .get_field_by_name(k)
            .ok_or_else(|| bad(format!("{} has no field {k}", desc.full_name())))?;
        let mut out = Vec::new();
        if !has_stream(x) {
            let mut one = Map::new();
            one.insert(k.clone(), x.clone());
            out = encode(dump, pool, desc, &Value::Object(one))?;
            fields.push((field.number(), out));
            continue;
        }
        let Kind::Message(inner) = field.kind() else {
            return Err(bad("a stream in a scalar field"));
        };
        let elements: Vec<&Value> = match x {
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        for e in elements {
            match stream_id(e) {
                Some(id) => {
                    let source = &dump.sources[id];
                    let encoded: Vec<io::Result<Vec<u8>>> = (0..source.chunks())
                        .into_par_iter()
                        .map(|c| {
                            let mut buf = Vec::new();
                            for item in source.chunk(c) {
                                let bytes = encode(dump, pool, &inner, &item)?;
                                len_field(&mut buf, field.number(), &bytes);
                            }
                            Ok(buf)
                        })
                        .collect();
                    for chunk in encoded {
                        out.extend_from_slice(&chunk?);
                    }
                }
                None => {
                    let bytes = encode(dump, pool, &inner, e)?;
                    len_field(&mut out, field.number(), &bytes);
                }
            }
        }
        fields.push((field.number(), out));
    }
    fields.sort_by_key(|(n, _)| *n);
    let mut out = Vec::new();
    for (_, bytes) in fields {
        out.extend_from_slice(&bytes);
    }
    Ok(out)
}

/// How many functions make a dump of about `bytes` in `form`: measured on a small one.
pub fn functions_for(capture: &Path, bytes: u64, endpoints: usize) -> io::Result<usize> {
    let size = |functions: usize| -> io::Result<u64> {
        let mut mesh = Mesh::new(functions);
        mesh.endpoints = endpoints;
        let mut count = Counter(0);
        Dump::new(capture, mesh)?.write(Form::Json, None, &mut count)?;
        Ok(count.0)
    };
    let (small, big) = (size(0)?, size(64)?);
    let per = (big - small) as f64 / 64.0;
    Ok(((bytes.saturating_sub(small)) as f64 / per)
        .round()
        .max(0.0) as usize)
}

struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
