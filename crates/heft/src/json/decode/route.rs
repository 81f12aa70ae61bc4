//! Decodes `envoy.config.route.v3.RouteConfiguration` down to each route.

use super::common::{opaque, regex, string_matcher_case, typed_extension};
use crate::error::Result;
use crate::json::parser::Parser;
use crate::model::enums;
use crate::model::{
    Action, HeaderMatch, Meta, PathMatch, QueryParameterMatch, RetryPolicy, Route, RouteAction,
    RouteConfig, RouteMatch, RouteTarget, StringMatch, VirtualHost, WeightedCluster,
};

/// A string, or when only the shape is read an empty one (the value skipped).
fn text(p: &mut Parser, shape: bool) -> Result<Box<str>> {
    if shape {
        p.skip()?;
        return Ok(Box::default());
    }
    p.string()
}

/// Reads a route configuration: under [`Detail::Shape`](crate::stream::Detail::Shape) for its
/// shape alone unless it is static (`Detail::route_config_shape_only` says why).
pub(crate) fn route_config(p: &mut Parser, meta: Meta) -> Result<RouteConfig> {
    let shape = p.detail().route_config_shape_only(meta.state);
    let mut rc = RouteConfig::new(meta);
    p.fields(|p, k| {
        match k {
            "name" => rc.name = p.string()?,
            "virtual_hosts" => rc.virtual_hosts = p.par_list(|p| virtual_host(p, shape))?,
            "validate_clusters" => rc.validate_clusters = Some(p.wrapped_bool()?),
            "ignore_port_in_host_matching" => rc.ignore_port_in_host_matching = p.bool()?,
            "ignore_path_parameters_in_path_matching" => {
                rc.ignore_path_parameters_in_path_matching = p.bool()?
            }
            "vhost_header" => rc.vhost_header = Some(p.string()?).filter(|h| !h.is_empty()),
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok(rc)
}

fn virtual_host(p: &mut Parser, shape: bool) -> Result<VirtualHost> {
    let mut v = VirtualHost::default();
    p.fields(|p, k| {
        match k {
            "retry_policy" | "typed_per_filter_config" if shape => p.skip()?,
            "name" => v.name = text(p, shape)?,
            "domains" => v.domains = p.list(|p| text(p, shape))?,
            "routes" => v.routes = p.list(|p| route(p, shape))?,
            "retry_policy" => v.retry_policy = Some(retry_policy(p)?),
            "require_tls" => v.require_tls = super::common::opt_enum(p, &enums::REQUIRE_TLS)?,
            "typed_per_filter_config" => p.entries(|p, _| {
                v.extensions.push(opaque(p)?);
                Ok(())
            })?,
            _ => p.skip()?,
        }
        Ok(())
    })?;
    v.extensions.shrink_to_fit();
    Ok(v)
}

fn route(p: &mut Parser, shape: bool) -> Result<Route> {
    let mut r = Route::default();
    p.fields(|p, k| {
        match k {
            "name" | "metadata" | "typed_per_filter_config" if shape => p.skip()?,
            // The cost model counts decorators; their text is not kept.
            "decorator" if shape => {
                p.skip()?;
                r.decorator = Some(Box::default());
            }
            "name" => r.name = super::common::nonempty(p)?,
            "match" => r.route_match = route_match(p, shape)?,
            "route" => r.action = Action::Route(route_action(p, shape)?),
            "redirect" => r.action = redirect(p)?,
            "direct_response" => r.action = direct_response(p)?,
            "decorator" => p.fields(|p, k| {
                if k == "operation" {
                    r.decorator = super::common::nonempty(p)?;
                } else {
                    p.skip()?;
                }
                Ok(())
            })?,
            "metadata" => r.istio_config = super::common::metadata(p)?.istio_config,
            "typed_per_filter_config" => p.entries(|p, _| {
                r.extensions.push(opaque(p)?);
                Ok(())
            })?,
            _ => p.skip()?,
        }
        Ok(())
    })?;
    r.extensions.shrink_to_fit();
    Ok(r)
}

fn route_match(p: &mut Parser, shape: bool) -> Result<RouteMatch> {
    let mut m = RouteMatch::default();
    p.fields(|p, k| {
        match k {
            "prefix" => m.path = PathMatch::Prefix(text(p, shape)?),
            "path" => m.path = PathMatch::Path(text(p, shape)?),
            "safe_regex" if shape => {
                p.skip()?;
                m.path = PathMatch::SafeRegex(Box::default());
            }
            "safe_regex" => m.path = PathMatch::SafeRegex(regex(p)?),
            "path_separated_prefix" => m.path = PathMatch::PathSeparatedPrefix(text(p, shape)?),
            "path_match_policy" => {
                let (name, config) = typed_extension(p)?;
                m.path = PathMatch::PathMatchPolicy(config.unwrap_or(crate::model::Opaque {
                    type_url: name,
                    bytes: 0,
                }));
            }
            "connect_matcher" => {
                p.skip()?;
                m.path = PathMatch::Connect;
            }
            "case_sensitive" => m.case_sensitive = Some(p.wrapped_bool()?),
            "headers" if shape => m.headers = p.list(|p| p.skip().map(|()| blank_header()))?,
            "headers" => m.headers = p.list(header_matcher)?,
            "query_parameters" if shape => {
                m.query_parameters = p.list(|p| p.skip().map(|()| blank_query_parameter()))?
            }
            "query_parameters" => m.query_parameters = p.list(query_parameter)?,
            "grpc" => {
                p.skip()?;
                m.grpc = true;
            }
            "runtime_fraction" => {
                p.skip()?;
                m.runtime_fraction = true;
            }
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok(m)
}

/// A header rule with nothing set: what a shape-only read keeps of each.
pub(crate) fn blank_header() -> HeaderMatch {
    HeaderMatch {
        name: "".into(),
        rule: StringMatch::Present(true),
        invert: false,
        treat_missing_header_as_empty: false,
        ignore_case: false,
    }
}

/// A query parameter rule with nothing set: what a shape-only read keeps of each.
pub(crate) fn blank_query_parameter() -> QueryParameterMatch {
    QueryParameterMatch {
        name: "".into(),
        rule: StringMatch::Present(true),
        ignore_case: false,
    }
}

fn header_matcher(p: &mut Parser) -> Result<HeaderMatch> {
    let mut h = blank_header();
    p.fields(|p, k| {
        match k {
            "name" => h.name = p.string()?,
            "exact_match" => h.rule = StringMatch::Exact(p.string()?),
            "prefix_match" => h.rule = StringMatch::Prefix(p.string()?),
            "suffix_match" => h.rule = StringMatch::Suffix(p.string()?),
            "contains_match" => h.rule = StringMatch::Contains(p.string()?),
            "safe_regex_match" => h.rule = StringMatch::Regex(regex(p)?),
            "present_match" => h.rule = StringMatch::Present(p.bool()?),
            "string_match" => (h.rule, h.ignore_case) = string_matcher_case(p)?,
            "range_match" => {
                let (mut start, mut end) = (0, 0);
                p.fields(|p, k| {
                    match k {
                        "start" => start = p.i64()?,
                        "end" => end = p.i64()?,
                        _ => p.skip()?,
                    }
                    Ok(())
                })?;
                h.rule = StringMatch::Range(start, end);
            }
            "invert_match" => h.invert = p.bool()?,
            "treat_missing_header_as_empty" => h.treat_missing_header_as_empty = p.bool()?,
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok(h)
}

fn query_parameter(p: &mut Parser) -> Result<QueryParameterMatch> {
    let mut q = blank_query_parameter();
    p.fields(|p, k| {
        match k {
            "name" => q.name = p.string()?,
            "string_match" => (q.rule, q.ignore_case) = string_matcher_case(p)?,
            "present_match" => q.rule = StringMatch::Present(p.bool()?),
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok(q)
}

pub(crate) fn retry_policy(p: &mut Parser) -> Result<RetryPolicy> {
    let mut r = RetryPolicy::default();
    p.fields(|p, k| {
        match k {
            "retry_on" => r.retry_on = super::common::nonempty(p)?,
            "num_retries" => r.num_retries = Some(p.wrapped_u32()?),
            "per_try_timeout" => r.per_try_timeout = Some(p.duration()?),
            "retriable_status_codes" => r.retriable_status_codes = p.list(|p| p.u32())?,
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok(r)
}

fn route_action(p: &mut Parser, shape: bool) -> Result<RouteAction> {
    let mut a = RouteAction::default();
    p.fields(|p, k| {
        match k {
            "timeout" | "prefix_rewrite" | "host_rewrite_literal" if shape => p.skip()?,
            "retry_policy" if shape => {
                p.skip()?;
                a.retry_policy = Some(RetryPolicy::default());
            }
            "cluster" => a.target = RouteTarget::Cluster(text(p, shape)?),
            "cluster_header" => a.target = RouteTarget::ClusterHeader(text(p, shape)?),
            "cluster_specifier_plugin" => a.target = RouteTarget::Plugin(text(p, shape)?),
            "weighted_clusters" => {
                let mut clusters = Vec::new();
                p.fields(|p, k| {
                    if k == "clusters" {
                        p.array(|p| {
                            let mut w = WeightedCluster {
                                name: "".into(),
                                weight: 0,
                            };
                            p.fields(|p, k| {
                                match k {
                                    "weight" if shape => p.skip()?,
                                    "name" => w.name = text(p, shape)?,
                                    "weight" => w.weight = p.wrapped_u32()?,
                                    _ => p.skip()?,
                                }
                                Ok(())
                            })?;
                            clusters.push(w);
                            Ok(())
                        })?;
                    } else {
                        p.skip()?;
                    }
                    Ok(())
                })?;
                a.target = RouteTarget::Weighted(clusters);
            }
            "timeout" => a.timeout = Some(p.duration()?),
            "retry_policy" => a.retry_policy = Some(retry_policy(p)?),
            "prefix_rewrite" => a.prefix_rewrite = super::common::nonempty(p)?,
            "host_rewrite_literal" => a.host_rewrite = Some(p.string()?),
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok(a)
}

fn redirect(p: &mut Parser) -> Result<Action> {
    let (mut host, mut path, mut https) = (None, None, false);
    let mut response_code = Box::<str>::from("MOVED_PERMANENTLY");
    p.fields(|p, k| {
        match k {
            "host_redirect" => host = super::common::nonempty(p)?,
            "path_redirect" => path = Some(p.string()?),
            "https_redirect" => https = p.bool()?,
            "scheme_redirect" => https = &*p.string()? == "https",
            "response_code" => response_code = p.enum_name(&enums::REDIRECT_RESPONSE_CODE)?,
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok(Action::Redirect {
        host,
        path,
        https,
        response_code,
    })
}

fn direct_response(p: &mut Parser) -> Result<Action> {
    let (mut status, mut body_bytes) = (0, 0);
    p.fields(|p, k| {
        match k {
            "status" => status = p.u32()?,
            "body" => {
                let (start, end) = p.skip_span()?;
                body_bytes = (end - start) as u64;
            }
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok(Action::DirectResponse { status, body_bytes })
}
