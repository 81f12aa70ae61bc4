//! The outer walk of a JSON document: finds every dump entry and decodes them in parallel.
//!
//! The walk reads only the document's skeleton (`configs`, each section's `@type` and its
//! resource arrays) and never builds a tree of the document. Each entry's bytes are located with
//! the fast scanner and grouped into batches; rayon decodes batches while the walk goes on. From
//! a mapped file, batches borrow the mapping; from a stream, they own a copy of their entries, and
//! the batches in flight are bounded ([`InFlight`]), so memory stays bounded.

use super::decode::{self, EntryKind};
use super::parser::field_name;
use super::window::Window;
use crate::error::{describe, Error, ErrorKind, Result};
use crate::model::{Skipped, State};
use crate::stream::{add_all, settle, Finished, Fold, InFlight, Ordered, Waited};

/// A batch is sent for decoding once it holds this many input bytes…
const BATCH_BYTES: u64 = 2 << 20;
/// …or this many entries (tests: a few, so that the small inputs they read make many batches).
const BATCH_ENTRIES: usize = if cfg!(test) { 5 } else { 2048 };

/// Where an entry sits, for error paths: `configs[c].<section>[i]`.
#[derive(Debug, Clone, Copy)]
struct EntryPath {
    config: Option<u64>,
    section: &'static str,
    index: Option<u64>,
}

impl EntryPath {
    fn wrap(&self, mut e: Error) -> Error {
        if let Some(i) = self.index {
            e = e.in_index(i);
        }
        if !self.section.is_empty() {
            e = e.in_key(self.section);
        }
        if let Some(c) = self.config {
            e = e.in_index(c).in_key("configs");
        }
        e
    }
}

struct Entry {
    kind: EntryKind,
    /// Input offsets of the entry.
    start: u64,
    end: u64,
    path: EntryPath,
}

enum Bytes<'a> {
    /// The whole input; entries index it by input offset.
    Whole(&'a [u8]),
    /// Copies of the entries, with where each entry starts in the copy.
    Copied(Vec<u8>, Vec<u64>),
}

/// A run of consecutive entries of one pretty-printed array held in memory, found by the
/// decoder itself as it reads them (see [`split_chunks`]).
struct Chunk {
    kind: EntryKind,
    /// The first entry's first byte.
    start: usize,
    /// The next chunk's first entry, or the array's closing bracket.
    stop: usize,
    /// Whether `stop` is the closing bracket.
    last: bool,
}

struct Batch<'a> {
    bytes: Bytes<'a>,
    entries: Vec<Entry>,
    chunk: Option<Chunk>,
}

impl<'a> Batch<'a> {
    fn new(whole: Option<&'a [u8]>) -> Batch<'a> {
        Batch {
            bytes: match whole {
                Some(w) => Bytes::Whole(w),
                None => Bytes::Copied(Vec::new(), Vec::new()),
            },
            entries: Vec::new(),
            chunk: None,
        }
    }

    fn input_bytes(&self) -> u64 {
        self.entries.iter().map(|e| e.end - e.start).sum()
    }

    fn entry_bytes(&self, i: usize) -> &[u8] {
        let e = &self.entries[i];
        match &self.bytes {
            Bytes::Whole(w) => &w[e.start as usize..e.end as usize],
            Bytes::Copied(data, starts) => {
                let s = starts[i] as usize;
                &data[s..s + (e.end - e.start) as usize]
            }
        }
    }
}

/// Decodes a chunk's entries one after the other, each where the last ended; fails unless they
/// fill the chunk exactly, separated by commas (which proves the chunk was cut between entries),
/// or end the array early, at a `]` after an entry: the chunk was cut past its array's end (a
/// guess of [`split_chunks`]), and overran it.
fn run_chunk<F: Fold>(whole: &[u8], c: &Chunk, fold: &F) -> Finished<F::Acc> {
    let mut acc = fold.start();
    let mut items = Vec::new();
    let detail = fold.detail();
    let result = (|| -> Result<Option<u64>> {
        let bytes = &whole[c.start..c.stop];
        let text = super::parser::as_text(bytes)
            .map_err(|at| Error::at(ErrorKind::Utf8, (c.start + at) as u64, "invalid UTF-8"))?;
        let ws = |mut i: usize| {
            while bytes
                .get(i)
                .is_some_and(|b| matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
            {
                i += 1;
            }
            i
        };
        let mut at = 0;
        loop {
            let base = (c.start + at) as u64;
            let len = decode::entry_prefix(c.kind, &text[at..], base, detail, &mut items)?;
            add_all(fold, &mut acc, &mut items, &bytes[at..at + len]);
            let after = ws(at + len);
            match bytes.get(after) {
                None if c.last => return Ok(None),
                Some(b',') => {
                    at = ws(after + 1);
                    if at == bytes.len() && !c.last {
                        return Ok(None);
                    }
                }
                Some(b']') if !c.last => return Ok(Some((c.start + after) as u64)),
                _ => {
                    return Err(Error::at(
                        ErrorKind::Syntax,
                        (c.start + after) as u64,
                        "layout not recognised for the fast path",
                    ))
                }
            }
        }
    })();
    let (overran, error) = match result {
        Ok(overran) => (overran, None),
        Err(e) => (None, Some(e)),
    };
    Finished {
        acc,
        skipped: Vec::new(),
        error,
        end: overran.unwrap_or(c.stop as u64),
        overran,
    }
}

/// Decodes one batch and folds its resources.
fn run_batch<F: Fold>(batch: &Batch, keep_going: bool, fold: &F) -> Finished<F::Acc> {
    if let (Some(c), Bytes::Whole(whole)) = (&batch.chunk, &batch.bytes) {
        return run_chunk(whole, c, fold);
    }
    let mut acc = fold.start();
    let mut items = Vec::new();
    let mut skipped = Vec::new();
    let mut error = None;
    let detail = fold.detail();
    for (i, e) in batch.entries.iter().enumerate() {
        let bytes = batch.entry_bytes(i);
        match decode::entry(e.kind, bytes, e.start, detail, &mut items) {
            Ok(()) => add_all(fold, &mut acc, &mut items, bytes),
            Err(err) => {
                items.clear();
                let err = e.path.wrap(err.with_offset(e.start));
                if keep_going {
                    skipped.push(Skipped::at(&err, err.message().to_string()));
                } else {
                    error = Some(err);
                    break;
                }
            }
        }
    }
    Finished {
        acc,
        skipped,
        error,
        end: batch.entries.last().map_or(0, |e| e.end),
        overran: None,
    }
}

/// What the walk learnt besides the entries.
#[derive(Default)]
pub(crate) struct Skeleton {
    pub(crate) format: Option<crate::model::DocumentKind>,
    pub(crate) sections: Vec<crate::model::Section>,
    pub(crate) opaque_sections: Vec<crate::model::OpaqueResource>,
    pub(crate) bootstrap_last_updated: Option<Box<str>>,
    pub(crate) bytes: u64,
    /// Arrays whose end a decoder found (see [`split_chunks`]).
    pub(crate) overruns: usize,
}

/// A finished walk: the skeleton, the folded resources, and what `keep_going` skipped.
pub(crate) struct Walked<A> {
    pub(crate) skeleton: Skeleton,
    pub(crate) acc: A,
    pub(crate) skipped: Vec<Skipped>,
}

/// Walks the document, decodes its entries and folds them in input order. A walk error under
/// `keep_going` ends the walk but keeps what came before it. `on_merged` is told how far the
/// input has been folded.
pub(crate) fn walk<F: Fold>(
    window: &mut Window,
    keep_going: bool,
    fold: &F,
    on_merged: Option<&(dyn Fn(u64) + Sync)>,
) -> Result<Walked<F::Acc>> {
    // An input held in memory is first read the fast way (see `split_by_indent`); if anything at
    // all goes wrong, it is read again the exact way, which alone reports errors.
    if let Some(whole) = window.whole() {
        let mut fast = Window::borrowed(whole);
        if let Ok(walked) = walk_once(&mut fast, false, true, fold, on_merged) {
            return Ok(walked);
        }
    }
    walk_once(window, keep_going, false, fold, on_merged)
}

fn walk_once<F: Fold>(
    window: &mut Window,
    keep_going: bool,
    speculative: bool,
    fold: &F,
    on_merged: Option<&(dyn Fn(u64) + Sync)>,
) -> Result<Walked<F::Acc>> {
    let ordered = Ordered::new(fold, on_merged);
    let in_flight = InFlight::default();
    let whole = window.whole();
    let mut skeleton = Skeleton::default();
    let inline = rayon::current_thread_index().is_some();
    let walked = rayon::in_place_scope(|scope| {
        let ordered = &ordered;
        let in_flight = &in_flight;
        let mut sink = Sink {
            speculative,
            stop_on_failure: !keep_going,
            overruns: 0,
            batch: Batch::new(whole),
            ordered,
            submit: &mut |batch: Batch<'_>, now: bool| {
                let slot = ordered.slot();
                if inline || now {
                    ordered.run(slot, |fold| run_batch(&batch, keep_going, fold));
                    return;
                }
                let room = in_flight.enter(batch.input_bytes());
                scope.spawn(move |_| {
                    // Gives the room back however the batch ends: were a decoder ever to panic,
                    // the walk must not wait for room forever (the scope re-raises the panic).
                    let _room = room;
                    ordered.run(slot, |fold| run_batch(&batch, keep_going, fold));
                    drop(batch);
                });
            },
        };
        let walked = document(window, &mut sink, &mut skeleton);
        sink.flush();
        skeleton.overruns = sink.overruns;
        walked
    });
    skeleton.bytes = window.offset();
    let (acc, mut skipped, batch_error) = ordered.finish();
    settle(walked, batch_error, keep_going, &mut skipped)?;
    Ok(Walked {
        skeleton,
        acc,
        skipped,
    })
}

struct Sink<'a, 'f, F: Fold> {
    /// Split pretty-printed arrays by their indentation rather than scanning them.
    speculative: bool,
    /// Stop walking once a batch has failed (its error will be reported).
    stop_on_failure: bool,
    /// Arrays whose end a decoder found, in a chunk cut past it (see [`split_chunks`]).
    overruns: usize,
    batch: Batch<'a>,
    ordered: &'f Ordered<'f, F>,
    /// Hands a batch over for decoding; `true` decodes it before returning.
    submit: &'f mut dyn FnMut(Batch<'a>, bool),
}

impl<'a, F: Fold> Sink<'a, '_, F> {
    /// Adds the entry whose bytes the window has just scanned (and still holds).
    fn push(
        &mut self,
        window: &mut Window,
        kind: EntryKind,
        start: u64,
        end: u64,
        path: EntryPath,
    ) -> Result<()> {
        if kind == EntryKind::Bootstrap {
            // Decoded at once, so folds know the bootstrap before any later batch starts.
            let bytes = match self.whole() {
                Some(whole) => Bytes::Whole(whole),
                None => Bytes::Copied(window.slice(start, end).to_vec(), vec![0]),
            };
            return self.push_alone(bytes, kind, start, end, path, true);
        }
        if self.whole().is_none() && end - start >= BIG_ENTRY {
            // One large entry (a route configuration of tens of MB) goes alone, in the buffer the
            // window read it into, rather than as a copy beside it.
            if let Some((held, at)) = window.take(start, end) {
                let bytes = Bytes::Copied(held, vec![at as u64]);
                return self.push_alone(bytes, kind, start, end, path, false);
            }
        }
        if let Bytes::Copied(data, starts) = &mut self.batch.bytes {
            starts.push(data.len() as u64);
            data.extend_from_slice(window.slice(start, end));
        }
        self.push_span(kind, start, end, path)
    }

    /// Hands over one entry as a batch of its own, after the batch being filled; `now` decodes
    /// it before returning.
    fn push_alone(
        &mut self,
        bytes: Bytes<'a>,
        kind: EntryKind,
        start: u64,
        end: u64,
        path: EntryPath,
        now: bool,
    ) -> Result<()> {
        self.flush();
        let alone = Batch {
            bytes,
            entries: vec![Entry {
                kind,
                start,
                end,
                path,
            }],
            chunk: None,
        };
        (self.submit)(alone, now);
        self.check(end)
    }

    /// Adds an entry of an input held whole in memory.
    fn push_span(&mut self, kind: EntryKind, start: u64, end: u64, path: EntryPath) -> Result<()> {
        self.batch.entries.push(Entry {
            kind,
            start,
            end,
            path,
        });
        if self.batch.entries.len() >= BATCH_ENTRIES || self.batch.input_bytes() >= BATCH_BYTES {
            self.flush();
            return self.check(end);
        }
        Ok(())
    }

    /// Ends the walk early once a batch has failed: its error is the one to report.
    fn check(&self, at: u64) -> Result<()> {
        if self.stop_on_failure && self.ordered.any_failed() {
            return Err(Error::at(
                ErrorKind::Syntax,
                at,
                "reading stopped after an error earlier in the input",
            ));
        }
        Ok(())
    }

    /// The whole input, when batches borrow it.
    fn whole(&self) -> Option<&'a [u8]> {
        match &self.batch.bytes {
            Bytes::Whole(w) => Some(*w),
            Bytes::Copied(..) => None,
        }
    }

    /// Hands over a chunk of an array held in memory.
    fn push_chunk(&mut self, chunk: Chunk) -> Result<()> {
        self.flush();
        let stop = chunk.stop as u64;
        let mut batch = Batch::new(self.whole());
        batch.chunk = Some(chunk);
        (self.submit)(batch, false);
        self.check(stop)
    }

    fn flush(&mut self) {
        if self.batch.entries.is_empty() {
            return;
        }
        let fresh = Batch::new(self.whole());
        let full = std::mem::replace(&mut self.batch, fresh);
        (self.submit)(full, false);
    }
}

fn document<F: Fold>(w: &mut Window, sink: &mut Sink<'_, '_, F>, sk: &mut Skeleton) -> Result<()> {
    // A UTF-8 byte order mark is allowed before the document.
    if w.peek()? == Some(0xEF) && w.data()[w.pos()..].starts_with(b"\xEF\xBB\xBF") {
        for _ in 0..3 {
            w.bump();
        }
    }
    let Some(first) = w.peek()? else {
        return Err(Error::at(ErrorKind::Empty, 0, "the input is empty"));
    };
    match first {
        b'{' => top_object(w, sink, sk)?,
        b'[' => {
            sk.format = Some(crate::model::DocumentKind::ResourceList);
            entry_array(w, sink, None, "", EntryKind::Bare)?;
        }
        _ => return Err(not_json(w)?),
    }
    if let Some(b) = w.peek()? {
        return Err(Error::at(
            ErrorKind::Syntax,
            w.offset(),
            format!("unexpected {} after the end of the document", describe(b)),
        ));
    }
    Ok(())
}

/// The error for input that does not start like JSON, with a guess at what it is.
fn not_json(w: &mut Window) -> Result<Error> {
    let at = w.offset();
    let held = w.lookahead(4096)?;
    let head = &held[..held.len().min(4096)];
    let text = String::from_utf8_lossy(head);
    let first_line = text.lines().next().unwrap_or("");
    let what = if text.starts_with("apiVersion:")
        || text.contains("\napiVersion:")
        || text.starts_with("kind:")
    {
        "it looks like a Kubernetes YAML manifest".to_string()
    } else if first_line.contains(": ")
        && first_line
            .rsplit(": ")
            .next()
            .is_some_and(|v| v.trim().parse::<f64>().is_ok() || v.starts_with("P0("))
    {
        "it looks like Envoy's /stats text output".to_string()
    } else if first_line.starts_with("# HELP") || first_line.starts_with("# TYPE") {
        "it looks like Prometheus metrics".to_string()
    } else {
        let b = head.first().copied().unwrap_or(0);
        format!("expected a JSON object or array, found {}", describe(b))
    };
    Ok(Error::at(
        ErrorKind::WrongDocument,
        at,
        format!("not an Envoy config dump: {what}"),
    ))
}

/// Maps a section key (proto field name) to the entries it holds.
fn section_key(key: &str) -> Option<(&'static str, EntryKind, &'static str)> {
    use EntryKind as K;
    const CLUSTERS: &str = "type.googleapis.com/envoy.admin.v3.ClustersConfigDump";
    const LISTENERS: &str = "type.googleapis.com/envoy.admin.v3.ListenersConfigDump";
    const ROUTES: &str = "type.googleapis.com/envoy.admin.v3.RoutesConfigDump";
    const ENDPOINTS: &str = "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump";
    const SECRETS: &str = "type.googleapis.com/envoy.admin.v3.SecretsConfigDump";
    const SCOPED: &str = "type.googleapis.com/envoy.admin.v3.ScopedRoutesConfigDump";
    const ECDS: &str = "type.googleapis.com/envoy.admin.v3.EcdsConfigDump";
    Some(match key {
        "static_clusters" => ("static_clusters", K::Cluster(State::Static), CLUSTERS),
        "dynamic_active_clusters" => (
            "dynamic_active_clusters",
            K::Cluster(State::Active),
            CLUSTERS,
        ),
        "dynamic_warming_clusters" => (
            "dynamic_warming_clusters",
            K::Cluster(State::Warming),
            CLUSTERS,
        ),
        "static_listeners" => ("static_listeners", K::StaticListener, LISTENERS),
        "dynamic_listeners" => ("dynamic_listeners", K::DynamicListener, LISTENERS),
        "static_route_configs" => (
            "static_route_configs",
            K::RouteConfig(State::Static),
            ROUTES,
        ),
        "dynamic_route_configs" => (
            "dynamic_route_configs",
            K::RouteConfig(State::Active),
            ROUTES,
        ),
        "static_endpoint_configs" => (
            "static_endpoint_configs",
            K::EndpointConfig(State::Static),
            ENDPOINTS,
        ),
        "dynamic_endpoint_configs" => (
            "dynamic_endpoint_configs",
            K::EndpointConfig(State::Active),
            ENDPOINTS,
        ),
        "static_secrets" => ("static_secrets", K::Secret(State::Static), SECRETS),
        "dynamic_active_secrets" => ("dynamic_active_secrets", K::Secret(State::Active), SECRETS),
        "dynamic_warming_secrets" => (
            "dynamic_warming_secrets",
            K::Secret(State::Warming),
            SECRETS,
        ),
        "inline_scoped_route_configs" => (
            "inline_scoped_route_configs",
            K::OpaqueEntry("type.googleapis.com/envoy.config.route.v3.ScopedRouteConfiguration"),
            SCOPED,
        ),
        "dynamic_scoped_route_configs" => (
            "dynamic_scoped_route_configs",
            K::OpaqueEntry("type.googleapis.com/envoy.config.route.v3.ScopedRouteConfiguration"),
            SCOPED,
        ),
        "ecds_filters" => (
            "ecds_filters",
            K::OpaqueEntry("type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"),
            ECDS,
        ),
        _ => return None,
    })
}

const BOOTSTRAP_DUMP: &str = "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump";

/// The types of `configs` elements Heft reads (others are kept opaque whole).
fn known_section(type_url: &str) -> bool {
    type_url == BOOTSTRAP_DUMP
        || [
            "ClustersConfigDump",
            "ListenersConfigDump",
            "RoutesConfigDump",
            "EndpointsConfigDump",
            "SecretsConfigDump",
            "ScopedRoutesConfigDump",
            "EcdsConfigDump",
        ]
        .iter()
        .any(|t| type_url.strip_prefix("type.googleapis.com/envoy.admin.v3.") == Some(t))
}

fn key(w: &mut Window) -> Result<String> {
    let k = w.string()?;
    w.expect(b':', "':' after an object key")?;
    Ok(k)
}

/// Iterates an object's members in the window: `f` must consume each value. A member whose value
/// is `null` is skipped: in proto3 JSON it is the same as an absent field.
fn members(w: &mut Window, mut f: impl FnMut(&mut Window, &str) -> Result<()>) -> Result<()> {
    w.expect(b'{', "an object")?;
    if w.next_byte("inside an object")? == b'}' {
        w.bump();
        return Ok(());
    }
    loop {
        let raw = key(w)?;
        let mut scratch = [0u8; 64];
        let name = field_name(&raw, &mut scratch);
        if w.next_byte("where a value was expected")? == b'n' {
            w.value(false).map_err(|e| e.in_key(&raw))?;
        } else {
            f(w, name).map_err(|e| e.in_key(&raw))?;
        }
        match w.next_byte("inside an object")? {
            b',' => w.bump(),
            b'}' => {
                w.bump();
                return Ok(());
            }
            b => {
                return Err(Error::at(
                    ErrorKind::Syntax,
                    w.offset(),
                    format!("expected ',' or '}}' in an object, found {}", describe(b)),
                )
                .in_key(&raw))
            }
        }
    }
}

/// Iterates an array's elements in the window: `f` must consume each element.
fn elements(w: &mut Window, mut f: impl FnMut(&mut Window, u64) -> Result<()>) -> Result<()> {
    if w.next_byte("where an array was expected")? == b'n' {
        w.value(false)?;
        return Ok(());
    }
    w.expect(b'[', "an array")?;
    if w.next_byte("inside an array")? == b']' {
        w.bump();
        return Ok(());
    }
    let mut i = 0;
    loop {
        f(w, i).map_err(|e| e.in_index(i))?;
        i += 1;
        match w.next_byte("inside an array")? {
            b',' => w.bump(),
            b']' => {
                w.bump();
                return Ok(());
            }
            b => {
                return Err(Error::at(
                    ErrorKind::Syntax,
                    w.offset(),
                    format!("expected ',' or ']' in an array, found {}", describe(b)),
                ))
            }
        }
    }
}

fn entry_array<F: Fold>(
    w: &mut Window,
    sink: &mut Sink<'_, '_, F>,
    config: Option<u64>,
    section: &'static str,
    kind: EntryKind,
) -> Result<()> {
    if sink.speculative {
        if let Some(whole) = w.whole() {
            let path = EntryPath {
                config,
                section,
                index: None,
            };
            return split_by_indent(w, whole, sink, path, kind);
        }
    }
    elements(w, |w, i| {
        let (start, end) = w.value(true)?;
        let path = EntryPath {
            config,
            section,
            index: Some(i),
        };
        sink.push(w, kind, start, end, path)?;
        w.release();
        Ok(())
    })
}

/// The fast way through a pretty-printed array of entries, as Envoy and istioctl print them.
///
/// Elements are found by their closing line, `\n` + the elements' indentation + `}`, with a SIMD
/// substring search instead of a scan of every byte. This is sound, not a guess: JSON strings
/// cannot hold a raw newline, so each match is a structural `}`; each piece goes to a decoder that
/// must consume it exactly as one balanced value; and a piece cut at a wrong `}` (possible only
/// with inconsistent indentation) holds an unmatched bracket and fails to decode, which makes
/// [`walk`] read the whole input again the exact way.
fn split_by_indent<F: Fold>(
    w: &mut Window,
    whole: &[u8],
    sink: &mut Sink<'_, '_, F>,
    path: EntryPath,
    kind: EntryKind,
) -> Result<()> {
    let give_up = |at: usize| {
        Error::at(
            ErrorKind::Syntax,
            at as u64,
            "layout not recognised for the fast path",
        )
    };
    let skip_ws = |mut i: usize| {
        while whole
            .get(i)
            .is_some_and(|b| matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
        {
            i += 1;
        }
        i
    };
    if w.next_byte("where an array was expected")? != b'[' {
        return Err(give_up(w.pos()));
    }
    let open = w.pos();
    let after = skip_ws(open + 1);
    if whole.get(after) == Some(&b']') {
        w.seek(after as u64 + 1);
        return Ok(());
    }
    let spaces = whole[open + 2..]
        .iter()
        .take(64)
        .take_while(|&&b| b == b' ')
        .count();
    let first = open + 2 + spaces;
    if whole.get(open + 1) != Some(&b'\n') || whole.get(first) != Some(&b'{') || spaces == 64 {
        return Err(give_up(open));
    }
    if let Some(end) = split_chunks(whole, sink, kind, first, spaces)? {
        w.seek(end as u64 + 1);
        return Ok(());
    }
    let mut needle = [b' '; 66];
    needle[0] = b'\n';
    needle[spaces + 1] = b'}';
    let finder = memchr::memmem::Finder::new(&needle[..spaces + 2]);
    let mut cur = first;
    let mut index = 0;
    loop {
        let Some(found) = finder.find(&whole[cur..]) else {
            return Err(give_up(cur));
        };
        let end = cur + found + spaces + 2;
        let at = EntryPath {
            index: Some(index),
            ..path
        };
        sink.push_span(kind, cur as u64, end as u64, at)?;
        index += 1;
        let next = skip_ws(end);
        match whole.get(next) {
            Some(b',') => {
                cur = skip_ws(next + 1);
                if whole.get(cur) != Some(&b'{') {
                    return Err(give_up(cur));
                }
            }
            Some(b']') => {
                w.seek(next as u64 + 1);
                return Ok(());
            }
            _ => return Err(give_up(next)),
        }
    }
}

/// An entry of a stream at least this big is decoded in the window's own buffer, not copied (the
/// tests read the small real captures this way often).
const BIG_ENTRY: u64 = if cfg!(test) { 1000 } else { 4 << 20 };

/// Chunks hold about this many bytes of entries (tests cut the small real captures often).
const CHUNK_BYTES: usize = if cfg!(test) { 700 } else { 2 << 20 };

/// How far past a nominal cut [`split_chunks`] looks for a line that opens an entry before it
/// looks for the array's end instead (tests: less than many entries of the real captures).
const LOOKAHEAD: usize = if cfg!(test) { 1500 } else { 256 << 10 };

/// The fastest way through a pretty-printed array of entries: the array is cut into chunks of
/// about [`CHUNK_BYTES`] at lines that open an entry (`\n` + the entries' indentation + `{`),
/// found a few bytes past each nominal cut. Each chunk's decoder finds the entries' ends by
/// reading them, and proves the cuts right by filling its chunk exactly (see [`run_chunk`]).
///
/// Where the array ends is left to the decoders: the walk does not read the array's bytes
/// (a search of every chunk for the closing line took 8% of the CPU of a gigabyte dump's read,
/// on the walk's thread, besides the decoders' reading the same bytes again). A chunk cut
/// past the array's end, at a line that opens an entry of a later array just as deep, holds
/// the array's `]` after an entry: its decoder says so ([`Finished::overran`]), the chunks cut
/// after it are dropped, and the walk resumes after that `]`. A cut with no such line near it
/// is made the exact way instead: the array's closing line (`\n` + one space less + `]`) is
/// looked for in the chunk, and the walk waits for the chunks before it before it goes on.
///
/// Returns where the closing bracket is, or `None` when the layout does not allow this (then
/// entries are found one by one).
fn split_chunks<F: Fold>(
    whole: &[u8],
    sink: &mut Sink<'_, '_, F>,
    kind: EntryKind,
    first: usize,
    spaces: usize,
) -> Result<Option<usize>> {
    if spaces == 0 || kind == EntryKind::Bootstrap {
        return Ok(None);
    }
    let give_up = |at: usize| {
        Error::at(
            ErrorKind::Syntax,
            at as u64,
            "layout not recognised for the fast path",
        )
    };
    let mut close = [b' '; 66];
    close[0] = b'\n';
    close[spaces] = b']';
    let close = memchr::memmem::Finder::new(&close[..spaces + 1]);
    let mut open = [b' '; 66];
    open[0] = b'\n';
    open[spaces + 1] = b'{';
    let open = memchr::memmem::Finder::new(&open[..spaces + 2]);
    // How the array ends once its last chunk is handed over (or none can be): at the end a
    // decoder found before `stop`, or else at `stop`.
    let array_end = |sink: &mut Sink<'_, '_, F>, stop: Option<usize>, at: usize| {
        let Some(last) = sink.ordered.slots().checked_sub(1) else {
            return stop.ok_or_else(|| give_up(at));
        };
        match sink.ordered.wait(last) {
            Waited::Overrun(end) => {
                sink.overruns += 1;
                Ok(end as usize)
            }
            Waited::Merged => stop.ok_or_else(|| give_up(at)),
            Waited::Failed => Err(give_up(at)),
        }
    };
    let mut start = first;
    let mut chunks = 0;
    loop {
        if sink.ordered.overran().is_some() {
            // A decoder found the array's end; `array_end` waits for the first one in input
            // order.
            return array_end(sink, None, start).map(Some);
        }
        let cut = start + CHUNK_BYTES;
        if cut < whole.len() {
            let ahead = &whole[cut..(cut + LOOKAHEAD).min(whole.len())];
            if let Some(i) = open.find(ahead) {
                let stop = cut + i + spaces + 1;
                sink.push_chunk(Chunk {
                    kind,
                    start,
                    stop,
                    last: false,
                })?;
                chunks += 1;
                start = stop;
                continue;
            }
        }
        // The exact way: the closing line may straddle the cut.
        let cut = cut.min(whole.len());
        let near = (cut + spaces + 1).min(whole.len());
        let ends = close.find(&whole[start..near]).map(|i| start + i + spaces);
        let next = match ends {
            Some(_) => None,
            None => open.find(&whole[cut..]).map(|i| cut + i),
        };
        let ends = ends.or_else(|| {
            let until = next.map_or(whole.len(), |n| n + spaces + 2);
            close
                .find(&whole[near.min(until)..until])
                .map(|i| near.min(until) + i + spaces)
        });
        let (stop, last) = match (ends, next) {
            (Some(bracket), _) => (bracket, true),
            (None, Some(n)) => (n + spaces + 1, false),
            (None, None) if chunks == 0 => return Ok(None),
            // Only an array already ended (by a chunk cut past it) has neither.
            (None, None) => return array_end(sink, None, start).map(Some),
        };
        sink.push_chunk(Chunk {
            kind,
            start,
            stop,
            last,
        })?;
        chunks += 1;
        if last {
            return array_end(sink, Some(stop), stop).map(Some);
        }
        start = stop;
    }
}

fn top_object<F: Fold>(
    w: &mut Window,
    sink: &mut Sink<'_, '_, F>,
    sk: &mut Skeleton,
) -> Result<()> {
    let start = w.offset();
    let mut seen: Vec<String> = Vec::new();
    let mut found = false;
    let mut any_key = false;
    let mut section = SectionState::default();
    members(w, |w, k| {
        any_key = true;
        match k {
            "configs" => {
                found = true;
                sk.format = Some(crate::model::DocumentKind::ConfigDump);
                elements(w, |w, i| config_element(w, sink, sk, i))?;
            }
            "cluster_statuses" => {
                found = true;
                sk.format = Some(crate::model::DocumentKind::ClusterStatuses);
                elements(w, |w, i| {
                    let (s, e) = w.value(true)?;
                    let path = EntryPath {
                        config: None,
                        section: "cluster_statuses",
                        index: Some(i),
                    };
                    sink.push(w, EntryKind::ClusterStatus, s, e, path)?;
                    w.release();
                    Ok(())
                })?;
            }
            _ => {
                if section.member(w, sink, sk, k, None)? {
                    found = true;
                } else {
                    if seen.len() < 8 {
                        seen.push(k.to_string());
                    }
                    w.value(false)?;
                }
            }
        }
        Ok(())
    })?;
    if section.type_url.is_some() || section.saw_section_key {
        sk.format.get_or_insert(crate::model::DocumentKind::Section);
        section.finish(sk, start, w.offset());
    }
    if !any_key {
        // `{}`: proto3 JSON of an empty message, which istioctl prints for an empty section.
        sk.format = Some(crate::model::DocumentKind::Section);
        return Ok(());
    }
    if !found {
        return Err(Error::at(
            ErrorKind::WrongDocument,
            start,
            format!("not an Envoy config dump: {}", wrong_object_hint(&seen)),
        ));
    }
    Ok(())
}

fn wrong_object_hint(keys: &[String]) -> String {
    let has = |k: &str| keys.iter().any(|x| x == k);
    if has("stats") {
        "this is Envoy's /stats?format=json output".into()
    } else if has("command_line_options") || has("hot_restart_version") {
        "this is Envoy's /server_info output".into()
    } else if has("allocated") && has("heap_size") {
        "this is Envoy's /memory output".into()
    } else if has("api_version") || has("kind") {
        "it looks like a Kubernetes manifest (it has apiVersion or kind)".into()
    } else {
        format!(
            "no configs or dump sections found (top-level keys: {})",
            keys.join(", ")
        )
    }
}

/// What one section object has shown so far.
#[derive(Default)]
struct SectionState {
    type_url: Option<String>,
    saw_section_key: bool,
    inferred: Option<&'static str>,
}

impl SectionState {
    /// Handles one member of a section object; false if the key is not a section member.
    fn member<F: Fold>(
        &mut self,
        w: &mut Window,
        sink: &mut Sink<'_, '_, F>,
        sk: &mut Skeleton,
        k: &str,
        config: Option<u64>,
    ) -> Result<bool> {
        match k {
            "@type" => {
                self.type_url = Some(w.string()?);
                return Ok(true);
            }
            "bootstrap" => {
                self.saw_section_key = true;
                self.inferred = Some(BOOTSTRAP_DUMP);
                let (s, e) = w.value(true)?;
                let path = EntryPath {
                    config,
                    section: "bootstrap",
                    index: None,
                };
                sink.push(w, EntryKind::Bootstrap, s, e, path)?;
                w.release();
                return Ok(true);
            }
            "last_updated"
                if self.inferred == Some(BOOTSTRAP_DUMP)
                    || self.type_url.as_deref() == Some(BOOTSTRAP_DUMP) =>
            {
                sk.bootstrap_last_updated = Some(w.string()?.into());
                return Ok(true);
            }
            _ => {}
        }
        let Some((name, kind, type_url)) = section_key(k) else {
            return Ok(false);
        };
        self.saw_section_key = true;
        self.inferred.get_or_insert(type_url);
        entry_array(w, sink, config, name, kind)?;
        Ok(true)
    }

    fn finish(self, sk: &mut Skeleton, start: u64, end: u64) {
        let type_url: Box<str> = self
            .type_url
            .as_deref()
            .or(self.inferred)
            .unwrap_or("")
            .into();
        let span = crate::model::Span {
            offset: start,
            len: end - start,
        };
        if !known_section(&type_url) {
            sk.opaque_sections.push(crate::model::OpaqueResource {
                meta: crate::model::Meta {
                    span: Some(span),
                    ..crate::model::Meta::new(State::Active)
                },
                name: None,
                payload: crate::model::Opaque {
                    type_url: type_url.clone(),
                    bytes: span.len,
                },
                config_type_url: None,
            });
        }
        sk.sections.push(crate::model::Section { type_url, span });
    }
}

fn config_element<F: Fold>(
    w: &mut Window,
    sink: &mut Sink<'_, '_, F>,
    sk: &mut Skeleton,
    index: u64,
) -> Result<()> {
    if w.next_byte("inside configs")? != b'{' {
        return Err(Error::at(
            ErrorKind::Syntax,
            w.offset(),
            "expected an object in configs".to_string(),
        ));
    }
    let start = w.offset();
    let mut section = SectionState::default();
    members(w, |w, k| {
        if !section.member(w, sink, sk, k, Some(index))? {
            w.value(false)?;
        }
        Ok(())
    })?;
    section.finish(sk, start, w.offset());
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::json::window::tests::Dribble;
    use crate::model::Dump;

    /// A file of `testdata/real/` (`sidecar/config_dump.json`), read from its `.gz` where
    /// only that is committed.
    pub(crate) fn real_capture(name: &str) -> Vec<u8> {
        let path = format!("{}/../../testdata/real/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|_| {
            let gz = std::fs::read(format!("{path}.gz")).unwrap();
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut out)
                .unwrap();
            out
        })
    }

    /// The fast path (arrays cut in chunks) against the exact walk of a stream, read in one go
    /// and a few bytes at a time (entries of 1000 bytes and more go in the window's buffer).
    fn both(text: &[u8]) -> (Dump, Dump) {
        let fast = Dump::from_slice(text).unwrap();
        let exact = Dump::from_reader(text).unwrap();
        for step in [333, 4096] {
            let mut dribbled = Dump::from_reader(Dribble(text, step)).unwrap();
            dribbled.source = exact.source.clone();
            assert_eq!(dribbled, exact, "read {step} bytes at a time");
        }
        (fast, exact)
    }

    /// How many resources the fast path alone reads (it must not fail on Envoy's layout), and
    /// how many arrays' ends its decoders found.
    fn fast_only(text: &[u8]) -> (usize, usize) {
        let mut w = super::Window::borrowed(text);
        let walked = super::walk_once(&mut w, false, true, &crate::read::Collect, None)
            .expect("the fast path reads Envoy's layout");
        let d = walked.acc;
        let n = d.clusters.len()
            + d.listeners.len()
            + d.cluster_statuses.len()
            + d.endpoint_configs.len();
        (n, walked.skeleton.overruns)
    }

    #[test]
    fn arrays_cut_in_many_chunks_read_as_the_exact_walk_does() {
        // Config dumps: arrays end inside chunks cut at a later array's entries, and the
        // decoders find those ends. `/clusters`: one array, which ends the document, found the
        // exact way.
        for (name, decoders_find_ends) in [
            ("sidecar/config_dump.json", true),
            ("gateway/config_dump.json", true),
            ("gateway/clusters.json", false),
        ] {
            let text = real_capture(name);
            let (fast, exact) = both(&text);
            assert!(fast.clusters.len() + fast.cluster_statuses.len() > 5);
            assert_eq!(fast, exact);
            let (n, overruns) = fast_only(&text);
            assert_eq!(
                n,
                fast.clusters.len()
                    + fast.listeners.len()
                    + fast.cluster_statuses.len()
                    + fast.endpoint_configs.len()
            );
            assert_eq!(overruns > 0, decoders_find_ends, "{name}: {overruns}");
        }
    }

    #[test]
    fn lines_that_look_like_cuts_inside_entries_do_not_mislead_the_chunks() {
        // Inside the first entry: a line opening an object at the entries' indentation, and a
        // line closing an array one space less deep, as a cut and an array end would look.
        let fake_open = format!("{{\"name\": \"a\", \"type\": \"EDS\", \"metadata\": {{\"filter_metadata\": {{\"x\":\n  {{\"k\": [\"{}\"\n ]}}}}}}}}", "v".repeat(800));
        let text = format!("[\n  {fake_open},\n  {{\"name\": \"b\", \"type\": \"EDS\"}}\n]");
        let (fast, exact) = both(text.as_bytes());
        let names: Vec<&str> = fast.clusters.iter().map(|c| &*c.name).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(fast, exact);
    }
}
