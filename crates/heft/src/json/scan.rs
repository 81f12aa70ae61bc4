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

/// Bit masks of one 64-byte block: which bytes are `"`, `\\`, `{`/`[` and `}`/`]`.
#[derive(Default)]
struct Masks {
    quotes: u64,
    slashes: u64,
    opens: u64,
    closes: u64,
}

#[cfg(target_arch = "x86_64")]
fn masks(block: &[u8; 64]) -> Masks {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is part of the x86_64 baseline; the loads read within `block`.
    unsafe {
        let quote = _mm_set1_epi8(b'"' as i8);
        let slash = _mm_set1_epi8(b'\\' as i8);
        let case = _mm_set1_epi8(0x20);
        // `[` | 0x20 is `{`, `]` | 0x20 is `}`, and no other byte maps to either.
        let open = _mm_set1_epi8(b'{' as i8);
        let close = _mm_set1_epi8(b'}' as i8);
        let mut m = Masks::default();
        for k in 0..4 {
            let v = _mm_loadu_si128(block.as_ptr().add(16 * k) as *const __m128i);
            let folded = _mm_or_si128(v, case);
            let bits = |x: __m128i| (_mm_movemask_epi8(x) as u32 as u64) << (16 * k);
            m.quotes |= bits(_mm_cmpeq_epi8(v, quote));
            m.slashes |= bits(_mm_cmpeq_epi8(v, slash));
            m.opens |= bits(_mm_cmpeq_epi8(folded, open));
            m.closes |= bits(_mm_cmpeq_epi8(folded, close));
        }
        m
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn masks(block: &[u8; 64]) -> Masks {
    let mut m = Masks::default();
    for (i, &b) in block.iter().enumerate() {
        let bit = 1u64 << i;
        match b {
            b'"' => m.quotes |= bit,
            b'\\' => m.slashes |= bit,
            b'{' | b'[' => m.opens |= bit,
            b'}' | b']' => m.closes |= bit,
            _ => {}
        }
    }
    m
}

/// Each bit set from a quote up to (not including) the next one: the bytes inside strings.
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// Finds the end of the object or array starting at `buf[pos]`, 64 bytes at a time: strings
/// are found from their quotes in bulk and only brackets are looked at one by one (their kinds
/// still checked to match). `None` for anything it does not handle (a backslash, an error, the
/// end of the buffer): [`skip_value`] then reads the value the exact way.
pub(crate) fn skip_container(buf: &[u8], pos: usize) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("pclmulqdq")
    {
        // SAFETY: the CPU has both features (checked just above).
        return unsafe { wide::skip_container(buf, pos) };
    }
    skip_with(buf, pos, masks, prefix_xor)
}

/// [`skip_container`] with a block's masks taken 32 bytes at a time (AVX2) and its string bits
/// by one carry-less multiplication: half the instructions per block of the SSE2 way.
#[cfg(target_arch = "x86_64")]
mod wide {
    use super::{skip_with, Masks};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,pclmulqdq")]
    pub(super) fn skip_container(buf: &[u8], pos: usize) -> Option<usize> {
        skip_with(buf, pos, |b| masks(b), |x| prefix_xor(x))
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn masks(block: &[u8; 64]) -> Masks {
        let mut m = Masks::default();
        for half in 0..2 {
            // SAFETY: the load reads 32 of the 64 bytes of `block`.
            let v = unsafe { _mm256_loadu_si256(block.as_ptr().add(32 * half) as *const __m256i) };
            // `[` | 0x20 is `{`, `]` | 0x20 is `}`, and no other byte maps to either.
            let folded = _mm256_or_si256(v, _mm256_set1_epi8(0x20));
            let bits = |x: __m256i, c: u8| {
                let hit = _mm256_cmpeq_epi8(x, _mm256_set1_epi8(c as i8));
                (_mm256_movemask_epi8(hit) as u32 as u64) << (32 * half)
            };
            m.quotes |= bits(v, b'"');
            m.slashes |= bits(v, b'\\');
            m.opens |= bits(folded, b'{');
            m.closes |= bits(folded, b'}');
        }
        m
    }

    /// [`super::prefix_xor`] as one carry-less multiplication by all ones.
    #[inline]
    #[target_feature(enable = "pclmulqdq")]
    fn prefix_xor(x: u64) -> u64 {
        let product = _mm_clmulepi64_si128(_mm_set_epi64x(0, x as i64), _mm_set1_epi8(-1), 0);
        _mm_cvtsi128_si64(product) as u64
    }
}

/// The block loop of [`skip_container`], with the block primitives as parameters so that each
/// instruction set gets its own copy.
#[inline(always)]
fn skip_with(
    buf: &[u8],
    pos: usize,
    masks: impl Fn(&[u8; 64]) -> Masks,
    prefix_xor: impl Fn(u64) -> u64,
) -> Option<usize> {
    // Open brackets, innermost in the lowest bit: 1 for `[`, 0 for `{`. Deeper nesting than
    // this is left to the exact scan (which reports nesting bombs).
    let mut stack = 0u128;
    let mut depth = 0;
    let mut in_string = 0u64;
    let mut at = pos;
    let mut tail = [b' '; 64];
    while at < buf.len() {
        let block: &[u8; 64] = match buf.get(at..at + 64) {
            Some(b) => b.try_into().ok()?,
            None => {
                let n = buf.len() - at;
                tail[..n].copy_from_slice(&buf[at..]);
                &tail
            }
        };
        let m = masks(block);
        if m.slashes != 0 {
            return None;
        }
        let inside = prefix_xor(m.quotes) ^ in_string;
        in_string = 0u64.wrapping_sub(inside >> 63);
        let mut brackets = (m.opens | m.closes) & !inside;
        while brackets != 0 {
            let i = brackets.trailing_zeros() as usize;
            brackets &= brackets - 1;
            let square = u128::from(block[i] & 0x20 == 0);
            if m.opens >> i & 1 == 1 {
                if depth == 128 {
                    return None;
                }
                stack = stack << 1 | square;
                depth += 1;
            } else {
                // `}` closes `{`, `]` closes `[`.
                if depth == 0 || stack & 1 != square {
                    return None;
                }
                stack >>= 1;
                depth -= 1;
                if depth == 0 {
                    return Some(at + i + 1);
                }
            }
        }
        at += 64;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::walk::tests::real_capture;

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
    fn the_block_scanner_agrees_with_the_exact_one() {
        let mut cases = vec![
            r#"{"a": [1, "}"], "b": {"c": "]"}} tail"#.to_string(),
            r#"[{"x": "{[\"]"}]"#.to_string(),
            r#"{"a": [1}"#.to_string(),
            r#"{"a": "open"#.to_string(),
            "[".repeat(600) + &"]".repeat(600),
        ];
        // Values across block boundaries, with strings cut anywhere.
        let long = format!(
            r#"{{"k": [{}], "s": "{}"}}"#,
            "{\"q\": [1, 2]},".repeat(40) + "3",
            "y".repeat(100)
        );
        for cut in 0..long.len() {
            cases.push(long[..cut].to_string());
        }
        cases.push(long);
        for c in cases {
            let fast = skip_container(c.as_bytes(), 0);
            assert_eq!(fast, skip_with(c.as_bytes(), 0, masks, prefix_xor), "{c}");
            let exact = skip_value(c.as_bytes(), 0, 0).ok();
            if let Some(end) = fast {
                assert_eq!(Some(end), exact, "{c}");
            } else {
                // Declined: only for what the exact scan must handle itself.
                assert!(
                    c.contains('\\') || exact.is_none() || c.starts_with("[[[["),
                    "{c}"
                );
            }
        }
    }

    /// On this machine [`skip_container`] may take the AVX2 way: it must find what the SSE2 way
    /// finds, from every bracket of the real captures (inside strings too).
    #[test]
    fn each_instruction_set_finds_the_same_ends() {
        let mut brackets = 0;
        for kind in ["sidecar", "gateway"] {
            let text = real_capture(&format!("{kind}/config_dump.json"));
            for (pos, _) in text.iter().enumerate().filter(|(_, b)| b"{[".contains(b)) {
                let want = skip_with(&text, pos, masks, prefix_xor);
                assert_eq!(skip_container(&text, pos), want, "{kind} at byte {pos}");
                brackets += 1;
            }
        }
        assert!(brackets > 5_000, "{brackets}");
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
