//! Envoy's protobuf messages, and reading binary dumps into the one model.
//!
//! The types under [`envoy`] are generated at build time from Heft's trimmed copies of Envoy's
//! protos (real field numbers; fields Heft never reads are left out, and prost skips them when
//! decoding). `google.protobuf` types come from [`prost_types`].
//!
//! Clusters, load assignments and route configurations, most of a large dump, are read
//! straight from the wire into the model, without building prost's messages first (for the
//! 1 GB benchmark dump's binary, 0.68 CPU-seconds where prost took 1.19). Inside them, fields
//! the model has no place for are skipped with only their framing checked, as prost skips
//! unknown fields: a malformed health check goes unnoticed.
//!
//! Binary inputs (`envoy.admin.v3.ConfigDump`, `envoy.service.discovery.v3.DiscoveryResponse`,
//! or a stream of length-delimited DiscoveryResponses) are detected from their first bytes by
//! [`Dump::from_slice`](crate::Dump::from_slice) and friends; nothing here needs calling for
//! them. A control plane that holds prost messages builds a [`Dump`](crate::Dump) with
//! [`Dump::from_resources`](crate::Dump::from_resources).
//!
//! Encoding differences: byte spans ([`Meta::span`](crate::model::Meta), sections, the input
//! size) point into the binary input; [`Opaque::bytes`](crate::model::Opaque) is the size of the
//! `Any` payload (or the encoded message) rather than of its JSON text, and
//! [`Metadata::bytes`](crate::model::Metadata) the size of the metadata's bytes in the input. Protobuf maps
//! carry no order, so lists read from maps (metadata namespaces, build metadata, transport
//! socket match criteria, per-filter configs) are in key order, where JSON keeps Envoy's
//! printing order. Everything else is what the JSON reader produces for the same dump.

mod bootstrap;
mod cluster;
mod common;
mod endpoint;
mod listener;
mod parts;
pub(crate) mod read;
mod resources;
mod route;
mod secret;
pub(crate) mod streamed;
mod wire;

pub use prost;
pub use prost_types;
pub use resources::Resources;

#[allow(missing_docs, clippy::all, clippy::pedantic, rustdoc::all)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/envoy_protos.rs"));
}

pub use generated::envoy;
