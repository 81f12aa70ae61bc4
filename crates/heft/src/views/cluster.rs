//! `clusters`: one row per cluster (`istioctl proxy-config cluster`).

use super::{istio_config_name, Order, Pricing, SubsetKey};
use crate::model::{Cluster, Discovery, Span, State};
use serde::Serialize;

/// `istioctl proxy-config cluster`'s filters. Each is a substring test on the cluster's name, as
/// `istioctl` does it: `--fqdn reviews` also keeps `reviews-v2.other…`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterFilter {
    /// `--fqdn`: the name contains this.
    pub fqdn: Option<String>,
    /// `--port`: the name contains `|port|`.
    pub port: Option<u32>,
    /// `--subset`: the name contains this.
    pub subset: Option<String>,
    /// `--direction`: the name contains this (`inbound`, `outbound`).
    pub direction: Option<String>,
}

impl ClusterFilter {
    /// Whether a cluster of this name passes.
    pub fn accepts(&self, name: &str) -> bool {
        let contains = |want: &Option<String>| want.as_deref().is_none_or(|w| name.contains(w));
        contains(&self.fqdn)
            && contains(&self.direction)
            && contains(&self.subset)
            && self
                .port
                .is_none_or(|p| p == 0 || name.contains(&format!("|{p}|")))
    }
}

/// One cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterRow {
    /// The cluster's name.
    pub name: String,
    /// The service it reaches: the host of an Istio cluster name, else the name itself.
    pub service_fqdn: String,
    /// The service port of an Istio cluster name.
    pub port: Option<u32>,
    /// The DestinationRule subset of an Istio cluster name, when it has one.
    pub subset: Option<String>,
    /// `inbound` or `outbound`, for an Istio cluster name.
    pub direction: Option<String>,
    /// The discovery type (`EDS`, `STATIC`, …), or the extension name of a custom cluster type.
    #[serde(rename = "type")]
    pub discovery: String,
    /// The DestinationRule that made it (`name.namespace`), from its Istio metadata.
    pub destination_rule: String,
    /// Static, active or warming.
    pub state: State,
    /// The cluster's predicted bytes, its endpoints included.
    pub cost: Option<u64>,
    /// Where the resource's dump entry sat in the input, to print it as it was.
    #[serde(skip)]
    pub span: Option<Span>,
}

/// The row of one cluster, or `None` when the filter drops it.
pub fn cluster_row(
    c: &Cluster,
    filter: &ClusterFilter,
    pricing: &dyn Pricing,
) -> Option<ClusterRow> {
    if !filter.accepts(&c.name) {
        return None;
    }
    let istio = c.istio.as_ref();
    Some(ClusterRow {
        name: c.name.to_string(),
        service_fqdn: istio.and_then(|n| n.host()).unwrap_or(&c.name).to_string(),
        port: istio.and_then(|n| n.port()),
        subset: istio
            .and_then(|n| n.subset())
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        direction: istio
            .and_then(|n| n.direction())
            .map(|d| d.name().to_string()),
        discovery: c.discovery.name().to_string(),
        destination_rule: istio_config_name(c.metadata.istio_config.as_deref()),
        state: c.meta.state,
        cost: pricing.cluster(c),
        span: c.meta.span,
    })
}

/// The columns `istioctl` prints.
pub const ISTIOCTL_COLUMNS: [&str; 6] = [
    "SERVICE FQDN",
    "PORT",
    "SUBSET",
    "DIRECTION",
    "TYPE",
    "DESTINATION RULE",
];

impl ClusterRow {
    /// The row as `istioctl` prints it: names of four `|`-separated parts are split, other
    /// names show `-` for port, subset and direction; custom cluster types show as `STATIC` (the
    /// unset `type` field `istioctl` reads).
    pub fn istioctl_cells(&self) -> [String; 6] {
        let key = SubsetKey::of(&self.name);
        let discovery = match Discovery::from_name(&self.discovery) {
            Discovery::Custom(_) => "STATIC".to_string(),
            _ => self.discovery.clone(),
        };
        if key.parsed {
            let subset = if key.subset.is_empty() {
                "-"
            } else {
                key.subset
            };
            [
                key.host.to_string(),
                key.port.to_string(),
                subset.to_string(),
                key.direction.to_string(),
                discovery,
                self.destination_rule.clone(),
            ]
        } else {
            [
                self.name.clone(),
                "-".into(),
                "-".into(),
                "-".into(),
                discovery,
                self.destination_rule.clone(),
            ]
        }
    }
}

/// Puts rows in `istioctl`'s order (by host, subset, port, direction, as it reads the names);
/// [`Order::Istioctl`] also drops warming clusters, which `istioctl` does not list.
pub fn arrange(rows: Vec<ClusterRow>, order: Order) -> Vec<ClusterRow> {
    order.arrange(
        rows,
        |r| r.state,
        |a, b| SubsetKey::of(&a.name).less(&SubsetKey::of(&b.name)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_filter_looks_for_the_port_between_bars() {
        let f = ClusterFilter {
            port: Some(80),
            ..Default::default()
        };
        assert!(f.accepts("outbound|80||a"));
        assert!(!f.accepts("outbound|8080||a"));
        assert!(!f.accepts("BlackHoleCluster"));
    }
}
