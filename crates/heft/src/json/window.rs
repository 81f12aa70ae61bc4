//! The bytes the outer walk reads: a whole mapped file, or a stream read in chunks.
//!
//! For a stream, only the bytes from the oldest value still being captured onwards are kept;
//! everything before is dropped at the next refill, so memory stays bounded by the largest single
//! resource plus one chunk, whatever the size of the input.

use super::parser::Parser;
use super::scan::{Scan, Step};
use crate::error::{describe, Error, ErrorKind, Result};
use memchr::memchr2;
use std::io::Read;

const CHUNK: usize = 1 << 20;

enum Buf<'a> {
    Borrowed(&'a [u8]),
    Owned {
        /// Allocated (and zeroed) once per growth; only `..filled` holds input.
        data: Vec<u8>,
        filled: usize,
        reader: Box<dyn Read + 'a>,
        eof: bool,
    },
}

pub(crate) struct Window<'a> {
    buf: Buf<'a>,
    /// Input offset of the buffer's first byte.
    start: u64,
    pos: usize,
    /// The first byte still needed by a capture in progress.
    keep: Option<usize>,
}

impl<'a> Window<'a> {
    pub(crate) fn borrowed(bytes: &'a [u8]) -> Window<'a> {
        Window {
            buf: Buf::Borrowed(bytes),
            start: 0,
            pos: 0,
            keep: None,
        }
    }

    pub(crate) fn reader(reader: Box<dyn Read + 'a>) -> Window<'a> {
        Window {
            buf: Buf::Owned {
                data: Vec::new(),
                filled: 0,
                reader,
                eof: false,
            },
            start: 0,
            pos: 0,
            keep: None,
        }
    }

    /// The whole input, when it is held in memory (a mapped file or a slice).
    pub(crate) fn whole(&self) -> Option<&'a [u8]> {
        match self.buf {
            Buf::Borrowed(b) => Some(b),
            Buf::Owned { .. } => None,
        }
    }

    pub(crate) fn data(&self) -> &[u8] {
        match &self.buf {
            Buf::Borrowed(b) => b,
            Buf::Owned { data, filled, .. } => &data[..*filled],
        }
    }

    /// Input offset of the next unread byte.
    pub(crate) fn offset(&self) -> u64 {
        self.start + self.pos as u64
    }

    /// Input offset of buffer position `i`.
    pub(crate) fn offset_of(&self, i: usize) -> u64 {
        self.start + i as u64
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Reads more input; false at the end. Positions before `keep` (or `pos`) may move.
    fn fill(&mut self) -> Result<bool> {
        let Buf::Owned {
            data,
            filled,
            reader,
            eof,
        } = &mut self.buf
        else {
            return Ok(false);
        };
        if *eof {
            return Ok(false);
        }
        let drop = self.keep.unwrap_or(self.pos).min(self.pos);
        if drop > 0 {
            data.copy_within(drop..*filled, 0);
            *filled -= drop;
            self.start += drop as u64;
            self.pos -= drop;
            if let Some(k) = &mut self.keep {
                *k -= drop;
            }
        }
        if *filled == data.len() {
            // Grows only while one value being captured is larger than the buffer.
            let grow = data.len().max(CHUNK);
            data.resize(data.len() + grow, 0);
        }
        loop {
            match reader.read(&mut data[*filled..]) {
                Ok(n) => {
                    *filled += n;
                    if n == 0 {
                        *eof = true;
                    }
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let at = self.start + *filled as u64;
                    return Err(Error::io(&format!("reading input at byte {at}"), e));
                }
            }
        }
    }

    /// The next significant byte (whitespace skipped), or `None` at the end of input.
    pub(crate) fn peek(&mut self) -> Result<Option<u8>> {
        loop {
            let data = self.data();
            let mut i = self.pos;
            while let Some(&b) = data.get(i) {
                if matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                    i += 1;
                } else {
                    self.pos = i;
                    return Ok(Some(b));
                }
            }
            self.pos = i;
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// The next significant byte; the end of input is an error.
    pub(crate) fn next_byte(&mut self, context: &str) -> Result<u8> {
        match self.peek()? {
            Some(b) => Ok(b),
            None => Err(Error::at(
                ErrorKind::Syntax,
                self.offset(),
                format!("unexpected end of input {context}"),
            )),
        }
    }

    /// Moves to an input offset inside the held bytes.
    pub(crate) fn seek(&mut self, offset: u64) {
        self.pos = (offset - self.start) as usize;
    }

    pub(crate) fn bump(&mut self) {
        self.pos += 1;
    }

    pub(crate) fn expect(&mut self, want: u8, what: &str) -> Result<()> {
        let b = self.next_byte(&format!("where {what} was expected"))?;
        if b != want {
            return Err(Error::at(
                ErrorKind::Syntax,
                self.offset(),
                format!("expected {what}, found {}", describe(b)),
            ));
        }
        self.pos += 1;
        Ok(())
    }

    /// Reads a JSON string (an object key or a short value) as an owned string.
    pub(crate) fn string(&mut self) -> Result<String> {
        let b = self.next_byte("where a string was expected")?;
        if b != b'"' {
            return Err(Error::at(
                ErrorKind::Syntax,
                self.offset(),
                format!("expected a string, found {}", describe(b)),
            ));
        }
        let start = self.offset();
        let mut at = start + 1;
        let end = loop {
            let data = self.data();
            let i = (at - self.start) as usize;
            match memchr2(b'"', b'\\', &data[i.min(data.len())..]) {
                Some(j) if data[i + j] == b'"' => break at + j as u64 + 1,
                Some(j) if i + j + 1 < data.len() => at += j as u64 + 2,
                _ => {
                    // `pos` still points at the opening quote, so a refill keeps the string.
                    if !self.fill()? {
                        return Err(Error::at(
                            ErrorKind::Syntax,
                            self.offset_of(self.data().len()),
                            "unexpected end of input inside a string",
                        ));
                    }
                }
            }
        };
        let text = Parser::new(self.slice(start, end), start)
            .str()?
            .into_owned();
        self.pos = (end - self.start) as usize;
        Ok(text)
    }

    /// Skips one value and returns its input offsets `(start, end)`. With `capture`, its bytes
    /// stay readable through [`Window::slice`] until [`Window::release`]; the caller validates
    /// them. Without, the bytes are checked to be UTF-8 here, as they go by.
    pub(crate) fn value(&mut self, capture: bool) -> Result<(u64, u64)> {
        self.next_byte("where a value was expected")?;
        let start = self.offset();
        if capture {
            self.keep = Some(self.pos);
            // A captured value held whole is found 64 bytes at a time (its decoder checks the
            // rest); anything else (more input needed, escapes, errors) goes the exact way.
            if let Some(end) = super::scan::skip_container(self.data(), self.pos) {
                self.pos = end;
                return Ok((start, self.offset()));
            }
        }
        let mut scan = Scan::default();
        let mut from = self.pos;
        let mut checked = start;
        loop {
            match scan.run(self.data(), from, self.start)? {
                Step::Done(end) => {
                    self.pos = end;
                    let end = self.offset();
                    if !capture {
                        self.check_utf8(checked, end, true)?;
                    }
                    return Ok((start, end));
                }
                Step::More => {
                    let scanned = self.offset_of(self.data().len());
                    if !capture {
                        // Everything scanned and checked so far may be dropped.
                        checked = self.check_utf8(checked, scanned, false)?;
                        self.pos = (checked - self.start) as usize;
                    }
                    if !self.fill()? {
                        return Err(Error::at(
                            ErrorKind::Syntax,
                            scanned,
                            "unexpected end of input inside a value",
                        ));
                    }
                    from = (scanned - self.start) as usize;
                }
            }
        }
    }

    /// Checks that the held bytes `start..end` are UTF-8; returns how far they are known good.
    /// Unless `complete`, a character cut off at `end` is left for the next call.
    fn check_utf8(&self, start: u64, end: u64, complete: bool) -> Result<u64> {
        match std::str::from_utf8(self.slice(start, end)) {
            Ok(_) => Ok(end),
            Err(e) if !complete && e.error_len().is_none() => Ok(start + e.valid_up_to() as u64),
            Err(e) => Err(Error::at(
                ErrorKind::Utf8,
                start + e.valid_up_to() as u64,
                "invalid UTF-8",
            )),
        }
    }

    /// Reads until at least `n` bytes from the current position are held, or the input ends;
    /// returns the bytes held from the current position.
    pub(crate) fn lookahead(&mut self, n: usize) -> Result<&[u8]> {
        while self.data().len() - self.pos < n {
            if !self.fill()? {
                break;
            }
        }
        Ok(&self.data()[self.pos..])
    }

    /// The bytes between two input offsets, which must still be held.
    pub(crate) fn slice(&self, start: u64, end: u64) -> &[u8] {
        &self.data()[(start - self.start) as usize..(end - self.start) as usize]
    }

    /// Hands over the buffer holding the value just captured at input offsets `start..end`
    /// (the last thing read), rather than have the caller copy it: returns the buffer, cut at
    /// the value's end, and where the value starts in it. The window goes on with a fresh buffer
    /// holding only what it had read past the value. `None` for a borrowed input.
    pub(crate) fn take(&mut self, start: u64, end: u64) -> Option<(Vec<u8>, usize)> {
        let Buf::Owned { data, filled, .. } = &mut self.buf else {
            return None;
        };
        if end != self.start + self.pos as u64 || start < self.start || start > end {
            return None;
        }
        let at = (start - self.start) as usize;
        let ahead = *filled - self.pos;
        let mut fresh = vec![0; CHUNK.max(ahead)];
        fresh[..ahead].copy_from_slice(&data[self.pos..*filled]);
        let mut held = std::mem::replace(data, fresh);
        held.truncate(self.pos);
        *filled = ahead;
        self.start = end;
        self.pos = 0;
        self.keep = None;
        Some((held, at))
    }

    /// Ends a capture: its bytes may now be dropped.
    pub(crate) fn release(&mut self) {
        self.keep = None;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A reader that hands out a few bytes at a time, to force refills everywhere.
    pub(crate) struct Dribble<'a>(pub(crate) &'a [u8], pub(crate) usize);
    impl Read for Dribble<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(self.0.len()).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn streams_values_and_strings_across_refills() {
        let text = br#" { "k\"ey" : [ {"a": "}"}, 12 ], "z": "end" } "#;
        for step in [1, 2, 3, 7, 1000] {
            let mut w = Window::reader(Box::new(Dribble(text, step)));
            w.expect(b'{', "{").unwrap();
            assert_eq!(w.string().unwrap(), "k\"ey");
            w.expect(b':', ":").unwrap();
            let (s, e) = w.value(true).unwrap();
            assert_eq!(w.slice(s, e), br#"[ {"a": "}"}, 12 ]"#);
            assert_eq!(s, 13);
            w.release();
            w.expect(b',', ",").unwrap();
            assert_eq!(w.string().unwrap(), "z");
            w.expect(b':', ":").unwrap();
            w.value(false).unwrap();
            w.expect(b'}', "}").unwrap();
            assert_eq!(w.peek().unwrap(), None);
        }
    }
}
