//! Finding where a JSON value ends without decoding it.
//!
//! This is the hot loop of the reader's outer walk: it locates each resource of a section so that
//! resources can be decoded in parallel. It checks the structure it needs (strings close, brackets
//! match, nesting stays within [`MAX_SKIP_DEPTH`]) and no more; the decoders validate the rest of
//! what they read. The scan is resumable, so the same code serves a whole mapped file and a
//! stream read in chunks.

use crate::error::{Error, ErrorKind, Result};
use memchr::memchr2;

/// Deepest nesting the scanner follows before it reports a nesting bomb.
pub(crate) const MAX_SKIP_DEPTH: usize = 512;

/// Bytes that end an unquoted scalar (`true`, `12.5e3`, `null`).
fn ends_scalar(b: u8) -> bool {
    matches!(b, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t' | b':')
}

static STRUCTURAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b'"' as usize] = true;
    t[b'{' as usize] = true;
    t[b'}' as usize] = true;
    t[b'[' as usize] = true;
    t[b']' as usize] = true;
    t
};

/// Where a scan stands between two chunks of input.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Open brackets, innermost last (`{` or `[`).
    stack: Vec<u8>,
    in_string: bool,
    /// A backslash was the last byte of the previous chunk.
    escape_pending: bool,
    in_scalar: bool,
    started: bool,
}

/// What one call to [`Scan::run`] found.
pub(crate) enum Step {
    /// The value ends just before this position of the chunk.
    Done(usize),
    /// The chunk ended inside the value; call again with more input (continuing at its end).
    More,
}

impl Scan {
    /// Scans `buf[pos..]`, where `pos` is the value's first byte (no leading whitespace) on the
    /// first call and the end of the previous chunk on later calls. `base` is `buf[0]`'s offset in
    /// the input, for errors.
    pub(crate) fn run(&mut self, buf: &[u8], mut pos: usize, base: u64) -> Result<Step> {
        let len = buf.len();
        if !self.started {
            let Some(&first) = buf.get(pos) else {
                return Ok(Step::More);
            };
            self.started = true;
            match first {
                b'{' | b'[' => {
                    self.stack.push(first);
                    pos += 1;
                }
                b'"' => {
                    self.in_string = true;
                    pos += 1;
                }
                b'}' | b']' | b',' | b':' => {
                    return Err(Error::at(
                        ErrorKind::Syntax,
                        base + pos as u64,
                        format!("expected a value, found '{}'", first as char),
                    ))
                }
                _ => self.in_scalar = true,
            }
        }
        if self.in_scalar {
            while pos < len {
                if ends_scalar(buf[pos]) {
                    return Ok(Step::Done(pos));
                }
                pos += 1;
            }
            return Ok(Step::More);
        }
        loop {
            if self.in_string {
                if self.escape_pending {
                    if pos >= len {
                        return Ok(Step::More);
                    }
                    self.escape_pending = false;
                    pos += 1;
                }
                match memchr2(b'"', b'\\', &buf[pos.min(len)..]) {
                    None => return Ok(Step::More),
                    Some(j) => {
                        pos += j;
                        if buf[pos] == b'\\' {
                            pos += 1;
                            self.escape_pending = true;
                            continue;
                        }
                        pos += 1;
                        self.in_string = false;
                        if self.stack.is_empty() {
                            return Ok(Step::Done(pos));
                        }
                    }
                }
            }
            while pos < len && !STRUCTURAL[buf[pos] as usize] {
                pos += 1;
            }
            if pos >= len {
                return Ok(Step::More);
            }
            let b = buf[pos];
            pos += 1;
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => {
                    if self.stack.len() >= MAX_SKIP_DEPTH {
                        return Err(Error::at(
                            ErrorKind::TooDeep,
                            base + pos as u64 - 1,
                            format!("nesting deeper than {MAX_SKIP_DEPTH} levels"),
                        ));
                    }
                    self.stack.push(b);
                }
                _ => {
                    let open = if b == b'}' { b'{' } else { b'[' };
                    if self.stack.pop() != Some(open) {
                        return Err(Error::at(
                            ErrorKind::Syntax,
                            base + pos as u64 - 1,
                            format!("unbalanced '{}'", b as char),
                        ));
                    }
                    if self.stack.is_empty() {
                        return Ok(Step::Done(pos));
                    }
                }
            }
        }
    }
}

/// Scans one complete value in `buf` starting at `pos`; returns its end. Running out of input is
/// a syntax error at the end of `buf`.
pub(crate) fn skip_value(buf: &[u8], pos: usize, base: u64) -> Result<usize> {
    let mut scan = Scan::default();
    match scan.run(buf, pos, base)? {
        Step::Done(end) => Ok(end),
        Step::More if scan.in_scalar => Ok(buf.len()),
        Step::More => Err(Error::at(
            ErrorKind::Syntax,
            base + buf.len() as u64,
            "unexpected end of input inside a value",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(s: &str) -> Result<usize> {
        skip_value(s.as_bytes(), 0, 0)
    }

    #[test]
    fn finds_the_end_of_each_kind_of_value() {
        assert_eq!(
            end(r#"{"a": [1, "}"], "b": {"c": "\"]"}} tail"#).unwrap(),
            34
        );
        assert_eq!(end(r#""x\\" , 1"#).unwrap(), 5);
        assert_eq!(end("12.5e3, 4").unwrap(), 6);
        assert_eq!(end("true}").unwrap(), 4);
    }

    #[test]
    fn rejects_truncation_and_mismatch() {
        assert_eq!(end(r#"{"a": [1, 2"#).unwrap_err().kind(), ErrorKind::Syntax);
        assert_eq!(end(r#"{"a": "open"#).unwrap_err().kind(), ErrorKind::Syntax);
        let e = end(r#"{"a": [1}"#).unwrap_err();
        assert_eq!(e.offset(), Some(8));
    }

    #[test]
    fn stops_nesting_bombs_without_recursion() {
        let bomb = "[".repeat(100_000);
        assert_eq!(end(&bomb).unwrap_err().kind(), ErrorKind::TooDeep);
    }

    #[test]
    fn resumes_across_chunks_even_inside_an_escape() {
        let text = br#"{"k": "a\"b", "l": [ {} ]}"#;
        for cut in 1..text.len() {
            let mut scan = Scan::default();
            let mut buf = text[..cut].to_vec();
            let first = scan.run(&buf, 0, 0).unwrap();
            let done = match first {
                Step::Done(e) => e,
                Step::More => {
                    buf.extend_from_slice(&text[cut..]);
                    match scan.run(&buf, cut, 0).unwrap() {
                        Step::Done(e) => e,
                        Step::More => panic!("no end found at cut {cut}"),
                    }
                }
            };
            assert_eq!(done, text.len(), "cut at {cut}");
        }
    }
}
