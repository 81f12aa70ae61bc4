//! What Istio encodes in a cluster's name.
//!
//! Istio names clusters `outbound|9080|v1|reviews.default.svc.cluster.local` (direction, port,
//! DestinationRule subset, service host), gateways with `sni-dnat` use the SNI form
//! `outbound_.9080_.v1_.reviews.default.svc.cluster.local`, and a few clusters have fixed names.

use serde::Serialize;

/// Traffic direction of an Istio service cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// To another service.
    Outbound,
    /// To this workload.
    Inbound,
}

impl Direction {
    /// `outbound` or `inbound`.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
        }
    }
}

/// An Istio cluster, as its name describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IstioName {
    /// A service cluster: `outbound|9080|v1|reviews.default.svc.cluster.local`.
    Service {
        /// Inbound or outbound.
        direction: Direction,
        /// Service port.
        port: u32,
        /// DestinationRule subset (empty for none).
        subset: Box<str>,
        /// Service host (FQDN); empty for inbound clusters of recent Istio.
        host: Box<str>,
        /// Service name, for Kubernetes hosts (`reviews`).
        service: Option<Box<str>>,
        /// Namespace, for Kubernetes hosts (`default`).
        namespace: Option<Box<str>>,
    },
    /// `BlackHoleCluster`: drops traffic.
    BlackHole,
    /// `PassthroughCluster`: forwards to the original destination.
    Passthrough,
    /// `InboundPassthroughCluster…`: inbound traffic to undeclared ports.
    InboundPassthrough,
}

impl IstioName {
    /// Reads an Istio cluster name; `None` for names Istio did not make.
    ///
    /// ```
    /// use heft::model::istio::{IstioName, Direction};
    /// let n = IstioName::parse("outbound|9080|v1|reviews.default.svc.cluster.local").unwrap();
    /// assert_eq!(n.direction(), Some(Direction::Outbound));
    /// assert_eq!(n.port(), Some(9080));
    /// assert_eq!(n.namespace(), Some("default"));
    /// assert_eq!(IstioName::parse("BlackHoleCluster"), Some(IstioName::BlackHole));
    /// assert_eq!(IstioName::parse("xds-grpc"), None);
    /// ```
    pub fn parse(name: &str) -> Option<IstioName> {
        match name {
            "BlackHoleCluster" => return Some(IstioName::BlackHole),
            "PassthroughCluster" => return Some(IstioName::Passthrough),
            _ if name.starts_with("InboundPassthroughCluster") => {
                return Some(IstioName::InboundPassthrough)
            }
            _ => {}
        }
        let (direction, port, subset, host) = if name.contains('|') {
            let mut parts = name.split('|');
            let (d, p, s, h) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
            if parts.next().is_some() {
                return None;
            }
            (d, p, s, h)
        } else {
            // outbound_.9080_.v1_.reviews.default.svc.cluster.local
            let (d, rest) = name.split_once("_.")?;
            let (p, rest) = rest.split_once("_.")?;
            let (s, h) = rest.split_once("_.")?;
            (d, p, if s == "_" { "" } else { s }, h)
        };
        let direction = match direction {
            "outbound" => Direction::Outbound,
            "inbound" => Direction::Inbound,
            _ => return None,
        };
        let port: u32 = port.parse().ok()?;
        let (service, namespace) = match host.split_once(".svc.") {
            Some((svc_ns, _)) => match svc_ns.split_once('.') {
                Some((s, ns)) if !ns.contains('.') => (Some(s.into()), Some(ns.into())),
                _ => (None, None),
            },
            None => (None, None),
        };
        Some(IstioName::Service {
            direction,
            port,
            subset: subset.into(),
            host: host.into(),
            service,
            namespace,
        })
    }

    /// Direction of a service cluster.
    pub fn direction(&self) -> Option<Direction> {
        match self {
            IstioName::Service { direction, .. } => Some(*direction),
            _ => None,
        }
    }

    /// Port of a service cluster.
    pub fn port(&self) -> Option<u32> {
        match self {
            IstioName::Service { port, .. } => Some(*port),
            _ => None,
        }
    }

    /// Subset of a service cluster (empty when none).
    pub fn subset(&self) -> Option<&str> {
        match self {
            IstioName::Service { subset, .. } => Some(subset),
            _ => None,
        }
    }

    /// Host (FQDN) of a service cluster.
    pub fn host(&self) -> Option<&str> {
        match self {
            IstioName::Service { host, .. } => Some(host),
            _ => None,
        }
    }

    /// Namespace of a Kubernetes service cluster.
    pub fn namespace(&self) -> Option<&str> {
        match self {
            IstioName::Service { namespace, .. } => namespace.as_deref(),
            _ => None,
        }
    }

    /// Name of a Kubernetes service cluster.
    pub fn service(&self) -> Option<&str> {
        match self {
            IstioName::Service { service, .. } => service.as_deref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_istio_cluster_form() {
        let n = IstioName::parse("inbound|9080||").unwrap();
        assert_eq!(n.direction(), Some(Direction::Inbound));
        assert_eq!(n.host(), Some(""));
        let n = IstioName::parse("outbound_.9080_._.reviews.default.svc.cluster.local").unwrap();
        assert_eq!(n.subset(), Some(""));
        assert_eq!(n.service(), Some("reviews"));
        let n = IstioName::parse("outbound|443||www.google.com").unwrap();
        assert_eq!(n.namespace(), None);
        assert_eq!(
            IstioName::parse("InboundPassthroughClusterIpv4"),
            Some(IstioName::InboundPassthrough)
        );
        assert_eq!(IstioName::parse("outbound|x||a"), None);
        assert_eq!(IstioName::parse("sideways|80||a"), None);
        assert_eq!(IstioName::parse("outbound|80||a|b"), None);
    }
}
