//! `RouteConfiguration` (prost) to the model, down to each route, as `json::decode::route` reads
//! it.

use super::common::{
    duration, enum_name, istio_config, opaque_any, opt_enum_name, some, string_matcher,
};
use super::envoy::config::route::v3 as pb;
use crate::error::Result;
use crate::model::enums;
use crate::model::{
    Action, HeaderMatch, Meta, Opaque, PathMatch, QueryParameterMatch, RetryPolicy, Route,
    RouteAction, RouteConfig, RouteMatch, RouteTarget, StringMatch, VirtualHost, WeightedCluster,
};
use prost::Message;
use std::collections::BTreeMap;

pub(crate) fn route_config(rc: pb::RouteConfiguration, meta: Meta) -> Result<RouteConfig> {
    Ok(RouteConfig {
        meta,
        name: rc.name.into(),
        virtual_hosts: rc
            .virtual_hosts
            .into_iter()
            .map(virtual_host)
            .collect::<Result<_>>()?,
        validate_clusters: rc.validate_clusters,
        ignore_port_in_host_matching: rc.ignore_port_in_host_matching,
        ignore_path_parameters_in_path_matching: rc.ignore_path_parameters_in_path_matching,
        vhost_header: some(rc.vhost_header),
    })
}

fn per_filter(m: &BTreeMap<String, prost_types::Any>) -> Vec<Opaque> {
    m.values().map(opaque_any).collect()
}

fn virtual_host(v: pb::VirtualHost) -> Result<VirtualHost> {
    Ok(VirtualHost {
        name: v.name.into(),
        domains: v.domains.into_iter().map(Into::into).collect(),
        routes: v.routes.into_iter().map(route).collect::<Result<_>>()?,
        retry_policy: v.retry_policy.map(retry_policy).transpose()?,
        require_tls: opt_enum_name(&enums::REQUIRE_TLS, v.require_tls),
        extensions: per_filter(&v.typed_per_filter_config),
    })
}

fn route(r: pb::Route) -> Result<Route> {
    use pb::route::Action as A;
    Ok(Route {
        name: some(r.name),
        route_match: route_match(r.r#match.unwrap_or_default()),
        action: match r.action {
            Some(A::Route(a)) => Action::Route(route_action(a)?),
            Some(A::Redirect(d)) => redirect(d),
            Some(A::DirectResponse(d)) => Action::DirectResponse {
                status: d.status,
                body_bytes: d.body.map_or(0, |b| b.encoded_len() as u64),
            },
            _ => Action::Other,
        },
        decorator: r.decorator.and_then(|d| some(d.operation)),
        istio_config: r.metadata.as_ref().and_then(istio_config),
        extensions: per_filter(&r.typed_per_filter_config),
    })
}

fn route_match(m: pb::RouteMatch) -> RouteMatch {
    use pb::route_match::PathSpecifier as P;
    RouteMatch {
        path: match m.path_specifier {
            Some(P::Prefix(p)) => PathMatch::Prefix(p.into()),
            Some(P::Path(p)) => PathMatch::Path(p.into()),
            Some(P::SafeRegex(r)) => PathMatch::SafeRegex(r.regex.into()),
            Some(P::PathSeparatedPrefix(p)) => PathMatch::PathSeparatedPrefix(p.into()),
            Some(P::PathMatchPolicy(t)) => {
                let (name, config) = super::common::typed_extension(t);
                PathMatch::PathMatchPolicy(config.unwrap_or(Opaque {
                    type_url: name,
                    bytes: 0,
                }))
            }
            Some(P::ConnectMatcher(_)) => PathMatch::Connect,
            None => PathMatch::Any,
        },
        case_sensitive: m.case_sensitive,
        headers: m.headers.into_iter().map(header_matcher).collect(),
        query_parameters: m
            .query_parameters
            .into_iter()
            .map(query_parameter)
            .collect(),
        grpc: m.grpc.is_some(),
        runtime_fraction: m.runtime_fraction.is_some(),
    }
}

fn header_matcher(h: pb::HeaderMatcher) -> HeaderMatch {
    use pb::header_matcher::HeaderMatchSpecifier as S;
    let ignore_case = matches!(&h.header_match_specifier, Some(S::StringMatch(m)) if m.ignore_case);
    HeaderMatch {
        name: h.name.into(),
        rule: match h.header_match_specifier {
            Some(S::ExactMatch(v)) => StringMatch::Exact(v.into()),
            Some(S::PrefixMatch(v)) => StringMatch::Prefix(v.into()),
            Some(S::SuffixMatch(v)) => StringMatch::Suffix(v.into()),
            Some(S::ContainsMatch(v)) => StringMatch::Contains(v.into()),
            Some(S::SafeRegexMatch(r)) => StringMatch::Regex(r.regex.into()),
            Some(S::PresentMatch(b)) => StringMatch::Present(b),
            Some(S::StringMatch(m)) => string_matcher(m),
            Some(S::RangeMatch(r)) => StringMatch::Range(r.start, r.end),
            None => StringMatch::Present(true),
        },
        invert: h.invert_match,
        treat_missing_header_as_empty: h.treat_missing_header_as_empty,
        ignore_case,
    }
}

fn query_parameter(q: pb::QueryParameterMatcher) -> QueryParameterMatch {
    use pb::query_parameter_matcher::QueryParameterMatchSpecifier as S;
    let ignore_case =
        matches!(&q.query_parameter_match_specifier, Some(S::StringMatch(m)) if m.ignore_case);
    QueryParameterMatch {
        name: q.name.into(),
        rule: match q.query_parameter_match_specifier {
            Some(S::StringMatch(m)) => string_matcher(m),
            Some(S::PresentMatch(b)) => StringMatch::Present(b),
            None => StringMatch::Present(true),
        },
        ignore_case,
    }
}

fn retry_policy(r: pb::RetryPolicy) -> Result<RetryPolicy> {
    Ok(RetryPolicy {
        retry_on: some(r.retry_on),
        num_retries: r.num_retries,
        per_try_timeout: r.per_try_timeout.as_ref().map(duration).transpose()?,
        retriable_status_codes: r.retriable_status_codes,
    })
}

fn route_action(a: pb::RouteAction) -> Result<RouteAction> {
    use pb::route_action::ClusterSpecifier as C;
    use pb::route_action::HostRewriteSpecifier as H;
    Ok(RouteAction {
        target: match a.cluster_specifier {
            Some(C::Cluster(c)) => RouteTarget::Cluster(c.into()),
            Some(C::ClusterHeader(h)) => RouteTarget::ClusterHeader(h.into()),
            Some(C::ClusterSpecifierPlugin(p)) => RouteTarget::Plugin(p.into()),
            Some(C::WeightedClusters(w)) => RouteTarget::Weighted(
                w.clusters
                    .into_iter()
                    .map(|c| WeightedCluster {
                        name: c.name.into(),
                        weight: c.weight.unwrap_or(0),
                    })
                    .collect(),
            ),
            Some(C::InlineClusterSpecifierPlugin(_)) | None => RouteTarget::None,
        },
        timeout: a.timeout.as_ref().map(duration).transpose()?,
        retry_policy: a.retry_policy.map(retry_policy).transpose()?,
        prefix_rewrite: some(a.prefix_rewrite),
        host_rewrite: match a.host_rewrite_specifier {
            Some(H::HostRewriteLiteral(h)) => Some(h.into()),
            _ => None,
        },
    })
}

fn redirect(d: pb::RedirectAction) -> Action {
    use pb::redirect_action::PathRewriteSpecifier as P;
    use pb::redirect_action::SchemeRewriteSpecifier as S;
    Action::Redirect {
        host: some(d.host_redirect),
        path: match d.path_rewrite_specifier {
            Some(P::PathRedirect(p)) => Some(p.into()),
            _ => None,
        },
        https: match d.scheme_rewrite_specifier {
            Some(S::HttpsRedirect(b)) => b,
            Some(S::SchemeRedirect(s)) => s == "https",
            None => false,
        },
        response_code: enum_name(&enums::REDIRECT_RESPONSE_CODE, d.response_code),
    }
}
