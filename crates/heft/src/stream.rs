//! Reading a dump as a stream: each decoded resource is handed to a caller's [`Fold`], so an
//! analysis can run over a dump of any size without ever holding its whole model.
//!
//! The readers decode resources in batches on rayon's threads. Each batch folds its resources
//! into its own accumulator ([`Fold::start`], [`Fold::add`]), in input order within the batch,
//! and accumulators are merged in input order ([`Fold::merge`]) as soon as every earlier batch
//! has been merged: the fold itself runs in parallel and its result is the same as a fold of the
//! whole input in order. [`Dump`](crate::Dump) is one such fold (it keeps everything); `heft summary` folds
//! counts and costs and keeps almost nothing.
//!
//! ```
//! use heft::stream::{self, Fold, Resource};
//!
//! /// Counts clusters and the input bytes of their dump entries.
//! struct ClusterBytes;
//!
//! impl Fold for ClusterBytes {
//!     type Acc = (u64, u64);
//!     fn start(&self) -> (u64, u64) {
//!         (0, 0)
//!     }
//!     fn add(&self, acc: &mut (u64, u64), resource: &Resource, raw: &[u8]) {
//!         if let Resource::Cluster(_) = resource {
//!             acc.0 += 1;
//!             acc.1 += raw.len() as u64;
//!         }
//!     }
//!     fn merge(&self, acc: &mut (u64, u64), later: (u64, u64)) {
//!         acc.0 += later.0;
//!         acc.1 += later.1;
//!     }
//! }
//!
//! let text = br#"[{"name": "a", "type": "EDS"}, {"name": "b", "type": "STATIC"}]"#;
//! let (outline, (clusters, bytes)) =
//!     stream::fold_slice(text, &heft::ReadOptions::default(), &ClusterBytes)?;
//! assert_eq!(clusters, 2);
//! assert_eq!(bytes, 59);
//! assert_eq!(outline.source.bytes, text.len() as u64);
//! # Ok::<(), heft::Error>(())
//! ```
//!
//! The raw bytes handed to [`Fold::add`] are the resource's dump entry as it stood in the
//! (decompressed) input, the span of its [`Meta::span`]. From a mapped file they are a borrow of
//! the mapping; from a pipe or a compressed input they are the copy of the entry its batch holds
//! while it is decoded. Either way they live only for the call: a fold that needs them later keeps
//! its own copy (or the span, to read them again from a file).

use crate::error::{Error, ErrorKind, Result};
use crate::model::{
    Bootstrap, Cluster, ClusterStatus, Listener, LoadAssignment, Meta, OpaqueResource, Rejected,
    RouteConfig, Secret, Section, Skipped, Source, State,
};
use crate::read::ReadOptions;
use std::collections::BTreeMap;
use std::io::Read;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// One decoded resource of a dump, in input order.
#[derive(Debug, Clone, PartialEq)]
pub enum Resource {
    /// The bootstrap.
    Bootstrap(Box<Bootstrap>),
    /// A cluster.
    Cluster(Box<Cluster>),
    /// A listener (a dynamic listener entry can give one per state).
    Listener(Box<Listener>),
    /// A route configuration.
    RouteConfig(Box<RouteConfig>),
    /// An endpoint configuration.
    LoadAssignment(Box<LoadAssignment>),
    /// A secret.
    Secret(Box<Secret>),
    /// A cluster's live status (`/clusters?format=json`).
    ClusterStatus(Box<ClusterStatus>),
    /// A rejected update that left no resource behind.
    Rejected(Box<Rejected>),
    /// A resource Heft keeps only as type and size.
    Opaque(Box<OpaqueResource>),
}

impl Resource {
    /// Its state, version and input span.
    pub fn meta(&self) -> &Meta {
        match self {
            Resource::Bootstrap(b) => &b.meta,
            Resource::Cluster(c) => &c.meta,
            Resource::Listener(l) => &l.meta,
            Resource::RouteConfig(r) => &r.meta,
            Resource::LoadAssignment(l) => &l.meta,
            Resource::Secret(s) => &s.meta,
            Resource::ClusterStatus(c) => &c.meta,
            Resource::Rejected(r) => &r.meta,
            Resource::Opaque(o) => &o.meta,
        }
    }

    pub(crate) fn meta_mut(&mut self) -> &mut Meta {
        match self {
            Resource::Bootstrap(b) => &mut b.meta,
            Resource::Cluster(c) => &mut c.meta,
            Resource::Listener(l) => &mut l.meta,
            Resource::RouteConfig(r) => &mut r.meta,
            Resource::LoadAssignment(l) => &mut l.meta,
            Resource::Secret(s) => &mut s.meta,
            Resource::ClusterStatus(c) => &mut c.meta,
            Resource::Rejected(r) => &mut r.meta,
            Resource::Opaque(o) => &mut o.meta,
        }
    }
}

/// What to do with each resource of a dump as it is decoded: a fold run in parallel, per batch,
/// whose batch results are merged in input order (see the [module](self) documentation).
pub trait Fold: Sync {
    /// What one batch (and, once merged, the input so far) folds into.
    type Acc: Send;

    /// An empty accumulator, for a batch about to be decoded.
    fn start(&self) -> Self::Acc;

    /// Adds one resource; `raw` is its dump entry's bytes in the input, alive for this call.
    fn add(&self, acc: &mut Self::Acc, resource: &Resource, raw: &[u8]);

    /// Adds one resource the fold may keep; the readers call this one. By default it calls
    /// [`Fold::add`] and drops the resource.
    fn add_owned(&self, acc: &mut Self::Acc, resource: Resource, raw: &[u8]) {
        self.add(acc, &resource, raw);
    }

    /// Appends the accumulator of the batch that follows `acc` in the input.
    fn merge(&self, acc: &mut Self::Acc, later: Self::Acc);

    /// Called with each bootstrap as soon as it is decoded, before it is added. In a config dump
    /// (where the bootstrap comes first) the readers decode it before any later batch starts, so
    /// [`Fold::start`] can depend on what it says.
    fn bootstrap(&self, _bootstrap: &Bootstrap) {}

    /// How much of each resource the fold reads: the readers may leave out the rest. By default
    /// [`Detail::Full`].
    fn detail(&self) -> Detail {
        Detail::Full
    }
}

/// How much of each resource the readers decode for a [`Fold`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Detail {
    /// What the counts of a [`Summary`](crate::Summary) and the cost model read. Every resource,
    /// field and list is there, except that every reader (JSON, YAML, protobuf) leaves out:
    /// - inside each TLS context (of a transport socket, a socket match or a filter chain), all
    ///   but its side and the names of the SDS secrets it waits for: no SNI, ALPN, inline
    ///   certificates or SAN matchers, and `require_client_certificate` false;
    /// - a cluster's own metadata, what Istio encodes in its name (`istio`, derived from the
    ///   name, which stays), and its socket matches' names and criteria;
    /// - each endpoint's addresses, hostname and health check port, and each locality's region,
    ///   zone and sub-zone (endpoints, their health, weight and metadata stay);
    /// - every dump entry's `version_info` and `last_updated`;
    /// - in route configurations that are not static (static ones, and those inline in a
    ///   listener, keep everything: the cost model tells their copies apart by content):
    ///   virtual hosts' names, retry policies and per-filter configs, and the text of their
    ///   domains (each domain stays, empty); routes' names, decorators' text (a decorator stays,
    ///   empty), metadata and per-filter
    ///   configs; the text of path rules (their kind stays), header and query parameter rules
    ///   (each stays, with nothing set); route actions' cluster names (the kind of target and
    ///   each weighted cluster stay, empty), timeouts, rewrites, and the contents of retry
    ///   policies (their presence stays). Redirects and direct responses are read whole.
    ///
    /// What is left out is still read as JSON (broken syntax is an error) but not checked as the
    /// field it is: an endpoint port of 2^64 fails a full read, not a `Shape` read. The
    /// protobuf reader checks only the framing of what it leaves out (a TLS context's `Any` is
    /// not decoded, a skipped string not checked as UTF-8). `heft summary` reads this way: in
    /// Istio dumps the TLS contexts and endpoints every cluster repeats are most of the decoding.
    Shape,
    /// Everything the model holds.
    #[default]
    Full,
}

impl Detail {
    /// Whether a route configuration in `state` is read for its shape only: under `Shape`,
    /// every one but the static ones (the cost model tells their copies apart by content).
    pub(crate) fn route_config_shape_only(self, state: State) -> bool {
        self == Detail::Shape && state != State::Static
    }
}

/// Two folds over the same input: `A` sees each resource by reference, then `B` may keep it.
impl<A: Fold, B: Fold> Fold for (A, B) {
    type Acc = (A::Acc, B::Acc);

    fn start(&self) -> Self::Acc {
        (self.0.start(), self.1.start())
    }

    fn add(&self, acc: &mut Self::Acc, resource: &Resource, raw: &[u8]) {
        self.0.add(&mut acc.0, resource, raw);
        self.1.add(&mut acc.1, resource, raw);
    }

    fn add_owned(&self, acc: &mut Self::Acc, resource: Resource, raw: &[u8]) {
        self.0.add(&mut acc.0, &resource, raw);
        self.1.add_owned(&mut acc.1, resource, raw);
    }

    fn merge(&self, acc: &mut Self::Acc, later: Self::Acc) {
        self.0.merge(&mut acc.0, later.0);
        self.1.merge(&mut acc.1, later.1);
    }

    fn bootstrap(&self, bootstrap: &Bootstrap) {
        self.0.bootstrap(bootstrap);
        self.1.bootstrap(bootstrap);
    }

    fn detail(&self) -> Detail {
        self.0.detail().max(self.1.detail())
    }
}

/// What a read learnt besides the resources: the input, its sections, what was skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct Outline {
    /// What the input was.
    pub source: Source,
    /// The dump's sections in input order.
    pub sections: Vec<Section>,
    /// Sections Heft keeps only as type and size (they are not handed to the fold).
    pub opaque_sections: Vec<OpaqueResource>,
    /// The `last_updated` of a `BootstrapConfigDump`, which follows its bootstrap in the input
    /// (so the bootstrap handed to the fold does not carry it).
    pub bootstrap_last_updated: Option<Box<str>>,
    /// What `keep_going` skipped, in input order.
    pub skipped: Vec<Skipped>,
}

/// Reports how far a read has come: `(done, total)` in bytes of the input as stored (compressed
/// bytes for a compressed input); `total` is `None` when the size is not known (a pipe).
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// let last = Arc::new(AtomicU64::new(0));
/// let seen = last.clone();
/// let opts = heft::ReadOptions {
///     progress: Some(heft::stream::Progress::new(move |done, _total| {
///         seen.store(done, Ordering::Relaxed)
///     })),
///     ..Default::default()
/// };
/// let text = br#"[{"name": "a", "type": "EDS"}]"#;
/// heft::Dump::from_slice_with(text, &opts)?;
/// assert_eq!(last.load(Ordering::Relaxed), text.len() as u64);
/// # Ok::<(), heft::Error>(())
/// ```
#[derive(Clone)]
pub struct Progress(Arc<dyn Fn(u64, Option<u64>) + Send + Sync>);

impl Progress {
    /// A progress callback. It is called from the reading threads, often (at every batch or
    /// chunk of input): it should be cheap. `done` may start again from 0 if the reader has to
    /// read a mapped input a second time (after its fast path gave up).
    pub fn new(f: impl Fn(u64, Option<u64>) + Send + Sync + 'static) -> Progress {
        Progress(Arc::new(f))
    }

    pub(crate) fn report(&self, done: u64, total: Option<u64>) {
        (self.0)(done, total)
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress(..)")
    }
}

/// Folds a dump held in memory.
pub fn fold_slice<F: Fold>(
    bytes: &[u8],
    opts: &ReadOptions,
    fold: &F,
) -> Result<(Outline, F::Acc)> {
    crate::read::fold_slice(bytes, opts, fold, None)
}

/// Folds a dump from a file (mapped, never copied), or standard input for `-`.
pub fn fold_path<F: Fold>(
    path: impl AsRef<Path>,
    opts: &ReadOptions,
    fold: &F,
) -> Result<(Outline, F::Acc)> {
    crate::read::fold_path(path.as_ref(), opts, fold)
}

/// Folds a dump from standard input: mapped when it is a redirected file, streamed from a pipe.
pub fn fold_stdin<F: Fold>(opts: &ReadOptions, fold: &F) -> Result<(Outline, F::Acc)> {
    crate::read::fold_stdin(opts, fold)
}

/// Folds a dump from any reader, in chunks: the whole text is never held in memory.
pub fn fold_reader<F: Fold>(
    reader: impl Read,
    opts: &ReadOptions,
    fold: &F,
) -> Result<(Outline, F::Acc)> {
    crate::read::fold_reader(reader, opts, fold, None)
}

/// A decoded batch, waiting for the batches before it to be merged.
pub(crate) struct Finished<A> {
    pub(crate) acc: A,
    pub(crate) skipped: Vec<Skipped>,
    pub(crate) error: Option<Error>,
    /// Input offset where the batch's last entry ends.
    pub(crate) end: u64,
    /// Where the array the batch was cut from ends, when that is before the end of the batch's
    /// input (a chunk cut past its array's end, see `json/walk.rs`). The batches handed in after
    /// it, up to [`Ordered::wait`]'s resumption, were cut from past that end: they are void.
    pub(crate) overran: Option<u64>,
}

/// What the batches merged so far made, held by the one thread merging.
struct Merged<A> {
    acc: A,
    skipped: Vec<Skipped>,
    error: Option<Error>,
}

/// Results handed in and not yet merged, and how far merging has come.
struct Queue<A> {
    /// Results waiting for every earlier one to be taken.
    waiting: BTreeMap<usize, Finished<A>>,
    /// The next slot to take for merging.
    taken: usize,
    /// Every slot before this one is merged.
    merged: usize,
    /// The end of an array found by a merged batch that overran it, for [`Ordered::wait`].
    overrun: Option<u64>,
}

/// Which slots are void: cut past the end of their array, dropped instead of merged.
struct Void {
    /// Every slot after the first one whose batch overran its array (`usize::MAX` while none
    /// has since the walk last resumed)…
    open_from: usize,
    /// …and those of the array the walk last resumed after (all merged before the next array's
    /// overrun can be, since merging is in order).
    closed: Range<usize>,
}

impl Void {
    fn contains(&self, slot: usize) -> bool {
        slot >= self.open_from || self.closed.contains(&slot)
    }
}

/// How [`Ordered::wait`] ended.
pub(crate) enum Waited {
    /// A merged batch found its array's end here; the walk resumes after it.
    Overrun(u64),
    /// The slot waited for is merged and no batch overran.
    Merged,
    /// A batch failed.
    Failed,
}

/// Ends a read whose walk handed batches to other threads: the walk's outcome weighed against
/// the first failed batch. Under `keep_going` a walk error becomes the last skipped entry;
/// otherwise the error earliest in the input is the one to report.
pub(crate) fn settle(
    walked: Result<()>,
    batch_error: Option<Error>,
    keep_going: bool,
    skipped: &mut Vec<Skipped>,
) -> Result<()> {
    match (walked, batch_error) {
        (Ok(()), None) => Ok(()),
        (Ok(()), Some(e)) => Err(e),
        (Err(e), _) if keep_going => {
            skipped.push(Skipped::at(&e, format!("reading stopped: {}", e.message())));
            Ok(())
        }
        (Err(e), Some(first)) if first.offset() < e.offset() => Err(first),
        (Err(e), _) => Err(e),
    }
}

/// Merges batch results in input order as they arrive from any thread.
pub(crate) struct Ordered<'f, F: Fold> {
    fold: &'f F,
    /// Taken with `try_lock` by a thread that hands a result in: the thread that gets it merges
    /// every result now in order, while the others go on decoding.
    merged: Mutex<Merged<F::Acc>>,
    queue: Mutex<Queue<F::Acc>>,
    /// The first slot whose batch failed (`usize::MAX` while none has); set with the queue's
    /// lock held, so that a thread holding it sees whether a batch has failed.
    failed: AtomicUsize,
    slots: AtomicUsize,
    /// Called with the end offset of the input merged so far.
    on_merged: Option<&'f (dyn Fn(u64) + Sync)>,
    /// How far the input has been merged.
    merged_to: AtomicU64,
    /// Held while `on_merged` runs, with the offset last reported: the callback (which may give
    /// a mapped file's pages back, a slow system call) runs outside the merge lock, one thread
    /// at a time, with offsets that only grow.
    reporting: Mutex<u64>,
    void: Mutex<Void>,
    /// Notified (with `queue`) whenever batches are merged, for [`Ordered::wait`].
    merged_cv: Condvar,
}

impl<'f, F: Fold> Ordered<'f, F> {
    pub(crate) fn new(fold: &'f F, on_merged: Option<&'f (dyn Fn(u64) + Sync)>) -> Self {
        Ordered {
            fold,
            merged: Mutex::new(Merged {
                acc: fold.start(),
                skipped: Vec::new(),
                error: None,
            }),
            queue: Mutex::new(Queue {
                waiting: BTreeMap::new(),
                taken: 0,
                merged: 0,
                overrun: None,
            }),
            failed: AtomicUsize::new(usize::MAX),
            slots: AtomicUsize::new(0),
            on_merged,
            merged_to: AtomicU64::new(0),
            reporting: Mutex::new(0),
            void: Mutex::new(Void {
                open_from: usize::MAX,
                closed: 0..0,
            }),
            merged_cv: Condvar::new(),
        }
    }

    /// Numbers the next batch in input order.
    pub(crate) fn slot(&self) -> usize {
        self.slots.fetch_add(1, Ordering::Relaxed)
    }

    /// How many slots have been numbered.
    pub(crate) fn slots(&self) -> usize {
        self.slots.load(Ordering::Relaxed)
    }

    /// Hands in `slot`'s result, made by `run` unless it would be useless anyway (a batch failed
    /// before it, or it is void). Every slot is handed in, even if `run` panics (as a failure,
    /// before the panic goes on): a walk waiting for it must not wait forever.
    pub(crate) fn run(&self, slot: usize, run: impl FnOnce(&'f F) -> Finished<F::Acc>) {
        let nothing = |error| Finished {
            acc: self.fold.start(),
            skipped: Vec::new(),
            error,
            end: 0,
            overran: None,
        };
        if self.doomed(slot) {
            return self.deliver(slot, nothing(None));
        }
        let fold = self.fold;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(fold))) {
            Ok(done) => self.deliver(slot, done),
            Err(panic) => {
                let e = Error::new(ErrorKind::Syntax, "a decoder panicked");
                self.deliver(slot, nothing(Some(e)));
                std::panic::resume_unwind(panic);
            }
        }
    }

    /// Whether a batch failed before `slot`, or `slot` is void: its result is useless.
    fn doomed(&self, slot: usize) -> bool {
        self.failed.load(Ordering::Relaxed) < slot || self.void().contains(slot)
    }

    fn void(&self) -> MutexGuard<'_, Void> {
        self.void.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The slot of the first batch delivered so far that overran its array (not yet known to be
    /// the first in input order), if any did since the walk last resumed.
    pub(crate) fn overran(&self) -> Option<usize> {
        let from = self.void().open_from;
        (from != usize::MAX).then(|| from - 1)
    }

    /// Waits until `slot` is merged, a merged batch has overrun its array, or a batch has failed.
    /// After an overrun, every slot numbered so far after the overrun one is void, and slots
    /// numbered from now on are not (the walk resumes after the array's end).
    pub(crate) fn wait(&self, slot: usize) -> Waited {
        let mut q = self.queue();
        loop {
            if self.any_failed() {
                return Waited::Failed;
            }
            if let Some(end) = q.overrun.take() {
                let mut void = self.void();
                void.closed = void.open_from..self.slots();
                void.open_from = usize::MAX;
                return Waited::Overrun(end);
            }
            if q.merged > slot {
                return Waited::Merged;
            }
            q = self.merged_cv.wait(q).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue<F::Acc>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether any batch has failed.
    pub(crate) fn any_failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed) != usize::MAX
    }

    /// Hands in a batch's result, and merges every result now in order unless another thread
    /// is merging (which then merges this one too): a merge that grows a big accumulator (tens
    /// of milliseconds of fresh pages) does not hold up the other threads' decoding.
    ///
    /// A failure counts once the batch is merged: a void batch may fail (it was cut from
    /// anywhere), and is dropped.
    fn deliver(&self, slot: usize, done: Finished<F::Acc>) {
        if done.overran.is_some() {
            // Every later slot is void, whether or not this one is; an overrun of a void slot
            // says nothing.
            let mut void = self.void();
            if !void.contains(slot) {
                void.open_from = slot + 1;
            }
        }
        {
            let mut q = self.queue();
            if self.any_failed() {
                // Everything after the first failure is dropped.
                return;
            }
            q.waiting.insert(slot, done);
        }
        let Ok(m) = self.merged.try_lock() else {
            // The thread merging takes this result too: it lets go of the merge lock only
            // while it holds the queue's and finds nothing more to merge.
            return;
        };
        if let Some(end) = self.merge_ready(m) {
            self.report(end);
        }
    }

    /// Merges every result now in order, then lets go of the merge lock; returns the input
    /// offset merged to, if any moved.
    fn merge_ready(&self, mut m: MutexGuard<'_, Merged<F::Acc>>) -> Option<u64> {
        let mut merged_to = None;
        loop {
            let (slot, d) = {
                let mut q = self.queue();
                let slot = q.taken;
                let Some(d) = q.waiting.remove(&slot) else {
                    // Under the queue's lock: a result queued from now on finds the merge
                    // lock free.
                    drop(m);
                    return merged_to;
                };
                q.taken += 1;
                (slot, d)
            };
            let mut overrun = None;
            if !self.void().contains(slot) {
                m.skipped.extend(d.skipped);
                if let Some(e) = d.error {
                    m.error = Some(e);
                    let mut q = self.queue();
                    self.failed.fetch_min(slot, Ordering::Relaxed);
                    q.waiting.clear();
                    q.merged = slot + 1;
                    drop(q);
                    self.merged_cv.notify_all();
                    return merged_to;
                }
                overrun = d.overran;
                self.fold.merge(&mut m.acc, d.acc);
                merged_to = Some(d.end);
            }
            let mut q = self.queue();
            q.merged = slot + 1;
            if overrun.is_some() {
                q.overrun = overrun;
            }
            drop(q);
            self.merged_cv.notify_all();
        }
    }

    /// Tells `on_merged` how far the input is merged.
    fn report(&self, end: u64) {
        self.merged_to.fetch_max(end, Ordering::Relaxed);
        let Some(f) = self.on_merged else {
            return;
        };
        // A thread that finds another reporting leaves it to that one, which reports the
        // latest offset before it lets go.
        let Ok(mut reported) = self.reporting.try_lock() else {
            return;
        };
        loop {
            let end = self.merged_to.load(Ordering::Relaxed);
            if end <= *reported {
                return;
            }
            *reported = end;
            f(end);
        }
    }

    /// The merged result: the accumulator, what was skipped, and the first batch error.
    pub(crate) fn finish(self) -> (F::Acc, Vec<Skipped>, Option<Error>) {
        let m = self.merged.into_inner().unwrap_or_else(|p| p.into_inner());
        (m.acc, m.skipped, m.error)
    }
}

/// The batches a walk has handed over and not yet seen decoded: at most two per thread and one
/// more, holding at most [`IN_FLIGHT_BYTES`] of input between them, or one bigger batch alone.
/// A walk of a stream copies each batch's input, and a walk of a mapped file faults its pages in
/// ahead of the fold that gives them back: this is what bounds the memory of either.
#[derive(Default)]
pub(crate) struct InFlight {
    counts: Mutex<(usize, u64)>,
    room: Condvar,
}

/// The input bytes the batches in flight may hold between them; a batch bigger than this (one
/// route configuration of tens of MB) is decoded alone. Decoded resources take about half their
/// input's size again, so this bounds the read's working set with big resources too.
const IN_FLIGHT_BYTES: u64 = 32 << 20;

impl InFlight {
    /// Waits until a batch of `bytes` input bytes fits, and holds its place until the returned
    /// [`Room`] is dropped.
    pub(crate) fn enter(&self, bytes: u64) -> Room<'_> {
        let limit = rayon::current_num_threads() * 2 + 1;
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        while c.0 > 0 && (c.0 >= limit || c.1 + bytes > IN_FLIGHT_BYTES) {
            c = self.room.wait(c).unwrap_or_else(|p| p.into_inner());
        }
        c.0 += 1;
        c.1 += bytes;
        Room(self, bytes)
    }
}

/// A batch's place in [`InFlight`], given back when dropped.
pub(crate) struct Room<'s>(&'s InFlight, u64);

impl Drop for Room<'_> {
    fn drop(&mut self) {
        let mut c = self.0.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.0 -= 1;
        c.1 -= self.1;
        self.0.room.notify_one();
    }
}

/// Folds one decoded entry's resources; bootstraps are announced first.
pub(crate) fn add_all<F: Fold>(fold: &F, acc: &mut F::Acc, items: &mut Vec<Resource>, raw: &[u8]) {
    for item in items.drain(..) {
        if let Resource::Bootstrap(b) = &item {
            fold.bootstrap(b);
        }
        fold.add_owned(acc, item, raw);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Collects each batch's slot in the order batches merge (input order if merging is right);
    /// each merge takes at least the given time.
    struct InOrder(std::time::Duration);

    impl Fold for InOrder {
        type Acc = Vec<u64>;
        fn start(&self) -> Vec<u64> {
            Vec::new()
        }
        fn add(&self, _: &mut Vec<u64>, _: &Resource, _: &[u8]) {}
        fn merge(&self, acc: &mut Vec<u64>, later: Vec<u64>) {
            if !self.0.is_zero() {
                std::thread::sleep(self.0);
            }
            acc.extend(later);
        }
    }

    const FAST: InOrder = InOrder(std::time::Duration::ZERO);

    #[test]
    fn results_handed_in_while_another_thread_merges_are_merged_too() {
        let n = 2000u64;
        // Slow merges, so that results arrive while another thread merges.
        let slow = InOrder(std::time::Duration::from_micros(50));
        let ordered = Ordered::new(&slow, None);
        std::thread::scope(|s| {
            for parity in 0..2 {
                let ordered = &ordered;
                s.spawn(move || {
                    for slot in (parity..n).step_by(2) {
                        ordered.deliver(slot as usize, batch(slot as usize, None, false));
                    }
                });
            }
        });
        assert!(matches!(ordered.wait(n as usize - 1), Waited::Merged));
        let (acc, _, error) = ordered.finish();
        assert!(error.is_none());
        assert_eq!(acc, (0..n).collect::<Vec<_>>());
    }

    fn batch(slot: usize, overran: Option<u64>, error: bool) -> Finished<Vec<u64>> {
        Finished {
            acc: vec![slot as u64],
            skipped: Vec::new(),
            error: error.then(|| Error::new(ErrorKind::Syntax, format!("slot {slot}"))),
            end: slot as u64 * 10,
            overran,
        }
    }

    #[test]
    fn batches_cut_past_an_overrun_are_dropped_until_the_walk_resumes() {
        let ordered = Ordered::new(&FAST, None);
        let slots: Vec<usize> = (0..6).map(|_| ordered.slot()).collect();
        // Slot 4 (void, cut from anywhere) fails and seems to overrun, and arrives first.
        ordered.deliver(slots[4], batch(4, Some(45), true));
        ordered.deliver(slots[2], batch(2, Some(25), false));
        ordered.deliver(slots[1], batch(1, None, false));
        assert_eq!(ordered.overran(), Some(2));
        ordered.deliver(slots[0], batch(0, None, false));
        // Slot 2's overrun is the array's end once everything before it is merged.
        assert!(matches!(ordered.wait(2), Waited::Overrun(25)));
        assert_eq!(ordered.overran(), None);
        // Cut before the walk resumed: void, even when they arrive after it did.
        let resumed: Vec<usize> = (0..2).map(|_| ordered.slot()).collect();
        ordered.deliver(resumed[0], batch(6, None, false));
        ordered.deliver(slots[3], batch(3, Some(35), false));
        ordered.deliver(slots[5], batch(5, None, true));
        assert_eq!(ordered.overran(), None, "a void slot's overrun counts");
        // The next array's end.
        ordered.deliver(resumed[1], batch(7, Some(75), false));
        assert!(matches!(ordered.wait(resumed[1]), Waited::Overrun(75)));
        let (acc, _, error) = ordered.finish();
        assert!(error.is_none(), "a void slot's failure counts: {error:?}");
        assert_eq!(acc, [0, 1, 2, 6, 7]);
    }

    #[test]
    fn a_failure_before_an_overrun_ends_the_wait() {
        let ordered = Ordered::new(&FAST, None);
        let slots: Vec<usize> = (0..3).map(|_| ordered.slot()).collect();
        ordered.deliver(slots[1], batch(1, Some(15), false));
        ordered.deliver(slots[0], batch(0, None, true));
        assert!(matches!(ordered.wait(1), Waited::Failed));
        ordered.run(slots[2], |_| panic!("a later batch is not decoded"));
    }

    #[test]
    fn batches_merge_in_order_and_merged_offsets_only_grow_whatever_thread_delivers() {
        let n = 5000u64;
        let seen = Mutex::new(Vec::new());
        // Slow, as giving pages back is: reports overlap unless something orders them.
        let report = |end: u64| {
            std::thread::sleep(std::time::Duration::from_micros(20));
            seen.lock().unwrap().push(end);
        };
        let ordered = Ordered::new(&FAST, Some(&report));
        std::thread::scope(|s| {
            // Two threads, one delivering the even batches and one the odd, each in order: the
            // merges, and the reports, come from both.
            for parity in 0..2 {
                let ordered = &ordered;
                s.spawn(move || {
                    for slot in (parity..n).step_by(2) {
                        let done = Finished {
                            acc: vec![slot],
                            skipped: Vec::new(),
                            error: None,
                            end: (slot + 1) * 10,
                            overran: None,
                        };
                        ordered.deliver(slot as usize, done);
                    }
                });
            }
        });
        let (acc, skipped, error) = ordered.finish();
        assert!(skipped.is_empty() && error.is_none());
        assert_eq!(acc, (0..n).collect::<Vec<_>>());
        let seen = seen.into_inner().unwrap();
        assert!(!seen.is_empty());
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]),
            "reported offsets went back: {seen:?}"
        );
        assert!(seen.iter().all(|&end| end % 10 == 0 && end <= n * 10));
    }
}
