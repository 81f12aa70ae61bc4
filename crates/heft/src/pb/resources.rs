//! Building a [`Dump`] from prost messages a control plane already holds.

use super::envoy::config::cluster::v3::Cluster;
use super::envoy::config::endpoint::v3::ClusterLoadAssignment;
use super::envoy::config::listener::v3::Listener;
use super::envoy::config::route::v3::RouteConfiguration;
use super::envoy::extensions::transport_sockets::tls::v3::Secret;
use crate::error::{Error, Result};
use crate::model::{DocumentKind, Dump, Meta, Source, State};
use crate::stream::Detail;
use prost::Message;
use rayon::prelude::*;

/// xDS resources as prost messages, such as the ones a Rust control plane is about to push.
///
/// Turn them into a [`Dump`] with [`Dump::from_resources`] to run Heft's analyses on them
/// before they reach a proxy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    /// The xDS version every resource gets (`Meta::version_info`).
    pub version_info: Option<String>,
    /// CDS resources.
    pub clusters: Vec<Cluster>,
    /// LDS resources.
    pub listeners: Vec<Listener>,
    /// RDS resources.
    pub route_configs: Vec<RouteConfiguration>,
    /// EDS resources.
    pub load_assignments: Vec<ClusterLoadAssignment>,
    /// SDS resources.
    pub secrets: Vec<Secret>,
}

impl Dump {
    /// Builds a dump from prost messages, as if a proxy had accepted them all (every resource
    /// is [`State::Active`] and has no input span). `Any` payloads (TLS contexts, filters,
    /// protocol options) are decoded as they are from a binary dump.
    ///
    /// ```
    /// use heft::pb::envoy::config::cluster::v3::{cluster, Cluster};
    ///
    /// let eds = Cluster {
    ///     name: "outbound|9080||reviews.default.svc.cluster.local".into(),
    ///     cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
    ///         cluster::DiscoveryType::Eds as i32,
    ///     )),
    ///     ..Default::default()
    /// };
    /// let dump = heft::Dump::from_resources(heft::pb::Resources {
    ///     clusters: vec![eds],
    ///     ..Default::default()
    /// })?;
    /// let summary = heft::Summary::of(&dump);
    /// assert_eq!(summary.clusters.by_type["EDS"], 1);
    /// assert_eq!(dump.clusters[0].istio.as_ref().unwrap().namespace(), Some("default"));
    /// # Ok::<(), heft::Error>(())
    /// ```
    pub fn from_resources(resources: Resources) -> Result<Dump> {
        let Resources {
            version_info,
            clusters,
            listeners,
            route_configs,
            load_assignments,
            secrets,
        } = resources;
        let bytes = clusters.iter().map(Message::encoded_len).sum::<usize>()
            + listeners.iter().map(Message::encoded_len).sum::<usize>()
            + route_configs
                .iter()
                .map(Message::encoded_len)
                .sum::<usize>()
            + load_assignments
                .iter()
                .map(Message::encoded_len)
                .sum::<usize>()
            + secrets.iter().map(Message::encoded_len).sum::<usize>();
        let meta = || Meta {
            version_info: version_info.as_deref().map(Into::into),
            ..Meta::new(State::Active)
        };
        let mut dump = Dump::empty(Source {
            format: DocumentKind::ResourceList,
            encoding: "protobuf",
            compression: "none",
            bytes: bytes as u64,
        });
        // Clusters and load assignments are read from the wire only; encoding them again costs
        // less than their decoding. Offsets into bytes made here would mislead, so errors
        // (an `Any` holding no valid TLS context) drop them.
        dump.clusters = clusters
            .into_par_iter()
            .map(|c| {
                super::cluster::cluster(&c.encode_to_vec(), 0, meta(), Detail::Full)
                    .map_err(Error::without_offset)
            })
            .collect::<Result<_>>()?;
        dump.listeners = listeners
            .into_par_iter()
            .map(|l| super::listener::listener(l, meta(), Detail::Full))
            .collect::<Result<_>>()?;
        dump.route_configs = route_configs
            .into_par_iter()
            .map(|r| super::route::route_config_message(&r, meta()))
            .collect::<Result<_>>()?;
        dump.endpoint_configs = load_assignments
            .into_par_iter()
            .map(|l| {
                super::endpoint::load_assignment(&l.encode_to_vec(), 0, meta(), Detail::Full)
                    .map_err(Error::without_offset)
            })
            .collect::<Result<_>>()?;
        dump.secrets = secrets
            .into_par_iter()
            .map(|s| super::secret::secret(s, meta()))
            .collect::<Result<_>>()?;
        Ok(dump)
    }
}
