//! The binary reader: tells protobuf inputs from JSON, walks their outer layers by hand and
//! decodes each resource in parallel: clusters, load assignments and route configurations
//! straight from the wire (`cluster.rs`, `endpoint.rs`, `route.rs`), the others with prost.
//!
//! Three shapes are read: an `envoy.admin.v3.ConfigDump`, one
//! `envoy.service.discovery.v3.DiscoveryResponse`, and a stream of DiscoveryResponses each
//! preceded by its length as a varint. The walk reads only tags and lengths (`configs`, each
//! section's entry fields, each response's `resources`), checking every length against the
//! input; each entry's bytes become a job, and rayon decodes each batch of jobs as soon as the
//! walk has filled it, while the results keep input order. Nothing is allocated from a length
//! read in the input.

use super::common::{some, timestamp, update_failure};
use super::envoy::admin::v3::UpdateFailureState;
use super::parts::decode_at;
use super::wire::{self, Field, Fields, RawAny, LEN};
use crate::error::{Error, ErrorKind, Result};
use crate::json::decode::Item;
use crate::model::{
    DocumentKind, Meta, Opaque, OpaqueResource, Rejected, Secret, SecretKind, Section, Skipped,
    Source, Span, State,
};
use crate::read::ReadOptions;
use crate::stream::{add_all, settle, Detail, Finished, Fold, InFlight, Ordered, Outline};
use prost::Message;

/// How many leading bytes [`sniff`] needs to decide.
pub(crate) const SNIFF_BYTES: usize = 4096;

/// A batch of jobs is decoded on one thread once it holds this many input bytes…
pub(super) const BATCH_BYTES: usize = 2 << 20;
/// …or this many jobs.
pub(super) const BATCH_JOBS: usize = 2048;

const TYPE_PREFIX: &str = "type.googleapis.com/";

/// Which protobuf message an input holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    ConfigDump,
    DiscoveryResponse,
    Stream,
}

/// Tells a binary input from JSON by its first bytes. `whole` says `head` is the entire input
/// (not a prefix), which allows stricter checks. JSON never passes: its first byte is not a
/// valid tag, or the strings it would imply are not type URLs.
pub(crate) fn sniff(head: &[u8], whole: bool) -> Option<Shape> {
    if looks_like_config_dump(head) {
        Some(Shape::ConfigDump)
    } else if looks_like_response(head, whole) {
        Some(Shape::DiscoveryResponse)
    } else {
        let mut pos = 0;
        let len = wire::varint(head, &mut pos, 0).ok()?;
        let end = pos.checked_add(usize::try_from(len).ok()?)?;
        let complete = end <= head.len();
        let frame = &head[pos..end.min(head.len())];
        (len > 0 && looks_like_response(frame, complete)).then_some(Shape::Stream)
    }
}

/// An `Any` whose first field is a type URL.
fn starts_with_type_url(b: &[u8]) -> bool {
    let mut pos = 0;
    if b.first() != Some(&0x0a) {
        return false;
    }
    pos += 1;
    let Ok(len) = wire::varint(b, &mut pos, 0) else {
        return false;
    };
    usize::try_from(len)
        .ok()
        .and_then(|len| b.get(pos..pos.checked_add(len)?))
        .is_some_and(wire::is_type_url)
}

fn looks_like_config_dump(b: &[u8]) -> bool {
    let mut pos = 0;
    if b.first() != Some(&0x0a) {
        return false;
    }
    pos += 1;
    wire::varint(b, &mut pos, 0).is_ok() && starts_with_type_url(&b[pos..])
}

fn looks_like_response(b: &[u8], complete: bool) -> bool {
    let mut pos = 0;
    let mut typed = false;
    for _ in 0..64 {
        if pos >= b.len() {
            return typed;
        }
        let Ok(key) = wire::varint(b, &mut pos, 0) else {
            return false;
        };
        let (number, wire_type) = (key >> 3, (key & 7) as u8);
        if number == 3 && wire_type == 0 {
            if wire::varint(b, &mut pos, 0).is_err() {
                return false;
            }
            continue;
        }
        if !(1..=6).contains(&number) || number == 3 || wire_type != LEN {
            return false;
        }
        let Ok(len) = wire::varint(b, &mut pos, 0) else {
            return false;
        };
        let Some(end) = usize::try_from(len).ok().and_then(|l| pos.checked_add(l)) else {
            return false;
        };
        let value = &b[pos.min(b.len())..end.min(b.len())];
        let whole_value = end <= b.len();
        match number {
            1 | 5 if whole_value => {
                let text_ok =
                    std::str::from_utf8(value).is_ok_and(|s| !s.chars().any(char::is_control));
                if !text_ok {
                    return false;
                }
            }
            2 => {
                if !starts_with_type_url(value) {
                    return false;
                }
                typed = true;
            }
            4 if whole_value => {
                if !wire::is_type_url(value) {
                    return false;
                }
                typed = true;
            }
            _ => {}
        }
        if !whole_value {
            return typed && !complete;
        }
        pos = end;
    }
    typed
}

/// Where a job sits, for error paths: `configs[c].<section>[i]` or `[r].resources[i]`.
#[derive(Debug, Clone, Copy)]
pub(super) struct JobPath {
    outer: Option<(&'static str, u64)>,
    section: &'static str,
    index: Option<u64>,
}

impl JobPath {
    fn wrap(&self, mut e: Error) -> Error {
        if let Some(i) = self.index {
            e = e.in_index(i);
        }
        if !self.section.is_empty() {
            e = e.in_key(self.section);
        }
        match self.outer {
            Some(("", i)) => e.in_index(i),
            Some((key, i)) => e.in_index(i).in_key(key),
            None => e,
        }
    }
}

/// Field numbers of a dump entry's parts (0: the entry has no such field).
#[derive(Debug, Clone, Copy)]
pub(super) struct Layout {
    name: u32,
    version_info: u32,
    resource: u32,
    last_updated: u32,
    error_state: u32,
    client_status: u32,
}

const STATIC_ENTRY: Layout = Layout {
    name: 0,
    version_info: 0,
    resource: 1,
    last_updated: 2,
    error_state: 0,
    client_status: 0,
};
const DYNAMIC_ENTRY: Layout = Layout {
    name: 0,
    version_info: 1,
    resource: 2,
    last_updated: 3,
    error_state: 4,
    client_status: 5,
};
const STATIC_SECRET: Layout = Layout {
    name: 1,
    version_info: 0,
    resource: 3,
    last_updated: 2,
    error_state: 0,
    client_status: 0,
};
const DYNAMIC_SECRET: Layout = Layout {
    name: 1,
    version_info: 2,
    resource: 4,
    last_updated: 3,
    error_state: 5,
    client_status: 6,
};
const INLINE_SCOPED: Layout = Layout {
    name: 1,
    version_info: 0,
    resource: 0,
    last_updated: 3,
    error_state: 0,
    client_status: 0,
};
const DYNAMIC_SCOPED: Layout = Layout {
    name: 1,
    version_info: 2,
    resource: 0,
    last_updated: 4,
    error_state: 5,
    client_status: 6,
};
const ECDS_ENTRY: Layout = Layout {
    name: 0,
    version_info: 1,
    // `ecds_filter`, a `TypedExtensionConfig`: read for its name and its config's type.
    resource: 2,
    last_updated: 3,
    error_state: 4,
    client_status: 5,
};

/// What a job's bytes are.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind<'a> {
    Cluster(State, Layout),
    Listener(Layout),
    DynamicListener,
    RouteConfig(State, Layout),
    LoadAssignment(State, Layout),
    Secret(State, Layout),
    Bootstrap,
    OpaqueEntry(&'static str, Layout),
    /// One of a DiscoveryResponse's `resources`, with the response's version.
    Resource(Option<&'a str>),
}

pub(super) struct Job<'a> {
    pub(super) kind: Kind<'a>,
    pub(super) bytes: &'a [u8],
    pub(super) at: u64,
    pub(super) path: JobPath,
}

/// What the walk learnt besides the jobs.
#[derive(Default)]
pub(super) struct Skeleton {
    pub(super) sections: Vec<Section>,
    pub(super) opaque_sections: Vec<OpaqueResource>,
    pub(super) bootstrap_last_updated: Option<Box<str>>,
}

/// Where the walk puts what it finds: the skeleton, and jobs gathered into batches that are
/// handed over for decoding as each fills, so decoding starts while the walk goes on.
struct Sink<'a, 's> {
    skeleton: Skeleton,
    batch: Vec<Job<'a>>,
    batch_bytes: usize,
    submit: &'s mut dyn FnMut(Vec<Job<'a>>),
}

/// What a section's walk hands its findings to: the walk of a whole input borrows each job's
/// bytes from it ([`Sink`]); the walk of a stream copies them (`super::streamed`).
pub(super) trait Take<'b> {
    fn skeleton(&mut self) -> &mut Skeleton;
    /// Takes a job of `kind` whose bytes, at input offset `at`, are `bytes`.
    fn push(&mut self, kind: Kind<'static>, bytes: &'b [u8], at: u64, path: JobPath);
}

impl<'a> Take<'a> for Sink<'a, '_> {
    fn skeleton(&mut self) -> &mut Skeleton {
        &mut self.skeleton
    }

    fn push(&mut self, kind: Kind<'static>, bytes: &'a [u8], at: u64, path: JobPath) {
        self.push_job(Job {
            kind,
            bytes,
            at,
            path,
        });
    }
}

impl<'a> Sink<'a, '_> {
    fn push_job(&mut self, job: Job<'a>) {
        self.batch_bytes += job.bytes.len();
        self.batch.push(job);
        if self.batch_bytes >= BATCH_BYTES || self.batch.len() >= BATCH_JOBS {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if !self.batch.is_empty() {
            self.batch_bytes = 0;
            (self.submit)(std::mem::take(&mut self.batch));
        }
    }
}

/// Reads a whole binary input, folding its resources in input order. `on_merged` is told how far
/// the input has been folded (for progress, and to give back a mapped file's pages).
pub(crate) fn fold<'b, F: Fold>(
    bytes: &'b [u8],
    shape: Shape,
    compression: &'static str,
    opts: &ReadOptions,
    fold: &F,
    on_merged: Option<&(dyn Fn(u64) + Sync)>,
) -> Result<(Outline, F::Acc)> {
    let detail = fold.detail();
    // Folds learn of the bootstrap before any batch starts (a bad one fails in its batch).
    if shape == Shape::ConfigDump {
        if let Some(job) = bootstrap_job(bytes) {
            let mut items = Vec::new();
            if decode_job(&job, detail, &mut items).is_ok() {
                for item in &items {
                    if let Item::Bootstrap(b) = item {
                        fold.bootstrap(b);
                    }
                }
            }
        }
    }
    let total = bytes.len() as u64;
    let ordered = Ordered::new(fold, on_merged);
    let in_flight = InFlight::default();
    let inline = rayon::current_thread_index().is_some();
    let keep_going = opts.keep_going;
    let (walked, skeleton) = rayon::in_place_scope(|scope| {
        let ordered = &ordered;
        let in_flight = &in_flight;
        let mut submit = |batch: Vec<Job<'b>>| {
            let slot = ordered.slot();
            if inline {
                return ordered.run(slot, |fold| run_batch(&batch, detail, keep_going, fold));
            }
            // A walk running ahead of the decoders would fault in the whole mapped file before
            // its pages behind the fold are given back.
            let room = in_flight.enter(batch.iter().map(|j| j.bytes.len() as u64).sum());
            scope.spawn(move |_| {
                let _room = room;
                ordered.run(slot, |fold| run_batch(&batch, detail, keep_going, fold));
            });
        };
        let mut sink = Sink {
            skeleton: Skeleton::default(),
            batch: Vec::new(),
            batch_bytes: 0,
            submit: &mut submit,
        };
        let walked = match shape {
            Shape::ConfigDump => config_dump(bytes, &mut sink),
            Shape::DiscoveryResponse => response(bytes, 0, None, &mut sink),
            Shape::Stream => stream(bytes, &mut sink),
        };
        sink.flush();
        (walked, sink.skeleton)
    });
    if walked.is_err() && keep_going && shape == Shape::ConfigDump {
        // Where the input ends inside a section, this walk has skipped the section whole; the
        // stream's walk keeps the entries before the end, and reports what this one reports
        // otherwise. Read so, a file and a pipe of the same bytes give the same dump.
        drop(ordered);
        return super::streamed::fold(Vec::new(), Box::new(bytes), compression, opts, fold);
    }
    let (acc, mut skipped, error) = ordered.finish();
    settle(walked, error, keep_going, &mut skipped)?;
    let format = match shape {
        Shape::ConfigDump => DocumentKind::ConfigDump,
        _ => DocumentKind::ResourceList,
    };
    Ok((skeleton.outline(format, compression, total, skipped), acc))
}

impl Skeleton {
    /// What a read learnt besides its resources.
    pub(super) fn outline(
        self,
        format: DocumentKind,
        compression: &'static str,
        bytes: u64,
        skipped: Vec<Skipped>,
    ) -> Outline {
        Outline {
            source: Source {
                format,
                encoding: "protobuf",
                compression,
                bytes,
            },
            sections: self.sections,
            opaque_sections: self.opaque_sections,
            bootstrap_last_updated: self.bootstrap_last_updated,
            skipped,
        }
    }
}

/// Decodes one batch of jobs and folds their resources.
pub(super) fn run_batch<F: Fold>(
    batch: &[Job],
    detail: Detail,
    keep_going: bool,
    fold: &F,
) -> Finished<F::Acc> {
    let mut acc = fold.start();
    let mut items = Vec::new();
    let mut skipped = Vec::new();
    let mut error = None;
    for (i, job) in batch.iter().enumerate() {
        if let Some(next) = batch.get(i + 1) {
            prefetch(next.bytes);
        }
        match decode_job(job, detail, &mut items) {
            Ok(()) => add_all(fold, &mut acc, &mut items, job.bytes),
            Err(e) => {
                items.clear();
                let e = job.path.wrap(e.with_offset(job.at));
                if !keep_going {
                    error = Some(e);
                    break;
                }
                skipped.push(Skipped::at(&e, e.message().to_string()));
            }
        }
    }
    let end = batch.last().map_or(0, |j| j.at + j.bytes.len() as u64);
    Finished {
        acc,
        skipped,
        error,
        end,
        overran: None,
    }
}

/// How much of the next job [`prefetch`] asks for: a cluster or a load assignment whole.
const PREFETCH_BYTES: usize = 4096;

/// Asks the CPU to load the start of the next job's bytes while this one decodes. The decoders
/// jump over the sub-messages they skip, so the hardware's own prefetching, which follows
/// sequential reads, leaves them waiting on memory at each field after a jump: on the 1 GB
/// benchmark dump's 303 MB binary this cuts the read's CPU time by about 5%.
#[inline]
fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in bytes[..bytes.len().min(PREFETCH_BYTES)].chunks(64) {
        // SAFETY: a prefetch is a hint that reads nothing into the program; the address is
        // inside `bytes` in any case.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast());
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// The bootstrap of a `ConfigDump`, found by reading only the tags and lengths of `configs`
/// and of the bootstrap section. Malformed input finds none: the walk reports it.
fn bootstrap_job(bytes: &[u8]) -> Option<Job<'_>> {
    for f in Fields::new(bytes, 0) {
        let f = f.ok()?;
        if f.number != 1 {
            continue;
        }
        let (b, at) = f.bytes().ok()?;
        let any = wire::any(b, at).ok()?;
        if any.type_url.strip_prefix(TYPE_PREFIX) != Some("envoy.admin.v3.BootstrapConfigDump") {
            continue;
        }
        for g in Fields::new(any.value, any.value_at) {
            let g = g.ok()?;
            if g.number == 1 {
                let (bytes, at) = g.bytes().ok()?;
                return Some(Job {
                    kind: Kind::Bootstrap,
                    bytes,
                    at,
                    path: JobPath {
                        outer: None,
                        section: "",
                        index: None,
                    },
                });
            }
        }
    }
    None
}

/// `ConfigDump`: `repeated Any configs = 1`.
fn config_dump<'a>(bytes: &'a [u8], sk: &mut Sink<'a, '_>) -> Result<()> {
    let in_configs = |e: Error, index: u64| e.in_index(index).in_key("configs");
    let mut index = 0;
    for f in Fields::new(bytes, 0) {
        // A `configs` element whose length or wire type is wrong is where the path ends.
        let f = f.map_err(|fault| match fault.field() {
            Some(1) => in_configs(fault.into(), index),
            _ => fault.into(),
        })?;
        if f.number != 1 {
            continue;
        }
        let (b, at) = f.bytes().map_err(|fault| in_configs(fault.into(), index))?;
        section(b, at, index, sk).map_err(|e| in_configs(e, index))?;
        index += 1;
    }
    Ok(())
}

/// A section type's entry arrays: (field number, section key, entry kind) of each.
pub(super) type EntryFields = &'static [(u32, &'static str, Kind<'static>)];

/// The entry arrays of the section type `name` (its type URL without the prefix), or `None`
/// for a section Heft keeps opaque.
pub(super) fn entry_fields(name: &str) -> Option<EntryFields> {
    use Kind as K;
    Some(match name {
        "envoy.admin.v3.ClustersConfigDump" => &[
            (
                2,
                "static_clusters",
                K::Cluster(State::Static, STATIC_ENTRY),
            ),
            (
                3,
                "dynamic_active_clusters",
                K::Cluster(State::Active, DYNAMIC_ENTRY),
            ),
            (
                4,
                "dynamic_warming_clusters",
                K::Cluster(State::Warming, DYNAMIC_ENTRY),
            ),
        ],
        "envoy.admin.v3.ListenersConfigDump" => &[
            (2, "static_listeners", K::Listener(STATIC_ENTRY)),
            (3, "dynamic_listeners", K::DynamicListener),
        ],
        "envoy.admin.v3.RoutesConfigDump" => &[
            (
                2,
                "static_route_configs",
                K::RouteConfig(State::Static, STATIC_ENTRY),
            ),
            (
                3,
                "dynamic_route_configs",
                K::RouteConfig(State::Active, DYNAMIC_ENTRY),
            ),
        ],
        "envoy.admin.v3.EndpointsConfigDump" => &[
            (
                2,
                "static_endpoint_configs",
                K::LoadAssignment(State::Static, STATIC_ENTRY),
            ),
            (
                3,
                "dynamic_endpoint_configs",
                K::LoadAssignment(State::Active, DYNAMIC_ENTRY),
            ),
        ],
        "envoy.admin.v3.SecretsConfigDump" => &[
            (1, "static_secrets", K::Secret(State::Static, STATIC_SECRET)),
            (
                2,
                "dynamic_active_secrets",
                K::Secret(State::Active, DYNAMIC_SECRET),
            ),
            (
                3,
                "dynamic_warming_secrets",
                K::Secret(State::Warming, DYNAMIC_SECRET),
            ),
        ],
        "envoy.admin.v3.ScopedRoutesConfigDump" => &[
            (
                1,
                "inline_scoped_route_configs",
                K::OpaqueEntry(SCOPED_ROUTES, INLINE_SCOPED),
            ),
            (
                2,
                "dynamic_scoped_route_configs",
                K::OpaqueEntry(SCOPED_ROUTES, DYNAMIC_SCOPED),
            ),
        ],
        "envoy.admin.v3.EcdsConfigDump" => &[(1, "ecds_filters", K::OpaqueEntry(ECDS, ECDS_ENTRY))],
        "envoy.admin.v3.BootstrapConfigDump" => &[(1, "bootstrap", K::Bootstrap)],
        _ => return None,
    })
}

/// Records a section (`configs[i]`: the `Any` at `span`) in the skeleton; returns its entry
/// arrays, `None` for a section kept opaque.
pub(super) fn open_section(
    type_url: &str,
    span: Span,
    skeleton: &mut Skeleton,
) -> Option<EntryFields> {
    let fields = entry_fields(type_url.strip_prefix(TYPE_PREFIX).unwrap_or(""));
    if fields.is_none() {
        skeleton.opaque_sections.push(OpaqueResource {
            meta: Meta {
                span: Some(span),
                ..Meta::new(State::Active)
            },
            name: None,
            payload: Opaque {
                type_url: type_url.into(),
                bytes: span.len,
            },
            config_type_url: None,
        });
    }
    skeleton.sections.push(Section {
        type_url: type_url.into(),
        span,
    });
    fields
}

/// One element of `configs`: a `*ConfigDump` section in an `Any`.
pub(super) fn section<'b>(
    any_bytes: &'b [u8],
    any_at: u64,
    index: u64,
    sk: &mut impl Take<'b>,
) -> Result<()> {
    let any = wire::any(any_bytes, any_at)?;
    let span = Span {
        offset: any_at,
        len: any_bytes.len() as u64,
    };
    let Some(fields) = open_section(any.type_url, span, sk.skeleton()) else {
        return Ok(());
    };
    let bootstrap = matches!(fields[0].2, Kind::Bootstrap);
    let mut counts = [0u64; 4];
    for f in Fields::new(any.value, any.value_at) {
        let f = f?;
        if bootstrap && f.number == 2 {
            let (b, at) = f.bytes()?;
            sk.skeleton().bootstrap_last_updated = Some(bootstrap_last_updated(b, at)?);
            continue;
        }
        let Some(slot) = fields.iter().position(|(n, ..)| *n == f.number) else {
            continue;
        };
        let (key, kind) = (fields[slot].1, fields[slot].2);
        let (b, at) = f.bytes().map_err(|e| Error::from(e).in_key(key))?;
        sk.push(
            kind,
            b,
            at,
            entry_path(index, key, bootstrap, &mut counts[slot]),
        );
    }
    Ok(())
}

/// `BootstrapConfigDump.last_updated`, as the model keeps it.
pub(super) fn bootstrap_last_updated(b: &[u8], at: u64) -> Result<Box<str>> {
    let t: prost_types::Timestamp = decode_at(b, at, "last_updated")?;
    Ok(timestamp(&t))
}

/// The path of the next entry of `configs[index].<key>`, `count` the entries before it there (the
/// bootstrap section's one entry has no index).
pub(super) fn entry_path(
    index: u64,
    key: &'static str,
    bootstrap: bool,
    count: &mut u64,
) -> JobPath {
    let entry_index = (!bootstrap).then_some(*count);
    *count += 1;
    JobPath {
        outer: Some(("configs", index)),
        section: key,
        index: entry_index,
    }
}

const SCOPED_ROUTES: &str = "type.googleapis.com/envoy.config.route.v3.ScopedRouteConfiguration";
const ECDS: &str = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig";

/// One `DiscoveryResponse`; `outer` is its index in a stream.
fn response<'a>(
    bytes: &'a [u8],
    base: u64,
    outer: Option<u64>,
    sk: &mut Sink<'a, '_>,
) -> Result<()> {
    let mut version = None;
    let mut type_url = None;
    let mut resources = Vec::new();
    for f in Fields::new(bytes, base) {
        let f = f?;
        match f.number {
            1 => version = Some(f.string()?).filter(|v| !v.is_empty()),
            2 => resources.push(f.bytes().map_err(|e| Error::from(e).in_key("resources"))?),
            4 => type_url = Some(f.string()?),
            _ => {}
        }
    }
    sk.skeleton.sections.push(Section {
        type_url: type_url
            .unwrap_or("type.googleapis.com/envoy.service.discovery.v3.DiscoveryResponse")
            .into(),
        span: Span {
            offset: base,
            len: bytes.len() as u64,
        },
    });
    for (i, (b, at)) in resources.into_iter().enumerate() {
        sk.push_job(Job {
            kind: Kind::Resource(version),
            bytes: b,
            at,
            path: JobPath {
                outer: outer.map(|o| ("", o)),
                section: "resources",
                index: Some(i as u64),
            },
        });
    }
    Ok(())
}

/// DiscoveryResponses, each after its length as a varint.
fn stream<'a>(bytes: &'a [u8], sk: &mut Sink<'a, '_>) -> Result<()> {
    let mut pos = 0;
    let mut index = 0;
    while pos < bytes.len() {
        let at = pos as u64;
        let len = wire::varint(bytes, &mut pos, 0)?;
        let left = bytes.len() - pos;
        if len > left as u64 {
            return Err(Error::at(
                ErrorKind::Syntax,
                at,
                format!("length prefix {len} runs past the end of the input ({left} bytes left)"),
            )
            .in_index(index));
        }
        let frame = &bytes[pos..pos + len as usize];
        response(frame, pos as u64, Some(index), sk).map_err(|e| e.in_index(index))?;
        pos += len as usize;
        index += 1;
    }
    Ok(())
}

/// Decodes a resource with prost, errors pointing into the input.
fn decode<M: Message + Default>(any: &RawAny, what: &str) -> Result<M> {
    decode_at(any.value, any.value_at, what)
}

/// An entry's parts besides its resource.
struct Entry<'a> {
    name: Option<Box<str>>,
    meta: Meta,
    resource: Option<RawAny<'a>>,
}

/// Reads a dump entry's parts; under [`Detail::Shape`] its version and update time only for
/// their framing (no count or cost reads them, and every entry has both).
fn entry<'a>(job: &Job<'a>, layout: Layout, state: State, detail: Detail) -> Result<Entry<'a>> {
    let shape = detail == Detail::Shape;
    let mut e = Entry {
        name: None,
        meta: Meta {
            span: Some(Span {
                offset: job.at,
                len: job.bytes.len() as u64,
            }),
            ..Meta::new(state)
        },
        resource: None,
    };
    for f in Fields::new(job.bytes, job.at) {
        let f = f?;
        let n = f.number;
        if n == layout.name {
            e.name = some(f.string()?.to_string());
        } else if n == layout.version_info && shape {
            f.bytes()?;
        } else if n == layout.version_info {
            e.meta.version_info = some(f.string()?.to_string());
        } else if n == layout.resource {
            let (b, at) = f.bytes()?;
            e.resource = Some(wire::any(b, at)?);
        } else if n == layout.last_updated && shape {
            f.bytes()?;
        } else if n == layout.last_updated {
            e.meta.last_updated = Some(timestamp(&message::<prost_types::Timestamp>(&f)?));
        } else if n == layout.error_state {
            e.meta.error = Some(update_failure(message::<UpdateFailureState>(&f)?));
        } else if n == layout.client_status {
            e.meta.client_status = client_status(f.varint()?);
        }
    }
    Ok(e)
}

fn message<M: Message + Default>(f: &Field) -> Result<M> {
    let (b, at) = f.bytes()?;
    decode_at(b, at, "field")
}

fn client_status(v: u64) -> Option<Box<str>> {
    use super::envoy::admin::v3::ClientResourceStatus;
    let n = i32::try_from(v).unwrap_or(-1);
    (n != 0).then(|| {
        ClientResourceStatus::try_from(n)
            .map(|s| s.as_str_name().into())
            .unwrap_or_else(|_| n.to_string().into())
    })
}

fn decode_job(job: &Job, detail: Detail, out: &mut Vec<Item>) -> Result<()> {
    match job.kind {
        Kind::Cluster(state, layout) => {
            wrapped(job, layout, state, detail, "cluster", out, |any, m| {
                Ok(Item::Cluster(Box::new(super::cluster::cluster(
                    any.value,
                    any.value_at,
                    m,
                    detail,
                )?)))
            })
        }
        Kind::Listener(layout) => wrapped(
            job,
            layout,
            State::Static,
            detail,
            "listener",
            out,
            |any, m| listener_item(any, m, detail),
        ),
        Kind::DynamicListener => dynamic_listener(job, detail, out),
        Kind::RouteConfig(state, layout) => {
            wrapped(job, layout, state, detail, "route_config", out, |any, m| {
                Ok(Item::RouteConfig(Box::new(super::route::route_config(
                    any.value,
                    any.value_at,
                    m,
                    detail,
                )?)))
            })
        }
        Kind::LoadAssignment(state, layout) => wrapped(
            job,
            layout,
            state,
            detail,
            "endpoint_config",
            out,
            |any, m| {
                Ok(Item::LoadAssignment(Box::new(
                    super::endpoint::load_assignment(any.value, any.value_at, m, detail)?,
                )))
            },
        ),
        Kind::Secret(state, layout) => {
            let e = entry(job, layout, state, detail)?;
            let mut s = match &e.resource {
                Some(any) => super::secret::secret(decode(any, "Secret")?, Meta::new(state))?,
                None => Secret {
                    meta: Meta::new(state),
                    name: "".into(),
                    kind: SecretKind::Unknown,
                    certificates: Vec::new(),
                    certificate_error: None,
                },
            };
            if let Some(name) = e.name {
                s.name = name;
            }
            s.meta = e.meta;
            out.push(Item::Secret(Box::new(s)));
            Ok(())
        }
        Kind::Bootstrap => {
            let any = RawAny {
                type_url: "",
                value: job.bytes,
                value_at: job.at,
            };
            let meta = Meta {
                span: Some(Span {
                    offset: job.at,
                    len: job.bytes.len() as u64,
                }),
                ..Meta::new(State::Static)
            };
            out.push(Item::Bootstrap(Box::new(super::bootstrap::bootstrap(
                decode(&any, "Bootstrap")?,
                meta,
            ))));
            Ok(())
        }
        Kind::OpaqueEntry(type_url, layout) => {
            let e = entry(job, layout, State::Active, detail)?;
            let (mut name, mut config_type_url) = (e.name, None);
            if let Some(any) = e.resource.as_ref().filter(|_| type_url == ECDS) {
                (name, config_type_url) = extension_config(any)?;
            }
            out.push(Item::Opaque(Box::new(OpaqueResource {
                meta: e.meta,
                name,
                payload: Opaque {
                    type_url: type_url.into(),
                    bytes: job.bytes.len() as u64,
                },
                config_type_url,
            })));
            Ok(())
        }
        Kind::Resource(version) => resource(job, version.map(Into::into), detail, out),
    }
}

/// An extension config's name and its config's type URL.
type NameAndType = (Option<Box<str>>, Option<Box<str>>);

/// A `TypedExtensionConfig`'s name and its config's type, as JSON reads them.
fn extension_config(any: &RawAny) -> Result<NameAndType> {
    let (name, config) = super::common::typed_extension(decode(any, "TypedExtensionConfig")?);
    Ok((
        (!name.is_empty()).then_some(name),
        config.map(|c| c.type_url).filter(|t| !t.is_empty()),
    ))
}

fn listener_item(any: &RawAny, meta: Meta, detail: Detail) -> Result<Item> {
    Ok(Item::Listener(Box::new(super::listener::listener(
        decode(any, "Listener")?,
        meta,
        detail,
    )?)))
}

/// The common dump entry: the resource beside its version and status (JSON: `wrapped`).
fn wrapped(
    job: &Job,
    layout: Layout,
    state: State,
    detail: Detail,
    kind: &'static str,
    out: &mut Vec<Item>,
    convert: impl FnOnce(&RawAny, Meta) -> Result<Item>,
) -> Result<()> {
    let e = entry(job, layout, state, detail)?;
    match &e.resource {
        Some(any) => {
            let mut item = convert(any, Meta::new(state))?;
            set_meta(&mut item, e.meta);
            out.push(item);
        }
        None if e.meta.error.is_some() => out.push(Item::Rejected(Box::new(Rejected {
            kind,
            name: e.name.unwrap_or_default(),
            meta: e.meta,
        }))),
        None => {
            return Err(Error::new(
                ErrorKind::InvalidValue,
                format!("entry has no `{kind}`"),
            ))
        }
    }
    Ok(())
}

fn set_meta(item: &mut Item, meta: Meta) {
    *item.meta_mut() = meta;
}

/// `DynamicListener`: `{name, active_state, warming_state, draining_state, error_state, …}`.
fn dynamic_listener(job: &Job, detail: Detail, out: &mut Vec<Item>) -> Result<()> {
    const STATE: Layout = Layout {
        name: 0,
        version_info: 1,
        resource: 2,
        last_updated: 3,
        error_state: 0,
        client_status: 0,
    };
    let span = Some(Span {
        offset: job.at,
        len: job.bytes.len() as u64,
    });
    let mut name = None;
    let mut error = None;
    let mut client = None;
    let mut states = Vec::new();
    for f in Fields::new(job.bytes, job.at) {
        let f = f?;
        let state = match f.number {
            1 => {
                name = some(f.string()?.to_string());
                continue;
            }
            5 => {
                error = Some(update_failure(message::<UpdateFailureState>(&f)?));
                continue;
            }
            6 => {
                client = client_status(f.varint()?);
                continue;
            }
            2 => State::Active,
            3 => State::Warming,
            4 => State::Draining,
            _ => continue,
        };
        let (b, at) = f.bytes()?;
        let sub = Job {
            kind: Kind::DynamicListener,
            bytes: b,
            at,
            path: job.path,
        };
        let mut e = entry(&sub, STATE, state, detail)?;
        e.meta.span = span;
        if let Some(any) = &e.resource {
            let mut l =
                super::listener::listener(decode(any, "Listener")?, Meta::new(state), detail)?;
            l.meta = e.meta;
            states.push(l);
        }
    }
    crate::json::decode::push_dynamic_listener(out, name, error, client, span, states);
    Ok(())
}

/// One resource of a DiscoveryResponse, by its type URL; `Resource` wrappers are unwrapped.
fn resource(
    job: &Job,
    version: Option<Box<str>>,
    detail: Detail,
    out: &mut Vec<Item>,
) -> Result<()> {
    let mut any = wire::any(job.bytes, job.at)?;
    let mut meta = Meta {
        version_info: version,
        span: Some(Span {
            offset: job.at,
            len: job.bytes.len() as u64,
        }),
        ..Meta::new(State::Active)
    };
    let mut name = None;
    if any.type_url == "type.googleapis.com/envoy.service.discovery.v3.Resource" {
        let mut inner = None;
        for f in Fields::new(any.value, any.value_at) {
            let f = f?;
            match f.number {
                1 => {
                    if let Some(v) = some(f.string()?.to_string()) {
                        meta.version_info = Some(v);
                    }
                }
                2 => {
                    let (b, at) = f.bytes()?;
                    inner = Some(wire::any(b, at)?);
                }
                3 => name = some(f.string()?.to_string()),
                _ => {}
            }
        }
        match inner {
            Some(i) => any = i,
            None => {
                out.push(Item::Opaque(Box::new(OpaqueResource {
                    meta,
                    name,
                    payload: Opaque {
                        type_url: any.type_url.into(),
                        bytes: any.value.len() as u64,
                    },
                    config_type_url: None,
                })));
                return Ok(());
            }
        }
    }
    let short = any.type_url.rsplit(['/', '.']).next().unwrap_or("");
    let state = State::Active;
    let item = match short {
        "Cluster" => Item::Cluster(Box::new(super::cluster::cluster(
            any.value,
            any.value_at,
            meta,
            detail,
        )?)),
        "Listener" => listener_item(&any, meta, detail)?,
        "RouteConfiguration" => Item::RouteConfig(Box::new(super::route::route_config(
            any.value,
            any.value_at,
            meta,
            detail,
        )?)),
        "ClusterLoadAssignment" => Item::LoadAssignment(Box::new(
            super::endpoint::load_assignment(any.value, any.value_at, meta, detail)?,
        )),
        "Secret" => {
            let mut s = super::secret::secret(decode(&any, "Secret")?, Meta::new(state))?;
            s.meta = meta;
            Item::Secret(Box::new(s))
        }
        _ => Item::Opaque(Box::new(OpaqueResource {
            meta,
            name,
            payload: Opaque {
                type_url: any.type_url.into(),
                bytes: any.value.len() as u64,
            },
            config_type_url: None,
        })),
    };
    out.push(item);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_never_taken_for_protobuf() {
        for text in [
            &b"{\"configs\": []}"[..],
            b"\n{\n  \"configs\": [\n  {\n   \"@type\": \"type.googleapis.com/envoy.admin.v3.BootstrapConfigDump\"}]}",
            b"[{\"name\": \"a\", \"type\": \"EDS\"}]",
            b"\n[\n  {\n   \"name\": \"outbound|9080||reviews.default.svc.cluster.local\"}]",
            b"  {\"cluster_statuses\": []}",
            b"\xEF\xBB\xBF{\"configs\": []}",
            b"\"type.googleapis.com/envoy.admin.v3.ClustersConfigDump\"",
        ] {
            assert_eq!(sniff(text, true), None, "{}", String::from_utf8_lossy(text));
        }
    }
}
