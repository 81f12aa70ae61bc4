//! `envoy.config.listener.v3.Listener` (prost) to the model, decoding HTTP connection managers
//! and TCP proxies from their `Any`s, as `json::decode::listener` does.

use super::common::{
    address, cidr, opaque_any, opaque_message, opt_enum_name, some, transport_socket, unpack,
};
use super::envoy::config::listener::v3 as pb;
use super::envoy::extensions::filters::network::http_connection_manager::v3 as hcm;
use super::envoy::extensions::filters::network::tcp_proxy::v3 as tcp;
use super::route::route_config_message;
use crate::error::Result;
use crate::model::enums;
use crate::model::{
    FilterChain, FilterChainMatch, HttpConnectionManager, Listener, Meta, NetworkFilter,
    RouteSource, State, TcpProxy, TcpTarget,
};
use crate::stream::Detail;
use prost::Message;

const HCM: &str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const TCP_PROXY: &str =
    "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy";

/// Converts one listener. Extensions are listed in field-number order, as Envoy prints them.
pub(crate) fn listener(l: pb::Listener, meta: Meta, detail: Detail) -> Result<Listener> {
    let mut out = Listener {
        meta,
        name: l.name.into(),
        address: l.address.and_then(address),
        additional_addresses: l
            .additional_addresses
            .into_iter()
            .filter_map(|a| a.address.and_then(address))
            .collect(),
        traffic_direction: opt_enum_name(&enums::TRAFFIC_DIRECTION, l.traffic_direction),
        bind_to_port: l.bind_to_port,
        use_original_dst: l.use_original_dst.unwrap_or(false),
        listener_filters: Vec::new(),
        filter_chains: Vec::new(),
        default_filter_chain: None,
        // Heft's proto keeps the matcher as an empty message: presence is what trace needs, and
        // its size is not recoverable from the decoded message (0 here).
        filter_chain_matcher: l
            .filter_chain_matcher
            .as_ref()
            .map(|m| opaque_message(m.encoded_len())),
        extensions: Vec::new(),
    };
    for f in l.listener_filters {
        out.listener_filters.push(f.name.into());
        match f.config_type {
            Some(pb::listener_filter::ConfigType::TypedConfig(any)) => {
                out.extensions.push(opaque_any(&any))
            }
            Some(pb::listener_filter::ConfigType::ConfigDiscovery(c)) => {
                out.extensions.push(opaque_message(c.encoded_len()))
            }
            None => {}
        }
    }
    if let Some(a) = &l.api_listener {
        out.extensions.push(opaque_message(a.encoded_len()));
    }
    if !l.access_log.is_empty() {
        let bytes = l.access_log.iter().map(Message::encoded_len).sum();
        out.extensions.push(opaque_message(bytes));
    }
    out.filter_chains = l
        .filter_chains
        .into_iter()
        .map(|fc| filter_chain(fc, detail))
        .collect::<Result<_>>()?;
    out.default_filter_chain = l
        .default_filter_chain
        .map(|fc| filter_chain(fc, detail))
        .transpose()?;
    Ok(out)
}

fn filter_chain(fc: pb::FilterChain, detail: Detail) -> Result<FilterChain> {
    Ok(FilterChain {
        name: some(fc.name),
        filter_chain_match: fc
            .filter_chain_match
            .map(filter_chain_match)
            .unwrap_or_default(),
        filters: fc
            .filters
            .into_iter()
            .map(network_filter)
            .collect::<Result<_>>()?,
        transport_socket: fc
            .transport_socket
            .map(|s| transport_socket(s, detail))
            .transpose()?,
    })
}

fn filter_chain_match(m: pb::FilterChainMatch) -> FilterChainMatch {
    let strings = |v: Vec<String>| v.into_iter().map(Into::into).collect();
    FilterChainMatch {
        destination_port: m.destination_port,
        prefix_ranges: m.prefix_ranges.into_iter().map(cidr).collect(),
        direct_source_prefix_ranges: m
            .direct_source_prefix_ranges
            .into_iter()
            .map(cidr)
            .collect(),
        source_type: opt_enum_name(&enums::SOURCE_TYPE, m.source_type),
        source_prefix_ranges: m.source_prefix_ranges.into_iter().map(cidr).collect(),
        source_ports: m.source_ports,
        server_names: strings(m.server_names),
        transport_protocol: some(m.transport_protocol),
        application_protocols: strings(m.application_protocols),
    }
}

fn network_filter(f: pb::Filter) -> Result<NetworkFilter> {
    let name: Box<str> = f.name.into();
    let Some(pb::filter::ConfigType::TypedConfig(any)) = f.config_type else {
        return Ok(NetworkFilter::Other { name, config: None });
    };
    Ok(match any.type_url.as_str() {
        HCM => NetworkFilter::HttpConnectionManager {
            name,
            config: Box::new(http_connection_manager(unpack(&any)?)?),
        },
        TCP_PROXY => NetworkFilter::TcpProxy {
            name,
            config: tcp_proxy(unpack(&any)?),
        },
        _ => NetworkFilter::Other {
            name,
            config: Some(opaque_any(&any)),
        },
    })
}

fn http_connection_manager(h: hcm::HttpConnectionManager) -> Result<HttpConnectionManager> {
    use hcm::http_connection_manager::RouteSpecifier as R;
    Ok(HttpConnectionManager {
        stat_prefix: h.stat_prefix.into(),
        routes: match h.route_specifier {
            Some(R::Rds(r)) => RouteSource::Rds {
                route_config_name: r.route_config_name.into(),
            },
            Some(R::RouteConfig(rc)) => RouteSource::Inline(Box::new(route_config_message(
                &rc,
                Meta::new(State::Static),
            )?)),
            Some(R::ScopedRoutes(_)) => RouteSource::Scoped,
            None => RouteSource::None,
        },
        http_filters: h.http_filters.into_iter().map(|f| f.name.into()).collect(),
        normalize_path: h.normalize_path,
        merge_slashes: h.merge_slashes,
        path_with_escaped_slashes_action: opt_enum_name(
            &enums::PATH_WITH_ESCAPED_SLASHES_ACTION,
            h.path_with_escaped_slashes_action,
        ),
        strip_matching_host_port: h.strip_matching_host_port,
        strip_any_host_port: matches!(
            h.strip_port_mode,
            Some(hcm::http_connection_manager::StripPortMode::StripAnyHostPort(true))
        ),
        strip_trailing_host_dot: h.strip_trailing_host_dot,
    })
}

fn tcp_proxy(t: tcp::TcpProxy) -> TcpProxy {
    use tcp::tcp_proxy::ClusterSpecifier as C;
    TcpProxy {
        stat_prefix: t.stat_prefix.into(),
        target: match t.cluster_specifier {
            Some(C::Cluster(c)) => TcpTarget::Cluster(c.into()),
            Some(C::WeightedClusters(w)) => TcpTarget::Weighted(
                w.clusters
                    .into_iter()
                    .map(|c| (c.name.into(), c.weight))
                    .collect(),
            ),
            None => TcpTarget::None,
        },
    }
}
