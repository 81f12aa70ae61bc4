//! The YAML parser reads characters; these are the two sources it reads them from, and how each
//! turns the parser's character positions back into byte offsets.
//!
//! A mapped file (or a slice) is checked as UTF-8 once and handed over as a `&str`. A stream is
//! decoded as it arrives, in 64 KiB reads. Either way, invalid UTF-8 (or a failed read) ends the
//! characters there and is recorded, with its line and column, for the translator to report
//! unless the YAML before it is already broken.

use super::positions::Place;
use crate::error::{Error, ErrorKind};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::Read;
use std::rc::Rc;

/// What the translator asks of its source besides the characters.
pub(crate) trait Source {
    /// The first error met so far (invalid UTF-8, a failed read), if any.
    fn error(&self) -> Option<Error>;
    /// The byte offset of a character position. Positions asked for never decrease, and no
    /// position before the last one passed to [`Source::forget_before`] is asked for.
    fn byte_of(&mut self, char_index: u64) -> u64;
    /// Positions before `char_index` will not be asked for again.
    fn forget_before(&mut self, char_index: u64);
    /// The input's size in bytes, once it has all been read.
    fn bytes(&self) -> u64;
}

/// Where the first invalid byte of `text` is, as an error with its line and column.
fn utf8_error(text: &[u8], valid_up_to: usize) -> Error {
    let good = &text[..valid_up_to];
    let line = 1 + memchr::memchr_iter(b'\n', good).count() as u64;
    let line_start = memchr::memrchr(b'\n', good).map_or(0, |i| i + 1);
    // Only complete characters precede the bad byte: counting non-continuation bytes counts them.
    let column = 1 + good[line_start..]
        .iter()
        .filter(|&&b| b & 0xC0 != 0x80)
        .count() as u64;
    let byte = text[valid_up_to];
    super::at(
        Error::new(
            ErrorKind::Utf8,
            format!("invalid UTF-8 (byte 0x{byte:02x} at byte {valid_up_to})"),
        ),
        Place { line, column },
    )
}

/// A whole input held in memory, checked as UTF-8: the parser reads the valid part, and the first
/// invalid byte, if any, is reported as where that part ends.
pub(crate) struct Whole<'a> {
    text: &'a str,
    error: Option<Error>,
    ascii: bool,
    /// A known (character, byte) pair to count on from.
    cursor: (u64, usize),
}

impl<'a> Whole<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Whole<'a> {
        let (text, error) = match std::str::from_utf8(bytes) {
            Ok(text) => (text, None),
            Err(e) => {
                let valid = &bytes[..e.valid_up_to()];
                // The prefix up to the first invalid byte is UTF-8 by definition.
                let text = std::str::from_utf8(valid).unwrap_or_default();
                (text, Some(utf8_error(bytes, e.valid_up_to())))
            }
        };
        Whole {
            text,
            error,
            ascii: text.is_ascii(),
            cursor: (0, 0),
        }
    }

    pub(crate) fn text(&self) -> &'a str {
        self.text
    }
}

impl Source for Whole<'_> {
    fn error(&self) -> Option<Error> {
        self.error.clone()
    }

    fn byte_of(&mut self, char_index: u64) -> u64 {
        if self.ascii {
            return char_index;
        }
        let (mut c, mut b) = self.cursor;
        let bytes = self.text.as_bytes();
        while c < char_index && b < bytes.len() {
            b += 1;
            while b < bytes.len() && bytes[b] & 0xC0 == 0x80 {
                b += 1;
            }
            c += 1;
        }
        self.cursor = (c, b);
        b as u64
    }

    fn forget_before(&mut self, _char_index: u64) {}

    fn bytes(&self) -> u64 {
        self.text.len() as u64
    }
}

/// What a stream's character iterator shares with the translator.
#[derive(Default)]
pub(crate) struct Shared {
    error: Option<Error>,
    bytes: u64,
    /// Extra bytes (beyond one) of every character before `wide`'s first entry.
    extra: u64,
    /// Characters wider than one byte not yet forgotten: (character index, extra bytes).
    wide: VecDeque<(u64, u8)>,
}

impl Source for Rc<RefCell<Shared>> {
    fn error(&self) -> Option<Error> {
        self.borrow().error.clone()
    }

    fn byte_of(&mut self, char_index: u64) -> u64 {
        self.forget_before(char_index);
        char_index + self.borrow().extra
    }

    fn forget_before(&mut self, char_index: u64) {
        let mut s = self.borrow_mut();
        while let Some(&(c, extra)) = s.wide.front() {
            if c >= char_index {
                break;
            }
            s.extra += u64::from(extra);
            s.wide.pop_front();
        }
    }

    fn bytes(&self) -> u64 {
        self.borrow().bytes
    }
}

const READ_SIZE: usize = 64 << 10;

/// Decodes a byte stream into characters for the parser.
pub(crate) struct Chars<R> {
    reader: R,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    eof: bool,
    done: bool,
    /// Bytes consumed before `buf[0]`.
    consumed: u64,
    chars: u64,
    place: Place,
    shared: Rc<RefCell<Shared>>,
}

impl<R: Read> Chars<R> {
    pub(crate) fn new(reader: R) -> (Chars<R>, Rc<RefCell<Shared>>) {
        let shared = Rc::new(RefCell::new(Shared::default()));
        let chars = Chars {
            reader,
            buf: vec![0; READ_SIZE],
            pos: 0,
            len: 0,
            eof: false,
            done: false,
            consumed: 0,
            chars: 0,
            place: Place { line: 1, column: 1 },
            shared: shared.clone(),
        };
        (chars, shared)
    }

    /// Makes at least `n` bytes available at `pos` unless the input ends first.
    fn fill(&mut self, n: usize) -> std::result::Result<(), Error> {
        while self.len - self.pos < n && !self.eof {
            if self.pos > 0 {
                self.buf.copy_within(self.pos..self.len, 0);
                self.consumed += self.pos as u64;
                self.len -= self.pos;
                self.pos = 0;
            }
            match self.reader.read(&mut self.buf[self.len..]) {
                Ok(0) => self.eof = true,
                Ok(k) => self.len += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let at = self.consumed + self.len as u64;
                    return Err(Error::io(&format!("reading input at byte {at}"), e));
                }
            }
        }
        Ok(())
    }

    fn fail(&mut self, e: Error) -> Option<char> {
        self.done = true;
        self.shared.borrow_mut().error = Some(e);
        None
    }

    fn advance(&mut self, c: char, width: usize) -> Option<char> {
        self.pos += width;
        if width > 1 {
            self.shared
                .borrow_mut()
                .wide
                .push_back((self.chars, width as u8 - 1));
        }
        self.chars += 1;
        if c == '\n' {
            self.place = Place {
                line: self.place.line + 1,
                column: 1,
            };
        } else {
            self.place.column += 1;
        }
        Some(c)
    }
}

impl<R: Read> Iterator for Chars<R> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        if self.done {
            return None;
        }
        if self.pos == self.len {
            if let Err(e) = self.fill(1) {
                return self.fail(e);
            }
            if self.pos == self.len {
                self.done = true;
                self.shared.borrow_mut().bytes = self.consumed + self.len as u64;
                return None;
            }
        }
        let lead = self.buf[self.pos];
        if lead < 0x80 {
            return self.advance(char::from(lead), 1);
        }
        let width = match lead {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => 0,
        };
        if width > 0 {
            if let Err(e) = self.fill(width) {
                return self.fail(e);
            }
            let end = (self.pos + width).min(self.len);
            if let Ok(s) = std::str::from_utf8(&self.buf[self.pos..end]) {
                if let Some(c) = s.chars().next() {
                    return self.advance(c, width);
                }
            }
        }
        let at = self.consumed + self.pos as u64;
        let e = Error::new(
            ErrorKind::Utf8,
            format!("invalid UTF-8 (byte 0x{lead:02x} at byte {at})"),
        );
        let place = self.place;
        self.fail(super::at(e, place))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_decodes_across_reads_and_maps_characters_to_bytes() {
        let text = "a: é€😀\nb: x\n".repeat(20_000);
        let (chars, mut shared) = Chars::new(text.as_bytes());
        let decoded: String = chars.collect();
        assert_eq!(decoded, text);
        assert!(shared.error().is_none());
        assert_eq!(shared.bytes(), text.len() as u64);
        // The second line of the tenth repetition: characters and bytes counted independently.
        let line = "a: é€😀\nb: x\n";
        let chars_before = 9 * line.chars().count() as u64 + 7;
        let bytes_before = 9 * line.len() as u64 + "a: é€😀\n".len() as u64;
        assert_eq!(shared.byte_of(chars_before), bytes_before);
    }

    #[test]
    fn invalid_utf8_ends_the_stream_with_its_place() {
        let bytes = b"a: 1\nb: x\xff\n";
        let (chars, shared) = Chars::new(&bytes[..]);
        let decoded: String = chars.collect();
        assert_eq!(decoded, "a: 1\nb: x");
        let e = shared.error().unwrap();
        assert_eq!(e.kind(), ErrorKind::Utf8);
        assert_eq!(e.line_column(), Some((2, 5)));
        let whole = Whole::new(bytes);
        assert_eq!(whole.text(), "a: 1\nb: x");
        assert_eq!(whole.error().unwrap().line_column(), Some((2, 5)));
    }

    #[test]
    fn a_whole_input_maps_characters_to_bytes() {
        let text = "é: 1\nx: ü\n";
        let mut w = Whole::new(text.as_bytes());
        assert_eq!(w.byte_of(0), 0);
        assert_eq!(w.byte_of(3), 4);
        assert_eq!(w.byte_of(8), 9);
        assert_eq!(w.byte_of(10), 12);
    }
}
