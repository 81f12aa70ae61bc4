//! The protobuf wire format, read by hand.
//!
//! The reader walks a message's fields (tag, then value) without decoding them. The outer walk
//! uses it to find each resource's bytes and input offset; the decoders of the bulky resources
//! (clusters, load assignments, metadata) use it to build the model straight from the input,
//! without first building prost's owned messages. It checks every length against the bytes
//! that remain and never allocates: values are slices of the input.

use crate::error::{Error, ErrorKind};

/// Wire type 2: a length-delimited value (string, bytes, message, packed repeated field).
pub(crate) const LEN: u8 = 2;

/// A malformed field: where, and what. Small and `Copy`, so reading fields stays cheap; it
/// becomes an [`Error`] where it leaves this module's callers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fault {
    offset: u64,
    what: What,
}

#[derive(Debug, Clone, Copy)]
enum What {
    VarintEnd,
    VarintLong,
    FieldNumber(u64),
    Length { len: u64, number: u64, left: usize },
    Truncated,
    WireType { wire: u8, number: u64 },
    Expected { number: u32, what: &'static str },
    Utf8,
}

impl Fault {
    /// The number of the field the fault is in, when the fault is in its tag, length or type.
    pub(crate) fn field(&self) -> Option<u64> {
        match self.what {
            What::Length { number, .. } | What::WireType { number, .. } => Some(number),
            What::Expected { number, .. } => Some(u64::from(number)),
            _ => None,
        }
    }
}

impl From<Fault> for Error {
    #[cold]
    fn from(f: Fault) -> Error {
        let (kind, message) = match f.what {
            What::VarintEnd => (ErrorKind::Syntax, "the input ends inside a varint".into()),
            What::VarintLong => (ErrorKind::Syntax, "varint longer than 10 bytes".into()),
            What::FieldNumber(n) => (ErrorKind::Syntax, format!("invalid field number {n}")),
            What::Length { len, number, left } => (
                ErrorKind::Syntax,
                format!(
                    "length {len} of field {number} runs past the end of its message \
                     ({left} bytes left)"
                ),
            ),
            What::Truncated => (ErrorKind::Syntax, "the input ends inside a field".into()),
            What::WireType { wire, number } => (
                ErrorKind::Syntax,
                format!("unsupported wire type {wire} for field {number}"),
            ),
            What::Expected { number, what } => (
                ErrorKind::Syntax,
                format!("wrong wire type for field {number}: expected {what}"),
            ),
            What::Utf8 => (ErrorKind::Utf8, "invalid UTF-8 in a string field".into()),
        };
        Error::at(kind, f.offset, message)
    }
}

/// What reading fields gives: the value, or where and why the bytes are malformed.
pub(crate) type Read<T> = std::result::Result<T, Fault>;

/// A field's value, by wire type.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    Varint(u64),
    Fixed64,
    /// A length-delimited value and the input offset of its first byte.
    Len(&'a [u8], u64),
    Fixed32,
}

/// One field of a message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field<'a> {
    pub(crate) number: u32,
    pub(crate) value: Value<'a>,
    /// Input offset of the field's tag.
    pub(crate) offset: u64,
}

impl<'a> Field<'a> {
    #[cold]
    fn expected(&self, what: &'static str) -> Fault {
        Fault {
            offset: self.offset,
            what: What::Expected {
                number: self.number,
                what,
            },
        }
    }

    /// The field's bytes, which must be length-delimited.
    #[inline]
    pub(crate) fn bytes(&self) -> Read<(&'a [u8], u64)> {
        match self.value {
            Value::Len(b, at) => Ok((b, at)),
            _ => Err(self.expected("a length-delimited value")),
        }
    }

    /// The field as UTF-8 text.
    #[inline]
    pub(crate) fn string(&self) -> Read<&'a str> {
        let (b, at) = self.bytes()?;
        text(b, at)
    }

    /// The fields of the message this field holds.
    #[inline]
    pub(crate) fn message(&self) -> Read<Fields<'a>> {
        let (b, at) = self.bytes()?;
        Ok(Fields::new(b, at))
    }

    /// A `uint32` field, truncated from its varint as protobuf parsers do.
    #[inline]
    pub(crate) fn u32(&self) -> Read<u32> {
        Ok(self.varint()? as u32)
    }

    /// An `int32` or enum field, truncated from its varint as protobuf parsers do.
    #[inline]
    pub(crate) fn i32(&self) -> Read<i32> {
        Ok(self.varint()? as i32)
    }

    /// A `google.protobuf.UInt32Value`: its `value`, 0 when the wrapper is empty.
    pub(crate) fn u32_value(&self) -> Read<u32> {
        Ok(self.wrapped_varint()? as u32)
    }

    /// A `google.protobuf.BoolValue`: its `value`, false when the wrapper is empty.
    pub(crate) fn bool_value(&self) -> Read<bool> {
        Ok(self.wrapped_varint()? != 0)
    }

    /// The varint `value` (field 1) of a wrapper message, 0 when it has none.
    fn wrapped_varint(&self) -> Read<u64> {
        let mut v = 0;
        for f in self.message()? {
            let f = f?;
            if f.number == 1 {
                v = f.varint()?;
            }
        }
        Ok(v)
    }

    /// The field as a varint.
    #[inline]
    pub(crate) fn varint(&self) -> Read<u64> {
        match self.value {
            Value::Varint(v) => Ok(v),
            _ => Err(self.expected("a varint")),
        }
    }
}

/// A string field's bytes, `b` at input offset `at`, as UTF-8 text.
#[inline]
pub(crate) fn text(b: &[u8], at: u64) -> Read<&str> {
    crate::json::parser::as_text(b).map_err(|valid| Fault {
        offset: at + valid as u64,
        what: What::Utf8,
    })
}

/// Reads a varint at `buf[*pos..]`; `base` is the input offset of `buf[0]`.
#[inline(always)]
pub(crate) fn varint(buf: &[u8], pos: &mut usize, base: u64) -> Read<u64> {
    // One and two bytes (field keys, enums, lengths under 16 KiB) without the loop.
    if let Some(&b) = buf.get(*pos) {
        if b < 0x80 {
            *pos += 1;
            return Ok(u64::from(b));
        }
        if let Some(&c) = buf.get(*pos + 1) {
            if c < 0x80 {
                *pos += 2;
                return Ok(u64::from(b & 0x7f) | u64::from(c) << 7);
            }
        }
    }
    long_varint(buf, pos, base)
}

fn long_varint(buf: &[u8], pos: &mut usize, base: u64) -> Read<u64> {
    let start = *pos;
    let mut value: u64 = 0;
    for i in 0..10 {
        let Some(&b) = buf.get(*pos) else {
            return Err(Fault {
                offset: base + start as u64,
                what: What::VarintEnd,
            });
        };
        *pos += 1;
        if i == 9 && b > 1 {
            break;
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Ok(value);
        }
    }
    Err(Fault {
        offset: base + start as u64,
        what: What::VarintLong,
    })
}

/// The fields of one message, in wire order. After a malformed field it ends.
pub(crate) struct Fields<'a> {
    buf: &'a [u8],
    base: u64,
    pos: usize,
}

impl<'a> Fields<'a> {
    /// Walks `buf`, whose first byte sits at input offset `base`.
    #[inline]
    pub(crate) fn new(buf: &'a [u8], base: u64) -> Fields<'a> {
        Fields { buf, base, pos: 0 }
    }

    // Inlined into every decoder's loop: as a call it spent a third of its instructions
    // saving registers and writing its result to memory (callgrind, 256 MB benchmark dump).
    #[inline(always)]
    fn next_field(&mut self) -> Read<Field<'a>> {
        let offset = self.base + self.pos as u64;
        let key = varint(self.buf, &mut self.pos, self.base)?;
        let number = key >> 3;
        if number == 0 || number > u64::from(u32::MAX >> 3) {
            return Err(Fault {
                offset,
                what: What::FieldNumber(number),
            });
        }
        let wire = (key & 7) as u8;
        let value = match wire {
            LEN => {
                let len_at = self.base + self.pos as u64;
                let len = varint(self.buf, &mut self.pos, self.base)?;
                let left = self.buf.len() - self.pos;
                if len > left as u64 {
                    return Err(Fault {
                        offset: len_at,
                        what: What::Length { len, number, left },
                    });
                }
                let at = self.base + self.pos as u64;
                let bytes = &self.buf[self.pos..self.pos + len as usize];
                self.pos += len as usize;
                Value::Len(bytes, at)
            }
            0 => Value::Varint(varint(self.buf, &mut self.pos, self.base)?),
            1 => {
                self.take(8, offset)?;
                Value::Fixed64
            }
            5 => {
                self.take(4, offset)?;
                Value::Fixed32
            }
            wire => {
                return Err(Fault {
                    offset,
                    what: What::WireType { wire, number },
                })
            }
        };
        Ok(Field {
            number: number as u32,
            value,
            offset,
        })
    }

    fn take(&mut self, n: usize, offset: u64) -> Read<()> {
        if self.buf.len() - self.pos < n {
            return Err(Fault {
                offset,
                what: What::Truncated,
            });
        }
        self.pos += n;
        Ok(())
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Read<Field<'a>>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let f = self.next_field();
        if f.is_err() {
            self.pos = self.buf.len();
        }
        Some(f)
    }
}

/// A field's tag, and its length or varint value, read as [`Fields`] reads them, for a walk that
/// reads the values itself (a stream: `super::streamed`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub(crate) number: u32,
    pub(crate) wire: u8,
    /// Input offset of the tag.
    pub(crate) offset: u64,
    /// Input offset of the length, for a length-delimited value.
    len_at: u64,
    /// The length of a length-delimited value (which follows the header), or a varint's value.
    pub(crate) value: u64,
    /// The header's bytes: tag, and length, varint or fixed-size value.
    pub(crate) size: usize,
}

impl Header {
    /// The length of the field's value, which must be length-delimited.
    pub(crate) fn len(&self) -> Read<u64> {
        if self.wire == LEN {
            Ok(self.value)
        } else {
            Err(Fault {
                offset: self.offset,
                what: What::Expected {
                    number: self.number,
                    what: "a length-delimited value",
                },
            })
        }
    }

    /// The fault [`Fields`] reports for this length-delimited field when only `left` bytes of its
    /// message follow its length.
    pub(crate) fn past_end(&self, left: u64) -> Fault {
        Fault {
            offset: self.len_at,
            what: What::Length {
                len: self.value,
                number: u64::from(self.number),
                left: usize::try_from(left).unwrap_or(usize::MAX),
            },
        }
    }
}

/// Reads a field's header at `buf[0]`, input offset `base`, with the faults [`Fields`] reports
/// there. `buf` holds the next bytes of the message (at least 20 where so many remain: a tag and
/// a length are at most 10 bytes each); `left` is how many remain in the message in all, or
/// `u64::MAX` where that is not known (the top level of a stream, which ends with the input: its
/// lengths are checked as it is read).
pub(crate) fn header(buf: &[u8], base: u64, left: u64) -> Read<Header> {
    let mut pos = 0;
    let key = varint(buf, &mut pos, base)?;
    let number = key >> 3;
    if number == 0 || number > u64::from(u32::MAX >> 3) {
        return Err(Fault {
            offset: base,
            what: What::FieldNumber(number),
        });
    }
    let mut h = Header {
        number: number as u32,
        wire: (key & 7) as u8,
        offset: base,
        len_at: 0,
        value: 0,
        size: 0,
    };
    let fixed = |n: usize, pos: &mut usize| {
        if buf.len() - *pos < n {
            return Err(Fault {
                offset: base,
                what: What::Truncated,
            });
        }
        *pos += n;
        Ok(())
    };
    match h.wire {
        LEN => {
            h.len_at = base + pos as u64;
            h.value = varint(buf, &mut pos, base)?;
            let after = left.saturating_sub(pos as u64);
            if left != u64::MAX && h.value > after {
                return Err(h.past_end(after));
            }
        }
        0 => h.value = varint(buf, &mut pos, base)?,
        1 => fixed(8, &mut pos)?,
        5 => fixed(4, &mut pos)?,
        wire => {
            return Err(Fault {
                offset: base,
                what: What::WireType { wire, number },
            })
        }
    }
    h.size = pos;
    Ok(h)
}

/// Finds the first malformed field at the top level of `buf`, for error offsets after prost
/// rejected a message (prost says what failed, not where).
pub(crate) fn first_fault(buf: &[u8], base: u64) -> Option<Error> {
    Fields::new(buf, base).find_map(|f| f.err().map(Error::from))
}

/// An `Any` read by hand: its type URL and the input offset of its payload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawAny<'a> {
    pub(crate) type_url: &'a str,
    pub(crate) value: &'a [u8],
    pub(crate) value_at: u64,
}

/// Reads a `google.protobuf.Any` (`type_url = 1`, `value = 2`).
pub(crate) fn any(buf: &[u8], base: u64) -> Read<RawAny<'_>> {
    let mut out = RawAny {
        type_url: "",
        value: &[],
        value_at: base,
    };
    for f in Fields::new(buf, base) {
        let f = f?;
        match f.number {
            1 => out.type_url = f.string()?,
            2 => (out.value, out.value_at) = f.bytes()?,
            _ => {}
        }
    }
    Ok(out)
}

/// Whether `s` looks like a type URL (`type.googleapis.com/envoy.config.cluster.v3.Cluster`).
pub(crate) fn is_type_url(s: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= 512
        && s.contains(&b'/')
        && s.iter()
            .all(|&b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_overlong_varints_with_their_offset() {
        let buf = [0xffu8; 11];
        let e = Error::from(varint(&buf, &mut 0, 40).unwrap_err());
        assert_eq!(e.kind(), ErrorKind::Syntax);
        assert_eq!(e.offset(), Some(40));
    }

    #[test]
    fn reads_varints_of_every_length_and_stops_at_the_end() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            1 << 35,
            u64::MAX >> 1,
        ] {
            let mut buf = Vec::new();
            prost::encoding::encode_varint(v, &mut buf);
            buf.push(0x55);
            let mut pos = 0;
            assert_eq!(varint(&buf, &mut pos, 0).unwrap(), v);
            assert_eq!(pos, buf.len() - 1, "{v}");
            // Cut before its last byte, it is a fault at its first.
            let cut = &buf[..buf.len() - 2];
            if !cut.is_empty() {
                let e = Error::from(varint(cut, &mut 0, 9).unwrap_err());
                assert_eq!(e.offset(), Some(9), "{v}");
            }
        }
    }

    #[test]
    fn reads_the_largest_varint() {
        let buf = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(varint(&buf, &mut 0, 0).unwrap(), u64::MAX);
    }

    #[test]
    fn a_length_past_the_end_is_a_syntax_error_at_the_length() {
        // Field 1, length 100, 2 bytes of payload.
        let e = Error::from(
            Fields::new(&[0x0a, 100, 1, 2], 7)
                .next()
                .unwrap()
                .unwrap_err(),
        );
        assert_eq!(e.kind(), ErrorKind::Syntax);
        assert_eq!(e.offset(), Some(8));
    }
}
