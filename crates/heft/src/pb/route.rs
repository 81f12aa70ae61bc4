//! `envoy.config.route.v3.RouteConfiguration` read from the input, down to each route, as
//! `json::decode::route` reads it.
//!
//! A sidecar's route configurations hold a virtual host per service, so they are read field by
//! field from the wire; the small messages the model keeps (header and query rules, retry
//! policies, redirects) go through prost.

use super::common::{enum_name, opt_enum_name, string_matcher};
use super::envoy::config::route::v3 as pb;
use super::parts::{
    decode_at, duration, last_per_key, map_entry, merge, metadata, opaque, push_read, some,
};
use super::wire::{self, Field, Fields, RawAny};
use crate::error::{Error, Result};
use crate::json::decode::route::{blank_header, blank_query_parameter};
use crate::model::enums;
use crate::model::{
    Action, HeaderMatch, Meta, Opaque, PathMatch, QueryParameterMatch, RetryPolicy, Route,
    RouteAction, RouteConfig, RouteMatch, RouteTarget, StringMatch, VirtualHost, WeightedCluster,
};
use crate::stream::Detail;
use prost::Message;

/// A route configuration prost holds (one inline in a listener, or handed to
/// [`Dump::from_resources`](crate::Dump::from_resources)), read as a binary input's are.
pub(crate) fn route_config_message(rc: &pb::RouteConfiguration, meta: Meta) -> Result<RouteConfig> {
    // Offsets into bytes made here would mislead.
    route_config(&rc.encode_to_vec(), 0, meta, Detail::Full).map_err(Error::without_offset)
}

/// Reads a `RouteConfiguration` whose bytes start at input offset `at`. Under
/// [`Detail::Shape`] a dynamic one is read for its shape only, as the JSON reader reads it
/// (`json::decode::route`): static ones are matched by content by the cost model.
pub(crate) fn route_config(b: &[u8], at: u64, meta: Meta, detail: Detail) -> Result<RouteConfig> {
    let shape = detail.route_config_shape_only(meta.state);
    let mut rc = RouteConfig::new(meta);
    for f in Fields::new(b, at) {
        let f = f?;
        match f.number {
            1 => rc.name = f.string()?.into(),
            2 => push_read(
                &mut rc.virtual_hosts,
                "virtual_hosts",
                virtual_host(&f, shape),
            )?,
            7 => rc.validate_clusters = Some(f.bool_value()?),
            14 => rc.ignore_port_in_host_matching = f.varint()? != 0,
            15 => rc.ignore_path_parameters_in_path_matching = f.varint()? != 0,
            18 => rc.vhost_header = some(f.string()?),
            _ => {}
        }
    }
    Ok(rc)
}

/// A string, or when only the shape is read an empty one (its bytes unchecked).
fn text(f: &Field, shape: bool) -> Result<Box<str>> {
    if shape {
        f.bytes()?;
        return Ok(Box::default());
    }
    Ok(f.string()?.into())
}

/// `typed_per_filter_config`, a map of `Any`s: their payloads in key order.
struct PerFilter<'a>(Vec<(&'a str, RawAny<'a>)>);

impl<'a> PerFilter<'a> {
    fn add(&mut self, f: &Field<'a>) -> Result<()> {
        let (key, value, value_at) = map_entry(f)?;
        self.0.push((key, wire::any(value, value_at)?));
        Ok(())
    }

    fn opaque(mut self) -> Vec<Opaque> {
        last_per_key(&mut self.0);
        self.0.iter().map(|(_, any)| opaque(any)).collect()
    }
}

fn virtual_host(f: &Field, shape: bool) -> Result<VirtualHost> {
    let mut v = VirtualHost::default();
    let mut per_filter = PerFilter(Vec::new());
    let mut retry: Option<pb::RetryPolicy> = None;
    for g in f.message()? {
        let g = g?;
        match g.number {
            1 => v.name = text(&g, shape)?,
            2 => v.domains.push(text(&g, shape)?),
            3 => push_read(&mut v.routes, "routes", route(&g, shape))?,
            4 => v.require_tls = opt_enum_name(&enums::REQUIRE_TLS, g.i32()?),
            15 | 16 if shape => {
                g.bytes()?;
            }
            15 => per_filter.add(&g)?,
            16 => merge(
                &g,
                retry.get_or_insert_with(Default::default),
                "RetryPolicy",
            )?,
            _ => {}
        }
    }
    v.retry_policy = retry.map(retry_policy).transpose()?;
    v.extensions = per_filter.opaque();
    Ok(v)
}

fn route(f: &Field, shape: bool) -> Result<Route> {
    let mut r = Route::default();
    let mut per_filter = PerFilter(Vec::new());
    for g in f.message()? {
        let g = g?;
        match g.number {
            4 | 13 | 14 if shape => {
                g.bytes()?;
            }
            // The cost model counts decorators; their text is not kept.
            5 if shape => {
                g.bytes()?;
                r.decorator = Some(Box::default());
            }
            14 => r.name = some(g.string()?),
            1 => r.route_match = route_match(&g, shape).map_err(|e| e.in_key("match"))?,
            2 => {
                let a = route_action(&g, shape).map_err(|e| e.in_key("route"))?;
                r.action = Action::Route(a);
            }
            3 => {
                let (b, at) = g.bytes()?;
                r.action = redirect(decode_at(b, at, "RedirectAction")?);
            }
            7 => {
                let (mut status, mut body_bytes) = (0, 0);
                for h in g.message()? {
                    let h = h?;
                    match h.number {
                        1 => status = h.u32()?,
                        2 => body_bytes = h.bytes()?.0.len() as u64,
                        _ => {}
                    }
                }
                r.action = Action::DirectResponse { status, body_bytes };
            }
            17 | 18 => {
                g.bytes()?;
                r.action = Action::Other;
            }
            5 => {
                for h in g.message()? {
                    let h = h?;
                    if h.number == 1 {
                        r.decorator = some(h.string()?);
                    }
                }
            }
            4 => {
                let (b, at) = g.bytes()?;
                r.istio_config = metadata(b, at)?.istio_config;
            }
            13 => per_filter.add(&g)?,
            _ => {}
        }
    }
    r.extensions = per_filter.opaque();
    Ok(r)
}

fn route_match(f: &Field, shape: bool) -> Result<RouteMatch> {
    let mut m = RouteMatch::default();
    for g in f.message()? {
        let g = g?;
        match g.number {
            1 => m.path = PathMatch::Prefix(text(&g, shape)?),
            2 => m.path = PathMatch::Path(text(&g, shape)?),
            10 => {
                let mut regex = Box::default();
                for h in g.message()? {
                    let h = h?;
                    if h.number == 2 {
                        regex = text(&h, shape)?;
                    }
                }
                m.path = PathMatch::SafeRegex(regex);
            }
            12 => {
                g.bytes()?;
                m.path = PathMatch::Connect;
            }
            14 => m.path = PathMatch::PathSeparatedPrefix(text(&g, shape)?),
            15 => {
                let (b, at) = g.bytes()?;
                let (name, config) =
                    super::common::typed_extension(decode_at(b, at, "TypedExtensionConfig")?);
                m.path = PathMatch::PathMatchPolicy(config.unwrap_or(Opaque {
                    type_url: name,
                    bytes: 0,
                }));
            }
            4 => m.case_sensitive = Some(g.bool_value()?),
            6 if shape => {
                g.bytes()?;
                m.headers.push(blank_header());
            }
            6 => {
                let (b, at) = g.bytes()?;
                m.headers
                    .push(header_matcher(decode_at(b, at, "HeaderMatcher")?));
            }
            7 if shape => {
                g.bytes()?;
                m.query_parameters.push(blank_query_parameter());
            }
            7 => {
                let (b, at) = g.bytes()?;
                m.query_parameters.push(query_parameter(decode_at(
                    b,
                    at,
                    "QueryParameterMatcher",
                )?));
            }
            8 => {
                g.bytes()?;
                m.grpc = true;
            }
            9 => {
                g.bytes()?;
                m.runtime_fraction = true;
            }
            _ => {}
        }
    }
    Ok(m)
}

fn route_action(f: &Field, shape: bool) -> Result<RouteAction> {
    let mut a = RouteAction::default();
    let mut retry: Option<pb::RetryPolicy> = None;
    for g in f.message()? {
        let g = g?;
        match g.number {
            5 | 6 | 8 if shape => {
                g.bytes()?;
            }
            9 if shape => {
                g.bytes()?;
                a.retry_policy = Some(RetryPolicy::default());
            }
            1 => a.target = RouteTarget::Cluster(text(&g, shape)?),
            2 => a.target = RouteTarget::ClusterHeader(text(&g, shape)?),
            37 => a.target = RouteTarget::Plugin(text(&g, shape)?),
            39 => {
                g.bytes()?;
                a.target = RouteTarget::None;
            }
            3 => {
                let mut clusters = Vec::new();
                for h in g.message()? {
                    let h = h?;
                    if h.number == 1 {
                        clusters.push(weighted_cluster(&h, shape)?);
                    }
                }
                a.target = RouteTarget::Weighted(clusters);
            }
            8 => a.timeout = Some(duration(&g).map_err(|e| e.in_key("timeout"))?),
            9 => merge(
                &g,
                retry.get_or_insert_with(Default::default),
                "RetryPolicy",
            )?,
            5 => a.prefix_rewrite = some(g.string()?),
            6 => a.host_rewrite = Some(g.string()?.into()),
            // The other members of `host_rewrite_specifier`.
            7 | 29 | 35 => a.host_rewrite = None,
            _ => {}
        }
    }
    if retry.is_some() {
        a.retry_policy = retry.map(retry_policy).transpose()?;
    }
    Ok(a)
}

fn weighted_cluster(f: &Field, shape: bool) -> Result<WeightedCluster> {
    let mut w = WeightedCluster {
        name: "".into(),
        weight: 0,
    };
    for g in f.message()? {
        let g = g?;
        match g.number {
            1 => w.name = text(&g, shape)?,
            2 if shape => {
                g.bytes()?;
            }
            2 => w.weight = g.u32_value()?,
            _ => {}
        }
    }
    Ok(w)
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
        retry_on: some(&r.retry_on),
        num_retries: r.num_retries,
        per_try_timeout: r
            .per_try_timeout
            .as_ref()
            .map(super::common::duration)
            .transpose()?,
        retriable_status_codes: r.retriable_status_codes,
    })
}

fn redirect(d: pb::RedirectAction) -> Action {
    use pb::redirect_action::PathRewriteSpecifier as P;
    use pb::redirect_action::SchemeRewriteSpecifier as S;
    Action::Redirect {
        host: some(&d.host_redirect),
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
