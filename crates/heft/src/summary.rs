//! `summary`: who the proxy is and how much of everything it holds.
//!
//! The value serialises to the stable JSON documented in `docs/summary-json.md`; fields are only
//! ever added. Rendering it as text is the CLI's job.

use crate::model::{DocumentKind, Dump, OpaqueResource, Section, Source, State};
use crate::stream::{Fold, Outline, Resource};
use indexmap::IndexMap;
use serde::Serialize;

/// Counts by state; always has the four keys `static`, `active`, `warming`, `draining`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ByState {
    /// From the bootstrap.
    #[serde(rename = "static")]
    pub static_: u64,
    /// Active.
    pub active: u64,
    /// Warming.
    pub warming: u64,
    /// Draining.
    pub draining: u64,
}

impl ByState {
    /// The sum over states.
    pub fn total(&self) -> u64 {
        self.static_ + self.active + self.warming + self.draining
    }
}

/// A count with its breakdown by state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Counted {
    /// Every state.
    pub total: u64,
    /// By state.
    pub by_state: ByState,
}

/// Clusters: by state and by discovery type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Clusters {
    /// Every state.
    pub total: u64,
    /// By state.
    pub by_state: ByState,
    /// By discovery type (`EDS`, `STATIC`, …, or the custom type's name), types seen only.
    pub by_type: IndexMap<String, u64>,
}

/// Endpoints: by reported health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoints {
    /// All endpoints.
    pub total: u64,
    /// By health status name, statuses seen only.
    pub by_health: IndexMap<String, u64>,
}

/// Who the proxy is.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct NodeSummary {
    /// Node id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Node cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Envoy version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envoy_version: Option<String>,
    /// Istio version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub istio_version: Option<String>,
    /// Istio proxy SHA.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub istio_proxy_sha: Option<String>,
    /// Workload namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Workload name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload_name: Option<String>,
    /// The versions as `istioctl`'s version summary shows them (text report only).
    #[serde(skip)]
    pub versions: Option<crate::views::bootstrap::VersionSummary>,
}

/// Resources Heft keeps opaque.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpaqueSummary {
    /// How many.
    pub total: u64,
    /// Their bytes in the input.
    pub bytes: u64,
}

/// One section's size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SectionSize {
    /// The section's `@type`.
    #[serde(rename = "type")]
    pub type_url: String,
    /// Its bytes in the input.
    pub bytes: u64,
}

/// The summary of a dump.
///
/// ```
/// let dump = heft::Dump::from_slice(br#"[{"name": "a", "type": "EDS"}, {"name": "b", "connect_timeout": "1s"}]"#).unwrap();
/// let s = heft::Summary::of(&dump);
/// assert_eq!(s.clusters.total, 2);
/// assert_eq!(s.clusters.by_type["EDS"], 1);
/// assert_eq!(s.clusters.by_type["STATIC"], 1);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The input.
    pub input: Source,
    /// The proxy's identity.
    pub node: NodeSummary,
    /// Clusters.
    pub clusters: Clusters,
    /// Listeners.
    pub listeners: Counted,
    /// Route configurations.
    pub route_configs: Counted,
    /// Virtual hosts over all route configurations.
    pub virtual_hosts: u64,
    /// Routes over all virtual hosts.
    pub routes: u64,
    /// Endpoint configurations.
    pub endpoint_configs: u64,
    /// Endpoints.
    pub endpoints: Endpoints,
    /// Secrets.
    pub secrets: Counted,
    /// Opaque resources and sections.
    pub opaque: OpaqueSummary,
    /// Section sizes, in input order.
    pub sections: Vec<SectionSize>,
    /// What `--keep-going` skipped.
    pub skipped: Vec<crate::model::Skipped>,
    /// What the input cannot show, and what is assumed instead: figures drawn from it (counts,
    /// the predicted heap) hold only for what it shows.
    pub warnings: Vec<Warning>,
    /// Updates Envoy rejected (NACKed), by kind and name: it keeps the version it last accepted.
    pub rejected: Vec<RejectedUpdate>,
    /// Resources received but not yet in use, by kind and name, with what each waits for.
    pub warming: Vec<Waiting>,
}

/// An update Envoy rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectedUpdate {
    /// `cluster`, `listener`, `route_config`, `endpoint_config` or `secret`.
    pub kind: &'static str,
    /// The resource's name (empty where the dump's entry gives none).
    pub name: String,
    /// Envoy's reason.
    pub message: String,
    /// The version rejected.
    pub version: Option<String>,
    /// When Envoy last tried to apply it (RFC 3339).
    pub when: Option<String>,
}

/// A resource Envoy holds but does not use yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Waiting {
    /// `cluster`, `listener` or `secret`.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// What it waits for, in words: `endpoints (EDS)`, `route configuration 9080 (RDS)`,
    /// `secret ROOTCA (warming)`, `its first SDS answer`.
    pub waits_for: Vec<String>,
}

/// A warming resource as read, before the dump's secrets are all known.
#[derive(Debug, Clone)]
struct WarmingSeen {
    kind: &'static str,
    name: String,
    eds: bool,
    rds: Vec<String>,
    sds: Vec<String>,
}

/// A gap in the input that every report drawn from it must state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// A stable code: `cluster-statuses`, `no-endpoints`, `no-bootstrap` or `partial-dump`.
    pub code: &'static str,
    /// What is missing, what that means for the figures, and how to get a complete input.
    pub message: String,
}

/// What a warming resource waits for: its endpoints, its route configurations, and the secrets
/// it names that are warming or missing from the dump.
fn waiting(w: WarmingSeen, secrets: &IndexMap<String, bool>) -> Waiting {
    let mut waits_for = Vec::new();
    if w.kind == "secret" {
        waits_for.push("its first SDS answer".to_string());
    }
    if w.eds {
        waits_for.push("endpoints (EDS)".to_string());
    }
    for r in &w.rds {
        waits_for.push(format!("route configuration {r} (RDS)"));
    }
    for s in &w.sds {
        match secrets.get(s) {
            Some(true) => waits_for.push(format!("secret {s} (warming)")),
            None => waits_for.push(format!("secret {s} (not in the dump)")),
            Some(false) => {}
        }
    }
    waits_for.dedup();
    Waiting {
        kind: w.kind,
        name: w.name,
        waits_for,
    }
}

/// The warnings for an input of `kind` with these counts.
fn warnings(kind: DocumentKind, bootstrap: bool, s: &Summary) -> Vec<Warning> {
    let mut out = Vec::new();
    let mut warn = |code, message: String| out.push(Warning { code, message });
    if kind == DocumentKind::ClusterStatuses {
        warn(
            "cluster-statuses",
            format!(
                "this is Envoy's /clusters?format=json: the live status of {} clusters and {} hosts, not their configuration; nothing in it can be priced (get /config_dump?include_eds)",
                s.clusters.total, s.endpoints.total
            ),
        );
        return out;
    }
    let eds = s.clusters.by_type.get("EDS").copied().unwrap_or(0);
    if eds > 0 && s.endpoint_configs == 0 {
        warn(
            "no-endpoints",
            format!(
                "{eds} EDS clusters and no endpoint configuration: the dump was taken without ?include_eds (or EDS never answered), so their endpoints are neither counted nor priced and the predicted heap is too low (get /config_dump?include_eds)"
            ),
        );
    }
    if !bootstrap {
        warn(
            "no-bootstrap",
            "the input has no bootstrap: the Envoy version, the stats matcher and the deferrals are not known, and Envoy's defaults are assumed (see the model line; --server-info and the --stats-matcher/--deferred-* flags set them)".to_string(),
        );
    }
    if matches!(kind, DocumentKind::Section | DocumentKind::ResourceList) {
        let kinds = [
            ("clusters", s.clusters.total),
            ("listeners", s.listeners.total),
            ("route configurations", s.route_configs.total),
            ("endpoint configurations", s.endpoint_configs),
            ("secrets", s.secrets.total),
        ];
        let held: Vec<&str> = kinds
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(k, _)| *k)
            .collect();
        let absent: Vec<&str> = kinds
            .iter()
            .filter(|(_, n)| *n == 0)
            .map(|(k, _)| *k)
            .collect();
        let what = if kind == DocumentKind::Section {
            "one section of a config dump"
        } else {
            "a list of resources (as istioctl proxy-config <kind> -o json prints)"
        };
        warn(
            "partial-dump",
            format!(
                "the input is {what}: it holds {}; {} are not in it, so they are neither counted nor priced (istioctl proxy-config all -o json, or /config_dump?include_eds, has everything)",
                if held.is_empty() { "nothing Heft counts".to_string() } else { held.join(", ") },
                absent.join(", ")
            ),
        );
    }
    out
}

impl Summary {
    /// Summarises a dump.
    pub fn of(dump: &Dump) -> Summary {
        let mut counts = Counts::default();
        if let Some(b) = &dump.bootstrap {
            counts.bootstrap(b);
        }
        for c in &dump.clusters {
            counts.cluster(c);
        }
        for l in &dump.listeners {
            counts.listener(l);
        }
        for r in &dump.route_configs {
            counts.route_config(r);
        }
        for la in &dump.endpoint_configs {
            counts.load_assignment(la);
        }
        for s in &dump.secrets {
            counts.secret(s);
        }
        for c in &dump.cluster_statuses {
            counts.cluster_status(c);
        }
        for r in &dump.rejected {
            counts.reject(r.kind, &r.name, &r.meta);
        }
        for o in &dump.opaque {
            counts.opaque(o);
        }
        counts.into_summary(
            dump.source.clone(),
            &dump.sections,
            &[],
            dump.skipped.clone(),
        )
    }
}

/// The fold that summarises a dump as it is read, holding only counts.
///
/// ```
/// use heft::summary_types::SummaryFold;
/// let text = br#"[{"name": "a", "type": "EDS"}, {"name": "b", "connect_timeout": "1s"}]"#;
/// let (outline, counts) = heft::stream::fold_slice(text, &Default::default(), &SummaryFold)?;
/// let summary = SummaryFold.finish(&outline, counts);
/// assert_eq!(summary, heft::Summary::of(&heft::Dump::from_slice(text)?));
/// assert_eq!(summary.clusters.by_type["EDS"], 1);
/// # Ok::<(), heft::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SummaryFold;

impl SummaryFold {
    /// The summary of a read: its counts and its outline.
    pub fn finish(&self, outline: &Outline, counts: Counts) -> Summary {
        counts.into_summary(
            outline.source.clone(),
            &outline.sections,
            &outline.opaque_sections,
            outline.skipped.clone(),
        )
    }
}

impl Fold for SummaryFold {
    type Acc = Counts;

    fn start(&self) -> Counts {
        Counts::default()
    }

    fn add(&self, counts: &mut Counts, resource: &Resource, _raw: &[u8]) {
        match resource {
            Resource::Bootstrap(b) => counts.bootstrap(b),
            Resource::Cluster(c) => counts.cluster(c),
            Resource::Listener(l) => counts.listener(l),
            Resource::RouteConfig(r) => counts.route_config(r),
            Resource::LoadAssignment(la) => counts.load_assignment(la),
            Resource::Secret(s) => counts.secret(s),
            Resource::ClusterStatus(c) => counts.cluster_status(c),
            Resource::Opaque(o) => counts.opaque(o),
            Resource::Rejected(r) => counts.reject(r.kind, &r.name, &r.meta),
        }
    }

    fn merge(&self, counts: &mut Counts, later: Counts) {
        counts.merge(later);
    }

    fn detail(&self) -> crate::stream::Detail {
        crate::stream::Detail::Shape
    }
}

/// What a summary counts, for part of a dump (the accumulator of [`SummaryFold`]).
#[derive(Debug, Clone, Default)]
pub struct Counts {
    node: Option<NodeSummary>,
    clusters: [u64; 4],
    by_type: IndexMap<String, u64>,
    listeners: [u64; 4],
    route_configs: [u64; 4],
    virtual_hosts: u64,
    routes: u64,
    endpoint_configs: u64,
    endpoints: u64,
    /// Endpoints of clusters' own `load_assignment`: counted when the input has no endpoint
    /// configurations (a list of clusters), as pricing then takes them.
    inline_endpoints: u64,
    inline_health: IndexMap<String, u64>,
    bootstrap: bool,
    rejected: Vec<RejectedUpdate>,
    warming: Vec<WarmingSeen>,
    /// Secrets by name: `true` when warming. Few per proxy.
    secret_states: IndexMap<String, bool>,
    /// Endpoint health from endpoint configurations, then from cluster statuses: kept apart so
    /// the keys come in the order [`Summary::of`] lists them.
    config_health: IndexMap<String, u64>,
    status_health: IndexMap<String, u64>,
    secrets: [u64; 4],
    opaque: u64,
    opaque_bytes: u64,
}

fn add_to(map: &mut IndexMap<String, u64>, key: &str, n: u64) {
    match map.get_mut(key) {
        Some(v) => *v += n,
        None => {
            map.insert(key.to_string(), n);
        }
    }
}

fn by_state(counts: [u64; 4]) -> ByState {
    ByState {
        static_: counts[0],
        active: counts[1],
        warming: counts[2],
        draining: counts[3],
    }
}

fn counted(counts: [u64; 4]) -> Counted {
    let by_state = by_state(counts);
    Counted {
        total: by_state.total(),
        by_state,
    }
}

impl Counts {
    fn bootstrap(&mut self, b: &crate::model::Bootstrap) {
        let n = &b.node;
        let s = |v: &str| (!v.is_empty()).then(|| v.to_string());
        self.bootstrap = true;
        self.node = Some(NodeSummary {
            id: s(&n.id),
            cluster: s(&n.cluster),
            envoy_version: n.envoy_version().map(Into::into),
            istio_version: n.istio_version().map(Into::into),
            istio_proxy_sha: n.istio_proxy_sha().map(Into::into),
            namespace: n.namespace().map(Into::into),
            workload_name: n.workload_name().map(Into::into),
            versions: Some(crate::views::bootstrap::VersionSummary::of(n)),
        });
    }

    fn reject(&mut self, kind: &'static str, name: &str, meta: &crate::model::Meta) {
        if let Some(e) = &meta.error {
            self.rejected.push(RejectedUpdate {
                kind,
                name: name.to_string(),
                message: e.details.to_string(),
                version: e.version_info.as_deref().map(Into::into),
                when: e.last_update_attempt.as_deref().map(Into::into),
            });
        }
    }

    fn cluster(&mut self, c: &crate::model::Cluster) {
        self.reject("cluster", &c.name, &c.meta);
        if c.meta.state == State::Warming {
            self.warming.push(WarmingSeen {
                kind: "cluster",
                name: c.name.to_string(),
                eds: c.discovery == crate::model::Discovery::Eds,
                rds: Vec::new(),
                sds: c.sds_secrets().map(Into::into).collect(),
            });
        }
        self.clusters[c.meta.state as usize] += 1;
        add_to(&mut self.by_type, c.discovery.name(), 1);
        if let Some(la) = &c.load_assignment {
            for e in la.endpoints() {
                self.inline_endpoints += 1;
                add_to(&mut self.inline_health, e.health.name(), 1);
            }
        }
    }

    fn listener(&mut self, l: &crate::model::Listener) {
        self.reject("listener", &l.name, &l.meta);
        if l.meta.state == State::Warming {
            let mut rds = Vec::new();
            for fc in l.all_filter_chains() {
                for f in &fc.filters {
                    if let crate::model::NetworkFilter::HttpConnectionManager { config, .. } = f {
                        if let crate::model::RouteSource::Rds { route_config_name } = &config.routes
                        {
                            rds.push(route_config_name.to_string());
                        }
                    }
                }
            }
            let sds = l.sds_secrets().map(Into::into).collect();
            self.warming.push(WarmingSeen {
                kind: "listener",
                name: l.name.to_string(),
                eds: false,
                rds,
                sds,
            });
        }
        self.listeners[l.meta.state as usize] += 1;
    }

    fn route_config(&mut self, r: &crate::model::RouteConfig) {
        self.reject("route_config", &r.name, &r.meta);
        self.route_configs[r.meta.state as usize] += 1;
        self.virtual_hosts += r.virtual_hosts.len() as u64;
        self.routes += r.route_count() as u64;
    }

    fn load_assignment(&mut self, la: &crate::model::LoadAssignment) {
        self.reject("endpoint_config", &la.cluster_name, &la.meta);
        self.endpoint_configs += 1;
        for e in la.endpoints() {
            self.endpoints += 1;
            add_to(&mut self.config_health, e.health.name(), 1);
        }
    }

    fn secret(&mut self, s: &crate::model::Secret) {
        self.reject("secret", &s.name, &s.meta);
        let warming = s.meta.state == State::Warming;
        self.secret_states.insert(s.name.to_string(), warming);
        if warming {
            self.warming.push(WarmingSeen {
                kind: "secret",
                name: s.name.to_string(),
                eds: false,
                rds: Vec::new(),
                sds: Vec::new(),
            });
        }
        self.secrets[s.meta.state as usize] += 1;
    }

    fn cluster_status(&mut self, c: &crate::model::ClusterStatus) {
        // `/clusters` output names clusters without their config: count them too.
        self.clusters[c.meta.state as usize] += 1;
        for h in &c.hosts {
            self.endpoints += 1;
            add_to(&mut self.status_health, h.health.name(), 1);
        }
    }

    fn opaque(&mut self, o: &crate::model::OpaqueResource) {
        self.opaque += 1;
        self.opaque_bytes += o.payload.bytes;
    }

    fn merge(&mut self, later: Counts) {
        if later.node.is_some() {
            self.node = later.node;
        }
        for i in 0..4 {
            self.clusters[i] += later.clusters[i];
            self.listeners[i] += later.listeners[i];
            self.route_configs[i] += later.route_configs[i];
            self.secrets[i] += later.secrets[i];
        }
        for (k, v) in &later.by_type {
            add_to(&mut self.by_type, k, *v);
        }
        for (k, v) in &later.config_health {
            add_to(&mut self.config_health, k, *v);
        }
        for (k, v) in &later.status_health {
            add_to(&mut self.status_health, k, *v);
        }
        self.virtual_hosts += later.virtual_hosts;
        self.routes += later.routes;
        self.endpoint_configs += later.endpoint_configs;
        self.endpoints += later.endpoints;
        self.inline_endpoints += later.inline_endpoints;
        for (k, v) in &later.inline_health {
            add_to(&mut self.inline_health, k, *v);
        }
        self.bootstrap |= later.bootstrap;
        self.rejected.extend(later.rejected);
        self.warming.extend(later.warming);
        for (k, v) in later.secret_states {
            self.secret_states.insert(k, v);
        }
        self.opaque += later.opaque;
        self.opaque_bytes += later.opaque_bytes;
    }

    fn into_summary(
        self,
        input: Source,
        sections: &[Section],
        opaque_sections: &[OpaqueResource],
        skipped: Vec<crate::model::Skipped>,
    ) -> Summary {
        let mut by_health = if self.endpoint_configs == 0 {
            self.inline_health
        } else {
            self.config_health
        };
        for (k, v) in &self.status_health {
            add_to(&mut by_health, k, *v);
        }
        let clusters = counted(self.clusters);
        let endpoints = if self.endpoint_configs == 0 {
            self.endpoints + self.inline_endpoints
        } else {
            self.endpoints
        };
        let kind = input.format;
        let mut summary = Summary {
            input,
            node: self.node.unwrap_or_default(),
            clusters: Clusters {
                total: clusters.total,
                by_state: clusters.by_state,
                by_type: self.by_type,
            },
            listeners: counted(self.listeners),
            route_configs: counted(self.route_configs),
            virtual_hosts: self.virtual_hosts,
            routes: self.routes,
            endpoint_configs: self.endpoint_configs,
            endpoints: Endpoints {
                total: endpoints,
                by_health,
            },
            secrets: counted(self.secrets),
            opaque: OpaqueSummary {
                total: self.opaque + opaque_sections.len() as u64,
                bytes: self.opaque_bytes
                    + opaque_sections.iter().map(|o| o.payload.bytes).sum::<u64>(),
            },
            sections: sections
                .iter()
                .map(|Section { type_url, span }| SectionSize {
                    type_url: type_url.to_string(),
                    bytes: span.len,
                })
                .collect(),
            skipped,
            warnings: Vec::new(),
            rejected: self.rejected,
            warming: self
                .warming
                .into_iter()
                .map(|w| waiting(w, &self.secret_states))
                .collect(),
        };
        // By kind and name: the same whichever order the input's sections came in.
        summary
            .rejected
            .sort_by(|a, b| (a.kind, &a.name, &a.when).cmp(&(b.kind, &b.name, &b.when)));
        summary
            .warming
            .sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
        // Envoy prints a rejected listener twice, once without its name: keep the named one.
        let named: std::collections::HashSet<(&'static str, String)> = summary
            .rejected
            .iter()
            .filter(|r| !r.name.is_empty())
            .map(|r| (r.kind, r.message.clone()))
            .collect();
        summary
            .rejected
            .retain(|r| !r.name.is_empty() || !named.contains(&(r.kind, r.message.clone())));
        summary.warnings = warnings(kind, self.bootstrap, &summary);
        summary
    }
}
