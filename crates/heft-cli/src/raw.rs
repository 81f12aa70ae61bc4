//! The dump's own text of chosen resources, found again by the spans the reader recorded.
//!
//! The reader keeps no text, only where each entry sat in the (decompressed) input. To print
//! resources as they were, a plain file is mapped again and the spans are slices of the map (no
//! copy); compressed input is decompressed again as it streams and the spans copied out in one
//! pass in offset order, so memory holds the chosen resources, never the whole input. Standard
//! input cannot be read twice, so it is kept (as it came, still compressed) for the second pass.

use heft::model::{Span, State};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::PathBuf;

/// Where the input can be read again.
pub enum Source {
    /// A plain file, mapped.
    Mapped(memmap2::Mmap),
    /// A compressed file, opened again.
    File(PathBuf),
    /// Standard input, as it came.
    Memory(Vec<u8>),
}

fn compressed(head: &[u8]) -> bool {
    head.starts_with(&[0x1f, 0x8b]) || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
}

impl Source {
    /// A file: mapped when it is plain, read again as a stream when compressed.
    pub fn file(path: PathBuf) -> Result<Source, String> {
        let at = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        let mut f = File::open(&path).map_err(|e| at(&e))?;
        let mut head = [0u8; 4];
        let n = f.read(&mut head).map_err(|e| at(&e))?;
        let meta = f.metadata().map_err(|e| at(&e))?;
        if compressed(&head[..n]) || !meta.is_file() {
            return Ok(Source::File(path));
        }
        // SAFETY: read-only and private, as the reader maps it; a file truncated meanwhile
        // faults, the trade every tool that maps its input makes.
        let map = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| at(&e))?;
        Ok(Source::Mapped(map))
    }

    /// Gives back the mapped pages that hold `span` once it is printed, so printing every
    /// resource of a big file does not keep the whole file resident (the pages are read again
    /// from the page cache if anything needs them).
    pub fn release(&self, span: Span) {
        #[cfg(unix)]
        if let Source::Mapped(m) = self {
            const PAGE: u64 = 4096;
            let start = span.offset / PAGE * PAGE;
            let end = (span.offset + span.len).min(m.len() as u64);
            if end > start {
                // SAFETY: a read-only private mapping of a file, never written: MADV_DONTNEED
                // only drops pages that are read back unchanged when touched again (a page the
                // span shares with a resource printed later is simply read again).
                let _ = unsafe {
                    m.unchecked_advise_range(
                        memmap2::UncheckedAdvice::DontNeed,
                        start as usize,
                        (end - start) as usize,
                    )
                };
            }
        }
    }

    /// The whole decompressed text, when it is at hand without copying.
    fn whole(&self) -> Option<&[u8]> {
        match self {
            Source::Mapped(m) => Some(m),
            Source::Memory(v) if !compressed(v) => Some(v),
            _ => None,
        }
    }

    fn reader(&self) -> Result<Box<dyn Read + '_>, String> {
        let raw: Box<dyn Read + '_> = match self {
            Source::File(p) => Box::new(BufReader::with_capacity(
                1 << 20,
                File::open(p).map_err(|e| format!("{}: {e}", p.display()))?,
            )),
            Source::Memory(v) => Box::new(&v[..]),
            Source::Mapped(m) => Box::new(&m[..]),
        };
        let mut r = BufReader::with_capacity(1 << 16, raw);
        let head = {
            use std::io::BufRead;
            r.fill_buf()
                .map_err(|e| format!("reading input again: {e}"))?[..]
                .iter()
                .take(4)
                .copied()
                .collect::<Vec<u8>>()
        };
        Ok(if head.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::read::MultiGzDecoder::new(r))
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Box::new(
                zstd::stream::read::Decoder::new(r)
                    .map_err(|e| format!("reading input again: {e}"))?,
            )
        } else {
            Box::new(r)
        })
    }

    /// The whole input, decompressed.
    pub fn bytes(&self) -> Result<Cow<'_, [u8]>, String> {
        if let Some(whole) = self.whole() {
            return Ok(Cow::Borrowed(whole));
        }
        let mut out = Vec::new();
        self.reader()?
            .read_to_end(&mut out)
            .map_err(|e| format!("reading input again: {e}"))?;
        Ok(Cow::Owned(out))
    }

    /// The bytes of each span, in the order given.
    pub fn texts(&self, spans: &[Span]) -> Result<Vec<Cow<'_, [u8]>>, String> {
        if let Some(whole) = self.whole() {
            return spans
                .iter()
                .map(|s| {
                    let (start, end) = (s.offset as usize, (s.offset + s.len) as usize);
                    whole
                        .get(start..end)
                        .map(Cow::Borrowed)
                        .ok_or_else(|| "the input changed while Heft was reading it".to_string())
                })
                .collect();
        }
        Ok(self.copied(spans)?.into_iter().map(Cow::Owned).collect())
    }

    fn copied(&self, spans: &[Span]) -> Result<Vec<Vec<u8>>, String> {
        let mut order: Vec<usize> = (0..spans.len()).collect();
        order.sort_by_key(|&i| (spans[i].offset, spans[i].len));
        let mut out: Vec<Vec<u8>> = vec![Vec::new(); spans.len()];
        let mut done: HashMap<(u64, u64), usize> = HashMap::new();
        let mut reader = self.reader()?;
        let mut pos = 0u64;
        for i in order {
            let s = spans[i];
            if let Some(&j) = done.get(&(s.offset, s.len)) {
                out[i] = out[j].clone();
                continue;
            }
            if s.offset < pos {
                // Overlapping spans (a section and an entry in it): start over for this one.
                reader = self.reader()?;
                pos = 0;
            }
            let skip = s.offset - pos;
            let skipped = std::io::copy(&mut (&mut reader).take(skip), &mut std::io::sink())
                .map_err(|e| format!("reading input again: {e}"))?;
            let mut buf = Vec::with_capacity(usize::try_from(s.len).unwrap_or(0).min(1 << 26));
            (&mut reader)
                .take(s.len)
                .read_to_end(&mut buf)
                .map_err(|e| format!("reading input again: {e}"))?;
            if skipped != skip || buf.len() as u64 != s.len {
                return Err("the input changed while Heft was reading it".into());
            }
            pos = s.offset + s.len;
            done.insert((s.offset, s.len), i);
            out[i] = buf;
        }
        Ok(out)
    }
}

/// What a dump entry wraps its resource in, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrapper {
    /// `{"cluster": …}`.
    Cluster,
    /// `{"active_state": {"listener": …}}` and the like, or `{"listener": …}` when static.
    Listener(State),
    /// `{"route_config": …}`.
    RouteConfig,
    /// `{"endpoint_config": …}`.
    EndpointConfig,
    /// `{"secret": …}`.
    Secret,
    /// The span is the thing itself.
    Whole,
}

fn field<'a>(
    members: &HashMap<String, &'a RawValue>,
    snake: &str,
    camel: &str,
) -> Option<&'a RawValue> {
    members.get(snake).or_else(|| members.get(camel)).copied()
}

/// The resource inside an entry's text; the entry itself when it is a bare resource.
pub fn resource(entry: &[u8], wrapper: Wrapper) -> Result<&[u8], String> {
    let keys: &[(&str, &str)] = match wrapper {
        Wrapper::Whole => return Ok(entry),
        Wrapper::Cluster => &[("cluster", "cluster")],
        Wrapper::Listener(State::Static) => &[("listener", "listener")],
        Wrapper::Listener(State::Warming) => {
            &[("warming_state", "warmingState"), ("listener", "listener")]
        }
        Wrapper::Listener(State::Draining) => &[
            ("draining_state", "drainingState"),
            ("listener", "listener"),
        ],
        Wrapper::Listener(State::Active) => {
            &[("active_state", "activeState"), ("listener", "listener")]
        }
        Wrapper::RouteConfig => &[("route_config", "routeConfig")],
        Wrapper::EndpointConfig => &[("endpoint_config", "endpointConfig")],
        Wrapper::Secret => &[("secret", "secret")],
    };
    let text = std::str::from_utf8(entry).map_err(|e| format!("entry is not UTF-8: {e}"))?;
    let mut current: &str = text;
    for (i, (snake, camel)) in keys.iter().enumerate() {
        let members: HashMap<String, &RawValue> =
            serde_json::from_str(current).map_err(|e| format!("re-reading an entry: {e}"))?;
        match field(&members, snake, camel) {
            Some(v) => current = v.get(),
            // A bare resource (an array element of `istioctl … -o json`) has no wrapper.
            None if i == 0 => return Ok(entry),
            None => return Err(format!("entry has no `{snake}`")),
        }
    }
    let start = current.as_ptr() as usize - text.as_ptr() as usize;
    Ok(&entry[start..start + current.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_come_out_of_their_entries_byte_for_byte() {
        let entry = br#"{ "version_info": "1",
  "cluster": {"@type": "t",  "name":"a"} , "last_updated": "x"}"#;
        assert_eq!(
            resource(entry, Wrapper::Cluster).unwrap(),
            br#"{"@type": "t",  "name":"a"}"#
        );
        let bare = br#"{"name": "a", "type": "EDS"}"#;
        assert_eq!(resource(bare, Wrapper::Cluster).unwrap(), bare);
        let listener = br#"{"name":"l","activeState":{"listener":{"name":"l"}},"draining_state":{"listener":{"name":"old"}}}"#;
        assert_eq!(
            resource(listener, Wrapper::Listener(State::Draining)).unwrap(),
            br#"{"name":"old"}"#
        );
    }
}
