//! A pull parser over one complete JSON value held in memory (one resource of a dump).
//!
//! Decoders drive it field by field: [`Parser::fields`] hands each member's key, normalised to the
//! proto field name (`lbEndpoints` → `lb_endpoints`), to a closure that reads the values it wants
//! and skips the rest. Strings are borrowed from the input unless they hold escapes. It accepts the
//! proto3 JSON liberties: `null` for a default, 64-bit integers as strings, enums as names or
//! numbers, durations as `"1.5s"`. Nesting is limited to [`MAX_DEPTH`], so no input can exhaust
//! the stack.

use super::scan::skip_value;
use crate::error::{describe, Error, ErrorKind, Result};
use crate::stream::Detail;
use memchr::memchr2;
use std::borrow::Cow;
use std::time::Duration;

/// Deepest nesting a decoder follows (the scanner allows more for values that are only skipped).
pub(crate) const MAX_DEPTH: u32 = 100;

pub(crate) struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
    base: u64,
    depth: u32,
    /// `buf` is known to be valid UTF-8, so strings need no check of their own.
    valid: bool,
    /// Decode only what [`Detail::Shape`] keeps.
    shape: bool,
}

/// How many of the 16 bytes at `buf[i..]` lead with JSON whitespace (16 if all do); `None` when
/// fewer than 16 bytes remain (or off x86_64).
#[inline]
fn ws_run(buf: &[u8], i: usize) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if i + 16 <= buf.len() {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of the x86_64 baseline; the load reads `buf[i..i + 16]`.
        let mask = unsafe {
            let v = _mm_loadu_si128(buf.as_ptr().add(i) as *const __m128i);
            let is = |c: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8));
            let ws = _mm_or_si128(
                _mm_or_si128(is(b' '), is(b'\n')),
                _mm_or_si128(is(b'\r'), is(b'\t')),
            );
            _mm_movemask_epi8(ws) as u32
        };
        return Some((!mask).trailing_zeros().min(16) as usize);
    }
    let _ = (buf, i);
    None
}

/// Pieces of an array [`Parser::par_list`] decodes in parallel hold about this many bytes.
const PAR_PIECE: usize = if cfg!(test) { 64 } else { 1 << 20 };

/// `buf` as text, checked as [`check_utf8`] does; `Err` gives how many bytes are valid.
#[inline]
pub(crate) fn as_text(buf: &[u8]) -> std::result::Result<&str, usize> {
    check_utf8(buf)?;
    // SAFETY: `check_utf8` has just checked the whole of `buf`.
    Ok(unsafe { std::str::from_utf8_unchecked(buf) })
}

/// Checks that `buf` is UTF-8; `Err` gives how many bytes are valid. Pure ASCII (what dumps
/// are) is checked 32 bytes at a time, then 8 and 1 (short strings are most of the binary
/// reader's calls); from the first other byte on, the standard library checks.
#[inline]
pub(crate) fn check_utf8(buf: &[u8]) -> std::result::Result<(), usize> {
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let word = |b: &[u8]| {
        let mut w = [0u8; 8];
        w.copy_from_slice(b);
        u64::from_ne_bytes(w)
    };
    let mut i = 0;
    while let Some(block) = buf.get(i..i + 32) {
        if (word(&block[..8]) | word(&block[8..16]) | word(&block[16..24]) | word(&block[24..]))
            & HIGH
            != 0
        {
            break;
        }
        i += 32;
    }
    while let Some(block) = buf.get(i..i + 8) {
        if word(block) & HIGH != 0 {
            break;
        }
        i += 8;
    }
    while buf.get(i).is_some_and(u8::is_ascii) {
        i += 1;
    }
    if i == buf.len() {
        return Ok(());
    }
    // Every byte before `i` is ASCII, so `i` is a character boundary.
    std::str::from_utf8(&buf[i..])
        .map(drop)
        .map_err(|e| i + e.valid_up_to())
}

/// Whether `s` holds an ASCII capital letter, 8 bytes at a time.
fn has_upper(s: &[u8]) -> bool {
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // For a byte below 0x80: + 0x3F sets its high bit from `A` up, + 0x25 from past `Z` up.
    let upper = |v: u64| {
        v.wrapping_add(u64::from_ne_bytes([0x3F; 8]))
            & !v.wrapping_add(u64::from_ne_bytes([0x25; 8]))
            & !v
            & HIGH
    };
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        if upper(u64::from_ne_bytes(w)) != 0 {
            return true;
        }
    }
    chunks.remainder().iter().any(u8::is_ascii_uppercase)
}

/// Where the string whose contents start `s` ends: the first `"` or `\\`, 16 bytes at a time.
#[cfg(target_arch = "x86_64")]
#[inline]
fn string_stop(s: &[u8]) -> Option<usize> {
    use std::arch::x86_64::*;
    let mut i = 0;
    while i + 16 <= s.len() {
        // SAFETY: SSE2 is part of the x86_64 baseline; the load reads `s[i..i + 16]`.
        let mask = unsafe {
            let v = _mm_loadu_si128(s.as_ptr().add(i) as *const __m128i);
            let q = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
            let b = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            _mm_movemask_epi8(_mm_or_si128(q, b))
        };
        if mask != 0 {
            return Some(i + mask.trailing_zeros() as usize);
        }
        i += 16;
    }
    swar_string_stop(&s[i..]).map(|j| i + j)
}

#[cfg(not(target_arch = "x86_64"))]
fn string_stop(s: &[u8]) -> Option<usize> {
    swar_string_stop(s)
}

/// [`string_stop`] 8 bytes at a time.
fn swar_string_stop(s: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    const QUOTES: u64 = u64::from_ne_bytes([b'"'; 8]);
    const SLASHES: u64 = u64::from_ne_bytes([b'\\'; 8]);
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let mut i = 0;
    while let Some(chunk) = s.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let v = u64::from_le_bytes(w);
        let hit = has_zero(v ^ QUOTES) | has_zero(v ^ SLASHES);
        if hit != 0 {
            // The lowest flagged byte is exact (false flags only follow a true one).
            return Some(i + (hit.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    s[i..]
        .iter()
        .position(|&b| b == b'"' || b == b'\\')
        .map(|j| i + j)
}

/// The proto3 JSON names that the camel-to-snake rule cannot turn back, because an underscore
/// before a digit vanishes (`consecutive_5xx` → `consecutive5xx`): every such field of the Envoy
/// API, as listed from xds-protos (`tests/oracle/istioctl_forms.py --camel-exceptions`).
const DIGIT_NAMES: [(&str, &str); 8] = [
    ("acceptHttp10", "accept_http_10"),
    ("consecutive5xx", "consecutive_5xx"),
    ("defaultHostForHttp10", "default_host_for_http_10"),
    ("enforcingConsecutive5xx", "enforcing_consecutive_5xx"),
    ("ignoreHttp11Upgrade", "ignore_http_11_upgrade"),
    ("normalizePathRfc3986", "normalize_path_rfc_3986"),
    ("proxy100Continue", "proxy_100_continue"),
    ("traceId128bit", "trace_id_128bit"),
];

/// Converts a lowerCamelCase proto3 JSON name to the proto field name; other keys pass unchanged.
pub(crate) fn field_name<'k>(key: &'k str, scratch: &'k mut [u8; 64]) -> &'k str {
    let bytes = key.as_bytes();
    if bytes.iter().any(u8::is_ascii_digit) {
        if let Some((_, name)) = DIGIT_NAMES.iter().find(|(json, _)| *json == key) {
            return name;
        }
    }
    if !bytes.iter().any(u8::is_ascii_uppercase) || key.starts_with('@') {
        return key;
    }
    let mut n = 0;
    for &b in bytes {
        let lower = b.to_ascii_lowercase();
        let need = if b.is_ascii_uppercase() { 2 } else { 1 };
        if n + need > scratch.len() {
            return key;
        }
        if b.is_ascii_uppercase() {
            scratch[n] = b'_';
            n += 1;
        }
        scratch[n] = lower;
        n += 1;
    }
    std::str::from_utf8(&scratch[..n]).unwrap_or(key)
}

impl<'a> Parser<'a> {
    /// A parser over `buf`, whose first byte sits at `base` in the input.
    pub(crate) fn new(buf: &'a [u8], base: u64) -> Parser<'a> {
        Parser {
            buf,
            pos: 0,
            base,
            depth: 0,
            valid: false,
            shape: false,
        }
    }

    /// The same parser, decoding as much as `detail` asks.
    pub(crate) fn with_detail(self, detail: Detail) -> Parser<'a> {
        Parser {
            shape: detail == Detail::Shape,
            ..self
        }
    }

    /// Whether decoders should read only what [`Detail::Shape`] keeps.
    pub(crate) fn shape_only(&self) -> bool {
        self.shape
    }

    /// How much decoders should read.
    pub(crate) fn detail(&self) -> Detail {
        if self.shape {
            Detail::Shape
        } else {
            Detail::Full
        }
    }

    /// A parser over one dump entry, checked to be UTF-8 as a whole first (then its strings
    /// need no check of their own).
    pub(crate) fn for_entry(buf: &'a [u8], base: u64) -> Result<Parser<'a>> {
        check_utf8(buf)
            .map_err(|at| Error::at(ErrorKind::Utf8, base + at as u64, "invalid UTF-8"))?;
        Ok(Parser {
            valid: true,
            ..Parser::new(buf, base)
        })
    }

    /// A parser over text already known to be UTF-8.
    pub(crate) fn trusted(text: &'a str, base: u64) -> Parser<'a> {
        Parser {
            valid: true,
            ..Parser::new(text.as_bytes(), base)
        }
    }

    /// A parser over the rest of this one's input, from the current position, with offsets
    /// counted from there.
    pub(crate) fn rest(&self) -> Parser<'a> {
        Parser {
            valid: self.valid,
            shape: self.shape,
            ..Parser::new(&self.buf[self.pos..], 0)
        }
    }

    /// Offset in the input of the next unread byte.
    pub(crate) fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    fn error(&self, kind: ErrorKind, message: impl Into<String>) -> Error {
        Error::at(kind, self.offset(), message)
    }

    fn ws(&mut self) {
        let buf = self.buf;
        let mut i = self.pos;
        // Pretty-printed input is mostly a newline and indentation: 16 bytes at a time.
        while let Some(run) = ws_run(buf, i) {
            i += run;
            if run < 16 {
                self.pos = i;
                return;
            }
        }
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = buf.get(i) {
            i += 1;
        }
        self.pos = i;
    }

    /// The next significant byte, without consuming it.
    #[inline]
    pub(crate) fn peek(&mut self) -> Result<u8> {
        if let Some(&b) = self.buf.get(self.pos) {
            if b > b' ' {
                return Ok(b);
            }
            // The one space after a key's colon.
            if b == b' ' {
                if let Some(&c) = self.buf.get(self.pos + 1) {
                    if c > b' ' {
                        self.pos += 1;
                        return Ok(c);
                    }
                }
            }
        }
        self.ws();
        match self.buf.get(self.pos) {
            Some(&b) => Ok(b),
            None => Err(self.error(ErrorKind::Syntax, "unexpected end of input")),
        }
    }

    #[inline(always)]
    fn expect_byte(&mut self, want: u8, what: &str) -> Result<()> {
        // Envoy prints `"key": value` with the colon and quotes where they are expected.
        if self.buf.get(self.pos) == Some(&want) {
            self.pos += 1;
            return Ok(());
        }
        self.expect_byte_slow(want, what)
    }

    fn expect_byte_slow(&mut self, want: u8, what: &str) -> Result<()> {
        let b = self.peek()?;
        if b != want {
            return Err(self.unexpected(b, want, what));
        }
        self.pos += 1;
        Ok(())
    }

    #[cold]
    fn unexpected(&self, b: u8, want: u8, what: &str) -> Error {
        {
            // A value of the wrong type is valid JSON that Heft cannot use; anything else is
            // broken JSON.
            let starts_value = matches!(
                b,
                b'{' | b'[' | b'"' | b't' | b'f' | b'n' | b'-' | b'0'..=b'9'
            );
            let kind = if starts_value && matches!(want, b'{' | b'[' | b'"') {
                ErrorKind::InvalidValue
            } else {
                ErrorKind::Syntax
            };
            self.error(kind, format!("expected {what}, found {}", describe(b)))
        }
    }

    /// Consumes a `null` if one is next.
    #[inline]
    pub(crate) fn null(&mut self) -> Result<bool> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Ok(true);
        }
        Ok(false)
    }

    fn literal(&mut self, word: &[u8]) -> Result<()> {
        if self.buf[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.error(ErrorKind::Syntax, "invalid literal"))
        }
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(
                ErrorKind::TooDeep,
                format!("nesting deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    /// Iterates over an object's members with their raw keys (map entries, `Struct` fields).
    /// `null` reads as an empty object.
    pub(crate) fn entries(
        &mut self,
        mut f: impl FnMut(&mut Self, &str) -> Result<()>,
    ) -> Result<()> {
        if self.null()? {
            return Ok(());
        }
        self.expect_byte(b'{', "an object")?;
        self.enter()?;
        if self.peek()? == b'}' {
            self.pos += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            let key_at = self.offset();
            let key = self.str()?;
            self.expect_byte(b':', "':' after an object key")?;
            f(self, &key).map_err(|e| e.with_offset(key_at).in_key(&key))?;
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    break;
                }
                b => {
                    return Err(self
                        .error(
                            ErrorKind::Syntax,
                            format!("expected ',' or '}}' in an object, found {}", describe(b)),
                        )
                        .in_key(&key))
                }
            }
        }
        self.depth -= 1;
        Ok(())
    }

    /// Iterates over a message's fields: keys become proto field names, `@type` is skipped, and so
    /// is a field whose value is `null`.
    pub(crate) fn fields(
        &mut self,
        mut f: impl FnMut(&mut Self, &str) -> Result<()>,
    ) -> Result<()> {
        let mut scratch = [0u8; 64];
        self.entries(|p, key| {
            if key == "@type" {
                return p.skip();
            }
            // In proto3 JSON, `null` for a field means its default: the same as leaving it out.
            if p.peek()? == b'n' {
                return p.literal(b"null");
            }
            // Proto field names have no capitals: only camelCase keys need renaming (every name
            // in DIGIT_NAMES has a capital too).
            if !has_upper(key.as_bytes()) {
                return f(p, key);
            }
            f(p, field_name(key, &mut scratch))
        })
    }

    /// Iterates over an array's elements. `null` reads as an empty array.
    pub(crate) fn array(&mut self, mut f: impl FnMut(&mut Self) -> Result<()>) -> Result<()> {
        if self.null()? {
            return Ok(());
        }
        self.expect_byte(b'[', "an array")?;
        self.enter()?;
        if self.peek()? == b']' {
            self.pos += 1;
            self.depth -= 1;
            return Ok(());
        }
        let mut index = 0u64;
        loop {
            self.peek()?;
            let at = self.offset();
            f(self).map_err(|e| e.with_offset(at).in_index(index))?;
            index += 1;
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => {
                    self.pos += 1;
                    break;
                }
                b => {
                    return Err(self
                        .error(
                            ErrorKind::Syntax,
                            format!("expected ',' or ']' in an array, found {}", describe(b)),
                        )
                        .in_index(index - 1))
                }
            }
        }
        self.depth -= 1;
        Ok(())
    }

    /// Reads an array of messages or scalars into a vector.
    /// The vector is exactly as long as the array: models of big dumps hold millions of these.
    pub(crate) fn list<T>(&mut self, mut f: impl FnMut(&mut Self) -> Result<T>) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.array(|p| {
            out.push(f(p)?);
            Ok(())
        })?;
        out.shrink_to_fit();
        Ok(out)
    }

    /// Reads an array of messages like [`Parser::list`], decoding a big pretty-printed one in
    /// parallel: it is cut at lines that open an element (`\n` + the elements' indentation +
    /// `{`) into pieces of about [`PAR_PIECE`] bytes, each decoded on its own and proved right
    /// by filling its piece exactly with comma-separated elements. Anything unexpected (or any
    /// error) reads the whole array again the plain way, which alone reports errors. For the
    /// arrays one resource can make huge: a route configuration's virtual hosts.
    pub(crate) fn par_list<T: Send>(
        &mut self,
        f: impl Fn(&mut Parser<'a>) -> Result<T> + Sync,
    ) -> Result<Vec<T>> {
        let start = self.pos;
        if let Some(out) = self.try_par_list(&f) {
            return Ok(out);
        }
        self.pos = start;
        self.list(|p| f(p))
    }

    fn try_par_list<T: Send>(
        &mut self,
        f: &(impl Fn(&mut Parser<'a>) -> Result<T> + Sync),
    ) -> Option<Vec<T>> {
        use rayon::prelude::*;
        if !self.valid || self.peek().ok()? != b'[' {
            return None;
        }
        let open = self.pos;
        let end = super::scan::skip_container(self.buf, open)?;
        if end - open < 2 * PAR_PIECE {
            return None;
        }
        let buf = self.buf;
        let spaces = buf[open + 2..end]
            .iter()
            .take_while(|&&b| b == b' ')
            .count();
        let first = open + 2 + spaces;
        if buf.get(open + 1) != Some(&b'\n') || buf.get(first) != Some(&b'{') || spaces >= 64 {
            return None;
        }
        let mut needle = [b' '; 66];
        needle[0] = b'\n';
        needle[spaces + 1] = b'{';
        let finder = memchr::memmem::Finder::new(&needle[..spaces + 2]);
        let close = end - 1;
        let mut cuts = vec![first];
        let mut at = first;
        while at + PAR_PIECE < close {
            match finder.find(&buf[at + PAR_PIECE..close]) {
                Some(i) => {
                    at = at + PAR_PIECE + i + spaces + 1;
                    cuts.push(at);
                }
                None => break,
            }
        }
        cuts.push(close);
        let (base, depth, shape) = (self.base, self.depth + 1, self.shape);
        let pieces: Option<Vec<Vec<T>>> = cuts
            .par_windows(2)
            .enumerate()
            .map(|(i, w)| {
                let last = i + 2 == cuts.len();
                let piece = &buf[w[0]..w[1]];
                let mut p = Parser {
                    buf: piece,
                    pos: 0,
                    base: base + w[0] as u64,
                    depth,
                    valid: true,
                    shape,
                };
                let mut out = Vec::new();
                loop {
                    out.push(f(&mut p).ok()?);
                    p.ws();
                    match piece.get(p.pos) {
                        None if last => return Some(out),
                        Some(b',') => {
                            p.pos += 1;
                            p.ws();
                            if p.pos == piece.len() && !last {
                                return Some(out);
                            }
                        }
                        _ => return None,
                    }
                }
            })
            .collect();
        // One allocation of the exact size: collecting the flattened pieces would grow the
        // vector by doubling, through fresh pages the kernel must zero.
        let pieces = pieces?;
        let mut out = Vec::with_capacity(pieces.iter().map(Vec::len).sum());
        for piece in pieces {
            out.extend(piece);
        }
        self.pos = end;
        Some(out)
    }

    /// Skips one value of any kind.
    pub(crate) fn skip(&mut self) -> Result<()> {
        // Mostly the one space after a key's colon.
        match self.buf.get(self.pos..self.pos + 2) {
            Some([b' ', b]) if *b > b' ' => self.pos += 1,
            _ => self.ws(),
        }
        let at = self.pos;
        self.pos = match self.buf.get(at) {
            Some(b'{' | b'[') => super::scan::skip_container(self.buf, at),
            Some(b'"') => string_stop(&self.buf[at + 1..])
                .filter(|&i| self.buf[at + 1 + i] == b'"')
                .map(|i| at + i + 2),
            _ => None,
        }
        // Anything irregular (escapes, errors) and scalars go the exact way.
        .map_or_else(|| skip_value(self.buf, at, self.base), Ok)?;
        Ok(())
    }

    /// Skips one value and returns its byte range in this parser's buffer.
    pub(crate) fn skip_span(&mut self) -> Result<(usize, usize)> {
        self.ws();
        let start = self.pos;
        self.skip()?;
        Ok((start, self.pos))
    }

    /// Reads a string, borrowed from the input when it holds no escapes.
    pub(crate) fn str(&mut self) -> Result<Cow<'a, str>> {
        self.expect_byte(b'"', "a string")?;
        let start = self.pos;
        let rest = &self.buf[start..];
        match string_stop(rest) {
            Some(i) if rest[i] == b'"' => {
                self.pos = start + i + 1;
                if self.valid {
                    // SAFETY: the whole buffer is UTF-8 (`for_entry`), and a slice between two
                    // ASCII bytes of it starts and ends on character boundaries.
                    return Ok(Cow::Borrowed(unsafe {
                        std::str::from_utf8_unchecked(&rest[..i])
                    }));
                }
                let s = std::str::from_utf8(&rest[..i]).map_err(|e| {
                    Error::at(
                        ErrorKind::Utf8,
                        self.base + (start + e.valid_up_to()) as u64,
                        "invalid UTF-8 in a string",
                    )
                })?;
                Ok(Cow::Borrowed(s))
            }
            Some(_) => self.unescape(start).map(Cow::Owned),
            None => Err(Error::at(
                ErrorKind::Syntax,
                self.base + self.buf.len() as u64,
                "unexpected end of input inside a string",
            )),
        }
    }

    fn unescape(&mut self, start: usize) -> Result<String> {
        let mut out: Vec<u8> = Vec::new();
        let mut i = start;
        loop {
            let rest = &self.buf[i..];
            let Some(j) = memchr2(b'"', b'\\', rest) else {
                return Err(Error::at(
                    ErrorKind::Syntax,
                    self.base + self.buf.len() as u64,
                    "unexpected end of input inside a string",
                ));
            };
            out.extend_from_slice(&rest[..j]);
            i += j;
            if self.buf[i] == b'"' {
                self.pos = i + 1;
                break;
            }
            let esc_at = i;
            let Some(&c) = self.buf.get(i + 1) else {
                return Err(Error::at(
                    ErrorKind::Syntax,
                    self.base + self.buf.len() as u64,
                    "unexpected end of input inside a string",
                ));
            };
            i += 2;
            match c {
                b'"' | b'\\' | b'/' => out.push(c),
                b'b' => out.push(8),
                b'f' => out.push(12),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'u' => {
                    let mut code = self.hex4(i)?;
                    i += 4;
                    // A high surrogate followed by a low one encodes one character.
                    let pair =
                        (0xD800..0xDC00).contains(&code) && self.buf.get(i..i + 2) == Some(b"\\u");
                    if pair {
                        let low = self.hex4(i + 2)?;
                        if (0xDC00..0xE000).contains(&low) {
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                            i += 6;
                        }
                    }
                    let ch = char::from_u32(code).unwrap_or('\u{FFFD}');
                    let mut tmp = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
                }
                _ => {
                    return Err(Error::at(
                        ErrorKind::Syntax,
                        self.base + esc_at as u64,
                        "invalid escape in a string",
                    ))
                }
            }
        }
        String::from_utf8(out).map_err(|e| {
            Error::at(
                ErrorKind::Utf8,
                self.base + start as u64 + e.utf8_error().valid_up_to() as u64,
                "invalid UTF-8 in a string",
            )
        })
    }

    fn hex4(&self, at: usize) -> Result<u32> {
        let digits = self
            .buf
            .get(at..at + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u32::from_str_radix(d, 16).ok());
        digits.ok_or_else(|| {
            Error::at(
                ErrorKind::Syntax,
                self.base + at as u64,
                "invalid \\u escape",
            )
        })
    }

    /// Reads an owned string; `null` reads as empty.
    pub(crate) fn string(&mut self) -> Result<Box<str>> {
        if self.null()? {
            return Ok("".into());
        }
        Ok(self.str()?.into())
    }

    /// Reads a string list.
    pub(crate) fn strings(&mut self) -> Result<Vec<Box<str>>> {
        self.list(|p| p.string())
    }

    /// The text of a number, or of a string that holds one (proto3 JSON writes 64-bit integers as
    /// strings). `None` for `null`.
    fn number_text(&mut self) -> Result<Option<Cow<'a, str>>> {
        match self.peek()? {
            b'n' => {
                self.literal(b"null")?;
                Ok(None)
            }
            b'"' => Ok(Some(self.str()?)),
            b'-' | b'0'..=b'9' => {
                let start = self.pos;
                while let Some(&b) = self.buf.get(self.pos) {
                    if matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                let digits = &self.buf[start..self.pos];
                // SAFETY: only the ASCII bytes matched above were consumed.
                Ok(Some(Cow::Borrowed(unsafe {
                    std::str::from_utf8_unchecked(digits)
                })))
            }
            b => Err(self.error(
                ErrorKind::InvalidValue,
                format!("expected a number, found {}", describe(b)),
            )),
        }
    }

    /// Reads an unsigned integer (number or numeric string); `null` reads as 0.
    pub(crate) fn u64(&mut self) -> Result<u64> {
        // Most numbers in a dump are plain integers of a few digits: read them in place.
        if self.peek()?.is_ascii_digit() {
            let digits = self.buf[self.pos..]
                .iter()
                .take(20)
                .take_while(|b| b.is_ascii_digit())
                .count();
            let after = self.buf.get(self.pos + digits);
            if digits < 20 && !matches!(after, Some(b'.' | b'e' | b'E' | b'+' | b'-')) {
                let v = self.buf[self.pos..self.pos + digits]
                    .iter()
                    .fold(0u64, |v, d| v * 10 + u64::from(d - b'0'));
                self.pos += digits;
                return Ok(v);
            }
        }
        let at = self.offset();
        let Some(text) = self.number_text()? else {
            return Ok(0);
        };
        if let Ok(v) = text.parse::<u64>() {
            return Ok(v);
        }
        // proto3 JSON allows integral values written as floats, e.g. `1e3` or `5.0`.
        match text.parse::<f64>() {
            // `u64::MAX as f64` is 2^64, one past the largest value.
            Ok(f) if f >= 0.0 && f.fract() == 0.0 && f < u64::MAX as f64 => Ok(f as u64),
            _ => Err(Error::at(
                ErrorKind::InvalidValue,
                at,
                format!("expected an unsigned integer, found {text:?}"),
            )),
        }
    }

    /// Reads a `uint32` field.
    pub(crate) fn u32(&mut self) -> Result<u32> {
        self.peek()?;
        let at = self.offset();
        let v = self.u64()?;
        u32::try_from(v).map_err(|_| {
            Error::at(
                ErrorKind::InvalidValue,
                at,
                format!("{v} is out of range for a 32-bit field"),
            )
        })
    }

    /// Reads a signed integer (number or numeric string); `null` reads as 0.
    pub(crate) fn i64(&mut self) -> Result<i64> {
        self.peek()?;
        let at = self.offset();
        let Some(text) = self.number_text()? else {
            return Ok(0);
        };
        if let Ok(v) = text.parse::<i64>() {
            return Ok(v);
        }
        match text.parse::<f64>() {
            // `i64::MAX as f64` is 2^63, one past the largest value.
            Ok(f) if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 => {
                Ok(f as i64)
            }
            _ => Err(Error::at(
                ErrorKind::InvalidValue,
                at,
                format!("expected an integer, found {text:?}"),
            )),
        }
    }

    /// Reads a boolean; `null` reads as false.
    pub(crate) fn bool(&mut self) -> Result<bool> {
        match self.peek()? {
            b't' => self.literal(b"true").map(|_| true),
            b'f' => self.literal(b"false").map(|_| false),
            b'n' => self.literal(b"null").map(|_| false),
            b => Err(self.error(
                ErrorKind::InvalidValue,
                format!("expected a boolean, found {}", describe(b)),
            )),
        }
    }

    /// Reads a `google.protobuf.UInt32Value`. In proto3 JSON a wrapper is its bare value (never
    /// `{"value": …}`); `null`, an unset wrapper, never reaches here ([`Parser::fields`] drops it).
    pub(crate) fn wrapped_u32(&mut self) -> Result<u32> {
        self.u32()
    }

    /// Reads a `google.protobuf.BoolValue`, a bare boolean in proto3 JSON.
    pub(crate) fn wrapped_bool(&mut self) -> Result<bool> {
        self.bool()
    }

    /// Reads an enum written as its name or its number; numbers are mapped through `names`
    /// (index = number). Unknown numbers keep their digits.
    pub(crate) fn enum_name(&mut self, names: &[&str]) -> Result<Box<str>> {
        self.enum_with(names, |name| name.into())
    }

    /// Reads an enum like [`Parser::enum_name`], handing its name to `f` without copying it.
    pub(crate) fn enum_with<T>(&mut self, names: &[&str], f: impl FnOnce(&str) -> T) -> Result<T> {
        match self.peek()? {
            b'"' => Ok(f(&self.str()?)),
            b'n' => {
                self.literal(b"null")?;
                Ok(f(names.first().copied().unwrap_or("")))
            }
            _ => {
                let n = self.i64()?;
                Ok(match usize::try_from(n).ok().and_then(|i| names.get(i)) {
                    Some(name) => f(name),
                    None => f(&n.to_string()),
                })
            }
        }
    }

    /// Reads a `google.protobuf.Duration`: `"1.5s"` (proto3 JSON) or `{"seconds": …, "nanos": …}`.
    pub(crate) fn duration(&mut self) -> Result<Duration> {
        self.peek()?;
        let at = self.offset();
        match self.peek()? {
            b'{' => {
                let (mut secs, mut nanos) = (0i64, 0i64);
                self.fields(|p, k| {
                    match k {
                        "seconds" => secs = p.i64()?,
                        "nanos" => nanos = p.i64()?,
                        _ => p.skip()?,
                    }
                    Ok(())
                })?;
                let total = secs as f64 + nanos as f64 / 1e9;
                duration_from_secs(total, at)
            }
            b'n' => {
                self.literal(b"null")?;
                Ok(Duration::ZERO)
            }
            _ => {
                let text = self.str()?;
                let Some(num) = text.strip_suffix('s') else {
                    return Err(Error::at(
                        ErrorKind::InvalidValue,
                        at,
                        format!("expected a duration such as \"1.5s\", found {text:?}"),
                    ));
                };
                let secs: f64 = num.parse().map_err(|_| {
                    Error::at(
                        ErrorKind::InvalidValue,
                        at,
                        format!("expected a duration such as \"1.5s\", found {text:?}"),
                    )
                })?;
                duration_from_secs(secs, at)
            }
        }
    }

    /// Reads any value into a `serde_json::Value` (for `Struct` payloads such as node metadata).
    pub(crate) fn value(&mut self) -> Result<serde_json::Value> {
        use serde_json::Value;
        Ok(match self.peek()? {
            b'{' => {
                let mut map = serde_json::Map::new();
                self.entries(|p, k| {
                    map.insert(k.to_owned(), p.value()?);
                    Ok(())
                })?;
                Value::Object(map)
            }
            b'[' => Value::Array(self.list(|p| p.value())?),
            b'"' => Value::String(self.str()?.into_owned()),
            b't' | b'f' => Value::Bool(self.bool()?),
            b'n' => {
                self.literal(b"null")?;
                Value::Null
            }
            _ => {
                self.peek()?;
                let at = self.offset();
                let text = self.number_text()?.unwrap_or(Cow::Borrowed("0"));
                let n: serde_json::Number = text.parse().map_err(|_| {
                    Error::at(ErrorKind::Syntax, at, format!("invalid number {text:?}"))
                })?;
                // A `Struct` number is a double: `2.0` and `2` are one value, read as the
                // integer (as the protobuf reader does), whichever way the printer wrote it.
                match n.as_f64() {
                    Some(f)
                        if !n.is_i64()
                            && f.fract() == 0.0
                            && f.abs() < 9.007_199_254_740_992e15 =>
                    {
                        Value::from(f as i64)
                    }
                    _ => Value::Number(n),
                }
            }
        })
    }

    /// Finds the `@type` of the `Any` that starts here, without consuming anything. Envoy prints
    /// `@type` first; when it is not, the object's keys are scanned for it.
    pub(crate) fn peek_type_url(&mut self) -> Result<Option<Cow<'a, str>>> {
        if self.peek()? != b'{' {
            return Ok(None);
        }
        let saved = (self.pos, self.depth);
        // Envoy prints `@type` first: then nothing else need be read.
        self.pos += 1;
        if self.peek()? == b'"' {
            let key = self.str()?;
            if key == "@type" && self.peek()? == b':' {
                self.pos += 1;
                if self.peek()? == b'"' {
                    let url = self.str();
                    (self.pos, self.depth) = saved;
                    return url.map(Some);
                }
            }
        }
        self.pos = saved.0;
        let mut found = None;
        let result = self.entries(|p, k| {
            if found.is_none() && k == "@type" {
                found = Some(p.str()?);
            } else {
                p.skip()?;
            }
            Ok(())
        });
        (self.pos, self.depth) = saved;
        result?;
        Ok(found)
    }

    /// Fails unless only whitespace remains.
    pub(crate) fn finish(&mut self) -> Result<()> {
        self.ws();
        if self.pos < self.buf.len() {
            let b = self.buf[self.pos];
            return Err(self.error(
                ErrorKind::Syntax,
                format!("unexpected {} after the end of the value", describe(b)),
            ));
        }
        Ok(())
    }
}

fn duration_from_secs(secs: f64, at: u64) -> Result<Duration> {
    Duration::try_from_secs_f64(secs).map_err(|_| {
        Error::at(
            ErrorKind::InvalidValue,
            at,
            format!("duration {secs}s is out of range"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_check_agrees_with_the_standard_library_at_every_length_and_place() {
        // Short and long, with a non-ASCII byte (valid or not) in each of the 32-byte blocks,
        // the 8-byte words and the single bytes the check goes through.
        for len in 0..80 {
            let ascii = vec![b'a'; len];
            assert_eq!(check_utf8(&ascii), Ok(()));
            for at in 0..len {
                for insert in [&b"\xc3\xa9"[..], b"\xe2\x82\xac", b"\xff", b"\xc3", b"\x80"] {
                    let mut buf = ascii.clone();
                    buf.splice(at..at, insert.iter().copied());
                    let want = std::str::from_utf8(&buf)
                        .map(drop)
                        .map_err(|e| e.valid_up_to());
                    assert_eq!(check_utf8(&buf), want, "len {len}, at {at}, {insert:?}");
                    assert_eq!(as_text(&buf).map(str::len), want.map(|()| buf.len()));
                }
            }
        }
    }

    /// `{"n": i, "s": [...]}` elements, pretty-printed one per line at two spaces.
    fn pretty_array(n: usize, odd: impl Fn(usize) -> String) -> String {
        let items: Vec<String> = (0..n)
            .map(|i| format!("  {{\"n\": {i}, \"s\": [\n   \"x\"\n  ]{}}}", odd(i)))
            .collect();
        format!("[\n{}\n]", items.join(",\n"))
    }

    fn numbers(p: &mut Parser) -> Result<u64> {
        let mut n = 0;
        p.fields(|p, k| match k {
            "n" => {
                n = p.u64()?;
                Ok(())
            }
            _ => p.skip(),
        })?;
        Ok(n)
    }

    #[test]
    fn big_arrays_read_in_parallel_pieces_as_they_read_in_one() {
        let text = pretty_array(200, |_| String::new());
        let mut p = Parser::trusted(&text, 0);
        assert!(
            p.try_par_list(&numbers).is_some(),
            "the parallel path is taken"
        );
        let mut p = Parser::trusted(&text, 0);
        let got = p.par_list(numbers).unwrap();
        assert_eq!(got, (0..200).collect::<Vec<u64>>());
        assert_eq!(p.pos(), text.len());
        // A line that looks like a cut inside an element, and a bad element: the same result,
        // and the same error (with its index) as reading in one piece.
        let misleading = pretty_array(200, |i| {
            if i == 77 {
                ", \"m\":\n  {\"q\": 1}".to_string()
            } else {
                String::new()
            }
        });
        let mut p = Parser::trusted(&misleading, 0);
        assert_eq!(p.par_list(numbers).unwrap(), (0..200).collect::<Vec<u64>>());
        let bad = text.replace("\"n\": 150", "\"n\": \"x\"");
        let plain = Parser::trusted(&bad, 7).list(numbers).unwrap_err();
        let parallel = Parser::trusted(&bad, 7).par_list(numbers).unwrap_err();
        assert_eq!(parallel.to_string(), plain.to_string());
        assert!(parallel.path_string().starts_with("[150]"), "{parallel}");
    }

    #[test]
    fn capitals_are_found_anywhere() {
        for s in ["", "a", "name", "@type", "lb_endpoints_x", "{[~`@\x7f"] {
            assert!(!has_upper(s.as_bytes()), "{s}");
        }
        for s in [
            "A",
            "Z",
            "lbEndpoints",
            "abcdefghZ",
            "abcdefghijklmnoQ",
            "ISTIO",
        ] {
            assert!(has_upper(s.as_bytes()), "{s}");
        }
        assert!(!has_upper("é".as_bytes()));
    }

    #[test]
    fn camel_case_keys_become_field_names() {
        let mut s = [0u8; 64];
        assert_eq!(
            field_name("dynamicActiveClusters", &mut s),
            "dynamic_active_clusters"
        );
        let mut s = [0u8; 64];
        assert_eq!(
            field_name("http2ProtocolOptions", &mut s),
            "http2_protocol_options"
        );
        let mut s = [0u8; 64];
        assert_eq!(field_name("lb_endpoints", &mut s), "lb_endpoints");
        let mut s = [0u8; 64];
        assert_eq!(field_name("consecutive5xx", &mut s), "consecutive_5xx");
        let mut s = [0u8; 64];
        assert_eq!(field_name("consecutive_5xx", &mut s), "consecutive_5xx");
    }

    #[test]
    fn reads_proto3_json_liberties() {
        let mut p = Parser::new(br#"["18446744073709551615", 7, null, "2.5s", "3", 4]"#, 0);
        let mut got = Vec::new();
        let mut i = 0;
        p.array(|p| {
            match i {
                0..=2 => got.push(p.u64()?.to_string()),
                3 => got.push(format!("{:?}", p.duration()?)),
                _ => got.push(p.wrapped_u32()?.to_string()),
            }
            i += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(got, ["18446744073709551615", "7", "0", "2.5s", "3", "4"]);
    }

    #[test]
    fn unsigned_integers_read_alike_in_place_and_by_their_text() {
        let ok = [
            ("0", 0),
            ("007", 7),
            ("4294967295", 4294967295),
            ("9999999999999999999", 9999999999999999999),
            ("18446744073709551615", u64::MAX),
            ("1e3", 1000),
            ("5.0", 5),
            ("\"42\"", 42),
        ];
        for (text, want) in ok {
            for end in ["", ",", "}", " "] {
                let input = format!("{text}{end}");
                let mut p = Parser::new(input.as_bytes(), 0);
                assert_eq!(p.u64().unwrap(), want, "{input:?}");
                assert_eq!(p.pos(), text.len(), "{input:?}");
            }
        }
        for bad in [
            "18446744073709551616",
            "99999999999999999999",
            "-1",
            "2.5",
            "1e-3",
        ] {
            let e = Parser::new(bad.as_bytes(), 0).u64().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidValue, "{bad}: {e}");
        }
    }

    #[test]
    fn whitespace_of_any_length_and_kind_is_skipped_and_nothing_else() {
        // Runs of each length around the 16-byte steps, of every whitespace byte, before and
        // after each token, and at the very end of the input.
        for n in [0, 1, 2, 15, 16, 17, 31, 32, 33, 40] {
            for pad in [" ", "\n", "\r\n", "\t", " \n\t"] {
                let w = pad.repeat(n);
                let text =
                    format!("{w}{{{w}\"a\"{w}:{w}[{w}1{w},{w}2{w}]{w},{w}\"b\": \"x\"{w}}}{w}");
                let mut p = Parser::new(text.as_bytes(), 0);
                let mut seen = Vec::new();
                p.fields(|p, k| {
                    seen.push(k.to_string());
                    p.skip()
                })
                .unwrap();
                p.finish().unwrap();
                assert_eq!(seen, ["a", "b"], "{n} x {pad:?}");
            }
        }
        // Other control bytes are not whitespace, wherever they sit in a run.
        for at in [0, 5, 15, 16, 20] {
            let mut w = vec![b' '; 24];
            w[at] = 0x0B;
            let mut text = b"{\"a\":".to_vec();
            text.extend_from_slice(&w);
            text.extend_from_slice(b"1}");
            let mut p = Parser::new(&text, 0);
            let e = p.fields(|p, _| p.skip()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Syntax, "{e}");
        }
    }

    #[test]
    fn a_null_field_is_an_absent_field() {
        let mut p = Parser::new(br#"{"a": null, "b": 1, "c": nul}"#, 0);
        let mut seen = Vec::new();
        let e = p
            .fields(|p, k| {
                seen.push(k.to_string());
                p.skip()
            })
            .unwrap_err();
        assert_eq!(seen, ["b"]);
        assert_eq!(e.kind(), ErrorKind::Syntax, "{e}");
    }

    #[test]
    fn skipping_a_value_ends_where_the_exact_scan_does() {
        // Strings of every length around the 16-byte steps, with an escaped quote or backslash
        // anywhere in them, unterminated ones, and the other kinds of value, after a colon's
        // space, none or several.
        let mut values = vec![
            "12.5e3".to_string(),
            "true".into(),
            "null".into(),
            r#"{"a": ["}"]}"#.into(),
            "\"open".into(),
            "\"esc\\".into(),
        ];
        for n in 0..40 {
            values.push(format!("\"{}\"", "x".repeat(n)));
            for at in 0..n {
                for esc in [r#"\""#, r"\\"] {
                    values.push(format!("\"{}{esc}{}\"", "x".repeat(at), "y".repeat(n - at)));
                }
            }
        }
        for v in &values {
            for lead in ["", " ", "  \n "] {
                for tail in ["", ", \"k\": 1}"] {
                    let text = format!("{lead}{v}{tail}");
                    let exact = skip_value(text.as_bytes(), lead.len(), 0).map_err(|e| e.offset());
                    let mut p = Parser::new(text.as_bytes(), 0);
                    let got = p.skip().map(|()| p.pos()).map_err(|e| e.offset());
                    assert_eq!(got, exact, "{text:?}");
                }
            }
        }
    }

    #[test]
    fn enums_read_as_names_or_numbers() {
        let names = ["STATIC", "STRICT_DNS", "LOGICAL_DNS", "EDS"];
        assert_eq!(&*Parser::new(b"3", 0).enum_name(&names).unwrap(), "EDS");
        assert_eq!(
            &*Parser::new(b"\"EDS\"", 0).enum_name(&names).unwrap(),
            "EDS"
        );
        assert_eq!(&*Parser::new(b"9", 0).enum_name(&names).unwrap(), "9");
    }

    #[test]
    fn unescapes_strings_and_surrogate_pairs() {
        let mut p = Parser::new(br#""a\"b\u00e9\ud83d\ude00\n""#, 0);
        assert_eq!(p.str().unwrap(), "a\"b\u{e9}\u{1F600}\n");
    }

    #[test]
    fn invalid_utf8_reports_its_offset() {
        let mut p = Parser::new(b"\"ab\xff\"", 100);
        let e = p.str().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Utf8);
        assert_eq!(e.offset(), Some(103));
    }

    #[test]
    fn errors_carry_the_path() {
        let text = br#"{"a": [{"b": 1}, {"b": "x"}]}"#;
        let mut p = Parser::new(text, 0);
        let e = p
            .fields(|p, k| match k {
                "a" => p.array(|p| {
                    p.fields(|p, k| match k {
                        "b" => p.u64().map(drop),
                        _ => p.skip(),
                    })
                }),
                _ => p.skip(),
            })
            .unwrap_err();
        assert_eq!(e.path_string(), "a[1].b");
        assert_eq!(e.offset(), Some(23));
    }

    #[test]
    fn depth_is_limited() {
        let text = "[".repeat(1000) + &"]".repeat(1000);
        let mut p = Parser::new(text.as_bytes(), 0);
        assert_eq!(p.value().unwrap_err().kind(), ErrorKind::TooDeep);
    }

    #[test]
    fn struct_numbers_are_doubles_so_integral_ones_read_as_integers() {
        let mut p = Parser::new(br#"{"a": 2.0, "b": 2, "c": 2.5, "d": 1e3, "e": -0.0}"#, 0);
        let v = p.value().unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": 2, "b": 2, "c": 2.5, "d": 1000, "e": 0})
        );
    }

    #[test]
    fn finds_type_url_anywhere() {
        let mut p = Parser::new(br#"{"a": {"@type": "inner"}, "@type": "outer"}"#, 0);
        assert_eq!(p.peek_type_url().unwrap().as_deref(), Some("outer"));
        assert_eq!(p.pos(), 0);
    }
}
