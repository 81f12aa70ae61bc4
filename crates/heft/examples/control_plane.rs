//! A control plane checks what it is about to push: it builds clusters and their endpoints as
//! prost messages (the types it would send over xDS), reads them into a Heft dump and prints
//! the summary.
//!
//! Run with `cargo run -p heft --example control_plane`.

use heft::pb::envoy::config::cluster::v3::{cluster, Cluster};
use heft::pb::envoy::config::core::v3::{address, socket_address, Address, SocketAddress};
use heft::pb::envoy::config::endpoint::v3::{
    lb_endpoint, ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints,
};
use heft::pb::prost_types::Duration;
use heft::pb::Resources;

fn eds_cluster(service: &str, namespace: &str, port: u32) -> Cluster {
    Cluster {
        name: format!("outbound|{port}||{service}.{namespace}.svc.cluster.local"),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Eds as i32,
        )),
        connect_timeout: Some(Duration {
            seconds: 10,
            nanos: 0,
        }),
        lb_policy: cluster::LbPolicy::LeastRequest as i32,
        ..Default::default()
    }
}

fn endpoints(cluster: &Cluster, ips: &[&str], port: u32) -> ClusterLoadAssignment {
    let lb_endpoints = ips
        .iter()
        .map(|ip| LbEndpoint {
            health_status: heft::pb::envoy::config::core::v3::HealthStatus::Healthy as i32,
            host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                address: Some(Address {
                    address: Some(address::Address::SocketAddress(SocketAddress {
                        address: (*ip).to_string(),
                        port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
                        ..Default::default()
                    })),
                }),
                ..Default::default()
            })),
            ..Default::default()
        })
        .collect();
    ClusterLoadAssignment {
        cluster_name: cluster.name.clone(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn main() -> Result<(), heft::Error> {
    let reviews = eds_cluster("reviews", "default", 9080);
    let ratings = eds_cluster("ratings", "default", 9080);
    let load_assignments = vec![
        endpoints(&reviews, &["10.0.0.1", "10.0.0.2", "10.0.0.3"], 9080),
        endpoints(&ratings, &["10.0.1.1"], 9080),
    ];
    let dump = heft::Dump::from_resources(Resources {
        version_info: Some("2024-05-16T01:32:52Z/7".into()),
        clusters: vec![reviews, ratings],
        load_assignments,
        ..Default::default()
    })?;
    let summary = heft::Summary::of(&dump);
    println!(
        "{}",
        serde_json::to_string_pretty(&summary).expect("a summary serialises")
    );
    Ok(())
}
