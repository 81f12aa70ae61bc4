//! Heft reads Envoy configuration dumps and explains them: what a proxy holds, how a request
//! flows through it, and what each object costs.
//!
//! Every input (`/config_dump`, its sections, `istioctl proxy-config … -o json|yaml` output,
//! `/clusters?format=json`, in JSON with either field naming or YAML, or binary protobuf: a `ConfigDump`, a `DiscoveryResponse` or a
//! length-delimited stream of them; plain, gzip or zstd; file or stream) becomes one typed
//! [`Dump`], and so do prost messages a control plane holds ([`Dump::from_resources`]).
//! Analyses such as [`Summary`] read only the model.
//!
//! ```
//! let text = br#"{"configs": [{
//!   "@type": "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump",
//!   "dynamic_endpoint_configs": [{"endpoint_config": {
//!     "@type": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
//!     "cluster_name": "outbound|9080||reviews.default.svc.cluster.local",
//!     "endpoints": [{"lb_endpoints": [
//!       {"endpoint": {"address": {"socket_address": {"address": "10.0.0.1", "port_value": 9080}}},
//!        "health_status": "HEALTHY"}]}]}}]}]}"#;
//! let dump = heft::Dump::from_slice(text)?;
//! let summary = heft::Summary::of(&dump);
//! assert_eq!(summary.endpoints.total, 1);
//! assert_eq!(summary.endpoints.by_health["HEALTHY"], 1);
//! # Ok::<(), heft::Error>(())
//! ```
//!
//! The library never prints. Errors say what went wrong and where: a byte offset (a line and
//! column for YAML) and a JSON path.

#![warn(missing_docs)]

pub mod check;
pub mod cost;
pub mod diff;
mod error;
mod json;
pub mod model;
pub mod pb;
mod read;
pub mod scope;
pub mod sidecar;
pub mod stream;
mod summary;
pub mod trace;
pub mod usage;
pub mod views;
pub mod why;
pub mod yaml;

pub use error::{Error, ErrorKind, PathSegment, Result};
pub use model::Dump;
pub use read::ReadOptions;
pub use summary::Summary;

/// The parts a [`Summary`] is made of.
pub mod summary_types {
    pub use crate::summary::{
        ByState, Clusters, Counted, Counts, Endpoints, NodeSummary, OpaqueSummary, RejectedUpdate,
        SectionSize, SummaryFold, Waiting, Warning,
    };
}
