//! Decoders from one JSON resource (or dump entry) to the model.
//!
//! The outer walk (`json::walk`) finds each entry of each section and hands its bytes here, on
//! whichever thread is free. An entry (`{"version_info", "cluster", "last_updated", …}`) becomes
//! one or more [`Item`]s: a dynamic listener entry can hold an active, a warming and a draining
//! listener at once.

mod bootstrap;
mod cluster;
pub(crate) mod common;
mod endpoint;
mod listener;
pub(crate) mod route;
pub(crate) mod secret;

use crate::error::{Error, ErrorKind, Result};
use crate::json::parser::Parser;
use crate::model::{Listener, Meta, Opaque, OpaqueResource, Rejected, Secret, Span, State};
use crate::stream::Detail;

/// A decoded piece of the dump, in input order: the stream's resource.
pub(crate) use crate::stream::Resource as Item;

/// What an array element (or value) of the dump is, which says how to decode it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    /// `static_clusters[i]`, `dynamic_active_clusters[i]`, `dynamic_warming_clusters[i]`.
    Cluster(State),
    StaticListener,
    /// `dynamic_listeners[i]`: holds up to three states.
    DynamicListener,
    RouteConfig(State),
    EndpointConfig(State),
    Secret(State),
    /// The `bootstrap` value of a BootstrapConfigDump.
    Bootstrap,
    /// `cluster_statuses[i]` of `/clusters?format=json`.
    ClusterStatus,
    /// An entry of a section Heft keeps opaque (ECDS, scoped routes).
    OpaqueEntry(&'static str),
    /// A bare resource in an array (istioctl output); its kind is read from its keys.
    Bare,
}

/// Decodes one entry whose bytes are `buf` (starting at input offset `base`) into `out`, as much
/// of it as `detail` asks.
pub(crate) fn entry(
    kind: EntryKind,
    buf: &[u8],
    base: u64,
    detail: Detail,
    out: &mut Vec<Item>,
) -> Result<()> {
    let mut p = Parser::for_entry(buf, base)?.with_detail(detail);
    let span = Span {
        offset: base,
        len: buf.len() as u64,
    };
    decode_in(kind, &mut p, span, out)?;
    p.finish()
}

/// Decodes the entry that starts `text` (at input offset `base`), which more input may follow;
/// returns the entry's length. Its items' spans are the entry's.
pub(crate) fn entry_prefix(
    kind: EntryKind,
    text: &str,
    base: u64,
    detail: Detail,
    out: &mut Vec<Item>,
) -> Result<usize> {
    let mut p = Parser::trusted(text, base).with_detail(detail);
    let first = out.len();
    decode_in(
        kind,
        &mut p,
        Span {
            offset: base,
            len: 0,
        },
        out,
    )?;
    let span = Some(Span {
        offset: base,
        len: p.pos() as u64,
    });
    for item in &mut out[first..] {
        item.meta_mut().span = span;
    }
    Ok(p.pos())
}

fn decode_in(kind: EntryKind, p: &mut Parser, span: Span, out: &mut Vec<Item>) -> Result<()> {
    let span = Some(span);
    let meta = |state| Meta {
        span,
        ..Meta::new(state)
    };
    match kind {
        EntryKind::Cluster(state) => wrapped(p, meta(state), "cluster", out, |p, m| {
            Ok(Item::Cluster(Box::new(cluster::cluster(p, m)?)))
        })?,
        EntryKind::StaticListener => wrapped(p, meta(State::Static), "listener", out, |p, m| {
            Ok(Item::Listener(Box::new(listener::listener(p, m)?)))
        })?,
        EntryKind::DynamicListener => dynamic_listener(p, span, out)?,
        EntryKind::RouteConfig(state) => wrapped(p, meta(state), "route_config", out, |p, m| {
            Ok(Item::RouteConfig(Box::new(route::route_config(p, m)?)))
        })?,
        EntryKind::EndpointConfig(state) => {
            wrapped(p, meta(state), "endpoint_config", out, |p, m| {
                Ok(Item::LoadAssignment(Box::new(endpoint::load_assignment(
                    p, m,
                )?)))
            })?
        }
        EntryKind::Secret(state) => secret_entry(p, meta(state), out)?,
        EntryKind::Bootstrap => out.push(Item::Bootstrap(Box::new(bootstrap::bootstrap(
            p,
            meta(State::Static),
        )?))),
        EntryKind::ClusterStatus => out.push(Item::ClusterStatus(Box::new(
            endpoint::cluster_status(p, meta(State::Active))?,
        ))),
        EntryKind::OpaqueEntry(type_url) => {
            out.push(opaque_entry(p, meta(State::Active), type_url)?)
        }
        EntryKind::Bare => bare(p, meta(State::Active), out)?,
    }
    Ok(())
}

/// The common dump entry shape: the resource under `field`, beside version and status fields
/// (which may come before or after it).
fn wrapped(
    p: &mut Parser,
    mut meta: Meta,
    field: &str,
    out: &mut Vec<Item>,
    decode: impl FnOnce(&mut Parser, Meta) -> Result<Item>,
) -> Result<()> {
    let mut decode = Some(decode);
    let mut item = None;
    let mut name = None;
    p.fields(|p, k| {
        match k {
            "version_info" | "last_updated" => version_or_time(p, k, &mut meta)?,
            "error_state" => meta.error = Some(common::update_failure(p)?),
            "client_status" => meta.client_status = client_status_of(p)?,
            "name" => name = common::nonempty(p)?,
            k if k == field => match decode.take() {
                Some(decode) => item = Some(decode(p, Meta::new(meta.state))?),
                None => p.skip()?,
            },
            _ => p.skip()?,
        }
        Ok(())
    })?;
    match item {
        Some(mut item) => {
            *item.meta_mut() = meta;
            out.push(item);
        }
        None if meta.error.is_some() => {
            let kind = match field {
                "cluster" => "cluster",
                "listener" => "listener",
                "route_config" => "route_config",
                _ => "endpoint_config",
            };
            out.push(Item::Rejected(Box::new(Rejected {
                kind,
                name: name.unwrap_or_default(),
                meta,
            })));
        }
        None => {
            return Err(Error::new(
                ErrorKind::InvalidValue,
                format!("entry has no `{field}`"),
            ))
        }
    }
    Ok(())
}

/// An entry's `version_info` or `last_updated`, into `meta`; skipped under [`Detail::Shape`]:
/// no count or cost reads them, and every entry of a dump has both.
fn version_or_time(p: &mut Parser, key: &str, meta: &mut Meta) -> Result<()> {
    if p.shape_only() {
        return p.skip();
    }
    if key == "version_info" {
        meta.version_info = common::nonempty(p)?;
    } else {
        meta.last_updated = Some(p.string()?);
    }
    Ok(())
}

/// `ClientResourceStatus`, by name or number; `None` for `UNKNOWN` (its default).
fn client_status_of(p: &mut Parser) -> Result<Option<Box<str>>> {
    common::opt_enum(p, &crate::model::enums::CLIENT_STATUS)
}

/// `DynamicListener`: `{name, active_state, warming_state, draining_state, error_state}`.
fn dynamic_listener(p: &mut Parser, span: Option<Span>, out: &mut Vec<Item>) -> Result<()> {
    let mut name = None;
    let mut error = None;
    let mut client_status = None;
    let mut states = Vec::new();
    p.fields(|p, k| {
        let state = match k {
            "name" => {
                name = common::nonempty(p)?;
                return Ok(());
            }
            "error_state" => {
                error = Some(common::update_failure(p)?);
                return Ok(());
            }
            "client_status" => {
                client_status = client_status_of(p)?;
                return Ok(());
            }
            "active_state" => State::Active,
            "warming_state" => State::Warming,
            "draining_state" => State::Draining,
            _ => return p.skip(),
        };
        let mut meta = Meta {
            span,
            ..Meta::new(state)
        };
        let mut listener = None;
        p.fields(|p, k| {
            match k {
                "version_info" | "last_updated" => version_or_time(p, k, &mut meta)?,
                "listener" => listener = Some(listener::listener(p, Meta::new(state))?),
                _ => p.skip()?,
            }
            Ok(())
        })?;
        if let Some(mut l) = listener {
            l.meta = meta;
            states.push(l);
        }
        Ok(())
    })?;
    push_dynamic_listener(out, name, error, client_status, span, states);
    Ok(())
}

/// Turns a `DynamicListener` entry's parts into items: each state present as a listener carrying
/// the entry's error and client status, or, when no state holds a listener, the rejected update.
/// Both readers (JSON and protobuf) assemble entries through here.
pub(crate) fn push_dynamic_listener(
    out: &mut Vec<Item>,
    name: Option<Box<str>>,
    error: Option<Box<crate::model::UpdateFailure>>,
    client_status: Option<Box<str>>,
    span: Option<Span>,
    states: Vec<Listener>,
) {
    if states.is_empty() {
        if let Some(error) = error {
            let meta = Meta {
                span,
                error: Some(error),
                client_status,
                ..Meta::new(State::Active)
            };
            out.push(Item::Rejected(Box::new(Rejected {
                kind: "listener",
                name: name.unwrap_or_default(),
                meta,
            })));
        }
        return;
    }
    for mut l in states {
        l.meta.error.clone_from(&error);
        l.meta.client_status.clone_from(&client_status);
        out.push(Item::Listener(Box::new(l)));
    }
}

/// Secret entries carry their name beside the secret (warming ones often have no secret body).
fn secret_entry(p: &mut Parser, mut meta: Meta, out: &mut Vec<Item>) -> Result<()> {
    let mut name = None;
    let mut secret = None;
    p.fields(|p, k| {
        match k {
            "name" => name = common::nonempty(p)?,
            "version_info" | "last_updated" => version_or_time(p, k, &mut meta)?,
            "error_state" => meta.error = Some(common::update_failure(p)?),
            "client_status" => meta.client_status = client_status_of(p)?,
            "secret" => secret = Some(secret::secret(p, Meta::new(meta.state), None)?),
            _ => p.skip()?,
        }
        Ok(())
    })?;
    let mut s = secret.unwrap_or_else(|| Secret {
        meta: Meta::new(meta.state),
        name: "".into(),
        kind: crate::model::SecretKind::Unknown,
        certificates: Vec::new(),
        certificate_error: None,
    });
    if let Some(name) = name {
        s.name = name;
    }
    s.meta = meta;
    out.push(Item::Secret(Box::new(s)));
    Ok(())
}

fn opaque_entry(p: &mut Parser, mut meta: Meta, type_url: &'static str) -> Result<Item> {
    let mut name = None;
    let mut config_type_url = None;
    let start = {
        p.peek()?;
        p.pos()
    };
    p.fields(|p, k| {
        match k {
            "name" => name = common::opt_string(p)?,
            "version_info" | "last_updated" => version_or_time(p, k, &mut meta)?,
            "error_state" => meta.error = Some(common::update_failure(p)?),
            "client_status" => meta.client_status = client_status_of(p)?,
            // An ECDS entry names its extension config inside the config.
            "ecds_filter" => {
                let (n, config) = common::typed_extension(p)?;
                name = (!n.is_empty()).then_some(n);
                config_type_url = config.map(|c| c.type_url).filter(|t| !t.is_empty());
            }
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok(Item::Opaque(Box::new(OpaqueResource {
        meta,
        name,
        payload: Opaque {
            type_url: type_url.into(),
            bytes: (p.pos() - start) as u64,
        },
        config_type_url,
    })))
}

/// What a bare resource is, from its `@type` or, failing that, its keys. Keys are weighed by a
/// fixed priority, not by their order, so field order cannot change the verdict.
fn bare_kind(p: &mut Parser) -> Result<Option<&'static str>> {
    if let Some(t) = p.peek_type_url()? {
        let kind = match t.rsplit('.').next().unwrap_or("") {
            "Cluster" => "cluster",
            "Listener" => "listener",
            "RouteConfiguration" => "route_config",
            "ClusterLoadAssignment" => "endpoint_config",
            "Secret" => "secret",
            "Bootstrap" => "bootstrap",
            _ => return Ok(None),
        };
        return Ok(Some(kind));
    }
    // Most telling first: a dump entry wraps its resource under one of the first keys.
    const PRIORITY: [(&str, &str); 32] = [
        ("cluster", "entry:cluster"),
        ("active_state", "entry:listener"),
        ("warming_state", "entry:listener"),
        ("draining_state", "entry:listener"),
        ("listener", "entry:static_listener"),
        ("route_config", "entry:route_config"),
        ("endpoint_config", "entry:endpoint_config"),
        ("secret", "entry:secret"),
        ("host_statuses", "cluster_status"),
        ("added_via_api", "cluster_status"),
        ("virtual_hosts", "route_config"),
        ("vhds", "route_config"),
        ("validate_clusters", "route_config"),
        ("cluster_name", "endpoint_config"),
        ("filter_chains", "listener"),
        ("listener_filters", "listener"),
        ("default_filter_chain", "listener"),
        ("address", "listener"),
        ("tls_certificate", "secret"),
        ("validation_context", "secret"),
        ("session_ticket_keys", "secret"),
        ("generic_secret", "secret"),
        ("node", "bootstrap"),
        ("static_resources", "bootstrap"),
        ("dynamic_resources", "bootstrap"),
        ("type", "cluster"),
        ("eds_cluster_config", "cluster"),
        ("connect_timeout", "cluster"),
        ("lb_policy", "cluster"),
        ("cluster_type", "cluster"),
        ("transport_socket_matches", "cluster"),
        ("load_assignment", "cluster"),
    ];
    let mut probe = p.rest();
    let mut best: Option<usize> = None;
    probe.fields(|q, k| {
        if let Some(rank) = PRIORITY.iter().position(|(key, _)| *key == k) {
            best = Some(best.map_or(rank, |b| b.min(rank)));
        }
        q.skip()
    })?;
    Ok(best.map(|rank| PRIORITY[rank].1))
}

fn bare(p: &mut Parser, meta: Meta, out: &mut Vec<Item>) -> Result<()> {
    let item = match bare_kind(p)? {
        Some("entry:cluster") => {
            return wrapped(p, meta, "cluster", out, |p, m| {
                Ok(Item::Cluster(Box::new(cluster::cluster(p, m)?)))
            })
        }
        Some("entry:listener") => return dynamic_listener(p, meta.span, out),
        Some("entry:static_listener") => {
            return wrapped(p, meta, "listener", out, |p, m| {
                Ok(Item::Listener(Box::new(listener::listener(p, m)?)))
            })
        }
        Some("entry:route_config") => {
            return wrapped(p, meta, "route_config", out, |p, m| {
                Ok(Item::RouteConfig(Box::new(route::route_config(p, m)?)))
            })
        }
        Some("entry:endpoint_config") => {
            return wrapped(p, meta, "endpoint_config", out, |p, m| {
                Ok(Item::LoadAssignment(Box::new(endpoint::load_assignment(
                    p, m,
                )?)))
            })
        }
        Some("entry:secret") => return secret_entry(p, meta, out),
        Some("cluster") => Item::Cluster(Box::new(cluster::cluster(p, meta)?)),
        Some("listener") => Item::Listener(Box::new(listener::listener(p, meta)?)),
        Some("route_config") => Item::RouteConfig(Box::new(route::route_config(p, meta)?)),
        Some("endpoint_config") => {
            Item::LoadAssignment(Box::new(endpoint::load_assignment(p, meta)?))
        }
        Some("secret") => Item::Secret(Box::new(secret::secret(p, meta, None)?)),
        Some("bootstrap") => Item::Bootstrap(Box::new(bootstrap::bootstrap(p, meta)?)),
        Some("cluster_status") => Item::ClusterStatus(Box::new(endpoint::cluster_status(p, meta)?)),
        _ => {
            let payload = common::opaque(p)?;
            Item::Opaque(Box::new(OpaqueResource {
                meta,
                name: None,
                payload,
                config_type_url: None,
            }))
        }
    };
    out.push(item);
    Ok(())
}
