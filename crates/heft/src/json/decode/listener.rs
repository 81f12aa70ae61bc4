//! Decodes `envoy.config.listener.v3.Listener` with its HTTP connection managers and TCP proxies.

use super::common::{address, cidr, opaque, transport_socket, typed_extension};
use super::route::route_config;
use crate::error::Result;
use crate::json::parser::Parser;
use crate::model::enums;
use crate::model::{
    FilterChain, FilterChainMatch, HttpConnectionManager, Listener, Meta, NetworkFilter,
    RouteSource, TcpProxy, TcpTarget,
};

const HCM: &str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const TCP_PROXY: &str =
    "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy";

pub(crate) fn listener(p: &mut Parser, meta: Meta) -> Result<Listener> {
    let mut l = Listener {
        meta,
        name: "".into(),
        address: None,
        additional_addresses: Vec::new(),
        traffic_direction: None,
        bind_to_port: None,
        use_original_dst: false,
        listener_filters: Vec::new(),
        filter_chains: Vec::new(),
        default_filter_chain: None,
        filter_chain_matcher: None,
        extensions: Vec::new(),
    };
    p.fields(|p, k| {
        match k {
            "name" => l.name = p.string()?,
            "address" => l.address = address(p)?,
            "additional_addresses" => p.array(|p| {
                p.fields(|p, k| {
                    if k == "address" {
                        l.additional_addresses.extend(address(p)?);
                    } else {
                        p.skip()?;
                    }
                    Ok(())
                })
            })?,
            "traffic_direction" => {
                l.traffic_direction = super::common::opt_enum(p, &enums::TRAFFIC_DIRECTION)?
            }
            "bind_to_port" => l.bind_to_port = Some(p.wrapped_bool()?),
            "use_original_dst" => l.use_original_dst = p.wrapped_bool()?,
            "listener_filters" => p.array(|p| {
                let (name, config) = typed_extension(p)?;
                l.listener_filters.push(name);
                l.extensions.extend(config);
                Ok(())
            })?,
            "filter_chains" => l.filter_chains = p.list(filter_chain)?,
            "default_filter_chain" => l.default_filter_chain = Some(filter_chain(p)?),
            "filter_chain_matcher" => l.filter_chain_matcher = Some(opaque(p)?),
            "udp_listener_config" | "api_listener" => l.extensions.push(opaque(p)?),
            "access_log" => l.extensions.extend(super::common::opaque_list(p)?),
            _ => p.skip()?,
        }
        Ok(())
    })?;
    l.listener_filters.shrink_to_fit();
    l.extensions.shrink_to_fit();
    Ok(l)
}

fn filter_chain(p: &mut Parser) -> Result<FilterChain> {
    let mut fc = FilterChain {
        name: None,
        filter_chain_match: FilterChainMatch::default(),
        filters: Vec::new(),
        transport_socket: None,
    };
    p.fields(|p, k| {
        match k {
            "name" => fc.name = super::common::nonempty(p)?,
            "filter_chain_match" => fc.filter_chain_match = filter_chain_match(p)?,
            "filters" => fc.filters = p.list(network_filter)?,
            "transport_socket" => fc.transport_socket = Some(transport_socket(p)?),
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok(fc)
}

fn filter_chain_match(p: &mut Parser) -> Result<FilterChainMatch> {
    let mut m = FilterChainMatch::default();
    p.fields(|p, k| {
        match k {
            "destination_port" => m.destination_port = Some(p.wrapped_u32()?),
            "prefix_ranges" => m.prefix_ranges = p.list(cidr)?,
            "direct_source_prefix_ranges" => m.direct_source_prefix_ranges = p.list(cidr)?,
            "source_type" => m.source_type = super::common::opt_enum(p, &enums::SOURCE_TYPE)?,
            "source_prefix_ranges" => m.source_prefix_ranges = p.list(cidr)?,
            "source_ports" => m.source_ports = p.list(|p| p.u32())?,
            "server_names" => m.server_names = p.strings()?,
            "transport_protocol" => m.transport_protocol = super::common::nonempty(p)?,
            "application_protocols" => m.application_protocols = p.strings()?,
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok(m)
}

fn network_filter(p: &mut Parser) -> Result<NetworkFilter> {
    let mut name = Box::<str>::default();
    let mut out = None;
    p.fields(|p, k| {
        match k {
            "name" => name = p.string()?,
            "typed_config" => {
                let type_url = p.peek_type_url()?;
                out = Some(match type_url.as_deref() {
                    Some(HCM) => Ok(Box::new(http_connection_manager(p)?)),
                    Some(TCP_PROXY) => Err(Ok(tcp_proxy(p)?)),
                    _ => Err(Err(opaque(p)?)),
                });
            }
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok(match out {
        Some(Ok(config)) => NetworkFilter::HttpConnectionManager { name, config },
        Some(Err(Ok(config))) => NetworkFilter::TcpProxy { name, config },
        Some(Err(Err(config))) => NetworkFilter::Other {
            name,
            config: Some(config),
        },
        None => NetworkFilter::Other { name, config: None },
    })
}

fn http_connection_manager(p: &mut Parser) -> Result<HttpConnectionManager> {
    let mut h = HttpConnectionManager {
        stat_prefix: "".into(),
        routes: RouteSource::None,
        http_filters: Vec::new(),
        normalize_path: None,
        merge_slashes: false,
        path_with_escaped_slashes_action: None,
        strip_matching_host_port: false,
        strip_any_host_port: false,
        strip_trailing_host_dot: false,
    };
    p.fields(|p, k| {
        match k {
            "stat_prefix" => h.stat_prefix = p.string()?,
            "rds" => {
                let mut route_config_name = Box::<str>::default();
                p.fields(|p, k| {
                    if k == "route_config_name" {
                        route_config_name = p.string()?;
                    } else {
                        p.skip()?;
                    }
                    Ok(())
                })?;
                h.routes = RouteSource::Rds { route_config_name };
            }
            "route_config" => {
                let rc = route_config(p, Meta::new(crate::model::State::Static))?;
                h.routes = RouteSource::Inline(Box::new(rc));
            }
            "scoped_routes" => {
                p.skip()?;
                h.routes = RouteSource::Scoped;
            }
            "normalize_path" => h.normalize_path = Some(p.wrapped_bool()?),
            "merge_slashes" => h.merge_slashes = p.bool()?,
            "path_with_escaped_slashes_action" => {
                h.path_with_escaped_slashes_action =
                    super::common::opt_enum(p, &enums::PATH_WITH_ESCAPED_SLASHES_ACTION)?
            }
            "strip_matching_host_port" => h.strip_matching_host_port = p.bool()?,
            "strip_any_host_port" => h.strip_any_host_port = p.bool()?,
            "strip_trailing_host_dot" => h.strip_trailing_host_dot = p.bool()?,
            "http_filters" => p.array(|p| {
                let (name, _) = typed_extension(p)?;
                h.http_filters.push(name);
                Ok(())
            })?,
            _ => p.skip()?,
        }
        Ok(())
    })?;
    h.http_filters.shrink_to_fit();
    Ok(h)
}

fn tcp_proxy(p: &mut Parser) -> Result<TcpProxy> {
    let mut t = TcpProxy {
        stat_prefix: "".into(),
        target: TcpTarget::None,
    };
    p.fields(|p, k| {
        match k {
            "stat_prefix" => t.stat_prefix = p.string()?,
            "cluster" => t.target = TcpTarget::Cluster(p.string()?),
            "weighted_clusters" => {
                let mut clusters = Vec::new();
                p.fields(|p, k| {
                    if k == "clusters" {
                        p.array(|p| {
                            let (mut name, mut weight) = (Box::<str>::default(), 0);
                            p.fields(|p, k| {
                                match k {
                                    "name" => name = p.string()?,
                                    "weight" => weight = p.u32()?,
                                    _ => p.skip()?,
                                }
                                Ok(())
                            })?;
                            clusters.push((name, weight));
                            Ok(())
                        })?;
                    } else {
                        p.skip()?;
                    }
                    Ok(())
                })?;
                t.target = TcpTarget::Weighted(clusters);
            }
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok(t)
}
