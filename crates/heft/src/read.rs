//! Opening inputs: files (mapped, never copied), stdin (streamed), gzip and zstd (streamed).
//!
//! The input's kind is detected from its first bytes, never from its name: gzip or zstd, then
//! binary protobuf (`pb::read::sniff`), JSON (`{` or `[` first) or YAML (`yaml::is_yaml`).
//! Whatever the source, the decoded resources are handed to a [`Fold`] in input order; [`Dump`]
//! is the fold that keeps them all.

use crate::error::{Error, ErrorKind, Result};
use crate::json::walk;
use crate::json::window::Window;
use crate::model::{DocumentKind, Dump, Source};
use crate::stream::{Fold, Outline, Progress, Resource};
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// How to read an input.
///
/// ```
/// let opts = heft::ReadOptions { keep_going: true, ..Default::default() };
/// let dump = heft::Dump::from_slice_with(br#"[{"name": "a", "type": "EDS"}, {"name": 5, "type": "EDS"}]"#, &opts).unwrap();
/// assert_eq!(dump.clusters.len(), 1);
/// assert_eq!(dump.skipped.len(), 1);
/// assert_eq!(dump.skipped[0].path, "[1].name");
/// ```
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Skip resources that fail to decode (recording why in [`Dump::skipped`]) instead of
    /// failing the whole read.
    pub keep_going: bool,
    /// Told how far the read has come, as it goes.
    pub progress: Option<Progress>,
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

fn compression_of(head: &[u8]) -> &'static str {
    if head.starts_with(GZIP_MAGIC) {
        "gzip"
    } else if head.starts_with(ZSTD_MAGIC) {
        "zstd"
    } else {
        "none"
    }
}

fn decompressor<'a>(compression: &str, r: Box<dyn Read + 'a>) -> Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        "gzip" => Box::new(flate2::read::MultiGzDecoder::new(r)),
        "zstd" => Box::new(
            zstd::stream::read::Decoder::new(r)
                .map_err(|e| Error::io("starting zstd decompression", e))?,
        ),
        _ => r,
    })
}

/// Marks read errors from a decompressor as what they are: a damaged compressed stream.
struct Labelled<R> {
    inner: R,
    compression: &'static str,
}

impl<R: Read> Read for Labelled<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            std::io::Error::new(e.kind(), format!("corrupt {} data: {e}", self.compression))
        })
    }
}

impl Dump {
    /// Reads a dump held in memory.
    ///
    /// ```
    /// let dump = heft::Dump::from_slice(br#"{"configs": []}"#).unwrap();
    /// assert!(dump.clusters.is_empty());
    /// ```
    pub fn from_slice(bytes: &[u8]) -> Result<Dump> {
        Dump::from_slice_with(bytes, &ReadOptions::default())
    }

    /// Reads a dump held in memory, with options.
    pub fn from_slice_with(bytes: &[u8], opts: &ReadOptions) -> Result<Dump> {
        collect(fold_slice(bytes, opts, &Collect, None)?)
    }

    /// Reads a dump from a file, mapping it rather than copying it. `-` reads standard input.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Dump> {
        Dump::from_path_with(path, &ReadOptions::default())
    }

    /// Reads a dump from a file (or `-` for standard input), with options.
    pub fn from_path_with(path: impl AsRef<Path>, opts: &ReadOptions) -> Result<Dump> {
        collect(fold_path(path.as_ref(), opts, &Collect)?)
    }

    /// Reads a dump from standard input: mapped when it is a redirected file, streamed when it
    /// is a pipe.
    pub fn from_stdin_with(opts: &ReadOptions) -> Result<Dump> {
        collect(fold_stdin(opts, &Collect)?)
    }

    /// Reads a dump from a file (or `-` for standard input), keeping only the resources `keep`
    /// accepts: the others are dropped as soon as they are decoded, so the dump holds only what
    /// is kept whatever the size of the input. Sections, opaque sections and what `keep_going`
    /// skipped are always kept.
    ///
    /// ```
    /// use heft::stream::Resource;
    /// let text = br#"[{"name": "a", "type": "EDS"}, {"cluster_name": "a", "endpoints": []}]"#;
    /// let path = std::env::temp_dir().join(format!("heft-keeping-{}.json", std::process::id()));
    /// std::fs::write(&path, text)?;
    /// let only = |r: &Resource| matches!(r, Resource::Cluster(_));
    /// let dump = heft::Dump::from_path_keeping(&path, &Default::default(), only)?;
    /// assert_eq!((dump.clusters.len(), dump.endpoint_configs.len()), (1, 0));
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_path_keeping(
        path: impl AsRef<Path>,
        opts: &ReadOptions,
        keep: impl Fn(&Resource) -> bool + Sync,
    ) -> Result<Dump> {
        collect(fold_path(path.as_ref(), opts, &Keeping(keep))?)
    }

    /// Reads a dump held in memory, keeping only the resources `keep` accepts (see
    /// [`Dump::from_path_keeping`]).
    pub fn from_slice_keeping(
        bytes: &[u8],
        opts: &ReadOptions,
        keep: impl Fn(&Resource) -> bool + Sync,
    ) -> Result<Dump> {
        collect(fold_slice(bytes, opts, &Keeping(keep), None)?)
    }

    /// Reads a dump from any reader, in chunks: the whole text is never held in memory.
    pub fn from_reader(reader: impl Read) -> Result<Dump> {
        Dump::from_reader_with(reader, &ReadOptions::default())
    }

    /// Reads a dump from any reader, with options.
    pub fn from_reader_with(reader: impl Read, opts: &ReadOptions) -> Result<Dump> {
        collect(fold_reader(reader, opts, &Collect, None)?)
    }
}

pub(crate) fn fold_path<F: Fold>(
    path: &Path,
    opts: &ReadOptions,
    fold: &F,
) -> Result<(Outline, F::Acc)> {
    if path == Path::new("-") {
        return fold_stdin(opts, fold);
    }
    let file =
        File::open(path).map_err(|e| Error::io(&format!("cannot open {}", path.display()), e))?;
    fold_file(&file, opts, fold)
}

pub(crate) fn fold_stdin<F: Fold>(opts: &ReadOptions, fold: &F) -> Result<(Outline, F::Acc)> {
    #[cfg(unix)]
    {
        if let Ok(file) = File::open("/dev/stdin") {
            return fold_file(&file, opts, fold);
        }
    }
    fold_reader(std::io::stdin().lock(), opts, fold, None)
}

fn fold_file<F: Fold>(file: &File, opts: &ReadOptions, fold: &F) -> Result<(Outline, F::Acc)> {
    let meta = file
        .metadata()
        .map_err(|e| Error::io("cannot read file metadata", e))?;
    if !meta.is_file() {
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::fs::FileTypeExt;
            use std::os::unix::io::AsRawFd;
            if meta.file_type().is_fifo() {
                // A 1 MiB pipe buffer instead of 64 KiB: the writer and Heft wake each other
                // 16 times less often (the kernel may refuse; then the default stays).
                // SAFETY: fcntl on a descriptor this `File` owns, with an integer argument.
                unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
            }
        }
        return fold_reader(file, opts, fold, None);
    }
    if meta.len() == 0 {
        return Err(Error::at(ErrorKind::Empty, 0, "the input is empty"));
    }
    // SAFETY: the mapping is read-only and private to this process. If another process
    // truncates the file while Heft reads it, reading the lost pages faults (SIGBUS); that
    // is the accepted trade of every tool that maps its input (ripgrep, for one).
    let map =
        unsafe { memmap2::Mmap::map(file) }.map_err(|e| Error::io("cannot map the file", e))?;
    #[cfg(unix)]
    let _ = map.advise(memmap2::Advice::Sequential);
    fold_slice(&map, opts, fold, Some(&map))
}

/// Drops the pages of a mapped file that have been read, so the process does not keep the
/// whole file resident: they are read again from the page cache if anything needs them.
struct Release<'m> {
    map: &'m memmap2::Mmap,
    done: AtomicU64,
}

/// Pages are given back in steps of this many bytes, to keep the system calls few.
const RELEASE_STEP: u64 = 64 << 20;

impl Release<'_> {
    fn upto(&self, end: u64) {
        let from = self.done.load(Ordering::Relaxed);
        let to = end & !(RELEASE_STEP - 1);
        if to <= from {
            return;
        }
        self.done.store(to, Ordering::Relaxed);
        #[cfg(unix)]
        {
            // SAFETY: the mapping is a read-only private mapping of a file, never written, so
            // MADV_DONTNEED only drops pages that are read back unchanged from the file when
            // touched again; no reference into the range is used for writing.
            let _ = unsafe {
                self.map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    from as usize,
                    (to - from) as usize,
                )
            };
        }
    }
}

/// Folds a dump held in memory; `mapped` is the file mapping `bytes` is, if it is one.
pub(crate) fn fold_slice<F: Fold>(
    bytes: &[u8],
    opts: &ReadOptions,
    fold: &F,
    mapped: Option<&memmap2::Mmap>,
) -> Result<(Outline, F::Acc)> {
    let compression = compression_of(bytes);
    let total = bytes.len() as u64;
    if compression == "none" {
        let release = mapped.map(|map| Release {
            map,
            done: AtomicU64::new(0),
        });
        let on_merged = |end: u64| {
            if let Some(p) = &opts.progress {
                p.report(end, Some(total));
            }
            if let Some(r) = &release {
                r.upto(end);
            }
        };
        let result = if let Some(shape) = crate::pb::read::sniff(bytes, true) {
            crate::pb::read::fold(bytes, shape, compression, opts, fold, Some(&on_merged))
        } else {
            let head = &bytes[..bytes.len().min(crate::pb::read::SNIFF_BYTES)];
            if crate::yaml::is_yaml(head, head.len() == bytes.len())? {
                return crate::yaml::fold_slice(bytes, compression, opts, fold);
            }
            read_window(
                Window::borrowed(bytes),
                compression,
                opts,
                fold,
                Some(&on_merged),
            )
        };
        if result.is_ok() {
            on_merged(total);
        }
        return result;
    }
    let counted = Counting {
        inner: bytes,
        done: 0,
        total: Some(total),
        progress: opts.progress.clone(),
    };
    let r = decompressor(compression, Box::new(counted))?;
    read_stream(
        Box::new(Labelled {
            inner: r,
            compression,
        }),
        compression,
        opts,
        fold,
    )
}

/// Folds a dump from a reader; `total` is its size in bytes when known.
pub(crate) fn fold_reader<F: Fold>(
    reader: impl Read,
    opts: &ReadOptions,
    fold: &F,
    total: Option<u64>,
) -> Result<(Outline, F::Acc)> {
    let mut reader = Counting {
        inner: reader,
        done: 0,
        total,
        progress: opts.progress.clone(),
    };
    let mut head = [0u8; 4];
    let mut n = 0;
    while n < head.len() {
        match reader.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("reading input", e)),
        }
    }
    let compression = compression_of(&head[..n]);
    let joined: Box<dyn Read + '_> =
        Box::new(std::io::Cursor::new(head[..n].to_vec()).chain(reader));
    let r = decompressor(compression, joined)?;
    read_stream(
        Box::new(Labelled {
            inner: r,
            compression,
        }),
        compression,
        opts,
        fold,
    )
}

/// Counts the bytes read from the source, for progress.
struct Counting<R> {
    inner: R,
    done: u64,
    total: Option<u64>,
    progress: Option<Progress>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if let Some(p) = &self.progress {
            p.report(self.done, self.total);
        }
        Ok(n)
    }
}

/// Reads a (decompressed) stream: a binary `ConfigDump` entry by entry (`pb::streamed`), other
/// protobuf whole, JSON through a window, YAML through the translation to JSON.
fn read_stream<F: Fold>(
    mut r: Box<dyn Read + '_>,
    compression: &'static str,
    opts: &ReadOptions,
    fold: &F,
) -> Result<(Outline, F::Acc)> {
    let mut head = Vec::new();
    (&mut r)
        .take(crate::pb::read::SNIFF_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(|e| Error::io("reading input at byte 0", e))?;
    let whole = head.len() < crate::pb::read::SNIFF_BYTES;
    if let Some(shape) = crate::pb::read::sniff(&head, whole) {
        if shape == crate::pb::read::Shape::ConfigDump {
            return crate::pb::streamed::fold(head, r, compression, opts, fold);
        }
        // DiscoveryResponses are decoded from one buffer; it grows only as bytes arrive.
        #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
        if let Ok(mut buffer) = Whole::new() {
            buffer.fill(&head, &mut r)?;
            return crate::pb::read::fold(buffer.bytes(), shape, compression, opts, fold, None);
        }
        r.read_to_end(&mut head)
            .map_err(|e| Error::io("reading input", e))?;
        return crate::pb::read::fold(&head, shape, compression, opts, fold, None);
    }
    let yaml = crate::yaml::is_yaml(&head, whole)?;
    let joined: Box<dyn Read + '_> = Box::new(std::io::Cursor::new(head).chain(r));
    if yaml {
        return crate::yaml::fold_stream(joined, compression, opts, fold);
    }
    read_window(Window::reader(joined), compression, opts, fold, None)
}

/// A whole binary input read from a stream, in anonymous memory reserved far ahead of it: pages
/// are committed only as bytes arrive, and growing past the reservation moves the mapping, not
/// the bytes. A vector doubling as it fills holds up to twice the input while it copies it over,
/// and copies it each time: for the 1 GB benchmark dump's 303 MB binary from a pipe, peak RSS
/// 555 to 657 MB before, 399 to 405 MB with this (zstd: 846 to 887 MB, 414 to 425 MB), and
/// fresh pages, slow to fault in on a virtual machine, are touched once: wall median 1.37 ->
/// 0.51 s (zstd 1.24 -> 0.56 s), 5 rotated runs.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
struct Whole {
    map: memmap2::MmapMut,
    len: usize,
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
impl Whole {
    /// Address space only: nothing is committed, nor counted against the memory the kernel
    /// allows (`MAP_NORESERVE`; where the kernel refuses, a vector is used instead).
    const RESERVE: usize = 16 << 30;
    /// Each read asks for at most this much, so a reader never touches pages past it.
    const READ: usize = 1 << 20;

    fn new() -> std::io::Result<Whole> {
        Self::reserving(Self::RESERVE)
    }

    fn reserving(len: usize) -> std::io::Result<Whole> {
        let map = memmap2::MmapOptions::new()
            .len(len)
            .no_reserve_swap()
            .map_anon()?;
        Ok(Whole { map, len: 0 })
    }

    fn fill(&mut self, head: &[u8], r: &mut dyn Read) -> Result<()> {
        self.map[..head.len()].copy_from_slice(head);
        self.len = head.len();
        loop {
            if self.len == self.map.len() {
                let grown = self.map.len() * 2;
                // SAFETY: no reference into the mapping lives across the call; a moved mapping
                // keeps its bytes.
                unsafe {
                    self.map
                        .remap(grown, memmap2::RemapOptions::new().may_move(true))
                }
                .map_err(|e| Error::io("growing the input buffer", e))?;
            }
            let end = (self.len + Self::READ).min(self.map.len());
            match r.read(&mut self.map[self.len..end]) {
                Ok(0) => return Ok(()),
                Ok(n) => self.len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("reading input", e)),
            }
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.map[..self.len]
    }
}

pub(crate) fn read_window<F: Fold>(
    mut window: Window,
    compression: &'static str,
    opts: &ReadOptions,
    fold: &F,
    on_merged: Option<&(dyn Fn(u64) + Sync)>,
) -> Result<(Outline, F::Acc)> {
    let walked = walk::walk(&mut window, opts.keep_going, fold, on_merged)?;
    let sk = walked.skeleton;
    let outline = Outline {
        source: Source {
            format: sk.format.unwrap_or(DocumentKind::ConfigDump),
            encoding: "json",
            compression,
            bytes: sk.bytes,
        },
        sections: sk.sections,
        opaque_sections: sk.opaque_sections,
        bootstrap_last_updated: sk.bootstrap_last_updated,
        skipped: walked.skipped,
    };
    Ok((outline, walked.acc))
}

/// The fold that keeps every resource: it builds a [`Dump`].
pub(crate) struct Collect;

impl Fold for Collect {
    type Acc = Dump;

    fn start(&self) -> Dump {
        Dump::empty(Source {
            format: DocumentKind::ConfigDump,
            encoding: "json",
            compression: "none",
            bytes: 0,
        })
    }

    fn add(&self, acc: &mut Dump, resource: &Resource, raw: &[u8]) {
        self.add_owned(acc, resource.clone(), raw);
    }

    fn add_owned(&self, dump: &mut Dump, resource: Resource, _raw: &[u8]) {
        match resource {
            Resource::Bootstrap(b) => dump.bootstrap = Some(*b),
            Resource::Cluster(c) => dump.clusters.push(*c),
            Resource::Listener(l) => dump.listeners.push(*l),
            Resource::RouteConfig(r) => dump.route_configs.push(*r),
            Resource::LoadAssignment(l) => dump.endpoint_configs.push(*l),
            Resource::Secret(s) => dump.secrets.push(*s),
            Resource::ClusterStatus(c) => dump.cluster_statuses.push(*c),
            Resource::Rejected(r) => dump.rejected.push(*r),
            Resource::Opaque(o) => dump.opaque.push(*o),
        }
    }

    fn merge(&self, dump: &mut Dump, mut later: Dump) {
        if later.bootstrap.is_some() {
            dump.bootstrap = later.bootstrap;
        }
        dump.clusters.append(&mut later.clusters);
        dump.listeners.append(&mut later.listeners);
        dump.route_configs.append(&mut later.route_configs);
        dump.endpoint_configs.append(&mut later.endpoint_configs);
        dump.secrets.append(&mut later.secrets);
        dump.cluster_statuses.append(&mut later.cluster_statuses);
        dump.rejected.append(&mut later.rejected);
        dump.opaque.append(&mut later.opaque);
    }
}

/// The fold that keeps the resources a predicate accepts.
struct Keeping<P>(P);

impl<P: Fn(&Resource) -> bool + Sync> Fold for Keeping<P> {
    type Acc = Dump;

    fn start(&self) -> Dump {
        Collect.start()
    }

    fn add(&self, acc: &mut Dump, resource: &Resource, raw: &[u8]) {
        if (self.0)(resource) {
            Collect.add(acc, resource, raw);
        }
    }

    fn add_owned(&self, acc: &mut Dump, resource: Resource, raw: &[u8]) {
        if (self.0)(&resource) {
            Collect.add_owned(acc, resource, raw);
        }
    }

    fn merge(&self, acc: &mut Dump, later: Dump) {
        Collect.merge(acc, later);
    }
}

/// Completes a collected dump with what the reader learnt besides its resources.
fn collect((outline, mut dump): (Outline, Dump)) -> Result<Dump> {
    dump.source = outline.source;
    dump.sections = outline.sections;
    let mut opaque = outline.opaque_sections;
    opaque.append(&mut dump.opaque);
    dump.opaque = opaque;
    dump.skipped = outline.skipped;
    if let (Some(b), Some(t)) = (&mut dump.bootstrap, outline.bootstrap_last_updated) {
        b.meta.last_updated = Some(t);
    }
    Ok(dump)
}

#[cfg(all(test, target_os = "linux", target_pointer_width = "64"))]
mod tests {
    use super::*;

    /// Past its reservation the buffer moves with every byte read so far, and reads on.
    #[test]
    fn a_whole_input_outgrows_its_reservation_intact() {
        let input: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut whole = Whole::reserving(4096).unwrap();
        whole.fill(&input[..10], &mut &input[10..]).unwrap();
        assert_eq!(whole.bytes(), &input[..]);
        assert_eq!(whole.map.len(), 4096 << 7);
    }
}
