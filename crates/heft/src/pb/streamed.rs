//! Reads a binary `ConfigDump` from a stream (a pipe, a decompressor) entry by entry: the walk of
//! `read.rs`, done as the bytes arrive. Each batch holds copies of its entries, and the batches in
//! flight are bounded ([`InFlight`]), so the read holds a few MB of the input at a time instead of
//! all of it. Nothing is allocated from a length read in the input: values are copied as they
//! arrive.
//!
//! It reports what reading the same bytes whole reports (`tests/protobuf.rs` holds it to that on
//! every truncation and byte corruption of a dump): it checks the same framing, in the same order,
//! with the same faults. The one check it cannot make first is the whole-input walk's first one
//! for each `configs` element, that its length fits in the input; it makes it when a field inside
//! the element fails or the input ends, and reports that fault instead, as the whole-input walk
//! would. An element laid out otherwise than Envoy lays it out (its type URL, then its payload,
//! which ends it) is read whole and walked by `read.rs`'s own code.
//!
//! Under `keep_going` it reads more than the whole-input walk: where the input ends inside a
//! section, it keeps the entries before the end, where the whole-input walk skips the section.
//! So that a file and a pipe of the same bytes give the same dump, a whole input whose walk fails
//! under `keep_going` is read again by this walk (`read::fold`).

use super::read::{
    bootstrap_last_updated, entry_path, open_section, run_batch, section, JobPath, Kind, Skeleton,
    Take, BATCH_BYTES, BATCH_JOBS,
};
use super::wire::{self, Fault, Header, LEN};
use crate::error::{Error, Result};
use crate::model::{DocumentKind, Span};
use crate::read::ReadOptions;
use crate::stream::{settle, Fold, InFlight, Ordered, Outline};
use std::io::Read;

/// Bytes asked of the reader at a time (a piped stdin has a 1 MiB buffer).
const READ: usize = 1 << 20;

/// A field header is at most this long: a 10-byte tag and a 10-byte length.
const HEADER: usize = 20;

/// An entry this large (a route configuration of tens of MB) is a batch of its own.
const BIG_ENTRY: u64 = 4 << 20;

/// A type URL longer than this is no type URL: the element is read whole.
const TYPE_URL: u64 = 4096;

/// The stream, through a buffer, with each byte's input offset.
struct Input<'r> {
    reader: Box<dyn Read + 'r>,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    /// Input offset of `buf[0]`.
    base: u64,
    /// Input offset of the first byte that must stay buffered (while a `configs` element's
    /// layout is being recognised).
    keep: Option<u64>,
    eof: bool,
}

impl<'r> Input<'r> {
    fn new(head: Vec<u8>, reader: Box<dyn Read + 'r>) -> Input<'r> {
        let mut buf = vec![0; READ.max(head.len())].into_boxed_slice();
        buf[..head.len()].copy_from_slice(&head);
        Input {
            reader,
            buf,
            pos: 0,
            end: head.len(),
            base: 0,
            keep: None,
            eof: false,
        }
    }

    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    /// Reads until `want` bytes are buffered past the position, or the input ends. The bytes kept
    /// and wanted are at most a type URL and two headers, far less than the buffer.
    fn fill(&mut self, want: usize) -> Result<()> {
        if self.end - self.pos >= want || self.eof {
            return Ok(());
        }
        let from = self.keep.map_or(self.pos, |k| {
            (k.saturating_sub(self.base) as usize).min(self.pos)
        });
        if from > 0 {
            self.buf.copy_within(from..self.end, 0);
            self.base += from as u64;
            self.pos -= from;
            self.end -= from;
        }
        while self.end - self.pos < want && !self.eof {
            debug_assert!(
                self.end < self.buf.len(),
                "a full buffer would read as the end"
            );
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("reading input", e)),
            }
        }
        Ok(())
    }

    /// The next field's header, in a message with `left` bytes left (`None`: the top level,
    /// which ends with the input); `None` where the message or the input has ended.
    fn header(&mut self, left: Option<u64>) -> Result<Option<std::result::Result<Header, Fault>>> {
        self.fill(HEADER)?;
        let have = self.buffered().len();
        let cut = left.map_or(have, |l| have.min(usize::try_from(l).unwrap_or(usize::MAX)));
        if cut == 0 {
            return Ok(None);
        }
        let at = self.offset();
        let h = wire::header(&self.buffered()[..cut], at, left.unwrap_or(u64::MAX));
        if let Ok(h) = &h {
            self.pos += h.size;
        }
        Ok(Some(h))
    }

    /// Passes over the next `n` bytes, appending them to `out` if given; false if the input ends
    /// first.
    fn take(&mut self, mut n: u64, mut out: Option<&mut Vec<u8>>) -> Result<bool> {
        while n > 0 {
            self.fill(1)?;
            let have = self.buffered().len();
            if have == 0 {
                return Ok(false);
            }
            let k = have.min(usize::try_from(n).unwrap_or(usize::MAX));
            if let Some(out) = out.as_deref_mut() {
                out.extend_from_slice(&self.buffered()[..k]);
            }
            self.pos += k;
            n -= k as u64;
        }
        Ok(true)
    }

    /// Passes over the input up to offset `to`; false if it ends first.
    fn skip_to(&mut self, to: u64) -> Result<bool> {
        let here = self.offset();
        self.take(to.saturating_sub(here), None)
    }

    /// Reads the input to its end; its length.
    fn total(&mut self) -> Result<u64> {
        while self.take(u64::MAX, None)? {}
        Ok(self.offset())
    }
}

/// Why the walk of a `configs` element stopped short.
enum Stop {
    /// A field inside it is malformed (or a decoded part of it, the bootstrap's timestamp).
    Failed(Error),
    /// The input ended inside it.
    Ended,
}

impl From<Error> for Stop {
    fn from(e: Error) -> Stop {
        Stop::Failed(e)
    }
}

/// A job of a batch, its bytes in the batch's copy of the input.
struct Spot {
    kind: Kind<'static>,
    start: usize,
    len: usize,
    at: u64,
    path: JobPath,
}

/// Hands over a batch (the copy of its jobs' input, and the jobs); `true` decodes it before
/// returning.
type Submit<'s> = dyn FnMut(Vec<u8>, Vec<Spot>, bool) + 's;

/// Where the walk puts what it finds: jobs copied into batches, each handed over as it fills.
struct Copies<'s> {
    skeleton: Skeleton,
    data: Vec<u8>,
    spots: Vec<Spot>,
    submit: &'s mut Submit<'s>,
    /// Whether a batch has failed: later jobs would not be decoded, so they are not copied.
    failed: &'s dyn Fn() -> bool,
}

impl Copies<'_> {
    fn flush(&mut self) {
        if !self.spots.is_empty() {
            let data = std::mem::take(&mut self.data);
            let spots = std::mem::take(&mut self.spots);
            (self.submit)(data, spots, false);
        }
    }

    fn full(&mut self) {
        if self.data.len() >= BATCH_BYTES || self.spots.len() >= BATCH_JOBS {
            self.flush();
        }
    }

    /// Hands over one job as a batch of its own; the bootstrap is decoded at once, so that folds
    /// know it before any later batch starts.
    fn alone(&mut self, kind: Kind<'static>, data: Vec<u8>, at: u64, path: JobPath) {
        self.flush();
        let len = data.len();
        let now = matches!(kind, Kind::Bootstrap);
        let spot = Spot {
            kind,
            start: 0,
            len,
            at,
            path,
        };
        (self.submit)(data, vec![spot], now);
    }

    /// Reads the next `len` bytes of the input as a job.
    fn read(
        &mut self,
        input: &mut Input,
        kind: Kind<'static>,
        len: u64,
        path: JobPath,
    ) -> std::result::Result<(), Stop> {
        let at = input.offset();
        let whole = if (self.failed)() {
            input.take(len, None)?
        } else if matches!(kind, Kind::Bootstrap) || len >= BIG_ENTRY {
            let mut data = Vec::new();
            let whole = input.take(len, Some(&mut data))?;
            if whole {
                self.alone(kind, data, at, path);
            }
            whole
        } else {
            let start = self.data.len();
            let whole = input.take(len, Some(&mut self.data))?;
            if whole {
                self.spots.push(Spot {
                    kind,
                    start,
                    len: len as usize,
                    at,
                    path,
                });
                self.full();
            } else {
                self.data.truncate(start);
            }
            whole
        };
        if whole {
            Ok(())
        } else {
            Err(Stop::Ended)
        }
    }
}

impl<'b> Take<'b> for Copies<'_> {
    fn skeleton(&mut self) -> &mut Skeleton {
        &mut self.skeleton
    }

    fn push(&mut self, kind: Kind<'static>, bytes: &'b [u8], at: u64, path: JobPath) {
        if (self.failed)() {
            return;
        }
        if matches!(kind, Kind::Bootstrap) || bytes.len() as u64 >= BIG_ENTRY {
            return self.alone(kind, bytes.to_vec(), at, path);
        }
        self.spots.push(Spot {
            kind,
            start: self.data.len(),
            len: bytes.len(),
            at,
            path,
        });
        self.data.extend_from_slice(bytes);
        self.full();
    }
}

fn in_configs(e: Error, index: u64) -> Error {
    e.in_index(index).in_key("configs")
}

/// Reads a binary `ConfigDump` from a stream whose first bytes, already read, are `head`.
pub(crate) fn fold<F: Fold>(
    head: Vec<u8>,
    reader: Box<dyn Read + '_>,
    compression: &'static str,
    opts: &ReadOptions,
    fold: &F,
) -> Result<(Outline, F::Acc)> {
    let detail = fold.detail();
    let keep_going = opts.keep_going;
    let ordered = Ordered::new(fold, None);
    let in_flight = InFlight::default();
    // On a rayon thread already, batches are decoded where they are cut: waiting for room
    // could wait for this very thread.
    let inline = rayon::current_thread_index().is_some();
    let mut input = Input::new(head, reader);
    let (walked, skeleton) = rayon::in_place_scope(|scope| {
        let ordered = &ordered;
        let in_flight = &in_flight;
        let mut submit = |data: Vec<u8>, spots: Vec<Spot>, now: bool| {
            let slot = ordered.slot();
            let bytes = data.len() as u64;
            let run = move |fold: &F| {
                let jobs: Vec<_> = spots
                    .iter()
                    .map(|s| super::read::Job {
                        kind: s.kind,
                        bytes: &data[s.start..s.start + s.len],
                        at: s.at,
                        path: s.path,
                    })
                    .collect();
                run_batch(&jobs, detail, keep_going, fold)
            };
            if inline || now {
                return ordered.run(slot, run);
            }
            let room = in_flight.enter(bytes);
            scope.spawn(move |_| {
                // Gives the room back however the batch ends (see `json/walk.rs`).
                let _room = room;
                ordered.run(slot, run);
            });
        };
        let failed = || ordered.any_failed();
        let mut sink = Copies {
            skeleton: Skeleton::default(),
            data: Vec::new(),
            spots: Vec::new(),
            submit: &mut submit,
            failed: &failed,
        };
        let walked = config_dump(&mut input, &mut sink);
        sink.flush();
        (walked, sink.skeleton)
    });
    let (acc, mut skipped, error) = ordered.finish();
    settle(walked, error, keep_going, &mut skipped)?;
    let total = input.total()?;
    Ok((
        skeleton.outline(DocumentKind::ConfigDump, compression, total, skipped),
        acc,
    ))
}

/// `ConfigDump`: `repeated Any configs = 1`, as `read::config_dump` walks it.
fn config_dump(input: &mut Input, sink: &mut Copies) -> Result<()> {
    let mut index = 0;
    while let Some(h) = input.header(None)? {
        // A `configs` element whose length or wire type is wrong is where the path ends.
        let h = h.map_err(|fault| match fault.field() {
            Some(1) => in_configs(fault.into(), index),
            _ => fault.into(),
        })?;
        let start = input.offset();
        if h.number != 1 {
            if h.wire == LEN && !input.take(h.value, None)? {
                return Err(past_end(input, &h, start)?);
            }
            continue;
        }
        let len = h.len().map_err(|fault| in_configs(fault.into(), index))?;
        match element(input, sink, index, start, len) {
            Ok(()) => {}
            Err(Stop::Ended) => return Err(in_configs(past_end(input, &h, start)?, index)),
            Err(Stop::Failed(e)) => {
                // Reading the input whole, this element's length is checked before its fields.
                if input.skip_to(start + len)? {
                    return Err(e);
                }
                return Err(in_configs(past_end(input, &h, start)?, index));
            }
        }
        index += 1;
    }
    Ok(())
}

/// The fault of a top-level field whose value, starting at `start`, runs past the input's end.
fn past_end(input: &mut Input, h: &Header, start: u64) -> Result<Error> {
    let total = input.total()?;
    Ok(h.past_end(total.saturating_sub(start)).into())
}

/// One element of `configs` (an `Any` of `len` bytes from `start`): streamed when laid out as
/// Envoy lays it out, else read whole and walked as `read::section` walks it.
fn element(
    input: &mut Input,
    sink: &mut Copies,
    index: u64,
    start: u64,
    len: u64,
) -> std::result::Result<(), Stop> {
    input.keep = Some(start);
    let layout = envoy_layout(input, index, start, len);
    input.keep = None;
    let Some((type_url, value_len)) = layout? else {
        let mut whole = input.buf[(start - input.base) as usize..input.pos].to_vec();
        let here = input.offset();
        if !input.take(start + len - here, Some(&mut whole))? {
            return Err(Stop::Ended);
        }
        return section(&whole, start, index, sink).map_err(|e| Stop::Failed(in_configs(e, index)));
    };
    let span = Span { offset: start, len };
    let Some(fields) = open_section(&type_url, span, &mut sink.skeleton) else {
        return if input.take(value_len, None)? {
            Ok(())
        } else {
            Err(Stop::Ended)
        };
    };
    let failed = |fault: Fault| Stop::Failed(in_configs(fault.into(), index));
    let bootstrap = matches!(fields[0].2, Kind::Bootstrap);
    let mut counts = [0u64; 4];
    let mut left = value_len;
    while left > 0 {
        let Some(h) = input.header(Some(left))? else {
            return Err(Stop::Ended);
        };
        let h = h.map_err(failed)?;
        left -= h.size as u64;
        let value = if h.wire == LEN { h.value } else { 0 };
        left -= value;
        if bootstrap && h.number == 2 {
            h.len().map_err(failed)?;
            let at = input.offset();
            let mut b = Vec::new();
            if !input.take(value, Some(&mut b))? {
                return Err(Stop::Ended);
            }
            let t = bootstrap_last_updated(&b, at).map_err(|e| in_configs(e, index))?;
            sink.skeleton.bootstrap_last_updated = Some(t);
            continue;
        }
        let Some(slot) = fields.iter().position(|(n, ..)| *n == h.number) else {
            if !input.take(value, None)? {
                return Err(Stop::Ended);
            }
            continue;
        };
        let (key, kind) = (fields[slot].1, fields[slot].2);
        h.len()
            .map_err(|fault| Stop::Failed(in_configs(Error::from(fault).in_key(key), index)))?;
        let path = entry_path(index, key, bootstrap, &mut counts[slot]);
        sink.read(input, kind, value, path)?;
    }
    Ok(())
}

/// Reads an element's type URL and its payload's header if the element is laid out as Envoy
/// lays it out: the type URL, then the payload, which ends it. `None` otherwise, with what was
/// read of it still buffered (`input.keep`).
fn envoy_layout(
    input: &mut Input,
    index: u64,
    start: u64,
    len: u64,
) -> std::result::Result<Option<(String, u64)>, Stop> {
    let failed = |fault: Fault| Stop::Failed(in_configs(fault.into(), index));
    let Some(h) = input.header(Some(len))? else {
        return Ok(None);
    };
    let h = h.map_err(failed)?;
    if h.number != 1 || h.wire != LEN || h.value > TYPE_URL {
        return Ok(None);
    }
    let url_len = h.value as usize;
    input.fill(url_len + HEADER)?;
    if input.buffered().len() < url_len {
        return Err(Stop::Ended);
    }
    let at = input.offset();
    let type_url = wire::text(&input.buffered()[..url_len], at)
        .map_err(failed)?
        .to_string();
    input.pos += url_len;
    let left = start + len - input.offset();
    let Some(v) = input.header(Some(left))? else {
        return Ok(None);
    };
    let v = v.map_err(failed)?;
    if v.number != 2 || v.wire != LEN || input.offset() + v.value != start + len {
        return Ok(None);
    }
    Ok(Some((type_url, v.value)))
}
