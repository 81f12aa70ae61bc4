//! Opening inputs: files (mapped, never copied), stdin (streamed), gzip and zstd (streamed).
//!
//! The input's kind is detected from its first bytes, never from its name: gzip or zstd, then
//! binary protobuf (`pb::read::sniff`), JSON (`{` or `[` first) or YAML (`yaml::is_yaml`).
//! Whatever the source, the decoded resources are assembled into one [`Dump`] in input order.

use crate::error::{Error, ErrorKind, Result};
use crate::json::decode::Item;
use crate::json::walk;
use crate::json::window::Window;
use crate::model::{DocumentKind, Dump, Source};
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// How to read an input.
///
/// ```
/// let opts = heft::ReadOptions { keep_going: true };
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
        let compression = compression_of(bytes);
        if compression == "none" {
            if let Some(shape) = crate::pb::read::sniff(bytes, true) {
                return crate::pb::read::read(bytes, shape, compression, opts);
            }
            let head = &bytes[..bytes.len().min(crate::pb::read::SNIFF_BYTES)];
            if crate::yaml::is_yaml(head, head.len() == bytes.len())? {
                return crate::yaml::read_slice(bytes, compression, opts);
            }
            return read_window(Window::borrowed(bytes), compression, opts);
        }
        let r = decompressor(compression, Box::new(bytes))?;
        read_stream(
            Box::new(Labelled {
                inner: r,
                compression,
            }),
            compression,
            opts,
        )
    }

    /// Reads a dump from a file, mapping it rather than copying it. `-` reads standard input.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Dump> {
        Dump::from_path_with(path, &ReadOptions::default())
    }

    /// Reads a dump from a file (or `-` for standard input), with options.
    pub fn from_path_with(path: impl AsRef<Path>, opts: &ReadOptions) -> Result<Dump> {
        let path = path.as_ref();
        if path == Path::new("-") {
            return Dump::from_stdin_with(opts);
        }
        let file = File::open(path)
            .map_err(|e| Error::io(&format!("cannot open {}", path.display()), e))?;
        Dump::from_file_with(&file, opts)
    }

    fn from_file_with(file: &File, opts: &ReadOptions) -> Result<Dump> {
        let meta = file
            .metadata()
            .map_err(|e| Error::io("cannot read file metadata", e))?;
        if !meta.is_file() {
            return Dump::from_reader_with(file, opts);
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
        Dump::from_slice_with(&map, opts)
    }

    /// Reads a dump from standard input: mapped when it is a redirected file, streamed when it
    /// is a pipe.
    pub fn from_stdin_with(opts: &ReadOptions) -> Result<Dump> {
        #[cfg(unix)]
        {
            if let Ok(file) = File::open("/dev/stdin") {
                return Dump::from_file_with(&file, opts);
            }
        }
        Dump::from_reader_with(std::io::stdin().lock(), opts)
    }

    /// Reads a dump from any reader, in chunks: the whole text is never held in memory.
    pub fn from_reader(reader: impl Read) -> Result<Dump> {
        Dump::from_reader_with(reader, &ReadOptions::default())
    }

    /// Reads a dump from any reader, with options.
    pub fn from_reader_with(mut reader: impl Read, opts: &ReadOptions) -> Result<Dump> {
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
        )
    }
}

/// Reads a (decompressed) stream: protobuf is read whole, JSON through a window, YAML through the
/// translation to JSON.
fn read_stream(
    mut r: Box<dyn Read + '_>,
    compression: &'static str,
    opts: &ReadOptions,
) -> Result<Dump> {
    let mut head = Vec::new();
    (&mut r)
        .take(crate::pb::read::SNIFF_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(|e| Error::io("reading input at byte 0", e))?;
    let whole = head.len() < crate::pb::read::SNIFF_BYTES;
    if let Some(shape) = crate::pb::read::sniff(&head, whole) {
        // Binary resources are decoded from one buffer; it grows only as bytes arrive.
        r.read_to_end(&mut head)
            .map_err(|e| Error::io("reading input", e))?;
        return crate::pb::read::read(&head, shape, compression, opts);
    }
    let yaml = crate::yaml::is_yaml(&head, whole)?;
    let joined: Box<dyn Read + '_> = Box::new(std::io::Cursor::new(head).chain(r));
    if yaml {
        return crate::yaml::read_stream(joined, compression, opts);
    }
    read_window(Window::reader(joined), compression, opts)
}

/// Adds one decoded item to the dump, in input order.
pub(crate) fn add_item(dump: &mut Dump, item: Item) {
    match item {
        Item::Bootstrap(b) => dump.bootstrap = Some(*b),
        Item::Cluster(c) => dump.clusters.push(*c),
        Item::Listener(l) => dump.listeners.push(*l),
        Item::RouteConfig(r) => dump.route_configs.push(*r),
        Item::LoadAssignment(l) => dump.endpoint_configs.push(*l),
        Item::Secret(s) => dump.secrets.push(*s),
        Item::ClusterStatus(c) => dump.cluster_statuses.push(*c),
        Item::Rejected(kind, name, meta) => dump.rejected.push(crate::model::Rejected {
            kind,
            name,
            meta: *meta,
        }),
        Item::Opaque(o) => dump.opaque.push(*o),
    }
}

pub(crate) fn read_window(
    mut window: Window,
    compression: &'static str,
    opts: &ReadOptions,
) -> Result<Dump> {
    let (skeleton, batches) = walk::walk(&mut window, opts.keep_going)?;
    let mut dump = Dump::empty(Source {
        format: skeleton.format.unwrap_or(DocumentKind::ConfigDump),
        encoding: "json",
        compression,
        bytes: skeleton.bytes,
    });
    dump.sections = skeleton.sections;
    dump.opaque = skeleton.opaque_sections;
    for batch in batches {
        if let Some(e) = batch.error {
            return Err(e);
        }
        dump.skipped.extend(batch.skipped);
        for item in batch.items {
            add_item(&mut dump, item);
        }
    }
    if let (Some(b), Some(t)) = (&mut dump.bootstrap, skeleton.bootstrap_last_updated) {
        b.meta.last_updated = Some(t);
    }
    Ok(dump)
}
